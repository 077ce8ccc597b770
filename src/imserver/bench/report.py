"""The results of a run: ratios to the relay, the targets, a table and one JSON object.

Every figure of a scenario is set beside the same figure measured against the
relay in the same run, as ``imserver / relay``: above 1 is better for rates
(messages/s), below 1 is better for times and memory. The targets are those in
docs/benchmarks.md; a target is checked only on the figure it names, and a run at a
smaller size than the target's says so rather than claiming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Figures compared with the relay: (path in the figures dict, label, unit).
COMPARED = (
    ("messages_per_s", "messages/s acknowledged", ""),
    ("deliveries_per_s", "deliveries/s", ""),
    ("ack_ms.p50", "send->ack p50", "ms"),
    ("ack_ms.p99", "send->ack p99", "ms"),
    ("ack_ms.p999", "send->ack p99.9", "ms"),
    ("delivery_ms.p50", "send->delivery p50", "ms"),
    ("delivery_ms.p99", "send->delivery p99", "ms"),
    ("delivery_ms.p999", "send->delivery p99.9", "ms"),
    ("frames_per_s", "post frames/s to followers (median post)", ""),
    ("frames_per_s_min", "post frames/s (slowest post)", ""),
    ("post_ack_ms.p50", "post->ack p50", "ms"),
    ("ack_to_last_ms.p50", "ack->last follower p50", "ms"),
    ("ack_to_last_ms.max", "ack->last follower max", "ms"),
    ("post_to_last_ms.p50", "post->last follower p50", "ms"),
    ("cpu_us_per_message", "server CPU per message", "µs"),
    ("cpu_us_per_delivery", "server CPU per delivery", "µs"),
    ("cpu_us_per_client", "server CPU per reconnecting client", "µs"),
    ("cpu_us_per_connection_s", "server CPU per idle connection-second", "µs"),
    ("rss_kib_per_connection", "server RSS per connection", "KiB"),
    ("idle_cpu_percent", "server CPU while idle", "% of a core"),
    ("catch_up_s", "time until all caught up", "s"),
    ("catch_up_p50_s", "median client caught up", "s"),
)
# Shown for imserver only (counts, not compared).
COUNTS = (
    ("messages", "messages acknowledged (total)"),
    ("connections", "connections"),
    ("clients", "clients"),
    ("followers", "followers"),
    ("posts", "posts"),
    ("missing", "missing frames (never delivered)"),
    ("posts_timed_out", "posts not at every follower in time"),
    ("gaps", "gaps"),
    ("duplicates", "duplicates"),
    ("incomplete", "clients not caught up"),
    ("early_live_frames", "live frames ahead of the replay (resent by it)"),
    ("peak_messages_per_s", "peak found first, direct messages/s"),
    ("offered_load", "offered load, deliveries/s"),
    ("reconnects", "reconnects with resume"),
    ("sanctions", "warnings imposed"),
    ("notices", "warning notices received"),
    ("post_frames", "post frames received"),
    ("server_cpu_percent", "server CPU during the run, % of a core"),
)


def get(figures: dict | None, path: str) -> Any:
    value: Any = figures
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def ratios(mine: dict, relay: dict | None) -> dict[str, float | None]:
    if relay is None:
        return {}
    out: dict[str, float | None] = {}
    for path, _, _ in COMPARED:
        a, b = get(mine, path), get(relay, path)
        if isinstance(a, int | float) and isinstance(b, int | float):
            out[path] = round(a / b, 3) if b else None
    return out


def _target(text: str, value: Any, met: bool | None, note: str = "") -> dict:
    return {"target": text, "value": value, "met": met, **({"note": note} if note else {})}


def targets(name: str, mine: dict, ratio: dict, options) -> list[dict]:
    """The targets that this scenario's figures can speak to."""
    out = []
    if name == "direct":
        r = ratio.get("messages_per_s")
        out.append(_target(">= 50% of the relay's messages/s", r, None if r is None else r >= 0.5,
                           "" if r is not None else "run with --baseline to compare"))
        c = ratio.get("cpu_us_per_message")
        out.append(_target("<= 2x the relay's server CPU per message", c, None if c is None else c <= 2,
                           "" if c is not None else "needs --baseline and both servers' pids"))
    elif name == "direct-rate":
        p99 = get(mine, "delivery_ms.p99")
        out.append(_target(f"send->delivery p99 < 30 ms at {mine.get('offered_rate'):,.0f} msg/s offered",
                           p99, None if p99 is None else p99 < 30))
    elif name == "group":
        v = mine.get("messages_per_s")
        size_ok = mine.get("group_size") == 51 and mine.get("senders") == 8
        out.append(_target(">= 1,000 messages/s acknowledged (51 members, 8 senders)", v,
                           (v >= 1000) if size_ok and v is not None else None,
                           "" if size_ok else "measured at another size than the target's"))
    elif name == "fanout":
        r, last = ratio.get("frames_per_s"), get(mine, "ack_to_last_ms.max")
        size = "" if mine.get("followers", 0) >= 10_000 else f"measured with {mine.get('followers', 0):,} followers"
        out.append(_target(">= 70% of the relay's frames/s (10,000 followers)", r, None if r is None else r >= 0.7,
                           "; ".join(x for x in (size, "" if r is not None else "run with --baseline to compare") if x)))
        out.append(_target("last follower within 500 ms of the ack (every post)", last,
                           None if last is None else last < 500, size))
    elif name == "idle":
        v = mine.get("rss_kib_per_connection")
        at = mine.get("connections", 0)
        out.append(_target("<= 24 KiB server memory per connection (10,000 connections)", v,
                           None if v is None else v <= 24,
                           "" if at >= 10_000 else f"measured at {at:,} connections"))
    elif name == "soak" and "intervals" in mine:
        bad = (mine.get("gaps") or 0) + (mine.get("duplicates") or 0) + (mine.get("missing") or 0)
        out.append(_target("zero gaps, duplicates and missing messages, reconnects included", bad, bad == 0))
        n = len(mine["intervals"])
        flat = mine.get("flat")
        out.append(_target("RSS, descriptors, loop lag p99 and latency p99 flat after the warm-up",
                           {True: "flat", False: "grows", None: "not judged"}[flat], flat,
                           "" if n >= 5 else f"only {n} intervals: too few to judge a trend"))
    elif name == "resume":
        bad = (mine.get("gaps") or 0) + (mine.get("duplicates") or 0) + (mine.get("incomplete") or 0)
        at = mine.get("clients", 0)
        out.append(_target("zero gaps, zero duplicates (1,000 clients)", bad, bad == 0,
                           "" if at >= 1000 else f"measured with {at:,} clients"))
    return out


# -- the table ------------------------------------------------------------------------------


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        text = f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.3g}" if abs(value) < 10 else f"{value:,.2f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def _rows(run: dict) -> Iterator[tuple[str, str, str, str]]:
    mine, relay, ratio = run.get("imserver") or {}, run.get("relay"), run.get("ratio") or {}
    for path, label, unit in COMPARED:
        if get(mine, path) is None and get(relay, path) is None:
            continue
        r = ratio.get(path)
        yield label, _fmt(get(mine, path), unit), _fmt(get(relay, path), unit) if relay else "", (
            f"{r:.2f}x" if r is not None else ""
        )
    for key, label in COUNTS:
        if key in mine:
            yield label, _fmt(mine[key]), "", ""
    for key in ("rejected", "unavailable", "overloaded", "mode", "connection_errors", "errors"):
        if mine.get(key):
            yield key, str(mine[key])[:60], "", ""


# soak's per-interval readings: (key, header, width)
INTERVAL_COLUMNS = (
    ("interval", "#", 3),
    ("seconds", "s", 6),
    ("rss_mib", "RSS MiB", 8),
    ("open_fds", "fds", 5),
    ("messages_per_s", "msg/s", 8),
    ("server_cpu_percent", "CPU %", 6),
    ("cpu_us_per_message", "µs/msg", 7),
    ("loop_lag_p99_ms", "lag p99 ms", 10),
    ("latency_p99_ms", "p99 ms", 8),
)


def _intervals(figures: dict) -> list[str]:
    """The per-interval readings of a soak, and the verdict on each trend."""
    rows = figures.get("intervals")
    if not rows:
        return []
    lines = ["   " + " ".join(f"{head:>{w}}" for _, head, w in INTERVAL_COLUMNS)]
    for row in rows:
        lines.append("   " + " ".join(f"{_fmt(row.get(key)):>{w}}" for key, _, w in INTERVAL_COLUMNS))
    verdicts = [
        f"RSS {_flat(figures, 'rss_flat')} ({_fmt(figures.get('rss_growth_mib'))} MiB)",
        f"descriptors {_flat(figures, 'fds_flat')} ({_fmt(figures.get('fd_growth'))})",
        f"loop lag p99 {_flat(figures, 'loop_lag_flat')} (early/late {figures.get('loop_lag_p99_early_late_ms')} ms)",
        f"latency p99 {_flat(figures, 'latency_flat')} (early/late {figures.get('latency_p99_early_late_ms')} ms)",
    ]
    lines.append(f"   after {figures.get('warmup_intervals')} warm-up interval(s): " + "; ".join(verdicts))
    return lines


def _flat(figures: dict, key: str) -> str:
    return {True: "flat", False: "GROWS", None: "not judged"}[figures.get(key)]


def table(result: dict) -> str:
    lines = []
    head = result["machine"]
    lines.append(
        f"imserver bench: {head['cpus']} CPUs, load average {head.get('loadavg_start')} at start, "
        f"{head.get('loadavg_end')} at end; target {result['target']['description']}"
    )
    for text in result.get("notes", []):
        lines.append(f"note: {text}")
    for run in result["scenarios"]:
        lines.append("")
        title = f"== {run['scenario']}"
        if run.get("sizes"):
            title += f" ({run['sizes']})"
        lines.append(title)
        if run["status"] != "ok":
            lines.append(f"   {run['status']}: {run.get('reason') or run.get('error')}")
            continue
        rows = list(_rows(run))
        width = max(len(r[0]) for r in rows) if rows else 10
        has_relay = run.get("relay") is not None
        header = f"   {'figure':<{width}}  {'imserver':>16}" + (f"  {'relay':>16}  {'ratio':>7}" if has_relay else "")
        lines.append(header)
        for label, a, b, r in rows:
            lines.append(f"   {label:<{width}}  {a:>16}" + (f"  {b:>16}  {r:>7}" if has_relay else ""))
        lines += _intervals(run.get("imserver") or {})
        if run.get("note"):
            lines.append(f"   note: {run['note']}")
        for t in run.get("targets", []):
            verdict = {True: "MET", False: "MISSED", None: "not checked"}[t["met"]]
            lines.append(f"   target {t['target']}: {verdict} ({_fmt(t['value'])})" + (f"; {t['note']}" if t.get("note") else ""))
    return "\n".join(lines)
