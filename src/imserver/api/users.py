"""User accounts: register, log in and out, profile, the agreement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from ..domain.principals import Principal
from ..policy.ladder import Item
from ..services.container import Services
from ..domain.fields import Id, Int32, Text
from .deps import client_ip, current_user, origin, services

router = APIRouter(prefix="/api/v1", tags=["users"])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(Strict):
    handle: Text = Field(max_length=64)
    password: Text = Field(max_length=1024)
    nickname: Text = Field(max_length=128)
    agreement_version: Int32


class LoginIn(Strict):
    handle: Text = Field(max_length=64)
    password: Text = Field(max_length=1024)


class ProfileIn(Strict):
    nickname: Text = Field(max_length=128)


class AcceptIn(Strict):
    version: Int32


@router.post("/register", status_code=201)
async def register(body: RegisterIn, request: Request, svc: Annotated[Services, Depends(services)]) -> dict:
    """Register a user, who accepts the current agreement version in the same step."""
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
    """Sign in; send the token as `Authorization: Bearer <token>`.

    Throttled per handle and per address with growing waits (429 `signin_throttled`, `Retry-After`)."""
    attempt = svc.accounts.login(handle=body.handle, password=body.password, client_ip=client_ip(request))
    token, user_id = await svc.access_log.sign_in("user", body.handle, origin(request), attempt)
    return {"token": token, "user_id": user_id, "token_type": "bearer"}


@router.post("/logout", status_code=204)
async def logout(
    request: Request, me: Annotated[Principal, Depends(current_user)], svc: Annotated[Services, Depends(services)]
) -> None:
    """End this token's session."""
    await svc.accounts.logout(me)
    await svc.access_log.sign_out(me, origin(request))


@router.post("/me/deletion", status_code=202)
async def request_deletion(
    me: Annotated[Principal, Depends(current_user)], svc: Annotated[Services, Depends(services)]
) -> dict:
    """Delete my account: sign-in stops now; personal data is erased on the date returned."""
    return await svc.deletions.request(me.id)


@router.get("/me")
async def me(me: Annotated[Principal, Depends(current_user)], svc: Annotated[Services, Depends(services)]) -> dict:
    """The caller's own profile: statuses and agreement version, never identity data."""
    return await svc.accounts.profile(me.id)


@router.patch("/me")
async def update_me(
    body: ProfileIn, me: Annotated[Principal, Depends(current_user)], svc: Annotated[Services, Depends(services)]
) -> dict:
    """Change your nickname; a sanction that stops profile changes (the ladder) refuses it."""
    await svc.policy.require_allowed(me.id, Item.PROFILE_CHANGES)
    return await svc.accounts.update_nickname(me.id, body.nickname)


@router.get("/users/{user_id}")
async def user_profile(
    user_id: Id, _: Annotated[Principal, Depends(current_user)], svc: Annotated[Services, Depends(services)]
) -> dict:
    """Another user as users see them: the nickname only."""
    return await svc.accounts.public_profile(user_id)


@router.get("/provider")
async def provider(svc: Annotated[Services, Depends(services)]) -> dict:
    """Who provides this service and its qualifications (Art. 4): operator, ICP licence,
    Internet news information service licence and whether it is valid now."""
    return svc.provider()


@router.get("/agreement")
async def current_agreement(svc: Annotated[Services, Depends(services)]) -> dict:
    """The current agreement version and its text."""
    return await svc.agreements.current()


@router.post("/agreement/accept", status_code=204)
async def accept_agreement(
    body: AcceptIn,
    request: Request,
    me: Annotated[Principal, Depends(current_user)],
    svc: Annotated[Services, Depends(services)],
) -> None:
    """Accept the current agreement version."""
    await svc.accounts.accept_agreement(me.id, body.version, client_ip(request))
