"""The `imserver` command.

Settings come from ``IMSERVER_*`` environment variables (or a ``.env`` file in
the working directory); the options below override a few of them for one run.
An error prints one line, ``imserver: error [code]: what happened``, and exits
non-zero; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import traceback
from pathlib import Path

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

    from . import logs
    from .app import create_app
    from .serving import GracefulServer, uvicorn_options

    if args.no_migrate:
        settings.migrate_on_start = False
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    level = args.log_level or settings.log_level
    if args.workers != 1:
        return _serve_workers(args.workers, settings, host, port, level)
    logs.configure(node=settings.resolved_node_id(), level=level, fmt=settings.log_format)
    if args.worker_index is None:  # a worker's supervisor has said it
        _announce(settings, host, port)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=level,
        log_config=None,  # logs.configure set up every logger: one format for all lines
        access_log=False,  # imserver.access writes the access lines, with request ids
        **uvicorn_options(settings),  # protocols with our limits, no Server header (serving.py)
        proxy_headers=False,  # X-Forwarded-For is read by domain.client_ip, from trusted proxies only
    )
    # SIGTERM: notice and 1001 to every WebSocket, then exit within the grace period.
    server = GracefulServer(config, app, grace=settings.shutdown_grace_seconds)
    if args.worker_index is None:
        server.run()
    else:  # one of `--workers N`: a socket of its own on the shared port (supervisor.py)
        from .supervisor import STARTUP_FAILURE, listening_socket

        server.run(sockets=[listening_socket(host, port)])
        if not server.started:  # the supervisor does not restart what cannot start
            return STARTUP_FAILURE
    return 0


def _serve_workers(workers: int, settings: Settings, host: str, port: int, level: str) -> int:
    """`serve --workers N`: check, migrate once, then supervise N worker processes (supervisor.py)."""
    from . import logs, supervisor

    try:
        supervisor.check(
            workers, database_url=settings.resolved_database_url(), broker_url=settings.broker_url, port=port
        )
    except supervisor.WorkersRefused as exc:
        raise CliError(exc.code, exc.detail) from None
    logs.configure(node=settings.node_id or "supervisor", level=level, fmt=settings.log_format)
    _announce(settings, host, port)
    try:  # the port is free for SO_REUSEPORT sockets: else say so now, not once per worker
        supervisor.listening_socket(host, port).close()
    except OSError as exc:
        raise CliError("address_in_use", f"cannot listen on {host}:{port}: {exc.strerror}") from None
    if settings.migrate_on_start:
        _migrate(settings)
    return supervisor.supervise(
        workers, host=host, port=port, log_level=level, node_id=settings.node_id,
        grace_s=settings.shutdown_grace_seconds,
    )


def _announce(settings: Settings, host: str, port: int) -> None:
    """Say where the node listens and what it runs on; on first start, where the new key file is."""
    import logging

    from .store import keyring
    from .store.db import describe_url

    log = logging.getLogger("imserver.serve")
    where = describe_url(settings.resolved_database_url())
    log.info("listening on http://%s:%d (WebSocket ws://%s:%d/ws); database: %s", host, port, host, port, where)
    if not settings.master_keys.strip():
        path = (settings.data_dir / keyring.KEY_FILE_NAME).resolve()
        if keyring.ensure_key_file(path):
            log.warning(
                "created the key file %s: it is the only key to the identity data stored from now on. "
                "Back it up now, apart from the database; losing it makes that data unreadable", path,
            )
        else:
            log.info("identity data keys: %s (keep its backup current)", path)


def _migrate(settings: Settings) -> str | None:
    """Apply the migrations; the revision the database is at then."""
    from .store import migrate

    async def run() -> str | None:
        db = _database(settings)
        try:
            await migrate.upgrade(db)
            return await migrate.current(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    print(f"database at revision {_migrate(settings)}")
    return 0


def cmd_operator_create(args: argparse.Namespace, settings: Settings) -> int:
    from .domain.enums import Role

    password = _operator_password(args)

    async def run(services) -> int:
        return await services.accounts.create_operator(
            handle=args.handle, password=password, role=Role(args.role), created_by=None
        )

    operator_id = asyncio.run(_with_services(settings, run))
    print(f"operator {operator_id} ({args.role}) created")
    return 0


def _operator_password(args: argparse.Namespace) -> str:
    """From stdin (--password-stdin), IMSERVER_OPERATOR_PASSWORD, or a prompt typed twice on a terminal."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif os.environ.get("IMSERVER_OPERATOR_PASSWORD"):
        password = os.environ["IMSERVER_OPERATOR_PASSWORD"]
    elif sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise CliError("password_mismatch", "the two passwords differ")
    else:
        raise CliError(
            "password_required", "no terminal to ask on: give --password-stdin or IMSERVER_OPERATOR_PASSWORD"
        )
    if not password:
        raise CliError("password_required", "the password is empty")
    return password


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
    """Walk the audit chain and the chain over every record table; name the first broken rows.

    No migrations are applied and no audit row is written. Pending record-chain
    entries are sealed first unless --read-only (for a replica or a restored copy
    you do not want to write to).
    """
    from .domain.clock import SystemClock
    from .domain.errors import Unavailable
    from .services.audit import AuditLog
    from .services.records import Records

    if args.checkpoints:
        return _verify_checkpoints(args, settings)

    async def run():
        db = _database(settings)
        try:
            audit = await AuditLog(db, SystemClock()).verify(anchor=args.expect_head)
            records = await Records(db, SystemClock()).verify(seal=not args.read_only)
            return audit, records
        finally:
            await db.dispose()

    try:
        report, records = asyncio.run(run())
    except Unavailable as exc:
        print(f"audit chain not checked: {exc.detail} ({exc.__cause__!r})", file=sys.stderr)
        return AUDIT_UNCHECKED
    return _print_verdict(report, records)


def _print_verdict(report, records) -> int:
    print(f"rows checked: {report.checked}")
    print(f"head: {report.head or 'none (the log is empty)'}")
    if report.anchor:
        print(f"anchor: {report.anchor}")
    print(f"record chain: {records.entries} entries, {records.rows} record rows, {records.pending} pending")
    print(f"record chain head: {records.head or 'none'}")
    broken = False
    if report.broken:
        b = report.broken
        print(f"audit chain BROKEN at row {b.row_id} ({b.kind.value}): {b.reason}", file=sys.stderr)
        broken = True
    if records.chain_break:
        b = records.chain_break
        print(f"record chain BROKEN at entry {b.row_id} ({b.kind.value}): {b.reason}", file=sys.stderr)
        broken = True
    for p in records.problems:
        print(f"record {p.table} #{p.row_id} {p.kind.upper()}: {p.reason}", file=sys.stderr)
    if records.problem_count > len(records.problems):
        print(f"... and {records.problem_count - len(records.problems)} more", file=sys.stderr)
    if broken or records.problem_count:
        return AUDIT_BROKEN
    print("audit chain intact" + (" and matches the anchor" if report.anchor else ""))
    print("records intact")
    return 0


def _verify_checkpoints(args: argparse.Namespace, settings: Settings) -> int:
    """verify --checkpoints: signatures, then both chains walked through the latest checkpoint."""
    from .domain.clock import SystemClock
    from .domain.errors import Unavailable
    from .services.checkpoints import Checkpoints
    from .services.records import Records
    from .store import signing_key

    try:
        public_key = args.public_key or signing_key.public_hex(
            signing_key.load(settings.checkpoint_key, settings.data_dir, create=False)
        )
    except signing_key.SigningKeyError as exc:
        print(f"checkpoints not checked: {exc} (or pass --public-key)", file=sys.stderr)
        return AUDIT_UNCHECKED

    async def run():
        db = _database(settings)
        try:
            clock = SystemClock()
            records = Records(db, clock)
            checkpoints = Checkpoints(db, clock, records, lambda: None, node="cli", interval_minutes=0)
            return await checkpoints.verify(public_key, seal=not args.read_only)
        finally:
            await db.dispose()

    try:
        report = asyncio.run(run())
    except Unavailable as exc:
        print(f"checkpoints not checked: {exc.detail} ({exc.__cause__!r})", file=sys.stderr)
        return AUDIT_UNCHECKED
    print(f"checkpoints checked: {report.checked} (trusted key {public_key})")
    for problem in report.problems:
        print(f"CHECKPOINT PROBLEM: {problem}", file=sys.stderr)
    if report.latest:
        print(f"latest checkpoint: #{report.latest['id']} at {report.latest['at']}")
        print(f"  record chain head {report.latest['chain_head']}, audit head {report.latest['audit_head']}")
    if report.records is None:
        return AUDIT_BROKEN
    _print_verdict(report.audit, report.records)
    if report.ok:
        print("nothing before the latest checkpoint was truncated or rewritten")
        return 0
    return AUDIT_BROKEN


def cmd_audit_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    """Take a signed checkpoint now (it also goes to the regulator outbox)."""

    async def run(services):
        return await services.checkpoints.take()

    cp = asyncio.run(_with_services(settings, run))
    print(json.dumps(cp, indent=2))
    return 0


def cmd_audit_checkpoints(args: argparse.Namespace, settings: Settings) -> int:
    """The latest signed checkpoints, newest first, as JSON lines."""

    async def run(services):
        return await services.checkpoints.latest(args.limit)

    for cp in asyncio.run(_with_services(settings, run)):
        print(json.dumps(cp))
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    """Back up the database (SQLite: online backup API; PostgreSQL: pg_dump) and the key files."""
    import sqlite3
    import subprocess

    from .store import backup

    url = settings.resolved_database_url()
    try:
        result = backup.take(url, settings.data_dir, args.to)
    except FileNotFoundError as exc:
        print(f"backup failed: {exc}; run it by hand:", file=sys.stderr)
        print("  " + " ".join(backup.pg_dump_command(url, args.to / "imserver.dump")), file=sys.stderr)
        return 1
    except (OSError, RuntimeError, ValueError, sqlite3.Error, subprocess.CalledProcessError) as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    for path in result.files:
        print(path)
    if not any(p.name == "keys.json" for p in result.files) and not settings.master_keys.strip():
        print("warning: no keys.json in the data directory: identity data needs its master keys", file=sys.stderr)
    if settings.master_keys.strip() or settings.checkpoint_key.strip():
        print("keys set in the environment are not in this backup: keep them in your secret store", file=sys.stderr)
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


def cmd_export_subject(args: argparse.Namespace, settings: Settings) -> int:
    """Everything the records hold about one user in [since, until), as one JSON document."""
    from .services.filing_export import Export
    from .services.subject_export import render

    async def run(services):
        document = await services.subject_export.user(args.user, since=args.since, until=args.until)
        return Export(render(document), sum(document["counts"].values()), "application/json")

    return _write_export(settings, args, run, "rows about the user")


def cmd_retention_purge(args: argparse.Namespace, settings: Settings) -> int:
    """Purge what is past retention now (the server also does it every retention_purge_interval_hours)."""
    from .domain.errors import ImserverError

    async def run(services):
        return await services.retention.purge(args.kind or None, days=args.days)

    try:
        result = asyncio.run(_with_services(settings, run))
    except ImserverError as exc:
        print(f"purge refused: {exc.code.value}: {exc.detail}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


def cmd_retention_show(args: argparse.Namespace, settings: Settings) -> int:
    """The retention table as configured."""

    async def run(services):
        return services.retention.table()

    for row in asyncio.run(_with_services(settings, run)):
        print(json.dumps(row, ensure_ascii=False))
    return 0


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


class _Parser(argparse.ArgumentParser):
    """Every (sub)command accepts --debug, before or after its name (subparsers are made of this class)."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS,
            help="on an error, print the traceback as well as the one-line report",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="imserver", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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

    serve = sub.add_parser(
        "serve",
        help="run the server (applies migrations first)",
        description=SERVE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default=None, help="address to listen on (IMSERVER_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port to listen on (IMSERVER_PORT, default 8000)")
    serve.add_argument(
        "--no-migrate", action="store_true",
        help="do not apply migrations on start (IMSERVER_MIGRATE_ON_START=false); for several nodes",
    )
    serve.add_argument(
        "--log-level", default=None, choices=["debug", "info", "warning", "error"],
        help="log level (IMSERVER_LOG_LEVEL, default info); the format is IMSERVER_LOG_FORMAT: json or text",
    )
    serve.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="worker processes on the port (SO_REUSEPORT), each a node of the cluster; N > 1 needs "
        "PostgreSQL and a Redis broker (default 1: this process serves)",
    )
    serve.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)  # set by the supervisor
    serve.set_defaults(fn=cmd_serve)

    sub.add_parser(
        "migrate", help="apply database migrations and print the revision (IMSERVER_DATABASE_URL)"
    ).set_defaults(fn=cmd_migrate)

    operator = sub.add_parser("operator", help="manage operator accounts")
    op_sub = operator.add_subparsers(dest="operator_command", required=True)
    create = op_sub.add_parser(
        "create",
        help="create an operator",
        description="Create an operator. The password comes from the first line of standard input with "
        "--password-stdin, else from IMSERVER_OPERATOR_PASSWORD, else from a prompt on a terminal.",
    )
    create.add_argument("--handle", required=True, help="the operator's sign-in name (no environment variable)")
    create.add_argument(
        "--role", required=True, choices=["reviewer", "moderator", "compliance", "admin"],
        help="what the operator may do; roles do not nest (no environment variable)",
    )
    create.add_argument(
        "--password-stdin", action="store_true",
        help="read the password from standard input (instead of IMSERVER_OPERATOR_PASSWORD or a prompt)",
    )
    create.set_defaults(fn=cmd_operator_create)

    audit = sub.add_parser("audit", help="the hash-chained audit log, the record chain and its signed checkpoints")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify",
        help="walk the audit chain and the chain over every record table; exit 0 if intact, 1 naming what broke",
    )
    verify.add_argument(
        "--expect-head",
        type=_anchor,
        default=None,
        metavar="ID:HASH",
        help="a head printed by an earlier run and kept elsewhere; catches removed last rows and rewritten chains",
    )
    verify.add_argument(
        "--read-only", action="store_true", help="do not seal pending record-chain entries first (replicas)"
    )
    verify.add_argument(
        "--checkpoints",
        action="store_true",
        help="check the signed checkpoints and prove nothing before the latest was truncated or rewritten",
    )
    verify.add_argument(
        "--public-key", default=None, metavar="HEX", help="the trusted checkpoint key (default: from the key)"
    )
    verify.set_defaults(fn=cmd_audit_verify)
    audit_sub.add_parser("checkpoint", help="take a signed checkpoint of the chain heads now").set_defaults(
        fn=cmd_audit_checkpoint
    )
    listing = audit_sub.add_parser("checkpoints", help="list the latest signed checkpoints (JSON lines)")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(fn=cmd_audit_checkpoints)

    backup_cmd = sub.add_parser(
        "backup", help="back up the database and the key files while the server runs (docs/operations.md)"
    )
    backup_cmd.add_argument("--to", type=Path, required=True, help="directory for the backup files")
    backup_cmd.set_defaults(fn=cmd_backup)

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
    subject = export_sub.add_parser("subject", help="everything the records hold about one user in a period (JSON)")
    subject.add_argument("--user", type=int, required=True, help="the user's id")
    subject.add_argument("--since", type=_when, required=True, help="ISO 8601 start, inclusive (no zone: local_timezone)")
    subject.add_argument("--until", type=_when, default=None, help="ISO 8601 end, exclusive (default: now)")
    subject.add_argument("--output", "-o", default=None, help="write to this file instead of stdout")
    subject.set_defaults(fn=cmd_export_subject)

    retention = sub.add_parser("retention", help="the retention table and the purge")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True)
    retention_sub.add_parser("show", help="print the configured retention table").set_defaults(fn=cmd_retention_show)
    purge = retention_sub.add_parser("purge", help="purge what is past retention now (refused under the legal floor)")
    purge.add_argument("--kind", action="append", help="a kind to purge (repeatable; default: all)")
    purge.add_argument("--days", type=float, default=None, help="override the configured period (never under the floor)")
    purge.set_defaults(fn=cmd_retention_purge)
    return parser


SERVE_DESCRIPTION = """\
Run imserver: the REST APIs, the WebSocket gateway at /ws, /metrics, /livez and /readyz.

With no settings it runs on a SQLite file under ./data (IMSERVER_DATA_DIR),
applies the migrations, and on first start writes the identity encryption keys
to ./data/keys.json: back that file up, it is the only key to identity data.
For PostgreSQL set IMSERVER_DATABASE_URL (postgresql+asyncpg://user:pw@host/db);
for several nodes also IMSERVER_BROKER_URL (redis://host:6379/0) and the keys
(IMSERVER_MASTER_KEYS, IMSERVER_HMAC_KEY). Every setting is an IMSERVER_*
environment variable; see docs/operations.md.

--workers N runs N processes on the port (SO_REUSEPORT), each a node of the
cluster; it needs PostgreSQL and the Redis broker.

On SIGTERM it stops accepting, tells every WebSocket client to reconnect (a
notice, then close 1001) and exits within IMSERVER_SHUTDOWN_GRACE_SECONDS.
"""


class CliError(Exception):
    """An error the command reports in one line with a stable code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def describe(exc: BaseException) -> tuple[str, str]:
    """(code, one line) for an error that ended a command."""
    from pydantic import ValidationError

    from .domain.errors import ImserverError
    from .store.keyring import KeyRingError
    from .store.migrate import MigrationsNotFound

    if isinstance(exc, CliError):
        return exc.code, exc.detail
    if isinstance(exc, ImserverError):
        return exc.code.value, exc.detail
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        return "bad_setting", f"IMSERVER_{where.upper()}: {first.get('msg', 'invalid')}"
    if isinstance(exc, MigrationsNotFound):
        return "migrations_not_found", str(exc)
    if isinstance(exc, KeyRingError):
        return "bad_keys", str(exc)
    if isinstance(exc, OSError):
        return "os_error", f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    # Anything else is a bug: its class and first line (SQL parameters are never in it).
    return "internal", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        return args.fn(args, Settings())
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the command's one-line report (--debug: the traceback)
        if debug:
            traceback.print_exc()
        code, detail = describe(exc)
        hint = "" if debug else " (--debug shows the traceback)"
        print(f"imserver: error [{code}]: {detail}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
