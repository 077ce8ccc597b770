"""Per-user rate limits over the wire: a refusal carries retry_after."""

from __future__ import annotations

import pytest

from imserver.client import Client

from .helpers import register


@pytest.fixture
def settings(settings):
    settings.rate_messages_burst = 3
    settings.rate_messages_per_second = 0.5
    return settings


async def test_a_burst_past_the_bucket_is_refused_with_retry_after(server, client):
    alice, bob = await register(client, verified=True), await register(client, verified=True)
    a = await Client.connect(server.ws_url, alice["token"])
    try:
        acks = [await a.send(f"m{i}", to_user=bob["id"]) for i in range(4)]
        assert [x.status for x in acks] == ["accepted"] * 3 + ["rejected"]
        assert acks[3].reason == "rate_limited"
        assert 0 < acks[3].retry_after <= 2.0  # one token at 0.5/s
    finally:
        await a.close()
