"""The operator queues' sizes and oldest entries: one aggregate query per queue.

Each queue is "rows waiting for an operator (or, for the regulator outbox, for
delivery)" with the time the oldest of them started waiting. The conditions are
the same ones the queues' own pages use (identity review, held messages, ...),
so a gauge and the page an operator opens agree. The names are the staffing
report's (store/staffing.py) for the queues it measures.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.enums import RealNameStatus
from .messages import HELD
from .public_accounts import PENDING
from .reports import UNRESOLVED
from .sanctions import ended, has_event
from .tables import (
    appeals,
    identities,
    messages,
    public_account_changes,
    public_accounts,
    regulator_outbox,
    reports,
    sanctions,
)

# Queue names, in the order a dashboard lists them.
IDENTITY = "identity_reviews"
PUBLIC_ACCOUNTS = "public_account_applications"
PUBLIC_ACCOUNT_CHANGES = "public_account_changes"
REPORTS = "reports"
HELD_MESSAGES = "held_messages"
APPEALS = "appeals"
CLOSURES = "closures_awaiting_confirmation"
REGULATOR_OUTBOX = "regulator_outbox"


def _queries():
    """(queue name, SELECT count(*), min(<waiting since>)) for every queue."""
    return (
        (IDENTITY,
         select(func.count(), func.min(identities.c.submitted_at))
         .where(identities.c.status == RealNameStatus.PENDING)),
        (PUBLIC_ACCOUNTS,
         select(func.count(), func.min(public_accounts.c.created_at)).where(public_accounts.c.status == PENDING)),
        (PUBLIC_ACCOUNT_CHANGES,
         select(func.count(), func.min(public_account_changes.c.created_at))
         .where(public_account_changes.c.status == PENDING)),
        (REPORTS,
         select(func.count(), func.min(reports.c.created_at)).where(reports.c.status.in_(UNRESOLVED))),
        # By the message's own status, as the held page lists them: the hold decision is
        # recorded in batches off the send path (services/decision_log.py) and may lag.
        (HELD_MESSAGES,
         select(func.count(), func.min(messages.c.created_at)).where(messages.c.status == HELD)),
        (APPEALS,
         select(func.count(), func.min(appeals.c.filed_at)).where(appeals.c.decision.is_(None))),
        (CLOSURES,
         select(func.count(), func.min(sanctions.c.created_at))
         .where(sanctions.c.needs_confirmation.is_(True), ~has_event("confirmed"), ~ended())),
        (REGULATOR_OUTBOX,
         select(func.count(), func.min(regulator_outbox.c.created_at))
         .where(regulator_outbox.c.delivered_at.is_(None))),
    )


QUEUE_NAMES = tuple(name for name, _ in _queries())


async def queue_heads(conn: AsyncConnection) -> list[tuple[str, int, datetime | None]]:
    """(name, rows waiting, when the oldest began waiting or None) for every queue, in QUEUE_NAMES order."""
    out = []
    for name, query in _queries():
        count, oldest = (await conn.execute(query)).one()  # min() keeps the column type: aware UTC
        out.append((name, int(count), oldest))
    return out


async def sanctions_in_force(conn: AsyncConnection, now: datetime) -> dict[str, int]:
    """Sanctions in force now, by kind: started, confirmed where needed, not ended, end not passed."""
    q = (
        select(sanctions.c.kind, func.count())
        .where(
            sanctions.c.starts_at <= now,
            or_(sanctions.c.ends_at.is_(None), sanctions.c.ends_at > now),
            or_(sanctions.c.needs_confirmation.is_(False), has_event("confirmed")),
            ~ended(),
        )
        .group_by(sanctions.c.kind)
    )
    return {kind: count for kind, count in (await conn.execute(q)).all()}
