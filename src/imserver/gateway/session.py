"""One WebSocket connection's logic without I/O: inputs in, effects out.

A :class:`Session` is the connection as a state machine, in the manner of h11
and python-websockets' sans-I/O core: it never reads a socket, awaits, starts a
task or looks at a clock. It is fed inputs (a client frame, a live inbox entry
from fan-out, the result of a service call, a timer firing) and answers each
with the effects (``gateway/effects.py``) that its driver,
``gateway/connection.py``, must carry out: authenticate this token, submit this
send, read this page of the inbox, start or cancel a timer, close with this
code. Results come back as further inputs.

Frames for the client are not effects: they go into the session's bounded
:class:`Outbox`, which the driver drains onto the socket (``data_to_send`` in
the libraries above). The message path then allocates no effect per frame, and
the slow-consumer rule (an outbox over its bound closes with 4008) is decided
here, where it is tested.

States
------
``awaiting_auth``
    The first frame must be ``auth``. Any other frame gets ``out_of_order`` and
    the session keeps waiting, until the auth timer closes it with 4001.
``replaying``
    Authenticated. The session has joined the hub; live inbox entries are
    buffered in its :class:`InboxStream` while it reads the cursors, then pages
    the store from the client's cursor (a resume, a ``sync``, a gap seen live),
    then the followed accounts' posts, and ends with ``synced`` when a frame
    asked for one. Frames are served meanwhile.
``open``
    Caught up: live entries go straight out, each seq once and in order. A
    ``sync`` or a gap goes back to ``replaying``.
``closing``
    A close has been decided (:attr:`Session.closing`); everything that arrives
    after it is dropped, and the driver flushes (or not) and closes the socket.

:data:`TRANSITIONS` lists every change of state and every lifecycle event each
state accepts. An event a state does not accept is the driver's bug and
raises :class:`IllegalTransition`, except when the peer caused it (a frame
before ``auth``, a second ``auth``): a peer's mistake never raises, it gets an
``error`` frame. Frames and deliveries that never change the state (a ``send``,
a live entry in order) do not consult the table: they are the message path.

The driver keeps to two rules the session relies on: it hands over the next
frame only after carrying out the effects of the one before (frames are handled
in order), and it runs one replay step (:class:`ReadPage`, :class:`ReadPosts`,
:class:`AwaitRoom`) at a time, feeding its result back before the next.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ..domain.errors import Code, ImserverError
from . import protocol
from .effects import (
    AwaitRoom,
    Authenticate,
    CancelTimer,
    Close,
    Effect,
    JoinHub,
    LogError,
    MarkRead,
    MarkReceived,
    NotifyTyping,
    ReadCursors,
    ReadPage,
    ReadPosts,
    StartTimer,
    Submit,
    Timer,
)
from .outbox import Outbox
from .stream import InboxStream

if TYPE_CHECKING:
    from ..services.events import InboxEvent, PostView, SendResult


class State(enum.Enum):
    AWAITING_AUTH = "awaiting_auth"
    REPLAYING = "replaying"
    OPEN = "open"
    CLOSING = "closing"

    # Members are singletons: hash by identity, not by Enum's hash of the name (a
    # Python call), since every frame looks its (state, event) up in TRANSITIONS.
    __hash__ = object.__hash__


class Event(enum.Enum):
    """What moves a session along its states (see :data:`TRANSITIONS`)."""

    AUTH_FRAME = "auth_frame"  # the peer sent `auth`
    SYNC_FRAME = "sync_frame"  # the peer sent `sync`
    FRAME = "frame"  # the peer sent any other frame
    AUTH_OK = "auth_ok"  # the token is good
    AUTH_REFUSED = "auth_refused"  # the token is bad
    AUTH_TIMEOUT = "auth_timeout"  # the auth timer fired
    CURSORS = "cursors"  # the user's cursors were read
    RESYNC = "resync"  # entries may be missing (a gap seen live, a broker reconnect)
    PAGE = "page"  # a page of the inbox was read
    POSTS = "posts"  # a page of posts was read
    ROOM = "room"  # the outbox drained enough for the replay to go on
    CAUGHT_UP = "caught_up"  # the replay reached live delivery
    CLOSE = "close"  # a close was decided (by the peer going, the server, a slow consumer)

    __hash__ = object.__hash__  # as State's


AWAITING_AUTH, REPLAYING, OPEN, CLOSING = State.AWAITING_AUTH, State.REPLAYING, State.OPEN, State.CLOSING
_E = Event

TRANSITIONS: dict[tuple[State, Event], State] = {
    (AWAITING_AUTH, _E.AUTH_FRAME): AWAITING_AUTH,  # the token is being checked
    (AWAITING_AUTH, _E.AUTH_OK): REPLAYING,  # live entries buffer while the cursors are read
    (AWAITING_AUTH, _E.AUTH_REFUSED): CLOSING,
    (AWAITING_AUTH, _E.AUTH_TIMEOUT): CLOSING,
    (REPLAYING, _E.FRAME): REPLAYING,
    (REPLAYING, _E.SYNC_FRAME): REPLAYING,  # the replay starts over from the new cursor
    (REPLAYING, _E.CURSORS): REPLAYING,
    (REPLAYING, _E.RESYNC): REPLAYING,
    (REPLAYING, _E.PAGE): REPLAYING,
    (REPLAYING, _E.POSTS): REPLAYING,
    (REPLAYING, _E.ROOM): REPLAYING,
    (REPLAYING, _E.CAUGHT_UP): OPEN,
    (OPEN, _E.FRAME): OPEN,
    (OPEN, _E.SYNC_FRAME): REPLAYING,
    (OPEN, _E.RESYNC): REPLAYING,
    **{(state, _E.CLOSE): CLOSING for state in (AWAITING_AUTH, REPLAYING, OPEN)},
    # Results, timers and frames still in flight when the close was decided are dropped.
    **{(CLOSING, event): CLOSING for event in Event},
}


class IllegalTransition(RuntimeError):
    """The driver fed an input the session's state does not accept: a bug, never the peer's doing."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"{event.value} in state {state.value}")
        self.state = state
        self.event = event


_NONE: tuple[Effect, ...] = ()
_JOIN_HUB = JoinHub()
_READ_CURSORS = ReadCursors()
_AWAIT_ROOM = AwaitRoom()
# Enum members read as attributes go through EnumType.__getattr__: the frame path reads these.
_FRAME = Event.FRAME
_FRAME_EVENTS = {protocol.Auth: Event.AUTH_FRAME, protocol.Sync: Event.SYNC_FRAME}
_by_position = itemgetter(0)


class Session:
    """The state of one connection and its rules; see the module docstring."""

    __slots__ = (
        "state", "conn_id", "node", "user_id", "token_hash", "outbox", "stream", "closing", "posts_delivered",
        "_auth_timeout", "_page_size", "_effects", "_awaiting", "_auth", "_again", "_page_after",
        "_sync_pending", "_sync_ref", "_posts_from", "_posts_buffer", "_posts_seq",
        "_batch", "_batch_at", "_send_batch",
    )

    def __init__(
        self, conn_id: int, node: str, *, outbound_queue_bytes: int, auth_timeout: float,
        page_size: int = protocol.DEFAULT_SYNC_LIMIT,
    ) -> None:
        self.state = AWAITING_AUTH
        self.conn_id = conn_id  # an own send's inbox entry carries it (InboxEvent.origin)
        self.node = node
        self.user_id = 0
        self.token_hash: str | None = None
        self.outbox = Outbox(outbound_queue_bytes)
        self.stream: InboxStream | None = None  # made once authenticated
        self.closing: Close | None = None  # the close decided, once decided
        self._auth_timeout = auth_timeout
        self._page_size = page_size
        self._effects: list[Effect] = []  # gathered during one input, handed back at its end
        # Sends awaiting their ack: client_msg_id -> the send frame's id. A committed
        # send's ack takes the place of its echo in this connection's stream, so
        # acks and messages reach the client in seq order.
        self._awaiting: dict[str, str | None] = {}
        self._auth: protocol.Auth | None = None  # the auth frame, until the cursors are read
        # The replay: while `replaying`, exactly one step is outstanding (the cursors,
        # a page, posts, or room in the outbox), and only then.
        self._again = False  # a sync or gap arrived while a step was outstanding: read again
        self._page_after = 0  # the cursor the outstanding ReadPage asked from
        self._sync_pending = False  # a frame awaits its `synced`
        self._sync_ref: str | None = None  # that frame's id
        # The posts stream: positions are global and a follower sees only some of
        # them, so there is no gap to detect; live posts are sent when newer than
        # posts_delivered, and buffered while the cursors are read or posts replay.
        self.posts_delivered = 0
        self._posts_from: int | None = None  # a replay of posts after this is asked for
        self._posts_buffer: list[tuple[int, bytes, bool]] | None = None
        self._posts_seq: int | None = None  # where the posts replay reached, for `synced`
        # The page being sent (inbox entries or posts), how far, and the method that sends it.
        self._batch: Sequence[Any] = ()
        self._batch_at = 0
        self._send_batch: Callable[[], None] | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Sequence[Effect]:
        """The connection is accepted: the client has the auth timeout to authenticate."""
        return (StartTimer(Timer.AUTH, self._auth_timeout),)

    def on_timer(self, timer: Timer) -> Sequence[Effect]:
        if timer is Timer.SESSION:
            # The token expired: the client is told why, then the socket closes (4003)
            # once what is queued is written; it signs in again for a new token.
            if self.closing is None:
                notice = protocol.Notice(Code.SESSION_EXPIRED.value, "your session has expired: sign in again")
                self._push(protocol.encode(notice))
                self._close(protocol.CLOSE_REVOKED, "session expired", flush=True)
            return self._out()
        self._fire(Event.AUTH_TIMEOUT)
        if self.closing is None:
            self._closed(protocol.CLOSE_AUTH_TIMEOUT, "no auth frame in time")
        return self._out()

    def close(self, code: int, reason: str, *, flush: bool = False) -> Sequence[Effect]:
        """Close (the peer went, the token was revoked, the server stops); a second close is ignored."""
        self._close(code, reason, flush)
        return self._out()

    # -- frames -------------------------------------------------------------------------

    def on_data(self, data: str | bytes) -> Sequence[Effect]:
        """A message from the socket: decoded strictly; a bad one gets an ``error`` frame."""
        try:
            frame = protocol.decode(data)
        except protocol.ProtocolError as exc:
            self._push(protocol.encode(protocol.error_frame(exc)))
            return self._out()
        return self.on_frame(frame)

    def on_frame(self, frame: protocol.ClientFrame) -> Sequence[Effect]:
        kind = type(frame)
        event = _FRAME_EVENTS.get(kind, _FRAME)
        before = self.state
        state = TRANSITIONS.get((before, event))
        if state is None:  # the peer's mistake: answered, never raised
            detail = "already authenticated" if event is Event.AUTH_FRAME else "authenticate first with an auth frame"
            self._error(Code.OUT_OF_ORDER.value, detail, frame.id)
            return self._out()
        self.state = state
        if state is CLOSING:
            return _NONE
        if kind is protocol.Send:
            self._awaiting[frame.client_msg_id] = frame.id
            return (Submit(frame),)
        if kind is protocol.Auth:
            self._auth = frame
            return (Authenticate(frame.token, frame.id),)
        if kind is protocol.Sync:
            self._sync(frame, replaying=before is REPLAYING)
        elif kind is protocol.Received:
            return (MarkReceived(frame.seq, frame.id),)
        elif kind is protocol.Read:
            return (MarkRead(frame.conversation_id, frame.message_id, frame.id),)
        elif kind is protocol.Typing:
            return (NotifyTyping(frame.conversation_id, frame.id),)
        elif kind is protocol.Ping:
            self._push(protocol.encode(protocol.Pong(frame.nonce)))
        return self._out()

    def on_error(self, exc: ImserverError, ref: str | None) -> Sequence[Effect]:
        """A service refused what a frame asked (a read receipt for a foreign conversation, ...)."""
        self._error(exc.code.value, exc.detail, ref)
        return self._out()

    def _sync(self, frame: protocol.Sync, replaying: bool) -> None:
        self.stream.reset(frame.inbox_after)
        self._sync_ref = frame.id
        self._sync_pending = True
        if frame.posts_after is not None:
            self._posts_from = frame.posts_after
            if self._posts_buffer is None:
                self._posts_buffer = []
        self._start_replay(replaying)

    # -- authentication -----------------------------------------------------------------

    def on_auth_ok(self, user_id: int, token_hash: str | None, expires_in: float | None = None) -> Sequence[Effect]:
        """The token is good: join the hub, buffering live entries, and read the cursors.

        `expires_in`: seconds until the token expires (None: it does not); the
        socket ends then, as the token does (:data:`Timer.SESSION`)."""
        self._fire(Event.AUTH_OK)
        if self.closing is not None:  # the auth timer fired while the token was checked
            return self._out()
        self.user_id = user_id
        self.token_hash = token_hash
        # Join the hub before reading the cursors, buffering live entries meanwhile:
        # an entry committed around the read is then either covered by the
        # cursor, emitted from the buffer, or found missing and replayed.
        self.stream = InboxStream(delivered=0)
        self.stream.begin_replay()
        self._posts_buffer = []  # posts committed around the cursor reads wait here
        # Reading the cursors is the replay's first step.
        if expires_in is None:
            return (CancelTimer(Timer.AUTH), _JOIN_HUB, _READ_CURSORS)
        return (CancelTimer(Timer.AUTH), StartTimer(Timer.SESSION, max(0.0, expires_in)), _JOIN_HUB, _READ_CURSORS)

    def on_auth_refused(self, exc: ImserverError, ref: str | None) -> Sequence[Effect]:
        self._fire(Event.AUTH_REFUSED)
        if self.closing is None:
            self._error(exc.code.value, exc.detail, ref)
            self._closed(protocol.CLOSE_POLICY, "authentication failed", flush=True)
        return self._out()

    def on_cursors(self, inbox_seq: int, received_seq: int, posts_position: int, server_time: str) -> Sequence[Effect]:
        """The user's cursors: send ``hello``, then go live or replay from the auth frame's cursors."""
        self._fire(Event.CURSORS)
        if self.closing is not None:
            return self._out()
        auth, self._auth = self._auth, None
        stream = self.stream
        stream.delivered = inbox_seq
        self.posts_delivered = posts_position
        self._push(
            protocol.encode(
                protocol.Hello(
                    user_id=self.user_id, node=self.node, inbox_seq=inbox_seq, received_seq=received_seq,
                    server_time=server_time,
                )
            )
        )
        if auth is not None and (auth.inbox_after is not None or auth.posts_after is not None):
            # Resume in the auth frame: replay from the client's cursors before
            # anything live (live entries stay buffered until the replay has passed them).
            if auth.inbox_after is not None:
                stream.reset(auth.inbox_after)
            # else: the stream stays buffering from inbox_seq; the replay drains it.
            if auth.posts_after is not None:
                self._posts_from = auth.posts_after
            else:
                self._flush_posts()
            self._sync_ref = auth.id
            self._sync_pending = True
            self._again = False  # the replay reads the store after the cursor anyway
            self._read_page()
            return self._out()
        self._flush_posts()
        self._page_done(reached_end=True)
        return self._out()

    def on_read_failed(self, exc: ImserverError) -> Sequence[Effect]:
        """Reading the cursors, a page or posts failed: say so and close; the client resumes by cursor."""
        if self.closing is None:
            ref = self._auth.id if self._auth is not None else self._sync_ref
            self._error(exc.code.value, exc.detail, ref)
            self._close(protocol.CLOSE_GOING_AWAY, "could not read your inbox: reconnect and sync", flush=True)
        return self._out()

    # -- sends --------------------------------------------------------------------------

    def on_send_refused(self, frame: protocol.Send, exc: ImserverError) -> Sequence[Effect]:
        """The send was refused before or at its commit: a ``rejected`` ack."""
        self._awaiting.pop(frame.client_msg_id, None)
        retry_after = exc.extra.get("retry_after")
        self._push(
            protocol.encode(
                protocol.Ack(
                    client_msg_id=frame.client_msg_id,
                    status="rejected",
                    reason=exc.code.value,
                    detail=exc.detail,
                    retry_after=float(retry_after) if retry_after is not None else None,
                    ref=frame.id,
                )
            )
        )
        return self._out()

    def on_send_cancelled(self, frame: protocol.Send) -> Sequence[Effect]:
        """The send's commit was cancelled (the server stops): no ack; the client retries."""
        self._awaiting.pop(frame.client_msg_id, None)
        return _NONE

    def on_send_stored(self, frame: protocol.Send, result: SendResult) -> Sequence[Effect]:
        """The send is committed. A new entry in the sender's inbox is acked from the stream, in
        seq order (:meth:`live`, or the replay that re-reads it); a retry of a stored send or a
        held message makes no new entry and is acked here."""
        if result.in_stream:
            return _NONE
        self._awaiting.pop(frame.client_msg_id, None)
        self._push(
            protocol.encode(
                protocol.Ack(
                    client_msg_id=frame.client_msg_id,
                    status="held" if result.held else "accepted",
                    message_id=result.message_id,
                    conversation_id=result.conversation_id,
                    seq=result.seq,
                    sent_at=result.sent_at,
                    duplicate=result.duplicate,
                    reason=result.reason,
                    ref=frame.id,
                )
            )
        )
        return self._out()

    # -- deliveries from fan-out --------------------------------------------------------

    def live(self, event: InboxEvent, frame: bytes) -> Sequence[Effect]:
        """A committed inbox entry of this user, with its ``msg`` frame encoded once by the hub."""
        stream = self.stream
        if stream is None or self.closing is not None:
            return _NONE
        m = event.message
        if event.origin == self.conn_id or (m.sender_id == self.user_id and m.client_msg_id in self._awaiting):
            frame = self._own_ack(event)
        out, need_replay = stream.live(event.seq, frame)
        for f in out:
            self._push(f)
        if need_replay:
            self._resync()
        return self._out()

    def post(self, position: int, frame: bytes, tombstone: bool) -> Sequence[Effect]:
        """A committed post (or a takedown's tombstone) of an account this user follows."""
        if self.stream is None or self.closing is not None:
            return _NONE
        if self._posts_buffer is not None:
            self._posts_buffer.append((position, frame, tombstone))
            return _NONE
        self._post(position, frame, tombstone)
        return self._out()

    def push(self, frame: bytes, *, droppable: bool = False) -> Sequence[Effect]:
        """An ephemeral frame (a receipt, typing, a notice); ``droppable`` ones go first under pressure."""
        self._push(frame, droppable)
        return self._out()

    def resync(self) -> Sequence[Effect]:
        """Look in the store for entries after the cursor (live delivery may have lost some)."""
        if self.stream is None or self.closing is not None:
            return _NONE
        self._resync()
        return self._out()

    # -- the replay ---------------------------------------------------------------------

    def on_page(self, events: Sequence[InboxEvent]) -> Sequence[Effect]:
        """Entries after :attr:`ReadPage.after`, in seq order, at most its limit."""
        return self._begin_batch(Event.PAGE, events, self._send_page)

    def on_posts(self, views: Sequence[PostView]) -> Sequence[Effect]:
        """Posts after :attr:`ReadPosts.after`, in position order, at most its limit."""
        return self._begin_batch(Event.POSTS, views, self._send_posts)

    def on_room(self) -> Sequence[Effect]:
        """The outbox is under half full again: the page that paused goes on."""
        self._fire(Event.ROOM)
        if self.closing is None:
            self._send_batch()
        return self._out()

    def _begin_batch(self, event: Event, batch: Sequence[Any], send: Callable[[], None]) -> Sequence[Effect]:
        self._fire(event)
        if self.closing is None:
            self._batch, self._batch_at, self._send_batch = batch, 0, send
            send()
        return self._out()

    def _start_replay(self, replaying: bool) -> None:
        """Read the store from the stream's cursor; `replaying`: a step is outstanding already."""
        if replaying:
            self._again = True  # the outstanding step ends in another read
        else:
            self._read_page()

    def _resync(self) -> None:
        replaying = self.state is REPLAYING
        self._fire(Event.RESYNC)
        self.stream.begin_replay()
        self._start_replay(replaying)

    def _read_page(self) -> None:
        self._page_after = after = self.stream.delivered
        self._effects.append(ReadPage(after, self._page_size))

    def _read_again(self) -> None:
        self._again = False
        self.stream.begin_replay()
        self._read_page()

    def _paused(self, at: int) -> bool:
        """After each frame of a page: stop if closing, pause while the outbox is over half full."""
        if self.closing is not None:
            return True
        if not self.outbox.has_room():
            self._batch_at = at
            self._effects.append(_AWAIT_ROOM)
            return True
        return False

    def _send_page(self) -> None:
        """Send the page's entries from where it stopped, pausing while the outbox is over half full."""
        stream, events = self.stream, self._batch
        i, n = self._batch_at, len(events)
        if i == 0 and self._page_after != stream.delivered:
            # A sync moved the cursor while this page was read: it answers the old
            # cursor (and its first entry would pass for a gap). Read from the new one.
            self._batch = ()
            self._read_again()
            return
        while i < n:
            event = events[i]
            i += 1
            seq = event.seq
            # A live frame buffered for this seq is sent as fan-out made it: for this
            # connection's own send it is the ack (live() already took the send out
            # of _awaiting), which re-encoding would turn into a msg.
            frame = stream.buffered(seq)
            if i == 1 and seq > stream.delivered + 1:
                # Cannot happen: seqs are gap-free by construction. Should the store
                # ever hold a gap, skip it rather than re-read this page forever.
                self._effects.append(LogError(f"inbox of user {self.user_id} has a gap after seq {stream.delivered}"))
                stream.delivered = seq - 1
            if stream.replayed(seq):
                if frame is None:
                    m = event.message
                    own = m.sender_id == self.user_id and m.client_msg_id in self._awaiting
                    frame = self._own_ack(event) if own else protocol.msg_frame(event)
                self._push(frame)
            if self._paused(i):
                return
        self._batch = ()
        self._page_done(reached_end=n < self._page_size)

    def _page_done(self, reached_end: bool) -> None:
        out, again = self.stream.page_done(reached_end)
        for f in out:
            self._push(f)
        if self.closing is not None:
            return
        if again or self._again:
            self._read_again()
        elif self._posts_from is not None:
            after, self._posts_from = self._posts_from, None
            self.posts_delivered = after
            self._effects.append(ReadPosts(after, self._page_size))
        else:
            self._caught_up()

    def _send_posts(self) -> None:
        views = self._batch
        i, n = self._batch_at, len(views)
        while i < n:
            view = views[i]
            i += 1
            if view.position > self.posts_delivered:
                self.posts_delivered = view.position
                self._push(protocol.post_frame(view))
            if self._paused(i):
                return
        self._batch = ()
        if n >= self._page_size:
            self._effects.append(ReadPosts(self.posts_delivered, self._page_size))
            return
        if self._posts_from is None:  # else a sync asked for posts again: keep buffering
            self._flush_posts()
        self._posts_seq = self.posts_delivered
        self._caught_up()

    def _caught_up(self) -> None:
        if self._again:  # a gap or a sync arrived while the posts were read
            self._read_again()
            return
        if self._sync_pending:
            self._push(
                protocol.encode(
                    protocol.Synced(
                        inbox_seq=self.stream.delivered, complete=True, ref=self._sync_ref, posts_seq=self._posts_seq
                    )
                )
            )
            self._sync_pending = False
            self._sync_ref = None
        self._posts_seq = None
        self._fire(Event.CAUGHT_UP)

    def _flush_posts(self) -> None:
        """Send the posts that arrived live while buffering, skipping what a replay sent."""
        buffered, self._posts_buffer = self._posts_buffer or [], None
        for position, frame, tombstone in sorted(buffered, key=_by_position):
            self._post(position, frame, tombstone)

    def _post(self, position: int, frame: bytes, tombstone: bool) -> None:
        if tombstone:
            self._push(frame)
        elif position > self.posts_delivered:
            self.posts_delivered = position
            self._push(frame)

    # -- output -------------------------------------------------------------------------

    def _push(self, frame: bytes, droppable: bool = False) -> None:
        """Queue a frame; a consumer too slow to take it is closed (4008): it resumes by cursor."""
        if self.closing is None and not self.outbox.push(frame, droppable=droppable):
            self._close(protocol.CLOSE_SLOW_CONSUMER, "too slow: reconnect and sync from your cursor")

    def _error(self, code: str, detail: str, ref: str | None) -> None:
        self._push(protocol.encode(protocol.Error(code, detail, ref)))

    def _own_ack(self, event: InboxEvent) -> bytes:
        m = event.message
        return protocol.encode(
            protocol.Ack(
                client_msg_id=m.client_msg_id,
                status="accepted",
                message_id=m.message_id,
                conversation_id=m.conversation_id,
                seq=event.seq,
                sent_at=m.sent_at,
                ref=self._awaiting.pop(m.client_msg_id, None),
            )
        )

    def _close(self, code: int, reason: str, flush: bool = False) -> None:
        if self.closing is None:
            self._fire(Event.CLOSE)
            self._closed(code, reason, flush)

    def _closed(self, code: int, reason: str, flush: bool = False) -> None:
        """Record the close of a session that has just entered ``closing``."""
        self.closing = close = Close(code, reason, flush)
        self._effects.append(close)

    def _fire(self, event: Event) -> None:
        state = TRANSITIONS.get((self.state, event))
        if state is None:
            raise IllegalTransition(self.state, event)
        self.state = state

    def _out(self) -> Sequence[Effect]:
        effects = self._effects
        if not effects:
            return _NONE
        self._effects = []
        return effects
