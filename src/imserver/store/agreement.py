"""Agreement versions (Art. 6)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import agreement_acceptances, agreement_versions, users


async def current(conn: AsyncConnection, now: datetime):
    """The version in effect at `now`: the latest whose effective time has come (a version
    without one took effect when it was published)."""
    effective = agreement_versions.c.effective_at
    q = (
        select(agreement_versions)
        .where(or_(effective.is_(None), effective <= now))
        .order_by(agreement_versions.c.version.desc())
        .limit(1)
    )
    return (await conn.execute(q)).mappings().first()


async def next_effective_at(conn: AsyncConnection, now: datetime) -> datetime | None:
    """When the next scheduled version takes effect (None: none is scheduled)."""
    q = select(func.min(agreement_versions.c.effective_at)).where(agreement_versions.c.effective_at > now)
    return (await conn.execute(q)).scalar_one()


async def get(conn: AsyncConnection, version: int):
    q = select(agreement_versions).where(agreement_versions.c.version == version)
    return (await conn.execute(q)).mappings().first()


async def list_all(conn: AsyncConnection):
    return (await conn.execute(select(agreement_versions).order_by(agreement_versions.c.version))).mappings().all()


async def publish(
    conn: AsyncConnection,
    *,
    text: str,
    now: datetime,
    operator_id: int,
    effective_at: datetime | None = None,
    grace_until: datetime | None = None,
) -> int:
    latest = (await conn.execute(select(func.max(agreement_versions.c.version)))).scalar_one() or 0
    version = latest + 1
    await conn.execute(
        insert(agreement_versions).values(
            version=version,
            text=text,
            published_at=now,
            published_by=operator_id,
            effective_at=effective_at,
            grace_until=grace_until,
        )
    )
    return version


async def acceptance_counts(conn: AsyncConnection) -> dict[int, tuple[int, int]]:
    """{version: (acceptances recorded, users whose latest accepted version it is)}."""
    recorded = (
        await conn.execute(
            select(agreement_acceptances.c.version, func.count(func.distinct(agreement_acceptances.c.user_id)))
            .group_by(agreement_acceptances.c.version)
        )
    ).all()
    current = (
        await conn.execute(
            select(users.c.agreement_version, func.count())
            .where(users.c.agreement_version.is_not(None))
            .group_by(users.c.agreement_version)
        )
    ).all()
    latest = dict(current)
    out = {version: (count, latest.get(version, 0)) for version, count in recorded}
    for version, count in latest.items():
        out.setdefault(version, (0, count))
    return out
