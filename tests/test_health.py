"""/livez, /readyz and /healthz: what each one depends on, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from imserver.app import create_app

from .conftest import free_port
from .test_unavailable import down  # noqa: F401 - the fixture: an app whose database is down


async def test_all_ready(http):
    assert (await http.get("/livez")).json() == {"status": "ok"}
    r = await http.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "ready", "database": "ok", "migrations": "head", "broker": "none", "broker_required": False,
    }
    assert (await http.get("/healthz")).status_code == 200


async def test_database_down_fails_readiness_not_liveness(down):  # noqa: F811
    assert (await down.get("/livez")).status_code == 200
    r = await down.get("/readyz")
    assert r.status_code == 503
    assert r.json()["database"] == "down" and r.json()["migrations"] == "unknown"
    assert (await down.get("/healthz")).status_code == 503  # as before
    assert "imserver_database_up 0.0" in (await down.get("/metrics")).text


async def test_schema_behind_the_code_is_not_ready(http, db):
    async with db.transaction() as conn:
        head = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        r = await http.get("/readyz")
        assert r.status_code == 503 and r.json()["migrations"] == "behind"
    finally:
        async with db.transaction() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert (await http.get("/readyz")).status_code == 200


@pytest.mark.parametrize("required", [False, True])
async def test_broker_down_fails_readiness_only_when_required(settings, db, required):
    settings.broker_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.broker_required = required
    app = create_app(settings, db=db)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            assert (await http.get("/livez")).status_code == 200
            r = await http.get("/readyz")
            assert r.json()["broker"] == "down" and r.json()["broker_required"] is required
            assert r.status_code == (503 if required else 200)
            assert (await http.get("/healthz")).status_code == 503  # alerting, as before
