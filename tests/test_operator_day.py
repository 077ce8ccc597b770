"""The operator's day, played through the public APIs only, on both backends.

Users register, verify, apply for a public account, message and report over
the user API and the WebSocket; operators then work only from what the admin
API tells them: no id, table or service is reached around it. Each operator
call is counted per task, and the counts must be the ones docs/admin_api.md
gives for the day (the doc cannot drift from what the day takes).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from imserver.client import Client
from imserver.domain.enums import Role

from .helpers import PASSWORD, register
from .identity_helpers import submit
from .operator_helpers import jsonl

DOC = Path(__file__).resolve().parents[1] / "docs" / "admin_api.md"


class Day:
    """An operator's HTTP calls, counted per task of the day."""

    def __init__(self, http) -> None:
        self.http = http
        self.calls: Counter = Counter()
        self.task = ""

    async def call(self, method: str, path: str, who: dict | None = None, *, ok: int = 200, **kwargs):
        self.calls[self.task] += 1
        headers = who["headers"] if who else {}
        r = await self.http.request(method, path, headers=headers, **kwargs)
        assert r.status_code == ok, (self.task, method, path, r.status_code, r.text)
        return r

    async def sign_in(self, handle: str) -> dict:
        r = await self.call("POST", "/admin/v1/login", json={"handle": handle, "password": PASSWORD})
        return {"id": r.json()["operator_id"], "headers": {"Authorization": f"Bearer {r.json()['token']}"}}


def documented_calls() -> dict[str, int]:
    """The `| task | calls |` rows of the day's table in docs/admin_api.md."""
    rows = re.findall(r"^\| (\d+)\. ([^|]+?) \| (\d+) \|", DOC.read_text(), flags=re.M)
    return {task.strip(): int(calls) for _, task, calls in rows}


async def test_an_operators_day_from_a_report_to_a_sanction_and_its_regulator_record(server, client):
    svc = server.services
    # The team exists (two admins made by `imserver operator create`, the rest by one admin over the API;
    # the compliance operators are confirmed by the other admin: four eyes on privileged grants).
    for handle in ("chief", "deputy"):
        await svc.accounts.create_operator(handle=handle, password=PASSWORD, role=Role.ADMIN, created_by=None)
    day = Day(client)

    day.task = "Sign in and build the team"
    chief = await day.sign_in("chief")
    deputy = await day.sign_in("deputy")
    for handle, roles in (
        ("rita", ["reviewer"]),
        ("moss", ["moderator"]),
        ("cora", ["compliance"]),
        ("cole", ["compliance"]),
    ):
        made = await day.call(
            "POST", "/admin/v1/operators", chief, ok=201, json={"handle": handle, "password": PASSWORD, "roles": roles}
        )
        if made.json()["awaiting_confirmation"]:
            await day.call("POST", f"/admin/v1/operators/{made.json()['id']}/confirm", deputy)
    rita, mo, cora, cole = [await day.sign_in(h) for h in ("rita", "moss", "cora", "cole")]

    # Users: two register and submit identities; one applies for a public account.
    offender = await register(client, "spammer", "Spam King")
    victim = await register(client, "vera", "Vera V")
    for user in (offender, victim):
        assert (await submit(client, user)).status_code == 201

    day.task = "Identity review"
    queue = (await day.call("GET", "/admin/v1/identity/pending", rita)).json()
    assert [i["handle"] for i in queue["items"]] == ["spammer", "vera"] and queue["total"] == 2
    for item in queue["items"]:
        await day.call("POST", f"/admin/v1/identity/{item['identity_id']}/review", rita, json={"decision": "approve"})

    r = await client.post(
        "/api/v1/public-accounts",
        json={"name": "Vera Bakes", "description": "bread", "category": "individual", "province": "31"},
        headers=victim["headers"],
    )
    assert r.status_code == 201, r.text

    day.task = "Public-account review"
    apps = (await day.call("GET", "/admin/v1/public-accounts", rita, params={"status": "pending"})).json()
    [application] = apps["items"]
    await day.call("GET", f"/admin/v1/public-accounts/{application['id']}", rita)
    await day.call(
        "POST", f"/admin/v1/public-accounts/{application['id']}/review", rita, json={"decision": "approve", "reason": "complete"}
    )

    # The offender messages the victim; the victim reports the message.
    sender = await Client.connect(server.ws_url, offender["token"])
    try:
        ack = await sender.send("cheap pills, wire money now", to_user=victim["id"])
    finally:
        await sender.close()
    r = await client.post(
        "/api/v1/reports",
        json={"target_kind": "message", "target_id": ack.message_id, "category": "fraud", "text": "a scam"},
        headers=victim["headers"],
    )
    assert r.status_code == 201

    day.task = "Report to sanction"
    reports = (await day.call("GET", "/admin/v1/reports", mo, params={"category": "fraud"})).json()
    [queued] = reports["items"]
    detail = (await day.call("GET", f"/admin/v1/reports/{queued['id']}", mo)).json()
    content = detail["target_content"]
    assert content["body"] == "cheap pills, wire money now" and content["author"]["handle"] == "spammer"
    context = (await day.call("GET", f"/admin/v1/messages/{content['id']}", mo, params={"context": 5})).json()
    assert context["conversation"]["kind"] == "direct"
    dossier = (await day.call("GET", f"/admin/v1/users/{content['author']['id']}", mo)).json()
    assert dossier["strikes"] == 0 and dossier["reports_against"]["total"] == 1
    await day.call("POST", f"/admin/v1/reports/{queued['id']}/assign", mo)
    sanction = (
        await day.call(
            "POST",
            "/admin/v1/sanctions",
            mo,
            ok=201,
            json={
                "subject_id": content["author"]["id"],
                "kind": "restrict_publication",
                "reason": "fraudulent offers",
                "duration_seconds": 7 * 24 * 3600,
                "evidence": {"message_ids": [content["id"]], "report_ids": [queued["id"]]},
            },
        )
    ).json()
    await day.call(
        "POST",
        f"/admin/v1/reports/{queued['id']}/resolve",
        mo,
        json={"outcome": "actioned", "sanction_id": sanction["id"], "note": "restricted for a week"},
    )
    shown = (await day.call("GET", f"/admin/v1/sanctions/{sanction['id']}", mo)).json()
    assert [c["body"] for c in shown["evidence_content"]] == ["cheap pills, wire money now"] * 2  # message, report target
    # The measure, and the report that led to it (Art. 8: both are recorded for the regulator).
    assert [r["record_kind"] for r in shown["regulator_records"]] == ["sanction_imposed", "report_actioned"]

    day.task = "The regulator record"
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    export = await day.call("GET", "/admin/v1/regulator/sanctions", cora, params={"since": since, "until": until})
    records = jsonl(export.text)
    assert [(r.get("sanction", {}).get("id"), r["record_kind"]) for r in records] == [
        (None, "filing_filed"),  # the public account approved this morning, filed by category
        (sanction["id"], "sanction_imposed"),
        (sanction["id"], "report_actioned"),
    ], [r["record_kind"] for r in records]

    # The offender appeals.
    r = await client.post(
        f"/api/v1/sanctions/{sanction['id']}/appeal", json={"text": "it was a joke"}, headers=offender["headers"]
    )
    assert r.status_code == 201

    day.task = "Appeal"
    appeals = (await day.call("GET", "/admin/v1/appeals", cora, params={"status": "pending"})).json()
    [appeal] = appeals["items"]
    assert appeal["sanction"]["id"] == sanction["id"]
    await day.call("POST", f"/admin/v1/appeals/{appeal['appeal_id']}/decision", cora, json={"decision": "uphold", "note": "evidence is clear"})

    day.task = "Closure with its second operator"
    users = (await day.call("GET", "/admin/v1/users", cora, params={"q": "spam"})).json()
    [found] = users["items"]
    closure = (
        await day.call(
            "POST", "/admin/v1/sanctions", cora, ok=201,
            json={"subject_id": found["id"], "kind": "close_account", "reason": "repeat fraud", "evidence": {"report_ids": [queued["id"]]}},
        )
    ).json()
    awaiting = (await day.call("GET", "/admin/v1/sanctions", cole, params={"status": "awaiting_confirmation"})).json()
    assert [s["id"] for s in awaiting["items"]] == [closure["id"]]
    await day.call("POST", f"/admin/v1/sanctions/{closure['id']}/confirm", cole, json={"note": "agreed"})

    day.task = "Agreement publication"
    text = (
        "Version two: users abide by laws and regulations, the socialist system, the national interest, "
        "the lawful rights of others, public order, social morality and the truthfulness of information."
    )
    await day.call("POST", "/admin/v1/agreements", chief, ok=201, json={"text": text})
    versions = (await day.call("GET", "/admin/v1/agreements", chief)).json()
    assert [(v["version"], v["accepted_by"]) for v in versions] == [(1, 2), (2, 0)]

    day.task = "Exports"
    csv = await day.call("GET", "/admin/v1/regulator/sanctions", cora, params={"since": since, "until": until, "format": "csv"})
    # The filing, the restriction and the report that led to it, the appeal's outcome, the closure and its confirmation.
    assert csv.headers["x-record-count"] == "6"
    filings = (await day.call("GET", "/admin/v1/public-accounts/filings", cora)).json()
    assert filings["count"] == 1

    day.task = "Audit verification"
    trail = (await day.call("GET", "/admin/v1/audit", cora, params={"subject": f"user:{found['id']}", "action": "user."})).json()
    assert [(e["action"], e["actor_handle"]) for e in trail["items"]] == [("user.read", "moss")]
    verdict = (await day.call("GET", "/admin/v1/audit/verify", cora)).json()
    assert verdict["ok"] is True and verdict["checked"] > 30

    assert dict(day.calls) == documented_calls(), "docs/admin_api.md's table of the day disagrees with the day"
    # The user can no longer sign in: the closure took effect, and they are told so (with an appeal-only token).
    r = await client.post("/api/v1/login", json={"handle": "spammer", "password": PASSWORD})
    assert (r.status_code, r.json()["code"]) == (403, "account_closed")
