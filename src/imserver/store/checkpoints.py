"""Signed checkpoints of the record chain and the audit chain (a record table itself)."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import audit_log, checkpoints, record_chain


async def add(conn: AsyncConnection, **values) -> int:
    return (await conn.execute(insert(checkpoints).values(**values).returning(checkpoints.c.id))).scalar_one()


async def latest(conn: AsyncConnection, limit: int = 100) -> list[dict]:
    q = select(checkpoints).order_by(checkpoints.c.id.desc()).limit(limit)
    return [dict(r) for r in (await conn.execute(q)).mappings().all()]


async def chain_hash_at(conn: AsyncConnection, seq: int) -> str | None:
    return (await conn.execute(select(record_chain.c.hash).where(record_chain.c.seq == seq))).scalar()


async def audit_hash_at(conn: AsyncConnection, row_id: int) -> str | None:
    return (await conn.execute(select(audit_log.c.hash).where(audit_log.c.id == row_id))).scalar()
