"""Reporting sanctions to the regulator (Art. 8 "carry out their duty of reporting
the matter to relevant controlling departments").

Theory of operation
-------------------
1. **Record.** Every sanction imposed, confirmed, lifted, expired, upheld or
   overturned on appeal writes one outbox record with :func:`record`; a report
   that led to a measure writes one with :func:`record_report`, and a public
   account's filing (new, changed, closed, reopened) one with
   :func:`record_filing` — each inside the transaction that makes the change. A
   record names its subject by id, handle and nickname (a public account by
   name, with its owner) and carries the *reference* of the identity record
   behind the account (``identity_ref``), never the identity: compliance reads
   it through the audited identity read on a lawful request. Its payload is canonical JSON (sorted keys, no spaces,
   UTF-8), so the same record always has the same bytes, and it carries its own
   idempotency key ``sanction-<id>-<kind>``: each kind happens at most once per
   sanction, so the key is unique by construction and the table's unique index
   catches a race.
2. **Export.** :meth:`Regulator.export` returns the records of a period as JSON
   lines (each line *is* the payload) or CSV, for ``imserver export sanctions``
   and ``GET /admin/v1/regulator/sanctions`` (the same arguments: ``since``,
   optional ``until``; a time without a zone is read in ``local_timezone``), and
   marks the records it delivered (``exported_at``).
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
from zoneinfo import ZoneInfo

import httpx

from ..config import Settings
from ..domain.clock import Clock
from ..domain.errors import BadRequest, Code
from ..policy import provinces
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
RECORD_KINDS = ("imposed", "confirmed", "lifted", "expired", "upheld", "overturned")
FILING_KINDS = ("filed", "refiled", "closed", "reopened")  # a public account's filing (Art. 7, Art. 8)
REPORT_SCHEMA = "imserver.regulator.report/1"
FILING_SCHEMA = "imserver.regulator.filing/1"
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
    "subject_handle",
    "subject_nickname",
    "subject_name",
    "identity_ref",
    "detail",
)
FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds") if value is not None else None


def canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def idempotency_key(sanction_id: int, kind: str) -> str:
    return f"sanction-{sanction_id}-{kind}"


def payload(
    kind: str,
    sanction: dict,
    event: dict | None,
    now: datetime,
    subject: dict | None = None,
    appeal: dict | None = None,
) -> dict:
    """The record as the regulator receives it."""
    body = {
        "schema": SCHEMA,
        "idempotency_key": idempotency_key(sanction["id"], kind),
        "record_kind": f"sanction_{kind}",
        "recorded_at": _iso(now),
        "sanction": {
            "id": sanction["id"],
            "subject": subject or {"kind": sanction["subject_kind"], "id": sanction["subject_id"]},
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
    if appeal is not None:
        body["appeal"] = {
            "id": appeal["id"],
            "filed_at": _iso(appeal["filed_at"]),
            "decision": kind,
            "note": event["note"] if event else None,
        }
    return body


async def subject_of(conn, subject_kind: str, subject_id: int) -> dict:
    """How a record names its subject: id, handle, nickname, identity reference (an account: name and owner)."""
    if subject_kind == "public_account":
        account = await store.account_facts(conn, subject_id)
        if account is None:
            return {"kind": subject_kind, "id": subject_id}
        return {
            "kind": subject_kind,
            "id": subject_id,
            "name": account["name"],
            "owner": await store.user_facts(conn, account["owner_id"]),
        }
    return {"kind": subject_kind, **(await store.user_facts(conn, subject_id) or {"id": subject_id})}


async def record(
    conn, *, kind: str, sanction: dict, event: dict | None, now: datetime, appeal: dict | None = None
) -> str:
    """Write the outbox record of one sanction change in the caller's transaction; returns its key."""
    if kind not in RECORD_KINDS:
        raise ValueError(f"no regulator record kind {kind!r}")
    subject = await subject_of(conn, sanction["subject_kind"], sanction["subject_id"])
    body = payload(kind, sanction, event, now, subject, appeal)
    await store.insert_record(
        conn,
        record_kind=body["record_kind"],
        sanction_id=sanction["id"],
        payload=canonical(body),
        idempotency_key=body["idempotency_key"],
        now=now,
    )
    return body["idempotency_key"]


async def record_report(conn, *, report: dict, reporters: int, sanction: dict, now: datetime) -> str:
    """The record of a report that led to a measure (Art. 5 reports, Art. 8 measures)."""
    key = f"report-{report['id']}-actioned"
    body = {
        "schema": REPORT_SCHEMA,
        "idempotency_key": key,
        "record_kind": "report_actioned",
        "recorded_at": _iso(now),
        "report": {
            "id": report["id"],
            "target": {"kind": report["target_kind"], "id": report["target_id"]},
            "category": report["category"],
            "reporters": reporters,
            "filed_at": _iso(report["created_at"]),
            "resolved_at": _iso(now),
        },
        "sanction": {
            "id": sanction["id"],
            "kind": sanction["kind"],
            "subject": await subject_of(conn, sanction["subject_kind"], sanction["subject_id"]),
        },
    }
    await store.insert_record(
        conn,
        record_kind=body["record_kind"],
        sanction_id=sanction["id"],
        payload=canonical(body),
        idempotency_key=key,
        now=now,
    )
    return key


async def record_filing(conn, *, kind: str, filing: dict, now: datetime) -> str:
    """The record of a public account's filing: new, changed (re-filed), closed or reopened."""
    if kind not in FILING_KINDS:
        raise ValueError(f"no filing record kind {kind!r}")
    key = f"filing-{filing['id']}-{kind}-{now:%Y%m%dT%H%M%S%f}"  # closing and reopening may repeat
    body = {
        "schema": FILING_SCHEMA,
        "idempotency_key": key,
        "record_kind": f"filing_{kind}",
        "recorded_at": _iso(now),
        "filing": {
            "id": filing["id"],
            "reference": filing["reference"],
            "revision": filing["revision"],
            "category": filing["category"],
            "account_name": filing["account_name"],
            "operator_name": filing["operator_name"],
            "credit_code": filing["credit_code"],
            "licence_number": filing["licence_number"],
            "filed_at": _iso(filing["filed_at"]),
            # Art. 3: the provincial-level department the filing goes to.
            "province": filing.get("province"),
            "department": provinces.department(filing.get("province")),
        },
        "subject": await subject_of(conn, "public_account", filing["account_id"]),
    }
    await store.insert_record(
        conn, record_kind=body["record_kind"], sanction_id=None, payload=canonical(body), idempotency_key=key, now=now
    )
    return key


def _csv_row(body: dict) -> list:
    s, e = body.get("sanction") or {}, body.get("event") or {}
    subject = s.get("subject") or body.get("subject") or {}
    person = subject.get("owner") or subject
    detail = {k: v for k, v in body.items() if k in ("report", "filing", "appeal")}
    return [
        body["idempotency_key"],
        body["record_kind"],
        body["recorded_at"],
        s.get("id", ""),
        subject.get("kind", ""),
        subject.get("id", ""),
        s.get("kind", ""),
        s.get("reason", ""),
        canonical(s["evidence"]) if "evidence" in s else "",
        s.get("imposed_by", ""),
        s.get("starts_at", ""),
        s.get("ends_at") or "",
        e.get("operator_id") if e.get("operator_id") is not None else "",
        e.get("note") or "",
        e.get("at") or "",
        person.get("handle", ""),
        person.get("nickname", ""),
        subject.get("name", ""),
        person.get("identity_ref") if person.get("identity_ref") is not None else "",
        canonical(detail) if detail else "",
    ]


def parse_when(value: str | datetime, zone: ZoneInfo) -> datetime:
    """An ISO 8601 time or date for an export period; without a zone it is read in ``zone``."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise BadRequest(f"not an ISO 8601 time: {value!r}", Code.INVALID_PERIOD) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


@dataclass(frozen=True)
class Export:
    body: str
    media_type: str
    count: int
    first_delivered: int = 0  # records no export had delivered before this one
    since: datetime | None = None
    until: datetime | None = None


class Regulator:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.db = db
        self.clock = clock
        self.url = settings.regulator_webhook_url
        self.zone = ZoneInfo(settings.local_timezone)
        self.timeout = settings.regulator_webhook_timeout_seconds
        self.retry_base = settings.regulator_retry_base_seconds
        self.retry_max = settings.regulator_retry_max_seconds
        self._loop = Periodic("regulator-deliverer", settings.regulator_delivery_interval_seconds, self.deliver_due)
        self._http: httpx.AsyncClient | None = None

    # -- export ---------------------------------------------------------------------

    async def export(
        self,
        *,
        since: str | datetime,
        until: str | datetime | None = None,
        fmt: str,
        actor_kind: str = "system",
        actor_id: int | None = None,
    ) -> Export:
        """The records created in [since, until) (until: default now), oldest first; a time
        without a zone is read in the configured zone. The export is audited and marks the
        records it delivered."""
        if fmt not in FORMATS:
            raise BadRequest(f"format must be one of {', '.join(FORMATS)}")
        since = parse_when(since, self.zone)
        until = parse_when(until, self.zone) if until is not None else self.clock.now()
        if until <= since:
            raise BadRequest("until must be after since", Code.INVALID_PERIOD)
        bodies: list[str] = []
        after = newly = 0
        while True:
            async with self.db.transaction() as conn:
                rows = await store.between(conn, since, until, after=after, limit=EXPORT_PAGE)
                newly += await store.mark_exported(conn, [r["id"] for r in rows], self.clock.now())
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
                detail={
                    "since": _iso(since),
                    "until": _iso(until),
                    "format": fmt,
                    "records": len(bodies),
                    "first_delivered": newly,
                },
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
        return Export(text, FORMATS[fmt], len(bodies), newly, since, until)

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

    async def unexported(self) -> int:
        async with self.db.transaction() as conn:
            return await store.unexported_count(conn)

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
