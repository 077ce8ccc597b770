"""Who is calling: an authenticated user or operator."""

from __future__ import annotations

from dataclasses import dataclass

from .enums import PrincipalKind, Role


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: int
    token_hash: str
    role: Role | None = None  # operators only
    appeal_only: bool = False  # a closed account's token: its own sanctions and appeals, nothing else
