"""Table definitions used to build queries.

The schema's only source is the Alembic migrations in ``imserver/migrations/``; these
definitions mirror them for the query builder, and ``tests/test_schema.py``
fails if the two drift apart.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from .types import Id, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# -- accounts ------------------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("handle", String(64), nullable=False, unique=True),  # normalised lower-case
    Column("nickname", String(64), nullable=False),  # front stage: free name
    Column("password_hash", String(255), nullable=False),
    Column("status", String(16), nullable=False),  # UserStatus
    Column("realname_status", String(16), nullable=False),  # RealNameStatus
    Column("agreement_version", Integer, nullable=True),  # last accepted version
    Column("created_at", UTCDateTime, nullable=False),
)

operators = Table(
    "operators",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("handle", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),  # Role given at creation; access reads operator_roles (0005)
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("must_change_password", Boolean, nullable=False),  # migration 0005: set by a password reset
    # Second factor (migration 0008): the TOTP secret sealed by the key ring.
    Column("totp_key_id", String(64), nullable=True),
    Column("totp_wrapped_key", LargeBinary, nullable=True),
    Column("totp_secret", LargeBinary, nullable=True),
    Column("totp_enabled_at", UTCDateTime, nullable=True),  # set once a code from it was proved
    Column("totp_last_step", Id, nullable=True),  # the 30 s step of the last code used to sign in
    # Four eyes on compliance operators: pending until a second admin confirms.
    Column("created_by", Id, nullable=True),
    Column("confirmed_by", Id, nullable=True),
    Column("confirmed_at", UTCDateTime, nullable=True),
    # A privileged role change awaiting confirmation: the role names it would set, comma-separated.
    Column("pending_roles", String(64), nullable=True),
    Column("pending_roles_by", Id, nullable=True),
)

# Migration 0005: the roles an operator holds, one row each.
operator_roles = Table(
    "operator_roles",
    metadata,
    Column("operator_id", Id, ForeignKey("operators.id"), primary_key=True),
    Column("role", String(16), primary_key=True),  # Role
)

# Bearer tokens of users and operators. Only the SHA-256 of a token is stored.
sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("principal_kind", String(16), nullable=False),  # PrincipalKind
    Column("principal_id", Id, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("scope", String(16), nullable=True),  # NULL: full session; "appeal": a closed account's appeal token
    Column("last_seen_at", UTCDateTime, nullable=True),  # operators: for the idle timeout (0008)
    Index("ix_sessions_principal", "principal_kind", "principal_id"),
)

# -- real name behind (Art. 6) ----------------------------------------------------

# One row per submission; users.realname_status carries the current state.
# Identity fields are sealed together in `ciphertext` (AES-256-GCM under a
# per-record data key, which is wrapped by master key `key_id`).
identities = Table(
    "identities",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("key_id", String(64), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("id_hmac", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False),  # RealNameStatus
    Column("submitted_at", UTCDateTime, nullable=False),
    Column("reviewed_at", UTCDateTime, nullable=True),
    Column("reviewer_id", Id, nullable=True),
    Column("review_note", Text, nullable=True),
)

# -- the agreement (Art. 6) ---------------------------------------------------------

agreement_versions = Table(
    "agreement_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("text", Text, nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("published_by", Id, nullable=True),  # operator; null for the built-in first version
    Column("effective_at", UTCDateTime, nullable=True),  # current from then; NULL: from publication
    Column("grace_until", UTCDateTime, nullable=True),  # earlier acceptances still send until then
)

agreement_acceptances = Table(
    "agreement_acceptances",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("version", Integer, ForeignKey("agreement_versions.version"), nullable=False),
    Column("accepted_at", UTCDateTime, nullable=False),
    Column("client_ip", String(64), nullable=True),
)

# -- the audit chain -------------------------------------------------------------------

# Append-only, hash-chained: hash = sha256(prev_hash || canonical row).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor_kind", String(16), nullable=False),  # operator | user | system
    Column("actor_id", Id, nullable=True),
    Column("action", String(64), nullable=False),
    Column("subject", String(128), nullable=True),
    Column("detail", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# -- chat ------------------------------------------------------------------------------

conversations = Table(
    "conversations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # ConversationKind
    Column("name", String(128), nullable=True),
    Column("created_by", Id, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # "lo:hi" user ids for direct conversations, so a pair has exactly one.
    Column("direct_key", String(64), nullable=True, unique=True),
)

conversation_members = Table(
    "conversation_members",
    metadata,
    Column("conversation_id", Id, ForeignKey("conversations.id"), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), primary_key=True),
    Column("role", String(16), nullable=False),  # owner | member
    Column("joined_at", UTCDateTime, nullable=False),
    Column("active", Boolean, nullable=False),
    Index("ix_conversation_members_user", "user_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("conversation_id", Id, ForeignKey("conversations.id"), nullable=False),
    Column("sender_id", Id, ForeignKey("users.id"), nullable=False),
    Column("client_msg_id", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),  # delivered | held | rejected
    Column("created_at", UTCDateTime, nullable=False),
    # Idempotent retry with no time window: a client_msg_id is stored once per sender.
    UniqueConstraint("sender_id", "client_msg_id", name="uq_messages_sender_client_msg"),
    Index("ix_messages_conversation", "conversation_id", "id"),
)

# A user's inbox stream: gap-free seq per user, positions taken from the
# counter row inside the committing transaction (docs/architecture.md, delivery model).
inbox = Table(
    "inbox",
    metadata,
    Column("user_id", Id, primary_key=True, autoincrement=False),
    Column("seq", Id, primary_key=True, autoincrement=False),
    Column("message_id", Id, ForeignKey("messages.id"), nullable=False),
    Index("ix_inbox_message", "message_id"),  # idempotent-retry lookups, takedowns
)

inbox_counters = Table(
    "inbox_counters",
    metadata,
    Column("user_id", Id, primary_key=True, autoincrement=False),
    Column("last_seq", Id, nullable=False),
    Column("received_seq", Id, nullable=False),  # cumulative `received` ack
)

read_marks = Table(
    "read_marks",
    metadata,
    Column("conversation_id", Id, primary_key=True, autoincrement=False),
    Column("user_id", Id, primary_key=True, autoincrement=False),
    Column("message_id", Id, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# -- policy (migration 0002) ---------------------------------------------------------------

# Append-only: confirming, lifting, expiring and overturning are sanction_events rows.
sanctions = Table(
    "sanctions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subject_kind", String(16), nullable=False),  # user | public_account
    Column("subject_id", Id, nullable=False),
    Column("kind", String(32), nullable=False),  # SanctionKind
    Column("reason", Text, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON
    Column("imposed_by", Id, nullable=False),
    Column("needs_confirmation", Boolean, nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_sanctions_subject", "subject_kind", "subject_id"),
)

sanction_events = Table(
    "sanction_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sanction_id", Id, ForeignKey("sanctions.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # confirmed | lifted | expired | appealed | upheld | overturned
    Column("operator_id", Id, nullable=True),
    Column("note", Text, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_sanction_events_sanction", "sanction_id"),
)

appeals = Table(
    "appeals",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sanction_id", Id, ForeignKey("sanctions.id"), nullable=False, unique=True),
    Column("user_id", Id, nullable=False),
    Column("text", Text, nullable=False),
    Column("filed_at", UTCDateTime, nullable=False),
    Column("decision", String(16), nullable=True),
    Column("decided_by", Id, nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("note", Text, nullable=True),
)

reports = Table(
    "reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("reporter_id", Id, nullable=False),
    Column("target_kind", String(16), nullable=False),
    Column("target_id", Id, nullable=False),
    Column("category", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("assignee_id", Id, nullable=True),
    Column("sanction_id", Id, nullable=True),
    Column("resolution_note", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("joined_to", Id, nullable=True),  # the open report on the same target this one joined
    Index("ix_reports_status", "status", "created_at"),
    Index("ix_reports_target", "target_kind", "target_id", "status"),
    Index("ix_reports_reporter", "reporter_id", "created_at"),
)

regulator_outbox = Table(
    "regulator_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("record_kind", String(32), nullable=False),
    Column("sanction_id", Id, nullable=True),  # NULL for records not about a sanction (filings)
    Column("payload", Text, nullable=False),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("exported_at", UTCDateTime, nullable=True),  # first delivered by an export
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Index("ix_regulator_outbox_created", "created_at"),
)

filter_terms = Table(
    "filter_terms",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("term", String(200), nullable=False),
    Column("action", String(8), nullable=False),
    Column("list_name", String(64), nullable=False),
    Column("created_by", Id, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("list_name", "term", name="uq_filter_terms_list_name"),
)

policy_decisions = Table(
    "policy_decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, nullable=False),
    Column("outgoing_kind", String(16), nullable=False),
    Column("outcome", String(8), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("check_name", String(64), nullable=False),
    Column("detail", Text, nullable=True),
    Column("message_id", Id, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("review", String(16), nullable=True),
    Column("reviewed_by", Id, nullable=True),
    Column("reviewed_at", UTCDateTime, nullable=True),
    Index("ix_policy_decisions_user", "user_id", "at"),
    Index("ix_policy_decisions_review", "outcome", "review"),
)

# -- public accounts (migration 0003; Art. 7) ------------------------------------------------

public_accounts = Table(
    "public_accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("owner_id", Id, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("name_key", String(64), nullable=False, index=True),  # NFKC, case-folded
    Column("description", Text, nullable=False),
    Column("category", String(32), nullable=False),  # AccountCategory
    Column("operator_name", String(128), nullable=True),
    Column("credit_code", String(18), nullable=True),
    Column("licence_number", String(64), nullable=True),
    Column("licence_expires_at", UTCDateTime, nullable=True),
    Column("status", String(16), nullable=False),  # PublicAccountStatus
    Column("status_before_close", String(16), nullable=True),
    Column("manual_review", Boolean, nullable=False),
    Column("review_flags", Text, nullable=False),  # JSON list
    Column("reviewer_id", Id, nullable=True),
    Column("review_reason", Text, nullable=True),
    Column("reviewed_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("province", String(2), nullable=True),  # GB/T 2260 province registered in (Art. 3)
    Index("ix_public_accounts_status", "status", "id"),
)

public_account_filings = Table(
    "public_account_filings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("public_accounts.id"), nullable=False, index=True),
    Column("reference", String(32), nullable=False, unique=True),
    Column("revision", Integer, nullable=False),
    Column("category", String(32), nullable=False),
    Column("account_name", String(64), nullable=False),
    Column("operator_name", String(128), nullable=True),
    Column("credit_code", String(18), nullable=True),
    Column("licence_number", String(64), nullable=True),
    Column("status", String(16), nullable=False),  # filed | superseded
    Column("filed_at", UTCDateTime, nullable=False),
    Column("filed_by", Id, nullable=False),
    Column("superseded_at", UTCDateTime, nullable=True),
    Column("province", String(2), nullable=True),  # GB/T 2260; the department it is filed with (Art. 3)
    Index("ix_public_account_filings_category", "category", "id"),
)

news_approvals = Table(
    "news_approvals",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("public_accounts.id"), nullable=False, index=True),
    Column("reference", String(64), nullable=False),
    Column("scope", String(16), nullable=False),  # publish | reprint
    Column("expires_at", UTCDateTime, nullable=False),
    Column("granted_by", Id, nullable=False),
    Column("granted_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_by", Id, nullable=True),
    Column("revoke_reason", Text, nullable=True),
)

public_account_follows = Table(
    "public_account_follows",
    metadata,
    Column("account_id", Id, ForeignKey("public_accounts.id"), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_public_account_follows_user", "user_id", "account_id"),
)

# The single counter row of the global posts stream (id 1, seeded by the migration).
posts_stream = Table(
    "posts_stream",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_position", Id, nullable=False),
)

posts = Table(
    "posts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("position", Id, nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("public_accounts.id"), nullable=False),
    Column("author_id", Id, nullable=False),
    Column("kind", String(16), nullable=False),  # PostKind
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("source_name", String(200), nullable=True),
    Column("source_url", String(2048), nullable=True),
    Column("source_author", String(200), nullable=True),
    Column("source_title", String(200), nullable=True),
    Column("posted_at", UTCDateTime, nullable=False),
    Column("taken_down_at", UTCDateTime, nullable=True),
    Column("taken_down_by_kind", String(16), nullable=True),
    Column("taken_down_by", Id, nullable=True),
    Column("takedown_reason", Text, nullable=True),
    Index("ix_posts_account", "account_id", "position"),
)

public_account_changes = Table(
    "public_account_changes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("public_accounts.id"), nullable=False, index=True),
    Column("requested_by", Id, nullable=False),
    Column("name", String(64), nullable=False),
    Column("category", String(32), nullable=False),
    Column("operator_name", String(128), nullable=True),
    Column("credit_code", String(18), nullable=True),
    Column("licence_number", String(64), nullable=True),
    Column("licence_expires_at", UTCDateTime, nullable=True),
    Column("status", String(16), nullable=False),  # pending | approved | rejected
    Column("manual_review", Boolean, nullable=False),
    Column("review_flags", Text, nullable=False),
    Column("reviewer_id", Id, nullable=True),
    Column("review_reason", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("reviewed_at", UTCDateTime, nullable=True),
    Index("ix_public_account_changes_status", "status", "id"),
)

# -- records (migration 0007): one chain over every record table ------------------------------

# One entry per insert, chained update and purge of a record row, written by triggers;
# the sealer sets seq, digest and the chain hash (store/chain.py).
record_chain = Table(
    "record_chain",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("table_name", String(64), nullable=False),
    Column("row_id", Id, nullable=False),
    Column("op", String(8), nullable=False),  # insert | update | delete
    Column("seq", Id, nullable=True, unique=True),
    Column("digest", String(64), nullable=True),
    Column("prev_hash", String(64), nullable=True),
    Column("hash", String(64), nullable=True),
    Index("ix_record_chain_row", "table_name", "row_id"),
)

# SQLite: the one row the delete guards check; the retention purge opens it in its transaction.
record_purge_gate = Table(
    "record_purge_gate",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("open", Integer, nullable=False),
)

# Sign-ins, failed sign-ins, sign-outs and WebSocket sessions (network log).
access_log = Table(
    "access_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("event", String(24), nullable=False),  # AccessEvent
    Column("principal_kind", String(16), nullable=False),  # user | operator
    Column("principal_id", Id, nullable=True),  # null: a failed sign-in under an unknown handle
    Column("handle", String(64), nullable=True),
    Column("ip", String(64), nullable=True),
    Column("user_agent", String(256), nullable=True),
    Column("node", String(128), nullable=False),
    Column("connection", String(32), nullable=True),  # pairs a WebSocket session's start and end
    Column("close_code", Integer, nullable=True),
    Column("detail", String(64), nullable=True),
    Index("ix_access_log_principal", "principal_kind", "principal_id", "at"),
    Index("ix_access_log_at", "at"),
)

legal_holds = Table(
    "legal_holds",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subject_kind", String(16), nullable=False),  # user | conversation | public_account
    Column("subject_id", Id, nullable=False),
    Column("reason", Text, nullable=False),
    Column("placed_by", Id, nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("released_by", Id, nullable=True),
    Column("released_at", UTCDateTime, nullable=True),
    Column("release_reason", Text, nullable=True),
    Index("ix_legal_holds_subject", "subject_kind", "subject_id"),
)

account_deletions = Table(
    "account_deletions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, nullable=False, unique=True),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("erase_after", UTCDateTime, nullable=False),
    Column("erased_at", UTCDateTime, nullable=True),
)

# Signed chain heads (Ed25519), also sent to the regulator outbox.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("node", String(128), nullable=False),
    Column("chain_seq", Id, nullable=False),
    Column("chain_hash", String(64), nullable=False),
    Column("audit_id", Id, nullable=False),
    Column("audit_hash", String(64), nullable=False),
    Column("public_key", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
)
