"""The regulator export (Art. 8 reporting duty), for `compliance`.

``GET /regulator/sanctions?since=&until=&format=jsonl|csv``: every sanction
record (imposed, confirmed, lifted, expired, overturned) created in
[since, until), oldest first. JSON lines are the exact payloads the webhook
posts, idempotency key included. The export itself is audited.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ..api.deps import operator_with, services
from ..api.fields import Instant
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services

router = APIRouter(prefix="/admin/v1", tags=["admin", "regulator"])

Svc = Annotated[Services, Depends(services)]
Compliance = Annotated[Principal, Depends(operator_with(Role.COMPLIANCE))]


@router.get("/regulator/sanctions")
async def export_sanctions(
    since: Instant, until: Instant, me: Compliance, svc: Svc, format: Literal["jsonl", "csv"] = "jsonl"
) -> Response:
    export = await svc.regulator.export(since=since, until=until, fmt=format, actor_kind="operator", actor_id=me.id)
    filename = f"sanctions-{since:%Y%m%dT%H%M%S}-{until:%Y%m%dT%H%M%S}.{format}"
    return Response(
        export.body,
        media_type=export.media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "X-Record-Count": str(export.count)},
    )


@router.get("/regulator/outbox")
async def outbox_status(_: Compliance, svc: Svc) -> dict:
    """How many records still await webhook delivery (0 without a webhook means: export them)."""
    return {"undelivered": await svc.regulator.undelivered(), "webhook": bool(svc.regulator.url)}
