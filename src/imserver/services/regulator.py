"""Reporting sanctions to the regulator (Art. 8 "carry out their duty of reporting
the matter to relevant controlling departments").

Theory of operation
-------------------
1. **Record.** Every sanction imposed, confirmed, lifted, expired and overturned
   writes one outbox record with :func:`record`, inside the transaction that
   makes the change. Its payload is canonical JSON (sorted keys, no spaces,
   UTF-8), so the same record always has the same bytes, and it carries its own
   idempotency key ``sanction-<id>-<kind>``: each kind happens at most once per
   sanction, so the key is unique by construction and the table's unique index
   catches a race.
2. **Export.** :meth:`Regulator.export` returns the records of a period as JSON
   lines (each line *is* the payload) or CSV, for ``imserver export sanctions``
   and ``GET /admin/v1/regulator/sanctions``.
3. **Deliver (optional).** With ``regulator_webhook_url`` set, one background
   loop POSTs each undelivered record with an ``Idempotency-Key`` header. A 2xx
   marks it delivered; anything else (or no answer) schedules a retry after
   ``base * 2**(attempts-1)`` seconds, capped, and keeps the error. Records are
   claimed before sending (store/outbox.py), so two nodes never post one twice
   at once. No database connection is held during the HTTP call.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from ..config import Settings
from ..domain.clock import Clock
from ..domain.errors import BadRequest, Code
from ..store import audit
from ..store import outbox as store
from ..store.db import Database
from .periodic import Periodic

log = logging.getLogger("imserver.regulator")

SCHEMA = "imserver.regulator.sanction/1"  # bumped if a payload field changes meaning
EXPORT_PAGE = 1000  # records per query (and per transaction) while exporting
DELIVERY_BATCH = 100  # due records fetched per delivery step
# A claimed record is not picked up by another deliverer for this long past the
# HTTP timeout: long enough for one attempt to finish, short enough that a node
# dying mid-send delays the record by only about a minute.
CLAIM_LEASE_MARGIN = timedelta(seconds=60)
RECORD_KINDS = ("imposed", "confirmed", "lifted", "expired", "overturned")
CSV_COLUMNS = (
    "idempotency_key",
    "record_kind",
    "recorded_at",
    "sanction_id",
    "subject_kind",
    "subject_id",
    "sanction_kind",
    "reason",
    "evidence",
    "imposed_by",
    "starts_at",
    "ends_at",
    "event_operator_id",
    "event_note",
    "event_at",
)
FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds") if value is not None else None


def canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def idempotency_key(sanction_id: int, kind: str) -> str:
    return f"sanction-{sanction_id}-{kind}"


def payload(kind: str, sanction: dict, event: dict | None, now: datetime) -> dict:
    """The record as the regulator receives it."""
    return {
        "schema": SCHEMA,
        "idempotency_key": idempotency_key(sanction["id"], kind),
        "record_kind": f"sanction_{kind}",
        "recorded_at": _iso(now),
        "sanction": {
            "id": sanction["id"],
            "subject": {"kind": sanction["subject_kind"], "id": sanction["subject_id"]},
            "kind": sanction["kind"],
            "reason": sanction["reason"],
            "evidence": sanction["evidence"],
            "imposed_by": sanction["imposed_by"],
            "needs_confirmation": sanction["needs_confirmation"],
            "starts_at": _iso(sanction["starts_at"]),
            "ends_at": _iso(sanction["ends_at"]),
        },
        "event": None
        if event is None
        else {
            "kind": event["kind"],
            "operator_id": event["operator_id"],
            "note": event["note"],
            "at": _iso(event["at"]),
        },
    }


async def record(conn, *, kind: str, sanction: dict, event: dict | None, now: datetime) -> str:
    """Write the outbox record of one sanction change in the caller's transaction; returns its key."""
    if kind not in RECORD_KINDS:
        raise ValueError(f"no regulator record kind {kind!r}")
    body = payload(kind, sanction, event, now)
    await store.insert_record(
        conn,
        record_kind=body["record_kind"],
        sanction_id=sanction["id"],
        payload=canonical(body),
        idempotency_key=body["idempotency_key"],
        now=now,
    )
    return body["idempotency_key"]


def _csv_row(body: dict) -> list:
    s, e = body["sanction"], body["event"] or {}
    return [
        body["idempotency_key"],
        body["record_kind"],
        body["recorded_at"],
        s["id"],
        s["subject"]["kind"],
        s["subject"]["id"],
        s["kind"],
        s["reason"],
        canonical(s["evidence"]),
        s["imposed_by"],
        s["starts_at"],
        s["ends_at"] or "",
        e.get("operator_id") if e.get("operator_id") is not None else "",
        e.get("note") or "",
        e.get("at") or "",
    ]


@dataclass(frozen=True)
class Export:
    body: str
    media_type: str
    count: int


class Regulator:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.url = settings.regulator_webhook_url
        self.timeout = settings.regulator_webhook_timeout_seconds
        self.retry_base = settings.regulator_retry_base_seconds
        self.retry_max = settings.regulator_retry_max_seconds
        self._loop = Periodic("regulator-deliverer", settings.regulator_delivery_interval_seconds, self.deliver_due)
        self._http: httpx.AsyncClient | None = None

    # -- export ---------------------------------------------------------------------

    async def export(
        self, *, since: datetime, until: datetime, fmt: str, actor_kind: str = "system", actor_id: int | None = None
    ) -> Export:
        """The records created in [since, until), oldest first; the export itself is audited."""
        if fmt not in FORMATS:
            raise BadRequest(f"format must be one of {', '.join(FORMATS)}")
        if since.tzinfo is None or until.tzinfo is None:
            raise BadRequest("since and until need a time zone (e.g. 2026-01-01T00:00:00Z)", Code.INVALID_PERIOD)
        if until <= since:
            raise BadRequest("until must be after since", Code.INVALID_PERIOD)
        bodies: list[str] = []
        after = 0
        while True:
            async with self.db.transaction() as conn:
                rows = await store.between(conn, since, until, after=after, limit=EXPORT_PAGE)
            bodies.extend(r["payload"] for r in rows)
            if len(rows) < EXPORT_PAGE:
                break
            after = rows[-1]["id"]
        async with self.db.transaction() as conn:
            await audit.append(
                conn,
                at=self.clock.now(),
                actor_kind=actor_kind,
                actor_id=actor_id,
                action="regulator.export",
                subject=None,
                detail={"since": _iso(since), "until": _iso(until), "format": fmt, "records": len(bodies)},
            )
        if fmt == "jsonl":
            text = "".join(b + "\n" for b in bodies)
        else:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(CSV_COLUMNS)
            for b in bodies:
                writer.writerow(_csv_row(json.loads(b)))
            text = out.getvalue()
        return Export(text, FORMATS[fmt], len(bodies))

    async def records_for(self, sanction_id: int) -> list[dict]:
        async with self.db.transaction() as conn:
            rows = await store.for_sanction(conn, sanction_id)
        return [
            {
                "idempotency_key": r["idempotency_key"],
                "record_kind": r["record_kind"],
                "created_at": _iso(r["created_at"]),
                "attempts": r["attempts"],
                "delivered_at": _iso(r["delivered_at"]),
                "last_error": r["last_error"],
            }
            for r in rows
        ]

    async def undelivered(self) -> int:
        async with self.db.transaction() as conn:
            return await store.undelivered_count(conn)

    # -- webhook delivery -----------------------------------------------------------

    async def start(self) -> None:
        if self.url:
            self._http = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
            self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def nudge(self) -> None:
        """A record was committed: deliver it now rather than at the next poll."""
        if self._loop.running:
            self._loop.nudge()

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.retry_base * 2 ** (attempts - 1), self.retry_max))

    async def deliver_due(self) -> int:
        """One pass over the due records; returns how many were delivered."""
        if self._http is None:
            return 0
        async with self.db.transaction() as conn:
            rows = await store.due(conn, self.clock.now(), DELIVERY_BATCH)
        delivered = 0
        for row in rows:
            now = self.clock.now()
            lease = now + timedelta(seconds=self.timeout) + CLAIM_LEASE_MARGIN
            async with self.db.transaction() as conn:
                if not await store.claim(conn, row["id"], now, lease):
                    continue  # another node has it
            attempts = row["attempts"] + 1
            error = await self._post(row)
            async with self.db.transaction() as conn:
                if error is None:
                    await store.mark_delivered(conn, row["id"], attempts=attempts, now=self.clock.now())
                    delivered += 1
                else:
                    retry_at = self.clock.now() + self.backoff(attempts)
                    await store.mark_failed(conn, row["id"], attempts=attempts, next_attempt_at=retry_at, error=error)
                    log.warning(
                        "regulator record %s not delivered (attempt %d): %s", row["idempotency_key"], attempts, error
                    )
        return delivered

    async def _post(self, row) -> str | None:
        """POST one record; None when acknowledged (2xx), else what went wrong."""
        assert self._http is not None
        try:
            response = await self._http.post(
                self.url,
                content=row["payload"].encode(),
                headers={"Content-Type": "application/json", "Idempotency-Key": row["idempotency_key"]},
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"
