"""Real name behind (Art. 6 ¶1): submission, validation, storage, review, reads, on both backends."""

from __future__ import annotations

import asyncio
import json

import pytest
import uvicorn
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from imserver.app import create_app
from imserver.domain.enums import Role

from .conftest import free_port
from .helpers import operator, register
from .identity_helpers import check_digit, identity, make_id, submit


async def rows(db, sql: str, **params) -> list[dict]:
    async with db.transaction() as conn:
        return [dict(r) for r in (await conn.execute(text(sql), params)).mappings().all()]


async def me(http, user) -> dict:
    r = await http.get("/api/v1/me", headers=user["headers"])
    assert r.status_code == 200, r.text
    return r.json()


def flip(blob: bytes, at: int) -> bytes:
    return blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1 :]


# -- validation -----------------------------------------------------------------------------


async def test_valid_id_numbers_are_accepted(http, db):
    """Computed, not copied: several regions and dates, including an X check digit."""
    numbers = [
        make_id("110105", "19491231", "002"),  # ends in X
        make_id("310104", "19800229", "123"),  # a leap day
        make_id("440305", "20000101", "456"),
        make_id("510107", "19751015", "789"),  # a district newer than its holder: stdnum.validate refuses it
        make_id("110105", "19491231", "002").lower(),  # a lower-case x is the same number
    ]
    assert numbers[0].endswith("X")
    for number in numbers:
        user = await register(http)
        r = await submit(http, user, id_number=number)
        assert r.status_code == 201, (number, r.text)
        assert r.json() == {"status": "pending"}
        assert (await http.get("/api/v1/identity", headers=user["headers"])).json() == {"status": "pending"}
    # Upper and lower case of one number are one identity (one HMAC).
    hmacs = [r["id_hmac"] for r in await rows(db, "SELECT id_hmac FROM identities ORDER BY id")]
    assert len(hmacs) == 5 and hmacs[0] == hmacs[4] and len(set(hmacs)) == 4


async def test_invalid_id_numbers_are_refused(http, db):
    user = await register(http)
    good = make_id("110105", "19900101", "123")
    wrong_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    bad_dates = [f"110105{d}123" for d in ("19490230", "19491301", "19490000")]
    bad_dates = [b + check_digit(b) for b in bad_dates]  # right check digit, impossible date
    future = "110105" + "29990101" + "123"
    cases = {
        "bad check digit": wrong_check,
        "bad birth date": bad_dates[0],
        "month 13": bad_dates[1],
        "day 0": bad_dates[2],
        "17 characters": good[:-1],
        "19 characters": good + "1",
        "letters": "11010A" + good[6:],
        "future birth date": future + check_digit(future),
        "unknown region": "000000" + good[6:17] + check_digit("000000" + good[6:17]),
        "empty": "",
    }
    for why, number in cases.items():
        r = await submit(http, user, id_number=number)
        assert r.status_code == 422, why
        assert r.json()["code"] == "invalid_id_number", why
        assert number not in r.text or not number, why  # the value is not echoed
    assert (await me(http, user))["real_name_status"] == "unverified"
    assert await rows(db, "SELECT id FROM identities") == []
    # The same user then submits a good one.
    assert (await submit(http, user, id_number=good)).status_code == 201


async def test_invalid_phone_and_name_are_refused(http):
    user = await register(http)
    for phone in ("12345678901", "1381234567", "138123456789", "+85213812345678", "phone"):
        r = await submit(http, user, phone=phone)
        assert r.status_code == 422 and r.json()["code"] == "invalid_phone", phone
    for name in ("", "   ", "张3", "x" * 65):
        r = await submit(http, user, legal_name=name)
        assert r.status_code == 422 and r.json()["code"] == "invalid_legal_name", repr(name)
    r = await submit(http, user, legal_name="张\u0000三")  # refused at the edge, as every text field
    assert r.status_code == 422 and r.json()["code"] == "invalid_field"
    r = await submit(http, user, legal_name="阿依古丽·买买提", phone="+86 138-1234-5678")
    assert r.status_code == 201, r.text


# -- storage -----------------------------------------------------------------------------------


async def test_stored_identity_contains_no_plaintext(http, db):
    user = await register(http)
    fields = identity(legal_name="欧阳娜娜", phone="13912345678")
    assert (await http.post("/api/v1/identity", json=fields, headers=user["headers"])).status_code == 201
    [row] = await rows(db, "SELECT * FROM identities")
    assert row["user_id"] == user["id"] and row["status"] == "pending" and row["key_id"] == "test1"
    secrets = [fields["id_number"], fields["legal_name"], fields["phone"], fields["id_number"][6:14]]
    for column, value in row.items():
        blob = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
        for secret in secrets:
            assert secret.encode() not in blob, column
    # nonce || ciphertext || tag: 12 + 32 + 16 for the wrapped key; the record carries 28 bytes overhead.
    assert len(bytes(row["wrapped_key"])) == 60
    plain_len = len(json.dumps({**fields}, ensure_ascii=False, separators=(",", ":")).encode())
    assert len(bytes(row["ciphertext"])) == plain_len + 28
    assert len(row["id_hmac"]) == 64
    # Nor anywhere in the audit chain.
    for entry in await rows(db, "SELECT * FROM audit_log"):
        dumped = json.dumps(entry, default=str, ensure_ascii=False)
        assert not any(s in dumped for s in secrets)


async def test_tampered_ciphertext_or_wrong_row_does_not_decrypt(http, db, app):
    compliance = await operator(http, app.state.services, Role.COMPLIANCE)
    first, second = await register(http), await register(http)
    await submit(http, first)
    await submit(http, second)
    for user in (first, second):
        r = await http.get(f"/admin/v1/users/{user['id']}/identity?full=true", headers=compliance["headers"])
        assert r.status_code == 200 and r.json()["legal_name"] == "张三"
    a, b = await rows(db, "SELECT id, wrapped_key, ciphertext FROM identities ORDER BY id")
    # The second record's sealed blobs moved onto the first row: the row id (AAD) no longer matches.
    async with db.transaction() as conn:
        await conn.execute(
            text("UPDATE identities SET wrapped_key = :w, ciphertext = :c WHERE id = :id"),
            {"w": bytes(b["wrapped_key"]), "c": bytes(b["ciphertext"]), "id": a["id"]},
        )
        # One bit of the second record's ciphertext flipped.
        await conn.execute(
            text("UPDATE identities SET ciphertext = :c WHERE id = :id"),
            {"c": flip(bytes(b["ciphertext"]), 20), "id": b["id"]},
        )
    for user in (first, second):
        r = await http.get(f"/admin/v1/users/{user['id']}/identity?full=true", headers=compliance["headers"])
        assert r.status_code == 500 and r.json()["code"] == "identity_unreadable"
        assert "张三" not in r.text


# -- who sees what -------------------------------------------------------------------------------


async def test_second_user_sees_only_the_nickname(http):
    first = await register(http, "first", "Morning Star")
    second = await register(http, "second")
    fields = identity(legal_name="李四")
    r = await http.post("/api/v1/identity", json=fields, headers=first["headers"])
    assert r.json() == {"status": "pending"}
    r = await http.get(f"/api/v1/users/{first['id']}", headers=second["headers"])
    assert r.status_code == 200
    assert r.json() == {"id": first["id"], "nickname": "Morning Star"}
    # Not to the user themself either, beyond the status.
    mine = await http.get("/api/v1/me", headers=first["headers"])
    assert mine.json()["real_name_status"] == "pending"
    for response in (r, mine):
        assert not any(v in response.text for v in fields.values())
    # Each user's status is their own.
    assert (await http.get("/api/v1/identity", headers=second["headers"])).json() == {"status": "unverified"}


async def test_only_compliance_reads_the_plaintext(http, app):
    svc = app.state.services
    reviewer = await operator(http, svc, Role.REVIEWER)
    compliance = await operator(http, svc, Role.COMPLIANCE)
    moderator = await operator(http, svc, Role.MODERATOR)
    admin = await operator(http, svc, Role.ADMIN)
    user = await register(http)
    number = make_id("110105", "19491231", "002")
    await submit(http, user, legal_name="张三丰", id_number=number, phone="+8613812345678")
    url = f"/admin/v1/users/{user['id']}/identity"

    masked = {"legal_name": "张*", "id_number": "1101**********002X", "phone": "138****5678", "masked": True}
    for who, query in ((reviewer, ""), (reviewer, "?full=true"), (compliance, "")):
        r = await http.get(url + query, headers=who["headers"])
        assert r.status_code == 200, r.text
        assert {k: r.json()[k] for k in masked} == masked
        assert r.json()["status"] == "pending" and r.json()["user_id"] == user["id"]
    r = await http.get(url + "?full=true", headers=compliance["headers"])
    assert r.status_code == 200
    assert {k: r.json()[k] for k in masked} == {
        "legal_name": "张三丰",
        "id_number": number,
        "phone": "13812345678",
        "masked": False,
    }
    for who in (moderator, admin):
        for query in ("", "?full=true"):
            r = await http.get(url + query, headers=who["headers"])
            assert r.status_code == 403 and r.json()["code"] == "forbidden"
        assert (await http.get("/admin/v1/identity/pending", headers=who["headers"])).status_code == 403
    assert (await http.get(url, headers=user["headers"])).status_code == 401  # a user token is no operator's
    r = await http.get("/admin/v1/users/999999/identity", headers=compliance["headers"])
    assert r.status_code == 404


async def test_every_read_writes_an_audit_row(http, app, db):
    svc = app.state.services
    reviewer = await operator(http, svc, Role.REVIEWER)
    compliance = await operator(http, svc, Role.COMPLIANCE)
    moderator = await operator(http, svc, Role.MODERATOR)
    alice, bob = await register(http), await register(http)
    await submit(http, alice)
    await submit(http, bob)

    await http.get(f"/admin/v1/users/{alice['id']}/identity", headers=reviewer["headers"])
    await http.get(f"/admin/v1/users/{alice['id']}/identity?full=true", headers=compliance["headers"])
    await http.get(f"/admin/v1/users/{alice['id']}/identity", headers=moderator["headers"])  # 403: no read
    r = await http.get("/admin/v1/identity/pending", headers=reviewer["headers"])
    assert [i["user_id"] for i in r.json()["items"]] == [alice["id"], bob["id"]]
    assert all(i["masked"] and i["id_number"].count("*") == 10 for i in r.json()["items"])

    reads = await rows(
        db, "SELECT actor_kind, actor_id, subject, detail FROM audit_log WHERE action = 'identity.read' ORDER BY id"
    )
    seen = [
        (r["actor_id"], r["subject"], json.loads(r["detail"])["full"], json.loads(r["detail"])["via"]) for r in reads
    ]
    assert seen == [
        (reviewer["id"], f"user:{alice['id']}", False, "user"),
        (compliance["id"], f"user:{alice['id']}", True, "user"),
        (reviewer["id"], f"user:{alice['id']}", False, "queue"),
        (reviewer["id"], f"user:{bob['id']}", False, "queue"),
    ]
    assert all(r["actor_kind"] == "operator" for r in reads)
    # The chain still verifies with these rows in it.
    report = await svc.audit.verify()
    assert report.broken is None and report.checked >= len(reads)


# -- the account limit and the review flow ---------------------------------------------------------


async def test_one_identity_backs_at_most_five_accounts(http, app):
    reviewer = await operator(http, app.state.services, Role.REVIEWER)
    number = make_id("310104", "19800229", "321")
    users = [await register(http) for _ in range(6)]
    for user in users[:5]:
        assert (await submit(http, user, id_number=number)).status_code == 201
    r = await submit(http, users[5], id_number=number)
    assert r.status_code == 409 and r.json()["code"] == "identity_limit"
    assert (await me(http, users[5]))["real_name_status"] == "unverified"  # the refusal stored nothing
    # A different spelling of the same number is the same identity.
    assert (await submit(http, users[5], id_number=number.lower())).json()["code"] == "identity_limit"
    # A rejected submission backs no account: rejecting one frees a place.
    queue = (await http.get("/admin/v1/identity/pending", headers=reviewer["headers"])).json()["items"]
    r = await http.post(
        f"/admin/v1/identity/{queue[0]['identity_id']}/review",
        json={"decision": "reject", "note": "photo does not match"},
        headers=reviewer["headers"],
    )
    assert r.status_code == 200
    assert (await submit(http, users[5], id_number=number)).status_code == 201
    # The rejected user may not take the place back while five hold it.
    rejected = next(u for u in users if u["id"] == queue[0]["user_id"])
    assert (await submit(http, rejected, id_number=number)).json()["code"] == "identity_limit"


async def test_review_approve_and_reject(http, app, db):
    svc = app.state.services
    reviewer = await operator(http, svc, Role.REVIEWER)
    moderator = await operator(http, svc, Role.MODERATOR)
    compliance = await operator(http, svc, Role.COMPLIANCE)
    alice, bob = await register(http), await register(http)
    await submit(http, alice)
    await submit(http, bob)
    assert (await me(http, alice))["real_name_status"] == "pending"
    r = await submit(http, alice)
    assert r.status_code == 409 and r.json()["code"] == "identity_state" and r.json()["status"] == "pending"

    queue = (await http.get("/admin/v1/identity/pending", headers=reviewer["headers"])).json()
    ids = {i["user_id"]: i["identity_id"] for i in queue["items"]}
    assert queue["next_cursor"] is None and queue["total"] == len(ids) == 2
    review = "/admin/v1/identity/{}/review"

    r = await http.post(review.format(ids[alice["id"]]), json={"decision": "approve"}, headers=moderator["headers"])
    assert r.status_code == 403
    r = await http.post(review.format(ids[alice["id"]]), json={"decision": "approve"}, headers=compliance["headers"])
    assert r.status_code == 403  # reading is not reviewing
    r = await http.post(
        review.format(ids[alice["id"]]), json={"decision": "approve", "note": "ok"}, headers=reviewer["headers"]
    )
    assert r.status_code == 200 and r.json() == {
        "identity_id": ids[alice["id"]],
        "user_id": alice["id"],
        "status": "verified",
    }
    assert (await me(http, alice))["real_name_status"] == "verified"
    r = await http.post(review.format(ids[alice["id"]]), json={"decision": "reject"}, headers=reviewer["headers"])
    assert r.status_code == 409 and r.json()["code"] == "identity_state"
    r = await submit(http, alice)
    assert r.status_code == 409 and r.json()["status"] == "verified"

    r = await http.post(
        review.format(ids[bob["id"]]), json={"decision": "reject", "note": "name mismatch"}, headers=reviewer["headers"]
    )
    assert r.json()["status"] == "rejected"
    assert (await me(http, bob))["real_name_status"] == "rejected"
    assert (await http.get("/api/v1/identity", headers=bob["headers"])).json() == {"status": "rejected"}
    # Rejected may resubmit; the queue holds only the new submission.
    assert (await submit(http, bob, legal_name="王五")).json() == {"status": "pending"}
    queue = (await http.get("/admin/v1/identity/pending", headers=reviewer["headers"])).json()["items"]
    assert [(i["user_id"], i["legal_name"]) for i in queue] == [(bob["id"], "王*")]

    for bad in ({"decision": "maybe"}, {"decision": "approve", "extra": 1}, {}):
        assert (
            await http.post(review.format(queue[0]["identity_id"]), json=bad, headers=reviewer["headers"])
        ).status_code == 422
    assert (
        await http.post(review.format(999999), json={"decision": "approve"}, headers=reviewer["headers"])
    ).status_code == 404

    decisions = await rows(
        db, "SELECT actor_id, subject, detail FROM audit_log WHERE action = 'identity.review' ORDER BY id"
    )
    assert [
        (d["actor_id"], d["subject"], json.loads(d["detail"])["decision"], json.loads(d["detail"])["note"])
        for d in decisions
    ] == [
        (reviewer["id"], f"user:{alice['id']}", "verified", "ok"),
        (reviewer["id"], f"user:{bob['id']}", "rejected", "name mismatch"),
    ]
    [latest] = await rows(db, "SELECT status, reviewer_id, review_note FROM identities WHERE id = :i", i=ids[bob["id"]])
    assert latest == {"status": "rejected", "reviewer_id": reviewer["id"], "review_note": "name mismatch"}


# -- the HTTP verifier ---------------------------------------------------------------------------------


class Receiver:
    """A small verification service on 127.0.0.1: verifies everyone but 假名, or fails on demand."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.fail = False
        self.app = Starlette(routes=[Route("/verify", self.verify, methods=["POST"])])

    async def verify(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.received.append(body)
        if self.fail:
            return JSONResponse({"error": "down for maintenance"}, status_code=503)
        if body["legal_name"] == "假名":
            return JSONResponse({"result": "rejected", "note": "no such person"})
        return JSONResponse({"result": "verified"})


@pytest.fixture
async def receiver():
    recv = Receiver()
    config = uvicorn.Config(recv.app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    recv.url = f"http://127.0.0.1:{config.port}/verify"
    yield recv
    srv.should_exit = True
    await asyncio.wait_for(task, timeout=10)


async def test_http_verifier_decides(settings, db, clock, receiver):
    import httpx

    settings.identity_verifier = "http"
    settings.identity_verifier_url = receiver.url
    application = create_app(settings, clock=clock, db=db)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            real, fake, unlucky = await register(http), await register(http), await register(http)
            number = make_id("440305", "20000101", "777")
            r = await submit(http, real, legal_name="赵六", id_number=number, phone="13700001111")
            assert r.status_code == 201 and r.json() == {"status": "verified"}
            assert (await me(http, real))["real_name_status"] == "verified"
            assert receiver.received[-1] == {
                "identity_id": receiver.received[-1]["identity_id"],
                "legal_name": "赵六",
                "id_number": number,
                "phone": "13700001111",
            }
            r = await submit(http, fake, legal_name="假名")
            assert r.json() == {"status": "rejected"}
            assert (await me(http, fake))["real_name_status"] == "rejected"
            # The service down: the submission waits for a reviewer instead of being lost.
            receiver.fail = True
            r = await submit(http, unlucky)
            assert r.status_code == 201 and r.json() == {"status": "pending"}
            assert len(receiver.received) == 3
            reviewer = await operator(http, application.state.services, Role.REVIEWER)
            queue = (await http.get("/admin/v1/identity/pending", headers=reviewer["headers"])).json()["items"]
            assert [i["user_id"] for i in queue] == [unlucky["id"]]
    decisions = await rows(
        db, "SELECT actor_kind, actor_id, detail FROM audit_log WHERE action = 'identity.review' ORDER BY id"
    )
    assert [(d["actor_kind"], d["actor_id"], json.loads(d["detail"])["via"]) for d in decisions] == [
        ("system", None, "http"),
        ("system", None, "http"),
    ]
    assert json.loads(decisions[1]["detail"])["note"] == "no such person"
