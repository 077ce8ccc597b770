"""TOTP second factor for operators (RFC 6238, through pyotp).

An operator enrols (a new secret, shown once as an ``otpauth://`` URI for an
authenticator app), then proves one code to turn it on; from then on the
operator's sign-in needs a current code beside the password. Roles named in
``operator_totp_required_roles`` (e.g. admin, compliance) may sign in without
one only to enrol: every role-protected route answers 403
``second_factor_required`` until they have.

Secrets are sealed by the key ring like identity data. The key ring's
additional data is the record id; operator secrets use the negated operator id
so a sealed secret can never be opened as (or swapped with) an identity record.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

from ..store.keyring import KeyRing, Sealed

ISSUER = "imserver"
# Codes from the step before and after the current one are accepted: a 30 s
# step with up to 30 s of clock drift or typing time either way.
VALID_WINDOW = 1


class SecondFactor:
    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    @staticmethod
    def new_secret() -> str:
        return pyotp.random_base32()

    @staticmethod
    def uri(secret: str, handle: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=handle, issuer_name=ISSUER)

    def seal(self, operator_id: int, secret: str) -> Sealed:
        return self.keyring.seal(-operator_id, secret.encode())

    def open(self, operator_id: int, key_id: str, wrapped_key: bytes, ciphertext: bytes) -> str:
        return self.keyring.open(-operator_id, key_id, wrapped_key, ciphertext).decode()

    @staticmethod
    def matching_step(secret: str, code: str | None, now: datetime) -> int | None:
        """The time step (30 s) whose code `code` is, within VALID_WINDOW of `now`; None if none.

        The caller refuses a step at or before the last one used, so a code
        works once (a code seen over a shoulder or in a log cannot be replayed).
        """
        if not code or not code.isdigit() or len(code) != 6:
            return None
        totp = pyotp.TOTP(secret)
        current = totp.timecode(now)
        for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
            if hmac.compare_digest(totp.generate_otp(step), code):
                return step
        return None
