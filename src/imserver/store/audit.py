"""The append-only, hash-chained audit log.

Each row's hash is ``sha256(prev_hash || canonical row)``, where the canonical
row is the JSON (sorted keys, no spaces) of its id, time, actor, action, subject
and detail. Changing, removing or reordering any row breaks every hash after it;
:func:`verify` names the first row where the chain breaks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import audit_log

GENESIS = "0" * 64
# PostgreSQL advisory lock key that serialises appends across nodes, so two
# transactions can never chain onto the same previous row.
AUDIT_LOCK_KEY = 0x1A0D17
VERIFY_PAGE = 1000  # rows per query while walking the chain


def canonical(row: dict) -> bytes:
    body = {
        "id": row["id"],
        "at": row["at"].isoformat(timespec="microseconds"),
        "actor_kind": row["actor_kind"],
        "actor_id": row["actor_id"],
        "action": row["action"],
        "subject": row["subject"],
        "detail": row["detail"],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, row: dict) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(row)).hexdigest()


async def append(
    conn: AsyncConnection,
    *,
    at: datetime,
    actor_kind: str,
    actor_id: int | None,
    action: str,
    subject: str | None = None,
    detail: dict | None = None,
) -> int:
    """Append one row inside the caller's transaction; returns its id."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
    last = (
        await conn.execute(select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1))
    ).first()
    prev_hash = last.hash if last else GENESIS
    row = {
        "id": (last.id + 1) if last else 1,
        "at": at,
        "actor_kind": actor_kind,
        "actor_id": actor_id,
        "action": action,
        "subject": subject,
        "detail": json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str),
    }
    await conn.execute(insert(audit_log).values(**row, prev_hash=prev_hash, hash=chain_hash(prev_hash, row)))
    return row["id"]


@dataclass(frozen=True)
class ChainBreak:
    row_id: int
    reason: str  # "hash mismatch" | "prev_hash mismatch" | "gap before this row"


async def verify(conn: AsyncConnection) -> tuple[int, ChainBreak | None]:
    """Walk the whole chain; returns (rows checked, first break or None)."""
    checked = 0
    prev_hash = GENESIS
    expected_id = 1
    async for row in _rows(conn):
        if row["id"] != expected_id:
            return checked, ChainBreak(row["id"], f"gap before this row (expected id {expected_id})")
        if row["prev_hash"] != prev_hash:
            return checked, ChainBreak(row["id"], "prev_hash does not match the previous row")
        if chain_hash(prev_hash, row) != row["hash"]:
            return checked, ChainBreak(row["id"], "row contents do not match its hash")
        prev_hash = row["hash"]
        expected_id += 1
        checked += 1
    return checked, None


async def _rows(conn: AsyncConnection) -> AsyncIterator[dict]:
    after = 0
    while True:
        page = (
            await conn.execute(
                select(audit_log).where(audit_log.c.id > after).order_by(audit_log.c.id).limit(VERIFY_PAGE)
            )
        ).mappings().all()
        if not page:
            return
        for row in page:
            yield dict(row)
        after = page[-1]["id"]


async def page(conn: AsyncConnection, *, after: int = 0, limit: int = 100):
    q = select(audit_log).where(audit_log.c.id > after).order_by(audit_log.c.id).limit(limit)
    return (await conn.execute(q)).mappings().all()
