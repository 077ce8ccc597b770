"""Small ASGI pieces shared by the middlewares that answer on their own (CatchAll, BodyGuard)."""

from __future__ import annotations

import json

from ..domain.errors import Code


class TrackedSend:
    """An ASGI `send` that remembers whether the response has started (then no other answer can be sent)."""

    __slots__ = ("send", "started")

    def __init__(self, send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


async def send_json_error(send, status: int, code: Code, detail: str, *, close: bool = False) -> None:
    """Answer with the usual {"code", "detail"} body (and close the connection after, if asked)."""
    body = json.dumps({"code": code.value, "detail": detail}, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
