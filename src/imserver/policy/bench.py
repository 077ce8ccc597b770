"""``python -m imserver.policy.bench``: the pipeline's cost per evaluated message.

Builds the full built-in pipeline with generated filter terms (default 10,000:
CJK and Latin, deny and hold), a population of cached user snapshots (some
sanctioned, some with public accounts), and realistic outgoing bodies of about
100 characters (mostly clean; some containing a term, some in full-width or
upper case). It evaluates them in batches and prints µs per evaluation: the
mean, the median and the 99th percentile over batches. Snapshot loading is not
measured: on the hot path snapshots come from the per-node cache.

This prints figures; it asserts nothing (the target, under 20 µs, is read by a
person). Example: ``python -m imserver.policy.bench --messages 200000 --terms 10000``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from ..domain.enums import RealNameStatus, UserStatus
from ..domain.policy_types import (
    AccountCategory,
    FilterAction,
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
from .checks import DEFAULT_ORDER, builtin_checks
from .content_filter import Term, TermList
from .news import news_permission_for
from .pipeline import Pipeline

USERS = 5_000  # distinct senders: spreads rate-limit buckets like a busy node
BODY_CHARS = 100  # a typical chat message
MATCH_SHARE = 0.10  # messages containing a filter term (half deny, half hold)
SEND_RATE = 2_000.0  # messages per simulated second: drives the token buckets
CJK_TERM = (0x4E00, 0x9FA5)  # unified ideographs for terms (3-4 chars: no chance matches)
CJK_TEXT = (0x4E00, 0x4FFF)  # a narrower range for clean text
WORDS = (  # clean chat vocabulary
    *("the", "meeting", "moved", "to", "thursday", "please", "bring", "report", "and", "slides"),
    *("we", "will", "review", "numbers", "for", "quarter", "lunch", "is", "at", "noon", "call"),
    *("me", "when", "you", "land", "thanks", "see", "soon"),
)


def make_terms(n: int, rng: random.Random) -> list[Term]:
    terms: list[Term] = []
    seen: set[str] = set()
    while len(terms) < n:
        if rng.random() < 0.7:
            text = "".join(chr(rng.randint(*CJK_TERM)) for _ in range(rng.randint(3, 4)))
        else:
            text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(7, 10)))
        if text in seen:
            continue
        seen.add(text)
        action = FilterAction.DENY if rng.random() < 0.8 else FilterAction.HOLD
        terms.append(Term(text, action, "bench"))
    return terms


def make_body(rng: random.Random, terms: list[Term]) -> str:
    if rng.random() < 0.5:
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < BODY_CHARS:
            words.append(rng.choice(WORDS))
        body = " ".join(words)
    else:
        body = "".join(chr(rng.randint(*CJK_TEXT)) for _ in range(BODY_CHARS // 2))  # 2 bytes-wide glyphs
    if rng.random() < MATCH_SHARE:
        term = rng.choice(terms).text
        r = rng.random()
        if r < 0.3:
            term = term.upper()
        elif r < 0.5:  # full-width Latin, as an evader would type it
            term = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in term)
        cut = rng.randint(0, len(body))
        body = body[:cut] + term + body[cut:]
    return body


def make_snapshots(rng: random.Random, now: datetime) -> list[PolicySnapshot]:
    snapshots = []
    for uid in range(1, USERS + 1):
        sanctions: tuple[SanctionInForce, ...] = ()
        r = rng.random()
        if r < 0.02:
            sanctions = (SanctionInForce(SanctionKind.RESTRICT_PUBLICATION, uid, now + timedelta(days=7)),)
        elif r < 0.04:
            sanctions = (SanctionInForce(SanctionKind.SUSPEND_UPDATES, uid, now - timedelta(days=1)),)  # expired
        elif r < 0.05:
            sanctions = (SanctionInForce(SanctionKind.WARNING, uid, None),)
        user = UserSnapshot(
            uid,
            UserStatus.ACTIVE if rng.random() > 0.005 else UserStatus.CLOSED,
            RealNameStatus.VERIFIED if rng.random() > 0.01 else RealNameStatus.PENDING,
            3,
            sanctions,
        )
        account = None
        if uid % 10 == 0:
            category = rng.choice(list(AccountCategory))
            account = PublicAccountSnapshot(
                uid, PublicAccountStatus.APPROVED, True, news_permission_for(category), ()
            )
        snapshots.append(PolicySnapshot(user, 3, account))
    return snapshots


def make_outgoing(rng: random.Random, snap: PolicySnapshot, terms: list[Term]) -> Outgoing:
    uid = snap.user.user_id
    body = make_body(rng, terms)
    if snap.public_account is not None and rng.random() < 0.3:
        post_kind = rng.choice([PostKind.ORDINARY, PostKind.ORDINARY, PostKind.NEWS_ORIGINAL, PostKind.NEWS_REPRINT])
        return Outgoing(OutgoingKind.POST, uid, body, post_kind, snap.public_account.account_id)
    kind = OutgoingKind.MESSAGE_DIRECT if rng.random() < 0.65 else OutgoingKind.MESSAGE_GROUP
    return Outgoing(kind, uid, body)


def run(messages: int, n_terms: int, batch: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    terms = make_terms(n_terms, rng)
    t0 = time.perf_counter()
    term_list = TermList.build(terms)
    build_ms = (time.perf_counter() - t0) * 1e3
    pipeline = Pipeline.from_names(DEFAULT_ORDER, builtin_checks(term_list))
    snapshots = make_snapshots(rng, start)
    work = []
    for i in range(messages):
        snap = rng.choice(snapshots)
        work.append((snap, make_outgoing(rng, snap, terms), start + timedelta(seconds=i / SEND_RATE)))

    evaluate = pipeline.evaluate
    per_eval: list[float] = []
    outcomes: Counter[str] = Counter()
    for lo in range(0, messages, batch):
        chunk = work[lo : lo + batch]
        t0 = time.perf_counter_ns()
        for snap, outgoing, now in chunk:
            evaluate(snap, outgoing, now)
        per_eval.append((time.perf_counter_ns() - t0) / 1e3 / len(chunk))
    for snap, outgoing, now in work[: min(messages, 20_000)]:  # outcome mix, outside the timing
        d = pipeline.check("content_filter")(snap, outgoing, now)
        outcomes[d.reason.value if d.reason else "allow"] += 1
    per_eval.sort()
    return {
        "terms": len(term_list),
        "build_ms": build_ms,
        "messages": messages,
        "batches": len(per_eval),
        "mean_us": statistics.fmean(per_eval),
        "p50_us": per_eval[len(per_eval) // 2],
        "p99_us": per_eval[min(len(per_eval) - 1, int(len(per_eval) * 0.99))],
        "filter_mix": dict(outcomes),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m imserver.policy.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--terms", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000, help="evaluations per timed batch")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    r = run(args.messages, args.terms, args.batch, args.seed)
    print(f"filter terms:     {r['terms']} (compiled in {r['build_ms']:.0f} ms)")
    print(f"evaluations:      {r['messages']} in {r['batches']} batches of {args.batch}")
    print(f"µs/evaluation:    mean {r['mean_us']:.2f}  p50 {r['p50_us']:.2f}  p99 {r['p99_us']:.2f}")
    print(f"filter outcomes:  {r['filter_mix']} (first 20,000 messages)")


if __name__ == "__main__":
    main()
