"""Account deletion: a user asks, sign-in stops at once, personal data goes when retention allows.

At the request the password is made unusable, every session revoked and the
account closed (no sends), so nothing more is done in the user's name. Their
identity data, nickname, handle and sessions are erased once
``retention_identity_days`` have passed since the request and no legal hold
covers the user (a request under a hold is accepted; nothing is erased until
the hold ends). Messages stay only as long as message retention or a hold
keeps them; sanction records stay, their subject reduced to a number.
Operators see each request with its schedule.
"""

from __future__ import annotations

from datetime import timedelta

from ..domain.clock import Clock
from ..domain.errors import BadRequest, Conflict, Code
from ..store import audit
from ..store import deletion as store
from ..store import retention as holds_store
from ..store.db import Database
from .unit_of_work import Invalidate, Scope, TokenRevoked, UnitOfWork

ERASE_BATCH = 100  # accounts erased per transaction
PAGE_MAX = 1000


def _view(row: dict) -> dict:
    return {
        "id": row["id"],
        "user_id": row["user_id"],
        "requested_at": row["requested_at"].isoformat(),
        "erase_after": row["erase_after"].isoformat(),
        "erased_at": row["erased_at"].isoformat() if row["erased_at"] else None,
        "held": bool(row.get("held", False)),
    }


class AccountDeletions:
    def __init__(self, db: Database, clock: Clock, uow: UnitOfWork, *, identity_days: float) -> None:
        self.db = db
        self.clock = clock
        self.uow = uow
        self.identity_days = identity_days

    async def request(self, user_id: int) -> dict:
        """Close the account and revoke its tokens now (their sockets close on every node)."""
        now = self.clock.now()
        erase_after = now + timedelta(days=self.identity_days)
        async with self.uow() as tx:
            conn = tx.conn
            requested = await store.request(conn, user_id=user_id, now=now, erase_after=erase_after)
            if requested is None:
                raise Conflict("deletion of this account was requested already", Code.DELETION_REQUESTED)
            deletion_id, revoked = requested
            for token_hash in revoked:
                tx.add(TokenRevoked(token_hash))
            tx.add(Invalidate(Scope.USER, user_id))  # closed: cached policy facts go on every node
            held = await holds_store.user_held(conn, user_id)
            await audit.append(
                conn, at=now, actor_kind="user", actor_id=user_id, action="account.delete_request",
                subject=f"user:{user_id}", detail={"deletion_id": deletion_id, "held": held},
            )
        return {
            "id": deletion_id,
            "user_id": user_id,
            "requested_at": now.isoformat(),
            "erase_after": erase_after.isoformat(),
            "erased_at": None,
            "held": held,
        }

    async def listing(self, *, pending_only: bool = True, after: int = 0, limit: int = 100) -> dict:
        if after < 0 or not 1 <= limit <= PAGE_MAX:
            raise BadRequest(f"after must be >= 0 and limit 1 to {PAGE_MAX}")
        async with self.db.read() as conn:
            rows = await store.listing(conn, pending_only=pending_only, after=after, limit=limit)
        items = [_view(r) for r in rows]
        return {"items": items, "next_after": items[-1]["id"] if len(items) == limit else None}

    async def erase_due(self) -> dict[str, int]:
        """Erase every account whose time has come and that no hold covers; returns counts."""
        totals = {"accounts": 0}
        while True:
            now = self.clock.now()
            async with self.db.transaction() as conn:
                batch = await store.due(conn, now, ERASE_BATCH)
                for row in batch:
                    counts = await store.erase(conn, row["id"], row["user_id"], now)
                    await audit.append(
                        conn, at=now, actor_kind="system", actor_id=None, action="account.erase",
                        subject=f"user:{row['user_id']}", detail={"deletion_id": row["id"], "counts": counts},
                    )
                    totals["accounts"] += 1
                    for k, v in counts.items():
                        totals[k] = totals.get(k, 0) + v
            if len(batch) < ERASE_BATCH:
                return totals
