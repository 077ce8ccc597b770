"""One tamper-evident chain over every record table.

Theory of operation
-------------------
Database triggers (migration 0007) add an entry to ``record_chain`` for every
insert into a record table, every change of a chained column (a report's
outcome, an appeal's decision) and every row the retention purge removes. No
code path can forget it, and the send path pays one in-database insert, no
round trip. The triggers only say *which* row; the **sealer** then gives each
entry, oldest first, its place in the chain (``seq``, dense from 1), the digest
of the row as it is now and the chain hash::

    digest = sha256(canonical row, without its id and its free columns)
    hash   = sha256(prev_hash || canonical {seq, table, row_id, op, digest})

The time between a trigger and its seal is the chain's merge delay (as in
Certificate Transparency): the sealer runs every ``record_seal_interval_seconds``
and before every verification and checkpoint.

Verification walks the chain in ``seq`` order (a changed, removed or reordered
entry breaks it, as in :mod:`imserver.store.audit`), then, table by table,
compares every row with the last sealed entry naming it:

=============================  ========================================  ===========
what was done to a record row  what verification sees                     kind
=============================  ========================================  ===========
a column edited                its digest differs from the entry's        ``changed``
two rows' contents swapped     its digest is another row's entry          ``reordered``
the row deleted                an entry names it, the row is gone         ``deleted``
a row inserted with triggers   a row no entry names                       ``inserted``
off (or the entry withheld)
=============================  ========================================  ===========

A row the purge removed has a ``delete`` entry as its last one; it must be gone.

Canonical form: NULL columns left out, times in UTC with microseconds (:class:`UTCDateTime` returns
aware UTC from both backends), JSON columns hashed as the text stored (both
backends store ``Text`` byte for byte), booleans as JSON booleans.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .audit import GENESIS, ChainWalker
from .tables import (
    access_log,
    account_deletions,
    appeals,
    audit_log,
    checkpoints,
    legal_holds,
    policy_decisions,
    public_account_filings,
    record_chain,
    regulator_outbox,
    reports,
    sanction_events,
    sanctions,
)

# PostgreSQL advisory lock key that serialises sealers across nodes (one chain, one writer).
SEAL_LOCK_KEY = 0x5EA1C4
SEAL_BATCH = 1000  # entries sealed per transaction: bounds the sealer's hold on SQLite's writer
VERIFY_PAGE = 2000  # rows (or entries) per query while verifying

# Record tables and their free columns: delivery bookkeeping that may change and is
# not part of the record. Mirrors the RECORDS table of migration 0007.
RECORD_TABLES: dict[str, tuple[Table, frozenset[str]]] = {
    "audit_log": (audit_log, frozenset()),
    "sanctions": (sanctions, frozenset()),
    "sanction_events": (sanction_events, frozenset()),
    "appeals": (appeals, frozenset()),
    "reports": (reports, frozenset()),
    "regulator_outbox": (
        regulator_outbox,
        frozenset({"attempts", "next_attempt_at", "last_error", "delivered_at"}),
    ),
    "public_account_filings": (public_account_filings, frozenset()),
    "policy_decisions": (policy_decisions, frozenset()),
    "access_log": (access_log, frozenset()),
    "legal_holds": (legal_holds, frozenset()),
    "account_deletions": (account_deletions, frozenset()),
    "checkpoints": (checkpoints, frozenset()),
}

GONE = "-"  # the digest of a row that no longer exists (a purge entry)


def _value(value):
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("record times must be timezone-aware")
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, bytes):
        return value.hex()
    return value


def _json(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def row_digest(table_name: str, row) -> str:
    """The digest of a record row: every column but its id, its free columns and its NULLs.

    Leaving NULLs out keeps old rows' digests valid when a later migration adds a
    nullable column to a record table (a NULL and an absent column say the same).
    """
    _table, free = RECORD_TABLES[table_name]
    body = {k: _value(v) for k, v in dict(row).items() if k != "id" and k not in free and v is not None}
    return hashlib.sha256(_json(body)).hexdigest()


def entry_hash(prev_hash: str, entry) -> str:
    body = {
        "seq": entry["seq"],
        "table": entry["table_name"],
        "row_id": entry["row_id"],
        "op": entry["op"],
        "digest": entry["digest"],
    }
    return hashlib.sha256(prev_hash.encode() + _json(body)).hexdigest()


# -- sealing ------------------------------------------------------------------------------


async def head(conn: AsyncConnection) -> tuple[int, str] | None:
    """(seq, hash) of the last sealed entry, or None."""
    q = select(record_chain.c.seq, record_chain.c.hash).where(record_chain.c.seq.is_not(None))
    row = (await conn.execute(q.order_by(record_chain.c.seq.desc()).limit(1))).first()
    return (row.seq, row.hash) if row else None


async def seal(conn: AsyncConnection, *, limit: int = SEAL_BATCH) -> int:
    """Seal up to `limit` pending entries, oldest first, in the caller's transaction."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEAL_LOCK_KEY})
    pending = (
        (
            await conn.execute(
                select(record_chain.c.id, record_chain.c.table_name, record_chain.c.row_id, record_chain.c.op)
                .where(record_chain.c.seq.is_(None))
                .order_by(record_chain.c.id)
                .limit(limit)
            )
        )
        .mappings()
        .all()
    )
    if not pending:
        return 0
    digests = await _current_digests(conn, pending)
    last = await head(conn)
    seq, prev = last if last else (0, GENESIS)
    params = []
    for entry in pending:
        seq += 1
        row = {**entry, "seq": seq, "digest": digests.get((entry["table_name"], entry["row_id"]), GONE)}
        if entry["op"] == "delete":
            row["digest"] = GONE
        digest_hash = entry_hash(prev, row)
        params.append({"eid": entry["id"], "s": seq, "d": row["digest"], "p": prev, "h": digest_hash})
        prev = digest_hash
    await conn.execute(
        update(record_chain)
        .where(record_chain.c.id == bindparam("eid"))
        .values(seq=bindparam("s"), digest=bindparam("d"), prev_hash=bindparam("p"), hash=bindparam("h")),
        params,
    )
    return len(pending)


async def _current_digests(conn: AsyncConnection, entries) -> dict[tuple[str, int], str]:
    wanted: dict[str, set[int]] = {}
    for e in entries:
        wanted.setdefault(e["table_name"], set()).add(e["row_id"])
    out: dict[tuple[str, int], str] = {}
    for name, ids in wanted.items():
        table, _free = RECORD_TABLES[name]
        rows = (await conn.execute(select(table).where(table.c.id.in_(sorted(ids))))).mappings().all()
        for row in rows:
            out[(name, row["id"])] = row_digest(name, row)
    return out


async def pending_count(conn: AsyncConnection) -> int:
    q = select(func.count()).select_from(record_chain).where(record_chain.c.seq.is_(None))
    return (await conn.execute(q)).scalar_one()


# -- verification queries -------------------------------------------------------------------


async def entries_page(conn: AsyncConnection, *, after_seq: int, limit: int = VERIFY_PAGE) -> list[dict]:
    """Sealed entries with seq > after_seq, in chain order."""
    q = (
        select(record_chain)
        .where(record_chain.c.seq > after_seq)
        .order_by(record_chain.c.seq)
        .limit(limit)
    )
    return [dict(r) for r in (await conn.execute(q)).mappings().all()]


async def rows_page(conn: AsyncConnection, table_name: str, *, after_id: int, limit: int = VERIFY_PAGE) -> list[dict]:
    table, _free = RECORD_TABLES[table_name]
    q = select(table).where(table.c.id > after_id).order_by(table.c.id).limit(limit)
    return [dict(r) for r in (await conn.execute(q)).mappings().all()]


async def last_entries(
    conn: AsyncConnection, table_name: str, *, after_id: int, upto_id: int | None
) -> dict[int, dict]:
    """The last sealed entry of each row of `table_name` with after_id < row_id <= upto_id."""
    q = select(record_chain.c.row_id, record_chain.c.op, record_chain.c.digest, record_chain.c.seq).where(
        record_chain.c.table_name == table_name, record_chain.c.row_id > after_id, record_chain.c.seq.is_not(None)
    )
    if upto_id is not None:
        q = q.where(record_chain.c.row_id <= upto_id)
    out: dict[int, dict] = {}
    for r in (await conn.execute(q.order_by(record_chain.c.row_id, record_chain.c.seq))).mappings():
        out[r["row_id"]] = dict(r)
    return out


async def has_pending(conn: AsyncConnection, table_name: str, row_id: int) -> bool:
    q = select(record_chain.c.id).where(
        record_chain.c.table_name == table_name, record_chain.c.row_id == row_id, record_chain.c.seq.is_(None)
    )
    return (await conn.execute(q.limit(1))).first() is not None


async def rows_with_digest(conn: AsyncConnection, table_name: str, digest: str) -> list[int]:
    """Rows whose sealed entries carry `digest` (used only to explain a break)."""
    q = select(record_chain.c.row_id).where(record_chain.c.table_name == table_name, record_chain.c.digest == digest)
    return sorted(set((await conn.execute(q)).scalars().all()))


@dataclass(frozen=True)
class PurgeGate:
    """Opens the delete guards of record tables for the rest of the caller's transaction.

    PostgreSQL: a transaction-local setting the guard function reads. SQLite:
    the one row of ``record_purge_gate``, opened and closed again inside the
    transaction (SQLite has one writer, so no other transaction sees it open).
    """

    conn: AsyncConnection

    async def __aenter__(self) -> PurgeGate:
        if self.conn.dialect.name == "postgresql":
            await self.conn.execute(text("SELECT set_config('imserver.purge', 'on', true)"))
        else:
            await self.conn.execute(text("UPDATE record_purge_gate SET open = 1 WHERE id = 1"))
        return self

    async def __aexit__(self, exc_type, *_exc) -> None:
        if exc_type is not None:
            return  # the transaction rolls back, taking the opened gate with it
        if self.conn.dialect.name == "postgresql":
            await self.conn.execute(text("SELECT set_config('imserver.purge', 'off', true)"))
        else:
            await self.conn.execute(text("UPDATE record_purge_gate SET open = 0 WHERE id = 1"))



class EntryWalker(ChainWalker):
    """:class:`~imserver.store.audit.ChainWalker` over sealed chain entries (position: ``seq``)."""

    position = "seq"

    @staticmethod
    def link_hash(prev_hash: str, row: dict) -> str:
        return entry_hash(prev_hash, row)
