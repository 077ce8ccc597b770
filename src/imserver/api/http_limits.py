"""HTTP limits and headers, below the routes: body size, read timeouts, security headers.

* :class:`BodyGuard` (ASGI middleware): a request body over its route's cap is
  refused with 413 ``body_too_large`` before it is read (a declared
  Content-Length over the cap) or as soon as the bytes read pass it (chunked);
  a body that stops arriving for ``http_body_timeout_seconds`` is a 408.
  Most routes take 64 KiB; the few that carry long text (an agreement, a
  post, a bulk term list) take ``http_max_body_bytes`` (1 MiB).
* :class:`SecurityHeaders` (ASGI middleware): every response says
  ``nosniff``, no referrer, no framing; API responses are ``no-store`` (they
  carry tokens and personal data).
* :func:`header_timeout_protocol`: uvicorn's HTTP protocol with a deadline on
  request headers: a client that connects (or finishes a request) and does not
  send complete headers within ``http_header_timeout_seconds`` gets 408 and
  the connection is closed. (uvicorn's keep-alive timeout is reset by every
  byte, so a client trickling a header held a connection open indefinitely.)
"""

from __future__ import annotations

import asyncio
import re

from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from ..domain.errors import Code
from .asgi import TrackedSend, send_json_error

# Routes whose bodies may reach the large cap: long texts by design.
LARGE_BODY_ROUTES = (
    re.compile(r"^/admin/v1/agreements$"),  # agreement text, up to 100,000 characters
    re.compile(r"^/admin/v1/terms/bulk$"),  # a term list
    re.compile(r"^/api/v1/public-accounts/[^/]+/posts$"),  # a post body, up to 100,000 characters
    re.compile(r"^/console/agreements$"),  # the console's agreement form (its own cap: MAX_FORM_BYTES)
)


class BodyGuard:
    def __init__(self, app, *, default_cap: int, large_cap: int, body_timeout: float) -> None:
        self.app = app
        self.default_cap = default_cap
        self.large_cap = large_cap
        self.body_timeout = body_timeout

    def cap_for(self, path: str) -> int:
        return self.large_cap if any(r.match(path) for r in LARGE_BODY_ROUTES) else self.default_cap

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap_for(scope["path"])
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            await send_json_error(send, 413, Code.BODY_TOO_LARGE, f"the body is over {cap} bytes", close=True)
            return
        received = 0
        body_done = False  # after the last body chunk, receive() only waits for a disconnect: no deadline
        tracked = TrackedSend(send)

        async def guarded_receive():
            nonlocal received, body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout(self.body_timeout):
                    message = await receive()
            except TimeoutError:
                raise BodyRefused(408, Code.REQUEST_TIMEOUT, "the body stopped arriving") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyRefused(413, Code.BODY_TOO_LARGE, f"the body is over {cap} bytes")
                body_done = not message.get("more_body", False)
            return message

        try:
            await self.app(scope, guarded_receive, tracked)
        except BodyRefused as exc:  # read outside a route (a route's read is answered by the app's handler)
            if tracked.started:
                raise
            await send_json_error(send, exc.status_code, exc.code, exc.detail, close=True)


class BodyRefused(StarletteHTTPException):
    """An HTTPException, so the framework answers it with our JSON error instead of a 400 of its own."""

    def __init__(self, status: int, code: Code, detail: str) -> None:
        super().__init__(status, detail, headers={"Connection": "close"})
        self.code = code


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
FRAME_ANCESTORS = b"frame-ancestors 'none'"
NO_STORE_PREFIXES = ("/api/", "/admin/")  # tokens and personal data: never cached


class SecurityHeaders:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope["path"].startswith(NO_STORE_PREFIXES)

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", FRAME_ANCESTORS))
                if no_store and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def header_timeout_protocol(header_timeout: float) -> type:
    """uvicorn's HTTP protocol (httptools or h11, as installed) with a deadline on request headers."""

    class HeaderDeadlineProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm_header_deadline()

        def on_response_complete(self) -> None:
            # Armed before the parent starts a pipelined request (a new cycle), so
            # that request's headers count as arrived.
            self._arm_header_deadline()
            super().on_response_complete()

        def _arm_header_deadline(self) -> None:
            previous = getattr(self, "_header_deadline", None)
            if previous is not None:
                previous.cancel()
            self._header_deadline = self.loop.call_later(header_timeout, self._headers_late, self.cycle)

        def _headers_late(self, cycle_when_armed) -> None:
            # A new request cycle starts when a request's headers are complete.
            if self.cycle is not cycle_when_armed or self.transport.is_closing():
                return
            # Upgraded to a WebSocket (no request cycle is made for an upgrade): the
            # connection is the WebSocket protocol's now, and an HTTP 408 written into
            # its stream would corrupt it (the client sees a frame with reserved bits).
            if self.transport.get_protocol() is not self:
                return
            self.transport.write(_timeout_response())
            self.transport.close()

        def connection_lost(self, exc) -> None:
            deadline = getattr(self, "_header_deadline", None)
            if deadline is not None:
                deadline.cancel()
            super().connection_lost(exc)

    return HeaderDeadlineProtocol


def _timeout_response() -> bytes:
    body = b'{"code":"request_timeout","detail":"no complete request in time"}'
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        + b"content-length: %d\r\n\r\n" % len(body)
        + body
    )
