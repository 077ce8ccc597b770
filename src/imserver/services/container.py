"""The service container built by the composition root (app.py) and handed to front ends.

Front ends (REST, WebSocket) reach every use case through one ``Services``;
they never build services themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from ..config import Settings
from ..domain.clock import Clock, SystemClock
from ..domain.principals import Principal
from ..store.db import Database
from .accounts import Accounts
from .agreement import Agreements
from .passwords import Passwords

# Called after a commit that changes what a user may do (policy snapshot) or
# revokes a token; the gateway subscribes to close sockets and drop caches.
PolicyListener = Callable[[int], Awaitable[None]]
TokenListener = Callable[[str], Awaitable[None]]


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    accounts: Accounts
    agreements: Agreements
    metrics: object = None  # imserver.metrics.Metrics, set by the composition root
    policy_listeners: list[PolicyListener] = field(default_factory=list)
    token_listeners: list[TokenListener] = field(default_factory=list)

    async def start(self) -> None:
        """Start background work (writers, expiry sweeps, broker subscriptions)."""

    async def stop(self) -> None:
        """Stop background work, flushing what was accepted."""

    def health(self) -> dict[str, str]:
        """Component health beside the database's, for /healthz."""
        return {}

    async def agreement_current(self) -> dict:
        return await self.agreements.current()

    async def after_policy_change(self, *, user_id: int) -> None:
        for listener in self.policy_listeners:
            await listener(user_id)

    async def after_token_revoked(self, principal: Principal) -> None:
        for listener in self.token_listeners:
            await listener(principal.token_hash)


def build_services(settings: Settings, db: Database, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    passwords = Passwords(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
    )
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        accounts=Accounts(db, clock, passwords, token_ttl=timedelta(seconds=settings.token_ttl_seconds)),
        agreements=Agreements(db, clock),
    )
