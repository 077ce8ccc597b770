"""Real name behind (Art. 6 ¶1): identity submission, verification, review and reads.

State of a user's identity (``users.realname_status``, mirrored on each
submission row)::

    unverified ──submit──► pending ──verifier or reviewer──► verified
                              ▲                          └──► rejected
                              └──────────submit──────────────────┘

Rules, numbered as the use case runs them:

1. The fields are validated (:mod:`.identity_fields`) before anything is stored.
2. Only ``unverified`` or ``rejected`` may submit; pending and verified are final
   until a decision (``identity_state``).
3. One identity (the HMAC of its ID number) backs at most
   ``max_accounts_per_identity`` accounts that are pending or verified
   (``identity_limit``).
4. The submission is sealed (store/keyring.py) and committed as pending, then
   handed to the :class:`~.verifiers.Verifier` outside the transaction.

Who sees what: the user sees only the status; ``reviewer`` sees masked fields;
``compliance`` may see the plaintext; every other role gets 403. Every read
(queue listings included) and every decision writes an audit row naming the
operator and the user. The service publishes the policy change (an invalidation after the commit)
after a status change.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta, timezone

from ..domain.clock import Clock
from ..domain.enums import RealNameStatus, Role
from ..domain.errors import Code, Conflict, ImserverError, NotFound
from ..domain.principals import Principal
from ..store import audit
from ..store import identity as store
from ..store import worklists
from ..store.db import Database
from ..store.keyring import KeyRing, KeyRingError
from . import paging
from .accounts import require_role
from .identity_fields import (
    clean_legal_name,
    mask_id_number,
    mask_name,
    mask_phone,
    normalise_id_number,
    normalise_phone,
)
from .unit_of_work import AfterCommit
from .verifiers import Submission, Verifier

log = logging.getLogger("imserver.identity")

# Birth dates on resident ID cards are Beijing dates: "not in the future" is judged there.
BEIJING = timezone(timedelta(hours=8))
QUEUE_PAGE_MAX = 100  # each listed row costs a decryption and an audit row
REWRAP_PAGE = 500  # rows re-wrapped per transaction: short transactions, few round trips
CAN_SUBMIT = (RealNameStatus.UNVERIFIED, RealNameStatus.REJECTED)
DECISIONS = (RealNameStatus.VERIFIED, RealNameStatus.REJECTED)


@dataclass(frozen=True)
class RotationResult:
    key_id: str  # the master key everything is now wrapped by
    rewrapped: int
    failed: list[int] = field(default_factory=list)  # identity ids that did not unwrap


class Identities:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        keyring: KeyRing,
        verifier: Verifier,
        *,
        max_accounts: int,
        effects: AfterCommit,
    ) -> None:
        self.db = db
        self.clock = clock
        self.keyring = keyring
        self.verifier = verifier
        self.max_accounts = max_accounts
        self.effects = effects

    # -- the user's side -------------------------------------------------------------

    async def submit(self, user_id: int, *, legal_name: str, id_number: str, phone: str) -> RealNameStatus:
        """Validate, seal and store a submission, then ask the verifier; returns the new status."""
        status = await self._submit(user_id, legal_name=legal_name, id_number=id_number, phone=phone)
        await self.effects.policy_changed(user_id=user_id)  # the real-name status changed, on every node
        return status

    async def _submit(self, user_id: int, *, legal_name: str, id_number: str, phone: str) -> RealNameStatus:
        now = self.clock.now()
        number = normalise_id_number(id_number, today=now.astimezone(BEIJING).date())  # rule 1
        phone = normalise_phone(phone)
        name = clean_legal_name(legal_name)
        id_hmac = self.keyring.id_hmac(number)
        plaintext = json.dumps(
            {"legal_name": name, "id_number": number, "phone": phone}, ensure_ascii=False, separators=(",", ":")
        ).encode()
        async with self.db.transaction() as conn:
            if not await store.claim_user_status(conn, user_id, to=RealNameStatus.PENDING, only_from=CAN_SUBMIT):
                current = await store.user_status(conn, user_id)  # rule 2
                raise Conflict(f"identity is already {current}", Code.IDENTITY_STATE, status=current)
            if await store.count_other_holders(conn, id_hmac, user_id=user_id) >= self.max_accounts:  # rule 3
                raise Conflict("this identity already backs the most accounts allowed", Code.IDENTITY_LIMIT)
            identity_id = await store.insert_submission(  # rule 4
                conn, self.keyring, user_id=user_id, id_hmac=id_hmac, plaintext=plaintext, now=now
            )
            await audit.append(
                conn,
                at=now,
                actor_kind="user",
                actor_id=user_id,
                action="identity.submit",
                subject=f"user:{user_id}",
                detail={"identity_id": identity_id},
            )
        submission = Submission(identity_id, user_id, name, number, phone)
        try:
            verdict = await self.verifier.verify(submission)
        except Exception:  # any verifier fault degrades to manual review; the submission is safe
            log.exception("verifier %r failed on identity %s; left pending for review", self.verifier.name, identity_id)
            return RealNameStatus.PENDING
        if verdict is None:
            return RealNameStatus.PENDING
        if verdict.status not in DECISIONS:
            log.error(
                "verifier %r answered %r for identity %s; left pending", self.verifier.name, verdict.status, identity_id
            )
            return RealNameStatus.PENDING
        await self._decide(identity_id, verdict.status, verdict.note, actor=None, via=self.verifier.name)
        return verdict.status

    async def status(self, user_id: int) -> RealNameStatus:
        async with self.db.transaction() as conn:
            current = await store.user_status(conn, user_id)
        if current is None:
            raise NotFound("no such user")
        return current

    # -- the operators' side -----------------------------------------------------------

    async def pending(self, operator: Principal, *, cursor: str | None = None, limit: int = 50) -> dict:
        """The review queue, oldest first, masked, with each submitter's handle and
        nickname, in the list envelope; each listed submission is an audited read."""
        require_role(operator, Role.REVIEWER, Role.COMPLIANCE)
        page = paging.page_request("identity_queue", sort="submitted_at", cursor=cursor, limit=limit, cap=QUEUE_PAGE_MAX)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            rows, total = await worklists.identity_queue_page(
                conn, status=RealNameStatus.PENDING, after=page.after, limit=page.limit
            )
            for row in rows[: page.limit]:
                await self._audit_read(conn, operator, row["user_id"], row["id"], full=False, via="queue", now=now)
        views = []
        for row in rows[: page.limit]:
            try:
                fields = self._open(row)
            except ImserverError:
                log.error("identity %s does not decrypt; listed without fields", row["id"])
                fields = None
            views.append({**_view(row, fields, full=False), "handle": row["handle"], "nickname": row["nickname"]})
        return paging.envelope(page, rows, total, views)

    async def read(self, operator: Principal, user_id: int, *, full: bool = False) -> dict:
        """A user's latest submission: plaintext for compliance when asked, masked otherwise."""
        require_role(operator, Role.REVIEWER, Role.COMPLIANCE)
        show_full = full and Role.COMPLIANCE in operator.roles
        now = self.clock.now()
        async with self.db.transaction() as conn:
            row = await store.latest_for_user(conn, user_id)
            # Audited even when there is nothing to show: the attempt is the fact.
            await self._audit_read(
                conn, operator, user_id, row["id"] if row else None, full=show_full, via="user", now=now
            )
        if row is None:
            raise NotFound("this user has submitted no identity")
        return _view(row, self._open(row), full=show_full)

    async def review(
        self, operator: Principal, identity_id: int, *, approve: bool, note: str
    ) -> tuple[int, RealNameStatus]:
        """A reviewer's decision on a pending submission; returns (user id, new status)."""
        require_role(operator, Role.REVIEWER)
        status = RealNameStatus.VERIFIED if approve else RealNameStatus.REJECTED
        user_id = await self._decide(identity_id, status, note, actor=operator, via="reviewer")
        await self.effects.policy_changed(user_id=user_id)  # the real-name status changed, on every node
        return user_id, status

    async def _decide(
        self, identity_id: int, status: RealNameStatus, note: str, *, actor: Principal | None, via: str
    ) -> int:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            row = await store.get(conn, identity_id)
            if row is None:
                raise NotFound("no such identity submission")
            reviewer_id = actor.id if actor else None
            if not await store.set_review(
                conn, identity_id, status=status, reviewer_id=reviewer_id, note=note, now=now
            ):
                raise Conflict("this submission is not pending", Code.IDENTITY_STATE, status=row["status"])
            # The pending row is the user's latest (nobody submits while pending).
            await store.claim_user_status(conn, row["user_id"], to=status, only_from=(RealNameStatus.PENDING,))
            await audit.append(
                conn,
                at=now,
                actor_kind="operator" if actor else "system",
                actor_id=reviewer_id,
                action="identity.review",
                subject=f"user:{row['user_id']}",
                detail={"identity_id": identity_id, "decision": status.value, "note": note, "via": via},
            )
        return row["user_id"]

    # -- master-key rotation ------------------------------------------------------------

    async def rewrap_all(self, *, operator_id: int | None = None) -> RotationResult:
        """Re-wrap every data key not under the active master key; record ciphertexts stay."""
        active = self.keyring.active_key_id
        rewrapped, failed, after = 0, [], 0
        while True:
            async with self.db.transaction() as conn:
                rows = await store.wrapped_keys_page(conn, after=after, limit=REWRAP_PAGE, not_key_id=active)
                for row in rows:
                    try:
                        sealed = self.keyring.rewrap(row["id"], row["key_id"], row["wrapped_key"])
                    except KeyRingError as exc:
                        log.error("identity %s not re-wrapped: %s", row["id"], exc)
                        failed.append(row["id"])
                        continue
                    if await store.update_wrapping(conn, row["id"], old_key_id=row["key_id"], sealed=sealed):
                        rewrapped += 1
            if not rows:
                break
            after = rows[-1]["id"]
        async with self.db.transaction() as conn:
            await audit.append(
                conn,
                at=self.clock.now(),
                actor_kind="operator" if operator_id else "system",
                actor_id=operator_id,
                action="keys.rotate",
                subject=f"master-key:{active}",
                detail={"key_id": active, "rewrapped": rewrapped, "failed": failed},
            )
        return RotationResult(active, rewrapped, failed)

    # -- helpers ------------------------------------------------------------------------

    def _open(self, row) -> dict:
        try:
            return json.loads(self.keyring.open(row["id"], row["key_id"], row["wrapped_key"], row["ciphertext"]))
        except KeyRingError as exc:
            raise ImserverError(f"identity {row['id']} cannot be decrypted", Code.IDENTITY_UNREADABLE) from exc

    @staticmethod
    async def _audit_read(
        conn, operator: Principal, user_id: int, identity_id: int | None, *, full: bool, via: str, now
    ) -> None:
        await audit.append(
            conn,
            at=now,
            actor_kind="operator",
            actor_id=operator.id,
            action="identity.read",
            subject=f"user:{user_id}",
            detail={
                "identity_id": identity_id,
                "full": full,
                "role": operator.role and operator.role.value,
                "via": via,
            },
        )


def _view(row, fields: dict | None, *, full: bool) -> dict:
    view = {
        "identity_id": row["id"],
        "user_id": row["user_id"],
        "status": row["status"],
        "submitted_at": row["submitted_at"].isoformat(),
        "reviewed_at": row["reviewed_at"].isoformat() if row["reviewed_at"] else None,
        "reviewer_id": row["reviewer_id"],
        "review_note": row["review_note"],
        "masked": not full,
    }
    if fields is None:
        return {**view, "legal_name": None, "id_number": None, "phone": None, "unreadable": True}
    if full:
        return {**view, **fields}
    return {
        **view,
        "legal_name": mask_name(fields["legal_name"]),
        "id_number": mask_id_number(fields["id_number"]),
        "phone": mask_phone(fields["phone"]),
    }
