"""Enumerations shared by store, services, policy and the wire."""

from __future__ import annotations

from enum import StrEnum


class UserStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class RealNameStatus(StrEnum):
    """Art. 6 "real name back stage": where a user's identity check stands.

    unverified -> pending -> verified | rejected; rejected -> pending on resubmission.
    """

    UNVERIFIED = "unverified"
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class Role(StrEnum):
    """Operator roles; they do not nest (each route names the roles it admits)."""

    REVIEWER = "reviewer"  # identity and public-account review
    MODERATOR = "moderator"  # reports, warnings, restrictions
    COMPLIANCE = "compliance"  # suspensions, closures, identity reads, regulator exports
    ADMIN = "admin"  # operators, agreement versions, term lists


class PrincipalKind(StrEnum):
    USER = "user"
    OPERATOR = "operator"


class ConversationKind(StrEnum):
    DIRECT = "direct"
    GROUP = "group"
