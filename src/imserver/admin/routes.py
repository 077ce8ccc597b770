"""The admin API's router: sign-in, operators, agreement versions.

Other admin modules (identity review, audit, sanctions...) add their routes to
``router`` from their own module, imported at the bottom.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from ..api.deps import client_ip, current_operator, operator_with, services
from ..domain.enums import Role
from ..domain.principals import Principal
from ..services.container import Services
from ..api.fields import Text

router = APIRouter(prefix="/admin/v1", tags=["admin"])

Svc = Annotated[Services, Depends(services)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OperatorLoginIn(Strict):
    handle: Text = Field(max_length=64)
    password: Text = Field(max_length=1024)
    totp: Text | None = Field(default=None, max_length=16)  # the authenticator's code, once enrolled


class OperatorIn(Strict):
    handle: Text = Field(max_length=64)
    password: Text = Field(max_length=1024)
    role: Role


class AgreementIn(Strict):
    text: Text = Field(min_length=1, max_length=100_000)


@router.post("/login")
async def operator_login(body: OperatorLoginIn, request: Request, svc: Svc) -> dict:
    token, operator_id, role = await svc.accounts.operator_login(
        handle=body.handle, password=body.password, client_ip=client_ip(request), totp=body.totp
    )
    return {"token": token, "operator_id": operator_id, "role": role.value, "token_type": "bearer"}


@router.post("/logout", status_code=204)
async def operator_logout(me: Annotated[Principal, Depends(current_operator)], svc: Svc) -> None:
    await svc.accounts.logout(me)


@router.get("/whoami")
async def whoami(me: Annotated[Principal, Depends(current_operator)]) -> dict:
    return {"operator_id": me.id, "role": me.role.value if me.role else None}


@router.post("/operators", status_code=201)
async def create_operator(body: OperatorIn, me: Annotated[Principal, Depends(operator_with(Role.ADMIN))], svc: Svc) -> dict:
    operator_id = await svc.accounts.create_operator(
        handle=body.handle, password=body.password, role=body.role, created_by=me.id
    )
    return {"id": operator_id, "role": body.role.value}


@router.post("/agreements", status_code=201)
async def publish_agreement(body: AgreementIn, me: Annotated[Principal, Depends(operator_with(Role.ADMIN))], svc: Svc) -> dict:
    version = await svc.agreements.publish(body.text, me.id)
    await svc.after_policy_change(user_id=0)  # 0: every user's snapshot is stale
    return {"version": version}


@router.get("/agreements")
async def list_agreements(_: Annotated[Principal, Depends(operator_with(*Role))], svc: Svc) -> list[dict]:
    return await svc.agreements.list_versions()
