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

    if args.no_migrate:
        settings.migrate_on_start = False
    host = args.host or settings.host
    port = args.port or settings.port
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=args.log_level,
        ws_per_message_deflate=False,  # issue 3: off by default (CPU and CRIME-style leaks)
        ws_max_size=settings.max_frame_bytes,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imserver", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args, Settings())


if __name__ == "__main__":
    sys.exit(main())
