/*
 * sharded.c -- the sharded backend: one store over several PostgreSQL
 * databases (docs/sharded.md). The URI names the members in order,
 *
 *     shards:postgres://host1/db;postgres://host2/db;...
 *
 * each a postgres backend URI with its own options (stock_merge,
 * stock_buckets, stock_replica). Each member is opened as a postgres store
 * (postgres.c), which runs the single-shard work; this backend only routes.
 *
 * A SKU lives on one member, chosen by rendezvous hashing of its id over the
 * members' positions (shard_of), with its flow rows, so that a deduction
 * stays one local transaction. Ids that later ops name without their SKU
 * (lines, which refunds and reads name alone) or that must stay unique over
 * the whole store (orders, refunds, adjustments) are claimed in a directory
 * on their own home member before the op runs (sharded_txn.c).
 *
 * Threading: stock_submit queues the batch for this backend's worker
 * (lib/worker.h). The worker cuts the chain into segments -- runs of ops in
 * which no id repeats, ended by an order over several members -- and for
 * each segment routes the ops through the directory and hands each member
 * its share as one batch (sharded_dispatch.c): the members run in parallel,
 * each in order, and the worker goes on without waiting, since a member's
 * queue keeps its ops in order and the directory's claims commit before
 * their ops are sent. A batch completes when its last member batch does,
 * after every batch before it. An order over several members waits for
 * every op before it and runs alone, by two-phase commit.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "backend/sharded.h"
#include "lib/batches.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/message.h"
#include "lib/result.h"

uint32_t shard_of(const sharded_store *store, stock_id id)
{
    uint32_t best = 0;
    uint64_t best_score = 0;
    for (uint32_t i = 0; i < store->count; i++) {
        uint64_t score = XXH3_64bits_withSeed(id.ptr, id.len, (uint64_t)i + 1);
        if (i == 0 || score > best_score) {
            best = i;
            best_score = score;
        }
    }
    return best;
}

static bool sharded_accepts(const char *uri)
{
    return strncmp(uri, SHARD_SCHEME, strlen(SHARD_SCHEME)) == 0;
}

/* ------------------------------------------------------------- control */

uint32_t shard_timeout_ms(const sharded_store *store)
{
    uint32_t longest = 0;
    for (uint32_t i = 0; i < store->count; i++)
        if (store->shards[i].options.timeout_ms > longest)
            longest = store->shards[i].options.timeout_ms;
    return longest;
}

bool shard_down(sharded_store *store, uint32_t i)
{
    return atomic_load(&store->shards[i].down);
}

void shard_mark_down(sharded_store *store, uint32_t i)
{
    shard *member = &store->shards[i];
    atomic_store(&member->down, true);
    PQfinish(member->control);
    member->control = NULL;
}

PGresult *shard_query(PGconn *conn, uint32_t i, uint32_t timeout_ms, const char *sql, int count,
                      const char *const *values, ExecStatusType want, char *error, size_t size)
{
    PGresult *result = pg_exec_until(conn, sql, count, values, pg_deadline(timeout_ms));
    if (PQresultStatus(result) == want)
        return result;
    const char *why = pg_error_message(conn, result);
    message_set(error, size, "shard %u: %.*s", i, (int)strcspn(why, "\n"), why);
    PQclear(result);
    return NULL;
}

PGresult *shard_exec(sharded_store *store, uint32_t i, const char *sql, int count,
                     const char *const *values, ExecStatusType want, char *error, size_t size)
{
    PGconn *conn = shard_control(store, i, error, size);
    if (conn == NULL)
        return NULL;
    PGresult *result = shard_query(conn, i, store->shards[i].options.timeout_ms, sql, count,
                                   values, want, error, size);
    if (result == NULL && pg_lost_or(conn, STOCK_IO) == STOCK_UNAVAILABLE)
        shard_mark_down(store, i);
    return result;
}

PGconn *shard_control(sharded_store *store, uint32_t i, char *error, size_t size)
{
    shard *member = &store->shards[i];
    if (member->control != NULL && PQstatus(member->control) == CONNECTION_OK &&
        PQtransactionStatus(member->control) == PQTRANS_IDLE)
        return member->control;
    PQfinish(member->control);
    member->control = NULL;
    if (shard_down(store, i)) {
        message_set(error, size, "shard %u (%s) is unreachable (it is tried again every "
                    "second)", i, member->name);
        return NULL;
    }
    char why[STOCK_MESSAGE_MAX];
    if (pg_session_open(&member->options, store->client_id, &member->control, why,
                        sizeof why) != STOCK_OK) {
        message_set(error, size, "shard %u: %s", i, why);
        shard_mark_down(store, i);
        return NULL;
    }
    if (member->name[0] == '\0')
        snprintf(member->name, sizeof member->name, "%s:%s/%s", PQhost(member->control),
                 PQport(member->control), PQdb(member->control));
    /* Decisions and claims are durable whatever the store's durability:
     * recovery trusts them. */
    PGresult *result = shard_query(member->control, i, member->options.timeout_ms,
                                   "SET synchronous_commit = on", 0, NULL, PGRES_COMMAND_OK,
                                   error, size);
    PQclear(result);
    if (result == NULL)
        shard_mark_down(store, i);
    return member->control;
}

/* ------------------------------------------------------------- segments */

static uint32_t key_hash(char kind, stock_id id)
{
    return (uint32_t)XXH3_64bits_withSeed(id.ptr, id.len, (uint64_t)(unsigned char)kind);
}

/* Adds (kind, id) to the segment's keys; false if it is there already. */
static bool key_add(sharded_store *store, char kind, stock_id id)
{
    uint32_t mask = SHARD_KEY_SLOTS - 1;
    uint32_t slot = key_hash(kind, id) & mask;
    while (store->slots[slot] != 0) {
        const shard_key *key = &store->keys[store->slots[slot] - 1];
        if (key->kind == kind && id_equal(key->id, id))
            return false;
        slot = (slot + 1) & mask;
    }
    store->keys[store->key_count] = (shard_key){kind, id, slot};
    store->slots[slot] = ++store->key_count;
    return true;
}

static void keys_clear(sharded_store *store)
{
    for (uint32_t k = 0; k < store->key_count; k++)
        store->slots[store->keys[k].slot] = 0;
    store->key_count = 0;
}

/* The ids an op names: a line refunded or read, a new line, order, refund
 * or adjustment. False if one repeats an id of the segment (the op then
 * starts the next one); the keys added for it are left, harmless. */
static bool op_keys(sharded_store *store, const stock_op *op)
{
    bool fresh = true;
    switch (op->type) {
    case STOCK_OP_ADD:
        return op->id.ptr == NULL || key_add(store, SHARD_KIND_ADJUST, op->id);
    case STOCK_OP_DEDUCT:
        return key_add(store, SHARD_KIND_LINE, op->id);
    case STOCK_OP_ORDER:
        fresh = key_add(store, SHARD_KIND_ORDER, op->id);
        for (uint32_t k = 0; k < op->line_count; k++)
            fresh = key_add(store, SHARD_KIND_LINE, op->lines[k].line_id) && fresh;
        return fresh;
    case STOCK_OP_REFUND:
        fresh = key_add(store, SHARD_KIND_REFUND, op->id);
        return key_add(store, SHARD_KIND_LINE, op->line) && fresh;
    case STOCK_OP_LINE:
        return key_add(store, SHARD_KIND_LINE, op->line);
    case STOCK_OP_SET:
    case STOCK_OP_GET:
        return true;
    case STOCK_OP_HOLD: case STOCK_OP_CONFIRM: case STOCK_OP_RELEASE:
    case STOCK_OP_CONFIRM_ORDER: case STOCK_OP_HOLD_GET:
        assert(!"stock_submit answers holds UNSUPPORTED (backend.h)");
        break;
    }
    return true;
}

/* The shard of each op that its SKU decides (for a hot SKU: a deduction's
 * piece, piece 0 for the rest), SHARD_ROUTE_CROSS for an order over
 * several, SHARD_ROUTE_SPREAD for a set or restock of a hot SKU; refunds and reads
 * of lines get theirs from the directory. */
static int32_t op_route(const sharded_store *store, const stock_op *op)
{
    switch (op->type) {
    case STOCK_OP_ORDER: {
        if (shard_hot_order(store, op))
            return SHARD_ROUTE_CROSS;   /* its hot SKUs' pieces cover its lines together */
        uint32_t first = shard_line(store, op->lines[0].sku, op->lines[0].line_id);
        for (uint32_t k = 1; k < op->line_count; k++)
            if (shard_line(store, op->lines[k].sku, op->lines[k].line_id) != first)
                return SHARD_ROUTE_CROSS;
        return (int32_t)first;
    }
    case STOCK_OP_REFUND:
    case STOCK_OP_LINE:
        return store->count == 1 ? 0 : SHARD_ROUTE_DONE;
    case STOCK_OP_DEDUCT:
        return (int32_t)shard_line(store, op->sku, op->id);
    case STOCK_OP_SET:
        return shard_spread(store, op->sku) > 1 ? SHARD_ROUTE_SPREAD
                                                : (int32_t)shard_of(store, op->sku);
    case STOCK_OP_ADD:
        return shard_spread(store, op->sku) > 1 && op->amount > 0
                   ? SHARD_ROUTE_SPREAD : (int32_t)shard_of(store, op->sku);
    default:
        return (int32_t)shard_of(store, op->sku);
    }
}

/* Where the segment starting at first ends: before the first op that
 * repeats an id, at an order over several members or a set or restock of a
 * hot SKU (each a segment of its own), or when the key table is full. */
static bool alone(int32_t route)
{
    return route == SHARD_ROUTE_CROSS || route == SHARD_ROUTE_SPREAD;
}

static uint32_t segment_end(sharded_store *store, uint32_t first)
{
    keys_clear(store);
    if (store->count == 1)
        return store->op_count;
    if (alone(store->routes[first]))
        return first + 1;
    uint32_t end = first;
    while (end < store->op_count && !alone(store->routes[end]) &&
           store->key_count + 2 * STOCK_ORDER_LINES_MAX < SHARD_SEGMENT_KEYS &&
           (op_keys(store, store->ops[end]) || end == first))
        end++;
    return end;
}

/* --------------------------------------------------------------- worker */

static void run_chain(stock_t *base, stock_batch *chain)
{
    sharded_store *store = (sharded_store *)base;
    store->op_count = 0;
    for (stock_batch *batch = chain; batch != NULL; batch = batch->next)
        for (size_t i = 0; i < batch->count; i++)
            if (batch->ops[i].code == STOCK_OK)   /* not already INVALID */
                store->ops[store->op_count++] = &batch->ops[i];
    for (uint32_t k = 0; k < store->op_count; k++)
        store->routes[k] = op_route(store, store->ops[k]);
    shard_flight *flight = shard_flight_begin(store, chain);
    if (flight == NULL) {
        shard_quiesce(store);
        batches_fail(chain, STOCK_NOMEM, "no memory to route the batch");
        batches_complete(&store->base, chain);
        return;
    }
    for (uint32_t first = 0; first < store->op_count;) {
        uint32_t end = segment_end(store, first);
        if (store->count > 1 && !alone(store->routes[first]))
            end = shard_hot_plan(store, first, end);
        if (store->count > 1)
            shard_directory(store, first, end);
        stock_op *op = store->ops[first];
        if (alone(store->routes[first]) && op->code == STOCK_OK) {
            shard_barrier(store);   /* it sees every op before it */
            if (store->routes[first] == SHARD_ROUTE_CROSS)
                shard_order_across(store, op);
            else if (op->type == STOCK_OP_SET)
                shard_hot_set(store, op);
            else
                shard_hot_restock(store, op);
        } else if (!alone(store->routes[first])) {
            shard_dispatch(store, first, end, flight);
            shard_hot_settle(store, first, end);
        }
        first = end;
    }
    shard_flight_end(store, flight);
}

static const worker_tasks shard_tasks = {.run = run_chain};

/* ---------------------------------------------------------------- sweep */

/* Clears the mark of each member marked down that answers the sweep's
 * session, so that the worker uses it again. */
static void probe_down(sharded_store *store, PGconn *const *conns)
{
    for (uint32_t i = 0; i < store->count; i++) {
        if (conns[i] == NULL || !shard_down(store, i))
            continue;
        char why[STOCK_MESSAGE_MAX];
        PGresult *result = shard_query(conns[i], i, store->shards[i].options.timeout_ms,
                                       "SELECT 1", 0, NULL, PGRES_TUPLES_OK, why, sizeof why);
        if (result != NULL) {
            atomic_store(&store->shards[i].down, false);
            stock_log(&store->log, STOCK_LOG_NOTICE, "sharded: shard %u (%s) answers again", i,
                      store->shards[i].name);
        }
        PQclear(result);
    }
}

/* The sweep thread, on sessions of its own: every SHARD_SWEEP_INTERVAL_MS,
 * marks the members that answer again up (probe_down) and resolves the
 * in-doubt transactions older than SHARD_SWEEP_GRACE_S (a coordinator that
 * died between PREPARE and COMMIT PREPARED leaves them holding row locks);
 * every SHARD_PRUNE_INTERVAL_MS, prunes the finished decisions. */
static void *sweep_main(void *arg)
{
    sharded_store *store = arg;
    PGconn *conns[SHARD_MAX] = {0};
    int64_t prune_at_us = 0;   /* CLOCK_MONOTONIC: the next pruning */
    pthread_mutex_lock(&store->mutex);
    while (!store->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += SHARD_SWEEP_INTERVAL_MS / 1000;
        pthread_cond_timedwait(&store->stop, &store->mutex, &until);
        if (store->stopping)
            break;
        pthread_mutex_unlock(&store->mutex);
        for (uint32_t i = 0; i < store->count; i++) {
            if (conns[i] != NULL && PQstatus(conns[i]) == CONNECTION_OK &&
                PQtransactionStatus(conns[i]) == PQTRANS_IDLE)
                continue;   /* else lost, or left busy by a timeout */
            PQfinish(conns[i]);
            conns[i] = NULL;
            char why[STOCK_MESSAGE_MAX];
            if (pg_session_open(&store->shards[i].options, store->client_id, &conns[i], why,
                                sizeof why) != STOCK_OK)
                stock_log(&store->log, STOCK_LOG_WARNING, "sharded sweep: shard %u: %s", i, why);
        }
        probe_down(store, conns);
        char error[STOCK_MESSAGE_MAX];
        uint32_t timeout_ms = shard_timeout_ms(store);
        if (shard_resolve_in_doubt(conns, store->count, store->map_id, SHARD_SWEEP_GRACE_S,
                                   timeout_ms, &store->log, error, sizeof error) < 0)
            stock_log(&store->log, STOCK_LOG_WARNING, "sharded sweep: %s", error);
        if (clock_now_us(CLOCK_MONOTONIC) >= prune_at_us) {
            prune_at_us = clock_now_us(CLOCK_MONOTONIC) + SHARD_PRUNE_INTERVAL_MS * 1000LL;
            int pruned = shard_prune_decisions(conns, store->count, store->map_id, timeout_ms,
                                               error, sizeof error);
            if (pruned < 0)
                stock_log(&store->log, STOCK_LOG_WARNING, "sharded sweep: pruning: %s", error);
            else if (pruned > 0)
                stock_log(&store->log, STOCK_LOG_DEBUG, "sharded sweep: pruned %d decision(s)",
                          pruned);
            int healed = shard_heal_fences(store, conns, timeout_ms, error, sizeof error);
            if (healed < 0)
                stock_log(&store->log, STOCK_LOG_WARNING, "sharded sweep: fences: %s", error);
            else if (healed > 0)
                stock_log(&store->log, STOCK_LOG_NOTICE, "sharded sweep: lifted %d fence(s) "
                          "left on the shard their id's entry names", healed);
        }
        pthread_mutex_lock(&store->mutex);
    }
    pthread_mutex_unlock(&store->mutex);
    for (uint32_t i = 0; i < store->count; i++)
        PQfinish(conns[i]);
    return NULL;
}

/* -------------------------------------------------------------- backend */

static void sharded_submit(stock_t *base, stock_batch *batch)
{
    sharded_store *store = (sharded_store *)base;
    /* Over one member there is nothing to route, claim or coordinate: its
     * store takes the batch as it is. */
    if (store->count == 1)
        postgres_backend.submit(store->shards[0].store, batch);
    else
        worker_submit(&store->worker, batch);
}

/* The members' commits are the store's; over one member, its batches too. */
static stock_code sharded_get_stats(stock_t *base, stock_stats *stats)
{
    sharded_store *store = (sharded_store *)base;
    stock_stats sum = {0};
    for (uint32_t i = 0; i < store->count; i++) {
        stock_stats member = {0};
        stats_read(&store->shards[i].store->stats, &member);
        sum.batches += member.batches;
        sum.operations += member.operations;
        sum.syncs += member.syncs;
        sum.sync_latency_us_sum += member.sync_latency_us_sum;
        for (unsigned b = 0; b < STOCK_SYNC_BUCKETS; b++)
            sum.sync_latency_buckets[b] += member.sync_latency_buckets[b];
    }
    if (store->count == 1) {
        stats->batches = sum.batches;
        stats->operations = sum.operations;
    }
    stats->syncs = sum.syncs;
    stats->sync_latency_us_sum = sum.sync_latency_us_sum;
    memcpy(stats->sync_latency_buckets, sum.sync_latency_buckets, sizeof sum.sync_latency_buckets);
    return STOCK_OK;
}

static stock_code store_free(sharded_store *store)
{
    stock_code code = STOCK_OK;
    for (uint32_t i = 0; i < store->count; i++) {
        shard *member = &store->shards[i];
        if (member->store != NULL && postgres_backend.close(member->store) != STOCK_OK)
            code = STOCK_IO;
        PQfinish(member->control);
        pg_options_free(&member->options);
    }
    pthread_cond_destroy(&store->stop);
    pthread_cond_destroy(&store->done);
    pthread_mutex_destroy(&store->mutex);
    free(store->ops);
    free(store->routes);
    free(store->keys);
    free(store->slots);
    free(store->claims);
    free(store->picked);
    pg_plan_free(&store->plan);
    free(store->hot_text);
    free(store);
    return code;
}

static stock_code sharded_close(stock_t *base)
{
    sharded_store *store = (sharded_store *)base;
    worker_close(&store->worker);
    if (store->sweeping) {
        pthread_mutex_lock(&store->mutex);
        store->stopping = true;
        pthread_cond_signal(&store->stop);
        pthread_mutex_unlock(&store->mutex);
        pthread_join(store->sweeper, NULL);
    }
    return store_free(store);
}

static sharded_store *store_alloc(void)
{
    sharded_store *store = calloc(1, sizeof *store);
    if (store == NULL)
        return NULL;
    pthread_mutex_init(&store->mutex, NULL);
    pthread_cond_init(&store->done, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&store->stop, &attr);
    pthread_condattr_destroy(&attr);
    store->ops = calloc(STOCK_BATCH_MAX, sizeof store->ops[0]);
    store->routes = calloc(STOCK_BATCH_MAX, sizeof store->routes[0]);
    store->keys = calloc(SHARD_SEGMENT_KEYS, sizeof store->keys[0]);
    store->slots = calloc(SHARD_KEY_SLOTS, sizeof store->slots[0]);
    store->claims = calloc(SHARD_SEGMENT_KEYS, sizeof store->claims[0]);
    store->picked = calloc(SHARD_SEGMENT_KEYS, sizeof store->picked[0]);
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != sizeof id)
        id = (uint64_t)clock_now_us(CLOCK_REALTIME) ^ (uint64_t)getpid() << 32;
    store->client_id = (int64_t)(id >> 1);
    if (store->ops == NULL || store->routes == NULL || store->keys == NULL ||
        store->slots == NULL || store->claims == NULL || store->picked == NULL ||
        !pg_plan_init(&store->plan)) {
        store_free(store);
        return NULL;
    }
    return store;
}

/* Where the member URIs begin: after the scheme and the hot segment. */
static const char *shard_members(const char *uri)
{
    const char *text = uri + strlen(SHARD_SCHEME);
    if (strncmp(text, SHARD_HOT_PREFIX, strlen(SHARD_HOT_PREFIX)) != 0)
        return text;
    const char *end = strchr(text, SHARD_SEPARATOR);
    return end != NULL ? end + 1 : text + strlen(text);
}

/* Splits the URI into members and parses each one's options. */
stock_code shard_parse_members(sharded_store *store, const char *uri,
                               const stock_config *config, char *message, size_t size)
{
    const char *cursor = shard_members(uri);
    for (;;) {
        size_t len = strcspn(cursor, (const char[]){SHARD_SEPARATOR, '\0'});
        char member[PG_URI_MAX];
        if (len == 0 || len >= sizeof member || store->count == SHARD_MAX) {
            message_set(message, size, len == 0 ? "sharded: member %u of the URI is empty"
                        : len >= sizeof member ? "sharded: member %u is longer than 4095 bytes"
                        : "sharded: more than 16 members (from member %u on)", store->count);
            return STOCK_INVALID;
        }
        memcpy(member, cursor, len);
        member[len] = '\0';
        if (!pg_uri_accepts(member)) {
            message_set(message, size, "sharded: member %u is not a postgres:// or "
                        "postgresql:// URI", store->count);
            return STOCK_INVALID;
        }
        shard *next = &store->shards[store->count];
        stock_code code = pg_options_parse(member, config, &next->options, message, size);
        if (code != STOCK_OK)
            return code;
        store->count++;
        if (cursor[len] == '\0')
            return STOCK_OK;
        cursor += len + 1;
    }
}

/* Opens member i as a postgres store, and its control session. */
static stock_code open_member(sharded_store *store, uint32_t i, const char *uri,
                              const stock_config *config, char *message, size_t size)
{
    shard *member = &store->shards[i];
    const char *cursor = shard_members(uri);
    for (uint32_t k = 0; k < i; k++)
        cursor = strchr(cursor, SHARD_SEPARATOR) + 1;
    char text[PG_URI_MAX];
    snprintf(text, sizeof text, "%.*s", (int)strcspn(cursor, (const char[]){SHARD_SEPARATOR, '\0'}),
             cursor);
    char why[STOCK_MESSAGE_MAX];
    stock_code code = postgres_backend.open(text, config, &member->store, why, sizeof why);
    if (code != STOCK_OK) {
        message_set(message, size, "sharded: member %u: %s", i, why);
        return code;
    }
    if (shard_control(store, i, why, sizeof why) == NULL) {
        message_set(message, size, "sharded: member %u: %s", i, why);
        return STOCK_UNAVAILABLE;
    }
    return STOCK_OK;
}

/* PREPARE TRANSACTION needs max_prepared_transactions > 0 on every member
 * (one member has no carts over several shards). */
stock_code shard_check_prepared(sharded_store *store, char *message, size_t size)
{
    /* A server is its system identifier and its start: a copy of a cluster
     * started elsewhere has the identifier but is another server. */
    char server[SHARD_MAX][64];
    for (uint32_t i = 0; store->count > 1 && i < store->count; i++) {
        shard *member = &store->shards[i];
        char why[STOCK_MESSAGE_MAX];
        PGresult *result = shard_query(member->control, i, member->options.timeout_ms,
                                       "SELECT current_setting('max_prepared_transactions'), "
                                       "system_identifier || '@' || pg_postmaster_start_time() "
                                       "FROM pg_control_system()", 0, NULL, PGRES_TUPLES_OK, why,
                                       sizeof why);
        if (result == NULL) {
            message_set(message, size, "sharded: member %u (%s): %s", i, member->name, why);
            return pg_lost_or(member->control, STOCK_IO);
        }
        bool ok = PQntuples(result) == 1;
        int max = ok ? atoi(PQgetvalue(result, 0, 0)) : 0;
        snprintf(server[i], sizeof server[i], "%s", ok ? PQgetvalue(result, 0, 1) : "");
        PQclear(result);
        if (!ok || max <= 0) {
            message_set(message, size, "sharded: member %u (%s) has max_prepared_transactions "
                        "= 0: set it above 0 for the two-phase commit of carts over "
                        "several shards", i, member->name);
            return STOCK_INVALID;
        }
        for (uint32_t k = 0; k < i; k++)
            if (strcmp(server[k], server[i]) == 0) {
                message_set(message, size, "sharded: members %u (%s) and %u (%s) are databases "
                            "of one PostgreSQL server: the two-phase commit of a cart over both "
                            "would prepare one transaction name twice on it; give each member "
                            "a server of its own", k, store->shards[k].name, i, member->name);
                return STOCK_INVALID;
            }
    }
    return STOCK_OK;
}

/* Resolves what a crashed store left in doubt, before serving. */
static stock_code recover(sharded_store *store, char *message, size_t size)
{
    PGconn *conns[SHARD_MAX];
    for (uint32_t i = 0; i < store->count; i++)
        conns[i] = store->shards[i].control;
    char error[STOCK_MESSAGE_MAX];
    int resolved = shard_resolve_in_doubt(conns, store->count, store->map_id, 0,
                                          shard_timeout_ms(store), &store->log, error,
                                          sizeof error);
    if (resolved < 0) {
        message_set(message, size, "sharded: recovery: %s", error);
        return STOCK_IO;
    }
    if (resolved > 0)
        stock_log(&store->log, STOCK_LOG_NOTICE,
                  "sharded: recovery resolved %d in-doubt transaction(s) of map %s", resolved,
                  store->map_id);
    return STOCK_OK;
}

static stock_code open_all(sharded_store *store, const char *uri, const stock_config *config,
                           char *message, size_t size)
{
    stock_code code = shard_hot_parse(store, uri + strlen(SHARD_SCHEME), message, size);
    if (code == STOCK_OK)
        code = shard_parse_members(store, uri, config, message, size);
    if (code == STOCK_OK)
        code = shard_hot_check(store, message, size);
    for (uint32_t i = 0; code == STOCK_OK && i < store->count; i++)
        code = open_member(store, i, uri, config, message, size);
    if (code == STOCK_OK)
        code = shard_check_prepared(store, message, size);
    if (code == STOCK_OK)
        code = shard_map_check(store, message, size);
    if (code == STOCK_OK)
        code = recover(store, message, size);
    if (code == STOCK_OK)
        code = worker_start(&store->worker, &store->base, &shard_tasks, STOCK_BATCH_MAX);
    /* One member has no carts over several shards: nothing to sweep. */
    if (code == STOCK_OK && store->count > 1) {
        store->sweeping = pthread_create(&store->sweeper, NULL, sweep_main, store) == 0;
        if (!store->sweeping) {
            worker_close(&store->worker);
            message_set(message, size, "sharded: cannot start the sweep thread");
            code = STOCK_NOMEM;
        }
    }
    return code;
}

static stock_code sharded_open(const char *uri, const stock_config *config, stock_t **out,
                               char *message, size_t size)
{
    *out = NULL;
    sharded_store *store = store_alloc();
    if (store == NULL)
        return STOCK_NOMEM;
    store->base.ops = &sharded_backend;
    store->log = stock_log_hook_of(config);
    stock_code code = open_all(store, uri, config, message, size);
    if (code != STOCK_OK) {
        store_free(store);
        return code;
    }
    *out = &store->base;
    return STOCK_OK;
}

const stock_backend_ops sharded_backend = {
    .name = "sharded",
    .accepts = sharded_accepts,
    .open = sharded_open,
    .submit = sharded_submit,
    .close = sharded_close,
    .get_stats = sharded_get_stats,
    .list = sharded_list,
};
