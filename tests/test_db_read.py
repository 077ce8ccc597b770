"""``Database.read()``: read-only units of work beside the writer.

On SQLite they run on reader connections (WAL lets them read while the single
writer connection commits), so a reconnect storm's token and cursor reads do
not queue behind the message batches; on PostgreSQL, on the ordinary pool.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import OperationalError

from imserver.domain.errors import Unavailable
from imserver.store.tables import users

T0 = datetime(2026, 11, 29, tzinfo=UTC)


def _user(uid: int) -> dict:
    return dict(id=uid, handle=f"r{uid}", nickname="n", password_hash="x", status="active",
                realname_status="none", created_at=T0)


async def test_a_read_sees_what_was_committed_before_it(db):
    async with db.transaction() as conn:
        await conn.execute(insert(users).values(**_user(7001)))
    async with db.read() as conn:
        assert (await conn.execute(select(users.c.handle).where(users.c.id == 7001))).scalar() == "r7001"


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_reads_run_beside_a_writer_that_holds_the_write_lock(db, backend):
    assert db.reader is not None
    async with db.transaction() as conn:
        await conn.execute(insert(users).values(**_user(7002)))
    holding = asyncio.Event()
    release = asyncio.Event()

    async def writer():
        async with db.transaction() as conn:  # BEGIN IMMEDIATE: the file's write lock
            await conn.execute(insert(users).values(**_user(7003)))
            holding.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await holding.wait()
    # The single writer connection is busy; a read does not wait for it, and
    # sees the last committed state, not the uncommitted row.
    async with asyncio.timeout(2):
        async with db.read() as conn:
            ids = set((await conn.execute(select(users.c.id).where(users.c.id.in_([7002, 7003])))).scalars())
    assert ids == {7002}
    release.set()
    await task
    async with db.read() as conn:
        assert (await conn.execute(select(users.c.id).where(users.c.id == 7003))).scalar() == 7003


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_sqlite_reader_cannot_write(db, backend):
    with pytest.raises(Unavailable) as refused:
        async with db.read() as conn:
            await conn.execute(insert(users).values(**_user(7004)))
    assert isinstance(refused.value.__cause__, OperationalError)
    assert "readonly" in str(refused.value.__cause__)
    async with db.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM users WHERE id = 7004"))).scalar() == 0
