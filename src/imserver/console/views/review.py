"""Identity review (masked) and public-account review."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...domain.enums import Role
from ..i18n import N_
from ..web import QUEUE_PAGE, ConsoleRoute, next_cursor, done, posted, render, services, signed_in

router = APIRouter(route_class=ConsoleRoute)


@router.get("/console/identity")
async def identity_queue(request: Request, after: int = 0) -> Response:
    me = await signed_in(request, "identity")
    items = await services(request).identities.pending(me, after=max(0, after), limit=QUEUE_PAGE)
    return render(
        request,
        "identity.html",
        page="identity",
        items=items,
        can_decide=me.role == Role.REVIEWER,
        next_after=next_cursor(items, "identity_id", QUEUE_PAGE),
    )


@router.post("/console/identity/{identity_id:int}")
async def identity_decide(request: Request, identity_id: int) -> Response:
    me, form = await posted(request, "identity", "/console/identity")
    approve = form.get("decision") == "approve"
    user_id, _ = await services(request).identities.review(
        me, identity_id, approve=approve, note=form.get("note", "")[:1000]
    )
    message = (
        N_("Identity %(id)s of user %(user)s approved.") if approve else N_("Identity %(id)s of user %(user)s rejected.")
    )
    return done(request, "/console/identity", message, id=identity_id, user=user_id)


@router.get("/console/public-accounts")
async def public_account_queue(request: Request, after: int = 0) -> Response:
    me = await signed_in(request, "public_accounts")
    svc = services(request)
    items = await svc.public_accounts.applications(me, status="pending", after=max(0, after), limit=QUEUE_PAGE)
    filings = await svc.public_accounts.filings()
    return render(
        request,
        "public_accounts.html",
        page="public_accounts",
        items=items,
        filings=filings,
        can_decide=me.role == Role.REVIEWER,
        next_after=next_cursor(items, "id", QUEUE_PAGE),
    )


@router.post("/console/public-accounts/{account_id:int}")
async def public_account_decide(request: Request, account_id: int) -> Response:
    me, form = await posted(request, "public_accounts", "/console/public-accounts")
    svc = services(request)
    approve = form.get("decision") == "approve"
    view = await svc.public_accounts.review(
        me,
        account_id,
        approve=approve,
        reason=form.get("reason", ""),
        acknowledge_flags=form.get("acknowledge_flags") == "yes",
    )
    if not approve:
        return done(request, "/console/public-accounts", N_("Application %(id)s rejected."), id=account_id)
    reference = next(
        (f["reference"] for f in await svc.public_accounts.filings() if f["account_id"] == account_id), "—"
    )
    return done(
        request,
        "/console/public-accounts",
        N_("Public account “%(name)s” approved and filed as %(reference)s."),
        name=view["name"],
        reference=reference,
    )
