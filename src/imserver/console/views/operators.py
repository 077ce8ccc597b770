"""Operators (admins): list, create, disable and enable, roles, password reset; and
every operator's own password change, which a reset password requires first.

The rules (one role at least, never the last admin, not oneself, a reset ends
the operator's sessions) are the Operators service's; a refusal comes back
with its code on the page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...domain.enums import Role
from ..i18n import N_
from ..web import (
    PASSWORD_PAGE,
    ConsoleRoute,
    current_operator,
    done,
    posted,
    render,
    services,
    signed_in,
)

router = APIRouter(route_class=ConsoleRoute)
BACK = "/console/operators"


def _roles(form: dict[str, str]) -> list[str]:
    """The roles ticked on a form (one checkbox per role, named ``role_<name>``)."""
    return [r.value for r in Role if form.get(f"role_{r.value}") == "yes"]


@router.get("/console/operators")
async def operators_page(request: Request) -> Response:
    me = await signed_in(request, "operators")
    listed = await services(request).workbench.operators.list(me)
    return render(
        request,
        "operators.html",
        page="operators",
        items=listed["items"],
        total=listed["total"],
        roles=[r.value for r in Role],
        me_id=me.id,
    )


@router.post("/console/operators")
async def create(request: Request) -> Response:
    me, form = await posted(request, "operators", BACK)
    op = await services(request).workbench.operators.create(
        me, handle=form.get("handle", ""), password=form.get("password", ""), roles=_roles(form)
    )
    return done(request, BACK, N_("Operator %(handle)s (#%(id)s) created."), handle=op["handle"], id=op["id"])


@router.post("/console/operators/{operator_id:int}/disable")
async def disable(request: Request, operator_id: int) -> Response:
    me, _ = await posted(request, "operators", BACK)
    op = await services(request).workbench.operators.set_disabled(me, operator_id, disabled=True)
    return done(request, BACK, N_("Operator %(handle)s is disabled and signed out everywhere."), handle=op["handle"])


@router.post("/console/operators/{operator_id:int}/enable")
async def enable(request: Request, operator_id: int) -> Response:
    me, _ = await posted(request, "operators", BACK)
    op = await services(request).workbench.operators.set_disabled(me, operator_id, disabled=False)
    return done(request, BACK, N_("Operator %(handle)s is enabled again."), handle=op["handle"])


@router.post("/console/operators/{operator_id:int}/roles")
async def set_roles(request: Request, operator_id: int) -> Response:
    me, form = await posted(request, "operators", BACK)
    op = await services(request).workbench.operators.set_roles(me, operator_id, _roles(form))
    if op.get("pending_roles"):  # a grant or removal of admin or compliance waits for a second admin
        return done(
            request,
            BACK,
            N_("Operator %(handle)s will hold %(roles)s once a second admin confirms."),
            handle=op["handle"],
            roles=op["pending_roles"],
        )
    return done(
        request, BACK, N_("Operator %(handle)s now holds: %(roles)s."), handle=op["handle"], roles=op["roles"]
    )


@router.post("/console/operators/{operator_id:int}/confirm")
async def confirm(request: Request, operator_id: int) -> Response:
    """A second admin confirms a grant of admin or compliance (the service refuses the granting admin)."""
    me, _ = await posted(request, "operators", BACK)
    op = await services(request).workbench.operators.confirm(me, operator_id)
    return done(
        request, BACK, N_("Operator %(handle)s now holds: %(roles)s."), handle=op["handle"], roles=op["roles"]
    )


@router.post("/console/operators/{operator_id:int}/password")
async def reset_password(request: Request, operator_id: int) -> Response:
    me, form = await posted(request, "operators", BACK)
    op = await services(request).workbench.operators.reset_password(me, operator_id, password=form.get("password", ""))
    return done(
        request,
        BACK,
        N_("Password of %(handle)s reset: their sessions ended, and they must choose a new one at sign-in."),
        handle=op["handle"],
    )


@router.get(PASSWORD_PAGE)
async def password_page(request: Request) -> Response:
    """One's own password; the only page that answers while a reset password awaits its change."""
    await current_operator(request)
    return render(request, "password.html", page=None)


@router.post(PASSWORD_PAGE)
async def change_password(request: Request) -> Response:
    me, form = await posted(request, None, PASSWORD_PAGE)
    await services(request).workbench.operators.change_own_password(
        me, current=form.get("current_password", ""), new=form.get("new_password", "")
    )
    return done(request, "/console/", N_("Your password is changed."))
