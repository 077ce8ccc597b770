"""The durability proof: SIGKILL the server while clients send; no acknowledged message is lost.

Theory of operation
-------------------
1. ``imserver serve`` runs as a subprocess (:class:`ServerProcess`) on a free
   127.0.0.1 port, with SQLite in a temporary directory unless a database URL
   is given. A reviewer operator is made first with ``imserver operator
   create`` (which also migrates); users are then provisioned over the public
   APIs (:mod:`.provision`): senders with an approved identity, receivers
   without (receiving needs none).
2. Each :class:`Sender` keeps up to :data:`WINDOW` sends in flight through the
   client SDK (``send_nowait``), each with a unique ``client_msg_id``, to the
   receivers in turn, and records every accepted ack.
3. The controller SIGKILLs the server ``kills`` times, and restarts it on the
   same port and database; the senders reconnect. A kill comes after a random
   pause and at least one ack in the round; every other kill is aimed right
   after an ack arrives, when the next batch is often committed but not yet
   acknowledged. Sends never acknowledged are retried with the same
   ``client_msg_id``: the server must answer with the first ack ("already
   stored") and store nothing twice. Each restart's interpreter is started
   ahead of time and waits with its imports done (:data:`SPARE_BOOT`), so a
   restart costs the server's own start-up only.
4. After the last restart the senders stop starting new messages and settle
   their retries; every user then syncs its inbox from 0 and :func:`check`
   compares what the inboxes hold with what was acknowledged.

What counts as a failure (each must be zero):

* ``lost``: an acknowledged message that is not in its recipient's inbox;
* ``duplicates``: a (sender, ``client_msg_id``) more than once in one inbox;
* ``gaps``: an inbox whose seqs are not exactly 1..N, or whose replay stops
  short of the inbox counter the server reports in ``hello``;
* ``seq mismatches``: the sender's own inbox does not hold the message at the
  seq its ack named (or holds it under another message id);
* ``unreadable``: an inbox whose sync did not complete.

A clean report only means something if the harness can fail. With ``unsafe``
the server runs with ``unsafe_ack_before_commit`` (a test-only setting: each
batch is acknowledged before its commit, which then waits), and each kill is
aimed right after an ack arrives, inside that window: the same check must
then report loss. ``tests/test_durability.py`` runs both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..children import death_signal

if TYPE_CHECKING:  # the SDK and httpx are imported when a run starts: `imserver serve` builds this parser too
    from ..client import Client
    from .peer import Account

# Sends one sender keeps in flight: pipelining fills the group-commit batches,
# so a kill usually lands with a batch mid-commit; well under the server's
# per-connection bound (gateway MAX_INFLIGHT_SENDS = 256).
WINDOW = 64
# Random pause before each kill, in seconds: long enough for senders to
# reconnect and get acks, short enough that a run of 20 kills stays short.
KILL_INTERVAL = (0.3, 1.0)
# Each round (restart to next kill) waits for at least this many acks, so every
# kill interrupts real traffic; the wait is bounded by ROUND_TIMEOUT.
MIN_ACKS_PER_ROUND = 1
ROUND_TIMEOUT = 30.0
# Unsafe mode: the server's ack-to-commit window. Wide enough that a kill sent
# as soon as an ack arrives lands inside it on a loaded 2-core machine.
UNSAFE_COMMIT_DELAY_MS = 200.0
START_TIMEOUT = 60.0  # interpreter start-up plus migrations on a fresh database
RECONNECT_DELAY = 0.05  # seconds between a sender's connection attempts while the server is down
CONNECT_TIMEOUT = 5.0  # one connection attempt (TCP, upgrade, auth)
ACK_TIMEOUT = 10.0  # no ack at all for this long: drop the connection and retry
DRAIN_TIMEOUT = 30.0  # after the last round: how long senders may take to settle their retries
SYNC_TIMEOUT = 120.0  # the final replay of one inbox (tens of thousands of messages)
MAX_PROBLEMS = 20  # problems quoted in the report; the counts cover all of them
DEFAULT_MAX_SECONDS = 600.0  # the whole run, set-up and check included (a bound, not a goal)
DEFAULT_MAX_MESSAGES = 200_000  # new messages per sender, a bound on the final check's size
# Sent rejections that are worth retrying with the same client_msg_id.
RETRYABLE = {"unavailable", "rate_limited"}
# Settings a caller may give the server through the environment; every other
# IMSERVER_* variable is dropped so the harness alone configures its server.
PASSED_THROUGH = ("IMSERVER_MASTER_KEYS", "IMSERVER_MASTER_KEY_ID", "IMSERVER_HMAC_KEY", "IMSERVER_MIGRATIONS_DIR")
# argon2 for the harness's server: what the test suite uses (tests/conftest.py);
# only set-up hashes passwords, the message path never does.
ARGON2_MEMORY_KIB = 1024
ARGON2_TIME_COST = 1
# The policy pipeline's per-user rate limit would throttle the senders; the
# rate-limit check has tests of its own.
UNLIMITED_RATE = "1000000000"


# -- what is recorded and what is reported ----------------------------------------------


@dataclass(frozen=True, slots=True)
class AckRecord:
    """An accepted ack, as the sender received it."""

    sender_id: int
    client_msg_id: str
    to: int  # the receiving user
    message_id: int
    seq: int | None  # the sender's own inbox seq of the message
    duplicate: bool  # the ack of a retry the server recognised as already stored


@dataclass(frozen=True, slots=True)
class Entry:
    """One inbox entry as the final sync returned it."""

    seq: int
    sender_id: int
    client_msg_id: str
    message_id: int


@dataclass(slots=True)
class Inbox:
    """A user's inbox after the final sync: its entries, and the counter ``hello`` reported."""

    entries: list[Entry]
    last_seq: int


@dataclass(slots=True)
class Findings:
    lost: int = 0
    duplicates: int = 0
    gaps: int = 0
    seq_mismatches: int = 0
    unreadable: int = 0
    problems: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


@dataclass
class DurabilityReport:
    """The figures of one run; ``ok`` when nothing acknowledged was lost, doubled or misplaced."""

    database: str  # "sqlite" or "postgresql"
    unsafe: bool
    kills: int  # SIGKILLs delivered (each followed by a restart)
    senders: int
    receivers: int
    sent: int  # distinct client_msg_ids sent
    resent: int  # sends repeated with the same client_msg_id after a reconnect or a retryable rejection
    acked: int  # distinct client_msg_ids accepted
    acked_on_retry: int  # of those, acked as "already stored" (the first ack was lost with the server)
    unacked: int  # sent but never acknowledged: no guarantee applies, they may or may not be stored
    rejected: int  # refused for good (should be 0: the harness's users may send)
    lost: int
    duplicates: int
    gaps: int
    seq_mismatches: int
    unreadable: int
    acks_per_round: list[int]  # acks between a (re)start and the next kill, then after the last restart
    restart_seconds: list[float]  # each restart after a kill: spawn to /healthz answering 200
    elapsed: float  # seconds, set-up and check included
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.gaps or self.seq_mismatches or self.unreadable)

    def rows(self) -> list[tuple[str, str]]:
        rounds, restarts = self.acks_per_round, self.restart_seconds
        mean = sum(restarts) / len(restarts) if restarts else 0.0
        return [
            ("database", self.database + (" (UNSAFE: acks before commit)" if self.unsafe else "")),
            ("kills (SIGKILL + restart)", str(self.kills)),
            ("senders / receivers", f"{self.senders} / {self.receivers}"),
            ("messages sent", str(self.sent)),
            ("re-sent (same client_msg_id)", str(self.resent)),
            ("messages acked", str(self.acked)),
            ("  acked on retry as stored", str(self.acked_on_retry)),
            ("sent, never acked", str(self.unacked)),
            ("rejected", str(self.rejected)),
            ("acks per round (min / max)", f"{min(rounds, default=0)} / {max(rounds, default=0)}"),
            ("restart to /healthz (mean / max)", f"{mean:.2f} / {max(restarts, default=0):.2f} s"),
            ("acked but missing (loss)", str(self.lost)),
            ("duplicates", str(self.duplicates)),
            ("seq gaps", str(self.gaps)),
            ("ack seq mismatches", str(self.seq_mismatches)),
            ("inboxes not readable", str(self.unreadable)),
            ("elapsed", f"{self.elapsed:.1f} s"),
            ("verdict", "OK: every acked message exactly once, no gap" if self.ok else "FAILED"),
        ]

    def table(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        lines = [f"{k:<{width}}  {v}" for k, v in self.rows()]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def check(inboxes: dict[int, Inbox | None], acks: list[AckRecord]) -> Findings:
    """Compare the inboxes (None: not readable) with the acks. Pure: no I/O."""
    f = Findings()
    index: dict[int, dict[tuple[int, str], list[Entry]]] = {}
    by_seq: dict[int, dict[int, Entry]] = {}
    for user, inbox in sorted(inboxes.items()):
        if inbox is None:
            f.unreadable += 1
            f.note(f"user {user}: the inbox sync did not complete")
            continue
        expected = 1
        for e in inbox.entries:
            if e.seq != expected:
                f.gaps += 1
                f.note(f"user {user}: seq {e.seq} follows {expected - 1}")
            expected = e.seq + 1
        if inbox.last_seq > expected - 1:
            f.gaps += 1
            f.note(f"user {user}: the replay stops at seq {expected - 1}, the inbox counter is at {inbox.last_seq}")
        keys: dict[tuple[int, str], list[Entry]] = {}
        for e in inbox.entries:
            keys.setdefault((e.sender_id, e.client_msg_id), []).append(e)
        for (sender, cmid), found in keys.items():
            if len(found) > 1:
                f.duplicates += len(found) - 1
                f.note(f"user {user}: {cmid} of user {sender} at seqs {[e.seq for e in found]}")
        index[user] = keys
        by_seq[user] = {e.seq: e for e in inbox.entries}
    for ack in acks:
        key = (ack.sender_id, ack.client_msg_id)
        if ack.to in index:
            copies = index[ack.to].get(key)
            if not copies:
                f.lost += 1
                f.note(
                    f"lost: {ack.client_msg_id} of user {ack.sender_id} (message {ack.message_id}) "
                    f"was acked, not in user {ack.to}'s inbox"
                )
            elif copies[0].message_id != ack.message_id:
                f.seq_mismatches += 1
                f.note(f"{ack.client_msg_id}: acked as message {ack.message_id}, stored as {copies[0].message_id}")
        if ack.sender_id in by_seq:
            own = by_seq[ack.sender_id].get(ack.seq) if ack.seq is not None else None
            if own is None or (own.sender_id, own.client_msg_id) != key:
                f.seq_mismatches += 1
                held = f"{own.client_msg_id} of user {own.sender_id}" if own else "nothing"
                f.note(f"{ack.client_msg_id}: acked at the sender's seq {ack.seq}, which holds {held}")
    return f


# -- the server under test ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Each start's interpreter is launched ahead of time (a warm spare): it imports
# the server's modules and builds an app once (routes only: nothing is opened
# before the lifespan runs), says so by creating the file named in
# SPARE_READY_ENV, waits for a line on stdin, then runs exactly what `python -m
# imserver.cli serve ...` runs. A restart then costs the app's start-up, not the
# imports (seconds on a busy 2-core machine).
SPARE_READY_ENV = "DURABILITY_SPARE_READY"
SPARE_BOOT = (
    "import os, sys\n"
    "import uvicorn.loops.auto, uvicorn.protocols.http.auto, uvicorn.protocols.websockets.auto\n"
    "import imserver.cli\n"
    "from imserver.app import create_app\n"
    "from imserver.config import Settings\n"
    "create_app(Settings())\n"
    f"open(os.environ[{SPARE_READY_ENV!r}], 'w').close()\n"
    "if not sys.stdin.readline():\n"
    "    sys.exit(0)  # the harness went away before starting this one\n"
    "sys.exit(imserver.cli.main(sys.argv[1:]))\n"
)


class ServerProcess:
    """``imserver serve`` as a subprocess that can be SIGKILLed and restarted on the same port and data.

    Only ``popen`` (the serving process) is ever killed by :meth:`kill`; the warm
    spare waiting to become the next one is killed by :meth:`kill_now` at the end.
    """

    def __init__(self, workdir: Path, *, database_url: str | None, unsafe: bool, unsafe_delay_ms: float) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMSERVER_") or k in PASSED_THROUGH}
        env.update(
            IMSERVER_DATA_DIR=str(workdir / "data"),
            IMSERVER_ARGON2_MEMORY_KIB=str(ARGON2_MEMORY_KIB),
            IMSERVER_ARGON2_TIME_COST=str(ARGON2_TIME_COST),
            IMSERVER_RATE_MESSAGES_BURST=UNLIMITED_RATE,
            IMSERVER_RATE_MESSAGES_PER_SECOND=UNLIMITED_RATE,
            IMSERVER_NODE_ID="durability",
        )
        if database_url:
            env["IMSERVER_DATABASE_URL"] = database_url
        if unsafe:
            env["IMSERVER_UNSAFE_ACK_BEFORE_COMMIT"] = "true"
            env["IMSERVER_UNSAFE_COMMIT_DELAY_MS"] = str(unsafe_delay_ms)
        self.env = env
        self.popen: subprocess.Popen | None = None  # the serving process
        self._spare: subprocess.Popen | None = None  # the next one, imports done, waiting on stdin
        self._spare_ready = workdir / "spare-0.ready"  # created by the spare once its imports are done
        self._spawned = 0
        self.starts = 0

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def create_operator(self, handle: str, password: str) -> None:
        """``imserver operator create --role reviewer``; it also migrates the database."""
        from .targets import create_operator  # here: targets imports httpx, and `imserver serve` builds this parser

        create_operator(self.env, self.workdir, handle, password, "reviewer")

    async def start(self) -> float:
        """Start (or restart) the server and wait for /healthz; returns the seconds it took.

        Migrations ran in create_operator, so the server starts with --no-migrate.
        """
        import httpx

        began = time.monotonic()
        self.warm()
        process, self._spare = self._spare, None
        assert process is not None and process.stdin is not None
        process.stdin.write(b"serve\n")  # the spare's cue: run `imserver serve` now
        process.stdin.close()
        self.popen = process
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"the server exited with {process.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(self.url + "/healthz")).status_code == 200:
                        took = time.monotonic() - began
                        self.warm()  # the next start's interpreter warms up while this one serves
                        return took
                await asyncio.sleep(0.05)
        raise RuntimeError(f"the server did not answer /healthz within {START_TIMEOUT:g} s:\n{self.log_tail()}")

    def warm(self) -> None:
        """Make sure a spare is importing (or waiting): the next start will not wait for imports."""
        if self._spare is None or self._spare.poll() is not None:
            self._spare = self._spawn()

    async def spare_ready(self, timeout: float = START_TIMEOUT) -> bool:
        """Wait until the spare has done its imports; False if it did not in time (or died)."""
        self.warm()
        spare, ready = self._spare, self._spare_ready
        assert spare is not None
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if spare.poll() is not None or time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def _spawn(self) -> subprocess.Popen:
        argv = [sys.executable, "-c", SPARE_BOOT, "serve", "--no-migrate", "--host", "127.0.0.1",
                "--port", str(self.port), "--log-level", "warning"]  # fmt: skip
        self._spawned += 1
        self._spare_ready = self.workdir / f"spare-{self._spawned}.ready"
        with open(self.log_path, "ab") as log:  # every process appends: the log covers the whole run
            return subprocess.Popen(
                argv,
                env={**self.env, SPARE_READY_ENV: str(self._spare_ready)},
                cwd=self.workdir,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=death_signal(signal.SIGKILL),  # noqa: PLW1509 - one prctl call, nothing that takes a lock
            )

    async def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed. Returns once the process is gone."""
        if self.popen is None or self.popen.poll() is not None:
            return
        os.kill(self.popen.pid, signal.SIGKILL)
        while self.popen.poll() is None:
            await asyncio.sleep(0.005)

    def kill_now(self) -> None:
        """The final cleanup: SIGKILL the server and the spare, and reap them."""
        for process in (self.popen, self._spare):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
            if process is not None and process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# -- the clients ------------------------------------------------------------------------------


class Progress:
    """Acks counted across senders; the controller waits on it to time its kills."""

    def __init__(self) -> None:
        self.acks = 0
        self._changed = asyncio.Event()

    def ack(self) -> None:
        self.acks += 1
        self._changed.set()

    async def wait_for(self, acks: int, timeout: float) -> bool:
        """Wait until at least `acks` acks were counted; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.acks < acks:
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True


class Sender:
    """One user sending continuously to the receivers, pipelined, through the SDK."""

    def __init__(self, index: int, account: Account, receivers: list[int], ws_url: str, max_messages: int) -> None:
        self.index = index
        self.account = account
        self.receivers = receivers
        self.ws_url = ws_url
        self.max_messages = max_messages
        self.unacked: dict[str, int] = {}  # client_msg_id -> receiver: sent, no ack yet
        self.acked: dict[str, AckRecord] = {}
        self.rejected: dict[str, str] = {}  # client_msg_id -> reason
        self.resent = 0
        self.connections = 0
        self._made = 0  # new client_msg_ids made so far
        self._retry: list[str] = []  # rejected as retryable: send again in this session

    def _new(self) -> tuple[str, int]:
        cmid = f"d{self.index}-{self._made}"
        to = self.receivers[self._made % len(self.receivers)]
        self._made += 1
        self.unacked[cmid] = to
        return cmid, to

    @property
    def sent(self) -> int:
        return self._made

    def _finished(self, stop_new: asyncio.Event) -> bool:
        """Nothing left to do: no new messages to make, every send acked (or refused for good)."""
        return not self.unacked and (stop_new.is_set() or self._made >= self.max_messages)

    async def run(self, progress: Progress, stop_new: asyncio.Event, done: asyncio.Event) -> None:
        """Send until `done` (or, once `stop_new` is set, until every send is acked); reconnect after each loss."""
        from websockets.exceptions import WebSocketException

        from ..client import Client, ClientError

        while not done.is_set() and not self._finished(stop_new):
            try:
                client = await Client.connect(self.ws_url, self.account.token, timeout=CONNECT_TIMEOUT)
            except (ClientError, WebSocketException, OSError, TimeoutError):
                await asyncio.sleep(RECONNECT_DELAY)  # the server is down or starting
                continue
            self.connections += 1
            inflight: dict[asyncio.Future, str] = {}
            try:
                await self._session(client, inflight, progress, stop_new, done)
            except (ClientError, WebSocketException, OSError, TimeoutError):
                pass  # killed under us: reconnect and retry what was not acked
            finally:
                await client.close()
                for future in inflight:  # failed by close(); retrieved so asyncio does not warn
                    if future.done() and not future.cancelled():
                        future.exception()

    async def _session(self, client: Client, inflight: dict, progress: Progress, stop_new, done) -> None:
        async def send(cmid: str, to: int) -> None:
            future = await client.send_nowait(f"durability {cmid}", to_user=to, client_msg_id=cmid)
            inflight[future] = cmid

        # 1. Whatever was sent before the kill and never acked: same client_msg_id.
        self._retry.clear()
        for cmid, to in list(self.unacked.items()):
            self.resent += 1
            await send(cmid, to)
        while not done.is_set():
            # 2. Keep the window full.
            while self._retry and len(inflight) < WINDOW:
                cmid = self._retry.pop()
                self.resent += 1
                await send(cmid, self.unacked[cmid])
            while len(inflight) < WINDOW and not stop_new.is_set() and self._made < self.max_messages:
                await send(*self._new())
            if not inflight:
                if self._finished(stop_new):
                    return
                await asyncio.sleep(RECONNECT_DELAY)  # only retryable rejections are left: pace them
                continue
            finished, _ = await asyncio.wait(inflight, timeout=ACK_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
            if not finished:
                raise TimeoutError("no ack within ACK_TIMEOUT")
            for future in finished:
                cmid = inflight.pop(future)
                self._settle(cmid, future.result(), progress)  # raises ClientError when disconnected
            if self._retry:
                await asyncio.sleep(RECONNECT_DELAY)

    def _settle(self, cmid: str, ack, progress: Progress) -> None:
        if ack.status == "accepted" and ack.message_id is not None:
            to = self.unacked.pop(cmid)
            self.acked[cmid] = AckRecord(self.account.id, cmid, to, ack.message_id, ack.seq, ack.duplicate)
            progress.ack()
        elif ack.status == "rejected" and ack.reason in RETRYABLE:
            self._retry.append(cmid)
        else:
            self.rejected[cmid] = f"{ack.status}: {ack.reason}"
            self.unacked.pop(cmid, None)


async def read_inbox(ws_url: str, token: str) -> Inbox | None:
    """Sync a user's inbox from seq 0; None when the replay does not complete."""
    from websockets.exceptions import WebSocketException

    from ..client import Client, ClientError

    try:
        client = await Client.connect(ws_url, token, timeout=CONNECT_TIMEOUT)
    except (ClientError, WebSocketException, OSError, TimeoutError):
        return None
    try:
        await client.sync(0, timeout=SYNC_TIMEOUT)  # as Client.connect(..., inbox_after=0), closable on timeout
        entries = []
        while client.pending_messages():  # the replay's frames all arrived before `synced`
            m = await client.next_message()
            entries.append(Entry(m.seq, m.sender_id, m.client_msg_id, m.message_id))
        return Inbox(entries, client.hello.inbox_seq if client.hello else 0)
    except (ClientError, WebSocketException, OSError, TimeoutError):
        return None
    finally:
        await client.close()


# -- the run ------------------------------------------------------------------------------------


async def run(
    *,
    kills: int = 4,
    senders: int = 2,
    receivers: int = 2,
    database_url: str | None = None,
    unsafe: bool = False,
    interval: tuple[float, float] = KILL_INTERVAL,
    unsafe_delay_ms: float = UNSAFE_COMMIT_DELAY_MS,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    max_messages: int = DEFAULT_MAX_MESSAGES,
    seed: int | None = None,
    keep: bool = False,
    log=None,
) -> DurabilityReport:
    """Run the harness once and return its figures (see the module docstring).

    Bounded: at most ``max_seconds`` overall (kills not yet made when it runs
    out are skipped and the report shows fewer), at most ``max_messages`` new
    messages per sender. The server subprocess is killed on the way out,
    whatever happens; its directory is removed unless ``keep``.
    """
    from .provision import Provisioner

    say = log or (lambda _text: None)
    rng = random.Random(seed)
    started = time.monotonic()
    deadline = started + max_seconds
    workdir = Path(tempfile.mkdtemp(prefix="imserver-durability-"))
    server = ServerProcess(workdir, database_url=database_url, unsafe=unsafe, unsafe_delay_ms=unsafe_delay_ms)
    provisioner = None
    try:
        handle, password = f"durability-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
        server.warm()  # imports while the operator is created and the database migrated
        await asyncio.to_thread(server.create_operator, handle, password)
        await server.start()
        say(f"server up: {server.url}, data in {workdir}")
        provisioner = Provisioner(server.url, operator=(handle, password))
        sender_accounts = await provisioner.users(senders, verified=True)
        receiver_accounts = await provisioner.users(receivers, verified=False)
        clients = [
            Sender(i, a, [r.id for r in receiver_accounts], server.ws_url, max_messages)
            for i, a in enumerate(sender_accounts)
        ]
        progress = Progress()
        rounds, restarts, killed = await _kill_rounds(
            server, clients, progress, kills=kills, unsafe=unsafe, interval=interval, rng=rng, deadline=deadline, say=say
        )
        say(f"{killed} kills done; reading {len(sender_accounts) + len(receiver_accounts)} inboxes from seq 0")
        users = [*sender_accounts, *receiver_accounts]
        inboxes = await asyncio.gather(*(read_inbox(server.ws_url, a.token) for a in users))
        acks = [ack for s in clients for ack in s.acked.values()]
        findings = check(dict(zip([a.id for a in users], inboxes, strict=True)), acks)
        return DurabilityReport(
            database="sqlite" if not database_url or database_url.startswith("sqlite") else "postgresql",
            unsafe=unsafe,
            kills=killed,
            senders=senders,
            receivers=receivers,
            sent=sum(s.sent for s in clients),
            resent=sum(s.resent for s in clients),
            acked=len(acks),
            acked_on_retry=sum(a.duplicate for a in acks),
            unacked=sum(len(s.unacked) for s in clients),
            rejected=sum(len(s.rejected) for s in clients),
            lost=findings.lost,
            duplicates=findings.duplicates,
            gaps=findings.gaps,
            seq_mismatches=findings.seq_mismatches,
            unreadable=findings.unreadable,
            acks_per_round=rounds,
            restart_seconds=restarts,
            elapsed=time.monotonic() - started,
            problems=findings.problems + [f"rejected: {r}" for r in _first_rejections(clients)],
        )
    finally:
        server.kill_now()
        if provisioner is not None:
            await provisioner.close()
        if keep:
            say(f"kept: {workdir} (server log: {server.log_path})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def _kill_rounds(
    server: ServerProcess,
    clients: list[Sender],
    progress: Progress,
    *,
    kills: int,
    unsafe: bool,
    interval: tuple[float, float],
    rng: random.Random,
    deadline: float,
    say,
) -> tuple[list[int], list[float], int]:
    """Run the senders, SIGKILL and restart the server `kills` times, then let the senders settle.

    Returns the acks counted in each round, the seconds each restart took, and the kills made.
    """
    stop_new, done = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(s.run(progress, stop_new, done), name=f"durability-sender-{s.index}") for s in clients]
    rounds: list[int] = []
    restarts: list[float] = []
    killed = 0

    def left() -> float:
        return max(0.1, deadline - time.monotonic())

    try:
        at_start = 0
        while killed < kills and time.monotonic() < deadline:
            # The restart measures the server's own start-up, not the spare's imports.
            await server.spare_ready(min(START_TIMEOUT, left()))
            await asyncio.sleep(rng.uniform(*interval))
            # Every kill interrupts real traffic: wait for this round's acks.
            await progress.wait_for(at_start + MIN_ACKS_PER_ROUND, min(ROUND_TIMEOUT, left()))
            if unsafe or killed % 2:
                # Kill as soon as an ack arrives. Unsafe: that is inside the
                # ack-to-commit window. Safe (every other kill): the next batch is
                # then often committed but not yet acked, so the retries must
                # come back as "already stored", not as new messages.
                await progress.wait_for(progress.acks + 1, min(ROUND_TIMEOUT, left()))
            await server.kill()
            killed += 1
            rounds.append(progress.acks - at_start)
            say(f"kill {killed}/{kills}: {rounds[-1]} acks in the round, {progress.acks} in all")
            restarts.append(await server.start())
            at_start = progress.acks
        # The last round: the senders reconnect, retry and get fresh acks; then
        # they stop making new messages and settle what is still unacked.
        await asyncio.sleep(rng.uniform(*interval))
        await progress.wait_for(at_start + MIN_ACKS_PER_ROUND, min(ROUND_TIMEOUT, left()))
        rounds.append(progress.acks - at_start)
        stop_new.set()
        await asyncio.wait(tasks, timeout=min(DRAIN_TIMEOUT, left()))
    finally:
        stop_new.set()
        done.set()
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    crashed = [r for r in results if isinstance(r, Exception)]
    if crashed:
        raise RuntimeError("a sender crashed") from crashed[0]
    return rounds, restarts, killed


def _first_rejections(clients: list[Sender]) -> list[str]:
    found = [f"{cmid}: {why}" for s in clients for cmid, why in s.rejected.items()]
    return found[:3]


# -- the command ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``imserver durability`` (registered by imserver.cli; cheap: argparse only)."""
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs of the server (default 10)")
    parser.add_argument("--senders", type=int, default=2, help="sending users, one connection each (default 2)")
    parser.add_argument("--receivers", type=int, default=2, help="receiving users; each sender sends to all (default 2)")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary directory")
    parser.add_argument(
        "--unsafe",
        action="store_true",
        help="run the server with unsafe_ack_before_commit (test-only) and aim the kills at the window: must report loss",
    )
    parser.add_argument("--interval", type=float, nargs=2, default=KILL_INTERVAL, metavar=("MIN", "MAX"),
                        help="random pause before each kill, in seconds (default 0.3 1.0)")  # fmt: skip
    parser.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS, help="bound on the whole run")
    parser.add_argument("--max-messages", type=int, default=DEFAULT_MAX_MESSAGES, help="bound on new messages per sender")
    parser.add_argument("--seed", type=int, default=None, help="seed of the kill timing")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and the server log")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options; print the table (or JSON). Exit status 0 only when nothing was lost, doubled or misplaced."""
    import json

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    report = asyncio.run(
        run(
            kills=args.kills,
            senders=args.senders,
            receivers=args.receivers,
            database_url=args.database_url,
            unsafe=args.unsafe,
            interval=tuple(args.interval),
            max_seconds=args.max_seconds,
            max_messages=args.max_messages,
            seed=args.seed,
            keep=args.keep,
            log=say,
        )
    )
    print(json.dumps(report.as_dict()) if args.json else report.table())
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imserver durability", description=__doc__.split("\n", 1)[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
