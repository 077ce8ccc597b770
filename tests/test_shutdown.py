"""SIGTERM on a real ``imserver serve``: every client gets a notice and 1001, no acked message is lost.

The node runs as a subprocess (tests/cluster.py, one node, the in-process
broker) on PostgreSQL and on SQLite. Clients keep sending while the signal
arrives; afterwards every message that was acknowledged must be in the
database, every client must have seen the ``shutdown`` notice before its
close, and the process must have exited within the grace period.

``IMSERVER_TEST_SHUTDOWN_CLIENTS`` raises the number of connected clients (the
figure in docs/operations.md was measured with 1000).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass

import pytest
import websockets
from sqlalchemy import func, select

from imserver.client import Client, ClientError
from imserver.gateway.protocol import Notice
from imserver.store.db import Database
from imserver.store.tables import messages

from .cluster import Cluster
from .test_cluster import verified_users

CLIENTS = int(os.environ.get("IMSERVER_TEST_SHUTDOWN_CLIENTS", "12"))
SENDERS = 12  # clients that keep sending; the others are connected and idle
CONNECTING = 50  # clients authenticating at once (more would wait out the 10 s auth timeout on 2 cores)
GRACE_S = 10.0  # IMSERVER_SHUTDOWN_GRACE_SECONDS for the node
# Beyond the grace period: the interpreter's own exit (generous, not a timing claim).
EXIT_SLACK_S = 5.0
SENDING_S = 0.3  # how long the clients keep sending after each has had an ack, before the signal


class SqliteCluster(Cluster):
    """The same node, on a SQLite file instead of a PostgreSQL schema."""

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.workdir / 'imserver.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
async def node_cluster(request, tmp_path):
    if request.param == "sqlite":
        cluster = SqliteCluster(tmp_path, size=1, broker_url="memory://", schema="unused")
    else:
        cluster = Cluster(tmp_path, size=1, broker_url="memory://")
    cluster.env_extra = {"IMSERVER_SHUTDOWN_GRACE_SECONDS": str(GRACE_S)}
    cluster.log_level = "info"  # the shutdown lines are read
    async with cluster:
        yield cluster


@dataclass
class Sender:
    client: Client
    to_user: int
    acked: list[int]
    first: asyncio.Event  # set at the first ack: the node is warm

    async def run(self) -> None:
        """Send until the connection goes; keep the id of every accepted ack."""
        n = 0
        # The connection goes: the SDK's error, or the socket's own when a send meets the close.
        with contextlib.suppress(ClientError, asyncio.TimeoutError, ConnectionError, websockets.ConnectionClosed):
            while True:
                n += 1
                ack = await self.client.send(f"m{n}", to_user=self.to_user)
                assert ack.status == "accepted", ack
                self.acked.append(ack.message_id)
                self.first.set()


@pytest.mark.slow  # a server process per backend
async def test_sigterm_notices_every_client_closes_1001_and_loses_no_ack(node_cluster):
    node = node_cluster.nodes[0]
    alice, bob = await verified_users(node_cluster, 2, register_on=node, review_on=node)
    pairs = [(alice, bob), (bob, alice)]
    gate = asyncio.Semaphore(CONNECTING)

    async def connect(i: int) -> Client:
        async with gate:
            return await Client.connect(node.ws_url, pairs[i % 2][0]["token"], timeout=30)

    clients = await asyncio.gather(*(connect(i) for i in range(CLIENTS)))
    senders = [Sender(c, pairs[i % 2][1]["id"], [], asyncio.Event()) for i, c in enumerate(clients[:SENDERS])]
    tasks = [asyncio.create_task(s.run()) for s in senders]
    await asyncio.wait_for(asyncio.gather(*(s.first.wait() for s in senders)), 60)
    await asyncio.sleep(SENDING_S)

    signalled = time.monotonic()
    node.proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(node.proc.wait, GRACE_S + EXIT_SLACK_S)
    took = time.monotonic() - signalled
    closes = await asyncio.gather(*(c.wait_closed(timeout=30) for c in clients))
    await asyncio.gather(*tasks)

    # uvicorn re-raises the signal once it has shut down cleanly (status 143 in a shell).
    assert code in (0, -signal.SIGTERM), node.log_tail()
    assert took < GRACE_S + EXIT_SLACK_S
    print(f"\n{CLIENTS} clients: SIGTERM to exit in {took:.2f} s")
    assert closes == [1001] * CLIENTS
    for c in clients:
        notices = [e for e in _drain(c.events) if isinstance(e, Notice)]
        assert [n.kind for n in notices] == ["shutdown"], notices
    acked = [m for s in senders for m in s.acked]
    assert acked, "no send was acknowledged before the signal"
    db = Database.from_url(node_cluster.database_url)
    try:
        async with db.read() as conn:
            stored = (await conn.execute(select(func.count()).where(messages.c.id.in_(acked)))).scalar_one()
    finally:
        await db.dispose()
    assert stored == len(set(acked))
    log = node.log_path.read_text()
    assert "closing %d WebSocket connections" % CLIENTS in log or f"closing {CLIENTS} WebSocket" in log, log[-2000:]


def _drain(queue: asyncio.Queue) -> list:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out
