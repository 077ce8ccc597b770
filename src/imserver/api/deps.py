"""Shared FastAPI dependencies: the service container and the calling principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..domain.enums import PrincipalKind, Role
from ..domain.errors import Code, Forbidden
from ..domain.principals import Principal
from ..services.accounts import require_role
from ..services.container import Services


# Declares the bearer scheme in the OpenAPI (so /docs can authorize) on every route that
# authenticates. auto_error=False: the token is still read and judged by bearer_token and
# the accounts service, which answer 401 with the team's error body.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="a token from POST /api/v1/login (users) or POST /admin/v1/login (operators)",
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]


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


async def current_user(request: Request, _: Bearer = None) -> Principal:
    return await services(request).accounts.authenticate(bearer_token(request), PrincipalKind.USER)


async def current_user_or_appeal(request: Request, _: Bearer = None) -> Principal:
    """The calling user, also with a closed account's appeal-only token (own sanctions and appeals)."""
    return await services(request).accounts.authenticate(bearer_token(request), PrincipalKind.USER, appeal_ok=True)


async def current_operator(request: Request, _: Bearer = None) -> Principal:
    return await services(request).accounts.authenticate(bearer_token(request), PrincipalKind.OPERATOR)


def operator_with(*roles: Role):
    """Dependency: the calling operator, who must hold one of `roles` (403 otherwise).

    An operator whose password was reset gets 403 ``password_change_required``
    until they change it (whoami, sign-out and the password change use
    :func:`current_operator`, which lets them through). The roles are kept on
    the dependency (``allowed_roles``) so the docs' role table and the role
    matrix test read them from the routes themselves.
    """

    async def dependency(request: Request, _: Bearer = None) -> Principal:
        principal = await current_operator(request)
        if principal.must_change_password:
            raise Forbidden("choose a new password first (POST /admin/v1/me/password)", Code.PASSWORD_CHANGE_REQUIRED)
        require_role(principal, *roles)
        return principal

    dependency.__name__ = f"operator_with_{'_or_'.join(r.value for r in roles)}"
    dependency.allowed_roles = frozenset(roles)
    return dependency
