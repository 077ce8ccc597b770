"""The admin API as a contract: every operation typed, documented, secured and role-checked.

* every admin operation in ``app.openapi()`` has a description, a typed success
  response, the documented error statuses with the error schema, and the bearer scheme;
* a role x route matrix over every admin route (read from the app's routes, not a
  list kept here): no token, each role, a disabled operator, one with a reset password;
* the response checker (tests/contract.py) that every test's admin responses go through
  can fail, and did check responses;
* /docs and /redoc load their assets from the package, not a CDN.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imserver.role_table import BEGIN, END, admin_access, markdown
from imserver.app import create_app
from imserver.domain.enums import Role

from . import contract
from .helpers import PASSWORD, operator

ERROR_STATUSES = ("401", "403", "404", "409", "422")
PUBLIC = {("POST", "/admin/v1/login")}


def admin_operations(spec: dict):
    for path, ops in spec["paths"].items():
        if path.startswith("/admin/v1/"):
            for method, op in ops.items():
                yield method.upper(), path, op


def test_every_admin_operation_is_typed_documented_and_secured(app):
    spec = app.openapi()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    tags = {t["name"]: t.get("description") for t in spec["tags"]}
    problems, operations = [], 0
    for method, path, op in admin_operations(spec):
        operations += 1
        where = f"{method} {path}"
        if not op.get("description"):
            problems.append(f"{where}: no description")
        for tag in op.get("tags", []):
            if not tags.get(tag):
                problems.append(f"{where}: tag {tag!r} has no description")
        success = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        if not success:
            problems.append(f"{where}: no success response")
        for status, response in success.items():
            content = response.get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if status == "204":
                continue
            if schema is None and not ({"text/csv", "application/x-ndjson"} & set(content)):
                problems.append(f"{where}: {status} has neither a JSON schema nor an export type")
            elif schema is not None and not ("$ref" in schema or "$ref" in schema.get("items", {}) or "properties" in schema):
                problems.append(f"{where}: {status} is an untyped object: {schema}")
        for status in ERROR_STATUSES:
            documented = op["responses"].get(status, {}).get("content", {}).get("application/json", {}).get("schema", {})
            if documented.get("$ref") != "#/components/schemas/ErrorOut":
                problems.append(f"{where}: {status} not documented with ErrorOut")
        if (method, path) not in PUBLIC and {"bearer": []} not in op.get("security", []):
            problems.append(f"{where}: no bearer security")
    assert problems == []
    assert operations >= 50  # the whole admin surface, not a handful of routes


def test_the_response_check_can_fail(app):
    checker = contract.Contract(app.openapi())
    whoami = {"id": 1, "operator_id": 1, "handle": "op", "roles": ["admin"], "must_change_password": False}
    assert checker.check("GET", "/admin/v1/whoami", 200, "application/json", whoami) == "/admin/v1/whoami"
    bad_bodies = (
        {**whoami, "id": "one"},
        {k: v for k, v in whoami.items() if k != "handle"},
        {**whoami, "roles": ["overlord"]},
    )
    for body in bad_bodies:
        with pytest.raises(contract.ContractViolation):
            checker.check("GET", "/admin/v1/whoami", 200, "application/json", body)
    with pytest.raises(contract.ContractViolation):
        checker.check("GET", "/admin/v1/whoami", 418, "application/json", {"code": "teapot", "detail": ""})
    with pytest.raises(contract.ContractViolation):  # an error without its code
        checker.check("GET", "/admin/v1/sanctions/7", 404, "application/json", {"detail": "no"})
    assert checker.template("GET", "/admin/v1/sanctions/awaiting-confirmation") == "/admin/v1/sanctions/awaiting-confirmation"
    assert checker.template("GET", "/admin/v1/sanctions/7") == "/admin/v1/sanctions/{sanction_id}"


def concrete(path: str) -> str:
    parts = []
    for part in path.split("/"):
        if part == "{subject_kind}":
            parts.append("user")
        elif part.startswith("{"):
            parts.append("999999")  # no such thing: an admitted role gets 404 or 422, nothing changes
        else:
            parts.append(part)
    return "/".join(parts)


async def test_role_matrix_over_every_admin_route(http, app):
    svc = app.state.services
    by_role = {role: await operator(http, svc, role) for role in Role}
    disabled = await operator(http, svc, Role.ADMIN)
    r = await http.post(f"/admin/v1/operators/{disabled['id']}/disable", headers=by_role[Role.ADMIN]["headers"])
    assert r.status_code == 200, r.text
    resetting = await operator(http, svc, Role.ADMIN)
    r = await http.post(
        f"/admin/v1/operators/{resetting['id']}/password", json={"password": PASSWORD}, headers=by_role[Role.ADMIN]["headers"]
    )
    assert r.status_code == 200

    async def fresh(handle: str) -> dict:
        r = await http.post("/admin/v1/login", json={"handle": handle, "password": PASSWORD})
        return {"Authorization": f"Bearer {r.json()['token']}"}

    must_change = await fresh(resetting["handle"])

    async def headers_for(role: Role, method: str, path: str) -> dict:
        if path == "/admin/v1/logout":  # signing out ends the token: use a fresh one
            return await fresh(by_role[role]["handle"])
        return by_role[role]["headers"]

    async def call(method: str, path: str, headers: dict | None):
        kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        return await http.request(method, concrete(path), headers=headers or {}, **kwargs)

    wrong, checked = [], 0
    routes = admin_access(app)
    assert len(routes) >= 50
    for access in routes:
        method, route, roles, password_gate = access, access, access.roles, access.password_gate
        method = access.method
        if roles is None:
            assert (method, route.path) in PUBLIC, f"{method} {route.path} has no operator check"
            continue
        r = await call(method, route.path, None)
        if (r.status_code, r.json().get("code")) != (401, "unauthenticated"):
            wrong.append((method, route.path, "no token", r.status_code))
        r = await call(method, route.path, disabled["headers"])
        if r.status_code != 401:
            wrong.append((method, route.path, "disabled", r.status_code))
        r = await call(method, route.path, await fresh(resetting["handle"]) if route.path.endswith("/logout") else must_change)
        # whoami, sign-out and the password change stay open; everything else waits for the change
        if password_gate != (r.status_code == 403 and r.json().get("code") == "password_change_required"):
            wrong.append((method, route.path, "must change password", r.status_code))
        for role in Role:
            r = await call(method, route.path, await headers_for(role, method, route.path))
            admitted = r.status_code not in (401, 403)
            if admitted != (role in roles):
                wrong.append((method, route.path, role.value, r.status_code, r.text[:80]))
            checked += 1
    assert wrong == []
    assert checked == len(Role) * (len(routes) - len(PUBLIC))
    # Every one of those responses went through the OpenAPI check (tests/contract.py).
    statuses = {status for (_, template, status) in contract.SEEN if template.startswith("/admin/v1/")}
    assert {200, 401, 403, 404, 422} <= statuses, contract.SEEN


def test_the_docs_role_table_is_the_codes():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "admin_api.md").read_text()
    start, end = doc.index(BEGIN), doc.index(END) + len(END)
    assert doc[start:end] == markdown(create_app()), "regenerate: python -m imserver.role_table"


async def test_docs_load_their_assets_from_the_package(http):
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        r = await http.get(page)
        assert r.status_code == 200
        html = r.text
        assert f"/static-offline-docs/{asset}" in html
        assert "https://" not in html and "http://" not in html.replace("http://testserver", "")  # no CDN, no fonts
        js = await http.get(f"/static-offline-docs/{asset}")
        assert js.status_code == 200 and len(js.content) > 100_000
