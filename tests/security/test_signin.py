"""Sign-in resists guessing: growing delays per account and per address, no lockout, strong passwords.

The probe sent 300 wrong passwords in a row at 19/s, all answered 401, for users
and operators alike, and registered with `password` and `12345678`.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from imserver.domain.clock import SystemClock
from imserver.domain.enums import PrincipalKind, Role
from imserver.services.signin_guard import RedisFailures, SigninGuard, SigninLimits, delay_after

from ..conftest import REDIS_URL
from ..helpers import PASSWORD, operator, register

LOGIN = {PrincipalKind.USER: "/api/v1/login", PrincipalKind.OPERATOR: "/admin/v1/login"}


async def make_account(http, app, kind: PrincipalKind) -> str:
    if kind == PrincipalKind.USER:
        return (await register(http))["handle"]
    handle = f"op-{uuid.uuid4().hex[:8]}"
    await operator(http, app.state.services, Role.MODERATOR, handle=handle)
    return handle


@pytest.mark.parametrize("kind", list(PrincipalKind))
async def test_a_guesser_is_slowed_and_the_owner_still_gets_in(http, app, kind):
    handle = await make_account(http, app, kind)
    statuses = []
    for i in range(30):  # as fast as the client can send
        r = await http.post(LOGIN[kind], json={"handle": handle, "password": f"guess number {i}"})
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert r.json()["code"] == "signin_throttled" and int(r.headers["retry-after"]) >= 1
    checked = statuses.count(401)
    assert statuses.count(429) >= 20, statuses
    # Only the free allowance and one guess per wait had their password checked.
    assert 5 < checked <= 8, statuses
    # The owner, right password in hand, waits once (the wait is the cap at most) and is in.
    r = await http.post(LOGIN[kind], json={"handle": handle, "password": PASSWORD})
    assert r.status_code == 429, r.text
    retry_after = r.json()["retry_after"]
    assert retry_after <= app.state.settings.signin_max_delay_seconds
    await asyncio.sleep(retry_after)
    r = await http.post(LOGIN[kind], json={"handle": handle, "password": PASSWORD})
    assert r.status_code == 200, r.text
    # Success cleared the account's count: the next mistake is free again.
    r = await http.post(LOGIN[kind], json={"handle": handle, "password": "one more wrong"})
    assert r.status_code == 401


async def test_an_address_spraying_many_accounts_is_slowed(http, app):
    limit = app.state.settings.signin_free_failures_per_ip
    for i in range(limit):
        r = await http.post("/api/v1/login", json={"handle": f"nobody{i}", "password": "wrong password"})
        assert r.status_code == 401
    r = await http.post("/api/v1/login", json={"handle": f"nobody{limit}", "password": "wrong password"})
    assert r.status_code == 401  # this failure starts the address's wait
    r = await http.post("/api/v1/login", json={"handle": "somebody-else", "password": "wrong password"})
    assert r.status_code == 429 and r.json()["code"] == "signin_throttled", r.text


def test_delays_grow_and_stop_at_the_cap():
    limits = SigninLimits(account_free=5, base_delay=1.0, max_delay=60.0)
    assert [delay_after(n, 5, limits) for n in range(5, 13)] == [0, 1, 2, 4, 8, 16, 32, 60]
    assert delay_after(10_000, 5, limits) == 60.0


@pytest.mark.parametrize("password", ["password", "12345678", "qwertyuiop", "iloveyou1"])
async def test_common_passwords_are_refused(http, app, password):
    agreement = (await http.get("/api/v1/agreement")).json()["version"]
    body = {"handle": "weakling", "password": password, "nickname": "W", "agreement_version": agreement}
    r = await http.post("/api/v1/register", json=body)
    assert r.status_code == 422 and r.json()["code"] == "weak_password", r.text
    admin = await operator(http, app.state.services, Role.ADMIN)
    r = await http.post(
        "/admin/v1/operators", json={"handle": "weak-op", "password": password, "role": "moderator"}, headers=admin["headers"]
    )
    assert r.status_code == 422 and r.json()["code"] == "weak_password", r.text


async def test_a_password_made_of_the_handle_is_refused(http):
    agreement = (await http.get("/api/v1/agreement")).json()["version"]
    body = {"handle": "margaretha", "password": "margaretha1", "nickname": "M", "agreement_version": agreement}
    r = await http.post("/api/v1/register", json=body)
    assert r.status_code == 422 and r.json()["code"] == "weak_password", r.text


async def test_failed_operator_sign_ins_reach_the_failure_hook(http, app):
    heard = []

    async def listener(failure) -> None:
        heard.append(failure)

    app.state.services.accounts.guard.failure_listeners.append(listener)
    await operator(http, app.state.services, Role.ADMIN, handle="op-target")
    r = await http.post("/admin/v1/login", json={"handle": "op-target", "password": "not the password"})
    assert r.status_code == 401
    assert [(f.kind, f.handle, f.throttled) for f in heard] == [(PrincipalKind.OPERATOR, "op-target", False)]
    assert "not the password" not in repr(heard)  # the hook never carries the password


@pytest.mark.redis
async def test_counts_are_shared_by_every_node_through_redis():
    prefix = f"imserver-test-{uuid.uuid4().hex[:8]}:signin:"
    limits = SigninLimits(account_free=1, base_delay=30.0, max_delay=30.0)
    a = SigninGuard(RedisFailures(REDIS_URL, prefix, 60), SystemClock(), limits)
    b = SigninGuard(RedisFailures(REDIS_URL, prefix, 60), SystemClock(), limits)
    try:
        try:
            await a.store._redis.ping()
        except Exception as exc:  # noqa: BLE001
            from ..conftest import unreachable

            unreachable("Redis", repr(exc))
        for _ in range(2):
            await a.failed(PrincipalKind.USER, "victim", "10.0.0.1")
        with pytest.raises(Exception) as refused:  # node b sees node a's failures
            await b.check(PrincipalKind.USER, "victim", "10.0.0.2")
        assert refused.value.code.value == "signin_throttled" and 29 <= refused.value.extra["retry_after"] <= 31
        await b.check(PrincipalKind.USER, "someone-else", "10.0.0.2")  # other accounts are untouched
        await b.succeeded(PrincipalKind.USER, "victim")
        await a.check(PrincipalKind.USER, "victim", "10.0.0.2")  # cleared everywhere
    finally:
        await a.store._redis.delete(*[k async for k in a.store._redis.scan_iter(prefix + "*")] or [prefix + "x"])
        await a.store.close()
        await b.store.close()
