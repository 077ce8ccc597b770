"""The operators' lists as filtered queries: sanctions, appeals, reports, the
identity queue, public-account applications, held messages, the audit log, users.

Each function applies the filters it is given (None: no filter), maps the sort
name to its column and returns one keyset page with the filtered total
(:func:`store.paging.keyset_page`). The service validates filter values and
sort names first; an unknown sort name here is a programming error (KeyError).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .paging import keyset_page
from .sanctions import ended, has_event, pending_undo
from .tables import (
    appeals,
    audit_log,
    identities,
    messages,
    operators,
    policy_decisions,
    reports,
    sanctions,
    users,
)

After = tuple[Any, int] | None


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _period(column, since: datetime | None, until: datetime | None) -> list:
    """[since, until): the half-open period every list filters by."""
    return [c for c in (column >= since if since else None, column < until if until else None) if c is not None]


def _page(conn, query, sorts: dict, sort: str, *, row_id, descending: bool, after: After, limit: int):
    return keyset_page(conn, query, key=sorts[sort], row_id=row_id, descending=descending, after=after, limit=limit)


# -- sanctions ----------------------------------------------------------------------------


def in_force(now: datetime):
    """SQL: the sanction applies at `now` (taken effect, started, not ended, end not passed)."""
    return and_(
        ~ended(),
        or_(sanctions.c.needs_confirmation.is_(False), has_event("confirmed")),
        sanctions.c.starts_at <= now,
        or_(sanctions.c.ends_at.is_(None), sanctions.c.ends_at > now),
    )


def _sanction_status(status: str, now: datetime):
    # Waiting for a second operator: a closure to confirm, or a proposal to lift or overturn one.
    awaiting = or_(and_(sanctions.c.needs_confirmation.is_(True), ~has_event("confirmed"), ~ended()), pending_undo())
    if status == "awaiting_confirmation":
        return awaiting
    if status == "in_effect":
        return in_force(now)
    return and_(~awaiting, ~in_force(now))  # ended (lifted, expired, overturned, or past its end)


SANCTION_SORTS = {"created_at": sanctions.c.created_at, "starts_at": sanctions.c.starts_at}


async def sanctions_page(
    conn: AsyncConnection,
    *,
    now: datetime,
    kind: str | None,
    status: str | None,
    subject_kind: str | None,
    subject_id: int | None,
    imposed_by: int | None,
    since: datetime | None,
    until: datetime | None,
    sort: str,
    descending: bool,
    after: After,
    limit: int,
):
    q = select(sanctions)
    if kind:
        q = q.where(sanctions.c.kind == kind)
    if status:
        q = q.where(_sanction_status(status, now))
    if subject_kind:
        q = q.where(sanctions.c.subject_kind == subject_kind)
    if subject_id is not None:
        q = q.where(sanctions.c.subject_id == subject_id)
    if imposed_by is not None:
        q = q.where(sanctions.c.imposed_by == imposed_by)
    q = q.where(*_period(sanctions.c.created_at, since, until))
    rows, total = await _page(
        conn, q, SANCTION_SORTS, sort, row_id=sanctions.c.id, descending=descending, after=after, limit=limit
    )
    return [dict(r, evidence=json.loads(r["evidence"])) for r in rows], total


# -- appeals --------------------------------------------------------------------------------

APPEAL_SORTS = {"filed_at": appeals.c.filed_at}


async def appeals_page(
    conn: AsyncConnection,
    *,
    status: str | None,
    user_id: int | None,
    since: datetime | None,
    until: datetime | None,
    sort: str,
    descending: bool,
    after: After,
    limit: int,
):
    q = select(appeals)
    if status == "pending":
        q = q.where(appeals.c.decision.is_(None))
    elif status:
        q = q.where(appeals.c.decision == status)
    if user_id is not None:
        q = q.where(appeals.c.user_id == user_id)
    q = q.where(*_period(appeals.c.filed_at, since, until))
    return await _page(conn, q, APPEAL_SORTS, sort, row_id=appeals.c.id, descending=descending, after=after, limit=limit)


# -- reports ----------------------------------------------------------------------------------

REPORT_SORTS = {"created_at": reports.c.created_at}


async def reports_page(
    conn: AsyncConnection,
    *,
    statuses: tuple[str, ...],
    target_kind: str | None,
    category: str | None,
    assignee_id: int | None,
    reporter_id: int | None = None,
    filed_before: datetime | None,
    sort: str,
    descending: bool,
    after: After,
    limit: int,
):
    q = select(reports).where(reports.c.status.in_(statuses))
    if target_kind:
        q = q.where(reports.c.target_kind == target_kind)
    if category:
        q = q.where(reports.c.category == category)
    if assignee_id is not None:
        q = q.where(reports.c.assignee_id == assignee_id)
    if reporter_id is not None:
        q = q.where(reports.c.reporter_id == reporter_id)
    if filed_before is not None:  # the age filter: filed at least so long ago
        q = q.where(reports.c.created_at <= filed_before)
    return await _page(conn, q, REPORT_SORTS, sort, row_id=reports.c.id, descending=descending, after=after, limit=limit)


# -- identity queue -----------------------------------------------------------------------------


async def identity_queue_page(conn: AsyncConnection, *, status: str, after: After, limit: int):
    """Submissions in `status` with the submitter's handle and nickname, oldest first."""
    q = (
        select(identities, users.c.handle, users.c.nickname)
        .join(users, users.c.id == identities.c.user_id)
        .where(identities.c.status == status)
    )
    sorts = {"submitted_at": identities.c.id}  # ids grow with submission time
    return await _page(conn, q, sorts, "submitted_at", row_id=identities.c.id, descending=False, after=after, limit=limit)


# -- held messages ----------------------------------------------------------------------------------


async def held_page(
    conn: AsyncConnection, *, sender_id: int | None, conversation_id: int | None, descending: bool, after: After, limit: int
):
    q = (
        select(
            messages.c.id.label("message_id"),
            messages.c.conversation_id,
            messages.c.sender_id,
            users.c.handle.label("sender_handle"),
            users.c.nickname.label("sender_nickname"),
            messages.c.body,
            messages.c.created_at,
            policy_decisions.c.reason,
            policy_decisions.c.check_name,
            policy_decisions.c.detail,
        )
        .join(users, users.c.id == messages.c.sender_id)
        .outerjoin(policy_decisions, policy_decisions.c.message_id == messages.c.id)
        .where(messages.c.status == "held")
    )
    if sender_id is not None:
        q = q.where(messages.c.sender_id == sender_id)
    if conversation_id is not None:
        q = q.where(messages.c.conversation_id == conversation_id)
    sorts = {"sent_at": messages.c.id}  # ids grow with send time
    return await _page(conn, q, sorts, "sent_at", row_id=messages.c.id, descending=descending, after=after, limit=limit)


# -- audit ---------------------------------------------------------------------------------------------


async def audit_page(
    conn: AsyncConnection,
    *,
    actor_kind: str | None,
    actor_id: int | None,
    action: str | None,
    subject: str | None,
    since: datetime | None,
    until: datetime | None,
    descending: bool,
    after: After,
    limit: int,
):
    """Audit rows with the acting operator's handle (None for users and the system)."""
    q = select(audit_log, operators.c.handle.label("actor_handle")).outerjoin(
        operators, and_(audit_log.c.actor_kind == "operator", operators.c.id == audit_log.c.actor_id)
    )
    if actor_kind:
        q = q.where(audit_log.c.actor_kind == actor_kind)
    if actor_id is not None:
        q = q.where(audit_log.c.actor_id == actor_id)
    if action:  # "report." matches every report action; "report.file" just that one
        q = q.where(
            audit_log.c.action.like(_like_prefix(action), escape="\\") if action.endswith(".") else audit_log.c.action == action
        )
    if subject:
        q = q.where(audit_log.c.subject == subject)
    q = q.where(*_period(audit_log.c.at, since, until))
    sorts = {"id": audit_log.c.id}
    return await _page(conn, q, sorts, "id", row_id=audit_log.c.id, descending=descending, after=after, limit=limit)


# -- users ------------------------------------------------------------------------------------------------

USER_SORTS = {"created_at": users.c.created_at, "handle": users.c.handle}


async def users_page(
    conn: AsyncConnection,
    *,
    now: datetime,
    user_id: int | None,
    prefix: str | None,
    status: str | None,
    real_name_status: str | None,
    has_sanctions_in_force: bool | None,
    registered_since: datetime | None,
    registered_until: datetime | None,
    sort: str,
    descending: bool,
    after: After,
    limit: int,
):
    q = select(users.c.id, users.c.handle, users.c.nickname, users.c.status, users.c.realname_status, users.c.created_at)
    if user_id is not None:
        q = q.where(users.c.id == user_id)
    if prefix:
        pattern = _like_prefix(prefix.lower())  # handles are stored lower-case; nicknames compared folded
        q = q.where(
            or_(users.c.handle.like(pattern, escape="\\"), func.lower(users.c.nickname).like(pattern, escape="\\"))
        )
    if status:
        q = q.where(users.c.status == status)
    if real_name_status:
        q = q.where(users.c.realname_status == real_name_status)
    if has_sanctions_in_force is not None:
        sanctioned = exists().where(
            sanctions.c.subject_kind == "user", sanctions.c.subject_id == users.c.id, in_force(now)
        )
        q = q.where(sanctioned if has_sanctions_in_force else ~sanctioned)
    q = q.where(*_period(users.c.created_at, registered_since, registered_until))
    return await _page(conn, q, USER_SORTS, sort, row_id=users.c.id, descending=descending, after=after, limit=limit)
