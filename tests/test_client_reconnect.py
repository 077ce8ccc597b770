"""The SDK reconnects by itself after a node goes away, and resumes from its cursor.

The node is a real ``imserver serve`` (tests/cluster.py, one node, on SQLite
and PostgreSQL) stopped with SIGTERM and started again on the same port.
"""

from __future__ import annotations

import asyncio
import random
import signal

import pytest

from imserver.client import Client
from imserver.client.backoff import Backoff
from imserver.gateway.protocol import CLOSE_GOING_AWAY, CLOSE_REVOKED, Notice

from .helpers import register
from .test_cluster import verified_users
from .test_shutdown import _drain
from .test_shutdown import node_cluster  # noqa: F401 - the fixture: one node, both backends


def test_backoff_is_jittered_exponential_and_capped():
    backoff = Backoff(base=0.1, cap=2.0, rng=random.Random(7))
    for attempt in range(12):
        bound = min(2.0, 0.1 * 2**attempt)
        draws = [backoff.delay(attempt) for _ in range(200)]
        assert all(0.0 <= d <= bound for d in draws)
        assert max(draws) > 0.8 * bound and min(draws) < 0.2 * bound  # spread over the whole range
    assert Backoff(rng=random.Random(1)).delay(10_000) <= Backoff().cap  # no overflow


@pytest.mark.slow  # a server process per backend
async def test_reconnects_after_a_restart_and_resumes_from_its_cursor(node_cluster):  # noqa: F811
    node = node_cluster.nodes[0]
    alice, bob = await verified_users(node_cluster, 2, register_on=node, review_on=node)
    a = await Client.connect(node.ws_url, alice["token"], auto_reconnect=Backoff(base=0.05, cap=0.5))
    b = await Client.connect(node.ws_url, bob["token"])
    try:
        assert (await b.send("before", to_user=alice["id"])).status == "accepted"
        assert (await a.next_message()).body == "before"
        cursor = a.cursor
        node.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(node.proc.wait, 30)
        assert await b.wait_closed() == CLOSE_GOING_AWAY
        assert any(isinstance(e, Notice) and e.kind == "shutdown" for e in _drain(a.events))
        await node_cluster.restart(node)
        b = await Client.connect(node.ws_url, bob["token"])
        bodies = [f"after {i}" for i in range(3)]
        for body in bodies:
            assert (await b.send(body, to_user=alice["id"])).status == "accepted"
        await a.wait_connected(timeout=30)
        got = [(await a.next_message(timeout=10)).body for _ in bodies]
        assert got == bodies  # each once, in order, none of what came before the restart
        assert (a.gaps, a.duplicates, a.reconnects) == (0, 0, 1)
        assert a.cursor == cursor + len(bodies)
        assert a.close_code is None  # connected again
    finally:
        await a.close()
        await b.close()


async def test_no_reconnect_after_a_revoked_token(server, client):
    user = await register(client, verified=True)
    c = await Client.connect(server.ws_url, user["token"], auto_reconnect=True)
    try:
        assert (await client.post("/api/v1/logout", headers=user["headers"])).status_code == 204
        assert await c.wait_closed(timeout=5) == CLOSE_REVOKED
        await asyncio.sleep(0.2)
        assert c.reconnects == 0 and c._reconnecting is None
    finally:
        await c.close()

