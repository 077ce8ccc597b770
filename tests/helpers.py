"""Test helpers: make users and operators through the public APIs."""

from __future__ import annotations

import itertools

import httpx

from imserver.domain.enums import Role

_n = itertools.count(1)
PASSWORD = "correct horse battery"


async def register(http: httpx.AsyncClient, handle: str | None = None, nickname: str | None = None) -> dict:
    """Register and log in a user; returns {"id", "token", "handle", "headers"}."""
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
    return {
        "id": body["user_id"],
        "token": body["token"],
        "handle": handle,
        "headers": {"Authorization": f"Bearer {body['token']}"},
    }


async def operator(http: httpx.AsyncClient, services, role: Role, handle: str | None = None) -> dict:
    """Create an operator directly through the service (as `imserver operator create` does) and log in."""
    handle = handle or f"op-{role.value}-{next(_n)}"
    await services.accounts.create_operator(handle=handle, password=PASSWORD, role=role, created_by=None)
    r = await http.post("/admin/v1/login", json={"handle": handle, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    return {"id": body["operator_id"], "token": body["token"], "headers": {"Authorization": f"Bearer {body['token']}"}}
