"""/metrics after real traffic: every metric moves, and the queue gauges count what waits.

Traffic goes through the public surfaces only (HTTP, a WebSocket, the admin
API) on a real server, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from imserver.client import Client
from imserver.domain.enums import Role
from imserver.services.queues import QUEUE_NAMES, queue_stats

from .helpers import operator, register
from .identity_helpers import submit
from .operator_helpers import impose
from .test_policy_wire import add_terms

# Families that must be in /metrics (the documented list, docs/operations.md).
EXPECTED = {
    "imserver_http_requests",
    "imserver_database_up",
    "imserver_ws_connections",
    "imserver_messages_acked",
    "imserver_policy_denials",
    "imserver_send_commit_seconds",
    "imserver_commit_batch_size",
    "imserver_slow_consumers_closed",
    "imserver_reports_open",
    "imserver_reports_oldest_open_age_seconds",
    "imserver_queue_size",
    "imserver_queue_oldest_age_seconds",
    "imserver_queue_overdue",
    "imserver_provider_news_qualified",
    "imserver_provider_news_licence_expires_in_seconds",
    "imserver_broker_up",
    "imserver_broker_publish_failures",
    "imserver_broker_reconnects",
    "imserver_broker_delivery_drops",
    "imserver_broker_handler_errors",
    "process_cpu_seconds",
    "process_resident_memory_bytes",
    "process_open_fds",
    "python_gc_collections",
}
# Families that only move on a fault (Redis lost, a client too slow, a leak), checked
# by test_cluster.py and test_gateway.py; here they must be exported, at 0.
FAULT_ONLY = {
    "imserver_slow_consumers_closed",
    "imserver_broker_publish_failures",
    "imserver_broker_reconnects",
    "imserver_broker_delivery_drops",
    "imserver_broker_handler_errors",
    "imserver_cluster_publish_dropped",  # the fan-out's queue to the broker overflowed
    "imserver_network_log_dropped",  # the database away longer than the network log's queue holds
    "imserver_queue_overdue",  # nothing waits a day here (it moves in test_staffing.py)
    "python_gc_objects_uncollectable",  # objects the GC could not free: a leak
}
# Families that hold a fact rather than count: they must be positive, not move.
CONSTANT = {
    "imserver_broker_up",  # 1 with the in-process broker, from the start
    "imserver_database_up",  # 1 from the first scrape while the database answers (0: test_health.py)
    "process_start_time_seconds",
    # Resident memory need not move under a little traffic: freed memory is reused in place.
    "process_resident_memory_bytes",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "python_info",
}
# Facts of the configuration (the news licence the test settings hold): exported, not moving.
CONFIGURED = {"imserver_provider_news_qualified", "imserver_provider_news_licence_expires_in_seconds"}


def scrape(text: str) -> dict[str, dict[tuple, float]]:
    """{family name: {(sample name, sorted labels): value}}."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        samples = out.setdefault(family.name, {})
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_every_metric_moves_under_traffic(server, client, db):
    svc = server.services
    svc.metrics.queue_cache.max_age = 0  # every scrape re-reads the queues
    before = scrape((await client.get("/metrics")).text)

    alice, bob = await register(client, verified=True), await register(client, verified=True)
    carol = await register(client)  # not verified: her sends are denied
    assert (await submit(client, carol)).status_code == 201  # waits in identity review
    mod = await operator(client, svc, Role.MODERATOR)
    comp = await operator(client, svc, Role.COMPLIANCE)
    await add_terms(server, db, ("suspicious", "hold"))
    a = await Client.connect(server.ws_url, alice["token"])
    c = await Client.connect(server.ws_url, carol["token"])
    try:
        ack = await a.send("hello bob", to_user=bob["id"])
        assert ack.status == "accepted"
        held = await a.send("suspicious offer", to_user=bob["id"])
        assert held.status == "held"
        denied = await c.send("hi", to_user=alice["id"])
        assert (denied.status, denied.reason) == ("rejected", "real_name_unverified")
        r = await client.post(
            "/api/v1/reports",
            json={"target_kind": "message", "target_id": ack.message_id, "category": "fraud", "text": "spam"},
            headers=bob["headers"],
        )
        assert r.status_code == 201, r.text
        r = await impose(client, mod, bob["id"], "restrict_publication", duration_seconds=86400)
        assert r.status_code == 201, r.text
        r = await client.post(f"/api/v1/sanctions/{r.json()['id']}/appeal", json={"text": "no"}, headers=bob["headers"])
        assert r.status_code == 201, r.text
        assert (await impose(client, comp, carol["id"], "close_account")).status_code == 201
        r = await client.post(
            "/api/v1/public-accounts",
            json={"name": "Alice Notes", "description": "about us", "category": "individual", "province": "44"},
            headers=alice["headers"],
        )
        assert r.status_code == 201, r.text
        assert (await client.get("/readyz")).status_code == 200
        during = (await client.get("/metrics")).text
    finally:
        await a.close()
        await c.close()
    after = scrape(during)

    assert EXPECTED <= after.keys(), EXPECTED - after.keys()
    not_moved = []
    for name, samples in after.items():
        if name in CONSTANT:
            assert all(v > 0 for v in samples.values()), (name, samples)
        elif name in CONFIGURED:
            continue  # what the settings say (test_provider.py checks them)
        elif name in FAULT_ONLY:
            assert all(v == 0 for v in samples.values()), (name, samples)
        elif samples == before.get(name):
            not_moved.append(name)
    assert not_moved == [], f"metrics that did not move: {not_moved}"

    def value(name, sample, **labels):
        return after[name][(sample, tuple(sorted(labels.items())))]

    assert value("imserver_messages_acked", "imserver_messages_acked_total") == 2
    assert value("imserver_policy_denials", "imserver_policy_denials_total", reason="real_name_unverified") == 1
    assert value("imserver_send_commit_seconds", "imserver_send_commit_seconds_count") == 2
    assert value("imserver_ws_connections", "imserver_ws_connections", node=svc.node_id) == 2
    assert value("imserver_http_requests", "imserver_http_requests_total", route="/api/v1/register", status="201") == 3
    assert value("imserver_http_requests", "imserver_http_requests_total", route="/readyz", status="200") == 1
    sizes = {labels[0][1]: v for (s, labels), v in after["imserver_queue_size"].items()}
    assert sizes == {
        "identity_reviews": 1,
        "public_account_applications": 1,
        "public_account_changes": 0,
        "reports": 1,
        "held_messages": 1,
        "appeals": 1,
        "closures_awaiting_confirmation": 1,
        # imposing records sanction_imposed for each sanction: nothing delivers them (no webhook)
        "regulator_outbox": 2,
    }
    ages = {labels[0][1]: v for (s, labels), v in after["imserver_queue_oldest_age_seconds"].items()}
    assert ages["public_account_changes"] == 0
    assert all(ages[q] >= 0 for q in QUEUE_NAMES)


async def test_queue_stats_age_is_the_oldest_item(app, http):
    """The oldest item's age, read through the service the console and staffing use."""
    svc = app.state.services
    first, second = await register(http), await register(http)
    assert (await submit(http, first)).status_code == 201
    stats = {q.name: q for q in await queue_stats(svc.db, svc.clock)}
    assert [q for q in stats] == list(QUEUE_NAMES)
    assert stats["identity_reviews"].size == 1
    age_one = stats["identity_reviews"].oldest_age_seconds
    assert 0 <= age_one < 60
    assert (await submit(http, second)).status_code == 201
    stats = {q.name: q for q in await queue_stats(svc.db, svc.clock)}
    assert stats["identity_reviews"].size == 2
    assert stats["identity_reviews"].oldest_age_seconds >= age_one  # still the first one's age
    assert all(q.size == 0 and q.oldest_age_seconds == 0.0 for n, q in stats.items() if n != "identity_reviews")


@pytest.mark.parametrize("header, kept", [("abc-123.X_y", True), ("bad id with spaces", False), ("x" * 200, False)])
async def test_request_id_is_kept_or_made(http, header, kept):
    r = await http.get("/livez", headers={"X-Request-ID": header})
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    rid = r.headers["x-request-id"]
    assert (rid == header) is kept
    if not kept:
        assert len(rid) == 32 and rid.isalnum()


def test_dashboard_reads_only_exported_metrics():
    """docs/grafana/imserver-dashboard.json imports as is: a datasource input, and no metric we do not export."""
    import json
    import re
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "grafana" / "imserver-dashboard.json"
    dashboard = json.loads(path.read_text())
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    names = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= set(re.findall(r"\b((?:imserver|process)_[a-z_]+)", target["expr"]))
    families = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in names}
    assert families and families <= EXPECTED, families - EXPECTED
