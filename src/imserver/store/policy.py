"""What the policy pipeline needs from the database, and the record of its decisions.

Loaded only on a snapshot-cache miss (services/policy_gate.py); the hot path
reads memory. A sanction "not ended" here is one that has not been lifted,
overturned or expired by an event; whether it is in force *now* (its start and
end times) is decided by the pure checks with the clock, so a cached snapshot
stays right as time passes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .sanctions import ended, has_event
from .tables import filter_terms, policy_decisions, sanctions, users



async def user_facts(conn: AsyncConnection, user_id: int):
    q = select(users.c.id, users.c.status, users.c.realname_status, users.c.agreement_version).where(
        users.c.id == user_id
    )
    return (await conn.execute(q)).mappings().first()


async def open_sanctions(conn: AsyncConnection, subject_kind: str, subject_id: int):
    """Sanctions of a subject that no event has ended, with whether they were confirmed."""
    confirmed = has_event("confirmed")
    q = (
        select(
            sanctions.c.id,
            sanctions.c.kind,
            sanctions.c.starts_at,
            sanctions.c.ends_at,
            sanctions.c.needs_confirmation,
            confirmed.label("confirmed"),
        )
        .where(sanctions.c.subject_kind == subject_kind, sanctions.c.subject_id == subject_id, ~ended())
        .order_by(sanctions.c.id)
    )
    return (await conn.execute(q)).mappings().all()


async def record_decisions(conn: AsyncConnection, rows: list[dict]) -> None:
    """Insert decision rows (user_id, outgoing_kind, outcome, reason, check_name, detail, at, message_id) in one statement."""
    if rows:
        await conn.execute(insert(policy_decisions), rows)


async def all_terms(conn: AsyncConnection):
    q = select(filter_terms.c.id, filter_terms.c.term, filter_terms.c.action, filter_terms.c.list_name)
    return (await conn.execute(q.order_by(filter_terms.c.id))).mappings().all()
