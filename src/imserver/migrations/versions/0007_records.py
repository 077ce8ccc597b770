"""Records: one chain over every record table, append-only triggers, sign-in log,
legal holds, account deletions, signed checkpoints.

* ``record_chain``: one row per insert, tracked update and purge of a row of a
  record table, written by database triggers (so no code path can forget it,
  and the send path pays one in-database insert, no round trip). A sealer
  fills in each entry's place in the chain (``seq``), the row's digest and the
  chain hash afterwards; see ``imserver.store.chain``.
* Guard triggers refuse UPDATE of a record's immutable columns, a second write
  of its write-once columns, and every DELETE except the retention purge's. The
  purge opens the gate inside its own transaction: on PostgreSQL the
  transaction-local setting ``imserver.purge``, on SQLite the one-row table
  ``record_purge_gate``. TRUNCATE (tests empty tables with it) fires no row
  trigger on PostgreSQL and does not exist on SQLite.
* Rows already present are entered into the chain here, oldest first.
* Runs after 0006, which rebuilds ``regulator_outbox`` on SQLite (batch mode):
  the triggers are created here on the rebuilt table. A later migration that
  rebuilds a record table on SQLite drops its triggers with it and must create
  them again (``_sqlite_triggers``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from imserver.store.types import Id, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# table -> (columns that may change and are chained, columns set once (NULL -> value)
# and chained, columns that may change freely and are not part of the record).
# Every other column is immutable. Mirrored by imserver.store.chain.RECORD_TABLES.
RECORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "audit_log": ((), (), ()),
    "sanctions": ((), (), ()),
    "sanction_events": ((), (), ()),
    "appeals": ((), ("decision", "decided_by", "decided_at", "note"), ()),
    "reports": (("status", "assignee_id", "sanction_id", "resolution_note"), ("resolved_at",), ()),
    # Delivery bookkeeping is not part of the record sent to the regulator; when an
    # export first delivered a record is, and is set once.
    "regulator_outbox": ((), ("exported_at",), ("attempts", "next_attempt_at", "last_error", "delivered_at")),
    "public_account_filings": (("status",), ("superseded_at",), ()),
    "policy_decisions": ((), ("review", "reviewed_by", "reviewed_at"), ()),
    "access_log": ((), (), ()),
    "legal_holds": ((), ("released_by", "released_at", "release_reason"), ()),
    "account_deletions": ((), ("erased_at",), ()),
    "checkpoints": ((), (), ()),
}

PG_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION imserver_record_guard() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    mutable text[] := TG_ARGV[0]::text[];  -- every column allowed to change
    once text[] := TG_ARGV[1]::text[];     -- of those, the ones set only once
    col text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF current_setting('imserver.purge', true) IS DISTINCT FROM 'on' THEN
            RAISE EXCEPTION 'record table %: row % may not be deleted (only the retention purge removes records)',
                TG_TABLE_NAME, OLD.id USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN OLD;
    END IF;
    IF (to_jsonb(NEW) - mutable) IS DISTINCT FROM (to_jsonb(OLD) - mutable) THEN
        RAISE EXCEPTION 'record table %: row % is append-only', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOREACH col IN ARRAY once LOOP
        IF (to_jsonb(OLD) -> col) <> 'null'::jsonb AND (to_jsonb(OLD) -> col) IS DISTINCT FROM (to_jsonb(NEW) -> col) THEN
            RAISE EXCEPTION 'record table %: row % column % is set once', TG_TABLE_NAME, OLD.id, col
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END LOOP;
    RETURN NEW;
END
$fn$

CREATE OR REPLACE FUNCTION imserver_record_chain() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO record_chain (table_name, row_id, op) VALUES (TG_TABLE_NAME, OLD.id, 'delete');
    ELSE
        INSERT INTO record_chain (table_name, row_id, op) VALUES (TG_TABLE_NAME, NEW.id, lower(TG_OP));
    END IF;
    RETURN NULL;
END
$fn$

CREATE OR REPLACE FUNCTION imserver_chain_guard() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'record_chain: entries are never deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.seq IS NOT NULL OR NEW.id IS DISTINCT FROM OLD.id OR NEW.table_name IS DISTINCT FROM OLD.table_name
       OR NEW.row_id IS DISTINCT FROM OLD.row_id OR NEW.op IS DISTINCT FROM OLD.op THEN
        RAISE EXCEPTION 'record_chain: entry % is sealed', OLD.id USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$fn$
"""


def _pg_list(names) -> str:
    return "{" + ",".join(names) + "}"


def _changed(names, old_new_op: str) -> str:
    return " OR ".join(f"OLD.{c} {old_new_op} NEW.{c}" for c in names)


def _pg_triggers(table: str, tracked: tuple[str, ...], once: tuple[str, ...], free: tuple[str, ...]) -> list[str]:
    mutable = (*tracked, *once, *free)
    out = [
        f"CREATE TRIGGER {table}_guard BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW "
        f"EXECUTE FUNCTION imserver_record_guard('{_pg_list(mutable)}', '{_pg_list(once)}')",
        f"CREATE TRIGGER {table}_chain AFTER INSERT OR DELETE ON {table} FOR EACH ROW "
        "EXECUTE FUNCTION imserver_record_chain()",
    ]
    if tracked or once:
        out.append(
            f"CREATE TRIGGER {table}_chain_update AFTER UPDATE ON {table} FOR EACH ROW "
            f"WHEN ({_changed((*tracked, *once), 'IS DISTINCT FROM')}) EXECUTE FUNCTION imserver_record_chain()"
        )
    return out


def _sqlite_triggers(
    table: str, columns: list[str], tracked: tuple[str, ...], once: tuple[str, ...], free: tuple[str, ...]
) -> list[str]:
    immutable = [c for c in columns if c not in (*tracked, *once, *free)]
    refused = [f"NEW.{c} IS NOT OLD.{c}" for c in immutable]
    refused += [f"(OLD.{c} IS NOT NULL AND NEW.{c} IS NOT OLD.{c})" for c in once]
    out = [
        f"CREATE TRIGGER {table}_guard_update BEFORE UPDATE ON {table} WHEN {' OR '.join(refused)} "
        f"BEGIN SELECT RAISE(ABORT, 'record table {table}: rows are append-only'); END",
        f"CREATE TRIGGER {table}_guard_delete BEFORE DELETE ON {table} "
        "WHEN (SELECT open FROM record_purge_gate WHERE id = 1) IS NOT 1 "
        f"BEGIN SELECT RAISE(ABORT, 'record table {table}: rows are removed only by the retention purge'); END",
        f"CREATE TRIGGER {table}_chain_insert AFTER INSERT ON {table} "
        f"BEGIN INSERT INTO record_chain (table_name, row_id, op) VALUES ('{table}', NEW.id, 'insert'); END",
        f"CREATE TRIGGER {table}_chain_delete AFTER DELETE ON {table} "
        f"BEGIN INSERT INTO record_chain (table_name, row_id, op) VALUES ('{table}', OLD.id, 'delete'); END",
    ]
    if tracked or once:
        out.append(
            f"CREATE TRIGGER {table}_chain_update AFTER UPDATE ON {table} WHEN {_changed((*tracked, *once), 'IS NOT')} "
            f"BEGIN INSERT INTO record_chain (table_name, row_id, op) VALUES ('{table}', NEW.id, 'update'); END"
        )
    return out


SQLITE_CHAIN_GUARD = [
    "CREATE TRIGGER record_chain_guard_update BEFORE UPDATE ON record_chain "
    "WHEN OLD.seq IS NOT NULL OR NEW.id IS NOT OLD.id OR NEW.table_name IS NOT OLD.table_name "
    "OR NEW.row_id IS NOT OLD.row_id OR NEW.op IS NOT OLD.op "
    "BEGIN SELECT RAISE(ABORT, 'record_chain: sealed entries never change'); END",
    "CREATE TRIGGER record_chain_guard_delete BEFORE DELETE ON record_chain "
    "BEGIN SELECT RAISE(ABORT, 'record_chain: entries are never deleted'); END",
]


def _create_tables() -> None:
    op.create_table(
        "record_chain",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("row_id", Id, nullable=False),
        sa.Column("op", sa.String(8), nullable=False),  # insert | update | delete
        sa.Column("seq", Id, nullable=True),  # place in the chain, set by the sealer
        sa.Column("digest", sa.String(64), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=True),
        sa.Column("hash", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_record_chain"),
        sa.UniqueConstraint("seq", name="uq_record_chain_seq"),
    )
    op.create_index("ix_record_chain_row", "record_chain", ["table_name", "row_id"])
    op.create_table(
        "record_purge_gate",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("open", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_record_purge_gate"),
    )
    op.execute("INSERT INTO record_purge_gate (id, open) VALUES (1, 0)")
    op.create_table(
        "access_log",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("event", sa.String(24), nullable=False),
        sa.Column("principal_kind", sa.String(16), nullable=False),
        sa.Column("principal_id", Id, nullable=True),
        sa.Column("handle", sa.String(64), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(256), nullable=True),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("connection", sa.String(32), nullable=True),
        sa.Column("close_code", sa.Integer, nullable=True),
        sa.Column("detail", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_access_log"),
    )
    op.create_index("ix_access_log_principal", "access_log", ["principal_kind", "principal_id", "at"])
    op.create_index("ix_access_log_at", "access_log", ["at"])
    op.create_table(
        "legal_holds",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_id", Id, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("placed_by", Id, nullable=False),
        sa.Column("placed_at", UTCDateTime, nullable=False),
        sa.Column("released_by", Id, nullable=True),
        sa.Column("released_at", UTCDateTime, nullable=True),
        sa.Column("release_reason", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_legal_holds"),
    )
    op.create_index("ix_legal_holds_subject", "legal_holds", ["subject_kind", "subject_id"])
    op.create_table(
        "account_deletions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("erase_after", UTCDateTime, nullable=False),
        sa.Column("erased_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_account_deletions"),
        sa.UniqueConstraint("user_id", name="uq_account_deletions_user_id"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("chain_seq", Id, nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        sa.Column("audit_id", Id, nullable=False),
        sa.Column("audit_hash", sa.String(64), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),  # Ed25519, hex
        sa.Column("signature", sa.String(128), nullable=False),  # hex
        sa.PrimaryKeyConstraint("id", name="pk_checkpoints"),
    )


def upgrade() -> None:
    _create_tables()
    bind = op.get_bind()
    # Existing rows enter the chain oldest first, table by table; the sealer seals them.
    for table in RECORDS:
        op.execute(
            f"INSERT INTO record_chain (table_name, row_id, op) SELECT '{table}', id, 'insert' FROM {table} ORDER BY id"
        )
    if bind.dialect.name == "postgresql":
        for function in PG_FUNCTIONS.split("\n\n"):  # asyncpg runs one statement per call
            op.execute(function)
        for table, spec in RECORDS.items():
            for statement in _pg_triggers(table, *spec):
                op.execute(statement)
        op.execute(
            "CREATE TRIGGER record_chain_guard BEFORE UPDATE OR DELETE ON record_chain "
            "FOR EACH ROW EXECUTE FUNCTION imserver_chain_guard()"
        )
    else:
        for table, spec in RECORDS.items():
            columns = [c["name"] for c in sa.inspect(bind).get_columns(table)]
            for statement in _sqlite_triggers(table, columns, *spec):
                op.execute(statement)
        for statement in SQLITE_CHAIN_GUARD:
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in RECORDS:
            for name in ("guard", "chain", "chain_update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{name} ON {table}")
        op.execute("DROP TRIGGER IF EXISTS record_chain_guard ON record_chain")
    else:
        for table in RECORDS:
            for name in ("guard_update", "guard_delete", "chain_insert", "chain_delete", "chain_update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{name}")
        for name in ("record_chain_guard_update", "record_chain_guard_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for table in ("checkpoints", "account_deletions", "legal_holds", "access_log", "record_purge_gate", "record_chain"):
        op.drop_table(table)
    if bind.dialect.name == "postgresql":
        for fn in ("imserver_record_guard", "imserver_record_chain", "imserver_chain_guard"):
            op.execute(f"DROP FUNCTION IF EXISTS {fn}()")
