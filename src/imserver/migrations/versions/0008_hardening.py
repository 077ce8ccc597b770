"""Hardening: operator second factor, four-eyes on compliance operators, idle sessions.

* ``operators.totp_*``: an operator's TOTP secret, sealed by the key ring like
  identity data (key id, wrapped data key, ciphertext); ``totp_enabled_at`` is
  set once the operator proved a code from it; ``totp_last_step`` is the time
  step of the last code a sign-in used (a code works once).
* ``operators.created_by`` / ``confirmed_by`` / ``confirmed_at``: an operator
  created with a privileged role (admin, compliance) by an admin stays pending
  (cannot sign in) until a different admin confirms it;
  ``pending_roles`` / ``pending_roles_by``: a change of roles that grants or
  takes away a privileged role waits the same way (the new role names,
  comma-separated), the operator keeping the old roles meanwhile.
* ``sessions.last_seen_at``: when an operator token was last used, for the
  idle timeout.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from imserver.store.types import Id, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OPERATOR_COLUMNS = (
    ("totp_key_id", lambda: sa.String(64)),
    ("totp_wrapped_key", lambda: sa.LargeBinary),
    ("totp_secret", lambda: sa.LargeBinary),
    ("totp_enabled_at", lambda: UTCDateTime),
    ("totp_last_step", lambda: Id),
    ("created_by", lambda: Id),
    ("confirmed_by", lambda: Id),
    ("confirmed_at", lambda: UTCDateTime),
    ("pending_roles", lambda: sa.String(64)),
    ("pending_roles_by", lambda: Id),
)


def upgrade() -> None:
    for name, kind in OPERATOR_COLUMNS:
        op.add_column("operators", sa.Column(name, kind(), nullable=True))
    op.add_column("sessions", sa.Column("last_seen_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("last_seen_at")
    with op.batch_alter_table("operators") as batch:
        for name, _ in reversed(OPERATOR_COLUMNS):
            batch.drop_column(name)
