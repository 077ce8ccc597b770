"""Public reports (Art. 5: providers shall "consciously accept social supervision,
and timely deal with unlawful and harmful information reported by the public").

Any user reports a message, a post or an account; moderators work the queue
oldest first. Status moves by this table, and nothing else moves it:

===========  ==================  ==============================
from         action              to
===========  ==================  ==============================
open         assign              in_review
in_review    assign (re-)        in_review
in_review    resolve             actioned (with the sanction) | dismissed
===========  ==================  ==============================

The reporter is told the outcome (a ``notice`` now, and ``GET
/api/v1/reports/mine`` later) but never who handled it or which sanction
followed: that is the reported user's business. Filing and every moderator
action write an audit row.

**Hook for posts**: ``targets["post"]`` (conn, post id, reporter id) -> bool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from ..domain.clock import Clock
from ..domain.enums import Role
from ..domain.errors import BadRequest, Code, Conflict, NotFound
from ..domain.principals import Principal
from ..store import accounts as account_store
from ..store import audit
from ..store import reports as store
from ..store import sanctions as sanction_store
from ..store.db import Database
from .accounts import require_role
from .events import UserEvent

CATEGORIES = ("unlawful", "harmful", "rumour", "fraud", "pornography", "other")
TARGET_KINDS = ("message", "post", "account")
OUTCOMES = ("actioned", "dismissed")
MAX_TEXT_CHARS = 2000  # what the reporter writes
MAX_NOTE_CHARS = 2000  # the moderator's resolution note
PAGE_MAX = 200
MINE_MAX = 100  # a reporter's own list: the latest this many

# (status, action) -> the statuses it may lead to.
TRANSITIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("open", "assign"): ("in_review",),
    ("in_review", "assign"): ("in_review",),
    ("in_review", "resolve"): OUTCOMES,
}

Conn = Any
TargetCheck = Callable[[Conn, int, int], Awaitable[bool]]


async def _message_target(conn: Conn, message_id: int, reporter_id: int) -> bool:
    """A message exists for the reporter only if they could read it (no probing of ids)."""
    return await store.message_visible_to(conn, message_id, reporter_id)


async def _account_target(conn: Conn, user_id: int, reporter_id: int) -> bool:
    return await account_store.get_user(conn, user_id) is not None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _operator_view(r, now: datetime) -> dict:
    resolved = r["resolved_at"]
    return {
        "id": r["id"],
        "reporter_id": r["reporter_id"],
        "target": {"kind": r["target_kind"], "id": r["target_id"]},
        "category": r["category"],
        "text": r["text"],
        "status": r["status"],
        "assignee_id": r["assignee_id"],
        "sanction_id": r["sanction_id"],
        "resolution_note": r["resolution_note"],
        "created_at": _iso(r["created_at"]),
        "resolved_at": _iso(resolved),
        "time_to_resolution_seconds": (resolved - r["created_at"]).total_seconds() if resolved else None,
        "age_seconds": None if resolved else max(0.0, (now - r["created_at"]).total_seconds()),
    }


operator_view = _operator_view  # the workbench's report lists show the same view


def _reporter_view(r) -> dict:
    return {
        "id": r["id"],
        "target": {"kind": r["target_kind"], "id": r["target_id"]},
        "category": r["category"],
        "text": r["text"],
        "status": r["status"],
        "created_at": _iso(r["created_at"]),
        "resolved_at": _iso(r["resolved_at"]),
    }


class Reports:
    def __init__(self, db: Database, clock: Clock, *, emit: Callable[[UserEvent], None]) -> None:
        self.db = db
        self.clock = clock
        self.emit = emit
        self.targets: dict[str, TargetCheck] = {"message": _message_target, "account": _account_target}

    async def file(self, user: Principal, *, target_kind: str, target_id: int, category: str, text: str) -> dict:
        if target_kind not in TARGET_KINDS:
            raise BadRequest(f"target kind must be one of {', '.join(TARGET_KINDS)}")
        if category not in CATEGORIES:
            raise BadRequest(f"category must be one of {', '.join(CATEGORIES)}")
        text = text.strip()
        if not 1 <= len(text) <= MAX_TEXT_CHARS:
            raise BadRequest(f"text must be 1-{MAX_TEXT_CHARS} characters")
        now = self.clock.now()
        async with self.db.transaction() as conn:
            check = self.targets.get(target_kind)
            if check is None or not await check(conn, target_id, user.id):
                raise NotFound(f"no {target_kind} {target_id} that you can report", Code.REPORT_TARGET_NOT_FOUND)
            report_id = await store.insert_report(
                conn,
                reporter_id=user.id,
                target_kind=target_kind,
                target_id=target_id,
                category=category,
                text=text,
                now=now,
            )
            await audit.append(
                conn,
                at=now,
                actor_kind="user",
                actor_id=user.id,
                action="report.file",
                subject=f"{target_kind}:{target_id}",
                detail={"report_id": report_id, "category": category},
            )
            row = await store.get_report(conn, report_id)
        return _reporter_view(row)

    async def mine(self, user_id: int) -> list[dict]:
        async with self.db.transaction() as conn:
            rows = await store.for_reporter(conn, user_id, MINE_MAX)
        return [_reporter_view(r) for r in rows]

    # -- moderators ----------------------------------------------------------------

    async def queue(self, *, status: str | None, after: int = 0, limit: int = 50) -> list[dict]:
        """Oldest first; default: everything awaiting a decision (open and in review)."""
        if status is not None and status not in ("open", "in_review", *OUTCOMES):
            raise BadRequest("status must be open, in_review, actioned or dismissed")
        statuses = (status,) if status else store.UNRESOLVED
        async with self.db.transaction() as conn:
            rows = await store.queue(conn, statuses=statuses, after=after, limit=max(1, min(limit, PAGE_MAX)))
        now = self.clock.now()
        return [_operator_view(r, now) for r in rows]

    async def get(self, report_id: int) -> dict:
        async with self.db.transaction() as conn:
            row = await store.get_report(conn, report_id)
        if row is None:
            raise NotFound(f"no report {report_id}", Code.REPORT_NOT_FOUND)
        return _operator_view(row, self.clock.now())

    async def assign(self, operator: Principal, report_id: int, *, assignee_id: int | None = None) -> dict:
        """Take a report into review (assignee: the caller unless another moderator is named)."""
        require_role(operator, Role.MODERATOR)
        assignee_id = assignee_id or operator.id
        now = self.clock.now()
        async with self.db.transaction() as conn:
            row = await self._locked(conn, report_id, "assign")
            if assignee_id != operator.id:
                assignee = await account_store.get_operator(conn, assignee_id)
                roles = (await account_store.operator_roles_of(conn, [assignee_id]))[assignee_id]
                if assignee is None or Role.MODERATOR not in roles or assignee["disabled_at"] is not None:
                    raise NotFound(f"no active moderator {assignee_id}")
            await store.update_report(conn, report_id, status="in_review", assignee_id=assignee_id)
            await self._audit(conn, operator.id, "report.assign", row, now, assignee_id=assignee_id)
            row = await store.get_report(conn, report_id)
        return _operator_view(row, now)

    async def resolve(
        self, operator: Principal, report_id: int, *, outcome: str, sanction_id: int | None = None, note: str = ""
    ) -> dict:
        """Close a report in review; `actioned` names the sanction it led to. The reporter is told."""
        require_role(operator, Role.MODERATOR)
        if outcome not in OUTCOMES:
            raise BadRequest("outcome must be actioned or dismissed")
        if outcome == "actioned" and sanction_id is None:
            raise BadRequest("an actioned report names the sanction it led to (sanction_id)")
        if outcome == "dismissed" and sanction_id is not None:
            raise BadRequest("a dismissed report led to no sanction")
        note = note.strip()
        if len(note) > MAX_NOTE_CHARS:
            raise BadRequest(f"note must be at most {MAX_NOTE_CHARS} characters")
        now = self.clock.now()
        async with self.db.transaction() as conn:
            row = await self._locked(conn, report_id, "resolve")
            if sanction_id is not None and await sanction_store.get_sanction(conn, sanction_id) is None:
                raise NotFound(f"no sanction {sanction_id}", Code.SANCTION_NOT_FOUND)
            await store.update_report(
                conn, report_id, status=outcome, sanction_id=sanction_id, resolution_note=note or None, resolved_at=now
            )
            await self._audit(conn, operator.id, "report.resolve", row, now, outcome=outcome, sanction_id=sanction_id)
            row = await store.get_report(conn, report_id)
        text = (
            "Thank you: we acted on your report."
            if outcome == "actioned"
            else "Thank you: we reviewed your report and took no action."
        )
        self.emit(
            UserEvent(
                (row["reporter_id"],),
                "notice",
                {"kind": "report_resolved", "text": text, "data": {"report_id": report_id, "outcome": outcome}},
            )
        )
        return _operator_view(row, now)

    async def unresolved_stats(self) -> tuple[int, float]:
        """(reports awaiting a decision, age in seconds of the oldest; 0 if none), for /metrics."""
        async with self.db.transaction() as conn:
            count, oldest = await store.unresolved_stats(conn)
        age = max(0.0, (self.clock.now() - oldest).total_seconds()) if oldest is not None else 0.0
        return count, age

    # -- helpers ----------------------------------------------------------------------

    async def _locked(self, conn: Conn, report_id: int, action: str):
        row = await store.get_report(conn, report_id, lock=True)
        if row is None:
            raise NotFound(f"no report {report_id}", Code.REPORT_NOT_FOUND)
        if (row["status"], action) not in TRANSITIONS:
            raise Conflict(f"a report that is {row['status']} cannot be {action}ed", Code.REPORT_STATE)
        return row

    async def _audit(self, conn: Conn, operator_id: int, action: str, row, now: datetime, **detail) -> None:
        await audit.append(
            conn,
            at=now,
            actor_kind="operator",
            actor_id=operator_id,
            action=action,
            subject=f"report:{row['id']}",
            detail={"target": f"{row['target_kind']}:{row['target_id']}", **detail},
        )
