"""Limits on what a WebSocket peer can make the server do below the application.

uvicorn's sans-I/O WebSocket protocol answers pings itself: a ping never
reaches the application, is not paused like data frames (which wait for the
application to take them) and its pong is written whatever the peer reads. A
client flooding pings without reading therefore grew the server's write buffer
without bound, and since ``websocket.close`` waits for that buffer to drain,
even the auth deadline could not close it. :func:`guarded_protocol` builds a
subclass of that protocol which:

* meters every frame, control and data alike, through one token bucket per
  connection (``ws_frames_burst``, ``ws_frames_per_second``); a peer past it
  is closed with 1008;
* closes with 1008 a peer whose unread output passes ``ws_write_buffer_limit``
  when it sends more (it reads nothing: its pongs would pile up), dropping the
  buffered bytes at once so the memory is released;
* never lets a close wait for a peer that does not read: the auth deadline,
  a revoked or expired token and every other close take effect at once;
* answers a text frame of invalid UTF-8 with 1007 and one log line, without
  a traceback (uvicorn logs one per connection);
* never logs frames: the websockets library logs every frame at debug level
  (the start of a bearer token, message bodies), which is turned off here;
* holds received events in a lean queue (:class:`EventQueue`) instead of an
  ``asyncio.Queue``, which keeps four deques and an Event per connection
  (about 2.7 KiB of an idle connection's memory).

``imserver serve`` and the test server use this protocol (``ws=`` of uvicorn).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request

from . import protocol as wire

log = logging.getLogger("imserver.gateway")


def protocol_for(settings) -> type:
    """The protocol class for `settings` (an imserver Settings), for uvicorn's ``ws=``."""
    return guarded_protocol(
        frames_per_second=settings.ws_frames_per_second,
        frames_burst=settings.ws_frames_burst,
        write_buffer_limit=settings.ws_write_buffer_limit,
    )


def guarded_protocol(*, frames_per_second: float, frames_burst: float, write_buffer_limit: int) -> type:
    """A uvicorn WebSocket protocol class with these limits (one class per server)."""

    class GuardedWebSocketProtocol(_Guarded):
        rate = frames_per_second
        burst = frames_burst
        write_limit = write_buffer_limit

    return GuardedWebSocketProtocol


class EventQueue:
    """What uvicorn's protocol uses of ``asyncio.Queue``, for its one reader, at a fraction of the memory.

    Unbounded like the protocol's own queue (the protocol pauses reading
    instead). The deque exists only while events wait, and the waiter only
    while the reader waits.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque | None = None
        self._waiter: asyncio.Future | None = None

    def put_nowait(self, item) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self):
        while not self._items:
            if self._waiter is not None:
                raise RuntimeError("EventQueue has one reader")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        items = self._items
        item = items.popleft()
        if not items:
            self._items = None
        return item

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0


class _Guarded(WebSocketsSansIOProtocol):
    rate: float
    burst: float
    write_limit: int

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.queue = EventQueue()
        self.conn.debug = False  # no frame (token, body) ever reaches a log
        self._tokens = self.burst
        self._stamp = self.loop.time()

    # -- metering ------------------------------------------------------------------------

    def _admit(self) -> bool:
        """Spend one frame from the bucket; False (and the peer closed) when it is empty or not reading."""
        now = self.loop.time()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < 1:
            self._refuse(wire.CLOSE_POLICY, "too many frames")
            return False
        if self.transport.get_write_buffer_size() > self.write_limit:
            self._refuse(wire.CLOSE_POLICY, "not reading")
            return False
        self._tokens -= 1
        return True

    def handle_events(self) -> None:
        for event in self.conn.events_received():
            if isinstance(event, Request):
                self.handle_connect(event)
            elif isinstance(event, Frame):
                self._handle_frame(event)

    def _handle_frame(self, frame: Frame) -> None:
        if frame.opcode == Opcode.CLOSE:
            self.handle_close(frame)
            return
        # transport.is_closing(): also true once the connection is lost (the
        # protocol's own `disconnected` flag exists only from uvicorn 0.53).
        if self.close_sent or self.transport.is_closing() or not self._admit():
            return  # closing: nothing more is answered or delivered
        if frame.opcode == Opcode.CONT:
            self.handle_cont(frame)
        elif frame.opcode == Opcode.TEXT:
            self.handle_text(frame)
        elif frame.opcode == Opcode.BINARY:
            self.handle_bytes(frame)
        elif frame.opcode == Opcode.PING:
            self.handle_ping()
        elif frame.opcode == Opcode.PONG:
            self.handle_pong(frame)

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text" and not self.close_sent:
            data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
            try:
                data.decode()
            except UnicodeDecodeError:
                self.frames = []
                log.warning("websocket closed: invalid UTF-8 in a text frame from %s", self.client[0] if self.client else "?")
                self._refuse(wire.CLOSE_INVALID_DATA, "invalid UTF-8")
                return
        super().send_receive_event_to_app()

    # -- closing ---------------------------------------------------------------------------

    def _refuse(self, code: int, reason: str) -> None:
        """Close now: a close frame if the peer still reads, and the buffered output dropped if not."""
        if self.close_sent or self.transport.is_closing():
            return
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.writable.set()  # an application send waiting for room now sees the disconnect
        if self.transport.get_write_buffer_size() > self.write_limit:
            self.transport.abort()  # it reads nothing: free what it left unread at once
            return
        try:
            self.conn.fail(code, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
        except Exception:  # noqa: BLE001 - the connection is going either way
            pass
        self.transport.close()

    async def send(self, message) -> None:
        if message["type"] == "websocket.close" and self.handshake_complete and self.close_sent:
            return  # closed already (refused above): the application's own close has nothing left to do
        if message["type"] == "websocket.close" and self.handshake_complete and not self.writable.is_set():
            # The peer is not reading: a close frame would wait behind its unread
            # output for ever. Drop the connection instead (the deadline holds).
            self._refuse(message.get("code", wire.CLOSE_POLICY), message.get("reason", "") or "")
            return
        await super().send(message)
