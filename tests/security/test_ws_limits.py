"""WebSocket limits below the application: ping floods, the auth deadline, invalid UTF-8, quiet logs.

The probe: a client flooding pings without reading grew server memory without
bound and its unauthenticated socket outlived the 10 s auth deadline; each
invalid-UTF-8 frame logged a traceback; at debug level frames were logged
with most of the bearer token and message bodies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from ..helpers import register
from .wsraw import PING, TEXT, close_code, connect, frame, read_frame

AUTH_TIMEOUT = 1.5  # seconds, for these tests only


@pytest.fixture
def settings(settings):
    settings.auth_timeout_seconds = AUTH_TIMEOUT
    return settings


async def flood(writer: asyncio.StreamWriter, seconds: float, payload: bytes = b"x" * 125) -> int:
    """Send full-size pings as fast as the socket takes them, reading nothing; pings sent."""
    ping = frame(PING, payload)
    sent = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            writer.write(ping * 64)
            sent += 64
            async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
                await writer.drain()
    except (ConnectionError, TimeoutError):
        pass
    return sent


async def test_a_ping_flooder_is_closed_with_1008(server, client):
    # Authenticated first: on a slow machine the server may not have metered the
    # whole flood before the auth deadline, which would close it first (4001);
    # the unauthenticated flooder and that deadline are the next test's.
    user = await register(client)
    reader, writer = await connect(server.host, server.port)
    try:
        writer.write(frame(TEXT, json.dumps({"type": "auth", "token": user["token"]}).encode()))
        _, hello = await asyncio.wait_for(read_frame(reader), 5)
        assert json.loads(hello)["type"] == "hello"
        sent = await flood(writer, 1.0)
        assert sent > server.app.state.settings.ws_frames_burst
        assert await close_code(reader, 5) in (1008, None)  # a close frame, or dropped if it read nothing
        await asyncio.sleep(0.2)
        assert server.services.metrics.connections._value.get() == 0  # released on the server
    finally:
        writer.close()


async def test_the_auth_deadline_holds_during_a_ping_flood(server):
    reader, writer = await connect(server.host, server.port)
    started = time.monotonic()
    try:
        await flood(writer, AUTH_TIMEOUT + 2)
        code = await close_code(reader, 1)
        assert time.monotonic() - started < AUTH_TIMEOUT + 4
        assert code in (1008, 4001, None)
    finally:
        writer.close()


async def test_the_auth_deadline_holds_for_a_polite_pinger(server):
    reader, writer = await connect(server.host, server.port)
    started = time.monotonic()
    try:
        for _ in range(int(AUTH_TIMEOUT * 20)):  # 20 pings a second: within the rate
            writer.write(frame(PING, b"hi"))
            await asyncio.sleep(0.05)
        assert await close_code(reader, 3) == 4001
        assert time.monotonic() - started < AUTH_TIMEOUT + 3
    finally:
        writer.close()


async def test_invalid_utf8_closes_1007_with_one_line_and_no_traceback(server, caplog):
    caplog.set_level(logging.INFO)
    for _ in range(3):
        reader, writer = await connect(server.host, server.port)
        try:
            writer.write(frame(TEXT, b'{"type": "auth", "token": "\xff\xfe"}'))
            assert await close_code(reader, 5) == 1007
        finally:
            writer.close()
    await asyncio.sleep(0.1)
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
    utf8 = [r for r in caplog.records if "UTF-8" in r.getMessage()]
    assert len(utf8) == 3, [r.getMessage() for r in caplog.records]


async def test_debug_logs_carry_no_token_and_no_body(server, client, caplog):
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    body = "the secret body of a message 7f3a"
    uvicorn_error = logging.getLogger("uvicorn.error")
    old_level = uvicorn_error.level
    uvicorn_error.setLevel(logging.DEBUG)  # as `imserver serve --log-level debug`
    caplog.set_level(logging.DEBUG)
    try:
        reader, writer = await connect(server.host, server.port)
        try:
            writer.write(frame(TEXT, json.dumps({"type": "auth", "token": alice["token"]}).encode()))
            send = {"type": "send", "client_msg_id": "m1", "to": {"user": bob["id"]}, "body": body}
            writer.write(frame(TEXT, json.dumps(send).encode()))
            seen = b""
            try:
                async with asyncio.timeout(5):
                    while b'"ack"' not in seen:
                        seen += await reader.read(4096)
            except TimeoutError:
                raise AssertionError(seen) from None
        finally:
            writer.close()
    finally:
        uvicorn_error.setLevel(old_level)
    assert caplog.records  # debug logging was on and logged something
    text = caplog.text
    assert alice["token"][:12] not in text
    assert body[:12] not in text
