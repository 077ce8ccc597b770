"""What services hand to the delivery side: send results, and events after a commit.

Services never touch sockets or wire frames: they emit these events through the
after-commit effects (:mod:`imserver.services.unit_of_work`) to the local node
(the gateway's hub) and, through the cluster, to the other nodes. Events are
plain data, so they cross nodes as versioned JSON (:mod:`imserver.services.cluster`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..policy import Decision
    from ..store.messages import Stored


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a sender is told once its send is durable (or was found stored before)."""

    message_id: int
    conversation_id: int
    seq: int | None  # the sender's own inbox position (None: held, no entry yet)
    sent_at: str  # ISO 8601, UTC
    held: bool  # stored for review, delivered to nobody yet
    duplicate: bool  # a retry: the first send's result
    reason: str | None = None  # the policy's reason code for a hold
    # A new entry in the sender's inbox exists, so the sender's live connections
    # get the ack in stream order (from the delivery), not from this result.
    in_stream: bool = False

    @classmethod
    def of(cls, stored: Stored, decision: Decision | None = None) -> SendResult:
        return cls(
            message_id=stored.message_id,
            conversation_id=stored.conversation_id,
            seq=stored.sender_seq,
            sent_at=stored.created_at.isoformat(),
            held=stored.status == "held",
            duplicate=stored.duplicate,
            reason=decision.reason.value if decision is not None and decision.reason else None,
            in_stream=stored.sender_seq is not None and not stored.duplicate,
        )


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
