"""Helpers for the operator workbench's tests: walk a list's pages, send a message as a user."""

from __future__ import annotations

import itertools
import uuid

import httpx

_n = itertools.count(1)


async def walk(http: httpx.AsyncClient, path: str, headers: dict, **params) -> tuple[list[dict], list[int]]:
    """Every item of a list, page by page through next_cursor; also each page's `total`."""
    items: list[dict] = []
    totals: list[int] = []
    query = dict(params)
    while True:
        r = await http.get(path, params=query, headers=headers)
        assert r.status_code == 200, (path, query, r.text)
        page = r.json()
        assert set(page) == {"items", "total", "next_cursor"}, page
        items += page["items"]
        totals.append(page["total"])
        if page["next_cursor"] is None:
            return items, totals
        assert len(page["items"]) == params.get("limit", 50), "only the last page may be short"
        query = {**params, "cursor": page["next_cursor"]}


async def send(services, sender_id: int, to_user: int, body: str) -> int:
    """A direct message stored through the send use case (what a user's `send` frame does); its id."""
    future = await services.messaging.submit(
        sender_id=sender_id, client_msg_id=uuid.uuid4().hex, to_kind="user", to_id=to_user, body=body
    )
    message_id = (await future).message_id
    await services.decisions.flush()  # a hold's decision is recorded off the send path, in the next batch
    return message_id


async def report(http: httpx.AsyncClient, user: dict, kind: str, target_id: int, category: str = "fraud") -> dict:
    r = await http.post(
        "/api/v1/reports",
        json={"target_kind": kind, "target_id": target_id, "category": category, "text": f"report {next(_n)}"},
        headers=user["headers"],
    )
    assert r.status_code == 201, r.text
    return r.json()
