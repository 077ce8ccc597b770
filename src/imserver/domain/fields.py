"""Constrained request types shared by every route, user and operator side.

Every value a request carries ends up in a database column or a query, and
both databases refuse some values with an error the route did not expect (a
500): PostgreSQL refuses NUL in text, both refuse integers past 64 bits
(PostgreSQL ``integer`` columns past 32). These types refuse such values at
the edge instead, as a 422 with the code ``invalid_field``:

* :data:`Text`: any text field or query parameter; no NUL, no lone surrogate.
  Length limits stay with each field (``Field(max_length=...)``).
* :data:`Id`: a row id in a path, a query or a body: 1 .. 2**63-1.
* :data:`Cursor`: an ``after``/``before`` paging cursor: 0 .. 2**63-1.
* :data:`Int32`: a value stored in an ``integer`` column (agreement versions).
* :func:`bounded`: any other integer with bounds of its own (inside int64).
* :data:`Instant`: a date-time between 1970 and 9000 (UTC; no zone means UTC),
  so no conversion or arithmetic on it can leave the calendar (a 500).

The bounds are published in the OpenAPI (``minimum``/``maximum``), so clients
and property tests see the same range the server enforces.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from .errors import Code

INT64_MAX = 2**63 - 1  # BIGINT (PostgreSQL) and INTEGER (SQLite) are signed 64-bit
INT64_MIN = -(2**63)
INT32_MAX = 2**31 - 1  # PostgreSQL `integer` columns

# Pydantic error types the 422 handler reports as `invalid_field`: ours, and
# pydantic's own refusal of a string it cannot encode (a lone surrogate in JSON).
INVALID_FIELD_ERRORS = frozenset({Code.INVALID_FIELD.value, "string_unicode"})


def text_fault(value: str) -> str | None:
    """Why `value` cannot be stored as text on both databases (None: it can).

    The one rule, for the request models (:data:`Text`) and for the console's
    forms, which are read without them."""
    if "\x00" in value:
        return "text must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "text must not contain lone surrogates"
    return None


def _clean_text(value: str) -> str:
    fault = text_fault(value)
    if fault is not None:
        raise PydanticCustomError(Code.INVALID_FIELD.value, fault)
    return value


Text = Annotated[str, AfterValidator(_clean_text)]


def bounded(low: int, high: int):
    """An int type refused (422 ``invalid_field``) outside [low, high], with the range in the schema."""
    if not INT64_MIN <= low <= high <= INT64_MAX:
        raise ValueError("bounds must lie inside the database's 64-bit range")

    def check(value: int) -> int:
        if not low <= value <= high:
            raise PydanticCustomError(
                Code.INVALID_FIELD.value, "must be between {low} and {high}", {"low": low, "high": high}
            )
        return value

    return Annotated[int, AfterValidator(check), WithJsonSchema({"type": "integer", "minimum": low, "maximum": high})]


Id = bounded(1, INT64_MAX)
Cursor = bounded(0, INT64_MAX)
Int32 = bounded(0, INT32_MAX)


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 12, 31, tzinfo=UTC)  # far past any real expiry, far below year 9999's overflow


def _instant(value: datetime) -> datetime:
    try:
        utc = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise PydanticCustomError(Code.INVALID_FIELD.value, "must be a date-time between 1970 and 9000")
    return value


Instant = Annotated[datetime, AfterValidator(_instant)]
