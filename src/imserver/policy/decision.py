"""What the pipeline says about one outgoing message or post.

A :class:`Decision` is a value: allow, deny or hold, with the stable reason
code (from the one ``Code`` enum), the name of the check that decided, human
``detail`` for the operator's record, and ``retry_after`` (seconds) when
waiting would help. Checks return the shared :data:`ALLOW` when they have
nothing to say, so the common path allocates nothing.

How callers act on it:

* allow: store and deliver;
* deny: ack with the reason code, store and deliver nothing, record the deny;
* hold: store as held, deliver nothing, queue for a moderator, record the hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..domain.errors import Code


class Outcome(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: Code | None = None
    check: str = ""
    detail: str = ""
    retry_after: float | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW


ALLOW = Decision(Outcome.ALLOW)


def deny(check: str, reason: Code, detail: str = "", retry_after: float | None = None) -> Decision:
    return Decision(Outcome.DENY, reason, check, detail or reason.value.replace("_", " "), retry_after)


def hold(check: str, reason: Code, detail: str = "") -> Decision:
    return Decision(Outcome.HOLD, reason, check, detail or reason.value.replace("_", " "))
