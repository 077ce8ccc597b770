"""Public accounts (Art. 7): applications and their review, filing records, news
approvals by compliance, follows, posts and the global posts stream, and changes
to filed accounts awaiting re-review.

A post is stored once under a position of the posts stream; the position comes
from the single counter row `posts_stream(id=1)`, read and bumped inside the
committing transaction, so positions are gap-free and commit-ordered
(docs/architecture.md, the delivery model). The row is seeded here.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from imserver.store.types import Id, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "public_accounts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("owner_id", Id, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("name_key", sa.String(64), nullable=False),  # NFKC, case-folded: uniqueness and search
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("category", sa.String(32), nullable=False),  # AccountCategory
        sa.Column("operator_name", sa.String(128), nullable=True),  # the operating entity; null for individuals
        sa.Column("credit_code", sa.String(18), nullable=True),  # unified social credit code (GB 32100)
        sa.Column("licence_number", sa.String(64), nullable=True),  # news categories
        sa.Column("licence_expires_at", UTCDateTime, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),  # pending | approved | rejected | closed
        sa.Column("status_before_close", sa.String(16), nullable=True),  # restored when a closure ends
        sa.Column("manual_review", sa.Boolean, nullable=False),  # flagged: over the cap, or an impersonating name
        sa.Column("review_flags", sa.Text, nullable=False),  # JSON list of why it was flagged
        sa.Column("reviewer_id", Id, nullable=True),
        sa.Column("review_reason", sa.Text, nullable=True),
        sa.Column("reviewed_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_public_accounts"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_public_accounts_owner_id_users"),
    )
    op.create_index("ix_public_accounts_owner_id", "public_accounts", ["owner_id"])
    op.create_index("ix_public_accounts_name_key", "public_accounts", ["name_key"])
    op.create_index("ix_public_accounts_status", "public_accounts", ["status", "id"])
    op.create_table(
        "public_account_filings",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("reference", sa.String(32), nullable=False),  # e.g. IMPA-00000042-01
        sa.Column("revision", sa.Integer, nullable=False),  # 1 on approval, +1 on each approved change
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("account_name", sa.String(64), nullable=False),
        sa.Column("operator_name", sa.String(128), nullable=True),
        sa.Column("credit_code", sa.String(18), nullable=True),
        sa.Column("licence_number", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),  # filed | superseded
        sa.Column("filed_at", UTCDateTime, nullable=False),
        sa.Column("filed_by", Id, nullable=False),  # the reviewer who approved
        sa.Column("superseded_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_public_account_filings"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["public_accounts.id"], name="fk_public_account_filings_account_id_public_accounts"
        ),
        sa.UniqueConstraint("reference", name="uq_public_account_filings_reference"),
    )
    op.create_index("ix_public_account_filings_account_id", "public_account_filings", ["account_id"])
    op.create_index("ix_public_account_filings_category", "public_account_filings", ["category", "id"])
    op.create_table(
        "news_approvals",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),  # the approving document
        sa.Column("scope", sa.String(16), nullable=False),  # publish | reprint
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("granted_by", Id, nullable=False),  # compliance operator
        sa.Column("granted_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.Column("revoked_by", Id, nullable=True),
        sa.Column("revoke_reason", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_news_approvals"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["public_accounts.id"], name="fk_news_approvals_account_id_public_accounts"
        ),
    )
    op.create_index("ix_news_approvals_account_id", "news_approvals", ["account_id"])
    op.create_table(
        "public_account_follows",
        sa.Column("account_id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "user_id", name="pk_public_account_follows"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["public_accounts.id"], name="fk_public_account_follows_account_id_public_accounts"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_public_account_follows_user_id_users"),
    )
    op.create_index("ix_public_account_follows_user", "public_account_follows", ["user_id", "account_id"])
    op.create_table(
        "posts_stream",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # the one row: 1
        sa.Column("last_position", Id, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_posts_stream"),
    )
    op.bulk_insert(
        sa.table("posts_stream", sa.column("id", sa.Integer), sa.column("last_position", Id)),
        [{"id": 1, "last_position": 0}],
    )
    op.create_table(
        "posts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("position", Id, nullable=False),  # in the global posts stream
        sa.Column("account_id", Id, nullable=False),
        sa.Column("author_id", Id, nullable=False),  # the user who posted (the owner)
        sa.Column("kind", sa.String(16), nullable=False),  # ordinary | news_original | news_reprint
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        # Reprints only: where the news came from (Art. 7 ¶2).
        sa.Column("source_name", sa.String(200), nullable=True),
        sa.Column("source_url", sa.String(2048), nullable=True),
        sa.Column("source_author", sa.String(200), nullable=True),
        sa.Column("source_title", sa.String(200), nullable=True),
        sa.Column("posted_at", UTCDateTime, nullable=False),
        sa.Column("taken_down_at", UTCDateTime, nullable=True),
        sa.Column("taken_down_by_kind", sa.String(16), nullable=True),  # user | operator
        sa.Column("taken_down_by", Id, nullable=True),
        sa.Column("takedown_reason", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_posts"),
        sa.ForeignKeyConstraint(["account_id"], ["public_accounts.id"], name="fk_posts_account_id_public_accounts"),
        sa.UniqueConstraint("position", name="uq_posts_position"),
    )
    op.create_index("ix_posts_account", "posts", ["account_id", "position"])
    op.create_table(
        "public_account_changes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("requested_by", Id, nullable=False),
        # The proposed filed facts, whole (the account keeps its current ones until approved).
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("operator_name", sa.String(128), nullable=True),
        sa.Column("credit_code", sa.String(18), nullable=True),
        sa.Column("licence_number", sa.String(64), nullable=True),
        sa.Column("licence_expires_at", UTCDateTime, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),  # pending | approved | rejected
        sa.Column("manual_review", sa.Boolean, nullable=False),
        sa.Column("review_flags", sa.Text, nullable=False),
        sa.Column("reviewer_id", Id, nullable=True),
        sa.Column("review_reason", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("reviewed_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_public_account_changes"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["public_accounts.id"], name="fk_public_account_changes_account_id_public_accounts"
        ),
    )
    op.create_index("ix_public_account_changes_account_id", "public_account_changes", ["account_id"])
    op.create_index("ix_public_account_changes_status", "public_account_changes", ["status", "id"])


def downgrade() -> None:
    for table in (
        "public_account_changes",
        "posts",
        "posts_stream",
        "public_account_follows",
        "news_approvals",
        "public_account_filings",
        "public_accounts",
    ):
        op.drop_table(table)
