"""Four eyes where a closure is undone (Art. 8): lifting a closure and overturning one on
appeal are proposals that a second compliance operator (neither the proposer nor the
one who imposed it, nor for an overturn its confirmer) confirms or declines.
Refused attempts change nothing and leave no act behind. SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio

import pytest

from imserver.client import Client
from imserver.domain.enums import Role

from .helpers import PASSWORD, operator, register
from .operator_helpers import audit_actions, impose, regulator_kinds


@pytest.fixture
async def comps(http, app):
    svc = app.state.services
    return [await operator(http, svc, Role.COMPLIANCE) for _ in range(5)]


async def closed_user(http, comps) -> tuple[dict, int]:
    user = await register(http)
    sid = (await impose(http, comps[0], user["id"], "close_account")).json()["id"]
    r = await http.post(f"/admin/v1/sanctions/{sid}/confirm", headers=comps[1]["headers"])
    assert r.status_code == 200, r.text
    return user, sid


async def login_code(http, user) -> int:
    r = await http.post("/api/v1/login", json={"handle": user["handle"], "password": PASSWORD})
    return r.status_code


async def test_lifting_a_closure_needs_a_second_operator(http, app, comps):
    svc = app.state.services
    user, sid = await closed_user(http, comps)
    r = await http.post(f"/admin/v1/sanctions/{sid}/lift", json={"reason": "wrong person"}, headers=comps[0]["headers"])
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["status"], s["ended_by"]) == ("in_effect", None)
    assert s["pending"]["act"] == "lift" and s["pending"]["proposed_by"] == comps[0]["id"]
    assert await login_code(http, user) == 403  # still closed
    listed = (await http.get("/admin/v1/sanctions/awaiting-confirmation", headers=comps[2]["headers"])).json()
    assert [x["id"] for x in listed] == [sid]
    before = await audit_actions(svc, sid)
    # A second proposal, the proposer (also the imposer) and a moderator: refused, nothing recorded.
    r = await http.post(f"/admin/v1/sanctions/{sid}/lift", json={"reason": "again"}, headers=comps[2]["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "sanction_state")
    r = await http.post(f"/admin/v1/sanctions/{sid}/confirm", headers=comps[0]["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "same_operator")
    mod = await operator(http, svc, Role.MODERATOR)
    assert (await http.post(f"/admin/v1/sanctions/{sid}/confirm", headers=mod["headers"])).status_code == 403
    assert await audit_actions(svc, sid) == before
    assert await regulator_kinds(svc, sid) == ["sanction_imposed", "sanction_confirmed"]
    # The closure's confirmer is neither proposer nor imposer: they may confirm the lift.
    r = await http.post(f"/admin/v1/sanctions/{sid}/confirm", headers=comps[1]["headers"])
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["status"], s["ended_by"], s["pending"]) == ("ended", "lifted", None)
    assert s["events"][-1]["operator_id"] == comps[1]["id"] and s["events"][-1]["note"] == "wrong person"
    assert await login_code(http, user) == 200
    assert await audit_actions(svc, sid) == [
        "sanction.impose",
        "sanction.confirm",
        "sanction.lift_pending",
        "sanction.lift",
    ]
    assert await regulator_kinds(svc, sid) == ["sanction_imposed", "sanction_confirmed", "sanction_lifted"]


async def test_the_imposer_cannot_confirm_a_lift_someone_else_proposed(http, app, comps):
    user, sid = await closed_user(http, comps)
    r = await http.post(f"/admin/v1/sanctions/{sid}/lift", json={"reason": "x"}, headers=comps[2]["headers"])
    assert r.status_code == 200
    r = await http.post(f"/admin/v1/sanctions/{sid}/confirm", headers=comps[0]["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "same_operator")
    r = await http.post(f"/admin/v1/sanctions/{sid}/confirm", headers=comps[2]["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "same_operator")
    # Declined by a second operator: the closure stands and a new proposal may follow.
    r = await http.post(f"/admin/v1/sanctions/{sid}/decline", json={"note": "no"}, headers=comps[0]["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "same_operator")
    r = await http.post(f"/admin/v1/sanctions/{sid}/decline", json={"note": "no"}, headers=comps[3]["headers"])
    assert r.status_code == 200 and r.json()["pending"] is None and r.json()["status"] == "in_effect"
    assert await login_code(http, user) == 403
    r = await http.post(f"/admin/v1/sanctions/{sid}/decline", json={"note": "no"}, headers=comps[3]["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "sanction_state")
    r = await http.post(f"/admin/v1/sanctions/{sid}/lift", json={"reason": "now"}, headers=comps[2]["headers"])
    assert r.status_code == 200 and r.json()["pending"]["act"] == "lift"


async def test_milder_measures_are_lifted_by_one_operator(http, app, comps):
    user = await register(http)
    sid = (await impose(http, comps[0], user["id"], "suspend_updates")).json()["id"]
    r = await http.post(f"/admin/v1/sanctions/{sid}/lift", json={"reason": "served"}, headers=comps[0]["headers"])
    assert r.status_code == 200 and r.json()["ended_by"] == "lifted"


async def test_overturning_a_closure_on_appeal_needs_a_second_operator(server, client):
    svc = server.services
    comps = [await operator(client, svc, Role.COMPLIANCE) for _ in range(4)]
    user, sid = await closed_user(client, comps)
    appeal_id = await appeal_as_closed_user(client, user, sid)
    r = await client.post(
        f"/admin/v1/appeals/{appeal_id}/decision",
        json={"decision": "overturn", "note": "evidence was another user's"},
        headers=comps[2]["headers"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["decision"] is None and r.json()["sanction"]["pending"]["act"] == "overturn"
    assert await login_code(client, user) == 403
    # Deciding again while the proposal waits is a state error; the imposer, the confirmer and
    # the proposer cannot confirm.
    r = await client.post(
        f"/admin/v1/appeals/{appeal_id}/decision", json={"decision": "uphold"}, headers=comps[3]["headers"]
    )
    assert (r.status_code, r.json()["code"]) == (409, "sanction_state")
    for who in comps[:3]:
        r = await client.post(f"/admin/v1/sanctions/{sid}/confirm", headers=who["headers"])
        assert (r.status_code, r.json()["code"]) == (403, "same_operator")
    assert await regulator_kinds(svc, sid) == ["sanction_imposed", "sanction_confirmed"]
    r = await client.post(f"/admin/v1/sanctions/{sid}/confirm", headers=comps[3]["headers"])
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["ended_by"], s["overruled"], s["appeal"]["decision"]) == ("overturned", True, "overturned")
    assert s["appeal"]["decided_by"] == comps[3]["id"]
    assert await regulator_kinds(svc, sid) == ["sanction_imposed", "sanction_confirmed", "sanction_overturned"]
    # Signed in again; the user's own list shows the overturn.
    r = await client.post("/api/v1/login", json={"handle": user["handle"], "password": PASSWORD})
    assert r.status_code == 200
    token = r.json()["token"]
    live = await Client.connect(server.ws_url, token)
    try:
        assert (await live.ping()).type == "pong"
    finally:
        await live.close()
    mine = (await client.get("/api/v1/sanctions", headers={"Authorization": f"Bearer {token}"})).json()
    assert [(m["id"], m["ended_by"], m["appeal"]["decision"]) for m in mine] == [(sid, "overturned", "overturned")]


async def appeal_as_closed_user(http, user, sid) -> int:
    """A closed user signs in (account_closed, with an appeal token) and appeals."""
    r = await http.post("/api/v1/login", json={"handle": user["handle"], "password": PASSWORD})
    assert (r.status_code, r.json()["code"]) == (403, "account_closed"), r.text
    headers = {"Authorization": f"Bearer {r.json()['appeal_token']}"}
    r = await http.post(f"/api/v1/sanctions/{sid}/appeal", json={"text": "it was not me"}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["appeal_id"]


async def test_overturning_a_restriction_takes_one_operator_and_tells_the_user(server, client):
    """Only the measures the ladder names need four eyes; the user hears the decision live."""
    svc = server.services
    comps = [await operator(client, svc, Role.COMPLIANCE) for _ in range(4)]
    mod = await operator(client, svc, Role.MODERATOR)
    user = await register(client)
    live = await Client.connect(server.ws_url, user["token"])
    try:
        sid = (await impose(client, mod, user["id"], "restrict_publication")).json()["id"]
        notice = await asyncio.wait_for(live.events.get(), 10)
        assert notice.kind == "sanction" and notice.data["sanction_id"] == sid
        r = await client.post(f"/api/v1/sanctions/{sid}/appeal", json={"text": "please"}, headers=user["headers"])
        assert r.status_code == 201
        r = await client.post(
            f"/admin/v1/appeals/{r.json()['appeal_id']}/decision",
            json={"decision": "overturn"},
            headers=comps[0]["headers"],
        )
        # A restriction needs no second operator: decided at once, and the user told.
        assert r.json()["decision"] == "overturned"
        notice = await asyncio.wait_for(live.events.get(), 10)
        assert notice.kind == "appeal_decided" and notice.data["decision"] == "overturned"
    finally:
        await live.close()
