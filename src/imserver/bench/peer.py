"""The lean client the load is driven with: raw ``websockets`` and orjson.

Why not the SDK (:mod:`imserver.client`): it is built for applications, so each
frame becomes a dataclass (``decode_server``), each send a uuid and a future,
each message a queue entry. Measured on this machine (see docs/benchmarks.md),
that costs the load generator a few microseconds per frame, which matters when
two cores are shared by the server and every client. Here:

* the ``auth`` and ``sync`` frames are built by :mod:`imserver.gateway.protocol`
  (rare, so the cost does not matter and the format is the real one);
* the hot ``send`` frame is a hand-built dict (6x cheaper than
  ``encode_client``), checked against ``protocol.decode`` by the smoke test;
* received frames are read with ``orjson.loads`` (4x cheaper than
  ``decode_server``) and only the fields a scenario needs are looked at;
* text frames travel as bytes both ways (``recv(decode=False)``,
  ``send(text=True)``): no UTF-8 round trip per frame.

Timing: every timestamp is ``time.monotonic_ns()``, which on Linux is the
system-wide CLOCK_MONOTONIC, so a stamp taken in one process can be compared
with the clock of another on the same machine. A send's stamp travels in its
``client_msg_id`` (for send -> ack) and at the start of its body (for send ->
delivery, measured by the receiver).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from ..gateway import protocol

# Connecting a storm of sockets: how long one connect + auth may take.
OPEN_TIMEOUT = 60.0
# Bodies are padded to this many characters: a short chat message (a server
# copies it into the store and into every recipient's frame).
DEFAULT_BODY_CHARS = 100


@dataclass(slots=True)
class Account:
    """A user the bench can connect as (picklable: handed to worker processes)."""

    id: int
    token: str


class Inbox:
    """The receiver's check of its inbox stream: every seq once and in order.

    ``expect`` is the seq the next entry must have; anything else is a gap (it
    skipped ahead) or a duplicate (it went back). Both must stay zero.
    """

    __slots__ = ("cursor", "duplicates", "gaps")

    def __init__(self, cursor: int) -> None:
        self.cursor = cursor
        self.gaps = 0
        self.duplicates = 0

    def seen(self, seq: int) -> None:
        if seq <= self.cursor:
            self.duplicates += 1
            return
        if seq != self.cursor + 1:
            self.gaps += 1
        self.cursor = seq


class Peer:
    """One authenticated connection, as lean as a client can be."""

    __slots__ = ("account", "hello", "inbox", "ws")

    def __init__(self, ws: ClientConnection, account: Account, hello: dict) -> None:
        self.ws = ws
        self.account = account
        self.hello = hello
        self.inbox = Inbox(hello.get("inbox_seq", 0))

    @classmethod
    async def open(
        cls, url: str, account: Account, *, timeout: float = OPEN_TIMEOUT, inbox: Inbox | None = None
    ) -> Peer:
        """Connect, authenticate, and wait for ``hello``.

        With ``inbox`` (a reconnect), the ``auth`` carries its cursor: the server
        replays what came after it before anything live (``synced`` ends the
        replay), and the new connection goes on checking the same stream.
        """
        ws = await websockets.connect(
            url,
            compression=None,  # as the server: per-message-deflate off
            max_size=None,
            ping_interval=None,  # the server pings; the library answers by itself
            open_timeout=timeout,
            close_timeout=2,  # a bench that ends should not wait on slow closes
        )
        try:
            auth = protocol.Auth(token=account.token, inbox_after=inbox.cursor if inbox else None)
            await ws.send(protocol.encode_client(auth), text=True)
            async with asyncio.timeout(timeout):
                while True:
                    frame = orjson.loads(await ws.recv(decode=False))
                    if frame.get("type") == "hello":
                        peer = cls(ws, account, frame)
                        if inbox is not None:
                            peer.inbox = inbox
                        return peer
                    if frame.get("type") == "error":
                        raise ConnectionError(f"auth refused: {frame.get('code')}: {frame.get('detail')}")
        except BaseException:
            await ws.close()
            raise

    async def send(self, data: bytes) -> None:
        await self.ws.send(data, text=True)

    async def recv(self) -> dict:
        return orjson.loads(await self.ws.recv(decode=False))

    async def sync(self, after: int) -> None:
        """Ask for a replay after ``after``; the ``msg`` frames and ``synced`` follow."""
        self.inbox.cursor = after
        await self.ws.send(protocol.encode_client(protocol.Sync(inbox_after=after, id="bench-sync")), text=True)

    async def close(self) -> None:
        await self.ws.close()


def pad(text: str, chars: int) -> str:
    return text if len(text) >= chars else text + "." * (chars - len(text))


def send_frame(kind: str, to: int, client_msg_id: str, body: str) -> bytes:
    """A protocol v1 ``send`` frame, built by hand for speed (see the module doc)."""
    return orjson.dumps({"type": "send", "client_msg_id": client_msg_id, "to": {kind: to}, "body": body})


def stamp() -> int:
    return time.monotonic_ns()


def stamped(n: int, t: int, chars: int) -> tuple[str, str]:
    """(client_msg_id, body) of message ``n`` sent at ``t``: both carry ``t``."""
    head = f"{t}:{n}"
    return head, pad(head + " ", chars)


def stamp_of(text: str) -> int:
    """The send time carried at the start of a client_msg_id or body."""
    return int(text[: text.index(":")])
