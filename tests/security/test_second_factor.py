"""Operators may enable a TOTP second factor; roles named in the setting must."""

from __future__ import annotations

import pyotp
import pytest

from imserver.domain.enums import Role

from ..helpers import PASSWORD, operator


@pytest.fixture
def settings(settings):
    settings.operator_totp_required_roles = ["admin", "compliance"]
    return settings


async def login(http, handle: str, totp: str | None = None):
    body = {"handle": handle, "password": PASSWORD} | ({"totp": totp} if totp else {})
    return await http.post("/admin/v1/login", json=body)


async def test_an_operator_enables_totp_and_then_needs_a_code(http, app):
    op = await operator(http, app.state.services, Role.MODERATOR, handle="mod-totp")
    r = await http.post("/admin/v1/totp/enroll", headers=op["headers"])
    assert r.status_code == 200, r.text
    secret = r.json()["secret"]
    assert r.json()["otpauth_uri"].startswith("otpauth://totp/")
    assert (await http.post("/admin/v1/totp/enable", json={"code": "000000"}, headers=op["headers"])).status_code == 422
    now = pyotp.TOTP(secret).now()
    r = await http.post("/admin/v1/totp/enable", json={"code": now}, headers=op["headers"])
    assert r.status_code == 200, r.text
    r = await login(http, "mod-totp")
    assert r.status_code == 401 and r.json()["code"] == "second_factor_required"
    r = await login(http, "mod-totp", "123456" if now != "123456" else "654321")
    assert r.status_code == 401
    code = pyotp.TOTP(secret).now()
    r = await login(http, "mod-totp", code)
    assert r.status_code == 200, r.text
    r = await login(http, "mod-totp", code)  # the same code again: a replay
    assert r.status_code == 401 and r.json()["code"] == "second_factor_required", r.text
    # The secret is sealed at rest, not stored as it was shown.
    async with app.state.services.db.read() as conn:
        from imserver.store import accounts as store

        row = await store.get_operator(conn, op["id"])
    assert secret.encode() not in row["totp_secret"]


async def test_required_roles_can_only_enrol_until_they_have(http, app):
    admin = await operator(http, app.state.services, Role.ADMIN, handle="admin-totp")
    r = await http.get("/admin/v1/agreements", headers=admin["headers"])
    assert r.status_code == 403 and r.json()["code"] == "second_factor_required"
    secret = (await http.post("/admin/v1/totp/enroll", headers=admin["headers"])).json()["secret"]
    r = await http.post("/admin/v1/totp/enable", json={"code": pyotp.TOTP(secret).now()}, headers=admin["headers"])
    assert r.status_code == 200
    r = await login(http, "admin-totp", pyotp.TOTP(secret).now())
    token = r.json()["token"]
    r = await http.get("/admin/v1/agreements", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    # A role the setting does not name is not held up.
    mod = await operator(http, app.state.services, Role.MODERATOR)
    assert (await http.get("/admin/v1/reports", headers=mod["headers"])).status_code == 200


async def test_the_console_signs_in_with_the_code_and_holds_up_the_unenrolled(app):
    from ..console.console_helpers import console_client, csrf_of, make_operator, sign_in

    await make_operator(app, Role.ADMIN, "console-admin")
    async with await console_client(app) as c:
        assert (await sign_in(c, "console-admin")).status_code == 303
        r = await c.get("/console/terms")  # an admin page, but no second factor yet
        assert r.status_code == 403 and "second_factor_required" in r.text
    # Enrolled, the console's sign-in form carries the code like the API's.
    svc = app.state.services
    token, me = await svc.accounts.operator_login(handle="console-admin", password=PASSWORD)
    secret = (await svc.accounts.enroll_totp(me))["secret"]
    await svc.accounts.enable_totp(me, pyotp.TOTP(secret).now())
    async with await console_client(app) as c:
        r = await sign_in(c, "console-admin")  # no code: refused
        assert "imserver_console=" not in r.headers.get("set-cookie", "")
        form = await c.get("/console/sign-in")
        data = {"csrf": csrf_of(form), "handle": "console-admin", "password": PASSWORD}
        r = await c.post("/console/sign-in", data=data | {"totp": pyotp.TOTP(secret).now()})
        assert r.status_code == 303 and "imserver_console=" in r.headers.get("set-cookie", "")
