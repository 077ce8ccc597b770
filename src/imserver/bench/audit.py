"""The record chain's costs: ``audit verify`` per million records, and a record write with and without the chain.

    python -m imserver.bench.audit --records 1000000         # SQLite in a temporary directory
    python -m imserver.bench.audit --database-url postgresql+asyncpg://.../<empty db> --records 100000

Fills the sign-in log (a record table) with `--records` rows in batches, as
the server writes them (the triggers add a chain entry per row), seals the
chain, then times the full verification (chain walk plus every row compared
with its entry) and prints seconds per million records. It also times the same
inserts into a copy of the table without triggers, so the per-record cost of
the chain on the write path is measured in the same run. No server: this
isolates the store and the hashing.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta

from ..domain.clock import SystemClock
from ..services.records import Records
from ..store import bench_records, migrate
from ..store.db import Database

INSERT_BATCH = 5000  # rows per INSERT transaction while filling
WRITE_SAMPLE = 20000  # rows timed for the write cost, with and without the chain


def _rows(start: int, n: int, t0: datetime) -> list[dict]:
    return [
        {
            "at": t0 + timedelta(microseconds=i),
            "event": "signin",
            "principal_kind": "user",
            "principal_id": i % 5000 + 1,
            "handle": f"user{i % 5000 + 1}",
            "ip": f"198.51.{i // 256 % 256}.{i % 256}",
            "user_agent": "imclient/2.1 (bench)",
            "node": "bench",
            "connection": None,
            "close_code": None,
            "detail": None,
        }
        for i in range(start, start + n)
    ]


async def _fill(db: Database, n: int, t0: datetime, *, chained: bool = True) -> float:
    began = time.perf_counter()
    for start in range(0, n, INSERT_BATCH):
        await bench_records.insert_rows(db, _rows(start, min(INSERT_BATCH, n - start), t0), chained=chained)
    return time.perf_counter() - began


async def _write_cost(db: Database, t0: datetime) -> tuple[float, float]:
    """Rows/s into access_log (with the chain's trigger) and into a trigger-less copy of it."""
    await bench_records.create_plain_copy(db)
    with_chain = WRITE_SAMPLE / await _fill(db, WRITE_SAMPLE, t0)
    without = WRITE_SAMPLE / await _fill(db, WRITE_SAMPLE, t0, chained=False)
    await bench_records.drop_plain_copy(db)
    return with_chain, without


async def main_async(url: str, records: int) -> None:
    db = Database.from_url(url)
    try:
        await migrate.upgrade(db)
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        keeper = Records(db, SystemClock())
        fill = await _fill(db, records, t0)
        began, cpu = time.perf_counter(), time.process_time()
        await keeper.seal_pending()
        seal, seal_cpu = time.perf_counter() - began, time.process_time() - cpu
        began, cpu = time.perf_counter(), time.process_time()
        report = await keeper.verify(seal=False)
        verify, verify_cpu = time.perf_counter() - began, time.process_time() - cpu
        assert report.ok, report.to_dict()
        with_chain, without = await _write_cost(db, t0)
    finally:
        await db.dispose()
    per_million = 1_000_000 / records
    print(f"backend: {db.dialect}; records: {records:,} (sign-in log rows, one chain entry each)")
    print(f"fill: {fill:.1f} s ({records / fill:,.0f} rows/s, chain entries written by the trigger)")
    # CPU seconds of this process (the SQLite driver thread included) stay meaningful on a
    # busy machine, where wall time also counts waiting for a core.
    print(f"seal: {seal:.1f} s = {seal * per_million:.1f} s per million entries "
          f"(CPU {seal_cpu * per_million:.1f} s per million)")
    print(f"audit verify: {verify:.1f} s = {verify * per_million:.1f} s per million records "
          f"(CPU {verify_cpu * per_million:.1f} s per million; "
          f"{report.entries:,} entries walked, {report.rows:,} rows compared)")
    print(f"record writes: {with_chain:,.0f} rows/s with the chain trigger, {without:,.0f} rows/s without "
          f"({(1 - with_chain / without) * 100:.0f}% slower per record row)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m imserver.bench.audit", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--database-url", default="", help="an empty database (default: SQLite in a temp dir)")
    args = parser.parse_args(argv)
    if args.database_url:
        asyncio.run(main_async(args.database_url, args.records))
        return
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main_async(f"sqlite+aiosqlite:///{tmp}/bench.db", args.records))


if __name__ == "__main__":
    main()
