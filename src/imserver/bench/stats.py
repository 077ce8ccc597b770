"""Latency samples and their percentiles.

Samples are kept raw (nanoseconds in an ``array('q')``: 8 bytes each, cheap to
pickle from a worker process) and sorted once at the end, so the percentiles
are exact rather than a histogram's approximation. A 20-second run at 10,000
messages/s holds 200,000 samples per figure: 1.6 MB, nothing to worry about.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

PERCENTILES = (("p50", 0.50), ("p99", 0.99), ("p999", 0.999))


def samples() -> array:
    return array("q")


def merge(parts: Iterable[array]) -> array:
    out = array("q")
    for part in parts:
        out.extend(part)
    return out


def summary(values: array) -> dict[str, float | int | None]:
    """{"n", "p50", "p99", "p999", "max"} in milliseconds (None when there is no sample).

    The nearest-rank method: p99 of 1,000 samples is the 990th smallest.
    """
    n = len(values)
    if not n:
        return {"n": 0, **{name: None for name, _ in PERCENTILES}, "max": None}
    ordered = sorted(values)
    out: dict[str, float | int | None] = {"n": n}
    for name, q in PERCENTILES:
        rank = max(1, min(n, -(-int(q * n * 1000) // 1000)))  # ceil(q * n) without float drift
        out[name] = round(ordered[rank - 1] / 1e6, 3)
    out["max"] = round(ordered[-1] / 1e6, 3)
    return out
