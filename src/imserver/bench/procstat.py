"""A server process's memory, CPU and descriptors, read from ``/proc/<pid>`` (Linux).

With ``serve --workers N`` the pid is the supervisor's, and every figure is
the sum over it and its children, the workers.

Used by ``idle`` (RSS per connection, CPU while idle), by ``soak`` (RSS and
open descriptors per minute) and beside every scenario: the server's CPU time
over the measured window, per message and per delivery. With ``--url`` and no
``--server-pid`` there is no process to read, and the figures say so instead
of guessing.

CPU time is the sum of every thread's run time in ``/proc/<pid>/task/*/schedstat``
(nanoseconds: a short run of a few hundred messages still gets a figure), or,
where the kernel has no schedstat, utime + stime from ``/proc/<pid>/stat`` in
clock ticks (10 ms). A thread that ends inside the window takes its run time
with it from the schedstat sum; the server's threads (event loop, the SQLite
driver's, the default executor's) live as long as it does.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # utime/stime unit


@dataclass(frozen=True, slots=True)
class Sample:
    rss_kib: int  # VmRSS: resident memory now
    cpu_s: float  # user + system CPU time consumed so far, every thread


def _schedstat_s(pid: int) -> float | None:
    """Every thread's run time so far, in seconds; None without schedstat."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:  # the thread ended between the listing and the read
            continue
        except (OSError, IndexError, ValueError):
            return None
    return total / 1e9


def children(pid: int) -> list[int]:
    """The process's child processes (``serve --workers``: the workers), from every thread's list."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                out += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return out


def sample(pid: int) -> Sample | None:
    """RSS and CPU time of the process and its children (a supervisor's workers), or None if unreadable."""
    own = _one(pid)
    if own is None:
        return None
    for child in children(pid):
        theirs = _one(child)
        if theirs is not None:  # a child that ended between the listing and the read is left out
            own = Sample(own.rss_kib + theirs.rss_kib, own.cpu_s + theirs.cpu_s)
    return own


def _one(pid: int) -> Sample | None:
    """One process's RSS and CPU time, or None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            rss = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            # Fields after the ")" that closes the command name; utime and stime
            # are fields 14 and 15 of the whole line (11 and 12 after it).
            rest = f.read().rsplit(")", 1)[1].split()
        ticks = (int(rest[11]) + int(rest[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None
    precise = _schedstat_s(pid)
    return Sample(rss, ticks if precise is None else precise)


def open_fds(pid: int) -> int | None:
    """How many file descriptors the process and its children have open (sockets, database files...)."""
    try:
        count = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    for child in children(pid):
        with contextlib.suppress(OSError):
            count += len(os.listdir(f"/proc/{child}/fd"))
    return count


def cpu_percent(before: Sample | None, after: Sample | None, seconds: float) -> float | None:
    """CPU used between two samples, in percent of one core."""
    if before is None or after is None or seconds <= 0:
        return None
    return round(100 * (after.cpu_s - before.cpu_s) / seconds, 2)


def cpu_us_per(before: Sample | None, after: Sample | None, count: float | None) -> float | None:
    """CPU used between two samples per unit of work (a message, a delivery...), in µs."""
    if before is None or after is None or not count or count <= 0:
        return None
    return round(1e6 * (after.cpu_s - before.cpu_s) / count, 1)


def cpu_figures(
    before: Sample | None, after: Sample | None, seconds: float, *, messages: int, deliveries: int | None = None
) -> dict[str, float | None]:
    """The CPU figures every message scenario reports for its measured window.

    ``messages``: messages handled in the window (acknowledged, or posted);
    ``deliveries``: frames delivered in it, where one message has many receivers.
    """
    out = {
        "server_cpu_percent": cpu_percent(before, after, seconds),
        "cpu_us_per_message": cpu_us_per(before, after, messages),
    }
    if deliveries is not None:
        out["cpu_us_per_delivery"] = cpu_us_per(before, after, deliveries)
    return out


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
