"""Identity submissions (Art. 6 "real name behind"): rows, review state, rotation.

One row per submission; ``users.realname_status`` carries the user's current
state and is kept in step here. Identity fields never reach this module in
plaintext columns: they are sealed by :class:`~imserver.store.keyring.KeyRing`
with the row id as associated data, so a row is inserted first and its
ciphertext written in the same transaction (nobody else ever sees the row
without it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.enums import RealNameStatus
from .keyring import KeyRing, Sealed
from .tables import identities, users

# Statuses in which a submission backs its account: they count towards the
# per-identity account limit. A rejected submission backs nothing.
HOLDING = (RealNameStatus.PENDING, RealNameStatus.VERIFIED)
# PostgreSQL advisory-lock class for "one identity (HMAC) at a time", so two
# concurrent submissions of one ID number are counted one after the other.
# (SQLite needs nothing: every write transaction is BEGIN IMMEDIATE.)
HMAC_LOCK_CLASS = 0x1D3A


async def insert_submission(
    conn: AsyncConnection, keyring: KeyRing, *, user_id: int, id_hmac: str, plaintext: bytes, now: datetime
) -> int:
    """Insert a pending submission sealed under its own row id; returns the id."""
    identity_id = (
        await conn.execute(
            insert(identities)
            .values(
                user_id=user_id,
                key_id="",  # placeholders until the row id exists to bind
                wrapped_key=b"",
                ciphertext=b"",
                id_hmac=id_hmac,
                status=RealNameStatus.PENDING,
                submitted_at=now,
            )
            .returning(identities.c.id)
        )
    ).scalar_one()
    sealed = keyring.seal(identity_id, plaintext)
    await conn.execute(
        update(identities)
        .where(identities.c.id == identity_id)
        .values(key_id=sealed.key_id, wrapped_key=sealed.wrapped_key, ciphertext=sealed.ciphertext)
    )
    return identity_id


async def get(conn: AsyncConnection, identity_id: int):
    return (await conn.execute(select(identities).where(identities.c.id == identity_id))).mappings().first()


async def latest_for_user(conn: AsyncConnection, user_id: int):
    q = select(identities).where(identities.c.user_id == user_id).order_by(identities.c.id.desc()).limit(1)
    return (await conn.execute(q)).mappings().first()


async def set_review(
    conn: AsyncConnection,
    identity_id: int,
    *,
    status: RealNameStatus,
    reviewer_id: int | None,
    note: str | None,
    now: datetime,
) -> bool:
    """Record a decision on a pending submission; False if it is not (or no longer) pending."""
    result = await conn.execute(
        update(identities)
        .where(identities.c.id == identity_id, identities.c.status == RealNameStatus.PENDING)
        .values(status=status, reviewer_id=reviewer_id, review_note=note, reviewed_at=now)
    )
    return result.rowcount == 1


async def claim_user_status(
    conn: AsyncConnection, user_id: int, *, to: RealNameStatus, only_from: tuple[RealNameStatus, ...]
) -> bool:
    """Move ``users.realname_status`` to `to` if it is one of `only_from`.

    A compare-and-set: of two concurrent submissions by one user exactly one
    succeeds (PostgreSQL re-checks the condition after the first commits).
    """
    result = await conn.execute(
        update(users).where(users.c.id == user_id, users.c.realname_status.in_(only_from)).values(realname_status=to)
    )
    return result.rowcount == 1


async def user_status(conn: AsyncConnection, user_id: int) -> RealNameStatus | None:
    value = (await conn.execute(select(users.c.realname_status).where(users.c.id == user_id))).scalar_one_or_none()
    return RealNameStatus(value) if value is not None else None


async def count_other_holders(conn: AsyncConnection, id_hmac: str, *, user_id: int) -> int:
    """How many OTHER users hold a pending or verified submission of this identity.

    Takes a transaction-scoped lock on the HMAC first, so the count stays true
    until this transaction commits its own submission.
    """
    if conn.dialect.name == "postgresql":
        # int(8 hex digits) fits an unsigned 32-bit int; shift into int4's signed range.
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:cls, :key)"),
            {"cls": HMAC_LOCK_CLASS, "key": int(id_hmac[:8], 16) - 2**31},
        )
    q = select(func.count(func.distinct(identities.c.user_id))).where(
        identities.c.id_hmac == id_hmac,
        identities.c.status.in_(HOLDING),
        identities.c.user_id != user_id,
    )
    return (await conn.execute(q)).scalar_one()


# -- master-key rotation ---------------------------------------------------------------


async def wrapped_keys_page(conn: AsyncConnection, *, after: int, limit: int, not_key_id: str):
    """(id, key_id, wrapped_key) of records not yet wrapped by `not_key_id`, by id."""
    q = (
        select(identities.c.id, identities.c.key_id, identities.c.wrapped_key)
        .where(identities.c.id > after, identities.c.key_id != not_key_id)
        .order_by(identities.c.id)
        .limit(limit)
    )
    return (await conn.execute(q)).mappings().all()


async def update_wrapping(conn: AsyncConnection, identity_id: int, *, old_key_id: str, sealed: Sealed) -> bool:
    """Store a re-wrapped data key, unless someone re-wrapped the row meanwhile."""
    result = await conn.execute(
        update(identities)
        .where(identities.c.id == identity_id, identities.c.key_id == old_key_id)
        .values(key_id=sealed.key_id, wrapped_key=sealed.wrapped_key)
    )
    return result.rowcount == 1
