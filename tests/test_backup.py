"""``imserver backup`` while the database is in use, then restore, then
``imserver audit verify --checkpoints`` on the restored copy."""

from __future__ import annotations

import asyncio
import shutil
import stat
import subprocess
import uuid

import pytest
from sqlalchemy import make_url

from imserver import cli

from .conftest import PG_URL
from .test_checkpoints import checkpoints
from .test_records import seed


def url_with_schema(url: str, search_path: str | None) -> str:
    if not search_path:
        return url
    return make_url(url).update_query_dict({"search_path": search_path}).render_as_string(hide_password=False)


async def imserver(monkeypatch, url: str, data_dir, *argv) -> int:
    monkeypatch.setenv("IMSERVER_DATABASE_URL", url)
    monkeypatch.setenv("IMSERVER_DATA_DIR", str(data_dir))
    return await asyncio.to_thread(cli.main, list(argv))


def psql(*sql: str) -> None:
    plain = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    for statement in sql:
        subprocess.run(["psql", plain, "-v", "ON_ERROR_STOP=1", "-qc", statement], check=True, capture_output=True)


async def test_backup_restore_and_verify(db, backend, database_url, settings, tmp_path, monkeypatch, capsys):
    if backend == "postgres" and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    await seed(db, "sanctions")
    await checkpoints(db, settings).take()
    await seed(db, "access_log")  # after the checkpoint, still in the live database's WAL
    url = url_with_schema(*database_url)
    target = tmp_path / "backup"

    assert await imserver(monkeypatch, url, settings.data_dir, "backup", "--to", str(target)) == 0
    files = [line for line in capsys.readouterr().out.splitlines() if line]
    names = sorted(p.rsplit("/", 1)[-1] for p in files)
    assert names[0] == "checkpoint.key" and names[1].startswith("imserver-")
    for path in files:
        assert stat.S_IMODE((tmp_path / "backup" / path.rsplit("/", 1)[-1]).stat().st_mode) == 0o600
    dump = next(p for p in files if "imserver-" in p)

    # Restore: SQLite is the file itself; PostgreSQL goes into a database of its own.
    if backend == "sqlite":
        restored = f"sqlite+aiosqlite:///{dump}"
    else:
        name = f"imserver_restore_{uuid.uuid4().hex[:8]}"
        psql(f'CREATE DATABASE "{name}"')
        plain = make_url(PG_URL).set(database=name, drivername="postgresql").render_as_string(hide_password=False)
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={plain}", dump], check=True)
        restored = url_with_schema(make_url(PG_URL).set(database=name).render_as_string(hide_password=False), database_url[1])
    try:
        # The key file comes from the backup directory, as after losing the machine.
        assert await imserver(monkeypatch, restored, target, "audit", "verify", "--checkpoints") == 0
        out = capsys.readouterr().out
        assert "records intact" in out and "checkpoints checked: 1" in out
        assert "record chain: 6 entries" in out or "record chain: 8 entries" in out
    finally:
        if backend == "postgres":
            psql(f'DROP DATABASE "{name}" WITH (FORCE)')


async def test_a_backup_is_not_taken_of_nothing(tmp_path, monkeypatch, capsys):
    url = "sqlite+aiosqlite:///" + str(tmp_path / "missing" / "imserver.db")
    assert await imserver(monkeypatch, url, tmp_path, "backup", "--to", str(tmp_path / "b")) == 1
    assert "backup failed" in capsys.readouterr().err


def test_pg_dump_command_keeps_the_schema():
    from pathlib import Path

    from imserver.store.backup import pg_dump_command

    command = pg_dump_command("postgresql+asyncpg://u:p@h:5432/d?search_path=imserver", Path("/b/x.dump"))
    assert command[:3] == ["pg_dump", "--format=custom", "--no-owner"]
    assert "--schema=imserver" in command and command[-1] == "postgresql://u:p@h:5432/d"
