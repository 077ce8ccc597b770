"""Records written off the request path: queued, many to a transaction, kept until written.

The network log's WebSocket rows and the policy decisions are written this way:
a burst (2,000 sockets reconnecting, a sender flooding refused frames) is a
few transactions instead of one per row, and nothing waits for them. A batch
the database refuses goes back to the head of the queue and is tried again
(after 0.5 s, doubling to 10 s), so an outage delays rows instead of losing
them. Only when ``max_queued`` rows wait are the oldest dropped, counted and
logged. ``stop()`` writes what is queued, so a clean stop loses nothing; a
crash loses what was queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("imserver.records")

RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0


class RowQueue:
    def __init__(
        self,
        name: str,
        write: Callable[[list[dict]], Awaitable[None]],
        *,
        batch_rows: int = 500,
        linger: float = 0.0,
        max_queued: int = 100_000,
        on_drop: Callable[[], None] = lambda: None,
    ) -> None:
        """``write`` stores a list of rows in one transaction; ``linger`` is how long
        a batch may wait for more rows (0: written as soon as the loop is free)."""
        self.name = name
        self.batch_rows = batch_rows
        self.linger = linger
        self.max_queued = max_queued
        self.dropped = 0  # rows given up because max_queued were waiting
        self.writes = 0  # transactions committed
        self._write = write
        self._on_drop = on_drop
        self._rows: list[dict] = []
        self._task: asyncio.Task | None = None
        self._full: asyncio.Event | None = None  # set when a lingering batch has filled

    @property
    def queued(self) -> int:
        return len(self._rows)

    def add(self, row: dict) -> None:
        """Queue a row; returns at once."""
        if len(self._rows) >= self.max_queued:
            del self._rows[0]
            self.dropped += 1
            self._on_drop()
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.error("%s: queue full, %d rows dropped so far", self.name, self.dropped)
        self._rows.append(row)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
        elif self._full is not None and len(self._rows) >= self.batch_rows:
            self._full.set()

    async def flush(self) -> None:
        """Write everything queued now; raises if the database refuses (the rows stay queued)."""
        while self._rows:
            await self._write_batch()

    async def stop(self) -> None:
        """Stop the background writer and write what is queued (one try; what fails is logged)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush()
        except Exception:  # noqa: BLE001 - shutting down: say what is lost, do not stop the shutdown
            log.exception("%s: %d rows could not be written at shutdown", self.name, len(self._rows))

    async def _run(self) -> None:
        delay = RETRY_FIRST_SECONDS
        try:
            while self._rows:
                if self.linger and len(self._rows) < self.batch_rows:
                    self._full = asyncio.Event()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.linger):
                            await self._full.wait()
                    self._full = None
                try:
                    await self._write_batch()
                except Exception:  # noqa: BLE001 - kept queued and retried: a lost row is a lost record
                    log.exception("%s: writing %d rows failed; retrying in %.1f s", self.name, len(self._rows), delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_SECONDS)
                    continue
                delay = RETRY_FIRST_SECONDS
        finally:
            self._task = self._full = None

    async def _write_batch(self) -> None:
        rows, self._rows = self._rows[: self.batch_rows], self._rows[self.batch_rows :]
        try:
            await self._write(rows)
        except BaseException:
            self._rows[:0] = rows  # back at the head, in order
            raise
        self.writes += 1
