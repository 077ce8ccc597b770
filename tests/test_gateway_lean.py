"""The per-connection structures kept small for idle memory, and still correct under load.

An idle authenticated connection holds no deque, no Event and no Semaphore of
its own (docs/benchmarks.md, idle): the received-event queue, the outbox and the
bound on sends in flight make theirs only while something waits.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from imserver.gateway import connection, protocol
from imserver.gateway.outbox import Outbox
from imserver.gateway.ws_limits import EventQueue

from .helpers import register


async def test_event_queue_keeps_order_wakes_its_reader_and_lets_go_of_its_deque():
    q = EventQueue()
    assert q.empty() and q.qsize() == 0
    q.put_nowait(1)
    q.put_nowait(2)
    assert q.qsize() == 2 and not q.empty()
    assert [await q.get(), await q.get()] == [1, 2]
    assert q.empty() and q._items is None  # drained: no deque held

    reader = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not reader.done()  # waits for an event
    with pytest.raises(RuntimeError):  # the protocol has one reader
        await q.get()
    q.put_nowait("late")
    assert await reader == "late"

    cancelled = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    q.put_nowait(3)  # a cancelled wait leaves the queue usable
    assert await q.get() == 3


def test_outbox_holds_no_deque_while_empty_and_keeps_its_order_and_bound():
    box = Outbox(limit_bytes=10)
    assert len(box) == 0 and box.pop_many(100) == [] and box._frames is None
    assert box.push(b"aaaa") and box.push(b"t", droppable=True) and box.push(b"bbbb")
    assert len(box) == 3 and box.size == 9
    assert box.pop_many(5) == [b"aaaa", b"t"]  # whole frames, up to about max_bytes
    assert box.push(b"t", droppable=True) and box.push(b"cc")
    assert not box.push(b"ddddd")  # past the bound even without the typing frame (dropped): too slow
    assert box.pop_many(100) == [b"bbbb", b"cc"] and box.size == 0 and box._frames is None


async def test_sends_past_the_in_flight_bound_wait_and_are_all_acknowledged(server, client, monkeypatch):
    """The reader stops at the bound until commits free room; nothing is lost or reordered."""
    monkeypatch.setattr(connection, "MAX_INFLIGHT_SENDS", 3)
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    n = 120
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": alice["token"]}))
        assert json.loads(await ws.recv())["type"] == "hello"
        for i in range(n):  # all at once: up to 3 await their commit, the rest wait unread
            send = protocol.Send(client_msg_id=f"m{i}", to=protocol.Recipient("user", bob["id"]), body=f"#{i}")
            await ws.send(protocol.encode_client(send).decode())
        acks = []
        while len(acks) < n:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if frame["type"] == "ack":
                acks.append(frame)
    assert [a["client_msg_id"] for a in acks] == [f"m{i}" for i in range(n)]
    assert {a["status"] for a in acks} == {"accepted"}
    seqs = [a["seq"] for a in acks]
    assert seqs == sorted(seqs) and len(set(seqs)) == n
