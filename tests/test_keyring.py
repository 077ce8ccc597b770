"""Envelope encryption, the key file and master-key rotation (store/keyring.py, `imserver keys rotate`)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import stat

import pytest
from sqlalchemy import text

from imserver import cli
from imserver.app import create_app
from imserver.config import Settings
from imserver.domain.enums import PrincipalKind, Role
from imserver.domain.principals import Principal
from imserver.services.container import build_services
from imserver.store import keyring as kr
from imserver.store import migrate
from imserver.store.db import Database

from .helpers import operator, register
from .identity_helpers import identity, make_id, submit


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def ring(*kids: str, active: str | None = None, keys: dict[str, bytes] | None = None) -> kr.KeyRing:
    keys = keys or {k: secrets.token_bytes(32) for k in kids}
    return kr.KeyRing(keys, active or list(keys)[-1], secrets.token_bytes(32))


# -- sealing and opening ----------------------------------------------------------------------------


def test_seal_and_open():
    r = ring("k1")
    sealed = r.seal(7, b'{"legal_name":"x"}')
    assert sealed.key_id == "k1"
    assert len(sealed.wrapped_key) == kr.NONCE_BYTES + 32 + 16  # nonce || wrapped data key || tag
    assert len(sealed.ciphertext) == kr.NONCE_BYTES + 18 + 16
    assert r.open(7, sealed.key_id, sealed.wrapped_key, sealed.ciphertext) == b'{"legal_name":"x"}'
    # A fresh data key and nonces every time: equal plaintexts do not look equal.
    again = r.seal(7, b'{"legal_name":"x"}')
    assert again.ciphertext != sealed.ciphertext and again.wrapped_key != sealed.wrapped_key


def test_a_wrong_row_id_or_any_changed_byte_fails():
    r = ring("k1")
    s = r.seal(7, b"secret")
    with pytest.raises(kr.Undecryptable):
        r.open(8, s.key_id, s.wrapped_key, s.ciphertext)  # the row id is the associated data
    for i in (0, kr.NONCE_BYTES, len(s.ciphertext) - 1):  # nonce, body, tag
        with pytest.raises(kr.Undecryptable):
            r.open(7, s.key_id, s.wrapped_key, s.ciphertext[:i] + bytes([s.ciphertext[i] ^ 1]) + s.ciphertext[i + 1 :])
    with pytest.raises(kr.Undecryptable):
        r.open(7, s.key_id, s.wrapped_key[:-1] + bytes([s.wrapped_key[-1] ^ 1]), s.ciphertext)
    with pytest.raises(kr.Undecryptable):
        r.open(7, s.key_id, s.ciphertext, s.wrapped_key)  # the two blobs swapped
    with pytest.raises(kr.Undecryptable):
        r.open(7, s.key_id, s.wrapped_key, b"")
    # The same key id in another ring is another key.
    with pytest.raises(kr.Undecryptable):
        ring("k1").open(7, s.key_id, s.wrapped_key, s.ciphertext)
    with pytest.raises(kr.UnknownKey):
        ring("k2").open(7, s.key_id, s.wrapped_key, s.ciphertext)


def test_rewrap_moves_the_data_key_and_leaves_the_ciphertext():
    k1, k2 = secrets.token_bytes(32), secrets.token_bytes(32)
    old = ring(keys={"k1": k1})
    s = old.seal(3, b"payload")
    new = ring(keys={"k1": k1, "k2": k2})
    moved = new.rewrap(3, s.key_id, s.wrapped_key)
    assert moved.key_id == "k2" and moved.wrapped_key != s.wrapped_key
    only_k2 = ring(keys={"k2": k2})
    assert only_k2.open(3, moved.key_id, moved.wrapped_key, s.ciphertext) == b"payload"
    with pytest.raises(kr.Undecryptable):
        new.rewrap(4, s.key_id, s.wrapped_key)  # a wrapped key is bound to its row too


def test_id_hmac():
    r = ring("k1")
    number = make_id()
    digest = r.id_hmac(number)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest == r.id_hmac(number) and digest != r.id_hmac(make_id())
    assert digest != ring("k1").id_hmac(number)  # keyed: not a plain hash anyone can recompute


# -- configuration ----------------------------------------------------------------------------------


def test_keys_from_settings(tmp_path):
    k1, k2, h = b64(secrets.token_bytes(32)), b64(secrets.token_bytes(32)), b64(secrets.token_bytes(32))
    r = kr.KeyRing.from_config(master_keys=f"a:{k1}, b:{k2}", master_key_id="", hmac_key=h, data_dir=tmp_path)
    assert r.active_key_id == "b" and r.key_ids == ["a", "b"]
    r = kr.KeyRing.from_config(master_keys=f"a:{k1},b:{k2}", master_key_id="a", hmac_key=h, data_dir=tmp_path)
    assert r.active_key_id == "a"
    assert not (tmp_path / kr.KEY_FILE_NAME).exists()  # configured keys: no file is made
    bad = {
        "not base64": {"master_keys": "a:%%%", "hmac_key": h},
        "16-byte key": {"master_keys": f"a:{b64(secrets.token_bytes(16))}", "hmac_key": h},
        "no kid": {"master_keys": k1, "hmac_key": h},
        "kid twice": {"master_keys": f"a:{k1},a:{k2}", "hmac_key": h},
        "no hmac key": {"master_keys": f"a:{k1}", "hmac_key": ""},
        "short hmac key": {"master_keys": f"a:{k1}", "hmac_key": b64(b"short")},
        "unknown active": {"master_keys": f"a:{k1}", "hmac_key": h, "master_key_id": "z"},
    }
    for why, kw in bad.items():
        try:
            kr.KeyRing.from_config(**{"master_key_id": "", "data_dir": tmp_path, **kw})
        except kr.KeyRingError:
            continue
        pytest.fail(f"accepted a key configuration with {why}")


def test_key_file_is_made_once_with_mode_0600(tmp_path):
    data_dir = tmp_path / "fresh" / "data"  # not there yet
    first = kr.KeyRing.from_config(master_keys="", master_key_id="", hmac_key="", data_dir=data_dir)
    path = data_dir / kr.KEY_FILE_NAME
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = kr.KeyRing.from_config(master_keys="", master_key_id="", hmac_key="", data_dir=data_dir)
    assert first.key_ids == second.key_ids and first.active_key_id == second.active_key_id
    number = make_id()
    assert first.id_hmac(number) == second.id_hmac(number)
    s = first.seal(1, b"kept")
    assert second.open(1, s.key_id, s.wrapped_key, s.ciphertext) == b"kept"
    assert [p.name for p in data_dir.iterdir()] == [kr.KEY_FILE_NAME]  # no temporary files left


def test_a_running_ring_follows_the_rotated_key_file(tmp_path):
    running = kr.KeyRing.from_config(master_keys="", master_key_id="", hmac_key="", data_dir=tmp_path)
    before = running.seal(1, b"old")
    new_kid = kr.rotate_key_file(tmp_path / kr.KEY_FILE_NAME)
    doc = json.loads((tmp_path / kr.KEY_FILE_NAME).read_text())
    assert doc["active"] == new_kid and [k["id"] for k in doc["master_keys"]] == [before.key_id, new_kid]
    assert stat.S_IMODE(os.stat(tmp_path / kr.KEY_FILE_NAME).st_mode) == 0o600
    after = running.seal(2, b"new")
    assert after.key_id == new_kid
    # Re-wrapped by another process (the CLI): the running ring opens it too.
    cli_ring = kr.KeyRing.from_key_file(tmp_path / kr.KEY_FILE_NAME)
    moved = cli_ring.rewrap(1, before.key_id, before.wrapped_key)
    assert running.open(1, moved.key_id, moved.wrapped_key, before.ciphertext) == b"old"
    assert running.open(1, before.key_id, before.wrapped_key, before.ciphertext) == b"old"  # old key kept


# -- rotation over the database, on both backends --------------------------------------------------------


async def stored(db) -> dict[int, dict]:
    async with db.transaction() as conn:
        result = await conn.execute(text("SELECT id, user_id, key_id, wrapped_key, ciphertext FROM identities"))
        return {
            r["id"]: {**r, "wrapped_key": bytes(r["wrapped_key"]), "ciphertext": bytes(r["ciphertext"])}
            for r in result.mappings()
        }


async def audit_rows(db, action: str) -> list[dict]:
    async with db.transaction() as conn:
        result = await conn.execute(text("SELECT * FROM audit_log WHERE action = :a ORDER BY id"), {"a": action})
        return [dict(r) for r in result.mappings()]


async def test_rotation_with_the_key_file_keeps_every_identity_readable(settings, db, clock):
    import httpx

    settings.master_keys, settings.hmac_key = "", ""  # a new user's setup: the key file
    application = create_app(settings, clock=clock, db=db)
    async with application.router.lifespan_context(application):
        svc = application.state.services
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as http:
            compliance = await operator(http, svc, Role.COMPLIANCE)
            submitted = {}
            for name in ("张三", "李四", "王五"):
                user = await register(http)
                fields = identity(legal_name=name, id_number=make_id("310104", "19800229"))
                assert (await http.post("/api/v1/identity", json=fields, headers=user["headers"])).status_code == 201
                submitted[user["id"]] = fields
            before = await stored(db)
            old_kid = svc.identities.keyring.active_key_id
            assert {r["key_id"] for r in before.values()} == {old_kid}

            new_kid = kr.rotate_key_file(settings.data_dir / kr.KEY_FILE_NAME)
            result = await svc.identities.rewrap_all()
            assert (result.key_id, result.rewrapped, result.failed) == (new_kid, 3, [])

            after = await stored(db)
            for identity_id, row in after.items():
                assert row["key_id"] == new_kid
                assert row["wrapped_key"] != before[identity_id]["wrapped_key"]
                assert row["ciphertext"] == before[identity_id]["ciphertext"]  # only the data keys moved
            for user_id, fields in submitted.items():
                r = await http.get(f"/admin/v1/users/{user_id}/identity?full=true", headers=compliance["headers"])
                assert r.status_code == 200
                assert {k: r.json()[k] for k in fields} == fields
            # Nothing left to do the second time.
            assert (await svc.identities.rewrap_all()).rewrapped == 0
    [first, second] = await audit_rows(db, "keys.rotate")
    assert json.loads(first["detail"]) == {"key_id": new_kid, "rewrapped": 3, "failed": []}
    assert first["subject"] == f"master-key:{new_kid}" and json.loads(second["detail"])["rewrapped"] == 0


async def test_rotation_with_keys_from_the_environment(settings, db, clock, http, app):
    """The operator adds k2 to IMSERVER_MASTER_KEYS and makes it active; rotation re-wraps under it."""
    svc = app.state.services
    old_kid = svc.identities.keyring.active_key_id
    users = [await register(http) for _ in range(3)]
    for user in users:
        await submit(http, user)
    compliance = await operator(http, svc, Role.COMPLIANCE)
    k2 = b64(secrets.token_bytes(32))
    rotated = Settings(
        _env_file=None,
        data_dir=settings.data_dir,
        master_keys=f"{settings.master_keys},k2:{k2}",
        master_key_id="k2",
        hmac_key=settings.hmac_key,
        argon2_memory_kib=1024,
        argon2_time_cost=1,
    )
    new = build_services(rotated, db, clock)
    result = await new.identities.rewrap_all()
    assert (result.key_id, result.rewrapped) == ("k2", 3)
    assert {r["key_id"] for r in (await stored(db)).values()} == {"k2"}
    me = Principal(PrincipalKind.OPERATOR, compliance["id"], "-", Role.COMPLIANCE)
    for user in users:
        view = await new.identities.read(me, user["id"], full=True)
        assert view["legal_name"] == "张三" and view["masked"] is False
    # A node still running with only the old key cannot open what moved: a clear 500, no crash.
    r = await http.get(f"/admin/v1/users/{users[0]['id']}/identity?full=true", headers=compliance["headers"])
    assert r.status_code == 500 and r.json()["code"] == "identity_unreadable"
    assert old_kid != "k2"
    # And the HMAC key did not rotate: the account limit still sees the same identities.
    assert new.identities.keyring.id_hmac("x") == svc.identities.keyring.id_hmac("x")


# -- the command ---------------------------------------------------------------------------------------------


def test_keys_rotate_command(tmp_path, monkeypatch, capsys):
    """`imserver keys rotate` with a key file, end to end on an embedded (SQLite) database."""
    data_dir = tmp_path / "data"
    env = {
        "IMSERVER_DATA_DIR": str(data_dir),
        "IMSERVER_MASTER_KEYS": "",
        "IMSERVER_MASTER_KEY_ID": "",
        "IMSERVER_HMAC_KEY": "",
        "IMSERVER_DATABASE_URL": "",
        "IMSERVER_ARGON2_MEMORY_KIB": "1024",
        "IMSERVER_ARGON2_TIME_COST": "1",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)  # no stray .env
    settings = Settings()

    async def populate() -> list[int]:
        data_dir.mkdir(parents=True)
        db = Database.from_url(settings.resolved_database_url())
        await migrate.upgrade(db)
        svc = build_services(settings, db)
        ids = []
        for n in range(2):
            uid = await svc.accounts.register(
                handle=f"cli{n}", password="correct horse battery", nickname="n", agreement_version=1, client_ip=None
            )
            await svc.identities.submit(uid, legal_name="张三", id_number=make_id(), phone="13812345678")
            ids.append(uid)
        await db.dispose()
        return ids

    async def read_all(user_ids) -> tuple[set[str], list[str], list[dict]]:
        db = Database.from_url(settings.resolved_database_url())
        svc = build_services(Settings(), db)
        me = Principal(PrincipalKind.OPERATOR, 1, "-", Role.COMPLIANCE)
        names = [(await svc.identities.read(me, uid, full=True))["legal_name"] for uid in user_ids]
        kids = {row["key_id"] for row in (await stored(db)).values()}
        rotations = await audit_rows(db, "keys.rotate")
        await db.dispose()
        return kids, names, rotations

    user_ids = asyncio.run(populate())
    first_kid = kr.KeyRing.from_key_file(data_dir / kr.KEY_FILE_NAME).active_key_id
    assert cli.main(["keys", "rotate"]) == 0
    out = capsys.readouterr().out
    new_kid = kr.KeyRing.from_key_file(data_dir / kr.KEY_FILE_NAME).active_key_id
    assert new_kid != first_kid
    assert f"re-wrapped 2 identity records under master key {new_kid}" in out
    kids, names, rotations = asyncio.run(read_all(user_ids))
    assert kids == {new_kid} and names == ["张三", "张三"]
    assert [(r["actor_kind"], json.loads(r["detail"])["rewrapped"]) for r in rotations] == [("system", 2)]
