"""Per-key token buckets, pure given the time the caller passes in.

Each key (a user id) has a bucket of ``capacity`` tokens refilled at
``refill_per_second``; a send takes one token. An empty bucket refuses and says
how long until the next token (``retry_after``, seconds), which the ack carries.

Time is an argument, never read here: the caller passes seconds from one
clock (the pipeline passes ``now.timestamp()`` of the injected clock), so tests
are exact. A clock that steps backwards refills nothing; it never drains.

Memory is bounded. A bucket that has refilled to full is the same as no bucket,
so it can be forgotten: buckets are kept in least-recently-used order, every
new key drops up to :data:`EVICT_PER_INSERT` idle full buckets from the old end,
and at ``max_keys`` the oldest bucket is dropped even if not full (its user
gets a fresh bucket: lenient, and only under more active users than the bound).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

# Idle buckets dropped per new key: more than one, so the table shrinks back
# while new users arrive, yet a single insert never scans the whole table.
EVICT_PER_INSERT = 2
# Default bound on remembered buckets: ~100 bytes each, so ~10 MB per limiter.
DEFAULT_MAX_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class Rate:
    capacity: float  # the burst allowed after idling
    refill_per_second: float  # the sustained rate

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill_per_second <= 0:
            raise ValueError(f"a rate needs capacity >= 1 and refill > 0, not {self}")


class TokenBuckets:
    """Token buckets for many keys at one :class:`Rate`."""

    __slots__ = ("_buckets", "max_keys", "rate")

    def __init__(self, rate: Rate, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at); LRU order

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Hashable, now: float) -> float | None:
        """Take one token for ``key`` at time ``now``: None if taken, else the
        seconds until one will be there."""
        capacity, refill = self.rate.capacity, self.rate.refill_per_second
        entry = self._buckets.pop(key, None)  # re-inserted below: moves to the new end
        if entry is None:
            tokens, at = capacity, now
            self._evict(now)
        else:
            tokens, at = entry
            if now > at:
                tokens = min(capacity, tokens + (now - at) * refill)
                at = now
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, at)
            return None
        self._buckets[key] = (tokens, at)
        return (1.0 - tokens) / refill

    def _evict(self, now: float) -> None:
        buckets = self._buckets
        capacity, refill = self.rate.capacity, self.rate.refill_per_second
        for _ in range(EVICT_PER_INSERT):
            if not buckets:
                return
            oldest = next(iter(buckets))
            tokens, at = buckets[oldest]
            if tokens + (now - at) * refill < capacity:
                break  # not idle long enough; newer ones are likely busier
            del buckets[oldest]
        while len(buckets) >= self.max_keys:
            del buckets[next(iter(buckets))]
