/*
 * batches.c -- the batch interface: every op of a batch gets its own result,
 * in order, valid and invalid mixed; later ops see earlier ones' effects;
 * batches submitted from one thread complete once each, in order.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "conformance.h"

static stock_op op_set(const char *sku, int64_t level)
{
    return (stock_op){.type = STOCK_OP_SET, .sku = stock_id_from_cstr(sku),
                      .amount = level};
}

static stock_op op_deduct(const char *line_id, const char *sku, int64_t qty)
{
    return (stock_op){.type = STOCK_OP_DEDUCT, .id = stock_id_from_cstr(line_id),
                      .sku = stock_id_from_cstr(sku), .amount = qty};
}

static stock_op op_get(const char *sku)
{
    return (stock_op){.type = STOCK_OP_GET, .sku = stock_id_from_cstr(sku)};
}

/* Expects a code and, for outputs that carry one, an available. */
static void expect_op(const stock_op *op, stock_code code, int64_t available)
{
    assert_code(op->code, code, op->message);
    if (!stock_code_succeeded(code))
        assert_true(strlen(op->message) > 0);
    if (code != STOCK_INVALID && code != STOCK_NOT_FOUND)
        assert_i64(op->available, available);
}

static void mixed_batch_gives_each_op_its_own_result(void **state)
{
    (void)state;
    const char *sku = conf_id("sku");
    const char *line1 = conf_id("line"), *line3 = conf_id("line");
    int64_t expect_three = 3;
    stock_order_line order_lines[1] = {conf_line(line3, sku, 8)};
    stock_op ops[] = {
        op_set(sku, 10),
        op_deduct(conf_id("line"), sku, 0),
        op_deduct(line1, sku, 3),
        op_get(sku),
        op_deduct(line1, sku, 3),
        {.type = STOCK_OP_ADD, .sku = stock_id_from_cstr(sku), .amount = 0},
        op_deduct(conf_id("line"), sku, 8),
        {.type = STOCK_OP_REFUND, .id = stock_id_from_cstr(conf_id("refund")),
         .line = stock_id_from_cstr(line1), .amount = 1},
        {.type = STOCK_OP_LINE, .line = stock_id_from_cstr(line1)},
        {.type = STOCK_OP_ORDER, .id = stock_id_from_cstr(conf_id("order")),
         .lines = order_lines, .line_count = 1},
        op_deduct(conf_id("line"), conf_id("sku"), 1),
        op_get(sku),
        {.type = STOCK_OP_SET, .sku = stock_id_from_cstr(sku), .amount = 5,
         .has_expect = true, .expect = expect_three},
        {.type = (stock_op_type)0},
    };
    size_t count = sizeof ops / sizeof ops[0];
    assert_code(stock_execute(conf_store, ops, count), STOCK_OK, "execute");
    expect_op(&ops[0], STOCK_OK, 10);
    expect_op(&ops[1], STOCK_INVALID, 0);
    expect_op(&ops[2], STOCK_OK, 7);
    assert_code(ops[3].code, STOCK_OK, ops[3].message);
    assert_i64(ops[3].info.sku_info.available, 7);
    assert_i64(ops[3].info.sku_info.deducted, 3);
    expect_op(&ops[4], STOCK_REPLAY, 7);
    expect_op(&ops[5], STOCK_INVALID, 0);
    expect_op(&ops[6], STOCK_INSUFFICIENT, 7);
    expect_op(&ops[7], STOCK_OK, 8);
    assert_code(ops[8].code, STOCK_OK, ops[8].message);
    assert_i64(ops[8].info.line_info.refunded, 1);
    assert_i64(ops[8].info.line_info.available_after, 7);
    assert_code(ops[9].code, STOCK_OK, ops[9].message);
    assert_i64(order_lines[0].available, 0);
    expect_op(&ops[10], STOCK_NOT_FOUND, 0);
    assert_code(ops[11].code, STOCK_OK, ops[11].message);
    stock_sku_info totals = ops[11].info.sku_info;
    assert_i64(totals.available, 0);
    assert_i64(totals.adjusted, 10);
    assert_i64(totals.deducted, 11);
    assert_i64(totals.refunded, 1);
    expect_op(&ops[12], STOCK_MISMATCH, 0);
    expect_op(&ops[13], STOCK_INVALID, 0);
}

static void batch_of_invalid_ops_completes(void **state)
{
    (void)state;
    stock_op ops[3] = {op_deduct("", "x", 1), op_set("has space", 1),
                       op_deduct(conf_id("line"), conf_id("sku"), -1)};
    assert_code(stock_execute(conf_store, ops, 3), STOCK_OK, "execute");
    for (int i = 0; i < 3; i++)
        expect_op(&ops[i], STOCK_INVALID, 0);
}

static void batch_size_is_checked(void **state)
{
    (void)state;
    stock_op op = op_get(conf_id("sku"));
    assert_code(stock_execute(conf_store, &op, 0), STOCK_INVALID, "count 0");
    assert_code(stock_execute(conf_store, &op, STOCK_BATCH_MAX + 1),
                STOCK_INVALID, "count over STOCK_BATCH_MAX");
}

/* One big batch sells out a SKU: exactly its stock succeeds, in order. */
#define BIG_BATCH 10000
#define BIG_STOCK 4000

static void one_big_batch_sells_out_in_order(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, BIG_STOCK);
    stock_op *ops = calloc(BIG_BATCH, sizeof *ops);
    char (*ids)[CONF_ID_SIZE] = calloc(BIG_BATCH, CONF_ID_SIZE);
    assert_non_null(ops);
    assert_non_null(ids);
    const char *base = conf_id("big");
    for (int i = 0; i < BIG_BATCH; i++) {
        snprintf(ids[i], CONF_ID_SIZE, "%s.%d", base, i);
        ops[i] = op_deduct(ids[i], sku.id, 1);
    }
    assert_code(stock_execute(conf_store, ops, BIG_BATCH), STOCK_OK, "execute");
    for (int i = 0; i < BIG_BATCH; i++) {
        if (i < BIG_STOCK)
            expect_op(&ops[i], STOCK_OK, BIG_STOCK - 1 - i);
        else
            expect_op(&ops[i], STOCK_INSUFFICIENT, 0);
    }
    free(ops);
    free(ids);
    sku.deducted = BIG_STOCK;
    conf_check_sku(&sku);
}

/* A batch of deductions answers exact levels at every magnitude: below
 * 10^15, at it, past 2^53 (where a double no longer holds every integer) and
 * at the top. The redis backend computes small totals as Lua doubles and
 * larger ones as two limbs; an off-by-one there shows as a wrong level. */
static void batch_of_deductions_is_exact_at_every_magnitude(void **state)
{
    (void)state;
    static const int64_t levels[] = {999999999999999LL, 1000000000000000LL,
                                     9007199254740993LL, INT64_MAX};
    static const int64_t qtys[] = {STOCK_QTY_MAX, 1, 2, 3};
    enum { DEDUCTIONS = sizeof qtys / sizeof qtys[0] };
    for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
        conf_sku sku;
        conf_new_sku(&sku, levels[l]);
        char ids[DEDUCTIONS][CONF_ID_SIZE];
        stock_op ops[DEDUCTIONS];
        int64_t available = levels[l];
        for (int i = 0; i < DEDUCTIONS; i++) {
            snprintf(ids[i], CONF_ID_SIZE, "%s", conf_id("line"));
            ops[i] = op_deduct(ids[i], sku.id, qtys[i]);
        }
        assert_code(stock_execute(conf_store, ops, DEDUCTIONS), STOCK_OK, "execute");
        for (int i = 0; i < DEDUCTIONS; i++) {
            available -= qtys[i];
            expect_op(&ops[i], STOCK_OK, available);
            sku.deducted += qtys[i];
        }
        conf_check_sku(&sku);
    }
}

/* Batches in flight at once from this thread, and their completions. */
#define ASYNC_BATCHES 32
#define ASYNC_OPS 4

typedef struct async_log {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int order[ASYNC_BATCHES];
    int completed;
    int calls[ASYNC_BATCHES];
} async_log;

typedef struct async_slot {
    stock_batch batch;
    stock_op ops[ASYNC_OPS];
    char ids[ASYNC_OPS][CONF_ID_SIZE];
    int index;
    async_log *log;
} async_slot;

static void async_done(stock_batch *batch)
{
    async_slot *slot = batch->user;
    async_log *log = slot->log;
    pthread_mutex_lock(&log->mutex);
    if (log->completed < ASYNC_BATCHES)
        log->order[log->completed] = slot->index;
    log->completed++;
    log->calls[slot->index]++;
    pthread_cond_signal(&log->cond);
    pthread_mutex_unlock(&log->mutex);
}

static void submitted_batches_complete_once_in_order(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 1000);
    async_slot *slots = calloc(ASYNC_BATCHES, sizeof *slots);
    assert_non_null(slots);
    async_log log = {.mutex = PTHREAD_MUTEX_INITIALIZER,
                     .cond = PTHREAD_COND_INITIALIZER};
    for (int b = 0; b < ASYNC_BATCHES; b++) {
        async_slot *slot = &slots[b];
        for (int i = 0; i < ASYNC_OPS; i++) {
            snprintf(slot->ids[i], CONF_ID_SIZE, "%s", conf_id("line"));
            slot->ops[i] = op_deduct(slot->ids[i], sku.id, 1);
        }
        slot->index = b;
        slot->log = &log;
        slot->batch = (stock_batch){.ops = slot->ops, .count = ASYNC_OPS,
                                    .done = async_done, .user = slot};
        stock_submit(conf_store, &slot->batch);
    }
    pthread_mutex_lock(&log.mutex);
    while (log.completed < ASYNC_BATCHES)
        pthread_cond_wait(&log.cond, &log.mutex);
    pthread_mutex_unlock(&log.mutex);
    for (int b = 0; b < ASYNC_BATCHES; b++) {
        assert_int_equal(log.order[b], b);
        assert_int_equal(log.calls[b], 1);
        for (int i = 0; i < ASYNC_OPS; i++)
            expect_op(&slots[b].ops[i], STOCK_OK, 999 - (b * ASYNC_OPS + i));
    }
    free(slots);
    sku.deducted = ASYNC_BATCHES * ASYNC_OPS;
    conf_check_sku(&sku);
}

int conf_run_batches(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(mixed_batch_gives_each_op_its_own_result),
        cmocka_unit_test(batch_of_invalid_ops_completes),
        cmocka_unit_test(batch_size_is_checked),
        cmocka_unit_test(one_big_batch_sells_out_in_order),
        cmocka_unit_test(batch_of_deductions_is_exact_at_every_magnitude),
        cmocka_unit_test(submitted_batches_complete_once_in_order),
    };
    return cmocka_run_group_tests_name("batches", tests, NULL, NULL);
}
