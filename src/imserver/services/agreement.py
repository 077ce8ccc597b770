"""The service agreement (Art. 6 ¶2): versions published by `admin`, accepted by users."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..domain.clock import Clock
from ..domain.errors import BadRequest, Code, NotFound
from ..policy.baselines import DEFAULT_BASELINES, Baseline, missing
from ..store import agreement as store
from ..store import audit
from ..store.db import Database
from .unit_of_work import AfterCommit

# Art. 6 ¶2: the agreement must commit the user to these (in English or Chinese,
# policy/baselines.py); a version that does not state each of them is refused.
SEVEN_BASELINES = tuple(b.en for b in DEFAULT_BASELINES)
MAX_GRACE_DAYS = 90  # a grace period longer than a quarter is an agreement nobody must accept


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Agreements:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        effects: AfterCommit,
        baselines: tuple[Baseline, ...] = DEFAULT_BASELINES,
    ) -> None:
        self.db = db
        self.clock = clock
        self.effects = effects
        self.baselines = baselines

    async def current(self) -> dict:
        async with self.db.transaction() as conn:
            row = await store.current(conn, self.clock.now())
        if row is None:
            raise NotFound("no agreement has been published", Code.NO_AGREEMENT)
        return {
            "version": row["version"],
            "text": row["text"],
            "published_at": row["published_at"].isoformat(),
            "effective_at": (row["effective_at"] or row["published_at"]).isoformat(),
            "grace_until": _iso(row["grace_until"]),
        }

    async def publish(
        self, text: str, operator_id: int, *, effective_at: datetime | None = None, grace_days: int = 0
    ) -> int:
        """Publish a version stating all seven baselines, in effect from ``effective_at`` (default now);
        for ``grace_days`` after that, users who accepted an earlier version still send."""
        if gone := missing(text, self.baselines):
            raise BadRequest(
                "the agreement must state the seven baselines; missing: " + ", ".join(f"{b.en} ({b.zh})" for b in gone),
                Code.AGREEMENT_BASELINES_MISSING,
                missing=[b.en for b in gone],
                missing_baselines=[{"key": b.key, "en": b.en, "zh": b.zh} for b in gone],
            )
        now = self.clock.now()
        if effective_at is not None and effective_at.tzinfo is None:
            raise BadRequest("effective_at needs a time zone", Code.INVALID_PERIOD)
        if effective_at is not None and effective_at < now:
            raise BadRequest("effective_at is in the past", Code.INVALID_PERIOD)
        if not 0 <= grace_days <= MAX_GRACE_DAYS:
            raise BadRequest(f"grace_days must be 0-{MAX_GRACE_DAYS}", Code.INVALID_PERIOD)
        start = effective_at or now
        grace_until = start + timedelta(days=grace_days) if grace_days else None
        async with self.db.transaction() as conn:
            version = await store.publish(
                conn, text=text, now=now, operator_id=operator_id, effective_at=effective_at, grace_until=grace_until
            )
            await audit.append(
                conn,
                at=now,
                actor_kind="operator",
                actor_id=operator_id,
                action="agreement.publish",
                subject=f"agreement:{version}",
                detail={
                    "version": version,
                    "chars": len(text),
                    "effective_at": _iso(effective_at),
                    "grace_until": _iso(grace_until),
                },
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
                "effective_at": (r["effective_at"] or r["published_at"]).isoformat(),
                "grace_until": _iso(r["grace_until"]),
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
