/*
 * test_stockbench_workload.c -- unit tests of stockbench's workloads
 * (tools/stockbench/workload.c and checker.c, compiled into this test since
 * unit tests do not link tools/): every generated op passes the library's
 * validation, ids are unique, the mixed workload keeps its proportions, and
 * results fed back land in the ledger (a wrong replay is caught).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../tools/stockbench/checker.c"
#include "../../tools/stockbench/workload.c"

#define GENERATED_OPS 20000

typedef struct fixture {
    checker *ledger;
    workload *load;
    stock_op op;
    workload_item item;
} fixture;

static fixture *make_fixture(workload_kind kind)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    workload_config config = {.kind = kind, .replay_percent = -1, .seed = 7};
    f->ledger = checker_create(workload_sku_count(&config), stderr);
    f->load = workload_create(&config, f->ledger);
    assert_non_null(f->load);
    return f;
}

static void free_fixture(fixture *f)
{
    workload_destroy(f->load);
    checker_destroy(f->ledger);
    free(f);
}

/* Answers the fixture's op as a healthy store with ample stock would:
 * replays with the original result, refunds as used up (EXCEEDS). */
static void answer(fixture *f, int64_t available)
{
    stock_op *op = &f->op;
    op->code = STOCK_OK;
    op->available = available;
    for (uint32_t i = 0; i < op->line_count; i++)
        op->lines[i].available = available;
    op->info.sku_info.available = available;
    if (f->item.kind == WORKLOAD_OP_REPLAY) {
        op->code = STOCK_REPLAY;
        op->available = f->item.original_available;
    } else if (f->item.kind == WORKLOAD_OP_REFUND) {
        op->code = STOCK_EXCEEDS;
    }
}

static void test_every_op_is_valid(void **unused)
{
    (void)unused;
    for (int kind = 0; kind < WORKLOAD_KIND_COUNT; kind++) {
        fixture *f = make_fixture((workload_kind)kind);
        for (int i = 0; i < GENERATED_OPS; i++) {
            workload_next(f->load, &f->op, &f->item);
            stock_op copy = f->op;
            if (stock_validate(&copy) != STOCK_OK)
                fail_msg("%s op %d invalid: %s",
                         workload_kind_name((workload_kind)kind), i, copy.message);
            answer(f, GENERATED_OPS - i);
            workload_complete(f->load, &f->op, &f->item);
        }
        assert_int_equal(checker_failures(f->ledger), 0);
        free_fixture(f);
    }
}

/* The hot workload never repeats a line id; the SKU and prefix are the
 * run's own. */
static void test_hot_ids_unique(void **unused)
{
    (void)unused;
    fixture *f = make_fixture(WORKLOAD_HOT);
    char previous[WORKLOAD_NAME_MAX] = "";
    const char *prefix = workload_prefix(f->load);
    assert_int_equal(strncmp(prefix, "sb", 2), 0);
    for (int i = 0; i < 1000; i++) {
        workload_next(f->load, &f->op, &f->item);
        assert_int_equal(f->op.type, STOCK_OP_DEDUCT);
        assert_int_equal(strncmp(f->op.id.ptr, prefix, strlen(prefix)), 0);
        assert_string_not_equal(f->item.id, previous);
        snprintf(previous, sizeof previous, "%s", f->item.id);
    }
    assert_string_equal(workload_sku_name(f->load, 0),
                        strcat(strcpy(previous, prefix), "S0"));
    free_fixture(f);
}

/* Mixed: about 90% deductions (replays included), 5% refunds, 5% reads,
 * and acknowledged deductions, refunds and orders reach the ledger. */
static void test_mixed_proportions_and_ledger(void **unused)
{
    (void)unused;
    fixture *f = make_fixture(WORKLOAD_MIXED);
    for (int i = 0; i < GENERATED_OPS; i++) {
        workload_next(f->load, &f->op, &f->item);
        answer(f, 1000);
        workload_complete(f->load, &f->op, &f->item);
    }
    double deducts = (double)(workload_count(f->load, WORKLOAD_OP_DEDUCT) +
                              workload_count(f->load, WORKLOAD_OP_REPLAY));
    double refunds = (double)workload_count(f->load, WORKLOAD_OP_REFUND);
    double reads = (double)workload_count(f->load, WORKLOAD_OP_READ);
    assert_true(deducts / GENERATED_OPS > 0.88 && deducts / GENERATED_OPS < 0.92);
    assert_true(refunds / GENERATED_OPS > 0.04 && refunds / GENERATED_OPS < 0.06);
    assert_true(reads / GENERATED_OPS > 0.04 && reads / GENERATED_OPS < 0.06);
    assert_true(workload_count(f->load, WORKLOAD_OP_REPLAY) > 0);
    assert_int_equal(checker_failures(f->ledger), 0);
    assert_true(checker_total_deducted(f->ledger) >=
                (int64_t)workload_count(f->load, WORKLOAD_OP_DEDUCT));
    free_fixture(f);
}

/* A replay answered with another available than the original is an I4
 * failure; a refund acknowledged past the line's qty is an I5 failure. */
static void test_wrong_replay_and_refund_caught(void **unused)
{
    (void)unused;
    fixture *f = make_fixture(WORKLOAD_MIXED);
    while (f->load->ring_filled == 0) {
        workload_next(f->load, &f->op, &f->item);
        answer(f, 1000);
        workload_complete(f->load, &f->op, &f->item);
    }
    next_replay(f->load, &f->op, &f->item);
    f->op.code = STOCK_REPLAY;
    f->op.available = f->item.original_available + 1;
    workload_complete(f->load, &f->op, &f->item);
    assert_int_equal(checker_failures(f->ledger), 1);
    int64_t qty = f->load->ring[0].qty;
    for (int64_t i = 0; i <= qty; i++) {
        next_refund(f->load, &f->op, &f->item);
        f->item.ring_index = 0;
        f->item.line_seq = f->load->ring[0].seq;
        f->op.code = STOCK_OK;
        workload_complete(f->load, &f->op, &f->item);
    }
    assert_int_equal(checker_failures(f->ledger), 2);
    free_fixture(f);
}

/* Sellout: once the answered attempts reach the stock, the SKU must end
 * empty. */
static void test_sellout_expects_empty(void **unused)
{
    (void)unused;
    fixture *f = make_fixture(WORKLOAD_SELLOUT);
    assert_int_equal(workload_default_requests(WORKLOAD_SELLOUT), 200000);
    assert_int_equal(workload_initial_stock(&f->load->config), 10000);
    for (int i = 0; i < 10000; i++) {
        workload_next(f->load, &f->op, &f->item);
        f->op.code = i % 2 ? STOCK_OK : STOCK_INSUFFICIENT;
        workload_complete(f->load, &f->op, &f->item);
    }
    workload_finish(f->load);
    assert_true(f->ledger->skus[0].expect_empty);
    free_fixture(f);
}

/* An op cut off by a broken connection is retried with the same ids (also
 * after being moved and rebound); a REPLAY to the retry counts as the
 * deduction, once; reads are never retried. */
static void test_retry_after_unknown_outcome(void **unused)
{
    (void)unused;
    fixture *f = make_fixture(WORKLOAD_CART);
    workload_next(f->load, &f->op, &f->item);
    f->op.code = STOCK_UNAVAILABLE;
    assert_true(workload_retry(f->load, &f->op, &f->item));
    assert_int_equal(f->item.attempts, 1);
    stock_op moved_op = f->op;
    workload_item *moved_item = malloc(sizeof *moved_item);
    assert_non_null(moved_item);
    *moved_item = f->item;
    memset(&f->item, 0, sizeof f->item);
    workload_rebind(&moved_op, moved_item);
    assert_ptr_equal(moved_op.id.ptr, moved_item->id);
    assert_ptr_equal(moved_op.lines, moved_item->lines);
    assert_ptr_equal(moved_op.lines[4].line_id.ptr, moved_item->line_ids[4]);
    stock_op copy = moved_op;
    assert_int_equal(stock_validate(&copy), STOCK_OK);
    moved_op.code = STOCK_REPLAY;
    workload_complete(f->load, &moved_op, moved_item);
    assert_int_equal(checker_total_deducted(f->ledger), WORKLOAD_CART_LINES);
    assert_int_equal(checker_failures(f->ledger), 0);
    assert_int_equal(workload_retries(f->load), 1);
    /* Past the attempt limit the outcome stays unknown: no more retries. */
    moved_item->attempts = WORKLOAD_ATTEMPTS_MAX - 1;
    moved_op.code = STOCK_UNAVAILABLE;
    assert_false(workload_retry(f->load, &moved_op, moved_item));
    free(moved_item);
    free_fixture(f);

    f = make_fixture(WORKLOAD_MIXED);
    do
        workload_next(f->load, &f->op, &f->item);
    while (f->item.kind != WORKLOAD_OP_READ);
    f->op.code = STOCK_UNAVAILABLE;
    assert_false(workload_retry(f->load, &f->op, &f->item));
    free_fixture(f);
}

/* A store that lost the second acknowledged line and tells another
 * available-after for the third: the first line is fine. */
static int fake_lines(void *context, stock_op *ops, size_t count,
                      char *message, size_t message_size)
{
    const char *sku = context;
    (void)message;
    (void)message_size;
    assert_int_equal(count, 3);
    for (size_t i = 0; i < count; i++) {
        assert_int_equal(ops[i].type, STOCK_OP_LINE);
        ops[i].code = i == 1 ? STOCK_NOT_FOUND : STOCK_OK;
        snprintf(ops[i].info.line_info.sku, sizeof ops[i].info.line_info.sku,
                 "%s", sku);
        ops[i].info.line_info.qty = 1;
        ops[i].info.line_info.available_after = i == 2 ? 96 : 99 - (int64_t)i;
    }
    return 0;
}

static void test_lines_read_back(void **unused)
{
    (void)unused;
    fixture *f = make_fixture(WORKLOAD_HOT);
    for (int64_t i = 0; i < 3; i++) {
        workload_next(f->load, &f->op, &f->item);
        f->op.code = STOCK_OK;
        f->op.available = 99 - i;
        workload_complete(f->load, &f->op, &f->item);
    }
    char sku[WORKLOAD_NAME_MAX];
    snprintf(sku, sizeof sku, "%s", workload_sku_name(f->load, 0));
    assert_int_equal(workload_verify_lines(f->load, fake_lines, sku), 3);
    assert_int_equal(checker_failures(f->ledger), 2);
    free_fixture(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_is_valid),
        cmocka_unit_test(test_hot_ids_unique),
        cmocka_unit_test(test_mixed_proportions_and_ledger),
        cmocka_unit_test(test_wrong_replay_and_refund_caught),
        cmocka_unit_test(test_sellout_expects_empty),
        cmocka_unit_test(test_retry_after_unknown_outcome),
        cmocka_unit_test(test_lines_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
