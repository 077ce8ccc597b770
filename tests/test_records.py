"""One chain over every record table, and the database refusing to rewrite records.

For every record table, on SQLite and PostgreSQL: a changed, deleted, reordered
(swapped) or inserted row is found by verification and named by table and id;
direct UPDATE and DELETE are refused by the database; the retention purge's gate
lets a delete through and leaves a chain that still verifies.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Boolean, Integer, String, Text, insert, make_url, select, text
from sqlalchemy.exc import DBAPIError

from imserver import cli
from imserver.domain.clock import FrozenClock
from imserver.services.records import Records
from imserver.store import chain
from imserver.store.tables import metadata, public_accounts, record_chain, sanctions, users
from imserver.store.types import UTCDateTime

from .helpers import tamper

T0 = datetime(2026, 5, 1, 8, 0, 0, 123456, tzinfo=UTC)
RECORD_TABLES = list(chain.RECORD_TABLES)
# Tables a record table's rows refer to, seeded first (ids 1..3).
NEEDS = {"sanction_events": ["sanctions"], "appeals": ["sanctions"], "public_account_filings": ["public_accounts"]}


def filler(table, i: int) -> dict:
    """Values for row i (1-based) of any table: ids point at rows 1..3, strings unique."""
    values = {}
    for col in table.columns:
        if col.name == "id":
            continue
        if isinstance(col.type, UTCDateTime):
            values[col.name] = T0 + timedelta(seconds=i)
        elif isinstance(col.type, Boolean):
            values[col.name] = False
        elif isinstance(col.type, Integer) or col.type.__class__.__name__ in {"BigInteger", "Id"}:
            values[col.name] = i
        elif isinstance(col.type, String) and not isinstance(col.type, Text):
            length = col.type.length or 64
            values[col.name] = f"{col.name[: max(1, length - 4)]}-{i}"[:length]
        else:
            values[col.name] = f'{{"{col.name}":"值 {i}"}}'
    return values


async def seed(db, name: str, n: int = 3, rows: int | None = None) -> None:
    async with db.transaction() as conn:
        for dep in ["users", *NEEDS.get(name, [])] + (["users"] if name == "public_account_filings" else []):
            table = metadata.tables[dep]
            if (await conn.execute(select(table.c.id).limit(1))).first() is None:
                for i in range(1, n + 1):
                    await conn.execute(insert(table).values(filler(table, i)))
        if name == "public_account_filings" and (await conn.execute(select(public_accounts.c.id))).first() is None:
            for i in range(1, n + 1):
                await conn.execute(insert(public_accounts).values(filler(public_accounts, i)))
        table = metadata.tables[name]
        for i in range(1, (n if rows is None else rows) + 1):
            await conn.execute(insert(table).values(filler(table, i)))


def records(db) -> Records:
    return Records(db, FrozenClock())


def an_edit(name: str) -> str:
    """A SET clause editing a chained column of `name`: its first text column, else a number."""
    table, free = chain.RECORD_TABLES[name]
    chained = [c for c in table.columns if c.name not in free and c.name != "id"]
    text_col = next((c.name for c in chained if isinstance(c.type, String)), None)
    if text_col:
        return f"{text_col} = 'forged'"
    number = next(c.name for c in chained if not isinstance(c.type, UTCDateTime))
    return f"{number} = {number} + 100"


def problems(report) -> set[tuple[str, int, str]]:
    return {(p.table, p.row_id, p.kind) for p in report.problems}


# -- intact -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECORD_TABLES)
async def test_every_record_table_is_chained(db, name):
    await seed(db, name)
    report = await records(db).verify()
    assert report.ok, report.to_dict()
    async with db.read() as conn:
        named = (await conn.execute(select(record_chain.c.row_id).where(record_chain.c.table_name == name))).all()
    assert sorted(r[0] for r in named) == [1, 2, 3]
    assert report.entries >= 3 and report.pending == 0


async def test_legitimate_updates_of_chained_columns_are_chained_too(db):
    """A report's outcome changes through UPDATE: allowed, and the new outcome is what is checked."""
    await seed(db, "reports")
    async with db.transaction() as conn:
        await conn.execute(text("UPDATE reports SET status = 'actioned', resolution_note = 'ok' WHERE id = 2"))
    report = await records(db).verify()
    assert report.ok, report.to_dict()
    await tamper(db, "UPDATE reports SET status = 'dismissed' WHERE id = 2")
    assert problems(await records(db).verify()) == {("reports", 2, "changed")}


# -- tampering, per record table -------------------------------------------------------------


@pytest.mark.parametrize("name", RECORD_TABLES)
async def test_a_changed_row_is_named(db, name):
    await seed(db, name)
    await records(db).seal_pending()
    await tamper(db, f"UPDATE {name} SET {an_edit(name)} WHERE id = 2")
    report = await records(db).verify()
    assert problems(report) == {(name, 2, "changed")}


@pytest.mark.parametrize("name", RECORD_TABLES)
async def test_a_deleted_row_is_named(db, name):
    await seed(db, name)
    await records(db).seal_pending()
    await tamper(db, f"DELETE FROM {name} WHERE id = 2")
    assert problems(await records(db).verify()) == {(name, 2, "deleted")}


@pytest.mark.parametrize("name", RECORD_TABLES)
async def test_swapped_rows_are_named_as_reordered(db, name):
    await seed(db, name)
    await records(db).seal_pending()
    await tamper(
        db,
        f"UPDATE {name} SET id = -1 WHERE id = 1",
        f"UPDATE {name} SET id = 1 WHERE id = 2",
        f"UPDATE {name} SET id = 2 WHERE id = -1",
    )
    assert problems(await records(db).verify()) == {(name, 1, "reordered"), (name, 2, "reordered")}


@pytest.mark.parametrize("name", RECORD_TABLES)
async def test_a_row_inserted_past_the_triggers_is_named(db, name):
    await seed(db, name, rows=2)  # row 3's values are free: it comes in past the triggers
    table = metadata.tables[name]
    values = filler(table, 3)
    columns = ", ".join(["id", *values])
    params = ", ".join([":id", *(f":{k}" for k in values)])
    await tamper(db, f"INSERT INTO {name} ({columns}) VALUES ({params})", params={"id": 9, **values})
    assert problems(await records(db).verify()) == {(name, 9, "inserted")}


async def test_reordered_chain_entries_break_the_chain(db):
    await seed(db, "sanctions")
    await records(db).seal_pending()
    await tamper(
        db,
        "UPDATE record_chain SET seq = -1 WHERE seq = 2",
        "UPDATE record_chain SET seq = 2 WHERE seq = 3",
        "UPDATE record_chain SET seq = 3 WHERE seq = -1",
    )
    report = await records(db).verify()
    assert report.chain_break is not None and report.chain_break.row_id == 2
    assert report.chain_break.kind.value == "reordered"


async def test_the_command_line_names_table_and_row(db, database_url, monkeypatch, capsys):
    url, search_path = database_url
    if search_path:
        url = make_url(url).update_query_dict({"search_path": search_path}).render_as_string(hide_password=False)
    monkeypatch.setenv("IMSERVER_DATABASE_URL", url)
    await seed(db, "sanctions")
    assert await asyncio.to_thread(cli.main, ["audit", "verify"]) == 0
    assert "records intact" in capsys.readouterr().out
    await tamper(db, "DELETE FROM sanctions WHERE id = 3")
    assert await asyncio.to_thread(cli.main, ["audit", "verify"]) == cli.AUDIT_BROKEN
    assert "record sanctions #3 DELETED" in capsys.readouterr().err


# -- append-only in the database --------------------------------------------------------------


async def refused(db, statement: str) -> bool:
    try:
        async with db.transaction() as conn:
            await conn.execute(text(statement))
    except DBAPIError as exc:
        return "record" in str(exc.orig)
    return False


@pytest.mark.parametrize("name", RECORD_TABLES)
async def test_direct_update_and_delete_are_refused(db, name):
    await seed(db, name)
    assert await refused(db, f"DELETE FROM {name} WHERE id = 1")
    assert await refused(db, f"DELETE FROM {name}")
    assert await refused(db, f"UPDATE {name} SET {an_edit(name)} WHERE id = 1")
    async with db.read() as conn:
        assert (await conn.execute(text(f"SELECT count(*) FROM {name}"))).scalar_one() == 3


async def test_delete_from_sanctions_fails(db):
    await seed(db, "sanctions")
    assert await refused(db, "DELETE FROM sanctions")
    async with db.read() as conn:
        assert (await conn.execute(select(sanctions.c.id))).all() != []


async def test_write_once_columns_are_set_once(db):
    await seed(db, "appeals", rows=2)
    table = metadata.tables["appeals"]
    undecided = {**filler(table, 3), "decision": None, "decided_by": None, "decided_at": None, "note": None}
    async with db.transaction() as conn:
        await conn.execute(insert(table).values(undecided))
        await conn.execute(text("UPDATE appeals SET decision = 'upheld', decided_at = :t WHERE id = 3"), {"t": T0})
    assert await refused(db, "UPDATE appeals SET decision = 'overturned' WHERE id = 3")
    assert (await records(db).verify()).ok


async def test_free_bookkeeping_columns_may_change(db):
    await seed(db, "regulator_outbox")
    async with db.transaction() as conn:
        await conn.execute(text("UPDATE regulator_outbox SET attempts = 5, last_error = 'timeout' WHERE id = 1"))
    assert await refused(db, "UPDATE regulator_outbox SET payload = '{}' WHERE id = 1")
    assert (await records(db).verify()).ok


async def test_the_chain_itself_is_append_only(db):
    await seed(db, "sanctions")
    await records(db).seal_pending()
    assert await refused(db, "DELETE FROM record_chain WHERE seq = 1")
    assert await refused(db, "UPDATE record_chain SET digest = 'x' WHERE seq = 1")


async def test_the_purge_deletes_through_the_gate_and_the_chain_stays_intact(db):
    from imserver.services.retention import Retention

    await seed(db, "access_log", rows=2)
    async with db.transaction() as conn:  # a third row, recent
        await conn.execute(insert(metadata.tables["access_log"]).values({**filler(metadata.tables["access_log"], 3), "at": T0 + timedelta(days=190)}))
    periods = {"messages": 180, "posts": 180, "access_log": 180, "policy_decisions": 180, "sanctions": 365, "identity": 0}
    purge = Retention(db, FrozenClock(T0 + timedelta(days=181)), periods, interval_hours=0)
    assert await purge.purge(["access_log"]) == {"access_log": {"access_log": 2}}
    assert await refused(db, "DELETE FROM access_log WHERE id = 3")  # the gate closed with its transaction
    report = await records(db).verify()
    assert report.ok, report.to_dict()
    async with db.read() as conn:
        ops = (await conn.execute(text("SELECT op FROM record_chain WHERE table_name = 'access_log' AND row_id = 2 ORDER BY seq"))).scalars().all()
    assert ops == ["insert", "delete"]


async def test_users_are_not_records(db):
    """Only record tables are guarded: ordinary tables still change."""
    await seed(db, "sanctions")
    async with db.transaction() as conn:
        await conn.execute(text("UPDATE users SET nickname = 'x' WHERE id = 1"))
    async with db.read() as conn:
        assert (await conn.execute(select(users.c.nickname).where(users.c.id == 1))).scalar_one() == "x"


def test_a_column_added_later_keeps_old_digests():
    """A nullable column a later migration adds reads as NULL on old rows: their digests hold."""
    from imserver.store.chain import row_digest

    row = {"id": 1, "kind": "warning", "reason": "r", "ends_at": None}
    assert row_digest("sanctions", row) == row_digest("sanctions", {**row, "added_later": None})
    assert row_digest("sanctions", row) != row_digest("sanctions", {**row, "added_later": "x"})


async def test_a_delete_through_a_gate_opened_by_hand_is_named(db):
    """Opening the purge gate outside the purge gets a row past the triggers, but no purge record covers it."""
    await seed(db, "sanctions")
    async with db.transaction() as conn:
        async with chain.PurgeGate(conn):
            await conn.execute(text("DELETE FROM sanctions WHERE id = 2"))
    report = await records(db).verify()
    assert problems(report) == {("sanctions", 2, "deleted")}
    assert "opened the gate by hand" in report.problems[0].reason


def test_ranges():
    from imserver.services.purged import Ranges

    r = Ranges()
    r.add([[1, 3], [10, 10]])
    r.add([[2, 6]])
    assert [i for i in range(12) if i in r] == [1, 2, 3, 4, 5, 6, 10]
    assert 0 not in Ranges()
    assert r.prefix() == 6 and Ranges().prefix() == 0


async def test_compliance_verifies_the_records_over_http(http, app):
    from imserver.domain.enums import Role

    from .helpers import operator

    services = app.state.services
    comp = await operator(http, services, Role.COMPLIANCE)
    r = await http.get("/admin/v1/records/verify", headers=comp["headers"])
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["entries"] >= 2  # the operator's audit rows
    await tamper(services.db, "UPDATE audit_log SET action = 'forged' WHERE id = 1")
    body = (await http.get("/admin/v1/records/verify", headers=comp["headers"])).json()
    assert body["ok"] is False and body["problems"][0]["table"] == "audit_log" and body["problems"][0]["row_id"] == 1
    mod = await operator(http, services, Role.MODERATOR)
    assert (await http.get("/admin/v1/records/verify", headers=mod["headers"])).status_code == 403


async def test_digests_are_canonical_across_zones_and_backends(db):
    """Times written in +08:00 with microseconds and JSON text with non-ASCII hash as read back."""
    from datetime import timezone

    beijing = timezone(timedelta(hours=8))
    await seed(db, "sanctions", rows=0)
    table = metadata.tables["sanctions"]
    values = {**filler(table, 1), "starts_at": datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=beijing),
              "evidence": '{"note":"审核 ok","n":1}'}
    async with db.transaction() as conn:
        await conn.execute(insert(table).values(values))
    await records(db).seal_pending()
    async with db.read() as conn:
        row = (await conn.execute(select(table))).mappings().one()
        entry = (await conn.execute(select(record_chain.c.digest).where(record_chain.c.table_name == "sanctions"))).scalar_one()
    assert row["starts_at"] == datetime(2026, 3, 1, 1, 30, 15, 123456, tzinfo=UTC)
    assert chain.row_digest("sanctions", {**dict(row), "starts_at": values["starts_at"]}) == entry
    assert (await records(db).verify()).ok
