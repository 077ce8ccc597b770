"""A WebSocket outlives the HTTP request-header deadline of the connection it was upgraded from.

The header deadline is armed when a connection opens; an upgrade makes no HTTP
request cycle, so the deadline used to fire on the upgraded connection and write
an HTTP 408 into the WebSocket stream (the client saw a frame with reserved bits
set, or a reset), ten seconds into every chat session.
"""

from __future__ import annotations

import asyncio

import pytest

from imserver.client import Client

from ..helpers import register

# The header deadline, shortened so the test outlives it quickly, yet longer than the test
# client keeps an idle HTTP connection (1 s), so the HTTP set-up is not what it cuts.
DEADLINE_S = 1.5


@pytest.fixture
def settings(settings):
    settings.http_header_timeout_seconds = DEADLINE_S
    return settings


async def test_a_websocket_keeps_working_past_the_header_deadline(server, client):
    alice, bob = await register(client, verified=True), await register(client, verified=True)
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
