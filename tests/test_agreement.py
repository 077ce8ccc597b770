"""The service agreement (Art. 6 ¶2), on both backends.

Versions are published by `admin` only and must state the seven baselines;
registration accepts the current one; a new version leaves every user marked as
not having accepted it until they do, with version, time and client IP recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from imserver.domain.clock import FrozenClock
from imserver.domain.enums import Role
from imserver.services.agreement import SEVEN_BASELINES
from imserver.store import accounts as account_store
from imserver.store import audit

from .helpers import PASSWORD, operator, register

NOW = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC)
CLIENT_IP = "203.0.113.7"  # TEST-NET-3: not the transport's default, so the test shows it is passed through


def agreement_text(leave_out: str | None = None) -> str:
    lines = [f"The user commits to {b}." for b in SEVEN_BASELINES if b != leave_out]
    return "imserver service agreement, version 2.\n" + "\n".join(lines)


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
async def from_ip(app):
    """A client whose requests arrive from CLIENT_IP."""
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def publish(http, admin, text: str | None = None) -> httpx.Response:
    return await http.post("/admin/v1/agreements", json={"text": text or agreement_text()}, headers=admin["headers"])


async def me(http, user) -> dict:
    r = await http.get("/api/v1/me", headers=user["headers"])
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_new_version_marks_existing_users_until_they_accept(http, app):
    alice, bob = await register(http, "alice"), await register(http, "bob")
    assert (await me(http, alice))["agreement_current"] is True
    admin = await operator(http, app.state.services, Role.ADMIN)

    r = await publish(http, admin)
    assert r.status_code == 201 and r.json() == {"version": 2}
    assert (await http.get("/api/v1/agreement")).json()["version"] == 2
    for user in (alice, bob):
        profile = await me(http, user)
        assert profile["agreement_current"] is False
        assert (profile["agreement_version"], profile["current_agreement_version"]) == (1, 2)

    r = await http.post("/api/v1/agreement/accept", json={"version": 2}, headers=alice["headers"])
    assert r.status_code == 204
    assert (await me(http, alice))["agreement_current"] is True
    assert (await me(http, bob))["agreement_current"] is False  # only the one who accepted


async def test_acceptance_records_version_time_and_client_ip(http, from_ip, app):
    services = app.state.services
    user = await register(from_ip, "carol")
    admin = await operator(http, services, Role.ADMIN)
    assert (await publish(http, admin)).status_code == 201
    r = await from_ip.post("/api/v1/agreement/accept", json={"version": 2}, headers=user["headers"])
    assert r.status_code == 204

    async with services.db.transaction() as conn:
        rows = await account_store.acceptances(conn, user["id"])
    # Registration accepted version 1; the explicit acceptance recorded version 2.
    assert [(r["version"], r["accepted_at"], r["client_ip"]) for r in rows] == [
        (1, NOW, CLIENT_IP),
        (2, NOW, CLIENT_IP),
    ]


async def test_only_the_current_version_can_be_accepted(http, app):
    user = await register(http)
    admin = await operator(http, app.state.services, Role.ADMIN)
    await publish(http, admin)
    for version in (1, 3):
        r = await http.post("/api/v1/agreement/accept", json={"version": version}, headers=user["headers"])
        assert r.status_code == 422
        assert r.json()["code"] == "agreement_version_mismatch" and r.json()["current_version"] == 2
    assert (await me(http, user))["agreement_current"] is False
    r = await http.post("/api/v1/agreement/accept", json={"version": 2})
    assert r.status_code == 401


@pytest.mark.parametrize("baseline", SEVEN_BASELINES)
async def test_a_version_missing_a_baseline_is_refused(http, app, baseline):
    admin = await operator(http, app.state.services, Role.ADMIN)
    r = await publish(http, admin, agreement_text(leave_out=baseline))
    assert r.status_code == 422
    assert r.json()["code"] == "agreement_baselines_missing" and r.json()["missing"] == [baseline]
    assert (await http.get("/api/v1/agreement")).json()["version"] == 1  # nothing published


async def test_baselines_are_found_across_case_and_line_breaks(http, app):
    admin = await operator(http, app.state.services, Role.ADMIN)
    text = agreement_text().upper().replace("PUBLIC ORDER", "PUBLIC\n   ORDER")
    assert (await publish(http, admin, text)).status_code == 201


async def test_only_admin_publishes(http, app):
    services = app.state.services
    for role in (Role.REVIEWER, Role.MODERATOR, Role.COMPLIANCE):
        op = await operator(http, services, role)
        r = await publish(http, op)
        assert r.status_code == 403 and r.json()["code"] == "forbidden", role
    assert (await http.post("/admin/v1/agreements", json={"text": agreement_text()})).status_code == 401
    user = await register(http)  # a user's token is not an operator's
    r = await http.post("/admin/v1/agreements", json={"text": agreement_text()}, headers=user["headers"])
    assert r.status_code == 401
    assert (await http.get("/api/v1/agreement")).json()["version"] == 1


async def test_publication_is_audited(http, app):
    services = app.state.services
    admin = await operator(http, services, Role.ADMIN)
    await publish(http, admin)
    async with services.db.transaction() as conn:
        rows = await audit.page(conn)
    published = [r for r in rows if r["action"] == "agreement.publish"]
    assert len(published) == 1
    assert (published[0]["actor_id"], published[0]["subject"]) == (admin["id"], "agreement:2")


async def test_registration_must_name_the_current_version(http, app, from_ip):
    services = app.state.services
    admin = await operator(http, services, Role.ADMIN)
    await publish(http, admin)
    body = {"handle": "dora", "password": PASSWORD, "nickname": "Dora"}
    r = await http.post("/api/v1/register", json={**body, "agreement_version": 1})
    assert r.status_code == 422
    assert r.json()["code"] == "agreement_version_mismatch" and r.json()["current_version"] == 2
    r = await http.post("/api/v1/register", json=body)  # naming none is malformed
    assert r.status_code == 422 and r.json()["code"] == "malformed"

    r = await from_ip.post("/api/v1/register", json={**body, "agreement_version": 2})
    assert r.status_code == 201
    async with services.db.transaction() as conn:
        rows = await account_store.acceptances(conn, r.json()["id"])
    assert [(r["version"], r["accepted_at"], r["client_ip"]) for r in rows] == [(2, NOW, CLIENT_IP)]
