"""Account deletion requests and the erasure of a deleted account's personal data.

The request row is a record (chained, append-only; ``erased_at`` is set once).
Erasure removes the identity submissions and sessions, pseudonymises the user
row (handle and nickname; the password was made unusable at the request) and
forgets the client addresses of the agreement acceptances. The user row itself
stays, under its number only, so sanctions, reports and messages kept by
retention still name their subject without naming the person.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .retention import held_by
from .tables import account_deletions, agreement_acceptances, identities, sessions, users

UNUSABLE_PASSWORD = "!deleted"  # not an argon2 hash: no password ever verifies against it


async def request(
    conn: AsyncConnection, *, user_id: int, now: datetime, erase_after: datetime
) -> tuple[int, list[str]] | None:
    """Record the request and stop sign-in at once: (its id, the hashes of the tokens it
    revoked), or None if one exists already."""
    if (await conn.execute(select(account_deletions.c.id).where(account_deletions.c.user_id == user_id))).first():
        return None
    deletion_id = (
        await conn.execute(
            insert(account_deletions)
            .values(user_id=user_id, requested_at=now, erase_after=erase_after)
            .returning(account_deletions.c.id)
        )
    ).scalar_one()
    await conn.execute(update(users).where(users.c.id == user_id).values(password_hash=UNUSABLE_PASSWORD, status="closed"))
    revoked = await conn.execute(
        update(sessions)
        .where(sessions.c.principal_kind == "user", sessions.c.principal_id == user_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(sessions.c.token_hash)
    )
    return deletion_id, list(revoked.scalars().all())


async def listing(conn: AsyncConnection, *, pending_only: bool, after: int, limit: int) -> list[dict]:
    held = held_by("user", account_deletions.c.user_id)
    q = select(account_deletions, held.label("held")).where(account_deletions.c.id > after)
    if pending_only:
        q = q.where(account_deletions.c.erased_at.is_(None))
    return [dict(r) for r in (await conn.execute(q.order_by(account_deletions.c.id).limit(limit))).mappings().all()]


async def due(conn: AsyncConnection, now: datetime, limit: int) -> list[dict]:
    """Requests past their erase_after, not erased, whose user no active hold covers."""
    q = (
        select(account_deletions)
        .where(
            account_deletions.c.erased_at.is_(None),
            account_deletions.c.erase_after <= now,
            ~held_by("user", account_deletions.c.user_id),
        )
        .order_by(account_deletions.c.id)
        .limit(limit)
    )
    return [dict(r) for r in (await conn.execute(q)).mappings().all()]


async def erase(conn: AsyncConnection, deletion_id: int, user_id: int, now: datetime) -> dict[str, int]:
    counts = {
        "identities": (await conn.execute(delete(identities).where(identities.c.user_id == user_id))).rowcount,
        "sessions": (
            await conn.execute(
                delete(sessions).where(sessions.c.principal_kind == "user", sessions.c.principal_id == user_id)
            )
        ).rowcount,
        "agreement_addresses": (
            await conn.execute(
                update(agreement_acceptances).where(agreement_acceptances.c.user_id == user_id).values(client_ip=None)
            )
        ).rowcount,
    }
    await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(handle=f"deleted-{user_id}", nickname="deleted user", password_hash=UNUSABLE_PASSWORD)
    )
    await conn.execute(update(account_deletions).where(account_deletions.c.id == deletion_id).values(erased_at=now))
    return counts
