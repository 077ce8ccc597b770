"""The writer's batch in one trip (store/batch.py), on SQLite and PostgreSQL.

The same rules as the rest of the store, checked against what is in the tables
afterwards: retried sends come back as duplicates with their first result and
write nothing, ids follow send order, each recipient's positions are gap-free
in send order, held messages get no inbox entries, a missing counter row is
made, and a unique-key race surfaces as the KeyRace the writer retries.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, select

from imserver.store.batch import KeyRace, batch_store
from imserver.store.messages import DELIVERED, HELD, NewMessage
from imserver.store.tables import conversations, inbox, inbox_counters, messages, users

T0 = datetime(2026, 11, 29, 6, 0, 0, 123456, tzinfo=UTC)


async def _world(db, n_users: int = 4) -> list[int]:
    """Users 9001.. with counter rows, and conversation 9001 made by the first."""
    ids = [9001 + i for i in range(n_users)]
    async with db.transaction() as conn:
        await conn.execute(
            insert(users),
            [
                dict(id=u, handle=f"b{u}", nickname=f"nick{u}", password_hash="x", status="active",
                     realname_status="verified", created_at=T0)
                for u in ids
            ],
        )
        await conn.execute(insert(conversations).values(id=9001, kind="group", created_by=ids[0], created_at=T0))
        await conn.execute(insert(inbox_counters), [dict(user_id=u, last_seq=0, received_seq=0) for u in ids])
    return ids


def _msg(sender: int, cid: str, recipients, *, status: str = DELIVERED, at: datetime = T0) -> NewMessage:
    return NewMessage(sender, cid, 9001, tuple(recipients), f"body of {cid}", at, status=status)


async def _inbox(db, user: int) -> list[tuple[int, int]]:
    async with db.transaction() as conn:
        rows = await conn.execute(select(inbox.c.seq, inbox.c.message_id).where(inbox.c.user_id == user).order_by(inbox.c.seq))
        return [tuple(r) for r in rows]


async def _counter(db, user: int) -> int:
    async with db.transaction() as conn:
        return (await conn.execute(select(inbox_counters.c.last_seq).where(inbox_counters.c.user_id == user))).scalar()


@pytest.fixture
async def store(db):
    s = batch_store(db)
    yield s
    await s.close()


async def test_a_batch_is_stored_in_send_order_with_gap_free_positions(db, store):
    a, b, c, _ = await _world(db)
    batch = [_msg(a, "m1", (a, b)), _msg(b, "m2", (a, b, c)), _msg(a, "m3", (a, c), at=T0 + timedelta(seconds=1))]
    out = await store.write(batch)

    assert [r.duplicate for r in out] == [False, False, False]
    assert out[0].message_id < out[1].message_id < out[2].message_id
    assert out[0].seqs == {a: 1, b: 1} and out[0].sender_seq == 1
    assert out[1].seqs == {a: 2, b: 2, c: 1} and out[1].sender_seq == 2
    assert out[2].seqs == {a: 3, c: 2} and out[2].sender_seq == 3
    assert out[2].created_at == T0 + timedelta(seconds=1)
    assert await _inbox(db, a) == [(1, out[0].message_id), (2, out[1].message_id), (3, out[2].message_id)]
    assert await _inbox(db, c) == [(1, out[1].message_id), (2, out[2].message_id)]
    assert [await _counter(db, u) for u in (a, b, c)] == [3, 2, 2]

    # The next batch continues every counter.
    [nxt] = await store.write([_msg(c, "m4", (b, c))])
    assert nxt.seqs == {b: 3, c: 3}

    # What SQLAlchemy reads back is what was written (the SQLite path writes raw text).
    async with db.transaction() as conn:
        row = (await conn.execute(select(messages).where(messages.c.id == out[2].message_id))).mappings().one()
    assert (row["sender_id"], row["client_msg_id"], row["body"], row["status"], row["created_at"]) == (
        a, "m3", "body of m3", DELIVERED, T0 + timedelta(seconds=1)
    )


async def test_a_retry_gets_its_first_result_and_writes_nothing(db, store):
    a, b, *_ = await _world(db)
    [first] = await store.write([_msg(a, "once", (a, b))])
    retry, new = await store.write([_msg(a, "once", (a, b), at=T0 + timedelta(minutes=5)), _msg(b, "other", (a, b))])

    assert retry.duplicate and retry.message_id == first.message_id
    assert retry.sender_seq == first.sender_seq == 1
    assert retry.created_at == first.created_at == T0  # the stored time, not the retry's
    assert retry.seqs == {}
    assert not new.duplicate and new.seqs == {a: 2, b: 2}
    assert [s for s, _ in await _inbox(db, a)] == [1, 2]


async def test_a_key_repeated_inside_a_batch_is_stored_once(db, store):
    a, b, *_ = await _world(db)
    out = await store.write([_msg(a, "twice", (a, b)), _msg(b, "x", (a, b)), _msg(a, "twice", (a, b))])
    assert [r.duplicate for r in out] == [False, False, True]
    assert out[2].message_id == out[0].message_id and out[2].sender_seq == out[0].sender_seq == 1
    assert await _inbox(db, b) == [(1, out[0].message_id), (2, out[1].message_id)]


async def test_held_messages_get_an_id_and_no_inbox_entry(db, store):
    a, b, *_ = await _world(db)
    held, sent = await store.write([_msg(a, "h", (a, b), status=HELD), _msg(a, "d", (a, b))])
    assert held.status == HELD and held.seqs == {} and held.sender_seq is None and held.message_id
    assert sent.seqs == {a: 1, b: 1}
    assert await _inbox(db, b) == [(1, sent.message_id)]
    # Retried while held: a duplicate with no position.
    [again] = await store.write([_msg(a, "h", (a, b), status=HELD)])
    assert again.duplicate and again.status == HELD and again.sender_seq is None


async def test_a_missing_counter_row_is_made(db, store):
    a, b, *_ = await _world(db)
    async with db.transaction() as conn:
        await conn.execute(delete(inbox_counters).where(inbox_counters.c.user_id == b))
    [r] = await store.write([_msg(a, "m", (a, b))])
    assert r.seqs == {a: 1, b: 1}
    assert await _counter(db, b) == 1


async def test_before_commit_sees_the_results_and_a_failure_there_rolls_back(db, store):
    a, b, *_ = await _world(db)
    seen = []

    async def hook(results):
        seen.append([(r.message_id, r.sender_seq) for r in results])

    [r] = await store.write([_msg(a, "hooked", (a, b))], hook)
    assert seen == [[(r.message_id, 1)]]
    assert await _inbox(db, a) == [(1, r.message_id)]

    async def boom(results):
        raise RuntimeError("killed between ack and commit")

    with pytest.raises(RuntimeError):
        await store.write([_msg(a, "lost", (a, b))], boom)
    assert await _inbox(db, a) == [(1, r.message_id)]  # nothing of the failed batch
    [after] = await store.write([_msg(a, "lost", (a, b))])
    assert not after.duplicate and after.sender_seq == 2


async def test_a_constraint_failure_is_a_key_race_and_writes_nothing(db, store):
    a, b, *_ = await _world(db)
    bad = NewMessage(a, "nowhere", 424242, (a, b), "to a conversation that does not exist", T0)
    with pytest.raises(KeyRace):
        await store.write([_msg(a, "fine", (a, b)), bad])
    assert await _inbox(db, a) == []
    [r] = await store.write([_msg(a, "fine", (a, b))])  # the store is usable afterwards
    assert r.seqs == {a: 1, b: 1}


@pytest.mark.parametrize("backend", ["postgres"])  # SQLite has one writer: its batches never overlap
async def test_the_same_send_on_two_nodes_at_once_is_a_key_race_for_the_later(db, store, backend):
    """Two writers (as on two nodes) store the same retried send concurrently: the
    second looked the key up before the first committed, and must fail on the unique
    key (the writer then retries and finds the first's result)."""
    a, b, *_ = await _world(db)
    other = batch_store(db)
    inside = asyncio.Event()

    async def hold_the_commit(results):
        inside.set()
        await asyncio.sleep(0.3)

    try:
        mine = asyncio.create_task(store.write([_msg(a, "race", (a, b))], hold_the_commit))
        await inside.wait()
        with pytest.raises(KeyRace):
            await other.write([_msg(a, "race", (a, b))])
        [first] = await mine
        [retry] = await other.write([_msg(a, "race", (a, b))])
        assert retry.duplicate and retry.message_id == first.message_id
    finally:
        await other.close()
