"""A server process's memory and CPU, read from ``/proc/<pid>`` (Linux).

Used by ``idle`` (RSS per connection, CPU while idle) and reported beside every
scenario. With ``--url`` and no ``--server-pid`` there is no process to read,
and the figures say so instead of guessing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # utime/stime unit


@dataclass(frozen=True, slots=True)
class Sample:
    rss_kib: int  # VmRSS: resident memory now
    cpu_s: float  # user + system CPU time consumed so far


def sample(pid: int) -> Sample | None:
    """The process's RSS and CPU time, or None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            rss = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            # Fields after the ")" that closes the command name; utime and stime
            # are fields 14 and 15 of the whole line (11 and 12 after it).
            rest = f.read().rsplit(")", 1)[1].split()
        return Sample(rss, (int(rest[11]) + int(rest[12])) / CLOCK_TICKS)
    except (OSError, IndexError, ValueError):
        return None


def cpu_percent(before: Sample | None, after: Sample | None, seconds: float) -> float | None:
    """CPU used between two samples, in percent of one core."""
    if before is None or after is None or seconds <= 0:
        return None
    return round(100 * (after.cpu_s - before.cpu_s) / seconds, 2)


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
