/*
 * redis.c -- the redis backend: libstock over Redis 7 through hiredis, with
 * every operation a Redis Function (redis_functions.lua) and the key layout
 * of docs/redis.md, designed so that a Redis Cluster never needs a
 * cross-slot call.
 *
 * Threading, as in the postgres backend: stock_submit only queues the batch
 * and wakes the worker thread, which owns one hiredis connection. The worker
 * takes every batch queued meanwhile and runs their ops as pipelined calls;
 * a batch's done runs after its last reply (and after WAIT with wait=N).
 *
 * An op with an id (a line, refund, adjustment or order id) takes two or
 * more calls: the id's directory entry, in the id's own slot, names the SKU
 * whose slot holds the id's record (claim), then the op's function runs in
 * that slot. The ops of a batch advance together, one pipelined round per
 * step; an op's effect (its last call) is sent only once every op before it
 * has sent its own, so ops see each other in batch order. A run of ops whose
 * ids repeat is cut in two, so that each round's claims are independent.
 * Orders run alone, between runs (redis_order.c).
 */
#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/redis.h"
#include "lib/batches.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/result.h"

/* --------------------------------------------------------------- the ids */

/* The directory kind and id an op claims; false for ops without one. */
static bool op_claim_id(const stock_op *op, const char **kind, stock_id *id)
{
    switch (op->type) {
    case STOCK_OP_DEDUCT: *kind = "line"; *id = op->id; return true;
    case STOCK_OP_ADD: *kind = "adjust"; *id = op->id; return op->id.len > 0;
    case STOCK_OP_REFUND: *kind = "refund"; *id = op->id; return true;
    default: return false;
    }
}

/* The word a conflict names for kind (result_conflict). */
static const char *conflict_word(const char *kind)
{
    return strcmp(kind, "adjust") == 0 ? "adjustment" : kind;
}

/* fused: a deduction claims its line id in its effect (single server).
 * cb_buckets: K with buckets on a cluster (else 0), where a lone line's id
 * is bound to its location, the SKU and the line's bucket (docs/redis.md,
 * "Hot-SKU buckets"). */
static void job_start(rd_job *job, stock_op *op, bool fused, uint32_t cb_buckets)
{
    memset(job, 0, sizeof *job);
    job->op = op;
    job->owner = op->sku;
    job->cb_buckets = cb_buckets;
    if (cb_buckets > 0 && op->type == STOCK_OP_DEDUCT) {
        rd_cb_location(op->sku, rd_cb_line_bucket(op->id, cb_buckets), job->owner_text);
        job->owner = stock_id_from_cstr(job->owner_text);
    }
    job->fused = fused && op->type == STOCK_OP_DEDUCT;
    const char *kind;
    stock_id id;
    if (op->type == STOCK_OP_REFUND || op->type == STOCK_OP_LINE)
        job->step = RD_LOOKUP;
    else
        job->step = op_claim_id(op, &kind, &id) && !job->fused ? RD_CLAIM : RD_EFFECT;
    snprintf(job->gen, sizeof job->gen, "0");
}

void rd_job_restart(rd_job *job)
{
    stock_op *op = job->op;
    if (++job->restarts > RD_RESTARTS_MAX) {
        result_fail(op, STOCK_IO, "redis: the id kept moving between SKUs (concurrent "
                    "retries with other parameters); try again");
        job->step = RD_DONE;
        return;
    }
    rd_job fresh;
    job_start(&fresh, op, job->fused, job->cb_buckets);
    fresh.restarts = job->restarts;
    *job = fresh;
}

static void set_owner(rd_job *job, const char *sku)
{
    snprintf(job->owner_text, sizeof job->owner_text, "%s", sku);
    job->owner = stock_id_from_cstr(job->owner_text);
}

/* ------------------------------------------------------------- the calls */

/* Builds the call of the op's effect. */
static void effect_build(rd_store *store, rd_job *job, int64_t time_us)
{
    rd_cmd *cmd = &store->cmd;
    const char *p = store->options.prefix;
    const stock_op *op = job->op;
    switch (op->type) {
    case STOCK_OP_SET:
        rd_cmd_fcall(cmd, "set");
        rd_cmd_key(cmd, p, "sku", op->sku, "");
        rd_cmd_outbox(cmd, &store->options, op->sku);
        rd_cmd_buckets(cmd, p, op->sku, store->options.buckets);
        rd_cmd_argf(cmd, "%" PRId64, op->amount);
        rd_cmd_argf(cmd, "%d", op->has_expect ? 1 : 0);
        rd_cmd_argf(cmd, "%" PRId64, op->expect);
        return;
    case STOCK_OP_ADD:
        rd_cmd_fcall(cmd, "add");
        rd_cmd_key(cmd, p, "sku", op->sku, "");
        rd_cmd_key(cmd, p, "sku", op->sku, ":adjust");
        rd_cmd_outbox(cmd, &store->options, op->sku);
        rd_cmd_buckets(cmd, p, op->sku, store->options.buckets);
        rd_cmd_argf(cmd, "%" PRId64, op->amount);
        rd_cmd_argf(cmd, "%.*s", (int)op->id.len, op->id.len > 0 ? op->id.ptr : "");
        rd_cmd_argf(cmd, "%s", job->gen);
        return;
    case STOCK_OP_DEDUCT:
        rd_cmd_fcall(cmd, job->fused ? "claim_deduct" : "deduct");
        if (job->fused)
            rd_cmd_key(cmd, p, "line", op->id, "");
        rd_cmd_key(cmd, p, "sku", op->sku, "");
        rd_cmd_key(cmd, p, "sku", op->sku, ":flow");
        rd_cmd_outbox(cmd, &store->options, op->sku);
        rd_cmd_buckets(cmd, p, op->sku, store->options.buckets);
        rd_cmd_id(cmd, op->id);
        rd_cmd_argf(cmd, "%" PRId64, op->amount);
        rd_cmd_argf(cmd, "%" PRId64, time_us);
        if (job->fused)
            rd_cmd_id(cmd, op->sku);
        else
            rd_cmd_argf(cmd, "%s", job->gen);
        rd_cmd_lag_limits(cmd, &store->options);
        return;
    case STOCK_OP_REFUND:
        rd_cmd_fcall(cmd, "refund");
        rd_cmd_key(cmd, p, "sku", job->owner, "");
        rd_cmd_key(cmd, p, "sku", job->owner, ":flow");
        rd_cmd_key(cmd, p, "sku", job->owner, ":refunds");
        rd_cmd_outbox(cmd, &store->options, job->owner);
        rd_cmd_buckets(cmd, p, job->owner, store->options.buckets);
        rd_cmd_id(cmd, op->id);
        rd_cmd_id(cmd, op->line);
        rd_cmd_argf(cmd, "%" PRId64, op->amount);
        rd_cmd_argf(cmd, "%s", job->gen);
        return;
    case STOCK_OP_GET:
        rd_cmd_fcall(cmd, "get");
        rd_cmd_key(cmd, p, "sku", op->sku, "");
        rd_cmd_buckets(cmd, p, op->sku, store->options.buckets);
        return;
    case STOCK_OP_LINE:
        rd_cmd_fcall(cmd, "line");
        rd_cmd_key(cmd, p, "sku", job->owner, ":flow");
        rd_cmd_id(cmd, op->line);
        return;
    case STOCK_OP_ORDER:
        assert(!"orders run alone");
        return;
    case STOCK_OP_HOLD: case STOCK_OP_CONFIRM: case STOCK_OP_RELEASE:
    case STOCK_OP_CONFIRM_ORDER: case STOCK_OP_HOLD_GET:
        break;
    }
    assert(!"stock_submit answers holds UNSUPPORTED (backend.h)");
}

/* Builds the op's next call. */
static void job_build(rd_store *store, rd_job *job, int64_t time_us)
{
    rd_cmd *cmd = &store->cmd;
    const char *p = store->options.prefix;
    const char *kind = "line";
    stock_id id = job->op->line;
    switch (job->step) {
    case RD_LOOKUP:
    case RD_LOOKUP_REFUND:
        kind = job->step == RD_LOOKUP ? "line" : "refund";
        id = job->step == RD_LOOKUP ? job->op->line : job->op->id;
        rd_cmd_start(cmd);
        rd_cmd_argf(cmd, "GET");
        rd_cmd_argf(cmd, "%s{%s:%.*s}", p, kind, (int)id.len, id.ptr);
        return;
    case RD_CLAIM:
        op_claim_id(job->op, &kind, &id);
        rd_claim_build(cmd, p, kind, id, job->owner);
        return;
    case RD_REBIND:
        op_claim_id(job->op, &kind, &id);
        rd_cmd_fcall(cmd, "rebind");
        rd_cmd_key(cmd, p, kind, id, "");
        rd_cmd_argf(cmd, "%s", job->other);
        rd_cmd_argf(cmd, "%s", job->other_gen);
        rd_cmd_id(cmd, job->owner);
        return;
    case RD_FENCE:
        op_claim_id(job->op, &kind, &id);
        rd_cmd_fcall(cmd, "fence");
        if (rd_cb_on(&store->options))
            rd_cb_fence_key(cmd, &store->options, kind, id, job->other);
        else
            rd_cmd_key(cmd, p, "sku", stock_id_from_cstr(job->other), rd_record_suffix(kind));
        rd_cmd_id(cmd, id);
        rd_cmd_argf(cmd, "%s", job->other_gen);
        return;
    case RD_EFFECT:
        effect_build(store, job, time_us);
        return;
    case RD_DONE:
        break;
    }
    assert(!"a finished op has no call");
}

void rd_effect_done(const rd_options *options, rd_job *job, const redisReply *reply)
{
    stock_op *op = job->op;
    const char *kind = "line";
    stock_id id;
    bool has_id = op_claim_id(op, &kind, &id);
    if (rd_is(reply, 0, "OK") || rd_is(reply, 0, "REPLAY")) {
        op->code = rd_is(reply, 0, "OK") ? STOCK_OK : STOCK_REPLAY;
        op->available = rd_element_i64(reply, 1);
        if (op->type == STOCK_OP_GET)
            op->info.sku_info = (stock_sku_info){rd_element_i64(reply, 1), rd_element_i64(reply, 2),
                                                 rd_element_i64(reply, 3), rd_element_i64(reply, 4), 0};
        if (op->type == STOCK_OP_LINE) {
            stock_line_info *info = &op->info.line_info;
            snprintf(info->sku, sizeof info->sku, "%.*s", (int)job->owner.len, job->owner.ptr);
            snprintf(info->order_id, sizeof info->order_id, "%s",
                     rd_is(reply, 5, "-") ? "" : rd_element(reply, 5));
            info->qty = rd_element_i64(reply, 1);
            info->refunded = rd_element_i64(reply, 2);
            info->time_us = rd_element_i64(reply, 3);
            info->available_after = rd_element_i64(reply, 4);
            op->available = 0;
        }
    } else if (rd_is(reply, 0, "NOTFOUND") && (op->type == STOCK_OP_REFUND ||
                                            op->type == STOCK_OP_LINE)) {
        result_line_not_found(op, op->line);
    } else if (rd_is(reply, 0, "NOTFOUND")) {
        result_sku_not_found(op, op->sku);
    } else if (rd_is(reply, 0, "INSUFFICIENT")) {
        result_insufficient(op, op->sku, rd_element_i64(reply, 1));
    } else if (rd_is(reply, 0, "MISMATCH")) {
        result_mismatch(op, op->sku, rd_element_i64(reply, 1));
    } else if (rd_is(reply, 0, "EXCEEDS")) {
        result_exceeds(op, op->line, rd_element_i64(reply, 1));
    } else if (rd_is(reply, 0, "CONFLICT") && has_id) {
        result_conflict(op, conflict_word(kind), id);
    } else if (rd_is(reply, 0, "OVERFLOW")) {
        result_overflow(op, job->owner);
    } else if (rd_is(reply, 0, "LAGGING")) {
        rd_fail_lagging(op, options);
    } else {
        result_fail(op, STOCK_IO, "redis: unexpected reply '%.40s' (a function library of "
                    "another version?)", rd_element(reply, 0));
    }
}

/* Advances the op by the reply to its call. */
static void job_advance(const rd_options *options, rd_job *job, const redisReply *reply)
{
    stock_op *op = job->op;
    const char *kind = "line";
    stock_id id;
    if (reply->type == REDIS_REPLY_ERROR) {
        rd_fail_server(op, reply);
        job->step = RD_DONE;
        return;
    }
    char owner[RD_OWNER_MAX];
    bool found;
    switch (job->step) {
    case RD_LOOKUP:
        found = rd_entry_parse(reply, job->gen, owner);
        if (!found && op->type == STOCK_OP_LINE) {
            result_line_not_found(op, op->line);
            job->step = RD_DONE;
        } else if (!found) {
            job->step = RD_LOOKUP_REFUND;
        } else {
            set_owner(job, owner);
            job->step = op->type == STOCK_OP_LINE ? RD_EFFECT : RD_CLAIM;
        }
        return;
    case RD_LOOKUP_REFUND:
        /* No line: NOTFOUND, unless the refund id is bound (judged first). */
        if (!rd_entry_parse(reply, job->gen, owner)) {
            result_line_not_found(op, op->line);
            job->step = RD_DONE;
        } else {
            set_owner(job, owner);
            job->step = RD_EFFECT;
        }
        return;
    case RD_CLAIM:
        job->fresh = reply->type == REDIS_REPLY_NIL;
        job->step = rd_claim_parse(reply, job->owner, job->gen, job->other, job->other_gen)
                        ? RD_EFFECT : RD_FENCE;
        return;
    case RD_FENCE:
        op_claim_id(op, &kind, &id);
        if (strcmp(rd_text_of(reply), "exists") == 0) {
            result_conflict(op, conflict_word(kind), id);
            job->step = RD_DONE;
        } else {
            job->step = RD_REBIND;
        }
        return;
    case RD_REBIND:
        if (rd_is(reply, 0, "ok")) {
            snprintf(job->gen, sizeof job->gen, "%s", rd_element(reply, 1));
            job->step = RD_EFFECT;
        } else {
            rd_job_restart(job);
        }
        return;
    case RD_EFFECT:
        if (rd_is(reply, 0, "MOVED")) {
            rd_job_restart(job);
            return;
        }
        if (job->fused && rd_is(reply, 0, "other")) {   /* the claim found an owner */
            snprintf(job->other_gen, sizeof job->other_gen, "%s", rd_element(reply, 1));
            snprintf(job->other, sizeof job->other, "%s", rd_element(reply, 2));
            job->step = RD_FENCE;
            return;
        }
        rd_effect_done(options, job, reply);
        job->step = RD_DONE;
        return;
    case RD_DONE:
        break;
    }
    assert(!"a finished op got a reply");
}

/* ------------------------------------------------------------------ runs */

/* How many jobs from first on can ride one deduct_many call: consecutive
 * deductions at their effect, all claiming in it (fused) or none, and on a
 * cluster all in the first one's slot. None with outbox lag limits, which
 * each deduction checks on its own (deduct), nor with buckets: deduct_many
 * reads a SKU's home key only, where a deduction may need every bucket. */
static int many_count(const rd_store *store, int first, int count)
{
    const rd_job *head = &store->jobs[first];
    if (head->op->type != STOCK_OP_DEDUCT || store->options.lag_max_records > 0 ||
        store->options.lag_max_ms > 0 || store->options.buckets > 1)
        return 1;
    unsigned slot = rd_tag_slot("sku", head->op->sku);
    int riders = 1;
    while (first + riders < count && riders < RD_MANY_MAX) {
        const rd_job *job = &store->jobs[first + riders];
        if (job->step != RD_EFFECT || job->op->type != STOCK_OP_DEDUCT ||
            job->fused != head->fused ||
            (store->options.cluster && rd_tag_slot("sku", job->op->sku) != slot))
            break;
        riders++;
    }
    return riders;
}

/* A deduct_many call's arguments: FCALL, name, key count, time, claiming,
 * SKU count, and per op at most 3 SKU keys, the SKU id, a directory key and
 * at most 4 arguments. */
_Static_assert(6 + RD_MANY_MAX * 9 <= RD_ARGS_MAX, "RD_ARGS_MAX holds a deduct_many call");

/* Builds one deduct_many call for the effects of jobs[first..first+riders):
 * each SKU's keys once, then (fused) each line's directory entry. */
static void many_build(rd_store *store, int first, int riders, int64_t time_us)
{
    assert(riders >= 2 && riders <= RD_MANY_MAX);
    rd_cmd *cmd = &store->cmd;
    const char *p = store->options.prefix;
    const rd_job *jobs = &store->jobs[first];
    stock_id skus[RD_MANY_MAX];
    int sku_index[RD_MANY_MAX];
    int m = 0;
    rd_cmd_fcall(cmd, "deduct_many");
    for (int k = 0; k < riders; k++) {
        stock_id sku = jobs[k].op->sku;
        int s = 0;
        while (s < m && !id_equal(skus[s], sku))
            s++;
        if (s == m) {
            skus[m++] = sku;
            rd_cmd_key(cmd, p, "sku", sku, "");
            rd_cmd_key(cmd, p, "sku", sku, ":flow");
            rd_cmd_outbox(cmd, &store->options, sku);
        }
        sku_index[k] = s + 1;
    }
    for (int k = 0; k < riders && jobs[0].fused; k++)
        rd_cmd_key(cmd, p, "line", jobs[k].op->id, "");
    rd_cmd_argf(cmd, "%" PRId64, time_us);
    rd_cmd_argf(cmd, "%d", jobs[0].fused ? 1 : 0);
    rd_cmd_argf(cmd, "%d", m);
    for (int s = 0; s < m; s++)
        rd_cmd_id(cmd, skus[s]);
    for (int k = 0; k < riders; k++) {
        rd_cmd_id(cmd, jobs[k].op->id);
        rd_cmd_argf(cmd, "%" PRId64, jobs[k].op->amount);
        if (m > 1)
            rd_cmd_argf(cmd, "%d", sku_index[k]);
        if (!jobs[0].fused)
            rd_cmd_argf(cmd, "%s", jobs[k].gen);
    }
}

/* Advances the riders of one deduct_many call by its reply: one answer per
 * op up to the op that ended the call (a deduction that took its units
 * answers its available after, as a string; any other answer is an array,
 * as deduct's); the ops after it stay at their effect, to be sent again.
 * An error or a malformed reply is every op's. */
static void many_advance(const rd_options *options, rd_job *jobs, int riders,
                         const redisReply *reply)
{
    bool answers = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
                   reply->elements <= (size_t)riders;
    for (size_t k = 0; answers && k < reply->elements; k++)
        answers = reply->element[k]->type == REDIS_REPLY_ARRAY ||
                  reply->element[k]->type == REDIS_REPLY_STRING;
    for (int k = 0; k < riders; k++) {
        if (!answers) {
            job_advance(options, &jobs[k], reply);
            continue;
        }
        if ((size_t)k == reply->elements)
            break;   /* unjudged: the ops from here stay at their effect */
        const redisReply *answer = reply->element[k];
        if (answer->type == REDIS_REPLY_STRING) {
            jobs[k].op->code = STOCK_OK;
            jobs[k].op->available = strtoll(answer->str, NULL, 10);
            jobs[k].step = RD_DONE;
        } else {
            job_advance(options, &jobs[k], answer);
        }
    }
}

/* Sends one round: each op's next call, an effect only when every op
 * before it has sent its effect (and that effect cannot be left undone:
 * not a claiming deduction, not a deduct_many); consecutive deductions at
 * their effect ride one deduct_many call. Returns the calls sent. */
static int round_send(rd_store *store, int count, int64_t time_us)
{
    int sent = 0;
    bool in_order = true;   /* every op so far is done or sent its effect */
    for (int i = 0; i < count; i++)
        store->jobs[i].sent = false;
    for (int i = 0; i < count; i++) {
        rd_job *job = &store->jobs[i];
        if (job->step == RD_DONE)
            continue;
        bool effect = job->step == RD_EFFECT;
        if (effect && rd_cb_on(&store->options))
            continue;   /* rd_cb_run's, once every op is past its claim */
        if (!effect || in_order) {
            job->riders = effect ? many_count(store, i, count) : 1;
            if (job->riders > 1)
                many_build(store, i, job->riders, time_us);
            else
                job_build(store, job, time_us);
            if (!rd_send(store))
                return -1;
            job->sent = true;
            sent++;
            i += job->riders - 1;
        }
        /* A call that may end early (a claim finding another owner, a
         * MOVED) leaves ops of it to a later round: what follows waits. */
        in_order = in_order && effect && job->riders == 1 && !job->fused;
    }
    return sent;
}

/* Whether every op is past its claim and one at least has its effect to
 * run (cluster buckets: rd_cb_run runs the effects together). */
static bool cb_ready(const rd_store *store, int count)
{
    bool effects = false;
    for (int i = 0; i < count; i++) {
        if (store->jobs[i].step != RD_EFFECT && store->jobs[i].step != RD_DONE)
            return false;
        effects = effects || store->jobs[i].step == RD_EFFECT;
    }
    return effects;
}

/* Runs ops[0..count) (no orders, no repeated ids) to completion. */
static void run_ops(rd_store *store, stock_op **ops, int count)
{
    assert(count >= 1 && count <= RD_RUN_MAX);
    int64_t time_us = clock_now_us(CLOCK_REALTIME);
    for (int i = 0; i < count; i++)
        job_start(&store->jobs[i], ops[i], store->fused,
                  rd_cb_on(&store->options) ? store->options.buckets : 0);
    bool first_round = true;
    for (;;) {
        if (rd_cb_on(&store->options) && cb_ready(store, count)) {
            rd_cb_run(store, store->jobs, count, time_us);
            bool left = false;   /* an op left at its effect: the link was lost */
            for (int i = 0; i < count; i++)
                left = left || store->jobs[i].step == RD_EFFECT;
            if (left || !rd_linked(store))
                break;   /* UNAVAILABLE below */
            continue;    /* the restarted ops claim again */
        }
        int sent = round_send(store, count, time_us);
        if (sent == 0)
            return;
        /* The first round is the claims: the reads of rd_cb_run ride in it. */
        bool reads = rd_cb_on(&store->options) && first_round;
        if (reads)
            rd_cb_read_send(store, store->jobs, count);
        first_round = false;
        for (int i = 0; sent > 0 && i < count; i++) {
            rd_job *job = &store->jobs[i];
            if (!job->sent)
                continue;
            redisReply *reply = rd_reply(store);
            if (reply == NULL)
                break;
            if (job->riders > 1)
                many_advance(&store->options, job, job->riders, reply);
            else
                job_advance(&store->options, job, reply);
            freeReplyObject(reply);
        }
        if (reads && rd_linked(store))
            rd_cb_read_take(store);
        if (!rd_linked(store))
            break;
    }
    for (int i = 0; i < count; i++)
        if (store->jobs[i].step != RD_DONE) {
            stock_op *op = store->jobs[i].op;
            op->failed_line = -1;
            result_fail(op, STOCK_UNAVAILABLE, "%s", store->error);
        }
}

/* FNV-1a of a directory kind and id: a run's repeat test. */
static uint64_t id_hash(const char *kind, stock_id id)
{
    uint64_t hash = 1469598103934665603ULL;
    for (const char *c = kind; *c != '\0'; c++)
        hash = (hash ^ (unsigned char)*c) * 1099511628211ULL;
    for (uint32_t i = 0; i < id.len; i++)
        hash = (hash ^ (unsigned char)id.ptr[i]) * 1099511628211ULL;
    return hash | 1;   /* 0 marks a free slot */
}

/* Adds hash to the run's set; false if it is there already. */
static bool seen_add(rd_store *store, uint64_t hash)
{
    size_t mask = sizeof store->seen / sizeof store->seen[0] - 1;
    for (size_t at = hash & mask;; at = (at + 1) & mask) {
        if (store->seen[at] == hash)
            return false;
        if (store->seen[at] == 0) {
            store->seen[at] = hash;
            return true;
        }
    }
}

/* Adds the op's directory ids to the run; false if one is there already. */
static bool run_admits(rd_store *store, const stock_op *op)
{
    const char *kind;
    stock_id id;
    bool fresh = true;
    if (op->type == STOCK_OP_REFUND || op->type == STOCK_OP_LINE)
        fresh = seen_add(store, id_hash("line", op->line));
    if (op_claim_id(op, &kind, &id))
        fresh = seen_add(store, id_hash(kind, id)) && fresh;
    return fresh;
}

/* Runs the ops in order: runs of ops with distinct ids, and orders alone. */
static void run_all(rd_store *store, stock_op **ops, size_t count)
{
    size_t first = 0;
    while (first < count) {
        memset(store->seen, 0, sizeof store->seen);
        size_t end = first;
        while (end < count && end - first < RD_RUN_MAX && ops[end]->type != STOCK_OP_ORDER &&
               run_admits(store, ops[end]))
            end++;
        if (rd_cb_on(&store->options) && ops[first]->type != STOCK_OP_ORDER) {
            /* Deductions together (rd_cb_run), any other op alone: its
             * buckets' calls follow one another. */
            size_t deductions = 0;
            while (first + deductions < end && deductions < RD_CB_RUN_MAX &&
                   ops[first + deductions]->type == STOCK_OP_DEDUCT)
                deductions++;
            end = first + (deductions > 0 ? deductions : 1);
            run_ops(store, &ops[first], (int)(end - first));
        } else if (end == first && rd_cb_on(&store->options)) {
            if (rd_cb_gather(store, ops[first]))
                rd_order_run(store, ops[first]);
            end = first + 1;
        } else if (end == first && ops[first]->type == STOCK_OP_ORDER) {
            rd_order_run(store, ops[first]);
            end = first + 1;
        } else if (end == first) {
            end = first + 1;   /* a lone op whose two ids are the same */
            run_ops(store, &ops[first], 1);
        } else {
            run_ops(store, &ops[first], (int)(end - first));
        }
        first = end;
    }
}

/* ---------------------------------------------------------------- worker */

/* After a batch with wait=N: WAIT N for three quarters of the time left
 * before the batch's deadline (so that the answer comes before it). Fewer
 * replicas: every write that succeeded (a replay too: its original may not
 * have reached them) says it is applied on the master but not replicated
 * yet. */
static void wait_replicas(rd_store *store, stock_op **ops, size_t count)
{
    int64_t left_us = store->link.end_us - clock_now_us(CLOCK_MONOTONIC);
    int64_t wait_ms = left_us / 1000 * 3 / 4 + 1;
    if (wait_ms > INT_MAX)
        wait_ms = INT_MAX;
    /* With no time left the writes count as not replicated, and the link,
     * which did nothing wrong, stays up. */
    long long acked = left_us > 0
                          ? rd_link_wait(store, store->options.wait_replicas, (int)wait_ms)
                          : 0;
    if (acked >= store->options.wait_replicas)
        return;
    for (size_t i = 0; i < count; i++) {
        stock_op *op = ops[i];
        if (!stock_code_succeeded(op->code) || op->type == STOCK_OP_GET ||
            op->type == STOCK_OP_LINE)
            continue;
        op->failed_line = -1;
        result_fail(op, STOCK_UNAVAILABLE, "redis: applied on the master but not yet "
                    "replicated: WAIT %d got %lld replicas in %d ms; a retry with the same id "
                    "replays it", store->options.wait_replicas, acked < 0 ? 0 : acked,
                    left_us > 0 ? (int)wait_ms : 0);
    }
}

/* Starts the deadline of the work of ops ops (a batch; an open or a sweep
 * is 1): no wait of the link past timeout_ms from now for every
 * RD_DEADLINE_OPS of them (rd_bound), so that a big batch has the time its
 * work takes, and a batch of any size an end. */
static void deadline_start(rd_store *store, size_t ops)
{
    int64_t shares = (int64_t)((ops + RD_DEADLINE_OPS - 1) / RD_DEADLINE_OPS);
    store->link.end_us = clock_now_us(CLOCK_MONOTONIC) +
                         shares * store->options.timeout_ms * 1000;
}

/* The worker's run: the chain's valid ops together, reconnecting first
 * after a loss, then every batch of it completed. The chain has one
 * deadline (deadline_start): however many calls its ops make one after the
 * other, the link gives up on them then (the ops left: UNAVAILABLE,
 * outcome unknown). */
static void run_batches(stock_t *base, stock_batch *batches)
{
    rd_store *store = (rd_store *)base;
    stock_op **ops = store->ops;
    size_t count = 0;
    for (stock_batch *batch = batches; batch != NULL; batch = batch->next)
        for (size_t i = 0; i < batch->count; i++)
            if (batch->ops[i].code == STOCK_OK)   /* not already INVALID */
                ops[count++] = &batch->ops[i];
    assert(count >= 1 && count <= STOCK_BATCH_MAX);   /* every batch has a valid op */
    deadline_start(store, count);
    /* A stale map (a MOVED was followed) or calls left unanswered: connect
     * afresh. */
    if (store->link.state != RD_LINK_UP || store->link.count > 0)
        rd_link_open(store, store->error, sizeof store->error);
    if (!rd_linked(store)) {
        batches_fail(batches, STOCK_UNAVAILABLE, store->error);
    } else {
        run_all(store, ops, count);
        if (store->options.wait_replicas > 0 && rd_linked(store))
            wait_replicas(store, ops, count);
    }
    store->link.end_us = 0;
    batches_complete(base, batches);
}

/* The worker's tick: gives back the orders of crashed clients (whose lease
 * has passed) once per lease. */
static int64_t sweep_tick(stock_t *base)
{
    rd_store *store = (rd_store *)base;
    if (rd_linked(store)) {
        /* Each order it gives back counts as an op of a batch. */
        deadline_start(store, RD_SWEEP_MAX);
        rd_sweep(store);
        if (rd_cb_on(&store->options) && rd_linked(store))
            rd_cb_sweep(store);
        store->link.end_us = 0;
    }
    return (int64_t)store->options.timeout_ms * RD_ORDER_LEASE_FACTOR * 1000;
}

static const worker_tasks rd_tasks = {.run = run_batches, .tick = sweep_tick};

/* -------------------------------------------------------------- backend */

static bool rd_accepts(const char *uri)
{
    return strncmp(uri, "redis://", 8) == 0;
}

static void rd_submit(stock_t *base, stock_batch *batch)
{
    rd_store *store = (rd_store *)base;
    worker_submit(&store->worker, batch);
}

static void store_free(rd_store *store)
{
    rd_link_close(store);
    free(store->cb_run);
    free(store);
}

static stock_code rd_close(stock_t *base)
{
    rd_store *store = (rd_store *)base;
    worker_close(&store->worker);
    store_free(store);
    return STOCK_OK;
}

static stock_code rd_open(const char *uri, const stock_config *config, stock_t **out,
                          char *message, size_t size)
{
    *out = NULL;
    rd_store *store = calloc(1, sizeof *store);
    if (store == NULL)
        return STOCK_NOMEM;
    store->base.ops = &redis_backend;
    stock_code code = rd_options_parse(uri, config, &store->options, message, size);
    if (code == STOCK_OK && rd_cb_on(&store->options) && !rd_cb_alloc(store))
        code = STOCK_NOMEM;
    if (code == STOCK_OK) {
        deadline_start(store, 1);
        code = rd_link_open(store, message, size);
        store->link.end_us = 0;
    }
    /* A cluster needs every call in one slot; a single server takes any. */
    store->fused = store->options.fused && !store->options.cluster;
    if (code == STOCK_OK)
        code = worker_start(&store->worker, &store->base, &rd_tasks, STOCK_BATCH_MAX);
    if (code != STOCK_OK) {
        store_free(store);
        return code;
    }
    *out = &store->base;
    return STOCK_OK;
}

const stock_backend_ops redis_backend = {
    .name = "redis",
    .accepts = rd_accepts,
    .open = rd_open,
    .submit = rd_submit,
    .close = rd_close,
    .list = rd_list,
};
