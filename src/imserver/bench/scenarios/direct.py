"""``direct``: N sender -> receiver pairs of one-to-one messages.

Closed loop (default): each sender keeps ``window`` sends in flight and sends
the next as soon as an ack comes back ("as fast as acks allow"). Open loop
(``rate``): each sender sends on a fixed schedule, rate/N per second, whatever
the acks do. In the open loop a message's stamp is its *scheduled* time, so a
server that falls behind shows it in the latencies instead of slowing the load
down (no coordinated omission).

Figures: acknowledged messages/s (accepted acks that arrived in the measured
window, after the warm-up: what the server sustained, not what it caught up on
afterwards), send->ack at the sender, send->delivery at the receiver
against the stamp in the body, and the receivers' gap and duplicate counts.
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
    Window,
    open_all,
    pool_size,
    stop_readers,
    measured_run,
    on_schedule,
    stream_figures,
)

WORKER = "imserver.bench.scenarios.direct:worker"
# Open loop: a sender this many sends behind its acks stops (the server is
# overloaded; the figures say so) rather than queueing without bound.
MAX_OUTSTANDING = 5000


class _Tally:
    """One worker's counters (a plain object: cheaper than a dict on the hot path)."""

    __slots__ = ("accepted", "delivered", "measured", "overloaded", "sent")  # measured: acks in the window

    def __init__(self) -> None:
        self.sent = 0
        self.accepted = 0
        self.measured = 0  # accepted acks that arrived in the measured window
        self.delivered = 0
        self.overloaded = False


async def worker(job: dict, link: Link) -> dict:
    chars = job["body_chars"]
    senders = [Account(*p[0]) for p in job["pairs"]]
    receivers = [Account(*p[1]) for p in job["pairs"]]
    peers = await open_all(job["url"], senders + receivers)
    out_peers, in_peers = peers[: len(senders)], peers[len(senders) :]
    start = await link.barrier("connected") or stamp()  # the parent's stamp: its CPU window is ours
    measure_from = start + int(job["warmup"] * 1e9)
    end = measure_from + int(job["duration"] * 1e9)
    tally = _Tally()
    ack_ns, delivery_ns = stats.samples(), stats.samples()
    rejected: Counter[str] = Counter()
    rate = job["rate_per_sender"]

    async def acks(peer: Peer, room: asyncio.Semaphore, outstanding: list[int]) -> None:
        inbox = peer.inbox
        while True:
            frame = await peer.recv()
            if frame["type"] != "ack":
                continue
            now = stamp()
            room.release()
            outstanding[0] -= 1
            link.count += 1
            if frame["status"] != "accepted":
                rejected[frame.get("reason") or frame["status"]] += 1
                continue
            tally.accepted += 1
            if frame.get("seq") is not None:
                inbox.seen(frame["seq"])
            if measure_from <= now < end:
                tally.measured += 1  # acks that arrived in the window: the sustained rate
            t = stamp_of(frame["client_msg_id"])
            if measure_from <= t < end:
                ack_ns.append(now - t)  # every send stamped in the window, however late its ack

    async def closed_loop(peer: Peer, to: int, room: asyncio.Semaphore, outstanding: list[int]) -> None:
        n = 0
        while True:
            await room.acquire()
            t = stamp()
            if t >= end:
                return
            n += 1
            cmid, body = stamped(n, t, chars)
            outstanding[0] += 1
            tally.sent += 1
            await peer.send(send_frame("user", to, cmid, body))

    async def open_loop(peer: Peer, to: int, room: asyncio.Semaphore, outstanding: list[int]) -> None:
        async def send(n: int, due: int) -> bool:
            if outstanding[0] >= MAX_OUTSTANDING:
                tally.overloaded = True
                return False
            cmid, body = stamped(n, due, chars)  # the scheduled time: lateness counts
            outstanding[0] += 1
            tally.sent += 1
            await peer.send(send_frame("user", to, cmid, body))
            return True

        await on_schedule(start, end, rate, send)

    async def deliveries(peer: Peer) -> None:
        inbox = peer.inbox
        while True:
            frame = await peer.recv()
            if frame["type"] != "msg":
                continue
            now = stamp()
            inbox.seen(frame["seq"])
            tally.delivered += 1
            t = stamp_of(frame["body"])
            if measure_from <= t < end:
                delivery_ns.append(now - t)

    outstanding = [[0] for _ in out_peers]
    # Closed loop: `window` sends in flight. Open loop: the semaphore only counts.
    rooms = [asyncio.Semaphore(job["window"] if rate is None else 10**9) for _ in out_peers]
    loop_fn = closed_loop if rate is None else open_loop
    readers = [asyncio.create_task(acks(p, r, o)) for p, r, o in zip(out_peers, rooms, outstanding, strict=True)]
    readers += [asyncio.create_task(deliveries(p)) for p in in_peers]
    try:
        await asyncio.gather(
            *(loop_fn(p, to.id, r, o) for p, to, r, o in zip(out_peers, receivers, rooms, outstanding, strict=True))
        )
        # Drain: outstanding acks, then the deliveries of what was accepted.
        deadline = stamp() + int(DRAIN_SECONDS * 1e9)
        while stamp() < deadline and (
            any(o[0] > 0 for o in outstanding) or tally.delivered < tally.accepted
        ):
            if any(r.done() for r in readers):
                break  # a connection closed: report what arrived
            await asyncio.sleep(0.01)
    finally:
        closed = await stop_readers(readers, peers)
    return {
        "sent": tally.sent,
        "accepted": tally.accepted,
        "measured": tally.measured,
        "delivered": tally.delivered,
        "rejected": dict(rejected),
        "unanswered": sum(o[0] for o in outstanding),
        "overloaded": tally.overloaded,
        **stream_figures(peers, closed, ack_ns, delivery_ns),
    }


async def run(options: Options, target) -> dict:
    """Run ``direct`` against ``target``; returns its figures."""
    senders = await target.users(options.pairs, verified=True)
    receivers = await target.users(options.pairs, verified=False)
    pairs = [((s.id, s.token), (r.id, r.token)) for s, r in zip(senders, receivers, strict=True)]
    n_jobs, processes = pool_size(options, options.pairs)
    rate_per_sender = options.rate / options.pairs if options.rate else None
    jobs = [
        {
            "url": target.ws_url,
            "pairs": part,
            "duration": options.duration,
            "warmup": options.warmup,
            "window": options.window,
            "rate_per_sender": rate_per_sender,
            "body_chars": options.body_chars,
        }
        for part in split(pairs, n_jobs)
    ]
    label = f"direct {target.kind}" + (f" @{options.rate:,.0f}/s" if options.rate else "")
    async with Pool(WORKER, jobs, processes=processes) as pool:
        await pool.reached("connected")
        window = await measured_run(pool, "connected", label, options, target.pid)
        results = await pool.results()
    return figures(results, options, window)


def figures(results: list[dict], options: Options, window: Window) -> dict:
    rejected: Counter[str] = Counter()
    for r in results:
        rejected.update(r["rejected"])
    measured = sum(r["measured"] for r in results)
    out = {
        "pairs": options.pairs,
        "window": options.window if options.rate is None else None,
        "offered_rate": options.rate,
        "duration_s": options.duration,
        "messages": sum(r["accepted"] for r in results),
        "messages_per_s": round(measured / options.duration, 1),
        "ack_ms": stats.summary(stats.merge(r["ack_ns"] for r in results)),
        "delivery_ms": stats.summary(stats.merge(r["delivery_ns"] for r in results)),
        "delivered": sum(r["delivered"] for r in results),
        "rejected": dict(rejected),
        "unanswered": sum(r["unanswered"] for r in results),
        "gaps": sum(r["gaps"] for r in results),
        "duplicates": sum(r["duplicates"] for r in results),
        **procstat.cpu_figures(window.before, window.after, window.seconds, messages=measured),
        "load_processes": len(results) if options.workers > 0 else 0,
    }
    if any(r["overloaded"] for r in results):
        out["overloaded"] = f"a sender fell {MAX_OUTSTANDING} acks behind the offered rate and stopped"
    errors = [e for r in results for e in r["connection_errors"]]
    if errors:
        out["connection_errors"] = errors[:5]
    return out
