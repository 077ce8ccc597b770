"""Shared FastAPI dependencies: the service container and the calling principal."""

from __future__ import annotations

from fastapi import Request

from ..domain.enums import PrincipalKind, Role
from ..domain.errors import Code, Forbidden
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
    return await services(request).accounts.authenticate(bearer_token(request), PrincipalKind.USER)


async def current_operator(request: Request) -> Principal:
    return await services(request).accounts.authenticate(bearer_token(request), PrincipalKind.OPERATOR)


def operator_with(*roles: Role):
    """Dependency: the calling operator, who must hold one of `roles` (403 otherwise)."""

    async def dependency(request: Request) -> Principal:
        principal = await current_operator(request)
        if principal.second_factor_missing:
            # The role requires TOTP: until enrolled, only /admin/v1/totp/* (current_operator) serves them.
            raise Forbidden("enrol a second factor first: POST /admin/v1/totp/enroll", Code.SECOND_FACTOR_REQUIRED)
        require_role(principal, *roles)
        return principal

    dependency.__name__ = f"operator_with_{'_or_'.join(r.value for r in roles)}"
    return dependency
