"""What every scenario shares: its options, connecting many peers, watching a timed run.

A scenario module has ``async def run(options, target) -> dict`` (the figures,
JSON-ready) and, for its load, a worker coroutine handed to
:class:`~imserver.bench.workers.Pool`. Figures use the same names in every
scenario (``messages_per_s``, ``ack_ms``, ``delivery_ms``...), so the report can
set each beside the relay's and compute the ratio.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .. import procstat
from ..peer import Account, Peer, stamp
from ..progress import Progress
from ..workers import Pool

# Connections opened at once by one process: a storm of thousands would only
# overflow the listen backlog and time out; this many keeps the server busy.
CONNECT_CONCURRENCY = 200
# After the load stops, how long to wait for outstanding acks and deliveries.
DRAIN_SECONDS = 10.0


@dataclass
class Options:
    """The scenario-relevant options of ``imserver bench`` (see cli.py for their help)."""

    duration: float = 10.0
    warmup: float = 1.0
    rate: float | None = None  # direct: a fixed offered rate, messages/s in total
    window: int = 1  # sends in flight per sender (1: the next send waits for the ack)
    pairs: int = 50
    group_size: int = 51
    senders: int = 8
    groups: int = 1
    connections: int = 1000
    idle_users: int | None = None
    resume_clients: int = 100
    resume_messages: int = 5
    followers: int = 1000
    posts: int = 5
    body_chars: int = 100
    soak_interval: float = 60.0  # soak: seconds per row of readings
    workers: int = 1  # load processes; 0 runs the load inside the bench process
    progress: bool | None = None  # None: when stderr is a terminal


async def open_all(url: str, accounts: list[Account], concurrency: int = CONNECT_CONCURRENCY) -> list[Peer]:
    """Connect every account (in order), ``concurrency`` at a time."""
    peers: list[Peer | None] = [None] * len(accounts)
    todo = iter(range(len(accounts)))

    async def lane() -> None:
        for i in todo:
            peers[i] = await Peer.open(url, accounts[i])

    try:
        async with asyncio.TaskGroup() as tg:
            for _ in range(min(concurrency, len(accounts))):
                tg.create_task(lane())
    except BaseException:
        await close_all([p for p in peers if p is not None])
        raise
    return peers  # type: ignore[return-value]


async def stop_readers(readers: list[asyncio.Task], peers: list[Peer]) -> list[BaseException]:
    """Cancel the reader tasks, close the connections; the errors that ended a reader early."""
    for r in readers:
        r.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await close_all(peers)
    return [r.exception() for r in readers if not r.cancelled() and r.exception() is not None]


def stream_figures(peers: list[Peer], closed: list[BaseException], ack_ns, delivery_ns) -> dict:
    """What every message scenario reports of its receivers' streams and latencies."""
    return {
        "gaps": sum(p.inbox.gaps for p in peers),
        "duplicates": sum(p.inbox.duplicates for p in peers),
        "connection_errors": [repr(e)[:200] for e in closed],
        "ack_ns": ack_ns,
        "delivery_ns": delivery_ns,
    }


async def all_connected(pool: Pool, label: str, total: int, what: str, options: Options) -> int:
    """Wait until every worker has opened its connections, with a progress bar; how many opened."""
    bar = Progress(label, total, unit="", enabled=options.progress)
    waiting = asyncio.create_task(pool.reached("connected"))
    while not waiting.done():
        bar.update(pool.count, what)
        await asyncio.sleep(0.25)
    bar.close()
    return sum(await waiting)


async def close_all(peers: list[Peer]) -> None:
    await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)


@dataclass(frozen=True)
class Window:
    """The measured window of a timed run, as the parent saw it."""

    start_ns: int  # when the load began (the workers' clock: ``stamp()``)
    seconds: float  # the measured part, after the warm-up
    before: procstat.Sample | None  # the server at the start of the measured part
    after: procstat.Sample | None  # ...and at its end


async def measured_run(pool: Pool, barrier: str, label: str, options: Options, pid: int | None,
                       unit: str = "msg/s") -> Window:
    """Release the workers waiting at ``barrier`` with the load's start stamp, and watch
    the warm-up and the measured window, sampling the server at the window's two ends.

    The workers take the stamp as their start (``await link.barrier(...)`` returns it),
    so the window whose server CPU is read is the one whose messages they count.
    """
    start = stamp()
    pool.go(barrier, start)
    measure_from = start + int(options.warmup * 1e9)
    end = measure_from + int(options.duration * 1e9)
    bar = Progress(label, options.warmup + options.duration, enabled=options.progress)
    last_count, last_t, rate = pool.count, start, 0.0
    before = None
    try:
        for until in (measure_from, end):
            while (now := stamp()) < until:
                await asyncio.sleep(min(0.25, (until - now) / 1e9))
                now, count = stamp(), pool.count
                if now - last_t >= 1e9:
                    rate = (count - last_count) / ((now - last_t) / 1e9)
                    last_count, last_t = count, now
                bar.update((now - start) / 1e9, f"{rate:,.0f} {unit}")
            sampled = procstat.sample(pid) if pid else None
            if until == measure_from:
                before = sampled
    finally:
        bar.close()
    return Window(start, options.duration, before, sampled)


async def on_schedule(start: int, end: int, rate: float, send: Callable[[int, int], Awaitable[bool]]) -> None:
    """Open loop: ``await send(n, due)`` for n = 1, 2... at ``rate`` per second until ``end``.

    The first send falls at a random point of the first interval (senders that
    start together spread out); ``due`` is the scheduled time, which a message
    carries as its stamp, so lateness counts in the latencies (no coordinated
    omission). ``send`` returns False to stop early.
    """
    interval = int(1e9 / rate)
    due = start + random.randrange(interval)
    n = 0
    while due < end:
        now = stamp()
        if due > now:
            await asyncio.sleep((due - now) / 1e9)
        n += 1
        if not await send(n, due):
            return
        due += interval


def pool_size(options: Options, connections: int) -> tuple[int, bool]:
    """(number of jobs, in processes?) for a load of ``connections`` sockets."""
    if options.workers <= 0:
        return 1, False
    return max(1, min(options.workers, connections)), True
