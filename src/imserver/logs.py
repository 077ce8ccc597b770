"""Logging: one format for imserver's own lines, uvicorn's, the access log and Alembic's.

structlog renders every record, whether it came from a ``structlog`` logger or
from the standard library's ``logging`` (which imserver's modules, uvicorn and
Alembic use): JSON lines (one object per line, for a log collector) when the
output is not a terminal, readable coloured text on a terminal, or what
``IMSERVER_LOG_FORMAT`` says. Every line carries the time (UTC, ISO 8601), the
level, the logger, the node id and, inside an HTTP request, its request id and
the signed-in user or operator id once known.

Nothing personal goes in: no message bodies, tokens, passwords, ID numbers,
client addresses or query strings. Lines carry ids only.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from contextvars import ContextVar
from typing import TextIO

import structlog
import structlog.tracebacks

# The request being served on this task: a dict the access middleware creates
# and the auth dependencies fill in (request_id, then user_id or operator_id).
# A dict, not separate variables, so an id learnt deep inside the request is seen
# by the access line the middleware writes at its end.
_request: ContextVar[dict | None] = ContextVar("imserver_request", default=None)

FORMATS = ("json", "text")


def begin_request(request_id: str) -> tuple[dict, object]:
    """Start a request's log context; returns it and the token for :func:`end_request`."""
    ctx = {"request_id": request_id}
    return ctx, _request.set(ctx)


def end_request(token) -> None:
    _request.reset(token)


def note_actor(*, user_id: int | None = None, operator_id: int | None = None) -> None:
    """Record who is calling, for every later line of this request (and its access line)."""
    ctx = _request.get()
    if ctx is None:
        return
    if user_id is not None:
        ctx["user_id"] = user_id
    if operator_id is not None:
        ctx["operator_id"] = operator_id


def _add_request(_, __, event: dict) -> dict:
    ctx = _request.get()
    if ctx:
        for key, value in ctx.items():
            event.setdefault(key, value)
    return event


def _add_node(node: str):
    def add(_, __, event: dict) -> dict:
        event.setdefault("node", node)
        return event

    return add


def _drop_color_message(_, __, event: dict) -> dict:
    """uvicorn adds a copy of its message with ANSI colours; the message itself is enough."""
    event.pop("color_message", None)
    return event


# JSON lines start with these keys, in this order, so they read well unparsed too.
FIRST_KEYS = ("time", "level", "logger", "node", "message", "request_id", "user_id", "operator_id")


def _first_keys(_, __, event: dict) -> dict:
    ordered = {k: event.pop(k) for k in FIRST_KEYS if k in event}
    ordered.update(event)
    return ordered


# uvicorn's WebSocket protocol writes these at INFO for every connection, the
# second with the client's address: one line per socket, and personal data.
_UVICORN_CONNECTION_LINES = ("connection open", "connection closed", '%s - "WebSocket %s" %s')


def _per_connection_noise(record: logging.LogRecord) -> bool:
    return not (record.name == "uvicorn.error" and record.msg in _UVICORN_CONNECTION_LINES)


def resolve_format(fmt: str, stream: TextIO) -> str:
    """``json`` or ``text``; empty means text on a terminal, JSON otherwise."""
    fmt = (fmt or "").strip().lower()
    if fmt in FORMATS:
        return fmt
    if fmt:
        raise ValueError(f"log format must be json, text or empty (automatic), not {fmt!r}")
    return "text" if stream.isatty() else "json"


def configure(*, node: str, level: str = "info", fmt: str = "", stream: TextIO | None = None) -> str:
    """Send every log record (structlog's and the standard library's) to ``stream`` in one format.

    Returns the format chosen. Safe to call again (tests do): it replaces the handlers.
    """
    stream = stream or sys.stderr
    chosen = resolve_format(fmt, stream)
    shared = [
        structlog.contextvars.merge_contextvars,
        _add_request,
        _add_node(node),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
    ]
    if chosen == "json":
        renderer = [
            # Tracebacks as data, without local variables: they may hold tokens or bodies.
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.EventRenamer("message"),
            _first_keys,
            structlog.processors.JSONRenderer(),
        ]
    else:
        renderer = [
            structlog.dev.ConsoleRenderer(
                colors=stream.isatty(),
                timestamp_key="time",
                exception_formatter=structlog.dev.plain_traceback,  # no local variables
            )
        ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _drop_color_message, *renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(_per_connection_noise)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_imserver", False):
            root.removeHandler(old)
    handler._imserver = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's own handlers would print a second, differently formatted copy;
    # its access log is replaced by imserver's (imserver.access).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every request's full URL at INFO (the webhook's and the verifier's
    # URLs may carry credentials); its warnings still come through.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return chosen


def uvicorn_log_config() -> dict:
    """uvicorn's ``log_config``: leave logging as :func:`configure` set it up."""
    return {"version": 1, "disable_existing_loggers": False}
