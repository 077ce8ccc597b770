"""One WebSocket connection's life, over an abstract transport.

States: ``awaiting_auth`` -> ``open`` -> ``closing``. The first frame must be
``auth``; any other frame before it gets an ``out_of_order`` error and the
connection keeps waiting (until the auth timeout closes it with 4001).

Structured concurrency (STYLE.md habit 8): each connection runs in one task
group: the reader (this coroutine's loop), the writer (drains the bounded
outbox), the auth timer, a replay when one runs, and one small task per send
in flight awaiting its commit to send the ack. Nothing outlives the connection.

The endpoint adapts the WebSocket library to :class:`Transport`; tests can
drive a Connection with any object that has the three methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from ..domain.enums import PrincipalKind
from ..domain.errors import Code, ImserverError, Unauthenticated, Unavailable
from ..services.events import InboxEvent
from . import protocol
from .hub import msg_frame
from .outbox import Outbox
from .stream import InboxStream

if TYPE_CHECKING:
    from ..services.container import Services
    from .hub import Hub

log = logging.getLogger("imserver.gateway")

# Sends one connection may have queued for commit before its reader stops
# reading: enough to pipeline a burst, small enough to bound memory per socket.
MAX_INFLIGHT_SENDS = 256
# The writer hands the socket at most this many bytes of queued frames at a
# time, and waits while more than this is still unsent: a consumer that does
# not read then backs up into the bounded outbox (and is closed as too slow)
# instead of into an unbounded socket buffer.
WRITE_CHUNK_BYTES = 64 * 1024
WRITE_BUFFER_HIGH = 256 * 1024
WRITE_BUFFER_POLL = 0.01
# A close that flushes queued frames first (a revoked token's last notice) gives
# up flushing after this long: "closed within a second" (issue 3).
CLOSE_FLUSH_SECONDS = 0.5

_ids = itertools.count(1)


class Transport(Protocol):
    async def receive(self) -> str | bytes | None:
        """The next message; None once the peer has gone."""

    async def send_many(self, frames: list[bytes]) -> None:
        """Send frames in order (in as few socket writes as the transport can)."""

    def write_now(self, frames: list[bytes]) -> bool:
        """Write frames at once without awaiting, if the transport can; False if it cannot."""

    def write_buffered(self) -> int:
        """Bytes handed to the socket layer and not yet sent (0 when unknown)."""

    async def close(self, code: int, reason: str) -> None: ...


class Connection:
    def __init__(self, services: Services, hub: Hub, transport: Transport, *, client_ip: str | None = None) -> None:
        settings = services.settings
        self.services = services
        self.hub = hub
        self.transport = transport
        self.client_ip = client_ip
        self.auth_timeout = settings.auth_timeout_seconds
        self.conn_id = next(_ids)
        # Sends of this connection awaiting their ack: client_msg_id -> the send frame's id.
        # A committed send's ack takes the place of its echo in this connection's
        # stream, so acks and messages reach the client in seq order.
        self._awaiting: dict[str, str | None] = {}
        self.user_id = 0
        self.token_hash: str | None = None
        self.outbox = Outbox(settings.outbound_queue_bytes)
        self.stream: InboxStream | None = None
        self._loop = asyncio.get_running_loop()
        # Output: frames pushed in one turn of the event loop are written together
        # at its end (_flush, a callback, not a task). The writer task exists only
        # while writing needs to wait: the socket is backed up, the connection is
        # closing, or the transport has no synchronous write.
        self._flush_handle: asyncio.Handle | None = None
        self._writer_task: asyncio.Task | None = None
        self._wake = asyncio.Event()  # the writer task has something to do
        self._room: asyncio.Event | None = None  # made when a replay waits for the outbox to drain
        self._auth_deadline: asyncio.TimerHandle | None = None
        self._session_end: asyncio.TimerHandle | None = None  # the token's expiry (_schedule_session_end)
        self._closing: tuple[int, str, bool] | None = None  # (code, reason, flush first)
        self._inflight = asyncio.Semaphore(MAX_INFLIGHT_SENDS)
        self._tg: asyncio.TaskGroup | None = None
        self._replay: asyncio.Task | None = None
        self._replay_again = False  # a sync or gap arrived while a replay ran
        self._sync_pending = False  # a sync frame awaits its `synced`
        # The posts stream: positions are global and a follower sees only some of
        # them, so there is no gap to detect; live posts are sent when newer than
        # posts_delivered, and buffered while a posts replay runs.
        self.posts_delivered = 0
        self._posts_replay_from: int | None = None  # a sync asked for posts after this
        self._posts_buffer: list[tuple[int, bytes, bool]] | None = None  # set while replaying posts
        self._sync_ref: str | None = None  # that sync frame's id

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        metrics = self.services.metrics
        metrics.connections.inc()
        self._auth_deadline = self._loop.call_later(self.auth_timeout, self._auth_expired)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                if not self.transport.write_now([]):
                    self._start_writer()  # no synchronous writes: the task does them all
                await self._reader()
                if self._closing is None:
                    self._closing = (protocol.CLOSE_NORMAL, "", False)  # the peer went away
                self._auth_deadline.cancel()
                if self._replay:
                    self._replay.cancel()
                self._start_writer()  # it closes the socket
                await self._writer_task
        finally:
            self._auth_deadline.cancel()
            if self._session_end is not None:
                self._session_end.cancel()
            if self._flush_handle is not None:
                self._flush_handle.cancel()
            self.hub.remove(self)
            metrics.connections.dec()

    async def _reader(self) -> None:
        while self._closing is None:
            data = await self.transport.receive()
            if data is None:
                return
            try:
                frame = protocol.decode(data)
            except protocol.ProtocolError as exc:
                self.push(protocol.encode(protocol.error_frame(exc)))
                continue
            try:
                await self._handle(frame)
            except ImserverError as exc:
                self.push(protocol.encode(protocol.Error(exc.code.value, exc.detail, getattr(frame, "id", None))))

    def _schedule_session_end(self, expires_at: datetime | None) -> None:
        """One timer per connection, set at auth: the socket ends when its token does.

        At expiry the client gets a ``session_expired`` notice, then the close
        (4003) once queued frames are flushed; it signs in again for a new token.
        """
        if expires_at is None:
            return
        delay = (expires_at - self.services.clock.now()).total_seconds()
        self._session_end = self._loop.call_later(max(0.0, delay), self._session_expired)

    def _session_expired(self) -> None:
        self.push(protocol.encode(protocol.Notice(Code.SESSION_EXPIRED.value, "your session has expired: sign in again")))
        self.close_soon(protocol.CLOSE_REVOKED, "session expired", flush=True)

    def _auth_expired(self) -> None:
        if self.stream is None:
            self.close_soon(protocol.CLOSE_AUTH_TIMEOUT, "no auth frame in time")

    def _start_writer(self) -> None:
        if self._writer_task is None and self._tg is not None:
            self._writer_task = self._tg.create_task(self._writer(), name="ws-writer")
        self._wake.set()

    def _flush(self) -> None:
        """End of the loop turn: write what was pushed, unless writing must wait (then the task does)."""
        self._flush_handle = None
        if self._writer_task is not None:
            self._wake.set()
            return
        if self._closing is not None or self.transport.write_buffered() > WRITE_BUFFER_HIGH:
            self._start_writer()
            return
        while frames := self.outbox.pop_many(WRITE_CHUNK_BYTES):
            try:
                self.transport.write_now(frames)
            except Exception:  # noqa: BLE001 - a dead peer: the writer task closes
                if self._closing is None:
                    self._closing = (protocol.CLOSE_GOING_AWAY, "", False)
                self._start_writer()
                return
            if self.transport.write_buffered() > WRITE_BUFFER_HIGH:
                if len(self.outbox):
                    self._start_writer()  # the peer is not reading: wait for it there
                break
        self._outbox_drained()

    def _outbox_drained(self) -> None:
        if self._room is not None and self.outbox.has_room():
            self._room.set()

    async def _writer(self) -> None:
        """Writes that must wait: a backed-up socket, a flush before close, a transport without write_now."""
        deadline: float | None = None
        loop = self._loop
        direct = self.transport.write_now([])
        while True:
            if self._closing is not None:
                code, reason, flush = self._closing
                if deadline is None:
                    deadline = loop.time() + CLOSE_FLUSH_SECONDS
                if not flush or not len(self.outbox) or loop.time() > deadline:
                    with contextlib.suppress(Exception):  # the peer may be gone already
                        await self.transport.close(code, reason)
                    return
            if self.transport.write_buffered() > WRITE_BUFFER_HIGH:
                await asyncio.sleep(WRITE_BUFFER_POLL)  # the peer is not reading: let the outbox fill
                continue
            frames = self.outbox.pop_many(WRITE_CHUNK_BYTES)
            if not frames:
                if direct and self._closing is None:
                    self._writer_task = None  # caught up: _flush writes again
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                if deadline is not None:
                    async with asyncio.timeout(max(0.0, deadline - loop.time())):
                        await self.transport.send_many(frames)
                else:
                    await self.transport.send_many(frames)
            except Exception:  # noqa: BLE001 - a dead peer: stop writing
                if self._closing is None:
                    self._closing = (protocol.CLOSE_GOING_AWAY, "", False)
                with contextlib.suppress(Exception):
                    await self.transport.close(self._closing[0], self._closing[1])
                return
            self._outbox_drained()

    # -- output -------------------------------------------------------------------------

    def push(self, frame: bytes, *, droppable: bool = False) -> None:
        """Queue a frame; a consumer too slow to take it is closed (4008)."""
        if self._closing is not None:
            return
        if not self.outbox.push(frame, droppable=droppable):
            self.services.metrics.slow_consumers_closed.inc()
            self.close_soon(protocol.CLOSE_SLOW_CONSUMER, "too slow: reconnect and sync from your cursor")
            return
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def push_live(self, event: InboxEvent, frame: bytes) -> None:
        """A committed inbox entry from fan-out (hub)."""
        if self.stream is None:
            return
        if event.origin == self.conn_id or (
            event.message.sender_id == self.user_id and event.message.client_msg_id in self._awaiting
        ):
            frame = self._own_ack(event)
        out, need_replay = self.stream.live(event.seq, frame)
        for f in out:
            self.push(f)
        if need_replay:
            self.stream.begin_replay()
            self._start_replay()

    def push_post(self, position: int, frame: bytes, tombstone: bool) -> None:
        """A committed post (or a takedown's tombstone) of an account this user follows."""
        if self._posts_buffer is not None:
            self._posts_buffer.append((position, frame, tombstone))
            return
        if tombstone:
            self.push(frame)
        elif position > self.posts_delivered:
            self.posts_delivered = position
            self.push(frame)

    def _flush_posts(self) -> None:
        """End of a posts replay: send what arrived live meanwhile, skipping what the replay sent."""
        buffered, self._posts_buffer = self._posts_buffer or [], None
        for position, frame, tombstone in sorted(buffered, key=lambda b: b[0]):
            self.push_post(position, frame, tombstone)

    async def _latest_post_position(self) -> int:
        accounts = getattr(self.services, "public_accounts", None)
        return await accounts.latest_position() if accounts is not None else 0

    async def _replay_posts(self, after: int) -> None:
        """Send the followed accounts' posts after `after`, then hand over to live posts."""
        from .hub import post_frame

        accounts = getattr(self.services, "public_accounts", None)
        self.posts_delivered = after
        page_size = protocol.DEFAULT_SYNC_LIMIT
        while accounts is not None:
            views = await accounts.posts_after(self.user_id, self.posts_delivered, page_size)
            for view in views:
                if view.position > self.posts_delivered:
                    self.posts_delivered = view.position
                    self.push(post_frame(view))
                if not self.outbox.has_room():
                    await self._wait_for_room()
                if self._closing is not None:
                    return
            if len(views) < page_size:
                break
        self._flush_posts()

    async def _wait_for_room(self) -> None:
        """A replay waits here while the outbox is over half full."""
        if self._room is None:
            self._room = asyncio.Event()
        self._room.clear()
        await self._room.wait()

    def _own_ack(self, event: InboxEvent) -> bytes:
        m = event.message
        ref = self._awaiting.pop(m.client_msg_id, None)
        return protocol.encode(
            protocol.Ack(
                client_msg_id=m.client_msg_id,
                status="accepted",
                message_id=m.message_id,
                conversation_id=m.conversation_id,
                seq=event.seq,
                sent_at=m.sent_at,
                ref=ref,
            )
        )

    def resync(self) -> None:
        """Look in the store for entries after the cursor (live delivery may have lost some)."""
        if self.stream is not None and self._tg is not None and self._closing is None:
            self.stream.begin_replay()
            self._start_replay()

    def close_soon(self, code: int, reason: str, *, flush: bool = False) -> None:
        if self._closing is None:
            self._closing = (code, reason, flush)
            self._start_writer()

    # -- frames -------------------------------------------------------------------------

    async def _handle(self, frame: protocol.ClientFrame) -> None:
        if isinstance(frame, protocol.Auth):
            await self._auth(frame)
            return
        if self.stream is None:
            raise ImserverError("authenticate first with an auth frame", Code.OUT_OF_ORDER)
        messaging = self.services.messaging
        match frame:
            case protocol.Send():
                await self._send(frame)
            case protocol.Sync():
                self.stream.reset(frame.inbox_after)
                self._sync_ref = frame.id
                self._sync_pending = True
                if frame.posts_after is not None:
                    self._posts_replay_from = frame.posts_after
                    self._posts_buffer = self._posts_buffer if self._posts_buffer is not None else []
                self._start_replay()
            case protocol.Received():
                await messaging.received(self.user_id, frame.seq)
            case protocol.Read():
                await messaging.read(self.user_id, frame.conversation_id, frame.message_id)
            case protocol.Typing():
                await messaging.typing(self.user_id, frame.conversation_id)
            case protocol.Ping():
                self.push(protocol.encode(protocol.Pong(frame.nonce)))

    async def _auth(self, frame: protocol.Auth) -> None:
        if self.stream is not None:
            raise ImserverError("already authenticated", Code.OUT_OF_ORDER)
        try:
            principal = await self.services.accounts.authenticate(frame.token, PrincipalKind.USER)
        except Unauthenticated as exc:
            self.push(protocol.encode(protocol.Error(exc.code.value, exc.detail, frame.id)))
            self.close_soon(protocol.CLOSE_POLICY, "authentication failed", flush=True)
            return
        self.user_id = principal.id
        self.token_hash = principal.token_hash
        self._schedule_session_end(principal.expires_at)
        # Join the hub before reading the cursor, buffering live entries meanwhile:
        # an entry committed around the read is then either covered by the
        # cursor, emitted from the buffer, or found missing and replayed.
        self.stream = InboxStream(delivered=0)
        self.stream.replaying = True
        self.hub.add(self)
        self._posts_buffer = []  # posts committed around the cursor reads wait here
        last_seq, received_seq = await self.services.messaging.cursors(self.user_id)
        self.stream.delivered = last_seq
        self.posts_delivered = await self._latest_post_position()
        self._auth_deadline.cancel()
        self.push(
            protocol.encode(
                protocol.Hello(
                    user_id=self.user_id,
                    node=self.services.node_id,
                    inbox_seq=last_seq,
                    received_seq=received_seq,
                    server_time=datetime.now(UTC).isoformat(),
                )
            )
        )
        if frame.inbox_after is not None or frame.posts_after is not None:
            # Resume in the auth frame: replay from the client's cursors before
            # anything live (live entries stay buffered until the replay has passed them).
            if frame.inbox_after is not None:
                self.stream.reset(frame.inbox_after)
            # else: the stream stays buffering from last_seq; the replay drains it.
            if frame.posts_after is not None:
                self._posts_replay_from = frame.posts_after
            else:
                self._flush_posts()
            self._sync_ref = frame.id
            self._sync_pending = True
            self._start_replay()
            return
        out, again = self.stream.page_done(reached_end=True)
        for f in out:
            self.push(f)
        self._flush_posts()
        if again:
            self._start_replay()

    async def _send(self, frame: protocol.Send) -> None:
        await self._inflight.acquire()
        self._awaiting[frame.client_msg_id] = frame.id
        try:
            future, decision = await self.services.send_message(
                sender_id=self.user_id,
                client_msg_id=frame.client_msg_id,
                to_kind=frame.to.kind,
                to_id=frame.to.id,
                body=frame.body,
                origin=self.conn_id,
            )
        except ImserverError as exc:
            self._inflight.release()
            self._awaiting.pop(frame.client_msg_id, None)
            self.push(protocol.encode(self._rejected(frame, exc)))
            return
        # A callback, not a task per send: most acks go out from push_live.
        future.add_done_callback(lambda f: self._committed(frame, f, decision))

    def _committed(self, frame: protocol.Send, future: asyncio.Future, decision) -> None:
        self._inflight.release()
        if future.cancelled():
            self._awaiting.pop(frame.client_msg_id, None)
            return
        exc = future.exception()
        if exc is not None:
            self._awaiting.pop(frame.client_msg_id, None)
            if isinstance(exc, ImserverError):
                self.push(protocol.encode(self._rejected(frame, exc)))
            else:
                log.error("send of user %d failed", self.user_id, exc_info=exc)
                self.push(protocol.encode(self._rejected(frame, Unavailable("the message could not be stored"))))
            return
        stored = future.result()
        if stored.sender_seq is not None and not stored.duplicate:
            return  # acked in stream order by push_live (or by the replay that re-reads it)
        # No new inbox entry for the sender: a retry of a stored send, or a held message.
        self._awaiting.pop(frame.client_msg_id, None)
        self.push(
            protocol.encode(
                protocol.Ack(
                    client_msg_id=frame.client_msg_id,
                    status="held" if stored.status == "held" else "accepted",
                    message_id=stored.message_id,
                    conversation_id=stored.conversation_id,
                    seq=stored.sender_seq,
                    sent_at=stored.created_at.isoformat(),
                    duplicate=stored.duplicate,
                    reason=decision.reason.value if decision and decision.reason else None,
                    ref=frame.id,
                )
            )
        )

    @staticmethod
    def _rejected(frame: protocol.Send, exc: ImserverError) -> protocol.Ack:
        retry_after = exc.extra.get("retry_after")
        return protocol.Ack(
            client_msg_id=frame.client_msg_id,
            status="rejected",
            reason=exc.code.value,
            detail=exc.detail,
            retry_after=float(retry_after) if retry_after is not None else None,
            ref=frame.id,
        )

    # -- replay -------------------------------------------------------------------------

    def _start_replay(self) -> None:
        if self._replay is not None and not self._replay.done():
            self._replay_again = True
            return
        self._replay_again = False
        self._replay = self._tg.create_task(self._run_replay(), name="ws-replay")

    async def _run_replay(self) -> None:
        """Page through the store from the stream's cursor until caught up with live."""
        stream = self.stream
        messaging = self.services.messaging
        page_size = protocol.DEFAULT_SYNC_LIMIT
        while True:
            after = stream.delivered
            events = await messaging.inbox_after(self.user_id, after, page_size)
            for event in events:
                # A live frame buffered for this seq is sent as fan-out made it: for
                # this connection's own send it is the ack (push_live already took
                # the send out of _awaiting), which re-encoding would turn into a msg.
                live_frame = stream.buffered(event.seq)
                if event.seq > stream.delivered + 1 and event is events[0]:
                    # Cannot happen: seqs are gap-free by construction. Should the
                    # store ever hold a gap, skip it rather than re-read this page forever.
                    log.error("inbox of user %d has a gap after seq %d", self.user_id, stream.delivered)
                    stream.delivered = event.seq - 1
                if stream.replayed(event.seq):
                    own = event.message.sender_id == self.user_id and event.message.client_msg_id in self._awaiting
                    if live_frame is not None:
                        self.push(live_frame)
                    else:
                        self.push(self._own_ack(event) if own else msg_frame(event))
                if not self.outbox.has_room():
                    await self._wait_for_room()
                if self._closing is not None:
                    return
            out, again = stream.page_done(reached_end=len(events) < page_size)
            for f in out:
                self.push(f)
            if again or self._replay_again:
                self._replay_again = False
                stream.replaying = True
                continue
            posts_seq = None
            if self._posts_replay_from is not None:
                after, self._posts_replay_from = self._posts_replay_from, None
                await self._replay_posts(after)
                posts_seq = self.posts_delivered
            if self._sync_pending:
                self.push(
                    protocol.encode(
                        protocol.Synced(
                            inbox_seq=stream.delivered, complete=True, ref=self._sync_ref, posts_seq=posts_seq
                        )
                    )
                )
                self._sync_pending = False
                self._sync_ref = None
            return
