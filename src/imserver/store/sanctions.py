"""Sanctions, their events and appeals (Art. 8 "store relevant records").

A sanction row is written once and never updated or deleted; everything that
happens to it afterwards (confirmation, lifting, expiry, an appeal and its
outcome) is a row of ``sanction_events``. Its state is derived from those rows
(``services/sanction_state.py``). The one mutable row here is an appeal's
decision, which records the review, not the sanction.

State-changing use cases first take :func:`lock_sanction`, so two operators (or
two nodes' expiry sweeps) acting on one sanction at once are serialised on
PostgreSQL; on SQLite every transaction is BEGIN IMMEDIATE and already is.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .db import insert_unique
from .tables import appeals, messages, sanction_events, sanctions

# Events after which a sanction no longer applies (same set as store/policy.py).
ENDING_EVENTS = ("lifted", "expired", "overturned")


def ended():
    """SQL: this sanction has an event that ended it (lifted, expired, overturned)."""
    return exists().where(sanction_events.c.sanction_id == sanctions.c.id, sanction_events.c.kind.in_(ENDING_EVENTS))


def has_event(kind: str):
    """SQL: this sanction has an event of `kind` (e.g. "confirmed")."""
    return exists().where(sanction_events.c.sanction_id == sanctions.c.id, sanction_events.c.kind == kind)


def _row(r) -> dict:
    d = dict(r)
    d["evidence"] = json.loads(d["evidence"])
    return d


async def insert_sanction(
    conn: AsyncConnection,
    *,
    subject_kind: str,
    subject_id: int,
    kind: str,
    reason: str,
    evidence: dict,
    imposed_by: int,
    needs_confirmation: bool,
    starts_at: datetime,
    ends_at: datetime | None,
    now: datetime,
) -> int:
    result = await conn.execute(
        insert(sanctions)
        .values(
            subject_kind=subject_kind,
            subject_id=subject_id,
            kind=kind,
            reason=reason,
            evidence=json.dumps(evidence, sort_keys=True, separators=(",", ":")),
            imposed_by=imposed_by,
            needs_confirmation=needs_confirmation,
            starts_at=starts_at,
            ends_at=ends_at,
            created_at=now,
        )
        .returning(sanctions.c.id)
    )
    return result.scalar_one()


async def get_sanction(conn: AsyncConnection, sanction_id: int) -> dict | None:
    row = (await conn.execute(select(sanctions).where(sanctions.c.id == sanction_id))).mappings().first()
    return _row(row) if row else None


async def lock_sanction(conn: AsyncConnection, sanction_id: int) -> dict | None:
    """The sanction, row-locked until the transaction ends (PostgreSQL; SQLite is serial anyway)."""
    q = select(sanctions).where(sanctions.c.id == sanction_id).with_for_update()
    row = (await conn.execute(q)).mappings().first()
    return _row(row) if row else None


async def insert_event(
    conn: AsyncConnection, *, sanction_id: int, kind: str, operator_id: int | None, note: str | None, at: datetime
) -> int:
    result = await conn.execute(
        insert(sanction_events)
        .values(sanction_id=sanction_id, kind=kind, operator_id=operator_id, note=note, at=at)
        .returning(sanction_events.c.id)
    )
    return result.scalar_one()


async def events_for(conn: AsyncConnection, sanction_ids: list[int]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {sid: [] for sid in sanction_ids}
    if not sanction_ids:
        return out
    q = select(sanction_events).where(sanction_events.c.sanction_id.in_(sanction_ids)).order_by(sanction_events.c.id)
    for r in (await conn.execute(q)).mappings().all():
        out[r["sanction_id"]].append(dict(r))
    return out


async def for_subject(conn: AsyncConnection, subject_kind: str, subject_id: int) -> list[dict]:
    q = (
        select(sanctions)
        .where(sanctions.c.subject_kind == subject_kind, sanctions.c.subject_id == subject_id)
        .order_by(sanctions.c.id)
    )
    return [_row(r) for r in (await conn.execute(q)).mappings().all()]


async def count_strikes(conn: AsyncConnection, subject_kind: str, subject_id: int, since: datetime) -> int:
    """Sanctions that took effect since `since` and were not overturned (the escalation hint)."""
    took_effect = or_(sanctions.c.needs_confirmation.is_(False), has_event("confirmed"))
    q = (
        select(func.count())
        .select_from(sanctions)
        .where(
            sanctions.c.subject_kind == subject_kind,
            sanctions.c.subject_id == subject_id,
            sanctions.c.starts_at >= since,
            took_effect,
            ~has_event("overturned"),
        )
    )
    return (await conn.execute(q)).scalar_one()


async def due_for_expiry(conn: AsyncConnection, now: datetime, limit: int) -> list[int]:
    """Ids of sanctions whose end has passed and that no event has ended yet."""
    q = (
        select(sanctions.c.id)
        .where(sanctions.c.ends_at.is_not(None), sanctions.c.ends_at <= now, ~ended())
        .order_by(sanctions.c.ends_at, sanctions.c.id)
        .limit(limit)
    )
    return list((await conn.execute(q)).scalars().all())


# A proposal to undo (lift or overturn) awaiting its second operator, and what settles one.
PENDING_EVENTS = ("lift_pending", "overturn_pending")
SETTLING_EVENTS = ("lifted", "overturned", "upheld", "undo_declined")  # and "expired", for a pending lift


def pending_undo():
    """SQL: the sanction's latest proposal to lift or overturn is not settled by a later event."""
    proposal = sanction_events.alias("proposal")
    later = sanction_events.alias("later")
    return exists().where(
        proposal.c.sanction_id == sanctions.c.id,
        proposal.c.kind.in_(PENDING_EVENTS),
        ~exists().where(
            later.c.sanction_id == sanctions.c.id,
            later.c.id > proposal.c.id,
            or_(
                later.c.kind.in_(SETTLING_EVENTS),
                and_(later.c.kind == "expired", proposal.c.kind == "lift_pending"),
            ),
        ),
    )


async def other_confirmed_closure(conn: AsyncConnection, subject_kind: str, subject_id: int, but: int) -> bool:
    """Whether another confirmed, unended close_account sanction holds this subject."""
    q = select(
        exists().where(
            sanctions.c.subject_kind == subject_kind,
            sanctions.c.subject_id == subject_id,
            sanctions.c.kind == "close_account",
            sanctions.c.id != but,
            has_event("confirmed"),
            ~ended(),
        )
    )
    return bool((await conn.execute(q)).scalar())


async def message_senders(conn: AsyncConnection, ids: list[int]) -> dict[int, int]:
    """message id -> its sender, for the ids that exist."""
    if not ids:
        return {}
    q = select(messages.c.id, messages.c.sender_id).where(messages.c.id.in_(ids))
    return {r.id: r.sender_id for r in await conn.execute(q)}


async def overturned_ids(conn: AsyncConnection, ids: list[int]) -> set[int]:
    """Of these sanctions, those overturned on appeal."""
    if not ids:
        return set()
    q = select(sanction_events.c.sanction_id).where(
        sanction_events.c.sanction_id.in_(ids), sanction_events.c.kind == "overturned"
    )
    return set((await conn.execute(q)).scalars().all())


# -- appeals -------------------------------------------------------------------------


async def insert_appeal(
    conn: AsyncConnection, *, sanction_id: int, user_id: int, text: str, now: datetime
) -> int | None:
    """The new appeal's id, or None if this sanction was appealed already (one each)."""
    return await insert_unique(
        conn,
        insert(appeals)
        .values(sanction_id=sanction_id, user_id=user_id, text=text, filed_at=now)
        .returning(appeals.c.id),
    )


async def get_appeal(conn: AsyncConnection, appeal_id: int):
    return (await conn.execute(select(appeals).where(appeals.c.id == appeal_id))).mappings().first()


async def appeals_for(conn: AsyncConnection, sanction_ids: list[int]) -> dict[int, dict]:
    if not sanction_ids:
        return {}
    q = select(appeals).where(appeals.c.sanction_id.in_(sanction_ids))
    return {r["sanction_id"]: dict(r) for r in (await conn.execute(q)).mappings().all()}


async def decide_appeal(
    conn: AsyncConnection, appeal_id: int, *, decision: str, decided_by: int, note: str | None, now: datetime
) -> bool:
    """Record the decision once; False if it was decided already."""
    result = await conn.execute(
        update(appeals)
        .where(and_(appeals.c.id == appeal_id, appeals.c.decision.is_(None)))
        .values(decision=decision, decided_by=decided_by, decided_at=now, note=note)
    )
    return result.rowcount == 1
