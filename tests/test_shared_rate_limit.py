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
