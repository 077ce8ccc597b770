"""A regulator asks for everything about user X between two dates: one call, one command."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, make_url, select

from imserver import cli
from imserver.domain.enums import Role
from imserver.store.tables import audit_log, sanctions

from .helpers import operator, register
from .test_records import filler


async def test_everything_about_a_user_in_a_period(http, app, database_url, monkeypatch, capsys):
    services = app.state.services
    alice, bob = await register(http, verified=True), await register(http, verified=True)
    async with services.db.transaction() as conn:
        values = {**filler(sanctions, 1), "subject_kind": "user", "subject_id": alice["id"],
                  "starts_at": datetime.now(UTC), "ends_at": None}
        await conn.execute(insert(sanctions).values(values))
    comp = await operator(http, services, Role.COMPLIANCE)
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await http.get(f"/admin/v1/users/{alice['id']}/records", params={"since": since, "until": until}, headers=comp["headers"])
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["records"]["user"]["id"] == alice["id"] and "password_hash" not in doc["records"]["user"]
    assert doc["counts"]["access_log"] == 1 and doc["records"]["access_log"][0]["event"] == "signin"
    assert doc["counts"]["sanctions"] == 1 and doc["counts"]["identity_submissions"] == 1
    assert all(e["principal_id"] == alice["id"] for e in doc["records"]["access_log"])
    assert set(doc["records"]["identity_submissions"][0]) == {"id", "status", "submitted_at", "reviewed_at", "reviewer_id"}
    # A period before anything happened has none of it.
    r = await http.get(
        f"/admin/v1/users/{alice['id']}/records",
        params={"since": "2020-01-01T00:00:00Z", "until": "2020-02-01T00:00:00Z"},
        headers=comp["headers"],
    )
    assert r.json()["counts"]["access_log"] == 0 and r.json()["counts"]["sanctions"] == 0
    async with services.db.read() as conn:
        exports = (await conn.execute(select(audit_log.c.action).where(audit_log.c.action == "subject.export"))).all()
    assert len(exports) == 2  # each export is itself on record

    # The same from the command line.
    url, search_path = database_url
    if search_path:
        url = make_url(url).update_query_dict({"search_path": search_path}).render_as_string(hide_password=False)
    monkeypatch.setenv("IMSERVER_DATABASE_URL", url)
    monkeypatch.setenv("IMSERVER_MASTER_KEYS", services.settings.master_keys)
    monkeypatch.setenv("IMSERVER_HMAC_KEY", services.settings.hmac_key)
    monkeypatch.setenv("IMSERVER_DATA_DIR", str(services.settings.data_dir))
    argv = ["export", "subject", "--user", str(bob["id"]), "--since", since, "--until", until]
    assert await asyncio.to_thread(cli.main, argv) == 0
    cli_doc = json.loads(capsys.readouterr().out)
    assert cli_doc["subject"] == {"kind": "user", "id": bob["id"]} and cli_doc["counts"]["access_log"] == 1


async def test_bad_requests(http, app):
    comp = await operator(http, app.state.services, Role.COMPLIANCE)
    r = await http.get("/admin/v1/users/999/records", params={"since": "2026-01-01T00:00:00Z", "until": "2026-02-01T00:00:00Z"}, headers=comp["headers"])
    assert r.status_code == 404 and r.json()["code"] == "subject_not_found"
    r = await http.get("/admin/v1/users/1/records", params={"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, headers=comp["headers"])
    assert r.status_code == 422 and r.json()["code"] == "invalid_period"
    mod = await operator(http, app.state.services, Role.MODERATOR)
    r = await http.get("/admin/v1/users/1/records", params={"since": "2026-01-01T00:00:00Z", "until": "2026-02-01T00:00:00Z"}, headers=mod["headers"])
    assert r.status_code == 403
