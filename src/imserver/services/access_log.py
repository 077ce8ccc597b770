"""Sign-in and network logs (network logs kept at least six months).

Every user and operator sign-in, failed sign-in and sign-out, and every
WebSocket session's start and end (with its close code) is recorded with the
time, the client's address (as resolved through the trusted proxies), the user
agent and the node. A WebSocket session costs one row when it is
authenticated and one when it ends, queued and written in the background many
to a transaction (services/row_queue.py), so the socket never waits on them and
a burst of reconnects is a few commits, not one per socket; a row the database
could not take stays queued until it can. Nothing is written per frame.

Compliance reads the log by principal and period (``GET /admin/v1/access-log``)
and exports it; the user dossier shows a user's recent sign-ins.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass
from datetime import datetime

from collections.abc import Awaitable, Callable

from ..domain.clock import Clock
from ..domain.errors import BadRequest, Code, ImserverError
from ..domain.principals import Principal
from ..store import access_log as store
from ..store.db import Database
from .row_queue import RowQueue

log = logging.getLogger("imserver.access_log")

EVENTS = ("signin", "signin_failed", "signout", "ws_open", "ws_close")
COLUMNS = ("id", "at", "event", "principal_kind", "principal_id", "handle", "ip", "user_agent", "node",
           "connection", "close_code", "detail")
PAGE_MAX = 1000  # rows per read (and per export page)
UNKNOWN_HANDLE = "unknown_handle"  # detail of a failed sign-in under a handle no account has
USER_AGENT_CHARS = 256  # the column's width: longer agents are cut, never refused
EXPORT_MAX = 100_000  # rows per export; a longer period is exported in several


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from, as recorded."""

    ip: str | None
    user_agent: str | None


def _view(row: dict) -> dict:
    return {k: (row[k].isoformat() if isinstance(row[k], datetime) else row[k]) for k in COLUMNS}


class AccessLog:
    def __init__(self, db: Database, clock: Clock, node: str, *, on_drop: Callable[[], None] = lambda: None) -> None:
        self.db = db
        self.clock = clock
        self.node = node[:128]
        self.queue = RowQueue("network-log", self._write_rows, on_drop=on_drop)

    async def record(
        self,
        event: str,
        *,
        principal_kind: str,
        principal_id: int | None,
        origin: Origin,
        handle: str | None = None,
        connection: str | None = None,
        close_code: int | None = None,
        detail: str | None = None,
    ) -> None:
        handle = handle[:64] if handle else None
        async with self.db.transaction() as conn:
            if principal_id is None and handle:  # a failed sign-in: whose handle was tried, if anyone's
                principal_id = await store.principal_by_handle(conn, principal_kind, handle)
                if principal_id is None:
                    # No such account: what was typed may be anything (a password in the
                    # wrong field), so it is not kept; the attempt, address and agent are.
                    # A refusal other than the password's (throttled) keeps its own code.
                    handle = None
                    detail = UNKNOWN_HANDLE if detail in (None, Code.INVALID_CREDENTIALS.value) else detail
            await store.add(
                conn,
                **self._row(event, principal_kind, principal_id, origin, handle, connection, close_code, detail),
            )

    def _row(self, event, principal_kind, principal_id, origin: Origin, handle, connection, close_code, detail) -> dict:
        return {
            "at": self.clock.now(),
            "event": event,
            "principal_kind": principal_kind,
            "principal_id": principal_id,
            "handle": handle,
            "ip": origin.ip[:64] if origin.ip else None,
            "user_agent": origin.user_agent[:USER_AGENT_CHARS] if origin.user_agent else None,
            "node": self.node,
            "connection": connection,
            "close_code": close_code,
            "detail": detail,
        }

    async def sign_in(self, principal_kind: str, handle: str, origin: Origin, attempt: Awaitable[tuple]) -> tuple:
        """Await a sign-in and record how it went; its result or error passes through unchanged.

        The result's second item is the principal (operators) or its id (users).
        A closed account's correct password is a sign-in too, with an appeal-only
        token (``account_closed``, the error carrying the user's id); any other
        refusal (wrong password, throttled) is a failed sign-in with its code.
        """
        try:
            result = await attempt
        except ImserverError as exc:
            closed_id = exc.extra.get("user_id") if exc.code is Code.ACCOUNT_CLOSED else None
            if isinstance(closed_id, int):
                await self.record(
                    "signin", principal_kind=principal_kind, principal_id=closed_id, handle=handle, origin=origin,
                    detail=exc.code.value,
                )
            else:
                await self.record(
                    "signin_failed", principal_kind=principal_kind, principal_id=None, handle=handle, origin=origin,
                    detail=exc.code.value,
                )
            raise
        who = result[1]
        principal_id = who.id if isinstance(who, Principal) else who
        await self.record("signin", principal_kind=principal_kind, principal_id=principal_id, handle=handle, origin=origin)
        return result

    async def sign_out(self, principal: Principal, origin: Origin, *, detail: str | None = None) -> None:
        """A token ended by its holder (or by the console's idle timeout: ``detail``)."""
        await self.record(
            "signout", principal_kind=principal.kind.value, principal_id=principal.id, origin=origin, detail=detail
        )

    def record_later(
        self,
        event: str,
        *,
        principal_kind: str,
        principal_id: int,
        origin: Origin,
        connection: str | None = None,
        close_code: int | None = None,
    ) -> None:
        """Queue a row for the background writer (WebSocket sessions: the socket does not wait).

        The row's time is now, not when it is written (services/row_queue.py).
        """
        self.queue.add(self._row(event, principal_kind, principal_id, origin, None, connection, close_code, None))

    async def _write_rows(self, rows: list[dict]) -> None:
        async with self.db.transaction() as conn:
            await store.add_many(conn, rows)

    async def drain(self) -> None:
        """Write what is queued (on shutdown)."""
        await self.queue.stop()

    # -- reading ------------------------------------------------------------------------------

    async def read(
        self,
        *,
        principal_kind: str | None = None,
        principal_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> dict:
        """One page, oldest first; `next_after` continues it."""
        if principal_kind not in (None, "user", "operator"):
            raise BadRequest("principal_kind is user or operator")
        if after < 0 or not 1 <= limit <= PAGE_MAX:
            raise BadRequest(f"after must be >= 0 and limit 1 to {PAGE_MAX}")
        if since and until and since >= until:
            raise BadRequest("since must be before until")
        async with self.db.read() as conn:
            rows = await store.query(
                conn,
                principal_kind=principal_kind,
                principal_id=principal_id,
                since=since,
                until=until,
                after=after,
                limit=limit,
            )
        entries = [_view(r) for r in rows]
        return {"entries": entries, "next_after": entries[-1]["id"] if len(entries) == limit else None}

    async def export(self, *, fmt: str, **filters) -> tuple[str, int]:
        """Every matching row as JSON lines or CSV: (body, count)."""
        if fmt not in ("jsonl", "csv"):
            raise BadRequest("format is jsonl or csv")
        rows: list[dict] = []
        after = 0
        while len(rows) < EXPORT_MAX:
            page = await self.read(after=after, limit=PAGE_MAX, **filters)
            rows.extend(page["entries"])
            if page["next_after"] is None:
                break
            after = page["next_after"]
        rows = rows[:EXPORT_MAX]
        return render_rows(rows, COLUMNS, fmt), len(rows)


def render_rows(rows: list[dict], columns: tuple[str, ...], fmt: str) -> str:
    """Rows as JSON lines or as CSV with a header row."""
    if fmt == "jsonl":
        return "".join(json.dumps({k: r.get(k) for k in columns}, ensure_ascii=False) + "\n" for r in rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(k) is None else r.get(k) for k in columns])
    return out.getvalue()
