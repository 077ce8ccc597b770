"""The background loop's stop: prompt even when a step swallows its cancellation."""

from __future__ import annotations

import asyncio

from imserver.services.periodic import Periodic


async def test_stop_ends_the_loop_even_if_a_step_swallows_the_cancellation():
    entered = asyncio.Event()
    steps = 0

    async def stubborn_step() -> None:
        # What a database call did under the lowest supported SQLAlchemy/aiosqlite:
        # the cancellation is lost and the step returns normally.
        nonlocal steps
        steps += 1
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()

    loop = Periodic("stubborn", 3600, stubborn_step)
    loop.start()
    await asyncio.wait_for(entered.wait(), 5)
    task = loop._task
    stopping = asyncio.create_task(loop.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)  # before the fix: the whole hour
    assert stopping in done and task.done() and steps == 1


async def test_nudge_runs_the_next_step_now_and_a_stopped_loop_starts_again():
    ran = asyncio.Queue()
    loop = Periodic("nudged", 3600, lambda: ran.put(1))
    loop.start()
    await asyncio.wait_for(ran.get(), 5)  # the first step runs at once
    loop.nudge()
    await asyncio.wait_for(ran.get(), 5)  # and the nudged one without waiting the interval
    await loop.stop()
    loop.start()
    await asyncio.wait_for(ran.get(), 5)
    await loop.stop()
    assert not loop.running
