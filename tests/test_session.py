"""The connection's state machine (gateway/session.py), driven without a socket.

Each test feeds a Session frames, fan-out deliveries and service results as a
driver would, and checks the effects it answers with, its state, and the frames
it queued for the client (decoded from its outbox). No server, no database, no
event loop: the rules of a connection on their own.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from imserver.domain.errors import Code, NotFound, PolicyDenied, Unauthenticated, Unavailable
from imserver.gateway import protocol as p
from imserver.gateway import effects as fx
from imserver.gateway.session import TRANSITIONS, Event, IllegalTransition, Session, State
from imserver.policy.decision import hold
from imserver.services.events import InboxEvent, MessageView, PostView
from imserver.services.events import SendResult
from imserver.store.messages import Stored

NOW = "2026-12-01T12:00:00+00:00"
CONN = 7  # the session's connection id
ME, BOB = 1, 2
PAGE = 500  # the session's default page size (protocol.DEFAULT_SYNC_LIMIT)


def session(outbox_bytes: int = 1 << 20, page_size: int = PAGE) -> Session:
    return Session(CONN, "node-a", outbound_queue_bytes=outbox_bytes, auth_timeout=10.0, page_size=page_size)


def wire(frame: p.ClientFrame) -> str:
    return p.encode_client(frame).decode()


def sent(s: Session) -> list[p.ServerFrame]:
    """What the session queued for the client since the last call, decoded (the driver's writes)."""
    return [p.decode_server(f) for f in s.outbox.pop_many(1 << 30)]


def seqs(frames: list[p.ServerFrame]) -> list[tuple[str, int | None]]:
    """(type, seq) of each frame: enough to see order, gaps and duplicates."""
    return [(f.type, getattr(f, "seq", None)) for f in frames]


def message(seq: int, *, sender: int = BOB, client_msg_id: str | None = None, user: int = ME, origin: int = 0) -> InboxEvent:
    view = MessageView(
        message_id=1000 + seq, conversation_id=50, conversation_kind="direct", sender_id=sender,
        sender_nickname="Bob" if sender == BOB else "Me", body=f"body {seq}",
        client_msg_id=client_msg_id or f"c{seq}", sent_at=NOW,
    )
    return InboxEvent(user_id=user, seq=seq, message=view, origin=origin)


def deliver(s: Session, *events: InboxEvent) -> list:
    """Live entries from fan-out, the frame encoded once as the hub does."""
    effects = []
    for event in events:
        effects += s.live(event, p.msg_frame(event))
    return effects


def post(position: int) -> PostView:
    return PostView(
        post_id=300 + position, position=position, account_id=9, account_name="News", news_badge=None,
        kind="ordinary", title=f"t{position}", body=f"post {position}", posted_at=NOW,
    )


def authed(s: Session, *, inbox_seq: int = 0, received_seq: int = 0, posts_position: int = 0) -> Session:
    """fx.Authenticate a fresh session without cursors in the auth frame: it goes live at the inbox end."""
    assert s.start() == (fx.StartTimer(fx.Timer.AUTH, 10.0),)
    assert s.on_data(wire(p.Auth(token="tok", id="a1"))) == (fx.Authenticate("tok", "a1"),)
    s.on_auth_ok(ME, "hash")
    assert s.on_cursors(inbox_seq, received_seq, posts_position, NOW) == ()
    assert s.state is State.OPEN
    sent(s)  # the hello
    return s


def resuming(s: Session, *, inbox_after: int | None, posts_after: int | None = None, inbox_seq: int, posts_position: int = 0):
    """fx.Authenticate with resume cursors; returns the effects of the cursors' arrival."""
    s.start()
    s.on_data(wire(p.Auth(token="tok", inbox_after=inbox_after, posts_after=posts_after, id="a1")))
    s.on_auth_ok(ME, "hash")
    return s.on_cursors(inbox_seq, 0, posts_position, NOW)


# -- authentication -------------------------------------------------------------------------


def test_good_auth_joins_the_hub_reads_the_cursors_then_says_hello():
    s = session()
    assert s.state is State.AWAITING_AUTH
    assert s.start() == (fx.StartTimer(fx.Timer.AUTH, 10.0),)
    assert s.on_data(wire(p.Auth(token="tok", id="a1"))) == (fx.Authenticate("tok", "a1"),)
    assert s.state is State.AWAITING_AUTH  # until the token is checked
    assert s.on_auth_ok(ME, "hash") == (fx.CancelTimer(fx.Timer.AUTH), fx.JoinHub(), fx.ReadCursors())
    assert s.state is State.REPLAYING and (s.user_id, s.token_hash) == (ME, "hash")
    assert sent(s) == []  # nothing before hello
    assert s.on_cursors(12, 10, 4, NOW) == ()
    assert s.state is State.OPEN
    assert sent(s) == [p.Hello(user_id=ME, node="node-a", inbox_seq=12, received_seq=10, server_time=NOW)]
    assert s.posts_delivered == 4


def test_refused_token_gets_an_error_then_a_flushed_policy_close():
    s = session()
    s.start()
    s.on_data(wire(p.Auth(token="nope", id="a1")))
    effects = s.on_auth_refused(Unauthenticated("unknown or expired token"), "a1")
    assert effects == [fx.Close(p.CLOSE_POLICY, "authentication failed", flush=True)]
    assert s.state is State.CLOSING and s.closing == effects[0]
    assert sent(s) == [p.Error("unauthenticated", "unknown or expired token", "a1")]
    # Whatever still arrives is dropped.
    assert s.on_data(wire(p.Ping(nonce=1))) == () and sent(s) == []


def test_frames_before_auth_are_out_of_order_and_the_session_keeps_waiting():
    s = session()
    s.start()
    for frame in (
        p.Ping(nonce="x", id="p1"),
        p.Send("c1", p.Recipient("user", BOB), "hi", id="s1"),
        p.Sync(inbox_after=0, id="y1"),
        p.Received(seq=3, id="r1"),
    ):
        assert s.on_data(wire(frame)) == ()
    assert [(e.code, e.ref) for e in sent(s)] == [("out_of_order", ref) for ref in ("p1", "s1", "y1", "r1")]
    assert s.state is State.AWAITING_AUTH
    assert s.on_data(wire(p.Auth(token="tok"))) == (fx.Authenticate("tok", None),)


def test_a_second_auth_is_out_of_order_and_the_connection_keeps_serving():
    s = authed(session())
    assert s.on_data(wire(p.Auth(token="tok", id="again"))) == ()
    assert sent(s) == [p.Error("out_of_order", "already authenticated", "again")]
    assert s.state is State.OPEN
    s.on_data(wire(p.Ping(nonce=5)))
    assert sent(s) == [p.Pong(nonce=5)]


def test_a_malformed_frame_gets_an_error_frame_in_every_state():
    s = session()
    s.start()
    assert s.on_data("not json") == ()
    assert [e.code for e in sent(s)] == ["bad_json"]
    authed(s)
    assert s.on_data(b"\x00binary") == ()
    assert s.on_data('{"type":"ping","id":"p9","extra":1}') == ()
    assert [(e.code, e.ref) for e in sent(s)] == [("binary_frame", None), ("unknown_field", "p9")]
    assert s.state is State.OPEN


def test_auth_timeout_closes_with_4001_and_a_late_auth_result_is_dropped():
    s = session()
    s.start()
    assert s.on_timer(fx.Timer.AUTH) == [fx.Close(p.CLOSE_AUTH_TIMEOUT, "no auth frame in time")]
    assert s.state is State.CLOSING
    # The token check that was in flight when the timer fired comes back: nothing more happens.
    assert s.on_auth_ok(ME, "hash") == () and s.stream is None
    assert s.close(p.CLOSE_NORMAL, "") == ()  # the first close decided stays
    assert s.closing.code == p.CLOSE_AUTH_TIMEOUT


def test_the_auth_timer_is_cancelled_once_the_token_is_good():
    s = session()
    s.start()
    s.on_data(wire(p.Auth(token="tok")))
    assert fx.CancelTimer(fx.Timer.AUTH) in s.on_auth_ok(ME, "hash")
    with pytest.raises(IllegalTransition):  # a cancelled timer that fires is the driver's bug
        s.on_timer(fx.Timer.AUTH)


def test_the_session_ends_when_its_token_does_a_notice_then_a_flushed_4003():
    s = session()
    s.start()
    s.on_data(wire(p.Auth(token="tok")))
    effects = s.on_auth_ok(ME, "hash", expires_in=30.0)
    assert fx.StartTimer(fx.Timer.SESSION, 30.0) in effects
    assert s.on_cursors(0, 0, 0, NOW) == ()
    sent(s)  # the hello
    assert s.on_timer(fx.Timer.SESSION) == [fx.Close(p.CLOSE_REVOKED, "session expired", True)]
    [notice] = sent(s)
    assert isinstance(notice, p.Notice) and notice.kind == "session_expired"
    assert s.state is State.CLOSING
    assert s.on_timer(fx.Timer.SESSION) == ()  # a second firing changes nothing


def test_a_token_without_expiry_sets_no_session_timer():
    s = session()
    s.start()
    s.on_data(wire(p.Auth(token="tok")))
    assert not [e for e in s.on_auth_ok(ME, "hash") if isinstance(e, fx.StartTimer)]


def test_an_input_the_state_does_not_accept_is_a_bug_that_raises():
    s = session()
    with pytest.raises(IllegalTransition) as info:
        s.on_cursors(0, 0, 0, NOW)
    assert (info.value.state, info.value.event) == (State.AWAITING_AUTH, Event.CURSORS)
    authed(s)
    with pytest.raises(IllegalTransition):
        s.on_page([])  # no page was asked for
    with pytest.raises(IllegalTransition):
        s.on_auth_ok(ME, "hash")
    assert s.state is State.OPEN


def test_the_transition_table_leaves_closing_only_by_nothing_and_reaches_it_from_everywhere():
    for state in State:
        assert TRANSITIONS[(state, Event.CLOSE)] is State.CLOSING
    assert {TRANSITIONS[(State.CLOSING, e)] for e in Event} == {State.CLOSING}
    assert {nxt for (state, _), nxt in TRANSITIONS.items() if state is State.OPEN} == {State.OPEN, State.REPLAYING, State.CLOSING}
    assert [e for (state, e), nxt in TRANSITIONS.items() if nxt is State.OPEN and state is not State.OPEN] == [Event.CAUGHT_UP]


# -- frames served while authenticated -------------------------------------------------------


def test_receipts_reads_and_typing_become_service_calls_and_their_refusal_an_error_frame():
    s = authed(session())
    assert s.on_data(wire(p.Received(seq=4, id="r"))) == (fx.MarkReceived(4, "r"),)
    assert s.on_data(wire(p.Read(conversation_id=50, message_id=1004, id="d"))) == (fx.MarkRead(50, 1004, "d"),)
    assert s.on_data(wire(p.Typing(conversation_id=50))) == (fx.NotifyTyping(50, None),)
    assert s.on_error(NotFound("no such conversation", Code.NOT_A_MEMBER), "d") == ()
    assert sent(s) == [p.Error("not_a_member", "no such conversation", "d")]


# -- sends and acks --------------------------------------------------------------------------


def test_an_own_send_is_acked_in_place_of_its_echo_in_stream_order():
    s = authed(session(), inbox_seq=5)
    send = p.Send("c-own", p.Recipient("user", BOB), "hello", id="s1")
    assert s.on_data(wire(send)) == (fx.Submit(send),)
    deliver(s, message(6))  # Bob's message committed first
    # The commit's fan-out: this connection's entry carries its id as the origin.
    deliver(s, message(7, sender=ME, client_msg_id="c-own", origin=CONN))
    frames = sent(s)
    assert seqs(frames) == [("msg", 6), ("ack", 7)]
    assert frames[1] == p.Ack(
        client_msg_id="c-own", status="accepted", message_id=1007, conversation_id=50, seq=7, sent_at=NOW, ref="s1"
    )
    # Then the commit's own callback: the ack went out already, nothing more.
    stored = Stored(1007, 50, datetime(2026, 12, 1, 12, tzinfo=UTC), "accepted", duplicate=False, sender_seq=7)
    assert s.on_send_stored(send, SendResult.of(stored)) == () and sent(s) == []
    # The same user's send from another device reaches this one as a msg.
    deliver(s, message(8, sender=ME, client_msg_id="other-device", origin=99))
    assert seqs(sent(s)) == [("msg", 8)]


def test_a_send_fanned_out_through_another_node_is_still_acked_by_its_client_msg_id():
    s = authed(session(), inbox_seq=0)
    send = p.Send("c-x", p.Recipient("group", 4), "hi all", id="s2")
    s.on_data(wire(send))
    deliver(s, message(1, sender=ME, client_msg_id="c-x", origin=0))  # origin lost across nodes
    assert sent(s) == [
        p.Ack(client_msg_id="c-x", status="accepted", message_id=1001, conversation_id=50, seq=1, sent_at=NOW, ref="s2")
    ]


def test_a_retried_or_held_send_is_acked_from_its_result():
    s = authed(session())
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    retry = p.Send("c-1", p.Recipient("user", BOB), "once", id="s1")
    s.on_data(wire(retry))
    s.on_send_stored(retry, SendResult.of(Stored(1001, 50, at, "accepted", duplicate=True, sender_seq=1)))
    held = p.Send("c-2", p.Recipient("user", BOB), "watch this", id="s2")
    s.on_data(wire(held))
    decision = hold("content_filter", Code.CONTENT_REVIEW)
    s.on_send_stored(held, SendResult.of(Stored(1002, 50, at, "held", duplicate=False, sender_seq=None), decision))
    assert sent(s) == [
        p.Ack("c-1", "accepted", 1001, 50, 1, at.isoformat(), duplicate=True, ref="s1"),
        p.Ack("c-2", "held", 1002, 50, None, at.isoformat(), reason="content_review", ref="s2"),
    ]


def test_a_refused_send_gets_a_rejected_ack_and_no_longer_waits_for_its_echo():
    s = authed(session(), inbox_seq=3)
    send = p.Send("c-9", p.Recipient("user", BOB), "spam", id="s9")
    s.on_data(wire(send))
    s.on_send_refused(send, PolicyDenied("slow down", Code.RATE_LIMITED, retry_after=2))
    assert sent(s) == [
        p.Ack("c-9", "rejected", reason="rate_limited", detail="slow down", retry_after=2.0, ref="s9")
    ]
    deliver(s, message(4, sender=ME, client_msg_id="c-9", origin=99))  # another device reused the key
    assert seqs(sent(s)) == [("msg", 4)]


# -- resume, replay and live ------------------------------------------------------------------


def test_resume_cursor_replays_then_goes_live_without_gap_or_duplicate():
    s = session()
    s.start()
    s.on_data(wire(p.Auth(token="tok", inbox_after=2, id="a1")))
    s.on_auth_ok(ME, "hash")
    deliver(s, message(6), message(7))  # committed while the cursors are read: buffered
    assert s.on_cursors(7, 2, 0, NOW) == [fx.ReadPage(2, PAGE)]
    assert s.state is State.REPLAYING
    assert sent(s) == [p.Hello(user_id=ME, node="node-a", inbox_seq=7, received_seq=2, server_time=NOW)]
    deliver(s, message(8))  # committed after the page was read: buffered too
    assert sent(s) == []
    assert s.on_page([message(q) for q in range(3, 8)]) == ()  # 3..7, short of a page: the end
    frames = sent(s)
    assert seqs(frames) == [("msg", q) for q in range(3, 9)] + [("synced", None)]
    assert frames[-1] == p.Synced(inbox_seq=8, complete=True, ref="a1")
    assert s.state is State.OPEN
    deliver(s, message(8), message(9))  # a duplicate, then the next one
    assert seqs(sent(s)) == [("msg", 9)]


def test_live_entries_wait_while_a_sync_replays_and_follow_it_in_order():
    s = authed(session(), inbox_seq=4)
    assert s.on_data(wire(p.Sync(inbox_after=1, id="y1"))) == [fx.ReadPage(1, PAGE)]
    assert s.state is State.REPLAYING
    deliver(s, message(5), message(6))
    assert sent(s) == []
    s.on_page([message(2), message(3), message(4), message(5)])
    assert seqs(sent(s)) == [("msg", 2), ("msg", 3), ("msg", 4), ("msg", 5), ("msg", 6), ("synced", None)]
    assert s.state is State.OPEN


def test_a_full_page_reads_the_next_one():
    s = authed(session(page_size=2), inbox_seq=5)
    s.on_data(wire(p.Sync(inbox_after=0, id="y1")))
    assert s.on_page([message(1), message(2)]) == [fx.ReadPage(2, 2)]
    assert s.on_page([message(3), message(4)]) == [fx.ReadPage(4, 2)]
    assert s.on_page([message(5)]) == ()
    assert seqs(sent(s)) == [("msg", q) for q in range(1, 6)] + [("synced", None)]


def test_a_gap_seen_live_replays_from_the_last_seq_sent():
    s = authed(session(), inbox_seq=5)
    assert deliver(s, message(7)) == [fx.ReadPage(5, PAGE)]  # 6 was lost on the way
    assert s.state is State.REPLAYING and sent(s) == []
    s.on_page([message(6), message(7)])
    assert seqs(sent(s)) == [("msg", 6), ("msg", 7)]  # no synced: no frame asked for one
    assert s.state is State.OPEN


def test_a_sync_while_replaying_waits_for_the_outstanding_page_then_reads_again():
    s = authed(session(), inbox_seq=3)
    assert s.on_data(wire(p.Sync(inbox_after=2, id="y1"))) == [fx.ReadPage(2, PAGE)]
    assert s.on_data(wire(p.Sync(inbox_after=0, id="y2"))) == ()  # one step at a time
    assert s.on_page([message(3)]) == [fx.ReadPage(0, PAGE)]  # the first page, then again from 0
    assert s.on_page([message(1), message(2), message(3)]) == ()
    frames = sent(s)
    assert seqs(frames) == [("msg", 1), ("msg", 2), ("msg", 3), ("synced", None)]
    assert frames[-1] == p.Synced(inbox_seq=3, complete=True, ref="y2")
    assert s.state is State.OPEN


def test_a_resync_while_the_cursors_are_read_checks_the_store_before_going_live():
    s = session()
    s.start()
    s.on_data(wire(p.Auth(token="tok")))
    s.on_auth_ok(ME, "hash")
    assert s.resync() == ()  # the broker reconnected: one step at a time
    assert s.on_cursors(4, 4, 0, NOW) == [fx.ReadPage(4, PAGE)]
    assert s.on_page([]) == () and s.state is State.OPEN


def test_the_replay_pauses_while_the_outbox_is_over_half_full():
    one = len(p.msg_frame(message(1)))
    s = authed(session(outbox_bytes=4 * one), inbox_seq=6)  # half full after two frames
    s.on_data(wire(p.Sync(inbox_after=0, id="y1")))
    assert s.on_page([message(q) for q in range(1, 7)]) == [fx.AwaitRoom()]
    assert seqs(sent(s)) == [("msg", 1), ("msg", 2), ("msg", 3)]  # over half after the third
    assert s.on_room() == [fx.AwaitRoom()]
    assert seqs(sent(s)) == [("msg", 4), ("msg", 5), ("msg", 6)]
    assert s.on_room() == ()
    assert seqs(sent(s)) == [("synced", None)]
    assert s.state is State.OPEN and s.closing is None


def test_a_store_gap_is_logged_and_skipped_rather_than_read_forever():
    s = authed(session(), inbox_seq=5)
    s.on_data(wire(p.Sync(inbox_after=1)))
    effects = s.on_page([message(4), message(5)])
    assert effects == [fx.LogError(f"inbox of user {ME} has a gap after seq 1")]
    assert seqs(sent(s)) == [("msg", 4), ("msg", 5), ("synced", None)]


def test_a_failed_read_says_so_and_closes_for_a_resume():
    s = authed(session())
    s.on_data(wire(p.Sync(inbox_after=0, id="y1")))
    effects = s.on_read_failed(Unavailable("the database is not answering"))
    assert effects == [fx.Close(p.CLOSE_GOING_AWAY, "could not read your inbox: reconnect and sync", flush=True)]
    assert sent(s) == [p.Error("unavailable", "the database is not answering", "y1")]
    assert s.on_page([message(1)]) == () and sent(s) == []  # the page in flight is dropped


# -- slow consumers ---------------------------------------------------------------------------


def test_a_slow_consumer_is_closed_with_4008_and_typing_goes_first():
    one = len(p.msg_frame(message(1)))
    s = authed(session(outbox_bytes=3 * one))
    typing = p.encode(p.TypingEvent(conversation_id=50, user_id=BOB))
    assert s.push(typing, droppable=True) == ()
    assert deliver(s, message(1), message(2)) == []
    assert deliver(s, message(3)) == []  # fits once the typing frame is dropped
    effects = deliver(s, message(4))
    assert effects == [fx.Close(p.CLOSE_SLOW_CONSUMER, "too slow: reconnect and sync from your cursor")]
    assert s.state is State.CLOSING
    assert seqs(sent(s)) == [("msg", 1), ("msg", 2), ("msg", 3)]  # nothing is queued after the close
    assert deliver(s, message(5)) == [] and s.push(typing) == () and sent(s) == []


# -- posts ------------------------------------------------------------------------------------


def test_a_posts_replay_buffers_live_posts_and_sends_each_once_in_order():
    s = session()
    effects = resuming(s, inbox_after=None, posts_after=10, inbox_seq=0, posts_position=20)
    assert effects == [fx.ReadPage(0, PAGE)]
    sent(s)  # hello
    s.post(21, p.post_frame(post(21)), False)  # live while replaying: buffered
    assert s.on_page([]) == [fx.ReadPosts(10, PAGE)]
    s.post(22, p.post_frame(post(22)), False)
    s.post(15, p.post_frame(post(15), tombstone=True), True)  # a takedown of one being replayed
    assert sent(s) == []
    assert s.on_posts([post(12), post(15), post(21)]) == ()
    frames = sent(s)
    assert [(f.type, f.position) for f in frames[:-1]] == [
        ("post", 12), ("post", 15), ("post", 21), ("tombstone", 15), ("post", 22),  # 21 once
    ]
    assert frames[-1] == p.Synced(inbox_seq=0, complete=True, ref="a1", posts_seq=22)
    assert s.state is State.OPEN
    s.post(22, p.post_frame(post(22)), False)  # a repeat is not sent twice
    s.post(23, p.post_frame(post(23)), False)
    assert [f.position for f in sent(s)] == [23]


def test_a_fresh_connection_sends_posts_newer_than_the_latest_position_only():
    s = session()
    s.start()
    s.on_data(wire(p.Auth(token="tok")))
    s.on_auth_ok(ME, "hash")
    s.post(7, p.post_frame(post(7)), False)  # committed before the position was read
    s.post(9, p.post_frame(post(9)), False)  # and after
    s.on_cursors(0, 0, 8, NOW)
    assert [f.type for f in sent(s)] == ["hello", "post"]
    assert s.posts_delivered == 9


def test_a_gap_during_the_posts_replay_sends_the_inbox_again_before_synced():
    s = authed(session(), inbox_seq=5)
    s.on_data(wire(p.Sync(inbox_after=5, posts_after=0, id="y1")))
    assert s.on_page([]) == [fx.ReadPosts(0, PAGE)]
    assert deliver(s, message(7)) == []  # 6 missing: read again once the posts are through
    assert s.on_posts([post(1)]) == [fx.ReadPage(5, PAGE)]
    assert s.state is State.REPLAYING
    s.on_page([message(6), message(7)])
    frames = sent(s)
    assert seqs(frames) == [("post", None), ("msg", 6), ("msg", 7), ("synced", None)]
    assert frames[-1] == p.Synced(inbox_seq=7, complete=True, ref="y1", posts_seq=1)
    assert s.state is State.OPEN


def test_a_full_page_of_posts_reads_the_next_one_from_the_last_position_sent():
    s = session(page_size=2)
    assert resuming(s, inbox_after=0, posts_after=0, inbox_seq=0) == [fx.ReadPage(0, 2)]
    assert s.on_page([]) == [fx.ReadPosts(0, 2)]
    assert s.on_posts([post(3), post(5)]) == [fx.ReadPosts(5, 2)]
    assert s.on_posts([post(8)]) == ()
    frames = sent(s)[1:]  # after the hello
    assert [f.position for f in frames[:-1]] == [3, 5, 8]
    assert frames[-1] == p.Synced(inbox_seq=0, complete=True, ref="a1", posts_seq=8)
