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

from .tables import identities, public_accounts, regulator_outbox, users


async def insert_record(
    conn: AsyncConnection,
    *,
    record_kind: str,
    sanction_id: int | None,
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
    """Records created in [since, until), in id order, after id `after` (for paging)."""
    q = (
        select(regulator_outbox)
        .where(
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


async def mark_exported(conn: AsyncConnection, record_ids: list[int], now: datetime) -> int:
    """Mark records as delivered by an export (the first export's time stays); returns how many were new."""
    if not record_ids:
        return 0
    result = await conn.execute(
        update(regulator_outbox)
        .where(regulator_outbox.c.id.in_(record_ids), regulator_outbox.c.exported_at.is_(None))
        .values(exported_at=now)
    )
    return result.rowcount


async def unexported_count(conn: AsyncConnection) -> int:
    q = select(func.count()).select_from(regulator_outbox).where(regulator_outbox.c.exported_at.is_(None))
    return (await conn.execute(q)).scalar_one()


async def user_facts(conn: AsyncConnection, user_id: int) -> dict | None:
    """What a record names a user by: handle, nickname, and the reference (id) of the identity
    record behind the account (the latest verified one, else the latest submitted), never the identity."""
    q = select(users.c.id, users.c.handle, users.c.nickname).where(users.c.id == user_id)
    user = (await conn.execute(q)).first()
    if user is None:
        return None
    q = (
        select(identities.c.id)
        .where(identities.c.user_id == user_id)
        .order_by((identities.c.status == "verified").desc(), identities.c.id.desc())
        .limit(1)
    )
    identity_id = (await conn.execute(q)).scalar()
    return {"id": user.id, "handle": user.handle, "nickname": user.nickname, "identity_ref": identity_id}


async def account_facts(conn: AsyncConnection, account_id: int) -> dict | None:
    """A public account's name and owner id."""
    q = select(public_accounts.c.id, public_accounts.c.name, public_accounts.c.owner_id).where(
        public_accounts.c.id == account_id
    )
    row = (await conn.execute(q)).first()
    return {"id": row.id, "name": row.name, "owner_id": row.owner_id} if row else None


async def undelivered_count(conn: AsyncConnection) -> int:
    q = select(func.count()).select_from(regulator_outbox).where(regulator_outbox.c.delivered_at.is_(None))
    return (await conn.execute(q)).scalar_one()
