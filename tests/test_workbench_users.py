"""User search, the dossier, and operators reading content (every read audited); on both backends."""

from __future__ import annotations

from imserver.domain.enums import Role

from .helpers import operator, register
from .identity_helpers import submit
from .operator_helpers import audit_rows, impose
from .workbench_helpers import report, send, walk


async def test_user_search_filters_sorts_and_pages(http, app):
    svc = app.state.services
    mod = await operator(http, svc, Role.MODERATOR)
    zed = await register(http, "zed-one", "Ann Zed")
    amy = await register(http, "amy", "Zoe Amy")
    ann = await register(http, "annie", "Ann Two")
    bob = await register(http, "bob", "Bob")
    h = mod["headers"]

    async def handles(**params) -> list[str]:
        return [u["handle"] for u in (await walk(http, "/admin/v1/users", h, **params))[0]]

    assert await handles(limit=1) == ["zed-one", "amy", "annie", "bob"]  # registration order
    assert await handles(q="an") == ["zed-one", "annie"]  # "Ann Zed" by nickname, "annie" by handle
    assert await handles(q="AN", sort="handle") == ["annie", "zed-one"]  # case-folded
    assert await handles(q="z", sort="handle", order="desc") == ["zed-one", "amy"]
    assert await handles(id=bob["id"]) == ["bob"]
    assert await handles(q="100%_") == []  # LIKE wildcards are literal
    assert await handles(sort="handle", limit=2) == ["amy", "annie", "bob", "zed-one"]

    await submit(http, ann)
    assert await handles(real_name_status="pending") == ["annie"]
    await impose(http, mod, amy["id"], "warning")
    assert await handles(has_sanctions_in_force="true") == ["amy"]
    assert await handles(has_sanctions_in_force="false") == ["zed-one", "annie", "bob"]
    assert await handles(status="closed") == []
    assert await handles(registered_until="2000-01-01T00:00:00Z") == []
    assert len(await handles(registered_since="2000-01-01T00:00:00Z")) == 4
    r = await http.get("/admin/v1/users", params={"status": "sleeping"}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "malformed"
    r = await http.get("/admin/v1/users", params={"sort": "nickname"}, headers=h)
    assert r.status_code == 422
    r = await http.get(
        "/admin/v1/users",
        params={"cursor": (await http.get("/admin/v1/users", params={"limit": 1}, headers=h)).json()["next_cursor"],
                "sort": "handle"},
        headers=h,
    )
    assert r.status_code == 422 and r.json()["code"] == "cursor_mismatch"
    assert zed and amy


async def test_the_dossier_gathers_a_users_record_without_identity_plaintext(http, app):
    svc = app.state.services
    mod, comp = await operator(http, svc, Role.MODERATOR), await operator(http, svc, Role.COMPLIANCE)
    carol = await register(http, "carol", "Carol C", verified=True)
    dave = await register(http, verified=True)
    by_carol = await report(http, carol, "account", dave["id"])
    msg = await send(svc, dave["id"], carol["id"], "a message carol reports")
    against_dave_msg = await report(http, carol, "message", msg)
    against_carol = await report(http, dave, "account", carol["id"])
    warning = (await impose(http, mod, carol["id"], "warning")).json()
    r = await http.post(f"/api/v1/sanctions/{warning['id']}/appeal", json={"text": "unfair"}, headers=carol["headers"])
    assert r.status_code == 201
    r = await http.post(
        "/api/v1/public-accounts",
        json={"name": "Carol Reads", "description": "books", "category": "individual"},
        headers=carol["headers"],
    )
    assert r.status_code == 201, r.text

    r = await http.get(f"/admin/v1/users/{carol['id']}", headers=comp["headers"])
    assert r.status_code == 200, r.text
    d = r.json()
    assert (d["handle"], d["nickname"], d["status"], d["real_name_status"]) == ("carol", "Carol C", "active", "verified")
    assert [a["version"] for a in d["agreement_acceptances"]] == [1]
    assert [s["id"] for s in d["sanctions"]] == [warning["id"]] and d["strikes"] == 1
    assert [x["id"] for x in d["reports_by"]["items"]] == [against_dave_msg["id"], by_carol["id"]]
    assert d["reports_by"]["total"] == 2
    assert [x["id"] for x in d["reports_against"]["items"]] == [against_carol["id"]]
    assert [a["sanction_id"] for a in d["appeals"]] == [warning["id"]] and d["appeals"][0]["status"] == "pending"
    assert [p["name"] for p in d["public_accounts"]] == ["Carol Reads"]
    assert d["recent_sign_ins"] == []  # no sign-in log yet: sessions record no address
    text = r.text
    for secret in ("110101", "legal_name", "id_number", "phone"):  # identity stays behind its own read
        assert secret not in text
    # Dave's dossier counts the report against his message.
    dd = (await http.get(f"/admin/v1/users/{dave['id']}", headers=mod["headers"])).json()
    assert {x["id"] for x in dd["reports_against"]["items"]} == {by_carol["id"], against_dave_msg["id"]}
    rows = [r for r in await audit_rows(svc) if r["action"] == "user.read"]
    assert [(r["actor_id"], r["subject"]) for r in rows] == [(comp["id"], f"user:{carol['id']}"), (mod["id"], f"user:{dave['id']}")]
    r = await http.get("/admin/v1/users/999999", headers=mod["headers"])
    assert r.status_code == 404 and r.json()["code"] == "user_not_found"


async def test_content_reads_show_author_and_context_and_are_audited(http, app):
    svc = app.state.services
    mod, comp = await operator(http, svc, Role.MODERATOR), await operator(http, svc, Role.COMPLIANCE)
    erin = await register(http, "erin", "Erin E", verified=True)
    fay = await register(http, "fay", "Fay F", verified=True)
    ids = [await send(svc, erin["id"] if n % 2 == 0 else fay["id"], fay["id"] if n % 2 == 0 else erin["id"], f"m{n}")
           for n in range(7)]
    r = await http.get(f"/admin/v1/messages/{ids[3]}", params={"context": 2}, headers=mod["headers"])
    assert r.status_code == 200, r.text
    m = r.json()
    assert (m["body"], m["author"], m["status"], m["held"]) == ("m3", {"id": fay["id"], "handle": "fay", "nickname": "Fay F"}, "delivered", False)
    assert m["conversation"]["kind"] == "direct"
    assert [c["body"] for c in m["context"]] == ["m1", "m2", "m4", "m5"]
    bare = (await http.get(f"/admin/v1/messages/{ids[0]}", headers=comp["headers"])).json()
    assert bare["context"] == []

    # A post, taken down: still readable by operators, with its state.
    owner = erin
    r = await http.post(
        "/api/v1/public-accounts",
        json={"name": "Erin Notes", "description": "notes", "category": "individual"},
        headers=owner["headers"],
    )
    account_id = r.json()["id"]
    reviewer = await operator(http, svc, Role.REVIEWER)
    r = await http.post(
        f"/admin/v1/public-accounts/{account_id}/review",
        json={"decision": "approve", "reason": "fine"},
        headers=reviewer["headers"],
    )
    assert r.status_code == 200, r.text
    r = await http.post(
        f"/api/v1/public-accounts/{account_id}/posts",
        json={"kind": "ordinary", "title": "Hello", "body": "first post"},
        headers=owner["headers"],
    )
    assert r.status_code == 201, r.text
    post_id = r.json()["post_id"]
    assert (await http.post(f"/admin/v1/posts/{post_id}/takedown", json={"reason": "spam"}, headers=mod["headers"])).status_code == 200
    p = (await http.get(f"/admin/v1/posts/{post_id}", headers=mod["headers"])).json()
    assert (p["title"], p["body"], p["taken_down"], p["takedown_reason"]) == ("Hello", "first post", True, "spam")
    assert p["author"]["handle"] == "erin" and p["account"] == {"id": account_id, "name": "Erin Notes"}

    # A report embeds its target's content and author; reading it is audited as well.
    filed = await report(http, erin, "message", ids[1])
    detail = (await http.get(f"/admin/v1/reports/{filed['id']}", headers=mod["headers"])).json()
    assert detail["target_content"]["body"] == "m1" and detail["target_content"]["author"]["handle"] == "fay"

    reads = [r for r in await audit_rows(svc) if r["action"] == "content.read"]
    assert [(r["actor_id"], r["subject"], r["detail"]["via"]) for r in reads] == [
        (mod["id"], f"message:{ids[3]}", "message"),
        (comp["id"], f"message:{ids[0]}", "message"),
        (mod["id"], f"post:{post_id}", "post"),
        (mod["id"], None, f"report:{filed['id']}"),
    ]
    assert reads[-1]["detail"]["read"] == [f"message:{ids[1]}"]

    for path, code in (("/admin/v1/messages/999999", "message_not_found"), ("/admin/v1/posts/999999", "post_not_found")):
        r = await http.get(path, headers=mod["headers"])
        assert r.status_code == 404 and r.json()["code"] == code
    r = await http.get(f"/admin/v1/messages/{ids[0]}", params={"context": 51}, headers=mod["headers"])
    assert r.status_code == 422
    # Reviewers review identities and accounts; they do not read messages.
    assert (await http.get(f"/admin/v1/messages/{ids[0]}", headers=reviewer["headers"])).status_code == 403


async def test_a_sanctions_evidence_and_a_held_message_show_their_content(http, app):
    svc = app.state.services
    admin, mod = await operator(http, svc, Role.ADMIN), await operator(http, svc, Role.MODERATOR)
    await http.post("/admin/v1/terms", json={"term": "shady", "action": "hold"}, headers=admin["headers"])
    gus = await register(http, "gus", "Gus G", verified=True)
    hal = await register(http, verified=True)
    plain = await send(svc, gus["id"], hal["id"], "plain words")
    held = await send(svc, gus["id"], hal["id"], "shady words")
    filed = await report(http, hal, "message", plain)
    r = await impose(http, mod, gus["id"], "warning", evidence={"message_ids": [held], "report_ids": [filed["id"]]})
    assert r.status_code == 201, r.text
    s = (await http.get(f"/admin/v1/sanctions/{r.json()['id']}", headers=mod["headers"])).json()
    assert [(c["id"], c["body"], c["author"]["handle"]) for c in s["evidence_content"]] == [
        (held, "shady words", "gus"),
        (plain, "plain words", "gus"),
    ]
    assert s["evidence_content"][0]["held"] is True
    m = (await http.get(f"/admin/v1/messages/{held}", headers=mod["headers"])).json()
    assert (m["status"], m["held"]) == ("held", True)
