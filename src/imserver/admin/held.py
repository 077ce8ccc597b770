"""Held messages (content_review): the moderator's queue, release and reject."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from ..services.worklists import HeldFilter, Order, PageArgs
from .schemas import ERRORS, HeldReviewOut, HeldOut, Page
from ..domain.fields import Id, Text

router = APIRouter(prefix="/admin/v1", tags=["admin"], responses=ERRORS)

Svc = Annotated[Services, Depends(services)]
Moderator = Annotated[Principal, Depends(operator_with(Role.MODERATOR))]


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Text = Field(pattern="^(release|reject)$")
    note: Text = Field(default="", max_length=2000)


@router.get("/held", response_model=Page[HeldOut])
async def held_queue(
    me: Moderator,
    svc: Svc,
    f: Annotated[HeldFilter, Depends()],
    args: Annotated[PageArgs, Depends()],
    order: Order = Order.ASC,
) -> dict:
    """Held messages awaiting review with the check that held them; oldest first. Listing bodies is audited."""
    return await svc.workbench.lists.held_list(me, f, args, order=order)


@router.post("/held/{message_id}", response_model=HeldReviewOut)
async def review_held(message_id: Id, body: ReviewIn, me: Moderator, svc: Svc) -> dict:
    """Release a held message (delivered now) or reject it; both recorded."""
    return await svc.messaging.review_held(
        message_id, release=body.decision == "release", operator_id=me.id, note=body.note
    )
