"""What waits for people: the size and oldest age of every operator queue.

One call answers "how much work is waiting and how long has the oldest item
waited" for identity review, public-account review (applications and changes),
public reports, held messages, appeals, closures awaiting their second
operator, and the regulator outbox (records not yet delivered). The metrics
scrape, the console dashboard and the staffing report read the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.clock import Clock
from ..store import queues as store
from ..store.db import Database

QUEUE_NAMES = store.QUEUE_NAMES
# The queue names, as the console's dashboard and the staffing report name them.
IDENTITY = store.IDENTITY
PUBLIC_ACCOUNTS = store.PUBLIC_ACCOUNTS
PUBLIC_ACCOUNT_CHANGES = store.PUBLIC_ACCOUNT_CHANGES
REPORTS = store.REPORTS
HELD = store.HELD_MESSAGES
APPEALS = store.APPEALS
CLOSURES = store.CLOSURES
REGULATOR_OUTBOX = store.REGULATOR_OUTBOX


@dataclass(frozen=True, slots=True)
class QueueStat:
    name: str  # one of QUEUE_NAMES
    size: int  # items waiting
    oldest_age_seconds: float  # how long the oldest item has waited; 0.0 when the queue is empty


async def queue_stats(db: Database, clock: Clock) -> list[QueueStat]:
    """Every operator queue and the regulator outbox backlog, in QUEUE_NAMES order (one read transaction)."""
    now = clock.now()
    async with db.read() as conn:
        heads = await store.queue_heads(conn)
    return [
        QueueStat(name, size, max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
        for name, size, oldest in heads
    ]


async def sanctions_in_force(db: Database, clock: Clock) -> dict[str, int]:
    """How many sanctions are in force now, by kind (kinds with none are absent)."""
    async with db.read() as conn:
        return await store.sanctions_in_force(conn, clock.now())
