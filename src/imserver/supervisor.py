"""``imserver serve --workers N``: N server processes on one port, each a node of the cluster.

Python runs one core per process. The cluster protocol (services/cluster.py)
already makes several nodes one service, so a node uses every core by running
one worker process per core, each a full node:

* every worker binds its own listening socket to the same address with
  ``SO_REUSEPORT``; the kernel spreads new connections over them (no shared
  accept queue, no wake-up of every worker for each connection);
* every worker has its own node id (``<IMSERVER_NODE_ID>-w<i>``, or the
  default hostname-pid), its own database pool and its own broker connection,
  and hears the other workers exactly as it hears other machines.

This process, the supervisor, serves nothing. It checks that the deployment
can take several writers, applies migrations once, starts the workers, and:

* passes SIGTERM or SIGINT on to every worker (each shuts down gracefully,
  serving.GracefulServer) and kills what is still running after the grace
  period and a margin;
* starts again a worker that died, after a pause. A worker that could not
  start (exit code 3: a port taken, a database that refuses) or that dies
  again and again (more than RESTART_LIMIT times in RESTART_WINDOW_S) is a
  fault a restart will not cure: the supervisor then stops the others and
  exits 1, for the service manager to report, rather than loop.

Refused, with a clear error: several workers on SQLite (one writer at a time:
a second process only queues on the file lock) or with the in-memory broker
(workers would not hear each other: a message to a user connected to another
worker would not reach them).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from .children import death_signal

log = logging.getLogger("imserver.supervisor")

# A worker's exit code when its server did not start (uvicorn's own for a failed start-up).
STARTUP_FAILURE = 3
# More restarts than this of one worker within the window: a crash loop, give up.
RESTART_LIMIT = 5
RESTART_WINDOW_S = 60.0
# Pause before a worker that died is started again.
RESTART_PAUSE_S = 1.0
# Beyond the workers' own shutdown grace, before the supervisor kills them.
KILL_MARGIN_S = 5.0
POLL_S = 0.2
WORKER_FLAG = "--worker-index"  # internal: how the supervisor starts a worker


class WorkersRefused(Exception):
    """Several workers cannot run on this configuration; ``code`` is stable."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def check(workers: int, *, database_url: str, broker_url: str, port: int) -> None:
    """Raise :class:`WorkersRefused` unless ``workers`` processes can serve this configuration."""
    if workers < 1:
        raise WorkersRefused("bad_workers", "--workers must be 1 or more")
    if workers == 1:
        return
    if not hasattr(socket, "SO_REUSEPORT"):
        raise WorkersRefused("workers_unsupported", "several workers need SO_REUSEPORT, which this system lacks")
    if database_url.startswith("sqlite"):
        raise WorkersRefused(
            "workers_need_postgresql",
            "several workers need PostgreSQL (IMSERVER_DATABASE_URL): SQLite takes one writer at a time",
        )
    if not broker_url.startswith("redis"):
        raise WorkersRefused(
            "workers_need_broker",
            "several workers need a shared broker (IMSERVER_BROKER_URL=redis://...): "
            "with the in-memory broker they would not hear each other",
        )
    if port == 0:
        raise WorkersRefused("bad_port", "several workers need a fixed port, not 0")


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) with SO_REUSEPORT, for uvicorn to listen on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def worker_node_id(base: str, index: int) -> str:
    """A worker's node id: the configured one with ``-w<i>``; empty keeps the default (hostname-pid)."""
    return f"{base}-w{index}" if base else ""


@dataclass
class Worker:
    index: int
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: list[float] = field(default_factory=list)  # monotonic times of the restarts

    def start(self) -> None:
        # A worker gets SIGTERM if the supervisor dies (even by SIGKILL): none is left orphaned.
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdin=subprocess.DEVNULL, preexec_fn=death_signal(signal.SIGTERM)  # noqa: PLW1509
        )
        self.started_at = time.monotonic()
        log.info("worker %d started: pid %d", self.index, self.proc.pid)


@dataclass
class Supervisor:
    workers: list[Worker]
    grace_s: float
    stopping: bool = False
    failed: bool = False
    _received: list[int] = field(default_factory=list)

    def _on_signal(self, signum, _frame) -> None:
        self._received.append(signum)
        self.stopping = True

    def run(self) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for worker in self.workers:
                worker.start()
            while not self.stopping:
                time.sleep(POLL_S)
                self._watch()
            if self._received:
                log.info("signal %s: stopping %d workers", signal.Signals(self._received[0]).name, len(self.workers))
            self._stop_all()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        return 1 if self.failed else 0

    def _watch(self) -> None:
        now = time.monotonic()
        for worker in self.workers:
            code = worker.proc.poll() if worker.proc else None
            if code is None or self.stopping:
                continue
            recent = [t for t in worker.restarts if now - t < RESTART_WINDOW_S]
            if code == STARTUP_FAILURE or len(recent) >= RESTART_LIMIT:
                why = "could not start" if code == STARTUP_FAILURE else f"exited {len(recent) + 1} times in a minute"
                log.error("worker %d %s (exit code %s); stopping every worker", worker.index, why, code)
                self.failed = self.stopping = True
                return
            log.error("worker %d exited with %s; starting it again in %.0f s", worker.index, code, RESTART_PAUSE_S)
            time.sleep(RESTART_PAUSE_S)
            worker.restarts = [*recent, time.monotonic()]
            worker.start()

    def _stop_all(self) -> None:
        running = [w.proc for w in self.workers if w.proc is not None and w.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s + KILL_MARGIN_S
        for proc in running:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d still running after the grace period; killing it", proc.pid)
                proc.kill()
                proc.wait()


def worker_argv(index: int, *, host: str, port: int, log_level: str) -> list[str]:
    return [
        sys.executable, "-m", "imserver.cli", "serve", "--host", host, "--port", str(port),
        "--log-level", log_level, "--no-migrate", WORKER_FLAG, str(index),  # migrated once, by the supervisor
    ]


def supervise(count: int, *, host: str, port: int, log_level: str, node_id: str, grace_s: float) -> int:
    """Start ``count`` workers and watch them until a signal; the exit code for the command."""
    workers = []
    for index in range(1, count + 1):
        env = dict(os.environ)
        env["IMSERVER_NODE_ID"] = worker_node_id(node_id, index)
        workers.append(Worker(index, worker_argv(index, host=host, port=port, log_level=log_level), env))
    log.info("supervisor pid %d: %d workers on %s:%d", os.getpid(), count, host, port)
    return Supervisor(workers, grace_s).run()
