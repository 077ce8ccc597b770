"""No input produces a 500: out-of-range integers, NUL and lone surrogates are 422s.

Each case replays a probe finding: an id one past the 64-bit range gave a 500
(OverflowError on SQLite, DataError on PostgreSQL), and a NUL in text a 500 on
PostgreSQL (SQLite stored it). Now both databases answer 422 ``invalid_field``.
"""

from __future__ import annotations

import re

import pytest

from imserver.domain.enums import Role

from ..helpers import operator, register

TOO_BIG = 2**63  # one past BIGINT / SQLite INTEGER


@pytest.fixture
async def callers(http, app):
    """A user and one operator of every role: each route is called by one it admits."""
    services = app.state.services
    people = [await register(http)]
    for role in Role:
        people.append(await operator(http, services, role))
    return people


async def first_admitted(http, method: str, url: str, callers, **kwargs):
    """The answer to the first caller that gets past authentication and roles."""
    for who in callers:
        r = await http.request(method, url, headers=who["headers"], **kwargs)
        if r.status_code not in (401, 403):
            return r
    raise AssertionError(f"no caller admitted to {method} {url}")


def id_operations(app) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI with an id in its path."""
    out = []
    for path, item in app.openapi()["paths"].items():
        if re.search(r"\{\w+_id\}", path):
            out.extend((method.upper(), path) for method in item)
    return out


async def test_every_path_id_past_64_bits_is_invalid_field(http, app, callers):
    operations = id_operations(app)
    assert len(operations) > 25  # every {..._id} route of both APIs
    for method, path in operations:
        url = re.sub(r"\{\w+_id\}", str(TOO_BIG), path).replace("{subject_kind}", "user")
        r = await first_admitted(http, method, url, callers, json={})
        assert r.status_code == 422, (method, path, r.status_code, r.text)
        assert r.json()["code"] in ("invalid_field", "malformed"), (method, path, r.text)
        assert any(e["loc"][0] == "path" for e in r.json()["errors"]), (method, path, r.text)


async def test_an_id_past_64_bits_is_invalid_field(http, callers):
    r = await http.get(f"/api/v1/users/{TOO_BIG}", headers=callers[0]["headers"])
    assert r.status_code == 422 and r.json()["code"] == "invalid_field", r.text
    r = await http.get(f"/api/v1/users/{2**63 - 1}", headers=callers[0]["headers"])
    assert r.status_code == 404, r.text  # the largest id is a valid id, just not there


@pytest.mark.parametrize(
    "method, url",
    [
        ("GET", "/api/v1/conversations/1/messages?before={n}"),
        ("GET", "/api/v1/public-accounts?after={n}"),
        ("GET", "/api/v1/public-accounts/1/posts?before={n}"),
        # The admin lists page by opaque cursors; their id filters are bounded the same way.
        ("GET", "/admin/v1/audit?actor_id={n}"),
        ("GET", "/admin/v1/held?sender_id={n}"),
        ("GET", "/admin/v1/reports?reporter_id={n}"),
        ("GET", "/admin/v1/reports?min_age_seconds={n}"),
        ("GET", "/admin/v1/appeals?user_id={n}"),
        ("GET", "/admin/v1/sanctions?subject_id={n}"),
        ("GET", "/admin/v1/users?id={n}"),
        ("GET", "/admin/v1/users/{n}"),
        ("GET", "/admin/v1/messages/{n}"),
        ("GET", "/admin/v1/operators/{n}"),
    ],
)
async def test_cursors_and_filters_past_64_bits_are_invalid_field(http, callers, method, url):
    r = await first_admitted(http, method, url.format(n=TOO_BIG), callers)
    assert r.status_code == 422 and r.json()["code"] == "invalid_field", r.text


@pytest.mark.parametrize(
    "url, body",
    [
        ("/api/v1/groups", {"name": "g", "members": [TOO_BIG]}),
        ("/api/v1/groups/1/members", {"user_ids": [TOO_BIG]}),
        ("/api/v1/reports", {"target_kind": "message", "target_id": TOO_BIG, "category": "other", "text": "x"}),
        ("/admin/v1/sanctions", {"subject_id": TOO_BIG, "kind": "warning", "reason": "x"}),
        ("/admin/v1/sanctions", {"subject_id": 1, "kind": "warning", "reason": "x", "duration_seconds": -TOO_BIG}),
        ("/admin/v1/reports/1/resolve", {"outcome": "actioned", "sanction_id": TOO_BIG}),
        ("/api/v1/agreement/accept", {"version": 2**31}),  # an `integer` column on PostgreSQL
    ],
)
async def test_body_integers_past_the_column_range_are_invalid_field(http, callers, url, body):
    r = await first_admitted(http, "POST", url, callers, json=body)
    assert r.status_code == 422 and r.json()["code"] == "invalid_field", r.text


NUL = "a\x00b"


@pytest.mark.parametrize(
    "method, url, body",
    [
        ("POST", "/api/v1/groups", {"name": NUL}),
        ("POST", "/api/v1/reports", {"target_kind": "account", "target_id": 1, "category": "other", "text": NUL}),
        ("POST", "/api/v1/sanctions/1/appeal", {"text": NUL}),
        ("POST", "/api/v1/public-accounts", {"name": "n", "category": "c", "description": NUL}),
        ("POST", "/api/v1/public-accounts/1/posts", {"title": "t", "body": NUL}),
        ("GET", "/api/v1/public-accounts?q=a%00b", None),
        ("POST", "/admin/v1/held/1", {"decision": "release", "note": NUL}),
        ("POST", "/admin/v1/sanctions", {"subject_id": 1, "kind": "warning", "reason": NUL}),
        ("POST", "/admin/v1/sanctions/1/lift", {"reason": NUL}),
        ("POST", "/admin/v1/terms", {"list_name": NUL, "term": "t", "action": "block"}),
        (
            "POST",
            "/admin/v1/public-accounts/1/news-approvals",
            {"reference": NUL, "scope": "publish", "expires_at": "2999-01-01T00:00:00Z"},
        ),
        ("GET", "/admin/v1/subjects/us%00er/1/sanctions", None),
        # The workbench: list filters, opaque cursors, operator management.
        ("GET", "/admin/v1/users?q=a%00b", None),
        ("GET", "/admin/v1/audit?action=a%00b", None),
        ("GET", "/admin/v1/audit?cursor=a%00b", None),
        ("GET", "/admin/v1/public-accounts?name=a%00b", None),
        ("GET", "/admin/v1/regulator/sanctions?since=2026%00", None),
        ("POST", "/admin/v1/operators", {"handle": NUL, "password": "x" * 12, "roles": ["reviewer"]}),
        ("PUT", "/admin/v1/operators/1/roles", {"roles": [NUL]}),
        ("POST", "/admin/v1/sanctions/1/decline", {"note": NUL}),
        ("POST", "/admin/v1/agreements", {"text": NUL}),
    ],
)
async def test_nul_in_text_is_invalid_field(http, callers, method, url, body):
    r = await first_admitted(http, method, url, callers, json=body)
    assert r.status_code == 422 and r.json()["code"] == "invalid_field", r.text
    assert NUL not in r.text  # the refused value is not echoed


async def test_a_lone_surrogate_is_invalid_field(http, callers):
    raw = b'{"name": "g\\ud800"}'  # valid JSON, but no valid Unicode text
    r = await http.post(
        "/api/v1/groups", content=raw, headers={**callers[0]["headers"], "content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_field", r.text


async def test_the_openapi_422_is_the_body_the_server_sends(http, app, callers):
    spec = app.openapi()
    schema = spec["components"]["schemas"]["HTTPValidationError"]
    assert set(schema["required"]) == {"code", "detail", "errors"}
    assert "ValidationError" not in spec["components"]["schemas"]
    r = await http.get("/api/v1/users/x", headers=callers[0]["headers"])
    body = r.json()
    assert r.status_code == 422 and set(body) == set(schema["properties"])
    assert body["code"] in schema["properties"]["code"]["enum"]
    assert all(set(e) == set(schema["properties"]["errors"]["items"]["properties"]) for e in body["errors"])


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59"])
@pytest.mark.parametrize(
    "method, url, body",
    [
        ("POST", "/admin/v1/sanctions", {"subject_id": 1, "kind": "suspend_updates", "reason": "x", "ends_at": "{when}"}),
        ("POST", "/admin/v1/public-accounts/1/news-approvals", {"reference": "r", "scope": "publish", "expires_at": "{when}"}),
        ("GET", "/admin/v1/regulator/sanctions?since={when}&until={when}", None),
    ],
)
async def test_datetimes_at_the_edge_of_the_calendar_are_no_500(http, callers, method, url, body, when):
    if body is not None:
        body = {k: (when if v == "{when}" else v) for k, v in body.items()}
    r = await first_admitted(http, method, url.format(when=when.replace("+", "%2B")), callers, json=body)
    assert r.status_code < 500, r.text


async def test_a_surrogate_or_bad_utf8_in_a_query_is_no_500(http, callers):
    for raw in ("%ED%A0%80", "%FF%FE", "%C0%80", "a%00"):
        r = await http.get(f"/api/v1/public-accounts?q={raw}", headers=callers[0]["headers"])
        assert r.status_code in (200, 422), (raw, r.status_code, r.text)
        if "%00" in raw:
            assert r.json()["code"] == "invalid_field"


async def test_nul_in_a_console_form_is_refused_and_stores_nothing(app):
    from imserver.domain.enums import Role

    from ..console.console_helpers import console_client, csrf_of, make_operator, sign_in

    await make_operator(app, Role.ADMIN, "form-admin")
    async with await console_client(app) as c:
        assert (await sign_in(c, "form-admin")).status_code == 303
        csrf = csrf_of(await c.get("/console/agreements"))  # a page that renders on this branch
        r = await c.post("/console/terms", data={"csrf": csrf, "list_name": "default", "term": NUL, "action": "deny"})
        # Back to the form with the error (PostgreSQL answered 500 here; SQLite stored the NUL).
        assert r.status_code == 303 and r.headers["location"].startswith("/console/terms"), r.text
    async with app.state.services.db.read() as conn:
        from imserver.store import terms as term_store

        rows, _ = await term_store.list_terms(conn, list_name=None, after=None, limit=1000)
    assert not [t for t in rows if "\x00" in t["term"]]
