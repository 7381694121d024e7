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
 * Orders run alone, between runs (see order_run).
 */
#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/redis.h"
#include "lib/result.h"

#define RD_FN RD_LIBRARY "_"        /* function names: the library name, "_" */
#define RD_ARGS_MAX 1100            /* arguments of one call (an order of 100 lines) */
#define RD_TEXT_MAX (160 * 1024)    /* bytes of one call's arguments */
#define RD_RUN_MAX 1024             /* ops that advance together */
#define RD_RESTARTS_MAX 8           /* times an op may find its id moved */
#define RD_GEN_MAX 24               /* bytes of a generation as text */
#define RD_ORDER_LEASE_FACTOR 2     /* an order attempt's lease: 2 x timeout_ms */
#define RD_SWEEP_MAX 100            /* pending orders one sweep looks at */
/* An order's lines as text, "line sku qty ...". */
#define RD_SPEC_MAX (STOCK_ORDER_LINES_MAX * (2 * STOCK_ID_MAX + 16))

/* shared: replaced by src/lib when issue 9's plumbing lands */
static int64_t now_us(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* shared: replaced by src/lib when issue 9's plumbing lands */
static bool ids_equal(stock_id a, stock_id b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* shared: replaced by src/lib when issue 9's plumbing lands */
/* Completes a chain of batches in order, counting them. */
static void complete_batches(stock_batch *batch, _Atomic uint64_t *batches,
                             _Atomic uint64_t *operations)
{
    while (batch != NULL) {
        stock_batch *next = batch->next;   /* done may free the batch */
        atomic_fetch_add_explicit(batches, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(operations, batch->count, memory_order_relaxed);
        batch->done(batch);
        batch = next;
    }
}

/* One call being built: arguments point into text. */
typedef struct rd_cmd {
    int argc;
    int keys;                       /* FCALL: keys pushed so far */
    const char *argv[RD_ARGS_MAX];
    size_t len[RD_ARGS_MAX];
    char text[RD_TEXT_MAX];
    size_t used;
} rd_cmd;

/* Where an op is: the next call it sends. */
typedef enum rd_step {
    RD_LOOKUP,         /* refund, line: read the line's directory entry */
    RD_LOOKUP_REFUND,  /* refund of an unknown line: read the refund's entry */
    RD_CLAIM,          /* bind the op's id to its SKU */
    RD_FENCE,          /* the id is bound elsewhere: fence it out there */
    RD_REBIND,         /* then move the binding to our SKU */
    RD_EFFECT,         /* the op's function */
    RD_DONE,
} rd_step;

typedef struct rd_job {
    stock_op *op;
    rd_step step;
    bool sent;                          /* a call of this round is in flight */
    int restarts;
    stock_id owner;                     /* the SKU whose slot holds the record */
    char owner_text[STOCK_ID_MAX + 1];  /* owner's bytes when read from Redis */
    char other[STOCK_ID_MAX + 1];       /* the owner the directory named */
    char gen[RD_GEN_MAX], other_gen[RD_GEN_MAX];
} rd_job;

typedef struct rd_store {
    struct stock base;
    rd_options options;
    redisContext *conn;       /* worker-owned; NULL after a loss */
    char error[STOCK_MESSAGE_MAX];

    pthread_t worker;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    stock_batch *head, *tail; /* queued batches, guarded by mutex */
    bool closing;

    rd_cmd cmd;
    rd_job jobs[RD_RUN_MAX];
    redisReply *replies[RD_RUN_MAX];
    uint64_t seen[2 * RD_RUN_MAX];   /* a run's id hashes (open addressing) */
    char spec[RD_SPEC_MAX];          /* the order being run, as text */
    char stale_spec[RD_SPEC_MAX];    /* a stale attempt's lines being undone */

    _Atomic uint64_t batches, operations;
} rd_store;

/* ------------------------------------------------------------- commands */

static void cmd_start(rd_cmd *cmd)
{
    cmd->argc = 0;
    cmd->keys = 0;
    cmd->used = 0;
}

static void cmd_argf(rd_cmd *cmd, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Appends a printf-formatted argument. */
static void cmd_argf(rd_cmd *cmd, const char *format, ...)
{
    assert(cmd->argc < RD_ARGS_MAX);
    va_list args;
    va_start(args, format);
    int len = vsnprintf(cmd->text + cmd->used, RD_TEXT_MAX - cmd->used, format, args);
    va_end(args);
    assert(len >= 0 && cmd->used + (size_t)len < RD_TEXT_MAX);
    cmd->argv[cmd->argc] = cmd->text + cmd->used;
    cmd->len[cmd->argc++] = (size_t)len;
    cmd->used += (size_t)len + 1;
}

static void cmd_id(rd_cmd *cmd, stock_id id)
{
    cmd_argf(cmd, "%.*s", (int)id.len, id.ptr);
}

/* Starts FCALL of function name; its keys follow, then its arguments. */
static void cmd_fcall(rd_cmd *cmd, const char *name)
{
    cmd_start(cmd);
    cmd_argf(cmd, "FCALL");
    cmd_argf(cmd, RD_FN "%s", name);
    cmd_argf(cmd, "0");   /* the key count, set by cmd_key */
}

/* A key: prefix, the hash tag {kind:id}, and a suffix ("" for none). */
static void cmd_key(rd_cmd *cmd, const char *prefix, const char *kind, stock_id id,
                    const char *suffix)
{
    cmd_argf(cmd, "%s{%s:%.*s}%s", prefix, kind, (int)id.len, id.ptr, suffix);
    cmd->keys++;
    int len = snprintf(cmd->text + cmd->used, RD_TEXT_MAX - cmd->used, "%d", cmd->keys);
    cmd->argv[2] = cmd->text + cmd->used;
    cmd->len[2] = (size_t)len;
    cmd->used += (size_t)len + 1;
}

/* ----------------------------------------------------------- connection */

static void link_lost(rd_store *store, const char *what)
{
    snprintf(store->error, sizeof store->error, "redis: %.50s (%.60s); the outcome is "
             "unknown; retry with the same id is safe", what,
             store->conn != NULL && store->conn->errstr[0] != '\0' ? store->conn->errstr
                                                                   : "no detail");
    if (store->conn != NULL)
        redisFree(store->conn);
    store->conn = NULL;
}

/* Queues the built call. False when the link is lost. */
static bool cmd_send(rd_store *store)
{
    if (store->conn == NULL)
        return false;
    if (redisAppendCommandArgv(store->conn, store->cmd.argc, store->cmd.argv,
                               store->cmd.len) != REDIS_OK) {
        link_lost(store, "cannot queue a call");
        return false;
    }
    return true;
}

/* The next reply, or NULL when the link is lost (or timed out). */
static redisReply *reply_next(rd_store *store)
{
    void *reply = NULL;
    if (store->conn == NULL)
        return NULL;
    if (redisGetReply(store->conn, &reply) != REDIS_OK || reply == NULL) {
        link_lost(store, "the connection was lost or timed out");
        return NULL;
    }
    return reply;
}

/* Sends the built call and waits for its reply. */
static redisReply *call(rd_store *store)
{
    return cmd_send(store) ? reply_next(store) : NULL;
}

/* ---------------------------------------------------------------- reply */

/* Element i of an array reply as text ("" if absent or not a string). */
static const char *element(const redisReply *reply, size_t i)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || i >= reply->elements)
        return "";
    const redisReply *e = reply->element[i];
    return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS ? e->str : "";
}

static int64_t element_i64(const redisReply *reply, size_t i)
{
    return strtoll(element(reply, i), NULL, 10);
}

static bool is(const redisReply *reply, size_t i, const char *word)
{
    return strcmp(element(reply, i), word) == 0;
}

/* A string reply's text ("" for nil and other types). */
static const char *text_of(const redisReply *reply)
{
    return reply != NULL && (reply->type == REDIS_REPLY_STRING ||
                             reply->type == REDIS_REPLY_STATUS) ? reply->str : "";
}

/* Fails op with the server's error reply (OOM named as such). */
static void fail_server(stock_op *op, const redisReply *reply)
{
    op->failed_line = -1;
    if (strncmp(reply->str, "OOM", 3) == 0)
        result_fail(op, STOCK_IO, "redis: the server is out of memory (maxmemory); nothing "
                    "was changed: %.120s", reply->str);
    else
        result_fail(op, STOCK_IO, "redis: %.160s", reply->str);
}

static void fail_overflow(stock_op *op, stock_id sku)
{
    result_fail(op, STOCK_INVALID, "sku=%.*s a stock total would pass 9223372036854775807",
                (int)sku.len, sku.ptr);
}

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

/* The suffix of the SKU hash that holds records of kind. */
static const char *record_suffix(const char *kind)
{
    if (strcmp(kind, "line") == 0)
        return ":flow";
    if (strcmp(kind, "refund") == 0)
        return ":refunds";
    if (strcmp(kind, "adjust") == 0)
        return ":adjust";
    return ":orders";
}

/* The word a conflict names for kind (result_conflict). */
static const char *conflict_word(const char *kind)
{
    return strcmp(kind, "adjust") == 0 ? "adjustment" : kind;
}

static void job_start(rd_job *job, stock_op *op)
{
    memset(job, 0, sizeof *job);
    job->op = op;
    job->owner = op->sku;
    const char *kind;
    stock_id id;
    if (op->type == STOCK_OP_REFUND || op->type == STOCK_OP_LINE)
        job->step = RD_LOOKUP;
    else
        job->step = op_claim_id(op, &kind, &id) ? RD_CLAIM : RD_EFFECT;
    snprintf(job->gen, sizeof job->gen, "0");
}

/* The id's record was moved while we looked: start the op again. */
static void job_restart(rd_job *job)
{
    stock_op *op = job->op;
    if (++job->restarts > RD_RESTARTS_MAX) {
        result_fail(op, STOCK_IO, "redis: the id kept moving between SKUs (concurrent "
                    "retries with other parameters); try again");
        job->step = RD_DONE;
        return;
    }
    rd_job fresh;
    job_start(&fresh, op);
    fresh.restarts = job->restarts;
    *job = fresh;
}

static void set_owner(rd_job *job, const char *sku)
{
    snprintf(job->owner_text, sizeof job->owner_text, "%s", sku);
    job->owner = stock_id_from_cstr(job->owner_text);
}

/* Builds the claim of kind:id for owner: the directory entry "1 owner"
 * written unless there is one, whose value comes back (SET NX GET). */
static void claim_build(rd_cmd *cmd, const char *prefix, const char *kind, stock_id id,
                        stock_id owner)
{
    cmd_start(cmd);
    cmd_argf(cmd, "SET");
    cmd_argf(cmd, "%s{%s:%.*s}", prefix, kind, (int)id.len, id.ptr);
    cmd_argf(cmd, "1 %.*s", (int)owner.len, owner.ptr);
    cmd_argf(cmd, "NX");
    cmd_argf(cmd, "GET");
}

/* Reads a directory entry "generation owner" from a reply; false for none. */
static bool entry_parse(const redisReply *reply, char gen[RD_GEN_MAX],
                        char owner[STOCK_ID_MAX + 1])
{
    if (reply->type != REDIS_REPLY_STRING)
        return false;
    size_t gen_len = strcspn(reply->str, " ");
    snprintf(gen, RD_GEN_MAX, "%.*s", (int)gen_len, reply->str);
    snprintf(owner, STOCK_ID_MAX + 1, "%s", reply->str + gen_len + (reply->str[gen_len] == ' '));
    return true;
}

/* Reads a claim's reply: true when the id is ours (new, or bound to owner
 * already) with gen set; else other and other_gen name its owner. */
static bool claim_parse(const redisReply *reply, stock_id owner, char gen[RD_GEN_MAX],
                        char other[STOCK_ID_MAX + 1], char other_gen[RD_GEN_MAX])
{
    if (!entry_parse(reply, other_gen, other)) {
        snprintf(gen, RD_GEN_MAX, "1");
        return true;
    }
    if (!ids_equal(stock_id_from_cstr(other), owner))
        return false;
    snprintf(gen, RD_GEN_MAX, "%s", other_gen);
    return true;
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
        cmd_fcall(cmd, "set");
        cmd_key(cmd, p, "sku", op->sku, "");
        cmd_argf(cmd, "%" PRId64, op->amount);
        cmd_argf(cmd, "%d", op->has_expect ? 1 : 0);
        cmd_argf(cmd, "%" PRId64, op->expect);
        return;
    case STOCK_OP_ADD:
        cmd_fcall(cmd, "add");
        cmd_key(cmd, p, "sku", op->sku, "");
        cmd_key(cmd, p, "sku", op->sku, ":adjust");
        cmd_argf(cmd, "%" PRId64, op->amount);
        cmd_argf(cmd, "%.*s", (int)op->id.len, op->id.len > 0 ? op->id.ptr : "");
        cmd_argf(cmd, "%s", job->gen);
        return;
    case STOCK_OP_DEDUCT:
        cmd_fcall(cmd, "deduct");
        cmd_key(cmd, p, "sku", op->sku, "");
        cmd_key(cmd, p, "sku", op->sku, ":flow");
        cmd_id(cmd, op->id);
        cmd_argf(cmd, "%" PRId64, op->amount);
        cmd_argf(cmd, "%" PRId64, time_us);
        cmd_argf(cmd, "%s", job->gen);
        return;
    case STOCK_OP_REFUND:
        cmd_fcall(cmd, "refund");
        cmd_key(cmd, p, "sku", job->owner, "");
        cmd_key(cmd, p, "sku", job->owner, ":flow");
        cmd_key(cmd, p, "sku", job->owner, ":refunds");
        cmd_id(cmd, op->id);
        cmd_id(cmd, op->line);
        cmd_argf(cmd, "%" PRId64, op->amount);
        cmd_argf(cmd, "%s", job->gen);
        return;
    case STOCK_OP_GET:
        cmd_fcall(cmd, "get");
        cmd_key(cmd, p, "sku", op->sku, "");
        return;
    case STOCK_OP_LINE:
        cmd_fcall(cmd, "line");
        cmd_key(cmd, p, "sku", job->owner, ":flow");
        cmd_id(cmd, op->line);
        return;
    case STOCK_OP_ORDER:
        break;
    }
    assert(!"orders run alone");
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
        cmd_start(cmd);
        cmd_argf(cmd, "GET");
        cmd_argf(cmd, "%s{%s:%.*s}", p, kind, (int)id.len, id.ptr);
        return;
    case RD_CLAIM:
        op_claim_id(job->op, &kind, &id);
        claim_build(cmd, p, kind, id, job->owner);
        return;
    case RD_REBIND:
        op_claim_id(job->op, &kind, &id);
        cmd_fcall(cmd, "rebind");
        cmd_key(cmd, p, kind, id, "");
        cmd_argf(cmd, "%s", job->other);
        cmd_argf(cmd, "%s", job->other_gen);
        cmd_id(cmd, job->owner);
        return;
    case RD_FENCE:
        op_claim_id(job->op, &kind, &id);
        cmd_fcall(cmd, "fence");
        cmd_key(cmd, p, "sku", stock_id_from_cstr(job->other), record_suffix(kind));
        cmd_id(cmd, id);
        cmd_argf(cmd, "%s", job->other_gen);
        return;
    case RD_EFFECT:
        effect_build(store, job, time_us);
        return;
    case RD_DONE:
        break;
    }
    assert(!"a finished op has no call");
}

/* Sets the op's outputs from its function's reply. */
static void effect_done(rd_job *job, const redisReply *reply)
{
    stock_op *op = job->op;
    const char *kind = "line";
    stock_id id;
    bool has_id = op_claim_id(op, &kind, &id);
    if (is(reply, 0, "OK") || is(reply, 0, "REPLAY")) {
        op->code = is(reply, 0, "OK") ? STOCK_OK : STOCK_REPLAY;
        op->available = element_i64(reply, 1);
        if (op->type == STOCK_OP_GET)
            op->info.sku_info = (stock_sku_info){element_i64(reply, 1), element_i64(reply, 2),
                                                 element_i64(reply, 3), element_i64(reply, 4)};
        if (op->type == STOCK_OP_LINE) {
            stock_line_info *info = &op->info.line_info;
            snprintf(info->sku, sizeof info->sku, "%.*s", (int)job->owner.len, job->owner.ptr);
            snprintf(info->order_id, sizeof info->order_id, "%s",
                     is(reply, 5, "-") ? "" : element(reply, 5));
            info->qty = element_i64(reply, 1);
            info->refunded = element_i64(reply, 2);
            info->time_us = element_i64(reply, 3);
            info->available_after = element_i64(reply, 4);
            op->available = 0;
        }
    } else if (is(reply, 0, "NOTFOUND") && (op->type == STOCK_OP_REFUND ||
                                            op->type == STOCK_OP_LINE)) {
        result_line_not_found(op, op->line);
    } else if (is(reply, 0, "NOTFOUND")) {
        result_sku_not_found(op, op->sku);
    } else if (is(reply, 0, "INSUFFICIENT")) {
        result_insufficient(op, op->sku, element_i64(reply, 1));
    } else if (is(reply, 0, "MISMATCH")) {
        result_mismatch(op, op->sku, element_i64(reply, 1));
    } else if (is(reply, 0, "EXCEEDS")) {
        result_exceeds(op, op->line, element_i64(reply, 1));
    } else if (is(reply, 0, "CONFLICT") && has_id) {
        result_conflict(op, conflict_word(kind), id);
    } else if (is(reply, 0, "OVERFLOW")) {
        fail_overflow(op, job->owner);
    } else {
        result_fail(op, STOCK_IO, "redis: unexpected reply '%.40s' (a function library of "
                    "another version?)", element(reply, 0));
    }
}

/* Advances the op by the reply to its call. */
static void job_advance(rd_job *job, const redisReply *reply)
{
    stock_op *op = job->op;
    const char *kind = "line";
    stock_id id;
    if (reply->type == REDIS_REPLY_ERROR) {
        fail_server(op, reply);
        job->step = RD_DONE;
        return;
    }
    char owner[STOCK_ID_MAX + 1];
    bool found;
    switch (job->step) {
    case RD_LOOKUP:
        found = entry_parse(reply, job->gen, owner);
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
        if (!entry_parse(reply, job->gen, owner)) {
            result_line_not_found(op, op->line);
            job->step = RD_DONE;
        } else {
            set_owner(job, owner);
            job->step = RD_EFFECT;
        }
        return;
    case RD_CLAIM:
        job->step = claim_parse(reply, job->owner, job->gen, job->other, job->other_gen)
                        ? RD_EFFECT : RD_FENCE;
        return;
    case RD_FENCE:
        op_claim_id(op, &kind, &id);
        if (strcmp(text_of(reply), "exists") == 0) {
            result_conflict(op, conflict_word(kind), id);
            job->step = RD_DONE;
        } else {
            job->step = RD_REBIND;
        }
        return;
    case RD_REBIND:
        if (is(reply, 0, "ok")) {
            snprintf(job->gen, sizeof job->gen, "%s", element(reply, 1));
            job->step = RD_EFFECT;
        } else {
            job_restart(job);
        }
        return;
    case RD_EFFECT:
        if (is(reply, 0, "MOVED")) {
            job_restart(job);
            return;
        }
        effect_done(job, reply);
        job->step = RD_DONE;
        return;
    case RD_DONE:
        break;
    }
    assert(!"a finished op got a reply");
}

/* ------------------------------------------------------------------ runs */

/* Sends one round: each op's next call, an effect only when every op
 * before it has sent its effect. Returns the calls sent. */
static int round_send(rd_store *store, int count, int64_t time_us)
{
    int sent = 0;
    bool in_order = true;   /* every op so far is done or sent its effect */
    for (int i = 0; i < count; i++) {
        rd_job *job = &store->jobs[i];
        job->sent = false;
        if (job->step == RD_DONE)
            continue;
        bool effect = job->step == RD_EFFECT;
        if (!effect || in_order) {
            job_build(store, job, time_us);
            if (!cmd_send(store))
                return -1;
            job->sent = true;
            sent++;
        }
        in_order = in_order && effect;
    }
    return sent;
}

/* Runs ops[0..count) (no orders, no repeated ids) to completion. */
static void run_ops(rd_store *store, stock_op **ops, int count)
{
    assert(count >= 1 && count <= RD_RUN_MAX);
    int64_t time_us = now_us(CLOCK_REALTIME);
    for (int i = 0; i < count; i++)
        job_start(&store->jobs[i], ops[i]);
    for (;;) {
        int sent = round_send(store, count, time_us);
        if (sent == 0)
            return;
        for (int i = 0; sent > 0 && i < count; i++) {
            rd_job *job = &store->jobs[i];
            if (!job->sent)
                continue;
            redisReply *reply = reply_next(store);
            if (reply == NULL)
                break;
            job_advance(job, reply);
            freeReplyObject(reply);
        }
        if (store->conn == NULL)
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

static void order_run(rd_store *store, stock_op *op);

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
        if (end == first && ops[first]->type == STOCK_OP_ORDER) {
            order_run(store, ops[first]);
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

/* ---------------------------------------------------------------- orders */

/* What an order learns about each line. */
typedef struct rd_order_line {
    char gen[RD_GEN_MAX];   /* the line id's directory generation */
    bool elsewhere;         /* the id is a line of another SKU */
    unsigned slot;          /* the cluster slot of the line's SKU */
    int key;                /* in a call: index of its SKU's stock key */
} rd_order_line;

/* The cluster slot of a SKU's keys: CRC16 (XMODEM) of its hash tag, as
 * Redis Cluster computes it (the tag ends at the first '}'). */
static unsigned sku_slot(stock_id sku)
{
    static const char head[] = "sku:";
    uint16_t crc = 0;
    for (size_t i = 0; i < sizeof head - 1 + sku.len; i++) {
        char c = i < sizeof head - 1 ? head[i] : sku.ptr[i - (sizeof head - 1)];
        if (c == '}')
            break;
        crc ^= (uint16_t)((unsigned char)c << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc & 16383;
}

/* Fails op after a lost link (NULL reply) or with the server's error. */
static void order_fail_reply(rd_store *store, stock_op *op, const redisReply *reply)
{
    op->failed_line = -1;
    if (reply == NULL)
        result_fail(op, STOCK_UNAVAILABLE, "%s", store->error);
    else
        fail_server(op, reply);
}

/* Fences kind:id out of owner `other` (generation gen). Returns 1 when a
 * real record holds it there, 0 when fenced, -1 on failure (op failed). */
static int fence_sync(rd_store *store, stock_op *op, const char *kind, stock_id id,
                      const char *other, const char *gen)
{
    rd_cmd *cmd = &store->cmd;
    if (strcmp(other, "*") == 0) {
        cmd_fcall(cmd, "order_fence");
        cmd_key(cmd, store->options.prefix, kind, id, ":x");
    } else {
        cmd_fcall(cmd, "fence");
        cmd_key(cmd, store->options.prefix, "sku", stock_id_from_cstr(other),
                record_suffix(kind));
        cmd_id(cmd, id);
        cmd_argf(cmd, "%s", gen);
    }
    redisReply *reply = call(store);
    int result = reply == NULL || reply->type == REDIS_REPLY_ERROR ? -1
                 : strcmp(text_of(reply), "exists") == 0        ? 1 : 0;
    if (result < 0)
        order_fail_reply(store, op, reply);
    freeReplyObject(reply);
    return result;
}

/* Moves kind:id from (other, gen) to owner. Returns 1 with gen_out set, 0
 * when the entry changed meanwhile, -1 on failure (op failed). */
static int rebind_sync(rd_store *store, stock_op *op, const char *kind, stock_id id,
                       const char *other, const char *gen, const char *owner, char *gen_out)
{
    rd_cmd *cmd = &store->cmd;
    cmd_fcall(cmd, "rebind");
    cmd_key(cmd, store->options.prefix, kind, id, "");
    cmd_argf(cmd, "%s", other);
    cmd_argf(cmd, "%s", gen);
    cmd_argf(cmd, "%s", owner);
    redisReply *reply = call(store);
    int result = reply == NULL || reply->type == REDIS_REPLY_ERROR ? -1
                 : is(reply, 0, "ok")                           ? 1 : 0;
    if (result < 0)
        order_fail_reply(store, op, reply);
    else if (result == 1)
        snprintf(gen_out, RD_GEN_MAX, "%s", element(reply, 1));
    freeReplyObject(reply);
    return result;
}

/* Settles a claim that found the id bound to another owner (other, at
 * generation other_gen): fence it out there and rebind it to owner (gen
 * receives the new generation), or learn that a record holds it there
 * (*elsewhere). Returns false when op failed. */
static bool claim_settle(rd_store *store, stock_op *op, const char *kind, stock_id id,
                         stock_id owner, const char *found, const char *found_gen, char *gen,
                         bool *elsewhere)
{
    char owner_text[STOCK_ID_MAX + 1];
    snprintf(owner_text, sizeof owner_text, "%.*s", (int)owner.len, owner.ptr);
    char other[STOCK_ID_MAX + 1], other_gen[RD_GEN_MAX];
    snprintf(other, sizeof other, "%s", found);
    snprintf(other_gen, sizeof other_gen, "%s", found_gen);
    for (int attempt = 0; attempt < RD_RESTARTS_MAX; attempt++) {
        int fenced = fence_sync(store, op, kind, id, other, other_gen);
        if (fenced != 0) {
            *elsewhere = fenced == 1;
            return fenced == 1;
        }
        int moved = rebind_sync(store, op, kind, id, other, other_gen, owner_text, gen);
        if (moved != 0)
            return moved == 1;
        claim_build(&store->cmd, store->options.prefix, kind, id, owner);
        redisReply *again = call(store);
        if (again == NULL || again->type == REDIS_REPLY_ERROR) {
            order_fail_reply(store, op, again);
            freeReplyObject(again);
            return false;
        }
        bool settled = claim_parse(again, owner, gen, other, other_gen);
        freeReplyObject(again);
        if (settled)
            return true;
    }
    result_fail(op, STOCK_IO, "redis: an id kept moving between SKUs; try again");
    return false;
}

/* Claims every line id of the order (pipelined) and settles those bound
 * elsewhere. False when op failed. */
static bool order_claim_lines(rd_store *store, stock_op *op, rd_order_line *info)
{
    for (uint32_t i = 0; i < op->line_count; i++) {
        claim_build(&store->cmd, store->options.prefix, "line", op->lines[i].line_id,
                    op->lines[i].sku);
        if (!cmd_send(store)) {
            order_fail_reply(store, op, NULL);
            return false;
        }
    }
    redisReply *replies[STOCK_ORDER_LINES_MAX] = {NULL};
    bool ok = true;
    for (uint32_t i = 0; i < op->line_count && ok; i++) {
        replies[i] = reply_next(store);
        ok = replies[i] != NULL && replies[i]->type != REDIS_REPLY_ERROR;
        if (!ok)
            order_fail_reply(store, op, replies[i]);
    }
    for (uint32_t i = 0; i < op->line_count && ok; i++) {
        char other[STOCK_ID_MAX + 1], other_gen[RD_GEN_MAX];
        info[i].elsewhere = false;
        if (!claim_parse(replies[i], op->lines[i].sku, info[i].gen, other, other_gen))
            ok = claim_settle(store, op, "line", op->lines[i].line_id, op->lines[i].sku,
                              other, other_gen, info[i].gen, &info[i].elsewhere);
    }
    for (uint32_t i = 0; i < op->line_count; i++)
        freeReplyObject(replies[i]);
    return ok;
}

/* The order's lines as "line sku qty ..." (what a replay compares). */
static void order_spec(const stock_op *op, char *spec, size_t size)
{
    size_t used = 0;
    for (uint32_t i = 0; i < op->line_count; i++) {
        const stock_order_line *l = &op->lines[i];
        int len = snprintf(spec + used, size - used, "%s%.*s %.*s %" PRId64, i > 0 ? " " : "",
                           (int)l->line_id.len, l->line_id.ptr, (int)l->sku.len, l->sku.ptr,
                           l->qty);
        assert(len > 0 && used + (size_t)len < size);
        used += (size_t)len;
    }
}


/* Pushes, for the lines in slot, each distinct SKU's stock and flow keys
 * (info[i].key = its stock key's index, 1-based). */
static void push_sku_keys(rd_store *store, const stock_order_line *lines, uint32_t count,
                          rd_order_line *info, unsigned slot)
{
    for (uint32_t i = 0; i < count; i++) {
        if (info[i].slot != slot)
            continue;
        info[i].key = 0;
        for (uint32_t j = 0; j < i && info[i].key == 0; j++)
            if (info[j].slot == slot && ids_equal(lines[j].sku, lines[i].sku))
                info[i].key = info[j].key;
        if (info[i].key == 0) {
            info[i].key = store->cmd.keys + 1;
            cmd_key(&store->cmd, store->options.prefix, "sku", lines[i].sku, "");
            cmd_key(&store->cmd, store->options.prefix, "sku", lines[i].sku, ":flow");
        }
    }
}

static void push_line_args(rd_cmd *cmd, const stock_order_line *l, const rd_order_line *info)
{
    cmd_id(cmd, l->line_id);
    cmd_argf(cmd, "%d", info->key);
    cmd_argf(cmd, "%" PRId64, l->qty);
    cmd_argf(cmd, "%s", info->gen);
    cmd_argf(cmd, "%d", info->elsewhere ? 1 : 0);
}

/* Maps an order function's failure (code, 1-based line index, value). */
static void order_failure(stock_op *op, const redisReply *reply, uint32_t line)
{
    const stock_order_line *l = &op->lines[line];
    op->failed_line = (int32_t)line;
    if (is(reply, 0, "CONFLICT"))
        result_conflict(op, "line", l->line_id);
    else if (is(reply, 0, "NOTFOUND"))
        result_sku_not_found(op, l->sku);
    else if (is(reply, 0, "INSUFFICIENT"))
        result_insufficient(op, l->sku, element_i64(reply, 2));
    else if (is(reply, 0, "OVERFLOW"))
        fail_overflow(op, l->sku);
    else
        result_fail(op, STOCK_IO, "redis: unexpected reply '%.40s'", element(reply, 0));
}

/* Claims the order id for owner ("*" for an order over several slots):
 * returns 1 with gen set, 0 when a record holds it elsewhere (CONFLICT set),
 * -1 on failure. */
static int order_claim(rd_store *store, stock_op *op, const char *owner, char *gen)
{
    stock_id owner_id = stock_id_from_cstr(owner);
    claim_build(&store->cmd, store->options.prefix, "order", op->id, owner_id);
    redisReply *reply = call(store);
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        order_fail_reply(store, op, reply);
        freeReplyObject(reply);
        return -1;
    }
    bool elsewhere = false;
    char other[STOCK_ID_MAX + 1], other_gen[RD_GEN_MAX];
    bool ok = claim_parse(reply, owner_id, gen, other, other_gen) ||
              claim_settle(store, op, "order", op->id, owner_id, other, other_gen, gen,
                           &elsewhere);
    freeReplyObject(reply);
    if (elsewhere)
        result_conflict(op, "order", op->id);
    return !ok ? -1 : elsewhere ? 0 : 1;
}

/* Sets the lines' available from elements first.. of reply. */
static void order_results(stock_op *op, const redisReply *reply, size_t first)
{
    for (uint32_t i = 0; i < op->line_count; i++)
        op->lines[i].available = element_i64(reply, first + i);
}

/* An order whose SKUs share one slot: one call does it all. Returns true
 * when an id moved meanwhile and the order must start again. */
static bool order_one_slot(rd_store *store, stock_op *op, rd_order_line *info, const char *spec)
{
    char owner[STOCK_ID_MAX + 1], gen[RD_GEN_MAX];
    snprintf(owner, sizeof owner, "%.*s", (int)op->lines[0].sku.len, op->lines[0].sku.ptr);
    if (order_claim(store, op, owner, gen) != 1 || !order_claim_lines(store, op, info))
        return false;
    bool again = false;
    rd_cmd *cmd = &store->cmd;
    cmd_fcall(cmd, "order");
    push_sku_keys(store, op->lines, op->line_count, info, info[0].slot);
    cmd_key(cmd, store->options.prefix, "sku", op->lines[0].sku, ":orders");
    cmd_id(cmd, op->id);
    cmd_argf(cmd, "%s", gen);
    cmd_argf(cmd, "%s", spec);
    cmd_argf(cmd, "%" PRId64, now_us(CLOCK_REALTIME));
    cmd_argf(cmd, "%u", op->line_count);
    for (uint32_t i = 0; i < op->line_count; i++)
        push_line_args(cmd, &op->lines[i], &info[i]);
    redisReply *reply = call(store);
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        order_fail_reply(store, op, reply);
    } else if (is(reply, 0, "OK") || is(reply, 0, "REPLAY")) {
        op->code = is(reply, 0, "OK") ? STOCK_OK : STOCK_REPLAY;
        order_results(op, reply, 2);
    } else if (is(reply, 0, "CONFLICT") && element_i64(reply, 1) == 0) {
        result_conflict(op, "order", op->id);
    } else if (is(reply, 0, "MOVED")) {
        again = true;
    } else {
        order_failure(op, reply, (uint32_t)element_i64(reply, 1) - 1);
    }
    freeReplyObject(reply);
    return again;
}

/* ------------------------------------------------ orders over many slots */

/* The pending index lists the orders over several slots that may be in
 * flight, scored by when their lease ends. how: "ZADD" adds order with score
 * deadline; "DROP" removes it if its score is still deadline (a later attempt
 * of the same order keeps its entry). False when the link failed. */
static bool pending_edit(rd_store *store, const char *how, stock_id order, const char *deadline)
{
    rd_cmd *cmd = &store->cmd;
    if (strcmp(how, "ZADD") == 0) {
        cmd_start(cmd);
        cmd_argf(cmd, "ZADD");
        cmd_argf(cmd, "%s{stock:pending}", store->options.prefix);
        cmd_argf(cmd, "%s", deadline);
        cmd_id(cmd, order);
    } else {
        cmd_fcall(cmd, "pending_drop");
        cmd_key(cmd, store->options.prefix, "stock", stock_id_from_cstr("pending"), "");
        cmd_id(cmd, order);
        cmd_argf(cmd, "%s", deadline);
    }
    redisReply *reply = call(store);
    bool ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;
    freeReplyObject(reply);
    return ok;
}

/* Gives back what attempt took of the order's lines, slot by slot
 * (pipelined; idempotent). False when the link failed. */
static bool order_untake(rd_store *store, stock_id order, const char *attempt,
                         const stock_order_line *lines, uint32_t count, rd_order_line *info)
{
    int sent = 0;
    for (uint32_t i = 0; i < count; i++) {
        bool first = true;
        for (uint32_t j = 0; j < i && first; j++)
            first = info[j].slot != info[i].slot;
        if (!first)
            continue;
        rd_cmd *cmd = &store->cmd;
        cmd_fcall(cmd, "order_untake");
        push_sku_keys(store, lines, count, info, info[i].slot);
        cmd_key(cmd, store->options.prefix, "sku", lines[i].sku, ":ofence");
        cmd_id(cmd, order);
        cmd_argf(cmd, "%s", attempt);
        int in_slot = 0;
        for (uint32_t k = i; k < count; k++)
            in_slot += info[k].slot == info[i].slot;
        cmd_argf(cmd, "%d", in_slot);
        for (uint32_t k = i; k < count; k++) {
            if (info[k].slot != info[i].slot)
                continue;
            cmd_id(cmd, lines[k].line_id);
            cmd_argf(cmd, "%d", info[k].key);
        }
        if (!cmd_send(store))
            return false;
        sent++;
    }
    bool ok = true;
    for (int k = 0; k < sent; k++) {
        redisReply *reply = reply_next(store);
        ok = ok && reply != NULL && reply->type == REDIS_REPLY_INTEGER;
        freeReplyObject(reply);
        if (store->conn == NULL)
            return false;
    }
    return ok;
}

/* Ends attempt: "done" with the results, or "undone" (forgotten). True
 * when the attempt was still ours. */
static bool order_end(rd_store *store, stock_id order, const char *attempt, const char *how,
                      const char *results)
{
    cmd_fcall(&store->cmd, "order_end");
    cmd_key(&store->cmd, store->options.prefix, "order", order, ":x");
    cmd_argf(&store->cmd, "%s", attempt);
    cmd_argf(&store->cmd, "%s", how);
    cmd_argf(&store->cmd, "%s", results);
    redisReply *reply = call(store);
    bool ours = strcmp(text_of(reply), "ok") == 0;
    freeReplyObject(reply);
    return ours;
}

/* Undoes a stale attempt whose client vanished: its lines from spec. */
static bool order_undo_stale(rd_store *store, stock_id order, const char *attempt,
                             const char *spec)
{
    char *copy = store->stale_spec;
    stock_order_line lines[STOCK_ORDER_LINES_MAX];
    rd_order_line info[STOCK_ORDER_LINES_MAX];
    snprintf(copy, RD_SPEC_MAX, "%s", spec);
    uint32_t count = 0;
    char *save = NULL;
    for (char *word = strtok_r(copy, " ", &save); word != NULL && count < STOCK_ORDER_LINES_MAX;
         word = strtok_r(NULL, " ", &save)) {
        char *sku = strtok_r(NULL, " ", &save);
        char *qty = strtok_r(NULL, " ", &save);
        if (sku == NULL || qty == NULL)
            break;
        lines[count] = (stock_order_line){stock_id_from_cstr(word), stock_id_from_cstr(sku),
                                          strtoll(qty, NULL, 10), 0};
        info[count].slot = sku_slot(lines[count].sku);
        count++;
    }
    return count > 0 && order_untake(store, order, attempt, lines, count, info) &&
           order_end(store, order, attempt, "undone", "");
}

typedef enum rd_begin {
    RD_BEGUN,     /* the attempt is recorded: take the lines */
    RD_SETTLED,   /* op has its result (replay, conflict, busy) */
    RD_FAILED,    /* op failed */
    RD_AGAIN,     /* something stood in the way and was cleared: begin again */
} rd_begin;

/* Records the attempt (order_begin), settling what stands in the way: an
 * id bound to a SKU, a stale attempt. RD_SETTLED: op has its result. */
static rd_begin order_begin(rd_store *store, stock_op *op, const char *spec, char *attempt)
{
    int64_t lease_ms = (int64_t)store->options.timeout_ms * RD_ORDER_LEASE_FACTOR;
    for (int round = 0; round < RD_RESTARTS_MAX; round++) {
        cmd_fcall(&store->cmd, "order_begin");
        cmd_key(&store->cmd, store->options.prefix, "order", op->id, "");
        cmd_key(&store->cmd, store->options.prefix, "order", op->id, ":x");
        cmd_argf(&store->cmd, "%s", spec);
        cmd_argf(&store->cmd, "%" PRId64, now_us(CLOCK_REALTIME) / 1000);
        cmd_argf(&store->cmd, "%" PRId64, lease_ms);
        redisReply *reply = call(store);
        if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
            order_fail_reply(store, op, reply);
            freeReplyObject(reply);
            return RD_FAILED;
        }
        rd_begin result = RD_SETTLED;
        char gen[RD_GEN_MAX];
        bool elsewhere = false;
        if (is(reply, 0, "BEGUN")) {
            snprintf(attempt, RD_GEN_MAX, "%s", element(reply, 1));
            result = RD_BEGUN;
        } else if (is(reply, 0, "REPLAY")) {
            op->code = STOCK_REPLAY;
            char *next = (char *)element(reply, 1);
            for (uint32_t i = 0; i < op->line_count; i++)
                op->lines[i].available = strtoll(next, &next, 10);
        } else if (is(reply, 0, "CONFLICT")) {
            result_conflict(op, "order", op->id);
        } else if (is(reply, 0, "BUSY")) {
            result_fail(op, STOCK_UNAVAILABLE, "redis: order=%.*s is being placed by another "
                        "client; retry with the same id", (int)op->id.len, op->id.ptr);
        } else if (is(reply, 0, "STALE")) {
            result = order_undo_stale(store, op->id, element(reply, 1), element(reply, 2))
                         ? RD_AGAIN : RD_FAILED;
        } else if (!claim_settle(store, op, "order", op->id, stock_id_from_cstr("*"),
                                 element(reply, 2), element(reply, 1), gen, &elsewhere)) {
            result = RD_FAILED;
        } else if (elsewhere) {
            result_conflict(op, "order", op->id);
        } else {
            result = RD_AGAIN;   /* the id moved here */
        }
        freeReplyObject(reply);
        if (result == RD_FAILED && op->code == STOCK_OK)
            result_fail(op, STOCK_UNAVAILABLE, "%s", store->error);
        if (result != RD_AGAIN)
            return result;
    }
    result_fail(op, STOCK_IO, "redis: order=%.*s kept changing hands; try again",
                (int)op->id.len, op->id.ptr);
    return RD_FAILED;
}

/* Checks the lines in order (line id, then SKU) before anything is taken.
 * Returns true when they pass; else op has its failure, or *again is set
 * when an id moved meanwhile. */
static bool order_probe(rd_store *store, stock_op *op, rd_order_line *info, bool *again)
{
    for (uint32_t i = 0; i < op->line_count; i++) {
        cmd_fcall(&store->cmd, "probe");
        cmd_key(&store->cmd, store->options.prefix, "sku", op->lines[i].sku, "");
        cmd_key(&store->cmd, store->options.prefix, "sku", op->lines[i].sku, ":flow");
        cmd_id(&store->cmd, op->lines[i].line_id);
        cmd_argf(&store->cmd, "%s", info[i].gen);
        if (!cmd_send(store)) {
            order_fail_reply(store, op, NULL);
            return false;
        }
    }
    bool pass = true;
    for (uint32_t i = 0; i < op->line_count; i++) {
        redisReply *reply = reply_next(store);
        if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
            if (pass)
                order_fail_reply(store, op, reply);
            pass = false;
        } else if (pass && (info[i].elsewhere || is(reply, 1, "taken"))) {
            op->failed_line = (int32_t)i;
            result_conflict(op, "line", op->lines[i].line_id);
            pass = false;
        } else if (pass && is(reply, 1, "moved")) {
            *again = true;
            pass = false;
        } else if (pass && is(reply, 0, "0")) {
            op->failed_line = (int32_t)i;
            result_sku_not_found(op, op->lines[i].sku);
            pass = false;
        }
        freeReplyObject(reply);
        if (store->conn == NULL)
            return false;
    }
    return pass;
}

/* Takes the lines, one call per slot (pipelined). Returns true when every
 * slot took its lines; else op has the failure of the earliest line. */
static bool order_take(rd_store *store, stock_op *op, rd_order_line *info, const char *attempt,
                       bool *again)
{
    uint32_t firsts[STOCK_ORDER_LINES_MAX];
    uint32_t slots = 0;
    int64_t time_us = now_us(CLOCK_REALTIME);
    for (uint32_t i = 0; i < op->line_count; i++) {
        bool first = true;
        for (uint32_t j = 0; j < i && first; j++)
            first = info[j].slot != info[i].slot;
        if (!first)
            continue;
        firsts[slots++] = i;
        rd_cmd *cmd = &store->cmd;
        cmd_fcall(cmd, "order_take");
        push_sku_keys(store, op->lines, op->line_count, info, info[i].slot);
        cmd_key(cmd, store->options.prefix, "sku", op->lines[i].sku, ":ofence");
        cmd_id(cmd, op->id);
        cmd_argf(cmd, "%s", attempt);
        cmd_argf(cmd, "%" PRId64, time_us);
        uint32_t in_slot = 0;
        for (uint32_t k = i; k < op->line_count; k++)
            in_slot += info[k].slot == info[i].slot;
        cmd_argf(cmd, "%u", in_slot);
        for (uint32_t k = i; k < op->line_count; k++)
            if (info[k].slot == info[i].slot)
                push_line_args(cmd, &op->lines[k], &info[k]);
        if (!cmd_send(store)) {
            order_fail_reply(store, op, NULL);
            return false;
        }
    }
    int64_t failed = op->line_count;   /* the earliest failing line */
    for (uint32_t s = 0; s < slots; s++) {
        redisReply *reply = reply_next(store);
        if (reply == NULL)
            return order_fail_reply(store, op, NULL), false;
        uint32_t k = firsts[s], seen = 0;   /* the lines of this slot, in order */
        for (; k < op->line_count; k++) {
            if (info[k].slot != info[firsts[s]].slot)
                continue;
            if (is(reply, 0, "OK"))
                op->lines[k].available = element_i64(reply, 2 + seen);
            else if (reply->type != REDIS_REPLY_ERROR && (int64_t)seen + 1 == element_i64(reply, 1) &&
                     (int64_t)k < failed) {
                failed = k;
                *again = *again || is(reply, 0, "MOVED");
                order_failure(op, reply, k);
            }
            seen++;
        }
        if (reply->type == REDIS_REPLY_ERROR || is(reply, 0, "FENCED")) {
            failed = 0;
            if (reply->type == REDIS_REPLY_ERROR)
                fail_server(op, reply);
            else
                result_fail(op, STOCK_UNAVAILABLE, "redis: order=%.*s was taken over by "
                            "another client; retry with the same id", (int)op->id.len,
                            op->id.ptr);
        }
        freeReplyObject(reply);
    }
    return failed == op->line_count;
}

/* The lines of a begun attempt: claimed, checked, taken; on a refusal given
 * back. Returns true when an id moved and the order must start again;
 * *ended says whether the attempt's record was ended (done or undone). */
static bool order_attempt(rd_store *store, stock_op *op, rd_order_line *info,
                          const char *attempt, bool *ended)
{
    bool again = false;
    if (!order_claim_lines(store, op, info) || !order_probe(store, op, info, &again)) {
        *ended = store->conn != NULL && order_end(store, op->id, attempt, "undone", "");
        return again;
    }
    if (!order_take(store, op, info, attempt, &again)) {
        stock_code code = op->code;
        *ended = store->conn != NULL &&
                 order_untake(store, op->id, attempt, op->lines, op->line_count, info) &&
                 order_end(store, op->id, attempt, "undone", "");
        if (again)
            op->code = STOCK_OK, op->failed_line = -1, op->message[0] = '\0';
        else if (store->conn == NULL && code == STOCK_OK)
            result_fail(op, STOCK_UNAVAILABLE, "%s", store->error);
        return again;
    }
    char results[STOCK_ORDER_LINES_MAX * 21];
    size_t used = 0;
    for (uint32_t i = 0; i < op->line_count; i++)
        used += (size_t)snprintf(results + used, sizeof results - used, "%s%" PRId64,
                                 i > 0 ? " " : "", op->lines[i].available);
    *ended = order_end(store, op->id, attempt, "done", results);
    if (!*ended)
        result_fail(op, STOCK_UNAVAILABLE, "redis: order=%.*s: the connection was lost or "
                    "the attempt was taken over while it ended; the outcome is unknown; "
                    "retry with the same id is safe", (int)op->id.len, op->id.ptr);
    return false;
}

/* An order over several slots: listed in the pending index (so that a sweep
 * finds it if this client dies), a durable record (order_begin), then the
 * lines (order_attempt); the index entry goes once the record has ended. */
static bool order_many_slots(rd_store *store, stock_op *op, rd_order_line *info,
                             const char *spec)
{
    char deadline[RD_GEN_MAX], attempt[RD_GEN_MAX];
    snprintf(deadline, sizeof deadline, "%" PRId64, now_us(CLOCK_REALTIME) / 1000 +
             (int64_t)store->options.timeout_ms * RD_ORDER_LEASE_FACTOR);
    if (!pending_edit(store, "ZADD", op->id, deadline)) {
        result_fail(op, STOCK_UNAVAILABLE, "%s", store->error);
        return false;
    }
    bool again = false, ended = true;
    if (order_begin(store, op, spec, attempt) == RD_BEGUN)
        again = order_attempt(store, op, info, attempt, &ended);
    if (ended && store->conn != NULL)
        pending_edit(store, "DROP", op->id, deadline);
    return again;
}

/* Runs an order alone: one call when its SKUs share a slot, else the
 * protocol of order_many_slots. */
static void order_run(rd_store *store, stock_op *op)
{
    char *spec = store->spec;
    rd_order_line info[STOCK_ORDER_LINES_MAX];
    order_spec(op, spec, RD_SPEC_MAX);
    bool one_slot = true;
    for (uint32_t i = 0; i < op->line_count; i++) {
        info[i].slot = sku_slot(op->lines[i].sku);
        one_slot = one_slot && info[i].slot == info[0].slot;
    }
    for (int round = 0; round <= RD_RESTARTS_MAX; round++) {
        if (store->conn == NULL) {
            result_fail(op, STOCK_UNAVAILABLE, "%s", store->error);
            return;
        }
        bool again = one_slot ? order_one_slot(store, op, info, spec)
                              : order_many_slots(store, op, info, spec);
        if (!again)
            return;
        op->code = STOCK_OK;
        op->failed_line = -1;
        op->message[0] = '\0';
    }
    result_fail(op, STOCK_IO, "redis: order=%.*s: its ids kept moving; try again",
                (int)op->id.len, op->id.ptr);
}

/* ----------------------------------------------------------------- sweep */

/* Gives back the orders over several slots whose client vanished mid-way:
 * those of the pending index whose lease has passed and whose record still
 * says taking (up to RD_SWEEP_MAX at a time). Entries whose record ended
 * are dropped. Runs at open and then once per lease while the store is
 * open, so an interrupted order is undone within two leases. */
static void sweep(rd_store *store)
{
    rd_cmd *cmd = &store->cmd;
    int64_t now_ms = now_us(CLOCK_REALTIME) / 1000;
    cmd_start(cmd);
    cmd_argf(cmd, "ZRANGEBYSCORE");
    cmd_argf(cmd, "%s{stock:pending}", store->options.prefix);
    cmd_argf(cmd, "-inf");
    cmd_argf(cmd, "%" PRId64, now_ms);
    cmd_argf(cmd, "WITHSCORES");
    cmd_argf(cmd, "LIMIT");
    cmd_argf(cmd, "0");
    cmd_argf(cmd, "%d", RD_SWEEP_MAX);
    redisReply *list = call(store);
    for (size_t i = 0; list != NULL && list->type == REDIS_REPLY_ARRAY &&
                       i + 1 < list->elements && store->conn != NULL; i += 2) {
        stock_id order = stock_id_from_cstr(element(list, i));
        cmd_fcall(cmd, "order_inspect");
        cmd_key(cmd, store->options.prefix, "order", order, ":x");
        redisReply *record = call(store);
        if (record == NULL)
            break;
        bool taking = is(record, 0, "taking");
        bool stale = taking && element_i64(record, 3) <= now_ms;
        bool ended = !taking ||
                     (stale && order_undo_stale(store, order, element(record, 1),
                                                element(record, 2)));
        freeReplyObject(record);
        if (ended && store->conn != NULL)
            pending_edit(store, "DROP", order, element(list, i + 1));
    }
    freeReplyObject(list);
}

/* ---------------------------------------------------------------- worker */

/* After a batch with wait=N: WAIT N timeout. Fewer replicas: every write
 * that succeeded (a replay too: its original may not have reached them)
 * says it is applied on the master but not replicated yet. */
static void wait_replicas(rd_store *store, stock_op **ops, size_t count)
{
    rd_cmd *cmd = &store->cmd;
    cmd_start(cmd);
    cmd_argf(cmd, "WAIT");
    cmd_argf(cmd, "%d", store->options.wait_replicas);
    cmd_argf(cmd, "%d", store->options.timeout_ms);
    redisReply *reply = call(store);
    long long acked = reply != NULL && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    freeReplyObject(reply);
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
                    store->options.timeout_ms);
    }
}

/* Takes every queued batch off the queue (mutex held), waiting at most
 * until the next sweep is due; NULL when there is none (closing, or time
 * to sweep). */
static stock_batch *take_batches(rd_store *store, int64_t sweep_us)
{
    struct timespec until = {sweep_us / 1000000, (sweep_us % 1000000) * 1000};
    while (store->head == NULL && !store->closing &&
           pthread_cond_timedwait(&store->wake, &store->mutex, &until) == 0)
        continue;
    stock_batch *first = store->head;
    store->head = store->tail = NULL;
    return first;
}

/* Runs one batch's ops, reconnecting first after a loss. */
static void run_batch(rd_store *store, stock_batch *batch, stock_op **ops)
{
    size_t count = 0;
    for (size_t i = 0; i < batch->count; i++)
        if (batch->ops[i].code == STOCK_OK)   /* not already INVALID */
            ops[count++] = &batch->ops[i];
    if (count == 0)
        return;
    if (store->conn == NULL &&
        rd_connect(&store->options, &store->conn, store->error, sizeof store->error) != STOCK_OK)
        store->conn = NULL;
    if (store->conn == NULL) {
        for (size_t i = 0; i < count; i++)
            result_fail(ops[i], STOCK_UNAVAILABLE, "%s", store->error);
        return;
    }
    run_all(store, ops, count);
    if (store->options.wait_replicas > 0 && store->conn != NULL)
        wait_replicas(store, ops, count);
}

static void *worker_main(void *arg)
{
    rd_store *store = arg;
    stock_op **ops = malloc(STOCK_BATCH_MAX * sizeof *ops);
    int64_t lease_us = (int64_t)store->options.timeout_ms * RD_ORDER_LEASE_FACTOR * 1000;
    int64_t sweep_us = 0;   /* the first sweep runs at once */
    for (;;) {
        if (now_us(CLOCK_MONOTONIC) >= sweep_us) {
            if (store->conn != NULL)
                sweep(store);
            sweep_us = now_us(CLOCK_MONOTONIC) + lease_us;
        }
        pthread_mutex_lock(&store->mutex);
        stock_batch *batches = take_batches(store, sweep_us);
        bool closing = store->closing;
        pthread_mutex_unlock(&store->mutex);
        if (batches == NULL && closing)
            break;
        for (stock_batch *batch = batches; batch != NULL; batch = batch->next) {
            if (ops != NULL) {
                run_batch(store, batch, ops);
                continue;
            }
            for (size_t i = 0; i < batch->count; i++)
                if (batch->ops[i].code == STOCK_OK)
                    result_fail(&batch->ops[i], STOCK_NOMEM, "redis: out of memory");
        }
        complete_batches(batches, &store->batches, &store->operations);
    }
    free(ops);
    return NULL;
}

/* -------------------------------------------------------------- backend */

static bool rd_accepts(const char *uri)
{
    return strncmp(uri, "redis://", 8) == 0;
}

static void rd_submit(stock_t *base, stock_batch *batch)
{
    rd_store *store = (rd_store *)base;
    assert(batch->count >= 1 && batch->count <= STOCK_BATCH_MAX);
    batch->next = NULL;
    pthread_mutex_lock(&store->mutex);
    bool closing = store->closing;
    if (!closing) {
        if (store->tail != NULL)
            store->tail->next = batch;
        else
            store->head = batch;
        store->tail = batch;
        pthread_cond_signal(&store->wake);
    }
    pthread_mutex_unlock(&store->mutex);
    if (closing) {
        for (size_t i = 0; i < batch->count; i++)
            if (batch->ops[i].code == STOCK_OK)
                result_fail(&batch->ops[i], STOCK_UNAVAILABLE, "the store is closing");
        batch->done(batch);
    }
}

static void store_free(rd_store *store)
{
    if (store->conn != NULL)
        redisFree(store->conn);
    pthread_cond_destroy(&store->wake);
    pthread_mutex_destroy(&store->mutex);
    free(store);
}

static stock_code rd_close(stock_t *base)
{
    rd_store *store = (rd_store *)base;
    pthread_mutex_lock(&store->mutex);
    store->closing = true;
    pthread_cond_signal(&store->wake);
    pthread_mutex_unlock(&store->mutex);
    pthread_join(store->worker, NULL);
    assert(store->head == NULL);
    store_free(store);
    return STOCK_OK;
}

static stock_code rd_get_stats(stock_t *base, stock_stats *stats)
{
    rd_store *store = (rd_store *)base;
    stats->batches = atomic_load_explicit(&store->batches, memory_order_relaxed);
    stats->operations = atomic_load_explicit(&store->operations, memory_order_relaxed);
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
    pthread_mutex_init(&store->mutex, NULL);
    pthread_condattr_t clock;
    pthread_condattr_init(&clock);
    pthread_condattr_setclock(&clock, CLOCK_MONOTONIC);   /* take_batches' deadline */
    pthread_cond_init(&store->wake, &clock);
    pthread_condattr_destroy(&clock);
    stock_code code = rd_options_parse(uri, config, &store->options, message, size);
    if (code == STOCK_OK)
        code = rd_connect(&store->options, &store->conn, message, size);
    if (code == STOCK_OK && pthread_create(&store->worker, NULL, worker_main, store) != 0)
        code = STOCK_NOMEM;
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
    .get_stats = rd_get_stats,
};
