"""The chain over every record table: sealing and verification.

The triggers and the chain's hashing are described in :mod:`imserver.store.chain`.
This service seals pending entries in the background (and before every
verification), walks the chain, and compares every record row with the last
entry naming it, so ``imserver audit verify`` names the table and row of a
change, deletion, insertion or reordering anywhere in the records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..domain.clock import Clock
from ..store import chain as store
from ..store.audit import Anchor, ChainBreak
from ..store.db import Database
from .periodic import Periodic
from .purged import Ranges, purged_ids

MAX_PROBLEMS = 50  # problems listed per verification; the count goes on past it
UNRECORDED_PURGE = (
    "the row was deleted through the purge gate, but no retention purge record covers it: "
    "someone opened the gate by hand"
)


@dataclass(frozen=True)
class RecordProblem:
    table: str
    row_id: int
    kind: str  # changed | reordered | deleted | inserted
    reason: str

    def to_dict(self) -> dict:
        return {"table": self.table, "row_id": self.row_id, "kind": self.kind, "reason": self.reason}


@dataclass
class RecordsReport:
    """The verdict over the record chain and every record table."""

    entries: int = 0  # chain entries verified
    head_seq: int = 0
    head_hash: str | None = None
    chain_break: ChainBreak | None = None
    rows: int = 0  # record rows compared with their entries
    pending: int = 0  # entries not sealed yet (within the merge delay)
    problems: list[RecordProblem] = field(default_factory=list)
    problem_count: int = 0
    anchor: Anchor | None = None

    @property
    def ok(self) -> bool:
        return self.chain_break is None and self.problem_count == 0

    @property
    def head(self) -> str | None:
        return f"{self.head_seq}:{self.head_hash}" if self.head_seq else None

    def to_dict(self) -> dict:
        b = self.chain_break
        return {
            "ok": self.ok,
            "entries": self.entries,
            "rows": self.rows,
            "pending": self.pending,
            "head": self.head,
            "anchor": str(self.anchor) if self.anchor else None,
            "chain_break": {"seq": b.row_id, "kind": b.kind.value, "reason": b.reason} if b else None,
            "problems": [p.to_dict() for p in self.problems],
            "problem_count": self.problem_count,
        }

    def add(self, problem: RecordProblem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


class Records:
    def __init__(self, db: Database, clock: Clock, *, seal_interval: float = 1.0) -> None:
        self.db = db
        self.clock = clock
        self._sealer = Periodic("record-sealer", seal_interval, self.seal_pending)

    def start(self) -> None:
        self._sealer.start()

    async def stop(self) -> None:
        await self._sealer.stop()

    async def seal_pending(self) -> int:
        """Seal every pending entry, one bounded batch per transaction; returns how many."""
        async with self.db.read() as conn:  # idle most seconds: do not take the writer for nothing
            if not await store.pending_count(conn):
                return 0
        total = 0
        while True:
            async with self.db.transaction() as conn:
                n = await store.seal(conn)
            total += n
            if n < store.SEAL_BATCH:
                return total

    async def head(self) -> tuple[int, str] | None:
        async with self.db.read() as conn:
            return await store.head(conn)

    async def verify(self, *, seal: bool = True, anchor: Anchor | None = None) -> RecordsReport:
        """Walk the chain, then compare every record row with its last entry.

        `seal` first seals what is pending (the CLI's ``--read-only`` skips it, for
        a replica). `anchor` (``seq:hash``, e.g. from a signed checkpoint) also
        proves no entry up to it was truncated or rewritten.
        """
        if seal:
            await self.seal_pending()
        report = RecordsReport(anchor=anchor)
        walker = store.EntryWalker(anchor)
        after = 0
        while walker.broken is None:
            async with self.db.read() as conn:
                page = await store.entries_page(conn, after_seq=after)
            for entry in page:
                if walker.feed(entry):
                    break
            if len(page) < store.VERIFY_PAGE:
                break
            after = page[-1]["seq"]
        walker.finish()
        report.entries, report.chain_break = walker.checked, walker.broken
        report.head_seq, report.head_hash = walker.head_id, (walker.head_hash if walker.head_id else None)
        async with self.db.read() as conn:
            report.pending = await store.pending_count(conn)
        purged = await purged_ids(self.db)
        for name in store.RECORD_TABLES:
            await self._check_table(name, report, purged.get(name, Ranges()))
        return report

    async def _check_table(self, name: str, report: RecordsReport, purged: Ranges) -> None:
        after = 0
        while True:
            async with self.db.read() as conn:
                rows = await store.rows_page(conn, name, after_id=after)
                last_page = len(rows) < store.VERIFY_PAGE
                entries = await store.last_entries(
                    conn, name, after_id=after, upto_id=None if last_page else rows[-1]["id"]
                )
            for row in rows:
                report.rows += 1
                suspect = _compare(name, row, entries.pop(row["id"], None))
                if suspect:
                    await self._confirm(name, row["id"], report)
            for row_id, entry in entries.items():
                if entry["op"] != "delete":
                    await self._confirm(name, row_id, report)
                elif row_id not in purged:
                    report.add(RecordProblem(name, row_id, "deleted", UNRECORDED_PURGE))
            if last_page:
                return
            after = rows[-1]["id"]

    async def _confirm(self, name: str, row_id: int, report: RecordsReport) -> None:
        """Look again, in one snapshot, before naming a row: pages are read apart from each other."""
        async with self.db.read() as conn:
            rows = await store.rows_page(conn, name, after_id=row_id - 1, limit=1)
            row = rows[0] if rows and rows[0]["id"] == row_id else None
            entry = (await store.last_entries(conn, name, after_id=row_id - 1, upto_id=row_id)).get(row_id)
            if row is not None and entry is None and await store.has_pending(conn, name, row_id):
                return  # a new row within the merge delay
            kind = _compare(name, row, entry) if row is not None else ("deleted" if entry and entry["op"] != "delete" else None)
            if kind is None:
                return
            twins: list[int] = []
            if kind == "changed":
                twins = [i for i in await store.rows_with_digest(conn, name, store.row_digest(name, row)) if i != row_id]
        if twins:
            kind = "reordered"
        reasons = {
            "changed": "its contents differ from what the chain recorded: the row was changed",
            "reordered": f"it holds what the chain recorded for row(s) {', '.join(map(str, twins))}: rows were swapped",
            "deleted": "the chain records it but the row is gone, and no retention purge removed it",
            "inserted": "the row is not in the chain: it was inserted (or brought back) past the record triggers",
        }
        report.add(RecordProblem(name, row_id, kind, reasons[kind]))


def _compare(name: str, row: dict, entry: dict | None) -> str | None:
    """What is wrong with a present row given its last sealed entry (None: nothing)."""
    if entry is None or entry["op"] == "delete":
        return "inserted"
    try:
        digest = store.row_digest(name, row)
    except (TypeError, ValueError):  # e.g. a time edited into something that is not one
        return "changed"
    return None if digest == entry["digest"] else "changed"
