"""Registration, sign-in and bearer tokens for users and operators.

Errors never reveal whether a handle exists: registration with a taken handle
and login with a wrong handle or password get one code each, and login costs one
argon2 verification either way.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from datetime import timedelta

from ..domain.clock import Clock
from ..domain.enums import PrincipalKind, Role, UserStatus
from ..domain.errors import BadRequest, Code, Conflict, Forbidden, Unauthenticated
from ..domain.principals import Principal
from ..store import accounts as store
from ..store import agreement as agreement_store
from ..store import audit
from ..store.db import Database
from .passwords import Passwords
from .signin_guard import SigninGuard

TOKEN_BYTES = 32  # 256 bits from secrets; issue 2 asks for at least 128
HANDLE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,31}$")
MAX_NICKNAME_CHARS = 32


def hash_token(token: str) -> str:
    """Tokens are stored as SHA-256: a leaked table holds nothing usable."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_handle(handle: str) -> str:
    handle = unicodedata.normalize("NFKC", handle).strip().lower()
    if not HANDLE_RE.match(handle):
        raise BadRequest(
            "handle must be 3-32 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit",
            Code.INVALID_HANDLE,
        )
    return handle


def clean_nickname(nickname: str) -> str:
    nickname = unicodedata.normalize("NFC", nickname).strip()
    if not 1 <= len(nickname) <= MAX_NICKNAME_CHARS or any(unicodedata.category(c).startswith("C") for c in nickname):
        raise BadRequest(f"nickname must be 1-{MAX_NICKNAME_CHARS} printable characters")
    return nickname


class Accounts:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        passwords: Passwords,
        *,
        token_ttl: timedelta,
        guard: SigninGuard | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.passwords = passwords
        self.token_ttl = token_ttl
        self.guard = guard  # sign-in throttling; None: unthrottled (tools that sign nobody in)

    # -- users -------------------------------------------------------------------

    async def register(
        self, *, handle: str, password: str, nickname: str, agreement_version: int, client_ip: str | None
    ) -> int:
        """Create a user who accepts the current agreement (Art. 6 ¶2) in the same transaction."""
        handle = normalise_handle(handle)
        nickname = clean_nickname(nickname)
        self.passwords.check_acceptable(password, context=(handle, nickname))
        password_hash = self.passwords.hash(password)  # outside the transaction: ~50 ms of CPU
        now = self.clock.now()
        async with self.db.transaction() as conn:
            current = await agreement_store.current(conn)
            if current is None:
                raise Conflict("no agreement has been published", Code.NO_AGREEMENT)
            if agreement_version != current["version"]:
                raise BadRequest(
                    f"the current agreement is version {current['version']}",
                    Code.AGREEMENT_VERSION_MISMATCH,
                    current_version=current["version"],
                )
            user_id = await store.insert_user(
                conn, handle=handle, nickname=nickname, password_hash=password_hash, now=now
            )
            if user_id is None:
                # Same code and text whatever the reason: no enumeration of handles.
                raise Conflict("registration refused; choose another handle", Code.REGISTRATION_REFUSED)
            await store.record_acceptance(
                conn, user_id=user_id, version=current["version"], now=now, client_ip=client_ip
            )
        return user_id

    async def login(self, *, handle: str, password: str, client_ip: str | None = None) -> tuple[str, int]:
        try:
            handle = normalise_handle(handle)
        except BadRequest:
            handle = ""
        await self._throttle(PrincipalKind.USER, handle, client_ip)
        async with self.db.transaction() as conn:
            user = await store.get_user_by_handle(conn, handle) if handle else None
        stored = user["password_hash"] if user else None
        if not self.passwords.verify(stored, password) or user["status"] == UserStatus.CLOSED:
            await self._failed(PrincipalKind.USER, handle, client_ip)
            raise Unauthenticated("wrong handle or password", Code.INVALID_CREDENTIALS)
        await self._succeeded(PrincipalKind.USER, handle)
        async with self.db.transaction() as conn:
            if self.passwords.needs_rehash(stored):
                await store.update_user(conn, user["id"], password_hash=self.passwords.hash(password))
            token = await self._issue(conn, PrincipalKind.USER, user["id"])
        return token, user["id"]

    async def accept_agreement(self, user_id: int, version: int, client_ip: str | None) -> None:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            current = await agreement_store.current(conn)
            if current is None or version != current["version"]:
                raise BadRequest(
                    "only the current agreement version can be accepted",
                    Code.AGREEMENT_VERSION_MISMATCH,
                    current_version=current["version"] if current else None,
                )
            await store.record_acceptance(conn, user_id=user_id, version=version, now=now, client_ip=client_ip)

    async def profile(self, user_id: int) -> dict:
        """The user's own view: status fields only, never identity data."""
        async with self.db.transaction() as conn:
            user = await store.get_user(conn, user_id)
            current = await agreement_store.current(conn)
        current_version = current["version"] if current else None
        return {
            "id": user["id"],
            "handle": user["handle"],
            "nickname": user["nickname"],
            "status": user["status"],
            "real_name_status": user["realname_status"],
            "agreement_version": user["agreement_version"],
            "current_agreement_version": current_version,
            "agreement_current": user["agreement_version"] == current_version,
        }

    async def public_profile(self, user_id: int) -> dict:
        """What other users see: the front-stage nickname, nothing else (Art. 6 ¶1)."""
        async with self.db.transaction() as conn:
            user = await store.get_user(conn, user_id)
        if user is None:
            from ..domain.errors import NotFound

            raise NotFound("no such user")
        return {"id": user["id"], "nickname": user["nickname"]}

    # -- operators -------------------------------------------------------------

    async def create_operator(self, *, handle: str, password: str, role: Role, created_by: int | None) -> int:
        handle = normalise_handle(handle)
        self.passwords.check_acceptable(password, context=(handle,))
        password_hash = self.passwords.hash(password)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            operator_id = await store.insert_operator(
                conn, handle=handle, password_hash=password_hash, role=role, now=now
            )
            if operator_id is None:
                raise Conflict("an operator with this handle exists")
            await audit.append(
                conn,
                at=now,
                actor_kind="operator" if created_by else "system",
                actor_id=created_by,
                action="operator.create",
                subject=f"operator:{operator_id}",
                detail={"handle": handle, "role": role.value},
            )
        return operator_id

    async def operator_login(
        self, *, handle: str, password: str, client_ip: str | None = None
    ) -> tuple[str, int, Role]:
        try:
            handle = normalise_handle(handle)
        except BadRequest:
            handle = ""
        await self._throttle(PrincipalKind.OPERATOR, handle, client_ip)
        async with self.db.transaction() as conn:
            op = await store.get_operator_by_handle(conn, handle) if handle else None
        stored = op["password_hash"] if op else None
        if not self.passwords.verify(stored, password) or op["disabled_at"] is not None:
            await self._failed(PrincipalKind.OPERATOR, handle, client_ip)
            raise Unauthenticated("wrong handle or password", Code.INVALID_CREDENTIALS)
        await self._succeeded(PrincipalKind.OPERATOR, handle)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            if self.passwords.needs_rehash(stored):
                await store.update_operator(conn, op["id"], password_hash=self.passwords.hash(password))
            token = await self._issue(conn, PrincipalKind.OPERATOR, op["id"])
            await audit.append(
                conn, at=now, actor_kind="operator", actor_id=op["id"], action="operator.login", subject=None
            )
        return token, op["id"], Role(op["role"])

    # -- throttling (services/signin_guard.py) -----------------------------------------

    async def _throttle(self, kind: PrincipalKind, handle: str, client_ip: str | None) -> None:
        if self.guard is not None:
            await self.guard.check(kind, handle, client_ip)

    async def _failed(self, kind: PrincipalKind, handle: str, client_ip: str | None) -> None:
        if self.guard is not None:
            await self.guard.failed(kind, handle, client_ip)

    async def _succeeded(self, kind: PrincipalKind, handle: str) -> None:
        if self.guard is not None:
            await self.guard.succeeded(kind, handle)

    # -- tokens ----------------------------------------------------------------

    async def _issue(self, conn, kind: PrincipalKind, principal_id: int) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.clock.now()
        await store.insert_session(
            conn,
            token_hash=hash_token(token),
            kind=kind,
            principal_id=principal_id,
            now=now,
            expires_at=now + self.token_ttl,
        )
        return token

    async def authenticate(self, token: str | None, kind: PrincipalKind) -> Principal:
        """The principal behind a bearer token, or Unauthenticated."""
        if not token:
            raise Unauthenticated("a bearer token is required")
        token_hash = hash_token(token)
        async with self.db.read() as conn:
            session = await store.get_session(conn, token_hash)
            if (
                session is None
                or session["principal_kind"] != kind
                or session["revoked_at"] is not None
                or session["expires_at"] <= self.clock.now()
            ):
                raise Unauthenticated("the token is invalid, expired or revoked")
            if kind == PrincipalKind.USER:
                user = await store.get_user(conn, session["principal_id"])
                if user is None or user["status"] == UserStatus.CLOSED:
                    raise Unauthenticated("the account is closed", Code.ACCOUNT_CLOSED)
                return Principal(kind, user["id"], token_hash)
            op = await store.get_operator(conn, session["principal_id"])
            if op is None or op["disabled_at"] is not None:
                raise Unauthenticated("the operator account is disabled")
            return Principal(kind, op["id"], token_hash, Role(op["role"]))

    async def live_tokens(self, token_hashes: list[str]) -> set[str]:
        """Which of these user sessions are still valid (one query for a whole node's sockets)."""
        async with self.db.transaction() as conn:
            return await store.live_token_hashes(conn, token_hashes, self.clock.now())

    async def logout(self, principal: Principal) -> None:
        async with self.db.transaction() as conn:
            await store.revoke_session(conn, principal.token_hash, self.clock.now())


def require_role(principal: Principal, *roles: Role) -> None:
    """Forbidden unless the caller is an operator holding one of `roles`.

    Roles do not nest: `admin` manages operators and settings but does not read
    identity data, which only `compliance` may (ARCHITECTURE.md, "Personal information").
    """
    if principal.kind != PrincipalKind.OPERATOR or principal.role not in roles:
        raise Forbidden(f"this needs the role {' or '.join(r.value for r in roles)}")
