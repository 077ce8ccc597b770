"""The operator workbench's services, built together once the container exists.

They read through other services (sanction views, the accounts' password
hasher) and revoke tokens through the container's cross-node path, so
:func:`build` runs after the operator side is wired.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..domain.enums import PrincipalKind
from ..domain.principals import Principal
from .content import Content
from .directory import Directory
from .operators import Operators
from .worklists import Worklists

if TYPE_CHECKING:
    from .container import Services


@dataclass(frozen=True)
class Workbench:
    content: Content  # audited reads of messages and posts
    lists: Worklists  # sanctions, appeals, reports, held messages, audit
    users: Directory  # user search and the dossier
    operators: Operators  # operator accounts, roles, passwords


def build(services: Services) -> Workbench:
    s = services
    content = Content(s.db, s.clock)

    async def token_revoked(token_hash: str) -> None:
        await s.after_token_revoked(Principal(PrincipalKind.OPERATOR, 0, token_hash))

    return Workbench(
        content=content,
        lists=Worklists(s.db, s.clock, sanctions=s.sanctions, content=content),
        users=Directory(s.db, s.clock, sanctions=s.sanctions),
        operators=Operators(s.db, s.clock, s.accounts, token_revoked=token_revoked),
    )
