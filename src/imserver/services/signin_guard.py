"""Sign-in throttling for users and operators: growing delays, never a lockout.

Failed sign-ins are counted per account (kind and handle) and per client
address. Past a free allowance each further failure makes the next attempt
wait, the wait doubling up to a cap (:func:`delay_after`, a pure function).
An attempt made while a wait runs is refused with 429 ``signin_throttled`` and a
``retry_after``, *without* checking the password and without counting: so a
guesser gets at most one guess per wait, cannot make the wait longer than the
cap, and the account's owner, with the right password, is in after one wait at
most. A success clears the account's count (not the address's: a guesser with
one account of their own could otherwise reset theirs between guesses).

Counts live in Redis when the broker is Redis (every node sees every
failure) and in a bounded in-memory table otherwise. Should Redis fail, the
node falls back to its own memory rather than refusing every sign-in.

Concurrent attempts that pass the check before any of them fails each get a
guess; the window is one password verification long.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..domain.clock import Clock
from ..domain.enums import PrincipalKind
from ..domain.errors import Code, Throttled

log = logging.getLogger("imserver.signin")

# Entries the in-memory table keeps; the least recently failed are dropped past
# this, which bounds memory under an address-spraying flood (~200 bytes each).
MEMORY_MAX_ENTRIES = 100_000


@dataclass(frozen=True, slots=True)
class SigninLimits:
    account_free: int = 5
    ip_free: int = 20
    base_delay: float = 1.0
    max_delay: float = 60.0
    forget_after: float = 3600.0


def delay_after(failures: int, free: int, limits: SigninLimits) -> float:
    """Seconds the next attempt waits after `failures` failures (0 within the free allowance)."""
    if failures <= free:
        return 0.0
    exponent = min(failures - free - 1, 32)  # 2**32 s is past any cap: no float overflow
    return min(limits.base_delay * 2.0**exponent, limits.max_delay)


@dataclass(frozen=True, slots=True)
class SigninFailure:
    """What a failure listener hears (the records side writes it to the sign-in log)."""

    kind: PrincipalKind
    handle: str
    client_ip: str | None
    at: float  # unix seconds
    throttled: bool  # refused by the throttle (no password was checked)


FailureListener = Callable[[SigninFailure], Awaitable[None]]


class FailureStore(Protocol):
    async def get(self, key: str) -> tuple[int, float]:
        """(failures, unix time of the last one); (0, 0.0) when none is remembered."""

    async def add(self, key: str, now: float) -> None: ...

    async def clear(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryFailures:
    """One node's counts, least recently failed dropped first past MEMORY_MAX_ENTRIES."""

    def __init__(self, forget_after: float, max_entries: int = MEMORY_MAX_ENTRIES) -> None:
        self.forget_after = forget_after
        self.max_entries = max_entries
        self._rows: OrderedDict[str, tuple[int, float]] = OrderedDict()

    async def get(self, key: str) -> tuple[int, float]:
        return self._rows.get(key, (0, 0.0))

    async def add(self, key: str, now: float) -> None:
        failures, last = self._rows.pop(key, (0, 0.0))
        if now - last > self.forget_after:
            failures = 0
        self._rows[key] = (failures + 1, now)
        while len(self._rows) > self.max_entries:
            self._rows.popitem(last=False)

    async def clear(self, key: str) -> None:
        self._rows.pop(key, None)

    async def close(self) -> None:
        self._rows.clear()


class RedisFailures:
    """Counts shared by every node: one hash per key, expiring after forget_after."""

    def __init__(self, url: str, prefix: str, forget_after: float) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        self.prefix = prefix
        self.forget_after = forget_after
        self._fallback = MemoryFailures(forget_after)

    async def get(self, key: str) -> tuple[int, float]:
        try:
            failures, last = await self._redis.hmget(self.prefix + key, "n", "t")
        except Exception as exc:  # noqa: BLE001 - redis down: this node's memory stands in
            log.warning("sign-in counts: redis unavailable (%s); using this node's memory", type(exc).__name__)
            return await self._fallback.get(key)
        return (int(failures), float(last)) if failures is not None else (0, 0.0)

    async def add(self, key: str, now: float) -> None:
        await self._fallback.add(key, now)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(self.prefix + key, "n", 1)
                pipe.hset(self.prefix + key, "t", repr(now))
                pipe.expire(self.prefix + key, max(1, int(self.forget_after)))
                await pipe.execute()
        except Exception as exc:  # noqa: BLE001
            log.warning("sign-in counts: redis unavailable (%s); using this node's memory", type(exc).__name__)

    async def clear(self, key: str) -> None:
        await self._fallback.clear(key)
        try:
            await self._redis.delete(self.prefix + key)
        except Exception as exc:  # noqa: BLE001
            log.warning("sign-in counts: redis unavailable (%s)", type(exc).__name__)

    async def close(self) -> None:
        await self._redis.aclose()


def failure_store(broker_url: str, prefix: str, forget_after: float) -> FailureStore:
    """Redis when the broker is Redis (cluster-wide counts), memory otherwise."""
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisFailures(broker_url, (prefix or "imserver:") + "signin:", forget_after)
    return MemoryFailures(forget_after)


@dataclass
class SigninGuard:
    store: FailureStore
    clock: Clock
    limits: SigninLimits = field(default_factory=SigninLimits)
    failure_listeners: list[FailureListener] = field(default_factory=list)

    @staticmethod
    def _account_key(kind: PrincipalKind, handle: str) -> str:
        # Hashed: the shared store holds no handles.
        return f"a:{kind.value}:" + hashlib.sha256(handle.encode("utf-8", "replace")).hexdigest()[:32]

    @staticmethod
    def _ip_key(client_ip: str | None) -> str | None:
        return f"i:{client_ip}" if client_ip else None

    async def check(self, kind: PrincipalKind, handle: str, client_ip: str | None) -> None:
        """Raise Throttled (``signin_throttled``) if this account or address must still wait."""
        now = self.clock.now().timestamp()
        wait = 0.0
        for key, free in ((self._account_key(kind, handle), self.limits.account_free), (self._ip_key(client_ip), self.limits.ip_free)):
            if key is None:
                continue
            failures, last = await self.store.get(key)
            if failures and now - last <= self.limits.forget_after:
                wait = max(wait, last + delay_after(failures, free, self.limits) - now)
        if wait > 0:
            await self._tell(SigninFailure(kind, handle, client_ip, now, throttled=True))
            retry_after = round(wait + 0.05, 1)  # rounded up a little: a client that waits exactly this is let in
            raise Throttled(
                f"too many failed sign-ins: retry in {retry_after} s", Code.SIGNIN_THROTTLED, retry_after=retry_after
            )

    async def failed(self, kind: PrincipalKind, handle: str, client_ip: str | None) -> None:
        now = self.clock.now().timestamp()
        await self.store.add(self._account_key(kind, handle), now)
        ip_key = self._ip_key(client_ip)
        if ip_key is not None:
            await self.store.add(ip_key, now)
        await self._tell(SigninFailure(kind, handle, client_ip, now, throttled=False))

    async def succeeded(self, kind: PrincipalKind, handle: str) -> None:
        await self.store.clear(self._account_key(kind, handle))

    async def _tell(self, failure: SigninFailure) -> None:
        for listener in self.failure_listeners:
            try:
                await listener(failure)
            except Exception:  # noqa: BLE001 - a broken listener must not turn a 401 into a 500
                log.exception("sign-in failure listener failed")
