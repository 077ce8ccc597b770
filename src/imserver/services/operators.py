"""Operator accounts, managed by admins: list, create, disable and re-enable,
change roles, reset a password; and each operator's own whoami and password.

Rules, each checked inside the transaction that would break it:

* an operator may hold several roles; a role that does not exist is
  ``unknown_role`` (422), an empty set too;
* an admin cannot disable themselves (``self_disable``), nor disable or take
  the admin role from the last enabled admin (``last_admin``): someone must
  always be able to manage operators;
* disabling revokes every token of the operator in the same transaction, and
  after the commit tells every node (the token-revocation path the gateway
  listens on); authentication reads the operator row on each request, so a
  disabled operator's token stops working at once on every node anyway;
* a reset password must be changed at next sign-in: until then only whoami,
  sign-out and the password change answer (``password_change_required``);
* separation of duties (policy/grants.py): only an admin grants roles, nobody
  changes their own, ``compliance`` only from a configured grantor (when
  ``compliance_grantors`` is set), and a grant that adds or removes ``admin``
  or ``compliance`` (a new operator, or a change of roles) waits until a
  *second* admin confirms it: one admin alone cannot make the compliance
  operators that would read identity or close an account.

Every act writes an audit row naming the admin and the operator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from ..domain.clock import Clock
from ..domain.enums import PrincipalKind, Role
from ..domain.errors import BadRequest, Code, Conflict, NotFound, Unauthenticated
from ..domain.principals import Principal
from ..policy import grants
from ..store import accounts as store
from ..store import audit
from ..store.db import Database
from .accounts import Accounts, require_role

TokenRevoked = Callable[[str], Awaitable[None]]  # after commit, per token hash: every node closes it


def parse_roles(names: list[str]) -> list[Role]:
    """Role names -> roles, sorted and unique; ``unknown_role`` for a name that is none."""
    unknown = sorted(set(names) - {r.value for r in Role})
    if unknown:
        raise BadRequest(
            f"unknown role {', '.join(unknown)}; roles are {', '.join(r.value for r in Role)}",
            Code.UNKNOWN_ROLE,
            unknown=unknown,
        )
    if not names:
        raise BadRequest("an operator holds at least one role", Code.UNKNOWN_ROLE, unknown=[])
    return sorted({Role(n) for n in names})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _pending_roles(op) -> list[str] | None:
    """The roles a change awaiting a second admin would set (None: no change waits)."""
    return op["pending_roles"].split(",") if op["pending_roles"] else None


def _view(op, roles: set[str]) -> dict:
    return {
        "awaiting_confirmation": op["confirmed_at"] is None and op["created_by"] is not None,
        "pending_roles": _pending_roles(op),
        "id": op["id"],
        "handle": op["handle"],
        "roles": sorted(roles),
        "created_at": _iso(op["created_at"]),
        "disabled": op["disabled_at"] is not None,
        "disabled_at": _iso(op["disabled_at"]),
        "must_change_password": bool(op["must_change_password"]),
    }


class Operators:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        accounts: Accounts,
        *,
        token_revoked: TokenRevoked,
        compliance_grantors: tuple[str, ...] = (),
    ) -> None:
        self.db = db
        self.compliance_grantors = compliance_grantors  # admin handles that may grant compliance; empty: any admin
        self.clock = clock
        self.accounts = accounts
        self.passwords = accounts.passwords
        self.token_revoked = token_revoked

    async def list(self, admin: Principal) -> dict:
        """Every operator (a team, not a crowd: one page), in the list envelope."""
        require_role(admin, Role.ADMIN)
        async with self.db.read() as conn:
            rows = await store.list_operators(conn)
            roles = await store.operator_roles_of(conn, [r["id"] for r in rows])
        return {"items": [_view(r, roles[r["id"]]) for r in rows], "total": len(rows), "next_cursor": None}

    async def get(self, admin: Principal, operator_id: int) -> dict:
        require_role(admin, Role.ADMIN)
        async with self.db.read() as conn:
            op = await self._operator(conn, operator_id)
            roles = (await store.operator_roles_of(conn, [operator_id]))[operator_id]
        return _view(op, roles)

    async def create(self, admin: Principal, *, handle: str, password: str, roles: list[str]) -> dict:
        """A new operator; one granted ``admin`` or ``compliance`` cannot sign in until a second admin confirms."""
        require_role(admin, Role.ADMIN)
        held = parse_roles(roles)
        async with self.db.read() as conn:
            me = await self._operator(conn, admin.id)
        grants.check_grant(admin.roles, me["handle"], held, self.compliance_grantors)
        operator_id = await self.accounts.create_operator(
            handle=handle,
            password=password,
            role=held[0],
            roles=held,
            created_by=admin.id,
            pending=grants.needs_second_admin(held, admin.id),
        )
        return await self.get(admin, operator_id)

    async def set_disabled(self, admin: Principal, operator_id: int, *, disabled: bool) -> dict:
        """Disable (revoking every token at once) or re-enable an operator."""
        require_role(admin, Role.ADMIN)
        if disabled and operator_id == admin.id:
            raise Conflict("you cannot disable yourself", Code.SELF_DISABLE)
        now = self.clock.now()
        revoked: list[str] = []
        async with self.db.transaction() as conn:
            op = await self._operator(conn, operator_id)
            if (op["disabled_at"] is not None) == disabled:
                raise Conflict(f"the operator is already {'disabled' if disabled else 'enabled'}", Code.OPERATOR_STATE)
            if disabled:
                await self._keep_an_admin(conn, operator_id)
                revoked = await store.live_sessions_of(conn, PrincipalKind.OPERATOR, operator_id, now)
                await store.revoke_all_sessions(conn, PrincipalKind.OPERATOR, operator_id, now)
            await store.update_operator(conn, operator_id, disabled_at=now if disabled else None)
            await self._audit(
                conn, admin, "operator.disable" if disabled else "operator.enable", operator_id, now,
                tokens_revoked=len(revoked),
            )
            roles = (await store.operator_roles_of(conn, [operator_id]))[operator_id]
            op = await store.get_operator(conn, operator_id)
        for token_hash in revoked:
            await self.token_revoked(token_hash)
        return _view(op, roles)

    async def set_roles(self, admin: Principal, operator_id: int, roles: list[str]) -> dict:
        """Replace an operator's roles; adding or removing a privileged one waits for a second admin."""
        require_role(admin, Role.ADMIN)
        grants.check_role_change(admin.id, operator_id)
        held = parse_roles(roles)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            op = await self._operator(conn, operator_id)
            me = await self._operator(conn, admin.id)
            before = {Role(r) for r in (await store.operator_roles_of(conn, [operator_id]))[operator_id]}
            grants.check_grant(admin.roles, me["handle"], set(held) - before, self.compliance_grantors)
            pending = grants.needs_second_admin(held, admin.id, before)
            if pending:
                await store.update_operator(
                    conn, operator_id, pending_roles=",".join(r.value for r in held), pending_roles_by=admin.id
                )
            else:
                await self._apply_roles(conn, op, before, held)
            await self._audit(
                conn,
                admin,
                "operator.roles",
                operator_id,
                now,
                before=sorted(before),
                after=[r.value for r in held],
                pending=pending,
            )
            op = await store.get_operator(conn, operator_id)
            roles_now = (await store.operator_roles_of(conn, [operator_id]))[operator_id]
        return _view(op, roles_now)

    async def confirm(self, admin: Principal, operator_id: int) -> dict:
        """A second admin confirms a pending privileged grant: a new operator, or a change of roles."""
        require_role(admin, Role.ADMIN)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            op = await self._operator(conn, operator_id)
            if op["confirmed_at"] is None and op["created_by"] is not None:
                grants.check_confirmation(admin.roles, admin.id, op["created_by"])
                await store.update_operator(conn, operator_id, confirmed_by=admin.id, confirmed_at=now)
                what = "creation"
            elif op["pending_roles"]:
                grants.check_confirmation(admin.roles, admin.id, op["pending_roles_by"])
                before = {Role(r) for r in (await store.operator_roles_of(conn, [operator_id]))[operator_id]}
                await self._apply_roles(conn, op, before, [Role(r) for r in _pending_roles(op)])
                what = "roles"
            else:
                raise Conflict("this operator is not awaiting confirmation", Code.GRANT_STATE)
            await self._audit(conn, admin, "operator.confirm", operator_id, now, confirms=what)
            op = await store.get_operator(conn, operator_id)
            roles = (await store.operator_roles_of(conn, [operator_id]))[operator_id]
        return _view(op, roles)

    async def _apply_roles(self, conn, op, before: set[Role], held: list[Role]) -> None:
        """Set the roles now (no confirmation needed, or confirmed), keeping an enabled admin."""
        if Role.ADMIN in before and Role.ADMIN not in held and op["disabled_at"] is None:
            await self._keep_an_admin(conn, op["id"])
        await store.set_operator_roles(conn, op["id"], [r.value for r in held])
        await store.update_operator(conn, op["id"], pending_roles=None, pending_roles_by=None)

    async def reset_password(self, admin: Principal, operator_id: int, *, password: str) -> dict:
        """Set a temporary password the operator must change at next sign-in; their tokens end."""
        require_role(admin, Role.ADMIN)
        self.passwords.check_acceptable(password)
        password_hash = self.passwords.hash(password)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await self._operator(conn, operator_id)
            revoked = await store.live_sessions_of(conn, PrincipalKind.OPERATOR, operator_id, now)
            await store.revoke_all_sessions(conn, PrincipalKind.OPERATOR, operator_id, now)
            await store.update_operator(conn, operator_id, password_hash=password_hash, must_change_password=True)
            await self._audit(conn, admin, "operator.password_reset", operator_id, now, tokens_revoked=len(revoked))
            op = await store.get_operator(conn, operator_id)
            roles = (await store.operator_roles_of(conn, [operator_id]))[operator_id]
        for token_hash in revoked:
            await self.token_revoked(token_hash)
        return _view(op, roles)

    async def change_own_password(self, me: Principal, *, current: str, new: str) -> dict:
        """The caller's own password; clears a reset's must-change flag. Audited."""
        self.passwords.check_acceptable(new)
        async with self.db.read() as conn:
            op = await self._operator(conn, me.id)
        if not self.passwords.verify(op["password_hash"], current):
            raise Unauthenticated("the current password is wrong", Code.INVALID_CREDENTIALS)
        if current == new:
            raise BadRequest("the new password must differ from the current one", Code.WEAK_PASSWORD)
        password_hash = self.passwords.hash(new)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await store.update_operator(conn, me.id, password_hash=password_hash, must_change_password=False)
            await self._audit(conn, me, "operator.password_change", me.id, now)
        return await self.whoami(me)

    async def whoami(self, me: Principal) -> dict:
        async with self.db.read() as conn:
            op = await self._operator(conn, me.id)
            roles = (await store.operator_roles_of(conn, [me.id]))[me.id]
        return {
            "id": op["id"],
            "operator_id": op["id"],
            "handle": op["handle"],
            "roles": sorted(roles),
            "must_change_password": bool(op["must_change_password"]),
        }

    # -- helpers -------------------------------------------------------------------

    @staticmethod
    async def _operator(conn, operator_id: int):
        op = await store.get_operator(conn, operator_id)
        if op is None:
            raise NotFound(f"no operator {operator_id}", Code.OPERATOR_NOT_FOUND)
        return op

    @staticmethod
    async def _keep_an_admin(conn, operator_id: int) -> None:
        """``last_admin`` if `operator_id`, about to stop being an enabled admin, is the only one."""
        admins = await store.enabled_holders(conn, Role.ADMIN)
        if admins == [operator_id]:
            raise Conflict("this is the last enabled admin; make another admin first", Code.LAST_ADMIN)

    @staticmethod
    async def _audit(conn, actor: Principal, action: str, operator_id: int, now: datetime, **detail) -> None:
        await audit.append(
            conn,
            at=now,
            actor_kind="operator",
            actor_id=actor.id,
            action=action,
            subject=f"operator:{operator_id}",
            detail=detail,
        )
