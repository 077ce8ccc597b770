"""A WebSocket outlives the HTTP request-header deadline of the connection it was upgraded from.

The header deadline is armed when a connection opens; an upgrade makes no HTTP
request cycle, so the deadline used to fire on the upgraded connection and write
an HTTP 408 into the WebSocket stream (the client saw a frame with reserved bits
set, or a reset), ten seconds into every chat session.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from imserver.client import Client

from ..helpers import register

# The header deadline, shortened so the test outlives it quickly; the set-up's HTTP calls
# each open a connection of their own (no keep-alive), so the deadline never meets them idle.
DEADLINE_S = 3.0


@pytest.fixture
def settings(settings):
    settings.http_header_timeout_seconds = DEADLINE_S
    return settings


async def test_a_websocket_keeps_working_past_the_header_deadline(server):
    async with httpx.AsyncClient(base_url=server.base_url, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        http.services = server.services  # lets helpers.register verify users
        alice, bob = await register(http, verified=True), await register(http, verified=True)
    a = await Client.connect(server.ws_url, alice["token"])
    b = await Client.connect(server.ws_url, bob["token"])
    try:
        await asyncio.sleep(DEADLINE_S * 2)
        ack = await a.send("still here", to_user=bob["id"])
        assert ack.status == "accepted"
        assert (await b.next_message(5)).body == "still here"
    finally:
        await a.close()
        await b.close()
