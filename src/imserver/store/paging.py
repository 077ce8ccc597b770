"""One keyset page of any filtered query, with the filtered total.

The query builder gives a filtered ``SELECT``; this module orders it by (sort
key, id), resumes strictly after the last row seen and reads one row more than
asked, so the caller knows whether another page exists without a second query.
Each row gains ``sort_key`` and ``row_id`` for the next cursor.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection


async def keyset_page(
    conn: AsyncConnection,
    query: Select,
    *,
    key,
    row_id,
    descending: bool,
    after: tuple[Any, int] | None,
    limit: int,
) -> tuple[list[dict], int]:
    """(up to limit + 1 rows after `after` in (key, id) order, the number of rows the filters match)."""
    total = (await conn.execute(select(func.count()).select_from(query.order_by(None).subquery()))).scalar_one()
    query = query.add_columns(key.label("sort_key"), row_id.label("row_id"))
    if after is not None:
        last_key, last_id = after
        if key is row_id:
            query = query.where(row_id < last_id if descending else row_id > last_id)
        elif descending:
            query = query.where(or_(key < last_key, and_(key == last_key, row_id < last_id)))
        else:
            query = query.where(or_(key > last_key, and_(key == last_key, row_id > last_id)))
    order = (key.desc(), row_id.desc()) if descending else (key.asc(), row_id.asc())
    rows = (await conn.execute(query.order_by(*order).limit(limit + 1))).mappings().all()
    return [dict(r) for r in rows], total
