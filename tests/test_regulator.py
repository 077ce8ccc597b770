"""The regulator outbox (Art. 8): export over the admin API and the CLI, and webhook
delivery with retries to a local receiver on 127.0.0.1 that fails each record's
first attempt. On both backends."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn

from imserver.domain.enums import Role

from .conftest import PG_URL, free_port
from .helpers import operator, register
from .operator_helpers import audit_rows, eventually, impose, jsonl

RETRY_BASE = 0.2  # seconds: the deliverer's first backoff in these tests


@dataclass
class Receiver:
    """A regulator endpoint: answers 503 to the first delivery of each key, then 200."""

    url: str = ""
    hits: list[dict] = field(default_factory=list)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        first = not any(h["key"] == key for h in self.hits)
        status = 503 if first else 200
        self.hits.append({"key": key, "body": body, "status": status, "at": time.monotonic(), "path": scope["path"]})
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"try later" if first else b"ok"})

    def delivered(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for h in self.hits:
            out.setdefault(h["key"], []).append(h)
        return out


@pytest.fixture
async def receiver():
    rec = Receiver()
    config = uvicorn.Config(rec, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    rec.url = f"http://127.0.0.1:{config.port}/regulator/records"
    yield rec
    srv.should_exit = True
    await asyncio.wait_for(task, timeout=10)


@pytest.fixture
def settings(settings, receiver):
    settings.regulator_webhook_url = receiver.url
    settings.regulator_retry_base_seconds = RETRY_BASE
    settings.regulator_delivery_interval_seconds = 0.05
    return settings


async def _some_sanctions(http, svc) -> dict:
    mod = await operator(http, svc, Role.MODERATOR)
    comp, comp2 = await operator(http, svc, Role.COMPLIANCE), await operator(http, svc, Role.COMPLIANCE)
    user = await register(http)
    warning = (await impose(http, mod, user["id"], "warning")).json()["id"]
    restrict = (await impose(http, mod, user["id"], "restrict_publication", duration_seconds=600)).json()["id"]
    await http.post(f"/admin/v1/sanctions/{restrict}/lift", json={"reason": "early release"}, headers=mod["headers"])
    close = (await impose(http, comp, user["id"], "close_account")).json()["id"]
    r = await http.post(f"/admin/v1/sanctions/{close}/confirm", headers=comp2["headers"])
    assert r.status_code == 200
    return {"mod": mod, "comp": comp, "user": user, "ids": (warning, restrict, close)}


EXPECTED = [
    ("sanction_imposed", 0),
    ("sanction_imposed", 1),
    ("sanction_lifted", 1),
    ("sanction_imposed", 2),
    ("sanction_confirmed", 2),
]


async def test_webhook_delivers_each_record_with_retries(http, app, receiver):
    svc = app.state.services
    made = await _some_sanctions(http, svc)
    ids = made["ids"]
    keys = [f"sanction-{ids[i]}-{kind.removeprefix('sanction_')}" for kind, i in EXPECTED]

    async def all_delivered():
        records = [r for sid in set(ids) for r in await svc.regulator.records_for(sid)]
        return records if len(records) == len(keys) and all(r["delivered_at"] for r in records) else None

    records = await eventually(all_delivered, timeout=30)
    assert sorted(r["idempotency_key"] for r in records) == sorted(keys)
    assert all(r["attempts"] == 2 and r["last_error"] is None for r in records)
    by_key = receiver.delivered()
    assert sorted(by_key) == sorted(keys)
    export = await http.get(
        "/admin/v1/regulator/sanctions",
        params={"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"},
        headers=made["comp"]["headers"],
    )
    exported = {json.loads(line)["idempotency_key"]: line.encode() for line in export.text.splitlines()}
    for key, hits in by_key.items():
        assert [h["status"] for h in hits] == [503, 200], key  # failed once, retried, acknowledged, then left alone
        assert hits[0]["body"] == hits[1]["body"] == exported[key]  # the same bytes each time, as exported
        assert json.loads(hits[1]["body"])["idempotency_key"] == key
        assert hits[1]["at"] - hits[0]["at"] >= RETRY_BASE * 0.9  # backed off before retrying
    assert (await http.get("/admin/v1/regulator/outbox", headers=made["comp"]["headers"])).json() == {
        "undelivered": 0,
        "unexported": 0,  # the export above delivered every record
        "webhook": True,
    }


async def test_export_api(http, app):
    svc = app.state.services
    made = await _some_sanctions(http, svc)
    comp, mod, ids = made["comp"], made["mod"], made["ids"]
    period = {
        "since": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    r = await http.get("/admin/v1/regulator/sanctions", params=period, headers=mod["headers"])
    assert r.status_code == 403  # compliance only
    r = await http.get("/admin/v1/regulator/sanctions", params={**period, "format": "jsonl"}, headers=comp["headers"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = jsonl(r.text)
    assert [(line["record_kind"], ids.index(line["sanction"]["id"])) for line in lines] == EXPECTED
    lifted = lines[2]
    assert lifted["event"]["note"] == "early release" and lifted["event"]["operator_id"] == mod["id"]
    # The subject by id, handle and nickname, with the identity's reference (none submitted here).
    assert lifted["sanction"]["subject"] == {
        "kind": "user",
        "id": made["user"]["id"],
        "handle": made["user"]["handle"],
        "nickname": made["user"]["handle"].title(),
        "identity_ref": None,
    }
    assert int(r.headers["x-record-count"]) == len(EXPECTED)
    r = await http.get("/admin/v1/regulator/sanctions", params={**period, "format": "csv"}, headers=comp["headers"])
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["record_kind"], row["idempotency_key"]) for row in rows] == [
        (line["record_kind"], line["idempotency_key"]) for line in lines
    ]
    assert rows[2]["event_note"] == "early release" and rows[0]["sanction_kind"] == "warning"
    # A period before everything is empty; a backwards period is refused.
    r = await http.get(
        "/admin/v1/regulator/sanctions",
        params={"since": "2000-01-01T00:00:00Z", "until": "2000-01-02T00:00:00Z"},
        headers=comp["headers"],
    )
    assert r.status_code == 200 and r.text == ""
    r = await http.get(
        "/admin/v1/regulator/sanctions",
        params={"since": period["until"], "until": period["since"]},
        headers=comp["headers"],
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_period"
    exports = [row for row in await audit_rows(svc) if row["action"] == "regulator.export"]
    assert [e["detail"]["records"] for e in exports] == [len(EXPECTED), len(EXPECTED), 0]
    # The first export delivered every record for the first time; the second, none.
    assert [e["detail"]["first_delivered"] for e in exports] == [len(EXPECTED), 0, 0]
    assert all(e["actor_id"] == comp["id"] for e in exports)


async def test_export_cli(http, app, database_url, settings, tmp_path):
    svc = app.state.services
    made = await _some_sanctions(http, svc)
    url, search_path = database_url
    if search_path:
        url = f"{PG_URL}?search_path={search_path}"
    env = {
        **os.environ,
        "IMSERVER_DATABASE_URL": url,
        "IMSERVER_DATA_DIR": str(tmp_path / "cli"),
        "IMSERVER_MASTER_KEYS": settings.master_keys,
        "IMSERVER_HMAC_KEY": settings.hmac_key,
    }
    outputs = {}
    for fmt in ("jsonl", "csv"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "imserver.cli",
            "export",
            "sanctions",
            "--since",
            (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "--format",
            fmt,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert err.decode().strip().endswith(f"{len(EXPECTED)} records")
        outputs[fmt] = out.decode()
    lines = jsonl(outputs["jsonl"])
    assert [(line["record_kind"], made["ids"].index(line["sanction"]["id"])) for line in lines] == EXPECTED
    api = await http.get(
        "/admin/v1/regulator/sanctions",
        params={"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"},
        headers=made["comp"]["headers"],
    )
    assert outputs["jsonl"] == api.text  # the same bytes from both front ends
    assert len(list(csv.DictReader(io.StringIO(outputs["csv"])))) == len(EXPECTED)
    # Bad periods exit non-zero with the code.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "imserver.cli",
        "export",
        "sanctions",
        "--since",
        "2030-01-01",
        "--until",
        "2020-01-01",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 1 and "invalid_period" in err.decode()
