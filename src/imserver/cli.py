"""The `imserver` command."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from .config import Settings


def _database(settings: Settings):
    from .store.db import Database

    url = settings.resolved_database_url()
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Database.from_url(url, sqlite_synchronous=settings.sqlite_synchronous)


async def _with_services(settings: Settings, fn):
    """Run `fn(services)` against a migrated database, then close it."""
    from .services.container import build_services
    from .store import migrate

    db = _database(settings)
    try:
        await migrate.upgrade(db)
        return await fn(build_services(settings, db))
    finally:
        await db.dispose()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from .app import create_app
    from .serving import uvicorn_options

    if args.no_migrate:
        settings.migrate_on_start = False
    host = args.host or settings.host
    port = args.port or settings.port
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=args.log_level,
        **uvicorn_options(settings),  # protocols with our limits, no Server header (serving.py)
        proxy_headers=True,
    )
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from .store import migrate

    async def run() -> str | None:
        db = _database(settings)
        try:
            await migrate.upgrade(db)
            return await migrate.current(db)
        finally:
            await db.dispose()

    print(f"database at revision {asyncio.run(run())}")
    return 0


def cmd_operator_create(args: argparse.Namespace, settings: Settings) -> int:
    from .domain.enums import Role

    password = os.environ.get("IMSERVER_OPERATOR_PASSWORD") or getpass.getpass("password: ")

    async def run(services) -> int:
        return await services.accounts.create_operator(
            handle=args.handle, password=password, role=Role(args.role), created_by=None
        )

    operator_id = asyncio.run(_with_services(settings, run))
    print(f"operator {operator_id} ({args.role}) created")
    return 0


# `imserver audit verify` exit codes: 0 intact, 1 broken (or not matching the
# anchor), 3 could not be checked (database unreachable). 2 is argparse's usage error.
AUDIT_BROKEN = 1
AUDIT_UNCHECKED = 3


def _anchor(value: str):
    from .store.audit import Anchor

    try:
        return Anchor.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Walk the audit chain; print rows checked and the head, or the first broken row.

    Read-only: no migrations are applied and no audit row is written, so it can
    be pointed at a replica or a restored backup.
    """
    from .domain.clock import SystemClock
    from .domain.errors import Unavailable
    from .services.audit import AuditLog

    async def run():
        db = _database(settings)
        try:
            return await AuditLog(db, SystemClock()).verify(anchor=args.expect_head)
        finally:
            await db.dispose()

    try:
        report = asyncio.run(run())
    except Unavailable as exc:
        print(f"audit chain not checked: {exc.detail} ({exc.__cause__!r})", file=sys.stderr)
        return AUDIT_UNCHECKED
    print(f"rows checked: {report.checked}")
    print(f"head: {report.head or 'none (the log is empty)'}")
    if report.anchor:
        print(f"anchor: {report.anchor}")
    if report.broken:
        b = report.broken
        print(f"audit chain BROKEN at row {b.row_id} ({b.kind.value}): {b.reason}", file=sys.stderr)
        return AUDIT_BROKEN
    print("audit chain intact" + (" and matches the anchor" if report.anchor else ""))
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    """Make a new master key active and re-wrap every identity's data key under it.

    Key file (no IMSERVER_MASTER_KEYS): a new key is generated, added to
    <data_dir>/keys.json and made active; running servers on this machine pick
    the file up by themselves. Keys from the environment: first add the new key
    to IMSERVER_MASTER_KEYS and name it in IMSERVER_MASTER_KEY_ID on every node
    (restart them), then run this to re-wrap everything under it. Old keys stay
    listed until no record names them. Record ciphertexts never change.
    """
    from .store import keyring

    if not settings.master_keys.strip():
        path = settings.data_dir / keyring.KEY_FILE_NAME
        keyring.ensure_key_file(path)
        print(f"new master key {keyring.rotate_key_file(path)} generated in {path} and made active")

    async def run(services):
        return await services.identities.rewrap_all()

    result = asyncio.run(_with_services(settings, run))
    print(f"re-wrapped {result.rewrapped} identity records under master key {result.key_id}")
    if result.failed:
        print(f"{len(result.failed)} records could not be unwrapped: ids {result.failed}", file=sys.stderr)
        return 1
    return 0


def _when(value: str) -> str:
    """An ISO 8601 time for --since/--until, checked here and read by the service
    (a bare date or a time without a zone is in the configured local_timezone)."""
    from datetime import datetime

    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from exc
    return value


def cmd_export_sanctions(args: argparse.Namespace, settings: Settings) -> int:
    """Print the regulator records (Art. 8) created in [since, until) as JSON lines or CSV.

    The same records, byte for byte, as ``GET /admin/v1/regulator/sanctions`` and
    the webhook. The export is written to the audit chain (actor: system).
    """

    async def run(services):
        return await services.regulator.export(since=args.since, until=args.until, fmt=args.format)

    return _write_export(settings, args, run, "records")


def cmd_export_filings(args: argparse.Namespace, settings: Settings) -> int:
    """Print the register of filed public accounts (Art. 7 ¶1), grouped by province and category.

    The same bytes as ``GET /admin/v1/public-accounts/filings``; the export is
    written to the audit chain (actor: system).
    """

    async def run(services):
        return await services.public_accounts.export_filings(
            None,
            fmt=args.format,
            include_superseded=args.include_superseded,
            since=getattr(args, "since", None),
            until=getattr(args, "until", None),
        )

    return _write_export(settings, args, run, "filing records")


def cmd_report_staffing(args: argparse.Namespace, settings: Settings) -> int:
    """Print the staffing report (Art. 5) for [since, until) as JSON: per queue, items entering,
    handled per active operator, time to first action and to resolution (p50/p90), against active users."""
    import json

    from .domain.errors import ImserverError

    async def run(services):
        return await services.staffing.report(since=args.since, until=args.until)

    try:
        report = asyncio.run(_with_services(settings, run))
    except ImserverError as exc:
        print(f"report failed: {exc.code.value}: {exc.detail}", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    overdue = [name for name, q in report["queues"].items() if q["overdue"]]
    if overdue:
        print(f"warning: overdue queues: {', '.join(overdue)}", file=sys.stderr)
    return 0


def _write_export(settings: Settings, args: argparse.Namespace, run, what: str) -> int:
    """Run an export use case and write its body to --output or stdout; the count to stderr."""
    from .domain.errors import ImserverError

    try:
        export = asyncio.run(_with_services(settings, run))
    except ImserverError as exc:
        print(f"export failed: {exc.code.value}: {exc.detail}", file=sys.stderr)
        return 1
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as out:
            out.write(export.body)
    else:
        sys.stdout.write(export.body)
    print(f"{export.count} {what}", file=sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """The load generator and benchmarks; all of it lives in imserver.bench."""
    from .bench.cli import run

    return run(args)


def cmd_durability(args: argparse.Namespace, settings: Settings) -> int:
    """The durability proof (SIGKILL while sending); lives in imserver.bench.durability."""
    from .bench.durability import run_from_args

    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imserver", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from .bench.cli import add_arguments as bench_arguments  # argparse only: cheap to import

    bench = sub.add_parser("bench", help="load generator and benchmarks (docs/benchmarks.md)")
    bench_arguments(bench)
    bench.set_defaults(fn=cmd_bench)
    from .bench.durability import add_arguments as durability_arguments  # argparse only: cheap to import

    durability = sub.add_parser(
        "durability", help="SIGKILL the server repeatedly while clients send; exit 1 on any acked message lost"
    )
    durability_arguments(durability)
    durability.set_defaults(fn=cmd_durability)

    serve = sub.add_parser("serve", help="run the server (applies migrations first)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations on start")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(fn=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(fn=cmd_migrate)

    operator = sub.add_parser("operator", help="manage operator accounts")
    op_sub = operator.add_subparsers(dest="operator_command", required=True)
    create = op_sub.add_parser("create", help="create an operator (password from IMSERVER_OPERATOR_PASSWORD or prompt)")
    create.add_argument("--handle", required=True)
    create.add_argument("--role", required=True, choices=["reviewer", "moderator", "compliance", "admin"])
    create.set_defaults(fn=cmd_operator_create)

    audit = sub.add_parser("audit", help="the hash-chained audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify", help="walk the chain; exit 0 if intact, 1 naming the first changed, removed or reordered row"
    )
    verify.add_argument(
        "--expect-head",
        type=_anchor,
        default=None,
        metavar="ID:HASH",
        help="a head printed by an earlier run and kept elsewhere; catches removed last rows and rewritten chains",
    )
    verify.set_defaults(fn=cmd_audit_verify)

    report = sub.add_parser("report", help="reports for the provider's own management")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    staffing = report_sub.add_parser("staffing", help="operator queues against the scale of the service (Art. 5)")
    staffing.add_argument("--since", type=_when, required=True, help="ISO 8601 start (no zone: local_timezone)")
    staffing.add_argument("--until", type=_when, default=None, help="ISO 8601 end, exclusive (default: now)")
    staffing.set_defaults(fn=cmd_report_staffing)

    keys = sub.add_parser("keys", help="master keys of identity encryption")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser(
        "rotate", help="activate a new master key and re-wrap every identity's data key under it"
    ).set_defaults(fn=cmd_keys_rotate)
    export = sub.add_parser("export", help="export records for the regulator (Art. 8)")
    export_sub = export.add_subparsers(dest="export_command", required=True)
    sanctions = export_sub.add_parser("sanctions", help="sanction records (imposed, confirmed, lifted, expired, overturned)")
    sanctions.add_argument("--since", type=_when, required=True, help="ISO 8601 start (no zone: local_timezone)")
    sanctions.add_argument("--until", type=_when, default=None, help="ISO 8601 end, exclusive (default: now)")
    sanctions.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    sanctions.add_argument("--output", "-o", default=None, help="write to this file instead of stdout")
    sanctions.set_defaults(fn=cmd_export_sanctions)
    filings = export_sub.add_parser("filings", help="the register of filed public accounts, grouped by category (Art. 7)")
    filings.add_argument("--format", choices=["jsonl", "csv", "json"], default="jsonl")
    filings.add_argument("--since", type=_when, default=None, help="filed at or after (no zone: local_timezone)")
    filings.add_argument("--until", type=_when, default=None, help="filed before (no zone: local_timezone)")
    filings.add_argument("--include-superseded", action="store_true", help="also records replaced by a re-filing")
    filings.add_argument("--output", "-o", default=None, help="write to this file instead of stdout")
    filings.set_defaults(fn=cmd_export_filings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args, Settings())


if __name__ == "__main__":
    sys.exit(main())
