"""Public reports (Art. 5 "timely deal with unlawful and harmful information reported by the public").

A report's status moves open -> in_review -> actioned | dismissed; the service
decides which moves are allowed, this module only reads and writes rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import conversation_members, messages, reports

# Statuses still waiting for a moderator's decision.
UNRESOLVED = ("open", "in_review")
# Advisory-lock classes (the first key of pg_advisory_xact_lock(int4, int4)); distinct from other modules'.
TARGET_LOCK_CLASS = 0x52505431  # "RPT1": filings on one target
REPORTER_LOCK_CLASS = 0x52505432  # "RPT2": one reporter's filings (the rate limit)
_TARGET_KINDS = {"message": 1, "post": 2, "account": 3}


async def insert_report(
    conn: AsyncConnection,
    *,
    reporter_id: int,
    target_kind: str,
    target_id: int,
    category: str,
    text: str,
    now: datetime,
    joined_to: int | None = None,
    status: str = "open",
) -> int:
    result = await conn.execute(
        insert(reports)
        .values(
            reporter_id=reporter_id,
            target_kind=target_kind,
            target_id=target_id,
            category=category,
            text=text,
            status=status,
            created_at=now,
            joined_to=joined_to,
        )
        .returning(reports.c.id)
    )
    return result.scalar_one()


async def lock_filing(conn: AsyncConnection, reporter_id: int, target_kind: str, target_id: int) -> None:
    """Serialise filings by one reporter and on one target until the transaction ends, so two
    reports at once neither open two queue items for a target nor slip past the rate limit
    (PostgreSQL; SQLite transactions are serial already)."""
    if conn.dialect.name != "postgresql":
        return
    # int4 keys: fold the ids into the signed 32-bit range (a collision only serialises more).
    target_key = ((target_id * 4 + _TARGET_KINDS.get(target_kind, 0)) % 2**32) - 2**31
    for cls, key in ((REPORTER_LOCK_CLASS, (reporter_id % 2**32) - 2**31), (TARGET_LOCK_CLASS, target_key)):
        await conn.execute(text("SELECT pg_advisory_xact_lock(:cls, :key)"), {"cls": cls, "key": key})


async def get_report(conn: AsyncConnection, report_id: int, *, lock: bool = False):
    q = select(reports).where(reports.c.id == report_id)
    if lock:
        q = q.with_for_update()
    return (await conn.execute(q)).mappings().first()


async def update_report(conn: AsyncConnection, report_id: int, **values) -> None:
    """Update a queue item and every report joined to it (they share status and outcome)."""
    await conn.execute(
        update(reports).where(or_(reports.c.id == report_id, reports.c.joined_to == report_id)).values(**values)
    )


async def open_item_on(conn: AsyncConnection, target_kind: str, target_id: int):
    """The unresolved queue item (not a joined report) on this target, if any."""
    q = select(reports).where(
        reports.c.target_kind == target_kind,
        reports.c.target_id == target_id,
        reports.c.status.in_(UNRESOLVED),
        reports.c.joined_to.is_(None),
    )
    return (await conn.execute(q.order_by(reports.c.id).limit(1))).mappings().first()


async def joined(conn: AsyncConnection, item_ids: list[int]) -> dict[int, list[dict]]:
    """queue item id -> the reports joined to it, oldest first."""
    out: dict[int, list[dict]] = {i: [] for i in item_ids}
    if item_ids:
        q = select(reports).where(reports.c.joined_to.in_(item_ids)).order_by(reports.c.id)
        for r in (await conn.execute(q)).mappings().all():
            out[r["joined_to"]].append(dict(r))
    return out


async def count_by_reporter_since(conn: AsyncConnection, reporter_id: int, since: datetime) -> int:
    q = select(func.count()).where(reports.c.reporter_id == reporter_id, reports.c.created_at >= since)
    return (await conn.execute(q)).scalar_one()


async def oldest_by_reporter_since(conn: AsyncConnection, reporter_id: int, since: datetime) -> datetime | None:
    q = select(func.min(reports.c.created_at)).where(
        reports.c.reporter_id == reporter_id, reports.c.created_at >= since
    )
    return (await conn.execute(q)).scalar_one()


async def queue(conn: AsyncConnection, *, statuses: tuple[str, ...], after: int, limit: int):
    """Reports in `statuses`, oldest first (the order moderators should work in)."""
    q = (
        select(reports)
        .where(reports.c.status.in_(statuses), reports.c.id > after, reports.c.joined_to.is_(None))
        .order_by(reports.c.id)
        .limit(limit)
    )
    return (await conn.execute(q)).mappings().all()


async def for_reporter(conn: AsyncConnection, reporter_id: int, limit: int):
    q = select(reports).where(reports.c.reporter_id == reporter_id).order_by(reports.c.id.desc()).limit(limit)
    return (await conn.execute(q)).mappings().all()


async def unresolved_stats(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """(how many reports await a decision, when the oldest of them was filed)."""
    q = select(func.count(), func.min(reports.c.created_at)).where(
        reports.c.status.in_(UNRESOLVED), reports.c.joined_to.is_(None)
    )
    row = (await conn.execute(q)).one()  # min() keeps the column's type: aware UTC on both backends
    return row[0], row[1]


async def targets_of(conn: AsyncConnection, ids: list[int]) -> dict[int, tuple[str, int]]:
    """report id -> (target kind, target id), for the ids that exist."""
    if not ids:
        return {}
    q = select(reports.c.id, reports.c.target_kind, reports.c.target_id).where(reports.c.id.in_(ids))
    return {r.id: (r.target_kind, r.target_id) for r in await conn.execute(q)}


async def message_visible_to(conn: AsyncConnection, message_id: int, user_id: int) -> bool:
    """Whether `user_id` is (or was) a member of the conversation holding the message."""
    q = (
        select(messages.c.id)
        .join(conversation_members, conversation_members.c.conversation_id == messages.c.conversation_id)
        .where(messages.c.id == message_id, conversation_members.c.user_id == user_id)
    )
    return (await conn.execute(q)).first() is not None
