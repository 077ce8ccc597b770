"""A database that is down gives 503 `{"code": "unavailable"}`, never a crash.

The app points at PostgreSQL on a port where nothing listens (connection
refused at once, so nothing here waits on a timeout). httpx's ASGI transport
re-raises any exception the app let escape, so a crash would fail the test
rather than hide behind a 500.
"""

from __future__ import annotations

import httpx
import pytest

from imserver.app import create_app
from imserver.config import Settings

from .conftest import free_port
from .helpers import PASSWORD


@pytest.fixture
async def down(tmp_path):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test",
        migrate_on_start=False,
        argon2_memory_kib=1024,
        argon2_time_cost=1,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["code"] == "unavailable" and body["detail"]


async def test_user_routes_answer_503(down):
    register = {"handle": "alice", "password": PASSWORD, "nickname": "Alice", "agreement_version": 1}
    assert_unavailable(await down.post("/api/v1/register", json=register))
    assert_unavailable(await down.post("/api/v1/login", json={"handle": "alice", "password": PASSWORD}))
    assert_unavailable(await down.get("/api/v1/agreement"))
    assert_unavailable(await down.get("/api/v1/me", headers={"Authorization": "Bearer some-token"}))


async def test_admin_routes_answer_503(down):
    assert_unavailable(await down.post("/admin/v1/login", json={"handle": "root", "password": PASSWORD}))
    assert_unavailable(await down.get("/admin/v1/audit", headers={"Authorization": "Bearer some-token"}))


async def test_bad_input_is_still_judged_before_the_database(down):
    """A malformed body is the caller's fault whatever the database's state: 422, not 503."""
    r = await down.post("/api/v1/register", json={"handle": "x", "unknown": 1})
    assert r.status_code == 422 and r.json()["code"] == "malformed"


async def test_healthz_answers_503(down):
    r = await down.get("/healthz")
    assert r.status_code == 503
    assert r.json()["database"] == "down" and r.json()["status"] == "degraded"
    metrics = (await down.get("/metrics")).text
    assert "imserver_database_up 0.0" in metrics


def test_the_fault_log_names_sqlite_faults_and_keeps_other_drivers_messages_out():
    """SQLite's message says what failed ("database is locked"); another driver's may hold a URL."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from imserver.store.db import _fault_name

    locked = OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))
    assert _fault_name(locked) == "OperationalError(OperationalError): database is locked"

    class DriverError(Exception):
        pass

    remote = OperationalError("SELECT 1", {}, DriverError("cannot connect to postgresql://u:secret@db/x"))
    assert _fault_name(remote) == "OperationalError(DriverError)"
