"""What waits for people: the size and oldest age of every operator queue.

One call answers "how much work is waiting and how long has the oldest item
waited" for identity review, public-account review (applications and changes),
public reports, held messages, appeals, closures awaiting their second
operator, and the regulator outbox (records not yet delivered). The metrics
scrape, the console dashboard and staffing read the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.clock import Clock
from ..store import queues as store
from ..store.db import Database

QUEUE_NAMES = store.QUEUE_NAMES


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
