"""Public reports by users (Art. 5: "consciously accept social supervision").

* ``POST /reports``: report a message (one you can read), a post or an account,
  with a category and text.
* ``GET /reports/mine``: your reports and their outcomes (no moderator names,
  no sanction details).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ..domain.principals import Principal
from ..services.container import Services
from ..services.reports import MAX_TEXT_CHARS
from .deps import current_user, services
from ..domain.fields import Id, Text

router = APIRouter(prefix="/api/v1", tags=["reports"])

Svc = Annotated[Services, Depends(services)]
Me = Annotated[Principal, Depends(current_user)]


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_kind: Literal["message", "post", "account"]
    target_id: Id
    category: Literal["unlawful", "harmful", "rumour", "fraud", "pornography", "other"]
    text: Text = Field(min_length=1, max_length=MAX_TEXT_CHARS)


@router.post("/reports", status_code=201)
async def file_report(body: ReportIn, me: Me, svc: Svc) -> dict:
    """Report a message, a post or an account."""
    return await svc.reports.file(
        me, target_kind=body.target_kind, target_id=body.target_id, category=body.category, text=body.text
    )


@router.get("/reports/mine")
async def my_reports(me: Me, svc: Svc) -> list[dict]:
    """The caller's own reports and their outcomes."""
    return await svc.reports.mine(me.id)
