"""Where a sanction stands, derived from its append-only events (Art. 8).

A sanction row never changes; its *stage* is a function of its events:

=======================  ==========================================  ================================
stage                    reached by                                  events allowed next
=======================  ==========================================  ================================
awaiting_confirmation    close_account imposed                       confirmed, lifted (withdrawn)
in_effect                imposed (other kinds), or confirmed         lifted, expired, appealed,
                                                                     upheld, overturned
ended                    lifted, expired or overturned               appealed, upheld, overturned
=======================  ==========================================  ================================

An ended sanction can still be appealed and overturned: overturning it then
ends nothing but marks it *overruled*, which takes it out of the strike count.
Whether an appeal exists or is decided is checked against the appeal row, not
here. Pure: no I/O, so the table is tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ..domain.enums import Role
from ..domain.policy_types import SanctionKind


class Stage(StrEnum):
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    IN_EFFECT = "in_effect"
    ENDED = "ended"


class Event(StrEnum):
    CONFIRMED = "confirmed"
    LIFTED = "lifted"
    EXPIRED = "expired"
    APPEALED = "appealed"
    UPHELD = "upheld"
    OVERTURNED = "overturned"


ENDING = frozenset({Event.LIFTED, Event.EXPIRED, Event.OVERTURNED})

ALLOWED: dict[Stage, frozenset[Event]] = {
    Stage.AWAITING_CONFIRMATION: frozenset({Event.CONFIRMED, Event.LIFTED}),
    Stage.IN_EFFECT: frozenset({Event.LIFTED, Event.EXPIRED, Event.APPEALED, Event.UPHELD, Event.OVERTURNED}),
    Stage.ENDED: frozenset({Event.APPEALED, Event.UPHELD, Event.OVERTURNED}),
}

# Which role imposes (and lifts) each kind: the
# two mild rungs are the moderators', the two severe ones compliance's.
IMPOSED_BY_ROLE = {
    SanctionKind.WARNING: Role.MODERATOR,
    SanctionKind.RESTRICT_PUBLICATION: Role.MODERATOR,
    SanctionKind.SUSPEND_UPDATES: Role.COMPLIANCE,
    SanctionKind.CLOSE_ACCOUNT: Role.COMPLIANCE,
}
# Kinds that may carry an end; a warning has no duration, and a closure ends
# only by lifting or overturn (reopening an account is a deliberate act).
TIMED = frozenset({SanctionKind.RESTRICT_PUBLICATION, SanctionKind.SUSPEND_UPDATES})
# Kinds that take effect only once a second, different operator confirms.
NEEDS_CONFIRMATION = frozenset({SanctionKind.CLOSE_ACCOUNT})


@dataclass(frozen=True)
class Standing:
    stage: Stage
    ended_by: Event | None  # lifted | expired | overturned
    ended_at: datetime | None
    confirmed_by: int | None
    overruled: bool


def standing(sanction: dict, events: list[dict]) -> Standing:
    """The stage a sanction's events put it in (the clock is not consulted)."""
    confirmed_by = None
    confirmed = not sanction["needs_confirmation"]
    ended_by = ended_at = None
    overruled = False
    for e in events:
        kind = Event(e["kind"])
        if kind is Event.CONFIRMED:
            confirmed, confirmed_by = True, e["operator_id"]
        elif kind in ENDING and ended_by is None:
            ended_by, ended_at = kind, e["at"]
        if kind is Event.OVERTURNED:
            overruled = True
    if ended_by is not None:
        stage = Stage.ENDED
    else:
        stage = Stage.IN_EFFECT if confirmed else Stage.AWAITING_CONFIRMATION
    return Standing(stage, ended_by, ended_at, confirmed_by, overruled)


def allows(stage: Stage, event: Event) -> bool:
    return event in ALLOWED[stage]


def status_at(sanction: dict, st: Standing, now: datetime) -> str:
    """What an operator or the user is shown: the stage, with an end that has
    passed but is not yet swept shown as ended (the checks stop at ends_at too)."""
    if st.stage is Stage.IN_EFFECT and sanction["ends_at"] is not None and sanction["ends_at"] <= now:
        return Stage.ENDED.value
    return st.stage.value
