"""Several real ``imserver serve`` processes on one PostgreSQL and one Redis.

A helper module for tests, not a test file. It runs the deployment that
docs/operations.md describes, on 127.0.0.1:

* a PostgreSQL schema of the test's own (``?search_path=<schema>``), migrated
  once with ``imserver migrate`` before any node starts, dropped at the end;
* N nodes, each ``python -m imserver.cli serve --port P --no-migrate`` in a
  working directory of its own (so no ``.env`` is read), sharing the database,
  the Redis broker (a channel prefix of the test's own: Redis channels are
  global, so two test runs on one Redis must not hear each other), and the SAME
  master keys and HMAC key, generated per test;
* optionally a ``redis-server`` of the test's own on a free port
  (:class:`RedisServer`), for tests that stop and restart Redis. The machine's
  Redis on 6379 is never stopped.

Every process is started with :class:`subprocess.Popen`, its output goes to a
log file (a pipe nobody reads could fill and stall the node), and
:meth:`Cluster.close` kills whatever is still running. Failures carry the tail
of the node's log. Under CI=true an unreachable PostgreSQL or Redis fails the
test (``unreachable`` from conftest), elsewhere it skips.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis.asyncio
from sqlalchemy import make_url, text

from imserver.store.db import Database

from .conftest import PG_URL, REDIS_URL, free_port, unreachable
from .helpers import PASSWORD

# Generous: a node imports FastAPI and connects to PostgreSQL and Redis; on a
# loaded CI machine that can take several seconds. A passing run waits ~1 s.
START_TIMEOUT_S = 30.0
# SIGTERM first so uvicorn can close sockets; a node still running after this is killed.
STOP_GRACE_S = 5.0
# Lines of a node's log quoted in a failure message.
LOG_TAIL_LINES = 40
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _stop(proc: subprocess.Popen, *, grace: float = STOP_GRACE_S) -> None:
    """Stop one process we started: SIGTERM, then SIGKILL after ``grace``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- PostgreSQL: a schema of the test's own -------------------------------------------


def schema_url(schema: str) -> str:
    """PG_URL pointing at ``schema`` (store/db.py moves ``search_path`` to a server setting)."""
    return make_url(PG_URL).update_query_dict({"search_path": schema}).render_as_string(hide_password=False)


async def create_schema() -> str:
    """A new, empty schema; skips (fails under CI) if PostgreSQL is unreachable."""
    schema = f"imserver_cluster_{uuid.uuid4().hex[:10]}"
    admin = Database.from_url(PG_URL)
    try:
        async with admin.transaction() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - reported by unreachable()
        unreachable("PostgreSQL", repr(exc))
    finally:
        await admin.dispose()
    return schema


async def drop_schema(schema: str) -> None:
    admin = Database.from_url(PG_URL)
    try:
        async with admin.transaction() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await admin.dispose()


# -- Redis ----------------------------------------------------------------------------


async def check_redis(url: str = REDIS_URL) -> None:
    """Skip (fail under CI) unless the Redis at ``url`` answers PING."""
    client = redis.asyncio.Redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001 - reported by unreachable()
        unreachable("Redis", repr(exc))
    finally:
        await client.aclose()


class RedisServer:
    """A redis-server of the test's own on a free port: no persistence, restartable on the same port."""

    def __init__(self, workdir: Path) -> None:
        if not Path(REDIS_SERVER).exists():
            unreachable("redis-server", f"{REDIS_SERVER} not found")
        self.port = free_port()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = open(self.workdir / f"redis-{self.starts}.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()  # the child has its own copy
        client = redis.asyncio.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {_log_tail(self.workdir / f'redis-{self.starts}.log')}")
                try:
                    await client.ping()
                    return
                except Exception:  # noqa: BLE001 - not listening yet
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    def stop(self) -> None:
        """Kill it (SIGKILL: a crash, not a polite shutdown; it has nothing to save)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# -- the nodes ------------------------------------------------------------------------


def cluster_secrets() -> dict[str, str]:
    """Master keys and HMAC key for one deployment: every node gets the same."""
    master = base64.b64encode(secrets.token_bytes(32)).decode()
    return {
        "IMSERVER_MASTER_KEYS": f"k1:{master}",
        "IMSERVER_HMAC_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


@dataclass
class Node:
    name: str
    port: int
    workdir: Path
    proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def log_path(self) -> Path:
        return self.workdir / "node.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self) -> str:
        return f"--- {self.name} log (last lines) ---\n{_log_tail(self.log_path)}"

    def kill(self) -> None:
        """SIGKILL: the node dies without closing anything, as on a machine failure."""
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=10)

    def worker_pids(self) -> list[int]:
        """With ``--workers``: the pids of the supervisor's children, the worker processes (Linux)."""
        if not self.running:
            return []
        pid = self.proc.pid
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []


@dataclass
class Cluster:
    """N nodes of one deployment. Use ``async with Cluster(...) as c``; everything is stopped on exit."""

    workdir: Path
    size: int = 2
    broker_url: str = REDIS_URL
    schema: str | None = None  # None: create one (and drop it on exit)
    channel_prefix: str = field(default_factory=lambda: f"imserver-test-{uuid.uuid4().hex[:12]}:")
    secrets: dict[str, str] = field(default_factory=cluster_secrets)
    # Operators created with `imserver operator create` while the nodes start (a role
    # listed twice makes two operators of it): role -> handles.
    roles: tuple[str, ...] = ("reviewer",)
    operators: dict[str, list[str]] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    env_extra: dict[str, str] = field(default_factory=dict)  # more IMSERVER_* settings for every process
    workers: int = 1  # `serve --workers N`: each node's worker processes are named <node>-w1 .. -wN
    log_level: str = "warning"  # the nodes' --log-level
    _own_schema: bool = False

    @property
    def database_url(self) -> str:
        assert self.schema is not None
        return schema_url(self.schema)

    def env(self, node_name: str = "cli") -> dict[str, str]:
        """The environment of a node or a CLI run: the parent's minus any IMSERVER_*, plus the deployment's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMSERVER_")}
        env.update(self.secrets)
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "IMSERVER_DATABASE_URL": self.database_url,
                "IMSERVER_BROKER_URL": self.broker_url,
                "IMSERVER_BROKER_CHANNEL_PREFIX": self.channel_prefix,
                "IMSERVER_NODE_ID": node_name,
                "IMSERVER_DATA_DIR": str(self.workdir / node_name / "data"),
                "IMSERVER_MIGRATE_ON_START": "false",  # migrated once, before the nodes start
                # Cheap argon2 keeps the test fast; the defaults are checked in test_passwords.
                "IMSERVER_ARGON2_MEMORY_KIB": "1024",
                "IMSERVER_ARGON2_TIME_COST": "1",
                "IMSERVER_OPERATOR_PASSWORD": PASSWORD,
                # The tests send bursts of hundreds; the rate-limit check has tests of its own.
                "IMSERVER_RATE_MESSAGES_BURST": "100000",
                "IMSERVER_RATE_MESSAGES_PER_SECOND": "100000",
                # Public accounts run only under the provider's news licence (Art. 4).
                "IMSERVER_PROVIDER_NEWS_LICENCE": "test-licence",
                "IMSERVER_PROVIDER_NEWS_LICENCE_EXPIRES_AT": "2100-01-01T00:00:00+00:00",
                **self.env_extra,
            }
        )
        return env

    async def __aenter__(self) -> Cluster:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def start(self) -> None:
        if self.broker_url == REDIS_URL:
            await check_redis()
        if self.schema is None:
            self.schema = await create_schema()
            self._own_schema = True
        # Migrations run once, as a deployment step, before any node starts.
        await self.cli("migrate")
        for i in range(1, self.size + 1):
            name = f"node{i}"
            workdir = self.workdir / name
            workdir.mkdir(parents=True, exist_ok=True)
            self.nodes.append(Node(name, free_port(), workdir))
        for node in self.nodes:
            self._spawn(node)
        await asyncio.gather(
            *(self.wait_healthy(node) for node in self.nodes), *(self._create_operator(role) for role in self.roles)
        )

    def _spawn(self, node: Node) -> None:
        log = open(node.log_path, "ab")  # noqa: SIM115 - the child keeps its own copy
        node.proc = subprocess.Popen(
            [sys.executable, "-m", "imserver.cli", "serve", "--port", str(node.port), "--no-migrate",
             "--log-level", self.log_level, "--workers", str(self.workers)],
            cwd=node.workdir, env=self.env(node.name), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()

    async def restart(self, node: Node) -> None:
        """Start a stopped node again on its port."""
        assert not node.running
        self._spawn(node)
        await self.wait_healthy(node)

    async def wait_healthy(self, node: Node, timeout: float = START_TIMEOUT_S) -> dict:
        """Poll /healthz until it answers 200; fails with the node's log if the process exits first."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                if not node.running:
                    raise AssertionError(f"{node.name} exited with {node.proc.returncode}\n{node.log_tail()}")
                try:
                    r = await http.get(f"{node.base_url}/healthz")
                    if r.status_code == 200:
                        return r.json()
                    last = f"{r.status_code} {r.text}"
                except httpx.TransportError as exc:
                    last = repr(exc)
                if time.monotonic() > deadline:
                    raise AssertionError(f"{node.name} not healthy after {timeout} s: {last}\n{node.log_tail()}")
                await asyncio.sleep(0.05)

    async def cli(self, *argv: str) -> str:
        """Run ``imserver <argv>`` against the deployment's database; returns stdout, raises on failure."""
        workdir = self.workdir / "cli"
        workdir.mkdir(parents=True, exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "imserver.cli", *argv,
            cwd=workdir, env=self.env("cli"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), START_TIMEOUT_S)
        except BaseException:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        if proc.returncode != 0:
            raise AssertionError(f"imserver {' '.join(argv)} exited {proc.returncode}:\n{out.decode()}{err.decode()}")
        return out.decode()

    async def _create_operator(self, role: str) -> str:
        handle = f"op-{role}-{uuid.uuid4().hex[:6]}"
        await self.cli("operator", "create", "--handle", handle, "--role", role)
        self.operators.setdefault(role, []).append(handle)
        return handle

    async def operator(self, role: str, node: Node | None = None, *, index: int = 0) -> dict:
        """Sign in on ``node`` (default: the first) as the ``index``-th operator of ``role``.

        Operators not created at start are created now, with the CLI.
        """
        while len(self.operators.get(role, ())) <= index:
            await self._create_operator(role)
        handle = self.operators[role][index]
        node = node or self.nodes[0]
        async with node.http() as http:
            r = await http.post("/admin/v1/login", json={"handle": handle, "password": PASSWORD})
        assert r.status_code == 200, r.text
        token = r.json()["token"]
        return {"handle": handle, "token": token, "headers": {"Authorization": f"Bearer {token}"}}

    async def close(self) -> None:
        # Every node first (in threads, so their grace periods overlap), then the schema.
        await asyncio.gather(*(asyncio.to_thread(_stop, n.proc) for n in self.nodes if n.proc is not None))
        if self._own_schema and self.schema is not None:
            await drop_schema(self.schema)
            self._own_schema = False
