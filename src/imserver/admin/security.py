"""Operator security: the TOTP second factor and the four-eyes confirmation of privileged grants.

* ``POST /totp/enroll``: a new secret for the caller (shown once), off until enabled.
* ``POST /totp/enable``: prove a current code; sign-ins then need one.
* ``POST /operators/{id}/role``: give an operator another role (admin); to or
  from ``admin`` or ``compliance`` it waits for a second admin.
* ``POST /operators/{id}/confirm``: a second admin confirms an operator granted
  ``admin`` or ``compliance`` by another admin, or such a role change
  (policy/grants.py).

The TOTP routes need only a signed-in operator, so one whose role requires a
second factor can enrol before anything else is open to them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import current_operator, operator_with, services
from ..api.fields import Id, Text
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services

router = APIRouter(prefix="/admin/v1", tags=["admin", "security"])

Svc = Annotated[Services, Depends(services)]
Me = Annotated[Principal, Depends(current_operator)]
Admin = Annotated[Principal, Depends(operator_with(Role.ADMIN))]


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Text = Field(max_length=16)


@router.post("/totp/enroll")
async def enroll_totp(me: Me, svc: Svc) -> dict:
    return await svc.accounts.enroll_totp(me)


@router.post("/totp/enable")
async def enable_totp(body: CodeIn, me: Me, svc: Svc) -> dict:
    return await svc.accounts.enable_totp(me, body.code)


@router.post("/operators/{operator_id}/confirm")
async def confirm_operator(operator_id: Id, me: Admin, svc: Svc) -> dict:
    return await svc.accounts.confirm_operator(me, operator_id)


@router.post("/operators/{operator_id}/role")
async def change_role(operator_id: Id, body: RoleIn, me: Admin, svc: Svc) -> dict:
    return await svc.accounts.change_role(me, operator_id, body.role)
