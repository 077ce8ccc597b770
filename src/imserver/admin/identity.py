"""Identity review and reads for operators (Art. 6 ¶1, ARCHITECTURE.md "Personal information").

* ``GET /identity/pending``: the review queue, masked (reviewer, compliance).
* ``GET /users/{id}/identity``: a user's latest submission, masked; ``?full=true``
  gives the plaintext to ``compliance`` only (a reviewer still gets it masked).
* ``POST /identity/{identity_id}/review``: approve or reject (reviewer).

Every read and every decision is written to the audit chain by the service.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from ..services.identity import QUEUE_PAGE_MAX
from ..api.fields import Cursor, Id, Text

router = APIRouter(prefix="/admin/v1", tags=["admin"])

Svc = Annotated[Services, Depends(services)]
Reader = Annotated[Principal, Depends(operator_with(Role.REVIEWER, Role.COMPLIANCE))]
Reviewer = Annotated[Principal, Depends(operator_with(Role.REVIEWER))]


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    note: Text = Field(default="", max_length=1000)


@router.get("/identity/pending")
async def pending_identities(
    me: Reader,
    svc: Svc,
    after: Annotated[Cursor, Query(ge=0, description="return submissions with id greater than this")] = 0,
    limit: Annotated[int, Query(ge=1, le=QUEUE_PAGE_MAX)] = 50,
) -> dict:
    items = await svc.identities.pending(me, after=after, limit=limit)
    return {"items": items, "next_after": items[-1]["identity_id"] if items else after}


@router.get("/users/{user_id}/identity")
async def read_identity(user_id: Id, me: Reader, svc: Svc, full: bool = False) -> dict:
    return await svc.identities.read(me, user_id, full=full)


@router.post("/identity/{identity_id}/review")
async def review_identity(identity_id: Id, body: ReviewIn, me: Reviewer, svc: Svc) -> dict:
    user_id, status = await svc.identities.review(me, identity_id, approve=body.decision == "approve", note=body.note)
    await svc.after_policy_change(user_id=user_id)
    return {"identity_id": identity_id, "user_id": user_id, "status": status.value}
