"""Policy decisions, recorded in batches off the send path.

Every deny and hold is recorded with its reason code, the check that decided and
the time. A refused send must not cost a transaction of its own (a sender
flooding refused frames would otherwise turn each into a write), so decisions
are queued here and written together (services/row_queue.py): at most
:data:`FLUSH_INTERVAL` seconds after the first, or at once when :data:`FLUSH_AT`
are waiting. ``stop()`` writes what is queued, so a clean stop loses nothing; a
crash loses what was queued, never a message (messages are written by the
writer, not here).
"""

from __future__ import annotations

from ..domain.clock import Clock
from ..domain.policy_types import Outgoing
from ..policy import Decision
from ..store import policy as store
from ..store.db import Database
from .row_queue import RowQueue

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
        self.queue = RowQueue(
            "decision-log", self._write_rows, batch_rows=FLUSH_AT, linger=FLUSH_INTERVAL, max_queued=BACKLOG_MAX
        )

    def add(self, outgoing: Outgoing, decision: Decision, *, message_id: int | None = None) -> None:
        """Queue one decision; returns at once."""
        self.queue.add(
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

    async def _write_rows(self, rows: list[dict]) -> None:
        async with self.db.transaction() as conn:
            await store.record_decisions(conn, rows)

    async def flush(self) -> None:
        """Write what is queued now (also what tests call to read decisions at once)."""
        await self.queue.flush()

    async def start(self) -> None:
        """Nothing to start: the queue's writer runs while rows wait."""

    async def stop(self) -> None:
        await self.queue.stop()
