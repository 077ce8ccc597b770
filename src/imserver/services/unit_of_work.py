"""A transaction and what its commit causes, run after the commit in one place.

Theory of operation
-------------------
A use case writes inside a unit of work and, as it goes, *says* what the
commit will cause — frames for live connections, caches to drop on every node,
tokens whose sockets must close — by adding effects to it::

    async with self.uow() as tx:
        await store.add_member(tx.conn, ...)
        tx.add(Invalidate(Scope.CONVERSATION, group_id))

Nothing is done while the transaction is open. When the block commits, the
effects run through :class:`AfterCommit`, in the order they were added; when it
raises, they are dropped with the rollback. So nothing is delivered that was not
committed, and no use case (nor any route) drops a cache or publishes by itself.

The group-commit writer (:mod:`imserver.services.writer`) is the same idea for
the hot path: a batch of sends is one transaction, and its deliveries run
through the same :class:`AfterCommit` once it has committed.

:class:`AfterCommit` applies each effect on this node first (the local gateway,
the caches that registered for invalidations) and then hands it to the cluster
(:mod:`imserver.services.cluster`), which carries it to every other node over
the broker as a versioned dict. A node's own caches therefore change before its
use case returns, and the other nodes' within the broker's delay.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .events import InboxEvent, PostEvent, UserEvent

if TYPE_CHECKING:
    from ..store.db import Connection, Database
    from .cluster import Cluster


class Scope(enum.StrEnum):
    """What a cached fact is about; an :class:`Invalidate` drops the facts of one scope and id."""

    USER = "user"  # a user's policy snapshot and profile facts (status, nickname, sanctions, agreement)
    EVERYONE = "everyone"  # every user's facts (a new agreement version; the broker lost invalidations)
    TERMS = "terms"  # the content filter's term lists
    CONVERSATION = "conversation"  # a group's membership
    FOLLOWERS = "followers"  # a public account's follower set


@dataclass(frozen=True, slots=True)
class Invalidate:
    scope: Scope
    id: int = 0


@dataclass(frozen=True, slots=True)
class TokenRevoked:
    """A token stopped working (logout, closure): every node closes the sockets that used it."""

    token_hash: str


@dataclass(frozen=True, slots=True)
class Deliver:
    """Committed inbox entries for the recipients' live connections."""

    events: list[InboxEvent]


@dataclass(frozen=True, slots=True)
class Notify:
    """An ephemeral or administrative event (receipt, typing, notice, disconnect)."""

    event: UserEvent


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A committed post or takedown for the followers' live connections."""

    event: PostEvent


Effect = Invalidate | TokenRevoked | Deliver | Notify | Broadcast

# A cache that drops facts when told; registered with AfterCommit.on_invalidate.
InvalidationHandler = Callable[[Invalidate], Awaitable[None] | None]


class AfterCommit:
    """Runs committed effects here, then on every other node through the cluster."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._handlers: list[InvalidationHandler] = []
        cluster.on_invalidate(self._invalidate_here)

    def on_invalidate(self, handler: InvalidationHandler) -> None:
        """Register a cache; called for this node's invalidations and for every other node's."""
        self._handlers.append(handler)

    async def run(self, effects: list[Effect]) -> None:
        for effect in effects:
            await self.apply(effect)

    async def apply(self, effect: Effect) -> None:
        match effect:
            case Deliver(events):
                self.cluster.inbox(events)
            case Notify(event):
                self.cluster.user_event(event)
            case Broadcast(event):
                self.cluster.post(event)
            case Invalidate():
                await self._invalidate_here(effect)
                self.cluster.invalidate(effect)
            case TokenRevoked(token_hash):
                self.cluster.token_revoked(token_hash)

    # Shorthands for use cases outside a unit of work (their write is already committed).

    async def policy_changed(self, *, user_id: int) -> None:
        """`user_id`'s policy facts changed (0: everyone's)."""
        await self.apply(Invalidate(Scope.USER, user_id) if user_id else Invalidate(Scope.EVERYONE))

    async def terms_changed(self) -> None:
        await self.apply(Invalidate(Scope.TERMS))

    def deliver(self, events: list[InboxEvent]) -> None:
        """The writer's batch committed: its entries, in commit order, at once."""
        self.cluster.inbox(events)

    def notify(self, event: UserEvent) -> None:
        self.cluster.user_event(event)

    def broadcast(self, event: PostEvent) -> None:
        self.cluster.post(event)

    async def forget_everything(self) -> None:
        """The broker was away: invalidations other nodes published meanwhile were lost, so drop every cached fact."""
        for scope in (Scope.EVERYONE, Scope.TERMS, Scope.FOLLOWERS):
            await self._invalidate_here(Invalidate(scope))

    async def _invalidate_here(self, effect: Invalidate) -> None:
        for handler in self._handlers:
            result = handler(effect)
            if result is not None:
                await result


@dataclass(slots=True)
class Tx:
    """An open transaction and the effects its commit will cause."""

    conn: Connection
    effects: list[Effect] = field(default_factory=list)

    def add(self, effect: Effect) -> None:
        self.effects.append(effect)


class UnitOfWork:
    """``async with uow() as tx``: commit, then run tx's effects; on error, roll back and drop them."""

    def __init__(self, db: Database, after_commit: AfterCommit) -> None:
        self.db = db
        self.after_commit = after_commit

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[Tx]:
        async with self.db.transaction() as conn:
            tx = Tx(conn)
            yield tx
        await self.after_commit.run(tx.effects)
