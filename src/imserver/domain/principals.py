"""Who is calling: an authenticated user or operator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .enums import PrincipalKind, Role


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: int
    token_hash: str
    role: Role | None = None  # operators only
    expires_at: datetime | None = None  # when the token stops working (a WebSocket closes then)
    # An operator whose role requires a second factor they have not enrolled:
    # every role-protected route refuses them until they do.
    second_factor_missing: bool = False
