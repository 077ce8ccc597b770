"""Due process: appeal-only sign-in tokens, joined reports, agreement versions with an
effective time and a grace period.

* ``sessions.scope``: NULL for a full session; ``appeal`` for the token a closed
  account gets on a correct password, which only reads the user's own sanctions
  and files or follows an appeal.
* ``reports.joined_to``: a report on a target that already has an open report
  joins it (NULL: the report is itself a queue item); the joined reports share
  the queue item's outcome and each reporter is told.
* ``agreement_versions.effective_at`` / ``grace_until``: a version is current from
  its effective time; until ``grace_until`` users who accepted the version
  before it may still send (and are asked to accept).
* ``regulator_outbox``: records of report outcomes and public-account filings
  besides sanctions, so ``sanction_id`` may be empty (a filing has none);
  ``exported_at`` marks the records an export has delivered.
* ``province`` on public accounts and their filings: the GB/T 2260 province the
  account is registered in, whose Internet information office it is filed with.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from imserver.store.types import Id, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("scope", sa.String(16), nullable=True))
    op.add_column("reports", sa.Column("joined_to", Id, nullable=True))
    op.create_index("ix_reports_target", "reports", ["target_kind", "target_id", "status"])
    op.create_index("ix_reports_reporter", "reports", ["reporter_id", "created_at"])
    op.add_column("agreement_versions", sa.Column("effective_at", UTCDateTime, nullable=True))
    op.add_column("agreement_versions", sa.Column("grace_until", UTCDateTime, nullable=True))
    op.add_column("regulator_outbox", sa.Column("exported_at", UTCDateTime, nullable=True))
    op.add_column("public_accounts", sa.Column("province", sa.String(2), nullable=True))
    op.add_column("public_account_filings", sa.Column("province", sa.String(2), nullable=True))
    # SQLite cannot drop NOT NULL in place: batch mode rebuilds the table (PostgreSQL alters it).
    with op.batch_alter_table("regulator_outbox") as batch:
        batch.alter_column("sanction_id", existing_type=Id, nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("regulator_outbox") as batch:
        batch.alter_column("sanction_id", existing_type=Id, nullable=False)
    op.drop_column("regulator_outbox", "exported_at")
    op.drop_column("public_account_filings", "province")
    op.drop_column("public_accounts", "province")
    op.drop_column("agreement_versions", "grace_until")
    op.drop_column("agreement_versions", "effective_at")
    op.drop_index("ix_reports_reporter", table_name="reports")
    op.drop_index("ix_reports_target", table_name="reports")
    op.drop_column("reports", "joined_to")
    op.drop_column("sessions", "scope")
