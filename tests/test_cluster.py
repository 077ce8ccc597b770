"""Many nodes: real `imserver serve` processes sharing PostgreSQL and Redis.

Each test starts its own deployment with :mod:`tests.cluster`: a PostgreSQL
schema of its own, migrated once, and two nodes on free ports with the same
keys. Most tests share the machine's Redis (a channel prefix of the test's
own); the Redis fault test runs a redis-server of its own that it can kill.
PostgreSQL and Redis only: SQLite cannot be shared by several processes.

Users are set up as production requires them to be before they may send: a
real name submitted on one node and approved by a `reviewer` (created with
`imserver operator create`) on the other, which also shows that both nodes
open each other's sealed identity records (same master keys).

Nothing asserts on elapsed time: every wait is for a condition, with a
generous limit; the measured figures (cross-node latency, how long a change
made through node 1 takes to apply on node 2) are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import websockets

from imserver.client import Client, ClientError
from imserver.gateway import protocol
from imserver.gateway.protocol import Msg, Receipt, TypingEvent
from imserver.services.agreement import SEVEN_BASELINES

from .cluster import Cluster, Node, RedisServer
from .helpers import PASSWORD, register
from .identity_helpers import submit

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

# Generous: a loaded CI machine is slow, and a passing test never waits this long.
WAIT_S = 20.0
# Messages timed for the cross-node latency figure.
LATENCY_SAMPLES = 200


# -- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
async def cluster(tmp_path):
    async with Cluster(tmp_path / "cluster") as c:
        yield c


@pytest.fixture
async def own_redis(tmp_path):
    """A redis-server of this test's own, never the machine's: the test kills it."""
    server = RedisServer(tmp_path / "redis")
    await server.start()
    try:
        yield server
    finally:
        server.stop()


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        await asyncio.sleep(0.01)


async def verified_users(cluster: Cluster, count: int, *, register_on: Node, review_on: Node) -> list[dict]:
    """Register `count` users on one node, approve their real names from the other."""
    reviewer = await cluster.operator("reviewer", review_on)
    async with register_on.http() as http:
        users = [await register(http, verified=False) for _ in range(count)]
        for user in users:
            r = await submit(http, user)
            assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    async with review_on.http() as http:
        r = await http.get("/admin/v1/identity/pending", params={"limit": 100}, headers=reviewer["headers"])
        assert r.status_code == 200, r.text
        items = {i["user_id"]: i for i in r.json()["items"]}
        for user in users:
            item = items[user["id"]]
            # Sealed on one node, opened on the other: the master keys are shared.
            assert not item.get("unreadable") and item["id_number"], item
            r = await http.post(
                f"/admin/v1/identity/{item['identity_id']}/review",
                json={"decision": "approve"},
                headers=reviewer["headers"],
            )
            assert r.status_code == 200 and r.json()["status"] == "verified", r.text
    return users


async def connect(node: Node, user: dict, **kw) -> Client:
    client = await Client.connect(node.ws_url, user["token"], **kw)
    assert client.hello.node == node.name  # really on that node
    return client


class Inbox:
    """Drains a client's messages in the background, so nothing waits on a full queue."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.items: list[Msg] = []
        self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        async for m in self.client.messages():
            self.items.append(m)

    def from_user(self, user_id: int) -> list[Msg]:
        return [m for m in self.items if m.sender_id == user_id]

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Pump:
    """Sends numbered messages from one client to one user until stopped, retrying a send that failed.

    A retry keeps the client_msg_id, so a send that was committed but whose ack
    was lost (the node died) is stored once. `acked` maps client_msg_id to the
    message id of every acknowledged send; `ready` is cleared while the client
    has no connection.
    """

    def __init__(self, client: Client, to_user: int, tag: str) -> None:
        self.client = client
        self.to_user = to_user
        self.tag = tag
        self.acked: dict[str, int] = {}
        self.retries = 0
        self.ready = asyncio.Event()
        self.ready.set()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            await self.ready.wait()
            cmid = f"{self.tag}-{i}"
            try:
                ack = await self.client.send(cmid, to_user=self.to_user, client_msg_id=cmid, timeout=5)
            except (ClientError, TimeoutError, websockets.ConnectionClosed):
                self.retries += 1
                await asyncio.sleep(0.05)
                continue
            assert ack.status == "accepted", ack
            self.acked[cmid] = ack.message_id
            i += 1
            await asyncio.sleep(0.005)  # ~100-200 messages per second per pump

    async def until(self, count: int) -> None:
        """Wait until `count` more sends are acknowledged."""
        target = len(self.acked) + count
        await wait_until(lambda: len(self.acked) >= target or self._task.done(), f"{self.tag}: {count} more acks")
        if self._task.done():
            self._task.result()

    async def stop(self) -> None:
        self._stop.set()
        self.ready.set()
        await asyncio.wait_for(self._task, WAIT_S)


async def all_arrived(pump: Pump, inbox: Inbox, sender_id: int) -> None:
    """Every acknowledged message of `pump` reached `inbox`, exactly once, and nothing else did."""
    await wait_until(
        lambda: set(pump.acked.values()) <= {m.message_id for m in inbox.from_user(sender_id)},
        f"{pump.tag}: all {len(pump.acked)} acknowledged messages delivered"
        f" (receiver gaps {inbox.client.gaps}, duplicates {inbox.client.duplicates})",
    )
    got = [m.message_id for m in inbox.from_user(sender_id)]
    assert len(got) == len(set(got)), f"{pump.tag}: a message delivered twice"
    assert set(got) == set(pump.acked.values())
    # Per client_msg_id too: a retried send was stored once.
    cmids = [m.client_msg_id for m in inbox.from_user(sender_id)]
    assert len(cmids) == len(set(cmids)) and set(cmids) == set(pump.acked)
    seqs = [m.seq for m in inbox.items]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), "inbox seqs not delivered in order"


def no_gap_no_duplicate(*clients: Client) -> None:
    for c in clients:
        assert (c.gaps, c.duplicates) == (0, 0), f"user {c.hello.user_id}: gaps {c.gaps}, duplicates {c.duplicates}"


async def health(node: Node) -> tuple[int, dict]:
    async with node.http() as http:
        r = await http.get("/healthz")
    return r.status_code, r.json()


async def metric(node: Node, name: str) -> float:
    async with node.http() as http:
        r = await http.get("/metrics")
    assert r.status_code == 200
    found = re.search(rf"^{re.escape(name)} (\S+)$", r.text, re.MULTILINE)
    assert found, f"{name} not in /metrics of {node.name}"
    return float(found.group(1))


async def wait_health(node: Node, status: int) -> dict:
    deadline = time.monotonic() + WAIT_S
    while True:
        code, body = await health(node)
        if code == status:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{node.name} /healthz stayed {code} {body}, expected {status}\n{node.log_tail()}")
        await asyncio.sleep(0.05)


def pctl(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- delivery across nodes ----------------------------------------------------------------


async def test_delivery_typing_receipts_and_latency_across_nodes(cluster, capsys):
    n1, n2 = cluster.nodes
    for node in cluster.nodes:  # both see the broker (and say so)
        code, body = await health(node)
        assert code == 200 and body["status"] == "ok" and body["broker"] == "ok", body
        assert await metric(node, "imserver_broker_up") == 1
        assert await metric(node, "imserver_broker_reconnects_total") == 0
    alice, bob, carol = await verified_users(cluster, 3, register_on=n1, review_on=n2)
    a1, b, c = await connect(n1, alice), await connect(n2, bob), await connect(n1, carol)
    a2 = await connect(n2, alice)  # the sender's other device, on the other node
    try:
        ack = await a1.send("hello from node1", to_user=bob["id"])
        assert ack.status == "accepted" and ack.seq == 1
        m = await b.next_message(WAIT_S)
        assert (m.body, m.sender_id, m.seq, m.message_id) == ("hello from node1", alice["id"], 1, ack.message_id)
        mine = await a2.next_message(WAIT_S)
        assert (mine.message_id, mine.seq) == (ack.message_id, ack.seq)

        reply = await b.send("hello from node2", to_user=alice["id"])
        assert reply.status == "accepted"
        for device in (a1, a2):
            m = await device.next_message(WAIT_S)
            assert (m.body, m.sender_id, m.seq) == ("hello from node2", bob["id"], 2)

        # Typing crosses: alice types on node 1, bob sees it on node 2.
        await a1.typing(ack.conversation_id)
        event = await asyncio.wait_for(b.events.get(), WAIT_S)
        assert event == TypingEvent(ack.conversation_id, alice["id"])
        # A read receipt crosses the other way, to both of alice's devices.
        await b.read(ack.conversation_id, ack.message_id)
        for device in (a1, a2):
            event = await asyncio.wait_for(device.events.get(), WAIT_S)
            assert event == Receipt(ack.conversation_id, bob["id"], ack.message_id)

        # Latency: send on node 1 -> `msg` on node 2 (and, for comparison, on node 1),
        # one message at a time. Printed, not asserted.
        async def timed(receiver: Client, to: int, count: int) -> list[float]:
            out = []
            for i in range(count):
                start = time.perf_counter()
                acked = await a1.send_nowait(f"ping {i}", to_user=to)
                m = await receiver.next_message(WAIT_S)
                out.append(time.perf_counter() - start)
                assert m.body == f"ping {i}"
                assert (await asyncio.wait_for(acked, WAIT_S)).status == "accepted"
            return out

        await timed(b, bob["id"], 20)  # warm up: caches, the direct conversations
        await timed(c, carol["id"], 20)
        cross = await timed(b, bob["id"], LATENCY_SAMPLES)
        local = await timed(c, carol["id"], LATENCY_SAMPLES)
        no_gap_no_duplicate(a1, a2, b, c)
    finally:
        for client in (a1, a2, b, c):
            await client.close()
    with capsys.disabled():
        for label, samples in (("node1 -> node2 (Redis)", cross), ("node1 -> node1 (local)", local)):
            ms = [s * 1000 for s in samples]
            print(
                f"\n[cluster latency] {label}, send -> msg, {len(ms)} messages: "
                f"p50 {statistics.median(ms):.2f} ms, p99 {pctl(ms, 0.99):.2f} ms, max {max(ms):.2f} ms",
                end="",
            )
        print()


# -- policy across nodes -------------------------------------------------------------------


async def until_reason(client: Client, to_user: int | None, reason: str | None, *, to_group: int | None = None) -> float:
    """Send from `client` (to a user or a group) until the ack's reason is `reason` (None: accepted); the seconds it took."""
    start = time.perf_counter()
    deadline = time.monotonic() + WAIT_S
    while True:
        ack = await client.send("probe", to_user=to_user, to_group=to_group)
        got = ack.reason if ack.status == "rejected" else None
        if got == reason:
            return time.perf_counter() - start
        assert time.monotonic() < deadline, f"user {client.hello.user_id} on {client.hello.node}: {ack}, not {reason}"
        await asyncio.sleep(0.02)


async def test_policy_changes_through_node1_take_effect_on_node2(tmp_path, capsys):
    """Sanction, lift, new agreement, closure and logout, each applied through node 1.

    Node 1 (the control) enforces each at once; node 2 must follow within a
    second (printed), having had the user's facts cached before the change.
    """
    roles = ("reviewer", "compliance", "compliance", "admin")
    async with Cluster(tmp_path / "cluster", roles=roles) as cluster:
        n1, n2 = cluster.nodes
        alice, bob, carol = await verified_users(cluster, 3, register_on=n1, review_on=n2)
        comp = await cluster.operator("compliance", n1)
        comp2 = await cluster.operator("compliance", n1, index=1)
        admin = await cluster.operator("admin", n1)
        a, b = await connect(n1, alice), await connect(n2, bob)
        b_n1 = await connect(n1, bob)  # the control: on the node that applies the change
        carols = [await connect(n2, carol), await connect(n1, carol)]
        async with n2.http() as http:  # a second session of alice's, which her logout must spare
            r = await http.post("/api/v1/login", json={"handle": alice["handle"], "password": PASSWORD})
            assert r.status_code == 200, r.text
            kept = await connect(n2, {"token": r.json()["token"]})
        a_n2 = await connect(n2, alice)  # the session she logs out of, on the other node
        figures = {}
        try:
            assert (await b.send("cached on node 2", to_user=alice["id"])).status == "accepted"

            # 1. A suspension: refused on node 1 at once, then on node 2.
            async with n1.http() as http:
                start = time.perf_counter()
                r = await http.post(
                    "/admin/v1/sanctions",
                    json={"subject_id": bob["id"], "kind": "suspend_updates", "reason": "spam", "duration_seconds": 3600},
                    headers=comp["headers"],
                )
                assert r.status_code == 201, r.text
                sanction_id = r.json()["id"]
            control = await b_n1.send("on node1", to_user=alice["id"])
            assert (control.status, control.reason) == ("rejected", "updates_suspended")
            await until_reason(b, alice["id"], "updates_suspended")
            figures["suspension"] = time.perf_counter() - start

            # 2. Lifted: node 2 lets him send again.
            async with n1.http() as http:
                r = await http.post(
                    f"/admin/v1/sanctions/{sanction_id}/lift", json={"reason": "served"}, headers=comp2["headers"]
                )
                assert r.status_code == 200, r.text
            figures["lift"] = await until_reason(b, alice["id"], None)

            # 3. A new agreement version: nobody sends until they accept it.
            text = "Terms, version 2.\n" + "\n".join(f"The user commits to {x}." for x in SEVEN_BASELINES)
            async with n1.http() as http:
                start = time.perf_counter()
                r = await http.post("/admin/v1/agreements", json={"text": text}, headers=admin["headers"])
                assert r.status_code == 201, r.text
                version = r.json()["version"]
            control = await a.send("on node1", to_user=bob["id"])
            assert (control.status, control.reason) == ("rejected", "agreement_not_accepted")
            await until_reason(b, alice["id"], "agreement_not_accepted")
            figures["agreement"] = time.perf_counter() - start
            async with n1.http() as http:
                r = await http.post("/api/v1/agreement/accept", json={"version": version}, headers=bob["headers"])
                assert r.status_code == 204, r.text
            figures["acceptance"] = await until_reason(b, alice["id"], None)

            # 4. Closing carol's account (imposed, then confirmed by a second
            # compliance operator, on node 1) drops her sockets on both nodes.
            async with n1.http() as http:
                r = await http.post(
                    "/admin/v1/sanctions",
                    json={"subject_id": carol["id"], "kind": "close_account", "reason": "fraud"},
                    headers=comp["headers"],
                )
                assert r.status_code == 201, r.text
                start = time.perf_counter()
                r = await http.post(f"/admin/v1/sanctions/{r.json()['id']}/confirm", headers=comp2["headers"])
                assert r.status_code == 200, r.text
            for conn in carols:
                assert await conn.wait_closed(WAIT_S) == protocol.CLOSE_REVOKED
            figures["closure"] = time.perf_counter() - start
            with pytest.raises(ClientError):
                await Client.connect(n2.ws_url, carol["token"])

            # 5. Logging out on node 1 closes that session's sockets on both nodes,
            # and only that session's.
            async with n1.http() as http:
                start = time.perf_counter()
                r = await http.post("/api/v1/logout", headers=alice["headers"])
                assert r.status_code == 204, r.text
            assert await a_n2.wait_closed(WAIT_S) == protocol.CLOSE_REVOKED
            figures["logout"] = time.perf_counter() - start
            assert await a.wait_closed(WAIT_S) == protocol.CLOSE_REVOKED
            await kept.ping()
            for node in (n1, n2):
                with pytest.raises(ClientError):
                    await Client.connect(node.ws_url, alice["token"])
            no_gap_no_duplicate(a, b, b_n1, a_n2, kept)
        finally:
            for conn in (a, b, b_n1, a_n2, kept, *carols):
                await conn.close()
    with capsys.disabled():
        shown = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in figures.items())
        print(f"\n[cluster] applied through node1, in effect on node2 after: {shown}")


# -- faults -----------------------------------------------------------------------------------


async def test_redis_stopped_and_restarted_loses_nothing(tmp_path, own_redis):
    async with Cluster(tmp_path / "cluster", broker_url=own_redis.url, roles=("reviewer", "compliance")) as cluster:
        n1, n2 = cluster.nodes
        alice, bob, carol, dave, erin = await verified_users(cluster, 5, register_on=n1, review_on=n2)
        comp = await cluster.operator("compliance", n1)
        a, c, b = await connect(n1, alice), await connect(n1, carol), await connect(n2, bob)
        d = await connect(n2, dave)
        e = await connect(n2, erin)
        assert (await d.send("cached on node 2", to_user=alice["id"])).status == "accepted"
        inboxes = {k: Inbox(v) for k, v in (("a", a), ("b", b), ("c", c))}
        pumps = [
            Pump(a, bob["id"], "a2b"),  # node 1 -> node 2
            Pump(b, alice["id"], "b2a"),  # node 2 -> node 1
            Pump(a, carol["id"], "a2c"),  # node 1 -> node 1
        ]
        a2b, b2a, a2c = pumps
        try:
            for p in pumps:
                await p.until(5)
            assert await metric(n1, "imserver_broker_up") == 1

            own_redis.stop()
            for node in (n1, n2):
                body = await wait_health(node, 503)
                assert body["broker"] == "down" and body["database"] == "ok"
                assert await metric(node, "imserver_broker_up") == 0
            # Clients keep sending, every send is acknowledged, and a node keeps
            # delivering to its own clients live.
            local_before = len(inboxes["c"].from_user(alice["id"]))
            for p in pumps:
                await p.until(20)
            await wait_until(
                lambda: len(inboxes["c"].from_user(alice["id"])) >= local_before + 10,
                "node 1 delivers to its own clients while Redis is down",
            )
            # A sanction applied through node 1 meanwhile: its invalidation never reaches node 2 ...
            async with n1.http() as http:
                r = await http.post(
                    "/admin/v1/sanctions",
                    json={"subject_id": dave["id"], "kind": "suspend_updates", "reason": "x", "duration_seconds": 3600},
                    headers=comp["headers"],
                )
                assert r.status_code == 201, r.text
                # ... and so does a logout: erin's socket on node 2 stays open for now.
                r = await http.post("/api/v1/logout", headers=erin["headers"])
                assert r.status_code == 204, r.text

            await own_redis.start()
            for node in (n1, n2):
                await wait_health(node, 200)
            for p in pumps:
                await p.until(10)
            # Node 2 rechecks its sockets' sessions when Redis comes back.
            assert await e.wait_closed(WAIT_S) == protocol.CLOSE_REVOKED
            # ... and forgets its cached snapshots.
            deadline = time.monotonic() + WAIT_S
            while (ack := await d.send("after the outage", to_user=alice["id"])).reason != "updates_suspended":
                assert time.monotonic() < deadline, f"node 2 still lets a suspended user send: {ack}"
                await asyncio.sleep(0.05)
        finally:
            for p in pumps:
                await p.stop()
        try:
            # Everything acknowledged reached its recipient exactly once, in seq order.
            await all_arrived(a2b, inboxes["b"], alice["id"])
            await all_arrived(b2a, inboxes["a"], bob["id"])
            await all_arrived(a2c, inboxes["c"], alice["id"])
            no_gap_no_duplicate(a, b, c)
            for node in (n1, n2):
                assert await metric(node, "imserver_broker_reconnects_total") >= 1
                assert await metric(node, "imserver_broker_up") == 1
            failures = [await metric(node, "imserver_broker_publish_failures_total") for node in (n1, n2)]
            assert sum(failures) >= 1, "messages were published while Redis was down"
        finally:
            for inbox in inboxes.values():
                await inbox.stop()
            for client in (a, b, c, d):
                await client.close()


async def test_node_killed_its_clients_resume_on_the_other_node(cluster):
    n1, n2 = cluster.nodes
    alice, bob, carol = await verified_users(cluster, 3, register_on=n1, review_on=n2)
    a, c = await connect(n1, alice), await connect(n1, carol)  # on the node that dies
    b = await connect(n2, bob)
    inboxes = {k: Inbox(v) for k, v in (("a", a), ("b", b), ("c", c))}
    a2b = Pump(a, bob["id"], "a2b")  # from the node that dies
    b2a = Pump(b, alice["id"], "b2a")  # to clients of the node that dies
    b2c = Pump(b, carol["id"], "b2c")
    pumps = [a2b, b2a, b2c]
    try:
        for p in pumps:
            await p.until(10)
        a2b.ready.clear()  # alice's app notices the drop only when its socket closes; pause it meanwhile
        n1.kill()
        assert await a.wait_closed(WAIT_S) not in (None, protocol.CLOSE_NORMAL)
        assert await c.wait_closed(WAIT_S) not in (None, protocol.CLOSE_NORMAL)
        for p in (b2a, b2c):
            await p.until(10)  # node 2 goes on committing for them while they are away

        # The load balancer sends them to node 2; they resume from their cursors.
        for client in (a, c):
            client.url = n2.ws_url
            await client.reconnect(WAIT_S)
            assert client.hello.node == "node2"
        a2b.ready.set()  # alice's unacknowledged send is retried with its client_msg_id
        for p in pumps:
            await p.until(10)
    finally:
        for p in pumps:
            await p.stop()
    try:
        await all_arrived(a2b, inboxes["b"], alice["id"])
        await all_arrived(b2a, inboxes["a"], bob["id"])
        await all_arrived(b2c, inboxes["c"], bob["id"])
        no_gap_no_duplicate(a, b, c)
    finally:
        for inbox in inboxes.values():
            await inbox.stop()
        for client in (a, b, c):
            await client.close()


async def test_a_post_reaches_followers_on_both_nodes(cluster):
    """A public-account post reaches online followers on every node, and a
    follow made through one node is seen by the other's follower cache."""
    n1, n2 = cluster.nodes
    owner, f1, f2 = await verified_users(cluster, 3, register_on=n1, review_on=n2)
    reviewer = await cluster.operator("reviewer", n2)
    async with n1.http() as http:
        r = await http.post(
            "/api/v1/public-accounts",
            json={
                "name": "Cluster Daily",
                "description": "posts from one node to followers on two",
                "category": "enterprise",
                "operator_name": "Example Ltd.",
                "credit_code": "91110000600037341L",
            },
            headers=owner["headers"],
        )
        assert r.status_code == 201, r.text
        account_id = r.json()["id"]
    async with n2.http() as http:
        r = await http.post(
            f"/admin/v1/public-accounts/{account_id}/review",
            json={"decision": "approve", "reason": "fine"},
            headers=reviewer["headers"],
        )
        assert r.status_code == 200, r.text
    c1, c2 = await connect(n1, f1), await connect(n2, f2)
    try:
        for node, follower in ((n1, f1), (n2, f2)):
            async with node.http() as http:
                r = await http.put(f"/api/v1/public-accounts/{account_id}/follow", headers=follower["headers"])
                assert r.status_code in (200, 201, 204), r.text
        async with n1.http() as http:
            r = await http.post(
                f"/api/v1/public-accounts/{account_id}/posts",
                json={"kind": "ordinary", "title": "hello", "body": "to both nodes"},
                headers=owner["headers"],
            )
            assert r.status_code == 201, r.text
            post_id = r.json()["post_id"]
        for c in (c1, c2):
            frame = await c.next_post(WAIT_S)
            assert isinstance(frame, protocol.Post)
            assert (frame.post_id, frame.body, frame.account["id"]) == (post_id, "to both nodes", account_id)
            assert frame.account["news_badge"] is None  # an enterprise carries no news badge
    finally:
        await c1.close()
        await c2.close()


# -- group membership across nodes ----------------------------------------------------------


async def test_group_membership_changed_through_node1_applies_on_node2(cluster, capsys):
    """Invite, leave and removal made through node 1, with node 2's membership cache warm.

    Node 2 must let an invitee send and stop delivering to a leaver (or a removed
    member), as node 1 does, without a restart.
    """
    n1, n2 = cluster.nodes
    owner, guest, other = await verified_users(cluster, 3, register_on=n1, review_on=n2)
    async with n1.http() as http:
        r = await http.post("/api/v1/groups", json={"name": "g", "members": [other["id"]]}, headers=owner["headers"])
        assert r.status_code == 201, r.text
        group = r.json()["id"]
    o2, g2, x2 = await connect(n2, owner), await connect(n2, guest), await connect(n2, other)
    try:
        # Warm node 2's cache of the group: a member sends, a non-member is refused.
        assert (await o2.send("warm", to_group=group)).status == "accepted"
        ack = await g2.send("not yet", to_group=group)
        assert (ack.status, ack.reason) == ("rejected", "not_a_member")

        async with n1.http() as http:  # the invitation, through the other node
            r = await http.post(f"/api/v1/groups/{group}/members", json={"user_ids": [guest["id"]]},
                                headers=owner["headers"])
            assert r.status_code == 200 and r.json()["added"] == [guest["id"]], r.text
        invited = await until_reason(g2, None, None, to_group=group)

        async with n1.http() as http:  # the guest leaves, through the other node
            r = await http.delete(f"/api/v1/groups/{group}/members/me", headers=guest["headers"])
            assert r.status_code == 204, r.text
        left = await until_reason(g2, None, "not_a_member", to_group=group)
        await drain(g2)  # what the guest got while a member
        ack = await o2.send("after the guest left", to_group=group)
        assert ack.status == "accepted"
        # The others still get it (after what they had queued: the warm-up and the guest's probes).
        while (await x2.next_message(WAIT_S)).body != "after the guest left":
            pass
        await asyncio.sleep(0.5)  # anything misdelivered to the guest would have arrived by now
        assert [m.body for m in await drain(g2)] == []
        await g2.sync(inbox_after=0)  # nor is it in the guest's inbox
        assert "after the guest left" not in [m.body for m in await drain(g2)]

        async with n1.http() as http:  # the owner removes the other member, through node 1
            r = await http.delete(f"/api/v1/groups/{group}/members/{other['id']}", headers=owner["headers"])
            assert r.status_code == 204, r.text
        removed = await until_reason(x2, None, "not_a_member", to_group=group)
    finally:
        for client in (o2, g2, x2):
            await client.close()
    with capsys.disabled():
        print(
            f"\n[cluster membership] applied on node 2 after: invite {invited:.3f} s, leave {left:.3f} s, "
            f"removal {removed:.3f} s"
        )


async def drain(client: Client) -> list[Msg]:
    """The messages already queued on a client, without waiting for more."""
    out = []
    while client.pending_messages():
        out.append(await client.next_message(0.1))
    return out


async def connect_on_worker(node: Node, user: dict, worker: str) -> Client:
    """A connection served by the named worker: the kernel picks a listening worker per connection (SO_REUSEPORT)."""
    deadline = time.monotonic() + WAIT_S  # a worker just started listens only once it is up
    tries = 0
    while time.monotonic() < deadline:
        tries += 1
        client = await Client.connect(node.ws_url, user["token"])
        if client.hello.node == worker:
            return client
        await client.close()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{tries} connections in {WAIT_S} s and none on {worker}")


async def test_two_workers_in_one_node_are_one_service(tmp_path, capsys):
    """`serve --workers 2`: two processes on one port, each a member of the cluster.

    A message crosses from one worker to the other in both directions; a group
    changed through one worker applies on the other; a worker that dies is
    started again by the supervisor and its users resume there, losing nothing.
    """
    async with Cluster(tmp_path / "cluster", size=1, workers=2) as c:
        node = c.nodes[0]
        await wait_until(lambda: len(node.worker_pids()) == 2, "two worker processes")
        alice, bob, carol = await verified_users(c, 3, register_on=node, review_on=node)
        a1 = await connect_on_worker(node, alice, "node1-w1")
        b2 = await connect_on_worker(node, bob, "node1-w2")
        c2 = await connect_on_worker(node, carol, "node1-w2")
        try:
            started = time.perf_counter()
            assert (await a1.send("w1 to w2", to_user=bob["id"])).status == "accepted"
            assert (await b2.next_message(WAIT_S)).body == "w1 to w2"
            across = time.perf_counter() - started
            assert (await b2.send("w2 to w1", to_user=alice["id"])).status == "accepted"
            assert (await a1.next_message(WAIT_S)).body == "w2 to w1"

            # Membership through worker 1 (the group is created there), sends through worker 2.
            async with node.http() as http:
                r = await http.post("/api/v1/groups", json={"name": "g", "members": [bob["id"]]},
                                    headers=alice["headers"])
                assert r.status_code == 201, r.text
                group = r.json()["id"]
            assert (await b2.send("warm", to_group=group)).status == "accepted"
            ack = await c2.send("not yet", to_group=group)
            assert (ack.status, ack.reason) == ("rejected", "not_a_member")  # worker 2's cache is warm now
            async with node.http() as http:  # through whichever worker the kernel picks
                r = await http.post(f"/api/v1/groups/{group}/members", json={"user_ids": [carol["id"]]},
                                    headers=alice["headers"])
                assert r.status_code == 200, r.text
            invited = await until_reason(c2, None, None, to_group=group)

            # Worker 1 dies; the supervisor starts it again; alice resumes and gets what she missed.
            (pid1,) = [p for p in node.worker_pids() if _node_id_of(p) == "node1-w1"]
            os.kill(pid1, signal.SIGKILL)
            for body in ("while w1 was down", "and one more"):
                assert (await b2.send(body, to_user=alice["id"])).status == "accepted"
            await wait_until(
                lambda: len(node.worker_pids()) == 2 and pid1 not in node.worker_pids(), "worker 1 started again"
            )
            await a1.close()
            a1 = await connect_on_worker(node, alice, "node1-w1")
            await a1.sync(inbox_after=0)
            bodies = [m.body for m in await drain_until(a1, "and one more")]
            assert bodies.count("while w1 was down") == 1 and bodies.count("and one more") == 1, bodies
            no_gap_no_duplicate(b2, c2)
        finally:
            for client in (a1, b2, c2):
                await client.close()
    with capsys.disabled():
        print(f"\n[two workers] worker 1 to worker 2: a message in {across * 1000:.1f} ms; an invitation "
              f"applied on worker 2 after {invited:.3f} s")


def _node_id_of(pid: int) -> str | None:
    """The IMSERVER_NODE_ID a worker process was started with (its environment, Linux)."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"IMSERVER_NODE_ID="):
            return item.split(b"=", 1)[1].decode()
    return None


async def drain_until(client: Client, last_body: str) -> list[Msg]:
    """Messages until (and with) the one whose body is ``last_body``."""
    out = []
    while not out or out[-1].body != last_body:
        out.append(await client.next_message(WAIT_S))
    return out
