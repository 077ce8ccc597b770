"""Retention and legal holds: the purge removes only what is past retention and not held,
records what it purged (never contents), keeps the chain intact, and refuses to cut
under the legal floor."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from imserver.domain.clock import FrozenClock
from imserver.domain.enums import Role
from imserver.domain.errors import BadRequest, Code
from imserver.domain.principals import Principal
from imserver.domain.retention import id_ranges
from imserver.services.records import Records
from imserver.services.retention import LegalHolds, Retention
from imserver.store import audit
from imserver.store.tables import (
    access_log,
    conversation_members,
    conversations,
    inbox,
    messages,
    metadata,
    sanction_events,
    sanctions,
    users,
)

from .helpers import operator
from .test_records import filler

NOW = FrozenClock().now()
OLD = NOW - timedelta(days=200)  # past the 180-day floor
RECENT = NOW - timedelta(days=10)
PERIODS = {
    "messages": 180, "posts": 180, "access_log": 180, "policy_decisions": 180, "sanctions": 365, "audit": 365, "identity": 30,
}
COMPLIANCE = Principal("operator", 99, "x", Role.COMPLIANCE)


def retention(db, batch: int = 1000, **periods) -> Retention:
    return Retention(db, FrozenClock(NOW), {**PERIODS, **periods}, batch=batch, interval_hours=0)


async def world(db) -> None:
    """Users 1-3, conversation i with user i as member, and for each user: an old and a
    recent message and an old and a recent sign-in."""
    async with db.transaction() as conn:
        for table in (users, conversations, conversation_members):
            for i in (1, 2, 3):
                await conn.execute(insert(table).values(filler(table, i)))
        for i in (1, 2, 3):
            for n, at in enumerate((OLD, RECENT)):
                values = {**filler(messages, i), "client_msg_id": f"c{i}-{n}", "created_at": at}
                mid = (await conn.execute(insert(messages).values(values).returning(messages.c.id))).scalar_one()
                await conn.execute(insert(inbox).values(user_id=i, seq=n + 1, message_id=mid))
                log_row = {**filler(access_log, i), "at": at, "principal_kind": "user", "principal_id": i}
                await conn.execute(insert(access_log).values(log_row))


async def remaining(db, table, column) -> list[int]:
    async with db.read() as conn:
        return sorted((await conn.execute(select(column))).scalars().all())


async def test_purge_removes_only_what_is_past_retention(db):
    await world(db)
    result = await retention(db).purge(["messages", "access_log"])
    assert result == {"messages": {"messages": 3, "inbox": 3}, "access_log": {"access_log": 3}}
    async with db.read() as conn:
        assert (await conn.execute(select(func.min(messages.c.created_at)))).scalar_one() == RECENT
        assert (await conn.execute(select(func.min(access_log.c.at)))).scalar_one() == RECENT
        assert (await conn.execute(select(func.count()).select_from(messages))).scalar_one() == 3
    report = await Records(db, FrozenClock()).verify()
    assert report.ok, report.to_dict()


async def test_each_batch_writes_a_record_of_counts_and_ranges_never_contents(db):
    await world(db)
    await retention(db, batch=2).purge(["access_log"])  # 3 old rows: batches of 2 and 1
    async with db.read() as conn:
        rows = [r for r in await audit.page(conn, limit=100) if r["action"] == "retention.purge"]
    details = [json.loads(r["detail"]) for r in rows]
    assert [d["counts"] for d in details] == [{"access_log": 2}, {"access_log": 1}]
    assert [d["id_ranges"] for d in details] == [{"access_log": [[1, 1], [3, 3]]}, {"access_log": [[5, 5]]}]
    assert all(d["kind"] == "access_log" and d["cutoff"] for d in details)
    text = json.dumps(details)
    assert "user_agent" not in text and "ip-" not in text  # no contents of the rows


async def test_a_legal_hold_suspends_purging_what_it_covers(db):
    await world(db)
    holds = LegalHolds(db, FrozenClock(NOW))
    user_hold = await holds.place(COMPLIANCE, subject_kind="user", subject_id=2, reason="inquiry 2026-17")
    await holds.place(COMPLIANCE, subject_kind="conversation", subject_id=3, reason="court order")
    await retention(db).purge(["messages", "access_log"])
    async with db.read() as conn:
        old_messages = (await conn.execute(select(messages.c.conversation_id).where(messages.c.created_at == OLD))).scalars().all()
        old_logs = (await conn.execute(select(access_log.c.principal_id).where(access_log.c.at == OLD))).scalars().all()
    assert sorted(old_messages) == [2, 3]  # user 2's (held) and conversation 3's (held)
    assert old_logs == [2]
    await holds.release(COMPLIANCE, user_hold["id"], reason="inquiry closed")
    await retention(db).purge(["messages", "access_log"])
    async with db.read() as conn:
        old_messages = (await conn.execute(select(messages.c.conversation_id).where(messages.c.created_at == OLD))).scalars().all()
    assert old_messages == [3]
    assert (await Records(db, FrozenClock()).verify()).ok


async def test_a_hold_on_a_member_covers_the_conversation(db):
    await world(db)
    async with db.transaction() as conn:  # user 1 is also a member of conversation 2
        await conn.execute(insert(conversation_members).values({**filler(conversation_members, 2), "user_id": 1}))
    await LegalHolds(db, FrozenClock(NOW)).place(COMPLIANCE, subject_kind="user", subject_id=1, reason="r")
    await retention(db).purge(["messages"])
    async with db.read() as conn:
        old = (await conn.execute(select(messages.c.conversation_id).where(messages.c.created_at == OLD))).scalars().all()
    assert sorted(old) == [1, 2]


async def test_ended_sanctions_go_with_their_events_after_years(db):
    async with db.transaction() as conn:
        for i in (1, 2):
            await conn.execute(insert(users).values(filler(users, i)))
        old = {**filler(sanctions, 1), "created_at": NOW - timedelta(days=800), "ends_at": NOW - timedelta(days=790)}
        running = {**filler(sanctions, 2), "created_at": NOW - timedelta(days=800), "ends_at": None}
        for row in (old, running):
            await conn.execute(insert(sanctions).values(row))
        await conn.execute(insert(sanction_events).values({**filler(sanction_events, 1), "sanction_id": 1}))
    assert (await retention(db).purge(["sanctions"]))["sanctions"] == {
        "sanction_events": 1, "appeals": 0, "regulator_outbox": 0, "sanctions": 1,
    }
    assert await remaining(db, sanctions, sanctions.c.id) == [2]  # permanent: kept
    assert (await Records(db, FrozenClock()).verify()).ok


@pytest.mark.parametrize("kind", ["messages", "access_log", "posts", "policy_decisions", "sanctions", "audit"])
async def test_a_purge_under_the_legal_floor_is_refused_and_deletes_nothing(db, kind):
    await world(db)
    with pytest.raises(BadRequest) as exc:
        await retention(db).purge(["messages", kind], days=90 if kind not in ("sanctions", "audit") else 300)
    assert exc.value.code is Code.RETENTION_BELOW_MINIMUM
    assert len(await remaining(db, messages, messages.c.id)) == 6
    configured = retention(db, **{kind: 30})
    with pytest.raises(BadRequest):
        await configured.purge()
    assert len(await remaining(db, access_log, access_log.c.id)) == 6


# -- the admin API -------------------------------------------------------------------------------


async def test_holds_over_the_api(http, app):
    services = app.state.services
    comp = await operator(http, services, Role.COMPLIANCE)
    mod = await operator(http, services, Role.MODERATOR)
    async with services.db.transaction() as conn:
        user_id = (await conn.execute(insert(users).values(filler(users, 7)).returning(users.c.id))).scalar_one()
    body = {"subject_kind": "user", "subject_id": user_id, "reason": "  "}
    r = await http.post("/admin/v1/legal-holds", json=body, headers=comp["headers"])
    assert r.status_code == 422 and r.json()["code"] == "hold_reason_required"
    r = await http.post("/admin/v1/legal-holds", json={**body, "subject_id": 404, "reason": "x"}, headers=comp["headers"])
    assert r.status_code == 404 and r.json()["code"] == "hold_subject_not_found"
    r = await http.post("/admin/v1/legal-holds", json={**body, "reason": "inquiry"}, headers=mod["headers"])
    assert r.status_code == 403
    r = await http.post("/admin/v1/legal-holds", json={**body, "reason": "inquiry"}, headers=comp["headers"])
    assert r.status_code == 201 and r.json()["active"] is True
    hold_id = r.json()["id"]
    r = await http.post(f"/admin/v1/legal-holds/{hold_id}/release", json={"reason": "done"}, headers=mod["headers"])
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = await http.get("/admin/v1/legal-holds", headers=comp["headers"])
    assert [h["id"] for h in r.json()["holds"]] == [hold_id]
    r = await http.post(f"/admin/v1/legal-holds/{hold_id}/release", json={"reason": ""}, headers=comp["headers"])
    assert r.status_code == 422 and r.json()["code"] == "hold_reason_required"
    r = await http.post(f"/admin/v1/legal-holds/{hold_id}/release", json={"reason": "done"}, headers=comp["headers"])
    assert r.status_code == 200 and r.json()["active"] is False
    r = await http.post(f"/admin/v1/legal-holds/{hold_id}/release", json={"reason": "again"}, headers=comp["headers"])
    assert r.status_code == 409 and r.json()["code"] == "hold_released"


async def test_retention_table_and_refused_purge_over_the_api(http, app):
    services = app.state.services
    comp = await operator(http, services, Role.COMPLIANCE)
    r = await http.get("/admin/v1/retention", headers=comp["headers"])
    kinds = {k["kind"]: k for k in r.json()["kinds"]}
    assert kinds["access_log"]["days"] >= kinds["access_log"]["minimum_days"] == 180
    r = await http.post("/admin/v1/retention/purge", json={"kinds": ["access_log"], "days": 30}, headers=comp["headers"])
    assert r.status_code == 422 and r.json()["code"] == "retention_below_minimum"
    r = await http.post("/admin/v1/retention/purge", json={"kinds": ["nonsense"]}, headers=comp["headers"])
    assert r.status_code == 422 and r.json()["code"] == "unknown_record_kind"
    r = await http.post("/admin/v1/retention/purge", json={}, headers=comp["headers"])
    assert r.status_code == 200 and set(r.json()["purged"]) == {"messages", "posts", "access_log", "policy_decisions", "sanctions", "audit", "identity"}


def test_id_ranges():
    assert id_ranges([5, 1, 2, 3, 9, 10]) == [[1, 3], [5, 5], [9, 10]]
    assert id_ranges([]) == []
    assert len(id_ranges(list(range(0, 1000, 2)))) == 500


def test_every_record_table_is_known_to_the_metadata():
    assert {"legal_holds", "account_deletions", "access_log"} <= set(metadata.tables)


async def test_the_audit_log_is_purged_from_its_start_and_still_verifies(db, settings):
    from imserver.services.audit import AuditLog

    from .test_checkpoints import checkpoints

    async with db.transaction() as conn:
        held_user = (await conn.execute(insert(users).values(filler(users, 1)).returning(users.c.id))).scalar_one()
        for i in range(6):
            old = NOW - timedelta(days=400 - i)
            subject = f"user:{held_user}" if i == 4 else f"user:{100 + i}"
            await audit.append(conn, at=old, actor_kind="system", actor_id=None, action="test.old", subject=subject)
        await audit.append(conn, at=RECENT, actor_kind="system", actor_id=None, action="test.recent", subject=None)
    cp = await checkpoints(db, settings, FrozenClock(NOW)).take()  # its audit head will survive
    await LegalHolds(db, FrozenClock(NOW)).place(COMPLIANCE, subject_kind="user", subject_id=held_user, reason="r")
    result = await retention(db).purge(["audit"])
    assert result == {"audit": {"audit_log": 4}}  # rows 1-4; row 5 is about the held user, so the run stops
    async with db.read() as conn:
        first = (await audit.page(conn, limit=1))[0]
    assert first["id"] == 5
    report = await AuditLog(db, FrozenClock()).verify()
    assert report.ok, report.to_dict()
    assert (await Records(db, FrozenClock()).verify()).ok
    checked = await checkpoints(db, settings).verify(cp["public_key"])
    assert checked.ok, (checked.problems, checked.audit.to_dict())
    # The purged part cannot come back unnoticed, nor can a row after it go.
    from .helpers import tamper

    await tamper(db, "DELETE FROM audit_log WHERE id = 5")
    broken = await AuditLog(db, FrozenClock()).verify()
    assert broken.broken.row_id == 5 and broken.broken.kind.value == "removed"


async def test_the_last_audit_row_is_never_purged(db):
    async with db.transaction() as conn:
        await audit.append(conn, at=OLD - timedelta(days=400), actor_kind="system", actor_id=None, action="only")
    assert await retention(db).purge(["audit"]) == {"audit": {}}
    async with db.read() as conn:
        rows = await audit.page(conn)
    assert [r["action"] for r in rows] == ["only"]
