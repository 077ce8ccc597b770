"""The WebSocket endpoint at /ws: with its adapter (uvicorn_sansio.py), the only code that touches the WebSocket layer.

It checks the Origin header before the upgrade (403 when it is not allowed),
adapts Starlette's WebSocket to :class:`~imserver.gateway.connection.Transport`
and runs a :class:`~imserver.gateway.connection.Connection`. Frame-size limits
(1009) and keepalive pings are enforced by the server's WebSocket layer, set up
from the same settings in ``cli.py``.
"""

from __future__ import annotations

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from ..domain.client_ip import of_connection
from . import protocol, uvicorn_sansio
from .connection import Connection

router = APIRouter()
PATH = "/ws"  # served by SocketsFirst, ahead of the middleware


class StarletteTransport:
    """Starlette's WebSocket as a :class:`Transport`.

    Under uvicorn's sans-I/O WebSocket protocol (what ``imserver serve`` runs),
    frames are written straight into that protocol's ``websockets`` connection:
    the bytes we encoded are framed as they are (no str round trip), and a
    batch of frames leaves in one socket write. Any other ASGI server gets the
    same frames through ``websocket.send`` messages, one by one.
    """

    __slots__ = ("ws", "_proto")

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self._proto = uvicorn_sansio.attach(ws)  # None: another server, plain ASGI messages

    async def receive(self) -> str | bytes | None:
        try:
            if self._proto is not None:
                # After accept() the server's own receive gives only frames and the
                # disconnect; Starlette's state checks around it cost a tenth of a frame's handling.
                message = await self._proto.receive()
            else:
                message = await self.ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] != "websocket.receive":
            return None
        text = message.get("text")
        return text if text is not None else message.get("bytes", b"")

    async def send_many(self, frames) -> None:
        """Send text frames (UTF-8 JSON bytes) in order; raises once the peer is gone."""
        if self.write_now(frames):
            return
        for data in frames:
            # Our frames are JSON text; the ASGI text message needs str.
            await self.ws.send({"type": "websocket.send", "text": data.decode()})

    def write_now(self, frames) -> bool:
        """Write frames without awaiting, in one socket write; False if this server has no such path."""
        proto = self._proto
        if proto is None:
            return False
        if not frames:
            return True
        if proto.closing():
            raise ConnectionError("the WebSocket is closed")
        proto.write_texts(frames)  # raises once the peer has closed
        return True

    def write_buffered(self) -> int:
        """Bytes written but not yet taken by the socket (0 when unknown)."""
        proto = self._proto
        return proto.write_buffered() if proto is not None else 0

    async def close(self, code: int, reason: str) -> None:
        if self.ws.application_state != WebSocketState.DISCONNECTED:
            await self.ws.close(code=code, reason=reason[:120])  # close reasons are capped at 123 bytes


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    """Browsers always send Origin; native clients may not, and are not CSRF-able."""
    if origin is None:
        return True
    return origin.rstrip("/") in {o.rstrip("/") for o in allowed} or "*" in allowed


@router.websocket(PATH)
async def websocket_endpoint(ws: WebSocket) -> None:
    services = ws.app.state.services  # scope["app"], set by the framework before any middleware
    if not origin_allowed(ws.headers.get("origin"), services.settings.allowed_origins):
        # Closing before accept() makes the server answer the upgrade with 403.
        await ws.close(code=protocol.CLOSE_POLICY)
        return
    await ws.accept()
    client_ip = of_connection(ws, services.settings.trusted_proxies)
    user_agent = ws.headers.get("user-agent")
    conn = Connection(services, ws.app.state.hub, StarletteTransport(ws), client_ip=client_ip, user_agent=user_agent)
    live = ws.app.state.live_sockets  # every open connection, for the shutdown drain (gateway/shutdown.py)
    live.add(conn)
    try:
        await conn.run()
    finally:
        live.discard(conn)


class SocketsFirst:
    """The application's outermost layer: ``/ws`` upgrades go straight to the endpoint.

    A WebSocket needs none of the HTTP middleware (error pages, body limits,
    security headers, the access line), and every layer it passed through
    stayed on its stack for the connection's life: seven coroutine frames,
    about 1.7 KiB of each idle connection's memory. Everything else goes on to
    the middleware stack unchanged.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "websocket" and scope["path"] == PATH:
            await websocket_endpoint(WebSocket(scope, receive, send))  # scope["app"]: set by the framework
            return
        await self.app(scope, receive, send)
