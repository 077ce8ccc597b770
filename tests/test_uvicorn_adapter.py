"""The coupling to uvicorn's internals (gateway/uvicorn_sansio.py): used when it can be, fallen back from otherwise.

If a uvicorn release renames what the fast path reads, the first test fails
and names what is missing; the gateway meanwhile keeps working on plain ASGI
messages, which the second test checks on uvicorn's other WebSocket protocol.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import uvicorn

from imserver.app import create_app
from imserver.client import Client
from imserver.gateway import uvicorn_sansio

from .conftest import free_port
from .helpers import register


def _only_connection(app):
    (conn,) = app.state.live_sockets
    return conn


async def test_the_fast_path_is_taken_under_serve_settings(server, client):
    user, peer = await register(client, verified=True), await register(client, verified=True)
    async with await Client.connect(server.ws_url, user["token"]) as c:
        transport = _only_connection(server.app).transport
        fast = transport._proto
        proto = uvicorn_sansio.protocol_of(transport.ws)
        assert fast is not None, (
            f"uvicorn {uvicorn.__version__} no longer offers what gateway/uvicorn_sansio.py reads: "
            f"missing {uvicorn_sansio.missing(proto)} on {type(proto).__name__}"
        )
        assert (await c.send("hi", to_user=peer["id"])).status == "accepted"


def test_missing_names_what_is_gone():
    class Bare:
        conn = object()

    assert uvicorn_sansio.missing(Bare()) == [
        "transport", "close_sent", "receive", "conn.send_text", "conn.data_to_send",
    ]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # that protocol is deprecated: the point here
async def test_plain_asgi_fallback_serves_the_protocol(settings, db, clock):
    """uvicorn's older ``websockets`` protocol has no sans-I/O object: the ASGI path must carry everything."""
    app = create_app(settings, clock=clock, db=db)
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", ws="websockets",
                            ws_per_message_deflate=False, lifespan="on")
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    try:
        while not srv.started:
            assert not task.done(), task.result()
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{config.port}") as http:
            http.services = app.state.services
            alice, bob = await register(http, verified=True), await register(http, verified=True)
        url = f"ws://127.0.0.1:{config.port}/ws"
        async with await Client.connect(url, alice["token"]) as a, await Client.connect(url, bob["token"]) as b:
            assert all(c.transport._proto is None for c in app.state.live_sockets)
            ack = await a.send("over plain ASGI", to_user=bob["id"])
            assert ack.status == "accepted"
            assert (await b.next_message()).body == "over plain ASGI"
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, timeout=10)
