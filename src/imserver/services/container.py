"""The services of one node, built in one place and handed to the front ends.

:func:`build_services` is the bootstrap: it builds every service in dependency
order, each with what it needs passed in, and returns a fully built
:class:`Services`. Nothing is set after construction and nothing is looked up
late: the fan-out always goes through the cluster, over whichever broker is
configured (the one-process memory broker, or Redis for many nodes), so a node
alone and a node among many run the same code.

Front ends (REST, WebSocket, console, CLI) reach every use case through one
``Services``; they never build services themselves. The gateway passes in its
hub as the ``local`` node; the CLI, which has no connections, passes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ..broker import Broker, MemoryBroker, RedisBroker
from ..broker.ratelimit import RedisTokenBuckets
from ..broker.redis import DEFAULT_CHANNEL_PREFIX
from ..config import Settings
from ..domain.clock import Clock, SystemClock
from ..metrics import Metrics
from ..policy import DEFAULT_ORDER, Pipeline, Rate, RateLimits, baselines, builtin_checks, load_plugins, merge_registries
from ..policy.provider import ProviderProfile
from ..store.db import Database
from ..store import signing_key
from ..store.keyring import KeyRing
from .access_log import AccessLog
from ..domain.enums import Role
from .account_deletion import AccountDeletions
from .accounts import Accounts
from .second_factor import SecondFactor
from .signin_guard import SigninGuard, SigninLimits, failure_store
from .agreement import Agreements
from .audit import AuditLog
from .checkpoints import Checkpoints
from .cluster import Cluster, LocalNode, NoLocalNode
from .decision_log import DecisionLog
from .identity import Identities
from .messaging import Messaging
from .passwords import Passwords
from .policy_gate import PolicyGate, SharedLimits
from .public_account_cache import AccountCache
from .public_accounts import PublicAccounts
from .records import Records
from .queues import queue_stats
from .regulator import Regulator
from .report_desk import ReportDesk
from .reports import Reports
from .retention import LegalHolds, Retention, periods_from
from .sanctions import Sanctions
from .staffing import Staffing
from .subject_export import SubjectExport
from .terms import Terms
from .unit_of_work import AfterCommit, UnitOfWork
from .verifiers import build_verifier
from . import workbench
from .workbench import Workbench


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    db: Database
    clock: Clock
    node_id: str
    metrics: Metrics
    broker: Broker  # moves frames and invalidations between nodes (memory: this process only)
    cluster: Cluster  # local delivery plus the broker, both ways
    effects: AfterCommit  # what commits cause, run after them, here and on every node
    uow: UnitOfWork
    decisions: DecisionLog  # policy decisions, recorded in batches off the send path
    accounts: Accounts
    agreements: Agreements
    identities: Identities  # real name behind: submit, review, audited reads, key rotation
    audit: AuditLog  # the audit chain: read and verify
    policy: PolicyGate
    messaging: Messaging  # the send use case, sync, groups, held messages
    regulator: Regulator  # Art. 8 regulator outbox: export, webhook
    sanctions: Sanctions  # Art. 8 sanctions, appeals, expiry sweeper
    reports: Reports  # Art. 5 public reports
    terms: Terms  # content-filter term lists
    public_accounts: PublicAccounts  # Art. 7: review, filing, follows, posts
    report_desk: ReportDesk  # a report's content and author; resolve with a sanction
    workbench: Workbench  # operators' lists, user dossiers, content reads, operator accounts
    staffing: Staffing  # Art. 5: queues against the scale of the service
    records: Records  # the chain over every record table: sealer and verification
    access_log: AccessLog  # sign-ins, sign-outs, WebSocket sessions (network log)
    checkpoints: Checkpoints  # signed chain heads, to the regulator outbox
    retention: Retention  # the retention table and the purge job
    legal_holds: LegalHolds  # suspend purging what an inquiry needs
    deletions: AccountDeletions  # account deletion requests and erasure
    subject_export: SubjectExport  # everything about one user in a period

    async def start(self) -> None:
        """Start background work: the broker and the cluster, the writers, the sweepers."""
        await self.broker.start()
        await self.cluster.start()
        await self.decisions.start()
        await self.messaging.start()
        self.sanctions.start()
        await self.regulator.start()
        self.records.start()
        self.checkpoints.start()
        self.retention.start()
        self.metrics.refreshers.extend((self._refresh_report_metrics, self._refresh_provider_metrics))
        self.metrics.track_queues(
            lambda: queue_stats(self.db, self.clock),
            overdue_after=self.staffing.overdue_after.total_seconds(),
            now=lambda: self.clock.now().timestamp(),
        )
        # After the queue queries: they found out whether the database answers.
        self.metrics.refreshers.append(self._refresh_database_metric)

    async def stop(self) -> None:
        """Stop background work, committing what was accepted."""
        await self.retention.stop()
        await self.checkpoints.stop()
        await self.records.stop()
        await self.access_log.drain()
        await self.sanctions.stop()
        await self.regulator.stop()
        await self.messaging.stop()
        await self.decisions.stop()
        await self.cluster.stop()
        await self.broker.close()
        if self.policy.shared_limits is not None:
            await self.policy.shared_limits.close()
        await self.accounts.guard.store.close()

    def health(self) -> dict[str, str]:
        """Component health beside the database's, for /healthz (the broker only where it joins nodes)."""
        if not self.broker.reaches_other_nodes:
            return {}
        return {"broker": "ok" if self.broker.healthy else "down"}

    def provider(self) -> dict:
        """The provider's qualifications (Art. 4), as configured, with their validity now."""
        return self.public_accounts.provider.view(self.clock.now())

    async def _refresh_report_metrics(self) -> None:
        count, age = await self.reports.unresolved_stats()
        self.metrics.reports_open.set(count)
        self.metrics.reports_oldest_open_age.set(age)

    async def _refresh_provider_metrics(self) -> None:
        profile, now = self.public_accounts.provider, self.clock.now()
        self.metrics.news_qualified.set(1 if profile.news_qualified(now) else 0)
        expires = profile.news_licence_expires_at
        self.metrics.news_licence_expires_in.set((expires - now).total_seconds() if expires else 0)

    async def _refresh_database_metric(self) -> None:
        """imserver_database_up at each scrape, from the database's last unit of work."""
        self.metrics.db_up.set(1 if self.db.healthy else 0)


def provider_profile(settings: Settings) -> ProviderProfile:
    """The provider's qualifications (Art. 4) as configured."""
    return ProviderProfile(
        settings.provider_operator_name,
        settings.provider_icp_licence,
        settings.provider_news_licence,
        settings.provider_news_licence_expires_at,
    )


def rate_limits(settings: Settings) -> RateLimits:
    """The per-user rates from settings: the node's buckets and the cluster's shared ones use the same."""
    return RateLimits(
        messages=Rate(settings.rate_messages_burst, settings.rate_messages_per_second),
        posts=Rate(settings.rate_posts_burst, settings.rate_posts_per_second),
        restricted_group=Rate(settings.rate_restricted_burst, settings.rate_restricted_per_second),
    )


def build_pipeline(settings: Settings) -> Pipeline:
    registry = merge_registries(builtin_checks(None, rate_limits(settings)), load_plugins())
    return Pipeline.from_names(settings.policy_checks or DEFAULT_ORDER, registry)


def shared_rate_limits(settings: Settings, broker: Broker) -> SharedLimits | None:
    """The message and post buckets every node shares, in the broker's Redis; None without one."""
    if not isinstance(broker, RedisBroker) or not settings.rate_limits_shared:
        return None
    limits = rate_limits(settings)
    return RedisTokenBuckets(
        settings.broker_url,
        {"messages": limits.messages, "posts": limits.posts},
        prefix=settings.broker_channel_prefix or DEFAULT_CHANNEL_PREFIX,
    )
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


def build_services(
    settings: Settings,
    db: Database,
    clock: Clock | None = None,
    *,
    broker: Broker | None = None,
    local: LocalNode | None = None,
    metrics: Metrics | None = None,
) -> Services:
    """Build every service of a node, in dependency order (the bootstrap)."""
    clock = clock or SystemClock()
    broker = broker or MemoryBroker()
    metrics = metrics or Metrics()
    node_id = settings.resolved_node_id()
    metrics.bind_node(node_id)  # the connection gauge's node label

    # Delivery and invalidation first: every use case below reports through them.
    account_cache = AccountCache(db, clock)
    local = NoLocalNode() if local is None else local  # (an empty hub is falsy: it has a length)
    cluster = Cluster(local, broker, node_id, followers=account_cache.followers)
    effects = AfterCommit(cluster)
    uow = UnitOfWork(db, effects)
    decisions = DecisionLog(db, clock)
    policy = PolicyGate(
        db,
        clock,
        build_pipeline(settings),
        decisions,
        on_deny=metrics.hot.denied,
        shared_limits=shared_rate_limits(settings, broker),
    )

    passwords = Passwords(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
        min_score=settings.password_min_score,
    )
    keyring = KeyRing.from_config(
        master_keys=settings.master_keys,
        master_key_id=settings.master_key_id,
        hmac_key=settings.hmac_key,
        data_dir=settings.data_dir,
    )
    messaging = Messaging(
        db,
        clock,
        policy=policy,
        uow=uow,
        group_cap=settings.group_member_cap,
        max_batch=settings.batch_max_size,
        max_wait=settings.batch_max_wait_ms / 1000,
        lanes=settings.batch_lanes,
        groups_per_user=settings.max_groups_per_user,
        observe_batch=metrics.batch_size.observe,
        observe_commit=metrics.hot.committed,
        # Test-only, off by default: lets the durability harness prove it detects loss.
        unsafe_ack_before_commit=settings.unsafe_ack_before_commit,
        unsafe_commit_delay=settings.unsafe_commit_delay_ms / 1000,
    )
    regulator = Regulator(db, clock, settings)
    sanctions = Sanctions(
        db,
        clock,
        regulator=regulator,
        after_change=effects.policy_changed,
        emit=effects.notify,
        appeal_window=timedelta(days=settings.appeal_window_days),
        strike_window=timedelta(days=settings.strike_window_days),
        sweep_interval=settings.sanction_sweep_interval_seconds,
    )
    public_accounts = PublicAccounts(
        db,
        clock,
        policy=policy,
        effects=effects,
        cache=account_cache,
        per_user_cap=settings.public_accounts_per_user,
        local_zone=settings.local_timezone,
        provider=provider_profile(settings),
    )
    public_accounts.install_sanction_hooks(sanctions)  # subject kind "public_account"

    # Caches that drop facts when a commit here or on another node says they changed.
    reports = Reports(
        db,
        clock,
        emit=effects.notify,
        rate_limit=settings.report_rate_limit,
        rate_window=timedelta(seconds=settings.report_rate_window_seconds),
    )
    public_accounts.install_report_hooks(reports)  # target kind "post"
    accounts = Accounts(
        db,
        clock,
        passwords,
        token_ttl=timedelta(seconds=settings.token_ttl_seconds),
        effects=effects,
        guard=build_signin_guard(settings, clock),
        operator_token_ttl=timedelta(seconds=settings.operator_token_ttl_seconds),
        operator_idle=timedelta(seconds=settings.operator_idle_timeout_seconds),
        totp_required=frozenset(Role(r) for r in settings.operator_totp_required_roles),
        second_factor=SecondFactor(keyring),  # TOTP secrets are sealed by the identity key ring
    )

    for cache in (policy.invalidate, messaging.invalidate, account_cache.invalidate):
        effects.on_invalidate(cache)

    # Records: the chain's sealer, signed checkpoints of its head, retention and deletion.
    records = Records(db, clock, seal_interval=settings.record_seal_interval_seconds)
    deletions = AccountDeletions(db, clock, uow, identity_days=settings.retention_identity_days)

    return Services(
        settings=settings,
        db=db,
        clock=clock,
        node_id=node_id,
        metrics=metrics,
        broker=broker,
        cluster=cluster,
        effects=effects,
        uow=uow,
        decisions=decisions,
        accounts=accounts,
        agreements=Agreements(
            db, clock, effects=effects, baselines=baselines.configured(settings.agreement_baseline_phrases)
        ),
        identities=Identities(
            db,
            clock,
            keyring,
            build_verifier(settings.identity_verifier, settings.identity_verifier_url),
            max_accounts=settings.max_accounts_per_identity,
            effects=effects,
        ),
        audit=AuditLog(db, clock),
        policy=policy,
        messaging=messaging,
        regulator=regulator,
        sanctions=sanctions,
        reports=reports,
        terms=Terms(db, clock, changed=effects.terms_changed),
        public_accounts=public_accounts,
        report_desk=ReportDesk(db, clock, reports=reports, sanctions=sanctions),
        workbench=workbench.build(
            db,
            clock,
            sanctions=sanctions,
            accounts=accounts,
            effects=effects,
            compliance_grantors=tuple(settings.compliance_grantors),
        ),
        staffing=Staffing(
            db,
            clock,
            overdue_after=timedelta(seconds=settings.queue_age_warning_seconds),
            local_zone=settings.local_timezone,
        ),
        records=records,
        access_log=AccessLog(db, clock, node_id, on_drop=metrics.network_log_dropped.inc),
        checkpoints=Checkpoints(
            db,
            clock,
            records,
            lambda: signing_key.load(settings.checkpoint_key, settings.data_dir),
            node=node_id,
            interval_minutes=settings.checkpoint_interval_minutes,
            after_record=regulator.nudge,
        ),
        retention=Retention(
            db,
            clock,
            periods_from(settings),
            batch=settings.retention_purge_batch,
            interval_hours=settings.retention_purge_interval_hours,
            also=deletions.erase_due,
        ),
        legal_holds=LegalHolds(db, clock),
        deletions=deletions,
        subject_export=SubjectExport(db, clock, local_zone=settings.local_timezone),
    )
    return services
