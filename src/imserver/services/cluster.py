"""Many nodes: what crosses the broker, and what each node does with it.

Every node delivers its own commits to its own connections directly (the hub),
then publishes them once per commit batch so other nodes can deliver to theirs.
A node ignores what it published itself (the broker hands a node its own
messages back). Topics:

* ``inbox``  — committed inbox entries of one batch;
* ``events`` — receipts, typing, notices, disconnects;
* ``policy`` — "user X's policy facts changed" (0: everyone's): every node drops
  its cached snapshot and closes sockets of closed accounts;
* ``tokens`` — a revoked token: every node closes the sockets that used it.

The broker is transport, at most once: a payload lost with Redis is recovered by
the clients' cursors (the gateway resyncs every connection when the broker
reconnects), and PostgreSQL stays the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ..broker.base import Broker
from .events import Fanout, InboxEvent, MessageView, PostEvent, PostView, UserEvent

log = logging.getLogger("imserver.cluster")

# Payloads waiting for the broker. Publishing never blocks the commit path; past
# this the oldest are dropped (counted) and clients recover by cursor.
PUBLISH_QUEUE_MAX = 10_000

TOPIC_INBOX = "inbox"
TOPIC_EVENTS = "events"
TOPIC_POLICY = "policy"
TOPIC_TOKENS = "tokens"
TOPIC_POSTS = "posts"


def _encode(node_id: str, body: Any) -> bytes:
    return orjson.dumps({"node": node_id, "body": body})


def _inbox_body(events: list[InboxEvent]) -> list:
    out = []
    for e in events:
        m = e.message
        out.append(
            [e.user_id, e.seq, m.message_id, m.conversation_id, m.conversation_kind, m.sender_id,
             m.sender_nickname, m.body, m.client_msg_id, m.sent_at]
        )
    return out


def _inbox_events(body: list) -> list[InboxEvent]:
    return [InboxEvent(r[0], r[1], MessageView(*r[2:])) for r in body]


class ClusterFanout:
    """Fanout for a node among many: local delivery now, the broker for the others."""

    def __init__(self, local: Fanout, broker: Broker, node_id: str) -> None:
        self.local = local
        self.broker = broker
        self.node_id = node_id
        self.dropped = 0
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._policy_handlers: list[Callable[[int], Awaitable[None]]] = []
        self._token_handlers: list[Callable[[str], Awaitable[None]]] = []
        # Each node looks up an account's followers in its own cache rather than
        # shipping a follower list of thousands with every post.
        self.followers_loader: Callable[[int], Awaitable[frozenset[int]]] | None = None

    async def start(self) -> None:
        await self.broker.subscribe(TOPIC_INBOX, self._on_inbox)
        await self.broker.subscribe(TOPIC_EVENTS, self._on_events)
        await self.broker.subscribe(TOPIC_POLICY, self._on_policy)
        await self.broker.subscribe(TOPIC_TOKENS, self._on_tokens)
        await self.broker.subscribe(TOPIC_POSTS, self._on_posts)
        self._task = asyncio.create_task(self._publisher(), name="cluster-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- outgoing -----------------------------------------------------------------

    def _publish(self, topic: str, body: Any) -> None:
        if self._queue.qsize() >= PUBLISH_QUEUE_MAX:
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait((topic, _encode(self.node_id, body)))

    async def _publisher(self) -> None:
        while True:
            topic, payload = await self._queue.get()
            try:
                await self.broker.publish(topic, payload)
            except Exception:  # noqa: BLE001 - transport only; clients recover by cursor
                log.exception("publishing on %s failed", topic)

    def inbox(self, events: list[InboxEvent]) -> None:
        self.local.inbox(events)
        self._publish(TOPIC_INBOX, _inbox_body(events))

    def user_event(self, event: UserEvent) -> None:
        self.local.user_event(event)
        self._publish(TOPIC_EVENTS, [list(event.user_ids), event.kind, event.data])

    def post(self, event: PostEvent) -> None:
        self.local.post(event)
        v = event.view
        self._publish(
            TOPIC_POSTS,
            [v.post_id, v.position, v.account_id, v.account_name, v.news_badge, v.kind, v.title, v.body,
             v.posted_at, v.source, event.tombstone],
        )

    def policy_changed(self, user_id: int) -> None:
        """Tell the other nodes; this node's listeners already ran."""
        self._publish(TOPIC_POLICY, user_id)

    def token_revoked(self, token_hash: str) -> None:
        self._publish(TOPIC_TOKENS, token_hash)

    def on_policy(self, handler: Callable[[int], Awaitable[None]]) -> None:
        self._policy_handlers.append(handler)

    def on_token(self, handler: Callable[[str], Awaitable[None]]) -> None:
        self._token_handlers.append(handler)

    # -- incoming -----------------------------------------------------------------

    def _foreign(self, payload: bytes) -> Any:
        """The body of a payload from another node, or None for our own."""
        msg = orjson.loads(payload)
        return None if msg["node"] == self.node_id else msg["body"]

    def _on_inbox(self, payload: bytes) -> None:
        body = self._foreign(payload)
        if body:
            self.local.inbox(_inbox_events(body))

    def _on_events(self, payload: bytes) -> None:
        body = self._foreign(payload)
        if body:
            self.local.user_event(UserEvent(tuple(body[0]), body[1], body[2]))

    async def _on_posts(self, payload: bytes) -> None:
        body = self._foreign(payload)
        if body and self.followers_loader is not None:
            view = PostView(*body[:10])
            followers = await self.followers_loader(view.account_id)
            self.local.post(PostEvent(view, followers, tombstone=body[10]))

    async def _on_policy(self, payload: bytes) -> None:
        body = self._foreign(payload)
        if body is not None:
            for handler in self._policy_handlers:
                await handler(body)

    async def _on_tokens(self, payload: bytes) -> None:
        body = self._foreign(payload)
        if body is not None:
            for handler in self._token_handlers:
                await handler(body)
