"""``soak``: a long mixed load at half of peak; does anything grow?

The load, all at once for ``--duration`` seconds, open loop (each send on a
fixed schedule, stamped with its scheduled time):

* chat: ``--pairs`` sender -> receiver pairs of direct messages, 75% of the
  offered rate;
* a group of :data:`GROUP_SIZE` members, :data:`GROUP_SENDERS` of them sending,
  20% of the offered rate counted in deliveries (a message to 10 members is 9);
* posts: the parent posts to a public account every :data:`POST_EVERY_SECONDS`,
  :data:`FOLLOWERS` online followers receive each;
* reconnects: every :data:`RECONNECT_EVERY_SECONDS` one receiver drops its
  connection and reconnects with its inbox cursor in ``auth``: the server
  replays what it missed before anything live;
* sanctions: every :data:`SANCTION_EVERY_SECONDS` a moderator warns a receiver
  (``POST /admin/v1/sanctions``; its ``notice`` frame is counted, not required:
  the receiver may be reconnecting at that moment).

The offered load is ``--rate`` deliveries/s (a direct message is one, a group
message one per other member), or half of imserver's own peak in direct
messages/s, measured first by a short closed-loop ``direct`` run
(:data:`PROBE_SECONDS`).

Every ``--soak-interval`` seconds (60: per minute) the parent reads the
server's RSS, open descriptors and CPU from ``/proc``; per interval it also
reports the p99 of the event-loop lag probe (a ``ping`` every
:data:`PING_EVERY_SECONDS` from the parent's own, otherwise idle, connection:
the server answers it without touching the store, so its round trip is the time
a frame waits in the server's event loop, plus the loopback) and the p99 of
send -> delivery of the messages stamped in it.

Closing figures: whether RSS, descriptors, loop lag p99 and latency p99 are
flat after the warm-up (the first :data:`WARMUP_FRACTION` of the intervals,
at least one), and the receivers' gaps, duplicates and missing messages over
every stream, reconnects included: all must be 0.

Against the relay it is not run: the relay stores nothing, so there is no
resume, no sanction and nothing that could grow.
"""

from __future__ import annotations

import asyncio
import bisect
import random
import secrets
import statistics
from collections import Counter

from .. import procstat, stats
from ..peer import Account, Inbox, Peer, pad, send_frame, stamp, stamp_of, stamped
from ..progress import Progress, note
from ..workers import Link, Pool
from . import direct
from .base import DRAIN_SECONDS, Options, close_all, on_schedule, open_all

WORKER = "imserver.bench.scenarios.soak:worker"
DIRECT_SHARE = 0.75  # of the offered rate: direct messages
GROUP_SHARE = 0.20  # of the offered rate, in deliveries: group messages
GROUP_SIZE = 10  # members of the soak's group
GROUP_SENDERS = 3  # of them sending
FOLLOWERS = 50  # online followers of the soak's public account
POST_EVERY_SECONDS = 5.0  # one post this often
RECONNECT_EVERY_SECONDS = 1.0  # one receiver reconnects (with resume) this often
SANCTION_EVERY_SECONDS = 20.0  # one warning this often
PING_EVERY_SECONDS = 0.1  # the event-loop lag probe's rate: 10 samples/s, negligible load
PROBE_SECONDS = 10.0  # the closed-loop run that finds the peak (shorter for short soaks)
WARMUP_FRACTION = 0.2  # of the intervals: not judged for flatness
# Flat means, between the first interval after the warm-up and the last:
RSS_SLACK = 0.05  # RSS grew by at most 5%...
RSS_SLACK_KIB = 4096  # ...or 4 MiB, whichever is larger (allocator arenas, caches filling)
FD_SLACK = 4  # descriptors: a reconnect or a pooled database connection in flight
P99_SLACK = 1.5  # p99 of the later half of the intervals within 1.5x the earlier half's...
P99_SLACK_MS = 2.0  # ...plus 2 ms (one scheduler tick on a loaded machine)


# -- the worker: every client connection ---------------------------------------------------


async def worker(job: dict, link: Link) -> dict:
    chars = job["body_chars"]
    senders = [Account(*a) for a in job["senders"]]
    receivers = [Account(*a) for a in job["receivers"]]
    members = [Account(*a) for a in job["members"]]
    followers = [Account(*a) for a in job["followers"]]
    n_group_senders = job["group_senders"]
    peers = await open_all(job["url"], senders + receivers + members + followers)
    s_peers = peers[: len(senders)]
    r_peers = peers[len(senders) : len(senders) + len(receivers)]
    m_peers = peers[len(senders) + len(receivers) : len(senders) + len(receivers) + len(members)]
    f_peers = peers[len(peers) - len(followers) :]
    start = await link.barrier("connected") or stamp()
    end = start + int(job["duration"] * 1e9)

    tally: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    sent_at, delivery_ns = stats.samples(), stats.samples()  # per delivery: its send stamp, its latency
    posts_seen: dict[int, set[int]] = {}  # follower index -> post ids
    outstanding = [0]

    async def deliveries(peer: Peer) -> None:
        inbox = peer.inbox
        while True:
            frame = await peer.recv()
            kind = frame["type"]
            if kind == "msg":
                now = stamp()
                inbox.seen(frame["seq"])
                tally["delivered"] += 1
                t = stamp_of(frame["body"])
                sent_at.append(t)
                delivery_ns.append(now - t)
            elif kind == "ack":
                outstanding[0] -= 1
                if frame["status"] != "accepted":
                    rejected[frame.get("reason") or frame["status"]] += 1
                    continue
                tally["accepted_group" if frame["client_msg_id"].endswith("g") else "accepted"] += 1
                link.count += 1
                if frame.get("seq") is not None:
                    inbox.seen(frame["seq"])
            elif kind == "notice":
                tally["notices"] += 1

    async def follower(i: int, peer: Peer) -> None:
        seen = posts_seen.setdefault(i, set())
        while True:
            frame = await peer.recv()
            if frame["type"] == "post":
                if frame["post_id"] in seen:
                    tally["post_duplicates"] += 1
                seen.add(frame["post_id"])

    async def open_loop(peer: Peer, kind: str, to: int, rate: float, suffix: str) -> None:
        async def send(n: int, due: int) -> bool:
            cmid, body = stamped(n, due, chars)
            outstanding[0] += 1
            tally["sent"] += 1
            await peer.send(send_frame(kind, to, cmid + suffix, body))
            return True

        await on_schedule(start, end, rate, send)

    conns = s_peers + r_peers + m_peers  # what reads msg frames; a reconnect replaces its entry
    readers = [asyncio.create_task(deliveries(p)) for p in conns]
    follow_tasks = [asyncio.create_task(follower(i, p)) for i, p in enumerate(f_peers)]

    async def reconnects() -> None:
        """Every few seconds one receiver (a direct one or a non-sending member) resumes."""
        first_member = len(s_peers) + len(r_peers)
        candidates = list(range(len(s_peers), first_member)) + list(range(first_member + n_group_senders, len(conns)))
        rng = random.Random(7)
        every = min(RECONNECT_EVERY_SECONDS, job["duration"] / 4)  # a short run reconnects too
        while stamp() + int(every * 1e9) < end:
            await asyncio.sleep(every)
            i = rng.choice(candidates)
            old = conns[i]
            readers[i].cancel()
            await asyncio.gather(readers[i], return_exceptions=True)
            await old.close()
            conns[i] = await Peer.open(job["url"], old.account, inbox=old.inbox)
            readers[i] = asyncio.create_task(deliveries(conns[i]))
            tally["reconnects"] += 1

    direct_rate = job["direct_rate_per_sender"]
    group_rate = job["group_rate_per_sender"]
    loops = [open_loop(p, "user", r.id, direct_rate, "") for p, r in zip(s_peers, receivers, strict=True)]
    loops += [open_loop(p, "group", job["group_id"], group_rate, "g") for p in m_peers[:n_group_senders]]
    try:
        await asyncio.gather(*loops, reconnects())
        expected = lambda: tally["accepted"] + tally["accepted_group"] * (len(members) - 1)  # noqa: E731
        deadline = stamp() + int(DRAIN_SECONDS * 1e9)
        while stamp() < deadline and (outstanding[0] > 0 or tally["delivered"] < expected()):
            await asyncio.sleep(0.05)
        await link.barrier("drained")  # the parent's last post has reached the followers
    finally:
        for r in readers + follow_tasks:
            r.cancel()
        ended = await asyncio.gather(*readers, *follow_tasks, return_exceptions=True)
        errors = [repr(e)[:200] for e in ended if isinstance(e, Exception)]
        await close_all(conns + f_peers)
    inboxes: list[Inbox] = [p.inbox for p in conns]
    return {
        **tally,
        "expected_deliveries": expected(),
        "rejected": dict(rejected),
        "gaps": sum(i.gaps for i in inboxes),
        "duplicates": sum(i.duplicates for i in inboxes),
        "post_frames": sum(len(s) for s in posts_seen.values()),
        "followers": len(f_peers),
        "sent_at": sent_at,
        "delivery_ns": delivery_ns,
        "connection_errors": errors[:5],
    }


# -- the parent: setup, posts, warnings, the per-interval readings -----------------------


async def _peak(options: Options, target) -> float:
    """imserver's own peak, messages/s: a short closed-loop ``direct`` run."""
    seconds = min(PROBE_SECONDS, max(1.0, options.duration / 10))
    probe = Options(**{**vars(options), "rate": None, "window": 1, "duration": seconds, "warmup": min(1.0, seconds / 4)})
    note(f"soak: finding the peak ({seconds:g} s of closed-loop direct)")
    return (await direct.run(probe, target))["messages_per_s"]


async def _pinger(peer: Peer, lags: list[tuple[int, int]], until: int) -> None:
    """Ping every PING_EVERY_SECONDS; (sent, round trip) in ns for each pong."""

    async def read() -> None:
        while True:
            frame = await peer.recv()
            if frame["type"] == "pong":
                sent = frame["nonce"]
                lags.append((sent, stamp() - sent))

    reader = asyncio.create_task(read())
    try:
        while stamp() < until:
            await peer.ws.send(b'{"type":"ping","nonce":%d}' % stamp(), text=True)
            await asyncio.sleep(PING_EVERY_SECONDS)
        await asyncio.sleep(0.5)  # the last pongs
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def run(options: Options, target) -> dict:
    if target.is_relay:
        return {"mode": "not run against the relay: it stores nothing (no resume, no sanctions, nothing to grow)"}
    peak = None if options.rate else await _peak(options, target)
    rate = options.rate or round(peak / 2)
    pairs = options.pairs
    senders = await target.users(pairs, verified=True)
    receivers = await target.users(pairs, verified=False)
    group_senders = await target.users(GROUP_SENDERS, verified=True)
    others = await target.users(GROUP_SIZE - GROUP_SENDERS, verified=False)
    members = group_senders + others
    group_id = await target.group(members[0], members, "bench soak group")
    owner = (await target.users(1, verified=True))[0]
    followers = await target.users(FOLLOWERS, verified=False)
    account_id = await target.public_account(owner, followers, f"Bench Soak {secrets.token_hex(3)}")
    prober = (await target.users(1, verified=False))[0]
    can_warn = target.provisioner is not None and target.provisioner.moderator is not None
    if not can_warn:
        note("soak: no moderator operator (a server reached by --url): no sanctions")

    job = {
        "url": target.ws_url,
        "senders": [(a.id, a.token) for a in senders],
        "receivers": [(a.id, a.token) for a in receivers],
        "members": [(a.id, a.token) for a in members],
        "followers": [(a.id, a.token) for a in followers],
        "group_senders": GROUP_SENDERS,
        "group_id": group_id,
        "duration": options.duration,
        "body_chars": options.body_chars,
        "direct_rate_per_sender": rate * DIRECT_SHARE / pairs,
        "group_rate_per_sender": rate * GROUP_SHARE / (GROUP_SIZE - 1) / GROUP_SENDERS,
    }
    interval = min(options.soak_interval, options.duration)
    pid = target.pid
    rows: list[dict] = []
    lags: list[tuple[int, int]] = []
    posts = warnings = 0
    prober_peer = await Peer.open(target.ws_url, prober)
    try:
        async with Pool(WORKER, [job], processes=options.workers > 0) as pool:
            await pool.reached("connected")
            start = stamp()
            end = start + int(options.duration * 1e9)
            pool.go("connected", start)
            pinging = asyncio.create_task(_pinger(prober_peer, lags, end))
            rng = random.Random(11)
            bar = Progress("soak imserver", options.duration, enabled=options.progress)
            last = procstat.sample(pid) if pid else None
            last_count, t_row = pool.count, start
            # A short run posts and warns too: the first of each comes early enough.
            next_post = start + int(min(POST_EVERY_SECONDS, options.duration / 4) * 1e9)
            next_warning = start + int(min(SANCTION_EVERY_SECONDS, options.duration / 2) * 1e9)
            while (now := stamp()) < end:
                if now >= next_post:
                    await target.provisioner.post(owner, account_id, f"soak {posts}", pad(f"soak post {posts} ", options.body_chars))
                    posts += 1
                    next_post += int(POST_EVERY_SECONDS * 1e9)
                if can_warn and now >= next_warning:
                    await target.provisioner.warn(rng.choice(receivers).id, "bench soak: a warning now and then")
                    warnings += 1
                    next_warning += int(SANCTION_EVERY_SECONDS * 1e9)
                if now - t_row >= interval * 1e9 or (end - now) < 0.05e9:
                    sample = procstat.sample(pid) if pid else None
                    count = pool.count
                    rows.append(_row(len(rows), t_row, now, sample, last, count - last_count, pid))
                    last, last_count, t_row = sample, count, now
                bar.update((now - start) / 1e9, f"{len(rows)} intervals, {pool.count:,} acks")
                await asyncio.sleep(0.05)
            bar.close()
            await pinging
            # The followers must have every post before the worker stops reading.
            await pool.reached("drained")
            await asyncio.sleep(1.0)
            pool.go("drained")
            results = await pool.results()
    finally:
        await prober_peer.close()
    out = _figures(rows, results[0], lags, rate=rate, posts=posts, warnings=warnings, interval=interval)
    return {"peak_messages_per_s": peak, **out}


def _row(index: int, t0: int, t1: int, sample, last, acks: int, pid: int | None) -> dict:
    seconds = (t1 - t0) / 1e9
    return {
        "interval": index + 1,
        "t0": t0,
        "t1": t1,
        "seconds": round(seconds, 1),
        "rss_mib": round(sample.rss_kib / 1024, 1) if sample else None,
        "open_fds": procstat.open_fds(pid) if pid else None,
        "server_cpu_percent": procstat.cpu_percent(last, sample, seconds),
        "cpu_us_per_message": procstat.cpu_us_per(last, sample, acks),
        "messages_per_s": round(acks / seconds, 1) if seconds else None,
    }


def _p99_by_row(rows: list[dict], stamped_values: list[tuple[int, int]], key: str) -> None:
    """Set ``row[key]``: the p99 (ms) of the values whose stamp falls in the row's interval."""
    ordered = sorted(stamped_values)
    stamps = [t for t, _ in ordered]
    for row in rows:
        lo, hi = bisect.bisect_left(stamps, row["t0"]), bisect.bisect_left(stamps, row["t1"])
        values = stats.samples()
        values.extend(v for _, v in ordered[lo:hi])
        row[key] = stats.summary(values)["p99"]


def _figures(rows: list[dict], result: dict, lags: list[tuple[int, int]], **run: float) -> dict:
    sent_at, delivery_ns = result["sent_at"], result["delivery_ns"]
    _p99_by_row(rows, lags, "loop_lag_p99_ms")
    _p99_by_row(rows, list(zip(sent_at, delivery_ns, strict=True)), "latency_p99_ms")
    expected_posts = run["posts"] * result["followers"]
    missing = max(0, result["expected_deliveries"] - result["delivered"]) + (expected_posts - result["post_frames"])
    all_cpu = [r["cpu_us_per_message"] for r in rows if r["cpu_us_per_message"] is not None]
    out = {
        "offered_load": run["rate"],  # deliveries/s: a direct message is one, a group message 9
        "duration_s": sum(r["seconds"] for r in rows),
        "interval_s": run["interval"],
        "messages": result.get("accepted", 0) + result.get("accepted_group", 0),
        "messages_per_s": round(statistics.mean(r["messages_per_s"] for r in rows), 1) if rows else None,
        "cpu_us_per_message": round(statistics.median(all_cpu), 1) if all_cpu else None,
        "delivery_ms": stats.summary(delivery_ns),
        "delivered": result.get("delivered", 0),
        "posts": run["posts"],
        "post_frames": result["post_frames"],
        "reconnects": result.get("reconnects", 0),
        "sanctions": run["warnings"],
        "notices": result.get("notices", 0),
        "rejected": result["rejected"],
        "gaps": result["gaps"],
        "duplicates": result["duplicates"] + result.get("post_duplicates", 0),
        "missing": missing,
        "intervals": [{k: v for k, v in r.items() if k not in ("t0", "t1")} for r in rows],
        **flatness(rows),
    }
    if result["connection_errors"]:
        out["connection_errors"] = result["connection_errors"]
    return out


def flatness(rows: list[dict]) -> dict:
    """Whether RSS, descriptors, loop lag p99 and latency p99 stayed flat after the warm-up."""
    warm = max(1, round(len(rows) * WARMUP_FRACTION))
    judged = rows[warm:] if len(rows) > warm else rows[-1:]
    verdict: dict = {"warmup_intervals": warm if len(rows) > warm else len(rows) - 1}
    rss = [r["rss_mib"] for r in judged if r["rss_mib"] is not None]
    if rss:
        growth = rss[-1] - rss[0]
        verdict["rss_growth_mib"] = round(growth, 1)
        verdict["rss_flat"] = growth * 1024 <= max(RSS_SLACK * rss[0] * 1024, RSS_SLACK_KIB)
    fds = [r["open_fds"] for r in judged if r["open_fds"] is not None]
    if fds:
        verdict["fd_growth"] = fds[-1] - fds[0]
        verdict["fds_flat"] = fds[-1] - fds[0] <= FD_SLACK
    for key, name in (("loop_lag_p99_ms", "loop_lag"), ("latency_p99_ms", "latency")):
        values = [r[key] for r in judged if r[key] is not None]
        if len(values) >= 2:
            half = len(values) // 2
            early, late = statistics.median(values[:half]), statistics.median(values[half:])
            verdict[f"{name}_p99_early_late_ms"] = [round(early, 2), round(late, 2)]
            verdict[f"{name}_flat"] = late <= early * P99_SLACK + P99_SLACK_MS
    flags = [v for k, v in verdict.items() if k.endswith("_flat")]
    verdict["flat"] = all(flags) if flags else None
    return verdict
