"""The regulator export (Art. 8 reporting duty), for `compliance`.

``GET /regulator/sanctions?since=&until=&format=jsonl|csv``: every sanction
record (imposed, confirmed, lifted, expired, overturned) created in
[since, until), oldest first. JSON lines are the exact payloads the webhook
posts, idempotency key included. The export itself is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from .schemas import ERRORS, OutboxOut

router = APIRouter(prefix="/admin/v1", tags=["admin", "regulator"], responses=ERRORS)

Svc = Annotated[Services, Depends(services)]
Compliance = Annotated[Principal, Depends(operator_with(Role.COMPLIANCE))]


@router.get(
    "/regulator/sanctions",
    response_class=Response,
    responses={200: {"description": "the records as JSON lines or CSV", "content": {"application/x-ndjson": {}, "text/csv": {}}}},
)
async def export_sanctions(
    since: datetime, until: datetime, me: Compliance, svc: Svc, format: Literal["jsonl", "csv"] = "jsonl"
) -> Response:
    """Every sanction record created in [since, until), oldest first, as the webhook posts them. Audited."""
    export = await svc.regulator.export(since=since, until=until, fmt=format, actor_kind="operator", actor_id=me.id)
    filename = f"sanctions-{since:%Y%m%dT%H%M%S}-{until:%Y%m%dT%H%M%S}.{format}"
    return Response(
        export.body,
        media_type=export.media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "X-Record-Count": str(export.count)},
    )


@router.get("/regulator/outbox", response_model=OutboxOut)
async def outbox_status(_: Compliance, svc: Svc) -> dict:
    """How many records still await webhook delivery (0 without a webhook means: export them)."""
    return {"undelivered": await svc.regulator.undelivered(), "webhook": bool(svc.regulator.url)}
