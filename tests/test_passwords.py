"""Password hashing: argon2id at or above OWASP's minimum, rehashed on login when parameters change."""

from __future__ import annotations

import httpx
from argon2 import Type, extract_parameters

from imserver.app import create_app
from imserver.config import Settings
from imserver.services.passwords import Passwords
from imserver.store import accounts as account_store

from .helpers import PASSWORD, register

MIN_MEMORY_KIB = 19 * 1024  # OWASP password storage minimum for argon2id: m >= 19 MiB
MIN_TIME_COST = 2  # t >= 2


def passwords_for(settings: Settings) -> Passwords:
    return Passwords(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
    )


def test_default_settings_give_argon2id_at_the_minimum_or_above():
    encoded = passwords_for(Settings(_env_file=None)).hash(PASSWORD)
    assert encoded.startswith("$argon2id$")
    params = extract_parameters(encoded)  # read back from the encoded hash itself
    assert params.type is Type.ID
    assert params.memory_cost >= MIN_MEMORY_KIB
    assert params.time_cost >= MIN_TIME_COST


async def stored_hash(db, handle: str) -> str:
    async with db.transaction() as conn:
        return (await account_store.get_user_by_handle(conn, handle))["password_hash"]


async def test_login_rehashes_a_hash_made_with_weaker_parameters(http, settings, db, clock):
    # The `settings` fixture hashes cheaply (m=1 MiB, t=1): the "old" parameters.
    await register(http, "weakling")
    old = extract_parameters(await stored_hash(db, "weakling"))
    assert (old.memory_cost, old.time_cost) == (1024, 1)

    stronger = settings.model_copy(update={"argon2_memory_kib": 4096, "argon2_time_cost": 3})
    app = create_app(stronger, clock=clock, db=db)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            r = await client.post("/api/v1/login", json={"handle": "weakling", "password": PASSWORD})
            assert r.status_code == 200, r.text
            new_hash = await stored_hash(db, "weakling")
            new = extract_parameters(new_hash)
            assert (new.type, new.memory_cost, new.time_cost) == (Type.ID, 4096, 3)
            # The new hash still verifies the same password, and a wrong one still fails.
            r = await client.post("/api/v1/login", json={"handle": "weakling", "password": PASSWORD})
            assert r.status_code == 200
            assert await stored_hash(db, "weakling") == new_hash  # no rehash once current
            r = await client.post("/api/v1/login", json={"handle": "weakling", "password": "wrong password"})
            assert r.status_code == 401
