"""The composition root: settings in, a wired FastAPI app out.

Everything is built here and passed down: the database, the broker, the
gateway's hub, the services (through the one bootstrap,
:func:`~imserver.services.container.build_services`) and the routers. The
lifespan opens and closes them.
"""

from __future__ import annotations

import contextlib
import logging
import math

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from . import health
from .access import AccessMiddleware
from .admin.openapi import OPENAPI_TAGS
from .config import Settings
from .domain.clock import Clock
from .domain.errors import Code, ImserverError
from .broker import make_broker
from .gateway import endpoint as ws_endpoint
from .gateway.hub import Hub
from .api.errors import CatchAll, install_error_schema, validation_body
from .api.http_limits import BodyGuard, SecurityHeaders
from .log_hygiene import keep_data_out_of_logs
from .metrics import Metrics
from .services.container import Services, build_services
from .store import migrate
from .store.db import Database

log = logging.getLogger("imserver")


def create_app(settings: Settings | None = None, *, clock: Clock | None = None, db: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    keep_data_out_of_logs()  # no SQL parameters or frames at DEBUG (log_hygiene.py)
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        database = db
        if database is None:
            url = settings.resolved_database_url()
            if url.startswith("sqlite"):
                settings.data_dir.mkdir(parents=True, exist_ok=True)
            database = Database.from_url(url, sqlite_synchronous=settings.sqlite_synchronous)
        if settings.migrate_on_start:
            await migrate.upgrade(database)
        app.state.migration_heads = migrate.heads()  # what /readyz expects the database to be at
        hub = Hub()
        broker = make_broker(settings.broker_url, channel_prefix=settings.broker_channel_prefix)
        services = build_services(settings, database, clock, broker=broker, local=hub, metrics=metrics)
        # Payloads lost while the broker was away are in the store: resync by cursor;
        # invalidations were lost too: forget every cached fact; and logouts and
        # closures made elsewhere meanwhile were not heard: recheck every socket's token.
        broker.on_reconnect.append(hub.resync_all)
        broker.on_reconnect.append(services.effects.forget_everything)
        broker.on_reconnect.append(_revalidate_sockets(services, hub))
        metrics.track_broker(broker, services.cluster)  # /metrics: imserver_broker_up and counters
        app.state.services = services
        app.state.hub = hub
        await services.start()
        try:
            yield
        finally:
            await services.stop()
            if db is None:
                await database.dispose()

    # /docs and /redoc load their scripts from the installed fastapi-offline package,
    # not a CDN that an operator's network inside a compliance zone usually blocks.
    app = FastAPIOffline(
        title="imserver",
        version=__version__,
        lifespan=lifespan,
        description="Instant messaging with compliance in the message path.",
        openapi_tags=OPENAPI_TAGS,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.live_sockets = set()  # every open WebSocket connection (gateway/endpoint.py)
    app.state.shutting_down = False  # set by serving.GracefulServer on SIGTERM: /readyz answers 503
    _install_error_handlers(app)

    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> JSONResponse:
        """Health of the database (and broker): 200 ok, 503 degraded."""
        services: Services = request.app.state.services
        db_ok = await services.db.ping()
        metrics.db_up.set(1 if db_ok else 0)
        health = {"database": "ok" if db_ok else "down", **services.health()}
        ok = all(v == "ok" for v in health.values())
        return JSONResponse({"status": "ok" if ok else "degraded", **health}, status_code=200 if ok else 503)

    app.include_router(health.router)  # /livez, /readyz

    @app.get("/metrics", tags=["ops"])
    async def prometheus() -> Response:
        """Prometheus metrics, in the text exposition format."""
        await metrics.refresh()  # gauges computed at scrape time (open reports)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    from .admin import audit as admin_audit
    from .admin import held as admin_held
    from .admin import identity as admin_identity
    from .admin import routes as admin_routes
    from .api import chat, identity, users

    app.include_router(users.router)
    app.include_router(identity.router)
    app.include_router(chat.router)
    app.include_router(admin_routes.router)
    app.include_router(admin_identity.router)
    app.include_router(admin_audit.router)
    app.include_router(admin_held.router)
    # The operator side: sanctions, appeals, reports, term lists, regulator export.
    from .admin import regulator as admin_regulator
    from .admin import reports as admin_reports
    from .admin import sanctions as admin_sanctions
    from .admin import terms as admin_terms
    from .api import reports as user_reports
    from .api import sanctions as user_sanctions

    for module in (admin_sanctions, admin_reports, admin_terms, admin_regulator, user_reports, user_sanctions):
        app.include_router(module.router)
    from .admin import staffing as admin_staffing  # Art. 5: queues against the scale of the service

    app.include_router(admin_staffing.router)
    # Public accounts (Art. 7): users' and operators' routes.
    from .admin import public_accounts as admin_public_accounts
    from .api import public_accounts as user_public_accounts

    app.include_router(user_public_accounts.router)
    app.include_router(admin_public_accounts.router)
    if settings.console_enabled:  # the operator console's pages at /console
        from . import console

        console.install(app)
    # The operator workbench: users, content reads, operators, agreements.
    from .admin import users as admin_users

    for router in (admin_users.router, admin_users.content_router, admin_routes.operators_router, admin_routes.agreements_router):
        app.include_router(router)
    from .admin import records as admin_records  # sign-in log, legal holds, deletions, checkpoints

    app.include_router(admin_records.router)

    from .admin import security as admin_security  # the operators' TOTP second factor

    app.include_router(admin_security.router)
    app.include_router(ws_endpoint.router)  # the route table's record of /ws; SocketsFirst serves it
    # HTTP limits and headers (api/http_limits.py): inside CatchAll, outside the routes.
    app.add_middleware(
        BodyGuard,
        default_cap=settings.http_max_body_bytes_default,
        large_cap=settings.http_max_body_bytes,
        body_timeout=settings.http_body_timeout_seconds,
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessMiddleware, metrics=metrics)  # outermost: request id, access line, counter
    # Built now (no middleware can be added after this), with /ws upgrades
    # taken ahead of all of it: ws_endpoint.SocketsFirst.
    app.middleware_stack = ws_endpoint.SocketsFirst(app.build_middleware_stack())
    return app


def _revalidate_sockets(services: Services, hub: Hub):
    async def hook() -> None:
        hashes = hub.token_hashes()
        live = await services.accounts.live_tokens(hashes)
        for token_hash in set(hashes) - live:
            hub.close_token(token_hash, reason="session ended")

    return hook


def _install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as JSON {"code", "detail"} with a stable code."""

    @app.exception_handler(ImserverError)
    async def domain_error(_: Request, exc: ImserverError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.status == 429 and "retry_after" in exc.extra:
            headers = {"Retry-After": str(math.ceil(float(exc.extra["retry_after"])))}
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_body(exc.errors()), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: Code.NOT_FOUND,
            405: Code.METHOD_NOT_ALLOWED,
            408: Code.REQUEST_TIMEOUT,  # api/http_limits.py: the body stopped arriving
            413: Code.BODY_TOO_LARGE,  # api/http_limits.py: over the route's cap
        }.get(exc.status_code, Code.MALFORMED)
        return JSONResponse(
            {"code": code.value, "detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    # Unexpected exceptions are caught by CatchAll (not an Exception handler, which
    # Starlette runs in ServerErrorMiddleware and then re-raises: a second
    # traceback from the server and a closed keep-alive connection).
    app.add_middleware(CatchAll)
    install_error_schema(app)
