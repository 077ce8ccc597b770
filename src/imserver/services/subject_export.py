"""A regulator's "everything about user X between two dates", in one document.

Sign-ins and WebSocket sessions, messages sent, posts of their public accounts,
policy decisions, sanctions in force during the period with their events and
appeals, reports filed by and about them, audit entries about them, legal holds
and any deletion request, plus the user row and their identity submissions'
metadata. Identity plaintext is not in it: compliance reads that separately
(``GET /admin/v1/users/{id}/identity?full=true``), audited per read. The export
itself is an audited operator (or system) action.
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from ..domain.clock import Clock
from ..domain.errors import BadRequest, Code, NotFound
from ..store import audit
from ..store import subject as store
from ..store.db import Database
from .regulator import parse_when

PER_KIND_MAX = 100_000  # rows per kind in one export; `truncated` names the kinds that hit it


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return None  # never ciphertext in an export
    return value


class SubjectExport:
    def __init__(self, db: Database, clock: Clock, *, local_zone: str = "UTC") -> None:
        self.db = db
        self.clock = clock
        self.zone = ZoneInfo(local_zone)  # times without a zone are read in it, as in every export

    async def user(
        self,
        user_id: int,
        *,
        since: str | datetime,
        until: str | datetime | None = None,
        actor_kind: str = "system",
        actor_id: int | None = None,
    ) -> dict:
        """The document for [since, until) (until: default now); a time without a zone is in local_timezone."""
        since = parse_when(since, self.zone)
        until = parse_when(until, self.zone) if until is not None else self.clock.now()
        if until <= since:
            raise BadRequest("until must be after since", Code.INVALID_PERIOD)
        async with self.db.read() as conn:
            found = await store.gather(conn, user_id, since, until, PER_KIND_MAX)
        if not found:
            raise NotFound("no such user", Code.SUBJECT_NOT_FOUND)
        counts = {k: len(v) for k, v in found.items() if isinstance(v, list)}
        async with self.db.transaction() as conn:
            await audit.append(
                conn,
                at=self.clock.now(),
                actor_kind=actor_kind,
                actor_id=actor_id,
                action="subject.export",
                subject=f"user:{user_id}",
                detail={"since": since.isoformat(), "until": until.isoformat(), "counts": counts},
            )
        body = {
            k: ([{c: _plain(v) for c, v in row.items()} for row in rows] if isinstance(rows, list) else
                {c: _plain(v) for c, v in rows.items()})
            for k, rows in found.items()
        }
        return {
            "subject": {"kind": "user", "id": user_id},
            "since": since.isoformat(),
            "until": until.isoformat(),
            "generated_at": self.clock.now().isoformat(),
            "counts": counts,
            "truncated": [k for k, n in counts.items() if n >= PER_KIND_MAX],
            "records": body,
        }


def render(document: dict) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
