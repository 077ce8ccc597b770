"""The public-report queue for moderators (Art. 5).

* ``GET /reports?status=``: oldest first; default every report awaiting a decision.
* ``GET /reports/{id}``
* ``POST /reports/{id}/assign``: open -> in_review (assignee: the caller, or a named moderator).
* ``POST /reports/{id}/resolve``: in_review -> actioned (naming the sanction) | dismissed;
  the reporter is told.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from ..services.reports import MAX_NOTE_CHARS, PAGE_MAX
from ..api.fields import Cursor, Id, Text

router = APIRouter(prefix="/admin/v1", tags=["admin", "reports"])

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


@router.get("/reports")
async def report_queue(
    _: Moderator,
    svc: Svc,
    status: Literal["open", "in_review", "actioned", "dismissed"] | None = None,
    after: Annotated[Cursor, Query(ge=0, description="return reports with id greater than this")] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50,
) -> dict:
    items = await svc.reports.queue(status=status, after=after, limit=limit)
    return {"items": items, "next_after": items[-1]["id"] if items else after}


@router.get("/reports/{report_id}")
async def get_report(report_id: Id, _: Moderator, svc: Svc) -> dict:
    return await svc.reports.get(report_id)


@router.post("/reports/{report_id}/assign")
async def assign(report_id: Id, me: Moderator, svc: Svc, body: AssignIn | None = None) -> dict:
    return await svc.reports.assign(me, report_id, assignee_id=body.assignee_id if body else None)


@router.post("/reports/{report_id}/resolve")
async def resolve(report_id: Id, body: ResolveIn, me: Moderator, svc: Svc) -> dict:
    return await svc.reports.resolve(me, report_id, outcome=body.outcome, sanction_id=body.sanction_id, note=body.note)
