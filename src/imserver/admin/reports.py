"""The public-report queue for moderators (Art. 5).

* ``GET /reports?status=``: oldest first; default every report awaiting a decision.
* ``GET /reports/{id}``
* ``POST /reports/{id}/assign``: open -> in_review (assignee: the caller, or a named moderator).
* ``POST /reports/{id}/resolve``: in_review -> actioned (naming the sanction) | dismissed;
  the reporter is told.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from ..services.reports import MAX_NOTE_CHARS
from ..services.worklists import Order, PageArgs, ReportFilter
from .schemas import ERRORS, Page, ReportDetailOut, ReportOut
from ..domain.fields import Id, Text

router = APIRouter(prefix="/admin/v1", tags=["admin", "reports"], responses=ERRORS)

Svc = Annotated[Services, Depends(services)]
Moderator = Annotated[Principal, Depends(operator_with(Role.MODERATOR))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssignIn(Strict):
    assignee_id: Id | None = None


class ResolveIn(Strict):
    outcome: Literal["actioned", "dismissed"]
    sanction_id: Id | None = None
    note: Text = Field(default="", max_length=MAX_NOTE_CHARS)


@router.get("/reports", response_model=Page[ReportOut])
async def report_queue(
    me: Moderator,
    svc: Svc,
    f: Annotated[ReportFilter, Depends()],
    args: Annotated[PageArgs, Depends()],
    order: Order = Order.ASC,
) -> dict:
    """Reports by status (default: open and in_review), target kind, category, assignee, reporter
    and age (`min_age_seconds`); oldest first by default."""
    return await svc.workbench.lists.reports_list(me, f, args, order=order)


@router.get("/reports/{report_id}", response_model=ReportDetailOut)
async def get_report(report_id: Id, me: Moderator, svc: Svc) -> dict:
    """One report with its target's content and author (reading it is audited)."""
    return await svc.workbench.lists.report_detail(me, report_id)


@router.post("/reports/{report_id}/assign", response_model=ReportOut)
async def assign(report_id: Id, me: Moderator, svc: Svc, body: AssignIn | None = None) -> dict:
    """Take a report into review (assignee: the caller, or a named moderator)."""
    return await svc.reports.assign(me, report_id, assignee_id=body.assignee_id if body else None)


@router.post("/reports/{report_id}/resolve", response_model=ReportOut)
async def resolve(report_id: Id, body: ResolveIn, me: Moderator, svc: Svc) -> dict:
    """Close a report in review: actioned (naming its sanction) or dismissed; the reporter is told."""
    return await svc.reports.resolve(me, report_id, outcome=body.outcome, sanction_id=body.sanction_id, note=body.note)
