"""The console's session cookie, its anti-forgery tokens and response headers.

* The session cookie carries the operator's bearer token (issued by the one
  operator sign-in, ``Accounts.operator_login``) and the time of the last
  request, signed: ``TOKEN.LAST_SEEN.MAC``. Every request re-authenticates the
  token (so a revoked token or a disabled operator is signed out at once) and
  refuses a session idle for longer than the timeout (and revokes its token).
  HttpOnly, SameSite=Strict, Secure when the request came over TLS.
* CSRF tokens are bound to the session (an HMAC of its token's hash) or, before
  sign-in, to a random nonce in a cookie of its own; every POST is checked.
* Every console response carries a strict Content-Security-Policy: scripts and
  styles from the console's own static files only, never inline.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

SESSION_COOKIE = "imserver_console"
PRESESSION_COOKIE = "imserver_console_pre"  # the nonce the sign-in form's CSRF token is bound to
CSRF_FIELD = "csrf"
NONCE_BYTES = 16  # 128 bits: the pre-session nonce only needs to be unguessable
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages carry personal data: no copy in a shared or disk cache
}


def session_key(configured: str, derive) -> bytes:
    """The signing key: the configured one (base64, at least 32 bytes), else `derive()`."""
    if configured.strip():
        try:
            key = base64.b64decode(configured, validate=True)
        except ValueError as exc:
            raise ValueError("IMSERVER_CONSOLE_SESSION_KEY is not base64") from exc
        if len(key) < 32:
            raise ValueError("IMSERVER_CONSOLE_SESSION_KEY must decode to at least 32 bytes")
        return key
    return derive()


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    last_seen: int  # epoch seconds of the last request


class Signer:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def _mac(self, *parts: str) -> str:
        return hmac.new(self.key, "|".join(parts).encode(), hashlib.sha256).hexdigest()

    def seal(self, session: Session) -> str:
        return f"{session.token}.{session.last_seen}.{self._mac('session', session.token, str(session.last_seen))}"

    def open(self, value: str | None) -> Session | None:
        """The session in a cookie value, or None if it is absent, malformed or forged."""
        if not value or value.count(".") != 2:
            return None
        token, last_seen, mac = value.split(".")
        if not last_seen.isdigit() or not hmac.compare_digest(mac, self._mac("session", token, last_seen)):
            return None
        return Session(token, int(last_seen))

    def csrf(self, binding: str) -> str:
        """The anti-forgery token for a session (its token) or a pre-session nonce."""
        return self._mac("csrf", hashlib.sha256(binding.encode()).hexdigest())

    def csrf_ok(self, binding: str | None, submitted: str | None) -> bool:
        return bool(binding and submitted) and hmac.compare_digest(self.csrf(binding), submitted)

    def sign(self, purpose: str, value: str) -> str:
        """`value` with a MAC for `purpose` (e.g. the one-time confirmation cookie)."""
        return f"{value}.{self._mac(purpose, value)}"

    def unsign(self, purpose: str, signed: str | None) -> str | None:
        """The value of a `sign`ed string, or None if it is absent or was altered."""
        if not signed or "." not in signed:
            return None
        value, mac = signed.rsplit(".", 1)
        return value if hmac.compare_digest(mac, self._mac(purpose, value)) else None


def new_nonce() -> str:
    return secrets.token_urlsafe(NONCE_BYTES)


def cookie_args(secure: bool) -> dict:
    return {"httponly": True, "secure": secure, "samesite": "strict", "path": "/console"}


def clear_cookie(response, name: str) -> None:
    """Expire a console cookie (with the same attributes it was set with)."""
    response.delete_cookie(name, path="/console", httponly=True, samesite="strict")
