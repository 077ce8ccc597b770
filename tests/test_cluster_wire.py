"""What nodes send each other: versioned dicts, and the older positional shape still read.

A rolling upgrade runs two versions side by side, so a node must read what the
previous version publishes (the version-less positional arrays) as well as its
own shape, and must ignore fields a later version adds.
"""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from imserver.services import cluster
from imserver.services.events import InboxEvent, MessageView, PostView, UserEvent
from imserver.services.unit_of_work import Invalidate, Scope

VIEW = MessageView(7, 3, "group", 1, "alice", "hello", "c-1", "2026-12-01T00:00:00+00:00")
POST = PostView(9, 42, 5, "Daily", "publish", "news_original", "t", "b", "2026-12-01T00:00:00+00:00", None)


def roundtrip(topic: str, body: dict) -> tuple[str, object]:
    payload = cluster.encode("node-a", body)
    assert orjson.loads(payload)["v"] == cluster.WIRE_VERSION
    return cluster.decode(topic, payload)


def test_current_shape_round_trips_every_topic():
    events = [InboxEvent(1, 10, VIEW), InboxEvent(2, 4, VIEW)]
    node, got = roundtrip(cluster.TOPIC_INBOX, cluster.inbox_body(events))
    assert node == "node-a" and got == events
    # A group message crosses once, with an entry per recipient.
    assert len(orjson.loads(cluster.encode("n", cluster.inbox_body(events)))["messages"]) == 1

    event = UserEvent((1, 2), "typing", {"conversation_id": 3, "user_id": 1})
    body = {"user_ids": [1, 2], "kind": "typing", "data": event.data}
    assert roundtrip(cluster.TOPIC_EVENTS, body) == ("node-a", event)

    body = {"post": dataclasses.asdict(POST), "tombstone": True}
    assert roundtrip(cluster.TOPIC_POSTS, body) == ("node-a", (POST, True))

    for effect in (Invalidate(Scope.CONVERSATION, 12), Invalidate(Scope.EVERYONE), Invalidate(Scope.TERMS)):
        body = {"scope": effect.scope.value, "id": effect.id}
        assert roundtrip(cluster.TOPIC_POLICY, body) == ("node-a", effect)

    assert roundtrip(cluster.TOPIC_TOKENS, {"token_hash": "ab12"}) == ("node-a", "ab12")


def test_the_older_positional_shape_is_still_read():
    def old(body) -> bytes:
        return orjson.dumps({"node": "old", "body": body})

    row = [1, 10, 7, 3, "group", 1, "alice", "hello", "c-1", "2026-12-01T00:00:00+00:00"]
    assert cluster.decode(cluster.TOPIC_INBOX, old([row])) == ("old", [InboxEvent(1, 10, VIEW)])
    assert cluster.decode(cluster.TOPIC_EVENTS, old([[1, 2], "receipt", {"x": 1}])) == (
        "old",
        UserEvent((1, 2), "receipt", {"x": 1}),
    )
    post = [9, 42, 5, "Daily", "publish", "news_original", "t", "b", "2026-12-01T00:00:00+00:00", None, False]
    assert cluster.decode(cluster.TOPIC_POSTS, old(post)) == ("old", (POST, False))
    assert cluster.decode(cluster.TOPIC_POLICY, old(5)) == ("old", Invalidate(Scope.USER, 5))
    assert cluster.decode(cluster.TOPIC_POLICY, old(0)) == ("old", Invalidate(Scope.EVERYONE))
    assert cluster.decode(cluster.TOPIC_POLICY, old(-1)) == ("old", Invalidate(Scope.TERMS))
    assert cluster.decode(cluster.TOPIC_TOKENS, old("ab12")) == ("old", "ab12")
    legacy = orjson.dumps({"node": "old", "followers": 44})
    assert cluster.decode(cluster.TOPIC_LEGACY_FOLLOWERS, legacy) == ("old", Invalidate(Scope.FOLLOWERS, 44))


def test_fields_a_later_version_adds_are_ignored():
    body = cluster.inbox_body([InboxEvent(1, 10, VIEW)])
    body["messages"][0]["reactions"] = []  # a field this version does not know
    body["trace"] = "abc"
    payload = orjson.dumps({"v": cluster.WIRE_VERSION + 1, "node": "new", **body})
    assert cluster.decode(cluster.TOPIC_INBOX, payload) == ("new", [InboxEvent(1, 10, VIEW)])


@pytest.mark.parametrize(
    "payload",
    [b"not json", b'{"v": 1}', b'{"v": "x", "node": "a"}', b'{"v": 1, "node": "a", "scope": "galaxy"}'],
)
def test_an_unreadable_payload_is_a_value_error(payload):
    with pytest.raises(ValueError):
        cluster.decode(cluster.TOPIC_POLICY, payload)


def test_a_nodes_own_payloads_are_recognised_by_their_first_bytes():
    """What the broker hands back to its publisher is skipped before decoding; another node's is not."""
    from imserver.services.cluster import encode, own_prefix

    mine = encode("node1", {"scope": "user", "id": 7})
    assert mine.startswith(own_prefix("node1"))
    assert not encode("node10", {"scope": "user", "id": 7}).startswith(own_prefix("node1"))
    assert not encode("node1", {"scope": "user", "id": 7}).startswith(own_prefix("node"))
