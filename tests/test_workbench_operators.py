"""Operator accounts through the admin API: roles, disabling, passwords, whoami; on both backends."""

from __future__ import annotations

import httpx

from imserver.app import create_app
from imserver.domain.enums import Role

from .helpers import PASSWORD, operator
from .operator_helpers import audit_rows

NEW_PASSWORD = "a brand new passphrase"


async def login(http, handle: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post("/admin/v1/login", json={"handle": handle, "password": password})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_admins_create_operators_with_several_roles_and_change_them(http, app):
    svc = app.state.services
    admin = await operator(http, svc, Role.ADMIN, handle="root-admin")
    h = admin["headers"]
    me = (await http.get("/admin/v1/whoami", headers=h)).json()
    assert (me["id"], me["handle"], me["roles"], me["must_change_password"]) == (admin["id"], "root-admin", ["admin"], False)

    r = await http.post(
        "/admin/v1/operators",
        json={"handle": "duo", "password": PASSWORD, "roles": ["moderator", "compliance"]},
        headers=h,
    )
    assert r.status_code == 201, r.text
    duo = r.json()
    assert duo["roles"] == ["compliance", "moderator"] and duo["disabled"] is False
    # Granting compliance waits for a second admin (four eyes, services/operators.py).
    assert duo["awaiting_confirmation"] is True
    assert (await login(http, "duo")).json()["code"] == "operator_pending"
    second = await operator(http, svc, Role.ADMIN, handle="second-admin")
    r = await http.post(f"/admin/v1/operators/{duo['id']}/confirm", headers=second["headers"])
    assert r.status_code == 200 and r.json()["awaiting_confirmation"] is False, r.text
    r = await login(http, "duo")
    assert r.json()["roles"] == ["compliance", "moderator"]
    duo_h = bearer(r.json()["token"])
    # Both roles' routes answer.
    assert (await http.get("/admin/v1/reports", headers=duo_h)).status_code == 200  # moderator
    assert (await http.get("/admin/v1/appeals", headers=duo_h)).status_code == 200  # compliance
    assert (await http.get("/admin/v1/operators", headers=duo_h)).status_code == 403  # not admin

    before = (await http.get("/admin/v1/operators", headers=h)).json()
    for body, status, code in (
        ({"handle": "x-op", "password": PASSWORD, "roles": ["moderator", "overlord"]}, 422, "unknown_role"),
        ({"handle": "x-op", "password": PASSWORD, "roles": []}, 422, "unknown_role"),
        ({"handle": "duo", "password": PASSWORD, "roles": ["reviewer"]}, 409, "operator_exists"),
        ({"handle": "x-op", "password": "short", "roles": ["reviewer"]}, 422, "weak_password"),
    ):
        r = await http.post("/admin/v1/operators", json=body, headers=h)
        assert (r.status_code, r.json()["code"]) == (status, code), body
    after = (await http.get("/admin/v1/operators", headers=h)).json()
    assert after == before and after["total"] == 3
    assert [o["handle"] for o in after["items"]] == ["root-admin", "duo", "second-admin"]

    r = await http.put(f"/admin/v1/operators/{duo['id']}/roles", json={"roles": ["reviewer"]}, headers=h)
    # Taking compliance away waits for the second admin too.
    assert r.status_code == 200 and r.json()["pending_roles"] == ["reviewer"], r.text
    r = await http.post(f"/admin/v1/operators/{duo['id']}/confirm", headers=second["headers"])
    assert r.status_code == 200 and r.json()["roles"] == ["reviewer"], r.text
    # The same token, at once: the moderator's queue is closed to it now.
    assert (await http.get("/admin/v1/reports", headers=duo_h)).status_code == 403
    assert (await http.get("/admin/v1/identity/pending", headers=duo_h)).status_code == 200
    r = await http.put(f"/admin/v1/operators/{duo['id']}/roles", json={"roles": ["root"]}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "unknown_role"
    r = await http.put("/admin/v1/operators/999999/roles", json={"roles": ["reviewer"]}, headers=h)
    assert r.status_code == 404 and r.json()["code"] == "operator_not_found"

    kinds = ("operator.create", "operator.roles", "operator.confirm")
    acts = [(r["action"], r["actor_id"], r["subject"]) for r in await audit_rows(svc) if r["action"] in kinds]
    acts = [a for a in acts if a[2] == f"operator:{duo['id']}"]
    assert acts == [
        ("operator.create", admin["id"], f"operator:{duo['id']}"),
        ("operator.confirm", second["id"], f"operator:{duo['id']}"),
        ("operator.roles", admin["id"], f"operator:{duo['id']}"),
        ("operator.confirm", second["id"], f"operator:{duo['id']}"),
    ]


async def test_disabling_ends_tokens_on_every_node_and_guards_the_last_admin(http, app, settings, db, clock):
    svc = app.state.services
    first = await operator(http, svc, Role.ADMIN)
    mod = await operator(http, svc, Role.MODERATOR)
    # A second node on the same database.
    node2 = create_app(settings, clock=clock, db=db)
    async with node2.router.lifespan_context(node2):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=node2), base_url="http://node2") as other:
            assert (await other.get("/admin/v1/reports", headers=mod["headers"])).status_code == 200
            r = await http.post(f"/admin/v1/operators/{mod['id']}/disable", headers=first["headers"])
            assert r.status_code == 200 and r.json()["disabled"] is True
            for client in (http, other):
                r = await client.get("/admin/v1/reports", headers=mod["headers"])
                assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    assert (await login(http, mod["handle"])).status_code == 401
    r = await http.post(f"/admin/v1/operators/{mod['id']}/disable", headers=first["headers"])
    assert r.status_code == 409 and r.json()["code"] == "operator_state"
    r = await http.post(f"/admin/v1/operators/{mod['id']}/enable", headers=first["headers"])
    assert r.status_code == 200 and r.json()["disabled"] is False
    assert (await login(http, mod["handle"])).status_code == 200

    # The last admin: not disabled by themselves, not demoted, not disabled by anyone.
    r = await http.post(f"/admin/v1/operators/{first['id']}/disable", headers=first["headers"])
    assert r.status_code == 409 and r.json()["code"] == "self_disable"
    r = await http.put(f"/admin/v1/operators/{first['id']}/roles", json={"roles": ["compliance"]}, headers=first["headers"])
    assert r.status_code == 403 and r.json()["code"] == "grant_forbidden"  # nobody changes their own roles
    second = await operator(http, svc, Role.ADMIN)
    # The first admin proposes demoting the second (pending: admin is a privileged role) ...
    r = await http.put(f"/admin/v1/operators/{second['id']}/roles", json={"roles": ["moderator"]}, headers=first["headers"])
    assert r.status_code == 200 and r.json()["pending_roles"] == ["moderator"]
    r = await http.post(f"/admin/v1/operators/{first['id']}/disable", headers=second["headers"])
    assert r.status_code == 200
    assert (await http.get("/admin/v1/whoami", headers=first["headers"])).status_code == 401
    # ... and confirming it now would leave no enabled admin.
    r = await http.post(f"/admin/v1/operators/{second['id']}/confirm", headers=second["headers"])
    assert r.status_code == 409 and r.json()["code"] == "last_admin"
    assert (await http.get("/admin/v1/whoami", headers=second["headers"])).json()["roles"] == ["admin"]
    actions = [r["action"] for r in await audit_rows(svc) if r["action"] in ("operator.disable", "operator.enable")]
    assert actions == ["operator.disable", "operator.enable", "operator.disable"]


async def test_a_reset_password_must_be_changed_before_anything_else(http, app):
    svc = app.state.services
    admin = await operator(http, svc, Role.ADMIN)
    await svc.accounts.create_operator(handle="forgetful", password=PASSWORD, role=Role.MODERATOR, created_by=None)
    old = bearer((await login(http, "forgetful")).json()["token"])
    target = [o for o in (await http.get("/admin/v1/operators", headers=admin["headers"])).json()["items"] if o["handle"] == "forgetful"][0]
    r = await http.post(f"/admin/v1/operators/{target['id']}/password", json={"password": "temporary pass 1"}, headers=admin["headers"])
    assert r.status_code == 200 and r.json()["must_change_password"] is True
    assert (await http.get("/admin/v1/whoami", headers=old)).status_code == 401  # the old session ended
    assert (await login(http, "forgetful")).status_code == 401  # the old password too
    r = await login(http, "forgetful", "temporary pass 1")
    assert r.status_code == 200 and r.json()["must_change_password"] is True
    h = bearer(r.json()["token"])
    r = await http.get("/admin/v1/reports", headers=h)
    assert r.status_code == 403 and r.json()["code"] == "password_change_required"
    assert (await http.get("/admin/v1/whoami", headers=h)).json()["must_change_password"] is True
    r = await http.post("/admin/v1/me/password", json={"current_password": "wrong one!", "new_password": NEW_PASSWORD}, headers=h)
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    r = await http.post(
        "/admin/v1/me/password", json={"current_password": "temporary pass 1", "new_password": NEW_PASSWORD}, headers=h
    )
    assert r.status_code == 200 and r.json()["must_change_password"] is False
    assert (await http.get("/admin/v1/reports", headers=h)).status_code == 200
    assert (await login(http, "forgetful", NEW_PASSWORD)).status_code == 200
    actions = [(r["action"], r["subject"]) for r in await audit_rows(svc) if r["action"].startswith("operator.password")]
    assert actions == [("operator.password_reset", f"operator:{target['id']}"), ("operator.password_change", f"operator:{target['id']}")]


async def test_agreement_versions_show_text_and_acceptance_counts(http, app):
    from .helpers import register

    svc = app.state.services
    admin, reviewer = await operator(http, svc, Role.ADMIN), await operator(http, svc, Role.REVIEWER)
    await register(http)
    await register(http)
    text = (
        "Version two. Users abide by laws and regulations, the socialist system, the national interest, "
        "the lawful rights of citizens, public order, social morality and the truthfulness of information."
    )
    r = await http.post("/admin/v1/agreements", json={"text": text}, headers=admin["headers"])
    assert r.status_code == 201 and r.json()["version"] == 2
    versions = (await http.get("/admin/v1/agreements", headers=reviewer["headers"])).json()
    assert [(v["version"], v["accepted_by"], v["users_on_version"]) for v in versions] == [(1, 2, 2), (2, 0, 0)]
    two = (await http.get("/admin/v1/agreements/2", headers=reviewer["headers"])).json()
    assert two["text"] == text and two["accepted_by"] == 0
    r = await http.get("/admin/v1/agreements/9", headers=reviewer["headers"])
    assert r.status_code == 404 and r.json()["code"] == "agreement_not_found"


async def test_two_admins_disabling_each_other_at_once_leave_one_admin(http, app):
    import asyncio

    svc = app.state.services
    a, b = await operator(http, svc, Role.ADMIN), await operator(http, svc, Role.ADMIN)
    results = await asyncio.gather(
        http.post(f"/admin/v1/operators/{b['id']}/disable", headers=a["headers"]),
        http.post(f"/admin/v1/operators/{a['id']}/disable", headers=b["headers"]),
    )
    statuses = sorted(r.status_code for r in results)
    # One wins; the other is refused as the last admin, or finds its own token already revoked.
    assert statuses[0] == 200 and statuses[1] in (401, 409), [r.text for r in results]
    items = (await http.get("/admin/v1/operators", headers=(a if results[0].status_code == 200 else b)["headers"])).json()["items"]
    assert sum(1 for o in items if "admin" in o["roles"] and not o["disabled"]) == 1
