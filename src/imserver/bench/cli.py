"""``imserver bench``: the options, and the order of a run.

A run: start (or reach) imserver, start the relay if ``--baseline``, then for
each scenario run it against the relay first and imserver second (so that the
fixed-rate run of ``direct`` can offer half of the relay's peak), set the
figures side by side, and print a table (or, with ``--json``, one JSON object
on stdout). Progress and status lines go to stderr.

Exit status: 0 when every available scenario completed with zero gaps and
duplicates, 1 otherwise (the output says which and why), 2 for bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import resource
import sys
from dataclasses import fields
from datetime import UTC, datetime

import orjson

from .. import __version__
from . import report, targets
from .progress import note
from .scenarios import SCENARIOS, Scenario, resolve
from .scenarios.base import Options

# What `--rate half` offers: half of the peak (the relay's with --baseline).
HALF = "half"


def _rate(value: str) -> float | str:
    if value == HALF:
        return HALF
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a number of messages/s, or 'half'") from None
    if rate <= 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return rate


def _scenarios(value: str) -> str:
    names = value.split(",")
    if value != "all" and any(n not in SCENARIOS for n in names):
        raise argparse.ArgumentTypeError(f"choose from {', '.join(SCENARIOS)} or all (comma-separated for several)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``imserver bench`` (registered by imserver.cli)."""
    where = parser.add_argument_group("what to measure")
    where.add_argument("--url", help="an imserver that is already running (default: start one here)")
    where.add_argument("--server-pid", type=int, help="with --url on this machine: its pid, for RSS and CPU figures")
    where.add_argument("--operator-handle", help="with --url: a reviewer operator who approves the bench users")
    where.add_argument(
        "--operator-password",
        default=os.environ.get("IMSERVER_OPERATOR_PASSWORD"),
        help="its password (default: IMSERVER_OPERATOR_PASSWORD)",
    )
    where.add_argument(
        "--database-url", help="for the server started here (default: SQLite in a temporary directory); use an empty database"
    )
    where.add_argument(
        "--server-workers", type=int, default=1,
        help="for the server started here: `serve --workers N` (N > 1 needs --database-url on PostgreSQL and --broker-url)",
    )
    where.add_argument("--broker-url", help="for the server started here: IMSERVER_BROKER_URL (default memory://)")
    where.add_argument(
        "--keep-argon2", action="store_true", help="do not lower the argon2 cost of the server started here"
    )
    where.add_argument("--baseline", action="store_true", help="also run each scenario against the bare relay")
    where.add_argument(
        "--scenario", type=_scenarios, default="all", help=f"{'|'.join(SCENARIOS)}|all, or several comma-separated"
    )

    sizes = parser.add_argument_group("sizes")
    sizes.add_argument("--pairs", type=int, default=50, help="direct: sender/receiver pairs (50)")
    sizes.add_argument("--group-size", type=int, default=51, help="group: members per group (51)")
    sizes.add_argument("--senders", type=int, default=8, help="group: senders per group; resume: senders (8)")
    sizes.add_argument("--groups", type=int, default=1, help="group: number of groups (1)")
    sizes.add_argument("--connections", type=int, default=10_000, help="idle: connections (10000)")
    sizes.add_argument("--idle-users", type=int, help="idle: users behind them (default: one per connection)")
    sizes.add_argument("--resume-clients", type=int, default=1000, help="resume: clients (1000)")
    sizes.add_argument("--resume-messages", type=int, default=5, help="resume: messages piled up per client (5)")
    sizes.add_argument("--followers", type=int, default=10_000, help="fanout: online followers (10000)")
    sizes.add_argument("--posts", type=int, default=5, help="fanout: posts, one at a time (5)")
    sizes.add_argument("--body-chars", type=int, default=100, help="message body length (100)")
    sizes.add_argument(
        "--soak-interval", type=float, default=60.0, help="soak: seconds per row of RSS/descriptor/lag readings (60)"
    )

    load = parser.add_argument_group("load")
    load.add_argument("--duration", type=float, default=10.0, help="seconds measured per run (10)")
    load.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring (1)")
    load.add_argument(
        "--rate",
        type=_rate,
        help="direct: also run at this fixed offered rate (messages/s in total), or 'half' of the peak; "
        "soak: its offered load in deliveries/s (default: half of imserver's peak, measured first)",
    )
    load.add_argument("--window", type=int, default=1, help="sends in flight per sender (1: wait for each ack)")
    load.add_argument(
        "--workers",
        type=int,
        default=1,
        help="load-generating processes (1; 0: inside the bench process). On 2 cores 1 is fastest: see docs/benchmarks.md",
    )

    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    bar = out.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None, help="always draw the progress bar")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never draw it")


def options_from(args: argparse.Namespace) -> Options:
    names = {f.name for f in fields(Options)}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    values.pop("rate", None)
    return Options(**values)


def raise_fd_limit() -> None:
    """Thousands of sockets need thousands of descriptors; servers started here inherit this."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(args: argparse.Namespace) -> int:
    raise_fd_limit()
    try:
        import uvloop  # shipped with uvicorn[standard]: the bench process drives load too

        result = uvloop.run(_run(args))
    except ImportError:  # pragma: no cover
        result = asyncio.run(_run(args))
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(report.table(result))
    return 0 if result["ok"] else 1


async def _target(args: argparse.Namespace) -> targets.Target:
    if args.url:
        operator = (args.operator_handle, args.operator_password or "") if args.operator_handle else None
        target = targets.existing(args.url, pid=args.server_pid, operator=operator, progress=args.progress)
        target.notes.append(f"existing server at {target.http_url}" + ("" if args.server_pid else " (no pid: no RSS/CPU)"))
        return target
    return await targets.start_imserver(
        database_url=args.database_url,
        lower_argon2=not args.keep_argon2,
        progress=args.progress,
        with_moderator=any(s.name == "soak" for s in resolve(args.scenario)),  # soak warns users
        workers=args.server_workers,
        broker_url=args.broker_url,
    )


async def _run(args: argparse.Namespace) -> dict:
    options = options_from(args)
    chosen = resolve(args.scenario)
    result: dict = {
        "imserver_version": __version__,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_start": _loadavg(),
        },
        "options": {**vars(options), "rate": args.rate, "scenario": args.scenario, "baseline": args.baseline},
        "scenarios": [],
        "notes": [],
    }
    relay: targets.Target | None = None
    server = await _target(args)
    try:
        result["target"] = {
            "description": server.http_url if args.url else f"imserver started here ({args.database_url or 'SQLite, temporary'}"
            + (f", {args.server_workers} workers)" if args.server_workers > 1 else ")"),
            "pid": server.pid,
        }
        result["notes"] += server.notes
        if args.baseline:
            relay = await targets.start_relay()
        for scenario in chosen:
            result["scenarios"] += await _scenario(scenario, options, args.rate, server, relay)
    finally:
        for t in (relay, server):
            if t is not None:
                with contextlib.suppress(Exception):
                    await t.close()
    result["machine"]["loadavg_end"] = _loadavg()
    result["ok"] = all(_ok(run) for run in result["scenarios"])
    return result


def _ok(run: dict) -> bool:
    if run["status"] == "unavailable":
        return True
    if run["status"] != "ok":
        return False
    mine = run["imserver"]
    return not (mine.get("gaps") or mine.get("duplicates") or mine.get("incomplete") or mine.get("missing"))


async def _scenario(scenario: Scenario, options: Options, rate, server, relay) -> list[dict]:
    """Run one scenario (relay first, then imserver); `direct` with --rate adds a fixed-rate run."""
    if not scenario.available:
        note(f"{scenario.name}: {scenario.unavailable}")
        return [{"scenario": scenario.name, "status": "unavailable", "reason": scenario.unavailable}]
    if scenario.name == "soak" and isinstance(rate, float):
        options = Options(**{**vars(options), "rate": rate})
    runs = [await _measure(scenario.name, scenario.runner(), options, server, relay)]
    if scenario.name == "direct" and rate is not None and runs[0]["status"] == "ok":
        if rate == HALF:
            peak = (runs[0].get("relay") or runs[0]["imserver"])["messages_per_s"]
            rate = round(peak / 2)
        fixed = Options(**{**vars(options), "rate": float(rate)})
        runs.append(await _measure("direct-rate", scenario.runner(), fixed, server, relay))
    return runs


def _describe(exc: BaseException) -> str:
    """The error, with what a task group wrapped (its own message says only how many)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def _measure(name: str, runner, options: Options, server, relay) -> dict:
    run: dict = {"scenario": name, "status": "ok", "sizes": _sizes(name, options)}
    try:
        if relay is not None:
            note(f"{name}: against the relay")
            run["relay"] = await runner(options, relay)
        note(f"{name}: against imserver")
        run["imserver"] = await runner(options, server)
    except Exception as exc:  # noqa: BLE001 - one failed scenario does not end the run
        note(f"{name} failed: {exc!r}")
        return {**run, "status": "failed", "error": _describe(exc)[:2000]}
    if run["imserver"].get("rejected", {}).get("rate_limited"):
        run["note"] = "sends were rate limited: raise IMSERVER_RATE_MESSAGES_BURST / _PER_SECOND on that server"
    run["ratio"] = report.ratios(run["imserver"], run.get("relay"))
    run["targets"] = report.targets(name, run["imserver"], run["ratio"], options)
    return run


def _sizes(name: str, o: Options) -> str:
    return {
        "direct": f"{o.pairs} pairs, window {o.window}, {o.duration:g} s",
        "direct-rate": f"{o.pairs} pairs, {o.rate or 0:,.0f} msg/s offered, {o.duration:g} s",
        "group": f"{o.groups} x {o.group_size} members, {o.senders} senders, window {o.window}, {o.duration:g} s",
        "fanout": f"{o.followers} followers, {o.posts} posts one at a time",
        "idle": f"{o.connections} connections, {o.duration:g} s idle",
        "resume": f"{o.resume_clients} clients, {o.resume_messages} piled up each",
        "soak": f"{o.pairs} pairs, a group, posts, reconnects, warnings; {o.duration:g} s, a row per {o.soak_interval:g} s"
        + (f", {o.rate:,.0f} msg/s offered" if o.rate else ", half of the peak offered"),
    }.get(name, "")


def _loadavg() -> list[float] | None:
    from .procstat import loadavg

    return loadavg()


def main(argv: list[str] | None = None) -> int:
    """``python -m imserver.bench.cli``: the same as ``imserver bench``."""
    parser = argparse.ArgumentParser(prog="imserver bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
