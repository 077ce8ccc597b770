"""Local delivery: run a topic's handlers one at a time, in arrival order.

Both brokers end here: the memory broker hands every publish to
:meth:`Dispatcher.deliver`, the Redis broker hands it this node's own publishes
and every message its reader receives. ``deliver`` never blocks and never
raises, so neither a publisher nor the Redis reader ever waits for a handler.

Each topic has a backlog (a deque) and at most one runner task, a child of the
broker's :class:`~imserver.broker.tasks.TaskOwner`, which exists only while the
backlog is not empty. That gives sequential, ordered handling per topic while
a slow topic never holds up another; a quiet topic costs no task at all.
A backlog that is full means a handler cannot keep up; the message is dropped
and counted (at most once: the client resyncs by cursor, so a slow handler
never holds up the broker).
"""

from __future__ import annotations

import inspect
import logging
from collections import deque
from dataclasses import dataclass, field

from imserver.broker.base import BrokerStats, Handler
from imserver.broker.tasks import TaskOwner

log = logging.getLogger(__name__)

# Messages waiting per topic before new ones are dropped. Handlers only enqueue
# frames for connections, so a backlog this long means a handler is stuck, and
# holding more would only grow memory; 10,000 frames of ~1 KB is ~10 MB.
MAX_BACKLOG = 10_000


@dataclass(eq=False)
class _Topic:
    handlers: list[Handler] = field(default_factory=list)
    backlog: deque[bytes] = field(default_factory=deque)
    running: bool = False  # a runner task is draining the backlog
    dropping: bool = False  # a drop was logged; cleared once the backlog drains


class Dispatcher:
    def __init__(self, tasks: TaskOwner, stats: BrokerStats, *, max_backlog: int = MAX_BACKLOG) -> None:
        self._tasks = tasks
        self._stats = stats
        self._max_backlog = max_backlog
        self._topics: dict[str, _Topic] = {}

    def topics(self) -> set[str]:
        """The topics that have at least one handler."""
        return set(self._topics)

    def add(self, topic: str, handler: Handler) -> bool:
        """Register ``handler``; True if it is the topic's first one."""
        entry = self._topics.get(topic)
        first = entry is None
        if entry is None:
            entry = self._topics[topic] = _Topic()
        if handler not in entry.handlers:
            entry.handlers.append(handler)
        return first

    def remove(self, topic: str, handler: Handler) -> bool:
        """Unregister ``handler``; True if the topic has no handler left (and is forgotten)."""
        entry = self._topics.get(topic)
        if entry is None or handler not in entry.handlers:
            return False
        entry.handlers.remove(handler)
        if entry.handlers:
            return False
        entry.backlog.clear()  # nobody is left to see these
        del self._topics[topic]
        return True

    def deliver(self, topic: str, payload: bytes) -> None:
        """Queue ``payload`` for the topic's handlers; ignored if the topic has none."""
        entry = self._topics.get(topic)
        if entry is None:
            return
        if len(entry.backlog) >= self._max_backlog:
            self._stats.delivery_drops += 1
            if not entry.dropping:
                entry.dropping = True
                log.warning(
                    "broker: topic %r has %d undelivered messages; dropping new ones", topic, len(entry.backlog)
                )
            return
        entry.backlog.append(payload)
        if not entry.running:
            entry.running = self._tasks.spawn(self._run(topic, entry), name=f"topic:{topic}")

    async def _run(self, topic: str, entry: _Topic) -> None:
        try:
            while entry.backlog:
                payload = entry.backlog.popleft()
                # A copy: a handler may (un)subscribe while we iterate.
                for handler in tuple(entry.handlers):
                    if handler in entry.handlers:  # not unsubscribed meanwhile
                        await self._call(topic, handler, payload)
            entry.dropping = False
        finally:
            entry.running = False

    async def _call(self, topic: str, handler: Handler, payload: bytes) -> None:
        try:
            result = handler(payload)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self._stats.handler_errors += 1
            log.exception(
                "broker: handler %s failed on topic %r (%d-byte message); the subscription goes on",
                getattr(handler, "__qualname__", repr(handler)),
                topic,
                len(payload),
            )
