"""An unexpected error is one 500 answer and one logged traceback; the connection stays usable.

The probe saw every 500 close the keep-alive connection and log two
tracebacks (the Exception handler's, then the server's after
ServerErrorMiddleware re-raised).
"""

from __future__ import annotations

import asyncio
import logging


async def test_a_500_keeps_the_connection_and_logs_one_traceback(server, caplog):
    async def boom() -> dict:
        raise RuntimeError("planted failure")

    server.app.router.add_api_route("/test-only/boom", boom, methods=["GET"])
    caplog.set_level(logging.ERROR)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        request = b"GET /test-only/boom HTTP/1.1\r\nHost: t\r\n\r\nGET /api/v1/agreement HTTP/1.1\r\nHost: t\r\n\r\n"
        writer.write(request)
        await writer.drain()
        first = await asyncio.wait_for(read_response(reader), 5)
        second = await asyncio.wait_for(read_response(reader), 5)
    finally:
        writer.close()
    assert first[0].startswith(b"HTTP/1.1 500"), first
    assert b'"code":"internal"' in first[1]
    assert b"connection: close" not in first[0].lower()
    assert second[0].startswith(b"HTTP/1.1 200"), second  # same connection, next request answered
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1, [r.getMessage() for r in tracebacks]


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)
