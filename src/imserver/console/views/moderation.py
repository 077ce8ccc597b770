"""Reports (with the reported content and its author) and held messages."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...services.reports import OUTCOMES
from .. import pages
from ..i18n import N_
from ..web import QUEUE_PAGE, ConsoleRoute, next_cursor, done, field_int, posted, render, services, signed_in

router = APIRouter(route_class=ConsoleRoute)
STATUSES = ("open", "in_review", *OUTCOMES)
SECONDS_PER_DAY = 24 * 3600


@router.get("/console/reports")
async def report_queue(request: Request, status: str = "", after: int = 0) -> Response:
    await signed_in(request, "reports")
    items = await services(request).reports.queue(
        status=status or None, after=max(0, after), limit=QUEUE_PAGE
    )
    return render(
        request,
        "reports.html",
        page="reports",
        items=items,
        status=status,
        statuses=STATUSES,
        next_after=next_cursor(items, "id", QUEUE_PAGE),
    )


@router.get("/console/reports/{report_id:int}")
async def report_detail(request: Request, report_id: int) -> Response:
    me = await signed_in(request, "reports")
    report = await services(request).report_desk.open(me, report_id)
    return render(request, "report.html", page="reports", report=report, kinds=pages.imposable_kinds(me))


@router.post("/console/reports/{report_id:int}/assign")
async def report_assign(request: Request, report_id: int) -> Response:
    back = f"/console/reports/{report_id}"
    me, _ = await posted(request, "reports", back)
    await services(request).reports.assign(me, report_id)
    return done(request, back, N_("Report %(id)s is assigned to you."), id=report_id)


@router.post("/console/reports/{report_id:int}/resolve")
async def report_resolve(request: Request, report_id: int) -> Response:
    back = f"/console/reports/{report_id}"
    me, form = await posted(request, "reports", back)
    svc = services(request)
    kind = form.get("sanction", "")
    note = form.get("note", "")
    if not kind:
        await svc.reports.resolve(me, report_id, outcome="dismissed", note=note)
        return done(request, back, N_("Report %(id)s dismissed: no sanction."), id=report_id)
    days = field_int(form, "duration_days", required=False)
    result = await svc.report_desk.resolve_with_sanction(
        me, report_id, kind=kind, reason=note, duration_seconds=days * SECONDS_PER_DAY if days else None
    )
    return done(
        request,
        back,
        N_("Report %(id)s resolved: sanction %(sanction)s (%(kind)s) imposed on user %(user)s."),
        id=report_id,
        sanction=result["sanction"]["id"],
        kind=kind,
        user=result["sanction"]["subject"]["id"],
    )


@router.get("/console/held")
async def held_queue(request: Request, after: int = 0) -> Response:
    await signed_in(request, "held")
    items = await services(request).messaging.held(after=max(0, after), limit=QUEUE_PAGE)
    return render(
        request,
        "held.html",
        page="held",
        items=items,
        next_after=next_cursor(items, "message_id", QUEUE_PAGE),
    )


@router.post("/console/held/{message_id:int}")
async def held_decide(request: Request, message_id: int) -> Response:
    me, form = await posted(request, "held", "/console/held")
    release = form.get("decision") == "release"
    await services(request).messaging.review_held(
        message_id, release=release, operator_id=me.id, note=form.get("note", "")[:2000]
    )
    message = N_("Message %(id)s released and delivered.") if release else N_("Message %(id)s rejected.")
    return done(request, "/console/held", message, id=message_id)
