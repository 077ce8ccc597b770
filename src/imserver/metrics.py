"""Prometheus metrics, one registry per app so several apps can live in one process (tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
            # Buckets around the 30 ms p99 target of issue 7.
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
