"""Several batches in flight (PostgreSQL lanes): each sender's order and every inbox's gap-free order hold.

Six senders write at once to one shared recipient and to a group of all of
them, so lanes contend for the same counter rows. Every recipient's inbox must
be gap-free from 1, hold every acknowledged message once, and show each
sender's messages in the order they were sent.
"""

from __future__ import annotations

import asyncio

from imserver.client import Client

from .helpers import register

SENDERS = 6
PER_SENDER = 40


async def test_concurrent_senders_keep_their_order_and_inboxes_stay_gap_free(server, client, backend):
    writer = server.services.messaging.writer
    assert writer.lanes == (1 if backend == "sqlite" else server.services.settings.batch_lanes)
    sink = await register(client, verified=True)
    senders = [await register(client, verified=True) for _ in range(SENDERS)]
    r = await client.post(
        "/api/v1/groups", json={"name": "lanes", "members": [u["id"] for u in senders[1:]]},
        headers=senders[0]["headers"],
    )
    group = r.json()["id"]
    clients = [await Client.connect(server.ws_url, u["token"]) for u in senders]
    try:
        async def pump(c: Client, index: int) -> None:
            futures = []
            for i in range(PER_SENDER):
                to = {"to_user": sink["id"]} if i % 2 else {"to_group": group}
                futures.append(await c.send_nowait(f"{index}:{i}", **to))
            acks = await asyncio.gather(*futures)
            assert all(a.status == "accepted" for a in acks), acks

        await asyncio.gather(*(pump(c, i) for i, c in enumerate(clients)))
    finally:
        for c in clients:
            await c.close()

    for user in [sink, *senders]:
        reader = await Client.connect(server.ws_url, user["token"])
        try:
            await reader.sync(inbox_after=0)
            got = []
            while reader.pending_messages():
                got.append(await reader.next_message(1))
        finally:
            await reader.close()
        # The sink gets every direct message; a sender every group message and its own direct ones.
        half = PER_SENDER // 2
        assert len(got) == (SENDERS * half if user is sink else SENDERS * half + half)
        assert [m.seq for m in got] == list(range(1, len(got) + 1)), "gap-free from 1, in order"
        assert len({m.message_id for m in got}) == len(got), "each message once"
        by_sender: dict[str, list[int]] = {}
        for m in got:
            index, i = m.body.split(":")
            by_sender.setdefault(index, []).append(int(i))
        for index, seen in by_sender.items():
            assert seen == sorted(seen), f"sender {index}'s messages out of order for user {user['id']}"
