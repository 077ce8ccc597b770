"""What an operator's view of one user gathers beyond their own rows: reports
filed by them and against them (their account, their messages, their posts),
and their appeals."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import appeals, messages, posts, reports


def _against(user_id: int):
    """SQL: the report targets the user's account, one of their messages or one of their posts."""
    return or_(
        and_(reports.c.target_kind == "account", reports.c.target_id == user_id),
        and_(
            reports.c.target_kind == "message",
            reports.c.target_id.in_(select(messages.c.id).where(messages.c.sender_id == user_id)),
        ),
        and_(
            reports.c.target_kind == "post",
            reports.c.target_id.in_(select(posts.c.id).where(posts.c.author_id == user_id)),
        ),
    )


async def reports_about(conn: AsyncConnection, user_id: int, *, by: bool, limit: int) -> tuple[list[dict], int]:
    """(the latest `limit` reports filed by the user (`by`) or against them, how many there are in all)."""
    condition = reports.c.reporter_id == user_id if by else _against(user_id)
    total = (await conn.execute(select(func.count()).select_from(reports).where(condition))).scalar_one()
    q = select(reports).where(condition).order_by(reports.c.id.desc()).limit(limit)
    return [dict(r) for r in (await conn.execute(q)).mappings().all()], total


async def appeals_of(conn: AsyncConnection, user_id: int) -> list[dict]:
    q = select(appeals).where(appeals.c.user_id == user_id).order_by(appeals.c.id)
    return [dict(r) for r in (await conn.execute(q)).mappings().all()]
