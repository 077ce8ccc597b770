"""Public accounts for operators (Art. 7); each route names the roles it admits.

* ``GET /public-accounts?status=pending``: the review queue (reviewer, compliance).
* ``GET /public-accounts/{id}``: one account with its approvals and filing (reviewer, compliance, moderator).
* ``POST /public-accounts/{id}/review``: approve (and file) or reject, with a reason (reviewer).
  A flagged application (over the cap, impersonating name) needs ``acknowledge_flags``.
* ``GET /public-accounts/changes``, ``POST /public-accounts/changes/{id}/review``:
  re-review of changes to filed accounts (reviewer).
* ``POST /public-accounts/{id}/news-approvals``, ``POST /news-approvals/{id}/revoke``:
  news approvals, reference, scope, expiry (compliance).
* ``GET /public-accounts/filings?format=json|jsonl|csv&since=&until=``: the register
  grouped by province (the department each filing goes to) and category, for a
  period if given, for the regulator (compliance).
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
from ..domain.policy_types import AccountCategory, PublicAccountStatus
from ..services.worklists import Order, PageArgs
from .schemas import ERRORS, REF, FilingRegisterOut, ChangeOut, NewsApprovalOut, PublicAccountAdminOut, TakedownOut, ApplicationOut, Page
from ..domain.fields import Id, Instant, Text

router = APIRouter(prefix="/admin/v1", tags=["admin", "public accounts"], responses=ERRORS)

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


@router.get("/public-accounts", response_model=Page[ApplicationOut])
async def applications(
    me: Reader,
    svc: Svc,
    args: Annotated[PageArgs, Depends()],
    status: PublicAccountStatus = PublicAccountStatus.PENDING,
    category: AccountCategory | None = None,
    flagged_only: Annotated[bool, Query(description="only applications flagged for manual review")] = False,
    name: Annotated[Text | None, Query(max_length=64, description="part of the account name")] = None,
    order: Order = Order.ASC,
) -> dict:
    """Public-account applications in a status (default: the pending review queue), oldest first."""
    return await svc.public_accounts.applications(
        me,
        status=status,
        category=category,
        flagged_only=flagged_only,
        name=name,
        descending=order is Order.DESC,
        cursor=args.cursor,
        limit=args.limit,
    )


@router.get(
    "/public-accounts/filings",
    response_class=Response,
    responses={
        200: {
            "description": "the register of filed accounts, grouped by category",
            "content": {
                "application/json": {"schema": FilingRegisterOut.model_json_schema(ref_template=REF)},
                "application/x-ndjson": {},
                "text/csv": {},
            },
        }
    },
)
async def filings(
    me: Compliance,
    svc: Svc,
    format: Literal["json", "jsonl", "csv"] = "json",
    include_superseded: bool = False,
    since: Annotated[Text | None, Query(max_length=64, description="filed at or after; no zone: local_timezone")] = None,
    until: Annotated[Text | None, Query(max_length=64, description="filed before; no zone: local_timezone")] = None,
) -> Response:
    """The register of filed accounts for the regulator, grouped by category."""
    export = await svc.public_accounts.export_filings(
        me, fmt=format, include_superseded=include_superseded, since=since, until=until
    )
    return Response(export.body, media_type=export.media_type, headers={"X-Record-Count": str(export.count)})


@router.get("/public-accounts/changes", response_model=Page[ChangeOut])
async def pending_changes(me: Reader, svc: Svc, args: Annotated[PageArgs, Depends()]) -> dict:
    """Changes to filed accounts awaiting re-review, oldest first."""
    return await svc.public_accounts.pending_changes(me, cursor=args.cursor, limit=args.limit)


@router.post("/public-accounts/changes/{change_id}/review", response_model=ChangeOut)
async def review_change(change_id: Id, body: ReviewIn, me: Reviewer, svc: Svc) -> dict:
    """Approve (apply and re-file) or reject a change to a filed account."""
    return await svc.public_accounts.review_change(
        me, change_id, approve=body.decision == "approve", reason=body.reason, acknowledge_flags=body.acknowledge_flags
    )


@router.get("/public-accounts/{account_id}", response_model=PublicAccountAdminOut)
async def account(account_id: Id, me: AnyOperator, svc: Svc) -> dict:
    """One account with its news approvals and filing in force."""
    return await svc.public_accounts.admin_view(me, account_id)


@router.post("/public-accounts/{account_id}/review", response_model=ApplicationOut)
async def review(account_id: Id, body: ReviewIn, me: Reviewer, svc: Svc) -> dict:
    """Approve (and file) or reject an application, with a reason; flagged ones need acknowledge_flags."""
    return await svc.public_accounts.review(
        me, account_id, approve=body.decision == "approve", reason=body.reason, acknowledge_flags=body.acknowledge_flags
    )


@router.post("/public-accounts/{account_id}/news-approvals", status_code=201, response_model=NewsApprovalOut)
async def grant_news(account_id: Id, body: NewsApprovalIn, me: Compliance, svc: Svc) -> dict:
    """Record a news approval (reference, scope, expiry) for an account."""
    return await svc.public_accounts.grant_news(
        me, account_id, reference=body.reference, scope=body.scope, expires_at=body.expires_at
    )


@router.post("/news-approvals/{approval_id}/revoke", response_model=NewsApprovalOut)
async def revoke_news(approval_id: Id, body: ReasonIn, me: Compliance, svc: Svc) -> dict:
    """Revoke a news approval, with a reason."""
    return await svc.public_accounts.revoke_news(me, approval_id, reason=body.reason)


@router.post("/posts/{post_id}/takedown", response_model=TakedownOut)
async def take_down(post_id: Id, body: ReasonIn, me: Moderator, svc: Svc) -> dict:
    """Take a post down, with a reason."""
    return await svc.public_accounts.take_down(me, post_id, reason=body.reason)
