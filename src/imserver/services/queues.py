"""The operators' work queues at a glance: how much waits and for how long.

One ``QueueStat`` per queue an operator works through (identity review,
public-account review, reports, held messages, appeals, closures awaiting a
second operator, and the regulator outbox's undelivered records). Read by the
operator console's dashboard; the same figures suit metrics and staffing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..domain.clock import Clock
from ..store import queues as store
from ..store.db import Database

# Queue names, in the order a dashboard lists them.
IDENTITY = "identity"
PUBLIC_ACCOUNTS = "public_accounts"
REPORTS = "reports"
HELD = "held_messages"
APPEALS = "appeals"
CLOSURES = "closures_awaiting_confirmation"
REGULATOR_OUTBOX = "regulator_outbox"

_QUERIES = (
    (IDENTITY, store.identity_pending),
    (PUBLIC_ACCOUNTS, store.public_accounts_pending),
    (REPORTS, store.reports_unresolved),
    (HELD, store.held_messages),
    (APPEALS, store.appeals_undecided),
    (CLOSURES, store.closures_unconfirmed),
    (REGULATOR_OUTBOX, store.regulator_undelivered),
)


@dataclass(frozen=True, slots=True)
class QueueStat:
    name: str
    size: int
    oldest_age_seconds: float  # 0 when the queue is empty


def _age(now: datetime, oldest: datetime | None) -> float:
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


async def queue_stats(db: Database, clock: Clock) -> list[QueueStat]:
    """Every operator queue's size and its oldest item's age, read in one transaction."""
    now = clock.now()
    async with db.read() as conn:
        stats = [(name, await query(conn)) for name, query in _QUERIES]
    return [QueueStat(name, size, _age(now, oldest)) for name, (size, oldest) in stats]


async def sanctions_in_force(db: Database, clock: Clock) -> dict[str, int]:
    """How many sanctions are in force now, by kind (kinds with none are absent)."""
    async with db.read() as conn:
        return await store.sanctions_in_force(conn, clock.now())
