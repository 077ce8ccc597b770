"""The policy gate: every outgoing message or post passes here before it is stored.

The pipeline itself is pure (``imserver.policy``); this service feeds it. It
keeps a snapshot per user in memory (status, real-name status, accepted
agreement, sanctions not ended) and the current agreement version, so a send
costs a dictionary lookup and a few microseconds of checks. Snapshots are
dropped when the facts change: ``Services.after_policy_change`` calls
:meth:`invalidate` on this node and, through the broker's ``policy`` topic, on
every other node; the next send reloads. Every deny and hold is recorded with
its reason code, the check that decided and the time (ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ..domain.clock import Clock
from ..domain.enums import RealNameStatus, UserStatus
from ..domain.errors import Code, Forbidden, PolicyDenied
from ..domain.policy_types import (
    Outgoing,
    OutgoingKind,
    PolicySnapshot,
    PublicAccountSnapshot,
    SanctionInForce,
    SanctionKind,
    UserSnapshot,
)
from ..policy import Decision, Outcome, Pipeline, Term, TermList
from ..policy.decision import deny
from ..policy.checks import ContentFilter
from ..store import agreement as agreement_store
from ..store import policy as store
from ..store.db import Database

# Snapshots cached per node; past this the cache is cleared and refilled on
# demand (a coarse bound: 100k users of ~200 B each is ~20 MB).
MAX_CACHED_SNAPSHOTS = 100_000


class SharedLimits(Protocol):
    """Token buckets every node shares (broker/ratelimit.py), beside each node's own."""

    def take(self, bucket: str, user_id: int, now: float) -> Awaitable[float | None]: ...


# A shared-bucket refusal is recorded under the same check name as the node's own limit.
SHARED_RATE_CHECK = "rate_limit"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the caller acts on: the decision, and whether the item is to be held."""

    decision: Decision

    @property
    def held(self) -> bool:
        return self.decision.outcome is Outcome.HOLD


class PolicyGate:
    def __init__(self, db: Database, clock: Clock, pipeline: Pipeline) -> None:
        self.db = db
        self.clock = clock
        self.pipeline = pipeline
        self._users: dict[int, UserSnapshot] = {}
        self._agreement: int | None = None
        # The term lists load on the first check (fail closed: no check without them).
        self._terms_loaded = False
        # Told the reason code of every deny (the metrics' counter); set by the container.
        self.on_deny: Callable[[str], None] | None = None
        # Cluster-wide rate limits, when a Redis broker is configured (set by the composition root).
        self.shared_limits: SharedLimits | None = None

    # -- cache ----------------------------------------------------------------

    def invalidate(self, user_id: int) -> None:
        """Drop a user's snapshot; 0 drops every snapshot and the agreement version."""
        if user_id <= 0:
            self._users.clear()
            self._agreement = None
        else:
            self._users.pop(user_id, None)

    async def reload_terms(self) -> int:
        """Recompile the content filter from the stored term lists; returns the count."""
        async with self.db.transaction() as conn:
            rows = await store.all_terms(conn)
        terms = TermList.build(Term(r["term"], r["action"], r["list_name"]) for r in rows)
        for name in self.pipeline.names:
            check = self.pipeline.check(name)
            if isinstance(check, ContentFilter):
                check.swap(terms)
        self._terms_loaded = True
        return len(terms)

    async def user_snapshot(self, user_id: int) -> UserSnapshot | None:
        snap = self._users.get(user_id)
        if snap is not None:
            return snap
        async with self.db.transaction() as conn:
            facts = await store.user_facts(conn, user_id)
            if facts is None:
                return None
            rows = await store.open_sanctions(conn, "user", user_id)
        snap = UserSnapshot(
            user_id=user_id,
            status=UserStatus(facts["status"]),
            real_name_status=RealNameStatus(facts["realname_status"]),
            agreement_version=facts["agreement_version"],
            sanctions=sanctions_in_force(rows),
        )
        if len(self._users) >= MAX_CACHED_SNAPSHOTS:
            self._users.clear()
        self._users[user_id] = snap
        return snap

    async def current_agreement(self) -> int:
        if self._agreement is None:
            async with self.db.transaction() as conn:
                row = await agreement_store.current(conn)
            self._agreement = row["version"] if row else 0
        return self._agreement

    # -- deciding ---------------------------------------------------------------

    async def check(self, outgoing: Outgoing, account: PublicAccountSnapshot | None = None) -> Verdict:
        """Evaluate; a deny is recorded and raised as PolicyDenied, a hold returned to be stored as held."""
        if not self._terms_loaded:
            await self.reload_terms()
        user = await self.user_snapshot(outgoing.sender_id)
        if user is None:
            raise Forbidden("no such user", Code.ACCOUNT_CLOSED)
        snapshot = PolicySnapshot(user, await self.current_agreement(), account)
        now = self.clock.now()
        decision = self.pipeline.evaluate(snapshot, outgoing, now)
        if decision.outcome is not Outcome.DENY and self.shared_limits is not None:
            decision = await self._shared_limit(outgoing, now) or decision
        if decision.outcome is Outcome.DENY:
            if self.on_deny is not None:
                self.on_deny(decision.reason.value if decision.reason else "")
            await self.record(outgoing, decision)
            extra = {"check": decision.check}
            if decision.retry_after is not None:
                extra["retry_after"] = round(decision.retry_after, 3)
            raise PolicyDenied(decision.detail, decision.reason, **extra)
        return Verdict(decision)

    async def _shared_limit(self, outgoing: Outgoing, now) -> Decision | None:
        """The cluster-wide bucket of this kind of send: a deny once it is empty, else None."""
        bucket = "posts" if outgoing.kind is OutgoingKind.POST else "messages"
        wait = await self.shared_limits.take(bucket, outgoing.sender_id, now.timestamp())
        if wait is None:
            return None
        return deny(SHARED_RATE_CHECK, Code.RATE_LIMITED, f"too many {bucket} across the cluster", wait)

    async def record(self, outgoing: Outgoing, decision: Decision, message_id: int | None = None) -> None:
        async with self.db.transaction() as conn:
            await store.record_decision(
                conn,
                user_id=outgoing.sender_id,
                outgoing_kind=outgoing.kind.value,
                outcome=decision.outcome.value,
                reason=decision.reason.value if decision.reason else "",
                check_name=decision.check,
                detail=decision.detail,
                at=self.clock.now(),
                message_id=message_id,
            )


def sanctions_in_force(rows) -> tuple[SanctionInForce, ...]:
    """Sanction rows not ended by an event, minus closures still awaiting their second operator."""
    return tuple(
        SanctionInForce(SanctionKind(r["kind"]), r["id"], r["ends_at"], r["starts_at"])
        for r in rows
        if not r["needs_confirmation"] or r["confirmed"]
    )
