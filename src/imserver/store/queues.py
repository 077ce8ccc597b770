"""Sizes and oldest items of the operators' work queues, one query each.

Every function returns ``(how many items wait, when the oldest of them arrived)``
(None when the queue is empty); the service turns the instant into an age.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.enums import RealNameStatus
from .messages import HELD
from .public_accounts import PENDING
from .reports import UNRESOLVED
from .sanctions import ended, has_event
from .tables import appeals, identities, messages, public_accounts, regulator_outbox, reports, sanctions

Stat = tuple[int, datetime | None]


async def _count_oldest(conn: AsyncConnection, column, *where) -> Stat:
    row = (await conn.execute(select(func.count(), func.min(column)).where(*where))).one()
    return row[0], row[1]


async def identity_pending(conn: AsyncConnection) -> Stat:
    return await _count_oldest(conn, identities.c.submitted_at, identities.c.status == RealNameStatus.PENDING)


async def public_accounts_pending(conn: AsyncConnection) -> Stat:
    return await _count_oldest(conn, public_accounts.c.created_at, public_accounts.c.status == PENDING)


async def reports_unresolved(conn: AsyncConnection) -> Stat:
    return await _count_oldest(conn, reports.c.created_at, reports.c.status.in_(UNRESOLVED))


async def held_messages(conn: AsyncConnection) -> Stat:
    return await _count_oldest(conn, messages.c.created_at, messages.c.status == HELD)


async def appeals_undecided(conn: AsyncConnection) -> Stat:
    return await _count_oldest(conn, appeals.c.filed_at, appeals.c.decision.is_(None))


async def closures_unconfirmed(conn: AsyncConnection) -> Stat:
    return await _count_oldest(
        conn, sanctions.c.created_at, sanctions.c.needs_confirmation.is_(True), ~has_event("confirmed"), ~ended()
    )


async def regulator_undelivered(conn: AsyncConnection) -> Stat:
    return await _count_oldest(conn, regulator_outbox.c.created_at, regulator_outbox.c.delivered_at.is_(None))


async def sanctions_in_force(conn: AsyncConnection, now: datetime) -> dict[str, int]:
    """Sanctions in force now, by kind: started, confirmed where needed, not ended, end not passed."""
    q = (
        select(sanctions.c.kind, func.count())
        .where(
            sanctions.c.starts_at <= now,
            or_(sanctions.c.ends_at.is_(None), sanctions.c.ends_at > now),
            or_(sanctions.c.needs_confirmation.is_(False), has_event("confirmed")),
            ~ended(),
        )
        .group_by(sanctions.c.kind)
    )
    return {kind: count for kind, count in (await conn.execute(q)).all()}
