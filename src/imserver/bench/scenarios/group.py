"""``group``: groups of G members, S of them sending as fast as acks allow.

Every member is connected, so each accepted message is delivered G-1 times
(senders receive the others' messages too). Figures: acknowledged group
messages/s, send->ack, send->delivery over every delivery, deliveries/s, and
the members' gap and duplicate counts.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from .. import procstat, stats
from ..peer import Account, Peer, send_frame, stamp, stamp_of, stamped
from ..workers import Link, Pool, split
from .base import (
    DRAIN_SECONDS,
    Options,
    open_all,
    pool_size,
    stop_readers,
    measured_run,
    stream_figures,
)

WORKER = "imserver.bench.scenarios.group:worker"


async def worker(job: dict, link: Link) -> dict:
    """``job["members"]``: (account id, token, group id, sends?) for each connection."""
    chars = job["body_chars"]
    members = job["members"]
    peers = await open_all(job["url"], [Account(m[0], m[1]) for m in members])
    start = await link.barrier("connected") or stamp()  # the parent's stamp: its CPU window is ours
    measure_from = start + int(job["warmup"] * 1e9)
    end = measure_from + int(job["duration"] * 1e9)
    ack_ns, delivery_ns = stats.samples(), stats.samples()
    rejected: Counter[str] = Counter()
    tally = {"sent": 0, "accepted": 0, "measured": 0, "delivered": 0, "delivered_in_window": 0, "outstanding": 0}

    async def read(peer: Peer, room: asyncio.Semaphore | None) -> None:
        inbox = peer.inbox
        while True:
            frame = await peer.recv()
            kind = frame["type"]
            now = stamp()
            if kind == "msg":
                inbox.seen(frame["seq"])
                tally["delivered"] += 1
                if measure_from <= now < end:
                    tally["delivered_in_window"] += 1
                t = stamp_of(frame["body"])
                if measure_from <= t < end:
                    delivery_ns.append(now - t)
            elif kind == "ack" and room is not None:
                room.release()
                tally["outstanding"] -= 1
                link.count += 1
                if frame["status"] != "accepted":
                    rejected[frame.get("reason") or frame["status"]] += 1
                    continue
                tally["accepted"] += 1
                if frame.get("seq") is not None:
                    inbox.seen(frame["seq"])
                if measure_from <= now < end:
                    tally["measured"] += 1  # acks that arrived in the window: the sustained rate
                t = stamp_of(frame["client_msg_id"])
                if measure_from <= t < end:
                    ack_ns.append(now - t)

    async def send(peer: Peer, group_id: int, room: asyncio.Semaphore) -> None:
        n = 0
        while True:
            await room.acquire()
            t = stamp()
            if t >= end:
                return
            n += 1
            cmid, body = stamped(n, t, chars)
            tally["outstanding"] += 1
            tally["sent"] += 1
            await peer.send(send_frame("group", group_id, cmid, body))

    rooms = [asyncio.Semaphore(job["window"]) if m[3] else None for m in members]
    readers = [asyncio.create_task(read(p, r)) for p, r in zip(peers, rooms, strict=True)]
    try:
        await asyncio.gather(
            *(send(p, m[2], r) for p, m, r in zip(peers, members, rooms, strict=True) if r is not None)
        )
        # Drain the outstanding acks, then give the deliveries a moment to land.
        deadline = stamp() + int(DRAIN_SECONDS * 1e9)
        while stamp() < deadline and tally["outstanding"] > 0 and not any(r.done() for r in readers):
            await asyncio.sleep(0.01)
        settle, last = stamp() + int(DRAIN_SECONDS * 1e9), -1
        while stamp() < settle and tally["delivered"] != last:  # until no delivery for 200 ms
            last = tally["delivered"]
            await asyncio.sleep(0.2)
    finally:
        closed = await stop_readers(readers, peers)
    return {
        **tally,
        "rejected": dict(rejected),
        **stream_figures(peers, closed, ack_ns, delivery_ns),
    }


async def run(options: Options, target) -> dict:
    size, n_senders = options.group_size, min(options.senders, options.group_size)
    connections = []
    for g in range(options.groups):
        senders = await target.users(n_senders, verified=True)
        others = await target.users(size - n_senders, verified=False)
        members = senders + others
        group_id = await target.group(senders[0], members, f"bench group {g + 1}")
        connections += [(a.id, a.token, group_id, i < n_senders) for i, a in enumerate(members)]
    n_jobs, processes = pool_size(options, len(connections))
    jobs = [
        {
            "url": target.ws_url,
            "members": part,
            "duration": options.duration,
            "warmup": options.warmup,
            "window": options.window,
            "body_chars": options.body_chars,
        }
        for part in split(connections, n_jobs)
    ]
    async with Pool(WORKER, jobs, processes=processes) as pool:
        await pool.reached("connected")
        window = await measured_run(pool, "connected", f"group {target.kind}", options, target.pid)
        results = await pool.results()
    rejected: Counter[str] = Counter()
    for r in results:
        rejected.update(r["rejected"])
    delivery = stats.merge(r["delivery_ns"] for r in results)
    measured = sum(r["measured"] for r in results)
    delivered_in_window = sum(r["delivered_in_window"] for r in results)
    out = {
        "groups": options.groups,
        "group_size": size,
        "senders": n_senders,
        "window": options.window,
        "duration_s": options.duration,
        "messages": sum(r["accepted"] for r in results),
        "messages_per_s": round(measured / options.duration, 1),
        "deliveries_per_s": round(delivered_in_window / options.duration, 1),
        "ack_ms": stats.summary(stats.merge(r["ack_ns"] for r in results)),
        "delivery_ms": stats.summary(delivery),
        "delivered": sum(r["delivered"] for r in results),
        "rejected": dict(rejected),
        "gaps": sum(r["gaps"] for r in results),
        "duplicates": sum(r["duplicates"] for r in results),
        **procstat.cpu_figures(
            window.before, window.after, window.seconds, messages=measured, deliveries=delivered_in_window
        ),
        "load_processes": len(results) if processes else 0,
    }
    errors = [e for r in results for e in r["connection_errors"]]
    if errors:
        out["connection_errors"] = errors[:5]
    return out
