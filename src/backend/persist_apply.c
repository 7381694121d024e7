/*
 * persist_apply.c -- the persister's PostgreSQL side. The postgres backend's own
 * schema is installed by opening the store once (stock_open); the
 * persister adds its position per stream and stock_outbox_apply, which
 * writes one record into the backend's tables. Every record carries its
 * SKU's totals after the change, so the inventory row is written whole;
 * the flow rows (lines, refunds, adjustments) are keyed by their ids.
 *
 * Idempotence: a stream's position is the sequence of its last record
 * applied, updated in the record's own transaction. A record at or below it
 * was applied before (a persister died between COMMIT and XACK) and changes
 * nothing; a record past position + 1 means records are missing, which the
 * function refuses with an error rather than skip.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "backend/persist_internal.h"
#include "stock.h"

/* Serialises the installation between persisters starting at once. */
#define APPLY_SCHEMA_LOCK_KEY "7379011"

static const char apply_schema_sql[] =
    "SELECT pg_advisory_xact_lock(" APPLY_SCHEMA_LOCK_KEY ");\n"
    "CREATE TABLE IF NOT EXISTS stock_outbox_position (\n"
    "    stream text PRIMARY KEY,\n"
    "    seq bigint NOT NULL);\n"
    "-- First in a stream's part of a transaction: its position row, locked, so\n"
    "-- that two persisters overlapping at a lease hand-over serialise on it.\n"
    "CREATE OR REPLACE FUNCTION stock_outbox_lock(p_stream text) RETURNS void\n"
    "LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "    INSERT INTO stock_outbox_position VALUES (p_stream, 0) ON CONFLICT DO NOTHING;\n"
    "    PERFORM 1 FROM stock_outbox_position WHERE stream = p_stream FOR UPDATE;\n"
    "END $$;\n"
    "-- The 14-argument version, before records carried an order line's position.\n"
    "DROP FUNCTION IF EXISTS stock_outbox_apply(text, bigint, text, text, bigint, bigint,\n"
    "    bigint, bigint, text, bigint, bigint, text, text, bigint);\n"
    "-- The 16-argument version, before records carried a bucket (layout 5).\n"
    "DROP FUNCTION IF EXISTS stock_outbox_apply(text, bigint, text, text, bigint, bigint,\n"
    "    bigint, bigint, text, bigint, bigint, text, text, bigint, integer, integer);\n"
    "DROP FUNCTION IF EXISTS stock_outbox_totals(text, bigint, text, bigint, bigint, bigint,\n"
    "    bigint);\n"
    "-- A record's flow row; 0 (nothing) for a record at or below the position.\n"
    "-- p_bucket: the bucket whose totals the record holds (layout 5), else 0;\n"
    "-- a line's row keeps it: the line lives there (its refunds, a warm-up).\n"
    "CREATE OR REPLACE FUNCTION stock_outbox_apply(p_stream text, p_seq bigint, p_kind text,\n"
    "    p_sku text, p_av bigint, p_adj bigint, p_ded bigint, p_ref bigint, p_id text,\n"
    "    p_qty bigint, p_time bigint, p_order text, p_line text, p_lref bigint,\n"
    "    p_position integer, p_count integer, p_bucket integer)\n"
    "RETURNS integer LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    v_order text;\n"
    "BEGIN\n"
    "    IF p_seq <= (SELECT seq FROM stock_outbox_position WHERE stream = p_stream) THEN\n"
    "        RETURN 0;\n"
    "    END IF;\n"
    "    IF p_kind = 'line' THEN\n"
    "        INSERT INTO inventory_flow AS f (line_id, sku_id, qty, refunded, order_id, position,\n"
    "                                         bucket, time_us, available_after)\n"
    "        VALUES (p_id, p_sku, p_qty, 0, p_order, p_position, p_bucket, p_time, p_av)\n"
    "        ON CONFLICT (line_id) DO UPDATE\n"
    "           SET sku_id = excluded.sku_id, qty = excluded.qty, refunded = 0,\n"
    "               order_id = excluded.order_id, position = excluded.position,\n"
    "               bucket = excluded.bucket,\n"
    "               time_us = excluded.time_us, available_after = excluded.available_after;\n"
    "        -- an order's line: the order's row as the postgres backend keeps it\n"
    "        IF p_order <> '' AND p_count > 0 THEN   -- 0: a record of before counts\n"
    "            INSERT INTO inventory_orders VALUES (p_order, p_count)\n"
    "            ON CONFLICT (order_id) DO NOTHING;\n"
    "        END IF;\n"
    "    ELSIF p_kind = 'refund' THEN\n"
    "        INSERT INTO inventory_refunds VALUES (p_id, p_line, p_qty, p_av)\n"
    "        ON CONFLICT (refund_id) DO NOTHING;\n"
    "        UPDATE inventory_flow SET refunded = p_lref WHERE line_id = p_line;\n"
    "    ELSIF p_kind = 'add' AND p_id <> '' THEN\n"
    "        INSERT INTO inventory_adjustments VALUES (p_id, p_sku, p_qty, p_av)\n"
    "        ON CONFLICT (adjust_id) DO NOTHING;\n"
    "    ELSIF p_kind = 'undo' THEN\n"
    "        -- a failed order's line given back; the order's row goes with its last line\n"
    "        DELETE FROM inventory_flow WHERE line_id = p_id RETURNING order_id INTO v_order;\n"
    "        IF v_order <> '' AND NOT EXISTS (SELECT 1 FROM inventory_flow\n"
    "                                         WHERE order_id = v_order) THEN\n"
    "            DELETE FROM inventory_orders WHERE order_id = v_order;\n"
    "        END IF;\n"
    "    END IF;\n"
    "    RETURN 1;\n"
    "END $$;\n"
    "-- A SKU's totals from its last record of the transaction (the row is\n"
    "-- written once per transaction, not once per record): its one row, or with\n"
    "-- layout 5 the row of the record's bucket, each of the SKU's rows saying\n"
    "-- how many it has (p_buckets), so that reads sum them.\n"
    "CREATE OR REPLACE FUNCTION stock_outbox_totals(p_stream text, p_seq bigint, p_sku text,\n"
    "    p_av bigint, p_adj bigint, p_ded bigint, p_ref bigint, p_bucket integer,\n"
    "    p_buckets integer) RETURNS void\n"
    "LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "    IF p_seq <= (SELECT seq FROM stock_outbox_position WHERE stream = p_stream) THEN\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    INSERT INTO inventory AS v (sku_id, bucket, leaved_amount, adjusted, deducted, refunded,\n"
    "                                buckets)\n"
    "    VALUES (p_sku, p_bucket, p_av, p_adj, p_ded, p_ref, p_buckets)\n"
    "    ON CONFLICT (sku_id, bucket) DO UPDATE\n"
    "       SET leaved_amount = excluded.leaved_amount, adjusted = excluded.adjusted,\n"
    "           deducted = excluded.deducted, refunded = excluded.refunded,\n"
    "           buckets = excluded.buckets;\n"
    "    -- rows of the SKU written before its store had buckets (one row, 1)\n"
    "    IF p_buckets > 1 THEN\n"
    "        UPDATE inventory SET buckets = p_buckets\n"
    "         WHERE sku_id = p_sku AND buckets <> p_buckets;\n"
    "    END IF;\n"
    "END $$;\n"
    "-- Last: the position moves to the transaction's last record. Records\n"
    "-- come in order without holes, so a first record past position + 1 means\n"
    "-- records are missing: refused, and the transaction rolls back.\n"
    "CREATE OR REPLACE FUNCTION stock_outbox_finish(p_stream text, p_first bigint, p_last bigint)\n"
    "RETURNS void LANGUAGE plpgsql AS $$\n"
    "DECLARE\n"
    "    v_pos bigint;\n"
    "BEGIN\n"
    "    SELECT seq INTO v_pos FROM stock_outbox_position WHERE stream = p_stream;\n"
    "    IF p_last <= v_pos THEN\n"
    "        RETURN;\n"
    "    END IF;\n"
    "    IF p_first > v_pos + 1 THEN\n"
    "        RAISE EXCEPTION 'outbox %: record % follows % (records are missing)',\n"
    "            p_stream, p_first, v_pos;\n"
    "    END IF;\n"
    "    UPDATE stock_outbox_position SET seq = p_last WHERE stream = p_stream;\n"
    "END $$;\n";

/* Sets p->error from result or the connection, and drops a connection
 * that is lost or still busy with a query past its deadline. */
static bool pg_failed(persister *p, const char *what, const PGresult *result)
{
    const char *why = pg_error_message(p->pg, result);
    snprintf(p->error, sizeof p->error, "postgres: %s: %.*s", what, (int)strcspn(why, "\n"),
             why);
    if (p->pg != NULL && pg_lost_or(p->pg, STOCK_IO) == STOCK_UNAVAILABLE) {
        PQfinish(p->pg);
        p->pg = NULL;
    }
    return false;
}

/* As pg_failed, for a pipeline cut short: whatever libpq still holds of
 * it would be read as the next cycle's results, so the session goes. */
static bool pipeline_failed(persister *p, const char *what)
{
    pg_failed(p, what, NULL);
    if (p->pg != NULL) {
        PQfinish(p->pg);
        p->pg = NULL;
    }
    return false;
}

/* Runs sql (one statement or several) expecting want, waiting
 * stock_timeout_ms at most; on a failure p->error says what did not pass. */
static bool exec_ok(persister *p, const char *sql, ExecStatusType want, const char *what)
{
    PGresult *result = pg_exec_script_until(p->pg, sql, pg_deadline(p->pg_options.timeout_ms));
    bool ok = PQresultStatus(result) == want || pg_failed(p, what, result);
    PQclear(result);
    return ok;
}

/* The schema's "already exists, skipping" notices are expected: not logged. */
static void notice_ignore(void *user, const char *message)
{
    (void)user;
    (void)message;
}

/* Opens the store once so that the postgres backend installs its schema. */
static bool backend_schema(persister *p)
{
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_open(p->options.postgres_uri, NULL, &store, message);
    if (code != STOCK_OK) {
        snprintf(p->error, sizeof p->error, "postgres store: %s", message);
        return false;
    }
    stock_close(store);
    return true;
}

/* The persister's functions, installed under a lock, and its statements
 * prepared. Any failure drops the connection: the next cycle starts over
 * on a new one. Non-blocking, so that sending a cycle's pipeline never
 * waits on the socket (results_read waits, until its deadline). */
static bool apply_install(persister *p)
{
    if (PQsetnonblocking(p->pg, 1) != 0)
        return pg_failed(p, "non-blocking mode", NULL);
    PQsetNoticeProcessor(p->pg, notice_ignore, NULL);
    if (!exec_ok(p, "BEGIN", PGRES_COMMAND_OK, "installing stock_outbox_apply") ||
        !exec_ok(p, apply_schema_sql, PGRES_COMMAND_OK, "installing stock_outbox_apply") ||
        !exec_ok(p, "COMMIT", PGRES_COMMAND_OK, "installing stock_outbox_apply"))
        return false;
    static const char *const statements[][2] = {
        {"lock", "SELECT stock_outbox_lock($1)"},
        {"apply", "SELECT stock_outbox_apply($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                  "$12, $13, $14, $15, $16, $17)"},
        {"totals", "SELECT stock_outbox_totals($1, $2, $3, $4, $5, $6, $7, $8, $9)"},
        {"finish", "SELECT stock_outbox_finish($1, $2, $3)"},
    };
    for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++) {
        PGresult *result = pg_prepare_until(p->pg, statements[i][0], statements[i][1], 0,
                                            pg_deadline(p->pg_options.timeout_ms));
        bool ok = PQresultStatus(result) == PGRES_COMMAND_OK || pg_failed(p, "preparing", result);
        PQclear(result);
        if (!ok)
            return false;
    }
    return true;
}

bool apply_connect(persister *p)
{
    if (p->pg != NULL)
        return true;
    if (!backend_schema(p))
        return false;
    char why[STOCK_MESSAGE_MAX];
    if (pg_connect(&p->pg_options, &p->pg, why, sizeof why) != STOCK_OK) {
        snprintf(p->error, sizeof p->error, "%s", why);
        return false;
    }
    if (apply_install(p))
        return true;
    PQfinish(p->pg);
    p->pg = NULL;
    return false;
}

/* Sends the pipeline and reads its results up to its sync, until
 * stock_timeout_ms from now at most; false at the first error. */
static bool results_read(persister *p, uint64_t *applied)
{
    int64_t deadline_us = pg_deadline(p->pg_options.timeout_ms);
    bool ok = true;
    for (;;) {
        int pending = PQflush(p->pg);
        if (pending < 0 || PQconsumeInput(p->pg) != 1)
            return pipeline_failed(p, "connection lost");
        if (pending != 0 || PQisBusy(p->pg)) {
            if (!pg_wait(p->pg, (short)(POLLIN | (pending != 0 ? POLLOUT : 0)), deadline_us))
                return pipeline_failed(p, "applying");
            continue;
        }
        PGresult *result = PQgetResult(p->pg);
        if (result == NULL)
            continue;   /* the end of one statement's results */
        ExecStatusType status = PQresultStatus(result);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(result);
            return ok;
        }
        if (status == PGRES_TUPLES_OK && PQntuples(result) == 1)
            *applied += strcmp(PQgetvalue(result, 0, 0), "1") == 0;
        else if (status != PGRES_COMMAND_OK && ok) {
            snprintf(p->error, sizeof p->error, "postgres: %s",
                     status == PGRES_PIPELINE_ABORTED ? "transaction aborted"
                                                      : PQresultErrorMessage(result));
            char *newline = strchr(p->error, '\n');
            if (newline != NULL)
                *newline = '\0';
            ok = false;
        }
        PQclear(result);
    }
}

/* Sends one stream's records, records[first..end): lock, each record, each
 * SKU's totals from its last record, finish. */
static bool send_stream(persister *p, uint32_t first, uint32_t end)
{
    const persist_record *records = p->records;
    const char *stream = records[first].params[0];
    bool sent = PQsendQueryPrepared(p->pg, "lock", 1, &stream, NULL, NULL, 0) == 1;
    for (uint32_t i = first; sent && i < end; i++)
        sent = PQsendQueryPrepared(p->pg, "apply", PERSIST_PARAMS, records[i].params, NULL,
                                   NULL, 0) == 1;
    char buckets[16];
    snprintf(buckets, sizeof buckets, "%u", p->record_buckets > 0 ? p->record_buckets : 1);
    for (uint32_t i = end; sent && i-- > first;) {
        /* the last record of the SKU's bucket in this stream's part */
        bool last = true;
        const char *const *r = records[i].params;
        for (uint32_t k = i + 1; last && k < end; k++)
            last = strcmp(records[k].params[3], r[3]) != 0 ||
                   strcmp(records[k].params[PERSIST_BUCKET], r[PERSIST_BUCKET]) != 0;
        const char *totals[9] = {r[0], r[1], r[3], r[4], r[5], r[6], r[7], r[PERSIST_BUCKET],
                                 buckets};
        if (last && r[3][0] != '\0')   /* a warm-up's marker has no SKU */
            sent = PQsendQueryPrepared(p->pg, "totals", 9, totals, NULL, NULL, 0) == 1;
    }
    const char *finish[3] = {stream, records[first].params[1], records[end - 1].params[1]};
    return sent && PQsendQueryPrepared(p->pg, "finish", 3, finish, NULL, NULL, 0) == 1;
}

/* The records are one pipeline closed by one Sync: one implicit
 * transaction, committed at the Sync, rolled back whole on any error. */
bool apply_records(persister *p, uint64_t *applied)
{
    *applied = 0;
    bool sent = PQenterPipelineMode(p->pg) == 1;
    for (uint32_t first = 0, end; sent && first < p->record_count; first = end) {
        for (end = first; end < p->record_count && p->records[end].stream == p->records[first].stream;)
            end++;
        sent = send_stream(p, first, end);
    }
    sent = sent && PQpipelineSync(p->pg) == 1;
    if (!sent)
        return pipeline_failed(p, "send");
    uint64_t count = 0;
    bool ok = results_read(p, &count);
    if (p->pg != NULL && PQexitPipelineMode(p->pg) != 1)
        return pipeline_failed(p, "leaving pipeline mode");
    *applied = count;
    return ok;
}
