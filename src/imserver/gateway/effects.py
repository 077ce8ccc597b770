"""What a :class:`~imserver.gateway.session.Session` asks its driver to do.

Effects are plain frozen data: the session returns them, the driver
(``gateway/connection.py``) carries them out — awaiting a service, setting a
timer, closing the socket — and feeds any result back into the session. Tests
assert on them directly. Frames for the client are not effects: the session
queues them in its outbox, which the driver drains onto the socket.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from . import protocol


class Timer(enum.Enum):
    AUTH = "auth"  # no good `auth` within the auth timeout: close 4001
    SESSION = "session"  # the token expires: a `session_expired` notice, then close 4003


@dataclass(frozen=True, slots=True)
class StartTimer:
    timer: Timer
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer: Timer


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Check a user's token; answer with :meth:`Session.on_auth_ok` or :meth:`Session.on_auth_refused`."""

    token: str
    ref: str | None


@dataclass(frozen=True, slots=True)
class JoinHub:
    """Register with the hub: live entries for this user start arriving (:meth:`Session.live`)."""


@dataclass(frozen=True, slots=True)
class ReadCursors:
    """Read the user's inbox cursors and the newest post position; answer with :meth:`Session.on_cursors`."""


@dataclass(frozen=True, slots=True)
class Submit:
    """Hand a ``send`` to the send use case; its outcome comes back through ``on_send_*``."""

    frame: protocol.Send


@dataclass(frozen=True, slots=True)
class MarkReceived:
    seq: int
    ref: str | None


@dataclass(frozen=True, slots=True)
class MarkRead:
    conversation_id: int
    message_id: int
    ref: str | None


@dataclass(frozen=True, slots=True)
class NotifyTyping:
    conversation_id: int
    ref: str | None


@dataclass(frozen=True, slots=True)
class ReadPage:
    """Read the user's inbox entries after ``after``; answer with :meth:`Session.on_page`."""

    after: int
    limit: int


@dataclass(frozen=True, slots=True)
class ReadPosts:
    """Read the followed accounts' posts after ``after``; answer with :meth:`Session.on_posts`."""

    after: int
    limit: int


@dataclass(frozen=True, slots=True)
class AwaitRoom:
    """Wait until the outbox is under half full, then call :meth:`Session.on_room`."""


@dataclass(frozen=True, slots=True)
class Close:
    """Close the socket with ``code``; with ``flush``, after writing what is queued (for a little while)."""

    code: int
    reason: str
    flush: bool = False


@dataclass(frozen=True, slots=True)
class LogError:
    """Something that cannot happen did (the text names no secret)."""

    text: str


Effect: TypeAlias = (
    StartTimer | CancelTimer | Authenticate | JoinHub | ReadCursors | Submit | MarkReceived | MarkRead
    | NotifyTyping | ReadPage | ReadPosts | AwaitRoom | Close | LogError
)
REPLAY_STEPS = (ReadPage, ReadPosts, AwaitRoom)
"""The effects of the replay, one outstanding at a time."""
