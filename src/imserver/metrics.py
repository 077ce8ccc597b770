"""Prometheus metrics, one registry per app so several apps can live in one process (tests)."""

from __future__ import annotations

import contextlib
import logging
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

log = logging.getLogger("imserver.metrics")

# No `*_created` series beside every counter and histogram: they double the
# series count and no dashboard here reads them.
disable_created_metrics()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "imserver_http_requests_total", "HTTP requests by route template and status", ["route", "status"], registry=r
        )
        self.db_up = Gauge("imserver_database_up", "1 if the last database check succeeded", registry=r)
        self._connections = Gauge(
            "imserver_ws_connections", "Live WebSocket connections, by node", ["node"], registry=r
        )
        self._node = ""
        self.connections = self._connections.labels(node="")  # relabelled by bind_node once the node id is known
        # The send path's counters live in HotPath: plain ints, no lock per message.
        self.hot = HotPath()
        r.register(self.hot)
        self.batch_size = Histogram(
            "imserver_commit_batch_size",
            "Sends committed per group-commit transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.slow_consumers_closed = Counter(
            "imserver_slow_consumers_closed_total", "Connections closed for falling behind", registry=r
        )
        self.network_log_dropped = Counter(
            "imserver_network_log_dropped_total",
            "Network log rows dropped because the database was away longer than the queue holds",
            registry=r,
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
        # -- every operator queue (services/queues.py), refreshed at scrape time (Art. 5) --
        self.queue_size = Gauge("imserver_queue_size", "Items waiting in an operator queue", ["queue"], registry=r)
        self.queue_oldest_age = Gauge(
            "imserver_queue_oldest_age_seconds",
            "How long the oldest item of an operator queue has waited; 0 when the queue is empty",
            ["queue"],
            registry=r,
        )
        self.queue_overdue = Gauge(
            "imserver_queue_overdue",
            "1 when a queue's oldest item is older than queue_age_warning_seconds (understaffed)",
            ["queue"],
            registry=r,
        )
        # The process collectors of prometheus_client (process_*, python_gc_*, python_info),
        # registered on this registry too: the defaults live on the global one.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            r.register(collector)
        # Async callables run by refresh() before each scrape (gauges that need a query).
        self.refreshers: list[Callable[[], Awaitable[None]]] = []
        self.queue_cache: ScrapeCache | None = None  # set by track_queues
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

    def bind_node(self, node_id: str) -> None:
        """Label the connection gauge with this node's id (known once the services are built)."""
        with contextlib.suppress(KeyError):
            self._connections.remove(self._node)
        self._node = node_id
        self.connections = self._connections.labels(node=node_id)

    def track_queues(
        self,
        stats: Callable[[], Awaitable[list]],
        *,
        overdue_after: float,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        """Refresh the queue gauges from ``stats()`` (services.queues.queue_stats) at each scrape;
        a queue whose oldest item has waited over ``overdue_after`` seconds is overdue."""
        self.queue_cache = cache = ScrapeCache(stats, now=now)

        async def refresh() -> None:
            for q in await cache.get():
                self.queue_size.labels(queue=q.name).set(q.size)
                self.queue_oldest_age.labels(queue=q.name).set(q.oldest_age_seconds)
                self.queue_overdue.labels(queue=q.name).set(1 if q.oldest_age_seconds > overdue_after else 0)

        self.refreshers.append(refresh)

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


# The queue gauges cost one aggregate query per queue; two scrapers (or a
# dashboard refreshing every second) within this many seconds share one answer.
QUEUE_STATS_MAX_AGE = 5.0


class ScrapeCache:
    """An async result reused for QUEUE_STATS_MAX_AGE seconds of ``now()`` (the service clock's, so
    a test that moves its clock sees fresh figures)."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[list]],
        max_age: float = QUEUE_STATS_MAX_AGE,
        *,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fetch = fetch
        self.max_age = max_age
        self.now = now
        self._at: float | None = None
        self._value: list = []

    async def get(self) -> list:
        now = self.now()
        if self._at is None or not 0 <= now - self._at < self.max_age:
            self._value = await self.fetch()
            self._at = now
        return self._value


# Buckets of imserver_send_commit_seconds, around the 30 ms p99 target of the
# send path (docs/benchmarks.md).
COMMIT_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0)


class HotPath:
    """The send path's counters, as plain Python numbers exported at scrape time.

    prometheus_client takes a lock for every ``inc``/``observe``; the writer
    commits thousands of messages a second on one event loop thread, so these
    are plain ints and lists updated once per batch (the commit latency per
    message, by bisection), and read by :meth:`collect` when /metrics is scraped.
    """

    def __init__(self) -> None:
        self.acked = 0
        self.denials: dict[str, int] = {}
        self.commit_counts = [0] * (len(COMMIT_BUCKETS) + 1)  # the last one is +Inf
        self.commit_sum = 0.0

    def committed(self, queued_at: list[float], now: float) -> None:
        """A batch committed: ``queued_at`` holds each message's time.perf_counter() at queueing."""
        self.acked += len(queued_at)
        counts = self.commit_counts
        total = 0.0
        for t in queued_at:
            waited = now - t
            total += waited
            counts[bisect_left(COMMIT_BUCKETS, waited)] += 1
        self.commit_sum += total

    def denied(self, reason: str) -> None:
        self.denials[reason] = self.denials.get(reason, 0) + 1

    def describe(self):
        return list(self.collect())

    def collect(self):
        yield CounterMetricFamily(
            "imserver_messages_acked", "Messages committed and acknowledged", value=self.acked
        )
        denials = CounterMetricFamily(
            "imserver_policy_denials", "Sends or posts refused by the policy pipeline", labels=["reason"]
        )
        for reason, n in sorted(self.denials.items()):
            denials.add_metric([reason], n)
        yield denials
        cumulative, buckets = 0, []
        for bound, n in zip((*COMMIT_BUCKETS, float("inf")), self.commit_counts, strict=True):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        yield HistogramMetricFamily(
            "imserver_send_commit_seconds",
            "Time from a send's queueing for the group commit (after its policy check) to its commit",
            buckets=buckets,
            sum_value=self.commit_sum,
        )
