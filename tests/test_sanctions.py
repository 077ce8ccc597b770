"""Sanctions and appeals through the admin and user APIs (Art. 8), on SQLite and PostgreSQL.

Roles per kind, bad input that changes nothing, closure by two operators over a
real socket, warnings as live notices, lifting, appeals, the escalation hint;
every change with its audit row and regulator record.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from imserver.client import Client
from imserver.domain.enums import PrincipalKind, Role

from .helpers import PASSWORD, operator, register
from .operator_helpers import audit_actions, audit_rows, impose, regulator_kinds


@pytest.fixture
async def ops(http, app):
    svc = app.state.services
    return {
        "mod": await operator(http, svc, Role.MODERATOR),
        "mod2": await operator(http, svc, Role.MODERATOR),
        "comp": await operator(http, svc, Role.COMPLIANCE),
        "comp2": await operator(http, svc, Role.COMPLIANCE),
        "comp3": await operator(http, svc, Role.COMPLIANCE),
        "comp4": await operator(http, svc, Role.COMPLIANCE),
        "admin": await operator(http, svc, Role.ADMIN),
        "reviewer": await operator(http, svc, Role.REVIEWER),
    }


# -- roles ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "right", "wrong", "extra"),
    [
        ("warning", "mod", "comp", {}),
        ("restrict_publication", "mod", "comp", {"duration_seconds": 3600}),
        ("suspend_updates", "comp", "mod", {"duration_seconds": 3600}),
        ("close_account", "comp", "mod", {}),
    ],
)
async def test_each_kind_by_its_role(http, app, ops, kind, right, wrong, extra):
    svc = app.state.services
    user = await register(http)
    for other in (wrong, "admin", "reviewer"):
        r = await impose(http, ops[other], user["id"], kind, **extra)
        assert r.status_code == 403 and r.json()["code"] == "forbidden", (other, r.text)
    r = await impose(http, ops[right], user["id"], kind, **extra)
    assert r.status_code == 201, r.text
    s = r.json()
    assert (s["kind"], s["subject"], s["imposed_by"]) == (kind, {"kind": "user", "id": user["id"]}, ops[right]["id"])
    assert s["status"] == ("awaiting_confirmation" if kind == "close_account" else "in_effect")
    # Timed measures without an end given get the ladder's default duration.
    assert (s["ends_at"] is not None) == (kind in ("restrict_publication", "suspend_updates"))
    # One record each: the audit row and the regulator record, nothing for the refused attempts.
    assert await audit_actions(svc, s["id"]) == ["sanction.impose"]
    assert await regulator_kinds(svc, s["id"]) == ["sanction_imposed"]
    history = (await http.get(f"/admin/v1/subjects/user/{user['id']}/sanctions", headers=ops[right]["headers"])).json()
    assert [h["id"] for h in history["sanctions"]] == [s["id"]]
    # A sanction in force now shows in the user's own list (a pending closure does not).
    mine = (await http.get("/api/v1/sanctions", headers=user["headers"])).json()
    assert [m["id"] for m in mine] == ([] if kind == "close_account" else [s["id"]])
    assert all("imposed_by" not in m for m in mine)


# -- bad input ------------------------------------------------------------------------------


async def test_bad_input_changes_nothing(http, app, ops):
    svc = app.state.services
    user = await register(http)
    other = await register(http)
    before = len(await audit_rows(svc))
    mod, comp = ops["mod"], ops["comp"]
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    cases = [
        (impose(http, mod, 999_999, "warning"), 404, "subject_not_found"),
        (impose(http, mod, user["id"], "banishment"), 422, "unknown_sanction_kind"),
        (impose(http, mod, user["id"], "restrict_publication", ends_at=past), 422, "invalid_period"),
        (impose(http, mod, user["id"], "restrict_publication", duration_seconds=-5), 422, "invalid_period"),
        (impose(http, mod, user["id"], "restrict_publication", duration_seconds=0), 422, "invalid_period"),
        (impose(http, mod, user["id"], "warning", duration_seconds=60), 422, "invalid_period"),
        (impose(http, comp, user["id"], "close_account", duration_seconds=60), 422, "invalid_period"),
        (impose(http, mod, user["id"], "warning", subject_kind="conversation"), 422, "unsupported_subject"),
        (impose(http, mod, user["id"], "warning", evidence={"message_ids": [424242]}), 422, "evidence_not_found"),
        (impose(http, mod, user["id"], "warning", evidence={"report_ids": [7]}), 422, "evidence_not_found"),
        (impose(http, mod, user["id"], "warning", reason="   "), 422, "malformed"),
    ]
    for call, status, code in cases:
        r = await call
        assert (r.status_code, r.json()["code"]) == (status, code), r.text
    r = await http.post("/admin/v1/sanctions", json={"kind": "warning", "reason": "x"}, headers=mod["headers"])
    assert r.status_code == 422 and r.json()["code"] == "malformed"  # no subject at all
    r = await http.get("/admin/v1/subjects/user/999999/sanctions", headers=mod["headers"])
    assert r.status_code == 404 and r.json()["code"] == "subject_not_found"
    for u in (user, other):
        h = (await http.get(f"/admin/v1/subjects/user/{u['id']}/sanctions", headers=mod["headers"])).json()
        assert h["sanctions"] == [] and h["strikes"] == 0
    assert len(await audit_rows(svc)) == before
    assert await svc.regulator.undelivered() == 0  # no regulator record was written


# -- closure -------------------------------------------------------------------------------


async def test_close_needs_two_operators_and_drops_the_socket(server, client, db):
    svc = server.services
    comp = await operator(client, svc, Role.COMPLIANCE)
    comp2 = await operator(client, svc, Role.COMPLIANCE)
    mod = await operator(client, svc, Role.MODERATOR)
    user = await register(client)
    live = await Client.connect(server.ws_url, user["token"])
    try:
        r = await impose(client, comp, user["id"], "close_account")
        assert r.status_code == 201
        sid = r.json()["id"]
        # The proposer cannot confirm; a moderator may not either. Nothing changes.
        r = await client.post(f"/admin/v1/sanctions/{sid}/confirm", headers=comp["headers"])
        assert r.status_code == 403 and r.json()["code"] == "same_operator"
        r = await client.post(f"/admin/v1/sanctions/{sid}/confirm", headers=mod["headers"])
        assert r.status_code == 403
        assert (await client.get("/api/v1/me", headers=user["headers"])).json()["status"] == "active"
        assert (await live.ping()).type == "pong"  # still connected
        pending = (await client.get("/admin/v1/sanctions/awaiting-confirmation", headers=comp2["headers"])).json()
        assert [p["id"] for p in pending["items"]] == [sid] and pending["total"] == 1
        # A second, different compliance operator confirms: the socket closes with 4003.
        r = await client.post(f"/admin/v1/sanctions/{sid}/confirm", json={"note": "agreed"}, headers=comp2["headers"])
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "in_effect" and r.json()["confirmed_by"] == comp2["id"]
        assert await live.wait_closed() == 4003
        # Sign-in answers account_closed (with an appeal-only token), and the old token is dead.
        r = await client.post("/api/v1/login", json={"handle": user["handle"], "password": PASSWORD})
        assert (r.status_code, r.json()["code"]) == (403, "account_closed")
        assert (await client.get("/api/v1/me", headers=user["headers"])).status_code == 401
        # Confirming again is a state error.
        r = await client.post(f"/admin/v1/sanctions/{sid}/confirm", headers=comp2["headers"])
        assert r.status_code == 409 and r.json()["code"] == "sanction_state"
        assert await audit_actions(svc, sid) == ["sanction.impose", "sanction.confirm"]
        assert await regulator_kinds(svc, sid) == ["sanction_imposed", "sanction_confirmed"]
        # Lifting the closure takes a proposal and a third compliance operator's confirmation;
        # then it reopens the account.
        r = await client.post(
            f"/admin/v1/sanctions/{sid}/lift", json={"reason": "mistaken identity"}, headers=comp2["headers"]
        )
        assert r.status_code == 200 and r.json()["ended_by"] is None and r.json()["pending"]["act"] == "lift"
        comp3 = await operator(client, svc, Role.COMPLIANCE)
        r = await client.post(f"/admin/v1/sanctions/{sid}/confirm", headers=comp3["headers"])
        assert r.status_code == 200 and r.json()["ended_by"] == "lifted", r.text
        r = await client.post("/api/v1/login", json={"handle": user["handle"], "password": PASSWORD})
        assert r.status_code == 200
        assert await regulator_kinds(svc, sid) == ["sanction_imposed", "sanction_confirmed", "sanction_lifted"]
    finally:
        await live.close()


async def test_withdrawn_closure_cannot_be_confirmed(http, app, ops):
    user = await register(http)
    sid = (await impose(http, ops["comp"], user["id"], "close_account")).json()["id"]
    r = await http.post(f"/admin/v1/sanctions/{sid}/lift", json={"reason": "withdrawn"}, headers=ops["comp"]["headers"])
    assert r.status_code == 200
    r = await http.post(f"/admin/v1/sanctions/{sid}/confirm", headers=ops["comp2"]["headers"])
    assert r.status_code == 409 and r.json()["code"] == "sanction_state"
    assert (await http.get("/api/v1/me", headers=user["headers"])).json()["status"] == "active"


# -- warnings reach a live client -------------------------------------------------------------


async def test_warning_is_a_live_notice(server, client):
    mod = await operator(client, server.services, Role.MODERATOR)
    user = await register(client)
    live = await Client.connect(server.ws_url, user["token"])
    try:
        r = await impose(client, mod, user["id"], "warning", reason="spam in groups")
        assert r.status_code == 201
        notice = await asyncio.wait_for(live.events.get(), 10)
        assert notice.type == "notice" and notice.kind == "warning"
        assert "spam in groups" in notice.text and notice.data["sanction_id"] == r.json()["id"]
    finally:
        await live.close()


# -- lifting ------------------------------------------------------------------------------------


async def test_lift_writes_an_event_never_an_update(http, app, ops):
    svc = app.state.services
    user = await register(http)
    s = (await impose(http, ops["comp"], user["id"], "suspend_updates", duration_seconds=3600)).json()
    r = await http.post(f"/admin/v1/sanctions/{s['id']}/lift", json={"reason": "x"}, headers=ops["mod"]["headers"])
    assert r.status_code == 403  # a moderator cannot lift what needs compliance to impose
    r = await http.post(
        f"/admin/v1/sanctions/{s['id']}/lift", json={"reason": "served"}, headers=ops["comp2"]["headers"]
    )
    assert r.status_code == 200
    lifted = r.json()
    assert (lifted["status"], lifted["ended_by"]) == ("ended", "lifted")
    assert lifted["events"][-1]["operator_id"] == ops["comp2"]["id"] and lifted["events"][-1]["note"] == "served"
    # The sanction row itself is as it was: same reason, same end.
    assert (lifted["reason"], lifted["ends_at"], lifted["starts_at"]) == (s["reason"], s["ends_at"], s["starts_at"])
    r = await http.post(f"/admin/v1/sanctions/{s['id']}/lift", json={"reason": "again"}, headers=ops["comp"]["headers"])
    assert r.status_code == 409 and r.json()["code"] == "sanction_state"
    r = await http.post("/admin/v1/sanctions/999999/lift", json={"reason": "x"}, headers=ops["comp"]["headers"])
    assert r.status_code == 404 and r.json()["code"] == "sanction_not_found"
    assert await audit_actions(svc, s["id"]) == ["sanction.impose", "sanction.lift"]
    assert await regulator_kinds(svc, s["id"]) == ["sanction_imposed", "sanction_lifted"]


# -- appeals ----------------------------------------------------------------------------------


async def test_appeal_overturns_once(server, client):
    svc = server.services
    mod = await operator(client, svc, Role.MODERATOR)
    comp = await operator(client, svc, Role.COMPLIANCE)
    user, stranger = await register(client), await register(client)
    sid = (await impose(client, mod, user["id"], "restrict_publication", duration_seconds=86400)).json()["id"]
    r = await client.post(f"/api/v1/sanctions/{sid}/appeal", json={"text": "not me"}, headers=stranger["headers"])
    assert r.status_code == 404 and r.json()["code"] == "sanction_not_found"
    r = await client.post(
        f"/api/v1/sanctions/{sid}/appeal", json={"text": "I did nothing wrong"}, headers=user["headers"]
    )
    assert r.status_code == 201, r.text
    appeal_id = r.json()["appeal_id"]
    r = await client.post(f"/api/v1/sanctions/{sid}/appeal", json={"text": "again!"}, headers=user["headers"])
    assert r.status_code == 409 and r.json()["code"] == "appeal_exists"
    mine = (await client.get("/api/v1/sanctions", headers=user["headers"])).json()
    assert mine[0]["appeal"]["id"] == appeal_id and mine[0]["can_appeal"] is False
    queue = (await client.get("/admin/v1/appeals", headers=comp["headers"])).json()["items"]
    assert [a["appeal_id"] for a in queue] == [appeal_id]
    # The moderator who imposed it cannot decide (not compliance); a compliance operator can.
    r = await client.post(
        f"/admin/v1/appeals/{appeal_id}/decision", json={"decision": "overturn"}, headers=mod["headers"]
    )
    assert r.status_code == 403
    live = await Client.connect(server.ws_url, user["token"])
    try:
        r = await client.post(
            f"/admin/v1/appeals/{appeal_id}/decision",
            json={"decision": "overturn", "note": "evidence was about someone else"},
            headers=comp["headers"],
        )
        assert r.status_code == 200 and r.json()["decision"] == "overturned"
        notice = await asyncio.wait_for(live.events.get(), 10)
        assert notice.kind == "appeal_decided" and notice.data == {
            "appeal_id": appeal_id,
            "sanction_id": sid,
            "decision": "overturned",
        }
    finally:
        await live.close()
    r = await client.post(
        f"/admin/v1/appeals/{appeal_id}/decision", json={"decision": "uphold"}, headers=comp["headers"]
    )
    assert r.status_code == 409 and r.json()["code"] == "appeal_decided"
    s = (await client.get(f"/admin/v1/sanctions/{sid}", headers=comp["headers"])).json()
    assert (s["status"], s["ended_by"], s["overruled"]) == ("ended", "overturned", True)
    assert [e["kind"] for e in s["events"]] == ["appealed", "overturned"]
    assert s["appeal"]["decision"] == "overturned" and s["appeal"]["decided_by"] == comp["id"]
    assert await audit_actions(svc, sid) == ["sanction.impose", "sanction.appeal", "sanction.appeal.decide"]
    assert await regulator_kinds(svc, sid) == ["sanction_imposed", "sanction_overturned"]
    # An overturned sanction is no strike.
    h = (await client.get(f"/admin/v1/subjects/user/{user['id']}/sanctions", headers=mod["headers"])).json()
    assert h["strikes"] == 0


async def test_appeal_decided_by_another_compliance_operator(http, app, ops):
    user = await register(http)
    sid = (await impose(http, ops["comp"], user["id"], "suspend_updates", duration_seconds=3600)).json()["id"]
    appeal_id = (
        await http.post(f"/api/v1/sanctions/{sid}/appeal", json={"text": "please"}, headers=user["headers"])
    ).json()["appeal_id"]
    r = await http.post(
        f"/admin/v1/appeals/{appeal_id}/decision", json={"decision": "overturn"}, headers=ops["comp"]["headers"]
    )
    assert r.status_code == 403 and r.json()["code"] == "same_operator"
    r = await http.post(
        f"/admin/v1/appeals/{appeal_id}/decision", json={"decision": "uphold"}, headers=ops["comp2"]["headers"]
    )
    assert r.status_code == 200 and r.json()["decision"] == "upheld"
    s = (await http.get(f"/admin/v1/sanctions/{sid}", headers=ops["comp"]["headers"])).json()
    assert (s["status"], s["overruled"]) == ("in_effect", False)
    assert [e["kind"] for e in s["events"]] == ["appealed", "upheld"]
    # The appeal's outcome is reported too (Art. 8).
    assert await regulator_kinds(app.state.services, sid) == ["sanction_imposed", "sanction_upheld"]


async def test_closure_appeal_excludes_the_confirmer(http, app, ops):
    """The decision rules: neither the imposer nor the confirmer decides a closure's appeal."""
    svc = app.state.services
    user = await register(http)
    sid = (await impose(http, ops["comp"], user["id"], "close_account")).json()["id"]
    principal = await svc.accounts.authenticate(user["token"], PrincipalKind.USER)
    r = await http.post(f"/api/v1/sanctions/{sid}/appeal", json={"text": "too early"}, headers=user["headers"])
    assert r.status_code == 409 and r.json()["code"] == "sanction_state"  # not in effect yet
    await http.post(f"/admin/v1/sanctions/{sid}/confirm", headers=ops["comp2"]["headers"])
    appeal = await svc.sanctions.appeal(principal, sid, text="I want my account back")
    r = await http.post(
        f"/admin/v1/appeals/{appeal['appeal_id']}/decision",
        json={"decision": "overturn"},
        headers=ops["comp2"]["headers"],
    )
    assert r.status_code == 403 and r.json()["code"] == "same_operator"
    r = await http.post(
        f"/admin/v1/appeals/{appeal['appeal_id']}/decision",
        json={"decision": "overturn"},
        headers=ops["comp3"]["headers"],
    )
    assert r.status_code == 200 and r.json()["decision"] is None  # proposed: a closure needs four eyes
    r = await http.post(f"/admin/v1/sanctions/{sid}/confirm", headers=ops["comp4"]["headers"])
    assert r.status_code == 200 and r.json()["ended_by"] == "overturned"
    r = await http.post("/api/v1/login", json={"handle": user["handle"], "password": PASSWORD})
    assert r.status_code == 200  # overturning a closure reopens the account


# -- escalation hint ------------------------------------------------------------------------------


async def test_history_counts_strikes(http, app, ops):
    user = await register(http)
    for _ in range(2):
        assert (await impose(http, ops["mod"], user["id"], "warning")).status_code == 201
    assert (await impose(http, ops["mod2"], user["id"], "restrict_publication", duration_seconds=60)).status_code == 201
    assert (await impose(http, ops["comp"], user["id"], "close_account")).status_code == 201  # not confirmed: no strike
    h = (await http.get(f"/admin/v1/subjects/user/{user['id']}/sanctions", headers=ops["comp"]["headers"])).json()
    assert h["strikes"] == 3 and h["strike_window_days"] == 90
    assert [s["kind"] for s in h["sanctions"]] == ["warning", "warning", "restrict_publication", "close_account"]
    assert sorted(h["in_effect"]) == ["restrict_publication", "warning", "warning"]
    assert h["sanctions"][-1]["status"] == "awaiting_confirmation"


# -- the gate sees every change on the next message -------------------------------------------


async def test_a_sanction_applies_to_the_next_message(server, client):
    """Suspending and lifting take effect on a connected user's next send, without reconnecting."""
    comp = await operator(client, server.services, Role.COMPLIANCE)
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    live = await Client.connect(server.ws_url, alice["token"])
    try:
        assert (await live.send("before", to_user=bob["id"])).status == "accepted"
        sid = (await impose(client, comp, alice["id"], "suspend_updates", duration_seconds=3600)).json()["id"]
        ack = await live.send("during", to_user=bob["id"])
        assert (ack.status, ack.reason) == ("rejected", "updates_suspended")
        r = await client.post(f"/admin/v1/sanctions/{sid}/lift", json={"reason": "done"}, headers=comp["headers"])
        assert r.status_code == 200
        assert (await live.send("after", to_user=bob["id"])).status == "accepted"
    finally:
        await live.close()
