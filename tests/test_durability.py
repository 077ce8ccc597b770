"""The durability proof: the server is SIGKILLed while clients send.

The harness (imserver.bench.durability) runs a real ``imserver serve`` as a
subprocess, kills it repeatedly and restarts it; afterwards every acknowledged
message must be in its recipient's inbox exactly once, with gap-free seqs. The
same harness against a server that acknowledges before committing (the
test-only ``unsafe_ack_before_commit``) must report loss: that is what makes
the clean runs mean something.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import text

from imserver.bench import durability
from imserver.bench.durability import AckRecord, Entry, Inbox, check
from imserver.config import Settings
from imserver.services.container import build_services
from imserver.store.db import Database

from .conftest import PG_URL, unreachable

# Shorter pauses than the command's default: the tests need a few kills, not many acks.
TEST_INTERVAL = (0.1, 0.3)
TEST_MAX_SECONDS = 90.0  # a bound against a hang, far above the usual 10-20 s


def _assert_clean(report: durability.DurabilityReport, kills: int) -> None:
    assert report.kills == kills, report.table()
    # The harness did work: acks in every round, each kill interrupted traffic.
    assert len(report.acks_per_round) == kills + 1, report.table()
    assert min(report.acks_per_round) > 0, report.table()
    assert report.acked > 0 and report.resent > 0, report.table()
    assert report.rejected == 0, report.table()
    assert report.unacked == 0, report.table()  # every retry settled after the last restart
    assert (report.lost, report.duplicates, report.gaps, report.seq_mismatches, report.unreadable) == (0, 0, 0, 0, 0), (
        report.table()
    )
    assert report.ok


# -- the check itself, on made-up inboxes --------------------------------------------------


def _inbox(*entries: tuple[int, int, str, int], last: int | None = None) -> Inbox:
    rows = [Entry(*e) for e in entries]
    return Inbox(rows, last if last is not None else (rows[-1].seq if rows else 0))


def test_check_passes_a_clean_run():
    acks = [AckRecord(1, "a", 2, 10, 1, False), AckRecord(1, "b", 2, 11, 2, True)]
    inboxes = {
        1: _inbox((1, 1, "a", 10), (2, 1, "b", 11)),
        2: _inbox((1, 1, "a", 10), (2, 1, "b", 11)),
    }
    found = check(inboxes, acks)
    assert (found.lost, found.duplicates, found.gaps, found.seq_mismatches, found.unreadable) == (0, 0, 0, 0, 0)
    assert found.problems == []


def test_check_counts_each_kind_of_failure():
    acks = [
        AckRecord(1, "a", 2, 10, 1, False),
        AckRecord(1, "b", 2, 11, 2, False),  # lost: not in user 2's inbox
        AckRecord(1, "c", 2, 12, 3, False),
    ]
    inboxes = {
        # the sender's seq 2 holds "c", not "b"; seq 3 is missing (the stream stops short of the counter)
        1: _inbox((1, 1, "a", 10), (2, 1, "c", 12), last=3),
        # "a" twice, then a jump from 2 to 4
        2: _inbox((1, 1, "a", 10), (2, 1, "a", 10), (4, 1, "c", 12)),
        3: None,  # the sync did not complete
    }
    found = check(inboxes, acks)
    assert found.lost == 1
    assert found.duplicates == 1
    assert found.gaps == 2  # user 1 stops short of its counter, user 2 jumps
    assert found.seq_mismatches == 2  # "b" and "c" are not at the sender's acked seqs
    assert found.unreadable == 1
    assert any(p.startswith("lost: b") for p in found.problems)


# -- the unsafe switch --------------------------------------------------------------------------


async def test_unsafe_ack_before_commit_is_off_unless_asked(settings, db):
    """A normal run never takes the ack-before-commit path."""
    assert Settings(_env_file=None).unsafe_ack_before_commit is False
    assert build_services(settings, db).messaging.writer.unsafe_ack_before_commit is False
    unsafe = settings.model_copy(update={"unsafe_ack_before_commit": True, "unsafe_commit_delay_ms": 7.0})
    writer = build_services(unsafe, db).messaging.writer
    assert writer.unsafe_ack_before_commit is True
    assert writer.unsafe_commit_delay == pytest.approx(0.007)


# -- the harness against a real server ----------------------------------------------------------


@pytest.mark.slow
async def test_sigkill_loses_nothing_acknowledged_sqlite():
    report = await durability.run(kills=4, senders=2, receivers=2, interval=TEST_INTERVAL, max_seconds=TEST_MAX_SECONDS)
    _assert_clean(report, kills=4)


@pytest.mark.slow
def test_the_harness_reports_loss_when_durability_is_off(tmp_path):
    """`imserver durability --unsafe`: acks go out before the commit, the kills land in between."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMSERVER_")}
    argv = ["durability", "--kills", "3", "--unsafe", "--json", "--interval", *map(str, TEST_INTERVAL)]
    argv += ["--max-seconds", str(TEST_MAX_SECONDS)]
    done = subprocess.run(
        [sys.executable, "-m", "imserver.cli", *argv],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TEST_MAX_SECONDS + 30,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # non-zero: loss was found
    report = json.loads(done.stdout)
    assert report["unsafe"] is True and report["kills"] == 3
    assert report["acked"] > 0
    assert report["lost"] > 0, report
    assert report["ok"] is False


@pytest.fixture
async def pg_durability_url():
    """A PostgreSQL schema of this test's own in database `test`, named by ?search_path=; dropped after."""
    schema = f"imserver_durability_{uuid.uuid4().hex[:10]}"
    admin = Database.from_url(PG_URL)
    try:
        async with admin.transaction() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - skipped locally, a failure in CI
        await admin.dispose()
        unreachable("PostgreSQL", repr(exc))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}search_path={schema}"
    finally:
        async with admin.transaction() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.mark.slow
@pytest.mark.postgres
async def test_sigkill_loses_nothing_acknowledged_postgres(pg_durability_url):
    report = await durability.run(
        kills=4,
        senders=2,
        receivers=2,
        database_url=pg_durability_url,
        interval=TEST_INTERVAL,
        max_seconds=TEST_MAX_SECONDS,
    )
    assert report.database == "postgresql"
    _assert_clean(report, kills=4)
