"""Role x page for the operator console, whose forms and pages are not in the OpenAPI.

* Signed out, every console route but sign-in, the language switch and the
  static files refuses (a redirect to sign-in, or 403 for a form without its
  anti-forgery token) and does nothing.
* Signed in, each role opens exactly the pages of its work: the table below is
  written out here, not read from the console's own, so a page that admits the
  wrong role, or a new page nobody placed in the table, fails the test.
"""

from __future__ import annotations

import re

from fastapi.routing import APIRoute, iter_route_contexts

from imserver.domain.enums import Role

from ..console.console_helpers import console_client, make_operator, sign_in

NO_SUCH_ID = 987_654_321
OPEN = {("GET", "/console/sign-in"), ("POST", "/console/sign-in"), ("POST", "/console/language")}
REDIRECTS = {("GET", "/console"): "/console/"}  # only a redirect, to a page below
ANY = set(Role)
REV, MOD, COMP, ADMIN = Role.REVIEWER, Role.MODERATOR, Role.COMPLIANCE, Role.ADMIN

PAGES = {
    "/console/": ANY,
    "/console/identity": {REV, COMP},
    "/console/public-accounts": {REV, COMP},
    "/console/reports": {MOD},
    "/console/sanctions": {MOD, COMP},
    "/console/appeals": {COMP},
    "/console/held": {MOD},
    "/console/terms": {ADMIN},
    "/console/agreements": ANY,
    "/console/audit": {COMP, ADMIN},
    "/console/exports": {COMP},
    "/console/users": {REV, MOD, COMP},
    "/console/content": {MOD, COMP},
    "/console/operators": {ADMIN},
    "/console/password": ANY,  # one's own password
}


def console_routes(app) -> list[tuple[str, str]]:
    out = []
    for context in iter_route_contexts(app.routes):  # through included routers, as the app resolves them
        path = context.path
        if isinstance(context.route, APIRoute) and path.startswith("/console") and "{rest:path}" not in path:
            out.extend((method, path) for method in sorted(context.methods))
    return out


async def test_signed_out_every_console_route_refuses(app):
    routes = [r for r in console_routes(app) if r not in OPEN and r not in REDIRECTS]
    assert len(routes) >= 20  # the whole console, not a handful
    wrong = []
    async with await console_client(app) as c:
        for method, path in routes:
            url = re.sub(r"\{[^}]+\}", str(NO_SUCH_ID), path)
            r = await c.request(method, url, data={} if method == "POST" else None)
            signed_out = r.status_code == 303 and r.headers["location"].startswith("/console/sign-in")
            if not (signed_out or r.status_code == 403):
                wrong.append(f"{method} {path}: {r.status_code}")
        for (method, path), target in REDIRECTS.items():
            r = await c.request(method, path)
            if r.status_code not in (301, 302, 303, 307, 308) or not r.headers["location"].endswith(target):
                wrong.append(f"{method} {path}: {r.status_code}")
    assert not wrong, wrong


async def pages_as_each_role(app) -> dict[tuple[Role, str], int]:
    """The status of every page in the table, opened by an operator of each role."""
    pages = {path for method, path in console_routes(app) if method == "GET" and "{" not in path}
    pages -= {p for m, p in OPEN | set(REDIRECTS)}
    assert pages == set(PAGES), "place every console page in the table: " + str(sorted(pages ^ set(PAGES)))
    seen = {}
    for role in Role:
        await make_operator(app, role, f"desk-{role.value}")
        async with await console_client(app) as c:
            assert (await sign_in(c, f"desk-{role.value}")).status_code == 303
            for path in PAGES:
                seen[(role, path)] = (await c.get(path)).status_code
    return seen


async def test_each_role_is_admitted_to_exactly_its_pages(app):
    seen = await pages_as_each_role(app)
    wrong = [
        f"{role.value} {path}: {status}"
        for (role, path), status in seen.items()
        if (status == 403) == (role in PAGES[path]) or status in (301, 302, 303, 307, 401)
    ]
    assert not wrong, wrong


async def test_each_role_opens_its_pages_without_a_server_error(app):
    seen = await pages_as_each_role(app)
    wrong = [f"{role.value} {path}: {status}" for (role, path), status in seen.items() if role in PAGES[path] and status != 200]
    assert not wrong, wrong
