"""The one module that knows the inside of uvicorn's sans-I/O WebSocket protocol.

``imserver serve`` runs uvicorn with ``ws="websockets-sansio"``. Going around
the ASGI ``send``/``receive`` messages of that protocol saves a good part of
each frame's cost (docs/benchmarks.md): frames we have already encoded are
framed as they are and written in one socket write, and received frames come
off the protocol's queue without Starlette's state checks. That reads private
attributes of uvicorn's protocol object and of the ``websockets`` connection
inside it, listed in :data:`PROTOCOL_ATTRIBUTES` and :data:`CONNECTION_METHODS`.

:func:`attach` returns a :class:`SansIO` only when every one of them is there;
otherwise (another server, another ``ws`` implementation, a uvicorn that
renamed something) it returns None and the gateway falls back to plain ASGI
messages, slower but correct. ``tests/test_uvicorn_adapter.py`` fails loudly
when a uvicorn release makes the fast path fall back.
"""

from __future__ import annotations

import logging

log = logging.getLogger("imserver.gateway")

# Attributes of uvicorn's WebSocketsSansIOProtocol that the fast path reads.
PROTOCOL_ATTRIBUTES = ("conn", "transport", "close_sent", "receive")
# Methods of its websockets ServerProtocol (``protocol.conn``).
CONNECTION_METHODS = ("send_text", "data_to_send")

_warned = False


def protocol_of(ws):
    """uvicorn's protocol object behind a Starlette WebSocket: the owner of its ASGI ``send``."""
    return getattr(getattr(ws, "_send", None), "__self__", None)


def missing(proto) -> list[str]:
    """The attributes the fast path needs that ``proto`` lacks (empty: it can be used)."""
    gone = [a for a in PROTOCOL_ATTRIBUTES if not hasattr(proto, a)]
    conn = getattr(proto, "conn", None)
    gone += [f"conn.{m}" for m in CONNECTION_METHODS if not callable(getattr(conn, m, None))]
    return gone


def attach(ws) -> SansIO | None:
    """The fast path for this WebSocket, or None to use ASGI messages."""
    global _warned
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    except ImportError:  # a uvicorn without it, or another server
        return None
    proto = protocol_of(ws)
    if not isinstance(proto, WebSocketsSansIOProtocol):
        return None
    gone = missing(proto)
    if gone:
        if not _warned:  # once per process: every connection would say the same
            _warned = True
            log.warning("uvicorn's sans-I/O WebSocket protocol lacks %s; using plain ASGI messages (slower)", gone)
        return None
    return SansIO(proto)


class SansIO:
    """Reads and writes on uvicorn's protocol object directly (module docstring)."""

    __slots__ = ("_proto",)

    def __init__(self, proto) -> None:
        self._proto = proto

    async def receive(self) -> dict:
        """The next ASGI event off the protocol's queue (a frame, or the disconnect)."""
        return await self._proto.receive()

    def closing(self) -> bool:
        proto = self._proto
        return proto.close_sent or proto.transport.is_closing()

    def write_texts(self, frames) -> None:
        """Frame each UTF-8 JSON ``bytes`` as a text frame; all of them leave in one socket write.

        Raises once the peer has closed (the ``websockets`` connection's InvalidState).
        """
        conn = self._proto.conn
        for data in frames:
            conn.send_text(data)
        self._proto.transport.write(b"".join(conn.data_to_send()))

    def write_buffered(self) -> int:
        return self._proto.transport.get_write_buffer_size()
