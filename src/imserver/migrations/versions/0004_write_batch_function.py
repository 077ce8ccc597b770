"""PostgreSQL: the message writer's batch as one server-side function.

The group-commit writer stores a batch of sends in one round trip instead of
one per statement (idempotency lookup, message insert, counter locks, inbox
rows, counter updates, commit): on a 2-core host a round trip to PostgreSQL
costs about 0.3 ms, and a batch made eleven of them. The function does what
``store.batch`` does on SQLite, with the same rules:

* a send already stored under (sender_id, client_msg_id) comes back as a
  duplicate with its first result; nothing is written for it;
* new messages get ids in send order;
* counter rows are locked in user-id order (concurrent batches on several
  nodes cannot deadlock), then each recipient's positions continue its counter
  in send order, gap-free.

It returns one row per new message (o_user_id NULL: its id), one per inbox
entry (recipient and seq), and one per duplicate (the sender's seq). Called
as a single statement it is its own transaction.

SQLite needs nothing here: its batch runs as Python in the driver's thread.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FUNCTION = r"""
CREATE OR REPLACE FUNCTION imserver_write_batch(
    p_sender bigint[], p_client text[], p_conv bigint[], p_body text[], p_status text[],
    p_created timestamptz[], p_rmsg int[], p_ruser bigint[]
) RETURNS TABLE (
    o_ord int, o_message_id bigint, o_duplicate boolean, o_user_id bigint, o_seq bigint,
    o_conversation_id bigint, o_created_at timestamptz, o_status text
)
LANGUAGE plpgsql AS $fn$
DECLARE
    n int := coalesce(array_length(p_sender, 1), 0);
    dup boolean[] := array_fill(false, ARRAY[n]);
    ids bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    id_seq regclass := pg_get_serial_sequence('messages', 'id')::regclass;
    wanted int;
    locked int;
    r record;
BEGIN
    -- 1. Sends already stored (retries) return their first result.
    FOR r IN
        SELECT g.i, m.id, m.sender_id, m.conversation_id, m.created_at, m.status, ib.seq
        FROM generate_series(1, n) AS g(i)
        JOIN messages m ON m.sender_id = p_sender[g.i] AND m.client_msg_id = p_client[g.i]
        LEFT JOIN inbox ib ON ib.message_id = m.id AND ib.user_id = m.sender_id
    LOOP
        dup[r.i] := true;
        RETURN QUERY SELECT r.i, r.id, true, r.sender_id, r.seq, r.conversation_id, r.created_at, r.status::text;
    END LOOP;

    -- 2. New messages, ids in send order.
    FOR i IN 1..n LOOP
        IF NOT dup[i] THEN
            ids[i] := nextval(id_seq);
        END IF;
    END LOOP;
    INSERT INTO messages (id, conversation_id, sender_id, client_msg_id, body, status, created_at)
    SELECT ids[g.i], p_conv[g.i], p_sender[g.i], p_client[g.i], p_body[g.i], p_status[g.i], p_created[g.i]
    FROM generate_series(1, n) AS g(i)
    WHERE NOT dup[g.i];
    RETURN QUERY
    SELECT g.i, ids[g.i], false, NULL::bigint, NULL::bigint, p_conv[g.i], p_created[g.i], p_status[g.i]
    FROM generate_series(1, n) AS g(i)
    WHERE NOT dup[g.i];

    -- 3. Inbox entries of the delivered ones: counters locked in user-id order.
    SELECT count(DISTINCT x.u) INTO wanted
    FROM unnest(p_rmsg, p_ruser) AS x(m, u)
    WHERE NOT dup[x.m] AND p_status[x.m] = 'delivered';
    IF wanted = 0 THEN
        RETURN;
    END IF;
    SELECT count(*) INTO locked FROM (
        SELECT c.user_id FROM inbox_counters c
        WHERE c.user_id IN (
            SELECT x.u FROM unnest(p_rmsg, p_ruser) AS x(m, u)
            WHERE NOT dup[x.m] AND p_status[x.m] = 'delivered'
        )
        ORDER BY c.user_id
        FOR UPDATE
    ) AS l;
    IF locked < wanted THEN
        -- Every user gets a counter row at registration; this covers rows made otherwise.
        INSERT INTO inbox_counters (user_id, last_seq, received_seq)
        SELECT DISTINCT x.u, 0, 0 FROM unnest(p_rmsg, p_ruser) AS x(m, u)
        WHERE NOT dup[x.m] AND p_status[x.m] = 'delivered'
        ON CONFLICT (user_id) DO NOTHING;
    END IF;
    RETURN QUERY
    WITH e AS (
        SELECT x.m, x.u, row_number() OVER (PARTITION BY x.u ORDER BY x.k) AS rn
        FROM unnest(p_rmsg, p_ruser) WITH ORDINALITY AS x(m, u, k)
        WHERE NOT dup[x.m] AND p_status[x.m] = 'delivered'
    ), placed AS (
        SELECT e.m, e.u, c.last_seq + e.rn AS s
        FROM e JOIN inbox_counters c ON c.user_id = e.u
    ), ins AS (
        INSERT INTO inbox (user_id, seq, message_id)
        SELECT p.u, p.s, ids[p.m] FROM placed p
    ), bump AS (
        UPDATE inbox_counters c SET last_seq = c.last_seq + t.cnt
        FROM (SELECT e.u, count(*) AS cnt FROM e GROUP BY e.u) AS t
        WHERE c.user_id = t.u
    )
    SELECT p.m, ids[p.m], false, p.u, p.s, p_conv[p.m], p_created[p.m], p_status[p.m] FROM placed p;
END
$fn$;
"""

SIGNATURE = "imserver_write_batch(bigint[], text[], bigint[], text[], text[], timestamptz[], int[], bigint[])"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
