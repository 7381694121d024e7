/*
 * redis_order.c -- orders on the redis backend: an order whose SKUs share a
 * slot is one call; an order over several slots is a durable record, the
 * lines claimed, checked and taken slot by slot, and on a refusal every slot
 * given back, so that a retry or a crash at any step converges to all or
 * nothing (docs/redis.md). The sweep gives back attempts whose client died.
 * Orders run on the worker thread, alone between runs of other ops.
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


/* What an order learns about each line. */
typedef struct rd_order_line {
    char gen[RD_GEN_MAX];   /* the line id's directory generation */
    bool elsewhere;         /* the id is a line of another SKU */
    unsigned slot;          /* the cluster slot of the line's SKU */
    int key;                /* in a call: index of its SKU's stock key */
    int others;             /* in a call: index of its SKU's other buckets' first key */
} rd_order_line;

/* Fails op after a lost link (NULL reply) or with the server's error. */
static void order_fail_reply(rd_store *store, stock_op *op, const redisReply *reply)
{
    op->failed_line = -1;
    if (reply == NULL)
        result_fail(op, STOCK_UNAVAILABLE, "%s", store->error);
    else
        rd_fail_server(op, reply);
}

/* The buckets an order's calls pass per SKU: with buckets on a cluster,
 * none but the home, which rd_cb_gather filled with the SKU's stock. */
static uint32_t order_buckets(const rd_store *store)
{
    return rd_cb_on(&store->options) ? 1 : store->options.buckets;
}

/* Fences kind:id out of owner `other` (generation gen). Returns 1 when a
 * real record holds it there, 0 when fenced, -1 on failure (op failed). */
static int fence_sync(rd_store *store, stock_op *op, const char *kind, stock_id id,
                      const char *other, const char *gen)
{
    rd_cmd *cmd = &store->cmd;
    if (strcmp(other, "*") == 0) {
        rd_cmd_fcall(cmd, "order_fence");
        rd_cmd_key(cmd, store->options.prefix, kind, id, ":x");
    } else {
        rd_cmd_fcall(cmd, "fence");
        if (rd_cb_on(&store->options))
            rd_cb_fence_key(cmd, &store->options, kind, id, other);
        else
            rd_cmd_key(cmd, store->options.prefix, "sku", stock_id_from_cstr(other),
                       rd_record_suffix(kind));
        rd_cmd_id(cmd, id);
        rd_cmd_argf(cmd, "%s", gen);
    }
    redisReply *reply = rd_call(store);
    int result = reply == NULL || reply->type == REDIS_REPLY_ERROR ? -1
                 : strcmp(rd_text_of(reply), "exists") == 0        ? 1 : 0;
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
    rd_cmd_fcall(cmd, "rebind");
    rd_cmd_key(cmd, store->options.prefix, kind, id, "");
    rd_cmd_argf(cmd, "%s", other);
    rd_cmd_argf(cmd, "%s", gen);
    rd_cmd_argf(cmd, "%s", owner);
    redisReply *reply = rd_call(store);
    int result = reply == NULL || reply->type == REDIS_REPLY_ERROR ? -1
                 : rd_is(reply, 0, "ok")                           ? 1 : 0;
    if (result < 0)
        order_fail_reply(store, op, reply);
    else if (result == 1)
        snprintf(gen_out, RD_GEN_MAX, "%s", rd_element(reply, 1));
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
    char owner_text[RD_OWNER_MAX];
    snprintf(owner_text, sizeof owner_text, "%.*s", (int)owner.len, owner.ptr);
    char other[RD_OWNER_MAX], other_gen[RD_GEN_MAX];
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
        rd_claim_build(&store->cmd, store->options.prefix, kind, id, owner);
        redisReply *again = rd_call(store);
        if (again == NULL || again->type == REDIS_REPLY_ERROR) {
            order_fail_reply(store, op, again);
            freeReplyObject(again);
            return false;
        }
        bool settled = rd_claim_parse(again, owner, gen, other, other_gen);
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
        rd_claim_build(&store->cmd, store->options.prefix, "line", op->lines[i].line_id,
                    op->lines[i].sku);
        if (!rd_send(store)) {
            order_fail_reply(store, op, NULL);
            return false;
        }
    }
    redisReply *replies[STOCK_ORDER_LINES_MAX] = {NULL};
    bool ok = true;
    for (uint32_t i = 0; i < op->line_count && ok; i++) {
        replies[i] = rd_reply(store);
        ok = replies[i] != NULL && replies[i]->type != REDIS_REPLY_ERROR;
        if (!ok)
            order_fail_reply(store, op, replies[i]);
    }
    for (uint32_t i = 0; i < op->line_count && ok; i++) {
        char other[RD_OWNER_MAX], other_gen[RD_GEN_MAX];
        info[i].elsewhere = false;
        if (!rd_claim_parse(replies[i], op->lines[i].sku, info[i].gen, other, other_gen))
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
 * and its other buckets' stock keys (info[i].key = its stock key's index,
 * 1-based; info[i].others = its first other bucket's). */
static void push_sku_keys(rd_store *store, const stock_order_line *lines, uint32_t count,
                          rd_order_line *info, unsigned slot)
{
    for (uint32_t i = 0; i < count; i++) {
        if (info[i].slot != slot)
            continue;
        info[i].key = 0;
        for (uint32_t j = 0; j < i && info[i].key == 0; j++)
            if (info[j].slot == slot && id_equal(lines[j].sku, lines[i].sku)) {
                info[i].key = info[j].key;
                info[i].others = info[j].others;
            }
        if (info[i].key == 0) {
            info[i].key = store->cmd.keys + 1;
            rd_cmd_key(&store->cmd, store->options.prefix, "sku", lines[i].sku, "");
            rd_cmd_key(&store->cmd, store->options.prefix, "sku", lines[i].sku, ":flow");
            info[i].others = store->cmd.keys + 1;
            rd_cmd_buckets(&store->cmd, store->options.prefix, lines[i].sku,
                           order_buckets(store));
        }
    }
}

/* A line's 7 arguments (order_lines in redis_functions.lua). */
static void push_line_args(rd_store *store, const stock_order_line *l, const rd_order_line *info)
{
    rd_cmd *cmd = &store->cmd;
    rd_cmd_id(cmd, l->line_id);
    rd_cmd_argf(cmd, "%d", info->key);
    rd_cmd_argf(cmd, "%" PRId64, l->qty);
    rd_cmd_argf(cmd, "%s", info->gen);
    rd_cmd_argf(cmd, "%d", info->elsewhere ? 1 : 0);
    rd_cmd_argf(cmd, "%d", info->others);
    rd_cmd_argf(cmd, "%u", order_buckets(store) - 1);
}

/* Maps an order function's failure (code, 1-based line index, value). */
static void order_failure(stock_op *op, const redisReply *reply, uint32_t line)
{
    const stock_order_line *l = &op->lines[line];
    op->failed_line = (int32_t)line;
    if (rd_is(reply, 0, "CONFLICT"))
        result_conflict(op, "line", l->line_id);
    else if (rd_is(reply, 0, "NOTFOUND"))
        result_sku_not_found(op, l->sku);
    else if (rd_is(reply, 0, "INSUFFICIENT"))
        result_insufficient(op, l->sku, rd_element_i64(reply, 2));
    else if (rd_is(reply, 0, "OVERFLOW"))
        result_overflow(op, l->sku);
    else
        result_fail(op, STOCK_IO, "redis: unexpected reply '%.40s'", rd_element(reply, 0));
}

/* Claims the order id for owner ("*" for an order over several slots):
 * returns 1 with gen set, 0 when a record holds it elsewhere (CONFLICT set),
 * -1 on failure. */
static int order_claim(rd_store *store, stock_op *op, const char *owner, char *gen)
{
    stock_id owner_id = stock_id_from_cstr(owner);
    rd_claim_build(&store->cmd, store->options.prefix, "order", op->id, owner_id);
    redisReply *reply = rd_call(store);
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        order_fail_reply(store, op, reply);
        freeReplyObject(reply);
        return -1;
    }
    bool elsewhere = false;
    char other[RD_OWNER_MAX], other_gen[RD_GEN_MAX];
    bool ok = rd_claim_parse(reply, owner_id, gen, other, other_gen) ||
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
        op->lines[i].available = rd_element_i64(reply, first + i);
}

/* An order whose SKUs share one slot: one call does it all. Returns true
 * when an id moved meanwhile and the order must start again. */
static bool order_one_slot(rd_store *store, stock_op *op, rd_order_line *info, const char *spec)
{
    char owner[RD_OWNER_MAX], gen[RD_GEN_MAX];
    snprintf(owner, sizeof owner, "%.*s", (int)op->lines[0].sku.len, op->lines[0].sku.ptr);
    if (order_claim(store, op, owner, gen) != 1 || !order_claim_lines(store, op, info))
        return false;
    bool again = false;
    rd_cmd *cmd = &store->cmd;
    rd_cmd_fcall(cmd, "order");
    push_sku_keys(store, op->lines, op->line_count, info, info[0].slot);
    rd_cmd_key(cmd, store->options.prefix, "sku", op->lines[0].sku, ":orders");
    rd_cmd_outbox(cmd, &store->options, op->lines[0].sku);
    rd_cmd_id(cmd, op->id);
    rd_cmd_argf(cmd, "%s", gen);
    rd_cmd_argf(cmd, "%s", spec);
    rd_cmd_argf(cmd, "%" PRId64, clock_now_us(CLOCK_REALTIME));
    rd_cmd_argf(cmd, "%u", op->line_count);
    for (uint32_t i = 0; i < op->line_count; i++)
        push_line_args(store, &op->lines[i], &info[i]);
    rd_cmd_lag_limits(cmd, &store->options);
    redisReply *reply = rd_call(store);
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        order_fail_reply(store, op, reply);
    } else if (rd_is(reply, 0, "OK") || rd_is(reply, 0, "REPLAY")) {
        op->code = rd_is(reply, 0, "OK") ? STOCK_OK : STOCK_REPLAY;
        order_results(op, reply, 2);
    } else if (rd_is(reply, 0, "CONFLICT") && rd_element_i64(reply, 1) == 0) {
        result_conflict(op, "order", op->id);
    } else if (rd_is(reply, 0, "MOVED")) {
        again = true;
    } else if (rd_is(reply, 0, "LAGGING")) {
        rd_fail_lagging(op, &store->options);
    } else {
        order_failure(op, reply, (uint32_t)rd_element_i64(reply, 1) - 1);
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
        rd_cmd_start(cmd);
        rd_cmd_argf(cmd, "ZADD");
        rd_cmd_argf(cmd, "%s{stock:pending}", store->options.prefix);
        rd_cmd_argf(cmd, "%s", deadline);
        rd_cmd_id(cmd, order);
    } else {
        rd_cmd_fcall(cmd, "pending_drop");
        rd_cmd_key(cmd, store->options.prefix, "stock", stock_id_from_cstr("pending"), "");
        rd_cmd_id(cmd, order);
        rd_cmd_argf(cmd, "%s", deadline);
    }
    redisReply *reply = rd_call(store);
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
        rd_cmd_fcall(cmd, "order_untake");
        push_sku_keys(store, lines, count, info, info[i].slot);
        rd_cmd_key(cmd, store->options.prefix, "sku", lines[i].sku, ":ofence");
        rd_cmd_outbox(cmd, &store->options, lines[i].sku);
        rd_cmd_id(cmd, order);
        rd_cmd_argf(cmd, "%s", attempt);
        int in_slot = 0;
        for (uint32_t k = i; k < count; k++)
            in_slot += info[k].slot == info[i].slot;
        rd_cmd_argf(cmd, "%d", in_slot);
        for (uint32_t k = i; k < count; k++) {
            if (info[k].slot != info[i].slot)
                continue;
            rd_cmd_id(cmd, lines[k].line_id);
            rd_cmd_argf(cmd, "%d", info[k].key);
        }
        if (!rd_send(store))
            return false;
        sent++;
    }
    bool ok = true;
    for (int k = 0; k < sent; k++) {
        redisReply *reply = rd_reply(store);
        ok = ok && reply != NULL && reply->type == REDIS_REPLY_INTEGER;
        freeReplyObject(reply);
        if (!rd_linked(store))
            return false;
    }
    return ok;
}

/* Ends attempt: "done" with the results, or "undone" (forgotten). True
 * when the attempt was still ours. */
static bool order_end(rd_store *store, stock_id order, const char *attempt, const char *how,
                      const char *results)
{
    rd_cmd_fcall(&store->cmd, "order_end");
    rd_cmd_key(&store->cmd, store->options.prefix, "order", order, ":x");
    rd_cmd_argf(&store->cmd, "%s", attempt);
    rd_cmd_argf(&store->cmd, "%s", how);
    rd_cmd_argf(&store->cmd, "%s", results);
    redisReply *reply = rd_call(store);
    bool ours = strcmp(rd_text_of(reply), "ok") == 0;
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
        info[count].slot = rd_tag_slot("sku", lines[count].sku);
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
        rd_cmd_fcall(&store->cmd, "order_begin");
        rd_cmd_key(&store->cmd, store->options.prefix, "order", op->id, "");
        rd_cmd_key(&store->cmd, store->options.prefix, "order", op->id, ":x");
        rd_cmd_argf(&store->cmd, "%s", spec);
        rd_cmd_argf(&store->cmd, "%" PRId64, clock_now_us(CLOCK_REALTIME) / 1000);
        rd_cmd_argf(&store->cmd, "%" PRId64, lease_ms);
        redisReply *reply = rd_call(store);
        if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
            order_fail_reply(store, op, reply);
            freeReplyObject(reply);
            return RD_FAILED;
        }
        rd_begin result = RD_SETTLED;
        char gen[RD_GEN_MAX];
        bool elsewhere = false;
        if (rd_is(reply, 0, "BEGUN")) {
            snprintf(attempt, RD_GEN_MAX, "%s", rd_element(reply, 1));
            result = RD_BEGUN;
        } else if (rd_is(reply, 0, "REPLAY")) {
            op->code = STOCK_REPLAY;
            char *next = (char *)rd_element(reply, 1);
            for (uint32_t i = 0; i < op->line_count; i++)
                op->lines[i].available = strtoll(next, &next, 10);
        } else if (rd_is(reply, 0, "CONFLICT")) {
            result_conflict(op, "order", op->id);
        } else if (rd_is(reply, 0, "BUSY")) {
            result_fail(op, STOCK_UNAVAILABLE, "redis: order=%.*s is being placed by another "
                        "client; retry with the same id", (int)op->id.len, op->id.ptr);
        } else if (rd_is(reply, 0, "STALE")) {
            result = order_undo_stale(store, op->id, rd_element(reply, 1), rd_element(reply, 2))
                         ? RD_AGAIN : RD_FAILED;
        } else if (!claim_settle(store, op, "order", op->id, stock_id_from_cstr("*"),
                                 rd_element(reply, 2), rd_element(reply, 1), gen, &elsewhere)) {
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
        rd_cmd_fcall(&store->cmd, "probe");
        rd_cmd_key(&store->cmd, store->options.prefix, "sku", op->lines[i].sku, "");
        rd_cmd_key(&store->cmd, store->options.prefix, "sku", op->lines[i].sku, ":flow");
        rd_cmd_id(&store->cmd, op->lines[i].line_id);
        rd_cmd_argf(&store->cmd, "%s", info[i].gen);
        if (!rd_send(store)) {
            order_fail_reply(store, op, NULL);
            return false;
        }
    }
    bool pass = true;
    for (uint32_t i = 0; i < op->line_count; i++) {
        redisReply *reply = rd_reply(store);
        if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
            if (pass)
                order_fail_reply(store, op, reply);
            pass = false;
        } else if (pass && (info[i].elsewhere || rd_is(reply, 1, "taken"))) {
            op->failed_line = (int32_t)i;
            result_conflict(op, "line", op->lines[i].line_id);
            pass = false;
        } else if (pass && rd_is(reply, 1, "moved")) {
            *again = true;
            pass = false;
        } else if (pass && rd_is(reply, 0, "0")) {
            op->failed_line = (int32_t)i;
            result_sku_not_found(op, op->lines[i].sku);
            pass = false;
        }
        freeReplyObject(reply);
        if (!rd_linked(store))
            return false;
    }
    return pass;
}

/* Pushes the order's line count and the positions of slot's lines in it
 * ("0 3 4"): their outbox records carry them, for the persister to write
 * the order as the postgres backend keeps it. */
static void push_positions(rd_cmd *cmd, const stock_op *op, const rd_order_line *info,
                           unsigned slot)
{
    char text[STOCK_ORDER_LINES_MAX * 4 + 1] = "";
    size_t used = 0;
    for (uint32_t k = 0; k < op->line_count; k++)
        if (info[k].slot == slot)
            used += (size_t)snprintf(text + used, sizeof text - used, "%s%u", used > 0 ? " " : "",
                                     (unsigned)k);
    rd_cmd_argf(cmd, "%u", op->line_count);
    rd_cmd_argf(cmd, "%s", text);
}

/* Takes the lines, one call per slot (pipelined). Returns true when every
 * slot took its lines; else op has the failure of the earliest line. */
static bool order_take(rd_store *store, stock_op *op, rd_order_line *info, const char *attempt,
                       bool *again)
{
    uint32_t firsts[STOCK_ORDER_LINES_MAX];
    uint32_t slots = 0;
    int64_t time_us = clock_now_us(CLOCK_REALTIME);
    for (uint32_t i = 0; i < op->line_count; i++) {
        bool first = true;
        for (uint32_t j = 0; j < i && first; j++)
            first = info[j].slot != info[i].slot;
        if (!first)
            continue;
        firsts[slots++] = i;
        rd_cmd *cmd = &store->cmd;
        rd_cmd_fcall(cmd, "order_take");
        push_sku_keys(store, op->lines, op->line_count, info, info[i].slot);
        rd_cmd_key(cmd, store->options.prefix, "sku", op->lines[i].sku, ":ofence");
        rd_cmd_outbox(cmd, &store->options, op->lines[i].sku);
        rd_cmd_id(cmd, op->id);
        rd_cmd_argf(cmd, "%s", attempt);
        rd_cmd_argf(cmd, "%" PRId64, time_us);
        uint32_t in_slot = 0;
        for (uint32_t k = i; k < op->line_count; k++)
            in_slot += info[k].slot == info[i].slot;
        rd_cmd_argf(cmd, "%u", in_slot);
        for (uint32_t k = i; k < op->line_count; k++)
            if (info[k].slot == info[i].slot)
                push_line_args(store, &op->lines[k], &info[k]);
        push_positions(cmd, op, info, info[i].slot);
        rd_cmd_lag_limits(cmd, &store->options);
        if (!rd_send(store)) {
            order_fail_reply(store, op, NULL);
            return false;
        }
    }
    int64_t failed = op->line_count;   /* the earliest failing line */
    for (uint32_t s = 0; s < slots; s++) {
        redisReply *reply = rd_reply(store);
        if (reply == NULL)
            return order_fail_reply(store, op, NULL), false;
        uint32_t k = firsts[s], seen = 0;   /* the lines of this slot, in order */
        for (; k < op->line_count; k++) {
            if (info[k].slot != info[firsts[s]].slot)
                continue;
            if (rd_is(reply, 0, "OK"))
                op->lines[k].available = rd_element_i64(reply, 2 + seen);
            else if (reply->type != REDIS_REPLY_ERROR && (int64_t)seen + 1 == rd_element_i64(reply, 1) &&
                     (int64_t)k < failed) {
                failed = k;
                *again = *again || rd_is(reply, 0, "MOVED");
                order_failure(op, reply, k);
            }
            seen++;
        }
        if (reply->type == REDIS_REPLY_ERROR || rd_is(reply, 0, "FENCED") ||
            rd_is(reply, 0, "LAGGING")) {
            failed = 0;
            if (reply->type == REDIS_REPLY_ERROR)
                rd_fail_server(op, reply);
            else if (rd_is(reply, 0, "LAGGING"))
                rd_fail_lagging(op, &store->options);
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
        *ended = rd_linked(store) && order_end(store, op->id, attempt, "undone", "");
        return again;
    }
    if (!order_take(store, op, info, attempt, &again)) {
        stock_code code = op->code;
        *ended = rd_linked(store) &&
                 order_untake(store, op->id, attempt, op->lines, op->line_count, info) &&
                 order_end(store, op->id, attempt, "undone", "");
        if (again)
            op->code = STOCK_OK, op->failed_line = -1, op->message[0] = '\0';
        else if (!rd_linked(store) && code == STOCK_OK)
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
    snprintf(deadline, sizeof deadline, "%" PRId64, clock_now_us(CLOCK_REALTIME) / 1000 +
             (int64_t)store->options.timeout_ms * RD_ORDER_LEASE_FACTOR);
    if (!pending_edit(store, "ZADD", op->id, deadline)) {
        result_fail(op, STOCK_UNAVAILABLE, "%s", store->error);
        return false;
    }
    bool again = false, ended = true;
    if (order_begin(store, op, spec, attempt) == RD_BEGUN)
        again = order_attempt(store, op, info, attempt, &ended);
    if (ended && rd_linked(store))
        pending_edit(store, "DROP", op->id, deadline);
    return again;
}

/* Runs an order alone: one call when its SKUs share a slot, else the
 * protocol of order_many_slots. */
void rd_order_run(rd_store *store, stock_op *op)
{
    char *spec = store->spec;
    rd_order_line info[STOCK_ORDER_LINES_MAX];
    order_spec(op, spec, RD_SPEC_MAX);
    /* With buckets on one server, every order is one call: a server that
     * is not a cluster takes keys of any slot. */
    bool one_slot = true;
    for (uint32_t i = 0; i < op->line_count; i++) {
        info[i].slot = order_buckets(store) > 1 ? 0 : rd_tag_slot("sku", op->lines[i].sku);
        one_slot = one_slot && info[i].slot == info[0].slot;
    }
    for (int round = 0; round <= RD_RESTARTS_MAX; round++) {
        if (!rd_linked(store)) {
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
 * says taking (up to RD_SWEEP_MAX at a time): order_abandon marks such an
 * attempt undoing first, so that a client that is only slow cannot end it
 * done while its lines are given back. Entries whose record ended are
 * dropped. Runs at open and then once per lease while the store is
 * open, so an interrupted order is undone within two leases. */
void rd_sweep(rd_store *store)
{
    rd_cmd *cmd = &store->cmd;
    int64_t now_ms = clock_now_us(CLOCK_REALTIME) / 1000;
    rd_cmd_start(cmd);
    rd_cmd_argf(cmd, "ZRANGEBYSCORE");
    rd_cmd_argf(cmd, "%s{stock:pending}", store->options.prefix);
    rd_cmd_argf(cmd, "-inf");
    rd_cmd_argf(cmd, "%" PRId64, now_ms);
    rd_cmd_argf(cmd, "WITHSCORES");
    rd_cmd_argf(cmd, "LIMIT");
    rd_cmd_argf(cmd, "0");
    rd_cmd_argf(cmd, "%d", RD_SWEEP_MAX);
    redisReply *list = rd_call(store);
    for (size_t i = 0; list != NULL && list->type == REDIS_REPLY_ARRAY &&
                       i + 1 < list->elements && rd_linked(store); i += 2) {
        stock_id order = stock_id_from_cstr(rd_element(list, i));
        rd_cmd_fcall(cmd, "order_abandon");
        rd_cmd_key(cmd, store->options.prefix, "order", order, ":x");
        rd_cmd_argf(cmd, "%" PRId64, now_ms);
        redisReply *record = rd_call(store);
        if (record == NULL)
            break;
        bool undo = rd_is(record, 0, "undo");
        bool ended = undo ? order_undo_stale(store, order, rd_element(record, 1),
                                             rd_element(record, 2))
                          : !rd_is(record, 0, "taking") && record->type == REDIS_REPLY_ARRAY;
        freeReplyObject(record);
        if (ended && rd_linked(store))
            pending_edit(store, "DROP", order, rd_element(list, i + 1));
    }
    freeReplyObject(list);
}
