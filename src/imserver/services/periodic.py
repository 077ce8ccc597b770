"""One background loop, started and stopped by its owner (no orphan tasks).

``Periodic(name, interval, step)`` runs ``await step()`` every `interval`
seconds, or sooner when :meth:`nudge` is called (a new outbox record need not
wait a whole interval). It is one task, cancelled and awaited on :meth:`stop`;
a failing step is logged with its name and the loop carries on, since the next
step retries the same work (every step here is idempotent).

Stopping does not rely on the cancellation alone: a step cancelled inside a
database call can return as if nothing had happened (seen with the lowest
SQLAlchemy and aiosqlite this package allows: the retention step swallowed the
cancellation and returned), and the loop would then wait a whole interval with
its owner waiting on it: a shutdown hung for hours. So :meth:`stop` also sets
a flag and wakes the wait; the loop ends at its next turn either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ..domain.errors import Unavailable

log = logging.getLogger("imserver.periodic")


class Periodic:
    def __init__(self, name: str, interval: float, step: Callable[[], Awaitable[object]]) -> None:
        if interval <= 0:
            raise ValueError(f"{name}: the interval must be positive")
        self.name = name
        self.interval = interval
        self.step = step
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._wake.clear()
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()  # a cancellation the step swallowed still ends the loop
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def nudge(self) -> None:
        """Run the next step now rather than at the end of the interval."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Unavailable:
                pass  # the database logs its fault and its recovery once each; the next step retries
            except Exception:  # noqa: BLE001 - logged with context; the next step retries
                log.exception("%s: step failed", self.name)
            if self._stopping:
                return
            # asyncio.timeout rather than wait_for: no inner task per wait.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            if not self._stopping:
                self._wake.clear()
