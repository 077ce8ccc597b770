"""Backups: the database and the key files, taken while the server runs.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies pages
from a consistent snapshot, WAL included, while the server keeps writing; the
copy is then checked with ``PRAGMA integrity_check``. PostgreSQL: ``pg_dump``
in its custom format (one consistent snapshot, restorable with ``pg_restore``).
With either, the key files in the data directory (``keys.json``: the master
keys of identity data; ``checkpoint.key``: the checkpoint signing key) are
copied beside it with mode 0600: without them identity data cannot be read and
new checkpoints would be signed by another key.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import make_url

from .keyring import KEY_FILE_NAME
from .signing_key import KEY_FILE_NAME as CHECKPOINT_KEY_FILE

BACKUP_PAGES = 1024  # pages copied per step; the server's writers get the file between steps
FILE_MODE = 0o600  # backups hold identity data and keys


@dataclass
class Backup:
    directory: Path
    files: list[Path] = field(default_factory=list)
    command: list[str] | None = None  # the pg_dump run (PostgreSQL)


def stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValueError("an in-memory database cannot be backed up")
    return Path(database)


def backup_sqlite(url: str, target: Path) -> Path:
    """Copy the live SQLite database to `target` through the online backup API, then check it."""
    source = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        os.close(fd)
        dest = sqlite3.connect(target)
        try:
            source.backup(dest, pages=BACKUP_PAGES)
            dest.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            verdict = dest.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            dest.close()
    finally:
        source.close()
    if verdict != "ok":
        raise RuntimeError(f"the backup copy failed its integrity check: {verdict}")
    return target


def pg_dump_command(url: str, target: Path) -> list[str]:
    """The pg_dump invocation (custom format) for an imserver database URL."""
    parsed = make_url(url)
    schema = parsed.query.get("search_path")
    plain = parsed.set(drivername="postgresql").difference_update_query(["search_path"])
    command = ["pg_dump", "--format=custom", "--no-owner", f"--file={target}"]
    if schema:
        command.append(f"--schema={schema}")
    return [*command, plain.render_as_string(hide_password=False)]


def backup_postgres(url: str, target: Path) -> list[str]:
    command = pg_dump_command(url, target)
    if shutil.which("pg_dump") is None:
        raise FileNotFoundError("pg_dump is not on PATH")
    subprocess.run(command, check=True)
    os.chmod(target, FILE_MODE)
    return command


def copy_key_files(data_dir: Path, directory: Path) -> list[Path]:
    copied = []
    for name in (KEY_FILE_NAME, CHECKPOINT_KEY_FILE):
        source = data_dir / name
        if source.exists():
            target = directory / name
            shutil.copyfile(source, target)
            os.chmod(target, FILE_MODE)
            copied.append(target)
    return copied


def take(url: str, data_dir: Path, directory: Path) -> Backup:
    directory.mkdir(parents=True, exist_ok=True)
    result = Backup(directory)
    if url.startswith("sqlite"):
        result.files.append(backup_sqlite(url, directory / f"imserver-{stamp()}.db"))
    else:
        target = directory / f"imserver-{stamp()}.dump"
        result.command = backup_postgres(url, target)
        result.files.append(target)
    result.files.extend(copy_key_files(data_dir, directory))
    return result
