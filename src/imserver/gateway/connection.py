"""The asyncio driver of one WebSocket connection, over an abstract transport.

What a connection decides lives in :class:`~imserver.gateway.session.Session`
(states, frames, the inbox stream, acks, the replay, when to close), which does
no I/O. This driver only does the I/O: it reads frames and hands them to the
session, carries out the effects the session answers with (awaiting the
services, setting timers, joining the hub) and feeds their results back, and
writes what the session queued in its outbox onto the socket.

The network log gets one row when a session is authenticated and one when it
ends (with its close code), written by the access log's background task so the
socket never waits on them; nothing is recorded per frame.

Structured concurrency: each connection runs in one task group: the reader
(this coroutine's loop), the replay when one runs, and a writer task only while
writing must wait. A send awaiting its commit is a callback on the writer's
future, not a task. Nothing outlives the connection.

The endpoint adapts the WebSocket library to :class:`Transport`; tests can
drive a Connection with any object that has its methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from ..domain.enums import PrincipalKind
from ..domain.errors import ImserverError, Unauthenticated, Unavailable
from ..services.access_log import Origin
from ..services.events import InboxEvent, SendResult
from . import protocol
from . import effects as fx
from .session import Session

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
# A close that flushes queued frames first (the error frame explaining it) gives
# up flushing after this long: the client is told, and closed within a second.
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
    def __init__(
        self,
        services: Services,
        hub: Hub,
        transport: Transport,
        *,
        client_ip: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        settings = services.settings
        self.services = services
        self.hub = hub
        self.transport = transport
        self.client_ip = client_ip
        self.user_agent = user_agent  # recorded with the session (network log)
        self.conn_id = next(_ids)
        self.session = Session(
            self.conn_id,
            services.node_id,
            outbound_queue_bytes=settings.outbound_queue_bytes,
            auth_timeout=settings.auth_timeout_seconds,
        )
        self._outbox = self.session.outbox
        self._loop = asyncio.get_running_loop()
        # Output: frames queued in one turn of the event loop are written together
        # at its end (_flush, a callback, not a task). The writer task exists only
        # while writing needs to wait: the socket is backed up, the connection is
        # closing, or the transport has no synchronous write.
        self._flush_handle: asyncio.Handle | None = None
        self._writer_task: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None  # made with the writer task: it has something to do
        self._room: asyncio.Event | None = None  # made when a replay waits for the outbox to drain
        self._timers: dict[fx.Timer, asyncio.TimerHandle] = {}
        # Sends awaiting their commit, and the reader's wait when there are too many
        # (a count and a future made only then, not a Semaphore per connection).
        self._inflight = 0
        self._inflight_room: asyncio.Future | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._replay: asyncio.Task | None = None

    @property
    def user_id(self) -> int:
        return self.session.user_id

    @property
    def token_hash(self) -> str | None:
        return self.session.token_hash

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        metrics = self.services.metrics
        metrics.connections.inc()
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self._apply(self.session.start())
                if not self.transport.write_now([]):
                    self._start_writer()  # no synchronous writes: the task does them all
                await self._reader()
                self._apply(self.session.close(protocol.CLOSE_NORMAL, ""))  # the peer went away (if still open)
                self._cancel_timers()
                if self._replay:
                    self._replay.cancel()
                self._start_writer()  # it closes the socket
                await self._writer_task
        finally:
            self._cancel_timers()
            if self._flush_handle is not None:
                self._flush_handle.cancel()
            self.hub.remove(self)
            metrics.connections.dec()
            if self.session.user_id:  # the session's end, beside its start recorded at authentication
                closing = self.session.closing
                self._record_session("ws_close", close_code=closing.code if closing else None)

    async def _reader(self) -> None:
        session = self.session
        while session.closing is None:
            data = await self.transport.receive()
            if data is None:
                return
            effects = session.on_data(data)
            if effects:
                await self._perform(effects)
            self._wrote()

    # -- carrying out effects -----------------------------------------------------------

    async def _perform(self, effects: Sequence[fx.Effect]) -> None:
        """Effects of a frame: awaited in the reader, so frames are handled in order."""
        for effect in effects:
            kind = type(effect)
            if kind is fx.Submit:
                await self._submit(effect.frame)
            elif kind is fx.MarkReceived:
                await self._call(self.services.messaging.received(self.user_id, effect.seq), effect.ref)
            elif kind is fx.MarkRead:
                read = self.services.messaging.read(self.user_id, effect.conversation_id, effect.message_id)
                await self._call(read, effect.ref)
            elif kind is fx.NotifyTyping:
                await self._call(self.services.messaging.typing(self.user_id, effect.conversation_id), effect.ref)
            elif kind is fx.Authenticate:
                await self._perform(await self._authenticate(effect))
            elif kind is fx.ReadCursors:
                await self._perform(await self._read_cursors())
            else:
                self._do(effect)

    def _apply(self, effects: Sequence[fx.Effect]) -> None:
        """Effects of an input that arrived outside the reader (fan-out, a commit, a timer)."""
        for effect in effects:
            self._do(effect)
        self._wrote()

    def _do(self, effect: fx.Effect) -> None:
        """An effect carried out without awaiting."""
        kind = type(effect)
        if kind is fx.Close:
            if effect.code == protocol.CLOSE_SLOW_CONSUMER:
                self.services.metrics.slow_consumers_closed.inc()
            self._start_writer()
        elif kind in fx.REPLAY_STEPS:
            # The session asks for one step at a time; a step asked for outside the replay task starts it.
            self._replay = self._tg.create_task(self._run_replay(effect), name="ws-replay")
        elif kind is fx.StartTimer:
            self._timers[effect.timer] = self._loop.call_later(effect.seconds, self._timer_fired, effect.timer)
        elif kind is fx.CancelTimer:
            handle = self._timers.pop(effect.timer, None)
            if handle is not None:
                handle.cancel()
        elif kind is fx.JoinHub:
            self.hub.add(self)
        elif kind is fx.LogError:
            log.error("%s", effect.text)
        else:  # an effect that must be awaited, from an input that cannot await: a bug
            raise TypeError(f"cannot carry out {effect!r} here")

    async def _call(self, call: Awaitable[object], ref: str | None) -> None:
        """A service call a frame asked for; its refusal becomes an error frame."""
        try:
            await call
        except ImserverError as exc:
            self._apply(self.session.on_error(exc, ref))

    async def _authenticate(self, effect: fx.Authenticate) -> Sequence[fx.Effect]:
        try:
            principal = await self.services.accounts.authenticate(effect.token, PrincipalKind.USER)
        except Unauthenticated as exc:
            return self.session.on_auth_refused(exc, effect.ref)
        except ImserverError as exc:  # the token could not be checked: the client may try again
            return self.session.on_error(exc, effect.ref)
        expires_in = None
        if principal.expires_at is not None:
            expires_in = (principal.expires_at - self.services.clock.now()).total_seconds()
        effects = self.session.on_auth_ok(principal.id, principal.token_hash, expires_in)
        if self.session.user_id:  # authenticated (not closed meanwhile by the auth timer)
            self._record_session("ws_open")
        return effects

    def _record_session(self, event: str, *, close_code: int | None = None) -> None:
        """A row of the network log, written in the background (pairs by node and connection)."""
        self.services.access_log.record_later(
            event,
            principal_kind=PrincipalKind.USER.value,
            principal_id=self.session.user_id,
            origin=Origin(self.client_ip, self.user_agent),
            connection=str(self.conn_id),
            close_code=close_code,
        )

    async def _read_cursors(self) -> Sequence[fx.Effect]:
        session = self.session
        try:
            inbox_seq, received_seq = await self.services.messaging.cursors(session.user_id)
            posts_position = await self.services.public_accounts.latest_position()
            # A new agreement version in its grace period: the user is asked to accept it (sending still works).
            agreement = await self.services.policy.agreement_notice(session.user_id)
        except ImserverError as exc:
            return session.on_read_failed(exc)
        effects = list(session.on_cursors(inbox_seq, received_seq, posts_position, datetime.now(UTC).isoformat()))
        if agreement is not None:
            notice = protocol.Notice(agreement["kind"], agreement["text"], agreement["data"])
            effects.extend(session.push(protocol.encode(notice)))
        return effects

    def _timer_fired(self, timer: fx.Timer) -> None:
        self._timers.pop(timer, None)
        self._apply(self.session.on_timer(timer))

    def _cancel_timers(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    # -- sends --------------------------------------------------------------------------

    async def _submit(self, frame: protocol.Send) -> None:
        """The one call into the send use case; its outcome goes back to the session."""
        while self._inflight >= MAX_INFLIGHT_SENDS:  # only the reader submits: one waiter at most
            self._inflight_room = self._loop.create_future()
            try:
                await self._inflight_room
            finally:
                self._inflight_room = None
        self._inflight += 1
        try:
            future = await self.services.messaging.submit(
                sender_id=self.session.user_id,
                client_msg_id=frame.client_msg_id,
                to_kind=frame.to.kind,
                to_id=frame.to.id,
                body=frame.body,
                origin=self.conn_id,
            )
        except ImserverError as exc:
            self._send_settled()
            self._apply(self.session.on_send_refused(frame, exc))
            return
        # A callback, not a task per send: most acks go out from push_live.
        future.add_done_callback(lambda f: self._committed(frame, f))

    def _send_settled(self) -> None:
        self._inflight -= 1
        room = self._inflight_room
        if room is not None and not room.done():
            room.set_result(None)

    def _committed(self, frame: protocol.Send, future: asyncio.Future[SendResult]) -> None:
        self._send_settled()
        session = self.session
        if future.cancelled():
            effects = session.on_send_cancelled(frame)
        elif (exc := future.exception()) is None:
            effects = session.on_send_stored(frame, future.result())
        elif isinstance(exc, ImserverError):
            effects = session.on_send_refused(frame, exc)
        else:
            log.error("send of user %d failed", session.user_id, exc_info=exc)
            effects = session.on_send_refused(frame, Unavailable("the message could not be stored"))
        self._apply(effects)

    # -- the replay ---------------------------------------------------------------------

    async def _run_replay(self, step: fx.Effect | None) -> None:
        """Carry out the replay's steps, one at a time, until the session has caught up."""
        session = self.session
        messaging = self.services.messaging
        while step is not None:
            kind = type(step)
            try:
                if kind is fx.ReadPage:
                    effects = session.on_page(await messaging.inbox_after(session.user_id, step.after, step.limit))
                elif kind is fx.ReadPosts:
                    effects = session.on_posts(await self._posts_after(step.after, step.limit))
                else:
                    assert kind is fx.AwaitRoom
                    await self._wait_for_room()
                    effects = session.on_room()
            except ImserverError as exc:
                effects = session.on_read_failed(exc)
            step = None
            for effect in effects:
                if type(effect) in fx.REPLAY_STEPS:
                    step = effect  # the next step, carried out here
                else:
                    self._do(effect)
            self._wrote()

    async def _posts_after(self, after: int, limit: int):
        return await self.services.public_accounts.posts_after(self.session.user_id, after, limit)

    async def _wait_for_room(self) -> None:
        """A replay waits here while the outbox is over half full."""
        if self._room is None:
            self._room = asyncio.Event()
        self._room.clear()
        if not self._outbox.has_room():
            await self._room.wait()

    # -- deliveries from the hub --------------------------------------------------------

    def push(self, frame: bytes, *, droppable: bool = False) -> None:
        """Queue an ephemeral frame; a consumer too slow to take it is closed (4008)."""
        self._apply(self.session.push(frame, droppable=droppable))

    def push_live(self, event: InboxEvent, frame: bytes) -> None:
        """A committed inbox entry from fan-out (the hot path: _apply and _wrote written out)."""
        effects = self.session.live(event, frame)
        if effects:
            self._apply(effects)
        if self._flush_handle is None and self._outbox.size:
            self._flush_handle = self._loop.call_soon(self._flush)

    def push_post(self, position: int, frame: bytes, tombstone: bool) -> None:
        """A committed post (or a takedown's tombstone) of an account this user follows."""
        self._apply(self.session.post(position, frame, tombstone))

    def resync(self) -> None:
        """Look in the store for entries after the cursor (live delivery may have lost some)."""
        self._apply(self.session.resync())

    def close_soon(self, code: int, reason: str, *, flush: bool = False) -> None:
        self._apply(self.session.close(code, reason, flush=flush))

    # -- writing ------------------------------------------------------------------------

    def _wrote(self) -> None:
        """Frames were queued: write them at the end of this loop turn."""
        if self._flush_handle is None and self._outbox.size:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _start_writer(self) -> None:
        if self._writer_task is None and self._tg is not None:
            self._wake = asyncio.Event()
            self._writer_task = self._tg.create_task(self._writer(), name="ws-writer")
        if self._wake is not None:
            self._wake.set()

    def _flush(self) -> None:
        """End of the loop turn: write what was queued, unless writing must wait (then the task does)."""
        self._flush_handle = None
        if self._writer_task is not None:
            self._wake.set()  # made with the task
            return
        if self.session.closing is not None or self.transport.write_buffered() > WRITE_BUFFER_HIGH:
            self._start_writer()
            return
        while frames := self._outbox.pop_many(WRITE_CHUNK_BYTES):
            try:
                self.transport.write_now(frames)
            except Exception:  # noqa: BLE001 - a dead peer: the writer task closes
                self.session.close(protocol.CLOSE_GOING_AWAY, "")
                self._start_writer()
                return
            if self.transport.write_buffered() > WRITE_BUFFER_HIGH:
                if len(self._outbox):
                    self._start_writer()  # the peer is not reading: wait for it there
                break
        self._outbox_drained()

    def _outbox_drained(self) -> None:
        if self._room is not None and self._outbox.has_room():
            self._room.set()

    async def _writer(self) -> None:
        """Writes that must wait: a backed-up socket, a flush before close, a transport without write_now."""
        deadline: float | None = None
        loop = self._loop
        session = self.session
        direct = self.transport.write_now([])
        while True:
            if (closing := session.closing) is not None:
                if deadline is None:
                    deadline = loop.time() + CLOSE_FLUSH_SECONDS
                if not closing.flush or not len(self._outbox) or loop.time() > deadline:
                    with contextlib.suppress(Exception):  # the peer may be gone already
                        await self.transport.close(closing.code, closing.reason)
                    return
            if self.transport.write_buffered() > WRITE_BUFFER_HIGH:
                await asyncio.sleep(WRITE_BUFFER_POLL)  # the peer is not reading: let the outbox fill
                continue
            frames = self._outbox.pop_many(WRITE_CHUNK_BYTES)
            if not frames:
                if direct and session.closing is None:
                    self._writer_task = self._wake = None  # caught up: _flush writes again
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
                session.close(protocol.CLOSE_GOING_AWAY, "")
                with contextlib.suppress(Exception):
                    await self.transport.close(session.closing.code, session.closing.reason)
                return
            self._outbox_drained()
