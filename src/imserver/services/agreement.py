"""The service agreement (Art. 6 ¶2): versions published by `admin`, accepted by users."""

from __future__ import annotations

from ..domain.clock import Clock
from ..domain.errors import BadRequest, Code, NotFound
from ..store import agreement as store
from ..store import audit
from ..store.db import Database
from .unit_of_work import AfterCommit

# Art. 6 ¶2: the agreement must commit the user to these; a version that does not
# name each of them is refused at publication.
SEVEN_BASELINES = (
    "laws and regulations",
    "socialist system",
    "national interest",
    "lawful rights",
    "public order",
    "social morality",
    "truthfulness of information",
)


class Agreements:
    def __init__(self, db: Database, clock: Clock, *, effects: AfterCommit) -> None:
        self.db = db
        self.clock = clock
        self.effects = effects

    async def current(self) -> dict:
        async with self.db.transaction() as conn:
            row = await store.current(conn)
        if row is None:
            raise NotFound("no agreement has been published", Code.NO_AGREEMENT)
        return {"version": row["version"], "text": row["text"], "published_at": row["published_at"].isoformat()}

    async def publish(self, text: str, operator_id: int) -> int:
        lowered = " ".join(text.lower().split())
        missing = [b for b in SEVEN_BASELINES if b not in lowered]
        if missing:
            raise BadRequest(
                f"the agreement must state the seven baselines; missing: {', '.join(missing)}",
                Code.AGREEMENT_BASELINES_MISSING,
                missing=missing,
            )
        now = self.clock.now()
        async with self.db.transaction() as conn:
            version = await store.publish(conn, text=text, now=now, operator_id=operator_id)
            await audit.append(
                conn,
                at=now,
                actor_kind="operator",
                actor_id=operator_id,
                action="agreement.publish",
                subject=f"agreement:{version}",
                detail={"version": version, "chars": len(text)},
            )
        await self.effects.policy_changed(user_id=0)  # every user's snapshot is stale, on every node
        return version

    async def list_versions(self) -> list[dict]:
        """Every version, oldest first, with how many users accepted it and how many are on it now."""
        async with self.db.transaction() as conn:
            rows = await store.list_all(conn)
            counts = await store.acceptance_counts(conn)
        return [
            {
                "version": r["version"],
                "published_at": r["published_at"].isoformat(),
                "published_by": r["published_by"],
                "accepted_by": counts.get(r["version"], (0, 0))[0],
                "users_on_version": counts.get(r["version"], (0, 0))[1],
            }
            for r in rows
        ]

    async def version(self, version: int) -> dict:
        """One version's text, with its acceptance counts."""
        async with self.db.transaction() as conn:
            row = await store.get(conn, version)
            counts = await store.acceptance_counts(conn)
        if row is None:
            raise NotFound(f"no agreement version {version}", Code.AGREEMENT_NOT_FOUND)
        accepted, on_version = counts.get(version, (0, 0))
        return {
            "version": row["version"],
            "text": row["text"],
            "published_at": row["published_at"].isoformat(),
            "published_by": row["published_by"],
            "accepted_by": accepted,
            "users_on_version": on_version,
        }
