"""Throttling of operator sign-in after repeated wrong passwords.

Wraps the one password check (``Accounts.operator_login``): after
``max_failures`` failures within ``window`` for one handle, or from one client
address, further attempts are refused with ``signin_throttled`` (429) until the
oldest failure leaves the window. A success clears the handle's count. The
counts live in this process: each node throttles what it sees, which bounds a
guessing rate per node without a shared store.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from ..domain.clock import Clock
from ..domain.principals import Principal
from ..domain.enums import Role
from ..domain.errors import Code, Throttled, Unauthenticated
from .accounts import Accounts

MAX_KEYS = 100_000  # bounds memory under a spray of handles or addresses; the oldest keys go first


class SignInThrottle:
    def __init__(self, clock: Clock, *, max_failures: int, window: timedelta) -> None:
        self.clock = clock
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}

    async def operator_login(
        self, accounts: Accounts, *, handle: str, password: str, client_ip: str | None
    ) -> tuple[str, Principal]:
        keys = [f"handle:{handle.strip().lower()}"] + ([f"ip:{client_ip}"] if client_ip else [])
        now = self.clock.now()
        wait = max(self._wait(key, now) for key in keys)
        if wait > 0:
            raise Throttled(
                "too many wrong passwords; wait before trying again",
                Code.SIGNIN_THROTTLED,
                retry_after=int(wait) + 1,
            )
        try:
            result = await accounts.operator_login(handle=handle, password=password)
        except Unauthenticated:
            for key in keys:
                self._record(key, now)
            raise
        self._failures.pop(keys[0], None)
        return result

    def _wait(self, key: str, now: datetime) -> float:
        """Seconds until `key` may try again (0: now)."""
        failures = self._failures.get(key)
        if not failures:
            return 0.0
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if len(failures) < self.max_failures:
            return 0.0
        return (failures[0] + self.window - now).total_seconds()

    def _record(self, key: str, now: datetime) -> None:
        if key not in self._failures and len(self._failures) >= MAX_KEYS:
            self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(key, deque(maxlen=self.max_failures)).append(now)
