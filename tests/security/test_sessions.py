"""Sessions end: a WebSocket closes when its token expires; operator tokens last hours and end when idle.

The probe kept a socket authenticated with a 3 s token and still got `accepted`
acks 8 s later; operator tokens lasted 30 days.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
import websockets

from imserver.domain.clock import FrozenClock
from imserver.domain.enums import Role

from ..helpers import operator, register

TTL = 2  # seconds: the token's whole life in the WebSocket test


@pytest.fixture
def settings(settings):
    settings.token_ttl_seconds = TTL
    return settings


async def test_a_websocket_closes_when_its_token_expires(server, client):
    user = await register(client, verified=True)
    started = asyncio.get_running_loop().time()
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": user["token"]}))
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello"
        frames = []
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), TTL + 5)))
        elapsed = asyncio.get_running_loop().time() - started
    assert closed.value.rcvd.code == 4003, closed.value
    assert [f["kind"] for f in frames if f["type"] == "notice"] == ["session_expired"], frames
    assert frames[-1]["type"] == "notice"  # the notice is the last frame before the close
    assert TTL - 0.5 <= elapsed <= TTL + 3, elapsed


class Later(FrozenClock):
    def __init__(self) -> None:
        super().__init__(datetime.now(UTC))


@pytest.fixture
def clock():
    return Later()


async def test_operator_tokens_last_hours_and_end_when_idle(http, app, clock):
    settings = app.state.settings
    assert settings.operator_token_ttl_seconds <= 12 * 3600  # hours, not the users' days
    op = await operator(http, app.state.services, Role.MODERATOR)
    assert (await http.get("/admin/v1/whoami", headers=op["headers"])).status_code == 200
    # Used every few minutes, it lives on...
    for _ in range(5):
        clock.advance(seconds=settings.operator_idle_timeout_seconds / 2)
        assert (await http.get("/admin/v1/whoami", headers=op["headers"])).status_code == 200
    # ...until left unused for the idle timeout.
    clock.advance(seconds=settings.operator_idle_timeout_seconds + 1)
    r = await http.get("/admin/v1/whoami", headers=op["headers"])
    assert r.status_code == 401, r.text


async def test_operator_tokens_expire_after_their_lifetime_even_when_used(http, app, clock):
    settings = app.state.settings
    op = await operator(http, app.state.services, Role.MODERATOR)
    lifetime = timedelta(seconds=settings.operator_token_ttl_seconds)
    step = timedelta(seconds=settings.operator_idle_timeout_seconds / 2)
    used = timedelta()
    while used + step < lifetime:
        clock.advance(seconds=step.total_seconds())
        used += step
        assert (await http.get("/admin/v1/whoami", headers=op["headers"])).status_code == 200
    clock.advance(seconds=(lifetime - used).total_seconds())
    assert (await http.get("/admin/v1/whoami", headers=op["headers"])).status_code == 401
