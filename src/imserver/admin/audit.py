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
from ..services.audit import parse_anchor
from ..services.worklists import AuditFilter, Order, PageArgs
from .schemas import ERRORS, AuditVerifyOut, AuditEntryOut, Page
from ..services.container import Services
from ..domain.fields import Cursor, Text

router = APIRouter(prefix="/admin/v1", tags=["admin"], responses=ERRORS)

Svc = Annotated[Services, Depends(services)]
Auditor = Annotated[Principal, Depends(operator_with(Role.COMPLIANCE, Role.ADMIN))]


@router.get("/audit", response_model=Page[AuditEntryOut])
async def read_audit(
    me: Auditor,
    svc: Svc,
    f: Annotated[AuditFilter, Depends()],
    args: Annotated[PageArgs, Depends()],
    order: Order = Order.ASC,
) -> dict:
    """The audit chain filtered by actor, action (`report.file`, or a family: `report.`), subject
    (`user:7`) and period [since, until), with operators' handles. The read is audited."""
    return await svc.workbench.lists.audit_list(me, f, args, order=order)


@router.get("/audit/verify", response_model=AuditVerifyOut)
async def verify_audit(
    me: Auditor,
    svc: Svc,
    expect_head: Annotated[
        Text | None, Query(max_length=100, description="an anchor ID:HASH kept outside the database")
    ] = None,
) -> dict:
    """Walk the whole chain and report the first break (200 with `ok: false` when broken). Audited."""
    report = await svc.audit.verify(anchor=parse_anchor(expect_head), operator_id=me.id)
    return report.to_dict()
