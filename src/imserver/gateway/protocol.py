"""The imserver wire protocol, version 1: frames, strict decoding, encoding.

Sans-I/O: strings and bytes in, frame objects out, and back. Nothing here reads
a socket, awaits, or knows a store or service; the server's frames are built
here too, from the plain event views services hand to fan-out
(:func:`msg_frame`, :func:`post_frame`, :func:`user_event_frame`).
``gateway/session.py`` speaks it, ``gateway/connection.py`` drives the session
and ``gateway/endpoint.py`` is the only module that touches the WebSocket
library. ``docs/protocol.md`` is written from this module; change both together.

Rules of this file
------------------
1. A peer's mistake never raises out of here except as :class:`ProtocolError`,
   whose ``code`` is a stable :class:`~imserver.domain.errors.Code` and whose
   ``ref`` is the offending frame's ``id`` when it could be read. The caller
   turns it into an ``error`` frame (:func:`error_frame`) and keeps serving.
   Anything else escaping :func:`decode` is our bug.
2. Client input is decoded strictly (:func:`decode`): JSON text only, no
   NaN/Infinity, no duplicate keys, integers within +-(2**53-1) (what a
   JavaScript client can hold exactly), no float or boolean where an integer
   is expected, no unknown frame type or field, every string within its limit.
3. Server frames are decoded leniently (:func:`decode_server`, used by the SDK):
   unknown fields are ignored, so the server may add fields without breaking
   older clients. Adding a field to a server frame is compatible; adding a
   client frame field, or changing any meaning, bumps :data:`PROTOCOL_VERSION`.
4. Field names of the dataclasses are the JSON names (``Msg.sender_*`` is
   the one exception: it is ``"from": {"id", "nickname"}`` on the wire).

Theory of operation
-------------------
:func:`decode` first hands the text to a compiled validator: msgspec structs
(``forbid_unknown_fields``, one per client frame type, tagged by ``type``,
with the length and range limits as constraints), which parse and check a
valid frame in one pass of C. What msgspec does not check (a repeated key, a
NUL, exactly one recipient kind) is checked on its result and the raw text,
cautiously: any doubt sends the frame on. A frame the validator does not accept
goes to the field table below, which is the reference for what is accepted and
the only source of error codes, details and refs. So refused frames cost
what they did (plus the failed fast attempt), valid ones about half.

The field table parses with one prebuilt stdlib ``json.JSONDecoder`` whose hooks
do not raise but leave markers (a ``_Bad`` value for NaN/Infinity and over-long
integers, a ``_Duplicated`` dict for an object with a repeated key). Parsing
therefore always completes when the text is JSON, the frame's ``id`` can be
read, and the marker is reported as an error with that ``ref`` by the field
check that meets it. Each frame type is then validated against a table
(``_SPECS``: field name -> check, default), never a chain of ifs.
Encoding uses orjson, built from small dicts, ``None`` optionals omitted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeAlias

import msgspec
import orjson

from imserver.domain.errors import Code

if TYPE_CHECKING:
    from imserver.services.events import InboxEvent, MessageView, PostView, UserEvent

PROTOCOL_VERSION = 1
"""The version this module speaks; a client states it in ``auth.protocol``."""

SUPPORTED_PROTOCOLS = frozenset({PROTOCOL_VERSION})
"""Versions :func:`decode` accepts in ``auth.protocol``; others get ``invalid_field``."""

# -- limits (characters, i.e. code points, not bytes) ---------------------------------
MAX_SAFE_INT = 2**53 - 1  # largest integer a JS Number (IEEE double) holds exactly
_MAX_INT_TOKEN = len(str(-MAX_SAFE_INT))  # 17: longer int tokens are out of range unparsed
MAX_BODY_CHARS = 8000  # a long chat message; 8000 UTF-8 chars <= 32 KB, half the 64 KiB frame cap
MAX_ID_CHARS = 64  # frame `id`: a client correlation token (a UUID is 36)
MAX_CLIENT_MSG_ID_CHARS = 64  # idempotency key, unique per sender; a UUID or ULID fits
MAX_TOKEN_CHARS = 512  # bearer tokens are ~43-char urlsafe secrets; room for JWT-ish formats
MAX_NONCE_CHARS = 64  # ping nonce is echoed back; keep the echo small
DEFAULT_SYNC_LIMIT = 500  # one replay page: ~500 msgs x ~300 B ~ 150 KB of outbound queue
MAX_SYNC_LIMIT = 1000  # caps a page so one sync cannot fill the bounded outbound queue

# -- close codes (RFC 6455 section 7.4; 4000-4999 are ours) ---------------------------
CLOSE_NORMAL = 1000  # orderly close by either side
CLOSE_GOING_AWAY = 1001  # server shutting down or restarting: reconnect and sync
CLOSE_PROTOCOL_ERROR = 1002  # WebSocket-level violation (bad opcode, masking, ...)
CLOSE_INVALID_DATA = 1007  # a text frame that is not valid UTF-8 (gateway/ws_limits.py)
CLOSE_POLICY = 1008  # auth refused (bad, expired or unknown token), or too many frames / not reading
CLOSE_TOO_BIG = 1009  # a frame over the maximum frame size (default 64 KiB)
CLOSE_AUTH_TIMEOUT = 4001  # no valid `auth` within 10 s of the upgrade
CLOSE_REVOKED = 4003  # token revoked or expired, or account closed, while connected
CLOSE_SLOW_CONSUMER = 4008  # outbound queue over its byte bound; reconnect and sync by cursor
# A second `auth` is not a close: it gets an `out_of_order` error frame and the
# connection keeps serving.


class ProtocolError(Exception):
    """The peer sent something this protocol does not accept; always the peer's fault.

    ``code`` is stable (programs match on it), ``detail`` is human text that may
    change, ``ref`` is the offending frame's ``id`` if it could be read.
    """

    def __init__(self, code: Code, detail: str, ref: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.ref = ref

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.value!r}, {self.detail!r}, ref={self.ref!r})"


# ======================================================================================
# Client frames
# ======================================================================================


@dataclass(frozen=True, slots=True)
class Recipient:
    """``to`` of a send: ``{"user": id}`` or ``{"group": id}`` on the wire."""

    kind: Literal["user", "group"]
    id: int


@dataclass(frozen=True, slots=True)
class Auth:
    """First frame: the bearer token (never in the URL) and the protocol version."""

    type: ClassVar[str] = "auth"
    token: str
    protocol: int = PROTOCOL_VERSION
    # Resume cursors: with them the server replays from here before anything
    # live, so no live frame can overtake the replay (a `sync` right after
    # `hello` leaves a window where one can). Ends with `synced` (ref = this id).
    inbox_after: int | None = None
    posts_after: int | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Send:
    """A chat message to a user or a group; answered by an ``ack``."""

    type: ClassVar[str] = "send"
    client_msg_id: str
    to: Recipient
    body: str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Sync:
    """Replay the inbox after ``inbox_after`` (and posts after ``posts_after``)."""

    type: ClassVar[str] = "sync"
    inbox_after: int
    posts_after: int | None = None
    limit: int = DEFAULT_SYNC_LIMIT
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Received:
    """Cumulative ack: every inbox entry up to and including ``seq`` arrived."""

    type: ClassVar[str] = "received"
    seq: int
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Read:
    """Read receipt: the user has read ``conversation_id`` up to ``message_id``."""

    type: ClassVar[str] = "read"
    conversation_id: int
    message_id: int
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Typing:
    """The user is typing in ``conversation_id``; ephemeral, dropped first."""

    type: ClassVar[str] = "typing"
    conversation_id: int
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    """Application-level liveness check; answered by ``pong`` echoing ``nonce``."""

    type: ClassVar[str] = "ping"
    nonce: str | int | None = None
    id: str | None = None


ClientFrame: TypeAlias = Auth | Send | Sync | Received | Read | Typing | Ping

# ======================================================================================
# Server frames
# ======================================================================================


@dataclass(frozen=True, slots=True)
class Hello:
    """Answer to a good ``auth``: who you are, which node, your cursors."""

    type: ClassVar[str] = "hello"
    user_id: int
    node: str
    inbox_seq: int  # the newest seq in the user's inbox
    received_seq: int  # the newest seq the user's devices acked with `received`
    server_time: str  # ISO 8601, UTC
    protocol: int = PROTOCOL_VERSION


AckStatus: TypeAlias = Literal["accepted", "held", "rejected"]


@dataclass(frozen=True, slots=True)
class Ack:
    """Answer to a ``send``, only after its commit (or its rejection)."""

    type: ClassVar[str] = "ack"
    client_msg_id: str
    status: AckStatus
    message_id: int | None = None
    conversation_id: int | None = None
    seq: int | None = None  # the sender's own inbox seq for this message
    sent_at: str | None = None
    duplicate: bool = False  # True: a retry of an already-stored client_msg_id
    reason: str | None = None  # a Code when held or rejected
    detail: str | None = None
    retry_after: float | None = None  # seconds, with reason rate_limited
    ref: str | None = None  # the send frame's id


@dataclass(frozen=True, slots=True)
class Msg:
    """A delivered message, at position ``seq`` of the receiver's inbox."""

    type: ClassVar[str] = "msg"
    seq: int
    message_id: int
    conversation_id: int
    conversation_kind: str
    sender_id: int  # wire: from.id
    sender_nickname: str  # wire: from.nickname
    body: str
    client_msg_id: str
    sent_at: str


@dataclass(frozen=True, slots=True)
class Synced:
    """End of one replay page; ``complete=False`` means sync again from ``inbox_seq``."""

    type: ClassVar[str] = "synced"
    inbox_seq: int
    complete: bool
    ref: str | None = None
    posts_seq: int | None = None  # posts-stream cursor reached, when posts were synced


@dataclass(frozen=True, slots=True)
class Receipt:
    """``user_id`` has read ``conversation_id`` up to ``message_id``."""

    type: ClassVar[str] = "receipt"
    conversation_id: int
    user_id: int
    message_id: int


@dataclass(frozen=True, slots=True)
class TypingEvent:
    """``user_id`` is typing in ``conversation_id`` (wire type ``typing``)."""

    type: ClassVar[str] = "typing"
    conversation_id: int
    user_id: int


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should be told (a warning sanction, a shutdown, ...)."""

    type: ClassVar[str] = "notice"
    kind: str
    text: str
    data: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Error:
    """A frame was refused; the connection keeps serving."""

    type: ClassVar[str] = "error"
    code: str
    detail: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Pong:
    """Answer to ``ping``."""

    type: ClassVar[str] = "pong"
    nonce: str | int | None = None


@dataclass(frozen=True, slots=True)
class Post:
    """A public-account post at ``position`` of the global posts stream.

    ``account`` is ``{"id", "name", "news_badge"}``: the badge (Art. 7 \u00b63) is
    ``"publish"``, ``"reprint"`` or null, derived by the server from the account's
    news permission, never from anything the account sends. ``source`` is set on
    reprints: ``{"name", "url", "author", "title"}``.
    """

    type: ClassVar[str] = "post"
    position: int
    post_id: int
    account: dict[str, Any]
    kind: str  # ordinary | news_original | news_reprint
    title: str
    body: str
    posted_at: str
    source: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Tombstone:
    """Post ``post_id`` was taken down: clients remove it; sync no longer returns it."""

    type: ClassVar[str] = "tombstone"
    position: int
    post_id: int
    account_id: int


ServerFrame: TypeAlias = Hello | Ack | Msg | Synced | Receipt | TypingEvent | Notice | Error | Pong | Post | Tombstone


def error_frame(exc: ProtocolError) -> Error:
    """The ``error`` frame that answers a :class:`ProtocolError`."""
    return Error(code=exc.code.value, detail=exc.detail, ref=exc.ref)


# ======================================================================================
# Strict decoding of client frames
# ======================================================================================


class _Bad:
    """A JSON token we parsed but refuse (NaN, Infinity, an over-long integer)."""

    __slots__ = ("code", "detail")

    def __init__(self, code: Code, detail: str) -> None:
        self.code = code
        self.detail = detail


class _Duplicated(dict):  # type: ignore[type-arg]
    """An object that repeated a key; reported with the frame's ref when readable."""

    __slots__ = ("key",)
    key: str


_BIG_INT = _Bad(Code.INVALID_FIELD, f"integer outside +-{MAX_SAFE_INT}")


def _parse_constant(name: str) -> _Bad:
    return _Bad(Code.BAD_JSON, f"{name} is not JSON")


def _parse_int(token: str) -> int | _Bad:
    # Over-long tokens are surely out of range: never feed them to int() (quadratic,
    # and past 4300 digits it raises ValueError).
    return int(token) if len(token) <= _MAX_INT_TOKEN else _BIG_INT


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen: set[str] = set()
    dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    marked = _Duplicated(obj)
    marked.key = dup
    return marked


# One decoder, built once: json.loads(s, **hooks) would build a JSONDecoder per call.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_constant=_parse_constant, parse_int=_parse_int
)

_MISSING: Any = object()
_REQUIRED: Any = object()


def _show(value: object, limit: int = 32) -> str:
    """A short repr of peer input for a detail text (never echo a whole body)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_JSON_KIND = {
    type(None): "null",
    str: "a string",
    int: "an integer",
    dict: "an object",
    list: "an array",
}


def _wrong(value: object, name: str, expected: str, ref: str | None) -> ProtocolError:
    """The error for a value of the wrong type, naming what was found."""
    if isinstance(value, _Bad):
        return ProtocolError(value.code, f"{name}: {value.detail}", ref)
    if isinstance(value, _Duplicated):
        return ProtocolError(Code.BAD_JSON, f"{name}: duplicate key {_show(value.key)}", ref)
    if isinstance(value, bool):
        found = "a boolean"
    elif isinstance(value, float):
        found = "a number with a fraction or exponent"
    else:
        found = _JSON_KIND.get(type(value), type(value).__name__)
    return ProtocolError(Code.INVALID_FIELD, f"{name} must be {expected}, not {found}", ref)


Check: TypeAlias = Callable[[Any, str, "str | None"], Any]


def _int(lo: int, hi: int = MAX_SAFE_INT) -> Check:
    """An integer in [lo, hi]; booleans and floats (even 1.0) are not integers."""

    def check(value: Any, name: str, ref: str | None) -> int:
        if type(value) is not int:
            raise _wrong(value, name, "an integer", ref)
        if not lo <= value <= hi:
            raise ProtocolError(Code.INVALID_FIELD, f"{name} must be in [{lo}, {hi}]", ref)
        return value

    return check


def _str_ok(value: str, name: str, lo: int, hi: int, ref: str | None) -> str:
    n = len(value)
    if n > hi:
        raise ProtocolError(Code.FIELD_TOO_LARGE, f"{name} is over {hi} characters", ref)
    if n < lo:
        raise ProtocolError(Code.INVALID_FIELD, f"{name} must not be empty", ref)
    if "\x00" in value:  # PostgreSQL text cannot store NUL
        raise ProtocolError(Code.INVALID_FIELD, f"{name} contains a NUL character", ref)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape: not Unicode text
            raise ProtocolError(
                Code.INVALID_FIELD, f"{name} contains an unpaired surrogate", ref
            ) from None
    return value


def _str(lo: int, hi: int) -> Check:
    """A string of lo..hi characters, valid Unicode, without NUL."""

    def check(value: Any, name: str, ref: str | None) -> str:
        if type(value) is not str:
            raise _wrong(value, name, "a string", ref)
        return _str_ok(value, name, lo, hi, ref)

    return check


def _nullable(inner: Check) -> Check:
    """``inner``, or JSON null meaning "not given"."""

    def check(value: Any, name: str, ref: str | None) -> Any:
        return None if value is None else inner(value, name, ref)

    return check


_NONCE_STR = _str(0, MAX_NONCE_CHARS)
_NONCE_INT = _int(-MAX_SAFE_INT)


def _nonce(value: Any, name: str, ref: str | None) -> str | int | None:
    if value is None:
        return None
    if type(value) is str:
        return _NONCE_STR(value, name, ref)
    if type(value) is int:
        return _NONCE_INT(value, name, ref)
    raise _wrong(value, name, "a string, an integer or null", ref)


def _protocol(value: Any, name: str, ref: str | None) -> int:
    if type(value) is not int:
        raise _wrong(value, name, "an integer", ref)
    if value not in SUPPORTED_PROTOCOLS:
        supported = ", ".join(map(str, sorted(SUPPORTED_PROTOCOLS)))
        raise ProtocolError(
            Code.INVALID_FIELD,
            f"protocol {_show(value)} unsupported; this server speaks {supported}",
            ref,
        )
    return value


_RECIPIENT_ID = _int(1)
_RECIPIENT_KINDS = ("user", "group")


def _recipient(value: Any, name: str, ref: str | None) -> Recipient:
    if type(value) is not dict:
        raise _wrong(value, name, 'an object {"user": id} or {"group": id}', ref)
    if len(value) == 1:
        ((kind, rid),) = value.items()
        if kind in _RECIPIENT_KINDS:
            return Recipient(kind, _RECIPIENT_ID(rid, f"{name}.{kind}", ref))
    for key in value:
        if key not in _RECIPIENT_KINDS:
            raise ProtocolError(Code.UNKNOWN_FIELD, f"{name} has unknown field {_show(key)}", ref)
    raise ProtocolError(Code.INVALID_FIELD, f'{name} must hold exactly one of "user", "group"', ref)


@dataclass(frozen=True, slots=True)
class _Spec:
    """How to decode one client frame type: its class and its fields in order."""

    cls: type
    fields: tuple[tuple[str, Check, Any], ...]  # (name, check, default or _REQUIRED)
    allowed: frozenset[str]


def _spec(cls: type, *spec: tuple[str, Check, Any]) -> _Spec:
    names = {f.name for f in fields(cls)} - {"id"}
    assert names == {name for name, _, _ in spec}, cls  # the table matches the dataclass
    return _Spec(cls, spec, frozenset(names | {"type", "id"}))


_SPECS: dict[str, _Spec] = {
    s.cls.type: s  # type: ignore[attr-defined]
    for s in (
        _spec(
            Auth,
            ("token", _str(1, MAX_TOKEN_CHARS), _REQUIRED),
            ("protocol", _protocol, PROTOCOL_VERSION),
            ("inbox_after", _nullable(_int(0)), None),
            ("posts_after", _nullable(_int(0)), None),
        ),
        _spec(
            Send,
            ("client_msg_id", _str(1, MAX_CLIENT_MSG_ID_CHARS), _REQUIRED),
            ("to", _recipient, _REQUIRED),
            ("body", _str(1, MAX_BODY_CHARS), _REQUIRED),
        ),
        _spec(
            Sync,
            ("inbox_after", _int(0), _REQUIRED),
            ("posts_after", _nullable(_int(0)), None),
            ("limit", _int(1, MAX_SYNC_LIMIT), DEFAULT_SYNC_LIMIT),
        ),
        _spec(Received, ("seq", _int(0), _REQUIRED)),
        _spec(
            Read,
            ("conversation_id", _int(1), _REQUIRED),
            ("message_id", _int(1), _REQUIRED),
        ),
        _spec(Typing, ("conversation_id", _int(1), _REQUIRED)),
        _spec(Ping, ("nonce", _nonce, None)),
    )
}

_ID = _str(1, MAX_ID_CHARS)


# -- the compiled validator: a valid frame, as msgspec structs ---------------------------
#
# Every rule a valid frame obeys, except three that msgspec does not check and
# _accepted() does on the raw text: no duplicate key, no NUL, and (for `to`)
# exactly one recipient kind. A frame these structs accept is one the table
# above accepts, with the same values; test_protocol.py checks that property.

_UNSET: Any = msgspec.UNSET
_Unset: TypeAlias = msgspec.UnsetType  # a field that was absent (so its key is not counted)
_WireId: TypeAlias = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]
_WireCount: TypeAlias = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]  # cursors, seqs
_WireKey: TypeAlias = Annotated[int, msgspec.Meta(ge=1, le=MAX_SAFE_INT)]  # ids of rows


class _Wire(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="type", gc=False):
    id: _WireId | None | _Unset = _UNSET


class _WireTo(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    user: _WireKey | _Unset = _UNSET
    group: _WireKey | _Unset = _UNSET


class _WireAuth(_Wire, tag="auth"):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TOKEN_CHARS)]
    protocol: Literal[tuple(sorted(SUPPORTED_PROTOCOLS))] | _Unset = _UNSET  # type: ignore[valid-type]
    inbox_after: _WireCount | None | _Unset = _UNSET
    posts_after: _WireCount | None | _Unset = _UNSET


class _WireSend(_Wire, tag="send"):
    client_msg_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CLIENT_MSG_ID_CHARS)]
    to: _WireTo
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_BODY_CHARS)]


class _WireSync(_Wire, tag="sync"):
    inbox_after: _WireCount
    posts_after: _WireCount | None | _Unset = _UNSET
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_SYNC_LIMIT)] | _Unset = _UNSET


class _WireReceived(_Wire, tag="received"):
    seq: _WireCount


class _WireRead(_Wire, tag="read"):
    conversation_id: _WireKey
    message_id: _WireKey


class _WireTyping(_Wire, tag="typing"):
    conversation_id: _WireKey


class _WirePing(_Wire, tag="ping"):
    nonce: (
        Annotated[str, msgspec.Meta(max_length=MAX_NONCE_CHARS)]
        | Annotated[int, msgspec.Meta(ge=-MAX_SAFE_INT, le=MAX_SAFE_INT)]
        | None
        | _Unset
    ) = _UNSET


def _opt(value: Any, default: Any = None) -> Any:
    return default if value is _UNSET else value


# wire struct -> the frame it stands for (absent optionals take the frame's defaults)
_FRAME_OF: dict[type, Callable[[Any], ClientFrame]] = {
    _WireSend: lambda w: Send(
        w.client_msg_id,
        Recipient("user", w.to.user) if w.to.group is _UNSET else Recipient("group", w.to.group),
        w.body,
        _opt(w.id),
    ),
    _WireAuth: lambda w: Auth(
        w.token, _opt(w.protocol, PROTOCOL_VERSION), _opt(w.inbox_after), _opt(w.posts_after), _opt(w.id)
    ),
    _WireSync: lambda w: Sync(w.inbox_after, _opt(w.posts_after), _opt(w.limit, DEFAULT_SYNC_LIMIT), _opt(w.id)),
    _WireReceived: lambda w: Received(w.seq, _opt(w.id)),
    _WireRead: lambda w: Read(w.conversation_id, w.message_id, _opt(w.id)),
    _WireTyping: lambda w: Typing(w.conversation_id, _opt(w.id)),
    _WirePing: lambda w: Ping(_opt(w.nonce), _opt(w.id)),
}

_WIRE = msgspec.json.Decoder(
    _WireAuth | _WireSend | _WireSync | _WireReceived | _WireRead | _WireTyping | _WirePing
)
# A key's end: its closing quote, whitespace, the colon. Outside strings this is
# exactly one per key; inside one it needs an escaped quote (\" :), so the count
# can only come out too high, never too low: too high sends the frame to the
# table, which tells a duplicate key from a quote in a body.
_KEY_END = re.compile(r'"\s*:')
_NUL_ESCAPE = "\\u0000"  # the only way a NUL gets into valid JSON text


def _accepted(data: str) -> ClientFrame | None:
    """The frame if the compiled validator accepts ``data``; None: let the table decide."""
    try:
        wire = _WIRE.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeEncodeError):  # lone surrogates
        return None
    cls = type(wire)
    keys = 1 + len(wire.__struct_fields__) - msgspec.structs.astuple(wire).count(_UNSET)  # 1: "type"
    if cls is _WireSend:
        if (wire.to.user is _UNSET) is (wire.to.group is _UNSET):
            return None  # none or both
        keys += 1  # the key inside "to"
    if len(_KEY_END.findall(data)) != keys or _NUL_ESCAPE in data:
        return None
    return _FRAME_OF[cls](wire)


def decode(data: str | bytes) -> ClientFrame:
    """Decode one client text frame strictly; raise :class:`ProtocolError` if refused.

    A frame is accepted by the compiled validator (:func:`_accepted`, msgspec);
    one it does not accept goes through the field table (:func:`_refusal`), which
    says why. Checks run in this order, the first failure decides: text frame,
    JSON syntax, top-level object, duplicate keys, ``id``, ``type``, unknown
    fields, then each field in the frame's declared order.
    """
    if type(data) is not str:
        if isinstance(data, (bytes, bytearray, memoryview)):
            raise ProtocolError(Code.BINARY_FRAME, "frames must be JSON text, not binary")
        raise ProtocolError(Code.BAD_JSON, "frames must be JSON text")
    frame = _accepted(data)
    return frame if frame is not None else _refusal(data)


def _refusal(data: str) -> ClientFrame:
    """Decode ``data`` by the field table: the :class:`ProtocolError` that refuses it.

    Returns the frame only where the compiled validator was too cautious (a key
    count thrown off by a quote before a colon in a body, an escaped NUL's
    look-alike): the table is the reference for what is accepted.
    """
    try:
        obj = _DECODER.decode(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ProtocolError(Code.BAD_JSON, f"not JSON: {_brief(exc)}") from None

    if type(obj) is not dict:
        if not isinstance(obj, _Duplicated):
            raise _wrong(obj, "frame", "a JSON object", None)
        # A repeated key at the top level: report it, with the id if the id is sound.
        ident = obj.get("id") if obj.key != "id" else None
        ref = ident if type(ident) is str and 1 <= len(ident) <= MAX_ID_CHARS else None
        raise ProtocolError(Code.BAD_JSON, f"duplicate key {_show(obj.key)}", ref)

    ident = obj.get("id")
    if ident is not None:
        ident = _ID(ident, "id", None)
    kind = obj.get("type", _MISSING)
    if type(kind) is not str:
        if kind is _MISSING:
            raise ProtocolError(Code.INVALID_FIELD, "missing field 'type'", ident)
        raise _wrong(kind, "type", "a string", ident)
    spec = _SPECS.get(kind)
    if spec is None:
        raise ProtocolError(Code.UNKNOWN_TYPE, f"unknown frame type {_show(kind)}", ident)
    if not spec.allowed.issuperset(obj):
        extra = next(k for k in obj if k not in spec.allowed)
        raise ProtocolError(Code.UNKNOWN_FIELD, f"{kind} has no field {_show(extra)}", ident)

    values: dict[str, Any] = {"id": ident}
    for name, check, default in spec.fields:
        value = obj.get(name, _MISSING)
        if value is _MISSING:
            if default is _REQUIRED:
                raise ProtocolError(Code.INVALID_FIELD, f"{kind} needs field {name!r}", ident)
            values[name] = default
        else:
            values[name] = check(value, name, ident)
    return spec.cls(**values)  # type: ignore[no-any-return]


def _brief(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)[:80]


# ======================================================================================
# Encoding
# ======================================================================================


def _fields_of(cls: type) -> tuple[tuple[str, bool], ...]:
    """(name, optional) per dataclass field; optional = defaults to None."""
    return tuple((f.name, f.default is None) for f in fields(cls))


_ALL_CLIENT = (Auth, Send, Sync, Received, Read, Typing, Ping)
_ALL_SERVER = (Hello, Ack, Msg, Synced, Receipt, TypingEvent, Notice, Error, Pong, Post, Tombstone)
_FIELDS: dict[type, tuple[tuple[str, bool], ...]] = {
    cls: _fields_of(cls) for cls in _ALL_CLIENT + _ALL_SERVER
}


def _to_wire(frame: Any) -> dict[str, Any]:
    """The JSON object of any frame: ``type`` first, ``None`` optionals left out."""
    wire: dict[str, Any] = {"type": frame.type}
    for name, optional in _FIELDS[type(frame)]:
        value = getattr(frame, name)
        if value is None and optional:
            continue
        wire[name] = value
    return wire


def encode(frame: ServerFrame) -> bytes:
    """Encode a server frame as UTF-8 JSON, ready to send as a text frame."""
    if type(frame) is Msg:  # the hot path of fan-out: written out by hand
        return msg_with_seq(frame.seq, msg_tail(frame))
    if type(frame) not in _SERVER_TYPES:
        raise TypeError(f"not a server frame: {type(frame).__name__}")
    return orjson.dumps(_to_wire(frame))


_MSG_HEAD = b'{"type":"msg","seq":'


def msg_tail(m: MessageView | Msg) -> bytes:
    """A ``msg`` frame's bytes after its ``seq``: the same for every recipient of a message.

    ``m`` is a :class:`~imserver.services.events.MessageView` (what fan-out and
    the replay carry) or a :class:`Msg`: both have the message's fields under the
    same names. Fan-out encodes it once per message and each recipient's frame
    with :func:`msg_with_seq`; ``encode(Msg(...))`` gives the same bytes.
    """
    return b"," + orjson.dumps(
        {
            "message_id": m.message_id,
            "conversation_id": m.conversation_id,
            "conversation_kind": m.conversation_kind,
            "from": {"id": m.sender_id, "nickname": m.sender_nickname},
            "body": m.body,
            "client_msg_id": m.client_msg_id,
            "sent_at": m.sent_at,
        }
    )[1:]


def msg_with_seq(seq: int, tail: bytes) -> bytes:
    return b"%s%d%s" % (_MSG_HEAD, seq, tail)


def msg_frame(event: InboxEvent, tail: bytes | None = None) -> bytes:
    """The ``msg`` frame of one inbox entry (``tail`` when the caller has it encoded already)."""
    return msg_with_seq(event.seq, tail if tail is not None else msg_tail(event.message))


def post_frame(view: PostView, *, tombstone: bool = False) -> bytes:
    """The ``post`` frame of a public-account post, or its ``tombstone`` after a takedown."""
    if tombstone:
        return encode(Tombstone(view.position, view.post_id, view.account_id))
    return encode(
        Post(
            position=view.position,
            post_id=view.post_id,
            account={"id": view.account_id, "name": view.account_name, "news_badge": view.news_badge},
            kind=view.kind,
            title=view.title,
            body=view.body,
            posted_at=view.posted_at,
            source=view.source,
        )
    )


def user_event_frame(event: UserEvent) -> bytes | None:
    """The frame of an ephemeral user event; None for a kind that has no frame (``disconnect``)."""
    d = event.data
    if event.kind == "receipt":
        return encode(Receipt(d["conversation_id"], d["user_id"], d["message_id"]))
    if event.kind == "typing":
        return encode(TypingEvent(d["conversation_id"], d["user_id"]))
    if event.kind == "notice":
        return encode(Notice(d["kind"], d["text"], d.get("data")))
    return None


def encode_client(frame: ClientFrame) -> bytes:
    """Encode a client frame as UTF-8 JSON (the SDK's side of :func:`decode`)."""
    if type(frame) not in _CLIENT_TYPES:
        raise TypeError(f"not a client frame: {type(frame).__name__}")
    wire = _to_wire(frame)
    if type(frame) is Send:
        wire["to"] = {frame.to.kind: frame.to.id}
    return orjson.dumps(wire)


# ======================================================================================
# Lenient decoding of server frames (the SDK's side of encode)
# ======================================================================================

_CLIENT_TYPES = frozenset(_ALL_CLIENT)
_SERVER_TYPES = frozenset(_ALL_SERVER)
_SERVER_BY_TYPE: dict[str, type] = {cls.type: cls for cls in _ALL_SERVER}  # type: ignore[attr-defined]
_SERVER_REQUIRED: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING)
    for cls in _ALL_SERVER
}


def decode_server(data: str | bytes) -> ServerFrame:
    """Decode a server frame; unknown fields are ignored (forward compatibility).

    Raises :class:`ProtocolError`: ``bad_json``, ``unknown_type`` (a client may
    skip frames newer than itself), ``invalid_field`` (a required field missing or
    malformed). Values are trusted as the server's own; only the shape is checked.
    """
    try:
        obj = orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise ProtocolError(Code.BAD_JSON, f"not JSON: {str(exc)[:80]}") from None
    if type(obj) is not dict:
        raise ProtocolError(Code.INVALID_FIELD, "frame must be a JSON object")
    kind = obj.get("type")
    cls = _SERVER_BY_TYPE.get(kind) if type(kind) is str else None
    if cls is None:
        raise ProtocolError(Code.UNKNOWN_TYPE, f"unknown frame type {_show(kind)}")
    try:
        if cls is Msg:
            sender = obj["from"]
            return Msg(
                seq=obj["seq"],
                message_id=obj["message_id"],
                conversation_id=obj["conversation_id"],
                conversation_kind=obj["conversation_kind"],
                sender_id=sender["id"],
                sender_nickname=sender["nickname"],
                body=obj["body"],
                client_msg_id=obj["client_msg_id"],
                sent_at=obj["sent_at"],
            )
        required = _SERVER_REQUIRED[cls]
        missing = [name for name in required if name not in obj]
        if missing:
            raise ProtocolError(Code.INVALID_FIELD, f"{kind} needs field {missing[0]!r}")
        known = {name: obj[name] for name, _ in _FIELDS[cls] if name in obj}
        return cls(**known)  # type: ignore[no-any-return]
    except (KeyError, TypeError) as exc:
        raise ProtocolError(Code.INVALID_FIELD, f"malformed {kind} frame: {_show(exc)}") from None
