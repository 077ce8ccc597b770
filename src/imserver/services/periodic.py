"""One background loop, started and stopped by its owner (no orphan tasks).

``Periodic(name, interval, step)`` runs ``await step()`` every `interval`
seconds, or sooner when :meth:`nudge` is called (a new outbox record need not
wait a whole interval). It is one task, cancelled and awaited on :meth:`stop`;
a failing step is logged with its name and the loop carries on, since the next
step retries the same work (every step here is idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

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

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def nudge(self) -> None:
        """Run the next step now rather than at the end of the interval."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - logged with context; the next step retries
                log.exception("%s: step failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
