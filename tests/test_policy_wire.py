"""The policy pipeline over the wire: each check denies with its reason code, holds are
reviewed, and a change takes effect on the next message without a reconnect."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from imserver.client import Client
from imserver.domain.enums import Role
from imserver.store.tables import filter_terms, inbox, policy_decisions

from .helpers import operator, register

AGREEMENT_V2 = (
    "Version 2. Users commit to laws and regulations, the socialist system, the national interest, "
    "citizens' lawful rights and interests, public order, social morality and the truthfulness of information."
)


async def connect(server, user) -> Client:
    return await Client.connect(server.ws_url, user["token"])


async def inbox_count(db, user_id: int) -> int:
    async with db.transaction() as conn:
        return len((await conn.execute(select(inbox.c.seq).where(inbox.c.user_id == user_id))).all())


async def decisions(server, db, user_id: int) -> list[tuple[str, str, str]]:
    await server.services.decisions.flush()  # recorded in batches off the send path
    async with db.transaction() as conn:
        rows = await conn.execute(
            select(policy_decisions.c.outcome, policy_decisions.c.reason, policy_decisions.c.check_name)
            .where(policy_decisions.c.user_id == user_id)
            .order_by(policy_decisions.c.id)
        )
        return [tuple(r) for r in rows]


async def test_unverified_sender_is_refused_and_nothing_is_stored(server, client, db):
    sender = await register(client)  # real name not verified
    receiver = await register(client, verified=True)
    s, r = await connect(server, sender), await connect(server, receiver)
    try:
        ack = await s.send("hello", to_user=receiver["id"])
        assert (ack.status, ack.reason) == ("rejected", "real_name_unverified")
        with pytest.raises(asyncio.TimeoutError):
            await r.next_message(timeout=0.3)
        assert await inbox_count(db, receiver["id"]) == 0
        assert await decisions(server, db, sender["id"]) == [("deny", "real_name_unverified", "real_name")]
    finally:
        await s.close()
        await r.close()


async def test_new_agreement_blocks_until_accepted_without_reconnect(server, client):
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    admin = await operator(client, server.services, Role.ADMIN)
    a, b = await connect(server, alice), await connect(server, bob)
    try:
        before = await a.send("before", to_user=bob["id"])
        assert before.status == "accepted"
        r = await client.post("/admin/v1/agreements", json={"text": AGREEMENT_V2}, headers=admin["headers"])
        assert r.status_code == 201
        version = r.json()["version"]
        ack = await a.send("after", to_user=bob["id"])
        assert (ack.status, ack.reason) == ("rejected", "agreement_not_accepted")
        # A retry of a send stored before the new version gets its first ack back.
        retry = await a.send("before", to_user=bob["id"], client_msg_id=before.client_msg_id)
        assert (retry.status, retry.duplicate, retry.message_id) == ("accepted", True, before.message_id)
        r = await client.post("/api/v1/agreement/accept", json={"version": version}, headers=alice["headers"])
        assert r.status_code == 204
        assert (await a.send("accepted now", to_user=bob["id"])).status == "accepted"
        assert [(await b.next_message()).body for _ in range(2)] == ["before", "accepted now"]
    finally:
        await a.close()
        await b.close()


async def add_terms(server, db, *terms: tuple[str, str]) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            insert(filter_terms),
            [
                {"term": t, "action": action, "list_name": "test", "created_by": 1, "created_at": datetime.now(UTC)}
                for t, action in terms
            ],
        )
    await server.services.effects.terms_changed()


async def test_content_filter_denies_and_holds_and_a_moderator_releases(server, client, db):
    await add_terms(server, db, ("forbidden", "deny"), ("suspicious", "hold"))
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    moderator = await operator(client, server.services, Role.MODERATOR)
    a, b = await connect(server, alice), await connect(server, bob)
    try:
        # Width and case are normalised: full-width capitals still match.
        ack = await a.send("this is ＦＯＲＢＩＤＤＥＮ", to_user=bob["id"])
        assert (ack.status, ack.reason) == ("rejected", "content_blocked")
        held = await a.send("a Suspicious offer", to_user=bob["id"])
        assert (held.status, held.reason) == ("held", "content_review") and held.message_id
        with pytest.raises(asyncio.TimeoutError):
            await b.next_message(timeout=0.3)
        assert await decisions(server, db, alice["id"]) == [
            ("deny", "content_blocked", "content_filter"),
            ("hold", "content_review", "content_filter"),
        ]
        r = await client.get("/admin/v1/held", headers=moderator["headers"])
        assert [m["message_id"] for m in r.json()["items"]] == [held.message_id]
        assert r.json()["items"][0]["reason"] == "content_review"
        r = await client.post(
            f"/admin/v1/held/{held.message_id}", json={"decision": "release", "note": "fine"},
            headers=moderator["headers"],
        )
        assert r.status_code == 200 and bob["id"] in r.json()["delivered_to"]
        m = await b.next_message()
        assert (m.body, m.message_id) == ("a Suspicious offer", held.message_id)
        # A second review is refused and changes nothing.
        r = await client.post(
            f"/admin/v1/held/{held.message_id}", json={"decision": "reject"}, headers=moderator["headers"]
        )
        assert r.status_code == 409
        # Only moderators review.
        user_token = {"Authorization": f"Bearer {alice['token']}"}
        assert (await client.get("/admin/v1/held", headers=user_token)).status_code == 401
    finally:
        await a.close()
        await b.close()


async def test_a_rejected_held_message_is_never_delivered(server, client, db):
    await add_terms(server, db, ("borderline", "hold"))
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    moderator = await operator(client, server.services, Role.MODERATOR)
    a = await connect(server, alice)
    try:
        held = await a.send("borderline stuff", to_user=bob["id"])
        assert held.status == "held"
        r = await client.post(
            f"/admin/v1/held/{held.message_id}", json={"decision": "reject"}, headers=moderator["headers"]
        )
        assert r.status_code == 200 and r.json()["status"] == "rejected"
        assert await inbox_count(db, bob["id"]) == 0
        r = await client.get(f"/api/v1/conversations/{held.conversation_id}/messages", headers=bob["headers"])
        assert r.json()["messages"] == []
    finally:
        await a.close()
