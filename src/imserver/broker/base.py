"""The broker interface: moving frames and cache invalidations between nodes.

Theory of operation
-------------------
A broker carries opaque ``bytes`` on named topics (``node.<node_id>``,
``user.<id>``, ``policy``, ``posts``). Topics are plain names, never patterns.
There are two implementations behind this one interface:

* :class:`~imserver.broker.memory.MemoryBroker` — one process, the default;
* :class:`~imserver.broker.redis.RedisBroker` — many nodes over Redis pub/sub.

The rules, the same for both (``tests/test_broker.py`` checks them over both):

1. **Own messages come back.** A message published on a node is also delivered
   to that node's own subscribers, directly, without a round trip through
   Redis. So the gateway has one code path whether it runs alone or among
   many, and a node keeps serving its own clients while Redis is away.
2. **Per topic, in order, one at a time.** A topic's handlers run sequentially,
   in publish order (for messages from one publisher; messages from different
   nodes interleave in the order they arrive). Topics do not wait for each
   other.
3. **A failing handler is logged, not fatal.** It is logged with the topic and
   handler, counted in ``stats.handler_errors``, and the subscription goes on.
4. **At most once.** The broker is transport, not storage. A message can be lost
   (Redis away, a backlog full, a node dying); it is never duplicated. The
   database is the truth: clients recover anything missed by syncing from their
   cursor, and ``on_reconnect`` hooks tell the gateway when that is needed.
5. **publish never raises for a transport fault.** It runs in the message path,
   after the commit; a fault there is logged, counted in
   ``stats.publish_failures`` and shown by ``healthy``/``last_error``.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# A handler gets the payload exactly as published; it may be sync or async.
Handler = Callable[[bytes], Awaitable[None]] | Callable[[bytes], None]
# Called after the transport came back from a fault; it may be sync or async.
ReconnectHook = Callable[[], Awaitable[None]] | Callable[[], None]

# Topic names: dotted words, the same for both brokers. No glob characters, so
# a topic can never be mistaken for a Redis pattern; 200 characters is far more
# than `user.<uuid>` needs.
_TOPIC = re.compile(r"[A-Za-z0-9_.:\-]{1,200}")


def check_topic(topic: str) -> str:
    """Return ``topic`` if it is a valid topic name, else raise ``ValueError`` (our bug)."""
    if not isinstance(topic, str) or not _TOPIC.fullmatch(topic):
        raise ValueError(f"invalid broker topic {topic!r}: use letters, digits and . _ : -")
    return topic


@dataclass
class BrokerStats:
    """Counters for ``/metrics``; they only ever grow."""

    # Messages this node published that never reached the transport (Redis
    # error or outbox full). Local subscribers still got them.
    publish_failures: int = 0
    # Messages dropped before a local handler saw them: the topic's backlog was
    # full because a handler is too slow.
    delivery_drops: int = 0
    # Handler calls that raised.
    handler_errors: int = 0
    # Times the transport came back after a fault.
    reconnects: int = 0


class Broker(abc.ABC):
    """Publish/subscribe on named topics between the nodes of one deployment.

    Life cycle: ``await start()``, then use, then ``await close()``. ``close`` is
    idempotent, cancels and awaits every task the broker started, and drops
    undelivered messages (at most once).
    """

    def __init__(self) -> None:
        self.stats = BrokerStats()
        # Hooks run after the transport reconnects. Messages published while it
        # was down are lost in transport, so the gateway registers a hook here
        # that tells its clients to resync by cursor from the database.
        self.on_reconnect: list[ReconnectHook] = []

    # False where no other node can hear a publish (the one-process broker): the
    # cluster then skips encoding what only this node would read back.
    reaches_other_nodes: bool = True

    @property
    @abc.abstractmethod
    def healthy(self) -> bool:
        """True while the transport works; for ``/healthz`` and ``/metrics``."""

    @property
    @abc.abstractmethod
    def last_error(self) -> str | None:
        """What made the broker unhealthy (None while it is healthy)."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Start the broker's tasks. Does not fail if the transport is away."""

    @abc.abstractmethod
    async def publish(self, topic: str, payload: bytes) -> None:
        """Send ``payload`` to every subscriber of ``topic`` on every node, this one included.

        Returns without waiting for delivery; never raises for a transport fault.
        """

    @abc.abstractmethod
    async def subscribe(self, topic: str, handler: Handler) -> None:
        """Call ``handler(payload)`` for each message on ``topic`` from now on.

        Subscribing the same handler to the same topic twice has no effect.
        """

    @abc.abstractmethod
    async def unsubscribe(self, topic: str, handler: Handler) -> None:
        """Stop calling ``handler`` for ``topic``; unknown pairs are ignored.

        A call already running finishes; later messages no longer reach it.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop every task the broker started and release the transport."""
