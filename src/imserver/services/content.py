"""Operators reading users' content: messages (with the conversation around
them) and posts, and the same content embedded in a report, a held message or
a sanction's evidence.

Reading someone's private messages is itself a recorded act: every read,
direct or embedded, writes one ``content.read`` audit row naming the operator,
what was read and through which view (``via``), in the same transaction as the
read. Roles: moderators (reports, held messages, mild sanctions) and compliance
(severe sanctions, appeals).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..domain.clock import Clock
from ..domain.enums import Role
from ..domain.errors import BadRequest, Code, NotFound
from ..domain.principals import Principal
from ..store import audit
from ..store import content as store
from ..store.db import Database
from .accounts import require_role

CONTEXT_MAX = 50  # messages either side of the one asked for: enough to follow a thread
READERS = (Role.MODERATOR, Role.COMPLIANCE)
Conn = Any


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _author(row: dict, prefix: str, id_key: str) -> dict:
    return {"id": row[id_key], "handle": row[f"{prefix}_handle"], "nickname": row[f"{prefix}_nickname"]}


def message_view(row: dict) -> dict:
    return {
        "kind": "message",
        "id": row["id"],
        "body": row["body"],
        "author": _author(row, "sender", "sender_id"),
        "conversation_id": row["conversation_id"],
        "sent_at": _iso(row["created_at"]),
        "status": row["status"],
        "held": row["status"] == "held",
    }


def post_view(row: dict) -> dict:
    return {
        "kind": "post",
        "id": row["id"],
        "title": row["title"],
        "body": row["body"],
        "post_kind": row["kind"],
        "author": _author(row, "author", "author_id"),
        "account": {"id": row["account_id"], "name": row["account_name"]},
        "posted_at": _iso(row["posted_at"]),
        "taken_down": row["taken_down_at"] is not None,
        "taken_down_at": _iso(row["taken_down_at"]),
        "takedown_reason": row["takedown_reason"],
    }


class Content:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def message(self, operator: Principal, message_id: int, *, context: int = 0) -> dict:
        """A message, its author and conversation, and `context` messages either side; audited."""
        require_role(operator, *READERS)
        if not 0 <= context <= CONTEXT_MAX:
            raise BadRequest(f"context must be 0-{CONTEXT_MAX}", Code.INVALID_FILTER)
        async with self.db.transaction() as conn:
            row = await store.message(conn, message_id)
            if row is None:
                raise NotFound(f"no message {message_id}", Code.MESSAGE_NOT_FOUND)
            around = await store.messages_around(conn, row["conversation_id"], message_id, context)
            await self.audit_read(conn, operator, f"message:{message_id}", via="message", context=len(around))
        view = message_view(row)
        view["conversation"] = {"id": row["conversation_id"], "kind": row["conversation_kind"], "name": row["conversation_name"]}
        view["context"] = [message_view(r) for r in around]
        return view

    async def post(self, operator: Principal, post_id: int) -> dict:
        """A post (taken down or not), its account and author; audited."""
        require_role(operator, *READERS)
        async with self.db.transaction() as conn:
            row = await store.post(conn, post_id)
            if row is None:
                raise NotFound(f"no post {post_id}", Code.POST_NOT_FOUND)
            await self.audit_read(conn, operator, f"post:{post_id}", via="post")
        return post_view(row)

    async def embedded(self, conn: Conn, operator: Principal, targets: list[tuple[str, int]], *, via: str) -> list[dict]:
        """Content of `targets` ((kind, id): message, post or account) for another view, in the
        caller's transaction; one audit row for the read. A target gone missing is listed as such."""
        out: list[dict] = []
        read: list[str] = []
        for kind, target_id in targets:
            view: dict | None = None
            if kind == "message":
                row = await store.message(conn, target_id)
                view = message_view(row) if row else None
            elif kind == "post":
                row = await store.post(conn, target_id)
                view = post_view(row) if row else None
            elif kind in ("account", "user"):
                names = await store.user_names(conn, [target_id])
                view = {"kind": "account", "id": target_id, "author": names[target_id]} if target_id in names else None
            if view is None:
                view = {"kind": kind, "id": target_id, "missing": True}
            else:
                read.append(f"{kind}:{target_id}")
            out.append(view)
        if read:
            await self.audit_read(conn, operator, None, via=via, read=read)
        return out

    async def audit_read(self, conn: Conn, operator: Principal, subject: str | None, *, via: str, **detail) -> None:
        await audit.append(
            conn,
            at=self.clock.now(),
            actor_kind="operator",
            actor_id=operator.id,
            action="content.read",
            subject=subject,
            detail={"via": via, **detail},
        )
