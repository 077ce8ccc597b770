"""Users: search, one user's dossier, the audited identity read, and content read by id.

The dossier, the identity and the content are read through the workbench's
services, each read audited there exactly as through the admin API; the views
only parse the address and show what came back.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...domain.enums import RealNameStatus, UserStatus
from ...domain.errors import BadRequest, Code
from ...services.directory import UserFilter
from ...services.worklists import Order
from .. import pages
from ..web import ConsoleRoute, field_int, page_args, paged, render, require, services, signed_in

router = APIRouter(route_class=ConsoleRoute)
QUERY_MAX = 64  # characters of a handle or nickname prefix (handles and nicknames are shorter)


def _choice(value: str, allowed, name: str):
    """An optional enum value from a select: empty is none, anything else must be one of `allowed`."""
    if not value:
        return None
    try:
        return allowed(value)
    except ValueError:
        raise BadRequest(f"unknown {name} {value[:40]!r}", Code.INVALID_FILTER) from None


@router.get("/console/users")
async def search(request: Request, cursor: str = "") -> Response:
    me = await signed_in(request, "users")
    params = dict(request.query_params)
    f = UserFilter(
        q=params.get("q", "").strip()[:QUERY_MAX] or None,
        id=field_int(params, "id", required=False),
        status=_choice(params.get("status", ""), UserStatus, "status"),
        real_name_status=_choice(params.get("real_name_status", ""), RealNameStatus, "real-name status"),
    )
    listed = await services(request).workbench.users.search(me, f, page_args(cursor), order=Order.DESC)
    return render(
        request,
        "users.html",
        page="users",
        params=params,
        statuses=[s.value for s in UserStatus],
        real_name_statuses=[s.value for s in RealNameStatus],
        **paged(request, listed),
    )


@router.get("/console/users/{user_id:int}")
async def dossier(request: Request, user_id: int) -> Response:
    me = await signed_in(request, "users")
    record = await services(request).workbench.users.dossier(me, user_id)
    return render(
        request,
        "dossier.html",
        page="users",
        user=record,
        reads_identity=pages.may(me, pages.READS_IDENTITY),
        reads_full_identity=pages.may(me, pages.READS_FULL_IDENTITY),
        reads_content=pages.may(me, pages.CONTENT),
        sanctions_page=pages.may(me, pages.BY_NAME["sanctions"].roles),
        reports_page=pages.may(me, pages.BY_NAME["reports"].roles),
    )


@router.get("/console/users/{user_id:int}/identity")
async def identity(request: Request, user_id: int, full: bool = False) -> Response:
    """The user's latest identity submission, masked (full for compliance when asked); audited."""
    me = await signed_in(request, "users")
    require(me, pages.READS_IDENTITY)
    shown = await services(request).identities.read(me, user_id, full=full)
    return render(
        request,
        "user_identity.html",
        page="users",
        user_id=user_id,
        identity=shown,
        reads_full_identity=pages.may(me, pages.READS_FULL_IDENTITY),
    )


@router.get("/console/content")
async def content(request: Request) -> Response:
    """A message (with `context` messages either side) or a post, by id; every read is audited."""
    me = await signed_in(request, "content")
    params = dict(request.query_params)
    kind = params.get("kind", "message")
    target = field_int(params, "id", required=False)
    workbench = services(request).workbench
    shown = None
    if target is not None:
        if kind == "message":
            context = field_int(params, "context", required=False) or 0
            shown = await workbench.content.message(me, target, context=context)
        elif kind == "post":
            shown = await workbench.content.post(me, target)
        else:
            raise BadRequest("kind is message or post", Code.INVALID_FILTER)
    return render(request, "content.html", page="content", params=params, kind=kind, shown=shown)
