"""The SDK's resume against a scripted server: live frames that race the `sync`.

The server goes live right after `hello`; a resuming client's `sync` reaches it
a round trip later, so live entries ahead of the client's cursor can arrive
before the replay that fills the hole (seen in tests/test_cluster.py when a
node dies and its clients resume elsewhere under load). The replay resends
them in order; the client must neither count a gap nor move its cursor past
the hole, or the entries in the hole are never delivered.

The script is a real WebSocket server on 127.0.0.1 speaking the wire protocol
(gateway/protocol.py), so the race happens every time, not by chance.
"""

from __future__ import annotations

import websockets

from imserver.client import Client
from imserver.gateway import protocol

from .conftest import free_port

NOW = "2026-01-01T00:00:00+00:00"


def msg(seq: int) -> str:
    frame = protocol.Msg(
        seq=seq, message_id=100 + seq, conversation_id=1, conversation_kind="direct", sender_id=2,
        sender_nickname="Bob", body=f"m{seq}", client_msg_id=f"c{seq}", sent_at=NOW,
    )
    return protocol.encode(frame).decode()


def hello(inbox_seq: int) -> str:
    frame = protocol.Hello(user_id=1, node="script", inbox_seq=inbox_seq, received_seq=0, server_time=NOW)
    return protocol.encode(frame).decode()


async def scripted_server(inbox_seq: int, live_early: list[int], live_after: list[int]):
    """hello, then `live_early` at once; on `sync`, the replay up to the end, `synced`, then `live_after`."""

    end = max([inbox_seq, *live_early])

    async def replay(ws, after: int, ref: str | None) -> None:
        for seq in range(after + 1, end + 1):
            await ws.send(msg(seq))
        await ws.send(protocol.encode(protocol.Synced(inbox_seq=end, complete=True, ref=ref)).decode())
        for seq in live_after:
            await ws.send(msg(seq))

    async def handler(ws) -> None:
        async for data in ws:
            frame = protocol.decode(data)
            if isinstance(frame, protocol.Auth):
                await ws.send(hello(inbox_seq))
                if frame.inbox_after is not None:  # resume in the auth frame: replay first
                    await replay(ws, frame.inbox_after, frame.id)
                    continue
                for seq in live_early:  # before a later sync can have arrived
                    await ws.send(msg(seq))
            elif isinstance(frame, protocol.Sync):
                await replay(ws, frame.inbox_after, frame.id)

    port = free_port()
    server = await websockets.serve(handler, "127.0.0.1", port)
    return server, f"ws://127.0.0.1:{port}/ws"


async def received(client: Client, count: int) -> list[int]:
    return [(await client.next_message(5)).seq for _ in range(count)]


async def test_reconnect_fills_the_hole_although_live_frames_come_first():
    server, url = await scripted_server(inbox_seq=10, live_early=[11, 12], live_after=[13])
    try:
        client = Client(url, "token")
        client.cursor = 5  # where an earlier connection left off
        await client.reconnect()
        assert await received(client, 8) == list(range(6, 14))
        assert (client.gaps, client.duplicates, client.cursor) == (0, 0, 13)
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_connect_with_a_cursor_too():
    server, url = await scripted_server(inbox_seq=4, live_early=[5], live_after=[6])
    try:
        client = await Client.connect(url, "token", inbox_after=2)
        assert await received(client, 4) == [3, 4, 5, 6]
        assert (client.gaps, client.duplicates) == (0, 0)
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_fresh_connect_starts_live_at_the_inbox_end():
    server, url = await scripted_server(inbox_seq=7, live_early=[8, 9], live_after=[])
    try:
        client = await Client.connect(url, "token")
        assert await received(client, 2) == [8, 9]
        assert (client.gaps, client.duplicates, client.cursor) == (0, 0, 9)
        assert client.pending_messages() == 0
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_sync_after_live_frames_still_fills_the_hole():
    """The race the auth cursor avoids, still handled for a `sync` sent mid-connection."""
    server, url = await scripted_server(inbox_seq=10, live_early=[11, 12], live_after=[13])
    try:
        client = await Client.connect(url, "token")  # fresh: cursor at the inbox end (10)
        assert await received(client, 2) == [11, 12]
        await client.sync(5)
        assert await received(client, 8) == list(range(6, 14))
        await client.close()
    finally:
        server.close()
        await server.wait_closed()
