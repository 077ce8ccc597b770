"""Rate limits across the cluster: two nodes sharing one Redis share each user's allowance.

Two apps in one process stand for two nodes: the same database, the same Redis
(a key prefix of the test's own). A burst of 3 lets a user send 3 messages in
all, whichever node they go through; with Redis unreachable each node falls
back to its own buckets (3 each) and sending goes on.
"""

from __future__ import annotations

import contextlib
import uuid

import httpx
import pytest

from imserver.app import create_app
from imserver.domain.errors import Code, PolicyDenied
from imserver.domain.policy_types import Outgoing, OutgoingKind

from .conftest import REDIS_URL, free_port
from .helpers import register

pytestmark = pytest.mark.redis
BURST = 3


@contextlib.asynccontextmanager
async def node(settings, db, broker_url: str, prefix: str):
    s = settings.model_copy(update={
        "broker_url": broker_url, "broker_channel_prefix": prefix,
        "rate_messages_burst": BURST, "rate_messages_per_second": 0.001,  # no refill during the test
    })
    app = create_app(s, db=db)
    async with app.router.lifespan_context(app):
        yield app


async def sends_allowed(svc, user_id: int, tries: int) -> int:
    allowed = 0
    for _ in range(tries):
        try:
            await svc.policy.check(Outgoing(OutgoingKind.MESSAGE_DIRECT, user_id, "hi"))
        except PolicyDenied as exc:
            assert exc.code is Code.RATE_LIMITED and exc.extra["retry_after"] > 0
            continue
        allowed += 1
    return allowed


async def test_one_allowance_across_two_nodes(settings, db):
    prefix = f"imserver-test-{uuid.uuid4().hex[:10]}:"
    async with node(settings, db, REDIS_URL, prefix) as a, node(settings, db, REDIS_URL, prefix) as b:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://a") as http:
            http.services = a.state.services
            user = await register(http, verified=True)
        on_a = await sends_allowed(a.state.services, user["id"], 2)
        on_b = await sends_allowed(b.state.services, user["id"], 3)
        assert (on_a, on_b) == (2, 1)  # 3 in all, not 3 per node
        assert a.state.services.policy.shared_limits.healthy


async def test_per_node_while_redis_is_away(settings, db):
    away = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    prefix = f"imserver-test-{uuid.uuid4().hex[:10]}:"
    async with node(settings, db, away, prefix) as a, node(settings, db, away, prefix) as b:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://a") as http:
            http.services = a.state.services
            user = await register(http, verified=True)
        assert await sends_allowed(a.state.services, user["id"], 4) == BURST
        assert await sends_allowed(b.state.services, user["id"], 4) == BURST
        assert not a.state.services.policy.shared_limits.healthy


async def test_takes_of_one_loop_turn_share_one_round_trip_and_survive_a_script_flush():
    """Concurrent takes go to Redis in one pipeline, each answered as if alone; a Redis that
    forgot the script (a restart, SCRIPT FLUSH) gets it again without a refusal or an error."""
    import asyncio

    import redis.asyncio as redis_asyncio

    from imserver.broker.ratelimit import RedisTokenBuckets
    from imserver.policy.ratelimit import Rate

    prefix = f"imserver-test-{uuid.uuid4().hex[:8]}:"
    buckets = RedisTokenBuckets(REDIS_URL, {"messages": Rate(3, 0.001)}, prefix=prefix)
    admin = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        # Five takes from one user and one from another, all in one turn.
        waits = await asyncio.gather(*(buckets.take("messages", 1, 1000.0) for _ in range(5)),
                                     buckets.take("messages", 2, 1000.0))
        assert waits[:3] == [None, None, None] and all(w is not None and w > 0 for w in waits[3:5])
        assert waits[5] is None  # another user's bucket
        assert buckets.round_trips == 1 and buckets.healthy

        await admin.script_flush()
        assert await buckets.take("messages", 2, 1000.0) is None  # loaded again, the take counted
        assert await buckets.take("messages", 2, 1000.0) is None
        assert await buckets.take("messages", 2, 1000.0) is not None  # the 4th of a burst of 3
        assert buckets.healthy
    finally:
        keys = [k async for k in admin.scan_iter(f"{prefix}*")]
        if keys:
            await admin.delete(*keys)
        await admin.aclose()
        await buckets.close()
