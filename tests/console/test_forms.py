"""Console forms over HTTP: CSRF, session cookie, idle timeout, disabled operators,
sign-in throttling and role checks. Each refusal changes nothing."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import pytest

from imserver.app import create_app
from imserver.config import Settings
from imserver.console import views
from imserver.domain.clock import FrozenClock
from imserver.domain.enums import PrincipalKind, Role
from imserver.domain.principals import Principal

from ..helpers import PASSWORD, register
from ..identity_helpers import submit
from .console_helpers import console_client, csrf_of, make_operator, sign_in


@pytest.fixture
def clock():
    return FrozenClock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))


async def pending_identity(http, app) -> tuple[dict, int]:
    user = await register(http)
    assert (await submit(http, user)).status_code == 201
    reviewer_id = await make_operator(app, Role.COMPLIANCE, "identity-reader")
    reader = Principal(PrincipalKind.OPERATOR, reviewer_id, "", Role.COMPLIANCE)
    [item] = (await app.state.services.identities.pending(reader))["items"]
    return user, item["identity_id"]


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(http, app):
    user, identity_id = await pending_identity(http, app)
    await make_operator(app, Role.REVIEWER, "csrf-reviewer")
    async with await console_client(app) as c:
        assert (await sign_in(c, "csrf-reviewer")).status_code == 303
        page = await c.get("/console/identity")
        assert f'action="/console/identity/{identity_id}"' in page.text
        for data in ({"decision": "approve"}, {"decision": "approve", "csrf": "0" * 64}):
            r = await c.post(f"/console/identity/{identity_id}", data=data)
            assert r.status_code == 403
            assert "csrf_failed" in r.text and "nothing was changed" in r.text
        me = (await http.get("/api/v1/me", headers=user["headers"])).json()
        assert me["real_name_status"] == "pending"
        # Another session's token does not fit this session either.
        async with await console_client(app) as other:
            await sign_in(other, "csrf-reviewer")
            foreign = csrf_of(await other.get("/console/identity"))
        r = await c.post(f"/console/identity/{identity_id}", data={"decision": "approve", "csrf": foreign})
        assert r.status_code == 403
        assert (await http.get("/api/v1/me", headers=user["headers"])).json()["real_name_status"] == "pending"
        # With its token, the same form works.
        r = await c.post(
            f"/console/identity/{identity_id}", data={"decision": "approve", "csrf": csrf_of(page), "note": "ok"}
        )
        assert r.status_code == 303
        assert (await http.get("/api/v1/me", headers=user["headers"])).json()["real_name_status"] == "verified"


async def test_sign_in_needs_its_csrf_token(app):
    await make_operator(app, Role.ADMIN, "csrf-admin")
    async with await console_client(app) as c:
        r = await c.post("/console/sign-in", data={"handle": "csrf-admin", "password": PASSWORD})
        assert r.status_code == 403 and "imserver_console=" not in r.headers.get("set-cookie", "")


@pytest.mark.parametrize("scheme,secure", [("http", False), ("https", True)])
async def test_session_cookie_flags_and_security_headers(app, scheme, secure):
    await make_operator(app, Role.ADMIN, "cookie-admin")
    async with await console_client(app, base_url=f"{scheme}://testserver") as c:
        r = await sign_in(c, "cookie-admin")
        [cookie] = [c for c in r.headers.get_list("set-cookie") if c.startswith("imserver_console=")]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
        assert ("Secure" in cookie) is secure
        page = await c.get("/console/")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert page.headers["cache-control"] == "no-store"
        assert "<script>" not in page.text and " style=" not in page.text  # nothing inline for the CSP to allow


async def test_an_idle_session_ends_and_its_token_is_revoked(app, clock):
    await make_operator(app, Role.ADMIN, "idle-admin")
    idle = app.state.services.settings.console_idle_timeout_seconds
    async with await console_client(app) as c:
        await sign_in(c, "idle-admin")
        clock.advance(seconds=idle - 5)
        assert (await c.get("/console/")).status_code == 200  # activity restarts the idle clock
        clock.advance(seconds=idle - 5)
        assert (await c.get("/console/")).status_code == 200
        token = c.cookies["imserver_console"].split(".")[0]
        clock.advance(seconds=idle + 1)
        r = await c.get("/console/")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/sign-in")
        page = await c.get(r.headers["location"])
        assert "session_expired" in page.text
        r = await c.get("/admin/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401  # the token is revoked, not only the cookie dropped


async def test_a_disabled_operator_is_signed_out_at_once(app, clock):
    operator_id = await make_operator(app, Role.ADMIN, "soon-disabled")
    other = Principal(PrincipalKind.OPERATOR, await make_operator(app, Role.ADMIN, "disabler"), "", Role.ADMIN)
    async with await console_client(app) as c:
        await sign_in(c, "soon-disabled")
        assert (await c.get("/console/terms")).status_code == 200
        await app.state.services.workbench.operators.set_disabled(other, operator_id, disabled=True)
        r = await c.get("/console/terms")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/sign-in")


async def test_wrong_passwords_are_throttled(app):
    await make_operator(app, Role.ADMIN, "guessed")
    # The shared throttle (services/signin_guard.py): failures past the free allowance wait.
    limit = app.state.services.settings.signin_free_failures_per_account + 1
    async with await console_client(app) as c:
        for _ in range(limit):
            r = await sign_in(c, "guessed", "wrong password")
            assert r.status_code == 303
            assert "invalid_credentials" in (await c.get(r.headers["location"])).text
        r = await sign_in(c, "guessed")  # even the right password waits now
        page = await c.get(r.headers["location"])
        assert "signin_throttled" in page.text and "imserver_console=" not in r.headers.get("set-cookie", "")


async def test_a_role_sees_and_does_only_its_own(http, app):
    user, identity_id = await pending_identity(http, app)
    await make_operator(app, Role.MODERATOR, "nosy-moderator")
    async with await console_client(app) as c:
        await sign_in(c, "nosy-moderator")
        dashboard = await c.get("/console/")
        assert 'href="/console/reports"' in dashboard.text and 'href="/console/identity"' not in dashboard.text
        assert (await c.get("/console/identity")).status_code == 403
        token = csrf_of(dashboard)
        r = await c.post(f"/console/identity/{identity_id}", data={"decision": "approve", "csrf": token})
        assert r.status_code == 303  # back, with the error shown
        shown = await c.get(r.headers["location"])
        assert "forbidden" in shown.text
        assert (await http.get("/api/v1/me", headers=user["headers"])).json()["real_name_status"] == "pending"


async def test_no_console_input_gets_a_server_error(app):
    """Every console route, fed wrong types, unknown ids and junk fields: a 4xx page or a
    redirect with the error, never a 500."""
    await make_operator(app, Role.COMPLIANCE, "fuzz-compliance")
    await make_operator(app, Role.MODERATOR, "fuzz-moderator")
    junk = {
        "decision": "maybe", "note": "x" * 5000, "kind": "banish", "subject_id": "-1", "duration_days": "1e9",
        "reason": "", "since": "2026-13-45", "until": "yesterday", "format": "xml", "text": "", "lang": "tlh",
        "action": "explode", "term": "", "list_name": "x" * 100, "sanction": "close_account",
    }
    skip = ("/console/static", "/console/sign-out")  # sign-out would end the session the loop runs in
    paths = [route.path for module in views.AREAS for route in module.router.routes]
    routes = [path for path in paths if not path.startswith(skip)]
    assert len(routes) > 25
    async with await console_client(app) as c:
        for handle in ("fuzz-compliance", "fuzz-moderator"):
            c.cookies.clear()
            await sign_in(c, handle)
            token = csrf_of(await c.get("/console/"))
            for path in routes:
                concrete = re.sub(r"\{[^}]+\}", "999999", path)
                for method in ("GET", "POST"):
                    params = {"cursor": "x", "subject": "y", "status": "z"}
                    data = {"csrf": token, **junk} if method == "POST" else None
                    r = await c.request(method, concrete, params=params, data=data)
                    assert r.status_code < 500, (method, concrete, r.status_code, r.text[:300])
            assert (await c.get("/console/")).status_code == 200  # still signed in: every route above ran as this operator


def test_a_configured_session_key_is_checked_at_start():
    good = base64.b64encode(b"k" * 32).decode()
    create_app(Settings(_env_file=None, console_session_key=good))
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError, match="IMSERVER_CONSOLE_SESSION_KEY"):
            create_app(Settings(_env_file=None, console_session_key=bad))


async def test_an_oversized_form_is_refused(app):
    await make_operator(app, Role.ADMIN, "big-form")
    async with await console_client(app) as c:
        await sign_in(c, "big-form")
        token = csrf_of(await c.get("/console/agreements"))
        r = await c.post("/console/agreements", data={"csrf": token, "text": "x" * 300_000})
        shown = await c.get(r.headers["location"])
        assert r.status_code == 303 and "the form is too large" in shown.text


async def test_an_unknown_console_address_is_a_console_page(app):
    async with await console_client(app) as c:
        r = await c.get("/console/no/such/page")
        assert r.status_code == 404 and "text/html" in r.headers["content-type"] and "not_found" in r.text
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert (await c.get("/console/static/htmx.min.js")).status_code == 200  # the static files still come first
