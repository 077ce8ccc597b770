"""Messages and posts as operators read them: with their authors' names and,
for a message, the messages around it in its conversation (any status)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import conversations, messages, posts, public_accounts, users

_MESSAGE = (
    messages.c.id,
    messages.c.conversation_id,
    messages.c.sender_id,
    users.c.handle.label("sender_handle"),
    users.c.nickname.label("sender_nickname"),
    messages.c.body,
    messages.c.status,
    messages.c.created_at,
)


def _messages():
    return select(*_MESSAGE).join(users, users.c.id == messages.c.sender_id)


async def message(conn: AsyncConnection, message_id: int) -> dict | None:
    """The message with its sender's names and its conversation's kind and name."""
    q = (
        _messages()
        .add_columns(conversations.c.kind.label("conversation_kind"), conversations.c.name.label("conversation_name"))
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .where(messages.c.id == message_id)
    )
    row = (await conn.execute(q)).mappings().first()
    return dict(row) if row else None


async def messages_around(conn: AsyncConnection, conversation_id: int, message_id: int, n: int) -> list[dict]:
    """Up to `n` messages before and `n` after `message_id` in its conversation, in order."""
    if n <= 0:
        return []
    base = _messages().where(messages.c.conversation_id == conversation_id)
    before = (await conn.execute(base.where(messages.c.id < message_id).order_by(messages.c.id.desc()).limit(n))).mappings().all()
    after = (await conn.execute(base.where(messages.c.id > message_id).order_by(messages.c.id).limit(n))).mappings().all()
    return [dict(r) for r in reversed(before)] + [dict(r) for r in after]


async def post(conn: AsyncConnection, post_id: int) -> dict | None:
    """The post (taken down or not) with its account's name and its author's names."""
    q = (
        select(
            posts,
            public_accounts.c.name.label("account_name"),
            users.c.handle.label("author_handle"),
            users.c.nickname.label("author_nickname"),
        )
        .join(public_accounts, public_accounts.c.id == posts.c.account_id)
        .join(users, users.c.id == posts.c.author_id)
        .where(posts.c.id == post_id)
    )
    row = (await conn.execute(q)).mappings().first()
    return dict(row) if row else None


async def user_names(conn: AsyncConnection, user_ids: list[int]) -> dict[int, dict]:
    """{id: {"id", "handle", "nickname"}} for the users that exist."""
    if not user_ids:
        return {}
    q = select(users.c.id, users.c.handle, users.c.nickname).where(users.c.id.in_(set(user_ids)))
    return {r["id"]: dict(r) for r in (await conn.execute(q)).mappings().all()}
