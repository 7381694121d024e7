/*
 * sharded_txn.c -- what the sharded backend does across members: the id
 * directory, carts over several shards by two-phase commit, and the
 * recovery of the transactions a crash leaves in doubt (docs/sharded.md).
 *
 * The directory. A refund or a read names a line without its SKU, and ids
 * must stay unique over the whole store while each member only knows its
 * own. So before a segment runs, every new id (line, order, refund,
 * adjustment) is claimed for the shard its op runs on, in stock_ids on the
 * id's home shard (shard_of the id). The claim commits before the op, so
 * after any crash a line that exists has an entry naming its shard; an
 * entry whose op failed is stale, and is taken over by the next op that
 * claims the id once the shard it names shows it does not hold the id.
 *
 * Two-phase commit. Each shard of the cart runs its lines (stock_order)
 * inside BEGIN on this store's control session; when every part succeeded,
 * each is PREPAREd under one gid, "stock:<map>:<coordinator>:<client>:<n>".
 * The decision is then recorded on the coordinator (the cart's lowest shard)
 * in stock_decisions, and only then COMMIT PREPARED runs on each part. A
 * recovery (at open, and the sweep) finds prepared parts of its map, inserts
 * "abort" for their gid unless a decision is there, and applies whichever
 * decision the table holds: whoever inserts first decides, so a coordinator
 * still running and a recovery never decide differently.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sharded.h"
#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/message.h"
#include "lib/result.h"

#define SHARD_GID_PREFIX "stock:"
/* SQLSTATE of COMMIT/ROLLBACK PREPARED for a gid that is gone (resolved). */
#define SHARD_SQLSTATE_UNDEFINED "42704"
/* ... and for one another session is finishing ("is busy"): the decision is
 * recorded before any COMMIT PREPARED, so that session carries it out. */
#define SHARD_SQLSTATE_BUSY "55000"

/* ------------------------------------------------------------- helpers */

static void op_fail(sharded_store *store, uint32_t index, stock_code code, const char *why)
{
    stock_op *op = store->ops[index];
    op->failed_line = -1;
    result_fail(op, code, "%s", why);
    store->routes[index] = SHARD_ROUTE_DONE;
}

bool shard_array_add(buf *array, uint32_t n, stock_id id)
{
    return (n == 0 || buf_append(array, ",", 1)) && pg_text_element(array, id);
}

bool shard_array_close(buf *array)
{
    return buf_append(array, "}", 2);   /* with the NUL */
}

static int64_t int_at(const PGresult *result, int row, int column)
{
    return strtoll(PQgetvalue(result, row, column), NULL, 10);
}

/* ----------------------------------------------------------- directory */

static const char shard_lookup_sql[] =
    "SELECT x.n::integer, d.shard FROM unnest($1::text[]) WITH ORDINALITY AS x(id, n) "
    "JOIN stock_ids d ON d.kind = 'L' AND d.id = x.id";

/* Finds the shard of every line that a refund or a read names, on the
 * line's home shard: no entry means the line was never deducted. */
static void lookup_home(sharded_store *store, uint32_t first, uint32_t end, uint32_t home)
{
    buf ids = {0};
    uint32_t n = 0;
    bool ok = buf_append(&ids, "{", 1);
    for (uint32_t k = first; k < end && ok; k++) {
        const stock_op *op = store->ops[k];
        bool wanted = (op->type == STOCK_OP_REFUND || op->type == STOCK_OP_LINE) &&
                      op->code == STOCK_OK && shard_of(store, op->line) == home;
        if (wanted) {
            ok = shard_array_add(&ids, n, op->line);
            store->picked[n++] = k;
        }
    }
    ok = ok && shard_array_close(&ids);
    char error[STOCK_MESSAGE_MAX] = "no memory for the directory lookup";
    PGresult *result = NULL;
    if (n > 0 && ok) {
        const char *values[1] = {(const char *)ids.data};
        result = shard_exec(store, home, shard_lookup_sql, 1, values, PGRES_TUPLES_OK, error,
                            sizeof error);
    }
    buf_free(&ids);
    if (n == 0) {
        PQclear(result);
        return;
    }
    bool found = PQresultStatus(result) == PGRES_TUPLES_OK;
    for (int row = 0; found && row < PQntuples(result); row++) {
        int64_t at = int_at(result, row, 0), shard = int_at(result, row, 1);
        if (at >= 1 && at <= n && shard >= 0 && shard < store->count)
            store->routes[store->picked[at - 1]] = (int32_t)shard;
    }
    PQclear(result);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = store->picked[i];
        stock_op *op = store->ops[k];
        if (!found)
            op_fail(store, k, STOCK_UNAVAILABLE, error);
        else if (store->routes[k] == SHARD_ROUTE_DONE && op->type == STOCK_OP_LINE)
            result_line_not_found(op, op->line);
        else if (store->routes[k] == SHARD_ROUTE_DONE)
            /* The refund's own id decides first (a used one is CONFLICT):
             * its claim finds that out, and the member it runs on then
             * answers NOT_FOUND for the line it does not hold. */
            store->routes[k] = (int32_t)shard_of(store, op->id);
    }
}

/* The shard of an order's coordinator: its lowest shard. */
static uint32_t order_coordinator(const sharded_store *store, const stock_op *op)
{
    uint32_t low = shard_line(store, op->lines[0].sku, op->lines[0].line_id);
    for (uint32_t k = 1; k < op->line_count; k++) {
        uint32_t shard = shard_line(store, op->lines[k].sku, op->lines[k].line_id);
        low = shard < low ? shard : low;
    }
    return low;
}

static void claim(sharded_store *store, uint32_t op, int32_t line, char kind, stock_id id,
                  int32_t target)
{
    store->claims[store->claim_count++] = (shard_claim){
        .op = op, .line = line, .kind = kind, .id = id,
        .home = shard_of(store, id), .target = target};
}

/* The ids the undecided ops of [first, end) must claim. */
static void collect_claims(sharded_store *store, uint32_t first, uint32_t end)
{
    store->claim_count = 0;
    for (uint32_t k = first; k < end; k++) {
        const stock_op *op = store->ops[k];
        int32_t route = store->routes[k];
        if (op->code != STOCK_OK || route == SHARD_ROUTE_DONE)
            continue;
        if (op->type == STOCK_OP_ADD && op->id.ptr != NULL)   /* a hot restock: piece 0 */
            claim(store, k, -1, SHARD_KIND_ADJUST, op->id,
                  route == SHARD_ROUTE_SPREAD ? (int32_t)shard_of(store, op->sku) : route);
        else if (op->type == STOCK_OP_DEDUCT)
            claim(store, k, -1, SHARD_KIND_LINE, op->id, route);
        else if (op->type == STOCK_OP_REFUND)
            claim(store, k, -1, SHARD_KIND_REFUND, op->id, route);
        if (op->type != STOCK_OP_ORDER)
            continue;
        claim(store, k, -1, SHARD_KIND_ORDER, op->id,
              route >= 0 ? route : SHARD_CART(order_coordinator(store, op)));
        for (uint32_t i = 0; i < op->line_count; i++)
            claim(store, k, (int32_t)i, SHARD_KIND_LINE, op->lines[i].line_id,
                  (int32_t)shard_line(store, op->lines[i].sku, op->lines[i].line_id));
    }
}

/* The claim's id is held by another op: its op fails with CONFLICT (for an
 * order, the order's own id first, else its earliest line). */
static void claim_conflict(sharded_store *store, const shard_claim *c)
{
    stock_op *op = store->ops[c->op];
    store->routes[c->op] = SHARD_ROUTE_DONE;
    if (op->type != STOCK_OP_ORDER) {
        result_conflict(op, c->kind == SHARD_KIND_LINE ? "line"
                            : c->kind == SHARD_KIND_REFUND ? "refund" : "adjustment", c->id);
        return;
    }
    bool better = op->code != STOCK_CONFLICT ||
                  (op->failed_line >= 0 && (c->line < 0 || c->line < op->failed_line));
    if (!better)
        return;
    op->failed_line = c->line;
    if (c->line < 0)
        result_conflict(op, "order", op->id);
    else
        result_conflict(op, "line", op->lines[c->line].line_id);
}

/* Whether the holder of a deduction's line (or a write-off's id) is
 * another piece of its hot SKU: the op ran there before (sharded_hot.c
 * moves ops between pieces), and a retry goes back to it. */
static bool piece_holds(const sharded_store *store, const shard_claim *c, uint32_t holder)
{
    const stock_op *op = store->ops[c->op];
    if (c->line >= 0 || (op->type != STOCK_OP_DEDUCT && op->type != STOCK_OP_ADD))
        return false;
    for (uint32_t j = 0; j < shard_spread(store, op->sku); j++)
        if (shard_piece(store, op->sku, j) == holder)
            return j > 0 || shard_spread(store, op->sku) > 1;
    return false;
}

bool shard_unfence(sharded_store *store, uint32_t shard, char kind, stock_id id, char *error,
                   size_t size)
{
    char kind_text[2] = {kind, '\0'}, text[STOCK_ID_MAX + 1];
    snprintf(text, sizeof text, "%.*s", (int)id.len, id.ptr);
    const char *values[2] = {kind_text, text};
    PGresult *result = shard_exec(store, shard, "DELETE FROM stock_fences WHERE kind = $1 AND "
                                  "id = $2", 2, values, PGRES_COMMAND_OK, error, size);
    PQclear(result);
    return result != NULL;
}

/* A claim that another shard holds: CONFLICT if that shard has the id, else
 * the entry was stale and is taken over. The holder is fenced first: the
 * op that claimed the id there (this store's, or another's still on its
 * way) can then never use it, so two claimants never both win. False on
 * an error (in error). */
static bool settle_claim(sharded_store *store, const shard_claim *c, int32_t entry,
                         char *error, size_t size)
{
    uint32_t holder = SHARD_OF_ENTRY(entry);
    char kind[2] = {c->kind, '\0'}, id[STOCK_ID_MAX + 1], target[16], seen[16];
    snprintf(id, sizeof id, "%.*s", (int)c->id.len, c->id.ptr);
    snprintf(target, sizeof target, "%d", c->target);
    snprintf(seen, sizeof seen, "%d", entry);
    const char *values[4] = {kind, id, target, seen};
    shard_barrier(store);   /* the holder's op may still be in flight */
    PGresult *result = shard_exec(store, holder, "SELECT stock_id_fence($1, $2)", 2, values,
                                  PGRES_TUPLES_OK, error, size);
    if (result == NULL)
        return false;
    bool used = PQntuples(result) == 1 && PQgetvalue(result, 0, 0)[0] == 't';
    PQclear(result);
    if (used && piece_holds(store, c, holder)) {
        store->routes[c->op] = (int32_t)holder;   /* a retry: the member replays it */
        return true;
    }
    /* An order's line too: after a move, a hot SKU's line may be on
     * another piece than its hash now picks. Once one of the order's
     * claims found it a replay, its other claims need not read again. */
    if (used && store->ops[c->op]->type == STOCK_OP_ORDER &&
        (store->ops[c->op]->code == STOCK_REPLAY || shard_order_moved(store, store->ops[c->op]))) {
        store->routes[c->op] = SHARD_ROUTE_DONE;   /* a retry after a move: a replay */
        return true;
    }
    if (used) {
        claim_conflict(store, c);
        return true;
    }
    if (!shard_unfence(store, SHARD_OF_ENTRY(c->target), c->kind, c->id, error, size))
        return false;
    /* Only the entry that was fenced: another store may have taken it over
     * meanwhile, and its op may be running on the shard it names now. */
    result = shard_exec(store, c->home, "UPDATE stock_ids SET shard = $3::integer WHERE "
                        "kind = $1 AND id = $2 AND shard = $4::integer", 4, values,
                        PGRES_COMMAND_OK, error, size);
    if (result == NULL)
        return false;
    bool taken = strcmp(PQcmdTuples(result), "1") == 0;
    PQclear(result);
    if (!taken) {
        char why[STOCK_MESSAGE_MAX];
        message_set(why, sizeof why, "another store claimed the id %s at the same time; not "
                    "applied", id);
        op_fail(store, c->op, STOCK_UNAVAILABLE, why);
    }
    return true;
}

/* Whether a claim still matters: its op is undecided, or it is an order
 * refused for a line that an earlier line may still precede. */
static bool claim_pending(const stock_op *op)
{
    return op->code == STOCK_OK || (op->type == STOCK_OP_ORDER && op->code == STOCK_CONFLICT);
}

/* One home shard's claims in flight: picked[base .. base + count) index
 * them in store->claims. */
typedef struct claim_request {
    uint32_t base, count;
    PGresult *result;           /* NULL until received, or on failure */
    char error[STOCK_MESSAGE_MAX];
} claim_request;

/* Sends the claims of one home shard as one statement, without waiting,
 * so that every home works at once. False (request->error) on failure. */
static bool claim_send(sharded_store *store, uint32_t home, claim_request *request)
{
    buf kinds = {0}, ids = {0}, shards = {0};
    uint32_t n = 0, *picked = store->picked + request->base;
    bool ok = buf_append(&kinds, "{", 1) && buf_append(&ids, "{", 1) &&
              buf_append(&shards, "{", 1);
    for (uint32_t i = 0; i < store->claim_count && ok; i++) {
        const shard_claim *c = &store->claims[i];
        if (c->home != home || !claim_pending(store->ops[c->op]))
            continue;
        char target[16];
        int len = snprintf(target, sizeof target, "%s%d", n > 0 ? "," : "", c->target);
        ok = shard_array_add(&kinds, n, (stock_id){&c->kind, 1}) && shard_array_add(&ids, n, c->id) &&
             buf_append(&shards, target, (size_t)len);
        picked[n++] = i;
    }
    request->count = n;
    ok = ok && shard_array_close(&kinds) && shard_array_close(&ids) && shard_array_close(&shards);
    message_set(request->error, sizeof request->error, "no memory for the directory");
    PGconn *conn = ok && n > 0 ? shard_control(store, home, request->error,
                                               sizeof request->error) : NULL;
    if (conn != NULL) {
        const char *values[3] = {(char *)kinds.data, (char *)ids.data, (char *)shards.data};
        ok = PQsendQueryParams(conn, "SELECT n, shard FROM stock_ids_claim($1::text[], "
                               "$2::text[], $3::integer[])", 3, NULL, values, NULL, NULL, 0) == 1;
        if (!ok)
            message_set(request->error, sizeof request->error, "shard %u: %s", home,
                        PQerrorMessage(conn));
    }
    buf_free(&kinds);
    buf_free(&ids);
    buf_free(&shards);
    return n == 0 || (conn != NULL && ok);
}

/* Waits for the answer of a sent request until deadline_us (one deadline
 * for every home: they work at once). False (request->error) on failure; a
 * home that broke or did not answer is marked down. */
static bool claim_receive(sharded_store *store, uint32_t home, claim_request *request,
                          int64_t deadline_us)
{
    PGconn *conn = store->shards[home].control;
    request->result = pg_result_until(conn, deadline_us);
    if (PQresultStatus(request->result) == PGRES_TUPLES_OK)
        return true;
    const char *why = pg_error_message(conn, request->result);
    message_set(request->error, sizeof request->error, "shard %u: %.*s", home,
                (int)strcspn(why, "\n"), why);
    if (request->result == NULL)
        shard_mark_down(store, home);
    PQclear(request->result);
    request->result = NULL;
    return false;
}

/* Settles the claims another shard holds, once every session is idle. */
static bool claim_settle(sharded_store *store, uint32_t home, claim_request *request)
{
    bool ok = true;
    for (int row = 0; ok && row < PQntuples(request->result); row++) {
        int64_t at = int_at(request->result, row, 0), entry = int_at(request->result, row, 1);
        uint32_t holder = entry < INT32_MIN || entry > INT32_MAX ? SHARD_MAX
                                                                 : SHARD_OF_ENTRY((int32_t)entry);
        if (at < 1 || at > request->count || holder >= store->count) {
            message_set(request->error, sizeof request->error,
                        "shard %u: a directory entry names no member", home);
            ok = false;
        } else {
            ok = settle_claim(store, &store->claims[store->picked[request->base + at - 1]],
                              (int32_t)entry, request->error, sizeof request->error);
        }
    }
    PQclear(request->result);
    request->result = NULL;
    return ok;
}

/* The ops whose ids this home keeps cannot run: nothing of them was
 * applied (a claim alone changes no stock). */
static void claims_fail(sharded_store *store, uint32_t home, const char *error)
{
    for (uint32_t i = 0; i < store->claim_count; i++) {
        const shard_claim *c = &store->claims[i];
        if (c->home == home && claim_pending(store->ops[c->op]))
            op_fail(store, c->op, STOCK_UNAVAILABLE, error);
    }
}

/* Every home's claims: sent to all, then received from all, then settled. */
static void claim_all(sharded_store *store)
{
    claim_request requests[SHARD_MAX];
    bool sent[SHARD_MAX];
    uint32_t base = 0;
    for (uint32_t home = 0; home < store->count; home++) {
        requests[home] = (claim_request){.base = base};
        sent[home] = claim_send(store, home, &requests[home]);
        base += requests[home].count;
    }
    int64_t deadline_us = pg_deadline(shard_timeout_ms(store));
    for (uint32_t home = 0; home < store->count; home++)
        if (sent[home] && requests[home].count > 0)
            sent[home] = claim_receive(store, home, &requests[home], deadline_us);
    for (uint32_t home = 0; home < store->count; home++) {
        if (sent[home] && requests[home].count > 0)
            sent[home] = claim_settle(store, home, &requests[home]);
        if (!sent[home])
            claims_fail(store, home, requests[home].error);
    }
}

/* Runs a query of two text parameters whose one row holds booleans; NULL
 * (error says) on failure. */
static PGresult *ask(sharded_store *store, uint32_t shard, const char *sql, stock_id a,
                     stock_id b, char *error, size_t size)
{
    char first[STOCK_ID_MAX + 1], second[STOCK_ID_MAX + 1];
    snprintf(first, sizeof first, "%.*s", (int)a.len, a.ptr);
    snprintf(second, sizeof second, "%.*s", (int)b.len, b.ptr);
    const char *values[2] = {first, second};
    PGresult *result = shard_exec(store, shard, sql, 2, values, PGRES_TUPLES_OK, error, size);
    if (result != NULL && PQntuples(result) != 1) {
        message_set(error, size, "shard %u: %d rows where one was expected", shard,
                    PQntuples(result));
        PQclear(result);
        result = NULL;
    }
    return result;
}

/* An order one of whose lines another shard holds fails as one database
 * would have failed it: the order's own id first (if it was used), else
 * the earliest line that is used or names no SKU. */
static void refine_order_conflict(sharded_store *store, uint32_t index)
{
    stock_op *op = store->ops[index];
    char error[STOCK_MESSAGE_MAX];
    shard_barrier(store);   /* what earlier ops did to these lines */
    /* The shard the order's id was claimed for: its lowest (its only one
     * when the order is not across shards). */
    PGresult *result = ask(store, order_coordinator(store, op), "SELECT stock_id_used('O', $1), $2 = ''", op->id,
                           (stock_id){"", 0}, error, sizeof error);
    bool order_used = result != NULL && PQgetvalue(result, 0, 0)[0] == 't';
    PQclear(result);
    if (result == NULL) {
        op_fail(store, index, STOCK_UNAVAILABLE, error);
        return;
    }
    if (order_used) {
        op->failed_line = -1;
        result_conflict(op, "order", op->id);
        return;
    }
    for (int32_t k = 0; k < op->failed_line; k++) {
        const stock_order_line *line = &op->lines[k];
        result = ask(store, shard_line(store, line->sku, line->line_id), "SELECT stock_id_used('L', $1), "
                     "EXISTS (SELECT 1 FROM inventory WHERE sku_id = $2)", line->line_id,
                     line->sku, error, sizeof error);
        if (result == NULL) {
            op_fail(store, index, STOCK_UNAVAILABLE, error);
            return;
        }
        bool used = PQgetvalue(result, 0, 0)[0] == 't', known = PQgetvalue(result, 0, 1)[0] == 't';
        PQclear(result);
        if (used || !known) {
            op->failed_line = k;
            if (used)
                result_conflict(op, "line", line->line_id);
            else
                result_sku_not_found(op, line->sku);
            return;
        }
    }
}

/* Ops bound for a member marked down fail at once: sending them would cost
 * the member's timeout, and every barrier behind them too. */
static void refuse_down(sharded_store *store, uint32_t first, uint32_t end)
{
    for (uint32_t k = first; k < end; k++) {
        int32_t route = store->routes[k];
        if (route >= 0 && store->ops[k]->code == STOCK_OK && shard_down(store, (uint32_t)route)) {
            char why[STOCK_MESSAGE_MAX];
            message_set(why, sizeof why, "shard %d (%s) is unreachable; not applied", route,
                        store->shards[route].name);
            op_fail(store, k, STOCK_UNAVAILABLE, why);
        }
    }
}

void shard_directory(sharded_store *store, uint32_t first, uint32_t end)
{
    for (uint32_t home = 0; home < store->count; home++)
        lookup_home(store, first, end, home);
    refuse_down(store, first, end);
    collect_claims(store, first, end);
    claim_all(store);
    for (uint32_t k = first; k < end; k++)
        if (store->ops[k]->type == STOCK_OP_ORDER && store->ops[k]->code == STOCK_CONFLICT &&
            store->ops[k]->failed_line >= 0)
            refine_order_conflict(store, k);
}

/* ------------------------------------------------------------ recovery */

/* Whether gid is a gid of this backend: only [0-9a-f:] after the prefix,
 * so that it can be quoted in COMMIT PREPARED. *coordinator receives its
 * coordinator's position. */
static bool gid_parse(const char *gid, const char *map_id, uint32_t *coordinator)
{
    size_t prefix = strlen(SHARD_GID_PREFIX), map = strlen(map_id);
    if (strncmp(gid, SHARD_GID_PREFIX, prefix) != 0 || strncmp(gid + prefix, map_id, map) != 0 ||
        gid[prefix + map] != ':' || strspn(gid + prefix, "0123456789abcdef:") != strlen(gid + prefix))
        return false;
    char *end = NULL;
    unsigned long position = strtoul(gid + prefix + map + 1, &end, 10);
    if (end == gid + prefix + map + 1 || *end != ':' || position >= SHARD_MAX)
        return false;
    *coordinator = (uint32_t)position;
    return true;
}

int shard_decide(PGconn *conn, uint32_t timeout_ms, const char *gid, bool commit, char *error,
                 size_t size)
{
    char now[24];
    snprintf(now, sizeof now, "%" PRId64, clock_now_us(CLOCK_REALTIME));
    const char *values[3] = {gid, commit ? "t" : "f", now};
    int64_t deadline_us = pg_deadline(timeout_ms);
    PGresult *result = pg_exec_until(conn, "INSERT INTO stock_decisions VALUES ($1, "
                                     "$2::boolean, $3::bigint) ON CONFLICT (gid) DO NOTHING",
                                     3, values, deadline_us);
    bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
    if (ok) {
        /* A statement of its own: it sees a decision committed meanwhile. */
        PQclear(result);
        result = pg_exec_until(conn, "SELECT commit FROM stock_decisions WHERE gid = $1", 1,
                               values, deadline_us);
        ok = PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1;
    }
    int decision = ok ? PQgetvalue(result, 0, 0)[0] == 't' : -1;
    if (!ok) {
        const char *why = pg_error_message(conn, result);
        message_set(error, size, "recording the decision of %s: %.*s", gid,
                    (int)strcspn(why, "\n"), why);
    }
    PQclear(result);
    return decision;
}

bool shard_finish_prepared(PGconn *conn, uint32_t timeout_ms, const char *gid, bool commit,
                           char *error, size_t size)
{
    char sql[SHARD_GID_MAX + 32];
    snprintf(sql, sizeof sql, "%s PREPARED '%s'", commit ? "COMMIT" : "ROLLBACK", gid);
    PGresult *result = pg_exec_until(conn, sql, 0, NULL, pg_deadline(timeout_ms));
    const char *state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    bool ok = PQresultStatus(result) == PGRES_COMMAND_OK ||
              (state != NULL && (strcmp(state, SHARD_SQLSTATE_UNDEFINED) == 0 ||
                                 strcmp(state, SHARD_SQLSTATE_BUSY) == 0));
    if (!ok) {
        const char *why = pg_error_message(conn, result);
        message_set(error, size, "%s: %.*s", sql, (int)strcspn(why, "\n"), why);
    }
    PQclear(result);
    return ok;
}

/* Resolves one prepared gid found on conn; false on an error. */
static bool resolve_one(PGconn *const *conns, uint32_t count, PGconn *conn, const char *gid,
                        const char *map_id, uint32_t timeout_ms, const stock_log_hook *log,
                        char *error, size_t size)
{
    uint32_t coordinator = 0;
    if (!gid_parse(gid, map_id, &coordinator) || coordinator >= count)
        return true;   /* not one of ours: someone else's to resolve */
    if (conns[coordinator] == NULL) {
        message_set(error, size, "%s: its coordinator, shard %u, is unreachable", gid,
                    coordinator);
        return false;
    }
    int decision = shard_decide(conns[coordinator], timeout_ms, gid, false, error, size);
    if (decision < 0 || !shard_finish_prepared(conn, timeout_ms, gid, decision == 1, error, size))
        return false;
    stock_log(log, STOCK_LOG_NOTICE, "sharded: in-doubt transaction %s %s", gid,
              decision == 1 ? "committed (its decision was commit)"
                            : "rolled back (no commit was decided)");
    return true;
}

int shard_resolve_in_doubt(PGconn *const *conns, uint32_t count, const char *map_id,
                           int grace_s, uint32_t timeout_ms, const stock_log_hook *log,
                           char *error, size_t size)
{
    char pattern[SHARD_GID_MAX], grace[16];
    snprintf(pattern, sizeof pattern, SHARD_GID_PREFIX "%s:%%", map_id);
    snprintf(grace, sizeof grace, "%d", grace_s);
    const char *values[2] = {pattern, grace};
    int resolved = 0;
    bool ok = true;
    for (uint32_t i = 0; i < count; i++) {
        if (conns[i] == NULL)
            continue;
        PGresult *result = shard_query(conns[i], i, timeout_ms, "SELECT gid FROM "
                                       "pg_prepared_xacts WHERE database = current_database() "
                                       "AND gid LIKE $1 AND prepared <= now() - "
                                       "make_interval(secs => $2::integer)", 2, values,
                                       PGRES_TUPLES_OK, error, size);
        ok = ok && result != NULL;
        for (int row = 0; ok && row < PQntuples(result); row++) {
            ok = resolve_one(conns, count, conns[i], PQgetvalue(result, row, 0), map_id,
                             timeout_ms, log, error, size);
            resolved += ok;
        }
        PQclear(result);
    }
    return ok ? resolved : -1;
}

/* ------------------------------------------------------------- pruning */

/* The gids of this map prepared on any member, as an array literal; false
 * (error says) if a member cannot be read. */
static bool prepared_gids(PGconn *const *conns, uint32_t count, const char *pattern,
                          uint32_t timeout_ms, buf *gids, char *error, size_t size)
{
    uint32_t n = 0;
    bool ok = buf_append(gids, "{", 1);
    for (uint32_t i = 0; ok && i < count; i++) {
        const char *values[1] = {pattern};
        PGresult *result = conns[i] == NULL ? NULL
            : shard_query(conns[i], i, timeout_ms, "SELECT gid FROM pg_prepared_xacts "
                          "WHERE gid LIKE $1", 1, values, PGRES_TUPLES_OK, error, size);
        if (conns[i] == NULL)
            message_set(error, size, "shard %u is unreachable: pruning waits", i);
        ok = result != NULL;
        for (int row = 0; ok && row < PQntuples(result); row++) {
            const char *gid = PQgetvalue(result, row, 0);
            ok = shard_array_add(gids, n++, (stock_id){gid, (uint32_t)strlen(gid)});
        }
        PQclear(result);
    }
    return ok && shard_array_close(gids);
}

int shard_prune_decisions(PGconn *const *conns, uint32_t count, const char *map_id,
                          uint32_t timeout_ms, char *error, size_t size)
{
    /* The ages are read before the listing: a decision old enough was
     * written before it began, so a part it still needs is in it. */
    char pattern[SHARD_GID_MAX], commit_before[24], abort_before[24];
    snprintf(pattern, sizeof pattern, SHARD_GID_PREFIX "%s:%%", map_id);
    int64_t now = clock_now_us(CLOCK_REALTIME);
    snprintf(commit_before, sizeof commit_before, "%" PRId64,
             now - (int64_t)SHARD_PRUNE_COMMIT_AGE_S * 1000000);
    snprintf(abort_before, sizeof abort_before, "%" PRId64,
             now - (int64_t)SHARD_PRUNE_ABORT_AGE_S * 1000000);
    buf gids = {0};
    int removed = 0;
    bool ok = prepared_gids(conns, count, pattern, timeout_ms, &gids, error, size);
    for (uint32_t i = 0; ok && i < count; i++) {
        const char *values[4] = {pattern, commit_before, abort_before, (const char *)gids.data};
        PGresult *result = shard_query(conns[i], i, timeout_ms, "DELETE FROM stock_decisions "
                                       "WHERE gid LIKE $1 AND time_us < CASE WHEN commit THEN "
                                       "$2::bigint ELSE $3::bigint END AND gid <> ALL "
                                       "($4::text[])", 4, values, PGRES_COMMAND_OK, error, size);
        ok = result != NULL;
        removed += ok ? atoi(PQcmdTuples(result)) : 0;
        PQclear(result);
    }
    buf_free(&gids);
    return ok ? removed : -1;
}

/* --------------------------------------------------------------- fences */

/* Lifts the fence of (kind, id) on member i if its directory entry, on its
 * home, names i: no op can then be sent elsewhere for it. */
static int heal_one(const sharded_store *store, PGconn *const *conns, uint32_t i,
                    const char *kind, const char *id, uint32_t timeout_ms, char *error,
                    size_t size)
{
    uint32_t home = shard_of(store, (stock_id){id, (uint32_t)strlen(id)});
    if (conns[home] == NULL)
        return 0;
    const char *values[2] = {kind, id};
    PGresult *result = shard_query(conns[home], home, timeout_ms, "SELECT shard FROM stock_ids "
                                   "WHERE kind = $1 AND id = $2", 2, values, PGRES_TUPLES_OK,
                                   error, size);
    if (result == NULL)
        return -1;
    bool named = PQntuples(result) == 1 &&
                 SHARD_OF_ENTRY((int32_t)int_at(result, 0, 0)) == i;
    PQclear(result);
    if (!named)
        return 0;
    result = shard_query(conns[i], i, timeout_ms, "DELETE FROM stock_fences WHERE kind = $1 "
                         "AND id = $2", 2, values, PGRES_COMMAND_OK, error, size);
    PQclear(result);
    return result != NULL ? 1 : -1;
}

/* heal_one on every fence of member i older than before (microseconds),
 * page by page in key order, so that the fences that must stay (their
 * entry names another shard) do not hide the ones after them. */
static int heal_member(const sharded_store *store, PGconn *const *conns, uint32_t i,
                       const char *before, uint32_t timeout_ms, char *error, size_t size)
{
    char kind[2] = "", id[STOCK_ID_MAX + 1] = "", page[16];
    snprintf(page, sizeof page, "%d", SHARD_FENCE_HEAL_PAGE);
    int healed = 0, rows = SHARD_FENCE_HEAL_PAGE;
    while (rows == SHARD_FENCE_HEAL_PAGE && healed >= 0) {
        const char *values[4] = {before, kind, id, page};
        PGresult *result = shard_query(conns[i], i, timeout_ms, "SELECT kind, id FROM "
                                       "stock_fences WHERE time_us < $1::bigint AND (kind, id) "
                                       "> ($2, $3) ORDER BY kind, id LIMIT $4::integer", 4,
                                       values, PGRES_TUPLES_OK, error, size);
        if (result == NULL)
            return -1;
        rows = PQntuples(result);
        for (int row = 0; row < rows && healed >= 0; row++) {
            snprintf(kind, sizeof kind, "%s", PQgetvalue(result, row, 0));
            snprintf(id, sizeof id, "%s", PQgetvalue(result, row, 1));
            int one = heal_one(store, conns, i, kind, id, timeout_ms, error, size);
            healed = one < 0 ? -1 : healed + one;
        }
        PQclear(result);
    }
    return healed;
}

int shard_heal_fences(const sharded_store *store, PGconn *const *conns, uint32_t timeout_ms,
                      char *error, size_t size)
{
    char before[24];
    snprintf(before, sizeof before, "%" PRId64,
             clock_now_us(CLOCK_REALTIME) - (int64_t)SHARD_FENCE_HEAL_AGE_S * 1000000);
    int healed = 0;
    for (uint32_t i = 0; i < store->count && healed >= 0; i++) {
        int one = conns[i] != NULL ? heal_member(store, conns, i, before, timeout_ms, error, size)
                                   : 0;
        healed = one < 0 ? -1 : healed + one;
    }
    return healed;
}
