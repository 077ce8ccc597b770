"""Shared FastAPI dependencies: the service container and the calling principal."""

from __future__ import annotations

from fastapi import Request

from ..domain.client_ip import of_connection
from ..domain.enums import PrincipalKind, Role
from ..domain.principals import Principal
from ..services.access_log import Origin
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
    """The client's address: the peer, or X-Forwarded-For as far as the trusted proxies vouch for it."""
    return of_connection(request, services(request).settings.trusted_proxies)


def origin(request: Request) -> Origin:
    """Address and user agent, as the sign-in and network logs record them."""
    return Origin(client_ip(request), request.headers.get("user-agent"))


async def current_user(request: Request) -> Principal:
    return await services(request).accounts.authenticate(bearer_token(request), PrincipalKind.USER)


async def current_operator(request: Request) -> Principal:
    return await services(request).accounts.authenticate(bearer_token(request), PrincipalKind.OPERATOR)


def operator_with(*roles: Role):
    """Dependency: the calling operator, who must hold one of `roles` (403 otherwise)."""

    async def dependency(request: Request) -> Principal:
        principal = await current_operator(request)
        require_role(principal, *roles)
        return principal

    dependency.__name__ = f"operator_with_{'_or_'.join(r.value for r in roles)}"
    return dependency
