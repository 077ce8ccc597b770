"""The message writer's batch, stored in one trip to the database.

A batch of sends is the hot path's only write: per batch, the idempotency
lookup, the message rows, the counter locks, the inbox rows, the counter
updates and the commit. Through SQLAlchemy each statement is several trips
(on SQLite a hand-off to aiosqlite's thread and back, on PostgreSQL a network
round trip), and on a 2-core host a trip costs 0.13-0.3 ms: a batch took
eleven to forty of them. Here a batch is one trip on either backend:

* **SQLite**: the whole transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) runs as
  one function in the driver's thread, through the stdlib ``sqlite3`` API.
* **PostgreSQL**: one call of the ``imserver_write_batch`` function (migration
  0004), which is its own transaction, on a connection the writer keeps.

Both follow the rules of :mod:`imserver.store.messages`: retried sends come back
as duplicates with their first result, ids in send order, counter rows locked
in user-id order, each recipient's positions gap-free in send order.

``before_commit`` (test-only, the writer's unsafe mode) runs after the
statements and before the commit, which then costs a second trip.

Errors: a unique-key race (the same retried send on two nodes at once) raises
:class:`KeyRace`, which the writer retries; any other fault of the
database raises :class:`~imserver.domain.errors.Unavailable`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime


from ..domain.errors import Unavailable
from .db import Database
from .messages import DELIVERED, NewMessage, Stored

BeforeCommit = Callable[[list[Stored]], Awaitable[None]]


class KeyRace(Exception):
    """The same (sender, client_msg_id) was stored by another writer during this batch: retry it."""


class BatchStore:
    """Stores a batch of sends; one instance per writer."""

    async def write(self, batch: list[NewMessage], before_commit: BeforeCommit | None = None) -> list[Stored]:
        """One Stored per input, in order; repeats of a key inside the batch are duplicates of its first."""
        unique, first = _unique(batch)
        hook = None
        if before_commit is not None:

            async def hook(results: list[Stored]) -> None:
                await before_commit(_expand(batch, first, results))

        return _expand(batch, first, await self._store(unique, hook))

    async def _store(self, unique: list[NewMessage], hook: BeforeCommit | None) -> list[Stored]:
        raise NotImplementedError

    async def close(self) -> None:
        """Give back what the store holds (the PostgreSQL connection)."""


def batch_store(db: Database) -> BatchStore:
    return SqliteBatchStore(db) if db.dialect == "sqlite" else PostgresBatchStore(db)


def _unique(batch: list[NewMessage]) -> tuple[list[NewMessage], list[int]]:
    """The batch without repeated (sender, client_msg_id) keys, and each input's index into it."""
    index: dict[tuple[int, str], int] = {}
    unique: list[NewMessage] = []
    first: list[int] = []
    for m in batch:
        key = (m.sender_id, m.client_msg_id)
        i = index.get(key)
        if i is None:
            i = index[key] = len(unique)
            unique.append(m)
        first.append(i)
    return unique, first


def _expand(batch: list[NewMessage], first: list[int], results: list[Stored]) -> list[Stored]:
    """Per input: its result, or for a repeat inside the batch, a duplicate of the first one's."""
    if len(batch) == len(results):
        return results
    out, seen = [], set()
    for i in first:
        r = results[i]
        if i in seen:
            r = Stored(r.message_id, r.conversation_id, r.created_at, r.status, True, r.sender_seq)
        seen.add(i)
        out.append(r)
    return out


# -- SQLite --------------------------------------------------------------------------------


def _sqlite_time(at: datetime) -> str:
    """The text SQLAlchemy's SQLite DATETIME stores for a UTC time (types.UTCDateTime)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _sqlite_statements(con: sqlite3.Connection, batch: list[NewMessage]) -> list[Stored]:
    """The batch's statements inside an open transaction (runs in the driver's thread)."""
    n = len(batch)
    keys = [v for m in batch for v in (m.sender_id, m.client_msg_id)]
    existing: dict[tuple[int, str], Stored] = {}
    rows = con.execute(
        "WITH k(s, c) AS (VALUES " + ",".join(["(?, ?)"] * n) + ") "
        "SELECT m.sender_id, m.client_msg_id, m.id, m.conversation_id, m.created_at, m.status, i.seq "
        "FROM k JOIN messages m ON m.sender_id = k.s AND m.client_msg_id = k.c "
        "LEFT JOIN inbox i ON i.message_id = m.id AND i.user_id = m.sender_id",
        keys,
    ).fetchall()
    for sender, client, mid, conv, at, status, seq in rows:
        created = datetime.fromisoformat(at).replace(tzinfo=UTC)
        existing[(sender, client)] = Stored(mid, conv, created, status, True, seq)
    fresh = [m for m in batch if (m.sender_id, m.client_msg_id) not in existing]
    if fresh:
        # One writer at a time (BEGIN IMMEDIATE holds the lock): ids continue the maximum, in send order.
        first_id = (con.execute("SELECT max(id) FROM messages").fetchone()[0] or 0) + 1
        con.executemany(
            "INSERT INTO messages (id, conversation_id, sender_id, client_msg_id, body, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (first_id + j, m.conversation_id, m.sender_id, m.client_msg_id, m.body, m.status, _sqlite_time(m.created_at))
                for j, m in enumerate(fresh)
            ],
        )
    delivered = [m for m in fresh if m.status == DELIVERED]
    recipients = sorted({u for m in delivered for u in m.recipients})
    last: dict[int, int] = {}
    if recipients:
        last = dict(
            con.execute(
                "SELECT user_id, last_seq FROM inbox_counters WHERE user_id IN (" + ",".join("?" * len(recipients)) + ")",
                recipients,
            ).fetchall()
        )
        missing = [u for u in recipients if u not in last]
        if missing:
            # Every user gets a counter row at registration; this covers rows made otherwise.
            con.executemany(
                "INSERT INTO inbox_counters (user_id, last_seq, received_seq) VALUES (?, 0, 0)", [(u,) for u in missing]
            )
            last.update(dict.fromkeys(missing, 0))
    entries: list[tuple[int, int, int]] = []
    out: list[Stored] = []
    next_id = iter(range(first_id, first_id + len(fresh))) if fresh else iter(())
    for m in batch:
        found = existing.get((m.sender_id, m.client_msg_id))
        if found is not None:
            out.append(found)
            continue
        mid = next(next_id)
        seqs: dict[int, int] = {}
        if m.status == DELIVERED:
            for u in m.recipients:
                s = last[u] = last[u] + 1
                seqs[u] = s
                entries.append((u, s, mid))
        out.append(Stored(mid, m.conversation_id, m.created_at, m.status, False, seqs.get(m.sender_id), seqs))
    if entries:
        con.executemany("INSERT INTO inbox (user_id, seq, message_id) VALUES (?, ?, ?)", entries)
        con.executemany(
            "UPDATE inbox_counters SET last_seq = ? WHERE user_id = ?", [(last[u], u) for u in recipients]
        )
    return out


def _sqlite_run(con: sqlite3.Connection, batch: list[NewMessage], commit: bool) -> list[Stored]:
    """BEGIN IMMEDIATE, the statements, and COMMIT unless the caller commits later; ROLLBACK on any error."""
    con.execute("BEGIN IMMEDIATE")
    try:
        out = _sqlite_statements(con, batch)
        if commit:
            con.execute("COMMIT")
        return out
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _sqlite_end(con: sqlite3.Connection, commit: bool) -> None:
    con.execute("COMMIT" if commit else "ROLLBACK")


class SqliteBatchStore(BatchStore):
    """The batch as one call in aiosqlite's thread, on the engine's single pooled connection."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _store(self, unique: list[NewMessage], hook: BeforeCommit | None) -> list[Stored]:
        try:
            async with self.db.engine.connect() as conn:
                # Never begun through SQLAlchemy: the raw connection is ours until
                # the block ends, and _sqlite_run always ends its transaction.
                driver = (await conn.get_raw_connection()).driver_connection  # aiosqlite.Connection
                try:
                    return await self._run(driver, unique, hook)
                except sqlite3.IntegrityError:
                    raise  # rolled back; the connection is fine
                except BaseException:
                    # The pool does not reset connections on return (db.py): one
                    # whose transaction may still be open is not given back.
                    await conn.invalidate()
                    raise
        except sqlite3.IntegrityError as exc:
            raise KeyRace("a send in the batch was stored by another writer meanwhile") from exc
        except (sqlite3.Error, OSError) as exc:
            raise Unavailable("the database is unavailable, try again") from exc

    @staticmethod
    async def _run(driver, unique: list[NewMessage], hook: BeforeCommit | None) -> list[Stored]:
        # aiosqlite has no public "run this in your thread"; _execute is
        # what SQLAlchemy's own aiosqlite adapter uses too.
        results = await driver._execute(_sqlite_run, driver._conn, unique, hook is None)
        if hook is not None:
            try:
                await hook(results)
            except BaseException:
                await driver._execute(_sqlite_end, driver._conn, False)
                raise
            await driver._execute(_sqlite_end, driver._conn, True)
        return results


# -- PostgreSQL ----------------------------------------------------------------------------

_PG_CALL = "SELECT * FROM imserver_write_batch($1, $2, $3, $4, $5, $6, $7, $8)"


class PostgresBatchStore(BatchStore):
    """The batch as one call of ``imserver_write_batch`` on a connection kept for the writer.

    Keeping the connection saves the pool's checkout ping (a round trip) per
    batch; a connection that fails is thrown away and the next batch takes a new one.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn = None  # the SQLAlchemy AsyncConnection holding the pooled connection
        self._driver = None  # its asyncpg.Connection

    async def _connection(self):
        if self._driver is None:
            self._conn = await self.db.engine.connect()
            self._driver = (await self._conn.get_raw_connection()).driver_connection
        return self._driver

    async def _store(self, unique: list[NewMessage], hook: BeforeCommit | None) -> list[Stored]:
        import asyncpg

        args = (
            [m.sender_id for m in unique],
            [m.client_msg_id for m in unique],
            [m.conversation_id for m in unique],
            [m.body for m in unique],
            [m.status for m in unique],
            [m.created_at for m in unique],
            [j for j, m in enumerate(unique, 1) for _ in m.recipients],
            [u for m in unique for u in m.recipients],
        )
        try:
            driver = await self._connection()
            if hook is None:
                rows = await driver.fetch(_PG_CALL, *args)
                return _pg_results(unique, rows)
            async with driver.transaction():
                results = _pg_results(unique, await driver.fetch(_PG_CALL, *args))
                await hook(results)
            return results
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.DeadlockDetectedError) as exc:
            # A race with another node's writer over the same sends: the writer
            # retries, and finds the other's results.
            raise KeyRace("a send in the batch was stored by another writer meanwhile") from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ConnectionError) as exc:
            if not isinstance(exc, asyncpg.PostgresError) or isinstance(exc, asyncpg.PostgresConnectionError):
                await self._discard()
            raise Unavailable("the database is unavailable, try again") from exc
        except Exception:
            await self._discard()  # unknown state (a cancelled call mid-protocol): start afresh
            raise

    async def _discard(self) -> None:
        conn, self._conn, self._driver = self._conn, None, None
        if conn is not None:
            try:
                await conn.invalidate()
                await conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass

    async def close(self) -> None:
        conn, self._conn, self._driver = self._conn, None, None
        if conn is not None:
            await conn.close()


def _pg_results(unique: list[NewMessage], rows) -> list[Stored]:
    out: list[Stored | None] = [None] * len(unique)
    for ord_, mid, duplicate, user_id, seq, conv, at, status in rows:
        i = ord_ - 1
        r = out[i]
        if r is None:
            r = out[i] = Stored(mid, conv, at, status, duplicate, seq if duplicate else None, {})
        if user_id is not None and not duplicate:
            r.seqs[user_id] = seq
            if user_id == unique[i].sender_id:
                r.sender_seq = seq
    missing = [i for i, r in enumerate(out) if r is None]
    if missing:
        raise Unavailable(f"the batch function returned no result for {len(missing)} messages")
    return out  # type: ignore[return-value]
