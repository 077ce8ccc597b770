"""The HTTP access layer: a request id, the access log line, and the request counter.

An ASGI middleware, not a framework one, so it costs one function call per
request and never wraps WebSocket traffic (``/ws`` frames pass straight by).

- **Request id.** A client's (or proxy's) ``X-Request-ID`` is kept when it is
  a plausible id (up to 128 letters, digits, ``.``, ``_``, ``-``), otherwise one
  is generated; it is returned in the response's ``X-Request-ID`` and is on
  every log line written while the request is served.
- **Access log.** One line per request, in the same format as every other
  line (``imserver.logs``): method, path (no query string: it may hold
  personal data), route template, status, duration, and the user or operator
  id once authenticated. Replaces uvicorn's access log.
- **Metrics.** ``imserver_http_requests_total{route, status}``, by route
  template (``/admin/v1/identity/{identity_id}``), so ids do not explode the
  label set; paths that match no route count as ``unmatched``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from . import logs

log = logging.getLogger("imserver.access")

REQUEST_ID_HEADER = b"x-request-id"
# What is accepted from a client as a request id: short and log-safe.
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")


def request_id_from(headers) -> str:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _REQUEST_ID.match(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


class AccessMiddleware:
    """Request id, access line and request counter for every HTTP request (module docstring)."""

    def __init__(self, app, *, metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        _, token = logs.begin_request(request_id)
        status = 500  # if the app fails before it answers, the server answers 500
        rid = request_id.encode("ascii")

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, rid)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.http_requests.labels(route=template, status=str(status)).inc()
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": template,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            logs.end_request(token)
