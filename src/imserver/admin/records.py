"""Records for `compliance`: the sign-in and network log, legal holds, deletion requests, checkpoints.

``GET /access-log`` pages the log filtered by principal and period;
``GET /access-log/export`` returns all of it as JSON lines or CSV.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services

router = APIRouter(prefix="/admin/v1", tags=["admin", "records"])

Svc = Annotated[Services, Depends(services)]
Compliance = Annotated[Principal, Depends(operator_with(Role.COMPLIANCE))]
PrincipalKindParam = Literal["user", "operator"] | None


@router.get("/access-log")
async def access_log(
    _: Compliance,
    svc: Svc,
    principal_kind: PrincipalKindParam = None,
    principal_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    return await svc.access_log.read(
        principal_kind=principal_kind, principal_id=principal_id, since=since, until=until, after=after, limit=limit
    )


@router.get("/access-log/export")
async def export_access_log(
    _: Compliance,
    svc: Svc,
    principal_kind: PrincipalKindParam = None,
    principal_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    format: Literal["jsonl", "csv"] = "jsonl",
) -> Response:
    body, count = await svc.access_log.export(
        fmt=format, principal_kind=principal_kind, principal_id=principal_id, since=since, until=until
    )
    return Response(
        body,
        media_type="text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="access-log.{format}"', "X-Record-Count": str(count)},
    )


@router.post("/checkpoints", status_code=201)
async def take_checkpoint(_: Compliance, svc: Svc) -> dict:
    """Sign the chain heads now (also sent to the regulator outbox)."""
    return await svc.checkpoints.take()


@router.get("/checkpoints")
async def list_checkpoints(_: Compliance, svc: Svc, limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> dict:
    return {"checkpoints": await svc.checkpoints.latest(limit)}
