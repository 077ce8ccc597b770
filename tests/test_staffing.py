"""Staffing suited to the scale of the service (Art. 5): the report over HTTP and the CLI,
and the overdue-queue warning on /metrics. SQLite and PostgreSQL; time is a FrozenClock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from imserver import cli
from imserver.client import Client
from imserver.domain.clock import FrozenClock
from imserver.domain.enums import Role

from .helpers import operator, register

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
WARN_AFTER = 2 * 3600  # queue_age_warning_seconds in this module


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def settings(settings):
    settings.queue_age_warning_seconds = WARN_AFTER
    return settings


def gauge(text: str, line_start: str) -> float:
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(line_start))


async def test_the_staffing_report_and_the_overdue_warning(server, client, clock, settings, database_url):
    svc = server.services
    mod = await operator(client, svc, Role.MODERATOR)
    alice, bob, carol = [await register(client, verified=True) for _ in range(3)]
    a = await Client.connect(server.ws_url, alice["token"])
    try:
        for to in (bob, carol):
            assert (await a.send("hi", to_user=to["id"])).status == "accepted"
    finally:
        await a.close()
    reports = []
    for reporter in (bob, carol):
        r = await client.post(
            "/api/v1/reports",
            json={
                "target_kind": "account",
                "target_id": alice["id"] if reporter is bob else bob["id"],
                "category": "harmful",
                "text": "x",
            },
            headers=reporter["headers"],
        )
        reports.append(r.json()["id"])
    clock.advance(minutes=10)
    assert (await client.post(f"/admin/v1/reports/{reports[0]}/assign", headers=mod["headers"])).status_code == 200
    # Fifty minutes of work on it: the moderator's session stays in use (operator sessions idle out).
    clock.advance(minutes=25)
    assert (await client.get("/admin/v1/whoami", headers=mod["headers"])).status_code == 200
    clock.advance(minutes=25)
    r = await client.post(
        f"/admin/v1/reports/{reports[0]}/resolve", json={"outcome": "dismissed"}, headers=mod["headers"]
    )
    assert r.status_code == 200
    clock.advance(seconds=1)  # the period ends now, exclusive: let the resolution fall inside it

    comp = await operator(client, svc, Role.COMPLIANCE)  # signed in now: operator sessions idle out
    since = (NOW - timedelta(hours=1)).isoformat()
    r = await client.get("/admin/v1/staffing", params={"since": since}, headers=comp["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    q = body["queues"]["reports"]
    assert (q["entered"], q["resolved"], q["active_operators"], q["handled_per_active_operator"]) == (2, 1, 1, 1.0)
    assert q["first_action_seconds"] == {"p50": 600.0, "p90": 600.0, "count": 1}
    assert q["resolution_seconds"] == {"p50": 3600.0, "p90": 3600.0, "count": 1}
    assert (q["open"], q["oldest_open_age_seconds"], q["overdue"]) == (1, 3601.0, False)
    ids = body["queues"]["identity_reviews"]
    assert ids["entered"] == 3 and ids["resolved"] == 3  # three identities, reviewed at once
    assert body["active_users"] == 1  # alice sent; the others only reported
    assert (await client.get("/admin/v1/staffing", params={"since": since}, headers=mod["headers"])).status_code == 403
    r = await client.get(
        "/admin/v1/staffing", params={"since": "2026-12-02", "until": "2026-12-01"}, headers=comp["headers"]
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_period")

    metrics = (await client.get("/metrics")).text
    assert gauge(metrics, 'imserver_queue_size{queue="reports"}') == 1
    assert gauge(metrics, 'imserver_queue_overdue{queue="reports"}') == 0
    clock.advance(hours=1)  # the open report is now older than the warning age
    metrics = (await client.get("/metrics")).text
    assert gauge(metrics, 'imserver_queue_overdue{queue="reports"}') == 1
    assert gauge(metrics, 'imserver_queue_overdue{queue="appeals"}') == 0

    # The CLI prints the same report.
    url, schema = database_url
    cli_settings = settings.model_copy(update={"database_url": url + (f"?search_path={schema}" if schema else "")})
    out, err = io.StringIO(), io.StringIO()
    args = argparse.Namespace(since=since, until=(NOW + timedelta(hours=3)).isoformat())

    def run_cli() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return cli.cmd_report_staffing(args, cli_settings)

    assert await asyncio.to_thread(run_cli) == 0
    printed = json.loads(out.getvalue())
    assert printed["queues"]["reports"]["entered"] == 2 and printed["queues"]["reports"]["resolved"] == 1
