"""Everything the records hold about one user in a period, for a regulator's request.

One read per kind, each bounded by the period (and by `limit` rows per kind);
identity data is not read here (it is read, audited, through the identity
service).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import (
    access_log,
    account_deletions,
    appeals,
    audit_log,
    identities,
    legal_holds,
    messages,
    policy_decisions,
    posts,
    public_accounts,
    reports,
    sanction_events,
    sanctions,
    users,
)


async def _rows(conn: AsyncConnection, q, limit: int) -> list[dict]:
    return [dict(r) for r in (await conn.execute(q.limit(limit))).mappings().all()]


def _in(column, since: datetime, until: datetime):
    return and_(column >= since, column < until)


async def gather(conn: AsyncConnection, user_id: int, since: datetime, until: datetime, limit: int) -> dict:
    user = (await conn.execute(select(users).where(users.c.id == user_id))).mappings().first()
    if user is None:
        return {}
    user = {k: v for k, v in dict(user).items() if k != "password_hash"}
    submissions = select(
        identities.c.id, identities.c.status, identities.c.submitted_at, identities.c.reviewed_at, identities.c.reviewer_id
    ).where(identities.c.user_id == user_id)
    own_sanctions = select(sanctions).where(
        sanctions.c.subject_kind == "user",
        sanctions.c.subject_id == user_id,
        sanctions.c.starts_at < until,
        or_(sanctions.c.ends_at.is_(None), sanctions.c.ends_at >= since),
    )
    sanction_rows = await _rows(conn, own_sanctions.order_by(sanctions.c.id), limit)
    ids = [s["id"] for s in sanction_rows]
    accounts = select(public_accounts.c.id).where(public_accounts.c.owner_id == user_id)

    def by(table: Table, column, where, order) -> object:
        return select(table).where(where, _in(column, since, until)).order_by(order)

    return {
        "user": user,
        "identity_submissions": await _rows(conn, submissions.order_by(identities.c.id), limit),
        "access_log": await _rows(
            conn,
            by(access_log, access_log.c.at, and_(access_log.c.principal_kind == "user", access_log.c.principal_id == user_id), access_log.c.id),
            limit,
        ),
        "messages_sent": await _rows(conn, by(messages, messages.c.created_at, messages.c.sender_id == user_id, messages.c.id), limit),
        "posts": await _rows(conn, by(posts, posts.c.posted_at, posts.c.account_id.in_(accounts), posts.c.id), limit),
        "policy_decisions": await _rows(
            conn, by(policy_decisions, policy_decisions.c.at, policy_decisions.c.user_id == user_id, policy_decisions.c.id), limit
        ),
        "sanctions": sanction_rows,
        "sanction_events": await _rows(
            conn, select(sanction_events).where(sanction_events.c.sanction_id.in_(ids)).order_by(sanction_events.c.id), limit
        ),
        "appeals": await _rows(conn, select(appeals).where(appeals.c.sanction_id.in_(ids)).order_by(appeals.c.id), limit),
        "reports_filed": await _rows(conn, by(reports, reports.c.created_at, reports.c.reporter_id == user_id, reports.c.id), limit),
        "reports_about": await _rows(
            conn,
            by(reports, reports.c.created_at, and_(reports.c.target_kind == "user", reports.c.target_id == user_id), reports.c.id),
            limit,
        ),
        "audit": await _rows(conn, by(audit_log, audit_log.c.at, audit_log.c.subject == f"user:{user_id}", audit_log.c.id), limit),
        "legal_holds": await _rows(
            conn,
            select(legal_holds).where(legal_holds.c.subject_kind == "user", legal_holds.c.subject_id == user_id),
            limit,
        ),
        "account_deletion": await _rows(conn, select(account_deletions).where(account_deletions.c.user_id == user_id), 1),
    }
