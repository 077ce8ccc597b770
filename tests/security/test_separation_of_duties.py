"""Separation of duties: an admin alone can neither read plaintext identity nor close an account.

The probe, as one admin: create two compliance operators, read a user's
plaintext identity through one, and close the user's account with both
(one imposes, the other confirms). Each step worked. Now every privileged
grant (compliance, admin) by an admin waits for a different admin's
confirmation, so the lone admin's operators never sign in.
"""

from __future__ import annotations

import pytest

from imserver.domain.enums import Role

from ..helpers import operator, register

STRONG = "a sturdy pass phrase 7"


async def create(http, admin: dict, handle: str, role: str):
    return await http.post(
        "/admin/v1/operators", json={"handle": handle, "password": STRONG, "role": role}, headers=admin["headers"]
    )


async def login(http, handle: str):
    return await http.post("/admin/v1/login", json={"handle": handle, "password": STRONG})


async def test_a_lone_admin_cannot_reach_identity_or_close_an_account(http, app):
    admin = await operator(http, app.state.services, Role.ADMIN)  # bootstrapped from the CLI
    victim = await register(http, verified=True)
    for handle in ("puppet-a", "puppet-b"):
        r = await create(http, admin, handle, "compliance")
        assert r.status_code == 201, r.text
        r = await login(http, handle)  # pending: no token, so no identity read and no closure
        assert r.status_code == 401 and r.json()["code"] == "operator_pending", r.text
    # A second, puppet admin to confirm them is itself pending.
    assert (await create(http, admin, "puppet-admin", "admin")).status_code == 201
    assert (await login(http, "puppet-admin")).json()["code"] == "operator_pending"
    # And the admin cannot confirm its own grants.
    ids = await operator_ids(app, "puppet-a", "puppet-b", "puppet-admin")
    for operator_id in ids:
        r = await http.post(f"/admin/v1/operators/{operator_id}/confirm", headers=admin["headers"])
        assert r.status_code == 403 and r.json()["code"] == "same_operator", r.text
    # The admin's own token reads no plaintext identity and imposes no closure.
    r = await http.get(f"/admin/v1/users/{victim['id']}/identity", params={"full": "true"}, headers=admin["headers"])
    assert r.status_code == 403
    r = await http.post(
        "/admin/v1/sanctions",
        json={"subject_id": victim["id"], "kind": "close_account", "reason": "probe"},
        headers=admin["headers"],
    )
    assert r.status_code == 403


async def operator_ids(app, *handles: str) -> list[int]:
    from imserver.store import accounts as store

    async with app.state.services.db.read() as conn:
        return [(await store.get_operator_by_handle(conn, h))["id"] for h in handles]


async def test_a_second_admin_confirms_a_compliance_operator(http, app):
    first = await operator(http, app.state.services, Role.ADMIN)
    second = await operator(http, app.state.services, Role.ADMIN)
    assert (await create(http, first, "officer", "compliance")).status_code == 201
    [officer_id] = await operator_ids(app, "officer")
    r = await http.post(f"/admin/v1/operators/{officer_id}/confirm", headers=second["headers"])
    assert r.status_code == 200, r.text
    r = await login(http, "officer")
    assert r.status_code == 200 and r.json()["roles"] == ["compliance"], r.text
    r = await http.post(f"/admin/v1/operators/{officer_id}/confirm", headers=second["headers"])
    assert r.status_code == 409 and r.json()["code"] == "grant_state"


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.MODERATOR, Role.COMPLIANCE])
async def test_only_admins_grant_roles(http, app, role):
    granter = await operator(http, app.state.services, role)
    r = await create(http, granter, f"made-by-{role.value}", "moderator")
    assert r.status_code == 403


async def test_ordinary_roles_need_no_second_admin(http, app):
    admin = await operator(http, app.state.services, Role.ADMIN)
    assert (await create(http, admin, "mod-now", "moderator")).status_code == 201
    assert (await login(http, "mod-now")).status_code == 200


async def test_only_configured_grantors_grant_compliance(http, app):
    # As the setting compliance_grantors=["grantor-admin"] configures it.
    app.state.services.workbench.operators.compliance_grantors = ("grantor-admin",)
    other = await operator(http, app.state.services, Role.ADMIN)
    r = await create(http, other, "officer-2", "compliance")
    assert r.status_code == 403 and r.json()["code"] == "grant_forbidden"
    grantor = await operator(http, app.state.services, Role.ADMIN, handle="grantor-admin")
    assert (await create(http, grantor, "officer-3", "compliance")).status_code == 201


async def set_roles(http, admin: dict, operator_id: int, *roles: str):
    return await http.put(f"/admin/v1/operators/{operator_id}/roles", json={"roles": list(roles)}, headers=admin["headers"])


async def test_a_role_change_to_or_from_compliance_waits_for_a_second_admin(http, app):
    first = await operator(http, app.state.services, Role.ADMIN)
    second = await operator(http, app.state.services, Role.ADMIN)
    mod = await operator(http, app.state.services, Role.MODERATOR)
    r = await set_roles(http, first, mod["id"], "moderator", "compliance")
    assert r.status_code == 200 and r.json()["pending_roles"] == ["compliance", "moderator"], r.text
    assert r.json()["roles"] == ["moderator"]  # unchanged until confirmed
    assert (await http.get("/admin/v1/whoami", headers=mod["headers"])).json()["roles"] == ["moderator"]
    r = await http.post(f"/admin/v1/operators/{mod['id']}/confirm", headers=first["headers"])
    assert r.status_code == 403 and r.json()["code"] == "same_operator"
    r = await http.post(f"/admin/v1/operators/{mod['id']}/confirm", headers=second["headers"])
    assert r.status_code == 200 and r.json()["roles"] == ["compliance", "moderator"], r.text
    assert r.json()["pending_roles"] is None
    assert (await http.get("/admin/v1/whoami", headers=mod["headers"])).json()["roles"] == ["compliance", "moderator"]
    # Taking compliance away needs four eyes too; an ordinary change does not.
    r = await set_roles(http, first, mod["id"], "reviewer")
    assert r.json()["pending_roles"] == ["reviewer"] and r.json()["roles"] == ["compliance", "moderator"]
    other = await operator(http, app.state.services, Role.REVIEWER)
    r = await set_roles(http, first, other["id"], "moderator")
    assert r.status_code == 200 and r.json()["roles"] == ["moderator"] and r.json()["pending_roles"] is None
    # Nobody changes their own roles, not even to drop one.
    r = await set_roles(http, first, first["id"], "admin", "compliance")
    assert r.status_code == 403 and r.json()["code"] == "grant_forbidden"
    r = await http.post(f"/admin/v1/operators/{other['id']}/confirm", headers=second["headers"])
    assert r.status_code == 409 and r.json()["code"] == "grant_state"  # nothing waits


async def test_an_operator_granted_admin_waits_too(http, app):
    first = await operator(http, app.state.services, Role.ADMIN)
    second = await operator(http, app.state.services, Role.ADMIN)
    r = await http.post(
        "/admin/v1/operators", json={"handle": "new-admin", "password": STRONG, "roles": ["admin"]}, headers=first["headers"]
    )
    assert r.status_code == 201 and r.json()["awaiting_confirmation"] is True, r.text
    assert (await login(http, "new-admin")).json()["code"] == "operator_pending"
    r = await http.post(f"/admin/v1/operators/{r.json()['id']}/confirm", headers=second["headers"])
    assert r.status_code == 200 and r.json()["awaiting_confirmation"] is False, r.text
    assert (await login(http, "new-admin")).status_code == 200
