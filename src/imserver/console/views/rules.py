"""Content-filter term lists and agreement versions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...domain.policy_types import FilterAction
from .. import pages
from ..i18n import N_
from ..web import ConsoleRoute, next_cursor, done, posted, render, require, services, signed_in

router = APIRouter(route_class=ConsoleRoute)
TERMS_PAGE = 100  # terms per page


@router.get("/console/terms")
async def terms_page(request: Request, list_name: str = "", after: int = 0) -> Response:
    await signed_in(request, "terms")
    items = await services(request).terms.list(list_name=list_name[:64] or None, after=max(0, after), limit=TERMS_PAGE)
    return render(
        request,
        "terms.html",
        page="terms",
        items=items,
        list_name=list_name,
        actions=[a.value for a in FilterAction],
        next_after=next_cursor(items, "id", TERMS_PAGE),
    )


@router.post("/console/terms")
async def add_term(request: Request) -> Response:
    me, form = await posted(request, "terms", "/console/terms")
    term = await services(request).terms.add(
        me, list_name=form.get("list_name") or "default", term=form.get("term", ""), action=form.get("action", "")
    )
    return done(request, "/console/terms", N_("Term %(id)s added (%(action)s)."), id=term["id"], action=term["action"])


@router.post("/console/terms/{term_id:int}/action")
async def set_action(request: Request, term_id: int) -> Response:
    me, form = await posted(request, "terms", "/console/terms")
    term = await services(request).terms.set_action(me, term_id, action=form.get("action", ""))
    return done(request, "/console/terms", N_("Term %(id)s now %(action)s."), id=term_id, action=term["action"])


@router.post("/console/terms/{term_id:int}/delete")
async def remove_term(request: Request, term_id: int) -> Response:
    me, _ = await posted(request, "terms", "/console/terms")
    await services(request).terms.remove(me, term_id)
    return done(request, "/console/terms", N_("Term %(id)s removed."), id=term_id)


@router.get("/console/agreements")
async def agreements_page(request: Request) -> Response:
    me = await signed_in(request, "agreements")
    svc = services(request)
    return render(
        request,
        "agreements.html",
        page="agreements",
        versions=await svc.agreements.list_versions(),
        current=await svc.agreements.current(),
        can_publish=pages.may(me, pages.ADMIN),
    )


@router.post("/console/agreements")
async def publish(request: Request) -> Response:
    me, form = await posted(request, "agreements", "/console/agreements")
    require(me, pages.ADMIN)
    svc = services(request)
    version = await svc.agreements.publish(form.get("text", ""), me.id)
    return done(request, "/console/agreements", N_("Agreement version %(version)s published."), version=version)
