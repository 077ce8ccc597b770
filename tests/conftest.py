"""Fixtures: every store test runs on SQLite and on PostgreSQL, never on a mock.

PostgreSQL comes from IMSERVER_TEST_POSTGRES_URL (default: 127.0.0.1:5432,
database `test`). Each test run migrates a schema of its own once, and each test
starts from empty tables. Where PostgreSQL is unreachable the PostgreSQL half is
skipped, except under CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import socket
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from imserver.app import create_app
from imserver.config import Settings
from imserver.domain.clock import SystemClock
from imserver.serving import uvicorn_options
from imserver.store import migrate
from imserver.store.db import Database
from imserver.store.tables import metadata

from .contract import response_hook

PG_URL = os.environ.get("IMSERVER_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("IMSERVER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unreachable(what: str, why: str) -> None:
    """Skip locally; fail in CI, where every backend must be tested."""
    if IN_CI:
        pytest.fail(f"{what} is unreachable in CI: {why}", pytrace=False)
    pytest.skip(f"{what} unreachable: {why}")


# -- database backends --------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test (migrating per test is slow)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"

    async def build() -> None:
        db = Database.from_url(f"sqlite+aiosqlite:///{path}")
        await migrate.upgrade(db)
        await db.dispose()

    asyncio.run(build())
    return path


@pytest.fixture(scope="session")
def pg_schema():
    """A migrated PostgreSQL schema of this run's own; dropped at the end."""
    schema = f"imserver_test_{uuid.uuid4().hex[:10]}"

    async def build() -> str | None:
        admin = Database.from_url(PG_URL)
        try:
            async with admin.transaction() as conn:
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        except Exception as exc:  # noqa: BLE001 - reported below
            return repr(exc)
        finally:
            await admin.dispose()
        db = Database.from_url(PG_URL, search_path=schema)
        await migrate.upgrade(db)
        await db.dispose()
        return None

    error = asyncio.run(build())
    yield schema, error
    if error is None:

        async def drop() -> None:
            admin = Database.from_url(PG_URL)
            async with admin.transaction() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()

        asyncio.run(drop())


# Tables keep their rows across tests only where the migration seeded them.
SEEDED = {"agreement_versions": "version > 1", "posts_stream": "id <> 1", "record_purge_gate": "id <> 1"}


async def _empty_pg(db: Database) -> None:
    names = [t.name for t in metadata.sorted_tables if t.name not in SEEDED]
    async with db.transaction() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        for table, where in SEEDED.items():
            await conn.execute(text(f"DELETE FROM {table} WHERE {where}"))
        # The posts stream's counter row is kept (seeded by migration 0003) and rewound.
        await conn.execute(text("UPDATE posts_stream SET last_position = 0"))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def database_url(backend, request, tmp_path) -> tuple[str, str | None]:
    """(url, search_path) of an empty, migrated database of the parametrized backend."""
    if backend == "sqlite":
        path = tmp_path / "imserver.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}", None
    schema, error = request.getfixturevalue("pg_schema")
    if error:
        unreachable("PostgreSQL", error)
    return PG_URL, schema


@pytest.fixture
async def db(database_url, backend):
    url, search_path = database_url
    database = Database.from_url(url, search_path=search_path)
    if backend == "postgres":
        await _empty_pg(database)
    yield database
    await database.dispose()


# -- settings and the app ----------------------------------------------------------------


def test_keys() -> dict[str, str]:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    return {"master_keys": f"test1:{key}", "hmac_key": base64.b64encode(secrets.token_bytes(32)).decode()}


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        migrate_on_start=False,  # the db fixture is migrated already
        # Cheaper argon2 keeps the suite fast; the defaults are checked in test_passwords.
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        allowed_origins=["http://allowed.example"],
        # Tests send bursts; the rate-limit check has tests of its own.
        rate_messages_burst=100_000,
        rate_messages_per_second=100_000,
        # The provider holds a valid news information service licence, so public accounts run.
        provider_operator_name="Example Network Technology Co., Ltd.",
        provider_icp_licence="京ICP证000000号",
        provider_news_licence="11120180000",
        provider_news_licence_expires_at=datetime(2099, 12, 31, tzinfo=UTC),
        **test_keys(),
    )


@pytest.fixture
def clock():
    return SystemClock()


@pytest.fixture
async def app(settings, db, clock):
    application = create_app(settings, clock=clock, db=db)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app):
    """An HTTP client on the app in-process (no socket); see `server` for a real one."""
    transport = httpx.ASGITransport(app=app)
    # Every admin response is checked against the OpenAPI (tests/contract.py).
    hooks = {"response": [response_hook(app)]}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", event_hooks=hooks) as client:
        client.services = app.state.services  # lets helpers.register verify users
        yield client


@dataclass
class RunningServer:
    app: object
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def services(self):
        return self.app.state.services


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def server(settings, db, clock):
    """The app served by uvicorn on a real 127.0.0.1 socket, in the test's event loop."""
    application = create_app(settings, clock=clock, db=db)
    config = uvicorn.Config(
        application,
        host="127.0.0.1",
        port=free_port(),
        log_level="warning",
        lifespan="on",
        **uvicorn_options(settings),  # as `imserver serve`
    )
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        if task.done():
            task.result()
            raise RuntimeError("server exited during start-up")
        await asyncio.sleep(0.01)
    yield RunningServer(application, "127.0.0.1", config.port)
    srv.should_exit = True
    await asyncio.wait_for(task, timeout=10)


class RetryOnDrop(httpx.AsyncBaseTransport):
    """Sends a request once more when the connection dropped before any response came.

    A known, not yet explained flake: late in a full run on a loaded 2-core machine,
    about one request in ten thousand on the in-process server's socket ends with
    "Server disconnected without sending a response" (or a ReadError), each time in
    a different test; no test alone reproduces it. Only that transport failure is
    retried, once; any response at all, error or not, goes to the test as it came,
    so no assertion is weakened (a retried request the server had handled would
    answer differently and fail its test).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.inner.handle_async_request(request)
        except (httpx.RemoteProtocolError, httpx.ReadError):
            return await self.inner.handle_async_request(request)
        except httpx.TimeoutException:
            # The server shares this event loop: what its tasks wait on tells a stall from a hang.
            _print_tasks(f"{request.method} {request.url.path}: no response within {CLIENT_TIMEOUT_S} s")
            raise

    async def aclose(self) -> None:
        await self.inner.aclose()


# A request on the in-process server answers in milliseconds; this only bounds a hang.
# (httpx's default, 5 s, was once met by a plain read late in a full run on a loaded
# 2-core machine: a stall, not a failure of what the test checks.)
CLIENT_TIMEOUT_S = 30.0


def _print_tasks(why: str) -> None:
    """Every task of the running loop with its stack, on stderr (pytest shows it with the failure)."""
    print(f"--- {why}; the event loop's tasks:", file=sys.stderr)
    for task in asyncio.all_tasks():
        task.print_stack(limit=8, file=sys.stderr)


@pytest.fixture
async def client(server):
    hooks = {"response": [response_hook(server.app)]}  # admin responses against the OpenAPI (tests/contract.py)
    # Idle connections are dropped after a second, well before the server's keep-alive
    # timeout (5 s): on a loaded machine a reused connection could otherwise meet the
    # server's close mid-request (httpx.ReadError / "Server disconnected").
    limits = httpx.Limits(keepalive_expiry=1.0)
    transport = RetryOnDrop(httpx.AsyncHTTPTransport(limits=limits))
    async with httpx.AsyncClient(
        base_url=server.base_url, event_hooks=hooks, transport=transport, timeout=CLIENT_TIMEOUT_S
    ) as c:
        c.services = server.services  # lets helpers.register verify users
        yield c
