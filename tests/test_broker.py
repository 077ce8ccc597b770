"""The broker contract, run over the memory and the Redis broker (real ones, never mocks).

Two "nodes" of one deployment: in memory there is only one process, so both are
the same broker; over Redis they are two brokers on the real Redis
(IMSERVER_TEST_REDIS_URL), so every message between them really crosses Redis.
Each test uses a channel prefix of its own, since Redis channels are global.

The fault test runs a redis-server of its own on a free port, kills it and
starts it again, and checks the broker's recovery (docs/broker.md, "Faults").
Nothing waits a fixed time: every wait is for a condition, with a generous limit.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import uuid
from collections.abc import Callable

import pytest
import redis
import redis.asyncio

from imserver.broker import Broker, MemoryBroker, RedisBroker, make_broker
from imserver.broker.base import check_topic
from tests.conftest import REDIS_URL, free_port, unreachable

# Generous: a loaded CI machine is slow, and a passing test never waits this long.
WAIT_S = 30.0


# -- helpers ----------------------------------------------------------------------------


class Inbox:
    """An async handler that keeps what it receives, and can be waited on."""

    def __init__(self) -> None:
        self.items: list[bytes] = []
        self._changed = asyncio.Event()

    async def __call__(self, payload: bytes) -> None:
        self.items.append(payload)
        self._changed.set()

    async def wait(self, count: int) -> list[bytes]:
        async with asyncio.timeout(WAIT_S):
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.items


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT_S):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


async def redis_subscribers(url: str, channel: str, *, want: int) -> int:
    """PUBSUB NUMSUB for ``channel``, polled until it equals ``want`` (or the limit passes)."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                [(_, count)] = await client.pubsub_numsub(channel)
                if count == want:
                    return count
                await asyncio.sleep(0.01)
    finally:
        await client.aclose()


def prefix() -> str:
    return f"imserver-test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture(scope="session")
def redis_error() -> str | None:
    """None if the shared test Redis answers, else why not."""
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001 - reported by unreachable()
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def kind(request, redis_error) -> str:
    if request.param == "redis" and redis_error:
        unreachable("Redis", redis_error)
    return request.param


@pytest.fixture
async def open_broker(kind):
    """A factory of started brokers of the parametrized kind, all closed at the end."""
    opened: list[Broker] = []
    channel_prefix = prefix()

    async def open_() -> Broker:
        broker = MemoryBroker() if kind == "memory" else RedisBroker(REDIS_URL, channel_prefix=channel_prefix)
        opened.append(broker)
        await broker.start()
        assert broker.healthy, broker.last_error
        return broker

    yield open_
    for broker in opened:
        await broker.close()


@pytest.fixture
async def nodes(kind, open_broker) -> tuple[Broker, Broker]:
    a = await open_broker()
    b = a if kind == "memory" else await open_broker()
    return a, b


# -- the contract ----------------------------------------------------------------------


async def test_round_trip_reaches_other_node_and_own_node_once(nodes):
    a, b = nodes
    at_a, at_b = Inbox(), Inbox()
    await a.subscribe("user.1", at_a)
    await b.subscribe("user.1", at_b)

    await a.publish("user.1", b"hello")
    assert await at_b.wait(1) == [b"hello"]
    assert await at_a.wait(1) == [b"hello"]  # own subscribers get it too

    # b saw "hello", so Redis has already sent any echo of it to a; b's marker
    # comes after that echo on a's connection. Exactly one copy means no echo.
    await b.publish("user.1", b"marker")
    assert await at_a.wait(2) == [b"hello", b"marker"]
    assert a.stats.publish_failures == b.stats.publish_failures == 0


async def test_many_messages_arrive_in_order_one_handler_call_at_a_time(nodes):
    a, b = nodes
    count = 500
    running = 0
    overlap = 0
    seen: list[bytes] = []
    done = asyncio.Event()

    async def handler(payload: bytes) -> None:
        nonlocal running, overlap
        running += 1
        overlap = max(overlap, running)
        await asyncio.sleep(0)  # give a second call the chance to start, if it could
        seen.append(payload)
        running -= 1
        if len(seen) == count:
            done.set()

    await b.subscribe("posts", handler)
    expected = [f"m{i}".encode() for i in range(count)]
    for payload in expected:
        await a.publish("posts", payload)
    await asyncio.wait_for(done.wait(), WAIT_S)
    assert seen == expected
    assert overlap == 1


async def test_two_subscribers_on_one_topic_both_get_everything(nodes):
    a, b = nodes
    sync_seen: list[bytes] = []
    inbox = Inbox()
    await b.subscribe("policy", sync_seen.append)  # a plain function is a handler too
    await b.subscribe("policy", inbox)
    await b.subscribe("policy", inbox)  # twice is once

    for payload in (b"1", b"2", b"3"):
        await a.publish("policy", payload)
    assert await inbox.wait(3) == [b"1", b"2", b"3"]
    assert sync_seen == [b"1", b"2", b"3"]  # called before `inbox`, in subscription order


async def test_unsubscribe(nodes, kind):
    a, b = nodes
    gone, stays = Inbox(), Inbox()
    await b.subscribe("user.2", gone)
    await b.subscribe("user.2", stays)
    await a.publish("user.2", b"both")
    await stays.wait(1)

    await b.unsubscribe("user.2", gone)
    await b.unsubscribe("user.2", gone)  # unknown now: ignored
    await b.unsubscribe("nobody.here", stays)  # unknown topic: ignored
    await a.publish("user.2", b"one")
    assert await stays.wait(2) == [b"both", b"one"]
    assert gone.items == [b"both"]  # `gone` ran before `stays`, had it still been subscribed

    # The last handler leaves: the topic is dropped, on Redis too.
    await b.unsubscribe("user.2", stays)
    if kind == "redis":
        assert await redis_subscribers(REDIS_URL, b.channel("user.2"), want=0) == 0  # what Redis itself sees
    again = Inbox()
    await b.subscribe("user.2", again)
    await a.publish("user.2", b"new")
    assert await again.wait(1) == [b"new"]
    assert stays.items == [b"both", b"one"]


async def test_a_raising_handler_is_logged_and_the_subscription_goes_on(nodes, caplog):
    a, b = nodes
    inbox = Inbox()

    async def fails_on_boom(payload: bytes) -> None:
        if payload == b"boom":
            raise RuntimeError("handler bug")
        await inbox(payload)

    def sync_fails_always(payload: bytes) -> None:
        raise ValueError("sync handler bug")

    await b.subscribe("node.n1", fails_on_boom)
    await b.subscribe("node.n1", sync_fails_always)
    with caplog.at_level(logging.ERROR, logger="imserver.broker"):
        for payload in (b"first", b"boom", b"after"):
            await a.publish("node.n1", payload)
        assert await inbox.wait(2) == [b"first", b"after"]
        # sync_fails_always runs after fails_on_boom for each message; wait for its last call.
        await wait_until(lambda: b.stats.handler_errors == 4, "1 boom + 3 sync failures")
    failures = [r for r in caplog.records if r.exc_info]
    assert {type(r.exc_info[1]) for r in failures} == {RuntimeError, ValueError}
    assert all("node.n1" in r.getMessage() for r in failures)


async def test_a_slow_topic_does_not_hold_up_another(nodes):
    a, b = nodes
    release = asyncio.Event()
    inbox = Inbox()

    async def stuck(payload: bytes) -> None:
        await release.wait()

    await b.subscribe("user.slow", stuck)
    await b.subscribe("user.fast", inbox)
    await a.publish("user.slow", b"x")
    await a.publish("user.fast", b"y")
    try:
        assert await inbox.wait(1) == [b"y"]
    finally:
        release.set()


async def test_close_leaves_no_task_and_publish_after_close_is_harmless(kind):
    before = asyncio.all_tasks()
    channel_prefix = prefix()
    brokers = (
        [MemoryBroker()]
        if kind == "memory"
        else [RedisBroker(REDIS_URL, channel_prefix=channel_prefix) for _ in range(2)]
    )
    for broker in brokers:
        await broker.start()
    a, b = brokers[0], brokers[-1]
    inbox = Inbox()
    stuck = asyncio.Event()

    async def never_returns(payload: bytes) -> None:
        await stuck.wait()

    await b.subscribe("user.3", inbox)
    await b.subscribe("user.4", never_returns)
    await a.publish("user.3", b"x")
    await a.publish("user.4", b"y")
    await inbox.wait(1)
    assert asyncio.all_tasks() - before  # the broker does run tasks...

    for broker in brokers:
        await broker.close()
        await broker.close()  # idempotent
        assert not broker.healthy and broker.last_error == "closed"
    assert asyncio.all_tasks() - before == set()  # ...and none outlives close()

    await a.publish("user.3", b"late")  # does not raise
    assert a.stats.publish_failures == 1
    assert not stuck.is_set()


# -- construction and names ----------------------------------------------------------------


def test_make_broker_from_settings_url():
    assert isinstance(make_broker("memory://"), MemoryBroker)
    assert isinstance(make_broker("redis://127.0.0.1:6379/0"), RedisBroker)
    with pytest.raises(ValueError, match="broker URL"):
        make_broker("kafka://somewhere")


@pytest.mark.parametrize("topic", ["node.n-1", "user.42", "policy", "posts", "user.0b1f:x_y"])
def test_topic_names(topic):
    assert check_topic(topic) == topic


@pytest.mark.parametrize("topic", ["", "user.*", "user.[12]", "user 1", "user.?", "x" * 201])
def test_bad_topic_names_are_our_bug(topic):
    with pytest.raises(ValueError):
        check_topic(topic)


async def test_memory_broker_rejects_bad_topics_in_every_call():
    broker = MemoryBroker()
    await broker.start()
    try:
        for call in (broker.publish("a*", b""), broker.subscribe("a*", print), broker.unsubscribe("a*", print)):
            with pytest.raises(ValueError):
                await call
    finally:
        await broker.close()


# -- faults: a Redis of the test's own, killed and restarted ---------------------------


# A restarted server must come back empty, as after a crash with nothing on disk.
NO_PERSISTENCE = ["--save", "", "--appendonly", "no"]


class RedisServer:
    """A throwaway redis-server on a fixed port, without persistence, so a restart forgets everything."""

    def __init__(self, binary: str, port: int, workdir) -> None:
        self.binary = binary
        self.port = port
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen | None = None

    async def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir)]
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once; readiness is awaited below
            [*args, *NO_PERSISTENCE],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.asyncio.Redis.from_url(self.url, socket_connect_timeout=1)
        try:
            async with asyncio.timeout(WAIT_S):
                while True:
                    if self.proc.poll() is not None:
                        raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
                    try:
                        await client.ping()
                        return
                    except redis.ConnectionError:
                        await asyncio.sleep(0.02)
        finally:
            await client.aclose()

    def kill(self) -> None:
        """Like a crash: SIGKILL, no goodbye to the clients."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT_S)


@pytest.mark.redis
async def test_redis_going_away_and_coming_back(tmp_path, caplog):
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not shutil.which(binary):
        unreachable("redis-server", "not installed")
    server = RedisServer(binary, free_port(), tmp_path)
    channel_prefix = prefix()
    # a subscribes; b publishes while Redis is away; c publishes only before and
    # after, so its publishing connection goes stale in between, untouched.
    a, b, c = (RedisBroker(server.url, channel_prefix=channel_prefix) for _ in range(3))
    try:
        await server.start()
        for broker in (a, b, c):
            await broker.start()
        assert a.healthy and b.healthy and c.healthy and a.last_error is None
        resync = asyncio.Event()
        a.on_reconnect.append(resync.set)  # where the gateway tells its clients to sync by cursor
        inbox, local = Inbox(), Inbox()
        await a.subscribe("user.1", inbox)
        await a.subscribe("node.a", local)
        await c.publish("user.1", b"before")
        await inbox.wait(1)

        with caplog.at_level(logging.INFO, logger="imserver.broker"):
            server.kill()
            await wait_until(lambda: not (a.healthy or b.healthy or c.healthy), "every node sees Redis gone")
            assert a.last_error and b.last_error
            assert any(r.levelno == logging.ERROR and "Redis" in r.getMessage() for r in caplog.records)

            await b.publish("user.1", b"lost")  # does not raise into the message path
            await wait_until(lambda: b.stats.publish_failures >= 1, "the failed publish is counted")
            await a.publish("node.a", b"local")  # a node keeps serving its own clients
            assert await local.wait(1) == [b"local"]
            assert not resync.is_set()

            await server.start()  # same port, empty Redis: nothing survives in it
            await asyncio.wait_for(resync.wait(), WAIT_S)
            await wait_until(lambda: a.healthy and b.healthy and c.healthy, "every node reconnects on its own")
        assert a.last_error is None
        assert a.stats.reconnects == 1
        # Resubscribed: the new Redis itself knows a's subscription.
        assert await redis_subscribers(server.url, channel_prefix + "user.1", want=1) == 1

        await c.publish("user.1", b"after")
        assert await inbox.wait(2) == [b"before", b"after"]  # "lost" was lost in transport
    finally:
        try:
            for broker in (a, b, c):
                await broker.close()
        finally:
            server.kill()
