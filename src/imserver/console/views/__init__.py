"""The console's routes, one module per area; every route uses :class:`ConsoleRoute`."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ...domain.errors import NotFound
from ..web import ConsoleRoute
from . import auth, dashboard, moderation, records, review, rules, sanctions

AREAS = (auth, dashboard, review, moderation, sanctions, rules, records)
router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
for module in AREAS:
    router.include_router(module.router)


@router.api_route("/console/{rest:path}", methods=["GET", "POST"])
async def unknown_page(request: Request, rest: str) -> None:
    """Any other address under /console: the console's own error page, not the API's JSON."""
    raise NotFound(f"no console page at /console/{rest[:100]}")
