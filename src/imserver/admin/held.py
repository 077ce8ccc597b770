"""Held messages (content_review): the moderator's queue, release and reject."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from ..api.fields import Cursor, Id, Text

router = APIRouter(prefix="/admin/v1", tags=["admin"])

Svc = Annotated[Services, Depends(services)]
Moderator = Annotated[Principal, Depends(operator_with(Role.MODERATOR))]


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Text = Field(pattern="^(release|reject)$")
    note: Text = Field(default="", max_length=2000)


@router.get("/held")
async def held_queue(
    _: Moderator,
    svc: Svc,
    after: Annotated[Cursor, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict:
    items = await svc.messaging.held(after=after, limit=limit)
    return {"items": items, "next_after": items[-1]["message_id"] if items else after}


@router.post("/held/{message_id}")
async def review_held(message_id: Id, body: ReviewIn, me: Moderator, svc: Svc) -> dict:
    return await svc.messaging.review_held(
        message_id, release=body.decision == "release", operator_id=me.id, note=body.note
    )
