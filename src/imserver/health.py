"""Liveness and readiness, for orchestrators and load balancers.

- ``GET /livez``: the process serves HTTP. Depends on nothing else, so an
  orchestrator restarting on it never restarts a healthy node because the
  database or Redis is away (a restart would not bring them back).
- ``GET /readyz``: this node can do its work: the database answers and its
  schema is at the migrations' head (a node started before ``imserver migrate``
  ran is not ready). The broker's state is reported; it fails readiness only
  when ``IMSERVER_BROKER_REQUIRED`` is true. 503 while not ready, or shutting down.
- ``GET /healthz``: kept as it was for existing monitors: 503 when the database
  or the broker is down (alerting, not routing).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .domain.errors import Unavailable
from .store import migrate

router = APIRouter(tags=["ops"])


@router.get("/livez")
async def livez() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    services = request.app.state.services
    settings = services.settings
    report: dict = {}
    db_ok = await services.db.ping()
    request.app.state.metrics.db_up.set(1 if db_ok else 0)
    report["database"] = "ok" if db_ok else "down"
    migrations_ok = False
    if db_ok:
        try:
            at = await migrate.current_heads(services.db)
        except Unavailable:
            report["migrations"] = "unknown"
        else:
            migrations_ok = at == request.app.state.migration_heads
            report["migrations"] = "head" if migrations_ok else "behind"
    else:
        report["migrations"] = "unknown"
    broker = services.health().get("broker")  # absent with the in-process broker
    report["broker"] = broker or "none"
    report["broker_required"] = settings.broker_required
    stopping = getattr(request.app.state, "shutting_down", False)
    ready = db_ok and migrations_ok and not stopping and (broker != "down" or not settings.broker_required)
    if stopping:
        report["shutting_down"] = True
    return JSONResponse({"status": "ready" if ready else "not ready", **report}, status_code=200 if ready else 503)
