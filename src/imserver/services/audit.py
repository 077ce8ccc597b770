"""Reading and verifying the audit chain.

Shared by the admin API (``/admin/v1/audit``) and ``imserver audit verify``, so
both front ends give the same verdict. Operators' reads and verifications are
themselves operator actions and append a row; the command line, run by whoever
holds the database, only reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from ..domain.clock import Clock
from ..domain.errors import BadRequest
from ..store import audit as store
from ..store.audit import Anchor, ChainBreak, ChainWalker
from ..store.db import Database

PAGE_DEFAULT = 100  # rows per GET /admin/v1/audit unless asked
PAGE_MAX = 1000  # bounds one response (and one query)


@dataclass(frozen=True)
class ChainReport:
    """The verdict of one walk over the chain."""

    checked: int  # rows verified before the end or the first break
    head_id: int  # last intact row (0: none)
    head_hash: str | None
    broken: ChainBreak | None
    anchor: Anchor | None

    @property
    def ok(self) -> bool:
        return self.broken is None

    @property
    def head(self) -> str | None:
        """The anchor to keep outside the database: ``ID:HASH`` of the last intact row."""
        return f"{self.head_id}:{self.head_hash}" if self.head_id else None

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head": {"id": self.head_id, "hash": self.head_hash} if self.head_id else None,
            "anchor": str(self.anchor) if self.anchor else None,
            "break": (
                {"row_id": self.broken.row_id, "kind": self.broken.kind.value, "reason": self.broken.reason}
                if self.broken
                else None
            ),
        }


def parse_anchor(value: str | None) -> Anchor | None:
    if not value:
        return None
    try:
        return Anchor.parse(value)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc


def _entry(row: dict) -> dict:
    return {
        "id": row["id"],
        "at": row["at"].isoformat(),
        "actor_kind": row["actor_kind"],
        "actor_id": row["actor_id"],
        "action": row["action"],
        "subject": row["subject"],
        "detail": json.loads(row["detail"]),
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
    }


class AuditLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def page(self, *, after: int = 0, limit: int = PAGE_DEFAULT, operator_id: int | None = None) -> dict:
        """Rows after `after`, oldest first; `next_after` is the cursor for the next page."""
        if after < 0 or not 1 <= limit <= PAGE_MAX:
            raise BadRequest(f"after must be >= 0 and limit 1 to {PAGE_MAX}")
        async with self.db.transaction() as conn:
            rows = await store.page(conn, after=after, limit=limit)
            if operator_id is not None:
                await self._record_read(conn, operator_id, {"after": after, "limit": limit, "returned": len(rows)})
        entries = [_entry(r) for r in rows]
        return {"entries": entries, "next_after": entries[-1]["id"] if len(entries) == limit else None}

    async def search(self, *, operator_id: int, before: int | None = None, limit: int = PAGE_DEFAULT, **filters) -> dict:
        """Rows matching the filters (actor_id, action, subject, since, until), newest
        first; ``next_before`` pages further back. The read is itself recorded."""
        if not 1 <= limit <= PAGE_MAX or (before is not None and before < 1):
            raise BadRequest(f"before must be >= 1 and limit 1 to {PAGE_MAX}")
        async with self.db.transaction() as conn:
            rows = await store.search(conn, before=before, limit=limit, **filters)
            used = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in filters.items() if v}
            detail = {"before": before, "limit": limit, "returned": len(rows), "filters": used}
            await self._record_read(conn, operator_id, detail)
        entries = [_entry(r) for r in rows]
        return {"entries": entries, "next_before": entries[-1]["id"] if len(entries) == limit else None}

    async def _record_read(self, conn, operator_id: int, detail: dict) -> None:
        """Reading the log is itself a recorded act (``audit.read``)."""
        await store.append(
            conn,
            at=self.clock.now(),
            actor_kind="operator",
            actor_id=operator_id,
            action="audit.read",
            subject=None,
            detail=detail,
        )

    async def verify(self, *, anchor: Anchor | None = None, operator_id: int | None = None) -> ChainReport:
        """Walk the whole chain, one page per transaction, and report the first break.

        Paging keeps SQLite's single connection (and its write lock) free between
        pages, so a long walk never stalls the server's own writes.
        """
        walker = ChainWalker(anchor)
        after = 0
        while walker.broken is None:
            async with self.db.transaction() as conn:
                rows = await store.page(conn, after=after, limit=store.VERIFY_PAGE)
            for row in rows:
                if walker.feed(row):
                    break
            if len(rows) < store.VERIFY_PAGE:
                break
            after = rows[-1]["id"]
        walker.finish()
        report = ChainReport(
            checked=walker.checked,
            head_id=walker.head_id,
            head_hash=walker.head_hash if walker.head_id else None,
            broken=walker.broken,
            anchor=anchor,
        )
        if operator_id is not None:
            async with self.db.transaction() as conn:
                await store.append(
                    conn,
                    at=self.clock.now(),
                    actor_kind="operator",
                    actor_id=operator_id,
                    action="audit.verify",
                    subject=None,
                    detail={
                        "ok": report.ok,
                        "checked": report.checked,
                        "head": report.head,
                        "break_row": report.broken.row_id if report.broken else None,
                    },
                )
        return report
