"""What services hand to the delivery side after a commit.

Services never touch sockets or wire frames: they emit these events to a
:class:`Fanout`, which the gateway implements (local connections) and the broker
layer extends (other nodes). Events are plain data, so they cross nodes as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class MessageView:
    message_id: int
    conversation_id: int
    conversation_kind: str
    sender_id: int
    sender_nickname: str
    body: str
    client_msg_id: str
    sent_at: str  # ISO 8601, UTC


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """A committed inbox entry: `user_id` has `message` at position `seq`."""

    user_id: int
    seq: int
    message: MessageView
    origin: int = 0  # the sending connection, on the sender's own entry: it gets the ack there instead


@dataclass(frozen=True, slots=True)
class UserEvent:
    """Something ephemeral or administrative for some users' live connections.

    kind: "receipt" | "typing" | "notice" | "disconnect" (data: {"code", "reason"}).
    """

    user_ids: tuple[int, ...]
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PostView:
    """A public-account post as every follower sees it (encoded once for all of them)."""

    post_id: int
    position: int  # in the global posts stream, commit-ordered
    account_id: int
    account_name: str
    news_badge: str | None  # "publish" | "reprint" | None, derived from the permission
    kind: str
    title: str
    body: str
    posted_at: str
    source: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PostEvent:
    """A committed post (or its takedown) for the followers' live connections.

    `followers` is the account's follower set at commit time; the hub intersects
    it with the users connected here.
    """

    view: PostView
    followers: frozenset[int]
    tombstone: bool = False


class Fanout(Protocol):
    def inbox(self, events: list[InboxEvent]) -> None:
        """Hand committed inbox entries to live connections. Must not block."""

    def user_event(self, event: UserEvent) -> None:
        """Hand an ephemeral event to live connections. Must not block."""

    def post(self, event: PostEvent) -> None:
        """Hand a committed post or tombstone to the followers' live connections. Must not block."""


class NoFanout:
    """Fan-out for a node without a gateway (the CLI): nothing is live."""

    def inbox(self, events: list[InboxEvent]) -> None:
        pass

    def user_event(self, event: UserEvent) -> None:
        pass

    def post(self, event: PostEvent) -> None:
        pass
