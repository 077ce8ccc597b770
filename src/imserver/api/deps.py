"""Shared FastAPI dependencies: the service container and the calling principal."""

from __future__ import annotations

from fastapi import Request

from .. import logs
from ..domain.enums import PrincipalKind, Role
from ..domain.principals import Principal
from ..services.accounts import require_role
from ..services.container import Services


def services(request: Request) -> Services:
    return request.app.state.services


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def current_user(request: Request) -> Principal:
    principal = await services(request).accounts.authenticate(bearer_token(request), PrincipalKind.USER)
    logs.note_actor(user_id=principal.id)  # on this request's log lines from here on
    return principal


async def current_operator(request: Request) -> Principal:
    principal = await services(request).accounts.authenticate(bearer_token(request), PrincipalKind.OPERATOR)
    logs.note_actor(operator_id=principal.id)
    return principal


def operator_with(*roles: Role):
    """Dependency: the calling operator, who must hold one of `roles` (403 otherwise)."""

    async def dependency(request: Request) -> Principal:
        principal = await current_operator(request)
        require_role(principal, *roles)
        return principal

    dependency.__name__ = f"operator_with_{'_or_'.join(r.value for r in roles)}"
    return dependency
