"""Sanctions (impose, confirm a closure as the second operator, lift, a subject's
history with strikes) and appeals."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import pages
from ..i18n import N_
from ..web import QUEUE_PAGE, ConsoleRoute, next_cursor, done, field_int, posted, render, services, signed_in

router = APIRouter(route_class=ConsoleRoute)
SECONDS_PER_DAY = 24 * 3600


@router.get("/console/sanctions")
async def sanctions_page(request: Request, subject: int | None = None) -> Response:
    me = await signed_in(request, "sanctions")
    svc = services(request)
    awaiting = await svc.sanctions.awaiting_confirmation() if pages.may(me, pages.COMPLIANCE) else None
    history = await svc.sanctions.history("user", subject) if subject else None
    return render(
        request,
        "sanctions.html",
        page="sanctions",
        kinds=pages.imposable_kinds(me),
        awaiting=awaiting,
        history=history,
        subject=subject,
    )


@router.post("/console/sanctions")
async def impose(request: Request) -> Response:
    me, form = await posted(request, "sanctions", "/console/sanctions")
    days = field_int(form, "duration_days", required=False)
    sanction = await services(request).sanctions.impose(
        me,
        subject_kind="user",
        subject_id=field_int(form, "subject_id"),
        kind=form.get("kind", ""),
        reason=form.get("reason", ""),
        duration_seconds=days * SECONDS_PER_DAY if days else None,
    )
    message = (
        N_("Sanction %(id)s (%(kind)s) recorded for user %(user)s; it takes effect when a second operator confirms it.")
        if sanction["status"] == "awaiting_confirmation"
        else N_("Sanction %(id)s (%(kind)s) imposed on user %(user)s.")
    )
    back = f"/console/sanctions?subject={sanction['subject']['id']}"
    return done(request, back, message, id=sanction["id"], kind=sanction["kind"], user=sanction["subject"]["id"])


@router.post("/console/sanctions/{sanction_id:int}/confirm")
async def confirm(request: Request, sanction_id: int) -> Response:
    me, form = await posted(request, "sanctions", "/console/sanctions")
    sanction = await services(request).sanctions.confirm(me, sanction_id, note=form.get("note", "")[:2000])
    return done(
        request,
        "/console/sanctions",
        N_("Closure %(id)s confirmed: user %(user)s is closed."),
        id=sanction_id,
        user=sanction["subject"]["id"],
    )


@router.post("/console/sanctions/{sanction_id:int}/lift")
async def lift(request: Request, sanction_id: int) -> Response:
    me, form = await posted(request, "sanctions", "/console/sanctions")
    sanction = await services(request).sanctions.lift(me, sanction_id, reason=form.get("reason", ""))
    back = f"/console/sanctions?subject={sanction['subject']['id']}"
    return done(request, back, N_("Sanction %(id)s lifted."), id=sanction_id)


@router.get("/console/appeals")
async def appeals_page(request: Request, after: int = 0) -> Response:
    await signed_in(request, "appeals")
    items = await services(request).sanctions.pending_appeals(after=max(0, after), limit=QUEUE_PAGE)
    return render(
        request,
        "appeals.html",
        page="appeals",
        items=items,
        next_after=next_cursor(items, "appeal_id", QUEUE_PAGE),
    )


@router.post("/console/appeals/{appeal_id:int}")
async def decide(request: Request, appeal_id: int) -> Response:
    me, form = await posted(request, "appeals", "/console/appeals")
    overturn = form.get("decision") == "overturn"
    await services(request).sanctions.decide_appeal(me, appeal_id, overturn=overturn, note=form.get("note", "")[:2000])
    message = (
        N_("Appeal %(id)s decided: the sanction is overturned.")
        if overturn
        else N_("Appeal %(id)s decided: the sanction stands.")
    )
    return done(request, "/console/appeals", message, id=appeal_id)
