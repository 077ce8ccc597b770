"""HTTP limits: body caps before reading, header and body deadlines, security headers, no Server header,
groups per user capped, conversations paged.

The probe: 10 MB JSON bodies were read and parsed before any check (also
unauthenticated, on admin routes); a request that sent its headers and stopped
was held open with no answer (90 s); no security headers; `Server: uvicorn`;
unlimited groups and an unpaged conversation list.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from imserver.domain.enums import Role

from ..helpers import operator, register

DEADLINE = 1.0  # header and body timeouts, for these tests only
GROUPS = 3


@pytest.fixture
def settings(settings):
    settings.http_header_timeout_seconds = DEADLINE
    settings.http_body_timeout_seconds = DEADLINE
    settings.max_groups_per_user = GROUPS
    return settings


async def raw(server, data: bytes, timeout: float = 5) -> bytes:
    """Send bytes on a fresh connection and read the answer until the server closes it."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout):
            return await reader.read(65536)
    finally:
        writer.close()


async def test_a_10mb_body_is_refused_before_it_is_read(server):
    started = time.monotonic()
    head = (
        b"POST /admin/v1/login HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\n"
        b"content-length: 10485760\r\n\r\n"
    )
    answer = await raw(server, head + b'{"handle": "' + b"x" * 1000)  # the rest never comes
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b'"code":"body_too_large"' in answer
    assert time.monotonic() - started < DEADLINE  # answered at once, not after a read timeout


async def test_a_chunked_body_over_the_cap_is_refused(server):
    head = b"POST /api/v1/login HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    chunk = b"400\r\n" + b" " * 1024 + b"\r\n"  # 1 KiB of whitespace per chunk, no Content-Length
    answer = await raw(server, head + chunk * 100 + b"0\r\n\r\n")  # 100 KiB: over the 64 KiB cap
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b'"code":"body_too_large"' in answer


async def test_long_text_routes_take_the_large_cap(client, server):
    admin = await operator(client, server.services, Role.ADMIN)
    text = "An agreement of some length. " * 7000  # ~200 KB: over 64 KiB, under 1 MiB
    r = await client.post("/admin/v1/agreements", json={"text": text[:100_000]}, headers=admin["headers"])
    assert r.status_code != 413, r.text
    r = await client.post("/api/v1/groups", json={"name": "x" * 100_000}, headers=admin["headers"])
    assert r.status_code == 413  # an ordinary route keeps the 64 KiB cap


async def test_headers_that_stop_arriving_get_408(server):
    started = time.monotonic()
    answer = await raw(server, b"GET /api/v1/agreement HTTP/1.1\r\nHost: t\r\nX-Slow: ", timeout=DEADLINE + 4)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert DEADLINE - 0.2 <= time.monotonic() - started <= DEADLINE + 3


async def test_a_body_that_stops_arriving_gets_408(server):
    head = b"POST /api/v1/login HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"
    started = time.monotonic()
    answer = await raw(server, head + b'{"handle"', timeout=DEADLINE + 4)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"code":"request_timeout"' in answer
    assert time.monotonic() - started <= DEADLINE + 3


async def test_every_response_has_the_security_headers_and_no_server_header(client):
    user = await register(client)
    responses = [
        await client.get("/api/v1/agreement"),
        await client.get("/api/v1/me", headers=user["headers"]),
        await client.get("/api/v1/me"),  # 401
        await client.get("/api/v1/users/x", headers=user["headers"]),  # 422
        await client.get("/nowhere"),  # 404
        await client.get("/healthz"),
        await client.post("/api/v1/login", json={"handle": user["handle"], "password": "wrong password"}),
    ]
    for r in responses:
        assert r.headers["x-content-type-options"] == "nosniff", r.url
        assert r.headers["referrer-policy"] == "no-referrer", r.url
        assert r.headers["x-frame-options"] == "DENY", r.url
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], r.url
        assert "server" not in r.headers, (r.url, r.headers.get("server"))
    login = await client.post("/api/v1/login", json={"handle": user["handle"], "password": "correct horse battery"})
    assert login.status_code == 200 and login.headers["cache-control"] == "no-store"


async def test_groups_per_user_are_capped(client):
    user = await register(client)
    for i in range(GROUPS):
        r = await client.post("/api/v1/groups", json={"name": f"g{i}"}, headers=user["headers"])
        assert r.status_code == 201, r.text
    r = await client.post("/api/v1/groups", json={"name": "one too many"}, headers=user["headers"])
    assert r.status_code == 409 and r.json()["code"] == "group_limit", r.text


async def test_conversations_are_paged(client):
    users = [await register(client) for _ in range(GROUPS)]
    me = users[0]
    ids = []
    for u in users:  # each member creates one group with me in it
        r = await client.post("/api/v1/groups", json={"name": "g", "members": [me["id"]]}, headers=u["headers"])
        ids.append(r.json()["id"])
    seen, after = [], 0
    while True:
        r = await client.get("/api/v1/conversations", params={"after": after, "limit": 2}, headers=me["headers"])
        page = r.json()
        assert len(page["items"]) <= 2
        seen += [c["id"] for c in page["items"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == sorted(ids)
