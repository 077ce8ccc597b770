"""The facts the policy pipeline decides on, and what it decides about.

Shared by every layer: ``store`` loads these facts, ``services`` caches them as
snapshots per node (dropped when the broker's ``policy`` topic says they
changed), ``policy`` decides on them, ``gateway`` and ``admin`` name the kinds.
Everything here is a plain value: enums with stable string values (they are
stored and sent over the wire) and frozen dataclasses, so a cached snapshot can
be shared between concurrent sends without copying.

A snapshot says what is *recorded* (a sanction and its end time); whether it is
in force *now* is decided by the pure checks with the clock, so a cached
snapshot stays correct as time passes and a sanction expires on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .enums import RealNameStatus, UserStatus


class SanctionKind(StrEnum):
    """Art. 8 "warnings, restricting publication, suspension of refreshing, and
    closure of accounts", in escalating order (the ladder: ``policy/ladder.py``)."""

    WARNING = "warning"
    RESTRICT_PUBLICATION = "restrict_publication"
    SUSPEND_UPDATES = "suspend_updates"
    CLOSE_ACCOUNT = "close_account"


class NewsPermission(StrEnum):
    """What a public account may do with current-affairs news (Art. 7 §2).

    Ordered: ``publish`` implies ``reprint``. Compare with :meth:`allows`.
    """

    NONE = "none"
    REPRINT = "reprint"
    PUBLISH = "publish"

    @property
    def rank(self) -> int:
        return _NEWS_RANK[self]

    def allows(self, needed: NewsPermission) -> bool:
        """True when this permission covers ``needed`` (publish covers reprint)."""
        return _NEWS_RANK[self] >= _NEWS_RANK[needed]


_NEWS_RANK = {NewsPermission.NONE: 0, NewsPermission.REPRINT: 1, NewsPermission.PUBLISH: 2}


class AccountCategory(StrEnum):
    """Art. 7: public accounts are filed "in a categorized manner".

    ``news_unit`` is a news work unit or news website; ``news_service_licensee``
    a non-news unit holding an Internet news information service licence. The
    rest are the organisations Art. 7 §4 encourages, plus individuals.
    """

    NEWS_UNIT = "news_unit"
    NEWS_SERVICE_LICENSEE = "news_service_licensee"
    GOVERNMENT = "government"
    ENTERPRISE = "enterprise"
    PUBLIC_INSTITUTION = "public_institution"
    PEOPLES_ORGANIZATION = "peoples_organization"
    INDIVIDUAL = "individual"
    OTHER = "other"


class PublicAccountStatus(StrEnum):
    """Where a public account's examination and verification (Art. 7) stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CLOSED = "closed"


class OutgoingKind(StrEnum):
    """What a user is trying to send; the ladder says which kinds a sanction forbids."""

    MESSAGE_DIRECT = "message_direct"
    MESSAGE_GROUP = "message_group"
    POST = "post"


class PostKind(StrEnum):
    """A post's relation to current-affairs news (Art. 7 §2)."""

    ORDINARY = "ordinary"
    NEWS_ORIGINAL = "news_original"  # disseminating: needs publish
    NEWS_REPRINT = "news_reprint"  # reprinting: needs reprint (or publish)


class FilterAction(StrEnum):
    """What a content-filter term does to a message that contains it."""

    DENY = "deny"  # refused: content_blocked
    HOLD = "hold"  # stored as held for a moderator: content_review


@dataclass(frozen=True, slots=True)
class SanctionInForce:
    """A recorded sanction that no event (lifting, overturn, expiry) has ended.

    The store leaves out a ``close_account`` still awaiting its second
    operator's confirmation: it has not taken effect. ``ends_at`` None means
    until lifted; ``starts_at`` None means already started.
    """

    kind: SanctionKind
    sanction_id: int
    ends_at: datetime | None
    starts_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PublicAccountSnapshot:
    account_id: int
    status: PublicAccountStatus
    filed: bool  # filed with the controlling department (Art. 7 §1)
    news_permission: NewsPermission
    sanctions: tuple[SanctionInForce, ...] = ()


@dataclass(frozen=True, slots=True)
class UserSnapshot:
    user_id: int
    status: UserStatus
    real_name_status: RealNameStatus
    agreement_version: int | None  # the version accepted; None: never accepted
    sanctions: tuple[SanctionInForce, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicySnapshot:
    """Everything the checks read for one send: the sender, the agreement
    version in force, and the public account posted as (None for messages)."""

    user: UserSnapshot
    current_agreement_version: int
    public_account: PublicAccountSnapshot | None = None
    # Until then, a user who accepted an earlier version still sends (and is asked to accept).
    agreement_grace_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message or post, as the pipeline sees it."""

    kind: OutgoingKind
    sender_id: int
    body: str
    post_kind: PostKind | None = None  # posts only; None is ordinary
    public_account_id: int | None = None  # posts only: the account posted as
