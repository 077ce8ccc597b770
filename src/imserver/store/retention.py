"""Legal holds and the retention purge's queries.

A hold (user, conversation or public account) covers, while not released:

* user: messages they sent or that sit in a conversation they are a member of,
  their sign-in and network log, their policy decisions, sanctions on them,
  their identity data and profile (account deletion waits);
* conversation: its messages;
* public account: its posts and sanctions on it.

The audit log is purged only from its start (it is a chain), up to the first
row about a held subject.

Each ``purgeable_*`` returns the ids of up to `limit` rows past `cutoff` that no
active hold covers, oldest first; ``delete_*`` removes them (record tables only
inside :class:`~imserver.store.chain.PurgeGate`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import (
    access_log,
    appeals,
    audit_log,
    conversation_members,
    conversations,
    inbox,
    legal_holds,
    messages,
    policy_decisions,
    posts,
    public_accounts,
    regulator_outbox,
    sanction_events,
    sanctions,
    users,
)

HOLD_SUBJECTS = {"user": users, "conversation": conversations, "public_account": public_accounts}


def held_by(kind: str, subject_id) -> exists:
    return exists().where(
        legal_holds.c.released_at.is_(None), legal_holds.c.subject_kind == kind, legal_holds.c.subject_id == subject_id
    )


def _member_held(conversation_id) -> exists:
    return (
        exists()
        .where(
            legal_holds.c.released_at.is_(None),
            legal_holds.c.subject_kind == "user",
            conversation_members.c.user_id == legal_holds.c.subject_id,
            conversation_members.c.conversation_id == conversation_id,
        )
    )


# -- holds -------------------------------------------------------------------------------------


async def place_hold(conn: AsyncConnection, **values) -> int:
    return (await conn.execute(insert(legal_holds).values(**values).returning(legal_holds.c.id))).scalar_one()


async def get_hold(conn: AsyncConnection, hold_id: int):
    return (await conn.execute(select(legal_holds).where(legal_holds.c.id == hold_id))).mappings().first()


async def release_hold(conn: AsyncConnection, hold_id: int, *, by: int, at: datetime, reason: str) -> bool:
    result = await conn.execute(
        update(legal_holds)
        .where(legal_holds.c.id == hold_id, legal_holds.c.released_at.is_(None))
        .values(released_by=by, released_at=at, release_reason=reason)
    )
    return result.rowcount == 1


async def holds(conn: AsyncConnection, *, active_only: bool, subject_kind: str | None = None, subject_id: int | None = None):
    q = select(legal_holds)
    if active_only:
        q = q.where(legal_holds.c.released_at.is_(None))
    if subject_kind is not None:
        q = q.where(legal_holds.c.subject_kind == subject_kind)
    if subject_id is not None:
        q = q.where(legal_holds.c.subject_id == subject_id)
    return [dict(r) for r in (await conn.execute(q.order_by(legal_holds.c.id))).mappings().all()]


async def subject_exists(conn: AsyncConnection, kind: str, subject_id: int) -> bool:
    table = HOLD_SUBJECTS[kind]
    return (await conn.execute(select(table.c.id).where(table.c.id == subject_id))).first() is not None


async def user_held(conn: AsyncConnection, user_id: int) -> bool:
    return (await conn.execute(select(held_by("user", user_id)))).scalar_one()


# -- what is past retention and not held --------------------------------------------------------


async def _ids(conn: AsyncConnection, q, limit: int) -> list[int]:
    return list((await conn.execute(q.limit(limit))).scalars().all())


async def purgeable_messages(conn: AsyncConnection, cutoff: datetime, limit: int) -> list[int]:
    q = (
        select(messages.c.id)
        .where(
            messages.c.created_at < cutoff,
            ~held_by("user", messages.c.sender_id),
            ~held_by("conversation", messages.c.conversation_id),
            ~_member_held(messages.c.conversation_id),
        )
        .order_by(messages.c.id)
    )
    return await _ids(conn, q, limit)


async def purgeable_posts(conn: AsyncConnection, cutoff: datetime, limit: int) -> list[int]:
    owner = select(public_accounts.c.owner_id).where(public_accounts.c.id == posts.c.account_id).scalar_subquery()
    q = (
        select(posts.c.id)
        .where(posts.c.posted_at < cutoff, ~held_by("public_account", posts.c.account_id), ~held_by("user", owner))
        .order_by(posts.c.id)
    )
    return await _ids(conn, q, limit)


async def purgeable_access_log(conn: AsyncConnection, cutoff: datetime, limit: int) -> list[int]:
    q = (
        select(access_log.c.id)
        .where(
            access_log.c.at < cutoff,
            or_(access_log.c.principal_kind != "user", access_log.c.principal_id.is_(None),
                ~held_by("user", access_log.c.principal_id)),
        )
        .order_by(access_log.c.id)
    )
    return await _ids(conn, q, limit)


async def purgeable_policy_decisions(conn: AsyncConnection, cutoff: datetime, limit: int) -> list[int]:
    q = (
        select(policy_decisions.c.id)
        .where(policy_decisions.c.at < cutoff, ~held_by("user", policy_decisions.c.user_id))
        .order_by(policy_decisions.c.id)
    )
    return await _ids(conn, q, limit)


async def purgeable_sanctions(conn: AsyncConnection, cutoff: datetime, limit: int) -> list[int]:
    """Sanctions created and ended before the cutoff (one still in force, or permanent, stays)."""
    q = (
        select(sanctions.c.id)
        .where(
            sanctions.c.created_at < cutoff,
            sanctions.c.ends_at.is_not(None),
            sanctions.c.ends_at < cutoff,
            ~held_by(sanctions.c.subject_kind, sanctions.c.subject_id),
        )
        .order_by(sanctions.c.id)
    )
    return await _ids(conn, q, limit)


async def purgeable_audit(conn: AsyncConnection, cutoff: datetime, limit: int) -> list[int]:
    """The oldest audit rows before the cutoff, as one run from the start of what is left.

    The audit chain must stay a chain: rows go only from its start, never its
    last row (the next append continues from it), and the run stops at the
    first row about a subject under a hold.
    """
    held = {f"{h['subject_kind']}:{h['subject_id']}" for h in await holds(conn, active_only=True)}
    last = (await conn.execute(select(audit_log.c.id).order_by(audit_log.c.id.desc()).limit(1))).scalar()
    q = select(audit_log.c.id, audit_log.c.at, audit_log.c.subject).order_by(audit_log.c.id).limit(limit)
    out = []
    for row in (await conn.execute(q)).all():
        if row.id == last or row.at >= cutoff or row.subject in held:
            break
        out.append(row.id)
    return out


# -- deleting ----------------------------------------------------------------------------------
# Each returns, per table, the ids it deleted: the purge record lists them as ranges,
# and verification accepts a purged record row only where such a record covers it.


async def _gone(conn: AsyncConnection, table, where) -> list[int]:
    return list((await conn.execute(delete(table).where(where).returning(table.c.id))).scalars().all())


async def delete_messages(conn: AsyncConnection, ids: list[int]) -> dict[str, list[int]]:
    entries = (await conn.execute(delete(inbox).where(inbox.c.message_id.in_(ids)).returning(inbox.c.message_id))).all()
    return {"messages": await _gone(conn, messages, messages.c.id.in_(ids)), "inbox": [m for (m,) in entries]}


async def delete_posts(conn: AsyncConnection, ids: list[int]) -> dict[str, list[int]]:
    return {"posts": await _gone(conn, posts, posts.c.id.in_(ids))}


async def delete_access_log(conn: AsyncConnection, ids: list[int]) -> dict[str, list[int]]:
    return {"access_log": await _gone(conn, access_log, access_log.c.id.in_(ids))}


async def delete_policy_decisions(conn: AsyncConnection, ids: list[int]) -> dict[str, list[int]]:
    return {"policy_decisions": await _gone(conn, policy_decisions, policy_decisions.c.id.in_(ids))}


async def delete_audit(conn: AsyncConnection, ids: list[int]) -> dict[str, list[int]]:
    return {"audit_log": await _gone(conn, audit_log, audit_log.c.id.in_(ids))}


async def delete_sanctions(conn: AsyncConnection, ids: list[int]) -> dict[str, list[int]]:
    """A sanction with its events, appeal and regulator records."""
    reports_of = and_(regulator_outbox.c.sanction_id.in_(ids), regulator_outbox.c.record_kind.like("sanction_%"))
    return {
        "sanction_events": await _gone(conn, sanction_events, sanction_events.c.sanction_id.in_(ids)),
        "appeals": await _gone(conn, appeals, appeals.c.sanction_id.in_(ids)),
        "regulator_outbox": await _gone(conn, regulator_outbox, reports_of),
        "sanctions": await _gone(conn, sanctions, sanctions.c.id.in_(ids)),
    }
