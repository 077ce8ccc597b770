"""``idle``: C authenticated connections that send nothing.

The server's resident memory is read from ``/proc/<pid>/status`` after the
accounts exist and before any connection opens, then again once all C are
authenticated and have settled; the difference over C is the memory per
connection. CPU while idle is the server's CPU time over the idle window (its
WebSocket keepalive pings are part of it). Both need the server's pid: the bench
has it when it started the server, with ``--url`` only if given ``--server-pid``.
"""

from __future__ import annotations

import asyncio
import time

from .. import procstat
from ..peer import Account
from ..progress import Progress, note
from ..workers import Link, Pool, split
from .base import Options, all_connected, close_all, open_all, pool_size

WORKER = "imserver.bench.scenarios.idle:worker"
SETTLE_SECONDS = 2.0  # after the last connect: let allocations and the GC settle before reading RSS


async def worker(job: dict, link: Link) -> dict:
    peers = await open_all(job["url"], [Account(*a) for a in job["accounts"]])
    link.count = len(peers)
    await link.barrier("connected", len(peers))
    try:
        closed = sum(1 for p in peers if p.ws.state.name != "OPEN")  # dropped while idle
    finally:
        await close_all(peers)
    return {"connections": len(peers), "closed_while_idle": closed}


async def run(options: Options, target) -> dict:
    n = options.connections
    n_users = min(options.idle_users or n, n)
    users = await target.users(n_users, verified=False)
    accounts = [(users[i % n_users].id, users[i % n_users].token) for i in range(n)]
    pid = target.pid
    base = procstat.sample(pid) if pid else None
    n_jobs, processes = pool_size(options, n)
    jobs = [{"url": target.ws_url, "accounts": part} for part in split(accounts, n_jobs)]
    t_connect = time.monotonic()
    async with Pool(WORKER, jobs, processes=processes) as pool:
        opened = await all_connected(pool, f"idle {target.kind} connect", n, "connections", options)
        connect_s = time.monotonic() - t_connect
        await asyncio.sleep(SETTLE_SECONDS)
        loaded = procstat.sample(pid) if pid else None
        t0 = time.monotonic()
        bar = Progress(f"idle {target.kind}", options.duration, enabled=options.progress)
        while (elapsed := time.monotonic() - t0) < options.duration:
            bar.update(elapsed, f"{opened:,} connections idle")
            await asyncio.sleep(0.25)
        bar.close()
        idle_s = time.monotonic() - t0
        after = procstat.sample(pid) if pid else None
        pool.go("connected")
        results = await pool.results()
    out: dict = {
        "connections": opened,
        "users": n_users,
        "connect_s": round(connect_s, 2),
        "idle_s": round(idle_s, 2),
        "closed_while_idle": sum(r["closed_while_idle"] for r in results),
        "load_processes": len(results) if processes else 0,
    }
    if base is None or loaded is None or after is None:
        why = "no server pid: give --server-pid with --url" if not pid else f"/proc/{pid} unreadable"
        note(f"idle: server RSS and CPU unavailable ({why})")
        out.update(
            rss_kib_before=None, rss_kib_after=None, rss_kib_per_connection=None, idle_cpu_percent=None,
            cpu_us_per_connection_s=None,
        )
        out["unavailable"] = why
        return out
    out.update(
        rss_kib_before=base.rss_kib,
        rss_kib_after=loaded.rss_kib,
        rss_kib_per_connection=round((loaded.rss_kib - base.rss_kib) / max(opened, 1), 2),
        idle_cpu_percent=procstat.cpu_percent(loaded, after, idle_s),
        # No messages here: the keepalive cost of one connection for one second.
        cpu_us_per_connection_s=procstat.cpu_us_per(loaded, after, opened * idle_s),
    )
    return out
