"""Operators may hold several roles, and a reset password must be changed.

* ``operator_roles``: one row per (operator, role); the set of roles an
  operator holds. Seeded from ``operators.role``, which stays as the role the
  operator was created with (older readers) and is no longer consulted for
  access: ``operator_roles`` is the source.
* ``operators.must_change_password``: set when an admin resets a password;
  until the operator picks a new one, every admin route but signing out,
  whoami and changing the password answers 403 ``password_change_required``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from imserver.store.types import Id

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operator_roles",
        sa.Column("operator_id", Id, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("operator_id", "role", name="pk_operator_roles"),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"], name="fk_operator_roles_operator_id_operators"),
    )
    op.execute("INSERT INTO operator_roles (operator_id, role) SELECT id, role FROM operators")
    with op.batch_alter_table("operators") as batch:
        batch.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("operators") as batch:
        batch.drop_column("must_change_password")
    op.drop_table("operator_roles")
