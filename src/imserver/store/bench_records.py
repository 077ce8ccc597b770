"""The SQL of ``python -m imserver.bench.audit``: sign-in log rows written in bulk,
into the record table (its triggers add a chain entry per row) or into a copy of
it without triggers, so the chain's cost per record write is measured in one run.
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, Table, insert, text

from .db import Database
from .tables import access_log

COPY = "bench_access_log"  # the trigger-less copy, dropped again by drop_plain_copy


async def insert_rows(db: Database, rows: list[dict], *, chained: bool = True) -> None:
    """One transaction inserting `rows` into the sign-in log (or, unchained, into its copy)."""
    table = access_log if chained else Table(COPY, MetaData(), *[Column(c.name, c.type) for c in access_log.columns])
    async with db.transaction() as conn:
        await conn.execute(insert(table), rows)


async def create_plain_copy(db: Database) -> None:
    """A copy of the sign-in log's table with its columns and indexes, without the triggers."""
    async with db.transaction() as conn:
        if db.dialect == "postgresql":
            await conn.execute(text(f"CREATE TABLE {COPY} (LIKE access_log INCLUDING ALL)"))
        else:
            ddl = (await conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'access_log'"))).scalar_one()
            await conn.execute(text(ddl.replace("access_log", COPY, 1)))


async def drop_plain_copy(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(text(f"DROP TABLE {COPY}"))
