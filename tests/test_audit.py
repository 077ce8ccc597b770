"""The audit chain: tampering is detected and the right row named.

Every case runs on SQLite and PostgreSQL, through the service and through
``imserver audit verify`` (in-process, against the test's database by URL).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import make_url, text

from imserver import cli
from imserver.domain.clock import FrozenClock
from imserver.domain.enums import Role
from imserver.services.audit import AuditLog
from imserver.store import audit
from imserver.store.audit import Anchor, BreakKind

from .conftest import free_port
from .helpers import operator

ROWS = 6
BEIJING = timezone(timedelta(hours=8))


async def fill(db, n: int = ROWS) -> None:
    """n rows with awkward values: a non-UTC clock, microseconds, non-ASCII text."""
    start = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=BEIJING)
    async with db.transaction() as conn:
        for i in range(n):
            await audit.append(
                conn,
                at=start + timedelta(seconds=i, microseconds=i),
                actor_kind="operator",
                actor_id=i + 1,
                action="test.action",
                subject=f"user:{i}",
                detail={"i": i, "note": "审核 ok", "when": start},
            )


async def sql(db, *statements: str) -> None:
    async with db.transaction() as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def head(db) -> Anchor:
    async with db.transaction() as conn:
        row_id, row_hash = await audit.head(conn)
    return Anchor(row_id, row_hash)


@pytest.fixture
def cli_url(database_url, monkeypatch) -> str:
    """Point `imserver` (Settings) at the test's database."""
    url, search_path = database_url
    if search_path:
        url = make_url(url).update_query_dict({"search_path": search_path}).render_as_string(hide_password=False)
    monkeypatch.setenv("IMSERVER_DATABASE_URL", url)
    return url


async def run_cli(*argv: str) -> int:
    # main() runs its own event loop (asyncio.run), so it gets a thread of its own.
    return await asyncio.to_thread(cli.main, list(argv))


# -- an intact chain ---------------------------------------------------------------------


async def test_intact_chain_verifies(db, cli_url, capsys):
    await fill(db)
    report = await AuditLog(db, FrozenClock()).verify()
    assert report.ok and report.checked == ROWS and report.head_id == ROWS
    expected_head = await head(db)
    assert report.head == str(expected_head)

    assert await run_cli("audit", "verify") == 0
    out = capsys.readouterr().out
    assert f"rows checked: {ROWS}" in out
    assert f"head: {expected_head}" in out
    # The printed head is the anchor a later run checks against.
    assert await run_cli("audit", "verify", "--expect-head", str(expected_head)) == 0


async def test_times_in_any_zone_hash_the_same_after_the_round_trip(db):
    """A clock in +08:00 hashes the same as the UTC value read back from either backend."""
    await fill(db, 2)
    async with db.transaction() as conn:
        rows = await audit.page(conn)
    assert rows[0]["at"] == datetime(2026, 3, 1, 1, 30, 15, 123456, tzinfo=UTC)
    assert rows[0]["at"].utcoffset() == timedelta(0)
    assert json.loads(rows[0]["detail"])["note"] == "审核 ok"
    assert (await AuditLog(db, FrozenClock()).verify()).ok


async def test_an_empty_chain_is_intact(db, cli_url, capsys):
    report = await AuditLog(db, FrozenClock()).verify()
    assert report.ok and report.checked == 0 and report.head is None
    assert await run_cli("audit", "verify") == 0
    assert "head: none" in capsys.readouterr().out


# -- tampering ----------------------------------------------------------------------------

SWAP_3_4 = (
    "UPDATE audit_log SET id = -3 WHERE id = 3",
    "UPDATE audit_log SET id = 3 WHERE id = 4",
    "UPDATE audit_log SET id = 4 WHERE id = -3",
)

TAMPERING = {
    # name: (statements, first row named, kind)
    "edited detail": (["UPDATE audit_log SET detail = '{}' WHERE id = 3"], 3, BreakKind.CHANGED),
    "edited actor": (["UPDATE audit_log SET actor_id = 42 WHERE id = 4"], 4, BreakKind.CHANGED),
    "edited hash": (["UPDATE audit_log SET hash = '" + "a" * 64 + "' WHERE id = 5"], 5, BreakKind.CHANGED),
    "deleted middle row": (["DELETE FROM audit_log WHERE id = 3"], 3, BreakKind.REMOVED),
    "deleted first row": (["DELETE FROM audit_log WHERE id = 1"], 1, BreakKind.REMOVED),
    "swapped rows": (list(SWAP_3_4), 3, BreakKind.REORDERED),
    "deleted and renumbered": (
        ["DELETE FROM audit_log WHERE id = 2", "UPDATE audit_log SET id = id - 1 WHERE id > 2"],
        2,
        BreakKind.REORDERED,
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING))
async def test_tampering_is_detected_and_the_row_named(db, cli_url, capsys, case):
    statements, row_id, kind = TAMPERING[case]
    await fill(db)
    await sql(db, *statements)

    report = await AuditLog(db, FrozenClock()).verify()
    assert not report.ok
    assert (report.broken.row_id, report.broken.kind) == (row_id, kind), report.broken
    assert report.checked == row_id - 1  # every row before the break verified

    assert await run_cli("audit", "verify") == cli.AUDIT_BROKEN
    err = capsys.readouterr().err
    assert f"BROKEN at row {row_id} ({kind.value})" in err


async def test_a_truncated_tail_is_caught_only_with_the_anchor(db, cli_url, capsys):
    await fill(db)
    anchor = await head(db)
    await sql(db, f"DELETE FROM audit_log WHERE id > {ROWS - 2}")

    # What is left is a valid chain: without an anchor nothing can tell.
    assert (await AuditLog(db, FrozenClock()).verify()).ok
    assert await run_cli("audit", "verify") == 0

    report = await AuditLog(db, FrozenClock()).verify(anchor=anchor)
    assert not report.ok
    assert (report.broken.row_id, report.broken.kind) == (ROWS - 1, BreakKind.REMOVED)
    capsys.readouterr()
    assert await run_cli("audit", "verify", "--expect-head", str(anchor)) == cli.AUDIT_BROKEN
    assert f"BROKEN at row {ROWS - 1} (removed)" in capsys.readouterr().err


async def test_a_truncated_and_regrown_tail_is_caught_by_the_anchor(db):
    """Rows cut from the end and new ones appended in their place: the anchored row's hash differs."""
    await fill(db)
    anchor = await head(db)
    await sql(db, f"DELETE FROM audit_log WHERE id > {ROWS - 2}")
    await fill(db, 3)
    report = await AuditLog(db, FrozenClock()).verify(anchor=anchor)
    assert (report.broken.row_id, report.broken.kind) == (ROWS, BreakKind.REWRITTEN)


async def test_a_recomputed_chain_is_caught_by_the_anchor(db, cli_url, capsys):
    """Someone edits row 2 and recomputes every hash after it: consistent, but not the anchored chain."""
    await fill(db)
    anchor = await head(db)
    async with db.transaction() as conn:
        rows = await audit.page(conn)
        prev = rows[0]["hash"]
        for row in rows[1:]:
            if row["id"] == 2:
                row["detail"] = '{"i":-1}'
            row["prev_hash"], row["hash"] = prev, audit.chain_hash(prev, row)
            prev = row["hash"]
            await conn.execute(
                text("UPDATE audit_log SET detail = :d, prev_hash = :p, hash = :h WHERE id = :id"),
                {"d": row["detail"], "p": row["prev_hash"], "h": row["hash"], "id": row["id"]},
            )
    assert (await AuditLog(db, FrozenClock()).verify()).ok
    report = await AuditLog(db, FrozenClock()).verify(anchor=anchor)
    assert (report.broken.row_id, report.broken.kind) == (ROWS, BreakKind.REWRITTEN)
    assert await run_cli("audit", "verify", "--expect-head", str(anchor)) == cli.AUDIT_BROKEN
    assert f"BROKEN at row {ROWS} (rewritten)" in capsys.readouterr().err


async def test_an_anchor_older_than_the_head_still_verifies(db):
    await fill(db, 3)
    anchor = await head(db)
    await fill(db, 3)
    report = await AuditLog(db, FrozenClock()).verify(anchor=anchor)
    assert report.ok and report.head_id == 6


async def test_verify_walks_more_than_one_page(db, monkeypatch):
    monkeypatch.setattr(audit, "VERIFY_PAGE", 4)  # 10 rows: pages of 4, 4 and 2
    await fill(db, 10)
    assert (await AuditLog(db, FrozenClock()).verify()).checked == 10
    await sql(db, "UPDATE audit_log SET action = 'x' WHERE id = 9")
    assert (await AuditLog(db, FrozenClock()).verify()).broken.row_id == 9


# -- the command line's own errors -----------------------------------------------------------


def test_a_malformed_anchor_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["audit", "verify", "--expect-head", "12:nothex"])
    assert exc.value.code == 2
    assert "ID:HASH" in capsys.readouterr().err


def test_an_unreachable_database_is_not_reported_as_intact(monkeypatch, capsys):
    monkeypatch.setenv("IMSERVER_DATABASE_URL", f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test")
    assert cli.main(["audit", "verify"]) == cli.AUDIT_UNCHECKED
    assert "not checked" in capsys.readouterr().err


# -- the admin API -----------------------------------------------------------------------------


async def test_admin_pages_through_the_log_and_is_recorded(http, app):
    services = app.state.services
    await fill(services.db, 5)
    op = await operator(http, services, Role.COMPLIANCE)  # appends operator.create and operator.login
    r = await http.get("/admin/v1/audit", params={"limit": 4}, headers=op["headers"])
    assert r.status_code == 200, r.text
    first = r.json()
    assert [e["id"] for e in first["items"]] == [1, 2, 3, 4] and first["next_cursor"]
    assert first["total"] == 7  # five filled rows, operator.create, operator.login
    assert first["items"][0]["detail"]["note"] == "审核 ok"
    assert first["items"][1]["prev_hash"] == first["items"][0]["hash"]
    r = await http.get(
        "/admin/v1/audit", params={"cursor": first["next_cursor"], "limit": 100}, headers=op["headers"]
    )
    rest = r.json()
    actions = [e["action"] for e in rest["items"]]
    # The first read is itself in the log; the last page says there is no more.
    assert actions[-3:] == ["operator.create", "operator.login", "audit.read"]
    assert rest["items"][-1]["actor_id"] == op["id"] and rest["next_cursor"] is None


async def test_admin_verify(http, app):
    services = app.state.services
    await fill(services.db, 4)
    op = await operator(http, services, Role.ADMIN)
    r = await http.get("/admin/v1/audit/verify", headers=op["headers"])
    body = r.json()
    assert r.status_code == 200 and body["ok"] is True and body["break"] is None
    assert body["checked"] == 6 and body["head"]["id"] == 6
    anchor = f"{body['head']['id']}:{body['head']['hash']}"

    await sql(services.db, "UPDATE audit_log SET subject = 'user:other' WHERE id = 2")
    r = await http.get("/admin/v1/audit/verify", params={"expect_head": anchor}, headers=op["headers"])
    body = r.json()
    assert r.status_code == 200 and body["ok"] is False
    assert body["break"]["row_id"] == 2 and body["break"]["kind"] == "changed"
    assert body["checked"] == 1 and body["anchor"] == anchor

    # Each verification is an operator action in the log too.
    async with services.db.transaction() as conn:
        rows = await audit.page(conn, after=6)
    assert [r["action"] for r in rows] == ["audit.verify", "audit.verify"]
    assert json.loads(rows[1]["detail"])["break_row"] == 2


async def test_admin_audit_needs_compliance_or_admin(http, app):
    services = app.state.services
    for role in (Role.REVIEWER, Role.MODERATOR):
        op = await operator(http, services, role)
        for path in ("/admin/v1/audit", "/admin/v1/audit/verify"):
            r = await http.get(path, headers=op["headers"])
            assert r.status_code == 403 and r.json()["code"] == "forbidden", (role, path)
    for path in ("/admin/v1/audit", "/admin/v1/audit/verify"):
        assert (await http.get(path)).status_code == 401
    for role in (Role.COMPLIANCE, Role.ADMIN):
        op = await operator(http, services, role)
        assert (await http.get("/admin/v1/audit", headers=op["headers"])).status_code == 200


async def test_admin_audit_bad_parameters(http, app):
    op = await operator(http, app.state.services, Role.COMPLIANCE)
    for params, code in (
        ({"limit": 0}, "page_too_large"),
        ({"limit": 1001}, "page_too_large"),
        ({"limit": "x"}, "malformed"),
        ({"cursor": "x"}, "invalid_cursor"),
        ({"actor_kind": "robot"}, "malformed"),
    ):
        r = await http.get("/admin/v1/audit", params=params, headers=op["headers"])
        assert r.status_code == 422 and r.json()["code"] == code, params
    r = await http.get("/admin/v1/audit/verify", params={"expect_head": "7:abc"}, headers=op["headers"])
    assert r.status_code == 422 and r.json()["code"] == "malformed"
