"""Admin routes for the audit chain: read it page by page, and verify it.

Both need the `compliance` or `admin` role. Each call is itself recorded in the
chain (``audit.read`` / ``audit.verify``). A broken chain is a successful
verification with a bad verdict: 200 with ``"ok": false`` and the first break.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.audit import PAGE_DEFAULT, PAGE_MAX, parse_anchor
from ..services.container import Services
from ..api.fields import Cursor, Text

router = APIRouter(prefix="/admin/v1", tags=["admin"])

Svc = Annotated[Services, Depends(services)]
Auditor = Annotated[Principal, Depends(operator_with(Role.COMPLIANCE, Role.ADMIN))]


@router.get("/audit")
async def read_audit(
    me: Auditor,
    svc: Svc,
    after: Annotated[Cursor, Query(ge=0, description="return rows with id greater than this")] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
) -> dict:
    return await svc.audit.page(after=after, limit=limit, operator_id=me.id)


@router.get("/audit/verify")
async def verify_audit(
    me: Auditor,
    svc: Svc,
    expect_head: Annotated[
        Text | None, Query(max_length=100, description="an anchor ID:HASH kept outside the database")
    ] = None,
) -> dict:
    report = await svc.audit.verify(anchor=parse_anchor(expect_head), operator_id=me.id)
    return report.to_dict()
