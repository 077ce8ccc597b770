"""The operator queues' sizes and oldest entries: one aggregate query per queue.

Each queue is "rows waiting for an operator (or, for the regulator outbox, for
delivery)" with the time the oldest of them started waiting. The conditions are
the same ones the queues' own pages use (identity review, held messages, ...),
so a gauge and the page an operator opens agree.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .reports import UNRESOLVED
from .sanctions import ended, has_event
from .tables import (
    appeals,
    identities,
    messages,
    policy_decisions,
    public_account_changes,
    public_accounts,
    regulator_outbox,
    reports,
    sanctions,
)

PENDING = "pending"  # identities, public accounts and their changes awaiting review
HELD = "held"  # messages.status of a message held for content review
HOLD = "hold"  # policy_decisions.outcome of the decision that held it


def _queries():
    """(queue name, SELECT count(*), min(<waiting since>)) for every queue."""
    return (
        ("identity_review",
         select(func.count(), func.min(identities.c.submitted_at)).where(identities.c.status == PENDING)),
        ("public_account_review",
         select(func.count(), func.min(public_accounts.c.created_at)).where(public_accounts.c.status == PENDING)),
        ("public_account_changes",
         select(func.count(), func.min(public_account_changes.c.created_at))
         .where(public_account_changes.c.status == PENDING)),
        ("reports",
         select(func.count(), func.min(reports.c.created_at)).where(reports.c.status.in_(UNRESOLVED))),
        # Through the unreviewed-hold decisions (indexed by outcome, review), not a scan of messages.
        ("held_messages",
         select(func.count(), func.min(messages.c.created_at))
         .select_from(policy_decisions.join(messages, messages.c.id == policy_decisions.c.message_id))
         .where(policy_decisions.c.outcome == HOLD, policy_decisions.c.review.is_(None), messages.c.status == HELD)),
        ("appeals",
         select(func.count(), func.min(appeals.c.filed_at)).where(appeals.c.decision.is_(None))),
        ("closures_awaiting_confirmation",
         select(func.count(), func.min(sanctions.c.created_at))
         .where(sanctions.c.needs_confirmation.is_(True), ~has_event("confirmed"), ~ended())),
        ("regulator_outbox",
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
