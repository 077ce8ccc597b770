"""Prometheus metrics, one registry per app so several apps can live in one process (tests)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger("imserver.metrics")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "imserver_http_requests_total", "HTTP requests by route template and status", ["route", "status"], registry=r
        )
        self.db_up = Gauge("imserver_database_up", "1 if the last database check succeeded", registry=r)
        self.connections = Gauge("imserver_ws_connections", "Live WebSocket connections on this node", registry=r)
        self.messages_sent = Counter(
            "imserver_messages_acked_total", "Messages committed and acknowledged", registry=r
        )
        self.policy_denials = Counter(
            "imserver_policy_denials_total", "Sends or posts refused by the policy pipeline", ["reason"], registry=r
        )
        self.send_latency = Histogram(
            "imserver_send_commit_seconds",
            "Time from a send frame's arrival to its commit",
            # Buckets around the 30 ms p99 send-to-delivery target (docs/benchmarks.md).
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.batch_size = Histogram(
            "imserver_commit_batch_size",
            "Sends committed per group-commit transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.slow_consumers_closed = Counter(
            "imserver_slow_consumers_closed_total", "Connections closed for falling behind", registry=r
        )
        # -- public reports (Art. 5): read from the database at scrape time ----------
        self.reports_open = Gauge(
            "imserver_reports_open", "Public reports awaiting a moderator's decision (open or in review)", registry=r
        )
        self.reports_oldest_open_age = Gauge(
            "imserver_reports_oldest_open_age_seconds",
            "Age of the oldest report awaiting a decision; 0 when there is none",
            registry=r,
        )
        # -- the provider's qualification (Art. 4): why public accounts may be off --
        self.news_qualified = Gauge(
            "imserver_provider_news_qualified",
            "1 while the news information service licence is configured and valid (public accounts on)",
            registry=r,
        )
        self.news_licence_expires_in = Gauge(
            "imserver_provider_news_licence_expires_in_seconds",
            "Seconds until the news information service licence expires (negative: expired; 0: none configured)",
            registry=r,
        )
        # -- operator queues against their warning age (Art. 5), by queue --
        self.queue_open = Gauge("imserver_queue_open", "Items open in an operator queue", ["queue"], registry=r)
        self.queue_oldest_age = Gauge(
            "imserver_queue_oldest_age_seconds",
            "Age of a queue's oldest open item; 0 when empty",
            ["queue"],
            registry=r,
        )
        self.queue_overdue = Gauge(
            "imserver_queue_overdue",
            "1 when a queue's oldest open item is older than queue_age_warning_seconds (understaffed)",
            ["queue"],
            registry=r,
        )
        # Async callables run by refresh() before each scrape (gauges that need a query).
        self.refreshers: list[Callable[[], Awaitable[None]]] = []
        # The broker's state, read from broker.stats at each scrape.
        self.broker = BrokerCollector()
        r.register(self.broker)

    async def refresh(self) -> None:
        """Update the scrape-time gauges; a failing one keeps its last value (logged)."""
        for refresher in self.refreshers:
            try:
                await refresher()
            except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
                log.warning("metrics refresher %r failed", refresher, exc_info=True)

    def track_broker(self, broker, cluster=None) -> None:
        """Expose ``broker`` (an imserver.broker.Broker) and the cluster fan-out's drops in /metrics."""
        self.broker.broker = broker
        self.broker.cluster = cluster


class BrokerCollector:
    """``imserver_broker_up`` and the broker's counters, read from ``broker.stats`` when scraped.

    The broker keeps its own counters (``BrokerStats``, they only grow); copying
    them into prometheus Counters would need a hook in the broker, so they are
    read at scrape time instead. Nothing is exported before a broker is tracked.
    """

    # (BrokerStats field, metric name without _total, help)
    COUNTERS = (
        ("publish_failures", "imserver_broker_publish_failures",
         "Broker messages this node published that never reached the transport (other nodes missed them)"),
        ("reconnects", "imserver_broker_reconnects", "Times the broker transport came back after a fault"),
        ("delivery_drops", "imserver_broker_delivery_drops",
         "Broker messages dropped before a local handler saw them (backlog full)"),
        ("handler_errors", "imserver_broker_handler_errors", "Broker handler calls that raised"),
    )

    def __init__(self) -> None:
        self.broker = None
        self.cluster = None

    def describe(self):
        yield GaugeMetricFamily("imserver_broker_up", "1 while the broker's transport works (Redis reachable)")
        for _, name, doc in self.COUNTERS:
            yield CounterMetricFamily(name, doc)
        yield CounterMetricFamily(
            "imserver_cluster_publish_dropped", "Fan-out payloads dropped before reaching the broker (queue full)"
        )

    def collect(self):
        broker = self.broker
        if broker is None:
            return
        yield GaugeMetricFamily(
            "imserver_broker_up", "1 while the broker's transport works (Redis reachable)", value=int(broker.healthy)
        )
        for field, name, doc in self.COUNTERS:
            yield CounterMetricFamily(name, doc, value=getattr(broker.stats, field))
        if self.cluster is not None:
            yield CounterMetricFamily(
                "imserver_cluster_publish_dropped",
                "Fan-out payloads dropped before reaching the broker (queue full)",
                value=self.cluster.dropped,
            )
