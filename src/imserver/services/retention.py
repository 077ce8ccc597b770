"""The retention purge and legal holds.

The purge deletes, kind by kind, what is past its retention period and not
covered by an active legal hold, in batches of ``retention_purge_batch`` rows,
one transaction each. Record tables are deleted through the purge gate (their
triggers refuse any other delete) and the chain records each purged row; every
batch also writes an audit record of what it purged: the kind, the cutoff, the
counts per table and the id ranges, never contents.

A legal hold (compliance role, with a reason) on a user, conversation or
public account suspends purging everything it covers until it is released
(store/retention.py says what each covers).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..domain import retention as rules
from ..domain.clock import Clock
from ..domain.errors import BadRequest, Code, Conflict, NotFound
from ..domain.principals import Principal
from ..store import audit
from ..store import retention as store
from ..store.chain import PurgeGate
from ..store.db import Database
from .periodic import Periodic

log = logging.getLogger("imserver.retention")

IDENTITY = "identity"  # deleted accounts' personal data: erased by the account-deletion service
REASON_MAX = 2000  # characters of a hold's reason


@dataclass(frozen=True)
class Purger:
    find: Callable[..., Awaitable[list[int]]]
    delete: Callable[..., Awaitable[dict[str, list[int]]]]  # per table, the ids deleted
    record_table: bool  # deleted through the purge gate


PURGERS: dict[str, Purger] = {
    "messages": Purger(store.purgeable_messages, store.delete_messages, False),
    "posts": Purger(store.purgeable_posts, store.delete_posts, False),
    "access_log": Purger(store.purgeable_access_log, store.delete_access_log, True),
    "policy_decisions": Purger(store.purgeable_policy_decisions, store.delete_policy_decisions, True),
    "sanctions": Purger(store.purgeable_sanctions, store.delete_sanctions, True),
    "audit": Purger(store.purgeable_audit, store.delete_audit, True),
}


def periods_from(settings) -> dict[str, float]:
    """Each kind's retention in days, from the settings."""
    return {
        "messages": settings.retention_messages_days,
        "posts": settings.retention_posts_days,
        "access_log": settings.retention_access_log_days,
        "policy_decisions": settings.retention_policy_decisions_days,
        "sanctions": settings.retention_sanctions_years * 365,
        "audit": settings.retention_audit_years * 365,
        "identity": settings.retention_identity_days,
    }


class Retention:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        periods: dict[str, float],
        *,
        batch: int = 1000,
        interval_hours: float = 24,
        also: Callable[[], Awaitable[dict]] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.periods = periods
        self.batch = batch
        self.also = also  # erasure of deleted accounts, run with each scheduled purge
        self._loop = Periodic("retention-purge", interval_hours * 3600, self.scheduled) if interval_hours > 0 else None

    def start(self) -> None:
        if self._loop is not None:
            self._loop.start()

    async def stop(self) -> None:
        if self._loop is not None:
            await self._loop.stop()

    def table(self) -> list[dict]:
        """The retention table as configured: kind, days, legal floor, what it covers."""
        return [
            {"kind": k.name, "days": self.periods[k.name], "minimum_days": k.minimum_days, "covers": k.what}
            for k in rules.KINDS.values()
        ]

    async def scheduled(self) -> dict:
        return await self.purge()

    async def purge(
        self, kinds: list[str] | None = None, *, days: float | None = None, operator_id: int | None = None
    ) -> dict[str, dict[str, int]]:
        """Purge `kinds` (default: all) past retention; `days` overrides the period (never under the floor).

        Every period is checked before anything is deleted, so a refused purge
        deletes nothing.
        """
        kinds = kinds or [*PURGERS, IDENTITY]
        now = self.clock.now()
        cutoffs = {}
        for kind in kinds:
            if kind not in PURGERS and kind != IDENTITY:
                raise BadRequest(f"no purgeable record kind {kind!r}; kinds: {', '.join(PURGERS)}, {IDENTITY}", Code.UNKNOWN_RECORD_KIND)
            cutoffs[kind] = rules.cutoff(now, kind, self.periods[kind] if days is None else days)
        out = {}
        for kind in kinds:
            if kind == IDENTITY:  # each request carries its own date (erase_after), set when it was made
                out[kind] = await self.also() if self.also is not None else {}
            else:
                out[kind] = await self._purge_kind(kind, cutoffs[kind], operator_id)
        return out

    async def _purge_kind(self, kind: str, cutoff, operator_id: int | None) -> dict[str, int]:
        purger = PURGERS[kind]
        totals: dict[str, int] = {}
        while True:
            async with self.db.transaction() as conn:
                ids = await purger.find(conn, cutoff, self.batch)
                if not ids:
                    break
                if purger.record_table:
                    async with PurgeGate(conn):
                        deleted = await purger.delete(conn, ids)
                else:
                    deleted = await purger.delete(conn, ids)
                counts = {table: len(gone) for table, gone in deleted.items()}
                await audit.append(
                    conn,
                    at=self.clock.now(),
                    actor_kind="operator" if operator_id else "system",
                    actor_id=operator_id,
                    action="retention.purge",
                    subject=f"records:{kind}",
                    detail={
                        "kind": kind,
                        "cutoff": cutoff.isoformat(),
                        "counts": counts,
                        # Every id, as runs (verification accepts a purged record row only
                        # where these cover it); inbox entries have no id of their own.
                        "id_ranges": {t: rules.id_ranges(gone) for t, gone in deleted.items() if t != "inbox"},
                    },
                )
            for table, n in counts.items():
                totals[table] = totals.get(table, 0) + n
            if len(ids) < self.batch:
                break
        if totals:
            log.info("retention purge of %s: %s", kind, totals)
        return totals


class LegalHolds:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def place(self, operator: Principal, *, subject_kind: str, subject_id: int, reason: str) -> dict:
        reason = (reason or "").strip()
        if not reason:
            raise BadRequest("a legal hold needs a reason", Code.HOLD_REASON_REQUIRED)
        if len(reason) > REASON_MAX:
            raise BadRequest(f"the reason is at most {REASON_MAX} characters", Code.MALFORMED)
        if subject_kind not in store.HOLD_SUBJECTS:
            raise BadRequest(f"a hold is on one of: {', '.join(store.HOLD_SUBJECTS)}", Code.MALFORMED)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            if not await store.subject_exists(conn, subject_kind, subject_id):
                raise NotFound(f"no {subject_kind} {subject_id}", Code.HOLD_SUBJECT_NOT_FOUND)
            hold_id = await store.place_hold(
                conn, subject_kind=subject_kind, subject_id=subject_id, reason=reason, placed_by=operator.id, placed_at=now
            )
            await audit.append(
                conn, at=now, actor_kind="operator", actor_id=operator.id, action="legal_hold.place",
                subject=f"{subject_kind}:{subject_id}", detail={"hold_id": hold_id},
            )
            return _hold_view(await store.get_hold(conn, hold_id))

    async def release(self, operator: Principal, hold_id: int, *, reason: str) -> dict:
        reason = (reason or "").strip()
        if not reason:
            raise BadRequest("releasing a legal hold needs a reason", Code.HOLD_REASON_REQUIRED)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            hold = await store.get_hold(conn, hold_id)
            if hold is None:
                raise NotFound("no such legal hold", Code.HOLD_NOT_FOUND)
            if not await store.release_hold(conn, hold_id, by=operator.id, at=now, reason=reason[:REASON_MAX]):
                raise Conflict("the hold was released already", Code.HOLD_RELEASED)
            await audit.append(
                conn, at=now, actor_kind="operator", actor_id=operator.id, action="legal_hold.release",
                subject=f"{hold['subject_kind']}:{hold['subject_id']}", detail={"hold_id": hold_id},
            )
            return _hold_view(await store.get_hold(conn, hold_id))

    async def list(self, *, active_only: bool = True, subject_kind: str | None = None, subject_id: int | None = None) -> list[dict]:
        async with self.db.read() as conn:
            rows = await store.holds(conn, active_only=active_only, subject_kind=subject_kind, subject_id=subject_id)
        return [_hold_view(r) for r in rows]


def _hold_view(row) -> dict:
    return {
        "id": row["id"],
        "subject": {"kind": row["subject_kind"], "id": row["subject_id"]},
        "reason": row["reason"],
        "placed_by": row["placed_by"],
        "placed_at": row["placed_at"].isoformat(),
        "released_by": row["released_by"],
        "released_at": row["released_at"].isoformat() if row["released_at"] else None,
        "release_reason": row["release_reason"],
        "active": row["released_at"] is None,
    }
