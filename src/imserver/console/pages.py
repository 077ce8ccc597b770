"""The console's pages and queues, and which operator roles see each.

One table decides both the navigation an operator is shown and the role a
page's views require (as the admin API's routes name theirs); the services
check the finer rules again (which sanction kinds a role imposes, who may
confirm a closure).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.enums import Role
from ..domain.policy_types import SanctionKind
from ..domain.principals import Principal
from ..services import queues
from ..policy import ladder
from .i18n import N_

ANY = frozenset(Role)
REVIEW = frozenset({Role.REVIEWER, Role.COMPLIANCE})
MODERATION = frozenset({Role.MODERATOR})
SANCTIONING = frozenset({Role.MODERATOR, Role.COMPLIANCE})
COMPLIANCE = frozenset({Role.COMPLIANCE})
AUDIT = frozenset({Role.COMPLIANCE, Role.ADMIN})
ADMIN = frozenset({Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Page:
    name: str
    path: str
    title: str  # message id
    roles: frozenset[Role]


PAGES: tuple[Page, ...] = (
    Page("dashboard", "/console/", N_("Dashboard"), ANY),
    Page("identity", "/console/identity", N_("Identity review"), REVIEW),
    Page("public_accounts", "/console/public-accounts", N_("Public accounts"), REVIEW),
    Page("reports", "/console/reports", N_("Reports"), MODERATION),
    Page("sanctions", "/console/sanctions", N_("Sanctions"), SANCTIONING),
    Page("appeals", "/console/appeals", N_("Appeals"), COMPLIANCE),
    Page("held", "/console/held", N_("Held messages"), MODERATION),
    Page("terms", "/console/terms", N_("Term lists"), ADMIN),
    Page("agreements", "/console/agreements", N_("Agreements"), ANY),
    Page("audit", "/console/audit", N_("Audit log"), AUDIT),
    Page("exports", "/console/exports", N_("Exports"), COMPLIANCE),
)
BY_NAME = {p.name: p for p in PAGES}

# Dashboard rows: queue -> (its title, the page that works it, the roles that see it).
QUEUES: dict[str, tuple[str, str, frozenset[Role]]] = {
    queues.IDENTITY: (N_("Identity submissions"), "identity", REVIEW),
    queues.PUBLIC_ACCOUNTS: (N_("Public-account applications"), "public_accounts", REVIEW),
    queues.REPORTS: (N_("Open reports"), "reports", MODERATION),
    queues.HELD: (N_("Held messages"), "held", MODERATION),
    queues.APPEALS: (N_("Appeals awaiting a decision"), "appeals", COMPLIANCE),
    queues.CLOSURES: (N_("Closures awaiting a second operator"), "sanctions", COMPLIANCE),
    queues.REGULATOR_OUTBOX: (N_("Regulator outbox backlog"), "exports", COMPLIANCE),
}

SANCTION_KIND_TITLES = {
    SanctionKind.WARNING: N_("Warning"),
    SanctionKind.RESTRICT_PUBLICATION: N_("Restrict publication"),
    SanctionKind.SUSPEND_UPDATES: N_("Suspend updates"),
    SanctionKind.CLOSE_ACCOUNT: N_("Close account"),
}


def visible(me: Principal) -> list[Page]:
    return [p for p in PAGES if me.role in p.roles]


def may(me: Principal, roles: frozenset[Role]) -> bool:
    return me.role in roles


def imposable_kinds(me: Principal) -> list[SanctionKind]:
    """The sanction kinds this operator's roles may impose on a user (the form offers only these)."""
    return [k for k in SanctionKind if ladder.measure(k, "user").imposed_by in me.roles]
