"""The regulator export (Art. 8 reporting duty), for `compliance`.

``GET /regulator/sanctions?since=&until=&format=jsonl|csv``: every regulator
record (sanctions imposed, confirmed, lifted, expired, upheld or overturned on
appeal; reports that led to a measure; public-account filings) created in
[since, until), oldest first — the same arguments as ``imserver export
sanctions``: ``until`` optional (now), a time without a zone read in
``local_timezone``. JSON lines are the exact payloads the webhook posts,
idempotency key included. The export is audited and marks what it delivered.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from ..api.deps import operator_with, services
from ..domain.fields import Text
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
    me: Compliance,
    svc: Svc,
    since: Annotated[Text, Query(max_length=64, description="ISO 8601 start, inclusive; no zone: local_timezone")],
    until: Annotated[Text | None, Query(max_length=64, description="ISO 8601 end, exclusive; default now")] = None,
    format: Literal["jsonl", "csv"] = "jsonl",
) -> Response:
    """Every sanction record created in [since, until), oldest first, as the webhook posts them. Audited."""
    export = await svc.regulator.export(since=since, until=until, fmt=format, actor_kind="operator", actor_id=me.id)
    filename = f"regulator-{export.since:%Y%m%dT%H%M%S}-{export.until:%Y%m%dT%H%M%S}.{format}"
    return Response(
        export.body,
        media_type=export.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Record-Count": str(export.count),
            "X-First-Delivered": str(export.first_delivered),
        },
    )


@router.get("/regulator/outbox", response_model=OutboxOut)
async def outbox_status(_: Compliance, svc: Svc) -> dict:
    """How many records still await webhook delivery (0 without a webhook means: export them)."""
    return {
        "undelivered": await svc.regulator.undelivered(),
        "unexported": await svc.regulator.unexported(),
        "webhook": bool(svc.regulator.url),
    }
