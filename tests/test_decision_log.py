"""Policy decisions are recorded in batches off the send path, and a clean stop loses none."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from imserver.domain.clock import SystemClock
from imserver.domain.errors import Code
from imserver.domain.policy_types import Outgoing, OutgoingKind
from imserver.policy.decision import deny
from imserver.services import decision_log
from imserver.services.decision_log import DecisionLog
from imserver.store.tables import policy_decisions


async def count(db) -> int:
    async with db.transaction() as conn:
        return (await conn.execute(select(func.count()).select_from(policy_decisions))).scalar_one()


def refusal() -> tuple[Outgoing, object]:
    return Outgoing(OutgoingKind.MESSAGE_DIRECT, 1, "x"), deny("rate_limit", Code.RATE_LIMITED, "slow down")


async def test_written_in_the_background_within_the_interval(db):
    log = DecisionLog(db, SystemClock())
    await log.start()
    try:
        for _ in range(3):
            log.add(*refusal())
        assert await count(db) == 0  # add() returned without a transaction
        for _ in range(100):
            if await count(db) == 3:
                break
            await asyncio.sleep(decision_log.FLUSH_INTERVAL / 4)
        assert await count(db) == 3
    finally:
        await log.stop()


async def test_a_flood_is_written_in_batches_and_stop_writes_the_rest(db):
    log = DecisionLog(db, SystemClock())
    await log.start()
    n = decision_log.FLUSH_AT * 2 + 7
    for _ in range(n):
        log.add(*refusal())
    await log.stop()  # a clean stop: nothing queued is lost
    assert await count(db) == n
    async with db.transaction() as conn:
        row = (await conn.execute(select(policy_decisions).limit(1))).mappings().one()
    assert (row["outcome"], row["reason"], row["check_name"], row["user_id"]) == ("deny", "rate_limited", "rate_limit", 1)
