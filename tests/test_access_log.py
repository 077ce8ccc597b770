"""The sign-in and network log, and the client address behind trusted proxies.

Sign-ins, failed sign-ins, sign-outs (users and operators) and WebSocket
sessions are recorded with time, address, user agent and node; compliance reads
and exports them by user and period. X-Forwarded-For is believed only from a
trusted proxy, and then only its rightmost untrusted hop.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import websockets
from sqlalchemy import text

from imserver.domain.client_ip import client_address, parse_networks
from imserver.domain.enums import Role
from imserver.gateway import protocol
from imserver.services.access_log import Origin

from .console.console_helpers import console_client, csrf_of, make_operator
from .console.console_helpers import sign_in as console_sign_in
from .helpers import PASSWORD, operator, register

UA = {"User-Agent": "imclient/2.1 (test)"}
FORGED = {"X-Forwarded-For": "6.6.6.6"}


async def log_of(services, **filters) -> list[dict]:
    return (await services.access_log.read(limit=1000, **filters))["entries"]


# -- the rule, as a pure function ---------------------------------------------------------------

TRUSTED = parse_networks(("10.0.0.0/8", "192.0.2.7"))


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        ("203.0.113.5", ["6.6.6.6"], "203.0.113.5"),  # untrusted peer: its header is ignored
        ("192.0.2.7", ["6.6.6.6, 203.0.113.5"], "203.0.113.5"),  # rightmost untrusted hop
        ("10.1.1.1", ["6.6.6.6, 203.0.113.5, 10.2.2.2"], "203.0.113.5"),  # past two of our proxies
        ("10.1.1.1", ["6.6.6.6", "203.0.113.5"], "203.0.113.5"),  # the header twice: one list
        ("10.1.1.1", [], "10.1.1.1"),  # a proxy of ours that sent no header
        ("10.1.1.1", ["10.3.3.3"], "10.3.3.3"),  # only our own hops: the leftmost
        ("10.1.1.1", ["not-an-ip"], "10.1.1.1"),  # garbage is never recorded as the client
        ("192.0.2.7", ["[2001:db8::1]:443"], "2001:db8::1"),
    ],
)
def test_client_address(peer, header, expected):
    assert client_address(peer, header, TRUSTED) == expected


def test_no_trusted_proxies_means_the_peer():
    assert client_address("127.0.0.1", ["6.6.6.6"], ()) == "127.0.0.1"


def test_a_bad_trusted_proxy_entry_is_refused():
    with pytest.raises(ValueError, match="not-a-net"):
        parse_networks(("not-a-net",))


# -- sign-ins -------------------------------------------------------------------------------------


async def test_user_sign_in_failure_and_sign_out_are_logged(http, app):
    services = app.state.services
    user = await register(http, "logged")  # signs in once
    r = await http.post("/api/v1/login", json={"handle": "logged", "password": "wrong"}, headers={**UA, **FORGED})
    assert r.status_code == 401
    r = await http.post("/api/v1/login", json={"handle": "nobody-here", "password": "wrong"}, headers=UA)
    assert r.status_code == 401
    r = await http.post("/api/v1/logout", headers={**user["headers"], **UA})
    assert r.status_code == 204

    mine = await log_of(services, principal_kind="user", principal_id=user["id"])
    assert [e["event"] for e in mine] == ["signin", "signin_failed", "signout"]
    for e in mine:
        assert e["ip"] == "127.0.0.1"  # no trusted proxy: the forged header is ignored
        assert e["node"] == services.node_id and e["at"]
    assert mine[1]["user_agent"] == UA["User-Agent"] and mine[1]["detail"] == "invalid_credentials"
    # A handle no account has is not kept (it could be anything typed), the attempt is.
    unknown = [e for e in await log_of(services) if e["detail"] == "unknown_handle"]
    assert len(unknown) == 1 and unknown[0]["principal_id"] is None and unknown[0]["event"] == "signin_failed"
    assert unknown[0]["handle"] is None and unknown[0]["ip"] == "127.0.0.1"
    # Passwords are never recorded.
    assert all("wrong" not in json.dumps(e) and PASSWORD not in json.dumps(e) for e in await log_of(services))


async def test_operator_sign_in_and_out_are_logged(http, app):
    services = app.state.services
    op = await operator(http, services, Role.MODERATOR)
    r = await http.post("/admin/v1/logout", headers=op["headers"])
    assert r.status_code == 204
    r = await http.post("/admin/v1/login", json={"handle": "op-nobody", "password": "x"})
    assert r.status_code == 401
    events = [e["event"] for e in await log_of(services, principal_kind="operator", principal_id=op["id"])]
    assert events == ["signin", "signout"]
    assert any(e["event"] == "signin_failed" and e["detail"] == "unknown_handle" for e in await log_of(services))


async def test_recent_sign_ins_in_the_dossier(http, app):
    services = app.state.services
    user = await register(http)  # signs in once
    await http.post("/api/v1/login", json={"handle": user["handle"], "password": PASSWORD}, headers=UA)
    await http.post("/api/v1/login", json={"handle": user["handle"], "password": "nope"})
    await http.post("/api/v1/logout", headers=user["headers"])  # not a sign-in: not in the dossier's list
    moderator = await operator(http, services, Role.MODERATOR)
    r = await http.get(f"/admin/v1/users/{user['id']}", headers=moderator["headers"])
    assert r.status_code == 200, r.text
    recent = r.json()["recent_sign_ins"]
    assert [(e["event"], e["detail"]) for e in recent] == [
        ("signin_failed", "invalid_credentials"),
        ("signin", None),
        ("signin", None),
    ]  # newest first
    assert recent[1]["user_agent"] == UA["User-Agent"] and {e["ip"] for e in recent} == {"127.0.0.1"}
    assert all(e["node"] == services.node_id for e in recent)


async def test_a_closed_accounts_sign_in_is_logged_with_its_appeal_only_token(http, app):
    services = app.state.services
    user = await register(http)
    async with services.db.transaction() as conn:  # closed, as a confirmed closure leaves it
        from sqlalchemy import update

        from imserver.store.tables import users

        await conn.execute(update(users).where(users.c.id == user["id"]).values(status="closed"))
    r = await http.post("/api/v1/login", json={"handle": user["handle"], "password": PASSWORD}, headers=UA)
    assert r.status_code == 403 and r.json()["code"] == "account_closed" and r.json()["appeal_token"]
    r = await http.post("/api/v1/login", json={"handle": user["handle"], "password": "nope"})
    assert r.status_code == 401  # a wrong password never learns the account is closed
    events = [(e["event"], e["detail"]) for e in await log_of(services, principal_kind="user", principal_id=user["id"])]
    assert events == [("signin", None), ("signin", "account_closed"), ("signin_failed", "invalid_credentials")]


async def test_console_sign_ins_throttling_and_sign_out_are_logged(app):
    services = app.state.services
    op_id = await make_operator(app, Role.MODERATOR, "console-logged")
    async with await console_client(app) as c:
        for _ in range(services.settings.signin_free_failures_per_account + 1):  # one past the free allowance
            await console_sign_in(c, "console-logged", "wrong")
        r = await console_sign_in(c, "console-logged")  # refused by the throttle, right password or not
        assert r.headers["location"].startswith("/console/sign-in")  # back to the form, with the error
    await asyncio.sleep(services.settings.signin_base_delay_seconds + 0.2)  # the first wait is over
    async with await console_client(app) as c:
        assert (await console_sign_in(c, "console-logged")).headers["location"] == "/console/"
        page = await c.get("/console/")
        assert (await c.post("/console/sign-out", data={"csrf": csrf_of(page)})).status_code == 303
    events = [(e["event"], e["detail"]) for e in await log_of(services, principal_kind="operator", principal_id=op_id)]
    failures = services.settings.signin_free_failures_per_account + 1
    assert events == [("signin_failed", "invalid_credentials")] * failures + [
        ("signin_failed", "signin_throttled"),
        ("signin", None),
        ("signout", None),
    ]


# -- the true client address behind a trusted proxy --------------------------------------------------


async def test_a_trusted_proxy_is_believed_and_a_forged_hop_is_not(http, app, settings):
    services = app.state.services
    settings.trusted_proxies = ["127.0.0.1"]  # the test client's address plays the proxy
    # The client forged 6.6.6.6; our proxy appended the address it saw, 198.51.100.4.
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.4", **UA}
    agreement = (await http.get("/api/v1/agreement")).json()
    r = await http.post(
        "/api/v1/register",
        json={"handle": "proxied", "password": PASSWORD, "nickname": "P", "agreement_version": agreement["version"]},
        headers=headers,
    )
    assert r.status_code == 201
    r = await http.post("/api/v1/login", json={"handle": "proxied", "password": PASSWORD}, headers=headers)
    user_id = r.json()["user_id"]
    [signin] = await log_of(services, principal_kind="user", principal_id=user_id)
    assert signin["ip"] == "198.51.100.4"
    from sqlalchemy import select

    from imserver.store.tables import agreement_acceptances

    async with services.db.read() as conn:
        ips = (await conn.execute(select(agreement_acceptances.c.client_ip).where(agreement_acceptances.c.user_id == user_id))).scalars().all()
    assert ips == ["198.51.100.4"]


async def test_a_forged_header_from_an_untrusted_address_is_ignored(http, app, settings):
    services = app.state.services
    settings.trusted_proxies = ["10.0.0.0/8"]  # a proxy exists, but the test client is not it
    user = await register(http)
    await http.post("/api/v1/login", json={"handle": user["handle"], "password": PASSWORD}, headers=FORGED)
    ips = {e["ip"] for e in await log_of(services, principal_kind="user", principal_id=user["id"])}
    assert ips == {"127.0.0.1"}


# -- WebSocket sessions ------------------------------------------------------------------------------


async def wait_for(services, events: list[str], user_id: int) -> list[dict]:
    for _ in range(200):
        got = await log_of(services, principal_kind="user", principal_id=user_id)
        if [e["event"] for e in got if e["event"].startswith("ws_")] == events:
            return [e for e in got if e["event"].startswith("ws_")]
        await asyncio.sleep(0.02)
    raise AssertionError(f"never saw {events}: {got}")


async def test_a_websocket_session_is_logged_at_start_and_end(server, client, settings):
    settings.trusted_proxies = ["127.0.0.1"]
    user = await register(client)
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.9", **UA}
    async with websockets.connect(server.ws_url, additional_headers=headers) as ws:
        await ws.send(protocol.encode_client(protocol.Auth(token=user["token"])).decode())
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello"
        [opened] = await wait_for(server.services, ["ws_open"], user["id"])
        await ws.close(code=1000)
    opened, closed = await wait_for(server.services, ["ws_open", "ws_close"], user["id"])
    assert opened["ip"] == closed["ip"] == "198.51.100.9"
    assert opened["user_agent"] == UA["User-Agent"] and opened["connection"] == closed["connection"]
    assert closed["close_code"] == 1000 and opened["close_code"] is None


async def test_a_burst_of_sessions_is_a_few_transactions_and_every_row_is_kept(app, http):
    """2,000 clients reconnecting at once: the network log must not queue 2,000 commits on the writer."""
    services = app.state.services
    user = await register(http)
    for i in range(900):  # two batches (the read below returns at most 1,000 rows)
        services.access_log.record_later(
            "ws_open", principal_kind="user", principal_id=user["id"], origin=Origin("192.0.2.1", "ua"), connection=str(i)
        )
    await services.access_log.drain()
    rows = [e for e in await log_of(services, principal_kind="user", principal_id=user["id"]) if e["event"] == "ws_open"]
    assert sorted(int(e["connection"]) for e in rows) == list(range(900))
    queue = services.access_log.queue
    assert queue.writes <= 900 // queue.batch_rows + 1 and queue.queued == 0


async def test_rows_the_database_refuses_stay_queued_until_it_takes_them(app, http, db):
    services = app.state.services
    user = await register(http)
    refuse, allow = REFUSE_INSERTS[db.dialect]
    async with db.transaction() as conn:
        for statement in refuse:
            await conn.execute(text(statement))
    services.access_log.record_later(
        "ws_open", principal_kind="user", principal_id=user["id"], origin=Origin(None, None), connection="7"
    )
    for _ in range(100):  # the first write is refused; the row stays queued
        await asyncio.sleep(0.01)
        if services.access_log.queue.writes == 0 and services.access_log.queue.queued == 1:
            break
    await asyncio.sleep(0.1)
    assert (services.access_log.queue.writes, services.access_log.queue.queued) == (0, 1)
    async with db.transaction() as conn:
        for statement in allow:
            await conn.execute(text(statement))
    opened = await wait_for(services, ["ws_open"], user["id"])  # the retry, half a second later
    assert opened[0]["connection"] == "7" and services.access_log.queue.queued == 0


REFUSE_INSERTS = {
    "sqlite": (
        ["CREATE TRIGGER refuse_log BEFORE INSERT ON access_log BEGIN SELECT RAISE(ABORT, 'refused'); END"],
        ["DROP TRIGGER refuse_log"],
    ),
    "postgresql": (
        [
            "CREATE FUNCTION refuse_log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE 'refused'; END $$",
            "CREATE TRIGGER refuse_log BEFORE INSERT ON access_log FOR EACH ROW EXECUTE FUNCTION refuse_log()",
        ],
        ["DROP TRIGGER refuse_log ON access_log", "DROP FUNCTION refuse_log()"],
    ),
}


# -- compliance reads and exports ---------------------------------------------------------------------


async def test_compliance_reads_by_user_and_period_and_exports(http, app, clock):
    services = app.state.services
    alice, bob = await register(http), await register(http)
    comp = await operator(http, services, Role.COMPLIANCE)
    everything = await log_of(services, principal_kind="user", principal_id=alice["id"])
    at = everything[0]["at"]
    r = await http.get(
        "/admin/v1/access-log",
        params={"principal_kind": "user", "principal_id": alice["id"], "since": at, "limit": 10},
        headers=comp["headers"],
    )
    assert r.status_code == 200, r.text
    assert {e["principal_id"] for e in r.json()["entries"]} == {alice["id"]}
    from datetime import datetime

    later = (datetime.fromisoformat(at) + timedelta(days=1)).isoformat()
    r = await http.get("/admin/v1/access-log", params={"principal_id": alice["id"], "since": later}, headers=comp["headers"])
    assert r.json()["entries"] == []
    r = await http.get(
        "/admin/v1/access-log/export", params={"principal_id": bob["id"], "format": "csv"}, headers=comp["headers"]
    )
    assert r.status_code == 200 and r.headers["x-record-count"] == "1"
    lines = r.text.splitlines()
    assert lines[0].startswith("id,at,event") and f",signin,user,{bob['id']}," in lines[1]


async def test_only_compliance_reads_the_log(http, app):
    services = app.state.services
    for role in (Role.MODERATOR, Role.ADMIN, Role.REVIEWER):
        op = await operator(http, services, role)
        r = await http.get("/admin/v1/access-log", headers=op["headers"])
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
    user = await register(http)
    assert (await http.get("/admin/v1/access-log", headers=user["headers"])).status_code == 401
    comp = await operator(http, services, Role.COMPLIANCE)
    r = await http.get("/admin/v1/access-log", params={"principal_kind": "robot"}, headers=comp["headers"])
    assert r.status_code == 422 and r.json()["code"] == "malformed"
