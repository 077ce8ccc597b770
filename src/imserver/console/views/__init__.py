"""The console's routes, one module per area; every route uses :class:`ConsoleRoute`."""

from __future__ import annotations

from fastapi import APIRouter

from ..web import ConsoleRoute
from . import auth, dashboard, moderation, records, review, rules, sanctions

AREAS = (auth, dashboard, review, moderation, sanctions, rules, records)
router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
for module in AREAS:
    router.include_router(module.router)
