"""The Python client SDK: connect, authenticate, send (awaiting the ack), receive, sync, resume.

    async with await Client.connect("ws://127.0.0.1:8000/ws", token) as c:
        ack = await c.send(to_user=2, body="hi")
        msg = await c.next_message()

The client keeps the inbox cursor (the highest seq received without a gap), so
``reconnect()`` resumes exactly where it left off. With ``auto_reconnect``
(a :class:`~imserver.client.backoff.Backoff`, or True for the defaults) it does
so by itself when the server goes away (1001 on a node's shutdown, a dropped
connection, 4008 for a slow consumer), after a jittered exponential delay, and
resumes from its cursors: no gap, no duplicate. Sends that were awaiting their
ack fail with ``ClientError("disconnected")``; retry them with the same
``client_msg_id`` (stored once). It does not reconnect after a close that
reconnecting cannot fix (1008 bad token, 4003 revoked, 1009 frame too big). It also counts what the
server owes it by contract: ``gaps`` (a seq skipped) and ``duplicates`` (a seq
seen twice), which must stay zero; the tests and the benchmark read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

import websockets

from ..gateway import protocol
from ..gateway.protocol import Ack, Error, Hello, Msg, Notice, Pong, Post, Receipt, Synced, Tombstone, TypingEvent

from .backoff import Backoff

log = logging.getLogger("imserver.client")

# The server closes idle sockets it cannot ping; the SDK answers pings itself.
DEFAULT_TIMEOUT = 10.0
# Close codes after which auto_reconnect tries again (docs/protocol.md, "Close codes"):
# going away, abnormal (no close frame), server error or restart, try again later, slow consumer.
RECONNECT_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 4008})


class ClientError(Exception):
    """The server answered a request with an error frame, or the connection failed."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class Client:
    def __init__(
        self, url: str, token: str, *, origin: str | None = None, auto_reconnect: Backoff | bool | None = None
    ) -> None:
        self.url = url
        self.token = token
        self.origin = origin
        self.backoff = Backoff() if auto_reconnect is True else (auto_reconnect or None)
        self.reconnects = 0  # automatic reconnects that succeeded
        self.gave_up: BaseException | None = None  # why auto_reconnect stopped trying, if it did
        self._closing = False  # close() was called: no automatic reconnect
        self._reconnecting: asyncio.Task | None = None
        self._connected = asyncio.Event()  # set while a connection is open and authenticated
        self.hello: Hello | None = None
        self.cursor = 0  # highest inbox seq received in order
        # Syncs the server has not answered yet (a resuming auth counts as one).
        # Meanwhile inbox frames out of order were sent before the server took the
        # sync; its replay sends them again, in order, so they are skipped.
        self._syncs: set[str] = set()
        self.gaps = 0
        self.duplicates = 0
        self.close_code: int | None = None
        self.errors: asyncio.Queue[Error] = asyncio.Queue()
        self.events: asyncio.Queue[Receipt | TypingEvent | Notice] = asyncio.Queue()
        self._messages: asyncio.Queue[Msg] = asyncio.Queue()
        # Public-account posts and takedowns, in arrival order; posts_cursor is the
        # highest post position seen (what `sync(posts_after=...)` resumes from).
        self.posts: asyncio.Queue[Post | Tombstone] = asyncio.Queue()
        self.posts_cursor = 0
        self.post_duplicates = 0
        self._acks: dict[str, asyncio.Future[Ack]] = {}
        self._waiters: dict[str, asyncio.Future] = {}  # ref -> future (sync, ping, errors)
        self._ws = None
        self._reader: asyncio.Task | None = None
        self._hello: asyncio.Future[Hello] | None = None

    # -- connecting -----------------------------------------------------------------

    @classmethod
    async def connect(
        cls, url: str, token: str, *, origin: str | None = None, inbox_after: int | None = None,
        posts_after: int | None = None, timeout: float = DEFAULT_TIMEOUT, auto_reconnect: Backoff | bool | None = None,
    ) -> Client:
        """Connect and authenticate; with `inbox_after` (and `posts_after`), the
        server replays from those cursors before anything live. With
        `auto_reconnect`, reconnect by itself when the server goes away (module docstring)."""
        client = cls(url, token, origin=origin, auto_reconnect=auto_reconnect)
        await client._open(timeout, inbox_after=inbox_after, posts_after=posts_after)
        return client

    async def _open(
        self, timeout: float, *, inbox_after: int | None = None, posts_after: int | None = None
    ) -> None:
        headers = {"Origin": self.origin} if self.origin else None
        self._ws = await websockets.connect(
            self.url, additional_headers=headers, compression=None, max_size=None, open_timeout=timeout
        )
        self.close_code = None
        self._hello = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(), name="imserver-client-reader")
        resuming = inbox_after is not None or posts_after is not None
        auth = protocol.Auth(
            token=self.token,
            inbox_after=inbox_after,
            posts_after=posts_after,
            id=uuid.uuid4().hex[:16] if resuming else None,
        )
        synced = None
        if resuming:
            # The cursors travel in the auth frame, so the server replays before
            # sending anything live: the stream arrives in order from the start.
            if inbox_after is not None:
                self.cursor = inbox_after
            if posts_after is not None:
                self.posts_cursor = posts_after
            self._syncs.add(auth.id)
            synced = self._waiters[auth.id] = asyncio.get_running_loop().create_future()
        try:
            await self._ws.send(protocol.encode_client(auth).decode())  # not _send_frame: it waits for this
            self.hello = await asyncio.wait_for(asyncio.shield(self._hello), timeout)
            if synced is not None:
                await asyncio.wait_for(synced, timeout)
        finally:
            if auth.id is not None:
                self._waiters.pop(auth.id, None)
                self._syncs.discard(auth.id)
        self._connected.set()

    async def reconnect(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Reconnect and resume from the cursors: no gap, no duplicate."""
        await self._shutdown()
        await self._open(timeout, inbox_after=self.cursor, posts_after=self.posts_cursor)

    async def close(self) -> None:
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reconnecting
        await self._shutdown()

    async def wait_connected(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until the client is connected (again, after an automatic reconnect)."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    def _after_close(self) -> None:
        """The reader saw the connection end: reconnect by ourselves if we should."""
        self._connected.clear()
        if (
            self.backoff is None or self._closing or self.close_code not in RECONNECT_CODES
            or (self._reconnecting is not None and not self._reconnecting.done())
        ):
            return
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect_loop(), name="imserver-reconnect")

    async def _reconnect_loop(self) -> None:
        """Try again after jittered delays until connected, or until the backoff's attempts run out."""
        attempt = 0
        while not self._closing:
            await asyncio.sleep(self.backoff.delay(attempt))
            try:
                await self._open(DEFAULT_TIMEOUT, inbox_after=self.cursor, posts_after=self.posts_cursor)
            except Exception as exc:  # noqa: BLE001 - any failure to connect is retried
                await self._drop_socket()
                attempt += 1
                if self.close_code is not None and self.close_code not in RECONNECT_CODES:
                    self.gave_up = exc  # refused for good (bad token, revoked): trying again cannot help
                    return
                if self.backoff.max_attempts is not None and attempt >= self.backoff.max_attempts:
                    self.gave_up = exc
                    log.warning("gave up reconnecting to %s after %d attempts: %r", self.url, attempt, exc)
                    return
                continue
            self.reconnects += 1
            return

    async def _drop_socket(self) -> None:
        """After a failed attempt: close what it opened, without scheduling another reconnect."""
        reader, self._reader = self._reader, None
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _shutdown(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self._reader = None
        self._fail_pending(ClientError("disconnected", "the connection closed"))

    # -- requests -----------------------------------------------------------------------

    async def send(
        self,
        body: str,
        *,
        to_user: int | None = None,
        to_group: int | None = None,
        client_msg_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Ack:
        """Send a message and wait for its ack (accepted, held or rejected)."""
        future = await self.send_nowait(body, to_user=to_user, to_group=to_group, client_msg_id=client_msg_id)
        return await asyncio.wait_for(future, timeout)

    async def send_nowait(
        self, body: str, *, to_user: int | None = None, to_group: int | None = None, client_msg_id: str | None = None
    ) -> asyncio.Future[Ack]:
        """Send without waiting; the returned future resolves with the ack."""
        if (to_user is None) == (to_group is None):
            raise ValueError("give exactly one of to_user and to_group")
        cmid = client_msg_id or uuid.uuid4().hex
        to = protocol.Recipient("user", to_user) if to_user is not None else protocol.Recipient("group", to_group)
        future = self._acks.get(cmid)
        created = future is None or future.done()
        if created:
            future = asyncio.get_running_loop().create_future()
            self._acks[cmid] = future
        try:
            await self._send_frame(protocol.Send(client_msg_id=cmid, to=to, body=body))
        except BaseException:
            # Not sent: nobody will await this future, so it must not fail later unretrieved.
            if created:
                self._acks.pop(cmid, None)
                future.cancel()
            raise
        return future

    async def sync(
        self, inbox_after: int | None = None, *, posts_after: int | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Synced:
        """Replay from `inbox_after` (default: the cursor), and posts after `posts_after`
        when given; returns once caught up."""
        after = self.cursor if inbox_after is None else inbox_after
        self.cursor = after
        if posts_after is not None:
            self.posts_cursor = posts_after
        frame = protocol.Sync(inbox_after=after, posts_after=posts_after, id=uuid.uuid4().hex[:16])
        self._syncs.add(frame.id)
        try:
            return await self._request(frame, timeout)
        finally:
            self._syncs.discard(frame.id)

    async def next_post(self, timeout: float = DEFAULT_TIMEOUT) -> Post | Tombstone:
        return await asyncio.wait_for(self.posts.get(), timeout)

    async def ping(self, timeout: float = DEFAULT_TIMEOUT) -> Pong:
        nonce = uuid.uuid4().hex[:16]
        return await self._request(protocol.Ping(nonce=nonce, id=nonce), timeout)

    async def received(self, seq: int | None = None) -> None:
        await self._send_frame(protocol.Received(seq=self.cursor if seq is None else seq))

    async def read(self, conversation_id: int, message_id: int) -> None:
        await self._send_frame(protocol.Read(conversation_id=conversation_id, message_id=message_id))

    async def typing(self, conversation_id: int) -> None:
        await self._send_frame(protocol.Typing(conversation_id=conversation_id))

    async def send_raw(self, text: str | bytes) -> None:
        """Send arbitrary data (tests of bad input)."""
        await self._ws.send(text)

    # -- receiving ----------------------------------------------------------------------

    async def next_message(self, timeout: float = DEFAULT_TIMEOUT) -> Msg:
        return await asyncio.wait_for(self._messages.get(), timeout)

    async def messages(self) -> AsyncIterator[Msg]:
        while True:
            yield await self._messages.get()

    def pending_messages(self) -> int:
        return self._messages.qsize()

    async def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> int | None:
        """Wait until the server closes the connection; returns the close code."""
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    # -- internals ------------------------------------------------------------------------

    async def _send_frame(self, frame) -> None:
        if self._reconnecting is not None and not self._reconnecting.done():
            await self.wait_connected()  # reconnecting by itself: the frame goes on the new connection
        await self._ws.send(protocol.encode_client(frame).decode())

    async def _request(self, frame, timeout: float):
        future = asyncio.get_running_loop().create_future()
        self._waiters[frame.id] = future
        try:
            await self._send_frame(frame)
            return await asyncio.wait_for(future, timeout)
        finally:
            self._waiters.pop(frame.id, None)

    async def _read(self) -> None:
        try:
            async for data in self._ws:
                frame = protocol.decode_server(data)
                self._dispatch(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            code = self._ws.close_code if self._ws is not None else None
            self.close_code = code if code is not None else 1006
            self._fail_pending(ClientError("disconnected", f"closed with {self.close_code}"))
            if self._reader is asyncio.current_task():  # not a reader being replaced or cancelled
                self._after_close()

    def _dispatch(self, frame) -> None:
        match frame:
            case Msg():
                if self._syncs and frame.seq != self.cursor + 1:
                    return  # sent before the server took our sync: the replay resends it in order
                if frame.seq <= self.cursor:
                    self.duplicates += 1
                    return
                if frame.seq != self.cursor + 1:
                    self.gaps += 1
                self.cursor = frame.seq
                self._messages.put_nowait(frame)
            case Post():
                if frame.position <= self.posts_cursor:
                    self.post_duplicates += 1
                    return
                self.posts_cursor = frame.position
                self.posts.put_nowait(frame)
            case Tombstone():
                self.posts.put_nowait(frame)
            case Ack():
                if self._syncs and frame.seq is not None and frame.seq != self.cursor + 1:
                    pass  # out of order during a sync: the replay resends its entry as a msg
                elif frame.seq is not None and not frame.duplicate and frame.status == "accepted":
                    # The ack of a new message holds its place in this device's inbox stream.
                    if frame.seq <= self.cursor:
                        self.duplicates += 1
                    elif frame.seq != self.cursor + 1:
                        self.gaps += 1
                    self.cursor = max(self.cursor, frame.seq)
                future = self._acks.pop(frame.client_msg_id, None)
                if future is not None and not future.done():
                    future.set_result(frame)
            case Hello():
                if not self._syncs:  # a fresh connection starts live at the inbox's end
                    self.cursor = frame.inbox_seq
                if self._hello is not None and not self._hello.done():
                    self._hello.set_result(frame)
            case Synced() | Pong():
                ref = frame.ref if isinstance(frame, Synced) else frame.nonce
                if isinstance(frame, Synced):
                    self._syncs.discard(ref)  # from here on the stream is in order again
                future = self._waiters.get(ref)
                if future is not None and not future.done():
                    future.set_result(frame)
            case Error():
                self._syncs.discard(frame.ref)
                future = self._waiters.get(frame.ref) if frame.ref else None
                if future is not None and not future.done():
                    future.set_exception(ClientError(frame.code, frame.detail))
                else:
                    self.errors.put_nowait(frame)
                if self._hello is not None and not self._hello.done():
                    self._hello.set_exception(ClientError(frame.code, frame.detail))
            case _:
                self.events.put_nowait(frame)

    def _fail_pending(self, exc: ClientError) -> None:
        self._syncs.clear()
        for future in [*self._acks.values(), *self._waiters.values()]:
            if not future.done():
                future.set_exception(exc)
        self._acks.clear()
        if self._hello is not None and not self._hello.done():
            self._hello.set_exception(exc)
