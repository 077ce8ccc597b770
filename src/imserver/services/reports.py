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
followed: that is the reported user's business; only that the measure was
later overturned on appeal shows (``sanction_overturned``). Filing and every
moderator action write an audit row.

Filing rules: the target must be one the reporter can see, and not their own
(``self_report``); one open report per reporter and target (``report_exists``);
at most ``rate_limit`` reports per reporter per ``rate_window``
(``report_rate_limited``, 429). A report on a target that already has an open
queue item *joins* it: one item for moderators, with a count and every
reporter, who share its status and are each told the outcome.

``targets[kind]`` (conn, target id, reporter id) answers whom a visible target
is about (``("user", id)``, ``("public_account", id)``), or None when the
reporter cannot see it; ``services/public_accounts.py`` registers ``post``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from ..domain.clock import Clock
from ..domain.enums import Role
from ..domain.errors import BadRequest, Code, Conflict, NotFound, TooManyRequests
from ..domain.principals import Principal
from ..store import accounts as account_store
from ..store import audit
from ..store import reports as store
from ..store import sanctions as sanction_store
from ..store.db import Database
from . import regulator
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
Subjects = frozenset[tuple[str, int]]
TargetCheck = Callable[[Conn, int, int], Awaitable[Subjects | None]]


async def _message_target(conn: Conn, message_id: int, reporter_id: int) -> Subjects | None:
    """A message exists for the reporter only if they could read it (no probing of ids); it is about its sender."""
    if not await store.message_visible_to(conn, message_id, reporter_id):
        return None
    senders = await sanction_store.message_senders(conn, [message_id])
    return frozenset({("user", senders[message_id])}) if message_id in senders else None


async def _account_target(conn: Conn, user_id: int, reporter_id: int) -> Subjects | None:
    return frozenset({("user", user_id)}) if await account_store.get_user(conn, user_id) is not None else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _operator_view(r, now: datetime, joined: list[dict], overturned: bool) -> dict:
    resolved = r["resolved_at"]
    return {
        "id": r["id"],
        "reporter_id": r["reporter_id"],
        "report_count": 1 + len(joined),
        "reporters": [r["reporter_id"], *(j["reporter_id"] for j in joined)],
        "joined": [
            {
                "id": j["id"],
                "reporter_id": j["reporter_id"],
                "category": j["category"],
                "text": j["text"],
                "created_at": _iso(j["created_at"]),
            }
            for j in joined
        ],
        "sanction_overturned": overturned,
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


def _reporter_view(r, overturned: bool = False) -> dict:
    return {
        "id": r["id"],
        "joined": r["joined_to"] is not None,
        "sanction_overturned": overturned,
        "target": {"kind": r["target_kind"], "id": r["target_id"]},
        "category": r["category"],
        "text": r["text"],
        "status": r["status"],
        "created_at": _iso(r["created_at"]),
        "resolved_at": _iso(r["resolved_at"]),
    }


class Reports:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        emit: Callable[[UserEvent], None],
        rate_limit: int = 20,
        rate_window: timedelta = timedelta(hours=1),
    ) -> None:
        self.db = db
        self.clock = clock
        self.emit = emit
        self.rate_limit = rate_limit
        self.rate_window = rate_window
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
            about = await check(conn, target_id, user.id) if check is not None else None
            if about is None:
                raise NotFound(f"no {target_kind} {target_id} that you can report", Code.REPORT_TARGET_NOT_FOUND)
            if ("user", user.id) in about:
                raise BadRequest("you cannot report your own message, post or account", Code.SELF_REPORT)
            await store.lock_filing(conn, user.id, target_kind, target_id)
            item = await store.open_item_on(conn, target_kind, target_id)
            if item is not None and user.id in await self._reporters(conn, item):
                raise Conflict("your report on this target is still open", Code.REPORT_EXISTS)
            since = now - self.rate_window
            if await store.count_by_reporter_since(conn, user.id, since) >= self.rate_limit:
                oldest = await store.oldest_by_reporter_since(conn, user.id, since)
                wait = (oldest + self.rate_window - now).total_seconds() if oldest else self.rate_window.total_seconds()
                raise TooManyRequests(
                    f"at most {self.rate_limit} reports per {int(self.rate_window.total_seconds())} s",
                    Code.REPORT_RATE_LIMITED,
                    retry_after=max(1, round(wait)),
                )
            report_id = await store.insert_report(
                conn,
                reporter_id=user.id,
                target_kind=target_kind,
                target_id=target_id,
                category=category,
                text=text,
                now=now,
                joined_to=item["id"] if item is not None else None,
                status=item["status"] if item is not None else "open",
            )
            await audit.append(
                conn,
                at=now,
                actor_kind="user",
                actor_id=user.id,
                action="report.file",
                subject=f"{target_kind}:{target_id}",
                detail={"report_id": report_id, "category": category, "joined_to": item["id"] if item else None},
            )
            row = await store.get_report(conn, report_id)
        return _reporter_view(row)

    async def mine(self, user_id: int) -> list[dict]:
        async with self.db.transaction() as conn:
            rows = await store.for_reporter(conn, user_id, MINE_MAX)
            overturned = await sanction_store.overturned_ids(conn, [r["sanction_id"] for r in rows if r["sanction_id"]])
        return [_reporter_view(r, r["sanction_id"] in overturned) for r in rows]

    # -- moderators ----------------------------------------------------------------

    async def queue(self, *, status: str | None, after: int = 0, limit: int = 50) -> list[dict]:
        """Oldest first; default: everything awaiting a decision (open and in review)."""
        if status is not None and status not in ("open", "in_review", *OUTCOMES):
            raise BadRequest("status must be open, in_review, actioned or dismissed")
        statuses = (status,) if status else store.UNRESOLVED
        async with self.db.transaction() as conn:
            rows = await store.queue(conn, statuses=statuses, after=after, limit=max(1, min(limit, PAGE_MAX)))
            return await self._views(conn, rows)

    async def get(self, report_id: int) -> dict:
        """A queue item with its joined reports; a joined report is shown as filed, with its item's id."""
        async with self.db.transaction() as conn:
            row = await store.get_report(conn, report_id)
            if row is None:
                raise NotFound(f"no report {report_id}", Code.REPORT_NOT_FOUND)
            view = (await self._views(conn, [row]))[0]
        view["joined_to"] = row["joined_to"]
        return view

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
            return (await self._views(conn, [row]))[0]

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
            sanction = await sanction_store.get_sanction(conn, sanction_id) if sanction_id is not None else None
            if sanction_id is not None and sanction is None:
                raise NotFound(f"no sanction {sanction_id}", Code.SANCTION_NOT_FOUND)
            await store.update_report(
                conn, report_id, status=outcome, sanction_id=sanction_id, resolution_note=note or None, resolved_at=now
            )
            await self._audit(conn, operator.id, "report.resolve", row, now, outcome=outcome, sanction_id=sanction_id)
            row = await store.get_report(conn, report_id)
            reporters = await self._reporters(conn, row)
            if sanction is not None:  # a report that led to a measure is reported (Art. 8)
                await regulator.record_report(conn, report=row, reporters=len(reporters), sanction=sanction, now=now)
            view = (await self._views(conn, [row]))[0]
        text = (
            "Thank you: we acted on your report."
            if outcome == "actioned"
            else "Thank you: we reviewed your report and took no action."
        )
        # Every reporter of the item is told, each about their own report.
        joined = {row["reporter_id"]: row["id"], **{j["reporter_id"]: j["id"] for j in view["joined"]}}
        for reporter in reporters:
            data = {"report_id": joined[reporter], "outcome": outcome}
            self.emit(UserEvent((reporter,), "notice", {"kind": "report_resolved", "text": text, "data": data}))
        return view

    async def unresolved_stats(self) -> tuple[int, float]:
        """(reports awaiting a decision, age in seconds of the oldest; 0 if none), for /metrics."""
        async with self.db.transaction() as conn:
            count, oldest = await store.unresolved_stats(conn)
        age = max(0.0, (self.clock.now() - oldest).total_seconds()) if oldest is not None else 0.0
        return count, age

    # -- helpers ----------------------------------------------------------------------

    async def _views(self, conn: Conn, rows) -> list[dict]:
        joined = await store.joined(conn, [r["id"] for r in rows])
        overturned = await sanction_store.overturned_ids(conn, [r["sanction_id"] for r in rows if r["sanction_id"]])
        now = self.clock.now()
        return [_operator_view(r, now, joined[r["id"]], r["sanction_id"] in overturned) for r in rows]

    async def _reporters(self, conn: Conn, item) -> list[int]:
        """Everyone who reported a queue item's target: its reporter, then those who joined."""
        rest = (await store.joined(conn, [item["id"]]))[item["id"]]
        return list(dict.fromkeys([item["reporter_id"], *(j["reporter_id"] for j in rest)]))

    async def _locked(self, conn: Conn, report_id: int, action: str):
        row = await store.get_report(conn, report_id, lock=True)
        if row is None:
            raise NotFound(f"no report {report_id}", Code.REPORT_NOT_FOUND)
        if row["joined_to"] is not None:
            raise Conflict(
                f"report {report_id} joined report {row['joined_to']}; act on that one", Code.REPORT_STATE
            )
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
