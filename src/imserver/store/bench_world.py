"""Rows a store benchmark writes against: users, direct conversations and inbox counters.

Used by ``python -m imserver.bench.batch``, which times the writer's batch on its
own. Ids start at a high ``base`` so that an existing database is not disturbed
(give the benchmark an empty one all the same).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import conversations, inbox_counters, users


async def seed(conn: AsyncConnection, *, base: int, users_count: int, now: datetime) -> None:
    """Users base+1..base+users_count (verified, active), one direct conversation per pair, their counters."""
    ids = range(base + 1, base + users_count + 1)
    await conn.execute(
        insert(users),
        [
            dict(id=i, handle=f"bench-batch-{i}", nickname="n", password_hash="-", status="active",
                 realname_status="verified", created_at=now)
            for i in ids
        ],
    )
    await conn.execute(
        insert(conversations),
        [dict(id=base + i, kind="direct", created_by=base + 1, created_at=now) for i in range(1, users_count // 2 + 1)],
    )
    await conn.execute(insert(inbox_counters), [dict(user_id=i, last_seq=0, received_seq=0) for i in ids])
