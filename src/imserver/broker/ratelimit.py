"""Per-user token buckets shared by every node, in Redis.

The policy pipeline's rate limit (``policy/ratelimit.py``) keeps its buckets in
each node's memory, so with several nodes a user gets each node's allowance.
When a Redis broker is configured, :class:`RedisTokenBuckets` keeps one more
bucket per user and kind (messages, posts) in Redis, taken atomically by a Lua
script, so the allowance holds across the cluster. The node's own bucket still
applies first (it is never stricter than the shared one at the same rate), and
it is what remains while Redis is away: the limiter then allows, logging the
fault once and the recovery once, so a Redis outage never stops sending.

Time is the caller's (the injected clock, in seconds), as in the pure buckets.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import redis.asyncio as redis_asyncio

if TYPE_CHECKING:
    from ..policy.ratelimit import Rate

log = logging.getLogger("imserver.broker.ratelimit")

# One bucket: a hash {t: tokens, a: time of last refill}. Refill, take one token
# if there is one, store, and expire the key once it would be full again anyway.
TAKE = """
local capacity = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 't', 'a')
local tokens = tonumber(v[1])
local at = tonumber(v[2])
if tokens == nil or at == nil then tokens = capacity; at = now end
if now > at then tokens = math.min(capacity, tokens + (now - at) * refill); at = now end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / refill end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'a', tostring(at))
redis.call('EXPIRE', KEYS[1], math.ceil((capacity - tokens) / refill) + 1)
return tostring(wait)
"""
# A Redis that does not answer within this is treated as away (the send goes on).
TIMEOUT_SECONDS = 0.5


class RedisTokenBuckets:
    """Cluster-wide buckets for the rates named ``messages`` and ``posts`` (PolicyGate.shared_limits)."""

    def __init__(self, url: str, rates: dict[str, Rate], *, prefix: str = "imserver:") -> None:
        self._client = redis_asyncio.Redis.from_url(
            url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
        )
        self._take = self._client.register_script(TAKE)
        self.rates = rates
        self.prefix = prefix
        self.healthy = True

    async def take(self, bucket: str, user_id: int, now: float) -> float | None:
        """Take a token from ``user_id``'s shared ``bucket``: None if taken (or Redis is away), else the wait."""
        rate = self.rates[bucket]
        try:
            wait = float(
                await self._take(
                    keys=[f"{self.prefix}rate:{bucket}:{user_id}"],
                    args=[rate.capacity, rate.refill_per_second, repr(now)],
                )
            )
        except (redis_asyncio.RedisError, OSError) as exc:
            if self.healthy:
                self.healthy = False
                log.error("shared rate limits: Redis unreachable (%s); limits are per node until it is back",
                          type(exc).__name__)
            return None
        if not self.healthy:
            self.healthy = True
            log.info("shared rate limits: Redis reachable again; limits hold across the cluster")
        return wait if wait > 0 else None

    async def close(self) -> None:
        await self._client.aclose()
