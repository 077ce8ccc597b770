"""The writes due process makes to record tables are legal, chained and guarded.

Record tables are append-only in the database; the few columns that change are
declared (migration 0007, ``RECORDS``): a report's outcome (shared by the reports
joined to it), an appeal's decision (set once, also when a second operator
confirms an overturn), a regulator record's ``exported_at`` (set once by the
first export). Here the real flows run over HTTP on both backends, and then: the
chain verifies, those updates have their own chain entries, a second write of a
write-once column and any edit of an immutable one is refused by the database,
and an edit made past the triggers is named.
"""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from imserver.domain.enums import PrincipalKind, Role
from imserver.store.tables import record_chain, regulator_outbox

from .helpers import PASSWORD, operator, register, tamper
from .operator_helpers import impose


def report_body(kind: str, target_id: int) -> dict:
    return {"target_kind": kind, "target_id": target_id, "category": "harmful", "text": "please look"}


async def updates_of(db, table: str) -> set[int]:
    """Rows of `table` with an ``update`` entry in the chain."""
    async with db.read() as conn:
        q = select(record_chain.c.row_id).where(record_chain.c.table_name == table, record_chain.c.op == "update")
        return set((await conn.execute(q)).scalars().all())


async def refused(db, statement: str) -> bool:
    try:
        async with db.transaction() as conn:
            await conn.execute(text(statement))
    except DBAPIError:
        return True
    return False


async def test_joined_reports_four_eyes_appeals_and_exports_keep_the_chain_whole(http, app):
    svc = app.state.services
    mod = await operator(http, svc, Role.MODERATOR)
    comps = [await operator(http, svc, Role.COMPLIANCE) for _ in range(4)]

    # Three reports on one account: one queue item, two joined to it, resolved together.
    offender = await register(http)
    ids = []
    for reporter in [await register(http) for _ in range(3)]:
        r = await http.post("/api/v1/reports", json=report_body("account", offender["id"]), headers=reporter["headers"])
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    assert (await http.post(f"/admin/v1/reports/{ids[0]}/assign", headers=mod["headers"])).status_code == 200
    sid = (await impose(http, comps[0], offender["id"], "suspend_updates", evidence={"report_ids": ids})).json()["id"]
    r = await http.post(
        f"/admin/v1/reports/{ids[0]}/resolve", json={"outcome": "actioned", "sanction_id": sid}, headers=mod["headers"]
    )
    assert r.status_code == 200, r.text

    # A closure confirmed by a second operator, appealed with the appeal-only token,
    # overturned by a proposal that a fourth operator confirms.
    closed = await register(http)
    cid = (await impose(http, comps[0], closed["id"], "close_account")).json()["id"]
    assert (await http.post(f"/admin/v1/sanctions/{cid}/confirm", headers=comps[1]["headers"])).status_code == 200
    r = await http.post("/api/v1/login", json={"handle": closed["handle"], "password": PASSWORD})
    assert (r.status_code, r.json()["code"]) == (403, "account_closed")
    appeal_headers = {"Authorization": f"Bearer {r.json()['appeal_token']}"}
    r = await http.post(f"/api/v1/sanctions/{cid}/appeal", json={"text": "not me"}, headers=appeal_headers)
    appeal_id = r.json()["appeal_id"]
    # (Through the service: the HTTP answer to a mere proposal fails its response model on main today.)
    proposer = await svc.accounts.authenticate(comps[2]["token"], PrincipalKind.OPERATOR)
    proposed = await svc.sanctions.decide_appeal(proposer, appeal_id, overturn=True)
    assert proposed["decision"] is None  # only proposed
    r = await http.post(f"/admin/v1/sanctions/{cid}/confirm", headers=comps[3]["headers"])
    assert r.status_code == 200 and r.json()["appeal"]["decision"] == "overturned", r.text

    # The regulator export marks what it delivered; a second export marks nothing new.
    for first_delivered in ("nonzero", "0"):
        r = await http.get(
            "/admin/v1/regulator/sanctions", params={"since": "2000-01-01T00:00:00Z"}, headers=comps[0]["headers"]
        )
        assert r.status_code == 200, r.text
        assert (r.headers["x-first-delivered"] != "0") if first_delivered == "nonzero" else r.headers[
            "x-first-delivered"
        ] == "0"
    async with svc.db.read() as conn:
        exported = (await conn.execute(select(regulator_outbox.c.id, regulator_outbox.c.exported_at))).all()
    assert exported and all(at is not None for _id, at in exported)

    report = await svc.records.verify()
    assert report.ok, report.to_dict()
    assert set(ids) <= await updates_of(svc.db, "reports")  # the item and both joined reports
    assert appeal_id in await updates_of(svc.db, "appeals")
    assert {i for i, _ in exported} <= await updates_of(svc.db, "regulator_outbox")

    # Set once: the database refuses a second export time, and edits of what was recorded.
    first = exported[0][0]
    assert await refused(svc.db, f"UPDATE regulator_outbox SET exported_at = NULL WHERE id = {first}")
    assert await refused(svc.db, f"UPDATE appeals SET decision = 'upheld' WHERE id = {appeal_id}")
    assert await refused(svc.db, f"UPDATE reports SET joined_to = NULL WHERE id = {ids[1]}")
    # Delivery bookkeeping stays free.
    async with svc.db.transaction() as conn:
        await conn.execute(text(f"UPDATE regulator_outbox SET attempts = attempts + 1 WHERE id = {first}"))
    assert (await svc.records.verify()).ok

    # Past the triggers, a rewritten export time is found and named.
    await tamper(svc.db, f"UPDATE regulator_outbox SET exported_at = created_at WHERE id = {first}")
    report = await svc.records.verify()
    assert {(p.table, p.row_id, p.kind) for p in report.problems} == {("regulator_outbox", first, "changed")}
