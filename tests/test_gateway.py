"""The WebSocket gateway over a real server on 127.0.0.1, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from imserver.client import Client, ClientError
from imserver.gateway import protocol

from .helpers import register


async def connect(server, user, **kw) -> Client:
    return await Client.connect(server.ws_url, user["token"], **kw)


async def test_direct_message_reaches_every_device(server, client):
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    a = await connect(server, alice)
    b1, b2 = await connect(server, bob), await connect(server, bob)
    a2 = await connect(server, alice)  # the sender's other device
    try:
        ack = await a.send("hello bob", to_user=bob["id"])
        assert ack.status == "accepted" and ack.seq == 1 and ack.message_id
        for device in (b1, b2):
            m = await device.next_message()
            assert (m.body, m.sender_id, m.seq, m.conversation_kind) == ("hello bob", alice["id"], 1, "direct")
            assert m.sender_nickname == alice["handle"].title()
        mine = await a2.next_message()
        assert mine.message_id == ack.message_id and mine.seq == ack.seq
    finally:
        for c in (a, b1, b2, a2):
            await c.close()


async def test_group_message_reaches_every_member(server, client):
    users = [await register(client, verified=True) for _ in range(4)]
    owner = users[0]
    r = await client.post(
        "/api/v1/groups", json={"name": "team", "members": [u["id"] for u in users[1:]]}, headers=owner["headers"]
    )
    assert r.status_code == 201
    group_id = r.json()["id"]
    conns = [await connect(server, u) for u in users]
    try:
        ack = await conns[1].send("hi all", to_group=group_id)
        assert ack.status == "accepted" and ack.seq == 1  # the ack holds the sender's own inbox position
        for c in conns[:1] + conns[2:]:
            m = await c.next_message()
            assert m.body == "hi all" and m.conversation_id == group_id and m.conversation_kind == "group"
        # Only members may send.
        outsider = await register(client, verified=True)
        o = await connect(server, outsider)
        ack = await o.send("let me in", to_group=group_id)
        assert ack.status == "rejected" and ack.reason == "not_a_member"
        await o.close()
        # REST history and members.
        r = await client.get(f"/api/v1/conversations/{group_id}/messages", headers=users[2]["headers"])
        assert [m["body"] for m in r.json()["messages"]] == ["hi all"]
        r = await client.get(f"/api/v1/groups/{group_id}/members", headers=owner["headers"])
        assert sorted(m["id"] for m in r.json()) == sorted(u["id"] for u in users)
        r = await client.get(f"/api/v1/conversations/{group_id}/messages", headers=outsider["headers"])
        assert r.status_code == 403 and r.json()["code"] == "not_a_member"
    finally:
        for c in conns:
            await c.close()


async def test_group_cap(server, client, settings):
    owner = await register(client, verified=True)
    others = [await register(client, verified=True) for _ in range(3)]
    server.services.messaging.group_cap = 3
    r = await client.post(
        "/api/v1/groups", json={"name": "big", "members": [u["id"] for u in others]}, headers=owner["headers"]
    )
    assert r.status_code == 409 and r.json()["code"] == "group_full"
    r = await client.post("/api/v1/groups", json={"name": "ok", "members": [others[0]["id"]]}, headers=owner["headers"])
    gid = r.json()["id"]
    r = await client.post(f"/api/v1/groups/{gid}/members", json={"user_ids": [others[1]["id"]]}, headers=owner["headers"])
    assert r.status_code == 200 and r.json()["added"] == [others[1]["id"]]
    r = await client.post(f"/api/v1/groups/{gid}/members", json={"user_ids": [others[2]["id"]]}, headers=owner["headers"])
    assert r.status_code == 409 and r.json()["code"] == "group_full"


async def test_idempotent_retry_stores_once(server, client):
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    a, b = await connect(server, alice), await connect(server, bob)
    try:
        first = await a.send("once", to_user=bob["id"], client_msg_id="m-1")
        again = await a.send("once", to_user=bob["id"], client_msg_id="m-1")
        assert again.duplicate and not first.duplicate
        assert (again.message_id, again.seq) == (first.message_id, first.seq)
        assert (await b.next_message()).body == "once"
        with pytest.raises(asyncio.TimeoutError):
            await b.next_message(timeout=0.3)
        r = await client.get(f"/api/v1/conversations/{first.conversation_id}/messages", headers=bob["headers"])
        assert len(r.json()["messages"]) == 1
        # After a reconnect too (no time window).
        await a.reconnect()
        third = await a.send("once", to_user=bob["id"], client_msg_id="m-1")
        assert third.duplicate and third.message_id == first.message_id
    finally:
        await a.close()
        await b.close()


async def test_resume_after_disconnect(server, client):
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    a, b = await connect(server, alice), await connect(server, bob)
    try:
        await a.send("before", to_user=bob["id"])
        assert (await b.next_message()).body == "before"
        await b.close()
        for i in range(25):
            await a.send(f"while away {i}", to_user=bob["id"])
        await b.reconnect()
        got = [(await b.next_message()).body for _ in range(25)]
        assert got == [f"while away {i}" for i in range(25)]
        assert b.gaps == 0 and b.duplicates == 0 and b.cursor == 26
        await a.send("live again", to_user=bob["id"])
        assert (await b.next_message()).seq == 27
    finally:
        await a.close()
        await b.close()


async def test_resume_while_sender_keeps_sending(server, client):
    """Replay and live hand over without gap or duplicate while messages keep arriving."""
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    a = await connect(server, alice)
    total = 300
    try:
        sender_done = asyncio.Event()

        async def keep_sending() -> None:
            futures = []
            for i in range(total):
                futures.append(await a.send_nowait(f"m{i}", to_user=bob["id"]))
                if i % 20 == 0:
                    await asyncio.sleep(0.005)
            acks = await asyncio.gather(*futures)
            assert all(x.status == "accepted" for x in acks)
            sender_done.set()

        task = asyncio.create_task(keep_sending())
        await asyncio.sleep(0.05)  # some are stored before bob connects
        b = await connect(server, bob, inbox_after=0)
        bodies = [(await b.next_message()).body for _ in range(total)]
        await task
        assert bodies == [f"m{i}" for i in range(total)]
        assert b.gaps == 0 and b.duplicates == 0
        with pytest.raises(asyncio.TimeoutError):
            await b.next_message(timeout=0.3)
        await b.close()
    finally:
        await a.close()


async def test_inbox_seqs_are_gap_free_under_concurrent_senders(server, client):
    target = await register(client, verified=True)
    senders = [await register(client, verified=True) for _ in range(5)]
    conns = [await connect(server, s) for s in senders]
    try:
        futures = [await c.send_nowait(f"{i}-{j}", to_user=target["id"]) for j in range(40) for i, c in enumerate(conns)]
        acks = await asyncio.gather(*futures)
        assert all(a.status == "accepted" for a in acks)
        t = await connect(server, target, inbox_after=0)
        seqs = [(await t.next_message()).seq for _ in range(200)]
        assert seqs == list(range(1, 201))
        await t.close()
    finally:
        for c in conns:
            await c.close()


async def test_received_moves_the_cursor(server, client):
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    a, b = await connect(server, alice), await connect(server, bob)
    try:
        for i in range(3):
            await a.send(f"{i}", to_user=bob["id"])
        for _ in range(3):
            await b.next_message()
        await b.received()
        await b.ping()  # frames are handled in order: the ping's pong follows the received
        b2 = await connect(server, bob)
        assert b2.hello.received_seq == 3 and b2.hello.inbox_seq == 3
        await b2.close()
    finally:
        await a.close()
        await b.close()


async def test_read_receipts_and_typing(server, client):
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    a, b = await connect(server, alice), await connect(server, bob)
    try:
        ack = await a.send("read me", to_user=bob["id"])
        await b.next_message()
        await b.read(ack.conversation_id, ack.message_id)
        receipt = await asyncio.wait_for(a.events.get(), 5)
        assert isinstance(receipt, protocol.Receipt)
        assert (receipt.user_id, receipt.message_id) == (bob["id"], ack.message_id)
        await b.typing(ack.conversation_id)
        typing = await asyncio.wait_for(a.events.get(), 5)
        assert isinstance(typing, protocol.TypingEvent) and typing.user_id == bob["id"]
    finally:
        await a.close()
        await b.close()


BAD_FRAMES = [
    ("not json", "bad_json"),
    ('{"type":"send","client_msg_id":"x","to":{"user":1},"body":NaN}', "bad_json"),
    ('{"type":"ping","nonce":"a","nonce":"b"}', "bad_json"),
    ('{"type":"sync","inbox_after":9007199254740993}', "invalid_field"),
    ('{"type":"sync","inbox_after":1.5}', "invalid_field"),
    ('{"type":"teleport"}', "unknown_type"),
    ('{"type":"ping","extra":1}', "unknown_field"),
    ('{"type":"send","client_msg_id":"' + "x" * 65 + '","to":{"user":1},"body":"b"}', "field_too_large"),
    ('{"type":"send","client_msg_id":"x","to":{"user":1,"group":2},"body":"b"}', "invalid_field"),
    ('[1,2,3]', None),
]


async def test_each_bad_frame_gets_an_error_and_the_socket_keeps_working(server, client):
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    a, b = await connect(server, alice), await connect(server, bob)
    try:
        for raw, code in BAD_FRAMES:
            await a.send_raw(raw)
            err = await asyncio.wait_for(a.errors.get(), 5)
            if code:
                assert err.code == code, raw
            await a.ping()  # still serving
        await a.send_raw(b"\x00binary")
        assert (await asyncio.wait_for(a.errors.get(), 5)).code == "binary_frame"
        # A second auth is out of order, and the socket keeps serving.
        await a.send_raw(json.dumps({"type": "auth", "token": alice["token"], "id": "again"}))
        err = await asyncio.wait_for(a.errors.get(), 5)
        assert (err.code, err.ref) == ("out_of_order", "again")
        ack = await a.send("still here", to_user=bob["id"])
        assert ack.status == "accepted"
        assert (await b.next_message()).body == "still here"
    finally:
        await a.close()
        await b.close()


async def test_frames_before_auth_are_out_of_order(server, client):
    user = await register(client, verified=True)
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "ping", "id": "p1"}))
        err = json.loads(await ws.recv())
        assert (err["type"], err["code"], err["ref"]) == ("error", "out_of_order", "p1")
        await ws.send(json.dumps({"type": "auth", "token": user["token"]}))
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello" and hello["user_id"] == user["id"]


async def test_bad_token_closes_with_policy_code(server):
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "nope"}))
        err = json.loads(await ws.recv())
        assert err["code"] == "unauthenticated"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd.code == protocol.CLOSE_POLICY


async def test_auth_timeout(server):
    server.services.settings.auth_timeout_seconds = 0.3
    async with websockets.connect(server.ws_url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == protocol.CLOSE_AUTH_TIMEOUT


async def test_foreign_origin_is_refused(server, client):
    user = await register(client, verified=True)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(server.ws_url, additional_headers={"Origin": "http://evil.example"})
    assert refused.value.response.status_code == 403
    c = await connect(server, user, origin="http://allowed.example")
    assert c.hello.user_id == user["id"]
    await c.close()


async def test_oversized_frame_closes_with_1009(server, client):
    user = await register(client, verified=True)
    c = await connect(server, user)
    await c.send_raw("x" * (server.services.settings.max_frame_bytes + 1))
    assert await c.wait_closed() == protocol.CLOSE_TOO_BIG


async def test_logout_closes_live_sockets(server, client):
    user = await register(client, verified=True)
    c = await connect(server, user)
    r = await client.post("/api/v1/logout", headers=user["headers"])
    assert r.status_code == 204
    assert await c.wait_closed(timeout=1.5) == protocol.CLOSE_REVOKED


async def test_slow_consumer_is_closed_and_others_keep_pace(server, client):
    server.services.settings.outbound_queue_bytes = 64 * 1024
    alice, slow, fast = await register(client, verified=True), await register(client, verified=True), await register(client, verified=True)
    a = await connect(server, alice)
    f = await connect(server, fast)
    # A raw socket that never reads: its TCP window fills, then its outbox.
    raw = await websockets.connect(server.ws_url, max_queue=1, close_timeout=0.5)
    await raw.send(json.dumps({"type": "auth", "token": slow["token"]}))
    raw.transport.pause_reading()
    try:
        body = "x" * 4000
        for i in range(400):
            await a.send_nowait(body, to_user=slow["id"])
            await a.send_nowait(f"fast {i}", to_user=fast["id"])
        got = [(await f.next_message()).body for _ in range(400)]
        assert got == [f"fast {i}" for i in range(400)]
        assert f.gaps == 0
        metric = server.services.metrics.slow_consumers_closed._value.get()
        assert metric >= 1
    finally:
        raw.transport.resume_reading()
        await raw.close()
        await a.close()
        await f.close()
    # The slow user loses nothing: everything is in the inbox.
    s = await connect(server, slow, inbox_after=0)
    bodies = [(await s.next_message()).body for _ in range(400)]
    assert len(bodies) == 400 and s.gaps == 0 and s.duplicates == 0
    await s.close()


async def test_unknown_recipient(server, client):
    user = await register(client, verified=True)
    c = await connect(server, user)
    ack = await c.send("hello?", to_user=999999)
    assert ack.status == "rejected" and ack.reason == "unknown_recipient"
    await c.close()


async def test_sync_returns_synced_with_ref(server, client):
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    a = await connect(server, alice)
    for i in range(3):
        await a.send(f"{i}", to_user=bob["id"])
    b = await connect(server, bob)
    synced = await b.sync(1)
    assert synced.complete and synced.inbox_seq == 3
    assert [(await b.next_message()).seq for _ in range(2)] == [2, 3]
    with pytest.raises(ClientError):
        await b._request(protocol.Read(conversation_id=999, message_id=1, id="r1"), 5)
    await a.close()
    await b.close()
