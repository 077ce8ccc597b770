"""Public accounts (Art. 7): apply, review, file, re-review changes, news
approvals, follow, post, take down.

"Instant messaging tool service users opening public accounts in order to engage
in public information service activities shall undergo examination and
verification by the instant messaging tool service provider, [who] files [them]
in a categorized manner with the controlling department" (Art. 7 ¶1).

Life of an account::

    apply ──► pending ──reviewer──► approved (filed: a filing record) ──► closed (close_account)
                  └──────────────► rejected                  ▲ reopened when the closure ends

1. **Apply**: only a user whose real name is verified (Art. 6) applies; the
   fields are checked (:mod:`.public_account_fields`). Applications over the
   per-user cap, or whose name claims a party, government, military or news body
   (:mod:`imserver.policy.public_accounts`), are flagged ``manual_review``; a
   reviewer must acknowledge the flags to approve them.
2. **Review**: a ``reviewer`` approves or rejects with a reason. Approval files
   the account: a filing record (category, operator entity, credit code,
   reference) in the same transaction. Changes to a filed account's name,
   category or operator (and its licence) wait as a *change* for the same
   review; approving one applies it and re-files (the old record is superseded).
   The account keeps its filed facts, and keeps posting, meanwhile.
3. **News permission** (Art. 7 ¶2) and **badge** (¶3) are derived, never
   stored or settable: see :mod:`imserver.policy.public_accounts`. A
   ``compliance`` operator records news approvals (reference, scope, expiry)
   and may revoke them.
4. **Posts** are stored once under a position of the global posts stream
   (fan-out on read). Every post passes the policy pipeline first
   (``PolicyGate.check`` with the account's snapshot: sanctions on the owner and
   on the account, approved and filed, news permission, content filter, rate).
   A post the content filter would *hold* is refused with ``content_review``
   instead: posts are not queued for moderators (the held queue is for chat
   messages), and the author may edit and post again. After the commit the post
   goes to the fan-out as a :class:`PostEvent`; within a node, events leave in
   position order (one lock around commit and hand-off).
5. **Takedown** by the owner or a ``moderator``: the post leaves ``posts_after``
   and the history, and followers get a tombstone.

Every operator action, and each application, change request and takedown,
appends an audit row in its own transaction. After any commit that changes
what an account may do, an invalidation of the owner's facts drops cached snapshots
on every node (:mod:`.public_account_cache`).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..domain.clock import Clock
from ..domain.enums import PrincipalKind, RealNameStatus, Role, UserStatus
from ..domain.errors import BadRequest, Code, Conflict, Forbidden, NotFound, PolicyDenied
from ..domain.policy_types import (
    AccountCategory,
    NewsPermission,
    Outgoing,
    OutgoingKind,
    PublicAccountSnapshot,
    PublicAccountStatus,
)
from ..domain.principals import Principal
from ..policy import provinces
from ..policy.decision import deny
from ..policy.provider import ProviderProfile
from ..policy.ladder import Item
from ..policy.public_accounts import LICENSED, badge, impersonation_flags, name_key
from ..store import audit
from ..store import public_accounts as store
from ..store.db import Database
from . import filing_export, paging, regulator
from .accounts import require_role
from .events import PostEvent, PostView
from .policy_gate import PolicyGate
from .public_account_cache import AccountCache, AccountFacts, effective_status
from .public_account_fields import (
    Source,
    clean_category,
    clean_description,
    clean_name,
    clean_operator,
    clean_province,
    clean_post,
    clean_post_kind,
    clean_reason,
)
from .unit_of_work import AfterCommit, Invalidate, Scope

PAGE_MAX = 100  # rows per listing page
FILED_FACTS = ("name", "category", "operator_name", "credit_code", "licence_number", "licence_expires_at")



def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _page(limit: int) -> int:
    return max(1, min(limit, PAGE_MAX))


async def post_subjects(conn, ids: list[int]) -> dict[int, frozenset[tuple[str, int]]]:
    """Whom a post is about, as sanction evidence and report target: its account and the owner."""
    return {
        post_id: frozenset({("public_account", account_id), ("user", owner_id)})
        for post_id, (account_id, owner_id) in (await store.post_accounts(conn, ids)).items()
    }


class PublicAccounts:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        policy: PolicyGate,
        effects: AfterCommit,
        cache: AccountCache,
        per_user_cap: int,
        local_zone: str = "UTC",
        provider: ProviderProfile | None = None,
    ) -> None:
        self.db = db
        # Art. 4: public accounts run only under the provider's valid news information service licence.
        self.provider = provider or ProviderProfile("", "", "", None)
        self.zone = ZoneInfo(local_zone)  # export periods given without a zone are read here
        self.clock = clock
        self.policy = policy
        self.effects = effects
        self.per_user_cap = per_user_cap
        self.cache = cache
        # Commit and hand-off of posts, in position order on this node (module docstring, 4).
        self._post_lock = asyncio.Lock()

    # == the delivery side's interface ===========================================================

    async def followers(self, account_id: int) -> frozenset[int]:
        """The account's followers (cached per node, dropped on follow/unfollow everywhere)."""
        return await self.cache.followers(account_id)

    async def posts_after(self, user_id: int, after: int, limit: int) -> list[PostView]:
        """Posts of the accounts `user_id` follows with position > after, ascending; taken-down posts left out."""
        async with self.db.read() as conn:
            rows = await store.posts_after(conn, user_id, after, max(1, limit))
        return [await self._view(row) for row in rows]

    async def latest_position(self) -> int:
        """The last committed position of the posts stream (0: none yet)."""
        async with self.db.read() as conn:
            return await store.latest_position(conn)

    async def snapshot(self, account_id: int) -> PublicAccountSnapshot | None:
        facts = await self.cache.facts(account_id)
        return facts.snapshot if facts else None

    # == application and review (Art. 7 ¶1) ========================================================

    async def apply(
        self,
        user_id: int,
        *,
        name: str,
        description: str,
        category: str,
        operator_name: str | None = None,
        credit_code: str | None = None,
        licence_number: str | None = None,
        licence_expires_at: datetime | None = None,
        province: str | None = None,
    ) -> dict:
        """A verified user's application; stored as pending, flagged for manual review where due.
        Refused while the provider lacks its news information service qualification (Art. 4).

        ``province`` (GB/T 2260) is what an individual declares; an organisation's comes
        from its credit code (Art. 3: the filing goes to that province's department)."""
        self._require_qualified()
        await self._require_verified(user_id)
        now = self.clock.now()
        cat = clean_category(category)
        name = clean_name(name)
        description = clean_description(description)
        op = clean_operator(
            cat,
            name=operator_name,
            credit_code=credit_code,
            licence_number=licence_number,
            licence_expires_at=licence_expires_at,
            now=now,
        )
        province = clean_province(op.credit_code, province)
        key = name_key(name)
        flags = impersonation_flags(name)
        async with self.db.transaction() as conn:
            if await store.name_taken(conn, key):
                raise Conflict(f"a public account named {name!r} exists already", Code.ACCOUNT_NAME_TAKEN)
            held = await store.count_capped(conn, user_id)
            if held >= self.per_user_cap:
                flags.append(f"over_cap:{held + 1}/{self.per_user_cap}")
            account_id = await store.insert_account(
                conn,
                owner_id=user_id,
                name=name,
                name_key=key,
                description=description,
                category=cat.value,
                operator_name=op.name,
                credit_code=op.credit_code,
                licence_number=op.licence_number,
                licence_expires_at=op.licence_expires_at,
                province=province,
                status=store.PENDING,
                manual_review=bool(flags),
                review_flags=flags,
                created_at=now,
                updated_at=now,
            )
            await audit.append(
                conn,
                at=now,
                actor_kind="user",
                actor_id=user_id,
                action="public_account.apply",
                subject=f"public_account:{account_id}",
                detail={"category": cat.value, "flags": flags},
            )
            row = await store.get_account(conn, account_id)
        return await self._owner_view(row)

    def _require_qualified(self) -> None:
        """Art. 4: public information services need the provider's news information service qualification."""
        why = self.provider.why_not(self.clock.now())
        if why is not None:
            raise Forbidden(f"public accounts are unavailable: {why}", Code.NEWS_SERVICE_UNQUALIFIED)

    async def _require_verified(self, user_id: int) -> None:
        user = await self.policy.user_snapshot(user_id)
        if user is None or user.status != UserStatus.ACTIVE:
            raise Forbidden("the account is closed", Code.ACCOUNT_CLOSED)
        if user.real_name_status != RealNameStatus.VERIFIED:
            raise Forbidden(
                f"a public account needs a verified real name (yours is {user.real_name_status})",
                Code.REAL_NAME_UNVERIFIED,
            )

    async def applications(
        self,
        operator: Principal,
        *,
        status: str = "pending",
        category: str | None = None,
        flagged_only: bool = False,
        name: str | None = None,
        descending: bool = False,
        cursor: str | None = None,
        limit: int = paging.PAGE_DEFAULT,
    ) -> dict:
        """Applications in a status (oldest first: the review queue), in the list envelope."""
        require_role(operator, Role.REVIEWER, Role.COMPLIANCE)
        if status not in (store.PENDING, store.APPROVED, store.REJECTED, store.CLOSED):
            raise BadRequest(f"unknown status {status!r}")
        page = paging.page_request(
            "public_account_applications", sort="created_at", descending=descending, cursor=cursor, limit=limit
        )
        async with self.db.read() as conn:
            rows, total = await store.applications(
                conn,
                status=status,
                category=category,
                flagged_only=flagged_only,
                name_contains=name_key(name) if name else None,
                descending=descending,
                after=page.after,
                limit=page.limit,
            )
        return paging.envelope(page, rows, total, [await self._owner_view(r) for r in rows])

    async def review(
        self, operator: Principal, account_id: int, *, approve: bool, reason: str, acknowledge_flags: bool = False
    ) -> dict:
        """Approve (and file) or reject a pending application, with a reason."""
        require_role(operator, Role.REVIEWER)
        reason = clean_reason(reason)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            row = await self._account(conn, account_id, lock=True)
            if row["status"] != store.PENDING:
                raise Conflict(f"the application is {row['status']}, not pending", Code.PUBLIC_ACCOUNT_STATE)
            if approve and row["manual_review"] and not acknowledge_flags:
                raise Conflict(
                    "this application is flagged for manual review; approve with acknowledge_flags",
                    Code.REVIEW_FLAGS_UNACKNOWLEDGED,
                    flags=row["review_flags"],
                )
            if approve and await store.name_taken(conn, row["name_key"], but=account_id):
                raise Conflict("another account holds this name now", Code.ACCOUNT_NAME_TAKEN)
            status = store.APPROVED if approve else store.REJECTED
            if not await store.decide_application(
                conn, account_id, status=status, reviewer_id=operator.id, reason=reason, now=now
            ):
                raise Conflict("the application was decided meanwhile", Code.PUBLIC_ACCOUNT_STATE)
            filing = None
            if approve:
                filing = await store.file_account(conn, row, filed_by=operator.id, now=now)
                await regulator.record_filing(conn, kind="filed", filing=filing, now=now)
            await audit.append(
                conn,
                at=now,
                actor_kind="operator",
                actor_id=operator.id,
                action="public_account.review",
                subject=f"public_account:{account_id}",
                detail={
                    "decision": status,
                    "reason": reason,
                    "flags": row["review_flags"],
                    "filing": filing["reference"] if filing else None,
                },
            )
            row = await store.get_account(conn, account_id)
        await self.effects.policy_changed(user_id=row["owner_id"])
        return await self._owner_view(row)

    # == changes to a filed account: re-review and re-filing (Art. 7 ¶1) ===============================

    async def update(self, user_id: int, account_id: int, fields: dict[str, Any]) -> dict:
        """The owner edits: the description at once; filed facts as a change awaiting re-review.

        A sanction on the owner or the account that stops public-account updates (the ladder) refuses it."""
        facts = await self.cache.facts(account_id)
        if facts is not None and facts.owner_id == user_id:
            await self.policy.require_allowed(user_id, Item.PUBLIC_ACCOUNT_UPDATES, facts.snapshot)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            row = await self._own(conn, user_id, account_id)
            if effective_status(row) is PublicAccountStatus.CLOSED:
                raise Forbidden("the public account is closed", Code.PUBLIC_ACCOUNT_CLOSED)
            if "description" in fields and fields["description"] is not None:
                description = clean_description(fields["description"])
                await store.update_account(conn, account_id, description=description, updated_at=now)
            proposed = self._proposed(row, fields, now)
            change_id = None
            if proposed is not None:
                if row["status"] != store.APPROVED:
                    raise Conflict(
                        "only an approved (filed) account has changes re-reviewed; this one is " + row["status"],
                        Code.PUBLIC_ACCOUNT_STATE,
                    )
                if await store.pending_change_for(conn, account_id) is not None:
                    raise Conflict("a change to this account awaits review already", Code.CHANGE_PENDING)
                if name_key(proposed["name"]) != row["name_key"] and await store.name_taken(
                    conn, name_key(proposed["name"]), but=account_id
                ):
                    raise Conflict(
                        f"a public account named {proposed['name']!r} exists already", Code.ACCOUNT_NAME_TAKEN
                    )
                flags = impersonation_flags(proposed["name"]) if proposed["name"] != row["name"] else []
                change_id = await store.insert_change(
                    conn,
                    account_id=account_id,
                    requested_by=user_id,
                    status=store.PENDING,
                    manual_review=bool(flags),
                    review_flags=flags,
                    created_at=now,
                    **proposed,
                )
            await audit.append(
                conn,
                at=now,
                actor_kind="user",
                actor_id=user_id,
                action="public_account.update",
                subject=f"public_account:{account_id}",
                detail={"fields": sorted(k for k, v in fields.items() if v is not None), "change_id": change_id},
            )
            row = await store.get_account(conn, account_id)
        return await self._owner_view(row)

    def _proposed(self, row: dict, fields: dict[str, Any], now: datetime) -> dict | None:
        """The filed facts after the edit, validated whole; None when none of them changes."""
        required = ("name", "category")  # a null here means "unchanged"; the others may be cleared
        given = {k: fields[k] for k in FILED_FACTS if k in fields and not (k in required and fields[k] is None)}
        if not given:
            return None
        merged = {k: given.get(k, row[k]) for k in FILED_FACTS}
        category = clean_category(merged["category"])
        if category not in LICENSED and "licence_number" not in given:
            merged["licence_number"] = merged["licence_expires_at"] = None
        if category is AccountCategory.INDIVIDUAL:
            merged["operator_name"] = given.get("operator_name")
            merged["credit_code"] = given.get("credit_code")
        op = clean_operator(
            category,
            name=merged["operator_name"],
            credit_code=merged["credit_code"],
            licence_number=merged["licence_number"],
            licence_expires_at=merged["licence_expires_at"],
            now=now,
        )
        proposed = {
            "name": clean_name(merged["name"]),
            "category": category.value,
            "operator_name": op.name,
            "credit_code": op.credit_code,
            "licence_number": op.licence_number,
            "licence_expires_at": op.licence_expires_at,
        }
        if all(proposed[k] == row[k] for k in FILED_FACTS):
            return None
        return proposed

    async def pending_changes(self, operator: Principal, *, cursor: str | None = None, limit: int = 50) -> dict:
        """Changes to filed accounts awaiting re-review, oldest first, in the list envelope."""
        require_role(operator, Role.REVIEWER, Role.COMPLIANCE)
        page = paging.page_request("public_account_changes", sort="id", cursor=cursor, limit=limit, cap=PAGE_MAX)
        async with self.db.read() as conn:
            rows, total = await store.pending_changes(conn, after=page.after, limit=page.limit)
        return paging.envelope(page, rows, total, [self._change_view(r) for r in rows[: page.limit]])

    async def review_change(
        self, operator: Principal, change_id: int, *, approve: bool, reason: str, acknowledge_flags: bool = False
    ) -> dict:
        """Approve (apply and re-file) or reject a change to a filed account."""
        require_role(operator, Role.REVIEWER)
        reason = clean_reason(reason)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            change = await store.get_change(conn, change_id)
            if change is None:
                raise NotFound(f"no change {change_id}", Code.CHANGE_NOT_FOUND)
            row = await self._account(conn, change["account_id"], lock=True)
            if change["status"] != store.PENDING:
                raise Conflict(f"the change is {change['status']}, not pending", Code.PUBLIC_ACCOUNT_STATE)
            if approve and change["manual_review"] and not acknowledge_flags:
                raise Conflict(
                    "this change is flagged for manual review; approve with acknowledge_flags",
                    Code.REVIEW_FLAGS_UNACKNOWLEDGED,
                    flags=change["review_flags"],
                )
            if approve and row["status"] != store.APPROVED:
                raise Conflict(f"the account is {row['status']} now", Code.PUBLIC_ACCOUNT_STATE)
            key = name_key(change["name"])
            if approve and key != row["name_key"] and await store.name_taken(conn, key, but=row["id"]):
                raise Conflict("another account holds this name now", Code.ACCOUNT_NAME_TAKEN)
            status = store.APPROVED if approve else store.REJECTED
            if not await store.decide_change(
                conn, change_id, status=status, reviewer_id=operator.id, reason=reason, now=now
            ):
                raise Conflict("the change was decided meanwhile", Code.PUBLIC_ACCOUNT_STATE)
            filing = None
            if approve:
                facts = {k: change[k] for k in FILED_FACTS}
                if change["credit_code"]:  # a new credit code may move the account to another province
                    facts["province"] = provinces.of_credit_code(change["credit_code"]) or row["province"]
                await store.update_account(conn, row["id"], name_key=key, updated_at=now, **facts)
                filing = await store.file_account(conn, {**row, **facts}, filed_by=operator.id, now=now)
                await regulator.record_filing(conn, kind="refiled", filing=filing, now=now)
            await audit.append(
                conn,
                at=now,
                actor_kind="operator",
                actor_id=operator.id,
                action="public_account.change_review",
                subject=f"public_account:{row['id']}",
                detail={
                    "change_id": change_id,
                    "decision": status,
                    "reason": reason,
                    "filing": filing["reference"] if filing else None,
                },
            )
            change = await store.get_change(conn, change_id)
        await self.effects.policy_changed(user_id=row["owner_id"])
        return self._change_view(change) | {"filing_reference": filing["reference"] if filing else None}

    # == news approvals by compliance (Art. 7 ¶2) =======================================================

    async def grant_news(
        self, operator: Principal, account_id: int, *, reference: str, scope: str, expires_at: datetime
    ) -> dict:
        require_role(operator, Role.COMPLIANCE)
        now = self.clock.now()
        reference = reference.strip()
        if scope not in (NewsPermission.PUBLISH, NewsPermission.REPRINT):
            raise BadRequest("an approval's scope is publish or reprint", Code.INVALID_NEWS_APPROVAL)
        if not 1 <= len(reference) <= 64:
            raise BadRequest("an approval names its reference (1-64 characters)", Code.INVALID_NEWS_APPROVAL)
        if expires_at.tzinfo is None or expires_at <= now:
            raise BadRequest("an approval expires in the future (with a time zone)", Code.INVALID_NEWS_APPROVAL)
        async with self.db.transaction() as conn:
            row = await self._account(conn, account_id)
            approval_id = await store.insert_approval(
                conn,
                account_id=account_id,
                reference=reference,
                scope=scope,
                expires_at=expires_at,
                granted_by=operator.id,
                granted_at=now,
            )
            await audit.append(
                conn,
                at=now,
                actor_kind="operator",
                actor_id=operator.id,
                action="public_account.news_grant",
                subject=f"public_account:{account_id}",
                detail={
                    "approval_id": approval_id,
                    "reference": reference,
                    "scope": scope,
                    "expires_at": _iso(expires_at),
                },
            )
            approval = await store.get_approval(conn, approval_id)
        await self.effects.policy_changed(user_id=row["owner_id"])
        return self._approval_view(approval)

    async def revoke_news(self, operator: Principal, approval_id: int, *, reason: str) -> dict:
        require_role(operator, Role.COMPLIANCE)
        reason = clean_reason(reason)
        now = self.clock.now()
        async with self.db.transaction() as conn:
            approval = await store.get_approval(conn, approval_id)
            if approval is None:
                raise NotFound(f"no news approval {approval_id}", Code.NEWS_APPROVAL_NOT_FOUND)
            if not await store.revoke_approval(conn, approval_id, by=operator.id, reason=reason, now=now):
                raise Conflict("the approval was revoked already", Code.INVALID_NEWS_APPROVAL)
            owner = await store.owner_of(conn, approval["account_id"])
            await audit.append(
                conn,
                at=now,
                actor_kind="operator",
                actor_id=operator.id,
                action="public_account.news_revoke",
                subject=f"public_account:{approval['account_id']}",
                detail={"approval_id": approval_id, "reason": reason},
            )
            approval = await store.get_approval(conn, approval_id)
        await self.effects.policy_changed(user_id=owner)
        return self._approval_view(approval)

    # == following ===========================================================================

    async def follow(self, user_id: int, account_id: int) -> dict:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            row = await self._public(conn, account_id, viewer_id=user_id)
            if effective_status(row) is PublicAccountStatus.CLOSED:
                raise Forbidden("the public account is closed", Code.PUBLIC_ACCOUNT_CLOSED)
            if row["status"] != store.APPROVED:
                raise Forbidden("the public account is not approved yet", Code.PUBLIC_ACCOUNT_UNVERIFIED)
            changed = await store.follow(conn, account_id, user_id, now)
            count = await store.follower_count(conn, account_id)
        if changed:
            await self.effects.apply(Invalidate(Scope.FOLLOWERS, account_id))
        return {"account_id": account_id, "following": True, "follower_count": count}

    async def unfollow(self, user_id: int, account_id: int) -> dict:
        async with self.db.transaction() as conn:
            await self._account(conn, account_id)
            changed = await store.unfollow(conn, account_id, user_id)
            count = await store.follower_count(conn, account_id)
        if changed:
            await self.effects.apply(Invalidate(Scope.FOLLOWERS, account_id))
        return {"account_id": account_id, "following": False, "follower_count": count}

    async def following(self, user_id: int) -> list[dict]:
        async with self.db.transaction() as conn:
            rows = await store.followed_accounts(conn, user_id)
        return [await self._public_view(r, count=None) for r in rows]

    # == public views: profile, search ===========================================================

    async def profile(self, account_id: int, *, viewer_id: int | None = None) -> dict:
        """The profile page: badge, status (closed shows as closed), followers, filing reference."""
        async with self.db.transaction() as conn:
            row = await self._public(conn, account_id, viewer_id=viewer_id)
            count = await store.follower_count(conn, account_id)
            filing = await store.current_filing(conn, account_id)
            following = viewer_id is not None and await store.is_following(conn, account_id, viewer_id)
        view = await self._public_view(row, count=count, filing=filing)
        view["following"] = following
        return view

    async def search(self, *, query: str | None = None, category: str | None = None, after: int = 0, limit: int = 20):
        if category is not None:
            category = clean_category(category).value
        key = name_key(query) if query else None
        async with self.db.transaction() as conn:
            rows = await store.search(conn, query=key, category=category, after=after, limit=_page(limit))
        return [await self._public_view(r, count=None) for r in rows]

    async def mine(self, user_id: int) -> list[dict]:
        async with self.db.transaction() as conn:
            rows = await store.accounts_of_owner(conn, user_id)
        return [await self._owner_view(r) for r in rows]

    async def admin_view(self, operator: Principal, account_id: int) -> dict:
        """Everything about one account for operators: owner view, approvals, filing in force."""
        require_role(operator, Role.REVIEWER, Role.COMPLIANCE, Role.MODERATOR)
        async with self.db.transaction() as conn:
            row = await self._account(conn, account_id)
            approvals = await store.approvals_for(conn, account_id)
            filing = await store.current_filing(conn, account_id)
            count = await store.follower_count(conn, account_id)
        view = await self._owner_view(row)
        view["news_approvals"] = [self._approval_view(a) for a in approvals]
        view["filing"] = _filing_view(filing) if filing else None
        view["follower_count"] = count
        return view

    # == posts ================================================================================

    async def post(
        self,
        user_id: int,
        account_id: int,
        *,
        kind: str,
        title: str,
        body: str,
        source: dict[str, str | None] | None = None,
    ) -> dict:
        """Policy first, then one commit at the next stream position, then the fan-out; returns the ack."""
        self._require_qualified()
        post_kind = clean_post_kind(kind)
        title, body, src = clean_post(post_kind, title, body, source)
        facts = await self.cache.facts(account_id)
        if facts is None:
            raise NotFound(f"no public account {account_id}", Code.PUBLIC_ACCOUNT_NOT_FOUND)
        if facts.owner_id != user_id:
            raise Forbidden("only the account's owner posts as it", Code.NOT_ACCOUNT_OWNER)
        outgoing = Outgoing(OutgoingKind.POST, user_id, _filtered_text(title, body, src), post_kind, account_id)
        verdict = await self.policy.check(outgoing, facts.snapshot)  # raises PolicyDenied on a deny
        if verdict.held:
            refused = deny(verdict.decision.check, Code.CONTENT_REVIEW, verdict.decision.detail)
            self.policy.decisions.add(outgoing, refused)
            raise PolicyDenied(
                "posts are not held for review: this one matches a review term; edit and post again",
                Code.CONTENT_REVIEW,
                check=refused.check,
            )
        async with self._post_lock:
            now = self.clock.now()
            async with self.db.transaction() as conn:
                position = await store.next_position(conn)
                post_id = await store.insert_post(
                    conn,
                    position=position,
                    account_id=account_id,
                    author_id=user_id,
                    kind=post_kind.value,
                    title=title,
                    body=body,
                    source_name=src.name if src else None,
                    source_url=src.url if src else None,
                    source_author=src.author if src else None,
                    source_title=src.title if src else None,
                    posted_at=now,
                )
            view = PostView(
                post_id=post_id,
                position=position,
                account_id=account_id,
                account_name=facts.name,
                news_badge=badge(facts.permission),
                kind=post_kind.value,
                title=title,
                body=body,
                posted_at=now.isoformat(),
                source=src.as_dict() if src else None,
            )
            self.effects.broadcast(PostEvent(view, await self.followers(account_id)))
        return {
            "post_id": post_id,
            "position": position,
            "account_id": account_id,
            "posted_at": view.posted_at,
            "news_badge": view.news_badge,
        }

    async def history(self, account_id: int, *, viewer_id: int | None, before: int | None, limit: int) -> list[dict]:
        """An account's posts, newest first; taken-down posts are gone from it."""
        async with self.db.transaction() as conn:
            await self._public(conn, account_id, viewer_id=viewer_id)
            rows = await store.account_posts(conn, account_id, before=before, limit=_page(limit))
        return [_post_dict(await self._view(r)) for r in rows]

    async def take_down_own(self, user_id: int, account_id: int, post_id: int) -> dict:
        """The owner takes a post of the account down."""
        async with self.db.transaction() as conn:
            await self._own(conn, user_id, account_id)
            post = await store.get_post(conn, post_id)
            if post is None or post["account_id"] != account_id:
                raise NotFound(f"no post {post_id} on this account", Code.POST_NOT_FOUND)
        return await self._take_down(post_id, by_kind=PrincipalKind.USER.value, by_id=user_id, reason=None)

    async def take_down(self, operator: Principal, post_id: int, *, reason: str) -> dict:
        """A moderator takes a post down (Art. 5: "timely deal with unlawful and harmful information")."""
        require_role(operator, Role.MODERATOR)
        return await self._take_down(
            post_id, by_kind=PrincipalKind.OPERATOR.value, by_id=operator.id, reason=clean_reason(reason)
        )

    async def _take_down(self, post_id: int, *, by_kind: str, by_id: int, reason: str | None) -> dict:
        now = self.clock.now()
        async with self.db.transaction() as conn:
            post = await store.get_post(conn, post_id)
            if post is None or not await store.take_down(
                conn, post_id, by_kind=by_kind, by_id=by_id, reason=reason, now=now
            ):
                raise NotFound(f"no post {post_id} (or it was taken down already)", Code.POST_NOT_FOUND)
            await audit.append(
                conn,
                at=now,
                actor_kind=by_kind,
                actor_id=by_id,
                action="post.takedown",
                subject=f"public_account:{post['account_id']}",
                detail={"post_id": post_id, "position": post["position"], "reason": reason},
            )
        view = await self._view(post)
        self.effects.broadcast(PostEvent(view, await self.followers(post["account_id"]), tombstone=True))
        return {"post_id": post_id, "account_id": post["account_id"], "taken_down_at": now.isoformat()}

    # == sanctions on accounts (services/sanctions.py hooks) =========================================

    async def close_by_sanction(self, conn, account_id: int, closed: bool, now: datetime) -> None:
        """The sanctions module's closer for subject ``public_account`` (Art. 8 "closure of accounts").

        Closing keeps the status it had, to restore when the closure is lifted,
        expired or overturned. Its caller commits and then calls
        an invalidation of the owner's facts, which drops the cached snapshot everywhere.
        """
        row = await store.get_account(conn, account_id, lock=True)
        if row is None:
            return
        filing = await store.current_filing(conn, account_id)
        if closed and row["status"] != store.CLOSED:
            await store.update_account(
                conn, account_id, status=store.CLOSED, status_before_close=row["status"], closed_at=now, updated_at=now
            )
            if filing is not None:  # the regulator learns the filed account is closed
                await regulator.record_filing(conn, kind="closed", filing=filing, now=now)
        elif not closed and row["status"] == store.CLOSED:
            if filing is not None:
                await regulator.record_filing(conn, kind="reopened", filing=filing, now=now)
            await store.update_account(
                conn,
                account_id,
                status=row["status_before_close"] or store.APPROVED,
                status_before_close=None,
                closed_at=None,
                updated_at=now,
            )
        self.cache.drop_account(account_id)

    async def report_target(self, conn, post_id: int, reporter_id: int) -> frozenset[tuple[str, int]] | None:
        """A post anyone who can read it may report (not taken down, its account visible to
        the reporter); it is about its account and the owner. None: nothing the reporter can see."""
        post = await store.get_post(conn, post_id)
        if post is None or post["taken_down_at"] is not None:
            return None
        account = await store.get_account(conn, post["account_id"])
        if account is None:
            return None
        if account["status"] in (store.PENDING, store.REJECTED) and account["owner_id"] != reporter_id:
            return None
        return frozenset({("public_account", account["id"]), ("user", account["owner_id"])})

    def install_report_hooks(self, reports) -> None:
        """Make posts reportable (the hook services/reports.py documents)."""
        reports.targets["post"] = self.report_target

    def install_sanction_hooks(self, sanctions) -> None:
        """Make public accounts sanctionable subjects (the hook services/sanctions.py documents)."""
        sanctions.subjects["public_account"] = store.owner_of
        sanctions.closers["public_account"] = self.close_by_sanction
        sanctions.owned_subjects["public_account"] = store.account_ids_of_owner
        sanctions.evidence_subjects["post_ids"] = post_subjects

    # == the register for the regulator (Art. 7 ¶1 "files [them] in a categorized manner") ===========

    async def filings(self, *, include_superseded: bool = False) -> list[dict]:
        """Filing records, by category then filing order, each with its account's status now."""
        async with self.db.transaction() as conn:
            rows = await store.filings(conn, include_superseded=include_superseded)
        return [_filing_view(r) for r in rows]

    async def export_filings(
        self,
        actor: Principal | None,
        *,
        fmt: str,
        include_superseded: bool = False,
        since: str | None = None,
        until: str | None = None,
    ) -> filing_export.Export:
        """The register grouped by province, then category (:mod:`.filing_export`), optionally
        only what was filed in [since, until); the export is audited.

        ``actor`` None is the CLI (the system); an operator needs ``compliance``
        (regulator exports are compliance's).
        """
        if actor is not None:
            require_role(actor, Role.COMPLIANCE)
        start = regulator.parse_when(since, self.zone) if since else None
        end = regulator.parse_when(until, self.zone) if until else None
        if start is not None and end is not None and end <= start:
            raise BadRequest("until must be after since", Code.INVALID_PERIOD)
        records = [
            r
            for r in await self.filings(include_superseded=include_superseded)
            if (start is None or datetime.fromisoformat(r["filed_at"]) >= start)
            and (end is None or datetime.fromisoformat(r["filed_at"]) < end)
        ]
        export = filing_export.render(records, fmt, now=self.clock.now())
        await self._record_export(actor, fmt=fmt, count=export.count)
        return export

    async def _record_export(self, actor: Principal | None, *, fmt: str, count: int) -> None:
        """Write the export of the register to the audit chain (an operator, or the system for the CLI)."""
        now = self.clock.now()
        async with self.db.transaction() as conn:
            await audit.append(
                conn,
                at=now,
                actor_kind="operator" if actor else "system",
                actor_id=actor.id if actor else None,
                action="public_account.filings_export",
                subject=None,
                detail={"format": fmt, "records": count},
            )

    # == helpers ===============================================================================

    async def _account(self, conn, account_id: int, *, lock: bool = False) -> dict:
        row = await store.get_account(conn, account_id, lock=lock)
        if row is None:
            raise NotFound(f"no public account {account_id}", Code.PUBLIC_ACCOUNT_NOT_FOUND)
        return row

    async def _own(self, conn, user_id: int, account_id: int) -> dict:
        row = await self._account(conn, account_id)
        if row["owner_id"] != user_id:
            raise Forbidden("only the account's owner may do this", Code.NOT_ACCOUNT_OWNER)
        return row

    async def _public(self, conn, account_id: int, *, viewer_id: int | None) -> dict:
        """An account the viewer may see: approved or closed ones, and the viewer's own in any status."""
        row = await store.get_account(conn, account_id)
        if row is None or (row["status"] in (store.PENDING, store.REJECTED) and row["owner_id"] != viewer_id):
            raise NotFound(f"no public account {account_id}", Code.PUBLIC_ACCOUNT_NOT_FOUND)
        return row

    async def _facts(self, account_id: int) -> AccountFacts:
        facts = await self.cache.facts(account_id)
        assert facts is not None  # accounts are never deleted
        return facts

    async def _view(self, row: dict) -> PostView:
        facts = await self._facts(row["account_id"])
        source = None
        if row["source_url"] is not None:
            source = Source(row["source_name"], row["source_url"], row["source_author"], row["source_title"]).as_dict()
        return PostView(
            post_id=row["id"],
            position=row["position"],
            account_id=row["account_id"],
            account_name=facts.name,
            news_badge=badge(facts.permission),
            kind=row["kind"],
            title=row["title"],
            body=row["body"],
            posted_at=row["posted_at"].isoformat(),
            source=source,
        )

    async def _public_view(self, row: dict, *, count: int | None, filing: dict | None = None) -> dict:
        facts = await self._facts(row["id"])
        view = {
            "id": row["id"],
            "name": row["name"],
            "description": row["description"],
            "category": row["category"],
            "operator_name": row["operator_name"],
            "status": effective_status(row).value,
            "news_permission": facts.permission.value,
            "news_badge": badge(facts.permission),
            "created_at": _iso(row["created_at"]),
        }
        if count is not None:
            view["follower_count"] = count
        if filing is not None:
            view["filing_reference"] = filing["reference"]
        return view

    async def _owner_view(self, row: dict) -> dict:
        view = await self._public_view(row, count=None)
        view.update(
            owner_id=row["owner_id"],
            review_status=row["status"],
            review_reason=row["review_reason"],
            reviewed_at=_iso(row["reviewed_at"]),
            manual_review=row["manual_review"],
            review_flags=row["review_flags"],
            credit_code=row["credit_code"],
            licence_number=row["licence_number"],
            licence_expires_at=_iso(row["licence_expires_at"]),
            closed_at=_iso(row["closed_at"]),
        )
        return view

    def _change_view(self, c: dict) -> dict:
        return {
            "change_id": c["id"],
            "account_id": c["account_id"],
            "requested_by": c["requested_by"],
            **{k: c[k] for k in FILED_FACTS if k != "licence_expires_at"},
            "licence_expires_at": _iso(c["licence_expires_at"]),
            "status": c["status"],
            "manual_review": c["manual_review"],
            "review_flags": c["review_flags"],
            "review_reason": c["review_reason"],
            "created_at": _iso(c["created_at"]),
            "reviewed_at": _iso(c["reviewed_at"]),
        }

    def _approval_view(self, a: dict) -> dict:
        now = self.clock.now()
        return {
            "approval_id": a["id"],
            "account_id": a["account_id"],
            "reference": a["reference"],
            "scope": a["scope"],
            "expires_at": _iso(a["expires_at"]),
            "granted_by": a["granted_by"],
            "granted_at": _iso(a["granted_at"]),
            "revoked_at": _iso(a["revoked_at"]),
            "in_force": a["revoked_at"] is None and a["expires_at"] > now,
        }


def _filtered_text(title: str, body: str, source: Source | None) -> str:
    """Everything of a post the content filter reads, in one string."""
    parts = [title, body]
    if source is not None:
        parts += [source.name, source.author, source.title]
    return "\n".join(parts)


def _post_dict(view: PostView) -> dict:
    return {
        "post_id": view.post_id,
        "position": view.position,
        "account": {"id": view.account_id, "name": view.account_name, "news_badge": view.news_badge},
        "kind": view.kind,
        "title": view.title,
        "body": view.body,
        "posted_at": view.posted_at,
        "source": view.source,
    }


def _filing_view(r: dict) -> dict:
    view = {
        "reference": r["reference"],
        "revision": r["revision"],
        "category": r["category"],
        "account_id": r["account_id"],
        "account_name": r["account_name"],
        "operator_name": r["operator_name"],
        "credit_code": r["credit_code"],
        "licence_number": r["licence_number"],
        "filing_status": r["status"],
        "filed_at": _iso(r["filed_at"]),
        "filed_by": r["filed_by"],
        "superseded_at": _iso(r["superseded_at"]),
        "province": r.get("province"),
        "department": provinces.department(r.get("province")),
    }
    if "account_status" in r:
        closed = r["account_status"] == store.CLOSED or r["owner_status"] == UserStatus.CLOSED
        view["account_status"] = store.CLOSED if closed else r["account_status"]
    return view
