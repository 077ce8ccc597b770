"""The staffing report over HTTP (Art. 5), for compliance and admin.

``GET /staffing?since=&until=``: the same report as ``imserver report staffing``
(``services/staffing.py``): per queue, items entering, handled per active
operator, time to first action and to resolution (p50/p90), open items and
whether the oldest is overdue, against the period's active users.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ..domain.fields import Text
from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from .schemas import ERRORS, StaffingOut

router = APIRouter(prefix="/admin/v1", tags=["admin", "staffing"], responses=ERRORS)


@router.get("/staffing", response_model=StaffingOut)
async def staffing_report(
    _: Annotated[Principal, Depends(operator_with(Role.COMPLIANCE, Role.ADMIN))],
    svc: Annotated[Services, Depends(services)],
    since: Annotated[Text, Query(max_length=64, description="ISO 8601 start; no zone: local_timezone")],
    until: Annotated[Text | None, Query(max_length=64, description="ISO 8601 end; default now")] = None,
) -> dict:
    """Per queue: items entering, handled per active operator, time to first action and to resolution
    (p50/p90), open items and whether the oldest is overdue, against the period's active users (Art. 5)."""
    return await svc.staffing.report(since=since, until=until)
