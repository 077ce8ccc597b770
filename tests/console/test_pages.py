"""The console pages the browser walk does not visit, over HTTP: term lists, agreements,
held messages, the audit log and its verification, the filings export."""

from __future__ import annotations

import re

from imserver.domain.enums import PrincipalKind, Role
from imserver.domain.principals import Principal

from ..helpers import register
from .console_helpers import console_client, csrf_of, make_operator, sign_in

BASELINES = (
    "Users respect laws and regulations, the socialist system, the national interest, the lawful rights of "
    "others, public order, social morality and the truthfulness of information."
)


async def act(c, page: str, action: str, data: dict) -> str:
    """Post a form found on `page` and return the page it leads back to."""
    token = csrf_of(await c.get(page))
    r = await c.post(action, data={"csrf": token, **data})
    assert r.status_code == 303, r.text
    return (await c.get(r.headers["location"])).text


def flash(html: str) -> str:
    match = re.search(r'<div class="flash (?:ok|error)"[^>]*>(.*?)</div>', html, re.S)
    assert match, "the page confirms nothing"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


async def test_terms_and_agreements_for_an_admin(app):
    await make_operator(app, Role.ADMIN, "pages-admin")
    svc = app.state.services
    async with await console_client(app) as c:
        await sign_in(c, "pages-admin")
        new = {"list_name": "default", "term": "wire transfer", "action": "hold"}
        shown = await act(c, "/console/terms", "/console/terms", new)
        [term] = await svc.terms.list()
        assert flash(shown) == f"Term {term['id']} added (hold)." and term["action"] == "hold"
        shown = await act(c, "/console/terms", f"/console/terms/{term['id']}/action", {"action": "deny"})
        assert flash(shown) == f"Term {term['id']} now deny." and (await svc.terms.list())[0]["action"] == "deny"
        shown = await act(c, "/console/terms", "/console/terms", {"term": "wire transfer", "action": "deny"})
        assert "term_exists" in flash(shown) and len(await svc.terms.list()) == 1
        shown = await act(c, "/console/terms", f"/console/terms/{term['id']}/delete", {})
        assert flash(shown) == f"Term {term['id']} removed." and await svc.terms.list() == []
        before = await svc.agreements.current()
        shown = await act(c, "/console/agreements", "/console/agreements", {"text": "be nice"})
        assert "agreement_baselines_missing" in flash(shown)
        assert "seven baselines" in flash(shown) and (await svc.agreements.current())["version"] == before["version"]
        shown = await act(c, "/console/agreements", "/console/agreements", {"text": BASELINES})
        version = (await svc.agreements.current())["version"]
        assert version == before["version"] + 1 and flash(shown) == f"Agreement version {version} published."


async def test_a_held_message_is_released(http, app):
    svc = app.state.services
    await make_operator(app, Role.MODERATOR, "pages-moderator")
    admin_id = await make_operator(app, Role.ADMIN, "pages-terms")
    sender, reader = await register(http, verified=True), await register(http, verified=True)
    admin = Principal(PrincipalKind.OPERATOR, admin_id, "", Role.ADMIN)
    await svc.terms.add(admin, list_name="default", term="wire transfer", action="hold")
    body = "send a wire transfer <b>now</b>"
    stored = await svc.messaging.submit(
        sender_id=sender["id"], client_msg_id="c1", to_kind="user", to_id=reader["id"], body=body
    )
    message_id = (await stored).message_id
    async with await console_client(app) as c:
        await sign_in(c, "pages-moderator")
        page = await c.get("/console/held")
        assert "send a wire transfer &lt;b&gt;now&lt;/b&gt;" in page.text
        shown = await act(c, "/console/held", f"/console/held/{message_id}", {"decision": "release", "note": "a bank"})
        assert flash(shown) == f"Message {message_id} released and delivered."
        assert await svc.messaging.held() == []
        shown = await act(c, "/console/held", f"/console/held/{message_id}", {"decision": "release"})
        assert "conflict" in flash(shown)  # released already: refused, with its code


async def test_audit_log_filters_and_verifies(http, app):
    await make_operator(app, Role.COMPLIANCE, "pages-auditor")
    await register(http)
    async with await console_client(app) as c:
        await sign_in(c, "pages-auditor")
        page = await c.get("/console/audit", params={"action": "operator.*"})
        assert "operator.create" in page.text and "operator.login" in page.text
        page = await c.get("/console/audit", params={"action": "operator.create", "subject": "operator:1"})
        assert "operator.create" in page.text and "operator.login" not in page.text
        page = await c.get("/console/audit", params={"since": "not a date"})
        assert page.status_code == 422 and "invalid_period" in page.text
        token = csrf_of(await c.get("/console/audit"))
        page = await c.post("/console/audit/verify", data={"csrf": token})
        assert page.status_code == 200 and "The chain is intact" in page.text
        rows = await app.state.services.audit.page(after=0, limit=1000)
        assert [e["action"] for e in rows["entries"]][-1] == "audit.verify"  # the check is itself recorded


async def test_filings_export_downloads(app):
    await make_operator(app, Role.COMPLIANCE, "pages-exporter")
    async with await console_client(app) as c:
        await sign_in(c, "pages-exporter")
        token = csrf_of(await c.get("/console/exports"))
        r = await c.post("/console/exports/filings", data={"csrf": token, "format": "csv"})
        assert r.status_code == 200 and r.headers["content-disposition"] == 'attachment; filename="filings.csv"'
        assert r.text.splitlines()[0].startswith("category,reference")
        r = await c.post("/console/exports/sanctions", data={"csrf": token, "since": "2026-01-02", "until": "2026-01-01"})
        shown = (await c.get(r.headers["location"])).text
        assert "invalid_period" in flash(shown)


async def test_the_language_follows_the_header_then_the_switch(app):
    await make_operator(app, Role.REVIEWER, "pages-reader")
    async with await console_client(app) as c:
        await sign_in(c, "pages-reader")
        page = await c.get("/console/", headers={"accept-language": "zh-CN,zh;q=0.9"})
        assert "<h1>总览</h1>" in page.text and '<html lang="zh-CN">' in page.text
        page = await c.get("/console/", headers={"accept-language": "en-US"})
        assert "<h1>Dashboard</h1>" in page.text
        token = csrf_of(page)
        r = await c.post("/console/language", data={"csrf": token, "lang": "zh_CN", "back": "/console/identity"})
        assert r.status_code == 303 and r.headers["location"] == "/console/identity"
        page = await c.get("/console/identity", headers={"accept-language": "en-US"})
        assert "<h1>实名审核</h1>" in page.text  # the switch wins over the header
        r = await c.post("/console/language", data={"lang": "en"})
        assert r.status_code == 403  # the switch is a form like any other: no token, no change
        r = await c.post("/console/language", data={"csrf": token, "lang": "en", "back": "https://elsewhere.example/"})
        assert r.headers["location"] == "/console/"  # never a redirect off the console
