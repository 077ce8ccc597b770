"""The policy gate: every outgoing message or post passes here before it is stored.

The pipeline itself is pure (``imserver.policy``); this service feeds it. It
keeps a snapshot per user in memory (status, real-name status, accepted
agreement, sanctions not ended) and the current agreement version, so a send
costs a dictionary lookup and a few microseconds of checks. Snapshots are
dropped when the facts change: an invalidation after the commit
(:mod:`imserver.services.unit_of_work`) reaches :meth:`invalidate` on this node
and, through the broker, on every other node; the next send reloads. Every deny
and hold is recorded with its reason code, the check that decided and the time,
in batches off the send path (:mod:`imserver.services.decision_log`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..domain.clock import Clock
from ..domain.enums import RealNameStatus, UserStatus
from ..domain.errors import Code, Forbidden, PolicyDenied
from ..domain.policy_types import (
    Outgoing,
    PolicySnapshot,
    PublicAccountSnapshot,
    SanctionInForce,
    SanctionKind,
    UserSnapshot,
)
from ..policy import Decision, Outcome, Pipeline, Term, TermList, ladder
from ..policy.checks import ContentFilter
from ..policy.ladder import Item
from ..store import agreement as agreement_store
from ..store import policy as store
from ..store.db import Database
from .cache import Bounded
from .decision_log import DecisionLog
from .unit_of_work import Invalidate, Scope

# Snapshots cached per node; past this the cache is cleared and refilled on
# demand (a coarse bound: 100k users of ~200 B each is ~20 MB).
MAX_CACHED_SNAPSHOTS = 100_000


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the caller acts on: the decision, and whether the item is to be held."""

    decision: Decision

    @property
    def held(self) -> bool:
        return self.decision.outcome is Outcome.HOLD


@dataclass(frozen=True, slots=True)
class AgreementTerms:
    version: int  # in effect now; 0: none published
    grace_until: datetime | None
    effective_at: datetime | None
    valid_until: datetime | None  # when a scheduled version takes effect: reload then


class PolicyGate:
    def __init__(self, db: Database, clock: Clock, pipeline: Pipeline, decisions: DecisionLog) -> None:
        self.db = db
        self.clock = clock
        self.pipeline = pipeline
        self.decisions = decisions
        self._users: Bounded[int, UserSnapshot] = Bounded(MAX_CACHED_SNAPSHOTS)
        self._agreement: AgreementTerms | None = None
        # The term lists load on the first check (fail closed: no check without them).
        self._terms_loaded = False

    # -- cache ----------------------------------------------------------------

    async def invalidate(self, effect: Invalidate) -> None:
        """Registered with AfterCommit: drop what the effect says changed."""
        if effect.scope is Scope.USER:
            self._users.pop(effect.id, None)
        elif effect.scope is Scope.EVERYONE:
            self._users.clear()
            self._agreement = None
        elif effect.scope is Scope.TERMS:
            await self.reload_terms()

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
        self._users.put(user_id, snap)
        return snap

    async def current_agreement(self) -> int:
        return (await self.agreement_terms()).version

    async def agreement_terms(self) -> AgreementTerms:
        """The version in effect and its grace period, cached until a scheduled version takes effect."""
        now = self.clock.now()
        terms = self._agreement
        if terms is None or (terms.valid_until is not None and now >= terms.valid_until):
            async with self.db.transaction() as conn:
                row = await agreement_store.current(conn, now)
                upcoming = await agreement_store.next_effective_at(conn, now)
            terms = self._agreement = AgreementTerms(
                row["version"] if row else 0,
                row["grace_until"] if row else None,
                (row["effective_at"] or row["published_at"]) if row else None,
                upcoming,
            )
        return terms

    async def agreement_notice(self, user_id: int) -> dict | None:
        """The notice asking a user to accept the version in effect, while its grace period runs."""
        terms = await self.agreement_terms()
        user = await self.user_snapshot(user_id)
        if user is None or user.agreement_version is None or user.agreement_version >= terms.version:
            return None
        if terms.grace_until is None or self.clock.now() >= terms.grace_until:
            return None  # sending is refused already (agreement_not_accepted), which says the same
        return {
            "kind": "agreement_update",
            "text": f"Agreement version {terms.version} is in effect; "
            f"accept it before {terms.grace_until.isoformat()}.",
            "data": {
                "version": terms.version,
                "accepted_version": user.agreement_version,
                "effective_at": terms.effective_at.isoformat() if terms.effective_at else None,
                "grace_until": terms.grace_until.isoformat(),
            },
        }

    # -- deciding ---------------------------------------------------------------

    async def check(self, outgoing: Outgoing, account: PublicAccountSnapshot | None = None) -> Verdict:
        """Evaluate; a deny is recorded and raised as PolicyDenied, a hold returned to be stored as held."""
        if not self._terms_loaded:
            await self.reload_terms()
        user = await self.user_snapshot(outgoing.sender_id)
        if user is None:
            raise Forbidden("no such user", Code.ACCOUNT_CLOSED)
        terms = await self.agreement_terms()
        snapshot = PolicySnapshot(user, terms.version, account, terms.grace_until)
        now = self.clock.now()
        decision = self.pipeline.evaluate(snapshot, outgoing, now)
        if decision.outcome is Outcome.DENY:
            self.decisions.add(outgoing, decision)
            extra = {"check": decision.check}
            if decision.retry_after is not None:
                extra["retry_after"] = round(decision.retry_after, 3)
            raise PolicyDenied(decision.detail, decision.reason, **extra)
        return Verdict(decision)

    async def require_allowed(self, user_id: int, item: Item, account: PublicAccountSnapshot | None = None) -> None:
        """Refuse an act the sanction ladder stops (a profile change, a public-account update)
        with the measure's reason code; nothing is recorded as a policy decision."""
        user = await self.user_snapshot(user_id)
        if user is None:
            raise Forbidden("no such user", Code.ACCOUNT_CLOSED)
        now = self.clock.now()
        found = ladder.refusal(user.sanctions, account.sanctions if account is not None else (), item, now)
        if found is not None:
            sanction, subject = found
            raise PolicyDenied(
                f"a {sanction.kind} on the {subject.value} stops {item.value}",
                ladder.reason_for(sanction, subject),
                sanction_id=sanction.sanction_id,
            )


def sanctions_in_force(rows) -> tuple[SanctionInForce, ...]:
    """Sanction rows not ended by an event, minus closures still awaiting their second operator."""
    return tuple(
        SanctionInForce(SanctionKind(r["kind"]), r["id"], r["ends_at"], r["starts_at"])
        for r in rows
        if not r["needs_confirmation"] or r["confirmed"]
    )
