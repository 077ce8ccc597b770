"""Role x route: every operation of the OpenAPI, called by nobody, a user and each operator role.

Each operation lists who is admitted (gets past authentication and roles);
everyone else must get 401 (no or wrong kind of token) or 403 ``forbidden``
(wrong role). An operation missing from the table fails the
test, so a new route cannot ship without saying who may call it.
"""

from __future__ import annotations

import re

from imserver.domain.enums import Role

from ..helpers import operator, register

ANYONE = {"anonymous", "user", "reviewer", "moderator", "compliance", "admin"}
USER = {"user"}
OPERATORS = {"reviewer", "moderator", "compliance", "admin"}
REV, MOD, COMP, ADMIN = {"reviewer"}, {"moderator"}, {"compliance"}, {"admin"}

ADMITTED = {
    ("GET", "/healthz"): ANYONE,
    ("GET", "/metrics"): ANYONE,  # kept off the public listener by nginx (docs/operations.md)
    ("GET", "/livez"): ANYONE,  # orchestrator probes
    ("GET", "/readyz"): ANYONE,
    ("POST", "/api/v1/register"): ANYONE,
    ("POST", "/api/v1/login"): ANYONE,
    ("GET", "/api/v1/agreement"): ANYONE,
    ("GET", "/api/v1/provider"): ANYONE,  # the provider's licences are public (Art. 4)
    ("POST", "/admin/v1/login"): ANYONE,
    ("POST", "/admin/v1/logout"): OPERATORS,  # skipped below, as the users' logout
    ("GET", "/admin/v1/whoami"): OPERATORS,
    ("POST", "/admin/v1/totp/enroll"): OPERATORS,
    ("POST", "/admin/v1/totp/enable"): OPERATORS,
    ("POST", "/admin/v1/operators"): ADMIN,
    ("POST", "/admin/v1/me/password"): OPERATORS,
    ("GET", "/admin/v1/operators"): ADMIN,
    ("GET", "/admin/v1/operators/{operator_id}"): ADMIN,
    ("POST", "/admin/v1/operators/{operator_id}/confirm"): ADMIN,
    ("PUT", "/admin/v1/operators/{operator_id}/roles"): ADMIN,
    ("POST", "/admin/v1/operators/{operator_id}/disable"): ADMIN,
    ("POST", "/admin/v1/operators/{operator_id}/enable"): ADMIN,
    ("POST", "/admin/v1/operators/{operator_id}/password"): ADMIN,
    ("GET", "/admin/v1/agreements"): OPERATORS,
    ("GET", "/admin/v1/agreements/{version}"): OPERATORS,
    # The workbench: finding users and reading content; admin reads neither.
    ("GET", "/admin/v1/users"): REV | MOD | COMP,
    ("GET", "/admin/v1/users/{user_id}"): REV | MOD | COMP,
    ("GET", "/admin/v1/messages/{message_id}"): MOD | COMP,
    ("GET", "/admin/v1/posts/{post_id}"): MOD | COMP,
    ("GET", "/admin/v1/staffing"): COMP | ADMIN,
    ("POST", "/admin/v1/agreements"): ADMIN,
    ("GET", "/admin/v1/identity/pending"): REV | COMP,
    ("GET", "/admin/v1/users/{user_id}/identity"): REV | COMP,
    ("POST", "/admin/v1/identity/{identity_id}/review"): REV,
    ("GET", "/admin/v1/audit"): COMP | ADMIN,
    ("GET", "/admin/v1/audit/verify"): COMP | ADMIN,
    ("GET", "/admin/v1/held"): MOD,
    ("POST", "/admin/v1/held/{message_id}"): MOD,
    ("POST", "/admin/v1/sanctions"): MOD | COMP,
    ("GET", "/admin/v1/sanctions"): MOD | COMP,
    ("POST", "/admin/v1/sanctions/{sanction_id}/decline"): MOD | COMP,
    ("GET", "/admin/v1/sanctions/awaiting-confirmation"): COMP,
    ("GET", "/admin/v1/sanctions/{sanction_id}"): MOD | COMP,
    ("POST", "/admin/v1/sanctions/{sanction_id}/confirm"): COMP,
    ("POST", "/admin/v1/sanctions/{sanction_id}/lift"): MOD | COMP,
    ("GET", "/admin/v1/subjects/{subject_kind}/{subject_id}/sanctions"): MOD | COMP,
    ("GET", "/admin/v1/appeals"): COMP,
    ("POST", "/admin/v1/appeals/{appeal_id}/decision"): COMP,
    ("GET", "/admin/v1/reports"): MOD,
    ("GET", "/admin/v1/reports/{report_id}"): MOD,
    ("POST", "/admin/v1/reports/{report_id}/assign"): MOD,
    ("POST", "/admin/v1/reports/{report_id}/resolve"): MOD,
    ("GET", "/admin/v1/terms"): ADMIN,
    ("POST", "/admin/v1/terms"): ADMIN,
    ("POST", "/admin/v1/terms/bulk"): ADMIN,
    ("PATCH", "/admin/v1/terms/{term_id}"): ADMIN,
    ("DELETE", "/admin/v1/terms/{term_id}"): ADMIN,
    ("GET", "/admin/v1/regulator/sanctions"): COMP,
    ("GET", "/admin/v1/regulator/outbox"): COMP,
    ("GET", "/admin/v1/public-accounts"): REV | COMP,
    ("GET", "/admin/v1/public-accounts/filings"): COMP,
    ("GET", "/admin/v1/public-accounts/changes"): REV | COMP,
    ("POST", "/admin/v1/public-accounts/changes/{change_id}/review"): REV,
    ("GET", "/admin/v1/public-accounts/{account_id}"): REV | COMP | MOD,
    ("POST", "/admin/v1/public-accounts/{account_id}/review"): REV,
    ("POST", "/admin/v1/public-accounts/{account_id}/news-approvals"): COMP,
    ("POST", "/admin/v1/news-approvals/{approval_id}/revoke"): COMP,
    ("POST", "/admin/v1/posts/{post_id}/takedown"): MOD,
    # Records: the sign-in and network log, the chain, checkpoints, retention, holds, deletions.
    ("GET", "/admin/v1/access-log"): COMP,
    ("GET", "/admin/v1/access-log/export"): COMP,
    ("GET", "/admin/v1/records/verify"): COMP | ADMIN,
    ("POST", "/admin/v1/checkpoints"): COMP,
    ("GET", "/admin/v1/checkpoints"): COMP,
    ("GET", "/admin/v1/retention"): COMP | ADMIN,
    ("POST", "/admin/v1/retention/purge"): COMP,
    ("POST", "/admin/v1/legal-holds"): COMP,
    ("GET", "/admin/v1/legal-holds"): COMP,
    ("POST", "/admin/v1/legal-holds/{hold_id}/release"): COMP,
    ("GET", "/admin/v1/account-deletions"): COMP | ADMIN,
    ("GET", "/admin/v1/users/{user_id}/records"): COMP,
}
# Every other /api/v1 operation is for signed-in users only.
SKIP = {  # would end the session the matrix uses (each has tests of its own)
    ("POST", "/api/v1/logout"),
    ("POST", "/admin/v1/logout"),
    ("POST", "/api/v1/me/deletion"),
}


NO_SUCH_ID = 987_654_321


def expected(method: str, path: str) -> set[str]:
    if (method, path) in ADMITTED:
        return ADMITTED[(method, path)]
    if path.startswith("/api/v1/"):
        return USER
    raise AssertionError(f"{method} {path} is in no row of the matrix: say who may call it")


async def test_every_route_admits_exactly_its_roles(http, app):
    callers = {"anonymous": {"headers": {}}, "user": await register(http)}
    for role in Role:
        callers[role.value] = await operator(http, app.state.services, role)
    wrong = []
    for path, item in app.openapi()["paths"].items():
        for method in item:
            method = method.upper()
            if (method, path) in SKIP:
                continue
            # Ids no row has: an admitted caller gets a 404 or 422, and nothing is changed
            # (disabling or resetting operator 1 would sign out a caller of the matrix).
            url = re.sub(r"\{\w+_id\}", str(NO_SUCH_ID), path).replace("{subject_kind}", "user")
            url = url.replace("{version}", "1")
            allowed = expected(method, path)
            for name, caller in callers.items():
                body = {} if method in ("POST", "PUT", "PATCH") else None
                r = await http.request(method, url, headers=caller["headers"], json=body)
                # Refused by authentication or role: 401, or 403 "forbidden". (A 403 with
                # another code, e.g. not_a_member, is a service's answer to an admitted caller.)
                admitted = not (r.status_code == 401 or (r.status_code == 403 and r.json()["code"] == "forbidden"))
                if admitted != (name in allowed):
                    wrong.append(f"{method} {path} as {name}: {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)
