/*
 * persist_warm.c -- the warm-up (stockpersist --warm): loads every SKU of the PostgreSQL
 * database into a Redis that does not hold it (a cold cache, a new server),
 * with its lines, refunds and adjustments, so that replays, refunds and LINE
 * work there as before. Compare-and-set on the Redis side (the function
 * stockd_v3_warm): a SKU Redis holds is left alone, so a warm-up never
 * counts anything twice, even beside live traffic or run twice. The outbox
 * stream of each SKU's slot is moved up to PostgreSQL's position for it, so
 * that the persister never takes a new record for one applied before.
 *
 * Per SKU: each record id's directory entry (SET NX, in the id's slot)
 * before the records, as the backend writes them (docs/redis.md, "Ids and
 * their directory"); the records in calls of WARM_RECORDS_TEXT; the totals last.
 * The SKUs and their records are read in key order, a chunk at a time, so
 * memory stays bounded whatever the store's size.
 *
 * A store with buckets on a Redis Cluster (layout 5) is warmed bucket by
 * bucket: PostgreSQL holds a row per (SKU, bucket), each written from its
 * bucket's records alone, so each row goes back into its bucket's key,
 * with that bucket's lines and refunds and its stream's position, by the
 * same compare-and-set (a bucket Redis holds is left alone); the home,
 * whose existence makes the SKU's, last. A SKU whose rows say another
 * bucket count than the store's K is refused (docs/persister.md,
 * "Warm-up").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/persist_internal.h"

#define WARM_SKUS 500               /* SKUs read per query */
#define WARM_SKUS_TEXT "500"
#define WARM_RECORDS_TEXT "300"     /* records per query, and per warm call */
/* A warm call's arguments: 15 before the records (FCALL, name, key count, 5
 * keys, 7 values), 3 per record. */
_Static_assert(15 + 3 * 300 <= RD_ARGS_MAX, "a chunk of records fits in one call");

/* What one SKU's records are: a query, the hash they go to (index in the
 * warm call's KEYS), the directory kind of their ids. */
typedef struct warm_kind {
    /* $1 sku, $2 the last id read, $3 the chunk, $4 the bucket (-1: all,
     * a store without buckets on a cluster); id, text */
    const char *sql;
    int key;
    const char *kind;
} warm_kind;

/* A line and its refunds live in the line's bucket (the flow row's), an
 * adjustment in the home. */
static const warm_kind warm_kinds[] = {
    {"SELECT line_id, qty || ' ' || refunded || ' ' || time_us || ' ' || available_after || ' '"
     " || CASE WHEN order_id = '' THEN '-' ELSE order_id END FROM inventory_flow"
     " WHERE sku_id = $1 AND line_id > $2 AND ($4 < 0 OR bucket = $4)"
     " ORDER BY line_id LIMIT $3", 2, "line"},
    {"SELECT r.refund_id, r.line_id || ' ' || r.qty || ' ' || r.available"
     " FROM inventory_refunds r JOIN inventory_flow f ON f.line_id = r.line_id"
     " WHERE f.sku_id = $1 AND r.refund_id > $2 AND ($4 < 0 OR f.bucket = $4)"
     " ORDER BY r.refund_id LIMIT $3", 3, "refund"},
    {"SELECT adjust_id, delta || ' ' || available FROM inventory_adjustments"
     " WHERE sku_id = $1 AND adjust_id > $2 AND $4 <= 0 ORDER BY adjust_id LIMIT $3", 4,
     "adjust"},
};

/* What is warmed: one bucket of a SKU (bucket 0, the home, for a store
 * without buckets on a cluster, whose records all go there). */
typedef struct warm_target {
    const char *sku;
    uint32_t bucket;
    bool all;                       /* every record of the SKU: a store of layout 4 */
    char position[24];              /* PostgreSQL's position of the bucket's stream */
} warm_target;

/* Runs sql, waiting stock_timeout_ms at most; NULL with p->error set when
 * it failed (the warm-up then stops: no connection is reused). */
static PGresult *query(persister *p, const char *sql, int count, const char *const *params)
{
    PGresult *result = pg_exec_until(p->pg, sql, count, params,
                                     pg_deadline(p->pg_options.timeout_ms));
    if (PQresultStatus(result) == PGRES_TUPLES_OK)
        return result;
    const char *why = pg_error_message(p->pg, result);
    snprintf(p->error, sizeof p->error, "postgres: %.*s", (int)strcspn(why, "\n"), why);
    PQclear(result);
    return NULL;
}

/* The buckets of the store (1 without buckets on a cluster). */
static uint32_t store_buckets(const persister *p)
{
    return p->record_buckets > 0 ? p->record_buckets : 1;
}

/* The outbox stream of target's bucket's slot into stream. */
static void target_stream(const persister *p, const warm_target *target, char *stream,
                          size_t size)
{
    char key[RD_BUCKET_KEY_MAX];
    unsigned len = rd_bucket_key(p->redis->options.prefix, stock_id_from_cstr(target->sku),
                                 target->bucket, store_buckets(p), "", key, sizeof key);
    snprintf(stream, size, "%s{outbox:%s}", p->redis->options.prefix,
             rd_slot_tag(rd_key_slot(key, len)));
}

/* Pushes the warm call's keys for target's bucket. */
static void warm_call_start(persister *p, rd_cmd *cmd, const warm_target *target)
{
    static const char *const suffixes[] = {"", ":flow", ":refunds", ":adjust"};
    rd_cmd_fcall(cmd, "warm");
    for (size_t k = 0; k < sizeof suffixes / sizeof suffixes[0]; k++) {
        char key[RD_BUCKET_KEY_MAX];
        rd_bucket_key(p->redis->options.prefix, stock_id_from_cstr(target->sku), target->bucket,
                      store_buckets(p), suffixes[k], key, sizeof key);
        rd_cmd_key_text(cmd, key);
    }
    char stream[PERSIST_KEY_MAX];
    target_stream(p, target, stream, sizeof stream);
    rd_cmd_key_text(cmd, stream);
}

/* Runs cmd; *answer is its reply's text ("exists", "loading", "warmed"). */
static bool warm_call(persister *p, rd_cmd *cmd, char *answer, size_t size)
{
    redisContext *conn = outbox_conn_of(p, cmd->argv[3]);   /* the SKU's master */
    redisReply *reply = conn == NULL ? NULL
                                     : redisCommandArgv(conn, cmd->argc, cmd->argv, cmd->len);
    bool ok = reply != NULL && reply->type == REDIS_REPLY_STRING;
    if (ok)
        snprintf(answer, size, "%s", reply->str);
    else
        snprintf(p->error, sizeof p->error, "redis: warm: %s",
                 reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply");
    freeReplyObject(reply);
    return ok;
}

/* Loads one chunk of records of kind; *last is the last id read ("" when
 * done). Returns false on a failure, *exists when Redis holds the bucket. */
static bool warm_chunk(persister *p, rd_cmd *cmd, const warm_target *target,
                       const warm_kind *kind, char *last, size_t last_size, bool *exists)
{
    char bucket[16];
    snprintf(bucket, sizeof bucket, "%d", target->all ? -1 : (int)target->bucket);
    const char *params[4] = {target->sku, last, WARM_RECORDS_TEXT, bucket};
    PGresult *rows = query(p, kind->sql, 4, params);
    if (rows == NULL)
        return false;
    int count = PQntuples(rows);
    bool ok = true;
    /* An id's entry names where its record lives: the SKU, or "S j" for a
     * bucket j > 0 (rd_cb_location), as the backend writes it. */
    char owner[RD_OWNER_MAX], entry[RD_OWNER_MAX + 2];
    rd_cb_location(stock_id_from_cstr(target->sku), target->bucket, owner);
    snprintf(entry, sizeof entry, "1 %s", owner);
    for (int i = 0; ok && i < count; i++) {   /* the directory first */
        char key[PERSIST_KEY_MAX + STOCK_ID_MAX];
        snprintf(key, sizeof key, "%s{%s:%s}", p->redis->options.prefix, kind->kind,
                 PQgetvalue(rows, i, 0));
        redisContext *conn = outbox_conn_of(p, key);
        redisReply *reply = conn == NULL ? NULL : redisCommand(conn, "SET %s %s NX", key, entry);
        ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
        freeReplyObject(reply);
    }
    if (ok && count > 0) {
        warm_call_start(p, cmd, target);
        rd_cmd_argf(cmd, "%s", target->position);
        rd_cmd_argf(cmd, "0");
        for (int k = 0; k < 4; k++)
            rd_cmd_argf(cmd, "0");
        rd_cmd_argf(cmd, "%d", count);
        for (int i = 0; i < count; i++) {
            rd_cmd_argf(cmd, "%d", kind->key);
            rd_cmd_argf(cmd, "%s", PQgetvalue(rows, i, 0));
            rd_cmd_argf(cmd, "%s", PQgetvalue(rows, i, 1));
        }
        char answer[16];
        ok = warm_call(p, cmd, answer, sizeof answer);
        *exists = ok && strcmp(answer, "exists") == 0;
    }
    if (!ok && p->error[0] == '\0')
        snprintf(p->error, sizeof p->error, "redis: directory entry refused");
    snprintf(last, last_size, "%s", count > 0 ? PQgetvalue(rows, count - 1, 0) : "");
    PQclear(rows);
    return ok;
}

/* Warms target's bucket with the totals av, adj, ded, ref (totals[0..3]).
 * *warmed: it was loaded (else Redis held it and it was left alone). */
static bool warm_bucket(persister *p, rd_cmd *cmd, warm_target *target,
                        const char *const *totals, bool *warmed)
{
    char stream[PERSIST_KEY_MAX];
    target_stream(p, target, stream, sizeof stream);
    const char *params[1] = {stream};
    PGresult *pos = query(p, "SELECT seq FROM stock_outbox_position WHERE stream = $1", 1, params);
    if (pos == NULL)
        return false;
    snprintf(target->position, sizeof target->position, "%s",
             PQntuples(pos) == 1 ? PQgetvalue(pos, 0, 0) : "0");
    PQclear(pos);
    bool exists = false;
    for (size_t k = 0; !exists && k < sizeof warm_kinds / sizeof warm_kinds[0]; k++) {
        char last[STOCK_ID_MAX + 1] = "";
        do {
            if (!warm_chunk(p, cmd, target, &warm_kinds[k], last, sizeof last, &exists))
                return false;
        } while (!exists && last[0] != '\0');
    }
    warm_call_start(p, cmd, target);
    rd_cmd_argf(cmd, "%s", target->position);
    rd_cmd_argf(cmd, "1");
    for (int k = 0; k < 4; k++)
        rd_cmd_argf(cmd, "%s", totals[k]);
    rd_cmd_argf(cmd, "0");
    char answer[16];
    if (!warm_call(p, cmd, answer, sizeof answer))
        return false;
    *warmed = strcmp(answer, "warmed") == 0;
    return true;
}

/* What became of a SKU. */
typedef enum warm_end { WARM_LOADED, WARM_HELD, WARM_REFUSED } warm_end;

/* Warms one SKU (row i: sku, av, adj, ded, ref, the most buckets its rows
 * say): into its home on a store without buckets on a cluster; else each
 * bucket row into its bucket, the home last. false: a failure (p->error). */
static bool warm_sku(persister *p, rd_cmd *cmd, const PGresult *row, int i, warm_end *end,
                     const stock_log_hook *log)
{
    warm_target target = {.sku = PQgetvalue(row, i, 0), .all = p->record_buckets == 0};
    long rows_buckets = strtol(PQgetvalue(row, i, 5), NULL, 10);
    if (rows_buckets > 1 && (uint32_t)rows_buckets != store_buckets(p)) {
        /* Folding its rows into other buckets would leave PostgreSQL's rows
         * apart from Redis's keys: later records of a bucket would move a
         * row that no longer says that bucket's stock. */
        stock_log(log, STOCK_LOG_WARNING, "warm: SKU %s refused: PostgreSQL holds it in %ld "
                  "buckets, the store has %u%s", target.sku, rows_buckets, store_buckets(p),
                  p->record_buckets == 0 ? " (layout " RD_LAYOUT_VERSION "): open the store "
                  "with cluster=1&buckets=K, K its rows' count, then warm again" : "");
        *end = WARM_REFUSED;
        return true;
    }
    bool warmed = false;
    if (target.all) {
        const char *totals[4];
        for (int k = 0; k < 4; k++)
            totals[k] = PQgetvalue(row, i, 1 + k);
        if (!warm_bucket(p, cmd, &target, totals, &warmed))
            return false;
        *end = warmed ? WARM_LOADED : WARM_HELD;
        return true;
    }
    const char *params[1] = {target.sku};
    PGresult *buckets = query(p, "SELECT bucket, leaved_amount, adjusted, deducted, refunded "
                              "FROM inventory WHERE sku_id = $1 ORDER BY bucket DESC", 1, params);
    if (buckets == NULL)
        return false;
    bool ok = true, any = false;
    for (int b = 0; ok && b < PQntuples(buckets); b++) {
        long bucket = strtol(PQgetvalue(buckets, b, 0), NULL, 10);
        if (bucket < 0 || (uint32_t)bucket >= store_buckets(p)) {
            snprintf(p->error, sizeof p->error, "PostgreSQL holds SKU %s's bucket %ld, past "
                     "the store's %u (its rows disagree with their count)", target.sku, bucket,
                     store_buckets(p));
            ok = false;
            break;
        }
        const char *totals[4];
        for (int k = 0; k < 4; k++)
            totals[k] = PQgetvalue(buckets, b, 1 + k);
        target.bucket = (uint32_t)bucket;
        ok = warm_bucket(p, cmd, &target, totals, &warmed);
        any = any || warmed;
    }
    PQclear(buckets);
    *end = any ? WARM_LOADED : WARM_HELD;
    return ok;
}
bool persist_warm(persister *p, const stock_log_hook *log)
{
    if (!outbox_connect(p) || !apply_connect(p)) {
        stock_log(log, STOCK_LOG_ERROR, "warm: %s", p->error);
        return false;
    }
    rd_cmd *cmd = malloc(sizeof *cmd);
    if (cmd == NULL) {
        stock_log(log, STOCK_LOG_ERROR, "warm: out of memory");
        return false;
    }
    char last[STOCK_ID_MAX + 1] = "";
    uint64_t ends[3] = {0};   /* SKUs loaded, left alone, refused (warm_end) */
    bool ok = true;
    for (;;) {
        const char *params[2] = {last, WARM_SKUS_TEXT};
        PGresult *rows = query(p, "SELECT sku_id, sum(leaved_amount), sum(adjusted), "
                               "sum(deducted), sum(refunded), max(buckets) FROM inventory "
                               "WHERE sku_id > $1 GROUP BY sku_id ORDER BY sku_id LIMIT $2",
                               2, params);
        ok = rows != NULL;
        int count = ok ? PQntuples(rows) : 0;
        for (int i = 0; ok && i < count; i++) {
            warm_end end = WARM_HELD;
            ok = warm_sku(p, cmd, rows, i, &end, log);
            ends[end] += ok;
        }
        if (count > 0)
            snprintf(last, sizeof last, "%s", PQgetvalue(rows, count - 1, 0));
        PQclear(rows);
        if (!ok || count < WARM_SKUS)
            break;
    }
    free(cmd);
    /* A refused SKU is not in Redis: the run fails, so that it is seen. */
    bool done = ok && ends[WARM_REFUSED] == 0;
    stock_log(log, done ? STOCK_LOG_NOTICE : STOCK_LOG_ERROR, "warm %s: %" PRIu64 " SKUs loaded "
              "into Redis, %" PRIu64 " already there (left alone), %" PRIu64 " refused (another "
              "bucket count)%s%s", ok ? "done" : "stopped", ends[WARM_LOADED], ends[WARM_HELD],
              ends[WARM_REFUSED], ok ? "" : ": ", ok ? "" : p->error);
    return done;
}
