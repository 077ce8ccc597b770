"""The retention table: how long each kind of record is kept, and the floor the law sets.

Each kind's period comes from configuration (``IMSERVER_RETENTION_<KIND>_DAYS``);
the purge refuses, with ``retention_below_minimum``, a period under the kind's
legal minimum. Floors: network and sign-in logs, and the content they are about
(messages, posts), at least six months (180 days) under the Cybersecurity Law,
Art. 21; policy decisions are kept like the logs; sanction records (with their
events, appeals and regulator reports) and the audit log at least a year, so an appeal and its
report always outlive the measure. Identity data after an account deletion has
no floor of its own here: a legal hold keeps it when an inquiry needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .errors import BadRequest, Code

LOG_FLOOR_DAYS = 180  # Cybersecurity Law Art. 21: network logs kept no less than six months
SANCTION_FLOOR_DAYS = 365  # sanction records outlive any appeal and its regulator report


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    minimum_days: int
    what: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("messages", LOG_FLOOR_DAYS, "chat messages (and their inbox entries)"),
        Kind("posts", LOG_FLOOR_DAYS, "public-account posts"),
        Kind("access_log", LOG_FLOOR_DAYS, "sign-ins, failed sign-ins, sign-outs, WebSocket sessions"),
        Kind("policy_decisions", LOG_FLOOR_DAYS, "refused and held sends and posts"),
        Kind("sanctions", SANCTION_FLOOR_DAYS, "ended sanctions with their events, appeals and regulator records"),
        Kind("audit", SANCTION_FLOOR_DAYS, "operator actions and identity reads: the oldest rows, never the last"),
        Kind("identity", 0, "identity data, nickname and sessions of a deleted account, counted from the request"),
    )
}


def check_period(kind: str, days: float) -> timedelta:
    """The period, or BadRequest if the kind is unknown or the period under its floor."""
    if kind not in KINDS:
        raise BadRequest(f"no record kind {kind!r}; kinds: {', '.join(KINDS)}", Code.UNKNOWN_RECORD_KIND)
    floor = KINDS[kind].minimum_days
    if days < floor:
        raise BadRequest(
            f"{kind} must be kept at least {floor} days; a purge after {days:g} days is refused",
            Code.RETENTION_BELOW_MINIMUM,
        )
    return timedelta(days=days)


def cutoff(now: datetime, kind: str, days: float) -> datetime:
    return now - check_period(kind, days)


def id_ranges(ids: list[int]) -> list[list[int]]:
    """Sorted ids as [first, last] runs."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return runs
