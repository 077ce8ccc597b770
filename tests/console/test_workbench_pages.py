"""The console's users, content and operators pages over HTTP: what each shows, that each
read is audited as through the admin API, role gates, and the operators' rules refused
with their codes (nothing changed)."""

from __future__ import annotations

from imserver.domain.enums import PrincipalKind, Role
from imserver.domain.principals import Principal

from ..helpers import PASSWORD, register
from .console_helpers import console_client, csrf_of, make_operator, sign_in
from .test_pages import act, flash


async def audit_rows(app, action: str, subject: str) -> list[dict]:
    rows = (await app.state.services.audit.page(after=0, limit=1000))["entries"]
    return [e for e in rows if e["action"] == action and e["subject"] == subject]


async def test_search_dossier_identity_and_content(http, app):
    svc = app.state.services
    mod_id = await make_operator(app, Role.MODERATOR, "wb-moderator")
    readers = {await make_operator(app, Role.REVIEWER, "wb-reviewer"), await make_operator(app, Role.COMPLIANCE, "wb-compliance")}
    author = await register(http, handle="dossierwb", nickname="Dossier <i>Person</i>", verified=True)
    reader = await register(http, verified=True)
    stored = await svc.messaging.submit(
        sender_id=author["id"], client_msg_id="d1", to_kind="user", to_id=reader["id"], body="hello <b>there</b>"
    )
    message_id = (await stored).message_id
    r = await http.post(
        "/api/v1/reports",
        json={"target_kind": "message", "target_id": message_id, "category": "harmful", "text": "rude"},
        headers=reader["headers"],
    )
    assert r.status_code == 201, r.text
    moderator = Principal(PrincipalKind.OPERATOR, mod_id, "", Role.MODERATOR)
    await svc.sanctions.impose(moderator, subject_kind="user", subject_id=author["id"], kind="warning", reason="be kind")
    async with await console_client(app) as c:
        await sign_in(c, "wb-moderator")
        found = await c.get("/console/users", params={"q": "dossierw"})
        assert f'href="/console/users/{author["id"]}"' in found.text and "1 in all" in found.text
        assert 'href="/console/users/' + str(reader["id"]) + '"' not in found.text
        page = await c.get(f"/console/users/{author['id']}")
        assert page.status_code == 200
        assert "Dossier &lt;i&gt;Person&lt;/i&gt;" in page.text and "<i>Person" not in page.text
        assert "Strikes in the last" in page.text and ": 1" in page.text and "be kind" in page.text
        assert '<span class="tag" id="dossier-reports-against">1</span>' in page.text
        assert '<span class="tag" id="dossier-reports-by">0</span>' in page.text
        assert 'href="/console/reports/' in page.text  # a moderator goes on to the report
        assert "/identity" not in page.text  # a moderator is not offered the identity read
        assert (await c.get(f"/console/users/{author['id']}/identity")).status_code == 403
        assert (await c.get("/console/users/999999")).status_code == 404
        shown = await c.get("/console/content", params={"kind": "message", "id": message_id, "context": 2})
        assert "hello &lt;b&gt;there&lt;/b&gt;" in shown.text and "dossierwb" in shown.text
        assert (await c.get("/console/content", params={"kind": "post", "id": 999999})).status_code == 404
        assert (await c.get("/console/content", params={"context": 99, "id": message_id})).status_code == 422
    assert len(await audit_rows(app, "user.read", f"user:{author['id']}")) == 1  # the dossier read, as through the API
    assert len(await audit_rows(app, "content.read", f"message:{message_id}")) == 1

    async with await console_client(app) as c:
        await sign_in(c, "wb-reviewer")
        page = await c.get(f"/console/users/{author['id']}")
        assert f"/console/users/{author['id']}/identity" in page.text and "full=true" not in page.text
        masked = await c.get(f"/console/users/{author['id']}/identity", params={"full": "true"})
        assert masked.status_code == 200 and "masked" in masked.text and "*" in masked.text  # a reviewer never sees it in full
        assert (await c.get("/console/content", params={"id": message_id})).status_code == 403
    async with await console_client(app) as c:
        await sign_in(c, "wb-compliance")
        full = await c.get(f"/console/users/{author['id']}/identity", params={"full": "true"})
        assert full.status_code == 200 and "in full" in full.text
    reads = await audit_rows(app, "identity.read", f"user:{author['id']}")
    assert sorted(e["actor_id"] for e in reads if e["actor_id"] in readers) == sorted(readers)  # each read recorded


async def test_operators_are_managed_by_an_admin(app):
    admin = Principal(PrincipalKind.OPERATOR, await make_operator(app, Role.ADMIN, "wb-admin"), "", Role.ADMIN)
    await make_operator(app, Role.MODERATOR, "wb-nosy")
    async with await console_client(app) as nosy:
        await sign_in(nosy, "wb-nosy")
        assert (await nosy.get("/console/operators")).status_code == 403
    async with await console_client(app) as c:
        await sign_in(c, "wb-admin")
        shown = await act(c, "/console/operators", "/console/operators", {"handle": "wb-new", "password": PASSWORD})
        assert "unknown_role" in flash(shown) and "wb-new" not in shown  # no role ticked: refused, nothing made
        new = {"handle": "wb-new", "password": PASSWORD, "role_moderator": "yes", "role_compliance": "yes"}
        shown = await act(c, "/console/operators", "/console/operators", new)
        assert "Operator wb-new" in flash(shown) and "created" in flash(shown)
        [op] = [o for o in (await app.state.services.workbench.operators.list(admin))["items"] if o["handle"] == "wb-new"]
        assert op["roles"] == ["compliance", "moderator"] and op["awaiting_confirmation"]
        # Granting compliance waits for a second admin, who confirms it from the same page.
        shown = await act(c, "/console/operators", f"/console/operators/{op['id']}/confirm", {})
        assert "same_operator" in flash(shown)  # not the admin who granted it
        await make_operator(app, Role.ADMIN, "wb-admin2")
        async with await console_client(app) as second:
            await sign_in(second, "wb-admin2")
            shown = await act(second, "/console/operators", f"/console/operators/{op['id']}/confirm", {})
            assert flash(shown) == "Operator wb-new now holds: compliance, moderator."
        async with await console_client(app) as newcomer:
            await sign_in(newcomer, "wb-new")
            nav = (await newcomer.get("/console/")).text
            assert 'href="/console/reports"' in nav and 'href="/console/appeals"' in nav  # pages of both roles
            roles = {"role_reviewer": "yes", "role_moderator": "yes", "role_compliance": "yes"}
            shown = await act(c, "/console/operators", f"/console/operators/{op['id']}/roles", roles)
            assert flash(shown) == "Operator wb-new now holds: compliance, moderator, reviewer."
            r = await c.post(
                f"/console/operators/{op['id']}/roles",
                data={"csrf": csrf_of(await c.get("/console/operators")), "role_reviewer": "yes", "role_admin": "yes"},
                headers={"accept-language": "zh-CN"},
            )
            shown = (await c.get(r.headers["location"], headers={"accept-language": "zh-CN"})).text
            # Adding admin (and dropping compliance) waits for a second admin; role codes in the page's language.
            assert flash(shown) == "另一名管理员确认后，操作员 wb-new 将拥有角色：管理员, 审核员。"
            shown = await act(c, "/console/operators", f"/console/operators/{op['id']}/disable", {})
            assert flash(shown) == "Operator wb-new is disabled and signed out everywhere."
            r = await newcomer.get("/console/")
            assert r.status_code == 303 and r.headers["location"].startswith("/console/sign-in")
        shown = await act(c, "/console/operators", f"/console/operators/{op['id']}/enable", {})
        assert flash(shown) == "Operator wb-new is enabled again."
        shown = await act(c, "/console/operators", f"/console/operators/{op['id']}/password", {"password": "temporary-pass-1"})
        assert "must choose a new one" in flash(shown)
        shown = await act(c, "/console/operators", f"/console/operators/{admin.id}/disable", {})
        assert "self_disable" in flash(shown)
    async with await console_client(app) as reset:
        await sign_in(reset, "wb-new", "temporary-pass-1")
        r = await reset.get("/console/")
        assert r.status_code == 303 and r.headers["location"] == "/console/password"
        page = await reset.get("/console/password")
        assert "password_change_required" in page.text
        token = csrf_of(page)
        r = await reset.post("/console/password", data={"csrf": token, "current_password": "wrong", "new_password": PASSWORD + "3"})
        assert "invalid_credentials" in (await reset.get(r.headers["location"])).text
        r = await reset.post(
            "/console/password", data={"csrf": token, "current_password": "temporary-pass-1", "new_password": PASSWORD + "2"}
        )
        assert r.headers["location"] == "/console/"
        assert (await reset.get("/console/")).status_code == 200
