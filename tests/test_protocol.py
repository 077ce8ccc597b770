"""Wire protocol (gateway/protocol.py): round trips of every frame, and every bad-input class.

Pure: no server, no database. Client frames go dict -> decode -> encode_client ->
decode and must come back equal; server frames go encode -> decode_server. Each
bad input asserts its stable code and, when the frame carried an ``id``, its ref.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imserver.domain.errors import Code
from imserver.gateway import protocol as p
from imserver.gateway.protocol import (
    Ack,
    Auth,
    Error,
    Hello,
    Msg,
    Notice,
    Ping,
    Pong,
    ProtocolError,
    Read,
    Receipt,
    Received,
    Recipient,
    Send,
    Sync,
    Synced,
    Typing,
    TypingEvent,
    decode,
    decode_server,
    encode,
    encode_client,
)


def roundtrip_client(wire: dict[str, Any]) -> p.ClientFrame:
    frame = decode(json.dumps(wire))
    again = decode(encode_client(frame).decode("utf-8"))
    assert again == frame
    return frame


def refused(data: str | bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(data)
    return info.value


# -- client frames: dict -> decode -> encode_client -> decode ------------------------


def test_auth_roundtrip() -> None:
    frame = roundtrip_client({"type": "auth", "token": "t0k3n", "protocol": 1, "id": "a"})
    assert frame == Auth(token="t0k3n", protocol=1, id="a")
    assert roundtrip_client({"type": "auth", "token": "t"}) == Auth(token="t")


def test_send_roundtrip_user_and_group() -> None:
    wire = {"type": "send", "id": "s1", "client_msg_id": "c-1", "to": {"user": 42}, "body": "hi ☃"}
    assert roundtrip_client(wire) == Send("c-1", Recipient("user", 42), "hi ☃", id="s1")
    wire["to"] = {"group": 7}
    assert roundtrip_client(wire).to == Recipient("group", 7)


def test_sync_roundtrip_with_defaults_and_nulls() -> None:
    assert roundtrip_client({"type": "sync", "inbox_after": 0}) == Sync(0, None, 500)
    full = {"type": "sync", "inbox_after": 10, "posts_after": 3, "limit": 1000, "id": "y"}
    assert roundtrip_client(full) == Sync(10, 3, 1000, id="y")
    assert roundtrip_client(
        {"type": "sync", "inbox_after": 1, "posts_after": None, "id": None}
    ) == Sync(1)


def test_received_roundtrip() -> None:
    assert roundtrip_client({"type": "received", "seq": p.MAX_SAFE_INT}) == Received(p.MAX_SAFE_INT)


def test_read_roundtrip() -> None:
    frame = roundtrip_client({"type": "read", "conversation_id": 3, "message_id": 9, "id": "r"})
    assert frame == Read(3, 9, id="r")


def test_typing_roundtrip() -> None:
    assert roundtrip_client({"type": "typing", "conversation_id": 3}) == Typing(3)


@pytest.mark.parametrize("nonce", [None, "", "abc", 0, -5, p.MAX_SAFE_INT])
def test_ping_roundtrip(nonce: object) -> None:
    wire: dict[str, Any] = {"type": "ping", "id": "p"}
    if nonce is not None:
        wire["nonce"] = nonce
    assert roundtrip_client(wire) == Ping(nonce, id="p")  # type: ignore[arg-type]


def test_encode_client_omits_none_and_writes_to_as_object() -> None:
    wire = orjson.loads(encode_client(Send("c", Recipient("group", 5), "b")))
    assert wire == {"type": "send", "client_msg_id": "c", "to": {"group": 5}, "body": "b"}
    assert orjson.loads(encode_client(Ping())) == {"type": "ping"}


# -- server frames: encode -> decode_server ------------------------------------------

SERVER_FRAMES = [
    Hello(
        user_id=1, node="node-a", inbox_seq=10, received_seq=8, server_time="2024-05-01T00:00:00Z"
    ),
    Ack("c-1", "accepted", message_id=5, conversation_id=2, seq=11, sent_at="2024-05-01T00:00:00Z"),
    Ack("c-1", "accepted", message_id=5, conversation_id=2, seq=11, duplicate=True, ref="s1"),
    Ack("c-2", "rejected", reason="rate_limited", detail="slow down", retry_after=1.5),
    Ack("c-3", "held", reason="content_review"),
    Msg(12, 5, 2, "direct", 42, "alice", "hi ☃ \U0001f600", "c-1", "2024-05-01T00:00:00Z"),
    Synced(inbox_seq=12, complete=True, ref="y"),
    Synced(inbox_seq=500, complete=False, posts_seq=77),
    Receipt(conversation_id=2, user_id=42, message_id=5),
    TypingEvent(conversation_id=2, user_id=42),
    Notice("warning", "you were warned", {"sanction_id": 3, "until": None}),
    Notice("shutdown", "node restarting"),
    Error(code=Code.UNKNOWN_FIELD, detail="send has no field 'x'", ref="s1"),
    Error(code="bad_json", detail="not JSON"),
    Pong(),
    Pong("n-1"),
    Pong(17),
    p.Post(
        position=7,
        post_id=3,
        account={"id": 4, "name": "Daily News", "news_badge": "publish"},
        kind="news_reprint",
        title="t",
        body="b",
        posted_at="2026-11-29T00:00:00+00:00",
        source={"name": "Xinhua", "url": "https://example.org/a", "author": "A", "title": "T"},
    ),
    p.Post(position=8, post_id=4, account={"id": 4, "name": "n", "news_badge": None}, kind="ordinary",
           title="", body="b", posted_at="2026-11-29T00:00:00+00:00"),
    p.Tombstone(position=7, post_id=3, account_id=4),
]


@pytest.mark.parametrize("frame", SERVER_FRAMES, ids=lambda f: type(f).__name__)
def test_server_frame_roundtrip(frame: p.ServerFrame) -> None:
    data = encode(frame)
    assert isinstance(data, bytes)
    wire = json.loads(data.decode("utf-8"))  # valid UTF-8 JSON text for any client
    assert wire["type"] == frame.type
    assert None not in wire.values()  # None-valued optionals are omitted
    assert decode_server(data) == frame
    assert decode_server(data.decode("utf-8")) == frame


def test_every_frame_type_has_a_roundtrip_case() -> None:
    assert {type(f) for f in SERVER_FRAMES} == set(p._ALL_SERVER)
    assert set(p._SPECS) == {cls.type for cls in p._ALL_CLIENT}


def test_msg_wire_shape() -> None:
    wire = orjson.loads(encode(SERVER_FRAMES[5]))
    assert wire == {
        "type": "msg",
        "seq": 12,
        "message_id": 5,
        "conversation_id": 2,
        "conversation_kind": "direct",
        "from": {"id": 42, "nickname": "alice"},
        "body": "hi ☃ \U0001f600",
        "client_msg_id": "c-1",
        "sent_at": "2024-05-01T00:00:00Z",
    }


def test_typing_event_is_type_typing() -> None:
    assert orjson.loads(encode(TypingEvent(1, 2))) == {
        "type": "typing",
        "conversation_id": 1,
        "user_id": 2,
    }


def test_decode_server_ignores_unknown_fields() -> None:
    data = b'{"type":"pong","nonce":1,"added_in_v2":{"x":1}}'
    assert decode_server(data) == Pong(1)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"nope", Code.BAD_JSON),
        (b"[]", Code.INVALID_FIELD),
        (b'{"type":"from_the_future"}', Code.UNKNOWN_TYPE),
        (b'{"type":"ack","status":"accepted"}', Code.INVALID_FIELD),
        (b'{"type":"msg","seq":1}', Code.INVALID_FIELD),
        (
            (
                b'{"type":"msg","seq":1,"message_id":1,"conversation_id":1,"conversation_kind":"direct",'
                b'"from":5,"body":"b","client_msg_id":"c","sent_at":"t"}'
            ),
            Code.INVALID_FIELD,
        ),
    ],
)
def test_decode_server_refusals(data: bytes, code: Code) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_server(data)
    assert info.value.code == code


def test_error_frame_from_protocol_error() -> None:
    exc = refused('{"type":"nope","id":"q"}')
    assert p.error_frame(exc) == Error(code="unknown_type", detail=exc.detail, ref="q")


def test_encode_refuses_the_wrong_direction() -> None:
    with pytest.raises(TypeError):
        encode(Ping())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_client(Pong())  # type: ignore[arg-type]


# -- bad input: one test per class, code and ref -------------------------------------

SEND = '{"type":"send","id":"s1","client_msg_id":"c-1","to":{"user":1},"body":"hi"'


def test_non_json() -> None:
    exc = refused("hello, server")
    assert (exc.code, exc.ref) == (Code.BAD_JSON, None)
    assert refused("").code == Code.BAD_JSON
    assert refused(SEND).code == Code.BAD_JSON  # unterminated object
    assert refused(SEND + "} trailing").code == Code.BAD_JSON


def test_deep_nesting_is_bad_json_not_recursion_error() -> None:
    assert refused("[" * 100_000).code == Code.BAD_JSON
    assert refused('{"type":"ping","nonce":' + "[" * 100_000).code == Code.BAD_JSON


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity(constant: str) -> None:
    exc = refused('{"type":"sync","id":"y","inbox_after":@}'.replace("@", constant))
    assert (exc.code, exc.ref) == (Code.BAD_JSON, "y")
    assert (
        refused('{"type":"ping","id":"y","nonce":@}'.replace("@", constant)).code == Code.BAD_JSON
    )
    assert refused(constant).code == Code.BAD_JSON


def test_float_overflow_is_not_a_number_we_take() -> None:
    exc = refused('{"type":"received","id":"r","seq":1e400}')
    assert (exc.code, exc.ref) == (Code.INVALID_FIELD, "r")


@pytest.mark.parametrize(
    "big",
    [str(2**53), str(-(2**53)), str(10**17), str(10**30), "9" * 5000, "-" + "9" * 5000],
    ids=["2^53", "-2^53", "1e17", "1e30", "5000d", "-5000d"],
)
def test_big_int(big: str) -> None:
    exc = refused('{"type":"received","id":"r","seq":@}'.replace("@", big))
    assert (exc.code, exc.ref) == (Code.INVALID_FIELD, "r")
    exc = refused('{"type":"ping","id":"r","nonce":@}'.replace("@", big))
    assert (exc.code, exc.ref) == (Code.INVALID_FIELD, "r")


def test_safe_int_bounds_are_accepted() -> None:
    assert decode('{"type":"ping","nonce":-9007199254740991}') == Ping(-p.MAX_SAFE_INT)
    assert decode('{"type":"received","seq":9007199254740991}') == Received(p.MAX_SAFE_INT)


@pytest.mark.parametrize("value", ["1.0", "1.5", "1e3", "-0.0"])
def test_float_for_int(value: str) -> None:
    exc = refused('{"type":"read","id":"r","conversation_id":@,"message_id":1}'.replace("@", value))
    assert (exc.code, exc.ref) == (Code.INVALID_FIELD, "r")


@pytest.mark.parametrize("value", ["true", "false"])
def test_bool_for_int(value: str) -> None:
    exc = refused('{"type":"typing","id":"t","conversation_id":@}'.replace("@", value))
    assert (exc.code, exc.ref) == (Code.INVALID_FIELD, "t")
    assert refused('{"type":"ping","nonce":@}'.replace("@", value)).code == Code.INVALID_FIELD
    assert (
        refused(
            '{"type":"send","id":"t","client_msg_id":"c","to":{"user":@},"body":"b"}'.replace(
                "@", value
            )
        ).code
        == Code.INVALID_FIELD
    )


def test_duplicate_keys() -> None:
    exc = refused('{"type":"received","id":"r","seq":1,"seq":2}')
    assert (exc.code, exc.ref) == (Code.BAD_JSON, "r")
    exc = refused(
        '{"type":"send","id":"s1","client_msg_id":"c","to":{"user":1,"user":2},"body":"b"}'
    )
    assert (exc.code, exc.ref) == (Code.BAD_JSON, "s1")
    exc = refused('{"type":"ping","id":"a","id":"b"}')  # which id? neither
    assert (exc.code, exc.ref) == (Code.BAD_JSON, None)


def test_unknown_type() -> None:
    exc = refused('{"type":"subscribe","id":"u"}')
    assert (exc.code, exc.ref) == (Code.UNKNOWN_TYPE, "u")
    assert refused('{"type":"Ping"}').code == Code.UNKNOWN_TYPE  # case-sensitive
    assert refused('{"type":"hello"}').code == Code.UNKNOWN_TYPE  # a server frame


def test_unknown_field() -> None:
    exc = refused(SEND + ',"priority":1}')
    assert (exc.code, exc.ref) == (Code.UNKNOWN_FIELD, "s1")
    exc = refused(
        '{"type":"send","id":"s1","client_msg_id":"c","to":{"user":1,"channel":2},"body":"b"}'
    )
    assert (exc.code, exc.ref) == (Code.UNKNOWN_FIELD, "s1")


@pytest.mark.parametrize("field", ["client_msg_id", "to", "body"])
def test_missing_field(field: str) -> None:
    wire = {"type": "send", "id": "s1", "client_msg_id": "c", "to": {"user": 1}, "body": "b"}
    del wire[field]
    exc = refused(json.dumps(wire))
    assert (exc.code, exc.ref) == (Code.INVALID_FIELD, "s1")
    assert field in exc.detail


def test_missing_or_bad_type() -> None:
    exc = refused('{"id":"m"}')
    assert (exc.code, exc.ref) == (Code.INVALID_FIELD, "m")
    exc = refused('{"type":7,"id":"m"}')
    assert (exc.code, exc.ref) == (Code.INVALID_FIELD, "m")


def test_oversized_body() -> None:
    body = "x" * p.MAX_BODY_CHARS
    ok = decode(json.dumps({"type": "send", "client_msg_id": "c", "to": {"user": 1}, "body": body}))
    assert isinstance(ok, Send) and len(ok.body) == p.MAX_BODY_CHARS
    wire = {"type": "send", "id": "s1", "client_msg_id": "c", "to": {"user": 1}, "body": body + "y"}
    exc = refused(json.dumps(wire))
    assert (exc.code, exc.ref) == (Code.FIELD_TOO_LARGE, "s1")
    # Limits count characters, not UTF-8 bytes: 8000 snowmen are fine.
    wire["body"] = "☃" * p.MAX_BODY_CHARS
    assert isinstance(decode(json.dumps(wire, ensure_ascii=False)), Send)


def test_oversized_client_msg_id() -> None:
    wire = {"type": "send", "id": "s1", "client_msg_id": "c" * 65, "to": {"user": 1}, "body": "b"}
    exc = refused(json.dumps(wire))
    assert (exc.code, exc.ref) == (Code.FIELD_TOO_LARGE, "s1")


def test_oversized_or_bad_id_has_no_ref() -> None:
    exc = refused(json.dumps({"type": "ping", "id": "i" * 65}))
    assert (exc.code, exc.ref) == (Code.FIELD_TOO_LARGE, None)
    assert refused('{"type":"ping","id":""}').code == Code.INVALID_FIELD
    assert refused('{"type":"ping","id":5}').code == Code.INVALID_FIELD


def test_empty_strings() -> None:
    exc = refused('{"type":"send","id":"s1","client_msg_id":"","to":{"user":1},"body":"b"}')
    assert (exc.code, exc.ref) == (Code.INVALID_FIELD, "s1")
    assert (
        refused('{"type":"send","client_msg_id":"c","to":{"user":1},"body":""}').code
        == Code.INVALID_FIELD
    )
    assert refused('{"type":"auth","token":""}').code == Code.INVALID_FIELD


def test_binary_frame() -> None:
    exc = refused(b'{"type":"ping"}')
    assert (exc.code, exc.ref) == (Code.BINARY_FRAME, None)
    assert refused(bytearray(b"x")).code == Code.BINARY_FRAME
    assert refused(memoryview(b"x")).code == Code.BINARY_FRAME


def test_top_level_array() -> None:
    exc = refused('[{"type":"ping","id":"p"}]')
    assert (exc.code, exc.ref) == (Code.INVALID_FIELD, None)
    for scalar in ('"ping"', "1", "null", "true"):
        assert refused(scalar).code == Code.INVALID_FIELD


def test_to_with_both_user_and_group() -> None:
    exc = refused(
        '{"type":"send","id":"s1","client_msg_id":"c","to":{"user":1,"group":2},"body":"b"}'
    )
    assert (exc.code, exc.ref) == (Code.INVALID_FIELD, "s1")


@pytest.mark.parametrize(
    "to", ["{}", '{"user":0}', '{"group":-1}', "[1]", '"user:1"', '{"user":"1"}']
)
def test_to_other_shapes(to: str) -> None:
    exc = refused(
        '{"type":"send","id":"s1","client_msg_id":"c","to":@,"body":"b"}'.replace("@", to)
    )
    assert (exc.code, exc.ref) == (Code.INVALID_FIELD, "s1")


@pytest.mark.parametrize(
    "frame",
    [
        '{"type":"sync","id":"v","inbox_after":-1}',
        '{"type":"sync","id":"v","inbox_after":0,"limit":0}',
        '{"type":"sync","id":"v","inbox_after":0,"limit":1001}',
        '{"type":"sync","id":"v","inbox_after":0,"limit":null}',
        '{"type":"sync","id":"v","inbox_after":0,"posts_after":-1}',
        '{"type":"received","id":"v","seq":-1}',
        '{"type":"read","id":"v","conversation_id":0,"message_id":1}',
        '{"type":"read","id":"v","conversation_id":1,"message_id":"1"}',
        '{"type":"auth","id":"v","token":"t","protocol":2}',
        '{"type":"auth","id":"v","token":5}',
        '{"type":"ping","id":"v","nonce":{}}',
        '{"type":"send","id":"v","client_msg_id":"c","to":{"user":1},"body":"a\\u0000b"}',
        '{"type":"send","id":"v","client_msg_id":"c","to":{"user":1},"body":"\\ud800"}',
    ],
)
def test_wrong_type_or_range(frame: str) -> None:
    exc = refused(frame)
    assert (exc.code, exc.ref) == (Code.INVALID_FIELD, "v")


def test_oversized_token_and_nonce() -> None:
    assert refused(json.dumps({"type": "auth", "token": "t" * 513})).code == Code.FIELD_TOO_LARGE
    assert refused(json.dumps({"type": "ping", "nonce": "n" * 65})).code == Code.FIELD_TOO_LARGE


def test_surrogate_pair_escape_is_fine() -> None:
    frame = decode('{"type":"send","client_msg_id":"c","to":{"user":1},"body":"\\ud83d\\ude00"}')
    assert isinstance(frame, Send) and frame.body == "\U0001f600"
    assert decode(encode_client(frame).decode()) == frame


# -- properties ---------------------------------------------------------------------


@settings(database=None, max_examples=2000, deadline=None)
@given(st.text())
def test_decode_arbitrary_text_raises_only_protocol_error(text: str) -> None:
    try:
        decode(text)
    except ProtocolError as exc:
        assert isinstance(exc.code, Code)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    sorted({name for spec in p._SPECS.values() for name in spec.allowed} | {"user", "group", "x"})
)
frame_types = st.sampled_from(sorted(p._SPECS) + ["msg", "", "x"])


@settings(database=None, max_examples=400, deadline=None)  # recursive JSON is slow to generate
@given(frame_types, st.dictionaries(field_names, json_values | st.builds(dict, user=json_values)))
def test_decode_frame_shaped_json_raises_only_protocol_error(
    kind: str, fields: dict[str, Any]
) -> None:
    """Near-miss frames reach the field checks, where arbitrary text rarely gets."""
    text = json.dumps({"type": kind, **fields}, allow_nan=True)  # NaN/Infinity on purpose
    try:
        frame = decode(text)
    except ProtocolError as exc:
        assert isinstance(exc.code, Code)
    else:  # whatever decode accepts, the SDK can send back unchanged
        assert decode(encode_client(frame).decode("utf-8")) == frame


unicode_text = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
ids = st.none() | st.text(unicode_text, min_size=1, max_size=p.MAX_ID_CHARS)
ints = st.integers(0, p.MAX_SAFE_INT)
positive = st.integers(1, p.MAX_SAFE_INT)
client_frames = st.one_of(
    st.builds(
        Auth,
        st.text(unicode_text, min_size=1, max_size=p.MAX_TOKEN_CHARS),
        st.just(1),
        inbox_after=st.none() | ints,
        posts_after=st.none() | ints,
        id=ids,
    ),
    st.builds(
        Send,
        st.text(unicode_text, min_size=1, max_size=p.MAX_CLIENT_MSG_ID_CHARS),
        st.builds(Recipient, st.sampled_from(["user", "group"]), positive),
        st.text(unicode_text, min_size=1, max_size=300),
        ids,
    ),
    st.builds(Sync, ints, st.none() | ints, st.integers(1, p.MAX_SYNC_LIMIT), ids),
    st.builds(Received, ints, ids),
    st.builds(Read, positive, positive, ids),
    st.builds(Typing, positive, ids),
    st.builds(
        Ping,
        st.none()
        | st.text(unicode_text, max_size=p.MAX_NONCE_CHARS)
        | st.integers(-p.MAX_SAFE_INT, p.MAX_SAFE_INT),
        ids,
    ),
)


@settings(database=None, max_examples=1000, deadline=None)
@given(client_frames)
def test_every_valid_client_frame_roundtrips(frame: p.ClientFrame) -> None:
    assert decode(encode_client(frame).decode("utf-8")) == frame


# -- the compiled validator (msgspec) against the field table ------------------------


def outcome(decoder: Any, text: str) -> tuple[Any, ...]:
    try:
        return ("accepted", decoder(text))
    except ProtocolError as exc:
        return ("refused", exc.code, exc.ref, exc.detail)


def encodings(wire: dict[str, Any]) -> list[str]:
    """One frame as clients may write it: compact, spaced, ASCII-escaped, key order reversed."""
    return [
        orjson.dumps(wire).decode(),
        json.dumps(wire),  # ", " and ": "
        json.dumps(wire, indent=1),  # newlines
        json.dumps(wire, separators=(",", " : ")),  # whitespace before every colon
        json.dumps(dict(reversed(wire.items()))),
    ]


@settings(database=None, max_examples=500, deadline=None)
@given(client_frames, st.data())
def test_compiled_validator_agrees_with_the_table(frame: p.ClientFrame, data: st.DataObject) -> None:
    """Whatever ``decode`` answers (the compiled validator first) is what the field table,
    the reference, answers: for valid frames in every spelling, and for the same frames
    with one key repeated (in any spelling), which must be refused."""
    wire = orjson.loads(encode_client(frame))
    for text in encodings(wire):
        assert outcome(decode, text) == outcome(p._refusal, text) == ("accepted", frame)
    key = data.draw(st.sampled_from(sorted(wire)))
    value = data.draw(st.sampled_from([wire[key], 1, "x", None]))
    for text in encodings(wire):
        spaced = data.draw(st.sampled_from(['"%s":', '"%s" :', '"%s"\n:', '"\\u%04x%s":']))
        repeat = spaced % ((ord(key[0]), key[1:]) if "\\u" in spaced else key)
        doubled = text[:-1].rstrip() + ", " + repeat + json.dumps(value) + "}"
        got = outcome(decode, doubled)
        assert got == outcome(p._refusal, doubled)
        assert got[:2] == ("refused", Code.BAD_JSON), doubled


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"send","client_msg_id":"1733:17","to":{"user":4242},"body":"hi"}',
        '{"type":"auth","token":"t0k3n","protocol":1,"id":"a"}',
        '{"type":"sync","inbox_after":10,"posts_after":null,"limit":500,"id":null}',
        '{"type":"ping","nonce":-5}',
        '{ "type" : "received" , "seq" : 3 }',
    ],
)
def test_ordinary_frames_take_the_compiled_path(text: str) -> None:
    """The fast path is really taken (were it not, every frame would still decode, slowly)."""
    assert p._accepted(text) is not None
    assert p._accepted(text) == p._refusal(text)


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ('{"type":"send","client_msg_id":"c","to":{"user":1},"body":"say \\": then"}', True),  # key count off
        ('{"type":"send","client_msg_id":"c","to":{"user":1},"body":"\\\\u0000"}', True),  # NUL look-alike
        ('{"type":"send","client_msg_id":"c","to":{"user":1},"body":"a\\u0000"}', False),
        ('{"type":"send","client_msg_id":"c","to":{},"body":"b"}', False),
        ('{"type":"send","client_msg_id":"c","to":{"user":1,"group":2},"body":"b"}', False),
    ],
)
def test_what_the_compiled_validator_leaves_to_the_table(text: str, accepted: bool) -> None:
    assert p._accepted(text) is None
    assert (outcome(decode, text)[0] == "accepted") is accepted
