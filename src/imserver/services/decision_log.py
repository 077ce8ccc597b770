"""Policy decisions, recorded in batches off the send path.

Every deny and hold is recorded with its reason code, the check that decided and
the time. A refused send must not cost a transaction of its own (a sender
flooding refused frames would otherwise turn each into a write), so decisions
are queued here and written together: at most every :data:`FLUSH_INTERVAL`
seconds, or at once when :data:`FLUSH_AT` are waiting. ``stop()`` writes what is
queued, so a clean stop loses nothing; a crash loses at most one interval's
decisions, never a message (messages are written by the writer, not here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..domain.clock import Clock
from ..domain.policy_types import Outgoing
from ..policy import Decision
from ..store import policy as store
from ..store.db import Database

log = logging.getLogger("imserver.decisions")

# How long a decision may wait for its batch: short enough that an operator
# looking at a refusal finds it recorded, long enough to batch a flood.
FLUSH_INTERVAL = 0.2
# A batch is written at once past this many rows (one INSERT of ~100 KB).
FLUSH_AT = 500
# Past this many waiting (the database is away), the oldest are dropped, counted and logged.
BACKLOG_MAX = 100_000


class DecisionLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.dropped = 0
        self._rows: list[dict] = []
        self._pending = asyncio.Event()  # something is queued
        self._full = asyncio.Event()  # FLUSH_AT are queued: write now
        self._task: asyncio.Task | None = None

    def add(self, outgoing: Outgoing, decision: Decision, *, message_id: int | None = None) -> None:
        """Queue one decision; returns at once."""
        if len(self._rows) >= BACKLOG_MAX:
            del self._rows[0]
            self.dropped += 1
        self._rows.append(
            {
                "user_id": outgoing.sender_id,
                "outgoing_kind": outgoing.kind.value,
                "outcome": decision.outcome.value,
                "reason": decision.reason.value if decision.reason else "",
                "check_name": decision.check,
                "detail": decision.detail,
                "at": self.clock.now(),
                "message_id": message_id,
            }
        )
        self._pending.set()
        if len(self._rows) >= FLUSH_AT:
            self._full.set()

    async def flush(self) -> None:
        """Write what is queued now (also what tests call to read decisions at once)."""
        while self._rows:
            rows, self._rows = self._rows[:FLUSH_AT], self._rows[FLUSH_AT:]
            try:
                async with self.db.transaction() as conn:
                    await store.record_decisions(conn, rows)
            except Exception:
                self._rows[:0] = rows  # kept for the next try
                raise

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="decision-log")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await self._pending.wait()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_INTERVAL):
                    await self._full.wait()
            self._pending.clear()
            self._full.clear()
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - retried next interval; the database's state is logged by its owner
                log.warning("recording %d policy decisions failed; retrying", len(self._rows))
