/*
 * test_hot.c -- unit tests of stockd's hot-SKU rankings (src/server/hot.c):
 * what counts as an operation and as a refusal, the sliding window (a
 * sub-window ages out after HOT_WINDOW_S), and the bounds of the
 * Space-Saving summary: a hot SKU among 100,000 cold ones is ranked first
 * with a count never under the truth, and a ranking never has more than
 * HOT_TOP SKUs, also when a SKU's ops fall on both sides of a sub-window's
 * edge and the later sub-window's summary evicts it; a batch counts as its
 * ops would one by one (hot.c adds a run of one SKU at once).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/hot.h"

#define T0_MS 1000000   /* a monotonic time well past the clock's start */

static hot h;
static hot one_by_one;   /* test_batch_counts_as_its_ops */

static void done(stock_batch *batch)
{
    (void)batch;
}

/* Counts one op on sku with code at now_ms. */
static void count(stock_op_type type, const char *sku, stock_code code, uint64_t now_ms)
{
    stock_op op = {.type = type, .sku = stock_id_from_cstr(sku), .code = code, .failed_line = -1};
    stock_batch batch = {.ops = &op, .count = 1, .done = done};
    hot_count_batch(&h, &batch, now_ms);
}

static int setup(void **state)
{
    (void)state;
    memset(&h, 0, sizeof h);
    return 0;
}

static void test_operations_and_refusals(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++)
        count(STOCK_OP_DEDUCT, "A", STOCK_OK, T0_MS);
    for (int i = 0; i < 3; i++)
        count(STOCK_OP_DEDUCT, "B", STOCK_INSUFFICIENT, T0_MS);
    count(STOCK_OP_GET, "B", STOCK_NOT_FOUND, T0_MS);
    count(STOCK_OP_DEDUCT, "C", STOCK_INVALID, T0_MS);   /* bad input: not counted */
    count(STOCK_OP_DEDUCT, "D", STOCK_IO, T0_MS);        /* the store failed: not counted */
    hot_item items[HOT_TOP];
    assert_int_equal(hot_top(&h, HOT_BY_OPERATIONS, T0_MS, items), 2);
    assert_string_equal(items[0].sku, "A");
    assert_int_equal(items[0].count, 5);
    assert_string_equal(items[1].sku, "B");
    assert_int_equal(items[1].count, 4);
    assert_int_equal(hot_top(&h, HOT_BY_REFUSALS, T0_MS, items), 1);
    assert_string_equal(items[0].sku, "B");
    assert_int_equal(items[0].count, 4);
}

static void test_order_lines(void **state)
{
    (void)state;
    stock_order_line lines[2] = {{.line_id = stock_id_from_cstr("L1"), .sku = stock_id_from_cstr("X"), .qty = 1},
                                 {.line_id = stock_id_from_cstr("L2"), .sku = stock_id_from_cstr("Y"), .qty = 1}};
    stock_op op = {.type = STOCK_OP_ORDER, .id = stock_id_from_cstr("O"), .lines = lines, .line_count = 2,
                   .code = STOCK_INSUFFICIENT, .failed_line = 1};
    stock_batch batch = {.ops = &op, .count = 1, .done = done};
    hot_count_batch(&h, &batch, T0_MS);
    hot_item items[HOT_TOP];
    assert_int_equal(hot_top(&h, HOT_BY_OPERATIONS, T0_MS, items), 2);   /* both lines */
    assert_int_equal(hot_top(&h, HOT_BY_REFUSALS, T0_MS, items), 1);     /* the failed line's SKU */
    assert_string_equal(items[0].sku, "Y");
}

static void test_window_slides(void **state)
{
    (void)state;
    count(STOCK_OP_DEDUCT, "OLD", STOCK_OK, T0_MS);
    count(STOCK_OP_DEDUCT, "OLD", STOCK_OK, T0_MS);
    uint64_t later = T0_MS + (HOT_WINDOW_S / 2) * 1000;
    count(STOCK_OP_DEDUCT, "NEW", STOCK_OK, later);
    hot_item items[HOT_TOP];
    assert_int_equal(hot_top(&h, HOT_BY_OPERATIONS, later, items), 2);
    assert_string_equal(items[0].sku, "OLD");
    /* A window later OLD's sub-window has aged out; NEW's has not. */
    uint64_t end = T0_MS + HOT_WINDOW_S * 1000 + 1000;
    assert_int_equal(hot_top(&h, HOT_BY_OPERATIONS, end, items), 1);
    assert_string_equal(items[0].sku, "NEW");
    assert_int_equal(hot_top(&h, HOT_BY_OPERATIONS, end + HOT_WINDOW_S * 1000, items), 0);
    /* Counting over several sub-windows sums them. */
    for (int s = 0; s < 3; s++)
        count(STOCK_OP_DEDUCT, "SPREAD", STOCK_OK, end + (uint64_t)s * (HOT_WINDOW_S * 1000 / HOT_SLOTS));
    assert_int_equal(hot_top(&h, HOT_BY_OPERATIONS, end + 2 * (HOT_WINDOW_S * 1000 / HOT_SLOTS), items), 2);
    assert_string_equal(items[0].sku, "SPREAD");
    assert_int_equal(items[0].count, 3);
}

/* 100,000 SKUs once each, and one SKU 5,000 times among the second half
 * of them (it arrives when every counter is taken): the summary keeps
 * HOT_TRACKED counters, yet the hot SKU is first, its count is not under
 * 5,000 and over it by at most its error. */
static void test_bounded_summary_finds_the_hot_sku(void **state)
{
    (void)state;
    char sku[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(sku, sizeof sku, "cold-%d", i);
        count(STOCK_OP_DEDUCT, sku, STOCK_OK, T0_MS);
        if (i >= 50000 && i % 10 == 0)
            count(STOCK_OP_DEDUCT, "hot", STOCK_INSUFFICIENT, T0_MS);
    }
    hot_item items[HOT_TOP];
    assert_int_equal(hot_top(&h, HOT_BY_OPERATIONS, T0_MS, items), HOT_TOP);
    assert_string_equal(items[0].sku, "hot");
    assert_true(items[0].count >= 5000);
    assert_true(items[0].count - items[0].error <= 5000);
    assert_int_equal(hot_top(&h, HOT_BY_REFUSALS, T0_MS, items), 1);
    assert_int_equal(items[0].count, 5000);
    assert_int_equal(items[0].error, 0);
}

/* The flash sale of tests/suites/42-hot-skus.sh cut by a sub-window's
 * edge: WARM takes 288 ops in one sub-window and 13 in the next, where
 * 5,000 cold SKUs then evict it. Its count over the window must still not
 * be under its 301 ops (a SKU absent from a full summary may have had up to
 * that summary's smallest count there), nor over them by more than its
 * error, and it must stay above every cold SKU. */
static void test_evicted_in_one_sub_window(void **state)
{
    (void)state;
    uint64_t edge = (T0_MS / (HOT_WINDOW_S * 1000 / HOT_SLOTS) + 1) * (HOT_WINDOW_S * 1000 / HOT_SLOTS);
    for (int i = 0; i < 288; i++)
        count(STOCK_OP_DEDUCT, "WARM", STOCK_OK, edge - 1);
    for (int i = 0; i < 13; i++)
        count(STOCK_OP_DEDUCT, "WARM", STOCK_OK, edge);
    char sku[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(sku, sizeof sku, "cold-%d", i);
        count(STOCK_OP_DEDUCT, sku, STOCK_OK, edge);
    }
    hot_item items[HOT_TOP];
    assert_int_equal(hot_top(&h, HOT_BY_OPERATIONS, edge, items), HOT_TOP);
    assert_string_equal(items[0].sku, "WARM");
    assert_true(items[0].count >= 301);
    assert_true(items[0].count - items[0].error <= 301);
    for (size_t i = 1; i < HOT_TOP; i++) {
        assert_true(items[i].count >= 1);
        assert_true(items[i].count - items[i].error <= 1);
    }
}

/* The ops of one batch, where runs of one SKU alternate with others,
 * refusals and ops not counted, on a summary whose every counter is taken
 * (so that a newcomer evicts and inherits): both rankings, counts and
 * errors as when each op is counted in a batch of its own. */
static void test_batch_counts_as_its_ops(void **state)
{
    (void)state;
    char sku[32];
    for (int i = 0; i < HOT_TRACKED; i++) {
        snprintf(sku, sizeof sku, "cold-%d", i);
        for (int times = 0; times <= i % 3; times++)
            count(STOCK_OP_DEDUCT, sku, STOCK_OK, T0_MS);
    }
    memcpy(&one_by_one, &h, sizeof h);
    static const struct { stock_op_type type; const char *sku; stock_code code; } plan[] = {
        {STOCK_OP_DEDUCT, "A", STOCK_OK}, {STOCK_OP_DEDUCT, "A", STOCK_OK},
        {STOCK_OP_DEDUCT, "A", STOCK_INSUFFICIENT}, {STOCK_OP_DEDUCT, "A", STOCK_OK},
        {STOCK_OP_GET, "B", STOCK_NOT_FOUND}, {STOCK_OP_DEDUCT, "B", STOCK_INVALID},
        {STOCK_OP_DEDUCT, "B", STOCK_OK}, {STOCK_OP_REFUND, "B", STOCK_OK},
        {STOCK_OP_DEDUCT, "A", STOCK_INSUFFICIENT}, {STOCK_OP_DEDUCT, "A", STOCK_IO},
        {STOCK_OP_DEDUCT, "C", STOCK_OK}, {STOCK_OP_DEDUCT, "AA", STOCK_OK},
        {STOCK_OP_DEDUCT, "A", STOCK_OK}, {STOCK_OP_DEDUCT, "C", STOCK_OK},
        {STOCK_OP_DEDUCT, "C", STOCK_OK},
    };
    enum { PLANNED = sizeof plan / sizeof plan[0] };
    stock_op ops[PLANNED];
    for (size_t i = 0; i < PLANNED; i++)
        ops[i] = (stock_op){.type = plan[i].type, .sku = stock_id_from_cstr(plan[i].sku),
                            .code = plan[i].code, .failed_line = -1};
    stock_batch batch = {.ops = ops, .count = PLANNED, .done = done};
    hot_count_batch(&h, &batch, T0_MS);
    for (size_t i = 0; i < PLANNED; i++) {
        stock_batch single = {.ops = &ops[i], .count = 1, .done = done};
        hot_count_batch(&one_by_one, &single, T0_MS);
    }
    for (int rank = 0; rank < HOT_RANKS; rank++) {
        hot_item batched[HOT_TOP], single[HOT_TOP];
        size_t top = hot_top(&h, (hot_rank)rank, T0_MS, batched);
        assert_int_equal(top, hot_top(&one_by_one, (hot_rank)rank, T0_MS, single));
        assert_true(top >= 1);
        for (size_t i = 0; i < top; i++) {
            assert_string_equal(batched[i].sku, single[i].sku);
            assert_int_equal(batched[i].count, single[i].count);
            assert_int_equal(batched[i].error, single[i].error);
        }
    }
    hot_item items[HOT_TOP];
    assert_true(hot_top(&h, HOT_BY_REFUSALS, T0_MS, items) >= 2);
    assert_string_equal(items[0].sku, "A");
    assert_int_equal(items[0].count, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_operations_and_refusals, setup),
        cmocka_unit_test_setup(test_order_lines, setup),
        cmocka_unit_test_setup(test_window_slides, setup),
        cmocka_unit_test_setup(test_bounded_summary_finds_the_hot_sku, setup),
        cmocka_unit_test_setup(test_evicted_in_one_sub_window, setup),
        cmocka_unit_test_setup(test_batch_counts_as_its_ops, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
