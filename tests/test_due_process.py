"""Closed and sanctioned users are told, and can appeal (Art. 8), over HTTP and the
WebSocket, on SQLite and PostgreSQL.

A correct password on a closed account answers ``account_closed`` with an
appeal-only token (a wrong one answers like any wrong password); that token reads
the user's own sanctions and files an appeal, and every other route and the
WebSocket refuse it. Every sanction reaches the user with its kind, reason, end
and appeal deadline: a ``notice`` when online, and ``GET /api/v1/sanctions``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from imserver.client import Client
from imserver.domain.enums import Role

from .helpers import PASSWORD, operator, register
from .operator_helpers import audit_actions, impose


async def close(http, user, imposer, confirmer, reason: str = "fraud ring") -> int:
    r = await impose(http, imposer, user["id"], "close_account", reason=reason)
    sid = r.json()["id"]
    r = await http.post(f"/admin/v1/sanctions/{sid}/confirm", headers=confirmer["headers"])
    assert r.status_code == 200, r.text
    return sid


async def test_a_closed_user_signs_in_sees_the_closure_appeals_and_is_reopened(server, client):
    svc = server.services
    comps = [await operator(client, svc, Role.COMPLIANCE) for _ in range(4)]
    user = await register(client, verified=True)
    live = await Client.connect(server.ws_url, user["token"])
    try:
        sid = await close(client, user, comps[0], comps[1])
        # Online: told why before the socket closes.
        notice = await asyncio.wait_for(live.events.get(), 10)
        assert notice.kind == "sanction" and notice.data["sanction_kind"] == "close_account"
        assert notice.data["reason"] == "fraud ring" and notice.data["ends_at"] is None
        assert notice.data["appeal_deadline"] is not None
        assert await live.wait_closed() == 4003
    finally:
        await live.close()

    # A wrong password learns nothing: the same answer as for an unknown handle.
    wrong = await client.post("/api/v1/login", json={"handle": user["handle"], "password": "not the password"})
    unknown = await client.post("/api/v1/login", json={"handle": "nobody-here", "password": "not the password"})
    assert (wrong.status_code, wrong.json()) == (unknown.status_code, unknown.json())
    assert wrong.json()["code"] == "invalid_credentials" and "appeal_token" not in wrong.json()

    r = await client.post("/api/v1/login", json={"handle": user["handle"], "password": PASSWORD})
    assert (r.status_code, r.json()["code"]) == (403, "account_closed")
    appeal_token = r.json()["appeal_token"]
    appeal_headers = {"Authorization": f"Bearer {appeal_token}"}

    # The appeal token reads the user's own sanctions ...
    r = await client.get("/api/v1/sanctions", headers=appeal_headers)
    assert r.status_code == 200, r.text
    [mine] = r.json()
    assert (mine["id"], mine["kind"], mine["reason"], mine["status"]) == (
        sid,
        "close_account",
        "fraud ring",
        "in_effect",
    )
    assert mine["can_appeal"] is True and datetime.fromisoformat(mine["appeal_deadline"])
    # ... and nothing else: other routes and the WebSocket refuse it.
    for method, path, body in (
        ("GET", "/api/v1/me", None),
        ("PATCH", "/api/v1/me", {"nickname": "x"}),
        ("GET", "/api/v1/conversations", None),
        ("GET", "/api/v1/reports/mine", None),
        ("POST", "/api/v1/reports", {"target_kind": "account", "target_id": 1, "category": "other", "text": "x"}),
        ("GET", "/api/v1/public-accounts/mine", None),
    ):
        r = await client.request(method, path, json=body, headers=appeal_headers)
        assert (r.status_code, r.json()["code"]) == (401, "appeal_only_token"), (path, r.text)
    assert (await client.get("/admin/v1/whoami", headers=appeal_headers)).status_code == 401
    refused = Client(server.ws_url, appeal_token)
    with pytest.raises(Exception):  # noqa: B017 - no hello: the auth is refused
        await refused._open(5)
    assert (await asyncio.wait_for(refused.errors.get(), 5)).code == "appeal_only_token"
    await refused.close()

    # The user appeals with it; the appeal shows in their list.
    r = await client.post(f"/api/v1/sanctions/{sid}/appeal", json={"text": "I was hacked"}, headers=appeal_headers)
    assert r.status_code == 201, r.text
    appeal_id = r.json()["appeal_id"]
    r = await client.post(f"/api/v1/sanctions/{sid}/appeal", json={"text": "again"}, headers=appeal_headers)
    assert (r.status_code, r.json()["code"]) == (409, "appeal_exists")
    mine = (await client.get("/api/v1/sanctions", headers=appeal_headers)).json()[0]
    assert mine["appeal"]["id"] == appeal_id and mine["appeal"]["decision"] is None

    # Overturned by one compliance operator's proposal and a second one's confirmation.
    r = await client.post(
        f"/admin/v1/appeals/{appeal_id}/decision", json={"decision": "overturn"}, headers=comps[2]["headers"]
    )
    assert r.status_code == 200 and r.json()["decision"] is None
    r = await client.post(f"/admin/v1/sanctions/{sid}/confirm", headers=comps[3]["headers"])
    assert r.status_code == 200 and r.json()["ended_by"] == "overturned", r.text
    mine = (await client.get("/api/v1/sanctions", headers=appeal_headers)).json()[0]
    assert (mine["status"], mine["overruled"], mine["appeal"]["decision"]) == ("ended", True, "overturned")

    # Reopened: a full sign-in and a live socket again; the appeal token stays an appeal token.
    r = await client.post("/api/v1/login", json={"handle": user["handle"], "password": PASSWORD})
    assert r.status_code == 200, r.text
    live = await Client.connect(server.ws_url, r.json()["token"])
    try:
        assert (await live.ping()).type == "pong"
    finally:
        await live.close()
    assert (await client.get("/api/v1/me", headers=appeal_headers)).status_code == 401


async def test_appeal_only_token_on_the_websocket_gets_an_error_frame(server, client):
    comps = [await operator(client, server.services, Role.COMPLIANCE) for _ in range(2)]
    user = await register(client)
    await close(client, user, comps[0], comps[1])
    r = await client.post("/api/v1/login", json={"handle": user["handle"], "password": PASSWORD})
    token = r.json()["appeal_token"]
    live = Client(server.ws_url, token)
    with pytest.raises(Exception):  # noqa: B017 - no hello: the auth is refused
        await live._open(5)
    err = await asyncio.wait_for(live.errors.get(), 5)
    assert err.code == "appeal_only_token"
    assert await live.wait_closed() is not None
    await live.close()


async def test_bad_appeals_change_nothing(http, app):
    svc = app.state.services
    comps = [await operator(http, svc, Role.COMPLIANCE) for _ in range(2)]
    user, stranger = await register(http), await register(http)
    sid = await close(http, user, comps[0], comps[1])
    r = await http.post("/api/v1/login", json={"handle": user["handle"], "password": PASSWORD})
    appeal_headers = {"Authorization": f"Bearer {r.json()['appeal_token']}"}
    before = await audit_actions(svc, sid)
    # Someone else's sanction; an empty text; an unknown sanction.
    r = await http.post(f"/api/v1/sanctions/{sid}/appeal", json={"text": "mine?"}, headers=stranger["headers"])
    assert (r.status_code, r.json()["code"]) == (404, "sanction_not_found")
    r = await http.post(f"/api/v1/sanctions/{sid}/appeal", json={"text": "   "}, headers=appeal_headers)
    assert r.status_code == 422
    r = await http.post("/api/v1/sanctions/999999/appeal", json={"text": "x"}, headers=appeal_headers)
    assert (r.status_code, r.json()["code"]) == (404, "sanction_not_found")
    assert await audit_actions(svc, sid) == before
    assert (await http.get("/api/v1/sanctions", headers=appeal_headers)).json()[0]["appeal"] is None


async def test_a_sanction_on_a_public_account_reaches_its_owner(http, app):
    from .test_public_accounts import approved

    svc = app.state.services
    owner, account = await approved(http)
    mod = await operator(http, svc, Role.MODERATOR)
    body = {
        "subject_kind": "public_account",
        "subject_id": account["id"],
        "kind": "restrict_publication",
        "reason": "spam",
    }
    r = await http.post("/admin/v1/sanctions", json=body, headers=mod["headers"])
    assert r.status_code == 201, r.text
    [mine] = (await http.get("/api/v1/sanctions", headers=owner["headers"])).json()
    assert mine["subject"] == {"kind": "public_account", "id": account["id"]}
    assert (mine["kind"], mine["reason"]) == ("restrict_publication", "spam") and mine["ends_at"] is not None
    r = await http.post(f"/api/v1/sanctions/{mine['id']}/appeal", json={"text": "not spam"}, headers=owner["headers"])
    assert r.status_code == 201, r.text
