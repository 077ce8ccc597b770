"""Conversations: direct pairs and groups, and their members."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.enums import ConversationKind
from .tables import conversation_members, conversations, users


def direct_key(a: int, b: int) -> str:
    lo, hi = sorted((a, b))
    return f"{lo}:{hi}"


async def get_or_create_direct(conn: AsyncConnection, a: int, b: int, now: datetime) -> int:
    """The one direct conversation of users a and b (a may equal b: notes to self)."""
    key = direct_key(a, b)
    found = (await conn.execute(select(conversations.c.id).where(conversations.c.direct_key == key))).scalar()
    if found is not None:
        return found
    try:
        async with conn.begin_nested():
            conv_id = (
                await conn.execute(
                    insert(conversations)
                    .values(kind=ConversationKind.DIRECT, created_by=a, created_at=now, direct_key=key)
                    .returning(conversations.c.id)
                )
            ).scalar_one()
            members = [{"conversation_id": conv_id, "user_id": u, "role": "member", "joined_at": now, "active": True}
                       for u in sorted({a, b})]
            await conn.execute(insert(conversation_members), members)
            return conv_id
    except IntegrityError:
        # Another node created it between our select and insert.
        return (await conn.execute(select(conversations.c.id).where(conversations.c.direct_key == key))).scalar_one()


async def create_group(conn: AsyncConnection, *, owner: int, name: str, members: list[int], now: datetime) -> int:
    conv_id = (
        await conn.execute(
            insert(conversations)
            .values(kind=ConversationKind.GROUP, name=name, created_by=owner, created_at=now)
            .returning(conversations.c.id)
        )
    ).scalar_one()
    rows = [{"conversation_id": conv_id, "user_id": owner, "role": "owner", "joined_at": now, "active": True}]
    rows += [
        {"conversation_id": conv_id, "user_id": u, "role": "member", "joined_at": now, "active": True}
        for u in sorted(set(members) - {owner})
    ]
    await conn.execute(insert(conversation_members), rows)
    return conv_id


async def get(conn: AsyncConnection, conv_id: int):
    return (await conn.execute(select(conversations).where(conversations.c.id == conv_id))).mappings().first()


async def active_member_ids(conn: AsyncConnection, conv_id: int) -> list[int]:
    q = select(conversation_members.c.user_id).where(
        conversation_members.c.conversation_id == conv_id, conversation_members.c.active.is_(True)
    )
    return sorted((await conn.execute(q)).scalars().all())


async def members(conn: AsyncConnection, conv_id: int):
    q = (
        select(conversation_members.c.user_id, conversation_members.c.role, conversation_members.c.joined_at,
               users.c.nickname)
        .join(users, users.c.id == conversation_members.c.user_id)
        .where(conversation_members.c.conversation_id == conv_id, conversation_members.c.active.is_(True))
        .order_by(conversation_members.c.user_id)
    )
    return (await conn.execute(q)).mappings().all()


async def count_active(conn: AsyncConnection, conv_id: int) -> int:
    q = select(func.count()).select_from(conversation_members).where(
        conversation_members.c.conversation_id == conv_id, conversation_members.c.active.is_(True)
    )
    return (await conn.execute(q)).scalar_one()


async def add_members(conn: AsyncConnection, conv_id: int, user_ids: list[int], now: datetime) -> list[int]:
    """Add or re-activate members; returns those who were not active before."""
    existing = {
        r.user_id: r.active
        for r in await conn.execute(
            select(conversation_members.c.user_id, conversation_members.c.active).where(
                conversation_members.c.conversation_id == conv_id, conversation_members.c.user_id.in_(user_ids)
            )
        )
    }
    added = []
    for u in sorted(set(user_ids)):
        if u not in existing:
            await conn.execute(
                insert(conversation_members).values(
                    conversation_id=conv_id, user_id=u, role="member", joined_at=now, active=True
                )
            )
            added.append(u)
        elif not existing[u]:
            await conn.execute(
                update(conversation_members)
                .where(and_(conversation_members.c.conversation_id == conv_id, conversation_members.c.user_id == u))
                .values(active=True, joined_at=now)
            )
            added.append(u)
    return added


async def deactivate_member(conn: AsyncConnection, conv_id: int, user_id: int) -> bool:
    result = await conn.execute(
        update(conversation_members)
        .where(
            conversation_members.c.conversation_id == conv_id,
            conversation_members.c.user_id == user_id,
            conversation_members.c.active.is_(True),
        )
        .values(active=False)
    )
    return result.rowcount > 0


async def user_conversations(conn: AsyncConnection, user_id: int, *, after: int = 0, limit: int | None = None):
    """The user's active conversations with id > `after`, oldest first, at most `limit`."""
    q = (
        select(conversations)
        .join(conversation_members, conversation_members.c.conversation_id == conversations.c.id)
        .where(
            conversation_members.c.user_id == user_id,
            conversation_members.c.active.is_(True),
            conversations.c.id > after,
        )
        .order_by(conversations.c.id)
    )
    if limit is not None:
        q = q.limit(limit)
    return (await conn.execute(q)).mappings().all()


async def count_groups_created_by(conn: AsyncConnection, user_id: int) -> int:
    q = select(func.count()).select_from(conversations).where(
        conversations.c.created_by == user_id, conversations.c.kind == ConversationKind.GROUP
    )
    return (await conn.execute(q)).scalar_one()


async def is_member(conn: AsyncConnection, conv_id: int, user_id: int) -> bool:
    q = select(conversation_members.c.active).where(
        conversation_members.c.conversation_id == conv_id, conversation_members.c.user_id == user_id
    )
    return bool((await conn.execute(q)).scalar())
