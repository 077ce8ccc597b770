"""The sanction ladder (Art. 8), as one table: everything the code knows about a measure.

Art. 8 names four measures, "warnings, restricting publication, suspension of
refreshing, and closure of accounts". For each measure and each kind of subject
(a user, a public account) one :class:`Measure` row says

* which operator role imposes it (and lifts it);
* which acts need a second, different operator (impose, lift, overturn on appeal);
* its default duration (None: it has no end and lasts until lifted);
* what it does to each kind of outgoing item (:class:`Item`): refused, limited
  by rate (the rate-limit check's "restricted" bucket), allowed, or not
  applicable to that subject kind;
* the reason code a refusal carries.

``services/sanction_state.py`` and ``services/sanctions.py`` read roles, second
operators and durations from here; the policy checks, sign-in, profile changes
and public-account updates read the effects. ``docs/sanctions.md`` carries
:func:`scope_table` verbatim (a test fails when the two drift).

Rows are listed mildest first: the position is the severity. When several
sanctions are in force, the most severe one that refuses the item is reported.

A sanction is in force from ``starts_at`` (None: already started) until
``ends_at`` (None: until lifted): ``starts_at <= now < ends_at``. So a cached
snapshot stays correct as time passes and expiry needs no event to take effect.
Pure data and pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from ..domain.enums import Role
from ..domain.errors import Code
from ..domain.policy_types import OutgoingKind, PostKind, SanctionInForce, SanctionKind


class SubjectKind(StrEnum):
    """What a sanction is imposed on."""

    USER = "user"
    PUBLIC_ACCOUNT = "public_account"


class Item(StrEnum):
    """The kinds of outgoing item (and acts) a measure may stop."""

    DIRECT_MESSAGES = "direct_messages"
    GROUP_MESSAGES = "group_messages"
    POSTS = "posts"  # ordinary public-account posts
    NEWS = "news"  # current-affairs news posts, original or reprinted (Art. 7 §2)
    SIGN_IN = "sign_in"
    PROFILE_CHANGES = "profile_changes"  # the user's own profile (nickname)
    PUBLIC_ACCOUNT_UPDATES = "public_account_updates"  # edits to a public account's profile and filed facts


class Effect(StrEnum):
    ALLOWED = "allowed"
    LIMITED = "limited"  # allowed, through the restricted rate bucket
    REFUSED = "refused"
    NOT_APPLICABLE = "n/a"  # the subject kind has no such item (a public account does not sign in)


class Act(StrEnum):
    """The acts on a sanction that the four-eyes rule may cover."""

    IMPOSE = "impose"  # takes effect only once a second operator confirms
    LIFT = "lift"  # ending it early
    OVERTURN = "overturn"  # overturning it on appeal


@dataclass(frozen=True, slots=True)
class Measure:
    imposed_by: Role
    second_operator: frozenset[Act]
    default_duration: timedelta | None  # None: no end; lasts until lifted (and may not be given one)
    reason: Code | None  # carried by a refusal
    effects: Mapping[Item, Effect]

    @property
    def timed(self) -> bool:
        """Whether the measure carries an end (the default, or one the operator gives)."""
        return self.default_duration is not None


_A, _L, _R, _NA = Effect.ALLOWED, Effect.LIMITED, Effect.REFUSED, Effect.NOT_APPLICABLE
_ITEMS = tuple(Item)  # the column order of every row below and of the documented table


def _effects(*row: Effect) -> Mapping[Item, Effect]:
    assert len(row) == len(_ITEMS), "one effect per item"
    return MappingProxyType(dict(zip(_ITEMS, row, strict=True)))


# Default durations: long enough to matter, short enough that a forgotten
# sanction does not become permanent; an operator may give any other end.
RESTRICT_DEFAULT = timedelta(days=7)  # restricting publication: a week
SUSPEND_DEFAULT = timedelta(days=3)  # suspension of refreshing: three days
_ALL_ACTS = frozenset(Act)
_NO_ACTS: frozenset[Act] = frozenset()

U, P = SubjectKind.USER, SubjectKind.PUBLIC_ACCOUNT
K = SanctionKind

# (kind, subject) -> Measure, mildest first. Columns of the effects:
#   direct, group, posts, news, sign-in, profile, public-account updates
LADDER: Mapping[tuple[SanctionKind, SubjectKind], Measure] = MappingProxyType(
    {
        # Recorded and the subject told; stops nothing.
        (K.WARNING, U): Measure(Role.MODERATOR, _NO_ACTS, None, None, _effects(_A, _A, _A, _A, _A, _A, _A)),
        (K.WARNING, P): Measure(Role.MODERATOR, _NO_ACTS, None, None, _effects(_NA, _NA, _A, _A, _NA, _NA, _A)),
        # Posts and news refused; a user's group messages limited by rate.
        (K.RESTRICT_PUBLICATION, U): Measure(
            Role.MODERATOR,
            _NO_ACTS,
            RESTRICT_DEFAULT,
            Code.PUBLICATION_RESTRICTED,
            _effects(_A, _L, _R, _R, _A, _A, _A),
        ),
        (K.RESTRICT_PUBLICATION, P): Measure(
            Role.MODERATOR,
            _NO_ACTS,
            RESTRICT_DEFAULT,
            Code.PUBLICATION_RESTRICTED,
            _effects(_NA, _NA, _R, _R, _NA, _NA, _A),
        ),
        # "Suspension of refreshing": nothing new goes out; reading and sync still work.
        (K.SUSPEND_UPDATES, U): Measure(
            Role.COMPLIANCE, _NO_ACTS, SUSPEND_DEFAULT, Code.UPDATES_SUSPENDED, _effects(_R, _R, _R, _R, _A, _R, _R)
        ),
        (K.SUSPEND_UPDATES, P): Measure(
            Role.COMPLIANCE,
            _NO_ACTS,
            SUSPEND_DEFAULT,
            Code.UPDATES_SUSPENDED,
            _effects(_NA, _NA, _R, _R, _NA, _NA, _R),
        ),
        # Everything; a closed user's correct sign-in gets only an appeal token.
        (K.CLOSE_ACCOUNT, U): Measure(
            Role.COMPLIANCE, _ALL_ACTS, None, Code.ACCOUNT_CLOSED, _effects(_R, _R, _R, _R, _R, _R, _R)
        ),
        (K.CLOSE_ACCOUNT, P): Measure(
            Role.COMPLIANCE, _ALL_ACTS, None, Code.ACCOUNT_CLOSED, _effects(_NA, _NA, _R, _R, _NA, _NA, _R)
        ),
    }
)
SEVERITY: Mapping[SanctionKind, int] = MappingProxyType({kind: i for i, kind in enumerate(SanctionKind)})


def measure(kind: SanctionKind | str, subject: SubjectKind | str) -> Measure:
    return LADDER[(SanctionKind(kind), SubjectKind(subject))]


def needs_second_operator(kind: SanctionKind | str, subject: SubjectKind | str, act: Act) -> bool:
    return act in measure(kind, subject).second_operator


def item_of(kind: OutgoingKind, post_kind: PostKind | None = None) -> Item:
    """The ladder's item for an outgoing message or post (a news post is ``news``)."""
    if kind is OutgoingKind.MESSAGE_DIRECT:
        return Item.DIRECT_MESSAGES
    if kind is OutgoingKind.MESSAGE_GROUP:
        return Item.GROUP_MESSAGES
    if post_kind in (PostKind.NEWS_ORIGINAL, PostKind.NEWS_REPRINT):
        return Item.NEWS
    return Item.POSTS


def in_force(sanction: SanctionInForce, now: datetime) -> bool:
    if sanction.starts_at is not None and now < sanction.starts_at:
        return False
    return sanction.ends_at is None or now < sanction.ends_at


def refusing(
    sanctions: Iterable[SanctionInForce], subject: SubjectKind, item: Item, now: datetime
) -> SanctionInForce | None:
    """The most severe sanction in force on a ``subject`` that refuses ``item``, or None."""
    worst: SanctionInForce | None = None
    for s in sanctions:
        if (
            LADDER[(s.kind, subject)].effects[item] is Effect.REFUSED
            and in_force(s, now)
            and (worst is None or SEVERITY[s.kind] > SEVERITY[worst.kind])
        ):
            worst = s
    return worst


def limited(sanctions: Iterable[SanctionInForce], subject: SubjectKind, item: Item, now: datetime) -> bool:
    """True when a sanction in force limits ``item`` by rate rather than refusing it."""
    return any(LADDER[(s.kind, subject)].effects[item] is Effect.LIMITED and in_force(s, now) for s in sanctions)


def refusal(
    user: Iterable[SanctionInForce], account: Iterable[SanctionInForce], item: Item, now: datetime
) -> tuple[SanctionInForce, SubjectKind] | None:
    """The most severe sanction in force that refuses ``item``, on the user or on the
    public account the item is sent as (pass ``()`` when there is none), with its subject kind."""
    found = [
        (s, subject)
        for sanctions, subject in ((user, SubjectKind.USER), (account, SubjectKind.PUBLIC_ACCOUNT))
        if (s := refusing(sanctions, subject, item, now)) is not None
    ]
    return max(found, key=lambda pair: SEVERITY[pair[0].kind]) if found else None


def reason_for(sanction: SanctionInForce, subject: SubjectKind) -> Code:
    """The code a refusal by ``sanction`` carries (every refusing measure names one)."""
    reason = LADDER[(sanction.kind, subject)].reason
    assert reason is not None, "a measure that refuses names its reason"
    return reason


# -- the documented table ------------------------------------------------------------------------


def _duration(m: Measure) -> str:
    d = m.default_duration
    if d is None and m.reason is None:
        return "none (stops nothing)"
    if d is None:
        return "none (until lifted)"
    return f"{d.days} days" if d.days and not d.seconds else f"{int(d.total_seconds())} s"


def scope_table() -> str:
    """The ladder as the Markdown table ``docs/sanctions.md`` carries (generated, never hand-edited)."""
    head = ["measure", "subject", "imposed by", "second operator for", "default end", *(i.value for i in _ITEMS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (kind, subject), m in LADDER.items():
        second = ", ".join(a.value for a in Act if a in m.second_operator) or "none"
        cells = [f"`{kind.value}`", subject.value, m.imposed_by.value, second, _duration(m)]
        cells += [m.effects[i].value for i in _ITEMS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

