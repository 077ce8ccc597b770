"""The service container built by the composition root (app.py) and handed to front ends.

Front ends (REST, WebSocket) reach every use case through one ``Services``;
they never build services themselves.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from ..config import Settings
from ..domain.clock import Clock, SystemClock
from ..domain.errors import PolicyDenied
from ..domain.policy_types import Outgoing, OutgoingKind
from ..domain.principals import Principal
from ..policy import DEFAULT_ORDER, Pipeline, Rate, RateLimits, builtin_checks, load_plugins, merge_registries
from ..store.db import Database
from ..store.keyring import KeyRing
from ..domain.enums import Role
from .accounts import Accounts
from .second_factor import SecondFactor
from .signin_guard import SigninGuard, SigninLimits, failure_store
from .agreement import Agreements
from .identity import Identities  # real name behind (issue 2, item 4)
from .audit import AuditLog
from .messaging import Messaging
from .policy_gate import PolicyGate
from .passwords import Passwords
from .verifiers import build_verifier
from . import operator_side  # sanctions, appeals, reports, terms, regulator (issue 4, operator side)
from .regulator import Regulator
from .reports import Reports
from .sanctions import Sanctions
from .terms import Terms
from .public_accounts import PublicAccounts  # Art. 7 public accounts (issue 5)

# Special ids for after_policy_change: every user's snapshot is stale (a new
# agreement version), or the content filter's term lists changed.
ALL_USERS = 0
TERMS_CHANGED = -1

# Called after a commit that changes what a user may do (policy snapshot) or
# revokes a token; the gateway subscribes to close sockets and drop caches.
PolicyListener = Callable[[int], Awaitable[None]]
TokenListener = Callable[[str], Awaitable[None]]


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    accounts: Accounts
    agreements: Agreements
    identities: Identities  # real name behind: submit, review, audited reads, key rotation
    audit: AuditLog  # the audit chain: read and verify (issue 2, item 7)
    messaging: Messaging
    policy: PolicyGate
    node_id: str
    broker: object = None  # imserver.broker.Broker, started by start()
    cluster: object = None  # ClusterFanout when other nodes share a broker
    metrics: object = None  # imserver.metrics.Metrics, set by the composition root
    policy_listeners: list[PolicyListener] = field(default_factory=list)
    token_listeners: list[TokenListener] = field(default_factory=list)
    # Operator side of issue 4: they call back into this container, so
    # operator_side.wire builds them once the container exists.
    sanctions: Sanctions = field(init=False)  # Art. 8 sanctions, appeals, expiry sweeper
    reports: Reports = field(init=False)  # Art. 5 public reports
    terms: Terms = field(init=False)  # content-filter term lists
    regulator: Regulator = field(init=False)  # Art. 8 regulator outbox: export, webhook
    public_accounts: PublicAccounts = field(init=False)  # Art. 7: review, filing, follows, posts (issue 5)

    def __post_init__(self) -> None:
        operator_side.wire(self)
        self.public_accounts = PublicAccounts(
            self.db,
            self.clock,
            policy=self.policy,
            after_change=self.after_policy_change,
            # The fan-out is chosen by the composition root after building: look it up per event.
            emit_post=lambda event: self.messaging.fanout.post(event),
            per_user_cap=self.settings.public_accounts_per_user,
        )
        self.public_accounts.install_sanction_hooks(self.sanctions)  # subject kind "public_account"

    async def start(self) -> None:
        """Start background work (writers, expiry sweeps, broker subscriptions)."""
        if self.metrics is not None:
            self.messaging.writer.observe_batch = self.metrics.batch_size.observe
        self.policy_listeners.append(self._drop_user_cache)
        self.policy_listeners.append(self.public_accounts.on_policy_change)  # account snapshots, follower sets
        if self.broker is not None:
            await self.broker.start()
        if self.cluster is not None:
            self.cluster.on_policy(self._local_policy_change)
            self.cluster.on_token(self._local_token_revoked)
            await self.cluster.start()
        await self.messaging.start()
        await operator_side.start(self)  # expiry sweeper, regulator webhook, report metrics
        if self.cluster is not None:  # follower-set invalidations to and from the other nodes
            await self.public_accounts.cache.attach(self.broker, self.node_id)

    async def stop(self) -> None:
        """Stop background work, flushing what was accepted."""
        await operator_side.stop(self)
        await self.public_accounts.cache.detach()
        await self.messaging.stop()
        if self.cluster is not None:
            await self.cluster.stop()
        if self.broker is not None:
            await self.broker.close()
        if self.accounts.guard is not None:
            await self.accounts.guard.store.close()

    async def _drop_user_cache(self, user_id: int) -> None:
        if user_id == TERMS_CHANGED:
            await self.policy.reload_terms()
            return
        self.messaging.invalidate_user(user_id)
        self.policy.invalidate(user_id)

    async def send_message(
        self, *, sender_id: int, client_msg_id: str, to_kind: str, to_id: int, body: str, origin: int = 0
    ) -> tuple[asyncio.Future, object]:
        """The send use case up to the queue: policy, then the group-commit writer.

        A denied send raises PolicyDenied (recorded, nothing stored); a held one
        is stored as held and not delivered. Returns (a future of the Stored
        message, resolved after the commit; the policy Decision or None).
        """
        kind = OutgoingKind.MESSAGE_GROUP if to_kind == "group" else OutgoingKind.MESSAGE_DIRECT
        outgoing = Outgoing(kind, sender_id, body)
        try:
            verdict = await self.policy.check(outgoing)
        except PolicyDenied:
            # A retry of a send stored before the refusal applied (say, before a
            # sanction) gets its first ack back, not the refusal. Looked up only
            # on a deny, so the hot path pays nothing for it.
            stored = await self.messaging.find_sent(sender_id, client_msg_id)
            if stored is None:
                raise
            done = asyncio.get_running_loop().create_future()
            done.set_result(stored)
            return done, None
        future = await self.messaging.enqueue(
            sender_id=sender_id,
            client_msg_id=client_msg_id,
            to_kind=to_kind,
            to_id=to_id,
            body=body,
            origin=origin,
            held=verdict.held,
        )
        if verdict.held:  # rare: the decision is recorded against the stored message
            future = asyncio.ensure_future(self._record_held(future, outgoing, verdict))
        return future, verdict.decision

    async def _record_held(self, future: asyncio.Future, outgoing: Outgoing, verdict):
        stored = await future
        if not stored.duplicate:
            await self.policy.record(outgoing, verdict.decision, message_id=stored.message_id)
        return stored

    def health(self) -> dict[str, str]:
        """Component health beside the database's, for /healthz."""
        if self.cluster is None or self.broker is None:
            return {}
        return {"broker": "ok" if self.broker.healthy else "down"}

    async def agreement_current(self) -> dict:
        return await self.agreements.current()

    async def after_policy_change(self, *, user_id: int) -> None:
        """After a commit that changed what `user_id` may do (0: everyone), on every node."""
        await self._local_policy_change(user_id)
        if self.cluster is not None:
            self.cluster.policy_changed(user_id)

    async def after_token_revoked(self, principal: Principal) -> None:
        await self._local_token_revoked(principal.token_hash)
        if self.cluster is not None:
            self.cluster.token_revoked(principal.token_hash)

    async def after_broker_reconnect(self) -> None:
        """The broker is back: invalidations other nodes published meanwhile were lost, so forget every cached fact.

        (Issue 6: a sanction applied through another node while Redis was away
        takes effect here once it is back, instead of never.)
        """
        await self._local_policy_change(ALL_USERS)
        await self._local_policy_change(TERMS_CHANGED)

    async def _local_policy_change(self, user_id: int) -> None:
        for listener in self.policy_listeners:
            await listener(user_id)

    async def _local_token_revoked(self, token_hash: str) -> None:
        for listener in self.token_listeners:
            await listener(token_hash)


def build_pipeline(settings: Settings) -> Pipeline:
    limits = RateLimits(
        messages=Rate(settings.rate_messages_burst, settings.rate_messages_per_second),
        posts=Rate(settings.rate_posts_burst, settings.rate_posts_per_second),
        restricted_group=Rate(settings.rate_restricted_burst, settings.rate_restricted_per_second),
    )
    registry = merge_registries(builtin_checks(None, limits), load_plugins())
    return Pipeline.from_names(settings.policy_checks or DEFAULT_ORDER, registry)


def build_signin_guard(settings: Settings, clock: Clock) -> SigninGuard:
    """Sign-in throttling with the configured limits, counted cluster-wide when the broker is Redis."""
    store = failure_store(settings.broker_url, settings.broker_channel_prefix, settings.signin_forget_after_seconds)
    limits = SigninLimits(
        account_free=settings.signin_free_failures_per_account,
        ip_free=settings.signin_free_failures_per_ip,
        base_delay=settings.signin_base_delay_seconds,
        max_delay=settings.signin_max_delay_seconds,
        forget_after=settings.signin_forget_after_seconds,
    )
    return SigninGuard(store, clock, limits)


def build_services(settings: Settings, db: Database, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    passwords = Passwords(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
        min_score=settings.password_min_score,
    )
    services = Services(
        settings=settings,
        db=db,
        clock=clock,
        accounts=Accounts(
            db,
            clock,
            passwords,
            token_ttl=timedelta(seconds=settings.token_ttl_seconds),
            guard=build_signin_guard(settings, clock),
            operator_token_ttl=timedelta(seconds=settings.operator_token_ttl_seconds),
            operator_idle=timedelta(seconds=settings.operator_idle_timeout_seconds),
            totp_required=frozenset(Role(r) for r in settings.operator_totp_required_roles),
            compliance_grantors=tuple(settings.compliance_grantors),
        ),
        agreements=Agreements(db, clock),
        identities=Identities(
            db,
            clock,
            KeyRing.from_config(
                master_keys=settings.master_keys,
                master_key_id=settings.master_key_id,
                hmac_key=settings.hmac_key,
                data_dir=settings.data_dir,
            ),
            build_verifier(settings.identity_verifier, settings.identity_verifier_url),
            max_accounts=settings.max_accounts_per_identity,
        ),
        audit=AuditLog(db, clock),
        messaging=Messaging(
            db,
            clock,
            group_cap=settings.group_member_cap,
            max_batch=settings.batch_max_size,
            max_wait=settings.batch_max_wait_ms / 1000,
            # Test-only, off by default: lets the durability harness prove it detects loss.
            unsafe_ack_before_commit=settings.unsafe_ack_before_commit,
            unsafe_commit_delay=settings.unsafe_commit_delay_ms / 1000,
            groups_per_user=settings.max_groups_per_user,
        ),
        policy=PolicyGate(db, clock, build_pipeline(settings)),
        node_id=settings.node_id or f"{socket.gethostname()}-{os.getpid()}",
    )
    # TOTP secrets are sealed by the identity key ring.
    services.accounts.second_factor = SecondFactor(services.identities.keyring)
    return services
