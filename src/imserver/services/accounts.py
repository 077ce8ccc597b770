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
from ..domain.errors import BadRequest, Code, Conflict, Forbidden, NotFound, Unauthenticated
from ..domain.principals import Principal
from ..store import accounts as store
from ..store import agreement as agreement_store
from ..store import audit
from ..store.db import Database
from .passwords import Passwords
from .second_factor import SecondFactor
from .signin_guard import SigninGuard
from .unit_of_work import AfterCommit, TokenRevoked

# An operator session's last use is written at most this often (one write a
# minute, not one per request); the idle timeout is exact to within it.
IDLE_TOUCH = timedelta(seconds=60)
TOKEN_BYTES = 32  # 256 bits from secrets; at least 128 keeps tokens unguessable
HANDLE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,31}$")
MAX_NICKNAME_CHARS = 32

# A closed account's correct sign-in gets a session of this scope: its own
# sanctions and appeals only (services/accounts.authenticate, api/deps.py).
APPEAL_SCOPE = "appeal"
APPEAL_TOKEN_TTL = timedelta(hours=1)  # long enough to read and write an appeal; sign in again for more

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
        effects: AfterCommit,
        guard: SigninGuard | None = None,
        operator_token_ttl: timedelta | None = None,
        operator_idle: timedelta | None = None,
        totp_required: frozenset[Role] = frozenset(),
        second_factor: SecondFactor | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.passwords = passwords
        self.token_ttl = token_ttl
        self.guard = guard  # sign-in throttling; None: unthrottled (tools that sign nobody in)
        self.operator_token_ttl = operator_token_ttl or token_ttl
        self.operator_idle = operator_idle  # None: no idle timeout
        self.totp_required = totp_required
        self.second_factor = second_factor  # None: TOTP cannot be enrolled (tools that sign nobody in)
        self.effects = effects

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
            current = await agreement_store.current(conn, now)
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
        if not self.passwords.verify(stored, password):
            await self._failed(PrincipalKind.USER, handle, client_ip)
            raise Unauthenticated("wrong handle or password", Code.INVALID_CREDENTIALS)
        await self._succeeded(PrincipalKind.USER, handle)
        closed = user["status"] == UserStatus.CLOSED
        async with self.db.transaction() as conn:
            if self.passwords.needs_rehash(stored):
                await store.update_user(conn, user["id"], password_hash=self.passwords.hash(password))
            token = await self._issue(conn, PrincipalKind.USER, user["id"], scope=APPEAL_SCOPE if closed else None)
        if closed:
            # Only after the password matched: a wrong password never learns the account is closed.
            raise Forbidden(
                "the account is closed; this token reads your sanctions (GET /api/v1/sanctions) and files appeals",
                Code.ACCOUNT_CLOSED,
                appeal_token=token,
                user_id=user["id"],
                token_type="bearer",
            )
        return token, user["id"]

    async def accept_agreement(self, user_id: int, version: int, client_ip: str | None) -> None:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            current = await agreement_store.current(conn, now)
            if current is None or version != current["version"]:
                raise BadRequest(
                    "only the current agreement version can be accepted",
                    Code.AGREEMENT_VERSION_MISMATCH,
                    current_version=current["version"] if current else None,
                )
            await store.record_acceptance(conn, user_id=user_id, version=version, now=now, client_ip=client_ip)
        await self.effects.policy_changed(user_id=user_id)  # sending may be allowed again, on every node

    async def profile(self, user_id: int) -> dict:
        """The user's own view: status fields only, never identity data."""
        async with self.db.transaction() as conn:
            user = await store.get_user(conn, user_id)
            current = await agreement_store.current(conn, self.clock.now())
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

    async def update_nickname(self, user_id: int, nickname: str) -> dict:
        """Change the front-stage nickname (the caller has asked the sanction ladder first)."""
        nickname = clean_nickname(nickname)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await store.update_user(conn, user_id, nickname=nickname)
            await audit.append(
                conn,
                at=now,
                actor_kind="user",
                actor_id=user_id,
                action="user.profile",
                subject=f"user:{user_id}",
                detail={"fields": ["nickname"]},
            )
        return await self.profile(user_id)

    async def public_profile(self, user_id: int) -> dict:
        """What other users see: the front-stage nickname, nothing else (Art. 6 ¶1)."""
        async with self.db.transaction() as conn:
            user = await store.get_user(conn, user_id)
        if user is None:
            raise NotFound("no such user")
        return {"id": user["id"], "nickname": user["nickname"]}

    # -- operators -------------------------------------------------------------

    async def create_operator(
        self,
        *,
        handle: str,
        password: str,
        role: Role,
        created_by: int | None,
        roles: list[Role] | None = None,
        pending: bool = False,
    ) -> int:
        """A new operator holding `roles` (default: just `role`); audited.

        Who may grant what is the operators service's check (services/operators.py,
        policy/grants.py); `pending` keeps the new operator from signing in until a
        second admin confirms. From the CLI (`created_by` None) it is active at once."""
        handle = normalise_handle(handle)
        self.passwords.check_acceptable(password, context=(handle,))
        password_hash = self.passwords.hash(password)
        held = sorted(set(roles or [role]))
        now = self.clock.now()
        async with self.db.transaction() as conn:
            operator_id = await store.insert_operator(
                conn,
                handle=handle,
                password_hash=password_hash,
                role=role,
                roles=held,
                now=now,
                created_by=created_by,
                confirmed_at=None if pending else now,
            )
            if operator_id is None:
                raise Conflict("an operator with this handle exists", Code.OPERATOR_EXISTS)
            await audit.append(
                conn,
                at=now,
                actor_kind="operator" if created_by else "system",
                actor_id=created_by,
                action="operator.create",
                subject=f"operator:{operator_id}",
                detail={"handle": handle, "role": role.value, "roles": [r.value for r in held], "pending": pending},
            )
        return operator_id

    async def operator_login(
        self, *, handle: str, password: str, client_ip: str | None = None, totp: str | None = None
    ) -> tuple[str, Principal]:
        """A new token and the operator it authenticates (roles, must_change_password).

        Throttled like the users' sign-in (services/signin_guard.py); a wrong
        second-factor code counts as a failed sign-in, and a code works once."""
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
        step = None
        if op["totp_enabled_at"] is not None:
            step = self._totp_step(op, totp)
            if step is None or step <= (op["totp_last_step"] or -1):  # a code works once
                await self._failed(PrincipalKind.OPERATOR, handle, client_ip)  # a wrong code is a failed sign-in
                raise Unauthenticated("a current code from your authenticator is required", Code.SECOND_FACTOR_REQUIRED)
        if op["confirmed_at"] is None and op["created_by"] is not None:
            raise Unauthenticated("this operator awaits a second admin's confirmation", Code.OPERATOR_PENDING)
        await self._succeeded(PrincipalKind.OPERATOR, handle)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            if self.passwords.needs_rehash(stored):
                await store.update_operator(conn, op["id"], password_hash=self.passwords.hash(password))
            if step is not None:
                await store.update_operator(conn, op["id"], totp_last_step=step)
            token = await self._issue(conn, PrincipalKind.OPERATOR, op["id"])
            roles = (await store.operator_roles_of(conn, [op["id"]]))[op["id"]]
            await audit.append(
                conn, at=now, actor_kind="operator", actor_id=op["id"], action="operator.login", subject=None
            )
        return token, self._operator_principal(op, hash_token(token), roles, now + self.operator_token_ttl)

    async def enroll_totp(self, principal: Principal) -> dict:
        """A new TOTP secret for the calling operator, off until enable_totp proves a code."""
        if self.second_factor is None:
            raise Conflict("no second factor is configured", Code.SECOND_FACTOR_STATE)
        async with self.db.transaction() as conn:
            op = await store.get_operator(conn, principal.id)
            if op["totp_enabled_at"] is not None:
                raise Conflict("a second factor is already enabled", Code.SECOND_FACTOR_STATE)
            secret = self.second_factor.new_secret()
            sealed = self.second_factor.seal(op["id"], secret)
            await store.update_operator(
                conn,
                op["id"],
                totp_key_id=sealed.key_id,
                totp_wrapped_key=sealed.wrapped_key,
                totp_secret=sealed.ciphertext,
            )
        # Shown once, to the operator who asked; never logged or audited.
        return {"secret": secret, "otpauth_uri": self.second_factor.uri(secret, op["handle"])}

    async def enable_totp(self, principal: Principal, code: str) -> dict:
        """Turn the enrolled secret on once the operator proves a current code from it."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            op = await store.get_operator(conn, principal.id)
            if op["totp_secret"] is None or op["totp_enabled_at"] is not None:
                raise Conflict("enrol first (or it is already enabled)", Code.SECOND_FACTOR_STATE)
            if self._totp_step(op, code) is None:
                raise BadRequest("that code is not the current one", Code.SECOND_FACTOR_REQUIRED)
            await store.update_operator(conn, op["id"], totp_enabled_at=now)
            await audit.append(
                conn, at=now, actor_kind="operator", actor_id=op["id"], action="operator.totp_enabled", subject=None
            )
        return {"enabled": True}

    def _totp_step(self, op, code: str | None) -> int | None:
        """The time step of this operator's code, or None if it is not a current one."""
        if self.second_factor is None or op["totp_secret"] is None:
            return None
        secret = self.second_factor.open(op["id"], op["totp_key_id"], op["totp_wrapped_key"], op["totp_secret"])
        return self.second_factor.matching_step(secret, code, self.clock.now())

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

    async def _issue(self, conn, kind: PrincipalKind, principal_id: int, *, scope: str | None = None) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.clock.now()
        if scope == APPEAL_SCOPE:
            ttl = APPEAL_TOKEN_TTL
        else:
            ttl = self.operator_token_ttl if kind == PrincipalKind.OPERATOR else self.token_ttl
        await store.insert_session(
            conn,
            token_hash=hash_token(token),
            kind=kind,
            principal_id=principal_id,
            now=now,
            expires_at=now + ttl,
            scope=scope,
        )
        return token

    async def authenticate(self, token: str | None, kind: PrincipalKind, *, appeal_ok: bool = False) -> Principal:
        """The principal behind a bearer token, or Unauthenticated.

        A closed account's appeal token passes only where ``appeal_ok`` (its own
        sanctions and appeals); everywhere else, the WebSocket included, it is refused."""
        if not token:
            raise Unauthenticated("a bearer token is required")
        token_hash = hash_token(token)
        now = self.clock.now()
        async with self.db.read() as conn:
            session = await store.get_session(conn, token_hash)
            if (
                session is None
                or session["principal_kind"] != kind
                or session["revoked_at"] is not None
                or session["expires_at"] <= now
            ):
                raise Unauthenticated("the token is invalid, expired or revoked")
            if kind == PrincipalKind.USER:
                user = await store.get_user(conn, session["principal_id"])
                if session["scope"] == APPEAL_SCOPE:
                    if user is None or not appeal_ok:
                        raise Unauthenticated(
                            "this token only reads your sanctions and files appeals", Code.APPEAL_ONLY_TOKEN
                        )
                    return Principal(kind, user["id"], token_hash, appeal_only=True, expires_at=session["expires_at"])
                if user is None or user["status"] == UserStatus.CLOSED:
                    raise Unauthenticated("the account is closed", Code.ACCOUNT_CLOSED)
                return Principal(kind, user["id"], token_hash, expires_at=session["expires_at"])
            op = await store.get_operator(conn, session["principal_id"])
            if op is None or op["disabled_at"] is not None:
                raise Unauthenticated("the operator account is disabled")
            roles = (await store.operator_roles_of(conn, [op["id"]]))[op["id"]]
        last_seen = session["last_seen_at"] or session["created_at"]
        if self.operator_idle is not None and now - last_seen >= self.operator_idle:
            raise Unauthenticated("the session was idle too long: sign in again")
        if now - last_seen >= IDLE_TOUCH:
            async with self.db.transaction() as conn:
                await store.touch_session(conn, token_hash, now)
        return self._operator_principal(op, token_hash, roles, session["expires_at"])

    def _operator_principal(self, op, token_hash: str, roles: set[str], expires_at) -> Principal:
        held = frozenset(Role(r) for r in roles)
        return Principal(
            PrincipalKind.OPERATOR,
            op["id"],
            token_hash,
            roles=held,
            must_change_password=bool(op["must_change_password"]),
            expires_at=expires_at,
            second_factor_missing=not held.isdisjoint(self.totp_required) and op["totp_enabled_at"] is None,
        )

    async def live_tokens(self, token_hashes: list[str]) -> set[str]:
        """Which of these user sessions are still valid (one query for a whole node's sockets)."""
        async with self.db.transaction() as conn:
            return await store.live_token_hashes(conn, token_hashes, self.clock.now())

    async def logout(self, principal: Principal) -> None:
        """Revoke the token; every node closes the sockets that used it."""
        async with self.db.transaction() as conn:
            await store.revoke_session(conn, principal.token_hash, self.clock.now())
        await self.effects.apply(TokenRevoked(principal.token_hash))


def require_role(principal: Principal, *roles: Role) -> None:
    """Forbidden unless the caller is an operator holding one of `roles`.

    Roles do not nest: `admin` manages operators and settings but does not read
    identity data, which only `compliance` may. An operator whose role requires a
    second factor they have not enrolled holds none of their roles until they do.
    """
    if principal.second_factor_missing:
        # The role requires TOTP (operator_totp_required_roles): until enrolled, only the
        # enrolment routes serve them, on the admin API and the console alike.
        raise Forbidden("enrol a second factor first: POST /admin/v1/totp/enroll", Code.SECOND_FACTOR_REQUIRED)
    if principal.kind != PrincipalKind.OPERATOR or not principal.roles.intersection(roles):
        raise Forbidden(f"this needs the role {' or '.join(r.value for r in roles)}")
