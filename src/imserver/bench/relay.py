"""The bare relay: the floor that imserver's figures are compared with (``--baseline``).

Same stack as imserver's gateway (uvicorn and its WebSocket layer, Starlette's
``WebSocket``, orjson, one bounded-in-spirit outbox and writer task per
connection, and the gateway's own transport, which hands queued frames to
uvicorn's protocol in one socket write), none of its work: no authentication (the ``auth`` token is taken as
the user id), no policy, no storage. It speaks just enough of protocol v1 for
the bench's client to drive it unchanged:

* ``auth`` -> ``hello``;
* ``send`` -> a fake ``ack`` to the sender and a ``msg`` to each connection of
  the recipient (or of every other member of a group);
* ``sync`` -> ``synced`` at once (it holds nothing to replay);
* ``publish`` (relay only, the ``fanout`` baseline: imserver posts over HTTP)
  -> an ``ack`` with a ``post_id`` to the publisher, and one ``post`` frame,
  encoded once, to every connection of every follower of that account;
* anything else is ignored.

Per-user ``seq`` counters live in memory so that receivers check order exactly
as they do against imserver. Groups and followers are told to it over HTTP
(``POST /groups {"members": [...]}``, ``POST /accounts {"followers": [...]}``
-> ``{"id": n}``), since it has no store.

Run as its own process: ``python -m imserver.bench.relay --port 9001``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
from collections import defaultdict, deque

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..gateway.endpoint import StarletteTransport

# The ack and msg carry a fixed sent_at: the relay keeps no clock work either.
FAKE_TIME = "1970-01-01T00:00:00+00:00"


class _Peer:
    """One relay connection: who it is and its outbound queue."""

    __slots__ = ("frames", "transport", "user_id", "wake", "ws")

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.transport = StarletteTransport(ws)  # the gateway's write path
        self.user_id = 0
        self.frames: deque[bytes] = deque()
        self.wake = asyncio.Event()

    def push(self, frame: bytes) -> None:
        self.frames.append(frame)
        self.wake.set()


class Relay:
    """Routing state: live connections per user, seq counters, group members."""

    def __init__(self) -> None:
        self.peers: defaultdict[int, set[_Peer]] = defaultdict(set)
        self.seqs: defaultdict[int, int] = defaultdict(int)
        self.groups: dict[int, tuple[int, ...]] = {}
        self.followers: dict[int, tuple[int, ...]] = {}  # public account id -> follower user ids
        self._group_ids = itertools.count(1)
        self._account_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._post_ids = itertools.count(1)  # also the position in the (global) posts stream

    def add_group(self, members: list[int]) -> int:
        group_id = next(self._group_ids)
        self.groups[group_id] = tuple(sorted(set(members)))
        return group_id

    def add_account(self, followers: list[int]) -> int:
        account_id = next(self._account_ids)
        self.followers[account_id] = tuple(sorted(set(followers)))
        return account_id

    def handle(self, peer: _Peer, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "send":
            self._send(peer, frame)
        elif kind == "auth":
            peer.user_id = int(frame["token"])
            self.peers[peer.user_id].add(peer)
            hello = {
                "type": "hello",
                "user_id": peer.user_id,
                "node": "relay",
                "inbox_seq": self.seqs[peer.user_id],
                "received_seq": 0,
                "server_time": FAKE_TIME,
                "protocol": 1,
            }
            peer.push(orjson.dumps(hello))
        elif kind == "publish":
            self._publish(peer, frame)
        elif kind == "sync":
            synced = {"type": "synced", "inbox_seq": self.seqs[peer.user_id], "complete": True, "ref": frame.get("id")}
            peer.push(orjson.dumps(synced))

    def _send(self, peer: _Peer, frame: dict) -> None:
        to = frame["to"]
        sender = peer.user_id
        if "user" in to:
            conversation = to["user"]
            recipients: tuple[int, ...] = (to["user"],)
            kind = "direct"
        else:
            conversation = to["group"]
            recipients = tuple(u for u in self.groups.get(conversation, ()) if u != sender)
            kind = "group"
        message_id = next(self._message_ids)
        for user in recipients:
            self.seqs[user] += 1
            conns = self.peers.get(user)
            if not conns:
                continue
            data = orjson.dumps(
                {
                    "type": "msg",
                    "seq": self.seqs[user],
                    "message_id": message_id,
                    "conversation_id": conversation,
                    "conversation_kind": kind,
                    "from": {"id": sender, "nickname": ""},
                    "body": frame["body"],
                    "client_msg_id": frame["client_msg_id"],
                    "sent_at": FAKE_TIME,
                }
            )
            for conn in conns:
                conn.push(data)
        self.seqs[sender] += 1
        ack = {
            "type": "ack",
            "client_msg_id": frame["client_msg_id"],
            "status": "accepted",
            "message_id": message_id,
            "conversation_id": conversation,
            "seq": self.seqs[sender],
            "sent_at": FAKE_TIME,
            "duplicate": False,
        }
        if frame.get("id") is not None:
            ack["ref"] = frame["id"]
        peer.push(orjson.dumps(ack))


    def _publish(self, peer: _Peer, frame: dict) -> None:
        """A post to every online follower: one ``post`` frame, encoded once (as imserver does)."""
        account = frame["account"]
        post_id = next(self._post_ids)
        peer.push(orjson.dumps({"type": "ack", "ref": frame.get("id"), "status": "accepted", "post_id": post_id}))
        data = orjson.dumps(
            {
                "type": "post",
                "position": post_id,
                "post_id": post_id,
                "account": {"id": account, "name": "", "news_badge": None},
                "kind": frame.get("kind", "ordinary"),
                "title": frame["title"],
                "body": frame["body"],
                "posted_at": FAKE_TIME,
            }
        )
        for user in self.followers.get(account, ()):
            for conn in self.peers.get(user, ()):
                conn.push(data)


def create_app() -> Starlette:
    relay = Relay()

    async def groups(request: Request) -> Response:
        body = orjson.loads(await request.body())
        return JSONResponse({"id": relay.add_group(list(body["members"]))}, status_code=201)

    async def accounts(request: Request) -> Response:
        body = orjson.loads(await request.body())
        return JSONResponse({"id": relay.add_account(list(body["followers"]))}, status_code=201)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "relay": True})

    async def websocket(ws: WebSocket) -> None:
        await ws.accept()
        peer = _Peer(ws)
        writer = asyncio.create_task(_writer(peer))
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("text") or message.get("bytes")
                if data:
                    relay.handle(peer, orjson.loads(data))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            conns = relay.peers.get(peer.user_id)
            if conns is not None:
                conns.discard(peer)

    async def _writer(peer: _Peer) -> None:
        while True:
            if peer.frames:
                frames = list(peer.frames)
                peer.frames.clear()
                try:
                    await peer.transport.send_many(frames)
                except Exception:  # noqa: BLE001 - the peer went away; the reader ends too
                    return
                continue
            peer.wake.clear()
            await peer.wake.wait()

    return Starlette(
        routes=[
            Route("/groups", groups, methods=["POST"]),
            Route("/accounts", accounts, methods=["POST"]),
            Route("/healthz", healthz),
            WebSocketRoute("/ws", websocket),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="imserver-bench-relay", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # The same WebSocket settings as `imserver serve` (cli.py): no compression, 64 KiB frames.
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_level="warning",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=64 * 1024,
    )


if __name__ == "__main__":
    main()
