"""Table definitions used to build queries.

The schema's only source is the Alembic migrations in ``migrations/``; these
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
    Column("role", String(16), nullable=False),  # Role
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
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
    # Idempotent retry with no time window (issue 3, item 3).
    UniqueConstraint("sender_id", "client_msg_id", name="uq_messages_sender_client_msg"),
    Index("ix_messages_conversation", "conversation_id", "id"),
)

# A user's inbox stream: gap-free seq per user, positions taken from the
# counter row inside the committing transaction (ARCHITECTURE.md, delivery model).
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
