"""Users, operators and bearer-token sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.enums import PrincipalKind, RealNameStatus, UserStatus
from .db import insert_unique
from .tables import agreement_acceptances, inbox_counters, operator_roles, operators, sessions, users


async def insert_user(
    conn: AsyncConnection, *, handle: str, nickname: str, password_hash: str, now: datetime
) -> int | None:
    """The new user's id, or None if the handle is taken."""
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                insert(users)
                .values(
                    handle=handle,
                    nickname=nickname,
                    password_hash=password_hash,
                    status=UserStatus.ACTIVE,
                    realname_status=RealNameStatus.UNVERIFIED,
                    agreement_version=None,
                    created_at=now,
                )
                .returning(users.c.id)
            )
            user_id = result.scalar_one()
            # The inbox counter row exists from the start, so the message writer
            # never has to create one on the hot path.
            await conn.execute(insert(inbox_counters).values(user_id=user_id, last_seq=0, received_seq=0))
            return user_id
    except IntegrityError:
        return None


async def get_user(conn: AsyncConnection, user_id: int):
    return (await conn.execute(select(users).where(users.c.id == user_id))).mappings().first()


async def get_users(conn: AsyncConnection, user_ids: list[int]):
    rows = (await conn.execute(select(users).where(users.c.id.in_(user_ids)))).mappings().all()
    return {r["id"]: r for r in rows}


async def get_user_by_handle(conn: AsyncConnection, handle: str):
    return (await conn.execute(select(users).where(users.c.handle == handle))).mappings().first()


async def update_user(conn: AsyncConnection, user_id: int, **values) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(**values))


async def record_acceptance(
    conn: AsyncConnection, *, user_id: int, version: int, now: datetime, client_ip: str | None
) -> None:
    await conn.execute(
        insert(agreement_acceptances).values(user_id=user_id, version=version, accepted_at=now, client_ip=client_ip)
    )
    await update_user(conn, user_id, agreement_version=version)


async def acceptances(conn: AsyncConnection, user_id: int):
    q = select(agreement_acceptances).where(agreement_acceptances.c.user_id == user_id)
    return (await conn.execute(q.order_by(agreement_acceptances.c.id))).mappings().all()


# -- operators -------------------------------------------------------------------


async def insert_operator(
    conn: AsyncConnection,
    *,
    handle: str,
    password_hash: str,
    role: str,
    now: datetime,
    roles: list[str] | None = None,
    created_by: int | None = None,
    confirmed_at: datetime | None = None,
) -> int | None:
    """The new operator's id (holding `roles`, default just `role`), or None if the handle is taken.

    `created_by` an operator and `confirmed_at` None: a privileged grant that waits for a second admin."""
    operator_id = await insert_unique(
        conn,
        insert(operators)
        .values(
            handle=handle,
            password_hash=password_hash,
            role=role,
            created_at=now,
            must_change_password=False,
            created_by=created_by,
            confirmed_at=confirmed_at,
        )
        .returning(operators.c.id),
    )
    if operator_id is not None:
        await set_operator_roles(conn, operator_id, roles or [role])
    return operator_id


async def operator_roles_of(conn: AsyncConnection, operator_ids: list[int]) -> dict[int, set[str]]:
    """Each operator's roles (an empty set for one that holds none)."""
    out: dict[int, set[str]] = {i: set() for i in operator_ids}
    if operator_ids:
        q = select(operator_roles).where(operator_roles.c.operator_id.in_(operator_ids))
        for r in (await conn.execute(q)).mappings().all():
            out[r["operator_id"]].add(r["role"])
    return out


async def set_operator_roles(conn: AsyncConnection, operator_id: int, roles: list[str]) -> None:
    """Replace the operator's roles with `roles`."""
    await conn.execute(delete(operator_roles).where(operator_roles.c.operator_id == operator_id))
    await conn.execute(insert(operator_roles), [{"operator_id": operator_id, "role": r} for r in sorted(set(roles))])


async def enabled_holders(conn: AsyncConnection, role: str) -> list[int]:
    """Ids of enabled operators holding `role` (the last-admin rule counts them).

    Their rows stay locked to the end of the transaction (PostgreSQL), so two
    admins disabling each other at once cannot both pass the count."""
    q = (
        select(operators.c.id)
        .join(operator_roles, operator_roles.c.operator_id == operators.c.id)
        .where(operator_roles.c.role == role, operators.c.disabled_at.is_(None))
        .order_by(operators.c.id)
        .with_for_update(of=operators)
    )
    return list((await conn.execute(q)).scalars().all())


async def get_operator(conn: AsyncConnection, operator_id: int):
    return (await conn.execute(select(operators).where(operators.c.id == operator_id))).mappings().first()


async def get_operator_by_handle(conn: AsyncConnection, handle: str):
    return (await conn.execute(select(operators).where(operators.c.handle == handle))).mappings().first()


async def list_operators(conn: AsyncConnection):
    return (await conn.execute(select(operators).order_by(operators.c.id))).mappings().all()


async def update_operator(conn: AsyncConnection, operator_id: int, **values) -> None:
    await conn.execute(update(operators).where(operators.c.id == operator_id).values(**values))


async def count_operators(conn: AsyncConnection) -> int:
    return (await conn.execute(select(func.count()).select_from(operators))).scalar_one()


# -- sessions --------------------------------------------------------------------


async def insert_session(
    conn: AsyncConnection,
    *,
    token_hash: str,
    kind: PrincipalKind,
    principal_id: int,
    now: datetime,
    expires_at: datetime,
    scope: str | None = None,
) -> None:
    await conn.execute(
        insert(sessions).values(
            token_hash=token_hash,
            principal_kind=kind,
            principal_id=principal_id,
            created_at=now,
            expires_at=expires_at,
            scope=scope,
        )
    )


async def get_session(conn: AsyncConnection, token_hash: str):
    return (await conn.execute(select(sessions).where(sessions.c.token_hash == token_hash))).mappings().first()


async def touch_session(conn: AsyncConnection, token_hash: str, now: datetime) -> None:
    await conn.execute(update(sessions).where(sessions.c.token_hash == token_hash).values(last_seen_at=now))


async def revoke_session(conn: AsyncConnection, token_hash: str, now: datetime) -> None:
    await conn.execute(
        update(sessions)
        .where(sessions.c.token_hash == token_hash, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def live_sessions_of(conn: AsyncConnection, kind: PrincipalKind, principal_id: int, now: datetime) -> list[str]:
    """Token hashes of the principal's unrevoked, unexpired sessions."""
    q = select(sessions.c.token_hash).where(
        sessions.c.principal_kind == kind,
        sessions.c.principal_id == principal_id,
        sessions.c.revoked_at.is_(None),
        sessions.c.expires_at > now,
    )
    return list((await conn.execute(q)).scalars().all())


async def revoke_all_sessions(conn: AsyncConnection, kind: PrincipalKind, principal_id: int, now: datetime) -> None:
    await conn.execute(
        update(sessions)
        .where(
            sessions.c.principal_kind == kind,
            sessions.c.principal_id == principal_id,
            sessions.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


async def live_token_hashes(conn: AsyncConnection, token_hashes: list[str], now: datetime) -> set[str]:
    """Of `token_hashes`, those whose session is unrevoked, unexpired and whose user is active."""
    if not token_hashes:
        return set()
    q = (
        select(sessions.c.token_hash)
        .join(users, users.c.id == sessions.c.principal_id)
        .where(
            sessions.c.token_hash.in_(token_hashes),
            sessions.c.principal_kind == PrincipalKind.USER,
            sessions.c.revoked_at.is_(None),
            sessions.c.expires_at > now,
            users.c.status == UserStatus.ACTIVE,
        )
    )
    return set((await conn.execute(q)).scalars().all())
