"""The policy package, pure: checks, order, the ladder, news, the filter, rate limits, plugins.

No database and no server: every check is a function of (snapshot, outgoing,
now), so these tests build snapshots by hand and pass the time in.
"""

from __future__ import annotations

import ast
import dataclasses
import random
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from imserver.domain.enums import RealNameStatus, UserStatus
from imserver.domain.errors import Code
from imserver.domain.policy_types import (
    AccountCategory,
    FilterAction,
    NewsPermission,
    Outgoing,
    OutgoingKind,
    PolicySnapshot,
    PostKind,
    PublicAccountSnapshot,
    PublicAccountStatus,
    SanctionInForce,
    SanctionKind,
    UserSnapshot,
)
from imserver.policy import (
    ALLOW,
    DEFAULT_ORDER,
    Decision,
    Outcome,
    Pipeline,
    Rate,
    RateLimits,
    Term,
    TermList,
    builtin_checks,
    load_plugins,
    merge_registries,
)
from imserver.policy.decision import deny
from imserver.policy.news import news_permission_for
from imserver.policy.ratelimit import TokenBuckets

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACCOUNT = 77
AGREEMENT = 4
DIRECT, GROUP, POST = OutgoingKind.MESSAGE_DIRECT, OutgoingKind.MESSAGE_GROUP, OutgoingKind.POST


# -- builders ----------------------------------------------------------------------


def account(**changes) -> PublicAccountSnapshot:
    base = PublicAccountSnapshot(ACCOUNT, PublicAccountStatus.APPROVED, True, NewsPermission.NONE, ())
    return dataclasses.replace(base, **changes)


def snap(*, public_account: PublicAccountSnapshot | None = None, current: int = AGREEMENT, **user) -> PolicySnapshot:
    base = UserSnapshot(1, UserStatus.ACTIVE, RealNameStatus.VERIFIED, AGREEMENT, ())
    return PolicySnapshot(dataclasses.replace(base, **user), current, public_account)


def out(kind: OutgoingKind = DIRECT, body: str = "hello there", post_kind: PostKind | None = None) -> Outgoing:
    if kind is POST:
        return Outgoing(POST, 1, body, post_kind or PostKind.ORDINARY, ACCOUNT)
    return Outgoing(kind, 1, body)


def sanction(kind: SanctionKind, ends_at: datetime | None = None, starts_at: datetime | None = None, sid: int = 9):
    return SanctionInForce(kind, sid, ends_at, starts_at)


TERMS = TermList.build([Term("forbidden", FilterAction.DENY, "law"), Term("rumour", FilterAction.HOLD, "watch")])


def pipeline(terms: TermList = TERMS, limits: RateLimits | None = None, order=DEFAULT_ORDER) -> Pipeline:
    return Pipeline.from_names(order, builtin_checks(terms, limits))


# -- the happy path ------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(OutgoingKind))
def test_a_user_in_good_standing_may_send_everything(kind):
    decision = pipeline().evaluate(snap(public_account=account()), out(kind), NOW)
    assert decision is ALLOW and decision.allowed


def test_the_default_order_is_the_designs():
    assert pipeline().names == (
        "account_open",
        "real_name",
        "agreement",
        "sanctions",
        "public_account",
        "news_permission",
        "content_filter",
        "rate_limit",
    )


# -- each check denies with its reason code and names itself ---------------------------

DENIALS = [
    # (id, snapshot, outgoing, check, code, outcome)
    ("closed", snap(status=UserStatus.CLOSED), out(), "account_open", Code.ACCOUNT_CLOSED, Outcome.DENY),
    ("unverified", snap(real_name_status=RealNameStatus.UNVERIFIED), out(), "real_name", Code.REAL_NAME_UNVERIFIED, Outcome.DENY),
    ("pending", snap(real_name_status=RealNameStatus.PENDING), out(), "real_name", Code.REAL_NAME_UNVERIFIED, Outcome.DENY),
    ("rejected", snap(real_name_status=RealNameStatus.REJECTED), out(), "real_name", Code.REAL_NAME_UNVERIFIED, Outcome.DENY),
    ("never agreed", snap(agreement_version=None), out(), "agreement", Code.AGREEMENT_NOT_ACCEPTED, Outcome.DENY),
    ("old agreement", snap(agreement_version=AGREEMENT - 1), out(), "agreement", Code.AGREEMENT_NOT_ACCEPTED, Outcome.DENY),
    (
        "suspended",
        snap(sanctions=(sanction(SanctionKind.SUSPEND_UPDATES, NOW + timedelta(days=1)),)),
        out(),
        "sanctions",
        Code.UPDATES_SUSPENDED,
        Outcome.DENY,
    ),
    ("post, no account", snap(), out(POST), "public_account", Code.PUBLIC_ACCOUNT_UNVERIFIED, Outcome.DENY),
    (
        "post, pending account",
        snap(public_account=account(status=PublicAccountStatus.PENDING)),
        out(POST),
        "public_account",
        Code.PUBLIC_ACCOUNT_UNVERIFIED,
        Outcome.DENY,
    ),
    (
        "post, rejected account",
        snap(public_account=account(status=PublicAccountStatus.REJECTED)),
        out(POST),
        "public_account",
        Code.PUBLIC_ACCOUNT_UNVERIFIED,
        Outcome.DENY,
    ),
    (
        "post, unfiled account",
        snap(public_account=account(filed=False)),
        out(POST),
        "public_account",
        Code.PUBLIC_ACCOUNT_UNVERIFIED,
        Outcome.DENY,
    ),
    (
        "post as another account",
        snap(public_account=account(account_id=ACCOUNT + 1)),
        out(POST),
        "public_account",
        Code.PUBLIC_ACCOUNT_UNVERIFIED,
        Outcome.DENY,
    ),
    (
        "post, closed account",
        snap(public_account=account(status=PublicAccountStatus.CLOSED)),
        out(POST),
        "public_account",
        Code.ACCOUNT_CLOSED,
        Outcome.DENY,
    ),
    (
        "news without permission",
        snap(public_account=account()),
        out(POST, post_kind=PostKind.NEWS_REPRINT),
        "news_permission",
        Code.NEWS_NOT_PERMITTED,
        Outcome.DENY,
    ),
    ("blocked term", snap(), out(body="this is Forbidden talk"), "content_filter", Code.CONTENT_BLOCKED, Outcome.DENY),
    ("held term", snap(), out(body="a rumour, they say"), "content_filter", Code.CONTENT_REVIEW, Outcome.HOLD),
]


@pytest.mark.parametrize(
    "snapshot, outgoing, check, code, outcome", [d[1:] for d in DENIALS], ids=[d[0] for d in DENIALS]
)
def test_each_check_refuses_with_its_reason_and_names_itself(snapshot, outgoing, check, code, outcome):
    decision = pipeline().evaluate(snapshot, outgoing, NOW)
    assert (decision.outcome, decision.reason, decision.check) == (outcome, code, check)
    assert decision.detail
    # The same check alone decides the same way: the pipeline adds nothing.
    assert builtin_checks(TERMS)[check](snapshot, outgoing, NOW) == decision


def test_a_newer_agreement_than_current_is_fine():
    assert pipeline().evaluate(snap(agreement_version=AGREEMENT + 1), out(), NOW) is ALLOW


def test_the_rate_limit_refuses_with_retry_after():
    p = pipeline(limits=RateLimits(messages=Rate(capacity=2, refill_per_second=0.5)))
    assert p.evaluate(snap(), out(), NOW).allowed
    assert p.evaluate(snap(), out(), NOW).allowed
    decision = p.evaluate(snap(), out(), NOW)
    assert (decision.outcome, decision.reason, decision.check) == (Outcome.DENY, Code.RATE_LIMITED, "rate_limit")
    assert decision.retry_after == pytest.approx(2.0)
    # One token back after 2 s: one more message, then refused again.
    later = NOW + timedelta(seconds=2)
    assert p.evaluate(snap(), out(), later).allowed
    assert p.evaluate(snap(), out(), later).reason is Code.RATE_LIMITED


def test_messages_and_posts_and_users_have_separate_buckets():
    p = pipeline(limits=RateLimits(messages=Rate(1, 0.1), posts=Rate(1, 0.1)))
    with_account = snap(public_account=account())
    assert p.evaluate(with_account, out(), NOW).allowed
    assert p.evaluate(with_account, out(), NOW).reason is Code.RATE_LIMITED
    assert p.evaluate(with_account, out(POST), NOW).allowed  # posts: their own bucket
    assert p.evaluate(snap(user_id=2), out(), NOW).allowed  # another user: their own bucket


# -- order matters ------------------------------------------------------------------------


def test_the_first_refusing_check_decides():
    everything_wrong = snap(
        status=UserStatus.CLOSED, real_name_status=RealNameStatus.UNVERIFIED, agreement_version=None
    )
    decision = pipeline().evaluate(everything_wrong, out(body="forbidden"), NOW)
    assert (decision.reason, decision.check) == (Code.ACCOUNT_CLOSED, "account_open")

    reordered = pipeline(order=("agreement", "real_name", "account_open", "content_filter"))
    decision = reordered.evaluate(everything_wrong, out(body="forbidden"), NOW)
    assert (decision.reason, decision.check) == (Code.AGREEMENT_NOT_ACCEPTED, "agreement")


def test_a_refused_message_spends_no_rate_limit_token():
    p = pipeline(limits=RateLimits(messages=Rate(1, 0.001)))
    assert p.evaluate(snap(), out(body="forbidden"), NOW).reason is Code.CONTENT_BLOCKED
    assert p.evaluate(snap(), out(), NOW).allowed  # the one token is still there


def test_an_unknown_or_repeated_check_name_is_a_configuration_error():
    with pytest.raises(ValueError, match="unknown policy checks"):
        pipeline(order=("account_open", "no_such_check"))
    with pytest.raises(ValueError, match="twice"):
        pipeline(order=("account_open", "account_open"))


# -- the sanction ladder -------------------------------------------------------------------

# What each sanction does to each kind of outgoing, written out independently of ladder.py.
LADDER_EXPECTED = {
    SanctionKind.WARNING: {DIRECT: None, GROUP: None, POST: None},
    SanctionKind.RESTRICT_PUBLICATION: {DIRECT: None, GROUP: None, POST: Code.PUBLICATION_RESTRICTED},
    SanctionKind.SUSPEND_UPDATES: {k: Code.UPDATES_SUSPENDED for k in OutgoingKind},
    SanctionKind.CLOSE_ACCOUNT: {k: Code.ACCOUNT_CLOSED for k in OutgoingKind},
}


@pytest.mark.parametrize("kind", list(OutgoingKind))
@pytest.mark.parametrize("sanction_kind", list(SanctionKind))
def test_each_sanction_forbids_what_the_ladder_says(sanction_kind, kind):
    s = snap(public_account=account(), sanctions=(sanction(sanction_kind, NOW + timedelta(hours=1)),))
    decision = pipeline().evaluate(s, out(kind), NOW)
    expected = LADDER_EXPECTED[sanction_kind][kind]
    if expected is None:
        assert decision is ALLOW
    else:
        assert (decision.outcome, decision.reason, decision.check) == (Outcome.DENY, expected, "sanctions")
        assert "sanction 9" in decision.detail


def test_restricted_publication_limits_group_messages_by_rate_not_direct_ones():
    limits = RateLimits(messages=Rate(100, 1.0), restricted_group=Rate(2, 0.1))
    p = pipeline(limits=limits)
    restricted = snap(sanctions=(sanction(SanctionKind.RESTRICT_PUBLICATION),))
    assert [p.evaluate(restricted, out(GROUP), NOW).reason for _ in range(3)] == [None, None, Code.RATE_LIMITED]
    assert p.evaluate(restricted, out(GROUP), NOW).retry_after == pytest.approx(10.0)
    assert p.evaluate(restricted, out(DIRECT), NOW).allowed
    # Without the sanction the same user's group messages run at the normal rate.
    assert all(p.evaluate(snap(user_id=5), out(GROUP), NOW).allowed for _ in range(10))


def test_the_most_severe_sanction_in_force_is_reported():
    both = (sanction(SanctionKind.RESTRICT_PUBLICATION, sid=1), sanction(SanctionKind.CLOSE_ACCOUNT, sid=2))
    decision = pipeline().evaluate(snap(public_account=account(), sanctions=both), out(POST), NOW)
    assert (decision.reason, decision.detail.split(" (")[0]) == (Code.ACCOUNT_CLOSED, "sanction 2")


def test_a_public_account_sanction_stops_its_posts_not_its_owners_messages():
    restricted = account(sanctions=(sanction(SanctionKind.SUSPEND_UPDATES),))
    assert pipeline().evaluate(snap(public_account=restricted), out(POST), NOW).reason is Code.UPDATES_SUSPENDED
    assert pipeline().evaluate(snap(public_account=restricted), out(DIRECT), NOW) is ALLOW


@pytest.mark.parametrize(
    "ends_at, starts_at, in_force",
    [
        (None, None, True),  # until lifted
        (NOW + timedelta(seconds=1), None, True),
        (NOW, None, False),  # ends_at <= now: over
        (NOW - timedelta(days=1), None, False),
        (None, NOW + timedelta(minutes=5), False),  # not started yet
        (None, NOW, True),
    ],
)
def test_a_sanction_is_in_force_only_between_its_start_and_end(ends_at, starts_at, in_force):
    s = snap(sanctions=(sanction(SanctionKind.SUSPEND_UPDATES, ends_at, starts_at),))
    decision = pipeline().evaluate(s, out(), NOW)
    assert decision.reason is (Code.UPDATES_SUSPENDED if in_force else None)


def test_a_cached_snapshot_expires_its_sanction_as_time_passes():
    s = snap(sanctions=(sanction(SanctionKind.SUSPEND_UPDATES, NOW + timedelta(days=3)),))
    p = pipeline()
    assert p.evaluate(s, out(), NOW + timedelta(days=2, hours=23)).reason is Code.UPDATES_SUSPENDED
    assert p.evaluate(s, out(), NOW + timedelta(days=3)) is ALLOW


# -- news permission (Art. 7 §2) ---------------------------------------------------------------

NEWS_BY_CATEGORY = {
    AccountCategory.NEWS_UNIT: (None, None),  # (original, reprint)
    AccountCategory.NEWS_SERVICE_LICENSEE: (Code.NEWS_REPRINT_ONLY, None),
    **{
        c: (Code.NEWS_NOT_PERMITTED, Code.NEWS_NOT_PERMITTED)
        for c in (
            AccountCategory.GOVERNMENT,
            AccountCategory.ENTERPRISE,
            AccountCategory.PUBLIC_INSTITUTION,
            AccountCategory.PEOPLES_ORGANIZATION,
            AccountCategory.INDIVIDUAL,
            AccountCategory.OTHER,
        )
    },
}


def post_as(permission: NewsPermission, post_kind: PostKind) -> Decision:
    return pipeline().evaluate(snap(public_account=account(news_permission=permission)), out(POST, post_kind=post_kind), NOW)


@pytest.mark.parametrize("category", list(AccountCategory))
def test_news_permission_for_every_category(category):
    assert set(NEWS_BY_CATEGORY) == set(AccountCategory)
    permission = news_permission_for(category)
    original, reprint = NEWS_BY_CATEGORY[category]
    assert post_as(permission, PostKind.NEWS_ORIGINAL).reason is original
    assert post_as(permission, PostKind.NEWS_REPRINT).reason is reprint
    assert post_as(permission, PostKind.ORDINARY) is ALLOW  # ordinary posts need no permission
    if original is not None:
        assert post_as(permission, PostKind.NEWS_ORIGINAL).check == "news_permission"


def test_an_explicit_approval_raises_the_permission_never_lowers_it():
    assert news_permission_for(AccountCategory.ENTERPRISE, NewsPermission.REPRINT) is NewsPermission.REPRINT
    assert news_permission_for(AccountCategory.INDIVIDUAL, NewsPermission.PUBLISH) is NewsPermission.PUBLISH
    assert news_permission_for(AccountCategory.NEWS_UNIT, NewsPermission.NONE) is NewsPermission.PUBLISH
    approved = news_permission_for(AccountCategory.ENTERPRISE, NewsPermission.REPRINT)
    assert post_as(approved, PostKind.NEWS_REPRINT) is ALLOW
    assert post_as(approved, PostKind.NEWS_ORIGINAL).reason is Code.NEWS_REPRINT_ONLY


def test_messages_are_not_subject_to_news_permission():
    marked = Outgoing(GROUP, 1, "breaking", PostKind.NEWS_ORIGINAL, None)
    assert pipeline().evaluate(snap(), marked, NOW) is ALLOW


# -- the content filter --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "term, text",
    [
        ("badword", "say ＢＡＤＷＯＲＤ now"),  # full-width upper case in the text
        ("ＦＯＯＢＡＲ", "a foobar b"),  # full-width in the term
        ("BadWord", "xbadwordx"),  # case, and substring
        ("strasse", "die STRAẞE"),  # casefold, not lower: ẞ -> ss
        ("カタカナ", "ｶﾀｶﾅです"),  # half-width katakana widened
        ("违禁", "他说违禁的事"),  # CJK inside CJK text
        ("１２３", "code 123"),  # full-width digits
    ],
)
def test_the_filter_matches_width_and_case_variants(term, text):
    terms = TermList.build([Term(term, FilterAction.DENY)])
    assert terms.match(text) == Term(term, FilterAction.DENY)
    assert terms.match("nothing to see") is None


def test_deny_wins_over_hold():
    terms = TermList.build([Term("alpha", FilterAction.HOLD), Term("omega", FilterAction.DENY)])
    assert terms.match("alpha then omega").action is FilterAction.DENY
    assert terms.match("alpha only").action is FilterAction.HOLD
    same_term = TermList.build([Term("beta", "hold", "a"), Term("BETA", "deny", "b"), Term("beta", "hold", "c")])
    assert len(same_term) == 1
    assert same_term.match("beta").list_name == "b"


def test_blank_terms_are_skipped_and_an_empty_list_matches_nothing():
    terms = TermList.build([Term("  ", FilterAction.DENY), Term("\u3000", FilterAction.DENY)])  # ideographic space
    assert len(terms) == 0 and terms.match("anything at all") is None


def test_terms_are_not_stripped_inside_their_utf8():
    # U+0105 ends in byte 0x85 and U+0120 in 0xA0, both whitespace to latin-1.
    terms = TermList.build([Term("ą", FilterAction.DENY), Term("Ġ", FilterAction.HOLD)])
    assert len(terms) == 2
    assert terms.match("x ą y").text == "ą" and terms.match("ġ").text == "Ġ"


def test_the_filter_handles_thousands_of_terms():
    rng = random.Random(7)
    words = {"".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(3)) for _ in range(5000)}
    words |= {"".join(rng.choice("abcdefghij") for _ in range(9)) for _ in range(3000)}
    terms = [Term(w, FilterAction.HOLD if i % 5 == 0 else FilterAction.DENY) for i, w in enumerate(sorted(words))]
    compiled = TermList.build(terms)
    assert len(compiled) == len(terms) > 7000
    for term in rng.sample(terms, 200):
        assert compiled.match(f"prefix {term.text.upper()} suffix") == term
    assert compiled.match("the quarterly numbers look fine " * 3) is None


def test_swapping_the_term_list_changes_the_next_decision_and_leaves_the_old_list_alone():
    p = pipeline(terms=TermList.empty())
    assert p.evaluate(snap(), out(body="new slang"), NOW) is ALLOW
    new = TermList.build([Term("slang", FilterAction.HOLD)])
    old = p.check("content_filter").swap(new)
    decision = p.evaluate(snap(), out(body="new slang"), NOW)
    assert (decision.outcome, decision.reason) == (Outcome.HOLD, Code.CONTENT_REVIEW)
    assert "slang" in decision.detail
    assert len(old) == 0 and old.match("new slang") is None


# -- token buckets -------------------------------------------------------------------------------


def test_a_bucket_refills_with_time_and_reports_retry_after():
    b = TokenBuckets(Rate(capacity=2, refill_per_second=1.0))
    assert b.take("u", 0.0) is None and b.take("u", 0.0) is None
    assert b.take("u", 0.0) == pytest.approx(1.0)
    assert b.take("u", 0.25) == pytest.approx(0.75)
    assert b.take("u", 1.0) is None
    assert b.take("u", 1.0) == pytest.approx(1.0)
    assert b.take("u", 100.0) is None and b.take("u", 100.0) is None  # refills to capacity, no more
    assert b.take("u", 100.0) is not None


def test_a_clock_stepping_back_refills_nothing():
    b = TokenBuckets(Rate(capacity=1, refill_per_second=1.0))
    assert b.take("u", 10.0) is None
    assert b.take("u", 5.0) is not None  # backwards: no refill
    assert b.take("u", 10.5) is not None  # the 5 s step back did not reset the clock
    assert b.take("u", 11.0) is None


def test_buckets_stay_bounded_and_idle_full_ones_are_forgotten():
    b = TokenBuckets(Rate(capacity=5, refill_per_second=1.0), max_keys=100)
    for key in range(1000):
        b.take(key, 0.0)
    assert len(b) <= 100
    busy = TokenBuckets(Rate(capacity=5, refill_per_second=1.0))
    for key in range(500):
        busy.take(key, 0.0)
    assert len(busy) == 500  # none full yet: all kept
    for key in range(500, 800):
        busy.take(key, 60.0)  # a minute later the first 500 are full again
    assert len(busy) < 500


def test_a_rate_needs_a_positive_refill_and_a_whole_token():
    with pytest.raises(ValueError):
        Rate(capacity=0.5, refill_per_second=1)
    with pytest.raises(ValueError):
        Rate(capacity=3, refill_per_second=0)


# -- plugins ---------------------------------------------------------------------------------------


class NoLinks:
    """A plugin check as an operator would ship it: refuses links in messages."""

    name = "no_links"

    def __call__(self, snapshot, outgoing, now):
        if "http://" in outgoing.body:
            return deny(self.name, Code.CONTENT_BLOCKED, "links are not allowed")
        return ALLOW


def shout_check(snapshot, outgoing, now):
    return deny("shouting", Code.CONTENT_BLOCKED, "all caps") if outgoing.body.isupper() else ALLOW


def entry_point(name: str, attr: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"{__name__}:{attr}", group="imserver.policy")


def test_a_plugin_check_loads_from_an_entry_point_and_runs_where_configured():
    plugins = load_plugins([entry_point("no_links", "NoLinks"), entry_point("shouting", "shout_check")])
    assert isinstance(plugins["no_links"], NoLinks) and plugins["shouting"].name == "shouting"
    registry = merge_registries(builtin_checks(TERMS), plugins)
    body = "forbidden http://example.com"

    early = list(DEFAULT_ORDER)
    early.insert(early.index("content_filter"), "no_links")
    decision = Pipeline.from_names(early, registry).evaluate(snap(), out(body=body), NOW)
    assert (decision.check, decision.detail) == ("no_links", "links are not allowed")

    late = [*DEFAULT_ORDER, "no_links"]
    decision = Pipeline.from_names(late, merge_registries(builtin_checks(TERMS), plugins)).evaluate(
        snap(), out(body=body), NOW
    )
    assert decision.check == "content_filter"  # the filter, earlier, decides first

    only = Pipeline.from_names(["account_open", "shouting"], registry)
    assert only.evaluate(snap(), out(body="STOP"), NOW).check == "shouting"
    assert only.evaluate(snap(), out(body="stop"), NOW) is ALLOW


def test_a_plugin_may_not_replace_a_builtin_check():
    plugins = load_plugins([entry_point("content_filter", "NoLinks")])
    with pytest.raises(ValueError, match="defined twice"):
        merge_registries(builtin_checks(), plugins)


def test_the_installed_entry_point_group_loads():
    assert isinstance(load_plugins(), dict)  # none installed here; must not fail


# -- purity ------------------------------------------------------------------------------------------

FORBIDDEN_IMPORTS = ("imserver.store", "imserver.gateway", "imserver.services", "fastapi", "sqlalchemy", "asyncio")


def test_the_policy_package_is_pure():
    root = Path(__file__).resolve().parents[1] / "src" / "imserver" / "policy"
    files = sorted(root.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            assert not isinstance(node, ast.AsyncFunctionDef | ast.Await), f"{path.name}: async code"
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            else:
                continue
            for name in names:
                resolved = "imserver." + name.lstrip(".") if name.startswith("..") else name
                assert not resolved.startswith(FORBIDDEN_IMPORTS), f"{path.name} imports {name}"


def test_the_benchmark_runs_and_reports(capsys):
    from imserver.policy import bench

    bench.main(["--messages", "3000", "--terms", "500", "--batch", "500"])
    printed = capsys.readouterr().out
    assert "filter terms:     500" in printed and "µs/evaluation:" in printed
