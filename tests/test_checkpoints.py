"""Signed checkpoints: Ed25519 over the chain heads, in the regulator outbox, and
``imserver audit verify --checkpoints`` catching a truncated tail or a forged signature."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import insert, make_url, select

from imserver import cli
from imserver.domain.clock import FrozenClock
from imserver.domain.enums import Role
from imserver.services.checkpoints import Checkpoints, statement
from imserver.services.records import Records
from imserver.store import signing_key
from imserver.store.tables import checkpoints as checkpoint_table
from imserver.store.tables import regulator_outbox

from .helpers import operator, tamper
from .test_records import seed


def checkpoints(db, settings, clock=None, interval=60.0) -> Checkpoints:
    clock = clock or FrozenClock()
    records = Records(db, clock)
    key = lambda: signing_key.load(settings.checkpoint_key, settings.data_dir)  # noqa: E731
    return Checkpoints(db, clock, records, key, node="test-node", interval_minutes=interval)


def public_key(settings) -> str:
    return signing_key.public_hex(signing_key.load(settings.checkpoint_key, settings.data_dir))


async def run_cli(database_url, monkeypatch, settings, *argv) -> int:
    url, search_path = database_url
    if search_path:
        url = make_url(url).update_query_dict({"search_path": search_path}).render_as_string(hide_password=False)
    monkeypatch.setenv("IMSERVER_DATABASE_URL", url)
    monkeypatch.setenv("IMSERVER_DATA_DIR", str(settings.data_dir))
    return await asyncio.to_thread(cli.main, list(argv))


async def test_a_checkpoint_is_signed_stored_and_sent_to_the_regulator(db, settings):
    await seed(db, "sanctions")
    cp = await checkpoints(db, settings).take()
    seq, chain_hash = cp["chain_head"].split(":")
    assert int(seq) == 3 and len(chain_hash) == 64  # the three sanctions (users are not records)
    assert cp["public_key"] == public_key(settings)
    row = {
        "at": __import__("datetime").datetime.fromisoformat(cp["at"]),
        "node": cp["node"],
        "chain_seq": int(seq),
        "chain_hash": chain_hash,
        "audit_id": int(cp["audit_head"].split(":")[0]),
        "audit_hash": cp["audit_head"].split(":")[1],
    }
    signing_key.verifier(cp["public_key"]).verify(bytes.fromhex(cp["signature"]), statement(row))
    async with db.read() as conn:
        [out] = (await conn.execute(select(regulator_outbox).where(regulator_outbox.c.record_kind == "checkpoint"))).mappings().all()
    assert json.loads(out["payload"])["checkpoint"] == cp
    report = await checkpoints(db, settings).verify(cp["public_key"])
    assert report.ok, (report.problems, report.records.to_dict())


async def test_tail_truncation_is_caught_only_with_a_checkpoint(db, settings, database_url, monkeypatch, capsys):
    await seed(db, "access_log", rows=5)
    await checkpoints(db, settings).take()  # signs the head: the five sign-in rows
    await Records(db, FrozenClock()).seal_pending()
    # Someone with DDL rights cuts the last two sign-in rows and every chain entry from
    # them on, then puts the checkpoint and its outbox row back through the ordinary path
    # (the triggers chain them anew): what is left is a consistent chain.
    async with db.read() as conn:
        kept = {
            t: [dict(r) for r in (await conn.execute(select(t))).mappings().all()]
            for t in (checkpoint_table, regulator_outbox)
        }
    await tamper(
        db,
        "DELETE FROM access_log WHERE id > 3",
        "DELETE FROM record_chain WHERE seq > 3 OR seq IS NULL",
        "DELETE FROM checkpoints",
        "DELETE FROM regulator_outbox",
    )
    async with db.transaction() as conn:
        for table, rows in kept.items():
            for row in rows:
                await conn.execute(insert(table).values(row))
    assert await run_cli(database_url, monkeypatch, settings, "audit", "verify") == 0  # nothing to see without it
    capsys.readouterr()
    assert await run_cli(database_url, monkeypatch, settings, "audit", "verify", "--checkpoints") == cli.AUDIT_BROKEN
    err = capsys.readouterr().err
    assert "record chain BROKEN at entry 5 (rewritten)" in err, err
    assert "CHECKPOINT PROBLEM: checkpoint 1: record chain entry 5 is gone or rewritten" in err


async def test_an_intact_database_verifies_against_its_checkpoints(db, settings, database_url, monkeypatch, capsys):
    await seed(db, "sanctions")
    await checkpoints(db, settings).take()
    await seed(db, "access_log")  # records after the checkpoint are fine
    assert await run_cli(database_url, monkeypatch, settings, "audit", "verify", "--checkpoints") == 0
    out = capsys.readouterr().out
    assert "checkpoints checked: 1" in out and "nothing before the latest checkpoint" in out
    assert await run_cli(database_url, monkeypatch, settings, "audit", "checkpoints") == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["id"] == 1


async def test_a_checkpoint_signed_by_another_key_is_refused(db, settings, tmp_path):
    await seed(db, "sanctions")
    await checkpoints(db, settings).take()
    stranger = signing_key.public_hex(signing_key.load("", tmp_path / "elsewhere"))
    report = await checkpoints(db, settings).verify(stranger)
    assert not report.ok and "not signed by the trusted key" in report.problems[0]
    await tamper(db, "UPDATE checkpoints SET chain_seq = 1 WHERE id = 1")  # a forged head, old signature
    report = await checkpoints(db, settings).verify(public_key(settings))
    assert any("not signed" in p for p in report.problems)


async def test_checkpoints_are_taken_every_interval(db, settings):
    clock = FrozenClock()
    cps = checkpoints(db, settings, clock, interval=30)
    cps.start()
    await cps.stop()
    assert await cps.take_if_due() is None  # none yet, but the node just started
    clock.advance(minutes=31)
    assert (await cps.take_if_due())["id"] == 1
    clock.advance(minutes=10)
    assert await cps.take_if_due() is None
    clock.advance(minutes=21)
    assert (await cps.take_if_due())["id"] == 2


async def test_compliance_takes_and_lists_checkpoints(http, app):
    services = app.state.services
    comp = await operator(http, services, Role.COMPLIANCE)
    r = await http.post("/admin/v1/checkpoints", headers=comp["headers"])
    assert r.status_code == 201, r.text
    r = await http.get("/admin/v1/checkpoints", headers=comp["headers"])
    assert [c["id"] for c in r.json()["checkpoints"]] == [1]
    mod = await operator(http, services, Role.MODERATOR)
    assert (await http.post("/admin/v1/checkpoints", headers=mod["headers"])).status_code == 403
