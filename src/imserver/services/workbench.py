"""The operator workbench's services, built together by the bootstrap.

They read through other services (sanction views, the accounts' password
hasher) and revoke tokens through the after-commit effects, which close the
sockets that used them on every node.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.clock import Clock
from ..store.db import Database
from .accounts import Accounts
from .content import Content
from .directory import Directory
from .operators import Operators
from .sanctions import Sanctions
from .unit_of_work import AfterCommit, TokenRevoked
from .worklists import Worklists


@dataclass(frozen=True)
class Workbench:
    content: Content  # audited reads of messages and posts
    lists: Worklists  # sanctions, appeals, reports, held messages, audit
    users: Directory  # user search and the dossier
    operators: Operators  # operator accounts, roles, passwords


def build(
    db: Database,
    clock: Clock,
    *,
    sanctions: Sanctions,
    accounts: Accounts,
    effects: AfterCommit,
    compliance_grantors: tuple[str, ...] = (),
) -> Workbench:
    content = Content(db, clock)

    async def token_revoked(token_hash: str) -> None:
        await effects.apply(TokenRevoked(token_hash))

    return Workbench(
        content=content,
        lists=Worklists(db, clock, sanctions=sanctions, content=content),
        users=Directory(db, clock, sanctions=sanctions),
        operators=Operators(
            db, clock, accounts, token_revoked=token_revoked, compliance_grantors=compliance_grantors
        ),
    )
