"""Account deletion: sign-in stops at once, personal data is erased when retention allows
(and not while a legal hold covers the user), sanctions stay with the subject a number."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from imserver.domain.clock import FrozenClock
from imserver.domain.enums import Role
from imserver.services.records import Records
from imserver.store.tables import identities, sanctions, sessions, users

from .helpers import PASSWORD, operator, register
from .test_records import filler


@pytest.fixture
def clock():
    return FrozenClock()


async def sanction(services, user_id: int) -> int:
    async with services.db.transaction() as conn:
        values = {**filler(sanctions, 1), "subject_kind": "user", "subject_id": user_id}
        return (await conn.execute(insert(sanctions).values(values).returning(sanctions.c.id))).scalar_one()


async def test_deletion_stops_sign_in_then_erases_identity_and_keeps_sanctions(http, app, clock):
    services = app.state.services
    user = await register(http, "leaving", verified=True)
    sanction_id = await sanction(services, user["id"])
    comp = await operator(http, services, Role.COMPLIANCE)
    r = await http.get(f"/admin/v1/users/{user['id']}/identity", params={"full": "true"}, headers=comp["headers"])
    assert r.status_code == 200  # readable before

    r = await http.post("/api/v1/me/deletion", headers=user["headers"])
    assert r.status_code == 202, r.text
    schedule = r.json()
    assert schedule["held"] is False and schedule["erase_after"] > schedule["requested_at"]
    # Sign-in stops at once: the token is dead and the password no longer works.
    assert (await http.get("/api/v1/me", headers=user["headers"])).status_code == 401
    r = await http.post("/api/v1/login", json={"handle": "leaving", "password": PASSWORD})
    assert r.status_code == 401
    # Operators see the request and its schedule.
    r = await http.get("/admin/v1/account-deletions", headers=comp["headers"])
    assert [(d["user_id"], d["erase_after"], d["erased_at"]) for d in r.json()["items"]] == [
        (user["id"], schedule["erase_after"], None)
    ]

    assert (await services.deletions.erase_due())["accounts"] == 0  # not yet: retention still runs
    async with services.db.read() as conn:
        assert (await conn.execute(select(identities.c.id).where(identities.c.user_id == user["id"]))).first()

    clock.advance(days=services.settings.retention_identity_days + 1)
    comp = await operator(http, services, Role.COMPLIANCE)  # the first one's session has expired
    purged = await services.retention.purge(["identity"])
    assert purged["identity"]["accounts"] == 1 and purged["identity"]["identities"] == 1
    async with services.db.read() as conn:
        assert (await conn.execute(select(identities).where(identities.c.user_id == user["id"]))).first() is None
        assert (await conn.execute(select(sessions).where(sessions.c.principal_kind == "user", sessions.c.principal_id == user["id"]))).first() is None
        row = (await conn.execute(select(users).where(users.c.id == user["id"]))).mappings().one()
        kept = (await conn.execute(select(sanctions).where(sanctions.c.id == sanction_id))).mappings().one()
    assert row["handle"] == f"deleted-{user['id']}" and row["nickname"] == "deleted user"
    assert kept["subject_id"] == user["id"]  # the sanction stays, naming a number, not a person
    r = await http.get(f"/admin/v1/users/{user['id']}/identity", params={"full": "true"}, headers=comp["headers"])
    assert r.status_code == 404  # the identity is unreadable: it is gone
    r = await http.get("/admin/v1/account-deletions", params={"pending": "false"}, headers=comp["headers"])
    assert r.json()["items"][0]["erased_at"] is not None
    assert (await Records(services.db, clock).verify()).ok


async def test_a_deletion_under_a_legal_hold_is_accepted_but_waits(http, app, clock):
    services = app.state.services
    user = await register(http, verified=True)
    comp = await operator(http, services, Role.COMPLIANCE)
    r = await http.post(
        "/admin/v1/legal-holds",
        json={"subject_kind": "user", "subject_id": user["id"], "reason": "inquiry"},
        headers=comp["headers"],
    )
    hold_id = r.json()["id"]
    r = await http.post("/api/v1/me/deletion", headers=user["headers"])
    assert r.status_code == 202 and r.json()["held"] is True
    clock.advance(days=services.settings.retention_identity_days + 1)
    comp = await operator(http, services, Role.COMPLIANCE)  # the first one's session has expired
    assert (await services.deletions.erase_due())["accounts"] == 0
    r = await http.get("/admin/v1/account-deletions", headers=comp["headers"])
    assert r.json()["items"][0]["held"] is True
    await http.post(f"/admin/v1/legal-holds/{hold_id}/release", json={"reason": "closed"}, headers=comp["headers"])
    assert (await services.deletions.erase_due())["accounts"] == 1


async def test_only_operators_of_the_right_roles_see_deletions(http, app):
    services = app.state.services
    mod = await operator(http, services, Role.MODERATOR)
    assert (await http.get("/admin/v1/account-deletions", headers=mod["headers"])).status_code == 403
