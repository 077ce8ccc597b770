"""The append-only, hash-chained audit log.

Theory of operation
-------------------
Each row's hash is ``sha256(prev_hash || canonical row)``, where the canonical
row is the JSON (sorted keys, no spaces) of its id, time, actor, action, subject
and detail, and ``prev_hash`` is the hash of the row before (``GENESIS`` for row
1). Ids are dense: row ``n`` follows row ``n - 1``. So changing, removing or
reordering any row breaks the chain at that row, and :class:`ChainWalker` names
the first row where it breaks:

========================  =========================================  ==============
what was done             what the walker sees at the first row      kind
========================  =========================================  ==============
a row's fields edited     its contents no longer give its hash       ``changed``
a row deleted             an id is missing                           ``removed``
rows swapped/renumbered   the row does not link to the one before    ``reordered``
========================  =========================================  ==============

Two things the chain alone cannot see, because what is left is itself a valid
chain: the *last* rows deleted (tail truncation), and every hash from some row
on recomputed by someone with write access. Both are caught with an **anchor**:
the head (id and hash) at some moment, kept outside the database (printed by
``imserver audit verify``, shipped to a log host or a ticket). Given an anchor
``id:hash``, the walker also checks that row ``id`` still exists and still has
that hash; as each hash commits to every row before it, this proves rows
``1..id`` are exactly as they were when the anchor was taken.

Timestamps must hash the same when read back from either backend: SQLite stores
naive UTC text with microseconds and PostgreSQL ``timestamptz`` with microseconds,
and :class:`~imserver.store.types.UTCDateTime` returns aware UTC from both. The
canonical form therefore converts ``at`` to UTC first, so a clock that hands out
another zone (``+08:00``) still hashes the same on the way in and the way out.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import audit_log

GENESIS = "0" * 64
# PostgreSQL advisory lock key that serialises appends across nodes, so two
# transactions can never chain onto the same previous row. (SQLite needs none:
# every transaction there is BEGIN IMMEDIATE, one writer at a time.)
AUDIT_LOCK_KEY = 0x1A0D17
VERIFY_PAGE = 1000  # rows per query (and per transaction) while walking the chain
_ANCHOR_RE = re.compile(r"^(\d+):([0-9a-f]{64})$")


def _at(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(row: dict) -> bytes:
    body = {
        "id": row["id"],
        "at": _at(row["at"]),
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
        "at": at.astimezone(UTC),
        "actor_kind": actor_kind,
        "actor_id": actor_id,
        "action": action,
        "subject": subject,
        "detail": json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str),
    }
    await conn.execute(insert(audit_log).values(**row, prev_hash=prev_hash, hash=chain_hash(prev_hash, row)))
    return row["id"]


async def page(conn: AsyncConnection, *, after: int = 0, limit: int = 100) -> list[dict]:
    """Rows with id > `after`, oldest first, at most `limit`."""
    q = select(audit_log).where(audit_log.c.id > after).order_by(audit_log.c.id).limit(limit)
    return [dict(r) for r in (await conn.execute(q)).mappings().all()]


async def search(
    conn: AsyncConnection,
    *,
    before: int | None,
    limit: int,
    actor_id: int | None = None,
    action: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict]:
    """Rows matching every given filter, newest first, with id < `before` (None: from the end).

    ``action`` and ``subject`` match exactly or, ending in ``*``, by prefix
    (``sanction.*``, ``user:*``).
    """
    q = select(audit_log)
    if before is not None:
        q = q.where(audit_log.c.id < before)
    if actor_id is not None:
        q = q.where(audit_log.c.actor_id == actor_id)
    for column, value in ((audit_log.c.action, action), (audit_log.c.subject, subject)):
        if value and value.endswith("*"):
            q = q.where(column.startswith(value[:-1], autoescape=True))
        elif value:
            q = q.where(column == value)
    if since is not None:
        q = q.where(audit_log.c.at >= since)
    if until is not None:
        q = q.where(audit_log.c.at < until)
    q = q.order_by(audit_log.c.id.desc()).limit(limit)
    return [dict(r) for r in (await conn.execute(q)).mappings().all()]


async def head(conn: AsyncConnection) -> tuple[int, str] | None:
    """(id, hash) of the last row, or None for an empty log."""
    q = select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
    row = (await conn.execute(q)).first()
    return (row.id, row.hash) if row else None


# -- verification (pure: rows in, verdict out) -----------------------------------------


class BreakKind(StrEnum):
    CHANGED = "changed"  # the row's contents do not give its stored hash
    REMOVED = "removed"  # the row is missing (an id gap, or the tail is gone)
    REORDERED = "reordered"  # the row does not link to the row before it
    REWRITTEN = "rewritten"  # the chain is consistent but differs from the anchor


@dataclass(frozen=True)
class Anchor:
    """A head kept outside the database: row `id` had hash `hash`."""

    id: int
    hash: str

    @classmethod
    def parse(cls, value: str) -> Anchor:
        """Parse ``ID:HASH`` (hash: 64 lower-case hex digits); ValueError otherwise."""
        m = _ANCHOR_RE.match(value.strip().lower())
        if not m or int(m.group(1)) < 1:
            raise ValueError("an anchor is ID:HASH, e.g. 42:<64 hex digits>")
        return cls(int(m.group(1)), m.group(2))

    def __str__(self) -> str:
        return f"{self.id}:{self.hash}"


@dataclass(frozen=True)
class ChainBreak:
    row_id: int  # the first row that was changed, removed or reordered
    kind: BreakKind
    reason: str


class ChainWalker:
    """Checks rows fed in id order, page by page; stops at the first break.

    The walker keeps only the previous row's id and hash, so the chain can be
    walked in bounded memory and in several transactions (rows are only ever
    appended, so a later page never invalidates an earlier one).
    """

    def __init__(self, anchor: Anchor | None = None) -> None:
        self.anchor = anchor
        self.checked = 0
        self.head_id = 0
        self.head_hash = GENESIS
        self.broken: ChainBreak | None = None
        self._anchor_seen = False

    def feed(self, row: dict) -> ChainBreak | None:
        """Check the next row; returns the break (also kept in ``broken``) or None."""
        if self.broken:
            return self.broken
        expected = self.head_id + 1
        if row["id"] != expected:
            missing = f"row {expected}" if row["id"] == expected + 1 else f"rows {expected}-{row['id'] - 1}"
            jump = f"the log jumps from row {self.head_id} to row {row['id']}"
            return self._break(expected, BreakKind.REMOVED, f"{missing} missing: {jump}")
        if row["prev_hash"] != self.head_hash:
            before = f"row {self.head_id}" if self.head_id else "the start of the chain"
            return self._break(
                row["id"],
                BreakKind.REORDERED,
                f"does not link to {before}: rows were removed, inserted or reordered here "
                f"(or {before} was changed and given a new hash)",
            )
        try:
            ok = chain_hash(self.head_hash, row) == row["hash"]
        except (TypeError, ValueError):  # e.g. a time edited into something that is not one
            ok = False
        if not ok:
            return self._break(row["id"], BreakKind.CHANGED, "its contents do not match its hash: the row was changed")
        if self.anchor and row["id"] == self.anchor.id:
            self._anchor_seen = True
            if row["hash"] != self.anchor.hash:
                return self._break(
                    row["id"],
                    BreakKind.REWRITTEN,
                    f"its hash differs from the anchor {self.anchor}: the chain up to row {row['id']} was rewritten",
                )
        self.head_id, self.head_hash = row["id"], row["hash"]
        self.checked += 1
        return None

    def finish(self) -> ChainBreak | None:
        """Call after the last row: checks that the anchored row was reached (tail truncation)."""
        if self.broken is None and self.anchor and not self._anchor_seen:
            first_gone = self.head_id + 1
            self._break(
                first_gone,
                BreakKind.REMOVED,
                f"the log ends at row {self.head_id} but the anchor names row {self.anchor.id}: "
                f"rows {first_gone}-{self.anchor.id} (at least) were removed from the end",
            )
        return self.broken

    def _break(self, row_id: int, kind: BreakKind, reason: str) -> ChainBreak:
        self.broken = ChainBreak(row_id, kind, reason)
        return self.broken
