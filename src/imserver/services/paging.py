"""Keyset paging for operator lists: opaque cursors, page-size caps, one envelope.

Every operator list answers ``{"items": [...], "total": N, "next_cursor": ...}``.
A page is chosen by a *keyset*: the sort key and id of the last row seen, so a
row inserted while an operator pages never shifts the pages after it (offset
paging would repeat or skip a row), and each page costs an index seek.

The cursor is opaque to callers: URL-safe base64 of a small JSON object naming
the list it came from, the sort it was made for, and the last row's key. A
cursor from another list (or the same list sorted another way) is refused with
``cursor_mismatch``; one that does not decode, with ``invalid_cursor``. Cursors
carry no secret and grant nothing: every page is filtered and role-checked as
the first one was.

Pure: no I/O, so it is tested without a database.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.errors import BadRequest, Code

PAGE_DEFAULT = 50  # rows per page unless asked: one screen of a work queue
PAGE_CAP = 200  # the most rows one page may hold: bounds one query and one response
MAX_CURSOR_CHARS = 512  # a cursor holds a list name, a sort name and two values


@dataclass(frozen=True, slots=True)
class PageRequest:
    """A validated page request: which list, which order, where to start, how many."""

    list_kind: str
    sort: str
    descending: bool
    after: tuple[Any, int] | None  # (sort key, id) of the last row of the previous page
    limit: int


def _encode_value(value: Any) -> Any:
    return {"t": value.isoformat()} if isinstance(value, datetime) else value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        return datetime.fromisoformat(value["t"])
    if isinstance(value, (int, str)) or value is None:
        return value
    raise ValueError("unsupported cursor value")


def encode_cursor(list_kind: str, sort: str, descending: bool, key: Any, row_id: int) -> str:
    body = {"l": list_kind, "s": sort, "d": descending, "k": [_encode_value(key), row_id]}
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, list_kind: str, sort: str, descending: bool) -> tuple[Any, int]:
    """The (key, id) a cursor resumes after; 422 if it is not one of this list's cursors."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = json.loads(raw)
        kind, made_for, desc, (key, row_id) = body["l"], body["s"], body["d"], body["k"]
        key = _decode_value(key)
        if not isinstance(row_id, int) or not isinstance(kind, str) or not isinstance(made_for, str):
            raise ValueError("malformed")
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError, AttributeError) as exc:
        raise BadRequest("the cursor is not one this server issued", Code.INVALID_CURSOR) from exc
    if kind != list_kind:
        raise BadRequest(
            f"this cursor belongs to the {kind} list, not {list_kind}", Code.CURSOR_MISMATCH, cursor_list=kind
        )
    if made_for != sort or desc != descending:
        raise BadRequest("this cursor was issued for another sort order; start again without it", Code.CURSOR_MISMATCH)
    return key, row_id


def page_request(
    list_kind: str,
    *,
    sort: str,
    descending: bool = False,
    cursor: str | None = None,
    limit: int = PAGE_DEFAULT,
    cap: int = PAGE_CAP,
) -> PageRequest:
    """Validate a list call's paging arguments (422 page_too_large, invalid_cursor, cursor_mismatch)."""
    if limit < 1:
        raise BadRequest("limit must be at least 1", Code.PAGE_TOO_LARGE, cap=cap)
    if limit > cap:
        raise BadRequest(f"limit must be at most {cap}", Code.PAGE_TOO_LARGE, cap=cap)
    after = decode_cursor(cursor, list_kind, sort, descending) if cursor else None
    return PageRequest(list_kind, sort, descending, after, limit)


def envelope(request: PageRequest, rows: list, total: int, items: list) -> dict:
    """The list envelope. `rows` are the store's rows (up to limit + 1, each with
    ``sort_key`` and ``row_id``); `items` their views, in the same order."""
    more = len(rows) > request.limit
    next_cursor = None
    if more:
        last = rows[request.limit - 1]
        next_cursor = encode_cursor(request.list_kind, request.sort, request.descending, last["sort_key"], last["row_id"])
    return {"items": items[: request.limit], "total": total, "next_cursor": next_cursor}
