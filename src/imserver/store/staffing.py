"""The operator queues as work items, for the staffing report (Art. 5 "allocate specialist
personnel suited to the scale of services").

Each queue is read as rows of (entered_at, first_action_at, resolved_at, handler_id):
when an item entered the queue, when an operator first acted on it, when it left
the queue, and who resolved it (None: the system, e.g. an automatic identity
verifier). The service computes the figures; this module only selects rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import String, and_, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import (
    appeals,
    audit_log,
    identities,
    messages,
    policy_decisions,
    public_account_changes,
    public_accounts,
    reports,
    sanction_events,
)

Row = tuple[datetime, datetime | None, datetime | None, int | None]
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # before any item: "whenever it entered"


def _in_period(column, since: datetime, until: datetime):
    return and_(column >= since, column < until)


async def _rows(conn: AsyncConnection, q) -> list[Row]:
    return [(r[0], r[1], r[2], r[3]) for r in await conn.execute(q)]


async def reports_queue(conn: AsyncConnection, since: datetime, until: datetime) -> list[Row]:
    """Report queue items (joined reports are not items); first action: the first assign or resolve."""
    first = (
        select(func.min(audit_log.c.at))
        .where(
            audit_log.c.action.in_(("report.assign", "report.resolve")),
            audit_log.c.subject == literal("report:").concat(cast(reports.c.id, String)),
        )
        .scalar_subquery()
    )
    q = select(reports.c.created_at, first, reports.c.resolved_at, reports.c.assignee_id).where(
        reports.c.joined_to.is_(None), _in_period(reports.c.created_at, since, until)
    )
    return await _rows(conn, q)


def _reviewed(table, entered: str, reviewer: str = "reviewer_id", *where):
    """A queue whose items one review takes out: first action and resolution are the review."""

    async def rows(conn: AsyncConnection, since: datetime, until: datetime) -> list[Row]:
        t = table.c
        q = select(t[entered], t.reviewed_at, t.reviewed_at, t[reviewer]).where(
            _in_period(t[entered], since, until), *where
        )
        return await _rows(conn, q)

    return rows


async def appeal_decisions(conn: AsyncConnection, since: datetime, until: datetime) -> list[Row]:
    """First action: the first decision or proposal on the appeal's sanction after it was filed."""
    first = (
        select(func.min(sanction_events.c.at))
        .where(
            sanction_events.c.sanction_id == appeals.c.sanction_id,
            sanction_events.c.kind.in_(("upheld", "overturned", "overturn_pending")),
            sanction_events.c.at >= appeals.c.filed_at,
        )
        .scalar_subquery()
    )
    q = select(appeals.c.filed_at, first, appeals.c.decided_at, appeals.c.decided_by).where(
        _in_period(appeals.c.filed_at, since, until)
    )
    return await _rows(conn, q)


# Queue name -> its rows; the names are the ones metrics and the report use.
QUEUES: dict[str, Callable[[AsyncConnection, datetime, datetime], Awaitable[list[Row]]]] = {
    "reports": reports_queue,
    "held_messages": _reviewed(policy_decisions, "at", "reviewed_by", policy_decisions.c.outcome == "hold"),
    "identity_reviews": _reviewed(identities, "submitted_at"),
    "public_account_applications": _reviewed(public_accounts, "created_at"),
    "public_account_changes": _reviewed(public_account_changes, "created_at"),
    "appeals": appeal_decisions,
}


async def active_users(conn: AsyncConnection, since: datetime, until: datetime) -> int:
    """Users who sent at least one message in the period: the scale the staff serves."""
    q = select(func.count(func.distinct(messages.c.sender_id))).where(_in_period(messages.c.created_at, since, until))
    return (await conn.execute(q)).scalar_one()


async def open_items(conn: AsyncConnection, queue: str, now: datetime) -> list[Row]:
    """Every item of `queue` that entered before `now` and has not left it."""
    rows = await QUEUES[queue](conn, EPOCH, now)
    return [r for r in rows if r[2] is None]


async def resolved_in(conn: AsyncConnection, queue: str, since: datetime, until: datetime) -> list[Row]:
    """Items of `queue` resolved in the period, whenever they entered."""
    rows = await QUEUES[queue](conn, EPOCH, until)
    return [r for r in rows if r[2] is not None and since <= r[2] < until]
