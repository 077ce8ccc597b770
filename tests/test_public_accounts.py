"""Public accounts (Art. 7): review → filing → post, the news permission
of each category, the badge, takedowns, sanctions on accounts, bad input, and
live delivery to followers over the WebSocket.

Time is a FrozenClock (the `clock` fixture below) so licence and approval
expiries are crossed by moving it, not by waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from imserver import cli
from imserver.broker import RedisBroker
from imserver.client import Client
from imserver.domain.clock import FrozenClock
from imserver.domain.enums import Role
from imserver.domain.policy_types import AccountCategory, NewsPermission
from imserver.gateway.protocol import Post, Tombstone
from imserver.policy.public_accounts import (
    Approval,
    NewsFacts,
    badge,
    impersonation_flags,
    news_permission,
    valid_until,
)
from imserver.services.cluster import Cluster, NoLocalNode
from imserver.services.public_account_cache import AccountCache
from imserver.services.unit_of_work import AfterCommit, Invalidate, Scope
from imserver.store.tables import posts, public_account_changes, public_accounts

from .conftest import REDIS_URL
from .helpers import operator, register
from .operator_helpers import audit_actions, jsonl

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CREDIT_CODE = "91110000600037341L"  # a valid unified social credit code (GB 32100 check character L)
BAD_CREDIT_CODE = "91110000600037341X"  # same code, wrong check character
LICENCE = "11220180001"
CAP = 2  # public_accounts_per_user in this module


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def settings(settings):
    # A frozen clock never refills the post bucket; the rate limit has tests of its own.
    settings.rate_posts_burst = 100_000
    settings.public_accounts_per_user = CAP
    return settings


# -- helpers ------------------------------------------------------------------------------


def later(**delta) -> str:
    return (NOW + timedelta(**delta)).isoformat()


def application(category: str = "enterprise", name: str | None = None, **over) -> dict:
    body = {"name": name or f"Acct {category} {id(over) % 100000}", "description": "about us", "category": category}
    if category not in ("individual", "other"):
        body["operator_name"] = "Example Ltd."
        body["credit_code"] = CREDIT_CODE
    else:
        body["province"] = "31"  # an individual declares where they are registered (Art. 3)
    if category in ("news_unit", "news_service_licensee"):
        body["licence_number"] = LICENCE
        body["licence_expires_at"] = later(days=365)
    body.update(over)
    return body


_names = iter(range(1, 1_000_000))


async def ops(http) -> dict:
    """One operator of each role, made once per client."""
    if not hasattr(http, "pa_ops"):
        http.pa_ops = {
            role: await operator(http, http.services, role) for role in (Role.REVIEWER, Role.COMPLIANCE, Role.MODERATOR)
        }
        http.pa_ops["compliance2"] = await operator(http, http.services, Role.COMPLIANCE)
    return http.pa_ops


async def apply(http, owner: dict, category: str = "enterprise", **over):
    over.setdefault("name", f"Account {next(_names)}")
    return await http.post("/api/v1/public-accounts", json=application(category, **over), headers=owner["headers"])


async def review(http, account_id: int, decision: str = "approve", **extra):
    reviewer = (await ops(http))[Role.REVIEWER]
    body = {"decision": decision, "reason": f"{decision}d in test", **extra}
    return await http.post(f"/admin/v1/public-accounts/{account_id}/review", json=body, headers=reviewer["headers"])


async def approved(http, category: str = "enterprise", owner: dict | None = None, **over) -> tuple[dict, dict]:
    owner = owner or await register(http, verified=True)
    r = await apply(http, owner, category, **over)
    assert r.status_code == 201, r.text
    r = await review(http, r.json()["id"])
    assert r.status_code == 200, r.text
    return owner, r.json()


async def post(http, owner: dict, account_id: int, kind: str = "ordinary", **over):
    body = {"kind": kind, "title": f"{kind} title", "body": f"{kind} body"}
    if kind == "news_reprint":
        body["source"] = {"name": "Xinhua", "url": "https://example.org/a/1", "author": "Li Si", "title": "Original"}
    body.update(over)
    return await http.post(f"/api/v1/public-accounts/{account_id}/posts", json=body, headers=owner["headers"])


async def follow(http, user: dict, account_id: int):
    return await http.put(f"/api/v1/public-accounts/{account_id}/follow", headers=user["headers"])


async def count(db, table, *where) -> int:
    async with db.transaction() as conn:
        return (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()


def code(r) -> str:
    return r.json().get("code")


# -- the whole path: review → filing → post ---------------------------------------------------------


async def test_review_filing_and_post_path(client, server, db, settings, database_url):
    owner = await register(client, verified=True)
    r = await apply(client, owner, "enterprise", name="Acme Tea")
    assert r.status_code == 201, r.text
    account = r.json()
    assert (account["review_status"], account["manual_review"]) == ("pending", False)
    # Not public while pending: no profile, no follow, no post.
    stranger = await register(client, verified=True)
    r = await client.get(f"/api/v1/public-accounts/{account['id']}", headers=stranger["headers"])
    assert (r.status_code, code(r)) == (404, "public_account_not_found")
    r = await post(client, owner, account["id"])
    assert (r.status_code, code(r)) == (403, "public_account_unverified")

    reviewer = (await ops(client))[Role.REVIEWER]
    r = await client.get("/admin/v1/public-accounts", params={"status": "pending"}, headers=reviewer["headers"])
    assert [a["id"] for a in r.json()["items"]] == [account["id"]]
    r = await review(client, account["id"])
    assert r.status_code == 200, r.text
    assert r.json()["review_status"] == "approved"

    # Approval filed it, in the same transaction.
    r = await client.get(f"/admin/v1/public-accounts/{account['id']}", headers=reviewer["headers"])
    filing = r.json()["filing"]
    assert filing["reference"] == f"IMPA-{account['id']:08d}-01"
    assert (filing["category"], filing["operator_name"], filing["credit_code"]) == (
        "enterprise",
        "Example Ltd.",
        CREDIT_CODE,
    )

    assert (await follow(client, stranger, account["id"])).json()["follower_count"] == 1
    r = await post(client, owner, account["id"], title="Spring tea", body="New leaves are in.")
    assert r.status_code == 201, r.text
    ack = r.json()
    assert ack["position"] == 1 and ack["post_id"] > 0 and ack["news_badge"] is None

    r = await client.get(f"/api/v1/public-accounts/{account['id']}", headers=stranger["headers"])
    profile = r.json()
    assert profile["filing_reference"] == filing["reference"]
    assert (profile["status"], profile["news_badge"], profile["follower_count"], profile["following"]) == (
        "approved",
        None,
        1,
        True,
    )
    r = await client.get(f"/api/v1/public-accounts/{account['id']}/posts", headers=stranger["headers"])
    assert [(p["post_id"], p["title"]) for p in r.json()["items"]] == [(ack["post_id"], "Spring tea")]
    views = await server.services.public_accounts.posts_after(stranger["id"], 0, 10)
    assert [(v.post_id, v.position, v.account_name) for v in views] == [(ack["post_id"], 1, "Acme Tea")]
    assert await server.services.public_accounts.latest_position() == 1

    # The register, grouped by category, over the admin API and the CLI.
    compliance = (await ops(client))[Role.COMPLIANCE]
    r = await client.get("/admin/v1/public-accounts/filings", headers=compliance["headers"])
    register_json = r.json()
    assert set(register_json["categories"]) == {c.value for c in AccountCategory}
    assert [f["reference"] for f in register_json["categories"]["enterprise"]] == [filing["reference"]]
    r = await client.get("/admin/v1/public-accounts/filings", headers=reviewer["headers"])
    assert r.status_code == 403
    url, schema = database_url
    cli_settings = settings.model_copy(update={"database_url": url + (f"?search_path={schema}" if schema else "")})
    out = io.StringIO()
    args = argparse.Namespace(format="csv", include_superseded=False, output=None)

    def run_cli() -> int:
        import contextlib

        with contextlib.redirect_stdout(out):
            return cli.cmd_export_filings(args, cli_settings)

    assert await asyncio.to_thread(run_cli) == 0
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["category"], r["reference"], r["account_status"]) for r in rows] == [
        ("enterprise", filing["reference"], "approved")
    ]
    actions = await audit_actions(server.services)
    for action in ("public_account.apply", "public_account.review", "public_account.filings_export"):
        assert action in actions


async def test_rejection_carries_the_reason_and_stores_no_filing(http, db):
    owner = await register(http, verified=True)
    account = (await apply(http, owner)).json()
    r = await review(http, account["id"], "reject", reason="operator entity does not match the credit code")
    assert r.json()["review_status"] == "rejected"
    r = await http.get("/api/v1/public-accounts/mine", headers=owner["headers"])
    (mine,) = r.json()["items"]
    assert (mine["review_status"], mine["review_reason"]) == (
        "rejected",
        "operator entity does not match the credit code",
    )
    r = await review(http, account["id"], "approve")
    assert (r.status_code, code(r)) == (409, "public_account_state")
    compliance = (await ops(http))[Role.COMPLIANCE]
    r = await http.get("/admin/v1/public-accounts/filings", params={"format": "jsonl"}, headers=compliance["headers"])
    assert jsonl(r.text) == []


# -- manual review: impersonating names, the per-user cap ---------------------------------------------


async def test_impersonating_name_goes_to_manual_review(http):
    owner = await register(http, verified=True)
    account = (await apply(http, owner, name="Ministry of Tea Affairs")).json()
    assert account["manual_review"] is True
    assert account["review_flags"] == ["impersonation:government:ministry"]
    r = await review(http, account["id"])
    assert (r.status_code, code(r)) == (409, "review_flags_unacknowledged")
    r = await review(http, account["id"], acknowledge_flags=True)
    assert r.json()["review_status"] == "approved"
    cjk = (await apply(http, owner, name="某某新闻中心")).json()
    assert cjk["review_flags"] == ["impersonation:news:新闻"]


async def test_applications_over_the_cap_are_flagged_not_refused(http):
    owner = await register(http, verified=True)
    flags = [(await apply(http, owner)).json()["review_flags"] for _ in range(CAP + 1)]
    assert flags[:CAP] == [[]] * CAP
    assert flags[CAP] == [f"over_cap:{CAP + 1}/{CAP}"]


def test_impersonation_terms_match_words_not_fragments():
    assert impersonation_flags("Daily Newsletter of Bob") == []  # "news" inside a word is not a claim
    assert impersonation_flags("PLA Veterans Club") == ["impersonation:military:pla"]
    assert impersonation_flags("Ｃｏｍｍｕｎｉｓｔ fans") == ["impersonation:party:communist"]  # full-width folded
    assert impersonation_flags("Tea House") == []


# -- news permission by category (Art. 7 ¶2) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "badge_", "original", "reprint"),
    [
        ("news_unit", "publish", 201, 201),
        ("news_service_licensee", "reprint", "news_reprint_only", 201),
        ("enterprise", None, "news_not_permitted", "news_not_permitted"),
        ("government", None, "news_not_permitted", "news_not_permitted"),
        ("individual", None, "news_not_permitted", "news_not_permitted"),
    ],
)
async def test_news_permission_follows_the_category(http, db, category, badge_, original, reprint):
    owner, account = await approved(http, category)
    assert account["news_badge"] == badge_
    for kind, expected in (("news_original", original), ("news_reprint", reprint), ("ordinary", 201)):
        r = await post(http, owner, account["id"], kind)
        if expected == 201:
            assert r.status_code == 201, (kind, r.text)
            assert r.json()["news_badge"] == badge_
        else:
            assert (r.status_code, code(r), r.json()["check"]) == (403, expected, "news_permission"), kind
    stored = sum(1 for x in (original, reprint, 201) if x == 201)
    assert await count(db, posts, posts.c.account_id == account["id"]) == stored


async def test_an_expired_licence_takes_the_permission_away(http, clock):
    owner, account = await approved(http, "news_unit", licence_expires_at=later(days=1))
    assert (await post(http, owner, account["id"], "news_original")).status_code == 201  # snapshot now cached
    clock.advance(days=1, seconds=1)
    r = await post(http, owner, account["id"], "news_original")
    assert (r.status_code, code(r)) == (403, "news_not_permitted")
    r = await http.get(f"/api/v1/public-accounts/{account['id']}", headers=owner["headers"])
    assert (r.json()["news_badge"], r.json()["news_permission"]) == (None, "none")
    assert (await post(http, owner, account["id"], "ordinary")).status_code == 201


async def test_a_compliance_approval_grants_news_until_it_expires_or_is_revoked(http, clock):
    owner, account = await approved(http, "enterprise")
    compliance = (await ops(http))[Role.COMPLIANCE]
    grant = {"reference": "CAC-2026-017", "scope": "reprint", "expires_at": later(days=10)}
    r = await http.post(
        f"/admin/v1/public-accounts/{account['id']}/news-approvals", json=grant, headers=owner["headers"]
    )
    assert r.status_code == 401  # a user token is no operator's
    reviewer = (await ops(http))[Role.REVIEWER]
    url = f"/admin/v1/public-accounts/{account['id']}/news-approvals"
    assert (await http.post(url, json=grant, headers=reviewer["headers"])).status_code == 403
    r = await http.post(url, json={**grant, "expires_at": later(days=-1)}, headers=compliance["headers"])
    assert (r.status_code, code(r)) == (422, "invalid_news_approval")
    r = await http.post(url, json=grant, headers=compliance["headers"])
    assert r.status_code == 201, r.text
    approval = r.json()
    assert (await post(http, owner, account["id"], "news_reprint")).json()["news_badge"] == "reprint"
    r = await post(http, owner, account["id"], "news_original")
    assert code(r) == "news_reprint_only"

    clock.advance(days=10)  # the approval's expiry: gone on its own
    assert code(await post(http, owner, account["id"], "news_reprint")) == "news_not_permitted"
    del http.pa_ops  # ten idle days ended the operators' sessions: sign in afresh
    compliance = (await ops(http))[Role.COMPLIANCE]

    r = await http.post(url, json={**grant, "expires_at": later(days=20)}, headers=compliance["headers"])
    second = r.json()
    assert (await post(http, owner, account["id"], "news_reprint")).status_code == 201
    r = await http.post(
        f"/admin/v1/news-approvals/{second['approval_id']}/revoke",
        json={"reason": "scope exceeded"},
        headers=compliance["headers"],
    )
    assert r.json()["in_force"] is False
    assert code(await post(http, owner, account["id"], "news_reprint")) == "news_not_permitted"
    assert approval["approval_id"] != second["approval_id"]


def test_news_permission_is_derived_with_the_clock():
    t = NOW
    licensed = NewsFacts(AccountCategory.NEWS_UNIT, t + timedelta(days=2))
    assert news_permission(licensed, t) is NewsPermission.PUBLISH
    assert news_permission(licensed, t + timedelta(days=2)) is NewsPermission.NONE
    unlicensed = NewsFacts(AccountCategory.NEWS_SERVICE_LICENSEE, None)
    assert news_permission(unlicensed, t) is NewsPermission.NONE
    approvals = (
        Approval(NewsPermission.REPRINT, t + timedelta(days=5)),
        Approval(NewsPermission.PUBLISH, t + timedelta(days=9), revoked=True),
    )
    firm = NewsFacts(AccountCategory.ENTERPRISE, None, approvals)
    assert news_permission(firm, t) is NewsPermission.REPRINT
    assert valid_until(firm, t) == t + timedelta(days=5)
    assert valid_until(NewsFacts(AccountCategory.NEWS_UNIT, t + timedelta(days=2), approvals), t) == t + timedelta(
        days=2
    )
    assert [badge(p) for p in NewsPermission] == [None, "reprint", "publish"]


# -- the badge cannot be forged (Art. 7 ¶3) --------------------------------------------------------------


async def test_the_badge_cannot_be_forged(http, db):
    owner = await register(http, verified=True)
    for forged in ({"news_badge": "publish"}, {"news_permission": "publish"}, {"status": "approved"}):
        r = await http.post(
            "/api/v1/public-accounts",
            json={**application("enterprise", name="Forger"), **forged},
            headers=owner["headers"],
        )
        assert (r.status_code, code(r)) == (422, "malformed"), forged
    assert await count(db, public_accounts) == 0

    owner, account = await approved(http, "enterprise", owner=owner)
    r = await http.patch(
        f"/api/v1/public-accounts/{account['id']}", json={"news_badge": "publish"}, headers=owner["headers"]
    )
    assert (r.status_code, code(r)) == (422, "malformed")
    r = await post(http, owner, account["id"], "ordinary", news_badge="publish")
    assert (r.status_code, code(r)) == (422, "malformed")
    r = await post(http, owner, account["id"], "ordinary", account={"news_badge": "publish"})
    assert (r.status_code, code(r)) == (422, "malformed")
    assert await count(db, posts) == 0

    # Every public view carries the derived badge: profile, search, history, the sync view.
    follower = await register(http, verified=True)
    await follow(http, follower, account["id"])
    assert (await post(http, owner, account["id"])).status_code == 201
    _, news = await approved(http, "news_unit", name="Daily Herald Group")
    h = follower["headers"]
    views = [
        (await http.get(f"/api/v1/public-accounts/{account['id']}", headers=h)).json(),
        *(await http.get("/api/v1/public-accounts", params={"q": "account"}, headers=h)).json()["items"],
        (await http.get(f"/api/v1/public-accounts/{account['id']}/posts", headers=h)).json()["items"][0]["account"],
    ]
    assert all("news_badge" in v and v["news_badge"] is None for v in views), views
    r = await http.get("/api/v1/public-accounts", params={"q": "herald"}, headers=h)
    assert [(a["id"], a["news_badge"]) for a in r.json()["items"]] == [(news["id"], "publish")]
    (view,) = await http.services.public_accounts.posts_after(follower["id"], 0, 10)
    assert view.news_badge is None


# -- following, profile, history ------------------------------------------------------------------------------


async def test_follow_unfollow_and_posts_after(http):
    (owner_a, a), (owner_b, b) = await approved(http), await approved(http)
    reader = await register(http, verified=True)
    assert (await follow(http, reader, a["id"])).json() == {
        "account_id": a["id"],
        "following": True,
        "follower_count": 1,
    }
    assert (await follow(http, reader, a["id"])).json()["follower_count"] == 1  # idempotent
    services = http.services.public_accounts
    assert await services.followers(a["id"]) == frozenset({reader["id"]})
    acks = []
    for owner, account in ((owner_a, a), (owner_b, b), (owner_a, a), (owner_b, b)):
        acks.append((await post(http, owner, account["id"])).json())
    assert [x["position"] for x in acks] == [1, 2, 3, 4]  # one stream, gap-free
    views = await services.posts_after(reader["id"], 0, 10)
    assert [v.position for v in views] == [1, 3]  # only the followed account's
    assert [v.position for v in await services.posts_after(reader["id"], 1, 10)] == [3]
    assert [v.position for v in await services.posts_after(reader["id"], 0, 1)] == [1]
    r = await http.get("/api/v1/public-accounts/following", headers=reader["headers"])
    assert [x["id"] for x in r.json()["items"]] == [a["id"]]

    r = await http.delete(f"/api/v1/public-accounts/{a['id']}/follow", headers=reader["headers"])
    assert r.json() == {"account_id": a["id"], "following": False, "follower_count": 0}
    assert await services.followers(a["id"]) == frozenset()
    assert await services.posts_after(reader["id"], 0, 10) == []


async def test_positions_are_gap_free_under_concurrent_posts(http, db):
    owners = [await approved(http) for _ in range(4)]
    results = await asyncio.gather(
        *(post(http, owner, account["id"], title=f"t{i}") for i in range(5) for owner, account in owners)
    )
    positions = sorted(r.json()["position"] for r in results)
    assert positions == list(range(1, 21))
    assert await http.services.public_accounts.latest_position() == 20


@pytest.mark.redis
async def test_follower_sets_are_dropped_on_other_nodes(http, db, clock):
    """A follow committed through one node reaches the follower set another node has cached."""
    _, account = await approved(http)
    reader = await register(http, verified=True)
    prefix = f"imserver-test-{uuid.uuid4().hex[:12]}:"
    nodes = []
    for name in ("node-a", "node-b"):  # two nodes' delivery sides over one real Redis
        broker = RedisBroker(REDIS_URL, channel_prefix=prefix)
        cache = AccountCache(db, clock)
        cluster = Cluster(NoLocalNode(), broker, name, followers=cache.followers)
        effects = AfterCommit(cluster)
        effects.on_invalidate(cache.invalidate)
        await broker.start()
        await cluster.start()
        nodes.append((broker, cluster, effects, cache))
    (_, _, here, _), (_, _, _, there) = nodes
    try:
        assert await there.followers(account["id"]) == frozenset()  # cached on node b
        assert (await follow(http, reader, account["id"])).status_code == 200
        assert await there.followers(account["id"]) == frozenset()  # still the cached set
        await here.apply(Invalidate(Scope.FOLLOWERS, account["id"]))  # node a, after its commit
        for _ in range(500):
            if await there.followers(account["id"]):
                break
            await asyncio.sleep(0.01)
        assert await there.followers(account["id"]) == frozenset({reader["id"]})
    finally:
        for broker, cluster, _, _ in nodes:
            await cluster.stop()
            await broker.close()


# -- changes to a filed account: re-review and re-filing ---------------------------------------------------------


async def test_changes_to_a_filed_account_are_re_reviewed_and_re_filed(http, db):
    owner, account = await approved(http, "enterprise", name="Old Name Tea")
    url = f"/api/v1/public-accounts/{account['id']}"
    r = await http.patch(url, json={"description": "now with coffee"}, headers=owner["headers"])
    assert r.json()["description"] == "now with coffee"  # not a filed fact: applied at once
    assert await count(db, public_account_changes) == 0

    r = await http.patch(url, json={"name": "New Name Tea"}, headers=owner["headers"])
    assert r.status_code == 200 and r.json()["name"] == "Old Name Tea"  # filed facts stay until approved
    r = await http.patch(url, json={"operator_name": "Other Ltd."}, headers=owner["headers"])
    assert (r.status_code, code(r)) == (409, "change_pending")
    r = await http.patch(url, json={"category": "news_unit"}, headers=owner["headers"])
    assert code(r) == "invalid_licence"  # validated whole, as an application is

    reviewer = (await ops(http))[Role.REVIEWER]
    (change,) = (await http.get("/admin/v1/public-accounts/changes", headers=reviewer["headers"])).json()["items"]
    assert (change["account_id"], change["name"]) == (account["id"], "New Name Tea")
    r = await http.post(
        f"/admin/v1/public-accounts/changes/{change['change_id']}/review",
        json={"decision": "approve", "reason": "name change documented"},
        headers=reviewer["headers"],
    )
    assert r.json()["filing_reference"] == f"IMPA-{account['id']:08d}-02"
    r = await http.get(url, headers=owner["headers"])
    assert (r.json()["name"], r.json()["filing_reference"]) == ("New Name Tea", f"IMPA-{account['id']:08d}-02")
    compliance = (await ops(http))[Role.COMPLIANCE]
    r = await http.get(
        "/admin/v1/public-accounts/filings",
        params={"format": "jsonl", "include_superseded": "true"},
        headers=compliance["headers"],
    )
    assert [(x["revision"], x["account_name"], x["filing_status"]) for x in jsonl(r.text)] == [
        (1, "Old Name Tea", "superseded"),
        (2, "New Name Tea", "filed"),
    ]
    r = await http.get("/admin/v1/public-accounts/filings", params={"format": "jsonl"}, headers=compliance["headers"])
    assert [x["revision"] for x in jsonl(r.text)] == [2]


# -- takedown ---------------------------------------------------------------------------------------------------


async def test_takedown_by_owner_and_by_moderator(http, db):
    owner, account = await approved(http)
    reader = await register(http, verified=True)
    await follow(http, reader, account["id"])
    first, second = [(await post(http, owner, account["id"], title=t)).json() for t in ("one", "two")]
    base = f"/api/v1/public-accounts/{account['id']}/posts"
    r = await http.delete(f"{base}/{first['post_id']}", headers=reader["headers"])
    assert (r.status_code, code(r)) == (403, "not_account_owner")
    r = await http.delete(f"{base}/{first['post_id']}", headers=owner["headers"])
    assert r.status_code == 200, r.text
    r = await http.delete(f"{base}/{first['post_id']}", headers=owner["headers"])
    assert (r.status_code, code(r)) == (404, "post_not_found")

    moderator = (await ops(http))[Role.MODERATOR]
    url = f"/admin/v1/posts/{second['post_id']}/takedown"
    reviewer = (await ops(http))[Role.REVIEWER]
    assert (await http.post(url, json={"reason": "rumour"}, headers=reviewer["headers"])).status_code == 403
    r = await http.post(url, json={"reason": "rumour"}, headers=moderator["headers"])
    assert r.status_code == 200, r.text

    assert (await http.get(base, headers=reader["headers"])).json()["items"] == []
    assert await http.services.public_accounts.posts_after(reader["id"], 0, 10) == []
    assert await count(db, posts, posts.c.taken_down_at.is_not(None)) == 2  # kept as the record
    assert (await audit_actions(http.services)).count("post.takedown") == 2


# -- sanctions on accounts (Art. 8) ---------------------------------------------------------------------------------


async def sanction(http, op: dict, account_id: int, kind: str, **extra):
    body = {"subject_kind": "public_account", "subject_id": account_id, "kind": kind, "reason": "test", **extra}
    return await http.post("/admin/v1/sanctions", json=body, headers=op["headers"])


async def test_a_suspended_account_cannot_post(http, db):
    owner, account = await approved(http)
    compliance = (await ops(http))[Role.COMPLIANCE]
    assert (await post(http, owner, account["id"])).status_code == 201
    r = await sanction(http, compliance, account["id"], "suspend_updates", duration_seconds=3600)
    assert r.status_code == 201, r.text
    r = await post(http, owner, account["id"])
    assert (r.status_code, code(r), r.json()["check"]) == (403, "updates_suspended", "sanctions")
    assert await count(db, posts) == 1
    # The owner's other account is not the subject: it still posts.
    _, other = await approved(http, owner=owner)
    assert (await post(http, owner, other["id"])).status_code == 201
    r = await http.post(
        f"/admin/v1/sanctions/{(await sanction_id(http, account['id']))}/lift",
        json={"reason": "resolved"},
        headers=compliance["headers"],
    )
    assert r.status_code == 200, r.text
    assert (await post(http, owner, account["id"])).status_code == 201


async def sanction_id(http, account_id: int) -> int:
    compliance = (await ops(http))[Role.COMPLIANCE]
    r = await http.get(f"/admin/v1/subjects/public_account/{account_id}/sanctions", headers=compliance["headers"])
    return r.json()["sanctions"][-1]["id"]


async def test_close_account_closes_the_public_account(http, db):
    owner, account = await approved(http)
    follower, late = await register(http, verified=True), await register(http, verified=True)
    await follow(http, follower, account["id"])
    o = await ops(http)
    r = await sanction(http, o[Role.COMPLIANCE], account["id"], "close_account")
    assert r.status_code == 201, r.text
    closure = r.json()
    r = await http.post(f"/admin/v1/sanctions/{closure['id']}/confirm", json={}, headers=o["compliance2"]["headers"])
    assert r.status_code == 200, r.text

    r = await http.get(f"/api/v1/public-accounts/{account['id']}", headers=follower["headers"])
    assert (r.status_code, r.json()["status"]) == (200, "closed")
    r = await follow(http, late, account["id"])
    assert (r.status_code, code(r)) == (403, "public_account_closed")
    r = await post(http, owner, account["id"])
    assert (r.status_code, code(r)) == (403, "account_closed")
    assert await count(db, posts) == 0
    # The owner's own account is untouched: still signed in.
    assert (await http.get("/api/v1/public-accounts/mine", headers=owner["headers"])).status_code == 200
    r = await http.get("/api/v1/public-accounts", params={"q": "account"}, headers=late["headers"])
    assert account["id"] not in [a["id"] for a in r.json()["items"]]

    r = await http.post(
        f"/admin/v1/sanctions/{closure['id']}/lift", json={"reason": "reopened"}, headers=o[Role.COMPLIANCE]["headers"]
    )
    assert r.status_code == 200, r.text
    # Lifting a closure takes a second operator's confirmation.
    r = await http.post(f"/admin/v1/sanctions/{closure['id']}/confirm", json={}, headers=o["compliance2"]["headers"])
    assert r.status_code == 200 and r.json()["ended_by"] == "lifted", r.text
    r = await http.get(f"/api/v1/public-accounts/{account['id']}", headers=follower["headers"])
    assert r.json()["status"] == "approved"
    assert (await post(http, owner, account["id"])).status_code == 201


async def test_closing_the_owner_closes_the_public_account(http):
    owner, account = await approved(http)
    reader = await register(http, verified=True)
    o = await ops(http)
    body = {"subject_kind": "user", "subject_id": owner["id"], "kind": "close_account", "reason": "test"}
    r = await http.post("/admin/v1/sanctions", json=body, headers=o[Role.COMPLIANCE]["headers"])
    assert r.status_code == 201, r.text
    r = await http.post(f"/admin/v1/sanctions/{r.json()['id']}/confirm", json={}, headers=o["compliance2"]["headers"])
    assert r.status_code == 200, r.text
    r = await http.get(f"/api/v1/public-accounts/{account['id']}", headers=reader["headers"])
    assert r.json()["status"] == "closed"
    r = await follow(http, reader, account["id"])
    assert (r.status_code, code(r)) == (403, "public_account_closed")
    compliance = o[Role.COMPLIANCE]
    r = await http.get("/admin/v1/public-accounts/filings", params={"format": "jsonl"}, headers=compliance["headers"])
    assert [x["account_status"] for x in jsonl(r.text)] == ["closed"]


# -- bad input: a clear code and nothing stored --------------------------------------------------------------------------


async def test_bad_applications_are_refused_and_store_nothing(http, db):
    unverified = await register(http)
    r = await apply(http, unverified)
    assert (r.status_code, code(r)) == (403, "real_name_unverified")
    owner = await register(http, verified=True)
    cases = [
        ({"credit_code": BAD_CREDIT_CODE}, "enterprise", "invalid_credit_code"),
        ({"credit_code": None}, "enterprise", "invalid_credit_code"),
        ({"operator_name": None}, "government", "invalid_operator"),
        ({"licence_number": None}, "news_unit", "invalid_licence"),
        ({"licence_number": "no!"}, "news_service_licensee", "invalid_licence"),
        ({"licence_expires_at": later(days=-1)}, "news_unit", "invalid_licence"),
        ({"licence_number": LICENCE, "licence_expires_at": later(days=9)}, "enterprise", "invalid_licence"),
        ({}, "broadcaster", "unknown_category"),
        ({"name": "x"}, "individual", "invalid_account_name"),
    ]
    for over, category, expected in cases:
        r = await apply(http, owner, category, **over)
        assert (r.status_code, code(r)) == (422, expected), (over, category, r.text)
    assert await count(db, public_accounts) == 0
    assert (await apply(http, owner, "other", name="Taken Name")).status_code == 201
    r = await apply(http, owner, "individual", name="TAKEN  name")
    assert (r.status_code, code(r)) == (409, "account_name_taken")
    assert await count(db, public_accounts) == 1


async def test_bad_posts_and_follows_are_refused_and_store_nothing(http, db):
    owner = await register(http, verified=True)
    pending = (await apply(http, owner)).json()
    r = await post(http, owner, pending["id"])
    assert (r.status_code, code(r)) == (403, "public_account_unverified")
    stranger = await register(http, verified=True)
    r = await follow(http, stranger, pending["id"])
    assert (r.status_code, code(r)) == (404, "public_account_not_found")

    owner, account = await approved(http, "news_unit")
    no_source = {"kind": "news_reprint", "title": "t", "body": "b"}
    r = await http.post(f"/api/v1/public-accounts/{account['id']}/posts", json=no_source, headers=owner["headers"])
    assert (r.status_code, code(r)) == (422, "reprint_source_missing")
    partial = {**no_source, "source": {"name": "Xinhua", "url": "https://example.org/x"}}
    r = await http.post(f"/api/v1/public-accounts/{account['id']}/posts", json=partial, headers=owner["headers"])
    assert (code(r), r.json()["missing"]) == ("reprint_source_missing", ["author", "title"])
    bad_url = {**no_source, "source": {"name": "n", "url": "javascript:alert(1)", "author": "a", "title": "t"}}
    r = await http.post(f"/api/v1/public-accounts/{account['id']}/posts", json=bad_url, headers=owner["headers"])
    assert code(r) == "reprint_source_missing"
    r = await post(
        http,
        owner,
        account["id"],
        "ordinary",
        source={"name": "n", "url": "https://e.org", "author": "a", "title": "t"},
    )
    assert code(r) == "invalid_post"
    r = await post(http, stranger, account["id"])
    assert (r.status_code, code(r)) == (403, "not_account_owner")
    assert await count(db, posts) == 0


async def test_a_post_matching_a_review_term_is_refused_not_held(http, db):
    owner, account = await approved(http)
    admin = await operator(http, http.services, Role.ADMIN)
    r = await http.post(
        "/admin/v1/terms", json={"term": "contraband", "action": "hold", "list_name": "t"}, headers=admin["headers"]
    )
    assert r.status_code == 201, r.text
    r = await post(http, owner, account["id"], body="selling contraband here")
    assert (r.status_code, code(r)) == (403, "content_review")
    assert await count(db, posts) == 0


# -- live delivery over the WebSocket (the lead's hub) -------------------------------------------------------------------


async def test_online_followers_get_posts_live_and_an_offline_one_catches_up(server, client):
    owner, account = await approved(client, "news_service_licensee")
    followers = [await register(client, verified=True) for _ in range(3)]
    offline = await register(client, verified=True)
    for user in (*followers, offline):
        assert (await follow(client, user, account["id"])).status_code == 200
    conns = [await Client.connect(server.ws_url, u["token"]) for u in followers]
    try:
        ack = (await post(client, owner, account["id"], "news_reprint", title="Live")).json()
        for c in conns:
            frame = await c.next_post()
            assert isinstance(frame, Post)
            assert (frame.post_id, frame.position, frame.title) == (ack["post_id"], ack["position"], "Live")
            assert frame.account == {"id": account["id"], "name": account["name"], "news_badge": "reprint"}
            assert frame.source["author"] == "Li Si"

        r = await client.delete(
            f"/api/v1/public-accounts/{account['id']}/posts/{ack['post_id']}", headers=owner["headers"]
        )
        assert r.status_code == 200
        for c in conns:
            frame = await c.next_post()
            assert isinstance(frame, Tombstone) and frame.post_id == ack["post_id"]

        second = (await post(client, owner, account["id"], title="Second")).json()
        third = (await post(client, owner, account["id"], title="Third")).json()
        late = await Client.connect(server.ws_url, offline["token"])
        conns.append(late)
        await late.sync(posts_after=0)
        got = [await late.next_post(), await late.next_post()]
        assert [(f.post_id, f.position) for f in got] == [
            (second["post_id"], second["position"]),
            (third["post_id"], third["position"]),
        ]  # the taken-down post is not replayed; no gap, no duplicate
        with pytest.raises(asyncio.TimeoutError):
            await late.next_post(timeout=0.3)
    finally:
        for c in conns:
            await c.close()


def test_json_of_a_filing_export_groups_by_category():
    from imserver.services.filing_export import render

    rec = {"reference": "R1", "filed_at": "2026-01-01T00:00:00+00:00", "category": "government"}
    body = json.loads(render([rec], "json", now=NOW).body)
    assert body["count"] == 1 and body["categories"]["government"] == [rec] and body["categories"]["news_unit"] == []
