"""Password hashing with argon2id (argon2-cffi: a reviewed, constant-time implementation)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

from ..domain.errors import BadRequest, Code

MIN_PASSWORD_CHARS = 8  # NIST SP 800-63B minimum for user-chosen secrets
MAX_PASSWORD_CHARS = 128  # bounds hashing cost per request
# zxcvbn judges this many leading characters (its own limit; longer passwords
# are strong by length alone past the common-password lists it matches).
STRENGTH_CHARS = 72


class Passwords:
    """argon2id hashing, and the acceptance rules for a new password.

    A new password must be 8-128 characters and reach ``min_score`` on zxcvbn
    (a maintained strength estimator that ships frequency lists of the most
    common passwords, English words and names, and recognises keyboard runs,
    repeats, sequences and dates): ``password`` and ``12345678`` score 0.
    """

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int, min_score: int = 2) -> None:
        self.min_score = min_score
        self._hasher = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=parallelism)
        # Verifying against this on unknown handles makes login take the same time
        # whether or not the account exists (no user enumeration by timing).
        self._dummy = self._hasher.hash("imserver-dummy-password")

    def check_acceptable(self, password: str, *, context: tuple[str, ...] = ()) -> None:
        """WEAK_PASSWORD unless long enough and hard enough to guess; `context` (the handle, ...) counts against it."""
        if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
            raise BadRequest(
                f"password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters", Code.WEAK_PASSWORD
            )
        if self.min_score > 0:
            result = zxcvbn(password[:STRENGTH_CHARS], user_inputs=[c[:STRENGTH_CHARS] for c in context])
            if result["score"] < self.min_score:
                hint = result["feedback"]["warning"] or "add more words or characters"
                raise BadRequest(f"password is too easy to guess: {hint}", Code.WEAK_PASSWORD)

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
