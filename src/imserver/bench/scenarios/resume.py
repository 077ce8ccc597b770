"""``resume``: R clients disconnect, messages pile up, all reconnect at once.

1. R receivers connect, note their cursor (``hello.inbox_seq``) and disconnect.
2. S verified senders (in the bench process) send M messages to each receiver
   and wait for every ack: R x M messages pile up in the store.
3. All R reconnect at the same moment and ``sync`` from their cursor, while
   the senders send L more messages to each (live, during the replay: the
   replay -> live handover is what can lose or repeat a message).
4. A receiver has caught up when its inbox cursor is at cursor + M + L and its
   ``synced`` arrived. Before ``synced``, a ``msg`` that skips ahead of the
   cursor was sent live between ``hello`` and the server taking the ``sync``
   (protocol v1 has no cursor in ``auth``); the replay sends it again in its
   place, so it is dropped and counted as an early live frame, not a gap. Figures: time from the reconnect until the last (and the
   median) receiver caught up, and the gaps and duplicates over every received
   ``msg``, by seq and by message id. Both must be zero.

Against the relay, which stores nothing, only the reconnect storm is measured
(M = L = 0: time until every client has its ``hello``); that is the floor a
resume cannot beat.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from .. import procstat, stats
from ..peer import Account, Peer, send_frame, stamp
from ..progress import Progress
from ..workers import Link, Pool, split
from .base import Options, close_all, open_all, pool_size

WORKER = "imserver.bench.scenarios.resume:worker"
LIVE_PER_CLIENT = 1  # L: messages sent to each client while it reconnects
PILE_WINDOW = 64  # sends in flight per sender while piling up: fast without flooding
CATCH_UP_BASE_SECONDS = 60.0  # give up on catching up after this, plus:
CATCH_UP_PER_CLIENT_SECONDS = 0.05  # ...this per client (1,000 clients: 110 s)


async def worker(job: dict, link: Link) -> dict:
    accounts = [Account(*a) for a in job["accounts"]]
    peers = await open_all(job["url"], accounts)
    cursors = [p.inbox.cursor for p in peers]
    await link.barrier("connected")
    await close_all(peers)
    started = await link.barrier("disconnected")  # the parent's stamp of the reconnect
    expect, replay = job["expect"], job["replay"]
    done_ns = stats.samples()
    gaps = duplicates = incomplete = early = 0
    errors: list[str] = []

    async def catch_up(account: Account, cursor: int) -> None:
        nonlocal gaps, duplicates, early
        peer = await Peer.open(job["url"], account)
        try:
            if replay:
                await peer.sync(cursor)
            else:
                cursor = peer.inbox.cursor
            goal, synced = cursor + expect, not replay
            ids: set[int] = set()
            while peer.inbox.cursor < goal or not synced:
                frame = await peer.recv()
                if frame["type"] == "msg":
                    seq = frame["seq"]
                    if not synced and seq > peer.inbox.cursor + 1:
                        # Sent live between hello and the server taking our sync:
                        # the replay from `cursor` sends it again, in its place.
                        early += 1
                        continue
                    peer.inbox.seen(seq)
                    if frame["message_id"] in ids:
                        duplicates += 1
                    ids.add(frame["message_id"])
                elif frame["type"] == "synced":
                    synced = True
            done_ns.append(stamp() - started)
            link.count += 1
        finally:
            gaps += peer.inbox.gaps
            duplicates += peer.inbox.duplicates
            await peer.close()

    async def bounded(account: Account, cursor: int) -> None:
        nonlocal incomplete
        try:
            await asyncio.wait_for(catch_up(account, cursor), job["timeout"])
        except Exception as exc:  # noqa: BLE001 - counted and reported, the others go on
            incomplete += 1
            errors.append(repr(exc)[:200])

    # All at once: no connect concurrency limit here, that is the point.
    await asyncio.gather(*(bounded(a, c) for a, c in zip(accounts, cursors, strict=True)))
    return {
        "clients": len(accounts),
        "done_ns": done_ns,
        "gaps": gaps,
        "duplicates": duplicates,
        "incomplete": incomplete,
        "early_live_frames": early,
        "errors": errors[:5],
    }


async def _send_all(senders: list[Peer], targets: list[int], label: str, options: Options) -> Counter[str]:
    """Send one message to each of ``targets`` (spread over the senders) and await every ack."""
    outcome: Counter[str] = Counter()
    bar = Progress(label, len(targets), unit="", enabled=options.progress)

    async def one_sender(peer: Peer, tos: list[int]) -> None:
        room = asyncio.Semaphore(PILE_WINDOW)
        answered = 0

        async def acks() -> None:
            nonlocal answered
            while answered < len(tos):
                frame = await peer.recv()
                if frame["type"] == "ack":
                    answered += 1
                    room.release()
                    outcome[frame["status"] if frame["status"] != "rejected" else f"rejected:{frame.get('reason')}"] += 1
                    bar.update(sum(outcome.values()), "acks")

        reader = asyncio.create_task(acks())
        for n, to in enumerate(tos):
            await room.acquire()
            cmid = f"{stamp()}:{n}"
            await peer.send(send_frame("user", to, cmid, f"{cmid} resume".ljust(options.body_chars, ".")))
        await reader

    await asyncio.gather(*(one_sender(p, targets[i :: len(senders)]) for i, p in enumerate(senders)))
    bar.close()
    return outcome


async def run(options: Options, target) -> dict:
    r = options.resume_clients
    relay = target.is_relay
    pile, live = (0, 0) if relay else (options.resume_messages, LIVE_PER_CLIENT)
    receivers = await target.users(r, verified=False)
    senders = [] if relay else await target.users(min(options.senders, r), verified=True)
    n_jobs, processes = pool_size(options, r)
    timeout = CATCH_UP_BASE_SECONDS + CATCH_UP_PER_CLIENT_SECONDS * r
    jobs = [
        {"url": target.ws_url, "accounts": part, "expect": pile + live, "replay": not relay, "timeout": timeout}
        for part in split([(a.id, a.token) for a in receivers], n_jobs)
    ]
    send_peers = await open_all(target.ws_url, senders)
    try:
        async with Pool(WORKER, jobs, processes=processes) as pool:
            await pool.reached("connected")
            pool.go("connected")
            await pool.reached("disconnected")
            ids = [a.id for a in receivers]
            piled = await _send_all(send_peers, ids * pile, f"resume {target.kind} pile-up", options) if pile else Counter()
            before = procstat.sample(target.pid) if target.pid else None
            started = stamp()
            pool.go("disconnected", started)
            sent_live = await _send_all(send_peers, ids * live, f"resume {target.kind} live", options) if live else Counter()
            bar = Progress(f"resume {target.kind} catch-up", r, unit="", enabled=options.progress)
            waiting = asyncio.create_task(pool.results(timeout + 30))
            while not waiting.done():
                bar.update(pool.count, "clients caught up")
                await asyncio.sleep(0.25)
            bar.close()
            results = await waiting
            elapsed_s = (stamp() - started) / 1e9
            after = procstat.sample(target.pid) if target.pid else None
    finally:
        await close_all(send_peers)
    done = stats.merge(x["done_ns"] for x in results)
    summary = stats.summary(done)
    outcome = piled + sent_live
    return {
        "clients": r,
        "messages_per_client": pile + live,
        "piled_up": pile * r,
        "live_during_reconnect": live * r,
        "messages": sum(v for k, v in outcome.items() if k == "accepted"),
        "rejected": {k: v for k, v in outcome.items() if k != "accepted"},
        "caught_up": len(done),
        "incomplete": sum(x["incomplete"] for x in results),
        "catch_up_s": round(summary["max"] / 1000, 3) if summary["max"] is not None else None,
        "catch_up_p50_s": round(summary["p50"] / 1000, 3) if summary["p50"] is not None else None,
        "gaps": sum(x["gaps"] for x in results),
        "duplicates": sum(x["duplicates"] for x in results),
        "early_live_frames": sum(x["early_live_frames"] for x in results),
        # From the reconnect until every client caught up: per message replayed or
        # sent live (none against the relay), and per reconnecting client.
        **procstat.cpu_figures(before, after, elapsed_s, messages=(pile + live) * len(done)),
        "cpu_us_per_client": procstat.cpu_us_per(before, after, r),
        "load_processes": len(results) if processes else 0,
        **({"errors": [e for x in results for e in x["errors"]][:5]} if any(x["errors"] for x in results) else {}),
        **({"mode": "reconnect storm only (the relay stores nothing)"} if relay else {}),
    }
