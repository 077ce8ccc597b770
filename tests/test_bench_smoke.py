"""A very short ``imserver bench --baseline`` of every scenario, as CI's smoke test.

No timing is asserted: the run must complete, its JSON must parse, each
available scenario must move messages (or hold connections) against imserver
and the relay, ``fanout`` must bring every post to every follower (zero missing
frames), ``resume`` must count zero gaps and zero duplicates, every message
scenario must print server CPU per message (and per delivery) beside the
relay's, and a half-second-per-row ``soak`` must post, warn, reconnect with
resume and lose nothing, with a row of readings per interval. It runs on
SQLite (a temporary file, as ``imserver bench`` does by default) and on
PostgreSQL (this test run's schema, via ``--database-url``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from array import array

import pytest

from imserver.bench import report, stats
from imserver.bench.peer import send_frame, stamp_of, stamped
from imserver.bench.provision import id_number
from imserver.bench.scenarios import SCENARIOS
from imserver.bench.scenarios.soak import FOLLOWERS as SOAK_FOLLOWERS
from imserver.gateway import protocol
from imserver.services.identity_fields import normalise_id_number

from .conftest import PG_URL, unreachable

# Tiny sizes: about a second per scenario and target.
SMOKE = [
    "--baseline",
    "--json",
    "--no-progress",
    "--scenario", "all",
    "--duration", "1",
    "--warmup", "0.2",
    "--rate", "100",
    "--pairs", "3",
    "--group-size", "4",
    "--senders", "2",
    "--connections", "20",
    "--idle-users", "5",
    "--resume-clients", "10",
    "--resume-messages", "3",
    "--followers", "20",
    "--posts", "2",
    "--soak-interval", "0.5",
]  # fmt: skip
SMOKE_TIMEOUT = 300  # seconds: generous for a loaded CI machine; a hang fails rather than blocks


def run_bench(*extra: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "imserver.cli", "bench", *SMOKE, *extra],
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
        check=False,  # the exit status is asserted below, with the output
    )
    assert proc.stdout.strip(), f"no output; exit {proc.returncode}; stderr:\n{proc.stderr[-3000:]}"
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"output is not one JSON object:\n{proc.stdout[:2000]}\nstderr:\n{proc.stderr[-2000:]}")
    failed = [r for r in result["scenarios"] if r["status"] == "failed"]
    assert not failed, [(r["scenario"], r.get("error")) for r in failed]
    assert proc.returncode == 0 and result["ok"], proc.stderr[-3000:]
    return result


@pytest.fixture(params=["sqlite", "postgres"])
def database_args(request) -> list[str]:
    if request.param == "sqlite":
        return []
    schema, error = request.getfixturevalue("pg_schema")
    if error:
        unreachable("PostgreSQL", error)
    return ["--database-url", f"{PG_URL}?search_path={schema}"]


def test_every_scenario_runs_and_resume_loses_nothing(database_args):
    result = run_bench(*database_args)
    runs = {r["scenario"]: r for r in result["scenarios"]}
    assert set(runs) == set(SCENARIOS) | {"direct-rate"}

    fanout = runs["fanout"]
    assert fanout["status"] == "ok", fanout
    for side in ("imserver", "relay"):
        figures = fanout[side]
        assert (figures["followers"], figures["posts"], figures["frames"]) == (20, 2, 40), (side, figures)
        assert figures["missing"] == 0 and figures["duplicates"] == 0, (side, figures)
        assert figures["posts_timed_out"] == 0, (side, figures)

    for name in ("direct", "direct-rate", "group"):
        run = runs[name]
        assert run["status"] == "ok", run
        for side in ("imserver", "relay"):
            figures = run[side]
            assert figures["messages"] > 0 and figures["messages_per_s"] > 0, (name, side, figures)
            assert figures["delivered"] > 0 and figures["rejected"] == {}, (name, side, figures)
            assert figures["gaps"] == 0 and figures["duplicates"] == 0, (name, side, figures)
        assert run["ratio"]["messages_per_s"] > 0
        # Server CPU per message from /proc, on both sides, and their ratio.
        for side in ("imserver", "relay"):
            assert run[side]["cpu_us_per_message"] > 0, (name, side, run[side])
        assert run["ratio"]["cpu_us_per_message"] > 0
    for side in ("imserver", "relay"):
        assert runs["group"][side]["cpu_us_per_delivery"] > 0, runs["group"][side]
        assert fanout[side]["cpu_us_per_delivery"] > 0 and fanout[side]["cpu_us_per_message"] > 0, fanout[side]
    assert runs["resume"]["imserver"]["cpu_us_per_message"] > 0
    assert runs["resume"]["relay"]["cpu_us_per_client"] > 0

    idle = runs["idle"]
    for side in ("imserver", "relay"):
        assert idle[side]["connections"] == 20 and idle[side]["closed_while_idle"] == 0
        assert idle[side]["rss_kib_after"] > 0  # the bench started both: their pids are known
        assert idle[side]["cpu_us_per_connection_s"] is not None  # keepalive only: may round to 0

    resume = runs["resume"]["imserver"]
    assert resume["messages"] == 10 * (3 + 1)  # piled up, plus one live message each during the reconnect
    assert resume["caught_up"] == 10 and resume["incomplete"] == 0
    assert resume["gaps"] == 0 and resume["duplicates"] == 0
    assert runs["resume"]["relay"]["caught_up"] == 10

    soak = runs["soak"]
    assert soak["status"] == "ok", soak
    mine = soak["imserver"]
    assert mine["offered_load"] == 100 and mine["messages"] > 0 and mine["rejected"] == {}, mine
    assert (mine["gaps"], mine["duplicates"], mine["missing"]) == (0, 0, 0), mine
    assert mine["reconnects"] >= 1 and mine["sanctions"] >= 1 and mine["posts"] >= 1, mine
    assert mine["post_frames"] == mine["posts"] * SOAK_FOLLOWERS, mine
    assert len(mine["intervals"]) >= 2, mine
    for row in mine["intervals"]:
        assert row["rss_mib"] > 0 and row["open_fds"] > 0, row
        assert row["latency_p99_ms"] > 0 and row["loop_lag_p99_ms"] > 0, row
    assert mine["cpu_us_per_message"] > 0
    assert isinstance(mine["flat"], bool) and isinstance(mine["rss_flat"], bool)
    assert "not run against the relay" in soak["relay"]["mode"]

    assert any("argon2 lowered" in n for n in result["notes"])

    # The table prints the CPU figures beside the relay's, with the ratio.
    table = report.table(result)
    for label in ("server CPU per message", "server CPU per delivery", "server CPU per idle connection-second"):
        assert label in table
    assert "lag p99 ms" in table and "warm-up interval(s): RSS" in table  # soak's rows and verdicts
    direct_cpu = next(line for line in table.splitlines() if "server CPU per message" in line)
    assert direct_cpu.rstrip().endswith("x") and "µs" in direct_cpu


def test_send_frame_is_what_the_server_decodes():
    cmid, body = stamped(7, 123456789, 40)
    frame = protocol.decode(send_frame("user", 42, cmid, body).decode())  # a text frame
    assert frame == protocol.Send(client_msg_id=cmid, to=protocol.Recipient("user", 42), body=body)
    assert len(body) == 40 and stamp_of(body) == stamp_of(cmid) == 123456789
    group = protocol.decode(send_frame("group", 3, "1:1", "1: hi").decode())
    assert group.to == protocol.Recipient("group", 3)


def test_bench_id_numbers_are_valid():
    import random
    from datetime import date

    rng = random.Random(7)
    for _ in range(200):
        number = id_number(rng)
        assert normalise_id_number(number, today=date.today()) == number


def test_percentiles_are_nearest_rank():
    values = array("q", (i * 1_000_000 for i in range(1, 1001)))  # 1..1000 ms
    s = stats.summary(values)
    assert (s["n"], s["p50"], s["p99"], s["p999"], s["max"]) == (1000, 500.0, 990.0, 999.0, 1000.0)
    assert stats.summary(array("q"))["p99"] is None


async def test_the_batch_benchmark_stores_what_it_times(db):
    """``python -m imserver.bench.batch`` times real batches: after a short run the
    counters of its users moved by exactly the inbox entries it wrote."""
    from sqlalchemy import func, select

    from imserver.bench.batch import measure
    from imserver.store.tables import inbox, inbox_counters

    base = 2 * 10**9
    seconds = await measure(db, size=3, batches=2, group=True, base=base)
    assert seconds > 0
    async with db.transaction() as conn:
        entries = (await conn.execute(select(func.count()).select_from(inbox).where(inbox.c.user_id > base))).scalar()
        last = (await conn.execute(select(func.sum(inbox_counters.c.last_seq)).where(inbox_counters.c.user_id > base))).scalar()
    assert entries == last == 3 * 2 * 51
