"""The admin API's router: sign-in, whoami, operators, agreement versions.

Other admin modules (identity review, audit, sanctions...) add their routes to
their own routers, included by the composition root.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import client_ip, current_operator, operator_with, origin, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from ..domain.fields import Id, Instant, Int32, Text, bounded
from .schemas import ERRORS, AgreementVersionOut, AgreementTextOut, LoginOut, OperatorOut, Page, PublishedOut, WhoAmIOut

router = APIRouter(prefix="/admin/v1", tags=["admin"], responses=ERRORS)
operators_router = APIRouter(prefix="/admin/v1", tags=["admin", "operators"], responses=ERRORS)
agreements_router = APIRouter(prefix="/admin/v1", tags=["admin", "agreements"], responses=ERRORS)

Svc = Annotated[Services, Depends(services)]
Me = Annotated[Principal, Depends(current_operator)]
Admin = Annotated[Principal, Depends(operator_with(Role.ADMIN))]
AnyRole = Annotated[Principal, Depends(operator_with(*Role))]
MAX_ROLES = len(Role)  # a role list longer than every role there is holds a duplicate or a stranger


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OperatorLoginIn(Strict):
    handle: Text = Field(max_length=64)
    password: Text = Field(max_length=1024)
    totp: Text | None = Field(default=None, max_length=16)  # the authenticator's code, once enrolled


class OperatorIn(Strict):
    """A new operator: `roles` (one or several), or `role` for one (older clients)."""

    handle: Text = Field(max_length=64)
    password: Text = Field(max_length=1024)
    roles: list[Annotated[Text, Field(max_length=16)]] = Field(
        default_factory=list, max_length=MAX_ROLES, description="reviewer, moderator, compliance, admin"
    )
    role: Text | None = Field(default=None, max_length=16, description="one role; use roles for several")


class RolesIn(Strict):
    roles: list[Annotated[Text, Field(max_length=16)]] = Field(
        max_length=MAX_ROLES, description="the complete new set: reviewer, moderator, compliance, admin"
    )


class PasswordResetIn(Strict):
    password: Text = Field(max_length=1024, description="a temporary password the operator must change at next sign-in")


class PasswordChangeIn(Strict):
    current_password: Text = Field(max_length=1024)
    new_password: Text = Field(max_length=1024)


class AgreementIn(Strict):
    text: Text = Field(min_length=1, max_length=100_000)
    effective_at: Instant | None = None  # default: now
    grace_days: bounded(0, 365) = 0  # the service bounds it further (invalid_period)


@router.post("/login", response_model=LoginOut)
async def operator_login(body: OperatorLoginIn, request: Request, svc: Svc) -> dict:
    """Sign in; the token goes in `Authorization: Bearer <token>`. `must_change_password` means: change it first.

    Throttled per handle and per address with growing waits (429 `signin_throttled`, `Retry-After`);
    an operator with a second factor sends the authenticator's current code as `totp`."""
    attempt = svc.accounts.operator_login(
        handle=body.handle, password=body.password, client_ip=client_ip(request), totp=body.totp
    )
    token, me = await svc.access_log.sign_in("operator", body.handle, origin(request), attempt)
    return {
        "token": token,
        "token_type": "bearer",
        "operator_id": me.id,
        "role": me.role,
        "roles": sorted(me.roles),
        "must_change_password": me.must_change_password,
    }


@router.post("/logout", status_code=204)
async def operator_logout(request: Request, me: Me, svc: Svc) -> None:
    """End this token's session."""
    await svc.accounts.logout(me)
    await svc.access_log.sign_out(me, origin(request))


@router.get("/whoami", response_model=WhoAmIOut)
async def whoami(me: Me, svc: Svc) -> dict:
    """The calling operator: id, handle, roles, and whether a reset password must be changed."""
    return await svc.workbench.operators.whoami(me)


@router.post("/me/password", response_model=WhoAmIOut)
async def change_own_password(body: PasswordChangeIn, me: Me, svc: Svc) -> dict:
    """Change one's own password (required after a reset before anything else works)."""
    return await svc.workbench.operators.change_own_password(me, current=body.current_password, new=body.new_password)


@operators_router.get("/operators", response_model=Page[OperatorOut])
async def list_operators(me: Admin, svc: Svc) -> dict:
    """Every operator with roles and state (one page: a team is small)."""
    return await svc.workbench.operators.list(me)


@operators_router.post("/operators", status_code=201, response_model=OperatorOut)
async def create_operator(body: OperatorIn, me: Admin, svc: Svc) -> dict:
    """Create an operator holding one or several roles."""
    roles = body.roles or ([body.role] if body.role else [])
    return await svc.workbench.operators.create(me, handle=body.handle, password=body.password, roles=roles)


@operators_router.get("/operators/{operator_id}", response_model=OperatorOut)
async def get_operator(operator_id: Id, me: Admin, svc: Svc) -> dict:
    """One operator."""
    return await svc.workbench.operators.get(me, operator_id)


@operators_router.post("/operators/{operator_id}/disable", response_model=OperatorOut)
async def disable_operator(operator_id: Id, me: Admin, svc: Svc) -> dict:
    """Disable an operator: every token they hold stops working at once, on every node.
    Not oneself (`self_disable`), not the last enabled admin (`last_admin`)."""
    return await svc.workbench.operators.set_disabled(me, operator_id, disabled=True)


@operators_router.post("/operators/{operator_id}/enable", response_model=OperatorOut)
async def enable_operator(operator_id: Id, me: Admin, svc: Svc) -> dict:
    """Re-enable a disabled operator (they sign in again)."""
    return await svc.workbench.operators.set_disabled(me, operator_id, disabled=False)


@operators_router.put("/operators/{operator_id}/roles", response_model=OperatorOut)
async def set_operator_roles(operator_id: Id, body: RolesIn, me: Admin, svc: Svc) -> dict:
    """Replace an operator's roles (`unknown_role` for a name that is none; `last_admin` protects the last admin)."""
    return await svc.workbench.operators.set_roles(me, operator_id, body.roles)


@operators_router.post("/operators/{operator_id}/password", response_model=OperatorOut)
async def reset_operator_password(operator_id: Id, body: PasswordResetIn, me: Admin, svc: Svc) -> dict:
    """Reset a password: their tokens end, and they must change it at next sign-in."""
    return await svc.workbench.operators.reset_password(me, operator_id, password=body.password)


@operators_router.post("/operators/{operator_id}/confirm", response_model=OperatorOut)
async def confirm_operator(operator_id: Id, me: Admin, svc: Svc) -> dict:
    """Confirm, as a second admin, a pending grant of `admin` or `compliance` made by another admin:
    a new operator (who cannot sign in until then) or a change of roles (`grant_state` if none waits)."""
    return await svc.workbench.operators.confirm(me, operator_id)


@agreements_router.post("/agreements", status_code=201, response_model=PublishedOut)
async def publish_agreement(body: AgreementIn, me: Admin, svc: Svc) -> dict:
    """Publish a new agreement version (it must state the seven baselines); every user must accept it."""
    version = await svc.agreements.publish(
        body.text, me.id, effective_at=body.effective_at, grace_days=body.grace_days
    )
    return {"version": version}


@agreements_router.get("/agreements", response_model=list[AgreementVersionOut])
async def list_agreements(_: AnyRole, svc: Svc) -> list[dict]:
    """Every agreement version, oldest first, with acceptance counts."""
    return await svc.agreements.list_versions()


@agreements_router.get("/agreements/{version}", response_model=AgreementTextOut)
async def read_agreement(version: Int32, _: AnyRole, svc: Svc) -> dict:
    """One agreement version's text and acceptance counts."""
    return await svc.agreements.version(version)
