/*
 * persist_warm.c -- the warm-up (stockpersist --warm): loads every SKU of the PostgreSQL
 * database into a Redis that does not hold it (a cold cache, a new server),
 * with its lines, refunds and adjustments, so that replays, refunds and LINE
 * work there as before. Compare-and-set on the Redis side (the function
 * stockd_v1_warm): a SKU Redis holds is left alone, so a warm-up never
 * counts anything twice, even beside live traffic or run twice. The outbox
 * stream of each SKU's slot is moved up to PostgreSQL's position for it, so
 * that the persister never takes a new record for one applied before.
 *
 * Per SKU: each record id's directory entry (SET NX, in the id's slot)
 * before the records, as the backend writes them (docs/redis.md, "Ids and
 * their directory"); the records in calls of WARM_RECORDS_TEXT; the totals last.
 * The SKUs and their records are read in key order, a chunk at a time, so
 * memory stays bounded whatever the store's size.
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
    const char *sql;                /* $1 sku, $2 the last id read, $3 the chunk; id, text */
    int key;
    const char *kind;
} warm_kind;

static const warm_kind warm_kinds[] = {
    {"SELECT line_id, qty || ' ' || refunded || ' ' || time_us || ' ' || available_after || ' '"
     " || CASE WHEN order_id = '' THEN '-' ELSE order_id END FROM inventory_flow"
     " WHERE sku_id = $1 AND line_id > $2 ORDER BY line_id LIMIT $3", 2, "line"},
    {"SELECT r.refund_id, r.line_id || ' ' || r.qty || ' ' || r.available"
     " FROM inventory_refunds r JOIN inventory_flow f ON f.line_id = r.line_id"
     " WHERE f.sku_id = $1 AND r.refund_id > $2 ORDER BY r.refund_id LIMIT $3", 3, "refund"},
    {"SELECT adjust_id, delta || ' ' || available FROM inventory_adjustments"
     " WHERE sku_id = $1 AND adjust_id > $2 ORDER BY adjust_id LIMIT $3", 4, "adjust"},
};

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

/* Pushes the warm call's keys for sku. */
static void warm_call_start(persister *p, rd_cmd *cmd, stock_id sku)
{
    const char *prefix = p->redis->options.prefix;
    rd_cmd_fcall(cmd, "warm");
    rd_cmd_key(cmd, prefix, "sku", sku, "");
    rd_cmd_key(cmd, prefix, "sku", sku, ":flow");
    rd_cmd_key(cmd, prefix, "sku", sku, ":refunds");
    rd_cmd_key(cmd, prefix, "sku", sku, ":adjust");
    rd_cmd_outbox(cmd, prefix, sku);
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
 * done). Returns false on a failure, *exists when Redis holds the SKU. */
static bool warm_chunk(persister *p, rd_cmd *cmd, const char *sku, const char *position,
                       const warm_kind *kind, char *last, size_t last_size, bool *exists)
{
    const char *params[3] = {sku, last, WARM_RECORDS_TEXT};
    PGresult *rows = query(p, kind->sql, 3, params);
    if (rows == NULL)
        return false;
    int count = PQntuples(rows);
    bool ok = true;
    for (int i = 0; ok && i < count; i++) {   /* the directory first */
        char entry[STOCK_ID_MAX + 8];
        snprintf(entry, sizeof entry, "1 %s", sku);
        char key[PERSIST_KEY_MAX + STOCK_ID_MAX];
        snprintf(key, sizeof key, "%s{%s:%s}", p->redis->options.prefix, kind->kind,
                 PQgetvalue(rows, i, 0));
        redisContext *conn = outbox_conn_of(p, key);
        redisReply *reply = conn == NULL ? NULL : redisCommand(conn, "SET %s %s NX", key, entry);
        ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
        freeReplyObject(reply);
    }
    if (ok && count > 0) {
        warm_call_start(p, cmd, stock_id_from_cstr(sku));
        rd_cmd_argf(cmd, "%s", position);
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

/* Warms one SKU (row: sku, av, adj, ded, ref). *warmed: it was loaded. */
static bool warm_sku(persister *p, rd_cmd *cmd, const PGresult *row, int i, bool *warmed)
{
    const char *sku = PQgetvalue(row, i, 0);
    char stream[PERSIST_KEY_MAX];
    snprintf(stream, sizeof stream, "%s{outbox:%s}", p->redis->options.prefix,
             rd_slot_tag(rd_tag_slot("sku", stock_id_from_cstr(sku))));
    const char *params[1] = {stream};
    PGresult *pos = query(p, "SELECT seq FROM stock_outbox_position WHERE stream = $1", 1, params);
    if (pos == NULL)
        return false;
    char position[24];
    snprintf(position, sizeof position, "%s", PQntuples(pos) == 1 ? PQgetvalue(pos, 0, 0) : "0");
    PQclear(pos);
    bool exists = false;
    for (size_t k = 0; !exists && k < sizeof warm_kinds / sizeof warm_kinds[0]; k++) {
        char last[STOCK_ID_MAX + 1] = "";
        do {
            if (!warm_chunk(p, cmd, sku, position, &warm_kinds[k], last, sizeof last, &exists))
                return false;
        } while (!exists && last[0] != '\0');
    }
    warm_call_start(p, cmd, stock_id_from_cstr(sku));
    rd_cmd_argf(cmd, "%s", position);
    rd_cmd_argf(cmd, "1");
    for (int k = 1; k <= 4; k++)
        rd_cmd_argf(cmd, "%s", PQgetvalue(row, i, k));
    rd_cmd_argf(cmd, "0");
    char answer[16];
    if (!warm_call(p, cmd, answer, sizeof answer))
        return false;
    *warmed = strcmp(answer, "warmed") == 0;
    return true;
}

bool persist_warm(persister *p, const stock_log_hook *log)
{
    if (!outbox_connect(p) || !apply_connect(p)) {
        stock_log(log, STOCK_LOG_ERROR, "warm: %s", p->error);
        return false;
    }
    if (p->record_buckets > 0) {
        /* It would load each SKU's sum into its home, while PostgreSQL keeps
         * a row per bucket that later records of the other buckets move. */
        stock_log(log, STOCK_LOG_ERROR, "warm: the store holds layout " RD_LAYOUT_BUCKETS
                  " (buckets on a Redis Cluster): a warm-up of it is not built yet");
        return false;
    }
    rd_cmd *cmd = malloc(sizeof *cmd);
    if (cmd == NULL) {
        stock_log(log, STOCK_LOG_ERROR, "warm: out of memory");
        return false;
    }
    char last[STOCK_ID_MAX + 1] = "";
    uint64_t warmed = 0, held = 0;
    bool ok = true;
    for (;;) {
        const char *params[2] = {last, WARM_SKUS_TEXT};
        PGresult *rows = query(p, "SELECT sku_id, sum(leaved_amount), sum(adjusted), "
                               "sum(deducted), sum(refunded) FROM inventory WHERE sku_id > $1 "
                               "GROUP BY sku_id ORDER BY sku_id LIMIT $2", 2, params);
        ok = rows != NULL;
        int count = ok ? PQntuples(rows) : 0;
        for (int i = 0; ok && i < count; i++) {
            bool loaded = false;
            ok = warm_sku(p, cmd, rows, i, &loaded);
            warmed += loaded;
            held += !loaded;
        }
        if (count > 0)
            snprintf(last, sizeof last, "%s", PQgetvalue(rows, count - 1, 0));
        PQclear(rows);
        if (!ok || count < WARM_SKUS)
            break;
    }
    free(cmd);
    stock_log(log, ok ? STOCK_LOG_NOTICE : STOCK_LOG_ERROR, "warm %s: %" PRIu64 " SKUs loaded "
              "into Redis, %" PRIu64 " already there (left alone)%s%s", ok ? "done" : "stopped",
              warmed, held, ok ? "" : ": ", ok ? "" : p->error);
    return ok;
}
