"""Foundation: users, operators, sessions, identities, agreement, audit chain, chat.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from imserver.store.types import Id, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

FIRST_AGREEMENT = """imserver service agreement, version 1.

By registering you agree to use this service lawfully and commit to the seven baselines:
1. laws and regulations;
2. the socialist system;
3. the national interest;
4. citizens' lawful rights and interests;
5. public order;
6. social morality;
7. the truthfulness of information.

You register under your verified real identity, which the provider keeps confidential,
and may use any nickname in front. The provider may warn, restrict publication by,
suspend updates of, or close accounts that break this agreement, keeps records of such
measures and reports them to the competent authorities.
"""


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("handle", sa.String(64), nullable=False),
        sa.Column("nickname", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("realname_status", sa.String(16), nullable=False),
        sa.Column("agreement_version", sa.Integer, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("handle", name="uq_users_handle"),
    )
    op.create_table(
        "operators",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("handle", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("disabled_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_operators"),
        sa.UniqueConstraint("handle", name="uq_operators_handle"),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("principal_kind", sa.String(16), nullable=False),
        sa.Column("principal_id", Id, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_sessions"),
    )
    op.create_index("ix_sessions_principal", "sessions", ["principal_kind", "principal_id"])
    op.create_table(
        "identities",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("id_hmac", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("submitted_at", UTCDateTime, nullable=False),
        sa.Column("reviewed_at", UTCDateTime, nullable=True),
        sa.Column("reviewer_id", Id, nullable=True),
        sa.Column("review_note", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_identities"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_identities_user_id_users"),
    )
    op.create_index("ix_identities_user_id", "identities", ["user_id"])
    op.create_index("ix_identities_id_hmac", "identities", ["id_hmac"])
    agreement_versions = op.create_table(
        "agreement_versions",
        sa.Column("version", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("published_at", UTCDateTime, nullable=False),
        sa.Column("published_by", Id, nullable=True),
        sa.PrimaryKeyConstraint("version", name="pk_agreement_versions"),
    )
    # The first agreement version ships with the schema, so registration works on
    # a fresh install; operators publish later versions through the admin API.
    op.bulk_insert(
        agreement_versions,
        [{"version": 1, "text": FIRST_AGREEMENT, "published_at": datetime(2026, 11, 29, tzinfo=UTC), "published_by": None}],
    )
    op.create_table(
        "agreement_acceptances",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("accepted_at", UTCDateTime, nullable=False),
        sa.Column("client_ip", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_agreement_acceptances"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_agreement_acceptances_user_id_users"),
        sa.ForeignKeyConstraint(
            ["version"], ["agreement_versions.version"], name="fk_agreement_acceptances_version_agreement_versions"
        ),
    )
    op.create_index("ix_agreement_acceptances_user_id", "agreement_acceptances", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", Id, nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_table(
        "conversations",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=True),
        sa.Column("created_by", Id, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("direct_key", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        sa.UniqueConstraint("direct_key", name="uq_conversations_direct_key"),
    )
    op.create_table(
        "conversation_members",
        sa.Column("conversation_id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("joined_at", UTCDateTime, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "user_id", name="pk_conversation_members"),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name="fk_conversation_members_conversation_id_conversations"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_conversation_members_user_id_users"),
    )
    op.create_index("ix_conversation_members_user", "conversation_members", ["user_id"])
    op.create_table(
        "messages",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", Id, nullable=False),
        sa.Column("sender_id", Id, nullable=False),
        sa.Column("client_msg_id", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name="fk_messages_conversation_id_conversations"
        ),
        sa.ForeignKeyConstraint(["sender_id"], ["users.id"], name="fk_messages_sender_id_users"),
        sa.UniqueConstraint("sender_id", "client_msg_id", name="uq_messages_sender_client_msg"),
    )
    op.create_index("ix_messages_conversation", "messages", ["conversation_id", "id"])
    op.create_table(
        "inbox",
        sa.Column("user_id", Id, autoincrement=False, nullable=False),
        sa.Column("seq", Id, autoincrement=False, nullable=False),
        sa.Column("message_id", Id, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "seq", name="pk_inbox"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name="fk_inbox_message_id_messages"),
    )
    op.create_index("ix_inbox_message", "inbox", ["message_id"])
    op.create_table(
        "inbox_counters",
        sa.Column("user_id", Id, autoincrement=False, nullable=False),
        sa.Column("last_seq", Id, nullable=False),
        sa.Column("received_seq", Id, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_inbox_counters"),
    )
    op.create_table(
        "read_marks",
        sa.Column("conversation_id", Id, autoincrement=False, nullable=False),
        sa.Column("user_id", Id, autoincrement=False, nullable=False),
        sa.Column("message_id", Id, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "user_id", name="pk_read_marks"),
    )


def downgrade() -> None:
    for table in (
        "read_marks",
        "inbox_counters",
        "inbox",
        "messages",
        "conversation_members",
        "conversations",
        "audit_log",
        "agreement_acceptances",
        "agreement_versions",
        "identities",
        "sessions",
        "operators",
        "users",
    ):
        op.drop_table(table)
