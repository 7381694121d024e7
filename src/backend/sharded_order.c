/*
 * sharded_order.c -- a cart whose SKUs live on several shards, all or none,
 * by PostgreSQL's two-phase commit (the protocol and its recovery are
 * described at the top of sharded_txn.c and in docs/sharded.md).
 *
 * Each step is told to the log hook at DEBUG level before the next one
 * starts ("prepared", "decided", "committed"), so that a test can kill the
 * process at any step and check that recovery converges.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "backend/sharded.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/message.h"
#include "lib/result.h"

/* Runs a command on a part's session within its member's timeout; false
 * (run->error says why) on failure. */
static bool exec_command(sharded_store *store, order_run *run, const order_part *part,
                         const char *sql)
{
    PGresult *result = shard_query(part->conn, part->shard,
                                   store->shards[part->shard].options.timeout_ms, sql, 0, NULL,
                                   PGRES_COMMAND_OK, run->error, sizeof run->error);
    PQclear(result);
    return result != NULL;
}

/* Splits the cart's lines by shard, in shard order (the lowest is the
 * coordinator), with a part on every piece of its hot SKUs, lines or not. */
static void split(sharded_store *store, order_run *run)
{
    int32_t part_of[SHARD_MAX];
    memset(part_of, -1, sizeof part_of);
    for (uint32_t k = 0; k < run->op->line_count; k++) {
        const stock_order_line *line = &run->op->lines[k];
        part_of[shard_line(store, line->sku, line->line_id)] = 0;
        for (uint32_t j = 0; j < shard_spread(store, line->sku); j++)
            part_of[shard_piece(store, line->sku, j)] = 0;
    }
    for (uint32_t i = 0; i < store->count; i++)
        if (part_of[i] == 0) {
            part_of[i] = (int32_t)run->part_count;
            order_part *part = &run->parts[run->part_count++];
            part->shard = i;
            part->op = (stock_op){.type = STOCK_OP_ORDER, .id = run->op->id,
                                  .lines = part->lines};
        }
    for (uint32_t k = 0; k < run->op->line_count; k++) {
        const stock_order_line *line = &run->op->lines[k];
        order_part *part = &run->parts[part_of[shard_line(store, line->sku, line->line_id)]];
        part->global[part->op.line_count] = k;
        part->lines[part->op.line_count++] = run->op->lines[k];
    }
}

bool shard_cart_digest(const stock_op *op, char *digest, size_t size)
{
    XXH3_state_t *state = XXH3_createState();
    if (state == NULL)
        return false;
    XXH3_64bits_reset(state);
    for (uint32_t k = 0; k < op->line_count; k++) {
        const stock_order_line *line = &op->lines[k];
        XXH3_64bits_update(state, line->line_id.ptr, line->line_id.len);
        XXH3_64bits_update(state, "", 1);
        XXH3_64bits_update(state, line->sku.ptr, line->sku.len);
        XXH3_64bits_update(state, &line->qty, sizeof line->qty);
    }
    snprintf(digest, size, "%016llx", (unsigned long long)XXH3_64bits_digest(state));
    XXH3_freeState(state);
    return true;
}

/* Records the cart's digest in its lowest part with lines (insert), the
 * shard its directory entry names, or reads whether a replayed cart has
 * the same lines. False on an error. */
static bool cart_record(sharded_store *store, order_run *run, bool insert, bool *same)
{
    char id[STOCK_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)run->op->id.len, run->op->id.ptr);
    const char *values[2] = {id, run->digest};
    const order_part *coordinator = &run->parts[0];
    while (coordinator->op.line_count == 0)
        coordinator++;
    PGresult *result = shard_query(coordinator->conn, coordinator->shard,
                                   store->shards[coordinator->shard].options.timeout_ms,
                                   insert ? "INSERT INTO stock_carts VALUES ($1, $2)"
                                          : "SELECT digest = $2 FROM stock_carts "
                                            "WHERE order_id = $1",
                                   2, values, insert ? PGRES_COMMAND_OK : PGRES_TUPLES_OK,
                                   run->error, sizeof run->error);
    if (result != NULL && !insert)
        *same = PQntuples(result) == 1 && PQgetvalue(result, 0, 0)[0] == 't';
    PQclear(result);
    return result != NULL;
}

bool shard_part_begin(sharded_store *store, order_run *run, order_part *part)
{
    part->conn = shard_control(store, part->shard, run->error, sizeof run->error);
    if (part->conn == NULL)
        return false;
    part->begun = exec_command(store, run, part, "BEGIN");
    return part->begun;
}

bool shard_part_step(sharded_store *store, order_run *run, order_part *part, stock_op *op)
{
    pg_plan_build(&store->plan, &op, 1, false);
    /* Only the op's step, the last, is sent: the part runs in the
     * transaction of its run, not a token's, and a sharded store keeps no
     * holds for the sweep step to expire. */
    uint32_t step = store->plan.step_count - 1;
    assert(store->plan.steps[step].kind == PG_STEP_OP);
    const pg_options *options = &store->shards[part->shard].options;
    bool ok = pg_plan_send(&store->plan, step, part->conn, options->buckets, store->client_id,
                           0, clock_now_us(CLOCK_REALTIME));
    PGresult *result = ok ? pg_result_until(part->conn, pg_deadline(options->timeout_ms)) : NULL;
    ok = ok && PQresultStatus(result) == PGRES_TUPLES_OK &&
         pg_plan_complete(&store->plan, step, result);
    const char *state = result != NULL ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : NULL;
    const char *fenced = result != NULL ? PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL)
                                        : NULL;
    if (!ok && state != NULL && strcmp(state, PG_SQLSTATE_FENCED) == 0 && fenced != NULL &&
        pg_fenced_conflict(op, fenced)) {
        /* Taken over by another store's op: the part answers CONFLICT, and
         * the cart fails as it would on one database. */
        PQclear(result);
        return true;
    }
    if (!ok) {
        const char *why = pg_error_message(part->conn, result);
        message_set(run->error, sizeof run->error, "shard %u: %.*s", part->shard,
                    (int)strcspn(why, "\n"), why);
    }
    PQclear(result);
    return ok;
}

/* Runs the cart's parts inside BEGIN on their shards (each one's result
 * in part->op), after moving the units of its hot SKUs to the pieces that
 * take its lines. */
static bool run_parts(sharded_store *store, order_run *run)
{
    bool coordinator = true;
    for (uint32_t i = 0; i < run->part_count; i++) {
        order_part *part = &run->parts[i];
        if (!shard_part_begin(store, run, part))
            return false;
        /* Only the coordinator's part answers to a fence of the order id
         * (sharded_map.c, the fence triggers). */
        if (part->op.line_count > 0 && !coordinator &&
            !exec_command(store, run, part, "SET LOCAL stock.cart_part = on"))
            return false;
        coordinator = coordinator && part->op.line_count == 0;
    }
    if (!shard_hot_order_gather(store, run))
        return false;
    for (uint32_t i = 0; i < run->part_count; i++) {
        order_part *part = &run->parts[i];
        if (part->op.line_count > 0 && !shard_part_step(store, run, part, &part->op))
            return false;
    }
    return true;
}

/* The failure a single database would report: the order's own conflict
 * first, then the earliest line that conflicts or names no SKU, then the
 * earliest short one. */
static int failure_rank(const order_part *part)
{
    const stock_op *op = &part->op;
    if (op->failed_line < 0)
        return 0;
    int line = (int)part->global[op->failed_line];
    return op->code == STOCK_INSUFFICIENT ? 2 * STOCK_ORDER_LINES_MAX + line : 1 + line;
}

/* Whether a part's failure is a piece of a hot SKU short: the SKU's
 * total decides instead (short_hot). A piece without rows of a SKU that
 * other pieces have (one named hot after it was created, whose total did
 * not cover the cart, so no units moved there) answers NOT_FOUND. */
static bool hot_piece_short(const order_run *run, const order_part *part)
{
    const stock_op *op = &part->op;
    if (op->failed_line < 0 || (op->code != STOCK_INSUFFICIENT && op->code != STOCK_NOT_FOUND))
        return false;
    int h = shard_hot_index(run, part->lines[op->failed_line].sku);
    return h >= 0 && (op->code == STOCK_INSUFFICIENT || run->hot[h].rows > 0);
}

/* The earliest hot SKU of the cart whose total does not cover its lines
 * (by its first line), -1 if none. */
static int short_hot(const order_run *run)
{
    int found = -1;
    for (uint32_t h = 0; h < run->hot_count; h++) {
        const hot_line_sku *hot = &run->hot[h];
        if (hot->rows > 0 && hot->total < hot->need &&
            (found < 0 || hot->first < run->hot[found].first))
            found = (int)h;
    }
    return found;
}

/* Sets the cart's result from its parts' (every part ran); true when they
 * all succeeded and the cart must commit. A hot SKU's lines answer its
 * total, less the cart's lines of it so far. */
static bool merge_results(order_run *run, bool *replay)
{
    const order_part *worst = NULL;
    uint32_t replays = 0, parts = 0;
    for (uint32_t i = 0; i < run->part_count; i++) {
        const order_part *part = &run->parts[i];
        if (part->op.line_count == 0)
            continue;
        parts++;
        if (part->op.code == STOCK_REPLAY)
            replays++;
        if (!stock_code_succeeded(part->op.code) && !hot_piece_short(run, part) &&
            (worst == NULL || failure_rank(part) < failure_rank(worst)))
            worst = part;
    }
    stock_op *op = run->op;
    int hot = replays > 0 ? -1 : short_hot(run);
    if (hot >= 0 && (worst == NULL || failure_rank(worst) >=
                                          2 * STOCK_ORDER_LINES_MAX + (int)run->hot[hot].first)) {
        op->failed_line = (int32_t)run->hot[hot].first;
        result_insufficient(op, run->hot[hot].sku, run->hot[hot].total);
        return false;
    }
    if (worst != NULL) {
        int32_t line = worst->op.failed_line;
        op->failed_line = line < 0 ? -1 : (int32_t)worst->global[line];
        op->code = worst->op.code;
        op->available = worst->op.available;
        memcpy(op->message, worst->op.message, sizeof op->message);
        return false;
    }
    if (replays > 0 && replays < parts) {
        /* Some shards hold the order and some do not: other lines. */
        op->failed_line = -1;
        result_conflict(op, "order", op->id);
        return false;
    }
    *replay = replays > 0;
    for (uint32_t i = 0; i < run->part_count; i++)
        for (uint32_t k = 0; k < run->parts[i].op.line_count; k++)
            op->lines[run->parts[i].global[k]].available = run->parts[i].lines[k].available;
    for (uint32_t h = 0; !*replay && h < run->hot_count; h++) {
        int64_t left = run->hot[h].total;
        for (uint32_t k = 0; k < op->line_count; k++)
            if (id_equal(op->lines[k].sku, run->hot[h].sku))
                op->lines[k].available = left -= op->lines[k].qty;
    }
    op->code = *replay ? STOCK_REPLAY : STOCK_OK;
    return !*replay;
}

void shard_abandon(sharded_store *store, order_run *run)
{
    char error[STOCK_MESSAGE_MAX];
    for (uint32_t i = 0; i < run->part_count; i++) {
        order_part *part = &run->parts[i];
        if (!part->begun || PQstatus(part->conn) != CONNECTION_OK)
            continue;
        if (PQisBusy(part->conn)) {
            /* It did not answer in time: dropping the session rolls back
             * what it has not prepared; the sweep rolls back the rest. */
            shard_mark_down(store, part->shard);
            continue;
        }
        char sql[SHARD_GID_MAX + 32];
        snprintf(sql, sizeof sql, "ROLLBACK PREPARED '%s'", run->gid);
        PGresult *result = shard_query(part->conn, part->shard,
                                       store->shards[part->shard].options.timeout_ms,
                                       part->prepared ? sql : "ROLLBACK", 0, NULL,
                                       PGRES_COMMAND_OK, error, sizeof error);
        PQclear(result);
    }
}

static void fail(stock_op *op, stock_code code, const char *what, const char *error)
{
    op->failed_line = -1;
    result_fail(op, code, "%s%s", what, error);
}

/* PREPARE TRANSACTION on every part, in shard order. */
static bool prepare_all(sharded_store *store, order_run *run)
{
    char sql[SHARD_GID_MAX + 32];
    snprintf(sql, sizeof sql, "PREPARE TRANSACTION '%s'", run->gid);
    for (uint32_t i = 0; i < run->part_count; i++) {
        order_part *part = &run->parts[i];
        part->prepared = exec_command(store, run, part, sql);
        if (!part->prepared)
            return false;
        stock_log(&store->log, STOCK_LOG_DEBUG, "sharded: %s prepared on shard %u", run->gid,
                  part->shard);
    }
    return true;
}

/* COMMIT PREPARED on every part, once commit is decided. A part that fails
 * here stays prepared until the sweep commits it: the decision holds. */
static void commit_all(sharded_store *store, order_run *run)
{
    for (uint32_t i = 0; i < run->part_count; i++) {
        order_part *part = &run->parts[i];
        char error[STOCK_MESSAGE_MAX];
        if (shard_finish_prepared(part->conn, store->shards[part->shard].options.timeout_ms,
                                  run->gid, true, error, sizeof error))
            stock_log(&store->log, STOCK_LOG_DEBUG, "sharded: %s committed on shard %u",
                      run->gid, part->shard);
        else
            stock_log(&store->log, STOCK_LOG_WARNING, "sharded: %s: %s; the sweep will "
                      "commit it", run->gid, error);
    }
}

void shard_two_phase(sharded_store *store, order_run *run)
{
    snprintf(run->gid, sizeof run->gid, "stock:%s:%u:%" PRIx64 ":%" PRIu64, store->map_id,
             run->parts[0].shard, (uint64_t)store->client_id, ++store->order_seq);
    stock_log(&store->log, STOCK_LOG_DEBUG, "sharded: %s ran on %u shards, preparing", run->gid,
              run->part_count);
    if (!prepare_all(store, run)) {
        shard_abandon(store, run);
        fail(run->op, STOCK_UNAVAILABLE, "the cart was not applied: ", run->error);
        return;
    }
    int decision = shard_decide(run->parts[0].conn,
                                store->shards[run->parts[0].shard].options.timeout_ms, run->gid,
                                true, run->error, sizeof run->error);
    if (decision < 0) {
        /* The decision may or may not have committed: recovery settles it,
         * and a retry with the same order id answers REPLAY if it did. */
        fail(run->op, STOCK_UNAVAILABLE, "the outcome is unknown until the coordinator's "
             "shard is back; retry with the same id: ", run->error);
        return;
    }
    stock_log(&store->log, STOCK_LOG_DEBUG, "sharded: %s decided %s", run->gid,
              decision == 1 ? "commit" : "abort");
    if (decision == 0) {
        /* A recovery decided first (it took the cart for a dead one's). */
        shard_abandon(store, run);
        fail(run->op, STOCK_UNAVAILABLE, "the cart was not applied: a recovery rolled it "
             "back while it was prepared", "");
        return;
    }
    commit_all(store, run);
}

void shard_order_across(sharded_store *store, stock_op *op)
{
    order_run *run = calloc(1, sizeof *run);
    if (run != NULL)
        run->op = op;
    if (run == NULL || !shard_cart_digest(op, run->digest, sizeof run->digest)) {
        free(run);
        fail(op, STOCK_NOMEM, "no memory for a cart over several shards", "");
        return;
    }
    split(store, run);
    bool ran = run_parts(store, run);
    bool replay = false, same = false;
    if (!ran) {
        shard_abandon(store, run);
        fail(op, STOCK_UNAVAILABLE, "the cart was not applied: ", run->error);
    } else if (!merge_results(run, &replay)) {
        if (replay && !cart_record(store, run, false, &same))
            fail(op, STOCK_UNAVAILABLE, "the cart's replay could not be checked: ", run->error);
        else if (replay && !same)
            result_conflict(op, "order", op->id);   /* the same lines, in another order */
        shard_abandon(store, run);
        /* Its parts no longer match where a move left its lines. */
        if (op->code == STOCK_CONFLICT && op->failed_line < 0)
            shard_order_moved(store, op);
    } else if (!shard_hot_order_afters(store, run) || !cart_record(store, run, true, &same)) {
        shard_abandon(store, run);
        fail(op, STOCK_UNAVAILABLE, "the cart was not applied: ", run->error);
    } else {
        shard_two_phase(store, run);
    }
    free(run);
}

/* The lines of an order on one member, and a row with the digest of its
 * cart if the member coordinated one (a move leaves it there). */
static const char moved_lines_sql[] =
    "SELECT line_id, sku_id, qty, position, available_after, NULL FROM inventory_flow "
    "WHERE order_id = $1 UNION ALL "
    "SELECT NULL, NULL, NULL, NULL, NULL, digest FROM stock_carts WHERE order_id = $1";

bool shard_order_moved(sharded_store *store, stock_op *op)
{
    char id[STOCK_ID_MAX + 1], digest[24], error[STOCK_MESSAGE_MAX];
    snprintf(id, sizeof id, "%.*s", (int)op->id.len, op->id.ptr);
    if (!shard_cart_digest(op, digest, sizeof digest))
        return false;
    const char *values[1] = {id};
    int64_t afters[STOCK_ORDER_LINES_MAX];
    bool found[STOCK_ORDER_LINES_MAX] = {false}, cart = false, same = true, in_place = true;
    uint32_t rows = 0;
    for (uint32_t i = 0; i < store->count && same; i++) {
        PGresult *result = shard_exec(store, i, moved_lines_sql, 1, values, PGRES_TUPLES_OK,
                                      error, sizeof error);
        if (result == NULL)
            return false;   /* the order's conflict stands */
        for (int r = 0; r < PQntuples(result) && same; r++) {
            if (PQgetisnull(result, r, 0)) {
                cart = true;
                same = strcmp(PQgetvalue(result, r, 5), digest) == 0;
                continue;
            }
            rows++;
            const char *line = PQgetvalue(result, r, 0);
            uint32_t k = 0;
            while (k < op->line_count && (strlen(line) != op->lines[k].line_id.len ||
                                          memcmp(line, op->lines[k].line_id.ptr,
                                                 op->lines[k].line_id.len) != 0))
                k++;
            const char *sku = PQgetvalue(result, r, 1);
            same = k < op->line_count && !found[k] && strlen(sku) == op->lines[k].sku.len &&
                   memcmp(sku, op->lines[k].sku.ptr, op->lines[k].sku.len) == 0 &&
                   strtoll(PQgetvalue(result, r, 2), NULL, 10) == op->lines[k].qty;
            if (!same)
                break;
            found[k] = true;
            in_place = in_place && strtoll(PQgetvalue(result, r, 3), NULL, 10) == (int64_t)k;
            afters[k] = strtoll(PQgetvalue(result, r, 4), NULL, 10);
        }
        PQclear(result);
    }
    /* Its lines in its order: a cart's digest says so, a one-member
     * order's positions. */
    if (!same || rows != op->line_count || !(cart || in_place))
        return false;
    op->code = STOCK_REPLAY;
    op->failed_line = -1;
    op->message[0] = '\0';
    for (uint32_t k = 0; k < op->line_count; k++)
        op->lines[k].available = afters[k];
    return true;
}
