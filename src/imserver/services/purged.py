"""What the retention purge says it removed: per record table, the ids, as runs.

Each purge batch writes an audit record (``retention.purge``) listing every id
it deleted, per table. Verification reads them back to tell a purged record row
from a deleted one, and to start the audit chain after a purged oldest part.
"""

from __future__ import annotations

import bisect

from ..store import audit as audit_store
from ..store.db import Database

PURGE_ACTION = "retention.purge"  # the audit action of a purge batch (services/retention.py)
PAGE = 1000  # purge records read per query


class Ranges:
    """A set of ids given as [first, last] runs; membership by bisection over merged runs."""

    def __init__(self) -> None:
        self._runs: list[list[int]] = []
        self._firsts: list[int] | None = []

    def add(self, runs) -> None:
        self._runs.extend([int(a), int(b)] for a, b in runs)
        self._firsts = None  # merged again on the next lookup

    def _merge(self) -> None:
        if self._firsts is None:
            merged: list[list[int]] = []
            for first, last in sorted(self._runs):
                if merged and first <= merged[-1][1] + 1:
                    merged[-1][1] = max(merged[-1][1], last)
                else:
                    merged.append([first, last])
            self._runs, self._firsts = merged, [first for first, _ in merged]

    def __contains__(self, value: int) -> bool:
        self._merge()
        i = bisect.bisect_right(self._firsts, value) - 1
        return i >= 0 and value <= self._runs[i][1]

    def prefix(self) -> int:
        """The largest N such that ids 1..N are all in the set (0: id 1 is not)."""
        self._merge()
        return self._runs[0][1] if self._runs and self._runs[0][0] <= 1 else 0


async def purged_ids(db: Database) -> dict[str, Ranges]:
    out: dict[str, Ranges] = {}
    after = 0
    while True:
        async with db.read() as conn:
            page = await audit_store.details_of(conn, PURGE_ACTION, after=after, limit=PAGE)
        for _id, detail in page:
            for table, runs in (detail.get("id_ranges") or {}).items():
                out.setdefault(table, Ranges()).add(runs)
        if len(page) < PAGE:
            return out
        after = page[-1][0]
