"""Users for operators: find them (search, filters, sorting, paging) and read
one user's whole record, the dossier.

The dossier shows where a user stands and what happened to them: profile,
status, real-name *status* (never the identity itself, which stays behind the
audited, role-gated identity read), agreement acceptances, sanctions with the
strike count, reports filed by and against them, appeals and the public
accounts they own, and their latest sign-ins and failed sign-ins from the
sign-in log (time, address as resolved through the trusted proxies, user
agent). Reading a dossier is an audited act (``user.read``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ..domain.fields import Id, Instant, Text
from ..domain.clock import Clock
from ..domain.enums import RealNameStatus, Role, UserStatus
from ..domain.errors import Code, NotFound
from ..domain.principals import Principal
from ..store import access_log as access_log_store
from ..store import accounts as account_store
from ..store import audit
from ..store import dossier as store
from ..store import public_accounts as public_account_store
from ..store import sanctions as sanction_store
from ..store import worklists
from ..store.db import Database
from . import paging
from .accounts import require_role
from .reports import operator_views as report_views
from .sanctions import Sanctions
from .worklists import Order, PageArgs, check_period, request

DOSSIER_REPORTS = 50  # reports by and against shown in a dossier (totals count them all)
DOSSIER_SIGN_INS = 20  # latest sign-ins shown; the whole log is GET /admin/v1/access-log
READERS = (Role.REVIEWER, Role.MODERATOR, Role.COMPLIANCE)


@dataclass(frozen=True)
class UserFilter:
    q: Text | None = None  # handle or nickname prefix
    id: Id | None = None  # exact user id
    status: UserStatus | None = None
    real_name_status: RealNameStatus | None = None
    has_sanctions_in_force: bool | None = None
    registered_since: Instant | None = None  # at or after
    registered_until: Instant | None = None  # before


class UserSort(StrEnum):
    CREATED_AT = "created_at"
    HANDLE = "handle"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _summary(row) -> dict:
    return {
        "id": row["id"],
        "handle": row["handle"],
        "nickname": row["nickname"],
        "status": row["status"],
        "real_name_status": row["realname_status"],
        "created_at": _iso(row["created_at"]),
    }


class Directory:
    def __init__(self, db: Database, clock: Clock, *, sanctions: Sanctions) -> None:
        self.db = db
        self.clock = clock
        self.sanctions = sanctions

    async def search(
        self,
        operator: Principal,
        f: UserFilter = UserFilter(),
        args: PageArgs = PageArgs(),
        *,
        sort: UserSort = UserSort.CREATED_AT,
        order: Order = Order.ASC,
    ) -> dict:
        """Users whose handle or nickname starts with `q` (or with id `id`), filtered and paged."""
        require_role(operator, *READERS)
        check_period(f.registered_since, f.registered_until)
        page = request("users", args, sort=sort, order=order)
        async with self.db.read() as conn:
            rows, total = await worklists.users_page(
                conn,
                now=self.clock.now(),
                user_id=f.id,
                prefix=f.q.strip() if f.q and f.q.strip() else None,
                status=f.status,
                real_name_status=f.real_name_status,
                has_sanctions_in_force=f.has_sanctions_in_force,
                registered_since=f.registered_since,
                registered_until=f.registered_until,
                sort=sort,
                descending=page.descending,
                after=page.after,
                limit=page.limit,
            )
        return paging.envelope(page, rows, total, [_summary(r) for r in rows[: page.limit]])

    async def dossier(self, operator: Principal, user_id: int) -> dict:
        """One user's record for operators (see the module docstring); audited."""
        require_role(operator, *READERS)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            user = await account_store.get_user(conn, user_id)
            if user is None:
                raise NotFound(f"no user {user_id}", Code.USER_NOT_FOUND)
            acceptances = await account_store.acceptances(conn, user_id)
            sanction_rows = await sanction_store.for_subject(conn, "user", user_id)
            sanctions = await self.sanctions.views_of(conn, sanction_rows)
            strikes = await sanction_store.count_strikes(conn, "user", user_id, now - self.sanctions.strike_window)
            by, by_total = await store.reports_about(conn, user_id, by=True, limit=DOSSIER_REPORTS)
            against, against_total = await store.reports_about(conn, user_id, by=False, limit=DOSSIER_REPORTS)
            appeals = await store.appeals_of(conn, user_id)
            owned = await public_account_store.accounts_of_owner(conn, user_id)
            by_views, against_views = await report_views(conn, by, now), await report_views(conn, against, now)
            sign_ins = await access_log_store.recent_sign_ins(conn, "user", user_id, limit=DOSSIER_SIGN_INS)
            await audit.append(
                conn,
                at=now,
                actor_kind="operator",
                actor_id=operator.id,
                action="user.read",
                subject=f"user:{user_id}",
                detail={"view": "dossier"},
            )
        return {
            **_summary(user),
            "agreement_version": user["agreement_version"],
            "agreement_acceptances": [
                {"version": a["version"], "accepted_at": _iso(a["accepted_at"]), "client_ip": a["client_ip"]}
                for a in acceptances
            ],
            "sanctions": sanctions,
            "strikes": strikes,
            "strike_window_days": self.sanctions.strike_window.days,
            "reports_by": {"items": by_views, "total": by_total},
            "reports_against": {"items": against_views, "total": against_total},
            "appeals": [
                {
                    "appeal_id": a["id"],
                    "sanction_id": a["sanction_id"],
                    "text": a["text"],
                    "filed_at": _iso(a["filed_at"]),
                    "status": a["decision"] or "pending",
                    "decided_at": _iso(a["decided_at"]),
                }
                for a in appeals
            ],
            "public_accounts": [
                {"id": a["id"], "name": a["name"], "category": a["category"], "status": a["status"]} for a in owned
            ],
            "recent_sign_ins": [
                {
                    "at": _iso(r["at"]),
                    "event": r["event"],
                    "ip": r["ip"],
                    "user_agent": r["user_agent"],
                    "node": r["node"],
                    "detail": r["detail"],
                }
                for r in sign_ins
            ],
        }
