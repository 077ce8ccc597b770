"""The dashboard: every queue the operator's role works, with its size and oldest age."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ...services.queues import queue_stats, sanctions_in_force
from .. import pages
from ..web import ConsoleRoute, render, services, signed_in

router = APIRouter(route_class=ConsoleRoute)


@router.get("/console")
async def console_root() -> Response:
    return RedirectResponse("/console/", status_code=307)


@router.get("/console/")
async def dashboard(request: Request) -> Response:
    me = await signed_in(request, "dashboard")
    svc = services(request)
    rows = []
    for stat in await queue_stats(svc.db, svc.clock):
        title, page, roles = pages.QUEUES[stat.name]
        if pages.may(me, roles):
            rows.append({"stat": stat, "title": title, "page": pages.BY_NAME[page]})
    in_force = await sanctions_in_force(svc.db, svc.clock) if pages.may(me, pages.SANCTIONING) else None
    return render(request, "dashboard.html", page="dashboard", queues=rows, in_force=in_force)
