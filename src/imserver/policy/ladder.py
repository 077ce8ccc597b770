"""The sanction ladder (Art. 8): what each sanction forbids while in force, as a table.

Art. 8 names four measures, "warnings, restricting publication, suspension of
refreshing, and closure of accounts"; this table says what each one stops
(docs/sanctions.md explains it for operators). Each rung lists the outgoing
kinds it refuses (and the reason code sent back) and the kinds it only
throttles (the rate-limit check then uses the tighter "restricted" bucket).
Rungs are listed from the mildest to the most severe; when several sanctions
are in force, the most severe one that forbids the outgoing kind is reported.

A sanction is in force from ``starts_at`` (None: already started) until
``ends_at`` (None: until lifted): ``starts_at <= now < ends_at``. So a cached
snapshot stays correct as time passes and expiry needs no event to take effect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from ..domain.errors import Code
from ..domain.policy_types import OutgoingKind, SanctionInForce, SanctionKind

_ALL = frozenset(OutgoingKind)
_NONE: frozenset[OutgoingKind] = frozenset()


@dataclass(frozen=True, slots=True)
class Rung:
    forbids: frozenset[OutgoingKind]  # refused outright, with `reason`
    reason: Code | None
    throttles: frozenset[OutgoingKind]  # allowed, but through the restricted rate bucket


# Mildest first: the position is the severity.
LADDER: Mapping[SanctionKind, Rung] = MappingProxyType(
    {
        # Recorded and the user told; forbids nothing.
        SanctionKind.WARNING: Rung(_NONE, None, _NONE),
        # Public-account posts and news refused; group messages limited by rate.
        SanctionKind.RESTRICT_PUBLICATION: Rung(
            frozenset({OutgoingKind.POST}), Code.PUBLICATION_RESTRICTED, frozenset({OutgoingKind.MESSAGE_GROUP})
        ),
        # "Suspension of refreshing": every post and message; reading and sync still work.
        SanctionKind.SUSPEND_UPDATES: Rung(_ALL, Code.UPDATES_SUSPENDED, _NONE),
        # Everything (the services also drop sockets and refuse sign-in).
        SanctionKind.CLOSE_ACCOUNT: Rung(_ALL, Code.ACCOUNT_CLOSED, _NONE),
    }
)
SEVERITY: Mapping[SanctionKind, int] = MappingProxyType({kind: i for i, kind in enumerate(LADDER)})


def in_force(sanction: SanctionInForce, now: datetime) -> bool:
    if sanction.starts_at is not None and now < sanction.starts_at:
        return False
    return sanction.ends_at is None or now < sanction.ends_at


def forbidding(sanctions: Iterable[SanctionInForce], kind: OutgoingKind, now: datetime) -> SanctionInForce | None:
    """The most severe sanction in force that forbids ``kind``, or None."""
    worst: SanctionInForce | None = None
    for s in sanctions:
        if (
            kind in LADDER[s.kind].forbids
            and in_force(s, now)
            and (worst is None or SEVERITY[s.kind] > SEVERITY[worst.kind])
        ):
            worst = s
    return worst


def throttled(sanctions: Iterable[SanctionInForce], kind: OutgoingKind, now: datetime) -> bool:
    """True when a sanction in force limits ``kind`` by rate rather than refusing it."""
    return any(kind in LADDER[s.kind].throttles and in_force(s, now) for s in sanctions)
