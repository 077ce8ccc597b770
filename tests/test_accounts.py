"""Registration, login, tokens and error shapes over HTTP, on both backends."""

from __future__ import annotations

from imserver.domain.enums import Role

from .helpers import PASSWORD, operator, register


async def test_register_login_me(http):
    user = await register(http, "alice", "Ally")
    r = await http.get("/api/v1/me", headers=user["headers"])
    assert r.status_code == 200
    me = r.json()
    assert me["handle"] == "alice" and me["nickname"] == "Ally"
    assert me["real_name_status"] == "unverified"
    assert me["agreement_current"] is True


async def test_login_errors_do_not_enumerate(http):
    await register(http, "bob")
    wrong_password = await http.post("/api/v1/login", json={"handle": "bob", "password": "not the password"})
    no_such_user = await http.post("/api/v1/login", json={"handle": "nobody", "password": "not the password"})
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert wrong_password.json() == no_such_user.json() == {
        "code": "invalid_credentials",
        "detail": "wrong handle or password",
    }


async def test_taken_handle_is_refused_without_saying_why(http):
    await register(http, "carol")
    r = await http.post(
        "/api/v1/register",
        json={"handle": "Carol", "password": PASSWORD, "nickname": "x", "agreement_version": 1},
    )
    assert r.status_code == 409
    assert r.json()["code"] == "registration_refused"


async def test_registration_needs_the_current_agreement(http):
    r = await http.post(
        "/api/v1/register",
        json={"handle": "dave", "password": PASSWORD, "nickname": "Dave", "agreement_version": 99},
    )
    assert r.status_code == 422
    assert r.json()["code"] == "agreement_version_mismatch"
    assert r.json()["current_version"] == 1


async def test_password_bounds(http):
    for password in ("short", "x" * 129):
        r = await http.post(
            "/api/v1/register",
            json={"handle": "erin", "password": password, "nickname": "Erin", "agreement_version": 1},
        )
        assert r.status_code == 422 and r.json()["code"] == "weak_password"
    # The 128-character maximum itself is accepted (a varied one: a repeat is too easy to guess).
    long_password = "".join(chr(33 + (i * 37) % 90) for i in range(128))
    r = await http.post(
        "/api/v1/register",
        json={"handle": "erin", "password": long_password, "nickname": "Erin", "agreement_version": 1},
    )
    assert r.status_code == 201


async def test_logout_revokes_the_token(http):
    user = await register(http)
    assert (await http.post("/api/v1/logout", headers=user["headers"])).status_code == 204
    r = await http.get("/api/v1/me", headers=user["headers"])
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"


async def test_error_shapes(http):
    r = await http.get("/no/such/route")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await http.get("/api/v1/me")
    assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    r = await http.post("/api/v1/register", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == "malformed"
    r = await http.post("/api/v1/register", json={"handle": "x", "unknown": 1})
    assert r.status_code == 422 and r.json()["code"] == "malformed"


async def test_other_users_see_only_the_nickname(http):
    alice = await register(http, "alice2", "Ally")
    bob = await register(http, "bob2", "Bobby")
    r = await http.get(f"/api/v1/users/{alice['id']}", headers=bob["headers"])
    assert r.status_code == 200
    assert r.json() == {"id": alice["id"], "nickname": "Ally"}


async def test_role_checks(http, app):
    services = app.state.services
    moderator = await operator(http, services, Role.MODERATOR)
    admin = await operator(http, services, Role.ADMIN)
    body = {"handle": "newop", "password": PASSWORD, "role": "reviewer"}
    assert (await http.post("/admin/v1/operators", json=body)).status_code == 401
    r = await http.post("/admin/v1/operators", json=body, headers=moderator["headers"])
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert (await http.post("/admin/v1/operators", json=body, headers=admin["headers"])).status_code == 201
    # A user's token is not an operator's.
    user = await register(http)
    assert (await http.get("/admin/v1/whoami", headers=user["headers"])).status_code == 401


async def test_healthz_and_metrics(http):
    r = await http.get("/healthz")
    assert r.status_code == 200 and r.json()["database"] == "ok"
    r = await http.get("/metrics")
    assert r.status_code == 200 and "imserver_database_up 1.0" in r.text
