/*
 * postgres_plan.c -- turns the ops of one transaction into pipelined
 * statements (steps) and the statements' result rows back into op outputs,
 * worded by src/lib/result.c exactly as the embedded engine words them.
 *
 * Merging: deductions commute with each other unless they share a line id,
 * so a run of consecutive deductions is sent as one stock_deduct_run call,
 * which takes each SKU's sum with one conditional UPDATE and writes one
 * multi-row flow INSERT. A run ends at any other op (a set, refund or order
 * might see or change the same SKUs) and at a line id already in the run
 * (its second use must see the first).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/postgres.h"
#include "lib/id.h"
#include "lib/result.h"

#define PG_PARAMS_MAX 6          /* parameters of the widest statement */
#define PG_CODE_INVALID_LEVEL 7  /* stock_code STOCK_INVALID: a level overflow */
/* Holds one transaction's sweep expires at most; the rest wait for the next
 * transaction, or for an op that touches them (the functions expire a hold
 * they find past its deadline). */
#define PG_SWEEP_HOLDS_MAX 1000
/* Steps besides one per op: the token and the sweep. */
#define PG_PLAN_EXTRA_STEPS 2

bool pg_plan_init(pg_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->members = calloc(PG_TXN_OPS_MAX, sizeof plan->members[0]);
    plan->steps = calloc(PG_TXN_OPS_MAX + PG_PLAN_EXTRA_STEPS, sizeof plan->steps[0]);
    plan->slots = calloc(PG_PLAN_SLOTS, sizeof plan->slots[0]);
    plan->used = calloc(PG_TXN_OPS_MAX, sizeof plan->used[0]);
    if (plan->members && plan->steps && plan->slots && plan->used)
        return true;
    pg_plan_free(plan);
    return false;
}

void pg_plan_free(pg_plan *plan)
{
    free(plan->members);
    free(plan->steps);
    free(plan->slots);
    free(plan->used);
    buf_free(&plan->text);
    memset(plan, 0, sizeof *plan);
}

/* ------------------------------------------------------------ building */

static uint32_t id_hash(stock_id id)
{
    uint32_t hash = 2166136261u;   /* FNV-1a */
    for (uint32_t i = 0; i < id.len; i++)
        hash = (hash ^ (uint8_t)id.ptr[i]) * 16777619u;
    return hash;
}

/* The state of a run of deductions being gathered. */
typedef struct pg_run {
    stock_op *const *ops;
    uint32_t first;         /* op index where the run starts */
    uint32_t length;
} pg_run;

/* The slot of line id key in the run's table (line id -> op index + 1). */
static uint32_t *line_slot(pg_plan *plan, const pg_run *run, stock_id key)
{
    uint32_t mask = PG_PLAN_SLOTS - 1;
    for (uint32_t probe = id_hash(key) & mask;; probe = (probe + 1) & mask) {
        uint32_t entry = plan->slots[probe];
        if (entry == 0 || id_equal(run->ops[entry - 1]->id, key))
            return &plan->slots[probe];
    }
}

static void emit_op(pg_plan *plan, stock_op *op)
{
    assert(plan->member_count < PG_TXN_OPS_MAX);
    plan->steps[plan->step_count++] = (pg_step){PG_STEP_OP, plan->member_count, 1};
    plan->members[plan->member_count++] = op;
}

/* Emits the run as one merged step (a lone deduction as a plain one) and
 * empties it. */
static void run_flush(pg_plan *plan, pg_run *run)
{
    if (run->length == 1)
        emit_op(plan, run->ops[run->first]);
    if (run->length > 1) {
        plan->steps[plan->step_count++] =
            (pg_step){PG_STEP_MERGED, plan->member_count, run->length};
        for (uint32_t i = 0; i < run->length; i++)
            plan->members[plan->member_count++] = run->ops[run->first + i];
    }
    /* Clear by position: deleting by key would cut the probe chains of the
     * keys after it. */
    for (uint32_t i = 0; i < run->length; i++)
        plan->slots[plan->used[i]] = 0;
    run->first += run->length;
    run->length = 0;
}

/* Adds deduction ops[index] to the run, ending the run first if its line id
 * is already in it. */
static void run_add(pg_plan *plan, pg_run *run, uint32_t index)
{
    stock_op *op = run->ops[index];
    if (run->length > 0 && *line_slot(plan, run, op->id) != 0)
        run_flush(plan, run);
    if (run->length == 0)
        run->first = index;
    assert(run->first + run->length == index);
    uint32_t *slot = line_slot(plan, run, op->id);
    assert(*slot == 0);
    *slot = index + 1;
    plan->used[run->length++] = (uint32_t)(slot - plan->slots);
}

void pg_plan_build(pg_plan *plan, stock_op *const *ops, uint32_t count, bool merge)
{
    assert(count >= 1 && count <= PG_TXN_OPS_MAX);
    plan->step_count = plan->member_count = 0;
    plan->steps[plan->step_count++] = (pg_step){PG_STEP_TOKEN, 0, 0};
    plan->steps[plan->step_count++] = (pg_step){PG_STEP_SWEEP, 0, 0};
    pg_run run = {.ops = ops};
    for (uint32_t i = 0; i < count; i++) {
        assert(ops[i]->code == STOCK_OK);
        if (merge && ops[i]->type == STOCK_OP_DEDUCT) {
            run_add(plan, &run, i);
            continue;
        }
        run_flush(plan, &run);
        emit_op(plan, ops[i]);
    }
    run_flush(plan, &run);
    assert(plan->member_count == count);
}

/* ------------------------------------------------------------- sending */

/* Parameters as NUL-terminated text in plan->text, by offset (the buffer may
 * move while it grows). */
typedef struct pg_params {
    int count;
    size_t offsets[PG_PARAMS_MAX];
    bool null[PG_PARAMS_MAX];
    bool ok;
} pg_params;

static void param_begin(pg_plan *plan, pg_params *params)
{
    assert(params->count < PG_PARAMS_MAX);
    params->offsets[params->count] = plan->text.len;
    params->null[params->count] = false;
}

static void param_end(pg_plan *plan, pg_params *params)
{
    params->ok = params->ok && buf_append(&plan->text, "", 1);
    params->count++;
}

static void param_id(pg_plan *plan, pg_params *params, stock_id id)
{
    param_begin(plan, params);
    params->ok = params->ok && buf_append(&plan->text, id.ptr, id.len);
    param_end(plan, params);
}

static void param_int(pg_plan *plan, pg_params *params, int64_t value)
{
    char text[24];
    int len = snprintf(text, sizeof text, "%" PRId64, value);
    param_begin(plan, params);
    params->ok = params->ok && buf_append(&plan->text, text, (size_t)len);
    param_end(plan, params);
}

static void param_null(pg_plan *plan, pg_params *params)
{
    param_begin(plan, params);
    params->null[params->count] = true;
    param_end(plan, params);
}

bool pg_text_element(buf *text, stock_id id)
{
    if (!buf_reserve(text, 2 * (size_t)id.len + 3))
        return false;
    buf_append(text, "\"", 1);
    for (uint32_t i = 0; i < id.len; i++) {
        if (id.ptr[i] == '"' || id.ptr[i] == '\\')
            buf_append(text, "\\", 1);
        buf_append(text, &id.ptr[i], 1);
    }
    return buf_append(text, "\"", 1);
}

static void append_element(pg_plan *plan, pg_params *params, stock_id id)
{
    params->ok = params->ok && pg_text_element(&plan->text, id);
}

/* An array literal of the ids (or, with ids NULL, the quantities) of items
 * given as (pointer, stride) so that it reads ops and order lines alike. */
typedef enum { PG_ARRAY_LINE, PG_ARRAY_SKU, PG_ARRAY_QTY } pg_array_field;

static void param_array(pg_plan *plan, pg_params *params, const stock_op *op,
                        stock_op *const *members, uint32_t count, pg_array_field field)
{
    param_begin(plan, params);
    params->ok = params->ok && buf_append(&plan->text, "{", 1);
    for (uint32_t i = 0; i < count && params->ok; i++) {
        if (i > 0)
            buf_append(&plan->text, ",", 1);
        const stock_order_line *line = op != NULL ? &op->lines[i] : NULL;
        if (field == PG_ARRAY_QTY) {
            char text[24];
            int64_t qty = line != NULL ? line->qty : members[i]->amount;
            int len = snprintf(text, sizeof text, "%" PRId64, qty);
            params->ok = buf_append(&plan->text, text, (size_t)len);
        } else if (field == PG_ARRAY_LINE) {
            append_element(plan, params, line != NULL ? line->line_id : members[i]->id);
        } else {
            append_element(plan, params, line != NULL ? line->sku : members[i]->sku);
        }
    }
    params->ok = params->ok && buf_append(&plan->text, "}", 1);
    param_end(plan, params);
}

/* Fills params for one op's statement; returns the statement name. */
static const char *op_params(pg_plan *plan, pg_params *params, const stock_op *op,
                             uint32_t buckets, int64_t now_us)
{
    switch (op->type) {
    case STOCK_OP_SET:
        param_id(plan, params, op->sku);
        param_int(plan, params, op->amount);
        param_id(plan, params, (stock_id){op->has_expect ? "t" : "f", 1});
        param_int(plan, params, op->has_expect ? op->expect : 0);
        param_int(plan, params, buckets);
        return PG_STMT_SET;
    case STOCK_OP_ADD:
        param_id(plan, params, op->sku);
        param_int(plan, params, op->amount);
        if (op->id.len > 0)
            param_id(plan, params, op->id);
        else
            param_null(plan, params);
        return PG_STMT_ADD;
    case STOCK_OP_DEDUCT:
        param_id(plan, params, op->id);
        param_id(plan, params, op->sku);
        param_int(plan, params, op->amount);
        param_int(plan, params, now_us);
        param_int(plan, params, buckets);
        return PG_STMT_DEDUCT;
    case STOCK_OP_ORDER:
        param_id(plan, params, op->id);
        param_array(plan, params, op, NULL, op->line_count, PG_ARRAY_LINE);
        param_array(plan, params, op, NULL, op->line_count, PG_ARRAY_SKU);
        param_array(plan, params, op, NULL, op->line_count, PG_ARRAY_QTY);
        param_int(plan, params, now_us);
        param_int(plan, params, buckets);
        return PG_STMT_ORDER;
    case STOCK_OP_REFUND:
        param_id(plan, params, op->id);
        param_id(plan, params, op->line);
        param_int(plan, params, op->amount);
        return PG_STMT_REFUND;
    case STOCK_OP_GET:
        param_id(plan, params, op->sku);
        return PG_STMT_GET;
    case STOCK_OP_LINE:
        param_id(plan, params, op->line);
        return PG_STMT_LINE;
    case STOCK_OP_HOLD:
        param_id(plan, params, op->id);
        param_id(plan, params, op->sku);
        param_int(plan, params, op->amount);
        param_int(plan, params, op->expect);
        param_int(plan, params, buckets);
        return PG_STMT_HOLD;
    case STOCK_OP_CONFIRM:
        param_id(plan, params, op->id);
        param_int(plan, params, op->amount);
        return PG_STMT_CONFIRM;
    case STOCK_OP_RELEASE:
        param_id(plan, params, op->id);
        return PG_STMT_RELEASE;
    case STOCK_OP_CONFIRM_ORDER:
        param_id(plan, params, op->id);
        param_array(plan, params, op, NULL, op->line_count, PG_ARRAY_LINE);
        param_array(plan, params, op, NULL, op->line_count, PG_ARRAY_QTY);
        return PG_STMT_CONFIRM_ORDER;
    case STOCK_OP_HOLD_GET:
        param_id(plan, params, op->id);
        return PG_STMT_HOLD_GET;
    }
    assert(!"op type checked by stock_validate");
    return NULL;
}

bool pg_plan_send(pg_plan *plan, uint32_t i, PGconn *conn, uint32_t buckets,
                  int64_t client_id, int64_t txn_id, int64_t now_us)
{
    assert(i < plan->step_count);
    const pg_step *step = &plan->steps[i];
    pg_params params = {.ok = true};
    const char *name = NULL;
    buf_clear(&plan->text);
    if (step->kind == PG_STEP_TOKEN) {
        param_int(plan, &params, client_id);
        param_int(plan, &params, txn_id);
        name = PG_STMT_TOKEN;
    } else if (step->kind == PG_STEP_SWEEP) {
        param_int(plan, &params, PG_SWEEP_HOLDS_MAX);
        name = PG_STMT_SWEEP;
    } else if (step->kind == PG_STEP_OP) {
        name = op_params(plan, &params, plan->members[step->first], buckets, now_us);
    } else {
        stock_op *const *members = plan->members + step->first;
        param_array(plan, &params, NULL, members, step->count, PG_ARRAY_LINE);
        param_array(plan, &params, NULL, members, step->count, PG_ARRAY_SKU);
        param_array(plan, &params, NULL, members, step->count, PG_ARRAY_QTY);
        param_int(plan, &params, now_us);
        param_int(plan, &params, buckets);
        name = PG_STMT_MERGED;
    }
    if (!params.ok)
        return false;
    const char *values[PG_PARAMS_MAX];
    for (int p = 0; p < params.count; p++)
        values[p] = params.null[p] ? NULL : (const char *)plan->text.data + params.offsets[p];
    return PQsendQueryPrepared(conn, name, params.count, values, NULL, NULL, 0) == 1;
}

/* ----------------------------------------------------------- completing */

static int64_t value_int(const PGresult *result, int row, int column)
{
    return strtoll(PQgetvalue(result, row, column), NULL, 10);
}

/* Copies a text column into a fixed field (ids are at most STOCK_ID_MAX). */
static void value_text(const PGresult *result, int row, int column, char *out)
{
    snprintf(out, STOCK_ID_MAX + 1, "%s", PQgetvalue(result, row, column));
}

/* The words of a level overflow, as the embedded engine says them. */
static void fail_overflow(stock_op *op, const char *what, stock_id id)
{
    result_fail(op, STOCK_INVALID, "%s=%.*s a stock total would pass 9223372036854775807",
                what, (int)id.len, id.ptr);
}

/* Sets a set/add/deduct/refund op's outputs from a function's (code,
 * available). False for a code the function cannot return. */
static bool complete_simple(stock_op *op, int64_t code, int64_t available)
{
    bool refund = op->type == STOCK_OP_REFUND;
    switch (code) {
    case STOCK_OK:
    case STOCK_REPLAY:
        op->code = (stock_code)code;
        op->available = available;
        return op->type != STOCK_OP_SET || code == STOCK_OK;
    case STOCK_INSUFFICIENT:
        result_insufficient(op, op->sku, available);
        return op->type == STOCK_OP_ADD || op->type == STOCK_OP_DEDUCT;
    case STOCK_NOT_FOUND:
        if (refund)
            result_line_not_found(op, op->line);
        else
            result_sku_not_found(op, op->sku);
        return true;
    case STOCK_CONFLICT:
        result_conflict(op, refund ? "refund" : op->type == STOCK_OP_ADD ? "adjustment" : "line",
                        op->id);
        return op->type != STOCK_OP_SET;
    case STOCK_EXCEEDS:
        result_exceeds(op, op->line, available);
        return refund;
    case STOCK_MISMATCH:
        result_mismatch(op, op->sku, available);
        return op->type == STOCK_OP_SET;
    case PG_CODE_INVALID_LEVEL:
        if (refund)
            fail_overflow(op, "line", op->line);
        else
            fail_overflow(op, "sku", op->sku);
        return refund || op->type == STOCK_OP_ADD || op->type == STOCK_OP_SET;
    }
    return false;
}

/* Parses "{1,2,3}" into the order's lines' available. */
static bool parse_availables(stock_op *op, const char *text)
{
    if (*text++ != '{')
        return false;
    for (uint32_t i = 0; i < op->line_count; i++) {
        char *end = NULL;
        op->lines[i].available = strtoll(text, &end, 10);
        if (end == text || (*end != ',' && *end != '}'))
            return false;
        text = end + 1;
    }
    return text[-1] == '}';
}

/* The (code, failed_line, available, availables) row of stock_order and
 * stock_confirm_order: sets failed_line, and on success the code and each
 * line's available. False for a malformed row; *done when it succeeded. */
static bool order_result(stock_op *op, const PGresult *result, int64_t *code,
                         bool *done)
{
    *done = false;
    if (PQntuples(result) != 1 || PQnfields(result) != 4)
        return false;
    *code = value_int(result, 0, 0);
    int64_t failed = value_int(result, 0, 1);
    if (failed < -1 || failed >= (int64_t)op->line_count)
        return false;
    op->failed_line = (int32_t)failed;
    if (*code != STOCK_OK && *code != STOCK_REPLAY)
        return true;
    *done = true;
    op->code = (stock_code)*code;
    return parse_availables(op, PQgetvalue(result, 0, 3));
}

static bool complete_order(stock_op *op, const PGresult *result)
{
    int64_t code;
    bool done;
    bool ok = order_result(op, result, &code, &done);
    if (!ok || done)
        return ok;
    int64_t failed = op->failed_line;
    const stock_order_line *line = failed >= 0 ? &op->lines[failed] : NULL;
    if (code == STOCK_CONFLICT && line == NULL)
        result_conflict(op, "order", op->id);
    else if (code == STOCK_CONFLICT)
        result_conflict(op, "line", line->line_id);
    else if (code == STOCK_NOT_FOUND && line != NULL)
        result_sku_not_found(op, line->sku);
    else if (code == STOCK_INSUFFICIENT && line != NULL)
        result_insufficient(op, line->sku, value_int(result, 0, 2));
    else
        return false;
    return true;
}

static bool complete_get(stock_op *op, const PGresult *result)
{
    if (PQntuples(result) != 1 || PQnfields(result) != 5)
        return false;
    if (PQgetisnull(result, 0, 0)) {
        result_sku_not_found(op, op->sku);
        return true;
    }
    stock_sku_info *info = &op->info.sku_info;
    info->available = value_int(result, 0, 0);
    info->adjusted = value_int(result, 0, 1);
    info->deducted = value_int(result, 0, 2);
    info->refunded = value_int(result, 0, 3);
    info->held = value_int(result, 0, 4);
    op->available = info->available;
    assert(info->available >= 0);
    return true;
}

static bool complete_line(stock_op *op, const PGresult *result)
{
    if (PQntuples(result) == 0) {
        result_line_not_found(op, op->line);
        return true;
    }
    if (PQntuples(result) != 1 || PQnfields(result) != 6)
        return false;
    stock_line_info *info = &op->info.line_info;
    value_text(result, 0, 0, info->sku);
    value_text(result, 0, 1, info->order_id);
    info->qty = value_int(result, 0, 2);
    info->refunded = value_int(result, 0, 3);
    info->time_us = value_int(result, 0, 4);
    info->available_after = value_int(result, 0, 5);
    return info->qty >= 1 && info->refunded <= info->qty;
}

/* Sets a hold op's outputs from a function's (code, available). False for a
 * code the function cannot return. */
static bool complete_hold_simple(stock_op *op, int64_t code, int64_t available)
{
    switch (code) {
    case STOCK_OK:
    case STOCK_REPLAY:
        op->code = (stock_code)code;
        op->available = available;
        return true;
    case STOCK_INSUFFICIENT:
        result_insufficient(op, op->sku, available);
        return op->type == STOCK_OP_HOLD;
    case STOCK_NOT_FOUND:
        if (op->type == STOCK_OP_HOLD)
            result_sku_not_found(op, op->sku);
        else
            result_hold_not_found(op, op->id);
        return true;
    case STOCK_CONFLICT:
        result_conflict(op, "hold", op->id);
        return op->type != STOCK_OP_RELEASE;
    case STOCK_EXCEEDS:
        result_hold_exceeds(op, op->id, available);
        return op->type == STOCK_OP_CONFIRM;
    case STOCK_EXPIRED:
        result_hold_expired(op, op->id);
        return op->type != STOCK_OP_HOLD;
    case STOCK_CLOSED:
        result_hold_closed(op, op->id, (stock_hold_state)available);
        return op->type != STOCK_OP_HOLD;
    }
    return false;
}

static bool complete_confirm_order(stock_op *op, const PGresult *result)
{
    int64_t code;
    bool done;
    bool ok = order_result(op, result, &code, &done);
    if (!ok || done)
        return ok;
    int64_t failed = op->failed_line;
    int64_t available = value_int(result, 0, 2);
    if (code == STOCK_CONFLICT && failed < 0) {
        result_conflict(op, "order", op->id);
        return true;
    }
    if (failed < 0)
        return false;
    stock_id hold = op->lines[failed].line_id;
    if (code == STOCK_NOT_FOUND)
        result_hold_not_found(op, hold);
    else if (code == STOCK_EXPIRED)
        result_hold_expired(op, hold);
    else if (code == STOCK_CLOSED)
        result_hold_closed(op, hold, (stock_hold_state)available);
    else if (code == STOCK_EXCEEDS)
        result_hold_exceeds(op, hold, available);
    else
        return false;
    return true;
}

static bool complete_hold_get(stock_op *op, const PGresult *result)
{
    if (PQntuples(result) != 1 || PQnfields(result) != 7)
        return false;
    if (PQgetisnull(result, 0, 0)) {
        result_hold_not_found(op, op->id);
        return true;
    }
    stock_hold_info *info = &op->info.hold_info;
    value_text(result, 0, 0, info->sku);
    value_text(result, 0, 1, info->order_id);
    info->state = (stock_hold_state)value_int(result, 0, 2);
    info->qty = value_int(result, 0, 3);
    info->confirmed = value_int(result, 0, 4);
    info->time_us = value_int(result, 0, 5);
    info->deadline_us = value_int(result, 0, 6);
    return info->state >= STOCK_HOLD_HELD && info->state <= STOCK_HOLD_EXPIRED &&
           info->qty >= 1 && info->confirmed >= 0 && info->confirmed <= info->qty;
}

static bool complete_op(stock_op *op, const PGresult *result)
{
    switch (op->type) {
    case STOCK_OP_ORDER:
        return complete_order(op, result);
    case STOCK_OP_CONFIRM_ORDER:
        return complete_confirm_order(op, result);
    case STOCK_OP_HOLD_GET:
        return complete_hold_get(op, result);
    case STOCK_OP_HOLD:
    case STOCK_OP_CONFIRM:
    case STOCK_OP_RELEASE:
        if (PQntuples(result) != 1 || PQnfields(result) != 2)
            return false;
        return complete_hold_simple(op, value_int(result, 0, 0), value_int(result, 0, 1));
    case STOCK_OP_GET:
        return complete_get(op, result);
    case STOCK_OP_LINE:
        return complete_line(op, result);
    default:
        if (PQntuples(result) != 1 || PQnfields(result) != 2)
            return false;
        return complete_simple(op, value_int(result, 0, 0), value_int(result, 0, 1));
    }
}

bool pg_plan_complete(pg_plan *plan, uint32_t i, const PGresult *result)
{
    assert(i < plan->step_count);
    const pg_step *step = &plan->steps[i];
    if (step->kind == PG_STEP_TOKEN)
        return PQresultStatus(result) == PGRES_COMMAND_OK;
    if (PQresultStatus(result) != PGRES_TUPLES_OK)
        return false;
    if (step->kind == PG_STEP_SWEEP)
        return PQntuples(result) == 1;
    if (step->kind == PG_STEP_OP)
        return complete_op(plan->members[step->first], result);
    if (PQntuples(result) != (int)step->count || PQnfields(result) != 2)
        return false;
    for (uint32_t k = 0; k < step->count; k++) {
        stock_op *op = plan->members[step->first + k];
        assert(op->type == STOCK_OP_DEDUCT);
        if (!complete_simple(op, value_int(result, (int)k, 0), value_int(result, (int)k, 1)))
            return false;
    }
    return true;
}
