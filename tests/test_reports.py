"""Public reports (Art. 5): filed over REST, worked by moderators, the reporter told; on both backends."""

from __future__ import annotations

import asyncio

from imserver.client import Client
from imserver.domain.enums import Role

from .helpers import operator, register
from .operator_helpers import audit_rows, impose, regulator_kinds


def gauge(metrics_text: str, name: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


async def test_a_report_flows_to_a_sanction_and_the_reporter_is_told(server, client):
    svc = server.services
    mod = await operator(client, svc, Role.MODERATOR)
    offender, reporter, outsider = await register(client, verified=True), await register(client), await register(client)
    sender = await Client.connect(server.ws_url, offender["token"])
    told = await Client.connect(server.ws_url, reporter["token"])
    try:
        ack = await sender.send("buy fake pills here", to_user=reporter["id"])
        msg_id = ack.message_id
        assert (await told.next_message()).message_id == msg_id
        # Someone who cannot read the message cannot report it (no probing of ids).
        r = await client.post(
            "/api/v1/reports",
            json={"target_kind": "message", "target_id": msg_id, "category": "fraud", "text": "?"},
            headers=outsider["headers"],
        )
        assert r.status_code == 404 and r.json()["code"] == "report_target_not_found"
        r = await client.post(
            "/api/v1/reports",
            json={"target_kind": "message", "target_id": msg_id, "category": "fraud", "text": "selling fakes"},
            headers=reporter["headers"],
        )
        assert r.status_code == 201, r.text
        report = r.json()
        assert report["status"] == "open"
        metrics = (await client.get("/metrics")).text
        assert gauge(metrics, "imserver_reports_open") == 1
        assert gauge(metrics, "imserver_reports_oldest_open_age_seconds") >= 0
        # The queue, oldest first; resolving before review is refused.
        queue = (await client.get("/admin/v1/reports", headers=mod["headers"])).json()["items"]
        assert [q["id"] for q in queue] == [report["id"]] and queue[0]["reporter_id"] == reporter["id"]
        r = await client.post(
            f"/admin/v1/reports/{report['id']}/resolve", json={"outcome": "dismissed"}, headers=mod["headers"]
        )
        assert r.status_code == 409 and r.json()["code"] == "report_state"
        r = await client.post(f"/admin/v1/reports/{report['id']}/assign", headers=mod["headers"])
        assert r.status_code == 200 and (r.json()["status"], r.json()["assignee_id"]) == ("in_review", mod["id"])
        # The moderator warns the offender, citing the report and the message.
        r = await impose(
            client, mod, offender["id"], "warning", evidence={"message_ids": [msg_id], "report_ids": [report["id"]]}
        )
        assert r.status_code == 201
        sid = r.json()["id"]
        r = await client.post(
            f"/admin/v1/reports/{report['id']}/resolve", json={"outcome": "actioned"}, headers=mod["headers"]
        )
        assert r.status_code == 422  # actioned names the sanction
        r = await client.post(
            f"/admin/v1/reports/{report['id']}/resolve",
            json={"outcome": "actioned", "sanction_id": sid, "note": "warned"},
            headers=mod["headers"],
        )
        assert r.status_code == 200, r.text
        resolved = r.json()
        assert (resolved["status"], resolved["sanction_id"]) == ("actioned", sid)
        assert resolved["time_to_resolution_seconds"] >= 0 and resolved["age_seconds"] is None
        # The offender got the warning; the reporter learns the outcome, live and later.
        warning = await asyncio.wait_for(sender.events.get(), 10)
        assert warning.kind == "warning" and warning.data["sanction_id"] == sid
        notice = await asyncio.wait_for(told.events.get(), 10)
        assert notice.kind == "report_resolved" and notice.data == {"report_id": report["id"], "outcome": "actioned"}
        mine = (await client.get("/api/v1/reports/mine", headers=reporter["headers"])).json()
        assert [(m["id"], m["status"]) for m in mine] == [(report["id"], "actioned")]
        assert "sanction_id" not in mine[0] and "assignee_id" not in mine[0]
        r = await client.post(f"/admin/v1/reports/{report['id']}/assign", headers=mod["headers"])
        assert r.status_code == 409 and r.json()["code"] == "report_state"
        metrics = (await client.get("/metrics")).text
        assert gauge(metrics, "imserver_reports_open") == 0
        assert gauge(metrics, "imserver_reports_oldest_open_age_seconds") == 0
        actions = [r["action"] for r in await audit_rows(svc)]
        for action in ("report.file", "report.assign", "sanction.impose", "report.resolve"):
            assert actions.count(action) == 1, action
        # The report that led to the measure is reported with it.
        assert await regulator_kinds(svc, sid) == ["sanction_imposed", "report_actioned"]
    finally:
        await sender.close()
        await told.close()


async def test_report_accounts_and_bad_reports(http, app):
    svc = app.state.services
    mod = await operator(http, svc, Role.MODERATOR)
    comp = await operator(http, svc, Role.COMPLIANCE)
    alice, bob = await register(http), await register(http)
    base = {"target_kind": "account", "target_id": bob["id"], "category": "rumour", "text": "spreads rumours"}
    bad = [
        ({**base, "category": "rude"}, 422, "malformed"),
        ({**base, "target_kind": "planet"}, 422, "malformed"),
        ({**base, "text": ""}, 422, "malformed"),
        ({**base, "target_id": 999_999}, 404, "report_target_not_found"),
        ({**base, "target_kind": "message", "target_id": 999_999}, 404, "report_target_not_found"),
        ({**base, "target_kind": "post", "target_id": 1}, 404, "report_target_not_found"),  # no posts yet
    ]
    for body, status, code in bad:
        r = await http.post("/api/v1/reports", json=body, headers=alice["headers"])
        assert (r.status_code, r.json()["code"]) == (status, code), body
    assert (await http.post("/api/v1/reports", json=base)).status_code == 401
    r = await http.post("/api/v1/reports", json=base, headers=alice["headers"])
    assert r.status_code == 201
    rid = r.json()["id"]
    assert (await http.get("/admin/v1/reports", headers=comp["headers"])).status_code == 403  # moderators' queue
    r = await http.post(f"/admin/v1/reports/{rid}/assign", json={"assignee_id": comp["id"]}, headers=mod["headers"])
    assert r.status_code == 404  # only a moderator can be assigned
    mod2 = await operator(http, svc, Role.MODERATOR)
    r = await http.post(f"/admin/v1/reports/{rid}/assign", json={"assignee_id": mod2["id"]}, headers=mod["headers"])
    assert r.status_code == 200 and r.json()["assignee_id"] == mod2["id"]
    r = await http.post(
        f"/admin/v1/reports/{rid}/resolve", json={"outcome": "dismissed", "sanction_id": 1}, headers=mod2["headers"]
    )
    assert r.status_code == 422
    r = await http.post(f"/admin/v1/reports/{rid}/resolve", json={"outcome": "dismissed"}, headers=mod2["headers"])
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    assert (await http.get("/admin/v1/reports", headers=mod["headers"])).json()["items"] == []
    done = (await http.get("/admin/v1/reports?status=dismissed", headers=mod["headers"])).json()["items"]
    assert [d["id"] for d in done] == [rid]
    assert (await http.get("/admin/v1/reports/999999", headers=mod["headers"])).json()["code"] == "report_not_found"
