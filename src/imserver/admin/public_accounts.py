"""Public accounts for operators (Art. 7; ARCHITECTURE.md "Operators").

* ``GET /public-accounts?status=pending``: the review queue (reviewer, compliance).
* ``GET /public-accounts/{id}``: one account with its approvals and filing (reviewer, compliance, moderator).
* ``POST /public-accounts/{id}/review``: approve (and file) or reject, with a reason (reviewer).
  A flagged application (over the cap, impersonating name) needs ``acknowledge_flags``.
* ``GET /public-accounts/changes``, ``POST /public-accounts/changes/{id}/review``:
  re-review of changes to filed accounts (reviewer).
* ``POST /public-accounts/{id}/news-approvals``, ``POST /news-approvals/{id}/revoke``:
  news approvals, reference, scope, expiry (compliance).
* ``GET /public-accounts/filings?format=json|jsonl|csv``: the register grouped by
  category, for the regulator (compliance).
* ``POST /posts/{post_id}/takedown``: a moderator takes a post down.

Sanctions on accounts go through ``POST /sanctions`` with ``subject_kind: "public_account"``.
Every action writes an audit row in the service.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from ..services.public_accounts import PAGE_MAX
from ..api.fields import Cursor, Id, Instant, Text

router = APIRouter(prefix="/admin/v1", tags=["admin", "public accounts"])

Svc = Annotated[Services, Depends(services)]
Reader = Annotated[Principal, Depends(operator_with(Role.REVIEWER, Role.COMPLIANCE))]
AnyOperator = Annotated[Principal, Depends(operator_with(Role.REVIEWER, Role.COMPLIANCE, Role.MODERATOR))]
Reviewer = Annotated[Principal, Depends(operator_with(Role.REVIEWER))]
Compliance = Annotated[Principal, Depends(operator_with(Role.COMPLIANCE))]
Moderator = Annotated[Principal, Depends(operator_with(Role.MODERATOR))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewIn(Strict):
    decision: Literal["approve", "reject"]
    reason: Text = Field(max_length=4000)
    acknowledge_flags: bool = False


class NewsApprovalIn(Strict):
    reference: Text = Field(max_length=256)
    scope: Literal["publish", "reprint"]
    expires_at: Instant


class ReasonIn(Strict):
    reason: Text = Field(max_length=4000)


@router.get("/public-accounts")
async def applications(
    me: Reader,
    svc: Svc,
    status: Literal["pending", "approved", "rejected", "closed"] = "pending",
    after: Annotated[Cursor, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50,
) -> dict:
    items = await svc.public_accounts.applications(me, status=status, after=after, limit=limit)
    return {"items": items, "next_after": items[-1]["id"] if items else after}


@router.get("/public-accounts/filings")
async def filings(
    me: Compliance,
    svc: Svc,
    format: Literal["json", "jsonl", "csv"] = "json",
    include_superseded: bool = False,
) -> Response:
    export = await svc.public_accounts.export_filings(me, fmt=format, include_superseded=include_superseded)
    return Response(export.body, media_type=export.media_type, headers={"X-Record-Count": str(export.count)})


@router.get("/public-accounts/changes")
async def pending_changes(
    me: Reader,
    svc: Svc,
    after: Annotated[Cursor, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50,
) -> dict:
    items = await svc.public_accounts.pending_changes(me, after=after, limit=limit)
    return {"items": items, "next_after": items[-1]["change_id"] if items else after}


@router.post("/public-accounts/changes/{change_id}/review")
async def review_change(change_id: Id, body: ReviewIn, me: Reviewer, svc: Svc) -> dict:
    return await svc.public_accounts.review_change(
        me, change_id, approve=body.decision == "approve", reason=body.reason, acknowledge_flags=body.acknowledge_flags
    )


@router.get("/public-accounts/{account_id}")
async def account(account_id: Id, me: AnyOperator, svc: Svc) -> dict:
    return await svc.public_accounts.admin_view(me, account_id)


@router.post("/public-accounts/{account_id}/review")
async def review(account_id: Id, body: ReviewIn, me: Reviewer, svc: Svc) -> dict:
    return await svc.public_accounts.review(
        me, account_id, approve=body.decision == "approve", reason=body.reason, acknowledge_flags=body.acknowledge_flags
    )


@router.post("/public-accounts/{account_id}/news-approvals", status_code=201)
async def grant_news(account_id: Id, body: NewsApprovalIn, me: Compliance, svc: Svc) -> dict:
    return await svc.public_accounts.grant_news(
        me, account_id, reference=body.reference, scope=body.scope, expires_at=body.expires_at
    )


@router.post("/news-approvals/{approval_id}/revoke")
async def revoke_news(approval_id: Id, body: ReasonIn, me: Compliance, svc: Svc) -> dict:
    return await svc.public_accounts.revoke_news(me, approval_id, reason=body.reason)


@router.post("/posts/{post_id}/takedown")
async def take_down(post_id: Id, body: ReasonIn, me: Moderator, svc: Svc) -> dict:
    return await svc.public_accounts.take_down(me, post_id, reason=body.reason)
