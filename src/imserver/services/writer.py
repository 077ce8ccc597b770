"""The group-commit message writer: the unit of work of the hot path.

Sends that arrive while a commit is in flight are written together in the next
transaction: one fsync (SQLite) or one round of statements (PostgreSQL) for the
whole batch instead of one per message. Each caller awaits its own result, which
is set only after the batch has committed, so an ack is never ahead of the disk.

Batching is natural rather than timed: the writer takes everything queued the
moment it is free (up to ``max_batch``). Under light load a send commits
immediately; under heavy load batches grow by themselves while the previous one
commits. ``max_wait`` adds an optional short wait for more sends before a batch closes.

Lanes: on PostgreSQL several batches can be in flight at once, one per lane,
each lane with its own connection. A sender always writes through the same lane
(``sender_id % lanes``), so its messages commit in the order it sent them. Two
lanes touching the same recipient serialise on that recipient's counter row
(locked in user-id order, so they cannot deadlock), which keeps every inbox
gap-free and its positions in commit order. Lanes finish independently, so a
recipient's live delivery can, rarely, see a later position before an earlier
one; the gateway's inbox stream then reads the gap from the store, as it does
after any lost delivery. SQLite has one writer at a time: one lane.

After each commit the writer hands the batch to ``on_commit`` (the messaging
service builds the deliveries and runs them through the after-commit effects),
then resolves every sender's future with its :class:`~.events.SendResult`. The
store (:mod:`imserver.store.batch`) only writes; it calls nothing back.

``unsafe_ack_before_commit`` is a test-only switch that breaks this guarantee
on purpose: each batch is acknowledged (futures resolved, fan-out run) after its
statements ran but *before* the commit, which then waits ``unsafe_commit_delay``
seconds. A process killed in that window loses messages that were already
acknowledged. It exists so the durability harness (``imserver durability
--unsafe``, :mod:`imserver.bench.durability`) can prove that it detects loss;
it is off unless ``IMSERVER_UNSAFE_ACK_BEFORE_COMMIT`` turns it on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ..domain.errors import Unavailable
from ..policy import Decision
from ..store.batch import BatchStore, KeyRace, batch_store
from ..store.db import Database
from ..store.messages import NewMessage, Stored
from .events import SendResult

log = logging.getLogger("imserver.writer")

# A batch that hits a unique-key race with another node (the same retried send
# arriving on two nodes at once) is retried; after this many tries it is split.
RACE_RETRIES = 2


# Unsafe mode only (test-only, see the module docstring): how long a batch waits
# between its acks and its commit. Long enough for an ack to reach a client on
# 127.0.0.1 and for the harness to SIGKILL the server before the commit.
UNSAFE_COMMIT_DELAY = 0.05


@dataclass(slots=True)
class Queued:
    """A send waiting for its batch's commit."""

    message: NewMessage
    future: asyncio.Future[SendResult]
    origin: int  # the submitting connection (opaque), handed back to fan-out; not stored
    decision: Decision | None  # the policy's hold, for a held message; None otherwise
    nickname: str  # the sender's, as the recipients' frames show it
    kind: str  # the conversation's kind (direct or group)


OnCommit = Callable[[list[Queued], list[Stored]], None]


@dataclass(slots=True)
class _Lane:
    """One batch in flight at a time: a queue, the task draining it, and its store."""

    store: BatchStore
    queue: asyncio.Queue[Queued | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task | None = None


class MessageWriter:
    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 256,
        max_wait: float = 0.0,
        lanes: int = 1,
        on_commit: OnCommit | None = None,
        observe_batch: Callable[[int], None] | None = None,
        unsafe_ack_before_commit: bool = False,
        unsafe_commit_delay: float = UNSAFE_COMMIT_DELAY,
    ) -> None:
        self.db = db
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.on_commit = on_commit
        self.observe_batch = observe_batch
        # Test-only: breaks durability on purpose (module docstring). Never on by default.
        self.unsafe_ack_before_commit = unsafe_ack_before_commit
        self.unsafe_commit_delay = unsafe_commit_delay
        # One trip to the database per batch; on PostgreSQL each lane keeps a connection of its own.
        self._lanes = [_Lane(batch_store(db)) for _ in range(max(1, lanes) if db.dialect != "sqlite" else 1)]

    @property
    def lanes(self) -> int:
        return len(self._lanes)

    async def start(self) -> None:
        if self.unsafe_ack_before_commit:
            log.warning(
                "UNSAFE: messages are acknowledged %.0f ms before their commit "
                "(unsafe_ack_before_commit, a test-only setting): a crash loses acknowledged messages",
                self.unsafe_commit_delay * 1000,
            )
        for i, lane in enumerate(self._lanes):
            lane.task = asyncio.create_task(self._run(lane), name=f"message-writer-{i}")

    async def stop(self) -> None:
        """Commit everything already submitted, then stop."""
        for lane in self._lanes:
            if lane.task is not None:
                lane.queue.put_nowait(None)
        for lane in self._lanes:
            if lane.task is not None:
                await lane.task
                lane.task = None
                await lane.store.close()

    def enqueue(
        self,
        message: NewMessage,
        *,
        origin: int = 0,
        decision: Decision | None = None,
        nickname: str = "",
        kind: str = "direct",
    ) -> asyncio.Future[SendResult]:
        """Queue a message; the future resolves after its batch commits.

        A sender's messages are committed in the order they are queued (one
        lane per sender), so they keep their order even when their acks are
        awaited concurrently.
        """
        lane = self._lanes[message.sender_id % len(self._lanes)]
        if lane.task is None or lane.task.done():
            raise Unavailable("the message writer is not running")
        future = asyncio.get_running_loop().create_future()
        lane.queue.put_nowait(Queued(message, future, origin, decision, nickname, kind))
        return future

    async def _run(self, lane: _Lane) -> None:
        queue = lane.queue
        stopping = False
        while not stopping:
            first = await queue.get()
            if first is None:
                break
            batch = [first]
            if self.max_wait > 0 and queue.empty():
                await asyncio.sleep(self.max_wait)
            while len(batch) < self.max_batch and not queue.empty():
                item = queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._commit(lane.store, batch)

    async def _commit(self, store: BatchStore, batch: list[Queued]) -> None:
        msgs = [item.message for item in batch]
        published = False
        before_commit = None
        if self.unsafe_ack_before_commit:
            # Test-only (module docstring): ack first, then commit late, so a
            # kill in between loses acknowledged messages.
            async def before_commit(results: list[Stored]) -> None:
                nonlocal published
                self._publish(batch, results)
                published = True
                await asyncio.sleep(self.unsafe_commit_delay)

        for attempt in range(RACE_RETRIES + 1):
            try:
                results = await store.write(msgs, before_commit)
                break
            except KeyRace:
                if attempt < RACE_RETRIES:
                    continue
                if len(batch) > 1:
                    # Isolate the one send that cannot be stored; the others still commit.
                    for item in batch:
                        await self._commit(store, [item])
                    return
                self._fail(batch, Unavailable("the message could not be stored"))
                return
            except Exception as exc:  # noqa: BLE001 - handed to every waiting sender
                if not isinstance(exc, Unavailable):
                    log.exception("message batch of %d failed", len(batch))
                self._fail(batch, exc)
                return
        if not published:
            self._publish(batch, results)

    def _publish(self, batch: list[Queued], results: list[Stored]) -> None:
        """After the commit: fan-out in commit order, then each sender's result."""
        if self.observe_batch:
            self.observe_batch(len(batch))
        if self.on_commit:
            try:
                self.on_commit(batch, results)
            except Exception:  # noqa: BLE001 - delivery must not undo a commit
                log.exception("fan-out after commit failed; recipients will catch up by cursor")
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(SendResult.of(result, item.decision))

    @staticmethod
    def _fail(batch: list[Queued], exc: BaseException) -> None:
        for item in batch:
            if not item.future.done():
                item.future.set_exception(exc)
