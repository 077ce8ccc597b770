"""The broker's tasks, owned in one place (no orphan tasks).

A :class:`TaskOwner` runs one supervisor task that holds an
:class:`asyncio.TaskGroup` open. Every background task of a broker (the Redis
reader and writer, the per-topic handler runners) is a child of that group, so
``close()`` has exactly one thing to cancel and await, and afterwards nothing
the broker started is still running.

Children are expected to catch and log their own errors; one that escapes is a
bug, and it takes the group down: the owner logs it and reports ``crashed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskOwner:
    def __init__(self, name: str) -> None:
        self._name = name
        self._group: asyncio.TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closed = False
        self.crashed: str | None = None

    @property
    def running(self) -> bool:
        return self._group is not None and not self._closed

    async def start(self) -> None:
        """Open the task group; returns once ``spawn`` can be used."""
        if self._supervisor is not None:
            raise RuntimeError(f"{self._name} already started")
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._supervisor = asyncio.create_task(self._supervise(ready), name=self._name)
        await ready

    async def _supervise(self, ready: asyncio.Future[None]) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                ready.set_result(None)
                await asyncio.Event().wait()  # until close() cancels us
        except Exception as exc:  # a child's bug; see the module docstring
            self.crashed = repr(exc)
            log.exception("%s: a background task failed; the broker is stopped", self._name)
        finally:
            self._group = None
            if not ready.done():  # cancelled before the group opened
                ready.cancel()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> bool:
        """Run ``coro`` as a child of the group; False (and ``coro`` closed) if not running."""
        if not self.running:
            coro.close()
            return False
        assert self._group is not None
        self._group.create_task(coro, name=f"{self._name}:{name}")
        return True

    async def close(self) -> None:
        """Cancel every child and wait until all of them have finished."""
        self._closed = True
        supervisor = self._supervisor
        if supervisor is None or supervisor.done():
            return
        supervisor.cancel()
        # wait() rather than `await supervisor`: it does not re-raise the
        # supervisor's CancelledError, but does raise if close() itself is cancelled.
        await asyncio.wait({supervisor})
