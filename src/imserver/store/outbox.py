"""The regulator outbox (Art. 8 "carry out their duty of reporting the matter").

Records are inserted in the same transaction as the sanction change they
report, so a committed change always has its record and a rolled-back one never
does. The idempotency key is unique: a record is written at most once, even if
two nodes race to write it. Delivery bookkeeping (attempts, next_attempt_at,
last_error, delivered_at) is the only thing ever updated.

A deliverer *claims* a record before sending it by pushing ``next_attempt_at``
past a lease with a conditional update, so two nodes never post the same record
at the same time (the key still protects the receiver if a lease runs out).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import regulator_outbox


async def insert_record(
    conn: AsyncConnection,
    *,
    record_kind: str,
    sanction_id: int,
    payload: str,
    idempotency_key: str,
    now: datetime,
) -> int:
    result = await conn.execute(
        insert(regulator_outbox)
        .values(
            record_kind=record_kind,
            sanction_id=sanction_id,
            payload=payload,
            idempotency_key=idempotency_key,
            created_at=now,
            attempts=0,
            next_attempt_at=None,
        )
        .returning(regulator_outbox.c.id)
    )
    return result.scalar_one()


async def between(conn: AsyncConnection, since: datetime, until: datetime, *, after: int, limit: int):
    """Sanction records created in [since, until), in id order, after id `after` (for paging).

    Checkpoints share the outbox (and the webhook) but are not sanction records.
    """
    q = (
        select(regulator_outbox)
        .where(
            regulator_outbox.c.record_kind.like("sanction_%"),
            regulator_outbox.c.created_at >= since,
            regulator_outbox.c.created_at < until,
            regulator_outbox.c.id > after,
        )
        .order_by(regulator_outbox.c.id)
        .limit(limit)
    )
    return (await conn.execute(q)).mappings().all()


def _due(now: datetime):
    return and_(
        regulator_outbox.c.delivered_at.is_(None),
        or_(regulator_outbox.c.next_attempt_at.is_(None), regulator_outbox.c.next_attempt_at <= now),
    )


async def due(conn: AsyncConnection, now: datetime, limit: int):
    q = select(regulator_outbox).where(_due(now)).order_by(regulator_outbox.c.id).limit(limit)
    return (await conn.execute(q)).mappings().all()


async def claim(conn: AsyncConnection, record_id: int, now: datetime, lease_until: datetime) -> bool:
    """Take a due record for one delivery attempt; False if another deliverer has it."""
    result = await conn.execute(
        update(regulator_outbox)
        .where(regulator_outbox.c.id == record_id, _due(now))
        .values(next_attempt_at=lease_until)
    )
    return result.rowcount == 1


async def mark_delivered(conn: AsyncConnection, record_id: int, *, attempts: int, now: datetime) -> None:
    await conn.execute(
        update(regulator_outbox)
        .where(regulator_outbox.c.id == record_id)
        .values(delivered_at=now, attempts=attempts, next_attempt_at=None, last_error=None)
    )


async def mark_failed(
    conn: AsyncConnection, record_id: int, *, attempts: int, next_attempt_at: datetime, error: str
) -> None:
    await conn.execute(
        update(regulator_outbox)
        .where(regulator_outbox.c.id == record_id)
        .values(attempts=attempts, next_attempt_at=next_attempt_at, last_error=error[:1000])
    )


async def for_sanction(conn: AsyncConnection, sanction_id: int):
    q = select(regulator_outbox).where(regulator_outbox.c.sanction_id == sanction_id).order_by(regulator_outbox.c.id)
    return (await conn.execute(q)).mappings().all()


async def undelivered_count(conn: AsyncConnection) -> int:
    q = select(func.count()).select_from(regulator_outbox).where(regulator_outbox.c.delivered_at.is_(None))
    return (await conn.execute(q)).scalar_one()
