"""Jittered exponential backoff for the SDK's automatic reconnect.

After a node goes away, every one of its clients reconnects at once; without
jitter they would all hit the load balancer in the same millisecond, again and
again. Each delay is drawn uniformly from [0, min(cap, base * 2**attempt)]
("full jitter"), so reconnects spread out and the expected wait still doubles.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base: float = 0.1  # seconds: the first delay is drawn from [0, base]
    cap: float = 10.0  # seconds: no delay is ever drawn above this
    max_attempts: int | None = None  # None: keep trying; else give up after this many failures
    rng: random.Random = field(default_factory=random.Random)  # seedable, for tests

    def delay(self, attempt: int) -> float:
        """The wait before reconnect attempt ``attempt`` (0 for the first)."""
        return self.rng.uniform(0.0, min(self.cap, self.base * (2 ** min(attempt, 32))))
