"""Who may give an operator which role: separation of duties as pure functions.

Roles do not nest. ``admin`` runs the service (operators, agreements, term
lists) and holds no power over people: it does not read identity data and
does not close accounts. So:

* an operator who is not an admin grants nothing (only admins manage operators);
* an admin grants ``reviewer`` and ``moderator`` alone;
* the two roles that reach people's data or close accounts, or manage
  operators, ``compliance`` and ``admin``, are *privileged*: an admin's grant
  of one (at creation, or a change of roles that adds or removes one) stays pending until
  a *different* admin confirms it (four eyes),
  so one admin cannot make the compliance operators (or a second, puppet
  admin) that would let them read identity or close an account alone;
* ``compliance`` may further be limited to named grantors
  (``compliance_grantors``, operator handles; empty: any admin).

Operators created from the command line (``created_by`` is None) are the
root of trust and need no confirmation: whoever runs the CLI has the server.
"""

from __future__ import annotations

from collections.abc import Collection

from ..domain.enums import Role
from ..domain.errors import Code, Forbidden

PRIVILEGED = frozenset({Role.ADMIN, Role.COMPLIANCE})


def check_grant(
    granter_roles: Collection[Role], granter_handle: str, granted: Collection[Role], compliance_grantors: Collection[str]
) -> None:
    """Forbidden unless this operator may grant the roles `granted` (pending confirmation or not)."""
    if Role.ADMIN not in granter_roles:
        raise Forbidden("only an admin grants operator roles", Code.GRANT_FORBIDDEN)
    if Role.COMPLIANCE in granted and compliance_grantors and granter_handle not in compliance_grantors:
        raise Forbidden("this admin is not a configured grantor of the compliance role", Code.GRANT_FORBIDDEN)


def needs_second_admin(after: Collection[Role], granted_by: int | None, before: Collection[Role] = ()) -> bool:
    """A privileged role granted or taken away through the API waits for a second admin's confirmation."""
    changed = set(after).symmetric_difference(before)
    return granted_by is not None and not changed.isdisjoint(PRIVILEGED)


def check_role_change(granter_id: int, operator_id: int) -> None:
    """No operator changes their own roles: that is always someone else's grant."""
    if granter_id == operator_id:
        raise Forbidden("an operator cannot change their own roles", Code.GRANT_FORBIDDEN)


def check_confirmation(confirmer_roles: Collection[Role], confirmer_id: int, granted_by: int | None) -> None:
    """A pending grant is confirmed by an admin other than the one who made it."""
    if Role.ADMIN not in confirmer_roles:
        raise Forbidden("only an admin confirms a grant", Code.GRANT_FORBIDDEN)
    if granted_by == confirmer_id:
        raise Forbidden("a second admin must confirm this grant", Code.SAME_OPERATOR)
