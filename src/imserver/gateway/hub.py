"""The local hub: which live connections this node holds for each user.

Implements :class:`imserver.services.cluster.LocalNode` for this node: committed
inbox entries are encoded once per entry and handed to each of the user's
connections without awaiting (each has its own bounded outbox).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from ..services.events import InboxEvent, PostEvent, UserEvent
from . import protocol

if TYPE_CHECKING:
    from .connection import Connection


class Hub:
    def __init__(self) -> None:
        self._by_user: defaultdict[int, set[Connection]] = defaultdict(set)

    def __len__(self) -> int:
        return sum(len(c) for c in self._by_user.values())

    def add(self, conn: Connection) -> None:
        self._by_user[conn.user_id].add(conn)

    def remove(self, conn: Connection) -> None:
        conns = self._by_user.get(conn.user_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._by_user[conn.user_id]

    def connections(self, user_id: int) -> tuple[Connection, ...]:
        return tuple(self._by_user.get(user_id, ()))

    # -- LocalNode ---------------------------------------------------------------------

    def inbox(self, events: list[InboxEvent]) -> None:
        tails: dict[int, bytes] = {}  # message id -> its frame after the seq, encoded once
        by_user = self._by_user
        for event in events:
            conns = by_user.get(event.user_id)
            if conns:
                mid = event.message.message_id
                tail = tails.get(mid)
                if tail is None:
                    tail = tails[mid] = protocol.msg_tail(event.message)
                frame = protocol.msg_with_seq(event.seq, tail)  # once, for all of the user's devices
                for conn in tuple(conns):
                    conn.push_live(event, frame)

    def user_event(self, event: UserEvent) -> None:
        if event.kind == "disconnect":
            for user_id in event.user_ids:
                for conn in self.connections(user_id):
                    conn.close_soon(
                        event.data.get("code", protocol.CLOSE_REVOKED),
                        event.data.get("reason", ""),
                        flush=bool(event.data.get("flush")),  # queued frames (the closure's notice) go first
                    )
            return
        frame = protocol.user_event_frame(event)
        if frame is None:
            return
        droppable = event.kind == "typing"
        for user_id in event.user_ids:
            for conn in self.connections(user_id):
                conn.push(frame, droppable=droppable)

    def resync_all(self) -> None:
        """Every connection checks the store for entries it may have missed."""
        for conns in self._by_user.values():
            for conn in tuple(conns):
                conn.resync()

    def post(self, event: PostEvent) -> None:
        """Encode once, then queue the same bytes on every online follower's connections."""
        followers = event.followers
        if not followers or not self._by_user:
            return
        frame = protocol.post_frame(event.view, tombstone=event.tombstone)
        position = event.view.position
        # Walk the smaller side: the account's followers or the users connected here.
        if len(followers) <= len(self._by_user):
            targets = (self._by_user.get(u) for u in followers)
        else:
            targets = (conns for u, conns in self._by_user.items() if u in followers)
        for conns in targets:
            if conns:
                for conn in tuple(conns):
                    conn.push_post(position, frame, event.tombstone)

    def token_hashes(self) -> list[str]:
        return sorted({c.token_hash for conns in self._by_user.values() for c in conns if c.token_hash})

    def close_token(self, token_hash: str, code: int = protocol.CLOSE_REVOKED, reason: str = "token revoked") -> None:
        for conns in self._by_user.values():
            for conn in tuple(conns):
                if conn.token_hash == token_hash:
                    conn.close_soon(code, reason)
