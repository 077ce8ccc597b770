"""Evidence that holds up and reports that do (Art. 5, Art. 8), over HTTP and the
WebSocket, on SQLite and PostgreSQL.

Evidence must be about the subject sanctioned; nobody reports themselves; a
reporter is rate-limited; reports on one open target join one queue item whose
reporters are each told the outcome; an overturned measure shows on the report;
a post is reportable by anyone who can read it. Every refusal changes nothing.
"""

from __future__ import annotations

import asyncio

import pytest

from imserver.client import Client
from imserver.domain.enums import Role

from .helpers import operator, register
from .operator_helpers import audit_rows, impose
from .test_public_accounts import approved, follow, post

RATE_LIMIT = 4  # reports per window in this module


@pytest.fixture
def settings(settings):
    settings.report_rate_limit = RATE_LIMIT
    settings.report_rate_window_seconds = 3600
    return settings


def report_body(kind: str, target_id: int, text: str = "please look") -> dict:
    return {"target_kind": kind, "target_id": target_id, "category": "harmful", "text": text}


async def file(http, user, kind: str, target_id: int, **extra):
    return await http.post("/api/v1/reports", json={**report_body(kind, target_id), **extra}, headers=user["headers"])


async def test_evidence_must_be_about_the_subject(server, client):
    svc = server.services
    mod = await operator(client, svc, Role.MODERATOR)
    offender, reporter = await register(client, verified=True), await register(client, verified=True)
    live_o = await Client.connect(server.ws_url, offender["token"])
    live_r = await Client.connect(server.ws_url, reporter["token"])
    try:
        theirs = (await live_o.send("abuse", to_user=reporter["id"])).message_id
        mine = (await live_r.send("stop it", to_user=offender["id"])).message_id
    finally:
        await live_o.close()
        await live_r.close()
    about_offender = (await file(client, reporter, "message", theirs)).json()["id"]
    about_reporter = (await file(client, offender, "account", reporter["id"])).json()["id"]
    before = len(await audit_rows(svc))
    # A sanction on the reporter citing the offender's message or a report about the offender.
    for evidence in ({"message_ids": [theirs]}, {"report_ids": [about_offender]}, {"message_ids": [mine, theirs]}):
        r = await impose(client, mod, reporter["id"], "warning", evidence=evidence)
        assert (r.status_code, r.json()["code"]) == (422, "evidence_not_of_subject"), r.text
    r = await impose(client, mod, reporter["id"], "warning", evidence={"message_ids": [theirs + 1000]})
    assert (r.status_code, r.json()["code"]) == (422, "evidence_not_found")
    assert len(await audit_rows(svc)) == before  # nothing recorded, not even the refused attempt
    h = (await client.get(f"/admin/v1/subjects/user/{reporter['id']}/sanctions", headers=mod["headers"])).json()
    assert h["sanctions"] == []
    # Evidence about the subject is accepted.
    r = await impose(
        client, mod, offender["id"], "warning", evidence={"message_ids": [theirs], "report_ids": [about_offender]}
    )
    assert r.status_code == 201, r.text
    r = await impose(client, mod, reporter["id"], "warning", evidence={"report_ids": [about_reporter]})
    assert r.status_code == 201, r.text


async def test_post_evidence_belongs_to_its_account_and_owner(http, app):
    mod = await operator(http, app.state.services, Role.MODERATOR)
    owner, account = await approved(http)
    other_owner, other = await approved(http)
    pid = (await post(http, owner, account["id"])).json()["post_id"]
    other_pid = (await post(http, other_owner, other["id"])).json()["post_id"]
    for subject_kind, subject_id in (("public_account", account["id"]), ("user", owner["id"])):
        body = {"subject_kind": subject_kind, "subject_id": subject_id, "kind": "warning", "reason": "x"}
        r = await http.post(
            "/admin/v1/sanctions", json={**body, "evidence": {"post_ids": [other_pid]}}, headers=mod["headers"]
        )
        assert (r.status_code, r.json()["code"]) == (422, "evidence_not_of_subject")
        r = await http.post(
            "/admin/v1/sanctions", json={**body, "evidence": {"post_ids": [pid]}}, headers=mod["headers"]
        )
        assert r.status_code == 201, r.text


async def test_no_self_reports_and_a_rate_limit(server, client):
    svc = server.services
    user, other = await register(client, verified=True), await register(client, verified=True)
    live = await Client.connect(server.ws_url, user["token"])
    try:
        own_msg = (await live.send("my words", to_user=other["id"])).message_id
    finally:
        await live.close()
    before = len(await audit_rows(svc))
    for kind, target in (("message", own_msg), ("account", user["id"])):
        r = await file(client, user, kind, target)
        assert (r.status_code, r.json()["code"]) == (422, "self_report"), kind
    assert len(await audit_rows(svc)) == before
    targets = [await register(client) for _ in range(RATE_LIMIT + 1)]
    for t in targets[:RATE_LIMIT]:
        assert (await file(client, user, "account", t["id"])).status_code == 201
    r = await file(client, user, "account", targets[-1]["id"])
    assert (r.status_code, r.json()["code"]) == (429, "report_rate_limited")
    assert r.json()["retry_after"] > 0
    mine = (await client.get("/api/v1/reports/mine", headers=user["headers"])).json()
    assert len(mine) == RATE_LIMIT  # the refused one was not stored
    # Another user is not limited by this one's reports.
    assert (await file(client, other, "account", targets[-1]["id"])).status_code == 201


async def test_reports_on_one_target_join_and_every_reporter_is_told(server, client):
    svc = server.services
    mod = await operator(client, svc, Role.MODERATOR)
    comp, comp2 = await operator(client, svc, Role.COMPLIANCE), await operator(client, svc, Role.COMPLIANCE)
    offender = await register(client)
    reporters = [await register(client) for _ in range(3)]
    ids = []
    for r_ in reporters:
        r = await file(client, r_, "account", offender["id"])
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    mine = [(await client.get("/api/v1/reports/mine", headers=x["headers"])).json()[0] for x in reporters]
    assert [m["joined"] for m in mine] == [False, True, True]
    # The same reporter again while it is open: refused, nothing stored.
    r = await file(client, reporters[1], "account", offender["id"])
    assert (r.status_code, r.json()["code"]) == (409, "report_exists")
    queue = (await client.get("/admin/v1/reports", headers=mod["headers"])).json()["items"]
    assert [q["id"] for q in queue] == [ids[0]]
    assert queue[0]["report_count"] == 3 and queue[0]["reporters"] == [r_["id"] for r_ in reporters]
    # A joined report is not a queue item of its own.
    r = await client.post(f"/admin/v1/reports/{ids[1]}/assign", headers=mod["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "report_state")
    assert (await client.post(f"/admin/v1/reports/{ids[0]}/assign", headers=mod["headers"])).status_code == 200
    sid = (await impose(client, comp, offender["id"], "suspend_updates", evidence={"report_ids": ids})).json()["id"]
    lives = [await Client.connect(server.ws_url, x["token"]) for x in reporters]
    try:
        r = await client.post(
            f"/admin/v1/reports/{ids[0]}/resolve",
            json={"outcome": "actioned", "sanction_id": sid},
            headers=mod["headers"],
        )
        assert r.status_code == 200, r.text
        for live, rid in zip(lives, ids, strict=True):
            notice = await asyncio.wait_for(live.events.get(), 10)
            assert notice.kind == "report_resolved" and notice.data == {"report_id": rid, "outcome": "actioned"}
    finally:
        for live in lives:
            await live.close()
    for x in reporters:
        [m] = (await client.get("/api/v1/reports/mine", headers=x["headers"])).json()
        assert (m["status"], m["sanction_overturned"]) == ("actioned", False)
    # A new report on the same target after the item closed starts a new item.
    late = await register(client)
    r = await file(client, late, "account", offender["id"])
    assert r.json()["joined"] is False

    # The measure is overturned on appeal: the report shows it, to moderators and reporters.
    appeal = await client.post(f"/api/v1/sanctions/{sid}/appeal", json={"text": "no"}, headers=offender["headers"])
    r = await client.post(
        f"/admin/v1/appeals/{appeal.json()['appeal_id']}/decision",
        json={"decision": "overturn"},
        headers=comp2["headers"],
    )
    assert r.json()["decision"] == "overturned"
    item = (await client.get(f"/admin/v1/reports/{ids[0]}", headers=mod["headers"])).json()
    assert item["sanction_overturned"] is True and item["status"] == "actioned"
    for x in reporters:
        [m] = (await client.get("/api/v1/reports/mine", headers=x["headers"])).json()
        assert m["sanction_overturned"] is True


async def test_a_post_is_reportable_by_anyone_who_can_read_it(http, app):
    owner, account = await approved(http)
    follower, stranger = await register(http), await register(http)
    await follow(http, follower, account["id"])
    pid = (await post(http, owner, account["id"])).json()["post_id"]
    for who in (follower, stranger):  # an approved account's posts are public
        r = await file(http, who, "post", pid)
        assert r.status_code == 201, r.text
    r = await file(http, owner, "post", pid)
    assert (r.status_code, r.json()["code"]) == (422, "self_report")
    mod = await operator(http, app.state.services, Role.MODERATOR)
    queue = (await http.get("/admin/v1/reports", headers=mod["headers"])).json()["items"]
    assert [(q["target"], q["report_count"]) for q in queue] == [({"kind": "post", "id": pid}, 2)]
    # A taken-down post is no longer there to report.
    r = await http.post(f"/admin/v1/posts/{pid}/takedown", json={"reason": "reported"}, headers=mod["headers"])
    assert r.status_code == 200, r.text
    r = await file(http, await register(http), "post", pid)
    assert (r.status_code, r.json()["code"]) == (404, "report_target_not_found")


async def test_concurrent_reports_on_one_target_make_one_item(http, app):
    """Filed at the same moment, they still join: one queue item, every reporter counted."""
    mod = await operator(http, app.state.services, Role.MODERATOR)
    target = await register(http)
    reporters = [await register(http) for _ in range(6)]
    results = await asyncio.gather(*(file(http, r, "account", target["id"]) for r in reporters))
    assert [r.status_code for r in results] == [201] * len(reporters)
    queue = (await http.get("/admin/v1/reports", headers=mod["headers"])).json()["items"]
    assert [(q["target"]["id"], q["report_count"]) for q in queue] == [(target["id"], len(reporters))]
