/*
 * redis_cbucket.c -- hot-SKU buckets on a Redis Cluster (buckets=K > 1 with
 * cluster=1; docs/redis.md, "Hot-SKU buckets"). A cluster refuses a call
 * over several slots, so the one-call rule of a single server cannot hold:
 * here a SKU's K buckets are judged one call each, and the client sums
 * them. What this file adds to redis.c's ops, run one op at a time
 * (but for a batch's deductions, last point):
 *
 *   - a lone deduction's line, and the refunds of that line, live in the
 *     line's bucket (its stock, flow, refunds and outbox, all of its slot),
 *     fixed by the line id, so a deduction its bucket covers is one call
 *     on that bucket's master;
 *   - before that call the client reads the other buckets, and "available
 *     after" is the bucket's level after the call plus what it read;
 *   - a bucket short of a deduction is filled by moves from the others
 *     (cb_move_out, then cb_move_in, each idempotent by the move's id,
 *     announced first in the pending set P{stock:moves} so that the sweep
 *     finishes a move whose client died), then the deduction is sent
 *     again; a refusal comes only when the sum read shows the SKU short,
 *     or after RD_CB_PASSES passes that each moved what the others held;
 *   - set and compare-and-set read every bucket, then set each one to its
 *     share by compare-and-set of its level, starting again when one
 *     changed under them; add goes to the home bucket (a write-off the
 *     home cannot cover is first filled by moves);
 *   - a run of a batch's deductions (rd_cb_run) reads each SKU once and
 *     sends each bucket its share as one cb_deduct_many call, every
 *     bucket's call pipelined; only a deduction that the read says its
 *     bucket cannot cover, an earlier try of its id, and the SKU's later
 *     deductions take the one-at-a-time path above.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/redis.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/result.h"

#define RD_CB_PASSES 4          /* fills of a short bucket before a refusal */
#define RD_CB_MOVES_KEY "{stock:moves}"

bool rd_cb_on(const rd_options *options)
{
    return options->cluster && options->buckets > 1;
}

uint32_t rd_cb_line_bucket(stock_id line, uint32_t buckets)
{
    /* The hash of redis_functions.lua's line_bucket, so that a line has
     * the same bucket on one server and on a cluster. */
    uint32_t hash = 0;
    for (uint32_t i = 0; i < line.len; i++)
        hash = (hash * 31 + (unsigned char)line.ptr[i]) % 65521;
    return hash % buckets;
}

void rd_cb_key(rd_cmd *cmd, const rd_options *options, stock_id sku, uint32_t bucket,
               const char *suffix)
{
    char key[RD_BUCKET_KEY_MAX];
    rd_bucket_key(options->prefix, sku, bucket, options->buckets, suffix, key, sizeof key);
    rd_cmd_key_text(cmd, key);
}

/* Pushes the outbox stream of bucket's slot. */
static void cb_outbox(rd_cmd *cmd, const rd_options *options, stock_id sku, uint32_t bucket)
{
    unsigned slot = rd_tag_slot("sku", sku);
    if (bucket > 0) {
        char tag[RD_BUCKET_TAG_MAX];
        slot = rd_bucket_tag(sku, bucket, options->buckets, tag, sizeof tag);
    }
    rd_cmd_outbox_of_slot(cmd, options, slot);
}

void rd_cb_location(stock_id sku, uint32_t bucket, char out[RD_OWNER_MAX])
{
    if (bucket == 0)
        snprintf(out, RD_OWNER_MAX, "%.*s", (int)sku.len, sku.ptr);
    else
        snprintf(out, RD_OWNER_MAX, "%.*s %u", (int)sku.len, sku.ptr, bucket);
}

stock_id rd_cb_location_parse(const char *owner, uint32_t *bucket)
{
    const char *space = strchr(owner, ' ');
    if (space == NULL)
        return stock_id_from_cstr(owner);
    *bucket = (uint32_t)strtoul(space + 1, NULL, 10);
    return (stock_id){owner, (size_t)(space - owner)};
}

void rd_cb_fence_key(rd_cmd *cmd, const rd_options *options, const char *kind, stock_id id,
                     const char *other)
{
    (void)id;
    uint32_t bucket = 0;
    stock_id sku = rd_cb_location_parse(other, &bucket);
    if (bucket >= options->buckets)   /* another store's K: the home, never out of range */
        bucket = 0;
    rd_cb_key(cmd, options, sku, bucket, rd_record_suffix(kind));
}

/* ---------------------------------------------------------- the levels */

/* What the client read of a SKU's buckets. */
typedef struct cb_levels {
    bool found[RD_BUCKETS_MAX];
    int64_t available[RD_BUCKETS_MAX], adjusted[RD_BUCKETS_MAX];
    int64_t deducted[RD_BUCKETS_MAX], refunded[RD_BUCKETS_MAX];
} cb_levels;

/* How a step of an op ended. */
typedef enum cb_end {
    CB_NEXT,        /* go on */
    CB_ANSWERED,    /* the op has its result */
    CB_LOST,        /* the link was lost: the op is left for run_ops to fail */
} cb_end;

/* Fails op with an error reply (or leaves it to the lost link); without
 * an op the error only ends the step. */
static cb_end cb_error(const rd_store *store, stock_op *op, const redisReply *reply)
{
    if (reply == NULL || !rd_linked(store))
        return CB_LOST;
    if (op != NULL)
        rd_fail_server(op, reply);
    return CB_ANSWERED;
}

/* Sends the read of every bucket of sku (one get per bucket). */
static bool levels_send(rd_store *store, stock_id sku)
{
    for (uint32_t j = 0; j < store->options.buckets; j++) {
        rd_cmd_fcall(&store->cmd, "get");
        rd_cb_key(&store->cmd, &store->options, sku, j, "");
        if (!rd_send(store))
            return false;
    }
    return true;
}

/* Takes the replies of levels_send into levels; an error reply fails op
 * (NULL: it only ends the step). */
static cb_end levels_take(rd_store *store, stock_op *op, cb_levels *levels)
{
    cb_end end = CB_NEXT;
    for (uint32_t j = 0; j < store->options.buckets; j++) {
        redisReply *reply = rd_reply(store);
        if (reply == NULL)
            return CB_LOST;
        if (end == CB_NEXT && reply->type == REDIS_REPLY_ERROR)
            end = cb_error(store, op, reply);
        levels->found[j] = rd_is(reply, 0, "OK");
        levels->available[j] = levels->found[j] ? rd_element_i64(reply, 1) : 0;
        levels->adjusted[j] = levels->found[j] ? rd_element_i64(reply, 2) : 0;
        levels->deducted[j] = levels->found[j] ? rd_element_i64(reply, 3) : 0;
        levels->refunded[j] = levels->found[j] ? rd_element_i64(reply, 4) : 0;
        freeReplyObject(reply);
    }
    return end;
}

/* Reads every bucket of sku (one pipelined get per bucket). */
static cb_end levels_read(rd_store *store, stock_op *op, stock_id sku, cb_levels *levels)
{
    if (!levels_send(store, sku))
        return CB_LOST;
    return levels_take(store, op, levels);
}

/* The sum of the buckets' available other than skip (K: none skipped),
 * held at 2^63-1: each bucket is at most that, but each is judged by calls
 * of its own, so nothing keeps their sum below it; a sum held there still
 * covers every deduction, and get and set refuse it (levels_total). */
static int64_t levels_others(const rd_store *store, const cb_levels *levels, uint32_t skip)
{
    int64_t sum = 0;
    for (uint32_t j = 0; j < store->options.buckets; j++)
        if (j != skip)
            sum = rd_sum_held(sum, levels->available[j]);
    return sum;
}

/* The SKU's totals, the sums of its buckets' into *info; false (op failed,
 * INVALID as any change past the cap) when one does not fit in 2^63-1. */
static bool levels_total(const rd_store *store, stock_op *op, stock_id sku,
                         const cb_levels *levels, stock_sku_info *info)
{
    *info = (stock_sku_info){0};
    for (uint32_t j = 0; j < store->options.buckets; j++)
        if (__builtin_add_overflow(info->available, levels->available[j], &info->available) ||
            __builtin_add_overflow(info->adjusted, levels->adjusted[j], &info->adjusted) ||
            __builtin_add_overflow(info->deducted, levels->deducted[j], &info->deducted) ||
            __builtin_add_overflow(info->refunded, levels->refunded[j], &info->refunded)) {
            result_overflow(op, sku);
            return false;
        }
    return true;
}

/* ---------------------------------------------------------------- moves */

/* Moves up to need units into bucket target from the others, in bucket
 * order after it, each taking what the read says it holds: the moves are
 * announced in the pending set (so that the sweep finishes them if this
 * client dies), taken out (pipelined), put in, and dropped from the set. */
static cb_end moves_fill(rd_store *store, stock_op *op, stock_id sku, const cb_levels *levels,
                         uint32_t target, int64_t need)
{
    uint32_t k = store->options.buckets;
    const rd_options *options = &store->options;
    char ids[RD_BUCKETS_MAX][48];
    uint32_t from[RD_BUCKETS_MAX];
    int64_t want[RD_BUCKETS_MAX];
    int count = 0;
    int64_t now_us = clock_now_us(CLOCK_REALTIME);
    for (uint32_t step = 1; step < k && need > 0; step++) {
        uint32_t j = (target + step) % k;
        if (levels->available[j] <= 0)
            continue;
        from[count] = j;
        want[count] = levels->available[j] < need ? levels->available[j] : need;
        snprintf(ids[count], sizeof ids[count], "mv:%" PRId64 ":%08lx:%u", now_us, random(), j);
        need -= want[count];
        count++;
    }
    if (count == 0)
        return CB_NEXT;
    /* The pending set: member "id from to want sku", scored by the end of
     * the move's lease (Unix ms). */
    rd_cmd *cmd = &store->cmd;
    rd_cmd_start(cmd);
    rd_cmd_argf(cmd, "ZADD");
    rd_cmd_argf(cmd, "%s" RD_CB_MOVES_KEY, options->prefix);
    int64_t lease_ms = now_us / 1000 + (int64_t)options->timeout_ms * RD_ORDER_LEASE_FACTOR;
    for (int m = 0; m < count; m++) {
        rd_cmd_argf(cmd, "%" PRId64, lease_ms);
        rd_cmd_argf(cmd, "%s %u %u %" PRId64 " %.*s", ids[m], from[m], target, want[m],
                    (int)sku.len, sku.ptr);
    }
    redisReply *reply = rd_call(store);
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        cb_end end = cb_error(store, op, reply);
        freeReplyObject(reply);
        return end;
    }
    freeReplyObject(reply);
    char got[RD_BUCKETS_MAX][24];
    for (int m = 0; m < count; m++) {
        rd_cmd_fcall(cmd, "cb_move_out");
        rd_cb_key(cmd, options, sku, from[m], "");
        rd_cb_key(cmd, options, sku, from[m], ":moves");
        cb_outbox(cmd, options, sku, from[m]);
        rd_cmd_argf(cmd, "%s", ids[m]);
        rd_cmd_argf(cmd, "%" PRId64, want[m]);
        rd_cmd_id(cmd, sku);
        rd_cmd_argf(cmd, "%u", from[m]);
        if (!rd_send(store))
            return CB_LOST;
    }
    cb_end end = CB_NEXT;
    for (int m = 0; m < count; m++) {
        reply = rd_reply(store);
        if (reply == NULL)
            return CB_LOST;
        if (end == CB_NEXT && !rd_is(reply, 0, "OK"))
            end = cb_error(store, op, reply);
        snprintf(got[m], sizeof got[m], "%s", rd_is(reply, 0, "OK") ? rd_element(reply, 1) : "0");
        freeReplyObject(reply);
    }
    if (end != CB_NEXT)   /* the moves taken out are left to the sweep */
        return end;
    for (int m = 0; m < count; m++) {
        rd_cmd_fcall(cmd, "cb_move_in");
        rd_cb_key(cmd, options, sku, target, "");
        rd_cb_key(cmd, options, sku, target, ":moves");
        cb_outbox(cmd, options, sku, target);
        rd_cmd_argf(cmd, "%s", ids[m]);
        rd_cmd_argf(cmd, "%s", got[m]);
        rd_cmd_id(cmd, sku);
        rd_cmd_argf(cmd, "%u", target);
        if (!rd_send(store))
            return CB_LOST;
    }
    for (int m = 0; m < count; m++) {
        reply = rd_reply(store);
        if (reply == NULL)
            return CB_LOST;
        if (end == CB_NEXT && reply->type == REDIS_REPLY_ERROR)
            end = cb_error(store, op, reply);
        freeReplyObject(reply);
    }
    if (end != CB_NEXT)
        return end;
    rd_cmd_start(cmd);
    rd_cmd_argf(cmd, "ZREM");
    rd_cmd_argf(cmd, "%s" RD_CB_MOVES_KEY, options->prefix);
    for (int m = 0; m < count; m++)
        rd_cmd_argf(cmd, "%s %u %u %" PRId64 " %.*s", ids[m], from[m], target, want[m],
                    (int)sku.len, sku.ptr);
    reply = rd_call(store);
    if (reply == NULL)
        return CB_LOST;
    freeReplyObject(reply);   /* an error leaves the entry to the sweep, which finds it done */
    return CB_NEXT;
}

void rd_cb_sweep(rd_store *store)
{
    rd_cmd *cmd = &store->cmd;
    char now[24];
    snprintf(now, sizeof now, "%" PRId64, clock_now_us(CLOCK_REALTIME) / 1000);
    rd_cmd_start(cmd);
    rd_cmd_argf(cmd, "ZRANGEBYSCORE");
    rd_cmd_argf(cmd, "%s" RD_CB_MOVES_KEY, store->options.prefix);
    rd_cmd_argf(cmd, "-inf");
    rd_cmd_argf(cmd, "%s", now);
    rd_cmd_argf(cmd, "LIMIT");
    rd_cmd_argf(cmd, "0");
    rd_cmd_argf(cmd, "%d", RD_SWEEP_MAX);
    redisReply *list = rd_call(store);
    for (size_t i = 0; list != NULL && list->type == REDIS_REPLY_ARRAY && i < list->elements &&
                       rd_linked(store); i++) {
        const char *member = rd_element(list, i);
        char id[48], sku_text[STOCK_ID_MAX + 1];
        unsigned from, target;
        int64_t want;
        if (sscanf(member, "%47s %u %u %" SCNd64 " %64s", id, &from, &target, &want,
                   sku_text) != 5 || from >= store->options.buckets ||
            target >= store->options.buckets)
            continue;   /* not written by this library's K: left as it is */
        stock_id sku = stock_id_from_cstr(sku_text);
        /* moves_fill's steps again, with this move's id: each is done once. */
        rd_cmd_fcall(cmd, "cb_move_out");
        rd_cb_key(cmd, &store->options, sku, from, "");
        rd_cb_key(cmd, &store->options, sku, from, ":moves");
        cb_outbox(cmd, &store->options, sku, from);
        rd_cmd_argf(cmd, "%s", id);
        rd_cmd_argf(cmd, "%" PRId64, want);
        rd_cmd_id(cmd, sku);
        rd_cmd_argf(cmd, "%u", from);
        redisReply *out = rd_call(store);
        if (out == NULL || !rd_is(out, 0, "OK")) {
            freeReplyObject(out);
            continue;
        }
        rd_cmd_fcall(cmd, "cb_move_in");
        rd_cb_key(cmd, &store->options, sku, target, "");
        rd_cb_key(cmd, &store->options, sku, target, ":moves");
        cb_outbox(cmd, &store->options, sku, target);
        rd_cmd_argf(cmd, "%s", id);
        rd_cmd_argf(cmd, "%s", rd_element(out, 1));
        rd_cmd_id(cmd, sku);
        rd_cmd_argf(cmd, "%u", target);
        freeReplyObject(out);
        redisReply *in = rd_call(store);
        bool done = in != NULL && in->type != REDIS_REPLY_ERROR;
        freeReplyObject(in);
        if (!done)
            continue;
        rd_cmd_start(cmd);
        rd_cmd_argf(cmd, "ZREM");
        rd_cmd_argf(cmd, "%s" RD_CB_MOVES_KEY, store->options.prefix);
        rd_cmd_argf(cmd, "%s", member);
        freeReplyObject(rd_call(store));
    }
    freeReplyObject(list);
}

/* ------------------------------------------------------------------ ops */

static cb_end cb_get(rd_store *store, stock_op *op)
{
    cb_levels levels;
    cb_end end = levels_read(store, op, op->sku, &levels);
    if (end != CB_NEXT)
        return end;
    if (!levels.found[0]) {
        result_sku_not_found(op, op->sku);
        return CB_ANSWERED;
    }
    stock_sku_info info;
    if (!levels_total(store, op, op->sku, &levels, &info))
        return CB_ANSWERED;
    op->code = STOCK_OK;
    op->available = info.available;
    op->info.sku_info = info;
    return CB_ANSWERED;
}

/* One pass of a set: every bucket set to its share by compare-and-set of
 * the level read, the home alone first when the SKU is new (a SKU exists
 * when its home does). *changed when a bucket moved under it. */
static cb_end set_pass(rd_store *store, stock_op *op, const cb_levels *levels, bool *changed)
{
    uint32_t k = store->options.buckets;
    int64_t share = op->amount / k, rest = op->amount % k;
    uint32_t first = 0;
    cb_end end = CB_NEXT;
    *changed = false;
    while (first < k && end == CB_NEXT && !*changed) {
        uint32_t last = levels->found[0] || first > 0 ? k : 1;
        for (uint32_t j = first; j < last; j++) {
            rd_cmd *cmd = &store->cmd;
            rd_cmd_fcall(cmd, "cb_set");
            rd_cb_key(cmd, &store->options, op->sku, j, "");
            cb_outbox(cmd, &store->options, op->sku, j);
            rd_cmd_id(cmd, op->sku);
            rd_cmd_argf(cmd, "%u", j);
            rd_cmd_argf(cmd, "%" PRId64, share + ((int64_t)j < rest ? 1 : 0));
            if (levels->found[j])
                rd_cmd_argf(cmd, "%" PRId64, levels->available[j]);
            else
                rd_cmd_argf(cmd, "%s", "");
            if (!rd_send(store))
                return CB_LOST;
        }
        for (uint32_t j = first; j < last; j++) {
            redisReply *reply = rd_reply(store);
            if (reply == NULL)
                return CB_LOST;
            if (end == CB_NEXT && rd_is(reply, 0, "CHANGED")) {
                *changed = true;
            } else if (end == CB_NEXT && rd_is(reply, 0, "OVERFLOW")) {
                result_overflow(op, op->sku);
                end = CB_ANSWERED;
            } else if (end == CB_NEXT && !rd_is(reply, 0, "OK")) {
                end = cb_error(store, op, reply);
            }
            freeReplyObject(reply);
        }
        first = last;
    }
    return end;
}

static cb_end cb_set(rd_store *store, stock_op *op)
{
    for (int attempt = 0; attempt <= RD_RESTARTS_MAX; attempt++) {
        cb_levels levels;
        cb_end end = levels_read(store, op, op->sku, &levels);
        if (end != CB_NEXT)
            return end;
        stock_sku_info info;
        if (!levels_total(store, op, op->sku, &levels, &info))
            return CB_ANSWERED;
        int64_t available = info.available, adjusted = info.adjusted, change;
        if (op->has_expect && !levels.found[0]) {
            result_sku_not_found(op, op->sku);
            return CB_ANSWERED;
        }
        if (op->has_expect && available != op->expect) {
            result_mismatch(op, op->sku, available);
            return CB_ANSWERED;
        }
        if (__builtin_sub_overflow(op->amount, available, &change) ||
            __builtin_add_overflow(adjusted, change, &adjusted)) {
            result_overflow(op, op->sku);
            return CB_ANSWERED;
        }
        bool changed;
        end = set_pass(store, op, &levels, &changed);
        if (end != CB_NEXT)
            return end;
        if (!changed) {
            op->code = STOCK_OK;
            op->available = op->amount;
            return CB_ANSWERED;
        }
    }
    result_fail(op, STOCK_UNAVAILABLE, "redis: the SKU's buckets kept changing under the set "
                "(other stores deducting); nothing is lost, try again");
    return CB_ANSWERED;
}

/* Maps a SHORT of bucket (its level in reply) to a refusal, naming the
 * sum, or to moves that fill it; CB_NEXT to send the op again. */
static cb_end short_fill(rd_store *store, stock_op *op, stock_id sku, const cb_levels *levels,
                         uint32_t bucket, int64_t bucket_level, int64_t qty, int pass)
{
    int64_t total = rd_sum_held(bucket_level, levels_others(store, levels, bucket));
    if (total < qty || pass + 1 >= RD_CB_PASSES) {
        result_insufficient(op, op->sku, total);
        return CB_ANSWERED;
    }
    return moves_fill(store, op, sku, levels, bucket, qty - bucket_level);
}

/* The call of a deduction, refund or add, after the read. */
static void effect_call(rd_store *store, rd_job *job, stock_id sku, uint32_t bucket,
                        const cb_levels *levels, int64_t time_us)
{
    int64_t others = levels_others(store, levels, bucket);
    __int128 adjusted = 0;
    for (uint32_t j = 1; j < store->options.buckets; j++)
        adjusted += levels->adjusted[j];
    int64_t others_adjusted = rd_sum_clamp(adjusted);
    rd_cmd *cmd = &store->cmd;
    const rd_options *options = &store->options;
    const stock_op *op = job->op;
    if (op->type == STOCK_OP_DEDUCT) {
        rd_cmd_fcall(cmd, "cb_deduct");
        rd_cb_key(cmd, options, sku, bucket, "");
        rd_cb_key(cmd, options, sku, bucket, ":flow");
        cb_outbox(cmd, options, sku, bucket);
        rd_cmd_id(cmd, op->id);
        rd_cmd_argf(cmd, "%" PRId64, op->amount);
        rd_cmd_argf(cmd, "%" PRId64, time_us);
        rd_cmd_argf(cmd, "%s", job->gen);
        rd_cmd_id(cmd, sku);
        rd_cmd_argf(cmd, "%u", bucket);
        rd_cmd_argf(cmd, "%" PRId64, others);
        rd_cmd_lag_limits(cmd, options);
    } else if (op->type == STOCK_OP_REFUND) {
        rd_cmd_fcall(cmd, "cb_refund");
        rd_cb_key(cmd, options, sku, bucket, "");
        rd_cb_key(cmd, options, sku, bucket, ":flow");
        rd_cb_key(cmd, options, sku, bucket, ":refunds");
        cb_outbox(cmd, options, sku, bucket);
        rd_cmd_id(cmd, op->id);
        rd_cmd_id(cmd, op->line);
        rd_cmd_argf(cmd, "%" PRId64, op->amount);
        rd_cmd_argf(cmd, "%s", job->gen);
        rd_cmd_id(cmd, sku);
        rd_cmd_argf(cmd, "%u", bucket);
        rd_cmd_argf(cmd, "%" PRId64, others);
    } else {
        assert(op->type == STOCK_OP_ADD && bucket == 0);
        rd_cmd_fcall(cmd, "cb_add");
        rd_cb_key(cmd, options, sku, 0, "");
        rd_cb_key(cmd, options, sku, 0, ":adjust");
        cb_outbox(cmd, options, sku, 0);
        rd_cmd_argf(cmd, "%" PRId64, op->amount);
        rd_cmd_argf(cmd, "%.*s", (int)op->id.len, op->id.len > 0 ? op->id.ptr : "");
        rd_cmd_argf(cmd, "%s", job->gen);
        rd_cmd_id(cmd, sku);
        rd_cmd_argf(cmd, "%" PRId64, others);
        rd_cmd_argf(cmd, "%" PRId64, others_adjusted);
    }
}

/* A deduction, refund or add: read, call, and on SHORT fill and again. */
static cb_end cb_change(rd_store *store, rd_job *job, int64_t time_us, bool *restart)
{
    stock_op *op = job->op;
    uint32_t bucket = op->type == STOCK_OP_DEDUCT ? rd_cb_line_bucket(op->id, store->options.buckets)
                                                  : 0;
    /* A refund's owner is its line's location (the line's entry). */
    stock_id sku = op->type == STOCK_OP_REFUND ? rd_cb_location_parse(job->owner_text, &bucket)
                                               : op->sku;
    if (bucket >= store->options.buckets)
        bucket = 0;
    for (int pass = 0;; pass++) {
        cb_levels levels;
        cb_end end = levels_read(store, op, sku, &levels);
        if (end != CB_NEXT)
            return end;
        effect_call(store, job, sku, bucket, &levels, time_us);
        redisReply *reply = rd_call(store);
        if (reply == NULL)
            return CB_LOST;
        if (rd_is(reply, 0, "MOVED")) {
            *restart = true;
            freeReplyObject(reply);
            return CB_NEXT;
        }
        if (!rd_is(reply, 0, "SHORT")) {
            if (reply->type == REDIS_REPLY_ERROR)
                end = cb_error(store, op, reply);
            else
                rd_effect_done(&store->options, job, reply);
            freeReplyObject(reply);
            return end == CB_LOST ? CB_LOST : CB_ANSWERED;
        }
        int64_t level = rd_element_i64(reply, 1);
        freeReplyObject(reply);
        int64_t need = op->type == STOCK_OP_ADD ? -op->amount : op->amount;
        end = short_fill(store, op, sku, &levels, bucket, level, need, pass);
        if (end != CB_NEXT)
            return end;
    }
}

/* LINE: the line's record in its bucket. */
static cb_end cb_line(rd_store *store, rd_job *job)
{
    stock_op *op = job->op;
    uint32_t bucket = 0;
    stock_id sku = rd_cb_location_parse(job->owner_text, &bucket);
    job->owner = sku;   /* what the line's info names */
    rd_cmd_fcall(&store->cmd, "line");
    rd_cb_key(&store->cmd, &store->options, sku, bucket < store->options.buckets ? bucket : 0,
              ":flow");
    rd_cmd_id(&store->cmd, op->line);
    redisReply *reply = rd_call(store);
    if (reply == NULL)
        return CB_LOST;
    cb_end end = CB_ANSWERED;
    if (reply->type == REDIS_REPLY_ERROR)
        end = cb_error(store, op, reply);
    else
        rd_effect_done(&store->options, job, reply);
    freeReplyObject(reply);
    return end;
}

bool rd_cb_gather(rd_store *store, stock_op *op)
{
    for (uint32_t i = 0; i < op->line_count; i++) {
        stock_id sku = op->lines[i].sku;
        bool seen = false;
        for (uint32_t j = 0; j < i && !seen; j++)
            seen = op->lines[j].sku.len == sku.len &&
                   memcmp(op->lines[j].sku.ptr, sku.ptr, sku.len) == 0;
        if (seen)
            continue;
        cb_levels levels;
        cb_end end = levels_read(store, op, sku, &levels);
        int64_t others = end == CB_NEXT ? levels_others(store, &levels, 0) : 0;
        if (end == CB_NEXT && others > 0)
            end = moves_fill(store, op, sku, &levels, 0, others);
        if (end == CB_LOST)
            result_fail(op, STOCK_UNAVAILABLE, "%s", store->error);
        if (end != CB_NEXT)
            return false;
    }
    return true;
}

/* --------------------------------------------------------------- runs */

/* A run's deductions, by SKU: what rd_cb_run read and planned. */
typedef struct cb_run {
    bool pending;                   /* reads sent with the claims, replies not taken */
    bool ready;                     /* levels hold those reads, not yet planned from */
    int sku_count;
    stock_id skus[RD_CB_RUN_MAX];
    cb_levels levels[RD_CB_RUN_MAX];
    bool readable[RD_CB_RUN_MAX];   /* its read answered without an error */
    int sku_of[RD_CB_RUN_MAX];      /* per job: its SKU's index; -1 for no deduction */
    uint32_t bucket_of[RD_CB_RUN_MAX];
    bool fast[RD_CB_RUN_MAX];       /* goes in its bucket's call */
    int64_t others[RD_CB_RUN_MAX];  /* the other buckets' sum expected after it */
} cb_run;

/* The index of sku in the run, added (its read sent) if new; -1 when the
 * link was lost. */
static int run_sku(rd_store *store, cb_run *run, stock_id sku)
{
    int s = 0;
    while (s < run->sku_count && !id_equal(run->skus[s], sku))
        s++;
    if (s == run->sku_count) {
        assert(s < RD_CB_RUN_MAX);
        run->skus[run->sku_count++] = sku;
        if (!levels_send(store, sku))
            return -1;
    }
    return s;
}

/* Takes the replies of the reads of SKUs first.. of the run; false when
 * the link was lost. */
static bool run_take(rd_store *store, cb_run *run, int first)
{
    for (int s = first; s < run->sku_count; s++) {
        cb_end end = levels_take(store, NULL, &run->levels[s]);
        if (end == CB_LOST)
            return false;
        run->readable[s] = end == CB_NEXT;
    }
    return true;
}

bool rd_cb_alloc(rd_store *store)
{
    store->cb_run = calloc(1, sizeof *store->cb_run);
    return store->cb_run != NULL;
}

void rd_cb_read_send(rd_store *store, const rd_job *jobs, int count)
{
    cb_run *run = store->cb_run;
    assert(run != NULL);
    run->ready = false;
    run->sku_count = 0;
    for (int i = 0; i < count; i++)
        if (jobs[i].step != RD_DONE && jobs[i].op->type == STOCK_OP_DEDUCT &&
            run_sku(store, run, jobs[i].op->sku) < 0)
            return;
    run->pending = true;
}

void rd_cb_read_take(rd_store *store)
{
    cb_run *run = store->cb_run;
    if (!run->pending)
        return;
    run->pending = false;
    run->ready = run_take(store, run, 0);
}

/* Groups the deductions at their effect by SKU and reads the buckets of
 * every SKU the reads sent with the claims lack, all pipelined; false
 * when the link was lost. */
static bool run_read(rd_store *store, const rd_job *jobs, int count, cb_run *run)
{
    if (!run->ready)
        run->sku_count = 0;
    run->ready = false;
    int known = run->sku_count;
    for (int i = 0; i < count; i++) {
        run->sku_of[i] = -1;
        run->fast[i] = false;
        if (jobs[i].step != RD_EFFECT || jobs[i].op->type != STOCK_OP_DEDUCT)
            continue;
        int s = run_sku(store, run, jobs[i].op->sku);
        if (s < 0)
            return false;
        run->sku_of[i] = s;
        run->bucket_of[i] = rd_cb_line_bucket(jobs[i].op->id, store->options.buckets);
    }
    return run_take(store, run, known);
}

/* Picks, per SKU in batch order, the deductions whose bucket covers them
 * by the read, up to the first that does not (its bucket short or
 * missing, an earlier try of its line id, a SKU not found): that one and
 * the SKU's later ones run one at a time after the calls, so that a SKU's
 * deductions keep the batch's order. A pick's others is the other
 * buckets' sum after it, as the read and the picks before it make it. A
 * deduction the whole sum does not cover is refused here, INSUFFICIENT
 * naming that sum, as the slow path would refuse it: nothing is written
 * for it, so the SKU's later deductions go on. */
static void run_plan(const rd_store *store, rd_job *jobs, int count, cb_run *run)
{
    const rd_options *options = &store->options;
    bool lagged = options->lag_max_records > 0 || options->lag_max_ms > 0;
    bool blocked[RD_CB_RUN_MAX];
    for (int s = 0; s < run->sku_count; s++)
        blocked[s] = lagged || !run->readable[s] || !run->levels[s].found[0];
    for (int i = 0; i < count; i++) {
        int s = run->sku_of[i];
        if (s < 0 || blocked[s])
            continue;
        cb_levels *levels = &run->levels[s];
        uint32_t c = run->bucket_of[i];
        int64_t qty = jobs[i].op->amount;
        int64_t total = levels_others(store, levels, store->options.buckets);
        if (jobs[i].fresh && total < qty) {
            result_insufficient(jobs[i].op, jobs[i].op->sku, total);
            jobs[i].step = RD_DONE;
            continue;
        }
        if (!jobs[i].fresh || !levels->found[c] || levels->available[c] < qty) {
            blocked[s] = true;
            continue;
        }
        levels->available[c] -= qty;
        run->others[i] = levels_others(store, levels, c);
        run->fast[i] = true;
    }
}

/* Whether job m goes in the call of bucket c of SKU s. */
static bool run_rides(const cb_run *run, int m, int s, uint32_t c)
{
    return run->fast[m] && run->sku_of[m] == s && run->bucket_of[m] == c;
}

/* Sends one cb_deduct_many per bucket with picks, its picks in batch
 * order; heads[] gets each call's first job. The calls' count, -1 when
 * the link was lost. */
static int run_send(rd_store *store, const rd_job *jobs, int count, const cb_run *run,
                    int64_t time_us, int heads[RD_CB_RUN_MAX])
{
    const rd_options *options = &store->options;
    rd_cmd *cmd = &store->cmd;
    bool sent[RD_CB_RUN_MAX] = {false};
    int calls = 0;
    for (int i = 0; i < count; i++) {
        if (!run->fast[i] || sent[i])
            continue;
        int s = run->sku_of[i];
        uint32_t c = run->bucket_of[i];
        stock_id sku = run->skus[s];
        rd_cmd_fcall(cmd, "cb_deduct_many");
        rd_cb_key(cmd, options, sku, c, "");
        rd_cb_key(cmd, options, sku, c, ":flow");
        cb_outbox(cmd, options, sku, c);
        rd_cmd_argf(cmd, "%" PRId64, time_us);
        rd_cmd_id(cmd, sku);
        rd_cmd_argf(cmd, "%u", c);
        for (int m = i; m < count; m++) {
            if (!run_rides(run, m, s, c))
                continue;
            sent[m] = true;
            rd_cmd_id(cmd, jobs[m].op->id);
            rd_cmd_argf(cmd, "%" PRId64, jobs[m].op->amount);
            rd_cmd_argf(cmd, "%s", jobs[m].gen);
            rd_cmd_argf(cmd, "%" PRId64, run->others[m]);
        }
        if (!rd_send(store))
            return -1;
        heads[calls++] = i;
    }
    return calls;
}

/* Advances the picks of one call by its reply: each answered, a SHORT
 * left at its effect (for the slow path), a MOVED restarted. */
static void run_answer(rd_store *store, rd_job *jobs, int count, const cb_run *run, int head,
                       const redisReply *reply)
{
    int s = run->sku_of[head];
    uint32_t c = run->bucket_of[head];
    size_t riders = 0;
    for (int m = head; m < count; m++)
        riders += run_rides(run, m, s, c);
    bool answers = reply->type == REDIS_REPLY_ARRAY && reply->elements == riders;
    for (size_t k = 0; answers && k < riders; k++)
        answers = reply->element[k]->type == REDIS_REPLY_ARRAY;
    size_t k = 0;
    for (int m = head; m < count; m++) {
        if (!run_rides(run, m, s, c))
            continue;
        rd_job *job = &jobs[m];
        const redisReply *answer = answers ? reply->element[k++] : reply;
        if (reply->type == REDIS_REPLY_ERROR) {
            rd_fail_server(job->op, reply);
        } else if (rd_is(answer, 0, "SHORT")) {
            continue;
        } else if (rd_is(answer, 0, "MOVED")) {
            rd_job_restart(job);
            continue;
        } else {
            rd_effect_done(&store->options, job, answer);
        }
        job->step = RD_DONE;
    }
}

void rd_cb_run(rd_store *store, rd_job *jobs, int count, int64_t time_us)
{
    assert(count >= 1 && count <= RD_CB_RUN_MAX);
    cb_run *run = store->cb_run;
    assert(run != NULL);
    int heads[RD_CB_RUN_MAX];
    if (!run_read(store, jobs, count, run))
        return;
    run_plan(store, jobs, count, run);
    int calls = run_send(store, jobs, count, run, time_us, heads);
    if (calls < 0)
        return;
    for (int call = 0; call < calls; call++) {
        redisReply *reply = rd_reply(store);
        if (reply == NULL)
            return;
        run_answer(store, jobs, count, run, heads[call], reply);
        freeReplyObject(reply);
    }
    for (int i = 0; i < count && rd_linked(store); i++) {
        if (jobs[i].step != RD_EFFECT)
            continue;
        if (rd_cb_effect(store, &jobs[i], time_us))
            rd_job_restart(&jobs[i]);
    }
}

bool rd_cb_effect(rd_store *store, rd_job *job, int64_t time_us)
{
    bool restart = false;
    cb_end end = CB_ANSWERED;
    switch (job->op->type) {
    case STOCK_OP_GET: end = cb_get(store, job->op); break;
    case STOCK_OP_SET: end = cb_set(store, job->op); break;
    case STOCK_OP_LINE: end = cb_line(store, job); break;
    case STOCK_OP_DEDUCT: case STOCK_OP_REFUND: case STOCK_OP_ADD:
        end = cb_change(store, job, time_us, &restart);
        break;
    default:
        assert(!"orders and holds do not reach a bucket's effect");
    }
    if (end == CB_ANSWERED)
        job->step = RD_DONE;
    return restart;
}
