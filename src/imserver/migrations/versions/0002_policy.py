"""Policy: sanctions and their events, appeals, public reports, the regulator outbox,
filter terms, and the record of every deny and hold.

Sanctions are append-only (Art. 8 "store relevant records"): a sanction row is
written once; confirming, lifting, expiring and overturning are rows of
`sanction_events`, never updates.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from imserver.store.types import Id, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sanctions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("subject_kind", sa.String(16), nullable=False),  # user | public_account
        sa.Column("subject_id", Id, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),  # SanctionKind
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),  # JSON: message_ids, post_ids, report_ids
        sa.Column("imposed_by", Id, nullable=False),  # operator
        sa.Column("needs_confirmation", sa.Boolean, nullable=False),  # close_account: a second operator
        sa.Column("starts_at", UTCDateTime, nullable=False),
        sa.Column("ends_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sanctions"),
    )
    op.create_index("ix_sanctions_subject", "sanctions", ["subject_kind", "subject_id"])
    op.create_table(
        "sanction_events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("sanction_id", Id, nullable=False),
        # confirmed | lifted | expired | appealed | upheld | overturned
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("operator_id", Id, nullable=True),  # null: the system (expiry) or the user (appeal)
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sanction_events"),
        sa.ForeignKeyConstraint(["sanction_id"], ["sanctions.id"], name="fk_sanction_events_sanction_id_sanctions"),
    )
    op.create_index("ix_sanction_events_sanction", "sanction_events", ["sanction_id"])
    op.create_table(
        "appeals",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("sanction_id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("filed_at", UTCDateTime, nullable=False),
        sa.Column("decision", sa.String(16), nullable=True),  # upheld | overturned
        sa.Column("decided_by", Id, nullable=True),
        sa.Column("decided_at", UTCDateTime, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_appeals"),
        sa.ForeignKeyConstraint(["sanction_id"], ["sanctions.id"], name="fk_appeals_sanction_id_sanctions"),
        sa.UniqueConstraint("sanction_id", name="uq_appeals_sanction_id"),  # one appeal per sanction
    )
    op.create_table(
        "reports",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("reporter_id", Id, nullable=False),
        sa.Column("target_kind", sa.String(16), nullable=False),  # message | post | account
        sa.Column("target_id", Id, nullable=False),
        sa.Column("category", sa.String(16), nullable=False),  # unlawful | harmful | rumour | fraud | pornography | other
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # open | in_review | actioned | dismissed
        sa.Column("assignee_id", Id, nullable=True),
        sa.Column("sanction_id", Id, nullable=True),
        sa.Column("resolution_note", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("resolved_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reports"),
    )
    op.create_index("ix_reports_status", "reports", ["status", "created_at"])
    op.create_table(
        "regulator_outbox",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        # sanction_imposed | sanction_confirmed | sanction_lifted | sanction_expired | sanction_overturned
        sa.Column("record_kind", sa.String(32), nullable=False),
        sa.Column("sanction_id", Id, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),  # canonical JSON of the record
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_regulator_outbox"),
        sa.UniqueConstraint("idempotency_key", name="uq_regulator_outbox_idempotency_key"),
    )
    op.create_index("ix_regulator_outbox_created", "regulator_outbox", ["created_at"])
    op.create_table(
        "filter_terms",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("term", sa.String(200), nullable=False),  # stored as given; normalised when compiled
        sa.Column("action", sa.String(8), nullable=False),  # deny | hold
        sa.Column("list_name", sa.String(64), nullable=False),
        sa.Column("created_by", Id, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_filter_terms"),
        sa.UniqueConstraint("list_name", "term", name="uq_filter_terms_list_name"),
    )
    op.create_table(
        "policy_decisions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("outgoing_kind", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),  # deny | hold
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("check_name", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("message_id", Id, nullable=True),  # the held message
        sa.Column("at", UTCDateTime, nullable=False),
        # For holds: the moderator's review.
        sa.Column("review", sa.String(16), nullable=True),  # released | rejected
        sa.Column("reviewed_by", Id, nullable=True),
        sa.Column("reviewed_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_policy_decisions"),
    )
    op.create_index("ix_policy_decisions_user", "policy_decisions", ["user_id", "at"])
    op.create_index("ix_policy_decisions_review", "policy_decisions", ["outcome", "review"])


def downgrade() -> None:
    for table in (
        "policy_decisions",
        "filter_terms",
        "regulator_outbox",
        "reports",
        "appeals",
        "sanction_events",
        "sanctions",
    ):
        op.drop_table(table)
