"""Messages and inbox streams: the durable half of the delivery model.

A group of sends is committed by :mod:`imserver.store.batch` (one trip to the
database per batch; the rules below are the same there): each new message is stored once, and every recipient (the sender's own devices included)
gets an inbox entry whose ``seq`` comes from the recipient's counter row, read
and bumped inside the same transaction. Counter rows are locked in user-id order,
so concurrent batches on several nodes cannot deadlock, and positions become
visible in commit order without gaps (docs/architecture.md, the delivery model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, bindparam, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import conversations, inbox, inbox_counters, messages, policy_decisions, read_marks, users

DELIVERED = "delivered"
HELD = "held"  # stored for a moderator's review (content_review); not in any inbox
REJECTED = "rejected"  # a held message the moderator refused; never delivered


@dataclass(slots=True)
class NewMessage:
    sender_id: int
    client_msg_id: str
    conversation_id: int
    recipients: tuple[int, ...]  # every active member, the sender included
    body: str
    created_at: datetime
    status: str = DELIVERED  # HELD: stored for review, no inbox entries yet


@dataclass(slots=True)
class Stored:
    message_id: int
    conversation_id: int
    created_at: datetime
    status: str
    duplicate: bool  # an earlier send with this client_msg_id was returned instead
    sender_seq: int | None  # the sender's own inbox position of the message
    seqs: dict[int, int] = field(default_factory=dict)  # recipient -> inbox seq (new messages only)


async def append_to_inboxes(
    conn: AsyncConnection, items: list[tuple[int, tuple[int, ...]]]
) -> list[dict[int, int]]:
    """Give each (message id, recipients) an entry in every recipient's inbox.

    Positions come from the counter rows, locked in user-id order inside the
    caller's transaction; returns recipient -> seq for each item, in order.
    """
    recipients = sorted({u for _, users_ in items for u in users_})
    last = await _lock_counters(conn, recipients)
    entries, out = [], []
    for message_id, users_ in items:
        seqs: dict[int, int] = {}
        for u in users_:
            last[u] += 1
            seqs[u] = last[u]
            entries.append({"user_id": u, "seq": last[u], "message_id": message_id})
        out.append(seqs)
    if entries:
        await conn.execute(insert(inbox), entries)
        await conn.execute(
            update(inbox_counters).where(inbox_counters.c.user_id == bindparam("uid")).values(last_seq=bindparam("last")),
            [{"uid": u, "last": last[u]} for u in recipients],
        )
    return out


async def set_status(conn: AsyncConnection, message_id: int, *, from_status: str, to_status: str) -> bool:
    """Move a message between statuses (held -> delivered | rejected); False if it was not in from_status."""
    result = await conn.execute(
        update(messages).where(messages.c.id == message_id, messages.c.status == from_status).values(status=to_status)
    )
    return result.rowcount == 1


async def held_messages(conn: AsyncConnection, *, after: int, limit: int):
    """Held messages awaiting review, oldest first, with the decision that held them."""
    q = (
        select(
            messages.c.id.label("message_id"),
            messages.c.conversation_id,
            messages.c.sender_id,
            messages.c.body,
            messages.c.created_at,
            policy_decisions.c.reason,
            policy_decisions.c.check_name,
            policy_decisions.c.detail,
        )
        .outerjoin(policy_decisions, policy_decisions.c.message_id == messages.c.id)
        .where(messages.c.status == HELD, messages.c.id > after)
        .order_by(messages.c.id)
        .limit(limit)
    )
    return (await conn.execute(q)).mappings().all()


async def record_review(conn: AsyncConnection, message_id: int, *, review: str, operator_id: int, at: datetime) -> None:
    await conn.execute(
        update(policy_decisions)
        .where(policy_decisions.c.message_id == message_id, policy_decisions.c.review.is_(None))
        .values(review=review, reviewed_by=operator_id, reviewed_at=at)
    )


async def find_sent(conn: AsyncConnection, sender_id: int, client_msg_id: str) -> Stored | None:
    return (await _existing(conn, {(sender_id, client_msg_id)})).get((sender_id, client_msg_id))


async def _existing(conn: AsyncConnection, keys: set[tuple[int, str]]) -> dict[tuple[int, str], Stored]:
    q = (
        select(
            messages.c.id,
            messages.c.sender_id,
            messages.c.client_msg_id,
            messages.c.conversation_id,
            messages.c.created_at,
            messages.c.status,
            inbox.c.seq,
        )
        .outerjoin(inbox, and_(inbox.c.message_id == messages.c.id, inbox.c.user_id == messages.c.sender_id))
        .where(tuple_(messages.c.sender_id, messages.c.client_msg_id).in_(list(keys)))
    )
    found = {}
    for r in await conn.execute(q):
        found[(r.sender_id, r.client_msg_id)] = Stored(r.id, r.conversation_id, r.created_at, r.status, True, r.seq)
    return found


async def _lock_counters(conn: AsyncConnection, user_ids: list[int]) -> dict[int, int]:
    if not user_ids:
        return {}
    q = (
        select(inbox_counters.c.user_id, inbox_counters.c.last_seq)
        .where(inbox_counters.c.user_id.in_(user_ids))
        .order_by(inbox_counters.c.user_id)
        .with_for_update()  # PostgreSQL; SQLite's single writer needs no row locks
    )
    last = {r.user_id: r.last_seq for r in await conn.execute(q)}
    missing = [u for u in user_ids if u not in last]
    if missing:
        # Every user gets a counter row at registration; this covers rows made otherwise.
        await conn.execute(insert(inbox_counters), [{"user_id": u, "last_seq": 0, "received_seq": 0} for u in missing])
        last.update(dict.fromkeys(missing, 0))
    return last


async def counters(conn: AsyncConnection, user_id: int) -> tuple[int, int]:
    """(last_seq, received_seq) of a user's inbox."""
    row = (
        await conn.execute(
            select(inbox_counters.c.last_seq, inbox_counters.c.received_seq).where(inbox_counters.c.user_id == user_id)
        )
    ).first()
    return (row.last_seq, row.received_seq) if row else (0, 0)


async def mark_received(conn: AsyncConnection, user_id: int, seq: int) -> int:
    """Move the cumulative `received` cursor forward (never back, never past last_seq)."""
    last, received = await counters(conn, user_id)
    target = min(seq, last)
    if target > received:
        await conn.execute(
            update(inbox_counters).where(inbox_counters.c.user_id == user_id).values(received_seq=target)
        )
        return target
    return received


_sender = users.alias("sender")

_INBOX_COLUMNS = (
    inbox.c.seq,
    messages.c.id.label("message_id"),
    messages.c.conversation_id,
    conversations.c.kind.label("conversation_kind"),
    messages.c.sender_id,
    _sender.c.nickname.label("sender_nickname"),
    messages.c.body,
    messages.c.client_msg_id,
    messages.c.created_at,
)


async def inbox_after(conn: AsyncConnection, user_id: int, after: int, limit: int):
    """A page of the user's inbox stream after `after`, in seq order."""
    q = (
        select(*_INBOX_COLUMNS)
        .select_from(inbox)
        .join(messages, messages.c.id == inbox.c.message_id)
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .join(_sender, _sender.c.id == messages.c.sender_id)
        .where(inbox.c.user_id == user_id, inbox.c.seq > after)
        .order_by(inbox.c.seq)
        .limit(limit)
    )
    return (await conn.execute(q)).mappings().all()


async def history(conn: AsyncConnection, conversation_id: int, before: int | None, limit: int):
    """Delivered messages of a conversation, newest first, with ids below `before`."""
    q = (
        select(
            messages.c.id.label("message_id"),
            messages.c.sender_id,
            _sender.c.nickname.label("sender_nickname"),
            messages.c.body,
            messages.c.client_msg_id,
            messages.c.created_at,
        )
        .join(_sender, _sender.c.id == messages.c.sender_id)
        .where(messages.c.conversation_id == conversation_id, messages.c.status == DELIVERED)
        .order_by(messages.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        q = q.where(messages.c.id < before)
    return (await conn.execute(q)).mappings().all()


async def get_message(conn: AsyncConnection, message_id: int):
    return (await conn.execute(select(messages).where(messages.c.id == message_id))).mappings().first()


async def set_read_mark(conn: AsyncConnection, conversation_id: int, user_id: int, message_id: int, now: datetime) -> None:
    """Move a member's read mark forward (never back)."""
    current = (
        await conn.execute(
            select(read_marks.c.message_id).where(
                read_marks.c.conversation_id == conversation_id, read_marks.c.user_id == user_id
            )
        )
    ).scalar()
    if current is None:
        await conn.execute(
            insert(read_marks).values(conversation_id=conversation_id, user_id=user_id, message_id=message_id, at=now)
        )
    elif message_id > current:
        await conn.execute(
            update(read_marks)
            .where(read_marks.c.conversation_id == conversation_id, read_marks.c.user_id == user_id)
            .values(message_id=message_id, at=now)
        )
