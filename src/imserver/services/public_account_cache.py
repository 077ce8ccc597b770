"""Per-node caches of public accounts: the policy snapshot of each account and
its follower set (like every policy snapshot: cached in memory on every node,
dropped when the facts change).

* **Account facts** (:class:`AccountFacts`): the :class:`PublicAccountSnapshot`
  the post check reads (effective status, filed, news permission, sanctions not
  ended), plus the owner and the display name. The news permission is derived
  with the clock when loaded (Art. 7 ¶2), so an entry is also dropped once the
  earliest licence or approval expiry has passed: a cached snapshot never
  outlives the permission it carries.
* **Follower sets**: who gets an account's live ``post`` frames (fan-out on read
  keeps followers out of the write path; the hub intersects this set with the
  users connected to the node).

Invalidation, on this node and every other:

* Account facts change with the owner: every change (review, closure, sanction,
  news approval, re-review) is followed by an invalidation of the owner's user
  scope (:mod:`imserver.services.unit_of_work`), which reaches :meth:`invalidate`
  here and on every other node; the sanctions module already sends it for the
  subject's owner. The ``everyone`` scope (a new agreement, or the broker came
  back after losing messages) drops everything, follower sets included.
* Follower sets change with a follow or unfollow: the ``followers`` scope with
  the account's id drops the set here and on every other node.

A load racing an invalidation is not stored: each cache has a generation that
every drop bumps, and a load stores its result only if no drop happened meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..domain.clock import Clock
from ..domain.enums import UserStatus
from ..domain.policy_types import AccountCategory, NewsPermission, PublicAccountSnapshot, PublicAccountStatus
from ..policy.public_accounts import Approval, NewsFacts, news_permission, valid_until
from ..store import policy as policy_store
from ..store import public_accounts as store
from ..store.db import Database
from .cache import Bounded
from .policy_gate import sanctions_in_force
from .unit_of_work import Invalidate, Scope

# Entries kept per node before a cache is cleared and refilled on demand (coarse
# bounds: a snapshot is ~300 B; a follower set of 10k ids ~0.5 MB, and only
# accounts that post or are synced have one).
MAX_CACHED_ACCOUNTS = 100_000
MAX_CACHED_FOLLOWER_SETS = 10_000


@dataclass(frozen=True, slots=True)
class AccountFacts:
    snapshot: PublicAccountSnapshot
    owner_id: int
    name: str
    category: AccountCategory
    until: datetime | None  # the snapshot is stale from this time on (a licence or approval expires)

    @property
    def permission(self) -> NewsPermission:
        return self.snapshot.news_permission


def effective_status(row: dict) -> PublicAccountStatus:
    """The account's status as the public sees it: a closed owner closes the account (Art. 8)."""
    if row["owner_status"] == UserStatus.CLOSED:
        return PublicAccountStatus.CLOSED
    return PublicAccountStatus(row["status"])


def news_facts(row: dict, approvals: list[dict]) -> NewsFacts:
    return NewsFacts(
        category=AccountCategory(row["category"]),
        licence_expires_at=row["licence_expires_at"],
        approvals=tuple(
            Approval(NewsPermission(a["scope"]), a["expires_at"], a["revoked_at"] is not None) for a in approvals
        ),
    )


class AccountCache:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._facts: dict[int, AccountFacts] = {}
        self._by_owner: dict[int, set[int]] = {}
        self._followers: Bounded[int, frozenset[int]] = Bounded(MAX_CACHED_FOLLOWER_SETS)
        self._facts_gen = 0
        self._followers_gen = 0

    # -- reads ----------------------------------------------------------------------------

    async def facts(self, account_id: int) -> AccountFacts | None:
        """The account's cached facts (None: no such account), reloaded once an expiry has passed."""
        cached = self._facts.get(account_id)
        now = self.clock.now()
        if cached is not None and (cached.until is None or now < cached.until):
            return cached
        gen = self._facts_gen
        async with self.db.transaction() as conn:
            row = await store.get_account(conn, account_id)
            if row is None:
                return None
            approvals = await store.approvals_for(conn, account_id)
            sanctions = await policy_store.open_sanctions(conn, "public_account", account_id)
            filed = await store.is_filed(conn, account_id)
        news = news_facts(row, approvals)
        facts = AccountFacts(
            snapshot=PublicAccountSnapshot(
                account_id=account_id,
                status=effective_status(row),
                filed=filed,
                news_permission=news_permission(news, now),
                sanctions=sanctions_in_force(sanctions),
            ),
            owner_id=row["owner_id"],
            name=row["name"],
            category=AccountCategory(row["category"]),
            until=valid_until(news, now),
        )
        if gen == self._facts_gen:
            if len(self._facts) >= MAX_CACHED_ACCOUNTS:
                self._facts.clear()
                self._by_owner.clear()
            self._facts[account_id] = facts
            self._by_owner.setdefault(facts.owner_id, set()).add(account_id)
        return facts

    async def followers(self, account_id: int) -> frozenset[int]:
        cached = self._followers.get(account_id)
        if cached is not None:
            return cached
        gen = self._followers_gen
        async with self.db.transaction() as conn:
            ids = frozenset(await store.follower_ids(conn, account_id))
        if gen == self._followers_gen:
            self._followers.put(account_id, ids)
        return ids

    # -- invalidation -------------------------------------------------------------------------

    def invalidate(self, effect: Invalidate) -> None:
        """Registered with AfterCommit: drop what the effect says changed, here."""
        if effect.scope is Scope.FOLLOWERS:
            self._drop_followers(effect.id or None)
        elif effect.scope is Scope.EVERYONE:
            self._facts_gen += 1
            self._facts.clear()
            self._by_owner.clear()
            self._drop_followers(None)  # the broker may have lost follower invalidations too
        elif effect.scope is Scope.USER:
            self._facts_gen += 1
            for account_id in self._by_owner.pop(effect.id, ()):
                self._facts.pop(account_id, None)

    def drop_account(self, account_id: int) -> None:
        """Drop one account's facts here (its owner's listener drops them on the other nodes)."""
        self._facts_gen += 1
        facts = self._facts.pop(account_id, None)
        if facts is not None:
            self._by_owner.get(facts.owner_id, set()).discard(account_id)

    def _drop_followers(self, account_id: int | None) -> None:
        self._followers_gen += 1
        if account_id is None:
            self._followers.clear()
        else:
            self._followers.pop(account_id, None)

