"""User accounts: register, log in and out, profile, the agreement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from ..domain.principals import Principal
from ..services.container import Services
from .deps import client_ip, current_user, origin, services

router = APIRouter(prefix="/api/v1", tags=["users"])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(Strict):
    handle: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    nickname: str = Field(max_length=128)
    agreement_version: int


class LoginIn(Strict):
    handle: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class AcceptIn(Strict):
    version: int


@router.post("/register", status_code=201)
async def register(body: RegisterIn, request: Request, svc: Annotated[Services, Depends(services)]) -> dict:
    user_id = await svc.accounts.register(
        handle=body.handle,
        password=body.password,
        nickname=body.nickname,
        agreement_version=body.agreement_version,
        client_ip=client_ip(request),
    )
    return {"id": user_id}


@router.post("/login")
async def login(body: LoginIn, request: Request, svc: Annotated[Services, Depends(services)]) -> dict:
    attempt = svc.accounts.login(handle=body.handle, password=body.password)
    token, user_id = await svc.access_log.sign_in("user", body.handle, origin(request), attempt)
    return {"token": token, "user_id": user_id, "token_type": "bearer"}


@router.post("/logout", status_code=204)
async def logout(
    request: Request, me: Annotated[Principal, Depends(current_user)], svc: Annotated[Services, Depends(services)]
) -> None:
    await svc.accounts.logout(me)
    await svc.access_log.record("signout", principal_kind="user", principal_id=me.id, origin=origin(request))
    await svc.after_token_revoked(me)


@router.post("/me/deletion", status_code=202)
async def request_deletion(
    me: Annotated[Principal, Depends(current_user)], svc: Annotated[Services, Depends(services)]
) -> dict:
    """Delete my account: sign-in stops now; personal data is erased on the date returned."""
    deletion = await svc.deletions.request(me.id)
    await svc.after_token_revoked(me)
    await svc.after_policy_change(user_id=me.id)  # closed: live sockets and caches learn it
    return deletion


@router.get("/me")
async def me(me: Annotated[Principal, Depends(current_user)], svc: Annotated[Services, Depends(services)]) -> dict:
    return await svc.accounts.profile(me.id)


@router.get("/users/{user_id}")
async def user_profile(
    user_id: int, _: Annotated[Principal, Depends(current_user)], svc: Annotated[Services, Depends(services)]
) -> dict:
    return await svc.accounts.public_profile(user_id)


@router.get("/agreement")
async def current_agreement(svc: Annotated[Services, Depends(services)]) -> dict:
    return await svc.agreement_current()


@router.post("/agreement/accept", status_code=204)
async def accept_agreement(
    body: AcceptIn,
    request: Request,
    me: Annotated[Principal, Depends(current_user)],
    svc: Annotated[Services, Depends(services)],
) -> None:
    await svc.accounts.accept_agreement(me.id, body.version, client_ip(request))
    await svc.after_policy_change(user_id=me.id)
