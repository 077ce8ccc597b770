"""The many-node broker (``redis://``): Redis pub/sub as transport, never as storage.

Theory of operation
-------------------
Each topic ``t`` is the Redis channel ``<channel_prefix>t``. Redis channels are
global to a server (not per database number), so the prefix is what keeps two
deployments, or two test runs, on one Redis apart.

Two connections, two tasks, both children of the broker's
:class:`~imserver.broker.tasks.TaskOwner` (started in ``start()``, cancelled and
awaited in ``close()``):

* the **writer** owns the publishing connection. ``publish`` delivers to this
  node's subscribers at once, then puts the message in a bounded outbox and
  returns; the writer sends the outbox to Redis in order, pipelining whatever
  has queued up. So the message path never waits for Redis, and a Redis fault
  never raises into it: it is logged, counted in ``stats.publish_failures``,
  and makes the broker unhealthy.
* the **reader** owns the subscribing connection. It subscribes every topic
  that has a handler, plus a control channel of its own, and hands each message
  to the dispatcher. On any fault it drops the connection, waits (capped
  exponential backoff with jitter) and connects again, resubscribing every
  topic; then the broker is healthy again, ``stats.reconnects`` grows and the
  ``on_reconnect`` hooks run.

Every message carries a small envelope: a version byte and a random id of the
publishing broker. The reader skips messages with its own id, since those were
delivered locally when published; that is what lets a node keep serving its own
clients while Redis is away.

What a fault costs
------------------
Messages published while Redis is unreachable do not reach other nodes, and
messages published elsewhere while this node's reader is disconnected do not
reach it. Nothing is retried or replayed: delivery is at most once. Everything
that matters was committed to the database before it was published, so the
gateway's ``on_reconnect`` hook asks its clients to sync from their cursor and
nothing acknowledged is lost (see docs/broker.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from imserver.broker.base import Broker, Handler, check_topic
from imserver.broker.dispatch import Dispatcher
from imserver.broker.tasks import TaskOwner

log = logging.getLogger(__name__)

# -- the envelope -------------------------------------------------------------------
# One version byte, so the format can change without old nodes misreading it.
ENVELOPE_VERSION = 1
# Random bytes naming the publishing broker; 16 make a collision impossible in practice.
ORIGIN_BYTES = 16
HEADER_BYTES = 1 + ORIGIN_BYTES

# -- tuning -------------------------------------------------------------------------
# Messages waiting for the writer before publish starts dropping them. Only
# reached when Redis is slow or hung; 10,000 frames of ~1 KB is ~10 MB.
OUTBOX_LIMIT = 10_000
# Messages per pipelined round trip: large enough to keep up with bursts,
# small enough that one failed batch loses little.
MAX_BATCH = 256
# A command Redis has not answered in this long means Redis is stuck; the
# message path is not waiting on it (the writer is), so a few seconds is fine.
SOCKET_TIMEOUT_S = 5.0
# Connecting to a Redis that is up takes milliseconds; an unreachable host
# should fail fast so the reader gets back to its backoff loop.
CONNECT_TIMEOUT_S = 2.0
# Reconnect backoff: first retry soon (a restart is often quick), doubling to a
# cap of one second so a returning Redis is used within a second, as the
# target for a sanction to take effect on every node needs. Jitter keeps nodes
# from reconnecting in lockstep.
BACKOFF_FIRST_S = 0.05
BACKOFF_CAP_S = 1.0
# The reader wakes at least this often to check that the connection is alive.
POLL_S = 1.0
# After this long without a byte from Redis the reader sends PING ...
PING_AFTER_S = 5.0
# ... and after this long without even the PONG it declares the connection dead
# (a half-open TCP connection, e.g. a network partition, never raises by itself).
DEAD_AFTER_S = 15.0
# A writer connection idle this long is PINGed before the next batch: Redis
# may have closed it meanwhile, and a stale connection would cost the batch.
# Under load the writer is never idle, so this costs nothing there.
WRITER_IDLE_S = 1.0
# How long subscribe() waits for Redis to confirm, so that a message published
# by another node after subscribe() returns is received.
SUBSCRIBE_WAIT_S = 5.0
# Channels per SUBSCRIBE command when resubscribing; keeps each command small
# when a node has many topics (one per online user).
SUBSCRIBE_CHUNK = 1_000
# close() gives the writer this long to send what is still queued.
CLOSE_FLUSH_S = 2.0

DEFAULT_CHANNEL_PREFIX = "imserver:"


class RedisBroker(Broker):
    def __init__(self, url: str, *, channel_prefix: str = DEFAULT_CHANNEL_PREFIX) -> None:
        super().__init__()
        self._url = url
        self._where = _redacted(url)
        self._prefix = channel_prefix
        self._origin = os.urandom(ORIGIN_BYTES)
        self._header = bytes([ENVELOPE_VERSION]) + self._origin
        # Our own channel, always subscribed: it keeps the reader's connection
        # open when no topic has a handler, and its confirmation marks the end
        # of a (re)subscription. '#' cannot occur in a topic, so no clash.
        self._control = f"{channel_prefix}#broker.{self._origin.hex()}"

        self._tasks = TaskOwner("imserver.broker.redis")
        self._dispatch = Dispatcher(self._tasks, self.stats)
        # Two clients, so each has a pool of its own and, in practice, exactly
        # one connection: the writer's for PUBLISH, the reader's for SUBSCRIBE.
        self._pub: Redis | None = None
        self._sub: Redis | None = None
        self._last_sent = 0.0  # loop time of the writer's last successful round trip
        self._check_writer = False  # Redis came back: test the writer's connection first
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(OUTBOX_LIMIT)
        self._pubsub: PubSub | None = None  # set while the reader is connected
        self._confirm: dict[str, asyncio.Future[None]] = {}  # channel -> SUBSCRIBE confirmed
        self._first_attempt = asyncio.Event()  # the reader's first connect succeeded or failed

        self._reader_up = False
        self._writer_up = True
        self._lost = False  # the reader lost (or never had) its connection since the last success
        self._closing = False
        self._error: str | None = "not connected yet"

    # -- health ---------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return not self._closing and self._reader_up and self._writer_up and self._tasks.crashed is None

    @property
    def last_error(self) -> str | None:
        if self.healthy:
            return None
        if self._closing:
            return "closed"
        return self._tasks.crashed or self._error

    def _set_state(self, *, reader: bool | None = None, writer: bool | None = None, error: str | None = None) -> None:
        """Record a fault or a recovery, logging only the transitions (not every failed attempt)."""
        before = self.healthy
        if reader is not None:
            self._reader_up = reader
        if writer is not None:
            self._writer_up = writer
        if error is not None:
            self._error = error
        if before and not self.healthy:
            log.error(
                "broker: Redis at %s failed (%s); serving this node's subscribers only until it is back",
                self._where,
                self._error,
            )
        elif not before and self.healthy:
            log.info("broker: Redis at %s is connected", self._where)
        elif error is not None:
            log.debug("broker: Redis at %s still failing: %s", self._where, error)

    # -- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Start the reader and writer; returns after the first connection attempt, whatever its outcome."""
        self._pub = self._connect_client()
        self._sub = self._connect_client()
        await self._tasks.start()
        self._tasks.spawn(self._read_forever(), name="reader")
        self._tasks.spawn(self._write_forever(), name="writer")
        await self._first_attempt.wait()

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._tasks.running:
            try:
                await asyncio.wait_for(self._outbox.join(), CLOSE_FLUSH_S)
            except TimeoutError:
                log.warning("broker: closing with %d messages not sent to Redis", self._outbox.qsize())
        await self._tasks.close()
        self.stats.publish_failures += self._outbox.qsize()
        self._release_waiters()
        for client in (self._pub, self._sub):
            if client is not None:
                await client.aclose()

    # -- the interface ----------------------------------------------------------------

    async def publish(self, topic: str, payload: bytes) -> None:
        check_topic(topic)
        if self._closing or not self._tasks.running:
            self.stats.publish_failures += 1
            return
        payload = bytes(payload)
        self._dispatch.deliver(topic, payload)  # this node's own subscribers
        try:
            self._outbox.put_nowait((self.channel(topic), self._header + payload))
        except asyncio.QueueFull:
            self.stats.publish_failures += 1
            self._set_state(writer=False, error=f"publish: {OUTBOX_LIMIT} messages waiting for Redis")

    async def subscribe(self, topic: str, handler: Handler) -> None:
        channel = self.channel(check_topic(topic))
        if self._dispatch.add(topic, handler):
            pubsub = self._pubsub
            if pubsub is None:
                return  # the reader subscribes every topic when it (re)connects
            self._confirm.setdefault(channel, asyncio.get_running_loop().create_future())
            try:
                await pubsub.subscribe(channel)
            except Exception as exc:  # noqa: BLE001 - the reader meets the same fault and resubscribes
                log.debug("broker: SUBSCRIBE %s failed: %r", channel, exc)
                self._resolve(channel)
                return
        waiter = self._confirm.get(channel)
        if waiter is not None:
            try:
                await asyncio.wait_for(asyncio.shield(waiter), SUBSCRIBE_WAIT_S)
            except TimeoutError:
                log.warning(
                    "broker: Redis has not confirmed the subscription to %r after %s s", topic, SUBSCRIBE_WAIT_S
                )

    async def unsubscribe(self, topic: str, handler: Handler) -> None:
        channel = self.channel(check_topic(topic))
        if self._dispatch.remove(topic, handler) and (pubsub := self._pubsub) is not None:
            try:
                await pubsub.unsubscribe(channel)
            except Exception as exc:  # noqa: BLE001 - a reconnect subscribes only topics that have handlers
                log.debug("broker: UNSUBSCRIBE %s failed: %r", channel, exc)

    # -- the writer -------------------------------------------------------------------

    async def _write_forever(self) -> None:
        while True:
            if self._writer_up:
                first = await self._outbox.get()
            else:
                # After a failure, find out on our own when Redis is back, even
                # if nothing is published meanwhile: /healthz must not stay red.
                try:
                    first = await asyncio.wait_for(self._outbox.get(), POLL_S)
                except TimeoutError:
                    await self._probe()
                    continue
            batch = [first]
            while len(batch) < MAX_BATCH and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                await self._send(batch)
            except Exception as exc:  # noqa: BLE001 - never into the message path: counted and shown
                self.stats.publish_failures += len(batch)
                self._set_state(writer=False, error=f"publish: {_describe(exc)}")
            else:
                if not self._writer_up:
                    self._set_state(writer=True)
            finally:
                for _ in batch:
                    self._outbox.task_done()

    async def _send(self, batch: list[tuple[str, bytes]]) -> None:
        assert self._pub is not None
        loop = asyncio.get_running_loop()
        if self._check_writer or loop.time() - self._last_sent > WRITER_IDLE_S:
            await self._ping()
        async with self._pub.pipeline(transaction=False) as pipe:
            for channel, data in batch:
                pipe.publish(channel, data)
            await pipe.execute()
        self._last_sent = loop.time()

    async def _ping(self) -> None:
        """Make sure the writer's connection is alive before trusting it with messages.

        A connection that Redis closed while we were idle (a restart, its
        ``timeout`` setting, a proxy) fails on first use. The first PING meets
        that failure, and redis-py drops the connection; the second connects
        afresh. Only PING is ever tried twice: a PUBLISH never is, so nothing
        can be delivered twice.
        """
        assert self._pub is not None
        try:
            await self._pub.ping()
        except (RedisConnectionError, RedisTimeoutError):
            await self._pub.ping()
        self._check_writer = False
        self._last_sent = asyncio.get_running_loop().time()

    async def _probe(self) -> None:
        try:
            await self._ping()
        except Exception as exc:  # noqa: BLE001 - still down: shown, tried again
            self._set_state(writer=False, error=f"publish: {_describe(exc)}")
        else:
            self._set_state(writer=True)

    # -- the reader -------------------------------------------------------------------

    async def _read_forever(self) -> None:
        assert self._sub is not None
        failures = 0
        while True:
            pubsub = self._sub.pubsub()
            try:
                await self._connect(pubsub)
                failures = 0
                await self._pump(pubsub)  # returns only by raising
            except Exception as exc:  # noqa: BLE001 - whatever broke, reconnecting is the cure
                self._lost = True
                self._set_state(reader=False, error=f"subscribe: {_describe(exc)}")
            finally:
                self._pubsub = None
                self._release_waiters()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                self._first_attempt.set()
            delay = min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2**failures) * random.uniform(0.5, 1.0)
            failures = min(failures + 1, 30)  # 2**30 * first delay is far past the cap already
            await asyncio.sleep(delay)

    async def _connect(self, pubsub: PubSub) -> None:
        """Subscribe every topic that has a handler, then the control channel.

        Redis confirms a SUBSCRIBE's channels in order, so the control channel's
        confirmation (seen by ``_pump``) means everything before it is in place.
        """
        wanted = self._dispatch.topics()
        channels = [self.channel(topic) for topic in sorted(wanted)]
        for start in range(0, len(channels), SUBSCRIBE_CHUNK):
            await pubsub.subscribe(*channels[start : start + SUBSCRIBE_CHUNK])
        await pubsub.subscribe(self._control)
        # From here on subscribe()/unsubscribe() send their own commands; catch
        # up with the ones that ran while the commands above were in flight.
        self._pubsub = pubsub
        now = self._dispatch.topics()
        if added := now - wanted:
            await pubsub.subscribe(*(self.channel(topic) for topic in added))
        if removed := wanted - now:
            await pubsub.unsubscribe(*(self.channel(topic) for topic in removed))

    async def _pump(self, pubsub: PubSub) -> None:
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        while True:
            message = await pubsub.get_message(timeout=POLL_S)
            now = loop.time()
            if message is None:
                silent = now - last_heard
                if silent > DEAD_AFTER_S:
                    raise ConnectionError(f"no reply from Redis in {DEAD_AFTER_S:.0f} s")
                if silent > PING_AFTER_S:
                    await pubsub.ping()
                continue
            last_heard = now
            kind = message["type"]
            if kind == "message":
                self._receive(message["channel"], message["data"])
            elif kind == "subscribe":
                self._subscribed(message["channel"].decode())

    def _subscribed(self, channel: str) -> None:
        if channel != self._control:
            self._resolve(channel)
            return
        # Every topic is subscribed again: the broker is back.
        self._check_writer = True
        self._set_state(reader=True, writer=True)
        self._first_attempt.set()
        if self._lost:
            self._lost = False
            self.stats.reconnects += 1
            log.warning("broker: resubscribed to Redis at %s; messages sent meanwhile were not delivered", self._where)
            self._tasks.spawn(self._run_reconnect_hooks(), name="on_reconnect")

    def _receive(self, channel: bytes, data: bytes) -> None:
        if len(data) < HEADER_BYTES or data[0] != ENVELOPE_VERSION:
            log.warning("broker: dropped a message on %r that no imserver broker published", channel)
            return
        if data[1:HEADER_BYTES] == self._origin:
            return  # our own publish, delivered locally already
        topic = channel.decode()[len(self._prefix) :]
        self._dispatch.deliver(topic, data[HEADER_BYTES:])

    async def _run_reconnect_hooks(self) -> None:
        for hook in tuple(self.on_reconnect):
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("broker: on_reconnect hook %s failed", getattr(hook, "__qualname__", repr(hook)))

    # -- helpers ----------------------------------------------------------------------

    def _connect_client(self) -> Redis:
        return Redis.from_url(
            self._url,
            # No retries inside redis-py: the reader's backoff loop is the one
            # retry policy, and a failed publish is dropped, not retried.
            retry=Retry(NoBackoff(), 0),
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            client_name="imserver-broker",
        )

    def channel(self, topic: str) -> str:
        """The Redis channel that carries ``topic`` (for operators: ``redis-cli SUBSCRIBE``)."""
        return self._prefix + topic

    def _resolve(self, channel: str) -> None:
        waiter = self._confirm.pop(channel, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _release_waiters(self) -> None:
        """Let every subscribe() waiting for a confirmation go; the reader resubscribes on reconnect."""
        for channel in list(self._confirm):
            self._resolve(channel)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _redacted(url: str) -> str:
    """host:port of a Redis URL, for logs: never the password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
