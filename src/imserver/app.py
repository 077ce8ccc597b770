"""The composition root: settings in, a wired FastAPI app out.

Everything is built here and passed down (STYLE.md habit 6): the database, the
clock, the services and the routers. The lifespan opens and closes them.
"""

from __future__ import annotations

import contextlib
import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from .config import Settings
from .domain.clock import Clock
from .domain.errors import Code, ImserverError
from .broker import MemoryBroker, RedisBroker, make_broker
from .gateway import endpoint as ws_endpoint
from .gateway.hub import Hub
from .gateway.protocol import CLOSE_REVOKED
from .api.errors import CatchAll, install_error_schema, validation_body
from .api.http_limits import BodyGuard, SecurityHeaders
from .log_hygiene import keep_data_out_of_logs
from .metrics import Metrics
from .services.cluster import ClusterFanout
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
        services = build_services(settings, database, clock)
        services.metrics = metrics
        hub = Hub()
        services.token_listeners.append(_close_token_sockets(hub))
        services.broker = make_broker(settings.broker_url)
        if settings.broker_channel_prefix and isinstance(services.broker, RedisBroker):
            services.broker = RedisBroker(settings.broker_url, channel_prefix=settings.broker_channel_prefix)
        if isinstance(services.broker, MemoryBroker):
            services.messaging.fanout = hub  # one node: nothing to tell anyone else
        else:
            services.cluster = ClusterFanout(hub, services.broker, services.node_id)
            services.messaging.fanout = services.cluster
            # Payloads lost while the broker was away are in the store: resync by cursor.
            services.broker.on_reconnect.append(hub.resync_all)
            accounts = getattr(services, "public_accounts", None)
            if accounts is not None:
                services.cluster.followers_loader = accounts.followers
            # So were policy invalidations: drop every cached snapshot (issue 6).
            services.broker.on_reconnect.append(services.after_broker_reconnect)
            # Logouts and closures made elsewhere while the broker was away were not heard.
            services.broker.on_reconnect.append(_revalidate_sockets(services, hub))
        metrics.track_broker(services.broker, services.cluster)  # /metrics: imserver_broker_up and counters
        app.state.services = services
        app.state.hub = hub
        await services.start()
        try:
            yield
        finally:
            await services.stop()
            if db is None:
                await database.dispose()

    app = FastAPI(
        title="imserver",
        version=__version__,
        lifespan=lifespan,
        description="Instant messaging with compliance in the message path.",
    )
    app.state.settings = settings
    app.state.metrics = metrics
    _install_error_handlers(app)

    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> JSONResponse:
        services: Services = request.app.state.services
        db_ok = await services.db.ping()
        metrics.db_up.set(1 if db_ok else 0)
        health = {"database": "ok" if db_ok else "down", **services.health()}
        ok = all(v == "ok" for v in health.values())
        return JSONResponse({"status": "ok" if ok else "degraded", **health}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"])
    async def prometheus() -> Response:
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
    # Operator side of issue 4: sanctions, appeals, reports, term lists, regulator export.
    from .admin import regulator as admin_regulator
    from .admin import reports as admin_reports
    from .admin import sanctions as admin_sanctions
    from .admin import terms as admin_terms
    from .api import reports as user_reports
    from .api import sanctions as user_sanctions

    for module in (admin_sanctions, admin_reports, admin_terms, admin_regulator, user_reports, user_sanctions):
        app.include_router(module.router)
    # Public accounts (issue 5, Art. 7): users' and operators' routes.
    from .admin import public_accounts as admin_public_accounts
    from .api import public_accounts as user_public_accounts

    app.include_router(user_public_accounts.router)
    app.include_router(admin_public_accounts.router)
    from .admin import security as admin_security  # TOTP, four-eyes confirmation of privileged grants

    app.include_router(admin_security.router)
    app.include_router(ws_endpoint.router)  # the route table's record of /ws; WebSocketFastPath serves it
    # HTTP limits and headers (api/http_limits.py): inside CatchAll, outside the routes.
    app.add_middleware(
        BodyGuard,
        default_cap=settings.http_max_body_bytes_default,
        large_cap=settings.http_max_body_bytes,
        body_timeout=settings.http_body_timeout_seconds,
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ws_endpoint.WebSocketFastPath)
    return app


def _close_token_sockets(hub: Hub):
    async def listener(token_hash: str) -> None:
        hub.close_token(token_hash, CLOSE_REVOKED, "token revoked")

    return listener


def _revalidate_sockets(services: Services, hub: Hub):
    async def hook() -> None:
        hashes = hub.token_hashes()
        live = await services.accounts.live_tokens(hashes)
        for token_hash in set(hashes) - live:
            hub.close_token(token_hash, CLOSE_REVOKED, "session ended")

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
