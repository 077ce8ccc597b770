"""Content-filter term lists, managed by the `admin` role, read by the pipeline's content filter.

Each term belongs to a named list and carries an action: ``deny`` (the message
is refused, ``content_blocked``) or ``hold`` (stored for a moderator,
``content_review``). Terms are stored as typed; the policy package normalises
width and case when the gate compiles them. After every change the gate is told
(``changed()``, an invalidation of the term lists after the commit) on every
node, and reloads; each change writes an audit row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable

from ..domain.clock import Clock
from ..domain.errors import BadRequest, Code, Conflict, NotFound
from ..domain.policy_types import FilterAction
from ..domain.principals import Principal
from ..store import audit
from ..store import terms as store
from ..store.db import Database
from . import paging

LIST_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_TERM_CHARS = 200  # the column's width
MAX_BULK = 10_000  # terms per bulk request: the benchmark's list size in one call
PAGE_MAX = 1000


def clean_term(term: str) -> str:
    term = unicodedata.normalize("NFC", term).strip()
    if not 1 <= len(term) <= MAX_TERM_CHARS or any(unicodedata.category(c).startswith("C") for c in term):
        raise BadRequest(f"a term is 1-{MAX_TERM_CHARS} printable characters", Code.INVALID_TERM, term=term[:50])
    return term


def clean_list_name(name: str) -> str:
    if not LIST_NAME_RE.match(name):
        raise BadRequest("a list name is 1-64 characters of a-z, 0-9, '_', '.', '-'", Code.INVALID_TERM)
    return name


def _action(action: str) -> FilterAction:
    try:
        return FilterAction(action)
    except ValueError as exc:
        raise BadRequest("action must be deny or hold", Code.INVALID_TERM) from exc


def _view(r) -> dict:
    return {
        "id": r["id"],
        "list_name": r["list_name"],
        "term": r["term"],
        "action": r["action"],
        "created_by": r["created_by"],
        "created_at": r["created_at"].isoformat(),
    }


class Terms:
    def __init__(self, db: Database, clock: Clock, *, changed: Callable[[], Awaitable[None]]) -> None:
        self.db = db
        self.clock = clock
        self.changed = changed

    async def list(self, *, list_name: str | None = None, cursor: str | None = None, limit: int = 100) -> dict:
        """Terms in id order (of one list, or all), in the list envelope."""
        page = paging.page_request("terms", sort="id", cursor=cursor, limit=limit, cap=PAGE_MAX)
        async with self.db.read() as conn:
            rows, total = await store.list_terms(conn, list_name=list_name, after=page.after, limit=page.limit)
        return paging.envelope(page, rows, total, [_view(r) for r in rows[: page.limit]])

    async def add(self, operator: Principal, *, list_name: str, term: str, action: str) -> dict:
        list_name, term, act = clean_list_name(list_name), clean_term(term), _action(action)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            term_id = await store.insert_term(
                conn, list_name=list_name, term=term, action=act.value, created_by=operator.id, now=now
            )
            if term_id is None:
                raise Conflict(f"list {list_name!r} has this term already", Code.TERM_EXISTS)
            await self._audit(
                conn, operator, "terms.add", now, term_id=term_id, list_name=list_name, term=term, action=act.value
            )
            row = await store.get_term(conn, term_id)
        await self.changed()
        return _view(row)

    async def add_many(self, operator: Principal, *, list_name: str, terms: list[str], action: str) -> dict:
        """Add many terms to one list in one transaction; terms already listed are skipped."""
        if len(terms) > MAX_BULK:
            raise BadRequest(f"at most {MAX_BULK} terms per request")
        list_name, act = clean_list_name(list_name), _action(action)
        cleaned = [clean_term(t) for t in terms]
        now = self.clock.now()
        async with self.db.transaction() as conn:
            added = await store.insert_many(
                conn, list_name=list_name, terms=cleaned, action=act.value, created_by=operator.id, now=now
            )
            await self._audit(
                conn,
                operator,
                "terms.add_many",
                now,
                list_name=list_name,
                action=act.value,
                given=len(cleaned),
                added=added,
            )
        if added:
            await self.changed()
        return {"list_name": list_name, "given": len(cleaned), "added": added}

    async def set_action(self, operator: Principal, term_id: int, *, action: str) -> dict:
        act = _action(action)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            row = await self._get(conn, term_id)
            await store.set_action(conn, term_id, act.value)
            await self._audit(
                conn,
                operator,
                "terms.set_action",
                now,
                term_id=term_id,
                list_name=row["list_name"],
                before=row["action"],
                after=act.value,
            )
            row = await store.get_term(conn, term_id)
        await self.changed()
        return _view(row)

    async def remove(self, operator: Principal, term_id: int) -> None:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            row = await self._get(conn, term_id)
            await store.delete_term(conn, term_id)
            # The term itself goes into the audit row: the list's history stays reconstructible.
            await self._audit(
                conn,
                operator,
                "terms.remove",
                now,
                term_id=term_id,
                list_name=row["list_name"],
                term=row["term"],
                action=row["action"],
            )
        await self.changed()

    async def _get(self, conn, term_id: int):
        row = await store.get_term(conn, term_id)
        if row is None:
            raise NotFound(f"no term {term_id}", Code.TERM_NOT_FOUND)
        return row

    async def _audit(self, conn, operator: Principal, what: str, now, **detail) -> None:
        await audit.append(
            conn,
            at=now,
            actor_kind="operator",
            actor_id=operator.id,
            action=what,
            subject="filter_terms",
            detail=detail,
        )
