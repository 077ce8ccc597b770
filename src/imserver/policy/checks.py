"""The eight built-in checks, in the pipeline's order (docs/architecture.md, "The policy pipeline").

Each check is a small object with a ``name`` and ``__call__(snapshot,
outgoing, now) -> Decision``: a pure function of state the caller loaded, like
Synapse's ``event_auth``. It returns the shared ``ALLOW`` when it has nothing
to say, else a deny or hold naming itself and a stable reason code. Its
docstring cites the article of the provisions (docs/regulation.md) it enforces.

Only the content filter and the rate limit hold state: an immutable term list
swapped whole, and token buckets advanced by the ``now`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..domain.enums import RealNameStatus, UserStatus
from ..domain.errors import Code
from ..domain.policy_types import (
    FilterAction,
    NewsPermission,
    Outgoing,
    OutgoingKind,
    PolicySnapshot,
    PostKind,
    PublicAccountStatus,
)
from . import ladder
from .content_filter import TermList
from .decision import ALLOW, Decision, deny, hold
from .pipeline import Check
from .ratelimit import Rate, TokenBuckets


class AccountOpen:
    """Art. 8 "closure of accounts": a closed account sends nothing."""

    name = "account_open"

    def __call__(self, snapshot: PolicySnapshot, outgoing: Outgoing, now: datetime) -> Decision:
        if snapshot.user.status != UserStatus.ACTIVE:
            return deny(self.name, Code.ACCOUNT_CLOSED, "the account is closed")
        return ALLOW


class RealNameVerified:
    """Art. 6 §1 "real name back stage": only users whose real identity is
    authenticated may use the service."""

    name = "real_name"

    def __call__(self, snapshot: PolicySnapshot, outgoing: Outgoing, now: datetime) -> Decision:
        status = snapshot.user.real_name_status
        if status != RealNameStatus.VERIFIED:
            return deny(self.name, Code.REAL_NAME_UNVERIFIED, f"real-name status is {status}")
        return ALLOW


class AgreementAccepted:
    """Art. 6 §2: the user has signed the current agreement (the "seven baselines").

    During the current version's grace period, a user who accepted an earlier
    version still sends; the gateway asks them to accept."""

    name = "agreement"

    def __call__(self, snapshot: PolicySnapshot, outgoing: Outgoing, now: datetime) -> Decision:
        accepted, current = snapshot.user.agreement_version, snapshot.current_agreement_version
        grace = snapshot.agreement_grace_until
        if accepted is not None and accepted < current and grace is not None and now < grace:
            return ALLOW
        if accepted is None or accepted < current:
            return deny(self.name, Code.AGREEMENT_NOT_ACCEPTED, f"accepted version {accepted}, current {current}")
        return ALLOW


class SanctionsInForce:
    """Art. 8 §2: warnings, restricting publication, suspension of refreshing,
    closure, as the ladder (``ladder.py``) says. A post also answers for the
    sanctions on the public account it is posted as."""

    name = "sanctions"

    def __call__(self, snapshot: PolicySnapshot, outgoing: Outgoing, now: datetime) -> Decision:
        account = snapshot.public_account
        found = ladder.refusal(
            snapshot.user.sanctions,
            account.sanctions if account is not None and outgoing.kind is OutgoingKind.POST else (),
            ladder.item_of(outgoing.kind, outgoing.post_kind),
            now,
        )
        if found is None:
            return ALLOW
        worst, subject = found
        until = worst.ends_at.isoformat() if worst.ends_at else "lifted"
        return deny(
            self.name,
            ladder.reason_for(worst, subject),
            f"sanction {worst.sanction_id} ({worst.kind}) on the {subject.value} until {until}",
        )


class PublicAccountVerified:
    """Art. 7 §1: posts come from public accounts the provider examined,
    verified and filed with the controlling department."""

    name = "public_account"

    def __call__(self, snapshot: PolicySnapshot, outgoing: Outgoing, now: datetime) -> Decision:
        if outgoing.kind is not OutgoingKind.POST:
            return ALLOW
        account = snapshot.public_account
        if account is None or account.account_id != outgoing.public_account_id:
            return deny(self.name, Code.PUBLIC_ACCOUNT_UNVERIFIED, "a post needs the public account it is posted as")
        if account.status == PublicAccountStatus.CLOSED:
            return deny(self.name, Code.ACCOUNT_CLOSED, f"public account {account.account_id} is closed")
        if account.status != PublicAccountStatus.APPROVED:
            return deny(self.name, Code.PUBLIC_ACCOUNT_UNVERIFIED, f"public account is {account.status}")
        if not account.filed:
            return deny(self.name, Code.PUBLIC_ACCOUNT_UNVERIFIED, "public account is not yet filed")
        return ALLOW


# What each kind of news post needs (Art. 7 §2; defaults by category in news.py).
NEWS_NEEDS = {PostKind.NEWS_ORIGINAL: NewsPermission.PUBLISH, PostKind.NEWS_REPRINT: NewsPermission.REPRINT}


class NewsPermitted:
    """Art. 7 §2: only permitted public accounts disseminate (publish) or
    reprint current-affairs news."""

    name = "news_permission"

    def __call__(self, snapshot: PolicySnapshot, outgoing: Outgoing, now: datetime) -> Decision:
        if outgoing.kind is not OutgoingKind.POST:
            return ALLOW
        needed = NEWS_NEEDS.get(outgoing.post_kind)  # type: ignore[arg-type]
        if needed is None:
            return ALLOW
        account = snapshot.public_account
        have = NewsPermission(account.news_permission) if account is not None else NewsPermission.NONE
        if have.allows(needed):
            return ALLOW
        if have.allows(NewsPermission.REPRINT):
            return deny(self.name, Code.NEWS_REPRINT_ONLY, "this account may reprint news, not publish it")
        return deny(self.name, Code.NEWS_NOT_PERMITTED, "this account may not publish or reprint news")


class ContentFilter:
    """Art. 5 "timely deal with unlawful and harmful information": operator
    term lists refuse (deny) or hold for review (hold) what they match.

    ``terms`` is replaced whole by :meth:`swap` when the lists change."""

    name = "content_filter"

    def __init__(self, terms: TermList | None = None) -> None:
        self.terms = terms if terms is not None else TermList.empty()

    def swap(self, terms: TermList) -> TermList:
        """Install ``terms`` (one reference assignment); returns the old list."""
        old, self.terms = self.terms, terms
        return old

    def __call__(self, snapshot: PolicySnapshot, outgoing: Outgoing, now: datetime) -> Decision:
        term = self.terms.match(outgoing.body)
        if term is None:
            return ALLOW
        detail = f"term {term.text!r} of list {term.list_name!r}"
        if term.action is FilterAction.DENY:
            return deny(self.name, Code.CONTENT_BLOCKED, detail)
        return hold(self.name, Code.CONTENT_REVIEW, detail)


# Default per-user rates: they suit a person typing, not a bot.
MESSAGES = Rate(capacity=30, refill_per_second=1.0)  # bursts of 30, one a second sustained
POSTS = Rate(capacity=10, refill_per_second=1 / 60)  # 10 at once, one a minute sustained
# Art. 8 "restricting publication": group messages of a restricted user.
RESTRICTED_GROUP = Rate(capacity=3, refill_per_second=1 / 60)  # three, then one a minute


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Per-user rates for the rate-limit check (built from settings)."""

    messages: Rate = MESSAGES
    posts: Rate = POSTS
    restricted_group: Rate = RESTRICTED_GROUP


class RateLimit:
    """Art. 5 safety management duties (flooding), and Art. 8 "restricting
    publication": group messages of a restricted user take the restricted
    bucket too (the ladder's ``limited`` effect). A refusal carries ``retry_after``."""

    name = "rate_limit"

    def __init__(self, limits: RateLimits | None = None) -> None:
        self.limits = limits = limits or RateLimits()
        self._messages = TokenBuckets(limits.messages)
        self._posts = TokenBuckets(limits.posts)
        self._restricted = TokenBuckets(limits.restricted_group)

    def __call__(self, snapshot: PolicySnapshot, outgoing: Outgoing, now: datetime) -> Decision:
        user = snapshot.user.user_id
        at = now.timestamp()
        kind = outgoing.kind
        if snapshot.user.sanctions and ladder.limited(
            snapshot.user.sanctions, ladder.SubjectKind.USER, ladder.item_of(kind, outgoing.post_kind), now
        ):
            wait = self._restricted.take(user, at)
            if wait is not None:
                return deny(self.name, Code.RATE_LIMITED, "restricted: group messages limited", wait)
        buckets = self._posts if kind is OutgoingKind.POST else self._messages
        wait = buckets.take(user, at)
        if wait is not None:
            return deny(self.name, Code.RATE_LIMITED, f"too many {kind.value.split('_')[0]}s", wait)
        return ALLOW


# The built-in order; settings may reorder it or add plugin checks by name.
DEFAULT_ORDER = (
    AccountOpen.name,
    RealNameVerified.name,
    AgreementAccepted.name,
    SanctionsInForce.name,
    PublicAccountVerified.name,
    NewsPermitted.name,
    ContentFilter.name,
    RateLimit.name,
)


def builtin_checks(terms: TermList | None = None, limits: RateLimits | None = None) -> dict[str, Check]:
    """A fresh instance of each built-in check, by name (one set per node)."""
    checks = (
        AccountOpen(),
        RealNameVerified(),
        AgreementAccepted(),
        SanctionsInForce(),
        PublicAccountVerified(),
        NewsPermitted(),
        ContentFilter(terms),
        RateLimit(limits),
    )
    return {check.name: check for check in checks}
