"""Group membership on one node: create, invite, leave, removal, and who then gets what."""

from __future__ import annotations

import asyncio

from imserver.client import Client

from .helpers import register


async def connect(server, user) -> Client:
    return await Client.connect(server.ws_url, user["token"])


async def test_invite_leave_and_removal_change_who_may_send_and_who_receives(server, client):
    owner, guest, other = [await register(client, verified=True) for _ in range(3)]
    r = await client.post("/api/v1/groups", json={"name": "g", "members": [other["id"]]}, headers=owner["headers"])
    assert r.status_code == 201, r.text
    group = r.json()["id"]
    o, g, x = await connect(server, owner), await connect(server, guest), await connect(server, other)
    try:
        assert (await o.send("warm", to_group=group)).status == "accepted"  # membership now cached
        assert (await x.next_message()).body == "warm"
        ack = await g.send("not yet", to_group=group)
        assert (ack.status, ack.reason) == ("rejected", "not_a_member")

        r = await client.post(f"/api/v1/groups/{group}/members", json={"user_ids": [guest["id"]]},
                              headers=owner["headers"])
        assert r.status_code == 200 and r.json()["added"] == [guest["id"]], r.text
        assert (await g.send("joined", to_group=group)).status == "accepted"
        assert {(await o.next_message()).body, (await x.next_message()).body} == {"joined"}

        r = await client.delete(f"/api/v1/groups/{group}/members/me", headers=guest["headers"])
        assert r.status_code == 204, r.text
        ack = await g.send("gone", to_group=group)
        assert (ack.status, ack.reason) == ("rejected", "not_a_member")
        await o.send("after the guest left", to_group=group)
        assert (await x.next_message()).body == "after the guest left"
        await asyncio.sleep(0.2)
        bodies = []
        while g.pending_messages():
            bodies.append((await g.next_message(0.1)).body)
        assert "after the guest left" not in bodies

        # Only the owner removes; a member that is not there is a 404; then the removed one is out.
        r = await client.delete(f"/api/v1/groups/{group}/members/{owner['id']}", headers=other["headers"])
        assert (r.status_code, r.json()["code"]) == (403, "forbidden")
        r = await client.delete(f"/api/v1/groups/{group}/members/{guest['id']}", headers=owner["headers"])
        assert (r.status_code, r.json()["code"]) == (404, "not_a_member")
        r = await client.delete(f"/api/v1/groups/{group}/members/{other['id']}", headers=owner["headers"])
        assert r.status_code == 204, r.text
        ack = await x.send("removed", to_group=group)
        assert (ack.status, ack.reason) == ("rejected", "not_a_member")
        r = await client.get(f"/api/v1/groups/{group}/members", headers=owner["headers"])
        assert [m["id"] for m in r.json()] == [owner["id"]]
    finally:
        for c in (o, g, x):
            await c.close()
