"""Identity review and reads for operators (Art. 6 ¶1; identity is encrypted, read by `compliance` only).

* ``GET /identity/pending``: the review queue, masked (reviewer, compliance).
* ``GET /users/{id}/identity``: a user's latest submission, masked; ``?full=true``
  gives the plaintext to ``compliance`` only (a reviewer still gets it masked).
* ``POST /identity/{identity_id}/review``: approve or reject (reviewer).

Every read and every decision is written to the audit chain by the service.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from ..services.worklists import PageArgs
from .schemas import ERRORS, IdentityOut, IdentityReviewOut, IdentityQueueItem, Page
from ..domain.fields import Id, Text

router = APIRouter(prefix="/admin/v1", tags=["admin"], responses=ERRORS)

Svc = Annotated[Services, Depends(services)]
Reader = Annotated[Principal, Depends(operator_with(Role.REVIEWER, Role.COMPLIANCE))]
Reviewer = Annotated[Principal, Depends(operator_with(Role.REVIEWER))]


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    note: Text = Field(default="", max_length=1000)


@router.get("/identity/pending", response_model=Page[IdentityQueueItem])
async def pending_identities(me: Reader, svc: Svc, args: Annotated[PageArgs, Depends()]) -> dict:
    """The identity review queue, oldest first, masked, with handles and nicknames; each row listed is an audited read."""
    return await svc.identities.pending(me, cursor=args.cursor, limit=args.limit)


@router.get("/users/{user_id}/identity", response_model=IdentityOut)
async def read_identity(user_id: Id, me: Reader, svc: Svc, full: bool = False) -> dict:
    """A user's latest identity submission, masked; `full=true` gives compliance the plaintext. Audited."""
    return await svc.identities.read(me, user_id, full=full)


@router.post("/identity/{identity_id}/review", response_model=IdentityReviewOut)
async def review_identity(identity_id: Id, body: ReviewIn, me: Reviewer, svc: Svc) -> dict:
    """Approve or reject a pending identity submission."""
    user_id, status = await svc.identities.review(me, identity_id, approve=body.decision == "approve", note=body.note)
    return {"identity_id": identity_id, "user_id": user_id, "status": status.value}
