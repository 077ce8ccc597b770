"""Settings, read from ``IMSERVER_*`` environment variables (and an optional ``.env``).

Settings are built once, in :mod:`imserver.app` or :mod:`imserver.cli`, and passed
down; nothing below the composition root imports this module's instance.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMSERVER_", env_file=".env", extra="ignore")

    # -- where things live -------------------------------------------------
    # The embedded default: one SQLite file under data_dir, no setup needed.
    data_dir: Path = Path("./data")
    # Empty means sqlite+aiosqlite:///<data_dir>/imserver.db.
    database_url: str = ""
    # "memory://" (one process) or "redis://host:port/db" (many nodes).
    broker_url: str = "memory://"
    # Redis channels are global to a Redis server (not per db number): deployments
    # (or test runs) sharing one Redis need different prefixes. Empty: "imserver:".
    broker_channel_prefix: str = ""
    node_id: str = ""  # empty: hostname-pid

    # -- serving ------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 8000
    migrate_on_start: bool = True
    # WebSocket upgrades are refused (403) unless Origin is listed here; a client
    # that sends no Origin (a native app, not a browser) is allowed.
    allowed_origins: list[str] = Field(default_factory=lambda: ["http://localhost", "http://127.0.0.1"])

    # -- SQLite durability --------------------------------------------------
    # FULL fsyncs the WAL on every commit, so an acknowledged message survives a
    # power cut. NORMAL is only safe against process crashes; OFF exists so the
    # durability test can prove that it detects loss.
    sqlite_synchronous: str = "FULL"

    # -- secrets ------------------------------------------------------------
    # Master keys wrap the per-record data keys of identity data. Format:
    # "kid1:<base64 32 bytes>,kid2:<base64 32 bytes>"; the active key is
    # master_key_id (default: the last listed). Empty: a key file under data_dir
    # is created on first start (0600), so a new user runs with no setup.
    master_keys: str = ""
    master_key_id: str = ""
    # Key for the HMAC of ID numbers (uniqueness without decryption). It never
    # rotates with the master key: rotating it would break the uniqueness index.
    hmac_key: str = ""

    # -- accounts -------------------------------------------------------------
    token_ttl_seconds: int = 30 * 24 * 3600  # 30 days, like a phone app session
    # Art. 6: how many accounts one verified identity may back.
    max_accounts_per_identity: int = 5
    # "review" (queue for the reviewer role) or "http" (identity_verifier_url).
    identity_verifier: str = "review"
    identity_verifier_url: str = ""
    # argon2id parameters; OWASP's minimum is m=19 MiB, t=2, p=1.
    argon2_memory_kib: int = 19 * 1024
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1

    # -- messaging -------------------------------------------------------------
    group_member_cap: int = 500  # bounds fan-out-on-write per message
    max_frame_bytes: int = 64 * 1024
    max_body_chars: int = 8000
    # Per-connection outbound queue, in bytes of encoded frames. A client further
    # behind than this is closed (4008) and resumes by cursor.
    outbound_queue_bytes: int = 1024 * 1024
    auth_timeout_seconds: float = 10.0
    ping_interval_seconds: float = 20.0
    ping_timeout_seconds: float = 20.0
    # Group commit: a batch closes after this many sends or this much waiting.
    batch_max_size: int = 256
    batch_max_wait_ms: float = 2.0
    # PostgreSQL: batches in flight at once, each on a connection of its own (a
    # sender always uses the same one, so its order holds). Three keep a 2-core
    # database busy while one batch's round trip is on the wire; more only add
    # lock waits on shared recipients. SQLite has one writer: always 1.
    batch_lanes: int = Field(default=3, ge=1, le=16)
    # TEST-ONLY, breaks the durability guarantee on purpose: acks (and fan-out)
    # are sent after a batch's statements ran but before its commit, which then
    # waits unsafe_commit_delay_ms. A SIGKILL in that window loses acknowledged
    # messages, so the durability harness (`imserver durability --unsafe`) can
    # prove it detects loss. Never turn it on for real traffic.
    unsafe_ack_before_commit: bool = False
    unsafe_commit_delay_ms: float = 50.0  # the ack-to-commit window in unsafe mode

    # -- sanctions, appeals, regulator (operator side; Art. 8) --------------------
    # How long a sanctioned user has to appeal, counted from the sanction's start.
    appeal_window_days: int = 20
    # How often the sweeper looks for sanctions whose end has passed: the upper
    # bound on how late an expiry is written (the pure checks already stop
    # enforcing at ends_at; the sweep writes the record and the regulator report).
    sanction_sweep_interval_seconds: float = 1.0
    # The escalation hint counts strikes over this many days.
    strike_window_days: int = 90
    # Empty: no webhook; records wait in the outbox for export.
    regulator_webhook_url: str = ""
    regulator_webhook_timeout_seconds: float = 10.0
    # How often the deliverer polls for due records (it is also woken on each new record).
    regulator_delivery_interval_seconds: float = 1.0
    # Retry backoff: base * 2**(attempts-1), capped; an hour keeps a long outage cheap.
    regulator_retry_base_seconds: float = 2.0
    regulator_retry_max_seconds: float = 3600.0

    # -- the policy pipeline ----------------------------------------------------------
    # Check names in order; empty: the built-in order (policy.DEFAULT_ORDER). Plugin
    # checks from the `imserver.policy` entry-point group are named here to run.
    policy_checks: list[str] = Field(default_factory=list)
    # Per-user token buckets: bursts, then a sustained rate. Defaults suit a
    # person typing, not a bot; a load test raises them.
    rate_messages_burst: float = 30
    rate_messages_per_second: float = 1.0
    rate_posts_burst: float = 10
    rate_posts_per_second: float = 1 / 60
    # Group messages of a user under "restrict publication" (Art. 8).
    rate_restricted_burst: float = 3
    rate_restricted_per_second: float = 1 / 60

    # -- public accounts (Art. 7) -------------------------------------------------------
    # Accounts (pending or approved) one user may hold before a new application is
    # flagged for manual review; not a refusal, a reviewer decides.
    public_accounts_per_user: int = 5

    # -- the operator console (/console) ---------------------------------------------------
    console_enabled: bool = True
    # Signs the console's session and CSRF values (base64, >= 32 bytes). Empty:
    # derived from the HMAC key (environment or key file), so every node agrees.
    console_session_key: str = ""
    # A console session unused for this long is signed out (its token revoked).
    console_idle_timeout_seconds: int = 15 * 60
    # Dates and times on console pages are shown in this IANA time zone.
    console_time_zone: str = "Asia/Shanghai"
    # -- due process (Art. 5, Art. 8) -------------------------------------------------------
    # Reports one user may file per window: enough for a person who sees much abuse,
    # too few to flood the moderators' queue.
    report_rate_limit: int = 20
    report_rate_window_seconds: int = 3600
    # Accepted phrasings per baseline key (policy/baselines.py), replacing the built-in
    # Chinese and English ones for the keys given; e.g. {"public_order": ["public order", "社会公共秩序"]}.
    agreement_baseline_phrases: dict[str, list[str]] = Field(default_factory=dict)
    # Times without a zone in export periods (CLI and HTTP) are read in this zone
    # (an IANA name; a provider in mainland China would set Asia/Shanghai).
    local_timezone: str = "UTC"

    # -- the provider's qualifications (Art. 4), shown at GET /api/v1/provider ----------------
    provider_operator_name: str = ""
    provider_icp_licence: str = ""  # ICP licence number
    # The Internet news information service licence: public accounts are off without a
    # valid one (applications and posts answer news_service_unqualified).
    provider_news_licence: str = ""
    provider_news_licence_expires_at: datetime | None = None

    # -- staffing (Art. 5) -------------------------------------------------------------------
    # A queue whose oldest open item is older than this raises imserver_queue_overdue:
    # a day is the longest a report or a held message should wait for a person.
    queue_age_warning_seconds: int = 86400

    # -- records: chain, sign-in log, checkpoints, retention -------------------------------
    # How often pending record-chain entries are sealed: the chain's merge delay, the
    # window in which a just-written record is not yet covered by a hash.
    record_seal_interval_seconds: float = 1.0
    # Addresses or CIDR blocks of the reverse proxies in front of the nodes. Only
    # from them is X-Forwarded-For believed (its rightmost untrusted hop is the
    # client); every recorded client IP (sign-ins, agreement, WebSocket) uses it.
    # Empty: the TCP peer is the client.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Ed25519 key signing record checkpoints: base64 of the 32-byte seed, the same on
    # every node. Empty: <data_dir>/checkpoint.key, created on first use.
    checkpoint_key: str = ""
    # How often a signed checkpoint of the chain heads is taken and sent to the
    # regulator outbox (0: only on demand). Bounds what a truncation could hide.
    checkpoint_interval_minutes: float = 60.0
    # Retention (domain/retention.py has the table and each kind's legal floor; a
    # period under its floor makes the purge refuse with retention_below_minimum).
    retention_messages_days: float = 180  # messages and posts: six months, the floor
    retention_posts_days: float = 180
    retention_access_log_days: float = 180  # sign-in and network logs: six months, the floor
    retention_policy_decisions_days: float = 180
    retention_sanctions_years: float = 3  # ended sanctions with events, appeals, regulator records
    retention_audit_years: float = 3  # the audit log, oldest rows first (the chain stays whole)
    retention_identity_days: float = 30  # identity data of a deleted account, from the request
    retention_purge_batch: int = 1000  # rows per purge transaction: bounds each lock and each record
    retention_purge_interval_hours: float = 24  # 0: purge only on demand (imserver retention purge)

    # -- hardening: sign-in, sessions, limits ------------------------------------------------
    # Sign-in throttling (services/signin_guard.py): after this many failed
    # sign-ins an account (handle) or a client address must wait before its next
    # attempt; the wait starts at signin_base_delay_seconds and doubles with each
    # further failure up to signin_max_delay_seconds. Attempts refused while
    # waiting are 429s that check no password and do not lengthen the wait, so
    # nobody can lock an account out: the right password works once the wait is
    # over. A 60 s cap allows at most 60 guesses an hour per account (ASVS 2.2.1: < 100).
    signin_free_failures_per_account: int = 5
    signin_free_failures_per_ip: int = 20  # addresses are shared (NAT): a larger allowance
    signin_base_delay_seconds: float = 1.0
    signin_max_delay_seconds: float = 60.0
    # Failures older than this are forgotten (a quiet hour resets an account's count).
    signin_forget_after_seconds: float = 3600.0
    # Minimum zxcvbn score (0-4) of a new password; 2 refuses common passwords
    # (zxcvbn's lists hold the most used ones) and other easily guessed ones.
    password_min_score: int = 2
    # Operator tokens last a working day, not the users' 30 days, and end sooner
    # when unused for operator_idle_timeout_seconds.
    operator_token_ttl_seconds: int = 8 * 3600
    operator_idle_timeout_seconds: int = 30 * 60
    # Roles that must sign in with a TOTP second factor (e.g. ["admin", "compliance"]);
    # until enrolled, such an operator may only enrol. Empty: TOTP is optional.
    operator_totp_required_roles: list[str] = Field(default_factory=list)
    # Admin handles that may grant the compliance role (still confirmed by a second
    # admin). Empty: any admin may grant it, with a second admin's confirmation.
    compliance_grantors: list[str] = Field(default_factory=list)
    # WebSocket frames a connection may send, control frames (pings) included
    # (gateway/ws_limits.py): a burst, then a sustained rate; past it the socket
    # is closed with 1008. Far above any client's need (a person's messages, typing
    # and read receipts, a ping every 20 s); a load test may raise them.
    ws_frames_burst: float = 2000
    ws_frames_per_second: float = 1000
    # A peer whose unread output is over this when it sends another frame is
    # closed (1008) and its buffer dropped: 4x the gateway's own write high-water
    # mark, so a slow reader is first handled by the outbox (4008).
    ws_write_buffer_limit: int = 1024 * 1024
    # HTTP (api/http_limits.py): request bodies over the cap are refused (413)
    # before they are read: 64 KiB for most routes, http_max_body_bytes for the
    # few that carry long text (an agreement, a post, a bulk term list).
    http_max_body_bytes: int = 1024 * 1024
    http_max_body_bytes_default: int = 64 * 1024
    # A request's headers must be complete this long after the connection opens
    # (or the previous answer); its body must keep arriving with no gap longer
    # than http_body_timeout_seconds. 408 otherwise.
    http_header_timeout_seconds: float = 10.0
    http_body_timeout_seconds: float = 10.0
    # Groups one user may create; bounds fan-out state a single account can build up.
    max_groups_per_user: int = 100

    def resolved_node_id(self) -> str:
        """This node's name in logs, metrics and the hello frame: node_id, or hostname-pid."""
        import os
        import socket

        return self.node_id or f"{socket.gethostname()}-{os.getpid()}"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'imserver.db').as_posix()}"

    # -- operating (logs, health, shutdown) ------------------------------------------
    # "json" (one object per line), "text" (readable), or empty: text when stderr
    # is a terminal, JSON otherwise (containers, systemd, log collectors).
    log_format: str = ""
    log_level: str = "info"  # debug, info, warning, error
    # /readyz fails while the broker is down only when this is true; by default a
    # Redis outage is reported there but keeps the node in rotation (it still
    # serves its own clients, and every node is hit alike).
    broker_required: bool = False
    # SIGTERM: how long the node waits for its connections to take the shutdown
    # notice and close, and for acknowledged writes to finish, before it exits
    # anyway. Keep it under the orchestrator's kill timeout (Kubernetes: 30 s).
    shutdown_grace_seconds: float = 10.0
    # With a Redis broker, the message and post rate limits also hold across the
    # cluster (a bucket per user in Redis, beside each node's own); false keeps
    # them per node. Without Redis they are per node whatever this says.
    rate_limits_shared: bool = True
