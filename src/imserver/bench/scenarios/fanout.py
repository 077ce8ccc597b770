"""``fanout``: one public account, F online followers, P posts one at a time.

1. A verified owner gets an approved ``enterprise`` public account; F users
   (unverified: following and receiving need no real name) follow it, all
   through the public APIs (:meth:`Provisioner.public_account`).
2. The F followers connect as ``idle`` does (``open_all`` in the worker
   processes) and each reads its socket, stamping every ``post`` frame with
   ``time.monotonic_ns()`` the moment it arrives, before parsing it.
3. The owner posts P times, one at a time (``POST .../posts``); the next post
   waits until every follower has the previous one, or a deadline.

Per post: send -> ack (the POST's 201), ack -> the LAST follower's receipt, and
the delivery rate F / (last arrival - first arrival) in frames/s. The monotonic
clock is system-wide on Linux, so the workers' stamps compare with the
parent's. Missing frames (F x P minus the distinct (follower, post) frames
received) and duplicates must both be zero.

Against the relay the owner is a WebSocket "publisher" that sends a ``publish``
frame and gets an ``ack`` (:mod:`..relay`); everything else is the same.
"""

from __future__ import annotations

import asyncio
import secrets

import orjson

from .. import procstat, stats
from ..peer import Account, Peer, pad, stamp
from ..progress import Progress
from ..workers import Link, Pool, split
from .base import Options, all_connected, close_all, open_all, pool_size

WORKER = "imserver.bench.scenarios.fanout:worker"
POST_BASE_SECONDS = 30.0  # a post that has not reached every follower after this, plus:
POST_PER_FOLLOWER_SECONDS = 0.002  # ...this per follower (10,000: 50 s), is given up on
POLL_SECONDS = 0.02  # how often the parent checks whether every follower has the post


async def worker(job: dict, link: Link) -> dict:
    """Connect the followers, stamp every ``post`` frame until the parent says done."""
    peers = await open_all(job["url"], [Account(*a) for a in job["accounts"]])
    arrivals: dict[int, list[int]] = {}  # post_id -> [frames, first ns, last ns]
    duplicates = 0

    async def read(peer: Peer) -> None:
        nonlocal duplicates
        seen: set[int] = set()
        while True:
            data = await peer.ws.recv(decode=False)
            t = stamp()
            frame = orjson.loads(data)
            if frame.get("type") != "post":
                continue
            post_id = frame["post_id"]
            if post_id in seen:
                duplicates += 1
                continue
            seen.add(post_id)
            a = arrivals.get(post_id)
            if a is None:
                arrivals[post_id] = [1, t, t]
            else:
                a[0] += 1
                a[1] = min(a[1], t)
                a[2] = max(a[2], t)
            link.count += 1

    readers = [asyncio.create_task(read(p)) for p in peers]
    try:
        await link.barrier("connected", len(peers))
        await link.barrier("posted")
    finally:
        for r in readers:
            r.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await close_all(peers)
    return {"followers": len(peers), "arrivals": arrivals, "duplicates": duplicates}


class _RelayPublisher:
    """The relay's side of a post: a ``publish`` frame on a WebSocket, answered by an ``ack``."""

    def __init__(self, peer: Peer, account_id: int) -> None:
        self.peer, self.account_id = peer, account_id

    async def post(self, title: str, body: str) -> int:
        frame = {"type": "publish", "id": title, "account": self.account_id, "kind": "ordinary", "title": title, "body": body}
        await self.peer.send(orjson.dumps(frame))
        while (reply := await self.peer.recv())["type"] != "ack":
            pass
        return reply["post_id"]


async def run(options: Options, target) -> dict:
    f, n_posts = options.followers, options.posts
    owner = (await target.users(1, verified=True))[0]
    followers = await target.users(f, verified=False)
    account_id = await target.public_account(owner, followers, f"Bench Fanout {secrets.token_hex(3)}")
    n_jobs, processes = pool_size(options, f)
    jobs = [{"url": target.ws_url, "accounts": part} for part in split([(a.id, a.token) for a in followers], n_jobs)]
    publisher = _RelayPublisher(await Peer.open(target.ws_url, owner), account_id) if target.is_relay else None

    async def post(i: int) -> int:
        title = f"bench fanout {i}"
        body = pad(f"{title} ", options.body_chars)
        if publisher is not None:
            return await publisher.post(title, body)
        return (await target.provisioner.post(owner, account_id, title, body))["post_id"]

    ack_ns, sent_ns, post_ids = stats.samples(), [], []
    timeout = POST_BASE_SECONDS + POST_PER_FOLLOWER_SECONDS * f
    timed_out = 0
    try:
        async with Pool(WORKER, jobs, processes=processes) as pool:
            connected = await all_connected(pool, f"fanout {target.kind} connect", f, "followers connected", options)
            pool.go("connected")
            before = procstat.sample(target.pid) if target.pid else None
            t_start = stamp()
            bar = Progress(f"fanout {target.kind}", n_posts, unit="", enabled=options.progress)
            for i in range(n_posts):
                t0 = stamp()
                post_ids.append(await post(i))
                sent_ns.append(t0)
                ack_ns.append(stamp())
                # Wait until every follower has it (the count is reported every 0.25 s).
                deadline = stamp() + int(timeout * 1e9)
                while pool.count < connected * (i + 1) and stamp() < deadline:
                    await asyncio.sleep(POLL_SECONDS)
                timed_out += pool.count < connected * (i + 1)
                bar.update(i + 1, "posts delivered")
            bar.close()
            elapsed_s = (stamp() - t_start) / 1e9
            after = procstat.sample(target.pid) if target.pid else None
            await pool.reached("posted")
            pool.go("posted")
            results = await pool.results()
    finally:
        if publisher is not None:
            await publisher.peer.close()
    out = _figures(f, connected, post_ids, sent_ns, ack_ns, results)
    # Per message is per post (one HTTP request and F frames); per delivery, per frame.
    return out | {
        "posts_timed_out": timed_out,
        **procstat.cpu_figures(before, after, elapsed_s, messages=len(post_ids), deliveries=out["frames"]),
        "load_processes": len(results) if processes else 0,
    }


def _figures(f: int, connected: int, post_ids: list[int], sent_ns: list[int], ack_ns, results: list[dict]) -> dict:
    """Per post: ack -> last follower and frames/s; over posts: p50 and max (min for the rate)."""
    to_last, to_ack, sent_to_last = stats.samples(), stats.samples(), stats.samples()
    rates: list[float] = []
    received = 0
    for post_id, t_sent, t_ack in zip(post_ids, sent_ns, ack_ns, strict=True):
        parts = [r["arrivals"][post_id] for r in results if post_id in r["arrivals"]]
        n = sum(p[0] for p in parts)
        received += n
        to_ack.append(t_ack - t_sent)
        if not parts:
            continue
        first, last = min(p[1] for p in parts), max(p[2] for p in parts)
        to_last.append(last - t_ack)  # negative: every follower had it before the ack came back
        sent_to_last.append(last - t_sent)
        if last > first:
            rates.append(n / ((last - first) / 1e9))
    rates.sort()
    ack_s, last_s, whole_s = stats.summary(to_ack), stats.summary(to_last), stats.summary(sent_to_last)
    return {
        "followers": f,
        "connections": connected,
        "posts": len(post_ids),
        "post_ack_ms": {"p50": ack_s["p50"], "max": ack_s["max"]},
        "ack_to_last_ms": {"p50": last_s["p50"], "max": last_s["max"]},
        "post_to_last_ms": {"p50": whole_s["p50"], "max": whole_s["max"]},
        # The median post's rate (and the slowest post's): first -> last arrival.
        "frames_per_s": round(rates[len(rates) // 2]) if rates else None,
        "frames_per_s_min": round(rates[0]) if rates else None,
        "frames": received,
        "missing": f * len(post_ids) - received,
        "duplicates": sum(r["duplicates"] for r in results),
    }
