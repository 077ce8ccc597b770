"""The registry of scenarios: name -> module, and those not available yet.

A scenario is a module with ``async def run(options, target) -> dict``. Adding
one is adding its module and a row here. A row without a module is reported as
unavailable, never with a number.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    module: str | None  # None: not available yet
    unavailable: str = ""

    @property
    def available(self) -> bool:
        return self.module is not None

    def runner(self) -> Callable[..., Awaitable[dict]]:
        assert self.module is not None, self.unavailable
        return importlib.import_module(self.module).run


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("direct", "N sender/receiver pairs, one-to-one", "imserver.bench.scenarios.direct"),
        Scenario("group", "groups of G members, S concurrent senders", "imserver.bench.scenarios.group"),
        Scenario("fanout", "one public account, F online followers, P posts", "imserver.bench.scenarios.fanout"),
        Scenario("idle", "C idle authenticated connections", "imserver.bench.scenarios.idle"),
        Scenario("resume", "R clients disconnect, messages pile up, all reconnect", "imserver.bench.scenarios.resume"),
        Scenario("soak", "a long mixed load at half of peak: does anything grow?", "imserver.bench.scenarios.soak"),
    )
}


def resolve(choice: str) -> list[Scenario]:
    """The scenarios to run for ``--scenario`` (``all``: every one, available or not)."""
    if choice == "all":
        return list(SCENARIOS.values())
    return [SCENARIOS[name] for name in choice.split(",")]
