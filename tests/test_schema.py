"""The migrations and ``store/tables.py`` describe the same schema, on both backends.

Alembic's migrations are the schema's only source; ``tables.py`` mirrors them for
the query builder. After migrating, Alembic's autogenerate comparison of the live
database against ``tables.metadata`` must find nothing: a column, index, unique
constraint, foreign key, type or nullability added on one side only fails here.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from imserver.store.tables import metadata


def _include_name(name, type_, parent_names) -> bool:
    # alembic_version is Alembic's own bookkeeping, not part of our schema.
    return not (type_ == "table" and name == "alembic_version")


def _diff(sync_conn) -> list:
    context = MigrationContext.configure(
        sync_conn,
        opts={
            "include_name": _include_name,
            "compare_type": True,
            # Server defaults are not compared: values are set by the code, and
            # where a migration does declare one, SQLite and PostgreSQL reflect it
            # in their own spelling ('0' vs 0, 'false' vs false): noise, not drift.
            "compare_server_default": False,
        },
    )
    return compare_metadata(context, metadata)


async def test_migrations_match_tables(db):
    async with db.transaction() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == [], "migrations and store/tables.py disagree:\n" + "\n".join(map(repr, diff))


async def test_the_comparison_sees_drift(db):
    """The check above can fail: a column, an index and a type changed in tables.py only are all reported."""
    from sqlalchemy import Column, Index, MetaData, String, Text

    drifted = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(drifted)
    users = drifted.tables["users"]
    users.append_column(Column("shoe_size", String(8), nullable=True))
    Index("ix_users_nickname", users.c.nickname)
    users.c.nickname.type = Text()

    def diff(sync_conn) -> list:
        context = MigrationContext.configure(sync_conn, opts={"include_name": _include_name, "compare_type": True})
        return compare_metadata(context, drifted)

    async with db.transaction() as conn:
        found = await conn.run_sync(diff)
    flat = [d for entry in found for d in (entry if isinstance(entry, list) else [entry])]
    kinds = {(d[0], d[2] if d[0] == "add_column" else None) for d in flat}
    assert ("add_column", "users") in kinds
    assert any(d[0] == "add_index" for d in flat)
    assert any(d[0] == "modify_type" and d[3] == "nickname" for d in flat)
