"""Where a sanction stands, derived from its append-only events (Art. 8).

A sanction row never changes; its *stage* is a function of its events:

=======================  ==========================================  ================================
stage                    reached by                                  events allowed next
=======================  ==========================================  ================================
awaiting_confirmation    imposed, where the ladder wants a second    confirmed, lifted (withdrawn)
                         operator to impose (a closure)
in_effect                imposed (other kinds), or confirmed         lifted, expired, appealed,
                                                                     upheld, overturned,
                                                                     lift_pending, overturn_pending,
                                                                     undo_declined
ended                    lifted, expired or overturned               appealed, upheld, overturned,
                                                                     overturn_pending, undo_declined
=======================  ==========================================  ================================

Four eyes on undoing (the ladder's ``second_operator``): where lifting or
overturning a measure needs a second operator, the first operator's act writes
``lift_pending`` or ``overturn_pending`` (the *pending* proposal, at most one at
a time); a second, different operator's confirmation then writes ``lifted`` or
``overturned``, and ``undo_declined`` drops the proposal.

An ended sanction can still be appealed and overturned: overturning it then
ends nothing but marks it *overruled*, which takes it out of the strike count.
Whether an appeal exists or is decided is checked against the appeal row, not
here. Who imposes each kind, which acts need a second operator and which kinds
carry an end are the ladder's (``policy/ladder.py``). Pure: no I/O, so the
table is tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum



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
    LIFT_PENDING = "lift_pending"  # a lift proposed, awaiting a second operator
    OVERTURN_PENDING = "overturn_pending"  # an overturn on appeal proposed, awaiting a second operator
    UNDO_DECLINED = "undo_declined"  # the second operator declined the pending proposal


ENDING = frozenset({Event.LIFTED, Event.EXPIRED, Event.OVERTURNED})
PROPOSALS = {Event.LIFT_PENDING: Event.LIFTED, Event.OVERTURN_PENDING: Event.OVERTURNED}
# Events that settle a pending proposal: confirming it, declining it, or deciding the appeal otherwise.
# (An expiry settles a pending lift only: a pending overturn still stands on an ended sanction.)
SETTLING = frozenset({Event.LIFTED, Event.OVERTURNED, Event.UPHELD, Event.UNDO_DECLINED})

_UNDOING = frozenset({Event.LIFT_PENDING, Event.OVERTURN_PENDING, Event.UNDO_DECLINED})
ALLOWED: dict[Stage, frozenset[Event]] = {
    Stage.AWAITING_CONFIRMATION: frozenset({Event.CONFIRMED, Event.LIFTED}),
    Stage.IN_EFFECT: frozenset({Event.LIFTED, Event.EXPIRED, Event.APPEALED, Event.UPHELD, Event.OVERTURNED})
    | _UNDOING,
    Stage.ENDED: frozenset(
        {Event.APPEALED, Event.UPHELD, Event.OVERTURNED, Event.OVERTURN_PENDING, Event.UNDO_DECLINED}
    ),
}


@dataclass(frozen=True)
class Pending:
    """A proposal to lift or overturn, waiting for a second operator."""

    event: Event  # lift_pending | overturn_pending
    operator_id: int
    note: str | None
    at: datetime

    @property
    def completes_with(self) -> Event:
        return PROPOSALS[self.event]


@dataclass(frozen=True)
class Standing:
    stage: Stage
    ended_by: Event | None  # lifted | expired | overturned
    ended_at: datetime | None
    confirmed_by: int | None
    overruled: bool
    pending: Pending | None = None


def standing(sanction: dict, events: list[dict]) -> Standing:
    """The stage a sanction's events put it in (the clock is not consulted)."""
    confirmed_by = None
    confirmed = not sanction["needs_confirmation"]
    ended_by = ended_at = None
    overruled = False
    pending: Pending | None = None
    for e in events:
        kind = Event(e["kind"])
        if kind in PROPOSALS:
            pending = Pending(kind, e["operator_id"], e["note"], e["at"])
        elif kind in SETTLING or (kind is Event.EXPIRED and pending and pending.event is Event.LIFT_PENDING):
            pending = None
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
    return Standing(stage, ended_by, ended_at, confirmed_by, overruled, pending)


def allows(stage: Stage, event: Event) -> bool:
    return event in ALLOWED[stage]


def status_at(sanction: dict, st: Standing, now: datetime) -> str:
    """What an operator or the user is shown: the stage, with an end that has
    passed but is not yet swept shown as ended (the checks stop at ends_at too)."""
    if st.stage is Stage.IN_EFFECT and sanction["ends_at"] is not None and sanction["ends_at"] <= now:
        return Stage.ENDED.value
    return st.stage.value
