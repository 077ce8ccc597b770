"""What a scenario runs against: imserver or the bare relay, started here or reached by URL.

A :class:`Target` gives a scenario the two things it needs, whatever is behind
it: a WebSocket URL, and accounts (and groups) to connect as. Against imserver
accounts are provisioned through the public APIs (:mod:`.provision`); against
the relay, which has no accounts, a user is just a number.

Servers the bench starts itself run as subprocesses on a free 127.0.0.1 port:

* imserver: ``python -m imserver.cli serve``, SQLite in a temporary directory
  unless ``--database-url`` is given, with argon2 lowered through
  ``IMSERVER_ARGON2_MEMORY_KIB`` / ``IMSERVER_ARGON2_TIME_COST`` (setup would
  otherwise spend minutes hashing passwords; the message path never hashes);
  the per-user message rate limit is raised (``IMSERVER_RATE_MESSAGES_*``: the
  check still runs, it just never refuses a bench sender); the reviewer
  operator is made first with ``imserver operator create --role reviewer`` and
  ``IMSERVER_OPERATOR_PASSWORD``.
* the relay: ``python -m imserver.bench.relay``.

Their pid is known, so server RSS and CPU can be read from ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import UTC, datetime, timedelta
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..children import death_signal
from .peer import Account
from .progress import note
from .provision import Provisioner

# argon2 for a bench server: what the test suite uses (tests/conftest.py).
BENCH_ARGON2_MEMORY_KIB = 1024
BENCH_ARGON2_TIME_COST = 1
BENCH_MESSAGE_RATE = 1_000_000  # messages/s per user: far above anything a bench sender reaches
BENCH_POST_BURST = 1_000  # posts a public account may make at once: far above any --posts (default 5)
START_TIMEOUT = 60.0  # migrations on a fresh database plus interpreter start-up
STOP_TIMEOUT = 15.0  # a graceful stop flushes the message writer first
REVIEWER = "bench-reviewer"
MODERATOR = "bench-moderator"  # made only when a scenario imposes sanctions (soak)


# After the workers exist: time for each to import, connect and listen (~2 s on a quiet machine).
WORKER_SETTLE_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Target:
    """One server the scenarios are run against."""

    kind: str  # "imserver" or "relay"
    http_url: str
    pid: int | None = None
    provisioner: Provisioner | None = None
    notes: list[str] = field(default_factory=list)
    _process: Process | None = None
    _relay_ids: int = 0

    @property
    def ws_url(self) -> str:
        return self.http_url.replace("http", "ws", 1) + "/ws"

    @property
    def is_relay(self) -> bool:
        return self.kind == "relay"

    async def users(self, n: int, *, verified: bool) -> list[Account]:
        if self.is_relay:
            first = self._relay_ids + 1
            self._relay_ids += n
            return [Account(i, str(i)) for i in range(first, first + n)]
        assert self.provisioner is not None
        return await self.provisioner.users(n, verified=verified)

    async def group(self, owner: Account, members: list[Account], name: str) -> int:
        if self.is_relay:
            return await self._relay_post("/groups", {"members": [m.id for m in members]})
        assert self.provisioner is not None
        return await self.provisioner.group(owner, members, name)

    async def public_account(self, owner: Account, followers: list[Account], name: str) -> int:
        """An approved public account of ``owner`` that every one of ``followers`` follows."""
        if self.is_relay:
            return await self._relay_post("/accounts", {"followers": [f.id for f in followers]})
        assert self.provisioner is not None
        return await self.provisioner.public_account(owner, followers, name)

    async def _relay_post(self, path: str, body: dict) -> int:
        """Tell the relay a group's members or an account's followers; the id it gave them."""
        async with httpx.AsyncClient(base_url=self.http_url) as http:
            r = await http.post(path, json=body)
            r.raise_for_status()
            return r.json()["id"]

    async def close(self) -> None:
        if self.provisioner is not None:
            await self.provisioner.close()
        if self._process is not None:
            self._process.stop()


class Process:
    """A server subprocess with its own temporary directory and log file."""

    def __init__(self, argv: list[str], env: dict[str, str], workdir: Path, *, owns_workdir: bool) -> None:
        self.workdir = workdir
        self.owns_workdir = owns_workdir
        self.log_path = workdir / "server.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        # death_signal: no server outlives the bench (children.py).
        self.popen = subprocess.Popen(
            argv, env=env, cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=death_signal(signal.SIGTERM),  # noqa: PLW1509
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def wait_healthy(self, url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.popen.poll() is not None:
                    raise RuntimeError(f"the server exited with {self.popen.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(url + "/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not answer /healthz within {START_TIMEOUT:g} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _clean_env() -> dict[str, str]:
    """This environment without IMSERVER_* settings: the bench server is configured here only."""
    return {k: v for k, v in os.environ.items() if not k.startswith("IMSERVER_")}


async def start_imserver(
    *,
    database_url: str | None,
    lower_argon2: bool = True,
    keep: bool = False,
    progress: bool | None = None,
    with_moderator: bool = False,
    workers: int = 1,
    broker_url: str | None = None,
) -> Target:
    workdir = Path(tempfile.mkdtemp(prefix="imserver-bench-"))
    env = _clean_env()
    env["IMSERVER_DATA_DIR"] = str(workdir / "data")
    if database_url:
        env["IMSERVER_DATABASE_URL"] = database_url
    if broker_url:
        env["IMSERVER_BROKER_URL"] = broker_url
        # A channel prefix of this run's own: Redis channels are global to the server.
        env["IMSERVER_BROKER_CHANNEL_PREFIX"] = f"imserver-bench-{secrets.token_hex(4)}:"
    notes = []
    if lower_argon2:
        env["IMSERVER_ARGON2_MEMORY_KIB"] = str(BENCH_ARGON2_MEMORY_KIB)
        env["IMSERVER_ARGON2_TIME_COST"] = str(BENCH_ARGON2_TIME_COST)
        notes.append(
            f"argon2 lowered to m={BENCH_ARGON2_MEMORY_KIB} KiB, t={BENCH_ARGON2_TIME_COST} for setup speed "
            "(IMSERVER_ARGON2_MEMORY_KIB / IMSERVER_ARGON2_TIME_COST); the message path does not hash"
        )
    # The policy pipeline's per-user token bucket suits a person typing (1 message/s):
    # a load test raises it, so the check still runs but never refuses.
    env["IMSERVER_RATE_MESSAGES_BURST"] = str(BENCH_MESSAGE_RATE)
    env["IMSERVER_RATE_MESSAGES_PER_SECOND"] = str(BENCH_MESSAGE_RATE)
    env["IMSERVER_RATE_POSTS_BURST"] = str(BENCH_POST_BURST)
    # A load generator's connection sends far more frames than a person's: the
    # per-connection frame budget (gateway/ws_limits.py) is raised like the rate limit.
    env["IMSERVER_WS_FRAMES_BURST"] = str(BENCH_MESSAGE_RATE)
    env["IMSERVER_WS_FRAMES_PER_SECOND"] = str(BENCH_MESSAGE_RATE)
    # Public accounts run only under the provider's news licence (Art. 4): the bench's
    # own server is given a stand-in, valid for a day, so the fan-out scenario can post.
    env["IMSERVER_PROVIDER_NEWS_LICENCE"] = "bench-licence"
    env["IMSERVER_PROVIDER_NEWS_LICENCE_EXPIRES_AT"] = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    notes.append(
        f"per-user message rate limit raised to {BENCH_MESSAGE_RATE:,}/s (IMSERVER_RATE_MESSAGES_BURST / "
        "IMSERVER_RATE_MESSAGES_PER_SECOND), and the post burst to "
        f"{BENCH_POST_BURST:,} (IMSERVER_RATE_POSTS_BURST), and the WebSocket frame budget likewise "
        "(IMSERVER_WS_FRAMES_*): the checks run, they do not refuse"
    )
    try:
        # The first `operator create` also migrates the fresh database.
        reviewer = await _operator(env, workdir, REVIEWER, "reviewer")
        moderator = await _operator(env, workdir, MODERATOR, "moderator") if with_moderator else None
    except RuntimeError:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    port = free_port()
    argv = [sys.executable, "-m", "imserver.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--workers", str(workers)]
    process = Process(argv, env, workdir, owns_workdir=not keep)
    url = f"http://127.0.0.1:{port}"
    try:
        await process.wait_healthy(url)
    except BaseException:
        process.stop()
        raise
    if workers > 1:
        await _all_workers_up(process.pid, workers)
        notes.append(f"{workers} worker processes (serve --workers): RSS and CPU are summed over them")
    note(f"imserver started: pid {process.pid}, {url}, database {database_url or 'SQLite in ' + str(workdir)}")
    target = Target("imserver", url, pid=process.pid, notes=notes, _process=process)
    target.provisioner = Provisioner(url, operator=reviewer, moderator=moderator, progress=progress)
    return target


async def _all_workers_up(pid: int, workers: int) -> None:
    """Wait until the supervisor has its workers (each listens a moment after it exists)."""
    from .procstat import children

    deadline = time.monotonic() + START_TIMEOUT
    while len(children(pid)) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the supervisor has {len(children(pid))} of {workers} workers after {START_TIMEOUT:g} s")
        await asyncio.sleep(0.1)
    await asyncio.sleep(WORKER_SETTLE_S)


async def _operator(env: dict[str, str], workdir: Path, prefix: str, role: str) -> tuple[str, str]:
    """An operator with a fresh handle and password; (handle, password)."""
    password = secrets.token_urlsafe(16)
    handle = f"{prefix}-{secrets.token_hex(3)}"
    await asyncio.to_thread(create_operator, env, workdir, handle, password, role)
    return handle, password


def create_operator(env: dict[str, str], workdir: Path, handle: str, password: str, role: str) -> None:
    """``imserver operator create`` (the first one also migrates a fresh database)."""
    created = subprocess.run(
        [sys.executable, "-m", "imserver.cli", "operator", "create", "--handle", handle, "--role", role],
        env={**env, "IMSERVER_OPERATOR_PASSWORD": password},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    if created.returncode != 0:
        raise RuntimeError(f"imserver operator create --role {role} failed: {created.stderr.strip()[-800:]}")


async def start_relay() -> Target:
    workdir = Path(tempfile.mkdtemp(prefix="imserver-relay-"))
    port = free_port()
    argv = [sys.executable, "-m", "imserver.bench.relay", "--port", str(port)]
    process = Process(argv, _clean_env(), workdir, owns_workdir=True)
    url = f"http://127.0.0.1:{port}"
    try:
        await process.wait_healthy(url)
    except BaseException:
        process.stop()
        raise
    note(f"relay started: pid {process.pid}, {url}")
    return Target("relay", url, pid=process.pid, _process=process)


def existing(url: str, *, pid: int | None, operator: tuple[str, str] | None, progress: bool | None = None) -> Target:
    """A server that is already running (``--url``); RSS and CPU only with its pid."""
    url = url.rstrip("/")
    if url.startswith("ws"):
        url = "http" + url[2:]
    url = url.removesuffix("/ws")
    return Target("imserver", url, pid=pid, provisioner=Provisioner(url, operator=operator, progress=progress))
