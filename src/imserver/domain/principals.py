"""Who is calling: an authenticated user or operator."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .enums import PrincipalKind, Role


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: int
    token_hash: str
    role: Role | None = None  # operators only: one of `roles` (the first by name), for single-role callers
    # Operators only: every role held. An operator may hold several; checks use this set.
    roles: frozenset[Role] = field(default=frozenset())
    # Operators only: a reset password must be changed before anything else is allowed.
    must_change_password: bool = False
    appeal_only: bool = False  # a closed account's token: its own sanctions and appeals, nothing else
    expires_at: datetime | None = None  # when the token stops working (a WebSocket closes then)
    # An operator whose role requires a second factor they have not enrolled:
    # every role-protected route refuses them until they do.
    second_factor_missing: bool = False

    def __post_init__(self) -> None:
        if self.role is not None and not self.roles:
            object.__setattr__(self, "roles", frozenset({self.role}))
        elif self.roles and self.role is None:
            object.__setattr__(self, "role", min(self.roles))
