"""Operator lists: one envelope, opaque cursors, caps, filters, sorting, totals; on both backends."""

from __future__ import annotations

import pytest

from imserver.domain.enums import Role
from imserver.domain.errors import BadRequest
from imserver.services import paging

from .helpers import operator, register
from .identity_helpers import submit
from .operator_helpers import impose
from .workbench_helpers import report, send, walk

# -- the cursor codec (pure) --------------------------------------------------------------------


def test_a_cursor_resumes_only_its_own_list_and_order():
    from datetime import UTC, datetime

    at = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    cursor = paging.encode_cursor("reports", "created_at", False, at, 42)
    assert paging.decode_cursor(cursor, "reports", "created_at", False) == (at, 42)
    for args, code in (
        (("sanctions", "created_at", False), "cursor_mismatch"),
        (("reports", "starts_at", False), "cursor_mismatch"),
        (("reports", "created_at", True), "cursor_mismatch"),
    ):
        with pytest.raises(BadRequest) as err:
            paging.decode_cursor(cursor, *args)
        assert err.value.code == code
    for junk in ("x", "!!!", cursor[:-3], "e30", "W10"):  # e30 / W10: base64 of {} and []
        with pytest.raises(BadRequest) as err:
            paging.decode_cursor(junk, "reports", "created_at", False)
        assert err.value.code == "invalid_cursor", junk
    for limit in (0, paging.PAGE_CAP + 1):
        with pytest.raises(BadRequest) as err:
            paging.page_request("reports", sort="created_at", limit=limit)
        assert err.value.code == "page_too_large"
    assert paging.page_request("reports", sort="created_at", limit=paging.PAGE_CAP).limit == paging.PAGE_CAP


# -- reports --------------------------------------------------------------------------------------


async def _errors(
    http, path: str, headers: dict, foreign_cursor: str, bad_filter: dict, cap: int = paging.PAGE_CAP
) -> None:
    """The refusals every list shares: over the cap, a foreign cursor, garbage, an unknown filter value."""
    for params, code in (
        ({"limit": cap + 1}, "page_too_large"),
        ({"limit": 0}, "page_too_large"),
        ({"cursor": foreign_cursor}, "cursor_mismatch"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        (bad_filter, "malformed"),
    ):
        r = await http.get(path, params=params, headers=headers)
        assert r.status_code == 422 and r.json()["code"] == code, (path, params, r.text)


async def test_reports_filter_sort_page_count_and_stay_stable_under_inserts(http, app):
    svc = app.state.services
    mod = await operator(http, svc, Role.MODERATOR)
    users = [await register(http) for _ in range(4)]
    a, b, c, d = users
    filed = [
        await report(http, a, "account", b["id"], "fraud"),
        await report(http, a, "account", c["id"], "rumour"),
        await report(http, b, "account", c["id"], "fraud"),
        await report(http, d, "account", b["id"], "harmful"),
        await report(http, c, "account", a["id"], "fraud"),
    ]
    ids = [f["id"] for f in filed]
    h = mod["headers"]

    items, totals = await walk(http, "/admin/v1/reports", h, limit=2)
    assert [i["id"] for i in items] == ids and set(totals) == {5}
    items, _ = await walk(http, "/admin/v1/reports", h, limit=2, order="desc")
    assert [i["id"] for i in items] == ids[::-1]

    fraud, totals = await walk(http, "/admin/v1/reports", h, category="fraud", limit=1)
    assert [i["id"] for i in fraud] == [ids[0], ids[2], ids[4]] and set(totals) == {3}
    by_a, _ = await walk(http, "/admin/v1/reports", h, reporter_id=a["id"])
    assert [i["id"] for i in by_a] == ids[:2]
    assert (await walk(http, "/admin/v1/reports", h, target_kind="message"))[0] == []
    assert (await walk(http, "/admin/v1/reports", h, min_age_seconds=3600))[0] == []
    assert len((await walk(http, "/admin/v1/reports", h, min_age_seconds=0))[0]) == 5

    r = await http.post(f"/admin/v1/reports/{ids[3]}/assign", headers=h)
    assert r.status_code == 200, r.text
    mine, _ = await walk(http, "/admin/v1/reports", h, assignee_id=mod["id"])
    in_review, _ = await walk(http, "/admin/v1/reports", h, status="in_review")
    assert [i["id"] for i in mine] == [i["id"] for i in in_review] == [ids[3]]
    assert (await walk(http, "/admin/v1/reports", h, status="dismissed"))[0] == []

    # Keyset paging: rows filed between two pages neither repeat nor shift what follows.
    first = (await http.get("/admin/v1/reports", params={"limit": 2}, headers=h)).json()
    newest_first = (await http.get("/admin/v1/reports", params={"limit": 2, "order": "desc"}, headers=h)).json()
    late = [(await report(http, d, "account", a["id"]))["id"] for _ in range(2)]
    rest, totals = await walk(http, "/admin/v1/reports", h, limit=2, cursor=first["next_cursor"])
    assert [i["id"] for i in first["items"] + rest] == ids + late and totals[0] == 7
    older, _ = await walk(http, "/admin/v1/reports", h, limit=2, order="desc", cursor=newest_first["next_cursor"])
    assert [i["id"] for i in newest_first["items"] + older] == ids[::-1]

    sanction_ids = [(await impose(http, mod, u["id"], "warning")).json()["id"] for u in users[:2]]
    assert len(sanction_ids) == 2
    foreign = (await http.get("/admin/v1/sanctions", params={"limit": 1}, headers=h)).json()["next_cursor"]
    await _errors(http, "/admin/v1/reports", h, foreign, {"category": "gossip"})
    # A cursor made for one order is refused for the other.
    r = await http.get("/admin/v1/reports", params={"order": "desc", "cursor": first["next_cursor"]}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "cursor_mismatch"


# -- sanctions and appeals -------------------------------------------------------------------------


async def test_sanctions_and_appeals_filter_sort_page_and_count(http, app):
    svc = app.state.services
    mod = await operator(http, svc, Role.MODERATOR)
    comp, comp2 = await operator(http, svc, Role.COMPLIANCE), await operator(http, svc, Role.COMPLIANCE)
    u1, u2, u3 = await register(http), await register(http), await register(http)
    warn = (await impose(http, mod, u1["id"], "warning")).json()
    restrict = (await impose(http, mod, u2["id"], "restrict_publication", duration_seconds=3600)).json()
    suspend = (await impose(http, comp, u1["id"], "suspend_updates", duration_seconds=3600)).json()
    close = (await impose(http, comp, u3["id"], "close_account")).json()
    lifted = await http.post(f"/admin/v1/sanctions/{restrict['id']}/lift", json={"reason": "mistake"}, headers=mod["headers"])
    assert lifted.status_code == 200, lifted.text
    h = comp["headers"]
    all_ids = [warn["id"], restrict["id"], suspend["id"], close["id"]]

    items, totals = await walk(http, "/admin/v1/sanctions", h, limit=3)
    assert [i["id"] for i in items] == all_ids[::-1] and set(totals) == {4}  # newest first by default
    items, _ = await walk(http, "/admin/v1/sanctions", h, limit=1, order="asc", sort="starts_at")
    assert [i["id"] for i in items] == all_ids

    async def ids(**params) -> list[int]:
        return sorted(i["id"] for i in (await walk(http, "/admin/v1/sanctions", h, **params))[0])

    assert await ids(kind="warning") == [warn["id"]]
    assert await ids(status="in_effect") == [warn["id"], suspend["id"]]
    assert await ids(status="awaiting_confirmation") == [close["id"]]
    assert await ids(status="ended") == [restrict["id"]]
    assert await ids(subject_kind="user", subject_id=u1["id"]) == [warn["id"], suspend["id"]]
    assert await ids(imposed_by=mod["id"]) == [warn["id"], restrict["id"]]
    assert await ids(since="2000-01-01T00:00:00Z", until="2001-01-01T00:00:00Z") == []
    assert await ids(since="2000-01-01T00:00:00Z") == sorted(all_ids)
    r = await http.get(
        "/admin/v1/sanctions", params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, headers=h
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_filter"
    reports_cursor = (await http.get("/admin/v1/audit", params={"limit": 1}, headers=h)).json()["next_cursor"]
    await _errors(http, "/admin/v1/sanctions", h, reports_cursor, {"status": "pending"})

    # Appeals in every status: one pending, one upheld.
    for user, sanction in ((u1, warn), (u1, suspend)):
        r = await http.post(
            f"/api/v1/sanctions/{sanction['id']}/appeal", json={"text": "I disagree"}, headers=user["headers"]
        )
        assert r.status_code == 201, r.text
    appeals, totals = await walk(http, "/admin/v1/appeals", comp2["headers"], limit=1)
    assert [a["sanction"]["id"] for a in appeals] == [warn["id"], suspend["id"]] and set(totals) == {2}
    r = await http.post(
        f"/admin/v1/appeals/{appeals[0]['appeal_id']}/decision", json={"decision": "uphold"}, headers=comp2["headers"]
    )
    assert r.status_code == 200, r.text
    for status, expected in (("pending", [suspend["id"]]), ("upheld", [warn["id"]]), ("overturned", [])):
        got, _ = await walk(http, "/admin/v1/appeals", comp2["headers"], status=status)
        assert [a["sanction"]["id"] for a in got] == expected and all(a["status"] == status for a in got)
    got, _ = await walk(http, "/admin/v1/appeals", comp2["headers"], order="desc", user_id=u1["id"])
    assert [a["sanction"]["id"] for a in got] == [suspend["id"], warn["id"]]
    await _errors(http, "/admin/v1/appeals", comp2["headers"], reports_cursor, {"status": "maybe"})


# -- queues: identity, public accounts, held messages ------------------------------------------------


async def test_identity_queue_shows_names_oldest_first_and_pages(http, app):
    reviewer = await operator(http, app.state.services, Role.REVIEWER)
    users = [await register(http, f"queued{i}", f"Queued {i}") for i in range(3)]
    for u in users:
        assert (await submit(http, u)).status_code == 201
    items, totals = await walk(http, "/admin/v1/identity/pending", reviewer["headers"], limit=2)
    assert [(i["user_id"], i["handle"], i["nickname"]) for i in items] == [
        (u["id"], f"queued{n}", f"Queued {n}") for n, u in enumerate(users)
    ]
    assert set(totals) == {3} and all(i["masked"] for i in items)
    r = await http.get("/admin/v1/identity/pending", params={"limit": 101}, headers=reviewer["headers"])
    assert r.status_code == 422 and r.json()["code"] == "page_too_large"


async def test_public_account_applications_filter_and_page(http, app):
    reviewer = await operator(http, app.state.services, Role.REVIEWER)
    owner = await register(http, verified=True)
    made = []
    for name in ("Garden Club", "City Police Desk", "Garden Walks"):
        body = {"name": name, "description": "about us", "category": "individual"}
        r = await http.post("/api/v1/public-accounts", json=body, headers=owner["headers"])
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    h = reviewer["headers"]
    items, totals = await walk(http, "/admin/v1/public-accounts", h, limit=2)
    assert [i["id"] for i in items] == made and set(totals) == {3}
    flagged, _ = await walk(http, "/admin/v1/public-accounts", h, flagged_only="true")
    assert [i["id"] for i in flagged] == [made[1]] and flagged[0]["manual_review"] is True
    garden, _ = await walk(http, "/admin/v1/public-accounts", h, name="garden", order="desc")
    assert [i["id"] for i in garden] == [made[2], made[0]]
    assert (await walk(http, "/admin/v1/public-accounts", h, category="government"))[0] == []
    assert (await walk(http, "/admin/v1/public-accounts", h, status="approved"))[0] == []
    other = (await http.get("/admin/v1/identity/pending", headers=h)).json()
    assert other["next_cursor"] is None  # no foreign cursor to hand: build one the way a client might copy it
    foreign = paging.encode_cursor("identity_queue", "submitted_at", False, 1, 1)
    await _errors(http, "/admin/v1/public-accounts", h, foreign, {"category": "club"})


async def test_held_messages_list_with_senders_and_the_listing_is_audited(http, app):
    svc = app.state.services
    admin, mod = await operator(http, svc, Role.ADMIN), await operator(http, svc, Role.MODERATOR)
    r = await http.post("/admin/v1/terms", json={"term": "suspicious", "action": "hold"}, headers=admin["headers"])
    assert r.status_code == 201, r.text
    alice, bob = await register(http, "alice", "Alice A", verified=True), await register(http, verified=True)
    held = [await send(svc, alice["id"], bob["id"], f"suspicious offer {n}") for n in range(3)]
    await send(svc, bob["id"], alice["id"], "a suspicious reply")
    items, totals = await walk(http, "/admin/v1/held", mod["headers"], sender_id=alice["id"], limit=2)
    assert [i["message_id"] for i in items] == held and set(totals) == {3}
    assert items[0]["sender"] == {"id": alice["id"], "handle": "alice", "nickname": "Alice A"}
    assert items[0]["body"] == "suspicious offer 0" and items[0]["reason"] == "content_review"
    assert len((await walk(http, "/admin/v1/held", mod["headers"]))[0]) == 4
    rows = (await svc.audit.page(after=0, limit=1000))["entries"]
    reads = [r for r in rows if r["action"] == "content.read" and r["detail"]["via"] == "held_queue"]
    assert reads and reads[0]["actor_id"] == mod["id"] and reads[0]["detail"]["read"] == [f"message:{m}" for m in held[:2]]
    await _errors(http, "/admin/v1/held", mod["headers"], paging.encode_cursor("audit", "id", False, 1, 1), {"order": "up"})


# -- audit ----------------------------------------------------------------------------------------------


async def test_audit_filters_by_actor_action_subject_and_names_operators(http, app):
    svc = app.state.services
    comp = await operator(http, svc, Role.COMPLIANCE)
    mod = await operator(http, svc, Role.MODERATOR, handle="mod-ada")
    a, b = await register(http), await register(http)
    filed = await report(http, a, "account", b["id"])
    assert (await http.post(f"/admin/v1/reports/{filed['id']}/assign", headers=mod["headers"])).status_code == 200
    h = comp["headers"]
    by_mod, _ = await walk(http, "/admin/v1/audit", h, actor_id=mod["id"], actor_kind="operator", limit=1)
    assert [e["action"] for e in by_mod] == ["operator.login", "report.assign"]  # created by the system
    assert all(e["actor_handle"] == "mod-ada" for e in by_mod)
    family, _ = await walk(http, "/admin/v1/audit", h, action="report.")
    assert [e["action"] for e in family] == ["report.file", "report.assign"]
    assert (await walk(http, "/admin/v1/audit", h, action="report"))[0] == []  # no such exact action
    subject, _ = await walk(http, "/admin/v1/audit", h, subject=f"report:{filed['id']}")
    assert [e["action"] for e in subject] == ["report.assign"] and subject[0]["actor_handle"] == "mod-ada"
    users_acts, _ = await walk(http, "/admin/v1/audit", h, actor_kind="user")
    assert [e["action"] for e in users_acts] == ["report.file"] and users_acts[0]["actor_handle"] is None
    newest, _ = await walk(http, "/admin/v1/audit", h, order="desc", limit=3)
    oldest, _ = await walk(http, "/admin/v1/audit", h, limit=3)
    # Each page read is itself logged: both walks see every row exactly once, in order, and
    # the ascending walk also reaches the reads logged while it went.
    new_ids, old_ids = [e["id"] for e in newest], [e["id"] for e in oldest]
    assert new_ids == list(range(new_ids[0], 0, -1)) and old_ids == list(range(1, len(old_ids) + 1))
    assert len(old_ids) > len(new_ids)
    assert (await walk(http, "/admin/v1/audit", h, until="2000-01-01T00:00:00Z"))[0] == []
    foreign = paging.encode_cursor("reports", "created_at", False, 1, 1)
    await _errors(http, "/admin/v1/audit", h, foreign, {"actor_kind": "robot"}, cap=1000)
