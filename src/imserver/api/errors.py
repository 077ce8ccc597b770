"""How errors leave over HTTP: the 422 body, its OpenAPI schema, and the last-resort 500.

* :func:`validation_body`: a request that fails validation gets
  ``{"code", "detail", "errors": [{"loc", "msg"}]}``. The code is
  ``invalid_field`` when every error is a value refused by the shared field
  types (:mod:`imserver.domain.fields`), ``malformed`` otherwise.
* :func:`install_error_schema`: the OpenAPI documents that body for every 422,
  in place of FastAPI's default ``HTTPValidationError`` (which nothing sends).
* :class:`CatchAll`: an exception no handler knew becomes one 500 JSON answer
  and one log line with its traceback; the connection stays open for the next
  request. (A Starlette ``Exception`` handler would run in
  ``ServerErrorMiddleware``, which re-raises after answering: the server then
  logs a second traceback and drops the keep-alive connection.)
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from ..domain.errors import Code
from .asgi import TrackedSend, send_json_error
from ..domain.fields import INT64_MAX, INT64_MIN, INVALID_FIELD_ERRORS

log = logging.getLogger("imserver")

VALIDATION_DETAIL = "the request body or parameters are invalid"

# The 422 body as the OpenAPI shows it: the same keys validation_body writes.
VALIDATION_SCHEMA: dict[str, Any] = {
    "title": "HTTPValidationError",
    "type": "object",
    "required": ["code", "detail", "errors"],
    "properties": {
        "code": {"type": "string", "enum": [Code.MALFORMED.value, Code.INVALID_FIELD.value]},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}


def validation_body(errors: list[dict]) -> dict[str, Any]:
    """The 422 body for pydantic's `errors`; never echoes the refused input back."""
    invalid_field = bool(errors) and all(e.get("type") in INVALID_FIELD_ERRORS for e in errors)
    return {
        "code": (Code.INVALID_FIELD if invalid_field else Code.MALFORMED).value,
        "detail": VALIDATION_DETAIL,
        "errors": [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in errors],
    }


def install_error_schema(app: FastAPI) -> None:
    """Make the generated OpenAPI describe the 422 body this server sends, and the exact id bounds."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schemas = schema.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = VALIDATION_SCHEMA
                schemas.pop("ValidationError", None)  # only the default HTTPValidationError used it
            _exact_bounds(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _exact_bounds(node: Any) -> None:
    """FastAPI's OpenAPI model holds minimum/maximum as floats, which turns 2**63-1
    into 2**63 (out of range); put the exact integers back."""
    if isinstance(node, dict):
        for key in ("minimum", "maximum"):
            value = node.get(key)
            if isinstance(value, float) and value.is_integer():
                node[key] = max(INT64_MIN, min(INT64_MAX, int(value)))
        for child in node.values():
            _exact_bounds(child)
    elif isinstance(node, list):
        for child in node:
            _exact_bounds(child)


class CatchAll:
    """ASGI middleware: an unexpected exception becomes a 500 answer, logged once."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception:  # noqa: BLE001 - the last resort: every other error has a handler
            if tracked.started:
                # Half an answer is out: only closing the connection tells the client,
                # and the server logs the traceback as it closes it (once).
                raise
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            await send_json_error(send, 500, Code.INTERNAL, "internal error")
