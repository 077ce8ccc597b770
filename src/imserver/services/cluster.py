"""Many nodes: what crosses the broker, and what each node does with it.

Every node delivers its own commits to its own connections directly (the local
node, i.e. the gateway's hub), then publishes them so the other nodes can
deliver to theirs. A node ignores what it published itself (the broker hands a
node its own messages back). With the one-process memory broker there is no
other node to hear a payload, so nothing is encoded; the code path is the same.

Topics and payloads
-------------------
Every payload is a JSON object with the wire version ``v`` and the publishing
``node``; the rest depends on the topic:

* ``inbox``  — committed inbox entries of one batch:
  ``{"messages": [MessageView as a dict, ...], "entries": [{"user_id", "seq", "message_id"}, ...]}``
  (a group message is sent once, with an entry per recipient);
* ``events`` — receipts, typing, notices, disconnects: ``{"user_ids", "kind", "data"}``;
* ``posts``  — a committed post or takedown: ``{"post": PostView as a dict, "tombstone"}``;
  each node looks the followers up in its own cache;
* ``policy`` — a cached fact changed: ``{"scope", "id"}`` (:class:`~.unit_of_work.Scope`);
* ``tokens`` — a revoked token: ``{"token_hash"}``; every node closes the sockets that used it.

Rolling upgrades: a node decodes every version up to :data:`WIRE_VERSION` and the
version-less positional shape that came before it (:func:`decode`); a field it
does not know is ignored, and a payload it cannot read is logged and dropped
(clients recover by cursor).

The broker is transport, at most once: a payload lost with Redis is recovered by
the clients' cursors (the gateway resyncs every connection when the broker
reconnects), and the database stays the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

from ..broker.base import Broker
from .events import InboxEvent, MessageView, PostEvent, PostView, UserEvent
from .unit_of_work import Invalidate, Scope

log = logging.getLogger("imserver.cluster")

# Payloads waiting for the broker. Publishing never blocks the commit path; past
# this the oldest are dropped (counted) and clients recover by cursor.
PUBLISH_QUEUE_MAX = 10_000

# The shape of what this version publishes; it reads this and every earlier one.
WIRE_VERSION = 1

TOPIC_INBOX = "inbox"
TOPIC_EVENTS = "events"
TOPIC_POLICY = "policy"
TOPIC_TOKENS = "tokens"
TOPIC_POSTS = "posts"
# Read only: where the version-less shape dropped a public account's follower set.
TOPIC_LEGACY_FOLLOWERS = "public_accounts"
TOPICS = (TOPIC_INBOX, TOPIC_EVENTS, TOPIC_POLICY, TOPIC_TOKENS, TOPIC_POSTS, TOPIC_LEGACY_FOLLOWERS)

# What the version-less shape said with bare integers on the policy topic.
_LEGACY_EVERYONE, _LEGACY_TERMS = 0, -1


class LocalNode(Protocol):
    """This node's live connections (the gateway's hub). Every method returns at once."""

    def inbox(self, events: list[InboxEvent]) -> None: ...

    def user_event(self, event: UserEvent) -> None: ...

    def post(self, event: PostEvent) -> None: ...

    def close_token(self, token_hash: str) -> None: ...

    def resync_all(self) -> None: ...


class NoLocalNode:
    """A node without a gateway (the CLI): nobody is connected here."""

    def inbox(self, events: list[InboxEvent]) -> None:
        pass

    def user_event(self, event: UserEvent) -> None:
        pass

    def post(self, event: PostEvent) -> None:
        pass

    def close_token(self, token_hash: str) -> None:
        pass

    def resync_all(self) -> None:
        pass


FollowersLoader = Callable[[int], Awaitable[frozenset[int]]]
InvalidationHandler = Callable[[Invalidate], Awaitable[None]]


# -- the wire ------------------------------------------------------------------------------


def encode(node_id: str, body: dict[str, Any]) -> bytes:
    return orjson.dumps({"v": WIRE_VERSION, "node": node_id, **body})


def own_prefix(node_id: str) -> bytes:
    """How every payload this node encodes begins: what it hears back is skipped undecoded."""
    return encode(node_id, {})[:-1] + b","


def inbox_body(events: list[InboxEvent]) -> dict[str, Any]:
    messages: dict[int, MessageView] = {}
    entries = []
    for e in events:
        messages.setdefault(e.message.message_id, e.message)
        entries.append({"user_id": e.user_id, "seq": e.seq, "message_id": e.message.message_id})
    return {"messages": [dataclasses.asdict(m) for m in messages.values()], "entries": entries}


def decode(topic: str, payload: bytes) -> tuple[str, Any]:
    """(publishing node, what it said) from any version's payload; ValueError if unreadable."""
    try:
        msg = orjson.loads(payload)
        if topic == TOPIC_LEGACY_FOLLOWERS:
            return _legacy_followers(msg)
        node = msg["node"]
        if "v" not in msg:  # the version-less positional shape
            return node, _LEGACY[topic](msg["body"])
        if not isinstance(msg["v"], int) or msg["v"] < 1:
            raise ValueError(f"unknown wire version {msg['v']!r}")
        return node, _CURRENT[topic](msg)
    except (KeyError, IndexError, TypeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"unreadable {topic} payload: {exc!r}") from exc


def _fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The fields of `cls` in `data`; later versions' extra fields are ignored."""
    return {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}


def _inbox_v1(msg: dict) -> list[InboxEvent]:
    views = {m["message_id"]: MessageView(**_fields(MessageView, m)) for m in msg["messages"]}
    return [InboxEvent(e["user_id"], e["seq"], views[e["message_id"]]) for e in msg["entries"]]


def _events_v1(msg: dict) -> UserEvent:
    return UserEvent(tuple(msg["user_ids"]), msg["kind"], msg["data"])


def _posts_v1(msg: dict) -> tuple[PostView, bool]:
    return PostView(**_fields(PostView, msg["post"])), bool(msg["tombstone"])


def _policy_v1(msg: dict) -> Invalidate:
    return Invalidate(Scope(msg["scope"]), int(msg.get("id", 0)))


_CURRENT: dict[str, Callable[[dict], Any]] = {
    TOPIC_INBOX: _inbox_v1,
    TOPIC_EVENTS: _events_v1,
    TOPIC_POSTS: _posts_v1,
    TOPIC_POLICY: _policy_v1,
    TOPIC_TOKENS: lambda msg: str(msg["token_hash"]),
}


def _policy_legacy(body: int) -> Invalidate:
    if body == _LEGACY_TERMS:
        return Invalidate(Scope.TERMS)
    return Invalidate(Scope.EVERYONE) if body == _LEGACY_EVERYONE else Invalidate(Scope.USER, body)


_LEGACY: dict[str, Callable[[Any], Any]] = {
    TOPIC_INBOX: lambda body: [InboxEvent(r[0], r[1], MessageView(*r[2:10])) for r in body],
    TOPIC_EVENTS: lambda body: UserEvent(tuple(body[0]), body[1], body[2]),
    TOPIC_POSTS: lambda body: (PostView(*body[:10]), bool(body[10])),
    TOPIC_POLICY: _policy_legacy,
    TOPIC_TOKENS: str,
}


def _legacy_followers(msg: dict) -> tuple[str, Invalidate]:
    return msg["node"], Invalidate(Scope.FOLLOWERS, int(msg["followers"]))


# -- the node among others -------------------------------------------------------------------


class Cluster:
    """Local delivery now, the broker for the other nodes, and what they send us."""

    def __init__(self, local: LocalNode, broker: Broker, node_id: str, followers: FollowersLoader) -> None:
        self.local = local
        self.broker = broker
        self.node_id = node_id
        # Each node looks up an account's followers in its own cache rather than
        # shipping a follower list of thousands with every post.
        self.followers = followers
        self.dropped = 0
        self.unreadable = 0
        # The broker hands a node its own payloads back: recognised by their first
        # bytes, they are dropped without decoding (a batch of message bodies each).
        self._own = own_prefix(node_id)
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._invalidation_handlers: list[InvalidationHandler] = []
        self._handlers = {
            TOPIC_INBOX: self._on_inbox,
            TOPIC_EVENTS: self._on_events,
            TOPIC_POLICY: self._on_policy,
            TOPIC_TOKENS: self._on_tokens,
            TOPIC_POSTS: self._on_posts,
            TOPIC_LEGACY_FOLLOWERS: self._on_legacy_followers,
        }

    def on_invalidate(self, handler: InvalidationHandler) -> None:
        """Called with every other node's invalidations."""
        self._invalidation_handlers.append(handler)

    async def start(self) -> None:
        for topic in TOPICS:
            await self.broker.subscribe(topic, self._handlers[topic])
        self._task = asyncio.create_task(self._publisher(), name="cluster-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for topic in TOPICS:
            await self.broker.unsubscribe(topic, self._handlers[topic])

    # -- outgoing -----------------------------------------------------------------

    def _publish(self, topic: str, body: Callable[[], dict[str, Any]]) -> None:
        if not self.broker.reaches_other_nodes:
            return  # nobody else to tell: skip the encoding too
        if self._queue.qsize() >= PUBLISH_QUEUE_MAX:
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait((topic, encode(self.node_id, body())))

    async def _publisher(self) -> None:
        while True:
            topic, payload = await self._queue.get()
            try:
                await self.broker.publish(topic, payload)
            except Exception:  # noqa: BLE001 - transport only; clients recover by cursor
                log.exception("publishing on %s failed", topic)

    def inbox(self, events: list[InboxEvent]) -> None:
        self.local.inbox(events)
        self._publish(TOPIC_INBOX, lambda: inbox_body(events))

    def user_event(self, event: UserEvent) -> None:
        self.local.user_event(event)
        self._publish(
            TOPIC_EVENTS, lambda: {"user_ids": list(event.user_ids), "kind": event.kind, "data": event.data}
        )

    def post(self, event: PostEvent) -> None:
        self.local.post(event)
        self._publish(TOPIC_POSTS, lambda: {"post": dataclasses.asdict(event.view), "tombstone": event.tombstone})

    def invalidate(self, effect: Invalidate) -> None:
        """Tell the other nodes; this node's caches were dropped already."""
        self._publish(TOPIC_POLICY, lambda: {"scope": effect.scope.value, "id": effect.id})

    def token_revoked(self, token_hash: str) -> None:
        self.local.close_token(token_hash)
        self._publish(TOPIC_TOKENS, lambda: {"token_hash": token_hash})

    # -- incoming -----------------------------------------------------------------

    def _foreign(self, topic: str, payload: bytes) -> Any:
        """What another node said, or None for our own payload (or one we cannot read)."""
        if payload.startswith(self._own):
            return None
        try:
            node, body = decode(topic, payload)
        except ValueError:
            self.unreadable += 1
            log.warning("dropped an unreadable %s payload from the broker", topic)
            return None
        return None if node == self.node_id else body

    def _on_inbox(self, payload: bytes) -> None:
        events = self._foreign(TOPIC_INBOX, payload)
        if events:
            self.local.inbox(events)

    def _on_events(self, payload: bytes) -> None:
        event = self._foreign(TOPIC_EVENTS, payload)
        if event is not None:
            self.local.user_event(event)

    async def _on_posts(self, payload: bytes) -> None:
        body = self._foreign(TOPIC_POSTS, payload)
        if body is not None:
            view, tombstone = body
            self.local.post(PostEvent(view, await self.followers(view.account_id), tombstone=tombstone))

    async def _on_policy(self, payload: bytes) -> None:
        effect = self._foreign(TOPIC_POLICY, payload)
        if effect is not None:
            for handler in self._invalidation_handlers:
                await handler(effect)

    async def _on_legacy_followers(self, payload: bytes) -> None:
        effect = self._foreign(TOPIC_LEGACY_FOLLOWERS, payload)
        if effect is not None:
            for handler in self._invalidation_handlers:
                await handler(effect)

    def _on_tokens(self, payload: bytes) -> None:
        token_hash = self._foreign(TOPIC_TOKENS, payload)
        if token_hash is not None:
            self.local.close_token(token_hash)
