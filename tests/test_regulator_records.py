"""Regulator records complete (Art. 8 "store relevant records ... reporting the matter"):
appeal outcomes, reports that led to a measure and public-account filings appear in the
export, name their subject, carry only the identity's reference, and exports mark what
they delivered. The HTTP export takes the CLI's arguments. SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from imserver.domain.enums import Role

from .helpers import operator, register
from .operator_helpers import impose, jsonl
from .test_public_accounts import approved, ops

ZONE = "Asia/Shanghai"


@pytest.fixture
def settings(settings):
    settings.local_timezone = ZONE
    settings.rate_posts_burst = 100_000
    return settings


async def export(http, comp, **params) -> list[dict]:
    r = await http.get(
        "/admin/v1/regulator/sanctions", params={"since": "2000-01-01", **params}, headers=comp["headers"]
    )
    assert r.status_code == 200, r.text
    return jsonl(r.text)


async def test_appeal_report_and_filing_records_are_exported(http, app):
    svc = app.state.services
    mod = await operator(http, svc, Role.MODERATOR)
    comp, comp2 = await operator(http, svc, Role.COMPLIANCE), await operator(http, svc, Role.COMPLIANCE)
    offender = await register(http, verified=True)
    reporter = await register(http)
    # A report that leads to a measure, which is appealed and upheld.
    rid = (
        await http.post(
            "/api/v1/reports",
            json={"target_kind": "account", "target_id": offender["id"], "category": "fraud", "text": "scam"},
            headers=reporter["headers"],
        )
    ).json()["id"]
    await http.post(f"/admin/v1/reports/{rid}/assign", headers=mod["headers"])
    sid = (await impose(http, mod, offender["id"], "restrict_publication", evidence={"report_ids": [rid]})).json()["id"]
    r = await http.post(
        f"/admin/v1/reports/{rid}/resolve", json={"outcome": "actioned", "sanction_id": sid}, headers=mod["headers"]
    )
    assert r.status_code == 200, r.text
    appeal = await http.post(f"/api/v1/sanctions/{sid}/appeal", json={"text": "no"}, headers=offender["headers"])
    r = await http.post(
        f"/admin/v1/appeals/{appeal.json()['appeal_id']}/decision",
        json={"decision": "uphold", "note": "evidence holds"},
        headers=comp["headers"],
    )
    assert r.json()["decision"] == "upheld"
    # A public account filed, re-filed after a change, closed and reopened.
    owner, account = await approved(http, "enterprise", name="Records Tea")
    reviewer = (await ops(http))[Role.REVIEWER]
    await http.patch(
        f"/api/v1/public-accounts/{account['id']}", json={"name": "Records Tea 2"}, headers=owner["headers"]
    )
    (change,) = (await http.get("/admin/v1/public-accounts/changes", headers=reviewer["headers"])).json()["items"]
    await http.post(
        f"/admin/v1/public-accounts/changes/{change['change_id']}/review",
        json={"decision": "approve", "reason": "ok"},
        headers=reviewer["headers"],
    )
    body = {"subject_kind": "public_account", "subject_id": account["id"], "kind": "close_account", "reason": "x"}
    closure = (await http.post("/admin/v1/sanctions", json=body, headers=comp["headers"])).json()["id"]
    assert (await http.post(f"/admin/v1/sanctions/{closure}/confirm", headers=comp2["headers"])).status_code == 200
    await http.post(f"/admin/v1/sanctions/{closure}/lift", json={"reason": "fixed"}, headers=comp["headers"])
    third = await operator(http, svc, Role.COMPLIANCE)
    assert (await http.post(f"/admin/v1/sanctions/{closure}/confirm", headers=third["headers"])).status_code == 200

    records = await export(http, comp)
    kinds = [x["record_kind"] for x in records]
    wanted = (
        "report_actioned",
        "sanction_upheld",
        "filing_filed",
        "filing_refiled",
        "filing_closed",
        "filing_reopened",
    )
    for kind in wanted:
        assert kind in kinds, kind
    upheld = next(x for x in records if x["record_kind"] == "sanction_upheld")
    assert upheld["appeal"]["decision"] == "upheld" and upheld["appeal"]["note"] == "evidence holds"
    subject = upheld["sanction"]["subject"]
    assert (subject["id"], subject["handle"]) == (offender["id"], offender["handle"])
    assert isinstance(subject["identity_ref"], int)  # the reference, not the identity
    report = next(x for x in records if x["record_kind"] == "report_actioned")
    assert report["report"]["id"] == rid and report["sanction"]["id"] == sid
    filed = [x for x in records if x["record_kind"].startswith("filing_")]
    assert [x["record_kind"] for x in filed] == ["filing_filed", "filing_refiled", "filing_closed", "filing_reopened"]
    assert filed[1]["filing"]["account_name"] == "Records Tea 2"
    assert filed[0]["subject"]["owner"]["handle"] == owner["handle"]
    # The identity itself (legal name, ID number, phone) is never in the export.
    params = {"since": "2000-01-01", "format": "csv"}
    text = (await http.get("/admin/v1/regulator/sanctions", params=params, headers=comp["headers"])).text
    assert "张三" not in text and "13812345678" not in text
    # The compliance role reads the identity behind the reference on request (an audited read).
    r = await http.get(f"/admin/v1/users/{offender['id']}/identity", params={"full": "true"}, headers=comp["headers"])
    assert r.status_code == 200 and r.json()["identity_id"] == subject["identity_ref"]
    assert r.json()["legal_name"] == "张三"


async def test_exports_mark_what_they_delivered_and_read_zoneless_times_locally(http, app):
    svc = app.state.services
    mod, comp = await operator(http, svc, Role.MODERATOR), await operator(http, svc, Role.COMPLIANCE)
    user = await register(http)
    await impose(http, mod, user["id"], "warning")
    status = (await http.get("/admin/v1/regulator/outbox", headers=comp["headers"])).json()
    assert status["unexported"] == 1
    # No zone: read in Asia/Shanghai. An hour ago there is before the record (read as UTC, it
    # would be seven hours ahead and the first export below would hold the record).
    local_now = datetime.now(UTC).astimezone(ZoneInfo(ZONE)).replace(tzinfo=None)
    before = (local_now - timedelta(hours=1)).isoformat(timespec="seconds")
    assert await export(http, comp, until=before) == []
    assert (await http.get("/admin/v1/regulator/outbox", headers=comp["headers"])).json()["unexported"] == 1
    r = await http.get("/admin/v1/regulator/sanctions", params={"since": before}, headers=comp["headers"])
    assert r.status_code == 200 and r.headers["x-first-delivered"] == "1"  # `until` omitted: now
    assert [x["record_kind"] for x in jsonl(r.text)] == ["sanction_imposed"]
    assert (await http.get("/admin/v1/regulator/outbox", headers=comp["headers"])).json()["unexported"] == 0
    r = await http.get("/admin/v1/regulator/sanctions", params={"since": before}, headers=comp["headers"])
    assert r.headers["x-first-delivered"] == "0" and r.headers["x-record-count"] == "1"
    # Bad times are refused with their own code.
    r = await http.get("/admin/v1/regulator/sanctions", params={"since": "yesterday"}, headers=comp["headers"])
    assert (r.status_code, r.json()["code"]) == (422, "invalid_period")
