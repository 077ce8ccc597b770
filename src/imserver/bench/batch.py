"""The message writer's batch on its own: milliseconds per batch, by batch size.

    python -m imserver.bench.batch                      # SQLite in a temporary directory
    python -m imserver.bench.batch --database-url postgresql+asyncpg://.../<empty db>

Stores batches of direct messages (2 recipients each) and of group messages
(51 recipients each) through :mod:`imserver.store.batch`, as the group-commit
writer does, one after the other on an idle event loop, and prints the time
per batch and per message. Users, conversations and counter rows are inserted
by the store (:mod:`imserver.store.bench_world`; ids from 10^9 up, so an existing database is not disturbed; give an
empty one all the same). No server, no WebSocket: this isolates the store.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime

from ..store import bench_world, migrate
from ..store.batch import batch_store
from ..store.db import Database
from ..store.messages import NewMessage

BASE = 10**9
USERS = 100
GROUP = 51


async def _world(db: Database, base: int) -> None:
    async with db.transaction() as conn:
        await bench_world.seed(conn, base=base, users_count=USERS, now=datetime.now(UTC))


async def measure(db: Database, *, size: int, batches: int, group: bool, base: int) -> float:
    """Seconds per batch of `size` messages."""
    await _world(db, base)
    store = batch_store(db)
    members = tuple(base + i for i in range(1, GROUP + 1))
    k = 0
    try:
        start = time.perf_counter()
        for _ in range(batches):
            batch = []
            for _ in range(size):
                k += 1
                s = k % (USERS // 2) + 1
                recipients = members if group else (base + s, base + USERS // 2 + s)
                batch.append(NewMessage(base + s, f"b{base}-{k}", base + s, recipients, "a message body of some length", datetime.now(UTC)))
            await store.write(batch)
        return (time.perf_counter() - start) / batches
    finally:
        await store.close()


async def main_async(url: str, sizes: list[int], batches: int) -> None:
    db = Database.from_url(url)
    try:
        await migrate.upgrade(db)
        print(f"{db.dialect}: {batches} batches per row, one after another")
        print(f"  {'messages':>8} {'recipients':>10} {'ms/batch':>9} {'us/message':>11}")
        base = BASE
        for group in (False, True):
            for size in sizes:
                base += 10_000
                per_batch = await measure(db, size=size, batches=batches, group=group, base=base)
                recipients = GROUP if group else 2
                print(f"  {size:>8} {recipients:>10} {per_batch * 1e3:>9.2f} {per_batch / size * 1e6:>11.0f}")
    finally:
        await db.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m imserver.bench.batch", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an empty database (default: SQLite in a temporary directory)")
    parser.add_argument("--sizes", default="1,10,50", help="messages per batch, comma-separated")
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args(argv)
    url = args.database_url or f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='imserver-batch-')}/batch.db"
    asyncio.run(main_async(url, [int(s) for s in args.sizes.split(",")], args.batches))


if __name__ == "__main__":
    main()
