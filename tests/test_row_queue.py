"""The queue behind the network log and the decision log: order, batches, retries, the cap.

Its database side is tested where it is used (test_access_log.py,
test_decision_log.py, on SQLite and PostgreSQL); here the write is a list, to
pin down what the queue itself promises.
"""

from __future__ import annotations

import asyncio

from imserver.services.row_queue import RowQueue


async def test_rows_are_written_in_order_in_batches_of_at_most_batch_rows():
    written: list[list[dict]] = []

    async def write(rows):
        written.append(rows)

    q = RowQueue("t", write, batch_rows=4)
    for i in range(10):
        q.add({"i": i})
    await q.stop()
    assert [len(b) for b in written] == [4, 4, 2] and q.writes == 3
    assert [r["i"] for b in written for r in b] == list(range(10))


async def test_a_refused_batch_goes_back_to_the_head_and_is_written_later(monkeypatch):
    monkeypatch.setattr("imserver.services.row_queue.RETRY_FIRST_SECONDS", 0.01)
    written: list[int] = []
    refusals = 2

    async def write(rows):
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise OSError("database away")
        written.extend(r["i"] for r in rows)

    q = RowQueue("t", write, batch_rows=3)
    for i in range(5):
        q.add({"i": i})
    for _ in range(200):
        await asyncio.sleep(0.01)
        if q.queued == 0:
            break
    assert written == [0, 1, 2, 3, 4] and refusals == 0


async def test_past_the_cap_the_oldest_are_dropped_and_counted():
    written: list[int] = []
    drops = []

    async def write(rows):
        written.extend(r["i"] for r in rows)

    q = RowQueue("t", write, max_queued=3, on_drop=lambda: drops.append(1))
    for i in range(5):  # no await between: the writer has not run yet
        q.add({"i": i})
    await q.stop()
    assert written == [2, 3, 4] and q.dropped == 2 and len(drops) == 2


async def test_a_lingering_queue_waits_for_more_rows_unless_a_batch_fills():
    written: list[int] = []

    async def write(rows):
        written.append(len(rows))

    q = RowQueue("t", write, batch_rows=3, linger=5.0)
    q.add({})
    await asyncio.sleep(0.05)
    assert written == []  # lingering for more
    q.add({})
    q.add({})  # a full batch: written at once
    for _ in range(100):
        await asyncio.sleep(0.01)
        if written:
            break
    assert written == [3]
    await q.stop()
