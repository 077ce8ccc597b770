"""Test helpers: make users and operators through the public APIs."""

from __future__ import annotations

import itertools

import httpx

from imserver.domain.enums import Role

_n = itertools.count(1)
PASSWORD = "correct horse battery"


async def register(
    http: httpx.AsyncClient, handle: str | None = None, nickname: str | None = None, *, verified: bool = False
) -> dict:
    """Register and log in a user; returns {"id", "token", "handle", "headers"}.

    With `verified` the user also submits an identity and a
    reviewer approves it, over the APIs, so the user may send (Art. 6).
    """
    handle = handle or f"user{next(_n)}"
    agreement = (await http.get("/api/v1/agreement")).json()
    r = await http.post(
        "/api/v1/register",
        json={
            "handle": handle,
            "password": PASSWORD,
            "nickname": nickname or handle.title(),
            "agreement_version": agreement["version"],
        },
    )
    assert r.status_code == 201, r.text
    r = await http.post("/api/v1/login", json={"handle": handle, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    user = {
        "id": body["user_id"],
        "token": body["token"],
        "handle": handle,
        "headers": {"Authorization": f"Bearer {body['token']}"},
    }
    if verified:
        await verify(http, user)
    return user


async def verify(http: httpx.AsyncClient, user: dict) -> None:
    """Submit an identity for `user` and have a reviewer approve it."""
    from .identity_helpers import submit

    reviewer = getattr(http, "reviewer", None)
    if reviewer is None:
        reviewer = http.reviewer = await operator(http, http.services, Role.REVIEWER)
    r = await submit(http, user)
    assert r.status_code == 201, r.text
    r = await http.get("/admin/v1/identity/pending", params={"limit": 100}, headers=reviewer["headers"])
    if r.status_code == 401:  # the cached reviewer's session went idle (a test moved the clock): a new one
        reviewer = http.reviewer = await operator(http, http.services, Role.REVIEWER)
        r = await http.get("/admin/v1/identity/pending", params={"limit": 100}, headers=reviewer["headers"])
    assert r.status_code == 200, r.text
    pending = [p for p in r.json()["items"] if p["user_id"] == user["id"]]
    assert pending, r.text
    r = await http.post(
        f"/admin/v1/identity/{pending[0]['identity_id']}/review",
        json={"decision": "approve", "note": "test"},
        headers=reviewer["headers"],
    )
    assert r.status_code == 200, r.text


async def operator(http: httpx.AsyncClient, services, role: Role, handle: str | None = None) -> dict:
    """Create an operator directly through the service (as `imserver operator create` does) and log in."""
    handle = handle or f"op-{role.value}-{next(_n)}"
    await services.accounts.create_operator(handle=handle, password=PASSWORD, role=role, created_by=None)
    r = await http.post("/admin/v1/login", json={"handle": handle, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    return {
        "id": body["operator_id"],
        "handle": handle,
        "token": body["token"],
        "headers": {"Authorization": f"Bearer {body['token']}"},
    }


async def tamper(db, *statements: str, params: dict | None = None) -> None:
    """Run SQL past the record tables' triggers, as someone with DDL rights could.

    PostgreSQL: ``session_replication_role = replica`` turns user triggers off for
    the transaction. SQLite cannot turn triggers off: they are dropped, the
    statements run, and they are created again, all in one transaction.
    """
    from sqlalchemy import text

    async with db.transaction() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            for statement in statements:
                await conn.execute(text(statement), params or {})
            return
        triggers = (await conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))).all()
        for name, _sql in triggers:
            await conn.execute(text(f'DROP TRIGGER "{name}"'))
        for statement in statements:
            await conn.execute(text(statement), params or {})
        for _name, sql in triggers:
            await conn.execute(text(sql))
