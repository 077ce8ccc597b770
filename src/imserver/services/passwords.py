"""Password hashing with argon2id (argon2-cffi: a reviewed, constant-time implementation)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..domain.errors import BadRequest, Code

MIN_PASSWORD_CHARS = 8  # NIST SP 800-63B minimum for user-chosen secrets
MAX_PASSWORD_CHARS = 128  # bounds hashing cost per request


class Passwords:
    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism)
        # Verifying against this on unknown handles makes login take the same time
        # whether or not the account exists (no user enumeration by timing).
        self._dummy = self._hasher.hash("imserver-dummy-password")

    @staticmethod
    def check_acceptable(password: str) -> None:
        if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
            raise BadRequest(
                f"password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters", Code.WEAK_PASSWORD
            )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True if it matches; an unknown account (None) costs the same time and is False."""
        if len(password) > MAX_PASSWORD_CHARS:
            return False
        try:
            return self._hasher.verify(stored_hash or self._dummy, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
