/*
 * sharded_hot.c -- hot SKUs across shards (docs/sharded.md, "Hot SKUs
 * across shards"): a SKU named hot by the URI ("hot=<K>:<sku>,...") has K
 * pieces, each an ordinary SKU of the same id on its own member: piece j on
 * the member ranked j-th by the SKU's rendezvous score, so piece 0 is the
 * shard the SKU would have anyway and the pieces are K different members.
 *
 * A deduction runs on the piece its line id's hash picks, so that the
 * SKU's load reaches K databases; its line stays with that piece, and the
 * directory names the piece's shard, so a refund goes back to it. A piece
 * that cannot cover a deduction (or a write-off) does not refuse it while
 * the SKU's total does: once the segment's parts are done, the worker tries
 * the other pieces, one local transaction each (the directory re-pointed
 * first), and if no piece alone covers it, moves stock from the others to
 * the fullest and takes it there, all by two-phase commit. A set runs on
 * every piece by two-phase commit; reads and "available" sum the pieces.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "backend/sharded.h"
#include "lib/buf.h"
#include "lib/id.h"
#include "lib/message.h"
#include "lib/result.h"

/* Seeds the hash that picks a line's piece, apart from the shard hash. */
#define SHARD_HOT_LINE_SEED 0x686f74u

static const char piece_totals_sql[] =
    "SELECT count(*), coalesce(sum(leaved_amount), 0), coalesce(sum(adjusted), 0), "
    "coalesce(sum(deducted), 0), coalesce(sum(refunded), 0), coalesce(sum(held), 0) "
    "FROM inventory WHERE sku_id = $1";
/* The same, with the piece's rows locked for the rest of the transaction. */
static const char piece_lock_sql[] =
    "SELECT count(*), coalesce(sum(leaved_amount), 0), coalesce(sum(adjusted), 0) FROM "
    "(SELECT leaved_amount, adjusted FROM inventory WHERE sku_id = $1 FOR UPDATE) r";
/* A hot SKU's line, refund and adjustment record the SKU's total after
 * it, not its piece's: a replay and a listing answer what the op did. */
enum { AFTER_LINE, AFTER_REFUND, AFTER_ADJUST, AFTER_KINDS };
static const char *const after_sql[AFTER_KINDS] = {
    "UPDATE inventory_flow f SET available_after = v.after "
    "FROM unnest($1::text[], $2::bigint[]) AS v(id, after) WHERE f.line_id = v.id",
    "UPDATE inventory_refunds r SET available = v.after "
    "FROM unnest($1::text[], $2::bigint[]) AS v(id, after) WHERE r.refund_id = v.id",
    "UPDATE inventory_adjustments a SET available = v.after "
    "FROM unnest($1::text[], $2::bigint[]) AS v(id, after) WHERE a.adjust_id = v.id",
};
/* Which of the ids (kinds and ids, as arrays) the directory holds. */
static const char known_ids_sql[] =
    "SELECT x.k, x.i FROM unnest($1::text[], $2::text[]) AS x(k, i) "
    "JOIN stock_ids d ON d.kind = x.k AND d.id = x.i";
static const char line_sku_sql[] = "SELECT sku_id FROM inventory_flow WHERE line_id = $1";
static const char repoint_sql[] =
    "UPDATE stock_ids SET shard = $3::integer WHERE kind = $1 AND id = $2 AND shard = $4::integer";
const char shard_empty_piece_sql[] =
    "INSERT INTO inventory (sku_id, bucket, leaved_amount, adjusted) VALUES ($1, 0, 0, 0) "
    "ON CONFLICT DO NOTHING";

/* ----------------------------------------------------------------- URI */

static stock_code parse_list(sharded_store *store, const char *list, size_t len,
                             char *message, size_t size)
{
    if (len == strlen(SHARD_HOT_ALL) && memcmp(list, SHARD_HOT_ALL, len) == 0) {
        store->hot_all = true;
        return STOCK_OK;
    }
    store->hot_text = strndup(list, len);
    if (store->hot_text == NULL)
        return STOCK_NOMEM;
    for (char *cursor = store->hot_text;;) {
        size_t id_len = strcspn(cursor, ",");
        if (id_len == 0 || id_len > STOCK_ID_MAX || store->hot_count == SHARD_HOT_MAX) {
            message_set(message, size, "sharded: hot SKU %u of the URI is %s", store->hot_count,
                        id_len == 0 ? "empty" : id_len > STOCK_ID_MAX ? "longer than an id"
                        : "one too many (at most 64)");
            return STOCK_INVALID;
        }
        store->hot_ids[store->hot_count++] = (stock_id){cursor, (uint32_t)id_len};
        if (cursor[id_len] == '\0')
            return STOCK_OK;
        cursor[id_len] = '\0';
        cursor += id_len + 1;
    }
}

stock_code shard_hot_parse(sharded_store *store, const char *text, char *message, size_t size)
{
    store->hot_spread = 1;
    if (strncmp(text, SHARD_HOT_PREFIX, strlen(SHARD_HOT_PREFIX)) != 0)
        return STOCK_OK;
    const char *cursor = text + strlen(SHARD_HOT_PREFIX);
    char *end = NULL;
    unsigned long spread = strtoul(cursor, &end, 10);
    size_t len = end != NULL && *end == ':' ? strcspn(end + 1, ";") : 0;
    if (end == cursor || *end != ':' || spread < 2 || spread > SHARD_MAX || len == 0 ||
        end[1 + len] != ';') {
        message_set(message, size, "sharded: the hot segment must read hot=<K>:<sku>[,<sku>...] "
                    "or hot=<K>:* with K from 2 to %d, followed by ';' and the members",
                    SHARD_MAX);
        return STOCK_INVALID;
    }
    store->hot_spread = (uint32_t)spread;
    return parse_list(store, end + 1, len, message, size);
}

stock_code shard_hot_check(const sharded_store *store, char *message, size_t size)
{
    if (store->hot_spread <= store->count)
        return STOCK_OK;
    message_set(message, size, "sharded: hot SKUs spread over %u shards, but the URI names %u "
                "members", store->hot_spread, store->count);
    return STOCK_INVALID;
}

/* ------------------------------------------------------------- placing */

uint32_t shard_spread(const sharded_store *store, stock_id sku)
{
    if (store->hot_spread < 2 || store->count < 2)
        return 1;
    if (store->hot_all)
        return store->hot_spread;
    for (uint32_t i = 0; i < store->hot_count; i++)
        if (id_equal(store->hot_ids[i], sku))
            return store->hot_spread;
    return 1;
}

uint32_t shard_piece(const sharded_store *store, stock_id sku, uint32_t j)
{
    assert(j < store->count);
    uint64_t scores[SHARD_MAX];
    for (uint32_t i = 0; i < store->count; i++)
        scores[i] = XXH3_64bits_withSeed(sku.ptr, sku.len, (uint64_t)i + 1);
    /* The member with j members ahead of it: a higher score, or the same
     * score and a lower position (as shard_of breaks ties). */
    for (uint32_t i = 0; i < store->count; i++) {
        uint32_t ahead = 0;
        for (uint32_t o = 0; o < store->count; o++)
            ahead += scores[o] > scores[i] || (scores[o] == scores[i] && o < i);
        if (ahead == j)
            return i;
    }
    assert(!"every rank is some member's");
    return 0;
}

uint32_t shard_line(const sharded_store *store, stock_id sku, stock_id line)
{
    uint32_t spread = shard_spread(store, sku);
    if (spread == 1)
        return shard_of(store, sku);
    uint64_t hash = XXH3_64bits_withSeed(line.ptr, line.len, SHARD_HOT_LINE_SEED);
    return shard_piece(store, sku, (uint32_t)(hash % spread));
}

/* -------------------------------------------------------------- totals */

/* A piece's totals, read once per settle: ops of a hot SKU in one segment
 * usually name the same SKU. */
typedef struct totals_cache {
    stock_id sku;
    bool known[SHARD_MAX];
    int64_t rows[SHARD_MAX];
    stock_sku_info info[SHARD_MAX];
} totals_cache;

static void cache_forget(totals_cache *cache)
{
    memset(cache->known, 0, sizeof cache->known);
}

static bool piece_totals(sharded_store *store, totals_cache *cache, stock_id sku, uint32_t shard,
                         char *error, size_t size)
{
    if (!id_equal(cache->sku, sku)) {
        cache->sku = sku;
        cache_forget(cache);
    }
    if (cache->known[shard])
        return true;
    char text[STOCK_ID_MAX + 1];
    snprintf(text, sizeof text, "%.*s", (int)sku.len, sku.ptr);
    const char *values[1] = {text};
    PGresult *result = shard_exec(store, shard, piece_totals_sql, 1, values, PGRES_TUPLES_OK,
                                  error, size);
    if (result == NULL)
        return false;
    int64_t v[6];
    for (int c = 0; c < 6; c++)
        v[c] = strtoll(PQgetvalue(result, 0, c), NULL, 10);
    PQclear(result);
    cache->rows[shard] = v[0];
    cache->info[shard] = (stock_sku_info){.available = v[1], .adjusted = v[2], .deducted = v[3],
                                          .refunded = v[4], .held = v[5]};
    cache->known[shard] = true;
    return true;
}

/* A refund names its line, not its SKU: asks the line's shard for it, to
 * sum the pieces if the SKU is hot. sku points into text. */
static bool refund_sku(sharded_store *store, const stock_op *op, uint32_t shard, char *text,
                       stock_id *sku)
{
    char line[STOCK_ID_MAX + 1], error[STOCK_MESSAGE_MAX];
    snprintf(line, sizeof line, "%.*s", (int)op->line.len, op->line.ptr);
    const char *values[1] = {line};
    PGresult *result = shard_exec(store, shard, line_sku_sql, 1, values, PGRES_TUPLES_OK, error,
                                  sizeof error);
    bool found = result != NULL && PQntuples(result) == 1;
    if (found) {
        snprintf(text, STOCK_ID_MAX + 1, "%s", PQgetvalue(result, 0, 0));
        *sku = (stock_id){text, (uint32_t)strlen(text)};
    }
    PQclear(result);
    return found;
}

/* ----------------------------------------------------------- fallbacks */

/* Whether op's piece refused it for want of stock: INSUFFICIENT, or
 * NOT_FOUND from a piece other than piece 0 (a SKU named hot after it was
 * created has no rows on its other pieces until its next set). */
static bool piece_short(const sharded_store *store, stock_op *op, uint32_t ran_on)
{
    if (op->code == STOCK_NOT_FOUND && ran_on != shard_of(store, op->sku)) {
        op->code = STOCK_INSUFFICIENT;
        op->available = 0;
    }
    return op->code == STOCK_INSUFFICIENT;
}

/* Points the directory entry of op's own id (a line, or an adjustment's)
 * from shard named to shard, before op runs there: an entry naming a shard
 * without the id is stale, so a crash in between leaves nothing half-done.
 * Only if the entry still names named: else another store took the id over
 * meanwhile (docs/sharded.md, "One id, one winner"), and op must not run. */
static bool repoint(sharded_store *store, const stock_op *op, uint32_t named, uint32_t shard,
                    char *error, size_t size)
{
    if (op->type == STOCK_OP_ADD && op->id.ptr == NULL)
        return true;
    char kind[2] = {op->type == STOCK_OP_ADD ? SHARD_KIND_ADJUST : SHARD_KIND_LINE, '\0'};
    char id[STOCK_ID_MAX + 1], target[16], seen[16];
    snprintf(id, sizeof id, "%.*s", (int)op->id.len, op->id.ptr);
    snprintf(target, sizeof target, "%u", shard);
    snprintf(seen, sizeof seen, "%u", named);
    const char *values[4] = {kind, id, target, seen};
    if (!shard_unfence(store, shard, kind[0], op->id, error, size))
        return false;
    PGresult *result = shard_exec(store, shard_of(store, op->id), repoint_sql, 4, values,
                                  PGRES_COMMAND_OK, error, size);
    bool moved = result != NULL && strcmp(PQcmdTuples(result), "1") == 0;
    if (result != NULL && !moved)
        message_set(error, size, "another store claimed the id %s meanwhile", id);
    PQclear(result);
    return moved;
}

/* Runs op alone on shard, as one local transaction. False (error says why)
 * if it could not run; else op holds the member's answer. */
static bool run_local(sharded_store *store, order_run *run, uint32_t shard, stock_op *op)
{
    order_part *part = &run->parts[0];
    *part = (order_part){.shard = shard};
    if (!shard_part_begin(store, run, part) || !shard_part_step(store, run, part, op)) {
        shard_abandon(store, run);
        return false;
    }
    const char *end = stock_code_succeeded(op->code) ? "COMMIT" : "ROLLBACK";
    PGresult *result = shard_query(part->conn, shard, store->shards[shard].options.timeout_ms, end,
                                   0, NULL, PGRES_COMMAND_OK, run->error, sizeof run->error);
    PQclear(result);
    if (result == NULL)
        shard_mark_down(store, shard);
    return result != NULL;
}

/* Locks a part's rows of sku in its open transaction and reads their sum
 * (and their adjusted total, unless adjusted is NULL). */
static bool lock_piece(sharded_store *store, order_run *run, order_part *part, stock_id sku,
                       int64_t *available, int64_t *rows, int64_t *adjusted)
{
    char text[STOCK_ID_MAX + 1];
    snprintf(text, sizeof text, "%.*s", (int)sku.len, sku.ptr);
    const char *values[1] = {text};
    PGresult *result = shard_query(part->conn, part->shard,
                                   store->shards[part->shard].options.timeout_ms, piece_lock_sql,
                                   1, values, PGRES_TUPLES_OK, run->error, sizeof run->error);
    if (result == NULL)
        return false;
    *rows = strtoll(PQgetvalue(result, 0, 0), NULL, 10);
    *available = strtoll(PQgetvalue(result, 0, 1), NULL, 10);
    if (adjusted != NULL)
        *adjusted = strtoll(PQgetvalue(result, 0, 2), NULL, 10);
    PQclear(result);
    return true;
}

/* Adds a part for each of sku's pieces, in shard order, and begins it. */
static bool begin_pieces(sharded_store *store, order_run *run, stock_id sku)
{
    uint32_t spread = shard_spread(store, sku);
    bool piece[SHARD_MAX] = {false};
    for (uint32_t j = 0; j < spread; j++)
        piece[shard_piece(store, sku, j)] = true;
    for (uint32_t i = 0; i < store->count; i++)
        if (piece[i]) {
            order_part *part = &run->parts[run->part_count++];
            *part = (order_part){.shard = i};
            if (!shard_part_begin(store, run, part))
                return false;
        }
    return true;
}

/* begin_pieces, then locks each piece's rows: their sums are the SKU's
 * totals. */
static bool lock_pieces(sharded_store *store, order_run *run, stock_id sku, int64_t *available,
                        int64_t *rows, int64_t *adjusted)
{
    if (!begin_pieces(store, run, sku))
        return false;
    for (uint32_t p = 0; p < run->part_count; p++) {
        int64_t piece = 0, piece_rows = 0, piece_adjusted = 0;
        if (!lock_piece(store, run, &run->parts[p], sku, &piece, &piece_rows, &piece_adjusted))
            return false;
        *available += piece;
        *rows += piece_rows;
        *adjusted += piece_adjusted;
    }
    return true;
}

/* Takes op (a deduction or a write-off of a hot SKU that no piece alone
 * covers) across the pieces, all or none: every piece's rows locked, the
 * stock that the piece on target lacks moved to it from the others (a
 * write-off there, a restock on it: the SKU's adjusted total is
 * unchanged), and op run there. */
static void gather(sharded_store *store, order_run *run, stock_op *op, uint32_t *ran_on,
                   uint32_t named, uint32_t target)
{
    /* The directory first, while every control session is idle. */
    if (!repoint(store, op, named, target, run->error, sizeof run->error)) {
        result_fail(op, STOCK_UNAVAILABLE, "not applied: %s", run->error);
        return;
    }
    int64_t need = op->type == STOCK_OP_ADD ? -op->amount : op->amount;
    int64_t have[SHARD_MAX] = {0}, rows = 0, total = 0;
    bool ok = begin_pieces(store, run, op->sku);
    uint32_t to = 0;
    for (uint32_t p = 0; ok && p < run->part_count; p++) {
        ok = lock_piece(store, run, &run->parts[p], op->sku, &have[p], &rows, NULL);
        total += have[p];
        to = run->parts[p].shard == target ? p : to;
    }
    if (ok && total < need) {
        shard_abandon(store, run);
        result_insufficient(op, op->sku, total);
        return;
    }
    int64_t moved = 0;
    for (uint32_t p = 0; ok && p < run->part_count && have[to] + moved < need; p++) {
        int64_t take = need - have[to] - moved;
        take = take < have[p] ? take : have[p];
        if (p == to || take == 0)
            continue;
        order_part *part = &run->parts[p];
        part->op = (stock_op){.type = STOCK_OP_ADD, .sku = op->sku, .amount = -take};
        ok = shard_part_step(store, run, part, &part->op) && part->op.code == STOCK_OK;
        moved += take;
    }
    order_part *into = &run->parts[to];
    into->op = (stock_op){.type = STOCK_OP_ADD, .sku = op->sku, .amount = moved};
    ok = ok && (moved == 0 || (shard_part_step(store, run, into, &into->op) &&
                               into->op.code == STOCK_OK));
    op->code = STOCK_OK;
    ok = ok && shard_part_step(store, run, into, op);
    if (!ok || op->code != STOCK_OK) {
        shard_abandon(store, run);
        if (!ok)
            result_fail(op, STOCK_UNAVAILABLE, "not applied: %s", run->error);
        return;
    }
    *ran_on = target;
    run->op = op;
    shard_two_phase(store, run);
}

/* op, on a hot SKU, was refused INSUFFICIENT by the piece on *ran_on: tries
 * the other pieces, then gathers on the fullest it saw. */
static void fall_back(sharded_store *store, order_run *run, totals_cache *cache, stock_op *op,
                      uint32_t *ran_on)
{
    uint32_t spread = shard_spread(store, op->sku);
    int64_t fullest = op->available, total = op->available;
    uint32_t target = *ran_on;
    /* A sold-out SKU costs one read per piece and segment, not a
     * transaction per piece and deduction. */
    for (uint32_t j = 0; j < spread; j++) {
        uint32_t shard = shard_piece(store, op->sku, j);
        if (shard != *ran_on && !piece_totals(store, cache, op->sku, shard, run->error,
                                              sizeof run->error)) {
            result_fail(op, STOCK_UNAVAILABLE, "not applied: %s", run->error);
            return;
        }
        total += shard == *ran_on ? 0 : cache->info[shard].available;
    }
    /* Piece 0 has rows of every SKU there is (a set writes every piece,
     * a SKU named hot later had its rows there, and a reshard that makes a
     * new member its piece 0 gives it a piece or an empty row). */
    uint32_t home = shard_of(store, op->sku);
    if (home != *ran_on && cache->rows[home] == 0) {
        result_sku_not_found(op, op->sku);
        return;
    }
    if (total < (op->type == STOCK_OP_ADD ? -op->amount : op->amount)) {
        result_insufficient(op, op->sku, total);
        return;
    }
    cache_forget(cache);
    uint32_t named = *ran_on;   /* the shard the directory entry names */
    for (uint32_t j = 0; j < spread; j++) {
        uint32_t shard = shard_piece(store, op->sku, j);
        if (shard == *ran_on)
            continue;
        stock_op attempt = *op;
        attempt.code = STOCK_OK;
        if (!repoint(store, op, named, shard, run->error, sizeof run->error) ||
            !run_local(store, run, shard, &attempt)) {
            result_fail(op, STOCK_UNAVAILABLE, "not applied: %s", run->error);
            return;
        }
        named = shard;
        if (!piece_short(store, &attempt, shard)) {
            *op = attempt;
            *ran_on = shard;
            return;
        }
        if (attempt.available > fullest) {
            fullest = attempt.available;
            target = shard;
        }
    }
    stock_log(&store->log, STOCK_LOG_DEBUG, "sharded: hot SKU %.*s: no piece covers %lld, "
              "gathering on shard %u", (int)op->sku.len, op->sku.ptr, (long long)op->amount,
              target);
    *run = (order_run){0};
    gather(store, run, op, ran_on, named, target);
}

static bool takes_stock(const stock_op *op)
{
    return op->type == STOCK_OP_DEDUCT || (op->type == STOCK_OP_ADD && op->amount < 0);
}

/* The lines (refunds, adjustments) a segment made on one member's pieces,
 * with the SKU's total after each: written to their rows at the end of the
 * settle (one statement per member and kind), so that a line read, a
 * replay and a listing answer what the op did. */
typedef struct line_afters {
    buf ids, values;
    uint32_t count;
    bool failed;             /* out of memory: not written */
} line_afters;

static void afters_add(line_afters *afters, stock_id line, int64_t after)
{
    char number[24];
    int len = snprintf(number, sizeof number, "%s%lld", afters->count > 0 ? "," : "{",
                       (long long)after);
    afters->failed = afters->failed ||
                     !buf_append(&afters->ids, afters->count > 0 ? "," : "{", 1) ||
                     !pg_text_element(&afters->ids, line) ||
                     !buf_append(&afters->values, number, (size_t)len);
    afters->count++;
}

static void afters_write(sharded_store *store, line_afters *afters, uint32_t shard, int kind)
{
    bool ok = afters->count > 0 && !afters->failed && buf_append(&afters->ids, "}", 2) &&
              buf_append(&afters->values, "}", 2);
    char error[STOCK_MESSAGE_MAX] = "no memory";
    if (ok) {
        const char *values[2] = {(const char *)afters->ids.data,
                                 (const char *)afters->values.data};
        PGresult *result = shard_exec(store, shard, after_sql[kind], 2, values,
                                      PGRES_COMMAND_OK, error, sizeof error);
        ok = result != NULL;
        PQclear(result);
    }
    if (!ok && afters->count > 0)
        stock_log(&store->log, STOCK_LOG_WARNING, "sharded: %u %s(s) of hot SKUs on shard %u "
                  "keep their piece's available: %s", afters->count,
                  kind == AFTER_LINE ? "line" : kind == AFTER_REFUND ? "refund" : "adjustment",
                  shard, error);
    buf_free(&afters->ids);
    buf_free(&afters->values);
}

/* Whether op's result names a SKU that may be hot, so that the segment
 * waits for its parts and settles. */
static bool settles(const sharded_store *store, const stock_op *op)
{
    if (op->type == STOCK_OP_REFUND)
        return store->hot_spread > 1;
    return (op->type == STOCK_OP_DEDUCT || op->type == STOCK_OP_ADD ||
            op->type == STOCK_OP_GET) && shard_spread(store, op->sku) > 1;
}

/* An op of a segment on a hot SKU, with its SKU (a refund's is read from
 * its line's member) and the shard it ran on. */
typedef struct hot_op {
    stock_id sku;
    uint32_t index;          /* into store->ops */
    uint32_t shard;
    bool known;              /* its id is in the directory: a retry, or a conflict */
} hot_op;

/* A refund's SKU, read from its line's member: what its hot_op's sku
 * points into (apart from the hot_ops, which are sorted). */
typedef char sku_text[STOCK_ID_MAX + 1];

static int hot_op_cmp(const void *left, const void *right)
{
    const hot_op *a = left, *b = right;
    int c = memcmp(a->sku.ptr, b->sku.ptr, a->sku.len < b->sku.len ? a->sku.len : b->sku.len);
    if (c == 0)
        c = (a->sku.len > b->sku.len) - (a->sku.len < b->sku.len);
    return c != 0 ? c : (a->index > b->index) - (a->index < b->index);
}

/* How many of the sorted ops from first name the same SKU. */
static uint32_t group_end(const hot_op *ops, uint32_t first, uint32_t count)
{
    uint32_t end = first + 1;
    while (end < count && id_equal(ops[end].sku, ops[first].sku))
        end++;
    return end;
}

/* Reads every piece of sku afresh into cache and sums them; false (error
 * says why) if one cannot be read. */
static bool sku_totals(sharded_store *store, totals_cache *cache, stock_id sku,
                       stock_sku_info *sum, char *error, size_t size)
{
    cache_forget(cache);
    *sum = (stock_sku_info){0};
    for (uint32_t j = 0; j < shard_spread(store, sku); j++) {
        uint32_t shard = shard_piece(store, sku, j);
        if (!piece_totals(store, cache, sku, shard, error, size))
            return false;
        const stock_sku_info *piece = &cache->info[shard];
        sum->available += piece->available;
        sum->adjusted += piece->adjusted;
        sum->deducted += piece->deducted;
        sum->refunded += piece->refunded;
        sum->held += piece->held;
    }
    return true;
}

/* Whether op may add stock to a hot SKU: a refund (of a line of any SKU:
 * its SKU is not known before it runs) or a restock of a hot SKU. */
static bool gives_stock(const sharded_store *store, const stock_op *op)
{
    return (op->type == STOCK_OP_REFUND && store->hot_spread > 1) ||
           (op->type == STOCK_OP_ADD && op->amount > 0 && shard_spread(store, op->sku) > 1);
}

/* The id an op that takes stock records: its line's, or its adjustment's
 * (none for a write-off without one). */
static bool taken_id(const stock_op *op, char *kind, stock_id *id)
{
    *kind = op->type == STOCK_OP_ADD ? SHARD_KIND_ADJUST : SHARD_KIND_LINE;
    *id = op->id;
    return op->id.ptr != NULL;
}

/* Marks the ops whose id the directory holds already, one statement per
 * home shard: a retry (a replay, or a conflict) takes no stock, and the
 * plan must not count it. On a failed read the ops stay unmarked (the plan
 * then counts them, and settle falls back). */
static void mark_known(sharded_store *store, hot_op *ops, uint32_t count)
{
    for (uint32_t home = 0; home < store->count; home++) {
        buf kinds = {0}, ids = {0};
        uint32_t n = 0;
        bool ok = buf_append(&kinds, "{", 1) && buf_append(&ids, "{", 1);
        for (uint32_t o = 0; ok && o < count; o++) {
            char kind;
            stock_id id;
            if (taken_id(store->ops[ops[o].index], &kind, &id) && shard_of(store, id) == home) {
                ok = shard_array_add(&kinds, n, (stock_id){&kind, 1}) &&
                     shard_array_add(&ids, n, id);
                n++;
            }
        }
        ok = ok && n > 0 && shard_array_close(&kinds) && shard_array_close(&ids);
        char error[STOCK_MESSAGE_MAX];
        const char *values[2] = {(const char *)kinds.data, (const char *)ids.data};
        PGresult *result = ok ? shard_exec(store, home, known_ids_sql, 2, values,
                                           PGRES_TUPLES_OK, error, sizeof error) : NULL;
        for (int r = 0; result != NULL && r < PQntuples(result); r++) {
            char kind = PQgetvalue(result, r, 0)[0];
            const char *text = PQgetvalue(result, r, 1);
            for (uint32_t o = 0; o < count; o++) {
                char op_kind;
                stock_id id;
                if (taken_id(store->ops[ops[o].index], &op_kind, &id) && op_kind == kind &&
                    strlen(text) == id.len && memcmp(text, id.ptr, id.len) == 0)
                    ops[o].known = true;
            }
        }
        PQclear(result);
        buf_free(&kinds);
        buf_free(&ids);
    }
}

uint32_t shard_hot_plan(sharded_store *store, uint32_t first, uint32_t end)
{
    hot_op *ops = NULL;
    uint32_t count = 0;
    bool given = false;   /* the pieces' stock may grow before the ops behind */
    for (uint32_t k = first; k < end; k++) {
        stock_op *op = store->ops[k];
        if (count > 0 && gives_stock(store, op)) {
            end = k;
            break;
        }
        given = given || gives_stock(store, op);
        if (store->routes[k] < 0 || op->code != STOCK_OK || !takes_stock(op) ||
            shard_spread(store, op->sku) == 1)
            continue;
        if (given) {
            end = k;
            break;
        }
        if (ops == NULL && (ops = malloc((end - first) * sizeof *ops)) == NULL)
            return end;   /* each op stays on its line's piece, which falls back */
        ops[count++] = (hot_op){.sku = op->sku, .index = k};
    }
    if (count == 0)
        return end;
    mark_known(store, ops, count);
    qsort(ops, count, sizeof *ops, hot_op_cmp);
    totals_cache cache = {0};
    for (uint32_t g = 0; g < count; g = group_end(ops, g, count)) {
        stock_id sku = ops[g].sku;
        stock_sku_info sum;
        char error[STOCK_MESSAGE_MAX];
        if (!sku_totals(store, &cache, sku, &sum, error, sizeof error))
            continue;   /* the members answer, and settle falls back */
        uint32_t spread = shard_spread(store, sku);
        int64_t left[SHARD_MAX];
        for (uint32_t j = 0; j < spread; j++)
            left[j] = cache.info[shard_piece(store, sku, j)].available;
        for (uint32_t o = g; o < group_end(ops, g, count) && ops[o].index < end; o++) {
            stock_op *op = store->ops[ops[o].index];
            if (ops[o].known)
                continue;   /* it takes nothing: it stays where the directory sends it */
            int64_t need = op->type == STOCK_OP_ADD ? -op->amount : op->amount;
            /* Its line's piece if that covers it, else the fullest. */
            int32_t best = -1;
            for (uint32_t j = 0; j < spread; j++) {
                if (left[j] < need)
                    continue;
                if (shard_piece(store, sku, j) == (uint32_t)store->routes[ops[o].index]) {
                    best = (int32_t)j;
                    break;
                }
                if (best < 0 || left[j] > left[best])
                    best = (int32_t)j;
            }
            if (best < 0 && sum.available >= need)
                end = ops[o].index + 1;   /* it gathers in settle, before what follows */
            if (best < 0)
                continue;   /* no piece covers it: its own refuses, and settle decides */
            left[best] -= need;
            sum.available -= need;
            store->routes[ops[o].index] = (int32_t)shard_piece(store, sku, (uint32_t)best);
        }
    }
    free(ops);
    return end;
}

/* Gives each op of one hot SKU (sorted, in the batch's order) the SKU's
 * totals right after it: the totals after the segment, less what the ops
 * after it did. Notes each write's figure for its row. */
static void account(sharded_store *store, totals_cache *cache, hot_op *ops, uint32_t count,
                    line_afters afters[AFTER_KINDS][SHARD_MAX])
{
    stock_sku_info state;
    char error[STOCK_MESSAGE_MAX];
    if (!sku_totals(store, cache, ops[0].sku, &state, error, sizeof error)) {
        for (uint32_t o = 0; o < count; o++) {
            stock_op *op = store->ops[ops[o].index];
            if (op->type == STOCK_OP_GET)
                result_fail(op, STOCK_UNAVAILABLE, "%s", error);
        }
        stock_log(&store->log, STOCK_LOG_WARNING, "sharded: hot SKU %.*s: available counts "
                  "only one piece: %s", (int)ops[0].sku.len, ops[0].sku.ptr, error);
        return;
    }
    for (uint32_t o = count; o-- > 0;) {
        stock_op *op = store->ops[ops[o].index];
        if (op->code == STOCK_INSUFFICIENT) {
            /* Refused where it stood in the batch: the total then. */
            if (state.available < (op->type == STOCK_OP_ADD ? -op->amount : op->amount))
                result_insufficient(op, op->sku, state.available);
            continue;
        }
        op->available = state.available;
        int kind = -1;
        switch (op->type) {
        case STOCK_OP_GET:
            op->info.sku_info = state;
            break;
        case STOCK_OP_DEDUCT:
            kind = AFTER_LINE;
            state.available += op->amount;
            state.deducted -= op->amount;
            break;
        case STOCK_OP_REFUND:
            kind = AFTER_REFUND;
            state.available -= op->amount;
            state.refunded -= op->amount;
            break;
        case STOCK_OP_ADD:
            kind = op->id.ptr != NULL ? AFTER_ADJUST : -1;
            state.available -= op->amount;
            state.adjusted -= op->amount;
            break;
        default:
            assert(!"only these ops settle");
        }
        if (kind >= 0)
            afters_add(&afters[kind][ops[o].shard], op->id, op->available);
    }
}

void shard_hot_settle(sharded_store *store, uint32_t first, uint32_t end)
{
    bool hot = false;
    for (uint32_t k = first; k < end && !hot; k++)
        hot = store->routes[k] >= 0 && settles(store, store->ops[k]);
    if (!hot)
        return;
    shard_barrier(store);
    order_run *run = malloc(sizeof *run);
    hot_op *ops = malloc((end - first) * sizeof *ops);
    sku_text *texts = malloc((end - first) * sizeof *texts);
    if (texts == NULL) {
        free(ops);
        ops = NULL;
    }
    totals_cache cache = {0};
    uint32_t count = 0;
    for (uint32_t k = first; k < end; k++) {
        stock_op *op = store->ops[k];
        if (store->routes[k] < 0 || !settles(store, op))
            continue;
        uint32_t ran_on = (uint32_t)store->routes[k];
        if (takes_stock(op) && piece_short(store, op, ran_on)) {
            if (run == NULL) {
                result_fail(op, STOCK_NOMEM, "no memory to try the other pieces");
                continue;
            }
            *run = (order_run){0};
            fall_back(store, run, &cache, op, &ran_on);
        }
        /* A replay answers what it recorded, the total already; a refusal
         * names the total where it stood. */
        if ((op->code != STOCK_OK && !(op->code == STOCK_INSUFFICIENT && takes_stock(op))) ||
            ops == NULL)
            continue;
        hot_op *next = &ops[count];
        *next = (hot_op){.sku = op->sku, .index = k, .shard = ran_on};
        if (op->type == STOCK_OP_REFUND &&
            !refund_sku(store, op, ran_on, texts[k - first], &next->sku))
            continue;
        count += shard_spread(store, next->sku) > 1;
    }
    free(run);
    if (ops == NULL)
        stock_log(&store->log, STOCK_LOG_WARNING, "sharded: no memory to sum hot SKUs' pieces: "
                  "their results count one piece");
    else
        qsort(ops, count, sizeof *ops, hot_op_cmp);
    line_afters afters[AFTER_KINDS][SHARD_MAX] = {0};
    for (uint32_t g = 0; g < count; g = group_end(ops, g, count))
        account(store, &cache, ops + g, group_end(ops, g, count) - g, afters);
    free(ops);
    free(texts);
    for (int kind = 0; kind < AFTER_KINDS; kind++)
        for (uint32_t i = 0; i < store->count; i++)
            afters_write(store, &afters[kind][i], i, kind);
}

/* --------------------------------------------------------------- carts */

bool shard_hot_order(const sharded_store *store, const stock_op *op)
{
    for (uint32_t k = 0; k < op->line_count; k++)
        if (shard_spread(store, op->lines[k].sku) > 1)
            return true;
    return false;
}

int shard_hot_index(const order_run *run, stock_id sku)
{
    for (uint32_t h = 0; h < run->hot_count; h++)
        if (id_equal(run->hot[h].sku, sku))
            return (int)h;
    return -1;
}

static order_part *part_on(order_run *run, uint32_t shard)
{
    for (uint32_t p = 0; p < run->part_count; p++)
        if (run->parts[p].shard == shard)
            return &run->parts[p];
    assert(!"every piece of a hot SKU of the cart has a part");
    return NULL;
}

static int sku_cmp(const void *left, const void *right)
{
    const hot_line_sku *a = left, *b = right;
    int c = memcmp(a->sku.ptr, b->sku.ptr, a->sku.len < b->sku.len ? a->sku.len : b->sku.len);
    return c != 0 ? c : (a->sku.len > b->sku.len) - (a->sku.len < b->sku.len);
}

/* Adds amount to sku on part, in its open transaction. */
static bool move_units(sharded_store *store, order_run *run, order_part *part, stock_id sku,
                       int64_t amount)
{
    stock_op add = {.type = STOCK_OP_ADD, .sku = sku, .amount = amount};
    if (!shard_part_step(store, run, part, &add))
        return false;
    if (add.code != STOCK_OK)
        message_set(run->error, sizeof run->error, "shard %u: moving %lld unit(s) of %.*s: %s",
                    part->shard, (long long)amount, (int)sku.len, sku.ptr, add.message);
    return add.code == STOCK_OK;
}

/* Gives sku an empty row on part, in its open transaction: a SKU named
 * hot after it was created has rows on piece 0 alone until its next set,
 * and a restock of a piece without rows is refused NOT_FOUND. */
static bool piece_create(sharded_store *store, order_run *run, order_part *part, stock_id sku)
{
    char text[STOCK_ID_MAX + 1];
    snprintf(text, sizeof text, "%.*s", (int)sku.len, sku.ptr);
    const char *values[1] = {text};
    PGresult *result = shard_query(part->conn, part->shard,
                                   store->shards[part->shard].options.timeout_ms,
                                   shard_empty_piece_sql, 1, values, PGRES_COMMAND_OK, run->error,
                                   sizeof run->error);
    PQclear(result);
    return result != NULL;
}

/* Moves units of hot SKU h between its pieces so that each covers the
 * cart's lines it holds (the SKU's total covers them all); a piece
 * without rows (rows, by rank) gets one first. */
static bool spread_need(sharded_store *store, order_run *run, const hot_line_sku *hot,
                        const int64_t *have, const int64_t *rows)
{
    uint32_t spread = shard_spread(store, hot->sku);
    int64_t lack[SHARD_MAX] = {0};   /* per piece rank: need less stock, < 0 a surplus */
    for (uint32_t j = 0; j < spread; j++)
        lack[j] = -have[j];
    for (uint32_t k = 0; k < run->op->line_count; k++) {
        const stock_order_line *line = &run->op->lines[k];
        if (!id_equal(line->sku, hot->sku))
            continue;
        uint32_t shard = shard_line(store, line->sku, line->line_id);
        for (uint32_t j = 0; j < spread; j++)
            if (shard_piece(store, hot->sku, j) == shard)
                lack[j] += line->qty;
    }
    for (uint32_t to = 0; to < spread; to++) {
        order_part *into = part_on(run, shard_piece(store, hot->sku, to));
        if (lack[to] > 0 && rows[to] == 0 && !piece_create(store, run, into, hot->sku))
            return false;
        for (uint32_t from = 0; from < spread && lack[to] > 0; from++) {
            if (lack[from] >= 0)
                continue;
            int64_t take = -lack[from] < lack[to] ? -lack[from] : lack[to];
            if (!move_units(store, run, part_on(run, shard_piece(store, hot->sku, from)),
                            hot->sku, -take) ||
                !move_units(store, run, into, hot->sku, take))
                return false;
            lack[from] += take;
            lack[to] -= take;
        }
    }
    return true;
}

bool shard_hot_order_gather(sharded_store *store, order_run *run)
{
    const stock_op *op = run->op;
    run->hot_count = 0;
    for (uint32_t k = 0; k < op->line_count; k++) {
        stock_id sku = op->lines[k].sku;
        if (shard_spread(store, sku) == 1)
            continue;
        int h = shard_hot_index(run, sku);
        if (h < 0) {
            h = (int)run->hot_count++;
            run->hot[h] = (hot_line_sku){.sku = sku, .first = k};
        }
        run->hot[h].need += op->lines[k].qty;
    }
    /* In byte order of the SKUs, every piece in rank order: two carts lock
     * the pieces they share in the same order. */
    hot_line_sku sorted[STOCK_ORDER_LINES_MAX];
    memcpy(sorted, run->hot, run->hot_count * sizeof *sorted);
    qsort(sorted, run->hot_count, sizeof *sorted, sku_cmp);
    for (uint32_t s = 0; s < run->hot_count; s++) {
        hot_line_sku *hot = &run->hot[shard_hot_index(run, sorted[s].sku)];
        int64_t have[SHARD_MAX] = {0}, rows[SHARD_MAX] = {0};
        uint32_t spread = shard_spread(store, hot->sku);
        for (uint32_t j = 0; j < spread; j++) {
            if (!lock_piece(store, run, part_on(run, shard_piece(store, hot->sku, j)), hot->sku,
                            &have[j], &rows[j], NULL))
                return false;
            hot->rows += rows[j];
            hot->total += have[j];
        }
        if (hot->rows > 0 && hot->total >= hot->need &&
            !spread_need(store, run, hot, have, rows))
            return false;
    }
    return true;
}

/* Writes afters (of one kind: lines of an order, or an adjustment) in
 * part's open transaction, and frees them. False (run->error says why) on
 * failure. */
static bool afters_run(sharded_store *store, order_run *run, order_part *part,
                       line_afters *afters, int kind)
{
    bool ok = afters->count == 0;
    if (!ok && !afters->failed && buf_append(&afters->ids, "}", 2) &&
        buf_append(&afters->values, "}", 2)) {
        const char *values[2] = {(const char *)afters->ids.data,
                                 (const char *)afters->values.data};
        PGresult *result = shard_query(part->conn, part->shard,
                                       store->shards[part->shard].options.timeout_ms,
                                       after_sql[kind], 2, values, PGRES_COMMAND_OK, run->error,
                                       sizeof run->error);
        ok = result != NULL;
        PQclear(result);
    } else if (!ok) {
        message_set(run->error, sizeof run->error, "no memory");
    }
    buf_free(&afters->ids);
    buf_free(&afters->values);
    return ok;
}

bool shard_hot_order_afters(sharded_store *store, order_run *run)
{
    for (uint32_t p = 0; p < run->part_count; p++) {
        order_part *part = &run->parts[p];
        line_afters afters = {0};
        for (uint32_t k = 0; k < part->op.line_count; k++) {
            const stock_order_line *line = &run->op->lines[part->global[k]];
            if (shard_hot_index(run, line->sku) >= 0)
                afters_add(&afters, line->line_id, line->available);
        }
        if (!afters_run(store, run, part, &afters, AFTER_LINE))
            return false;
    }
    return true;
}

/* ----------------------------------------------------------------- set */

void shard_hot_restock(sharded_store *store, stock_op *op)
{
    order_run *run = calloc(1, sizeof *run);
    if (run == NULL) {
        result_fail(op, STOCK_NOMEM, "no memory for a restock over several shards");
        return;
    }
    run->op = op;
    int64_t level = 0, rows = 0, adjusted = 0;
    bool ok = lock_pieces(store, run, op->sku, &level, &rows, &adjusted);
    order_part *home = ok ? part_on(run, shard_of(store, op->sku)) : NULL;
    if (ok && rows > 0 && (level > STOCK_LEVEL_MAX - op->amount ||
                           adjusted > STOCK_LEVEL_MAX - op->amount)) {
        shard_abandon(store, run);
        result_fail(op, STOCK_INVALID, "sku=%.*s a stock total would pass %lld",
                    (int)op->sku.len, op->sku.ptr, (long long)STOCK_LEVEL_MAX);
        free(run);
        return;
    }
    ok = ok && shard_part_step(store, run, home, op);
    if (ok && op->code == STOCK_OK) {
        op->available = level + op->amount;
        line_afters afters = {0};
        if (op->id.ptr != NULL)
            afters_add(&afters, op->id, op->available);
        ok = afters_run(store, run, home, &afters, AFTER_ADJUST);
    }
    if (!ok) {
        shard_abandon(store, run);
        result_fail(op, STOCK_UNAVAILABLE, "not applied: %s", run->error);
    } else if (op->code != STOCK_OK) {
        shard_abandon(store, run);   /* a replay answers the total it recorded */
    } else {
        shard_two_phase(store, run);
    }
    free(run);
}

void shard_hot_set(sharded_store *store, stock_op *op)
{
    order_run *run = calloc(1, sizeof *run);
    if (run == NULL) {
        result_fail(op, STOCK_NOMEM, "no memory for a set over several shards");
        return;
    }
    run->op = op;
    int64_t level = 0, rows = 0, adjusted = 0;
    bool ok = lock_pieces(store, run, op->sku, &level, &rows, &adjusted);
    /* The SKU's adjusted total records the set as a delta, level less
     * what is there: it must stay a 64-bit total, as on one member. */
    bool overflow = ok && rows > 0 && op->amount > level &&
                    adjusted > STOCK_LEVEL_MAX - (op->amount - level);
    if (ok && ((op->has_expect && (rows == 0 || level != op->expect)) || overflow)) {
        shard_abandon(store, run);
        if (overflow)
            result_fail(op, STOCK_INVALID, "sku=%.*s a stock total would pass %lld",
                        (int)op->sku.len, op->sku.ptr, (long long)STOCK_LEVEL_MAX);
        else if (rows == 0)
            result_sku_not_found(op, op->sku);
        else
            result_mismatch(op, op->sku, level);
        free(run);
        return;
    }
    /* Pieces in shard order; the level is split by piece rank, as evenly
     * as integers allow. */
    for (uint32_t p = 0; ok && p < run->part_count; p++) {
        order_part *part = &run->parts[p];
        uint32_t rank = 0;
        while (shard_piece(store, op->sku, rank) != part->shard)
            rank++;
        int64_t share = op->amount / run->part_count +
                        ((int64_t)rank < op->amount % run->part_count ? 1 : 0);
        part->op = (stock_op){.type = STOCK_OP_SET, .sku = op->sku, .amount = share};
        ok = shard_part_step(store, run, part, &part->op) && part->op.code == STOCK_OK;
    }
    if (!ok) {
        shard_abandon(store, run);
        result_fail(op, STOCK_UNAVAILABLE, "not applied: %s", run->error);
    } else {
        op->code = STOCK_OK;
        op->available = op->amount;
        shard_two_phase(store, run);
    }
    free(run);
}
