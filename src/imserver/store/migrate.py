"""Apply the Alembic migrations from code (`imserver migrate`, `imserver serve`, tests)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config

from .db import Database

VERSION_TABLE = "alembic_version"  # Alembic's default, which imserver/migrations/env.py keeps


def migrations_dir() -> Path:
    """Where the Alembic scripts are.

    ``IMSERVER_MIGRATIONS_DIR`` (an operator's override), else the
    ``imserver/migrations`` directory shipped inside the package (an installed
    wheel, the container, an editable checkout alike). A wheel needs no setting.
    """
    env = os.environ.get("IMSERVER_MIGRATIONS_DIR")
    if env:
        return Path(env)
    packaged = resources.files("imserver") / "migrations"
    if isinstance(packaged, Path) and (packaged / "env.py").is_file():
        return packaged
    raise MigrationsNotFound(
        f"the migration scripts are not in {packaged} (the package); reinstall imserver, or set IMSERVER_MIGRATIONS_DIR"
    )


class MigrationsNotFound(RuntimeError):
    """The installed package has no migration scripts (a broken install)."""


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


async def upgrade(db: Database, revision: str = "heads") -> None:
    def _upgrade(sync_conn) -> None:
        cfg = _config()
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    async with db.transaction() as conn:
        await conn.run_sync(_upgrade)


def heads() -> set[str]:
    """The revisions the migration scripts end at (read from the scripts, no database)."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(_config()).get_heads())


async def current(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def _current(sync_conn) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with db.transaction() as conn:
        return await conn.run_sync(_current)


async def current_heads(db: Database) -> set[str]:
    """The revisions the database is at (empty before the first migration).

    Read from Alembic's version table directly: a MigrationContext would log two
    INFO lines at every readiness probe.
    """
    from sqlalchemy import inspect, text

    def _heads(sync_conn) -> set[str]:
        if not inspect(sync_conn).has_table(VERSION_TABLE):
            return set()
        return set(sync_conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())

    async with db.read() as conn:
        return await conn.run_sync(_heads)
