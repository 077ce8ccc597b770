"""Operator-managed content-filter term lists, read by the pipeline's content filter.

Terms are stored as the operator typed them; the policy package normalises
(width, case) when it compiles them. The gate loads every term with
``store/policy.all_terms``; this module is the admin side.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import insert_unique
from .paging import keyset_page
from .tables import filter_terms


async def insert_term(
    conn: AsyncConnection, *, list_name: str, term: str, action: str, created_by: int, now: datetime
) -> int | None:
    """The new term's id, or None if the list holds this term already."""
    return await insert_unique(
        conn,
        insert(filter_terms)
        .values(list_name=list_name, term=term, action=action, created_by=created_by, created_at=now)
        .returning(filter_terms.c.id),
    )


async def terms_in(conn: AsyncConnection, list_name: str, terms: list[str]) -> set[str]:
    if not terms:
        return set()
    q = select(filter_terms.c.term).where(filter_terms.c.list_name == list_name, filter_terms.c.term.in_(terms))
    return set((await conn.execute(q)).scalars().all())


async def insert_many(
    conn: AsyncConnection, *, list_name: str, terms: list[str], action: str, created_by: int, now: datetime
) -> int:
    """Insert the terms not in the list yet (one statement); returns how many were new."""
    present = await terms_in(conn, list_name, terms)
    new = [t for t in dict.fromkeys(terms) if t not in present]
    if new:
        await conn.execute(
            insert(filter_terms),
            [
                {"list_name": list_name, "term": t, "action": action, "created_by": created_by, "created_at": now}
                for t in new
            ],
        )
    return len(new)


async def get_term(conn: AsyncConnection, term_id: int):
    return (await conn.execute(select(filter_terms).where(filter_terms.c.id == term_id))).mappings().first()


async def list_terms(conn: AsyncConnection, *, list_name: str | None, after: tuple | None, limit: int):
    """One keyset page of terms in id order, and how many the filter matches."""
    q = select(filter_terms)
    if list_name is not None:
        q = q.where(filter_terms.c.list_name == list_name)
    key = filter_terms.c.id
    return await keyset_page(conn, q, key=key, row_id=key, descending=False, after=after, limit=limit)


async def set_action(conn: AsyncConnection, term_id: int, action: str) -> None:
    await conn.execute(update(filter_terms).where(filter_terms.c.id == term_id).values(action=action))


async def delete_term(conn: AsyncConnection, term_id: int) -> None:
    await conn.execute(delete(filter_terms).where(filter_terms.c.id == term_id))
