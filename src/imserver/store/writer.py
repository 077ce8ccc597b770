"""The group-commit message writer.

Sends that arrive while a commit is in flight are written together in the next
transaction: one fsync (SQLite) or one round of statements (PostgreSQL) for the
whole batch instead of one per message. Each caller awaits its own result, which
is set only after the batch has committed, so an ack is never ahead of the disk.

Batching is natural rather than timed: the writer takes everything queued the
moment it is free (up to ``max_batch``). Under light load a send commits
immediately; under heavy load batches grow by themselves while the previous one
commits. ``max_wait`` adds an optional short wait for more sends before a batch closes.

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
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from ..domain.errors import Unavailable
from .batch import batch_store
from .db import Database
from .messages import NewMessage, Stored

log = logging.getLogger("imserver.writer")

# A batch that hits a unique-key race with another node (the same retried send
# arriving on two nodes at once) is retried; after this many tries it is split.
RACE_RETRIES = 2

OnCommit = Callable[[list[NewMessage], list[Stored]], None]

# Unsafe mode only (test-only, see the module docstring): how long a batch waits
# between its acks and its commit. Long enough for an ack to reach a client on
# 127.0.0.1 and for the harness to SIGKILL the server before the commit.
UNSAFE_COMMIT_DELAY = 0.05


@dataclass(slots=True)
class _Item:
    message: NewMessage
    future: asyncio.Future
    queued_at: float  # time.perf_counter() when queued, for the commit-latency metric


class MessageWriter:
    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 256,
        max_wait: float = 0.0,
        on_commit: OnCommit | None = None,
        observe_batch: Callable[[int], None] | None = None,
        observe_commit: Callable[[list[float], float], None] | None = None,
        unsafe_ack_before_commit: bool = False,
        unsafe_commit_delay: float = UNSAFE_COMMIT_DELAY,
    ) -> None:
        self.db = db
        self.store = batch_store(db)  # one trip to the database per batch
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.on_commit = on_commit
        self.observe_batch = observe_batch
        # Called once per committed batch with each message's queued_at and the time now.
        self.observe_commit = observe_commit
        # Test-only: breaks durability on purpose (module docstring). Never on by default.
        self.unsafe_ack_before_commit = unsafe_ack_before_commit
        self.unsafe_commit_delay = unsafe_commit_delay
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        if self.unsafe_ack_before_commit:
            log.warning(
                "UNSAFE: messages are acknowledged %.0f ms before their commit "
                "(unsafe_ack_before_commit, a test-only setting): a crash loses acknowledged messages",
                self.unsafe_commit_delay * 1000,
            )
        self._task = asyncio.create_task(self._run(), name="message-writer")

    async def stop(self) -> None:
        """Commit everything already submitted, then stop."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None
        await self.store.close()

    def enqueue(self, message: NewMessage) -> asyncio.Future[Stored]:
        """Queue a message; the future resolves after its batch commits.

        Messages are committed in the order they are queued, so a sender's
        messages keep their order even when their acks are awaited concurrently.
        """
        if self._task is None or self._task.done():
            raise Unavailable("the message writer is not running")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(message, future, time.perf_counter()))
        return future

    async def submit(self, message: NewMessage) -> Stored:
        # shield: a caller that goes away does not cancel the commit.
        return await asyncio.shield(self.enqueue(message))

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            if self.max_wait > 0 and self._queue.empty():
                await asyncio.sleep(self.max_wait)
            while len(batch) < self.max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._commit(batch)

    async def _commit(self, batch: list[_Item]) -> None:
        msgs = [item.message for item in batch]
        published = False
        before_commit = None
        if self.unsafe_ack_before_commit:
            # Test-only (module docstring): ack first, then commit late, so a
            # kill in between loses acknowledged messages.
            async def before_commit(results: list[Stored]) -> None:
                nonlocal published
                self._publish(batch, msgs, results)
                published = True
                await asyncio.sleep(self.unsafe_commit_delay)

        for attempt in range(RACE_RETRIES + 1):
            try:
                results = await self.store.write(msgs, before_commit)
                break
            except IntegrityError:
                if attempt < RACE_RETRIES:
                    continue
                if len(batch) > 1:
                    # Isolate the one send that cannot be stored; the others still commit.
                    for item in batch:
                        await self._commit([item])
                    return
                self._fail(batch, Unavailable("the message could not be stored"))
                return
            except Exception as exc:  # noqa: BLE001 - handed to every waiting sender
                if not isinstance(exc, Unavailable):
                    log.exception("message batch of %d failed", len(batch))
                self._fail(batch, exc)
                return
        if not published:
            self._publish(batch, msgs, results)

    def _publish(self, batch: list[_Item], msgs: list[NewMessage], results: list[Stored]) -> None:
        """After the commit: fan-out in commit order, then each sender's result."""
        if self.observe_batch:
            self.observe_batch(len(batch))
        if self.observe_commit:
            self.observe_commit([item.queued_at for item in batch], time.perf_counter())
        if self.on_commit:
            try:
                self.on_commit(msgs, results)
            except Exception:  # noqa: BLE001 - delivery must not undo a commit
                log.exception("fan-out after commit failed; recipients will catch up by cursor")
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

    @staticmethod
    def _fail(batch: list[_Item], exc: BaseException) -> None:
        for item in batch:
            if not item.future.done():
                item.future.set_exception(exc)
