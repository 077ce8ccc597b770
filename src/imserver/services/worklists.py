"""The operators' work lists: sanctions, appeals, reports, held messages and the
audit log, each filtered, sorted and keyset-paged in one envelope
(``services/paging.py``). The identity queue and public-account applications
page the same way from their own services.

Filter values arrive as the enums below (the admin API declares them, so an
unknown value is a 422 before it gets here); ranges that cannot hold (a period
ending before it starts) are ``invalid_filter``. Detail views that show users'
content (a report, a held message, a sanction's evidence) embed it through
:class:`~imserver.services.content.Content`, which audits the read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ..domain.fields import Cursor, Id, Instant, Text
from ..domain.clock import Clock
from ..domain.enums import Role
from ..domain.errors import BadRequest, Code, NotFound
from ..domain.policy_types import SanctionKind
from ..domain.principals import Principal
from ..store import audit
from ..store import reports as report_store
from ..store import sanctions as sanction_store
from ..store import worklists as store
from ..store.db import Database
from . import paging
from .accounts import require_role
from .content import Content
from .reports import operator_views as report_views
from .sanction_state import Stage
from .sanctions import Sanctions


class Order(StrEnum):
    ASC = "asc"
    DESC = "desc"


class SanctionSort(StrEnum):
    CREATED_AT = "created_at"
    STARTS_AT = "starts_at"


class SubjectKind(StrEnum):
    USER = "user"
    PUBLIC_ACCOUNT = "public_account"


class AppealStatus(StrEnum):
    PENDING = "pending"
    UPHELD = "upheld"
    OVERTURNED = "overturned"


class ReportStatus(StrEnum):
    OPEN = "open"
    IN_REVIEW = "in_review"
    ACTIONED = "actioned"
    DISMISSED = "dismissed"


class ReportTargetKind(StrEnum):
    MESSAGE = "message"
    POST = "post"
    ACCOUNT = "account"


class ReportCategory(StrEnum):
    UNLAWFUL = "unlawful"
    HARMFUL = "harmful"
    RUMOUR = "rumour"
    FRAUD = "fraud"
    PORNOGRAPHY = "pornography"
    OTHER = "other"


class ActorKind(StrEnum):
    OPERATOR = "operator"
    USER = "user"
    SYSTEM = "system"


# -- filters: the admin API takes each as query parameters (FastAPI reads the fields) ------


@dataclass(frozen=True)
class SanctionFilter:
    kind: SanctionKind | None = None
    status: Stage | None = None
    subject_kind: SubjectKind | None = None
    subject_id: Id | None = None
    imposed_by: Id | None = None  # the imposing operator's id
    since: Instant | None = None  # created at or after
    until: Instant | None = None  # created before


@dataclass(frozen=True)
class AppealFilter:
    status: AppealStatus | None = None
    user_id: Id | None = None
    since: Instant | None = None  # filed at or after
    until: Instant | None = None  # filed before


@dataclass(frozen=True)
class ReportFilter:
    status: ReportStatus | None = None  # default: open and in_review
    target_kind: ReportTargetKind | None = None
    category: ReportCategory | None = None
    assignee_id: Id | None = None
    reporter_id: Id | None = None
    min_age_seconds: Cursor | None = None  # filed at least this long ago


@dataclass(frozen=True)
class HeldFilter:
    sender_id: Id | None = None
    conversation_id: Id | None = None


@dataclass(frozen=True)
class AuditFilter:
    actor_kind: ActorKind | None = None
    actor_id: Id | None = None
    action: Text | None = None  # an action ("report.file"), or a family ending in a dot ("report.")
    subject: Text | None = None  # e.g. "user:7"
    since: Instant | None = None
    until: Instant | None = None


@dataclass(frozen=True)
class PageArgs:
    """Where a page starts and how long it is (sort and order are each list's own)."""

    cursor: Text | None = None  # next_cursor of the previous page; none for the first page
    limit: int = paging.PAGE_DEFAULT


def request(list_kind: str, args: PageArgs, *, sort: str, order: Order, cap: int = paging.PAGE_CAP):
    return paging.page_request(
        list_kind, sort=sort, descending=order is Order.DESC, cursor=args.cursor, limit=args.limit, cap=cap
    )


AUDIT_CAP = 1000  # the audit list pages wider than the queues: it is read in bulk for reviews


def check_period(since: datetime | None, until: datetime | None) -> None:
    """A period filter [since, until) must not end before it starts."""
    if since is not None and until is not None and until < since:
        raise BadRequest("the period ends before it starts", Code.INVALID_FILTER)


def _keyset(page: paging.PageRequest) -> dict:
    """The store's keyset arguments for a page request."""
    return {"descending": page.descending, "after": page.after, "limit": page.limit}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _desc(order: Order) -> bool:
    return order is Order.DESC


class Worklists:
    def __init__(self, db: Database, clock: Clock, *, sanctions: Sanctions, content: Content) -> None:
        self.db = db
        self.clock = clock
        self.sanctions = sanctions
        self.content = content

    # -- sanctions ---------------------------------------------------------------------

    async def sanctions_list(
        self,
        operator: Principal,
        f: SanctionFilter = SanctionFilter(),
        args: PageArgs = PageArgs(),
        *,
        sort: SanctionSort = SanctionSort.CREATED_AT,
        order: Order = Order.DESC,
    ) -> dict:
        """Sanctions by kind, status, subject, imposing operator and creation period; newest first by default."""
        require_role(operator, Role.MODERATOR, Role.COMPLIANCE)
        check_period(f.since, f.until)
        page = request("sanctions", args, sort=sort, order=order)
        async with self.db.read() as conn:
            rows, total = await store.sanctions_page(
                conn, now=self.clock.now(), **asdict(f), sort=sort, **_keyset(page)
            )
            items = await self.sanctions.views_of(conn, rows[: page.limit])
        return paging.envelope(page, rows, total, items)

    async def sanction_detail(self, operator: Principal, sanction_id: int) -> dict:
        """One sanction (events, appeal, regulator records) with the content its evidence names."""
        require_role(operator, Role.MODERATOR, Role.COMPLIANCE)
        view = await self.sanctions.get(sanction_id)
        return {**view, "evidence_content": await self._evidence(operator, sanction_id)}

    async def _evidence(self, operator: Principal, sanction_id: int) -> list[dict]:
        """The content a sanction's evidence names (messages, posts, reports' targets); an audited read."""
        async with self.db.transaction() as conn:
            sanction = await sanction_store.get_sanction(conn, sanction_id)
            if sanction is None:
                raise NotFound(f"no sanction {sanction_id}", Code.SANCTION_NOT_FOUND)
            evidence = sanction["evidence"]
            targets = [("message", i) for i in evidence.get("message_ids", [])]
            targets += [("post", i) for i in evidence.get("post_ids", [])]
            for report_id in evidence.get("report_ids", []):
                report = await report_store.get_report(conn, report_id)
                if report is not None:
                    targets.append((report["target_kind"], report["target_id"]))
            return await self.content.embedded(conn, operator, targets, via=f"sanction:{sanction_id}")

    # -- appeals -----------------------------------------------------------------------

    async def appeals_list(
        self, operator: Principal, f: AppealFilter = AppealFilter(), args: PageArgs = PageArgs(), *, order: Order = Order.ASC
    ) -> dict:
        """Appeals in every status (default: all), oldest first, each with its sanction."""
        require_role(operator, Role.COMPLIANCE)
        check_period(f.since, f.until)
        page = request("appeals", args, sort="filed_at", order=order)
        async with self.db.read() as conn:
            rows, total = await store.appeals_page(conn, **asdict(f), sort="filed_at", **_keyset(page))
            listed = rows[: page.limit]
            sanctions = [await sanction_store.get_sanction(conn, a["sanction_id"]) for a in listed]
            views = await self.sanctions.views_of(conn, sanctions)
        items = [
            {
                "appeal_id": a["id"],
                "user_id": a["user_id"],
                "text": a["text"],
                "filed_at": _iso(a["filed_at"]),
                "status": a["decision"] or AppealStatus.PENDING.value,
                "decided_by": a["decided_by"],
                "decided_at": _iso(a["decided_at"]),
                "note": a["note"],
                "sanction": view,
            }
            for a, view in zip(listed, views, strict=True)
        ]
        return paging.envelope(page, rows, total, items)

    # -- reports -------------------------------------------------------------------------

    async def reports_list(
        self, operator: Principal, f: ReportFilter = ReportFilter(), args: PageArgs = PageArgs(), *, order: Order = Order.ASC
    ) -> dict:
        """Reports (default: awaiting a decision) by status, target kind, category, assignee,
        reporter and age; oldest first by default."""
        require_role(operator, Role.MODERATOR)
        if f.min_age_seconds is not None and f.min_age_seconds < 0:
            raise BadRequest("min_age_seconds must be >= 0", Code.INVALID_FILTER)
        page = request("reports", args, sort="created_at", order=order)
        now = self.clock.now()
        async with self.db.read() as conn:
            rows, total = await store.reports_page(
                conn,
                statuses=(f.status.value,) if f.status else report_store.UNRESOLVED,
                target_kind=f.target_kind,
                category=f.category,
                assignee_id=f.assignee_id,
                reporter_id=f.reporter_id,
                filed_before=now - timedelta(seconds=f.min_age_seconds) if f.min_age_seconds else None,
                sort="created_at",
                **_keyset(page),
            )
            views = await report_views(conn, rows[: page.limit], now)
        return paging.envelope(page, rows, total, views)

    async def report_detail(self, operator: Principal, report_id: int) -> dict:
        """One report with its target's content and author embedded (an audited read)."""
        require_role(operator, Role.MODERATOR)
        async with self.db.transaction() as conn:
            row = await report_store.get_report(conn, report_id)
            if row is None:
                raise NotFound(f"no report {report_id}", Code.REPORT_NOT_FOUND)
            [content] = await self.content.embedded(
                conn, operator, [(row["target_kind"], row["target_id"])], via=f"report:{report_id}"
            )
            [view] = await report_views(conn, [row], self.clock.now())
        return {**view, "target_content": content}

    # -- held messages -------------------------------------------------------------------

    async def held_list(
        self, operator: Principal, f: HeldFilter = HeldFilter(), args: PageArgs = PageArgs(), *, order: Order = Order.ASC
    ) -> dict:
        """Held messages awaiting review, oldest first, with the check that held them and the
        sender's names. The queue shows bodies (deciding needs them): listing it is an audited read."""
        require_role(operator, Role.MODERATOR)
        page = request("held", args, sort="sent_at", order=order)
        async with self.db.transaction() as conn:
            rows, total = await store.held_page(conn, **asdict(f), **_keyset(page))
            listed = rows[: page.limit]
            if listed:
                await self.content.audit_read(
                    conn, operator, None, via="held_queue", read=[f"message:{r['message_id']}" for r in listed]
                )
        items = [
            {
                "message_id": r["message_id"],
                "conversation_id": r["conversation_id"],
                "sender_id": r["sender_id"],
                "sender": {"id": r["sender_id"], "handle": r["sender_handle"], "nickname": r["sender_nickname"]},
                "body": r["body"],
                "sent_at": _iso(r["created_at"]),
                "reason": r["reason"],
                "check": r["check_name"],
                "detail": r["detail"],
            }
            for r in listed
        ]
        return paging.envelope(page, rows, total, items)

    # -- audit --------------------------------------------------------------------------

    async def audit_list(
        self, operator: Principal, f: AuditFilter = AuditFilter(), args: PageArgs = PageArgs(), *, order: Order = Order.ASC
    ) -> dict:
        """Audit rows by actor, action (``report.`` for a family), subject and period, with
        operators' handles; the read itself is an ``audit.read`` row."""
        require_role(operator, Role.COMPLIANCE, Role.ADMIN)
        check_period(f.since, f.until)
        page = request("audit", args, sort="id", order=order, cap=AUDIT_CAP)
        async with self.db.transaction() as conn:
            rows, total = await store.audit_page(conn, **asdict(f), **_keyset(page))
            filters = {k: v for k, v in asdict(f).items() if v is not None}
            await audit.append(
                conn,
                at=self.clock.now(),
                actor_kind="operator",
                actor_id=operator.id,
                action="audit.read",
                subject=None,
                detail={"filters": filters, "returned": min(len(rows), page.limit)},
            )
        items = [
            {
                "id": r["id"],
                "at": _iso(r["at"]),
                "actor_kind": r["actor_kind"],
                "actor_id": r["actor_id"],
                "actor_handle": r["actor_handle"],
                "action": r["action"],
                "subject": r["subject"],
                "detail": json.loads(r["detail"]),
                "prev_hash": r["prev_hash"],
                "hash": r["hash"],
            }
            for r in rows[: page.limit]
        ]
        return paging.envelope(page, rows, total, items)

