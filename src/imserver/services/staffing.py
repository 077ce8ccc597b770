"""Staffing suited to the scale of the service (Art. 5: "allocate specialist personnel
suited to the scale of services ... timely deal with unlawful and harmful information
reported by the public").

For a period, per operator queue (``store/staffing.QUEUES``):

* ``entered``: items that entered the queue;
* ``resolved`` and ``handled_per_active_operator``: items resolved in the period,
  divided by the operators who resolved at least one of them;
* ``first_action_seconds`` and ``resolution_seconds``: p50 and p90 over the items
  that entered in the period (nearest-rank percentiles; None without data);
* ``open`` and ``oldest_open_age_seconds``: the queue now, and ``overdue`` when
  its oldest item is older than ``queue_age_warning_seconds``;

against ``active_users`` (who sent a message in the period), with
``active_users_per_operator``. ``imserver report staffing`` prints it; the
``/metrics`` gauges ``imserver_queue_open``, ``imserver_queue_oldest_age_seconds``
and ``imserver_queue_overdue`` (the warning) carry the "now" part.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ..domain.clock import Clock
from ..domain.errors import BadRequest, Code
from ..store import staffing as store
from ..store.db import Database
from .regulator import parse_when


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _spread(values: list[float]) -> dict:
    return {"p50": percentile(values, 50), "p90": percentile(values, 90), "count": len(values)}


class Staffing:
    def __init__(self, db: Database, clock: Clock, *, overdue_after: timedelta, local_zone: str = "UTC") -> None:
        self.db = db
        self.clock = clock
        self.overdue_after = overdue_after
        self.zone = ZoneInfo(local_zone)

    async def queues_now(self) -> dict[str, dict]:
        """Per queue: items open now, the oldest one's age, and whether it is overdue."""
        now = self.clock.now()
        out = {}
        async with self.db.transaction() as conn:
            for name in store.QUEUES:
                items = await store.open_items(conn, name, now)
                oldest = max(((now - r[0]).total_seconds() for r in items), default=0.0)
                out[name] = {
                    "open": len(items),
                    "oldest_open_age_seconds": oldest,
                    "overdue": oldest > self.overdue_after.total_seconds(),
                }
        return out

    async def report(self, *, since: str | datetime, until: str | datetime | None = None) -> dict:
        start = parse_when(since, self.zone)
        end = parse_when(until, self.zone) if until is not None else self.clock.now()
        if end <= start:
            raise BadRequest("until must be after since", Code.INVALID_PERIOD)
        queues = {}
        handlers: set[int] = set()
        async with self.db.transaction() as conn:
            users = await store.active_users(conn, start, end)
            for name, rows_of in store.QUEUES.items():
                entered = await rows_of(conn, start, end)
                resolved = await store.resolved_in(conn, name, start, end)
                who = {r[3] for r in resolved if r[3] is not None}
                handlers |= who
                queues[name] = {
                    "entered": len(entered),
                    "resolved": len(resolved),
                    "active_operators": len(who),
                    "handled_per_active_operator": round(len(resolved) / len(who), 2) if who else None,
                    "first_action_seconds": _spread(
                        [(r[1] - r[0]).total_seconds() for r in entered if r[1] is not None]
                    ),
                    "resolution_seconds": _spread([(r[2] - r[0]).total_seconds() for r in entered if r[2] is not None]),
                }
        for name, now in (await self.queues_now()).items():
            queues[name].update(now)
        return {
            "since": start.isoformat(),
            "until": end.isoformat(),
            "active_users": users,
            "active_operators": len(handlers),
            "active_users_per_operator": round(users / len(handlers), 2) if handlers else None,
            "queue_age_warning_seconds": self.overdue_after.total_seconds(),
            "queues": queues,
        }
