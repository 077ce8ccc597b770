"""Alembic environment: the schema's only source, run the same on SQLite and PostgreSQL.

imserver passes an open connection in ``config.attributes["connection"]``;
run by hand, the URL comes from IMSERVER_DATABASE_URL (or the embedded default).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=None,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite's ALTER is limited
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from imserver.config import Settings

        url = Settings().resolved_database_url()
    asyncio.run(_run_async(url))
