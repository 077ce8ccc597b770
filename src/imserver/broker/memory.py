"""The one-process broker (``memory://``), the default.

Every publish goes straight to this process's subscribers through the
:class:`~imserver.broker.dispatch.Dispatcher`. There is no transport to lose, so
it is healthy from construction until ``close()`` and its ``on_reconnect``
hooks never run.
"""

from __future__ import annotations

from imserver.broker.base import Broker, Handler, check_topic
from imserver.broker.dispatch import Dispatcher
from imserver.broker.tasks import TaskOwner


class MemoryBroker(Broker):
    reaches_other_nodes = False  # one process: this node is the only subscriber

    def __init__(self) -> None:
        super().__init__()
        self._tasks = TaskOwner("imserver.broker.memory")
        self._dispatch = Dispatcher(self._tasks, self.stats)
        self._closed = False

    @property
    def healthy(self) -> bool:
        return not self._closed and self._tasks.crashed is None

    @property
    def last_error(self) -> str | None:
        return self._tasks.crashed or ("closed" if self._closed else None)

    async def start(self) -> None:
        await self._tasks.start()

    async def publish(self, topic: str, payload: bytes) -> None:
        check_topic(topic)
        if not self._tasks.running:
            # Closed (shutting down) or not started: there is nobody to deliver to.
            self.stats.publish_failures += 1
            return
        self._dispatch.deliver(topic, bytes(payload))

    async def subscribe(self, topic: str, handler: Handler) -> None:
        self._dispatch.add(check_topic(topic), handler)

    async def unsubscribe(self, topic: str, handler: Handler) -> None:
        self._dispatch.remove(check_topic(topic), handler)

    async def close(self) -> None:
        self._closed = True
        await self._tasks.close()
