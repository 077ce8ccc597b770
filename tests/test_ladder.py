"""The sanction ladder as one table (Art. 8): the documented table is the code's, and
each measure stops exactly what its row says, over HTTP and the WebSocket, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from imserver.client import Client
from imserver.domain.enums import Role
from imserver.domain.policy_types import SanctionKind
from imserver.policy import ladder
from imserver.policy.ladder import Act, Effect, Item, SubjectKind

from .helpers import PASSWORD, operator, register
from .test_public_accounts import approved, post

DOC = Path(__file__).resolve().parents[1] / "docs" / "sanctions.md"


# -- the table itself ------------------------------------------------------------------------------


def test_the_documented_table_is_the_ladder():
    """docs/sanctions.md carries the generated table verbatim: edit the ladder, then the doc."""
    assert ladder.scope_table() in DOC.read_text(encoding="utf-8"), (
        "docs/sanctions.md drifted from policy/ladder.py; paste the output of ladder.scope_table()"
    )


def test_the_doc_check_sees_drift():
    """The check above can fail: a table with one cell changed is not in the doc."""
    drifted = ladder.scope_table().replace("| refused |", "| allowed |", 1)
    assert drifted != ladder.scope_table()
    assert drifted not in DOC.read_text(encoding="utf-8")


def test_every_measure_has_a_row_for_every_subject_and_item():
    for kind in SanctionKind:
        for subject in SubjectKind:
            m = ladder.measure(kind, subject)
            assert set(m.effects) == set(Item)
            refuses = any(e is Effect.REFUSED for e in m.effects.values())
            assert (m.reason is not None) == refuses, (kind, subject)
    # The four-eyes acts of a closure; nothing else needs a second operator.
    for subject in SubjectKind:
        assert ladder.measure(SanctionKind.CLOSE_ACCOUNT, subject).second_operator == frozenset(Act)
        for kind in (SanctionKind.WARNING, SanctionKind.RESTRICT_PUBLICATION, SanctionKind.SUSPEND_UPDATES):
            assert not ladder.measure(kind, subject).second_operator


def test_the_doc_no_longer_calls_public_account_sanctions_unsupported():
    text = DOC.read_text(encoding="utf-8")
    assert "until public accounts register" not in text


# -- each measure in practice ------------------------------------------------------------------------


async def _attempt_all(server, client, owner, friend, group_id, account_id) -> dict[Item, tuple[bool, str | None]]:
    """Try every item as `owner`; returns item -> (went through?, refusal code)."""
    out: dict[Item, tuple[bool, str | None]] = {}
    live = await Client.connect(server.ws_url, owner["token"])
    try:
        ack = await live.send("hello", to_user=friend["id"])
        out[Item.DIRECT_MESSAGES] = (ack.status == "accepted", ack.reason)
        ack = await live.send("hello all", to_group=group_id)
        out[Item.GROUP_MESSAGES] = (ack.status == "accepted", ack.reason)
    finally:
        await live.close()
    for item, kind in ((Item.POSTS, "ordinary"), (Item.NEWS, "news_original")):
        r = await post(client, owner, account_id, kind)
        out[item] = (r.status_code == 201, r.json().get("code"))
    r = await client.patch("/api/v1/me", json={"nickname": "Renamed"}, headers=owner["headers"])
    out[Item.PROFILE_CHANGES] = (r.status_code == 200, r.json().get("code"))
    r = await client.patch(
        f"/api/v1/public-accounts/{account_id}", json={"description": "new words"}, headers=owner["headers"]
    )
    out[Item.PUBLIC_ACCOUNT_UPDATES] = (r.status_code == 200, r.json().get("code"))
    r = await client.post("/api/v1/login", json={"handle": owner["handle"], "password": PASSWORD})
    out[Item.SIGN_IN] = (r.status_code == 200, r.json().get("code"))
    return out


async def _scene(client):
    owner, account = await approved(client, "news_unit")
    friend = await register(client, verified=True)
    r = await client.post("/api/v1/groups", json={"name": "g", "members": [friend["id"]]}, headers=owner["headers"])
    assert r.status_code == 201, r.text
    return owner, friend, r.json()["id"], account["id"]


def _expected(kind: SanctionKind, subject: SubjectKind) -> dict[Item, tuple[bool, str | None]]:
    m = ladder.measure(kind, subject)
    code = m.reason.value if m.reason else None
    # "limited": the first item goes through (the restricted bucket starts full); n/a: unaffected.
    return {item: (True, None) if e is not Effect.REFUSED else (False, code) for item, e in m.effects.items()}


@pytest.mark.parametrize("kind", ["warning", "restrict_publication", "suspend_updates"])
async def test_a_measure_on_a_user_stops_what_the_ladder_says(server, client, kind):
    svc = server.services
    op = await operator(client, svc, ladder.measure(kind, "user").imposed_by)
    owner, friend, group_id, account_id = await _scene(client)
    body = {"subject_id": owner["id"], "kind": kind, "reason": "scope test"}
    r = await client.post("/admin/v1/sanctions", json=body, headers=op["headers"])
    assert r.status_code == 201, r.text
    assert await _attempt_all(server, client, owner, friend, group_id, account_id) == _expected(
        SanctionKind(kind), SubjectKind.USER
    )


@pytest.mark.parametrize("kind", ["warning", "restrict_publication", "suspend_updates", "close_account"])
async def test_a_measure_on_a_public_account_stops_what_the_ladder_says(server, client, kind):
    svc = server.services
    role = ladder.measure(kind, "public_account").imposed_by
    op, second = await operator(client, svc, role), await operator(client, svc, role)
    owner, friend, group_id, account_id = await _scene(client)
    body = {"subject_kind": "public_account", "subject_id": account_id, "kind": kind, "reason": "scope test"}
    r = await client.post("/admin/v1/sanctions", json=body, headers=op["headers"])
    assert r.status_code == 201, r.text
    if r.json()["status"] == "awaiting_confirmation":
        r = await client.post(f"/admin/v1/sanctions/{r.json()['id']}/confirm", headers=second["headers"])
        assert r.status_code == 200, r.text
    got = await _attempt_all(server, client, owner, friend, group_id, account_id)
    assert got == _expected(SanctionKind(kind), SubjectKind.PUBLIC_ACCOUNT)


async def test_restricted_group_messages_are_limited_not_refused(server, client):
    """The one "limited" cell: group messages of a restricted user go through the restricted bucket."""
    op = await operator(client, server.services, Role.MODERATOR)
    owner, _, group_id, _ = await _scene(client)
    body = {"subject_id": owner["id"], "kind": "restrict_publication", "reason": "flooding"}
    assert (await client.post("/admin/v1/sanctions", json=body, headers=op["headers"])).status_code == 201
    live = await Client.connect(server.ws_url, owner["token"])
    try:
        acks = [await live.send(f"m{i}", to_group=group_id) for i in range(5)]
    finally:
        await live.close()
    statuses = [(a.status, a.reason) for a in acks]
    assert statuses[:3] == [("accepted", None)] * 3  # the restricted bucket's burst (policy/checks.py)
    assert statuses[3] == ("rejected", "rate_limited")


async def test_default_durations_come_from_the_ladder(http, app):
    svc = app.state.services
    user = await register(http)
    for kind in ("restrict_publication", "suspend_updates"):
        m = ladder.measure(kind, "user")
        op = await operator(http, svc, m.imposed_by)
        r = await http.post(
            "/admin/v1/sanctions", json={"subject_id": user["id"], "kind": kind, "reason": "x"}, headers=op["headers"]
        )
        s = r.json()
        span = datetime.fromisoformat(s["ends_at"]) - datetime.fromisoformat(s["starts_at"])
        assert span == m.default_duration, kind
