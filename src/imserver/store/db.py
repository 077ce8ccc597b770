"""Engines and transactions: SQLite (embedded default) or PostgreSQL (production).

``Database.transaction()`` is the unit of work: everything inside commits
together or not at all, and faults of the database itself (down, locked,
connection lost) come out as :class:`~imserver.domain.errors.Unavailable`, which
the front ends turn into 503 or an error frame. Never open a transaction while
holding another: on SQLite the pool has a single connection (see below).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import event, make_url, text
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from ..domain.errors import Unavailable

log = logging.getLogger("imserver.database")

# What a repository function takes: one open connection inside a transaction.
Connection = AsyncConnection

# SQLite allows one writer at a time. One pooled connection serialises our own
# transactions in-process instead of making them fight over the file lock
# (SQLITE_BUSY); the group-commit writer is built around this.
SQLITE_POOL_SIZE = 1
# PostgreSQL: enough for the message writer plus concurrent REST calls on a
# 2-core node; more connections only add contention there.
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 10
# How long a caller waits for a pooled connection before getting a 503.
POOL_TIMEOUT_SECONDS = 10
# SQLite: how long to wait on another process's lock (migrations, CLI) before failing.
SQLITE_BUSY_TIMEOUT_MS = 5000


def describe_url(url: str) -> str:
    """Where a database URL points, for a log line: the SQLite file's path, or the URL without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {Path(parsed.database).resolve()}"
    return f"{parsed.get_backend_name()} {parsed.render_as_string(hide_password=True)}"


def make_engine(url: str, *, sqlite_synchronous: str = "FULL", search_path: str | None = None) -> AsyncEngine:
    if url.startswith("sqlite"):
        synchronous = sqlite_synchronous.upper()
        if synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA, not {sqlite_synchronous!r}")
        # IMMEDIATE takes the write lock up front: another process (the CLI)
        # then waits busy_timeout instead of failing on a lock upgrade.
        return _sqlite_engine(
            url,
            SQLITE_POOL_SIZE,
            ["PRAGMA journal_mode=WAL", f"PRAGMA synchronous={synchronous}", "PRAGMA foreign_keys=ON"],
            "BEGIN IMMEDIATE",
        )
    connect_args: dict = {}
    # A `search_path` query parameter (postgresql+asyncpg://.../db?search_path=imserver)
    # runs imserver in a schema of its own; asyncpg takes it as a server setting,
    # not as a URL option, so it is moved there.
    parsed = make_url(url)
    if "search_path" in parsed.query:
        search_path = search_path or parsed.query["search_path"]
        url = parsed.difference_update_query(["search_path"])
    if search_path:
        connect_args["server_settings"] = {"search_path": search_path}
    return create_async_engine(
        url,
        pool_size=PG_POOL_SIZE,
        max_overflow=PG_MAX_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_pre_ping=True,
        connect_args=connect_args,
        hide_parameters=True,  # statement parameters (bodies, handles) stay out of errors and logs
    )


async def insert_unique(conn: AsyncConnection, statement) -> int | None:
    """Run an INSERT ... RETURNING id in a savepoint; None if a unique key refused it.

    The savepoint keeps the caller's transaction usable after the refusal.
    """
    try:
        async with conn.begin_nested():
            return (await conn.execute(statement)).scalar_one()
    except IntegrityError:
        return None


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError):
        return False
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout, OSError, ConnectionError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


# SQLite readers beside the one writer connection. WAL lets them read while
# the writer commits; without them a reconnect storm (1,000 clients, each
# authenticating and reading its cursors and pages) queues on the writer's
# single connection behind the message batches, until callers time out.
SQLITE_READERS = 4


def make_sqlite_reader(url: str) -> AsyncEngine | None:
    """Read-only connections to the same SQLite file (None for an in-memory database)."""
    database = make_url(url).database
    if not database or database == ":memory:" or "mode=memory" in url:
        return None
    # Deferred BEGIN: one snapshot for the whole read, and no write lock.
    return _sqlite_engine(url, SQLITE_READERS, ["PRAGMA query_only=ON"], "BEGIN")


def _sqlite_engine(url: str, connections: int, pragmas: list[str], begin: str) -> AsyncEngine:
    engine = create_async_engine(
        url,
        # Explicit: SQLAlchemy before 2.0.38 gave aiosqlite a NullPool (a new connection per use).
        poolclass=AsyncAdaptedQueuePool,
        pool_size=connections,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        # Every use ends its own transaction (engine.begin(), or store.batch's
        # COMMIT/ROLLBACK), so the pool's rollback on return would only add a
        # trip to the driver thread per checkout.
        pool_reset_on_return=None,
        hide_parameters=True,  # statement parameters (bodies, handles) stay out of errors and logs
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - exercised by every test
        cur = dbapi_conn.cursor()
        for pragma in [*pragmas, f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"]:
            cur.execute(pragma)
        cur.close()
        # Take transaction control from the driver, whose implicit BEGIN breaks
        # SAVEPOINT (SQLAlchemy's documented recipe for pysqlite/aiosqlite).
        dbapi_conn.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn) -> None:  # pragma: no cover - exercised by every test
        conn.exec_driver_sql(begin)

    return engine


@contextlib.asynccontextmanager
async def _unit_of_work(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    try:
        async with engine.begin() as conn:
            yield conn
    except Exception as exc:
        if _is_unavailable(exc):
            raise Unavailable("the database is unavailable, try again") from exc
        raise


def _fault_name(exc: BaseException | None) -> str:
    """The fault's class and its driver's class, without the message (which may hold a URL).

    SQLite's own messages are kept ("database is locked", "disk I/O error"): they
    name the fault, and a file database has no URL with a password to leak.
    """
    if exc is None:
        return "unknown"
    orig = getattr(exc, "orig", None)
    if orig is None:
        return type(exc).__name__
    name = f"{type(exc).__name__}({type(orig).__name__})"
    if type(orig).__module__.startswith("sqlite3"):
        name += f": {str(orig)[:200]}"
    return name


class Database:
    """The engine plus the unit of work."""

    def __init__(self, engine: AsyncEngine, reader: AsyncEngine | None = None) -> None:
        self.engine = engine
        self.reader = reader  # SQLite only: read-only connections beside the writer
        self.dialect = engine.dialect.name  # "sqlite" | "postgresql"
        self.healthy = True  # False from a fault until the next unit of work that succeeds

    @classmethod
    def from_url(cls, url: str, **kw) -> Database:
        engine = make_engine(url, **kw)
        return cls(engine, make_sqlite_reader(url) if engine.dialect.name == "sqlite" else None)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only unit of work: one consistent snapshot, no writes.

        On SQLite it runs on a reader connection, beside the writer; on
        PostgreSQL it is an ordinary transaction from the pool.
        """
        async with self._watched(self.reader or self.engine) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """Commit on success, roll back on any exception; database faults become Unavailable."""
        async with self._watched(self.engine) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _watched(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        """A unit of work that logs the database's faults and recoveries once each, not per call."""
        try:
            async with _unit_of_work(engine) as conn:
                yield conn
        except Unavailable as exc:
            if self.healthy:
                self.healthy = False
                log.error("database unreachable: %s", _fault_name(exc.__cause__), extra={"dialect": self.dialect})
            raise
        if not self.healthy:
            self.healthy = True
            log.info("database reachable again", extra={"dialect": self.dialect})

    async def ping(self) -> bool:
        try:
            async with self.transaction() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Unavailable:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.reader is not None:
            await self.reader.dispose()
