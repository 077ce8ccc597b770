"""The sign-in and network log: sign-ins, failed sign-ins, sign-outs, WebSocket sessions.

A record table (append-only, chained): rows are only inserted here; the
retention purge removes old ones.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import access_log, operators, users

SIGNIN_EVENTS = ("signin", "signin_failed")


async def add(conn: AsyncConnection, **values) -> int:
    return (await conn.execute(insert(access_log).values(**values).returning(access_log.c.id))).scalar_one()


async def add_many(conn: AsyncConnection, rows: list[dict]) -> None:
    """Insert rows (each with every column but id) in one statement execution."""
    await conn.execute(insert(access_log), rows)


async def principal_by_handle(conn: AsyncConnection, principal_kind: str, handle: str) -> int | None:
    table = users if principal_kind == "user" else operators
    return (await conn.execute(select(table.c.id).where(table.c.handle == handle.strip().lower()))).scalar()


async def query(
    conn: AsyncConnection,
    *,
    principal_kind: str | None,
    principal_id: int | None,
    since: datetime | None,
    until: datetime | None,
    events: tuple[str, ...] | None = None,
    after: int = 0,
    limit: int = 1000,
    newest_first: bool = False,
) -> list[dict]:
    q = select(access_log)
    if principal_kind is not None:
        q = q.where(access_log.c.principal_kind == principal_kind)
    if principal_id is not None:
        q = q.where(access_log.c.principal_id == principal_id)
    if since is not None:
        q = q.where(access_log.c.at >= since)
    if until is not None:
        q = q.where(access_log.c.at < until)
    if events:
        q = q.where(access_log.c.event.in_(events))
    if newest_first:
        q = q.order_by(access_log.c.id.desc())
    else:
        q = q.where(access_log.c.id > after).order_by(access_log.c.id)
    return [dict(r) for r in (await conn.execute(q.limit(limit))).mappings().all()]


async def recent_sign_ins(conn: AsyncConnection, principal_kind: str, principal_id: int, *, limit: int) -> list[dict]:
    """A principal's latest sign-ins and failed sign-ins, newest first."""
    return await query(
        conn,
        principal_kind=principal_kind,
        principal_id=principal_id,
        since=None,
        until=None,
        events=SIGNIN_EVENTS,
        limit=limit,
        newest_first=True,
    )
