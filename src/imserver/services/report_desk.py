"""A moderator's desk for one report: the reported content and its author, and
resolving the report with the sanction it led to in one step.

Reading the reported message or post is itself a recorded act (operators
reading private messages): every read writes a ``report.read_target`` audit
row. Resolving with a sanction imposes it (the role of its kind applies, as in
``Sanctions.impose``) with the report and the message as evidence, then resolves
the report as ``actioned`` naming that sanction.
"""

from __future__ import annotations

from datetime import datetime

from ..domain.clock import Clock
from ..domain.enums import Role
from ..domain.errors import Code, Conflict, NotFound
from ..domain.principals import Principal
from ..store import accounts as account_store
from ..store import audit
from ..store import messages as message_store
from ..store import public_accounts as account_posts
from ..store.db import Database
from .accounts import require_role
from .reports import Reports
from .sanctions import Sanctions


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _author(user) -> dict | None:
    if user is None:
        return None
    return {"id": user["id"], "handle": user["handle"], "nickname": user["nickname"], "status": user["status"]}


class ReportDesk:
    def __init__(self, db: Database, clock: Clock, *, reports: Reports, sanctions: Sanctions) -> None:
        self.db = db
        self.clock = clock
        self.reports = reports
        self.sanctions = sanctions

    async def open(self, operator: Principal, report_id: int) -> dict:
        """The report with ``content`` (body, time, state; None for an account) and ``author``; audited."""
        require_role(operator, Role.MODERATOR)
        report = await self.reports.get(report_id)
        kind, target_id = report["target"]["kind"], report["target"]["id"]
        content, author_id = None, None
        async with self.db.transaction() as conn:
            if kind == "message":
                msg = await message_store.get_message(conn, target_id)
                if msg is not None:
                    author_id = msg["sender_id"]
                    content = {
                        "kind": "message",
                        "id": msg["id"],
                        "conversation_id": msg["conversation_id"],
                        "body": msg["body"],
                        "status": msg["status"],
                        "at": _iso(msg["created_at"]),
                    }
            elif kind == "post":
                post = await account_posts.get_post(conn, target_id)
                if post is not None:
                    author_id = post["author_id"]
                    content = {
                        "kind": "post",
                        "id": post["id"],
                        "account_id": post["account_id"],
                        "title": post["title"],
                        "body": post["body"],
                        "status": "taken_down" if post.get("taken_down_at") else "published",
                        "at": _iso(post.get("posted_at")),
                    }
            elif kind == "account":
                author_id = target_id
            author = _author(await account_store.get_user(conn, author_id)) if author_id is not None else None
            await audit.append(
                conn,
                at=self.clock.now(),
                actor_kind="operator",
                actor_id=operator.id,
                action="report.read_target",
                subject=f"{kind}:{target_id}",
                detail={"report_id": report_id},
            )
        return {**report, "content": content, "author": author}

    async def resolve_with_sanction(
        self, operator: Principal, report_id: int, *, kind: str, reason: str, duration_seconds: int | None = None
    ) -> dict:
        """Impose `kind` on the reported content's author and resolve the report as actioned.

        The report must be in review first (checked before imposing, so a report
        that cannot be resolved gets no sanction).
        """
        desk = await self.open(operator, report_id)
        if desk["status"] != "in_review":
            raise Conflict(f"a report that is {desk['status']} cannot be resolved", Code.REPORT_STATE)
        if desk["author"] is None:
            raise NotFound("the reported content and its author no longer exist")
        evidence: dict[str, list[int]] = {"report_ids": [report_id]}
        if desk["target"]["kind"] == "message":
            evidence["message_ids"] = [desk["target"]["id"]]
        sanction = await self.sanctions.impose(
            operator,
            subject_kind="user",
            subject_id=desk["author"]["id"],
            kind=kind,
            reason=reason,
            evidence=evidence,
            duration_seconds=duration_seconds,
        )
        report = await self.reports.resolve(
            operator, report_id, outcome="actioned", sanction_id=sanction["id"], note=reason
        )
        return {"report": report, "sanction": sanction}
