"""Public accounts in the database (Art. 7): applications, filings, news approvals,
follows, posts and the posts stream, changes awaiting re-review.

Decisions (review, takedown, revocation) are conditional updates (``WHERE status
= 'pending'``, ``WHERE taken_down_at IS NULL``) that report whether they
applied, so two operators deciding at once cannot both win.

The posts stream: :func:`next_position` locks the single counter row
``posts_stream(id=1)`` (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already serialises writers) and bumps it in the caller's
transaction, so positions are gap-free and become visible in commit order
(docs/architecture.md, the delivery model): a reader that sees position
*n* committed has every position below *n* committed too.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import and_, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from .paging import keyset_page
from .tables import (
    news_approvals,
    posts,
    posts_stream,
    public_account_changes,
    public_account_filings,
    public_account_follows,
    public_accounts,
    users,
)

PENDING, APPROVED, REJECTED, CLOSED = "pending", "approved", "rejected", "closed"
FILED, SUPERSEDED = "filed", "superseded"
# Statuses whose names stay reserved: a rejected application frees its name.
NAME_HOLDING = (PENDING, APPROVED, CLOSED)
# Statuses counted against the per-user cap.
CAPPED = (PENDING, APPROVED)
STREAM_ROW = 1

_ACCOUNT = (*public_accounts.c, users.c.status.label("owner_status"))


def _account_query():
    return select(*_ACCOUNT).join(users, users.c.id == public_accounts.c.owner_id)


def _flags(row) -> dict:
    out = dict(row)
    if "review_flags" in out and isinstance(out["review_flags"], str):
        out["review_flags"] = json.loads(out["review_flags"])
    return out


# -- accounts -----------------------------------------------------------------------------


async def insert_account(conn: AsyncConnection, *, review_flags: list[str], **values) -> int:
    result = await conn.execute(
        insert(public_accounts).values(review_flags=json.dumps(review_flags), **values).returning(public_accounts.c.id)
    )
    return result.scalar_one()


async def get_account(conn: AsyncConnection, account_id: int, *, lock: bool = False) -> dict | None:
    """The account with its owner's user status (``owner_status``); locked for update if asked."""
    q = _account_query().where(public_accounts.c.id == account_id)
    if lock:
        q = q.with_for_update(of=public_accounts)
    row = (await conn.execute(q)).mappings().first()
    return _flags(row) if row else None


async def owner_of(conn: AsyncConnection, account_id: int) -> int | None:
    q = select(public_accounts.c.owner_id).where(public_accounts.c.id == account_id)
    return (await conn.execute(q)).scalar_one_or_none()


async def update_account(conn: AsyncConnection, account_id: int, **values) -> None:
    if "review_flags" in values:
        values["review_flags"] = json.dumps(values["review_flags"])
    await conn.execute(update(public_accounts).where(public_accounts.c.id == account_id).values(**values))


async def decide_application(
    conn: AsyncConnection, account_id: int, *, status: str, reviewer_id: int, reason: str, now: datetime
) -> bool:
    """pending -> approved | rejected; False if it was no longer pending."""
    result = await conn.execute(
        update(public_accounts)
        .where(public_accounts.c.id == account_id, public_accounts.c.status == PENDING)
        .values(status=status, reviewer_id=reviewer_id, review_reason=reason, reviewed_at=now, updated_at=now)
    )
    return result.rowcount == 1


async def count_capped(conn: AsyncConnection, owner_id: int) -> int:
    q = select(func.count()).where(public_accounts.c.owner_id == owner_id, public_accounts.c.status.in_(CAPPED))
    return (await conn.execute(q)).scalar_one()


async def name_taken(conn: AsyncConnection, name_key: str, *, but: int | None = None) -> bool:
    cond = [public_accounts.c.name_key == name_key, public_accounts.c.status.in_(NAME_HOLDING)]
    if but is not None:
        cond.append(public_accounts.c.id != but)
    return bool((await conn.execute(select(exists().where(*cond)))).scalar())


async def accounts_of_owner(conn: AsyncConnection, owner_id: int) -> list[dict]:
    q = _account_query().where(public_accounts.c.owner_id == owner_id).order_by(public_accounts.c.id)
    return [_flags(r) for r in (await conn.execute(q)).mappings().all()]


async def account_ids_of_owner(conn: AsyncConnection, owner_id: int) -> list[int]:
    q = select(public_accounts.c.id).where(public_accounts.c.owner_id == owner_id).order_by(public_accounts.c.id)
    return list((await conn.execute(q)).scalars().all())


# Sort names of the applications list -> columns.
APPLICATION_SORTS = {"created_at": public_accounts.c.created_at}


async def applications(
    conn: AsyncConnection,
    *,
    status: str,
    category: str | None = None,
    flagged_only: bool = False,
    name_contains: str | None = None,
    sort: str = "created_at",
    descending: bool = False,
    after: tuple | None = None,
    limit: int = 50,
) -> tuple[list[dict], int]:
    """One keyset page of applications in a status (the review queue when pending) and the filtered total."""
    q = _account_query().where(public_accounts.c.status == status)
    if category:
        q = q.where(public_accounts.c.category == category)
    if flagged_only:
        q = q.where(public_accounts.c.manual_review.is_(True))
    if name_contains:  # already folded like name_key by the caller
        q = q.where(public_accounts.c.name_key.like(_like(name_contains), escape="\\"))
    rows, total = await keyset_page(
        conn,
        q,
        key=APPLICATION_SORTS[sort],
        row_id=public_accounts.c.id,
        descending=descending,
        after=after,
        limit=limit,
    )
    return [_flags(r) for r in rows], total


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def search(
    conn: AsyncConnection, *, query: str | None, category: str | None, after: int, limit: int
) -> list[dict]:
    """Approved accounts of open owners by name (case-folded substring), in id order."""
    q = _account_query().where(
        public_accounts.c.status == APPROVED, users.c.status == "active", public_accounts.c.id > after
    )
    if query:
        q = q.where(public_accounts.c.name_key.like(_like(query), escape="\\"))
    if category:
        q = q.where(public_accounts.c.category == category)
    q = q.order_by(public_accounts.c.id).limit(limit)
    return [_flags(r) for r in (await conn.execute(q)).mappings().all()]


# -- filings ----------------------------------------------------------------------------------


async def file_account(
    conn: AsyncConnection,
    account: dict,
    *,
    filed_by: int,
    now: datetime,
) -> dict:
    """Supersede the account's filing in force (if any) and file its current facts; returns the new record."""
    account_id = account["id"]
    revision = (
        await conn.execute(
            select(func.coalesce(func.max(public_account_filings.c.revision), 0)).where(
                public_account_filings.c.account_id == account_id
            )
        )
    ).scalar_one() + 1
    await conn.execute(
        update(public_account_filings)
        .where(public_account_filings.c.account_id == account_id, public_account_filings.c.status == FILED)
        .values(status=SUPERSEDED, superseded_at=now)
    )
    values = {
        "account_id": account_id,
        "reference": f"IMPA-{account_id:08d}-{revision:02d}",
        "revision": revision,
        "category": account["category"],
        "account_name": account["name"],
        "operator_name": account["operator_name"],
        "credit_code": account["credit_code"],
        "licence_number": account["licence_number"],
        "province": account.get("province"),
        "status": FILED,
        "filed_at": now,
        "filed_by": filed_by,
    }
    filing_id = (
        await conn.execute(insert(public_account_filings).values(**values).returning(public_account_filings.c.id))
    ).scalar_one()
    return {"id": filing_id, **values}


async def current_filing(conn: AsyncConnection, account_id: int) -> dict | None:
    q = select(public_account_filings).where(
        public_account_filings.c.account_id == account_id, public_account_filings.c.status == FILED
    )
    row = (await conn.execute(q)).mappings().first()
    return dict(row) if row else None


async def filings(conn: AsyncConnection, *, include_superseded: bool) -> list[dict]:
    """Filing records with their account's status and owner, by category then filing order."""
    q = (
        select(
            *public_account_filings.c,
            public_accounts.c.status.label("account_status"),
            public_accounts.c.owner_id,
            users.c.status.label("owner_status"),
        )
        .join(public_accounts, public_accounts.c.id == public_account_filings.c.account_id)
        .join(users, users.c.id == public_accounts.c.owner_id)
        .order_by(public_account_filings.c.category, public_account_filings.c.id)
    )
    if not include_superseded:
        q = q.where(public_account_filings.c.status == FILED)
    return [dict(r) for r in (await conn.execute(q)).mappings().all()]


# -- news approvals ------------------------------------------------------------------------------


async def insert_approval(conn: AsyncConnection, **values) -> int:
    result = await conn.execute(insert(news_approvals).values(**values).returning(news_approvals.c.id))
    return result.scalar_one()


async def get_approval(conn: AsyncConnection, approval_id: int) -> dict | None:
    row = (await conn.execute(select(news_approvals).where(news_approvals.c.id == approval_id))).mappings().first()
    return dict(row) if row else None


async def revoke_approval(conn: AsyncConnection, approval_id: int, *, by: int, reason: str, now: datetime) -> bool:
    result = await conn.execute(
        update(news_approvals)
        .where(news_approvals.c.id == approval_id, news_approvals.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=by, revoke_reason=reason)
    )
    return result.rowcount == 1


async def approvals_for(conn: AsyncConnection, account_id: int) -> list[dict]:
    q = select(news_approvals).where(news_approvals.c.account_id == account_id).order_by(news_approvals.c.id)
    return [dict(r) for r in (await conn.execute(q)).mappings().all()]


async def is_filed(conn: AsyncConnection, account_id: int) -> bool:
    q = select(
        exists().where(public_account_filings.c.account_id == account_id, public_account_filings.c.status == FILED)
    )
    return bool((await conn.execute(q)).scalar())


# -- follows -----------------------------------------------------------------------------------------


def _insert_ignore(conn: AsyncConnection, table):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def follow(conn: AsyncConnection, account_id: int, user_id: int, now: datetime) -> bool:
    """Follow; False if already following (no error: following is idempotent)."""
    stmt = (
        _insert_ignore(conn, public_account_follows)
        .values(account_id=account_id, user_id=user_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["account_id", "user_id"])
    )
    return (await conn.execute(stmt)).rowcount == 1


async def unfollow(conn: AsyncConnection, account_id: int, user_id: int) -> bool:
    result = await conn.execute(
        public_account_follows.delete().where(
            public_account_follows.c.account_id == account_id, public_account_follows.c.user_id == user_id
        )
    )
    return result.rowcount == 1


async def is_following(conn: AsyncConnection, account_id: int, user_id: int) -> bool:
    q = select(
        exists().where(public_account_follows.c.account_id == account_id, public_account_follows.c.user_id == user_id)
    )
    return bool((await conn.execute(q)).scalar())


async def follower_ids(conn: AsyncConnection, account_id: int) -> list[int]:
    q = select(public_account_follows.c.user_id).where(public_account_follows.c.account_id == account_id)
    return list((await conn.execute(q)).scalars().all())


async def follower_count(conn: AsyncConnection, account_id: int) -> int:
    q = select(func.count()).where(public_account_follows.c.account_id == account_id)
    return (await conn.execute(q)).scalar_one()


async def followed_accounts(conn: AsyncConnection, user_id: int) -> list[dict]:
    q = (
        _account_query()
        .join(public_account_follows, public_account_follows.c.account_id == public_accounts.c.id)
        .where(public_account_follows.c.user_id == user_id)
        .order_by(public_accounts.c.id)
    )
    return [_flags(r) for r in (await conn.execute(q)).mappings().all()]


# -- posts and the posts stream ------------------------------------------------------------------------


async def next_position(conn: AsyncConnection) -> int:
    """Lock the stream's counter row, bump it, and return the new position (module docstring)."""
    q = select(posts_stream.c.last_position).where(posts_stream.c.id == STREAM_ROW).with_for_update()
    last = (await conn.execute(q)).scalar_one()
    await conn.execute(update(posts_stream).where(posts_stream.c.id == STREAM_ROW).values(last_position=last + 1))
    return last + 1


async def latest_position(conn: AsyncConnection) -> int:
    q = select(posts_stream.c.last_position).where(posts_stream.c.id == STREAM_ROW)
    return (await conn.execute(q)).scalar_one_or_none() or 0


async def insert_post(conn: AsyncConnection, **values) -> int:
    return (await conn.execute(insert(posts).values(**values).returning(posts.c.id))).scalar_one()


_POST = (*posts.c, public_accounts.c.name.label("account_name"))


def _post_query():
    return select(*_POST).join(public_accounts, public_accounts.c.id == posts.c.account_id)


async def get_post(conn: AsyncConnection, post_id: int) -> dict | None:
    row = (await conn.execute(_post_query().where(posts.c.id == post_id))).mappings().first()
    return dict(row) if row else None


async def take_down(
    conn: AsyncConnection, post_id: int, *, by_kind: str, by_id: int, reason: str | None, now: datetime
) -> bool:
    """Mark a post taken down; False if it already was."""
    result = await conn.execute(
        update(posts)
        .where(posts.c.id == post_id, posts.c.taken_down_at.is_(None))
        .values(taken_down_at=now, taken_down_by_kind=by_kind, taken_down_by=by_id, takedown_reason=reason)
    )
    return result.rowcount == 1


async def posts_after(conn: AsyncConnection, user_id: int, after: int, limit: int) -> list[dict]:
    """Posts of the accounts `user_id` follows with position > after, ascending; taken-down ones left out."""
    q = (
        _post_query()
        .join(
            public_account_follows,
            and_(
                public_account_follows.c.account_id == posts.c.account_id, public_account_follows.c.user_id == user_id
            ),
        )
        .where(posts.c.position > after, posts.c.taken_down_at.is_(None))
        .order_by(posts.c.position)
        .limit(limit)
    )
    return [dict(r) for r in (await conn.execute(q)).mappings().all()]


async def account_posts(conn: AsyncConnection, account_id: int, *, before: int | None, limit: int) -> list[dict]:
    """An account's history, newest first, before position `before`; taken-down posts left out."""
    q = _post_query().where(posts.c.account_id == account_id, posts.c.taken_down_at.is_(None))
    if before is not None:
        q = q.where(posts.c.position < before)
    q = q.order_by(posts.c.position.desc()).limit(limit)
    return [dict(r) for r in (await conn.execute(q)).mappings().all()]


async def post_accounts(conn: AsyncConnection, ids: list[int]) -> dict[int, tuple[int, int]]:
    """post id -> (its public account, that account's owner), for the ids that exist."""
    if not ids:
        return {}
    q = (
        select(posts.c.id, posts.c.account_id, public_accounts.c.owner_id)
        .join(public_accounts, public_accounts.c.id == posts.c.account_id)
        .where(posts.c.id.in_(ids))
    )
    return {r.id: (r.account_id, r.owner_id) for r in await conn.execute(q)}


# -- changes awaiting re-review ---------------------------------------------------------------------------


async def insert_change(conn: AsyncConnection, *, review_flags: list[str], **values) -> int:
    result = await conn.execute(
        insert(public_account_changes)
        .values(review_flags=json.dumps(review_flags), **values)
        .returning(public_account_changes.c.id)
    )
    return result.scalar_one()


async def get_change(conn: AsyncConnection, change_id: int) -> dict | None:
    q = select(public_account_changes).where(public_account_changes.c.id == change_id)
    row = (await conn.execute(q)).mappings().first()
    return _flags(row) if row else None


async def pending_change_for(conn: AsyncConnection, account_id: int) -> dict | None:
    q = select(public_account_changes).where(
        public_account_changes.c.account_id == account_id, public_account_changes.c.status == PENDING
    )
    row = (await conn.execute(q)).mappings().first()
    return _flags(row) if row else None


async def pending_changes(conn: AsyncConnection, *, after: tuple | None, limit: int) -> tuple[list[dict], int]:
    """One keyset page of changes awaiting re-review, oldest first, and how many there are."""
    q = select(public_account_changes).where(public_account_changes.c.status == PENDING)
    key = public_account_changes.c.id
    rows, total = await keyset_page(conn, q, key=key, row_id=key, descending=False, after=after, limit=limit)
    return [_flags(r) for r in rows], total


async def decide_change(
    conn: AsyncConnection, change_id: int, *, status: str, reviewer_id: int, reason: str, now: datetime
) -> bool:
    result = await conn.execute(
        update(public_account_changes)
        .where(public_account_changes.c.id == change_id, public_account_changes.c.status == PENDING)
        .values(status=status, reviewer_id=reviewer_id, review_reason=reason, reviewed_at=now)
    )
    return result.rowcount == 1
