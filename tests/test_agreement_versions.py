"""Agreements in Chinese and English, with an effective time and a grace period (Art. 6 ¶2),
over HTTP and the WebSocket, on SQLite and PostgreSQL. Time is a FrozenClock.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from imserver.client import Client
from imserver.domain.clock import FrozenClock
from imserver.domain.enums import Role
from imserver.policy import baselines
from imserver.policy.baselines import DEFAULT_BASELINES

from .helpers import operator, register

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ZH_BASELINES = (
    "法律法规底线、社会主义制度底线、国家利益底线、公民合法权益底线、社会公共秩序底线、道德风尚底线、信息真实性底线"
)


def zh_text(leave_out: str | None = None) -> str:
    stated = "、".join(b.zh for b in DEFAULT_BASELINES if b.zh != leave_out)
    return f"即时通信服务使用协议（第二版）。用户承诺遵守{stated}。"


def en_text() -> str:
    return "Terms, version 2. The user commits to " + ", ".join(b.en for b in DEFAULT_BASELINES) + "."


@pytest.fixture
def clock():
    return FrozenClock(NOW)


async def publish(http, admin, text: str, **extra):
    return await http.post("/admin/v1/agreements", json={"text": text, **extra}, headers=admin["headers"])


def test_the_chinese_text_names_the_seven_baselines():
    assert zh_text() == f"即时通信服务使用协议（第二版）。用户承诺遵守{ZH_BASELINES}。"
    assert baselines.missing(zh_text()) == []
    assert baselines.missing(en_text()) == []
    assert [b.key for b in baselines.missing("")] == [b.key for b in DEFAULT_BASELINES]


def test_phrasings_are_configurable_per_baseline():
    custom = baselines.configured({"public_order": ["public peace", "社会秩序"]})
    assert [b.key for b in baselines.missing(en_text().replace("public order", "public peace"), custom)] == []
    assert [b.key for b in baselines.missing(en_text(), custom)] == ["public_order"]  # replaced, not added
    with pytest.raises(ValueError, match="unknown baselines"):
        baselines.configured({"kindness": ["be kind"]})
    with pytest.raises(ValueError, match="at least one"):
        baselines.configured({"public_order": ["  "]})


async def test_a_chinese_agreement_is_accepted(http, app):
    admin = await operator(http, app.state.services, Role.ADMIN)
    r = await publish(http, admin, zh_text())
    assert r.status_code == 201, r.text
    assert (await http.get("/api/v1/agreement")).json()["text"] == zh_text()


@pytest.mark.parametrize("baseline", [b.zh for b in DEFAULT_BASELINES])
async def test_a_chinese_agreement_missing_a_baseline_is_refused(http, app, baseline):
    admin = await operator(http, app.state.services, Role.ADMIN)
    before = (await http.get("/admin/v1/agreements", headers=admin["headers"])).json()
    r = await publish(http, admin, zh_text(leave_out=baseline))
    assert (r.status_code, r.json()["code"]) == (422, "agreement_baselines_missing")
    [gone] = r.json()["missing_baselines"]
    assert gone["zh"] == baseline and baseline in r.json()["detail"]
    assert (await http.get("/admin/v1/agreements", headers=admin["headers"])).json() == before


async def test_missing_truthfulness_in_chinese(http, app):
    admin = await operator(http, app.state.services, Role.ADMIN)
    r = await publish(http, admin, zh_text(leave_out="信息真实性底线"))
    assert r.status_code == 422
    assert r.json()["missing_baselines"] == [
        {"key": "truthfulness", "en": "truthfulness of information", "zh": "信息真实性底线"}
    ]


async def test_bad_schedules_are_refused(http, app):
    admin = await operator(http, app.state.services, Role.ADMIN)
    for extra in (
        {"effective_at": (NOW - timedelta(hours=1)).isoformat()},
        {"effective_at": "2026-12-02T00:00:00"},  # no zone
        {"grace_days": 91},
    ):
        r = await publish(http, admin, en_text(), **extra)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_period"), extra
    assert len((await http.get("/admin/v1/agreements", headers=admin["headers"])).json()) == 1


async def test_a_scheduled_version_with_a_grace_period(server, client, clock):
    admin = await operator(client, server.services, Role.ADMIN)
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    start = NOW + timedelta(days=1)
    r = await publish(client, admin, zh_text(), effective_at=start.isoformat(), grace_days=7)
    assert r.status_code == 201, r.text
    assert (await client.get("/api/v1/agreement")).json()["version"] == 1  # not in effect yet
    a = await Client.connect(server.ws_url, alice["token"])
    try:
        assert (await a.send("before", to_user=bob["id"])).status == "accepted"
    finally:
        await a.close()

    clock.advance(days=1)  # in effect, in its grace period
    current = (await client.get("/api/v1/agreement")).json()
    assert current["version"] == 2 and current["grace_until"] == (start + timedelta(days=7)).isoformat()
    a = await Client.connect(server.ws_url, alice["token"])
    try:
        notice = await asyncio.wait_for(a.events.get(), 10)
        assert notice.kind == "agreement_update"
        assert notice.data["version"] == 2 and notice.data["accepted_version"] == 1
        assert (await a.send("during grace", to_user=bob["id"])).status == "accepted"  # sending still works
    finally:
        await a.close()
    r = await client.post("/api/v1/agreement/accept", json={"version": 2}, headers=bob["headers"])
    assert r.status_code == 204

    clock.advance(days=7)  # the grace period is over: alice must accept first
    a = await Client.connect(server.ws_url, alice["token"])
    b = await Client.connect(server.ws_url, bob["token"])
    try:
        ack = await a.send("after grace", to_user=bob["id"])
        assert (ack.status, ack.reason) == ("rejected", "agreement_not_accepted")
        assert (await b.send("bob accepted", to_user=alice["id"])).status == "accepted"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(b.events.get(), 0.3)  # no notice for who accepted
    finally:
        await a.close()
        await b.close()
