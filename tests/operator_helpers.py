"""Helpers for the operator-side tests: sanctions, reports, the regulator outbox."""

from __future__ import annotations

import asyncio
import json
import time

import httpx


async def impose(http: httpx.AsyncClient, op: dict, user_id: int, kind: str, **extra) -> httpx.Response:
    body = {"subject_id": user_id, "kind": kind, "reason": f"{kind} for testing", **extra}
    return await http.post("/admin/v1/sanctions", json=body, headers=op["headers"])


async def audit_rows(services) -> list[dict]:
    """Every audit row (read through the service without an operator: no row is added)."""
    page = await services.audit.page(after=0, limit=1000)
    return page["entries"]


async def audit_actions(services, sanction_id: int | None = None) -> list[str]:
    rows = await audit_rows(services)
    if sanction_id is not None:
        rows = [r for r in rows if r["detail"].get("sanction_id") == sanction_id]
    return [r["action"] for r in rows]


async def regulator_kinds(services, sanction_id: int) -> list[str]:
    return [r["record_kind"] for r in await services.regulator.records_for(sanction_id)]


async def eventually(predicate, *, timeout: float = 10.0, interval: float = 0.02):
    """Poll an async predicate until it returns a truthy value; fail after `timeout` (generous, not a timing claim)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line]
