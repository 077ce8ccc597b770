"""Log lines: JSON with time, level, node and request id; access lines; faults and recoveries once.

Each test points imserver's logging at a buffer (``logs.configure``) and reads
what a collector would read. The database and Redis are real, taken away and
brought back (a TCP forwarder in front of PostgreSQL, a redis-server of the
test's own).
"""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from sqlalchemy import make_url

from imserver import logs
from imserver.app import create_app
from imserver.config import Settings

from .cluster import RedisServer
from . import conftest
from .conftest import PG_URL, unreachable
from .helpers import PASSWORD, register
from .operator_helpers import eventually
from .tcp_proxy import TcpProxy


@pytest.fixture
def out():
    buf = io.StringIO()
    logs.configure(node="node-t", level="info", fmt="json", stream=buf)
    yield buf
    logging.getLogger().handlers = [h for h in logging.getLogger().handlers if not getattr(h, "_imserver", False)]


def lines(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


async def test_access_lines_carry_request_and_user_ids_and_nothing_personal(http, out):
    user = await register(http)
    r = await http.get("/api/v1/me", headers={**user["headers"], "X-Request-ID": "req-42"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-42"
    access = [e for e in lines(out) if e["logger"] == "imserver.access"]
    mine = [e for e in access if e.get("request_id") == "req-42"]
    assert len(mine) == 1
    line = mine[0]
    assert line["message"] == "request" and line["level"] == "info" and line["node"] == "node-t"
    assert (line["method"], line["path"], line["route"], line["status"]) == ("GET", "/api/v1/me", "/api/v1/me", 200)
    assert line["user_id"] == user["id"] and "operator_id" not in line
    assert line["time"].endswith("Z") and line["duration_ms"] >= 0
    # Every request got a line with an id of its own (register, login, me...).
    assert len({e["request_id"] for e in access}) == len(access) >= 3
    text = out.getvalue()
    for secret in (user["token"], PASSWORD, user["handle"]):
        assert secret not in text


async def test_an_unmatched_path_is_logged_without_its_query(http, out):
    r = await http.get("/nowhere/123?email=someone@example.com")
    assert r.status_code == 404
    line = [e for e in lines(out) if e["logger"] == "imserver.access"][-1]
    assert (line["path"], line["route"], line["status"]) == ("/nowhere/123", "unmatched", 404)
    assert not [e for e in lines(out) if e["logger"] != "httpx" and "someone@example.com" in json.dumps(e)]


def test_format_follows_the_terminal():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert logs.resolve_format("", Tty()) == "text"
    assert logs.resolve_format("", io.StringIO()) == "json"
    assert logs.resolve_format("TEXT", io.StringIO()) == "text"
    with pytest.raises(ValueError):
        logs.resolve_format("xml", io.StringIO())
    buf = Tty()
    logs.configure(node="n1", fmt="", stream=buf)
    logging.getLogger("imserver.test").warning("plain words")
    assert "plain words" in buf.getvalue() and not buf.getvalue().lstrip().startswith("{")


@pytest.mark.postgres
async def test_database_fault_and_recovery_logged_once_each(out, tmp_path, pg_schema):
    schema, error = pg_schema
    if error:
        unreachable("PostgreSQL", error)
    url = make_url(PG_URL)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    settings = Settings(
        _env_file=None, data_dir=tmp_path, migrate_on_start=False, argon2_memory_kib=1024, argon2_time_cost=1,
        database_url=url.set(host="127.0.0.1", port=proxy.port, query={"search_path": schema}).render_as_string(
            hide_password=False
        ),
        **conftest.test_keys(),
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
                assert (await http.get("/readyz")).status_code == 200
                await proxy.stop()
                for _ in range(3):
                    assert (await http.get("/readyz")).status_code == 503
                await proxy.start()
                await eventually(lambda: _ready(http))
                await http.get("/readyz")
    finally:
        await proxy.stop()
    db_lines = [e for e in lines(out) if e["logger"] == "imserver.database"]
    assert [(e["level"], e["message"].split(":")[0]) for e in db_lines] == [
        ("error", "database unreachable"), ("info", "database reachable again"),
    ]
    assert db_lines[0]["dialect"] == "postgresql" and "password" not in db_lines[0]["message"]


async def _ready(http) -> bool:
    return (await http.get("/readyz")).status_code == 200


@pytest.mark.redis
async def test_broker_fault_and_recovery_logged_once_each(out, settings, db, tmp_path):
    redis = RedisServer(tmp_path / "redis")
    await redis.start()
    settings.broker_url = redis.url
    app = create_app(settings, db=db)
    try:
        async with app.router.lifespan_context(app):
            broker = app.state.services.broker
            await eventually(lambda: _healthy(broker))
            redis.stop()
            await eventually(lambda: _healthy(broker, False))
            await redis.start()
            await eventually(lambda: _healthy(broker))
    finally:
        redis.stop()
    broker_lines = [e for e in lines(out) if e["logger"].startswith("imserver.broker") and e["level"] in ("error", "info")]
    failed = [e for e in broker_lines if "failed" in e["message"]]
    back = [e for e in broker_lines if "is connected" in e["message"]]
    assert len(failed) == 1 and failed[0]["level"] == "error" and failed[0]["node"] == "node-t"
    assert len(back) == 2  # the first connection, and the recovery
    assert broker_lines.index(failed[0]) < broker_lines.index(back[1])


async def _healthy(broker, want: bool = True) -> bool:
    return broker.healthy is want


def test_a_traceback_carries_no_local_variables(out):
    secret_token = "tok-do-not-log"  # noqa: F841 - a local the traceback must not show
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("imserver.test").exception("failed")
    (line,) = [e for e in lines(out) if e["logger"] == "imserver.test"]
    assert line["level"] == "error" and line["exception"][0]["exc_type"] == "RuntimeError"
    assert "tok-do-not-log" not in out.getvalue()
