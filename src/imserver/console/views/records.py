"""The audit log (filters, verify the chain) and exports for the regulator."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...domain.errors import BadRequest, Code
from ..web import ConsoleRoute, field_int, posted, render, services, signed_in

router = APIRouter(route_class=ConsoleRoute)
AUDIT_PAGE = 50  # rows per audit page
FILTER_MAX = 100  # characters of an action or subject filter


def _day(value: str, tz: ZoneInfo, *, end: bool = False) -> datetime | None:
    """A yyyy-mm-dd from a date field, as the start (or the end) of that day in the console's time zone."""
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        raise BadRequest("dates are yyyy-mm-dd", Code.INVALID_PERIOD) from exc
    start = datetime.combine(day, time.min, tzinfo=tz)
    return start + timedelta(days=1) if end else start


def _filters(request: Request, params: dict[str, str]) -> dict:
    tz = ZoneInfo(services(request).settings.console_time_zone)
    return {
        "actor_id": field_int(params, "actor", required=False),
        "action": params.get("action", "").strip()[:FILTER_MAX] or None,
        "subject": params.get("subject", "").strip()[:FILTER_MAX] or None,
        "since": _day(params.get("since", ""), tz),
        "until": _day(params.get("until", ""), tz, end=True),
    }


@router.get("/console/audit")
async def audit_page(request: Request) -> Response:
    me = await signed_in(request, "audit")
    params = dict(request.query_params)
    before = field_int(params, "before", required=False)
    result = await services(request).audit.search(
        operator_id=me.id, before=before, limit=AUDIT_PAGE, **_filters(request, params)
    )
    return render(request, "audit.html", page="audit", result=result, params=params, verify=None)


@router.post("/console/audit/verify")
async def verify(request: Request) -> Response:
    me, form = await posted(request, "audit", "/console/audit")
    report = await services(request).audit.verify(operator_id=me.id)
    return render(request, "audit.html", page="audit", result=None, params={}, verify=report.to_dict())


@router.get("/console/exports")
async def exports_page(request: Request) -> Response:
    await signed_in(request, "exports")
    svc = services(request)
    return render(
        request,
        "exports.html",
        page="exports",
        undelivered=await svc.regulator.undelivered(),
        webhook=bool(svc.regulator.url),
    )


def _download(body: str, media_type: str, filename: str, count: int) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "X-Record-Count": str(count)},
    )


@router.post("/console/exports/sanctions")
async def export_sanctions(request: Request) -> Response:
    me, form = await posted(request, "exports", "/console/exports")
    tz = ZoneInfo(services(request).settings.console_time_zone)
    since, until = _day(form.get("since", ""), tz), _day(form.get("until", ""), tz, end=True)
    if since is None or until is None:
        raise BadRequest("give both dates of the period", Code.INVALID_PERIOD)
    fmt = form.get("format", "csv")
    export = await services(request).regulator.export(
        since=since, until=until, fmt=fmt, actor_kind="operator", actor_id=me.id
    )
    return _download(export.body, export.media_type, f"sanctions-{since:%Y%m%d}-{until:%Y%m%d}.{fmt}", export.count)


@router.post("/console/exports/filings")
async def export_filings(request: Request) -> Response:
    me, form = await posted(request, "exports", "/console/exports")
    fmt = form.get("format", "csv")
    export = await services(request).public_accounts.export_filings(
        me, fmt=fmt, include_superseded=form.get("include_superseded") == "yes"
    )
    return _download(export.body, export.media_type, f"filings.{fmt}", export.count)
