"""Sanctions end on their own, and appeal and strike windows close, by an injected clock.

Only time is faked: the clock is frozen and moved by hand;
the expiry sweeper is the real background loop, run fast.
"""

from __future__ import annotations

import pytest

from imserver.domain.clock import FrozenClock
from imserver.domain.enums import Role
from imserver.services.unit_of_work import Scope

from .helpers import operator, register
from .operator_helpers import audit_rows, eventually, impose, regulator_kinds


@pytest.fixture
def clock():
    return FrozenClock()


@pytest.fixture
def settings(settings):
    settings.sanction_sweep_interval_seconds = 0.02  # the real loop, fast; the clock decides what is due
    return settings


async def test_expiry_writes_the_event_and_the_regulator_record(http, app, clock):
    svc = app.state.services
    mod = await operator(http, svc, Role.MODERATOR)
    user = await register(http)
    changed: list[int] = []  # users whose cached facts were dropped
    svc.effects.on_invalidate(lambda effect: changed.append(effect.id) if effect.scope is Scope.USER else None)
    short = (await impose(http, mod, user["id"], "restrict_publication", duration_seconds=60)).json()
    long = (await impose(http, mod, user["id"], "restrict_publication", duration_seconds=3600)).json()
    changed.clear()
    clock.advance(seconds=59)
    assert await svc.sanctions.expire_due() == 0  # not yet: nothing is written
    clock.advance(seconds=2)

    async def expired():
        s = (await http.get(f"/admin/v1/sanctions/{short['id']}", headers=mod["headers"])).json()
        return s if s["ended_by"] == "expired" else None

    s = await eventually(expired)  # the background sweeper writes it
    assert s["status"] == "ended" and s["events"][-1]["operator_id"] is None
    assert s["ended_at"] == clock.now().isoformat()
    assert await regulator_kinds(svc, short["id"]) == ["sanction_imposed", "sanction_expired"]
    assert user["id"] in changed  # the cached snapshot was dropped
    rows = [r for r in await audit_rows(svc) if r["action"] == "sanction.expire"]
    assert len(rows) == 1 and rows[0]["actor_kind"] == "system" and rows[0]["detail"]["sanction_id"] == short["id"]
    # The longer one is untouched, and a second sweep writes nothing twice.
    assert await svc.sanctions.expire_due() == 0
    other = (await http.get(f"/admin/v1/sanctions/{long['id']}", headers=mod["headers"])).json()
    assert other["status"] == "in_effect" and other["events"] == []
    assert await regulator_kinds(svc, short["id"]) == ["sanction_imposed", "sanction_expired"]
    # An expired sanction cannot be lifted.
    r = await http.post(f"/admin/v1/sanctions/{short['id']}/lift", json={"reason": "x"}, headers=mod["headers"])
    assert r.status_code == 409 and r.json()["code"] == "sanction_state"


async def test_a_passed_end_shows_as_ended_before_the_sweep(http, app, clock):
    svc = app.state.services
    await svc.sanctions.stop()  # no sweeper: what operators see must not depend on it
    mod = await operator(http, svc, Role.MODERATOR)
    user = await register(http)
    sid = (await impose(http, mod, user["id"], "restrict_publication", duration_seconds=60)).json()["id"]
    clock.advance(seconds=61)
    s = (await http.get(f"/admin/v1/sanctions/{sid}", headers=mod["headers"])).json()
    assert s["status"] == "ended" and s["events"] == []
    assert await svc.sanctions.expire_due() == 1
    assert await svc.sanctions.expire_due() == 0


async def test_appeal_window_closes(http, app, clock):
    svc = app.state.services
    mod = await operator(http, svc, Role.MODERATOR)
    user = await register(http)
    early = (await impose(http, mod, user["id"], "warning")).json()["id"]
    late = (await impose(http, mod, user["id"], "warning")).json()["id"]
    clock.advance(days=svc.settings.appeal_window_days, seconds=-1)
    r = await http.post(f"/api/v1/sanctions/{early}/appeal", json={"text": "in time"}, headers=user["headers"])
    assert r.status_code == 201
    clock.advance(seconds=2)
    r = await http.post(f"/api/v1/sanctions/{late}/appeal", json={"text": "too late"}, headers=user["headers"])
    assert r.status_code == 409 and r.json()["code"] == "appeal_window_closed"
    mine = {m["id"]: m for m in (await http.get("/api/v1/sanctions", headers=user["headers"])).json()}
    assert mine[late]["can_appeal"] is False and mine[late]["appeal"] is None


async def test_strikes_leave_the_window(http, app, clock):
    svc = app.state.services
    user = await register(http)
    assert (await impose(http, await operator(http, svc, Role.MODERATOR), user["id"], "warning")).status_code == 201
    clock.advance(days=89)
    mod = await operator(http, svc, Role.MODERATOR)  # a fresh sign-in: operator tokens end when idle
    assert (await impose(http, mod, user["id"], "warning")).status_code == 201
    h = (await http.get(f"/admin/v1/subjects/user/{user['id']}/sanctions", headers=mod["headers"])).json()
    assert h["strikes"] == 2
    clock.advance(days=2)
    mod = await operator(http, svc, Role.MODERATOR)
    h = (await http.get(f"/admin/v1/subjects/user/{user['id']}/sanctions", headers=mod["headers"])).json()
    assert h["strikes"] == 1 and len(h["sanctions"]) == 2  # history keeps everything


async def test_oldest_open_report_age_on_metrics(http, app, clock):
    alice, bob = await register(http), await register(http)
    body = {"target_kind": "account", "target_id": bob["id"], "category": "other", "text": "x"}
    assert (await http.post("/api/v1/reports", json=body, headers=alice["headers"])).status_code == 201
    clock.advance(seconds=90)
    # Another target: a second report on bob would join the first (one queue item).
    other = {**body, "target_id": alice["id"]}
    assert (await http.post("/api/v1/reports", json=other, headers=bob["headers"])).status_code == 201
    clock.advance(seconds=10)
    text = (await http.get("/metrics")).text
    assert "imserver_reports_open 2.0" in text
    assert "imserver_reports_oldest_open_age_seconds 100.0" in text
