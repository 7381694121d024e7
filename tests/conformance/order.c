/*
 * order.c -- multi-line orders (carts): all lines or none (I3), a SKU on
 * several lines checked against the sum, the order in which failures are
 * found and which line they name, replay and conflict rules.
 */
#include <stdio.h>

#include "conformance.h"

/* Runs an order as a one-op batch, so that op->available and
 * op->failed_line can be read. */
static stock_code run_order(stock_op *op, const char *order_id,
                            stock_order_line *lines, uint32_t count)
{
    memset(op, 0, sizeof *op);
    op->type = STOCK_OP_ORDER;
    op->id = stock_id_from_cstr(order_id);
    op->lines = lines;
    op->line_count = count;
    return conf_run(op);
}

static void order_takes_every_line(void **state)
{
    (void)state;
    conf_sku a, b;
    conf_new_sku(&a, 10);
    conf_new_sku(&b, 5);
    const char *order_id = conf_id("order");
    stock_order_line lines[3] = {conf_line(conf_id("line"), a.id, 3),
                                 conf_line(conf_id("line"), b.id, 2),
                                 conf_line(conf_id("line"), a.id, 4)};
    stock_op op;
    int64_t before_us = conf_now_us();
    assert_code(run_order(&op, order_id, lines, 3), STOCK_OK, op.message);
    int64_t after_us = conf_now_us();
    assert_int_equal(op.failed_line, -1);
    assert_i64(lines[0].available, 7);
    assert_i64(lines[1].available, 3);
    assert_i64(lines[2].available, 3);
    a.deducted = 7;
    b.deducted = 2;
    conf_check_sku(&a);
    conf_check_sku(&b);
    const int64_t afters[3] = {7, 3, 3};
    for (int i = 0; i < 3; i++) {
        stock_line_info info;
        assert_code(stock_line(conf_store, lines[i].line_id.ptr, &info, NULL), STOCK_OK, "");
        assert_string_equal(info.order_id, order_id);
        assert_string_equal(info.sku, lines[i].sku.ptr);
        assert_i64(info.qty, lines[i].qty);
        assert_i64(info.refunded, 0);
        assert_i64(info.available_after, afters[i]);
        assert_true(info.time_us >= before_us - CONF_CLOCK_SLACK_US &&
                    info.time_us <= after_us + CONF_CLOCK_SLACK_US);
    }
}

static void same_sku_on_two_lines_is_checked_against_the_sum(void **state)
{
    (void)state;
    conf_sku a;
    conf_new_sku(&a, 5);
    stock_order_line lines[2] = {conf_line(conf_id("line"), a.id, 3),
                                 conf_line(conf_id("line"), a.id, 3)};
    stock_op op;
    assert_code(run_order(&op, conf_id("order"), lines, 2), STOCK_INSUFFICIENT,
                op.message);
    assert_i64(op.available, 5);
    assert_int_equal(op.failed_line, 0);
    conf_check_message(op.message, "sku=%s available=5", a.id);
    conf_check_no_line(lines[0].line_id.ptr);
    conf_check_no_line(lines[1].line_id.ptr);
    conf_check_sku(&a);
    lines[1].qty = 2;
    assert_code(run_order(&op, conf_id("order"), lines, 2), STOCK_OK, op.message);
    assert_i64(lines[0].available, 2);
    assert_i64(lines[1].available, 0);
    a.deducted = 5;
    conf_check_sku(&a);
}

static void order_takes_all_lines_or_none(void **state)
{
    (void)state;
    conf_sku a, b;
    conf_new_sku(&a, 10);
    conf_new_sku(&b, 1);
    stock_order_line lines[2] = {conf_line(conf_id("line"), a.id, 3),
                                 conf_line(conf_id("line"), b.id, 2)};
    stock_op op;
    assert_code(run_order(&op, conf_id("order"), lines, 2), STOCK_INSUFFICIENT,
                op.message);
    assert_i64(op.available, 1);
    assert_int_equal(op.failed_line, 1);
    conf_check_message(op.message, "sku=%s available=1", b.id);
    conf_check_no_line(lines[0].line_id.ptr);
    conf_check_sku(&a);
    conf_check_sku(&b);
}

static void sufficiency_is_checked_in_order_of_first_appearance(void **state)
{
    (void)state;
    conf_sku a, b, c;
    conf_new_sku(&a, 1);
    conf_new_sku(&b, 1);
    conf_new_sku(&c, 10);
    stock_order_line lines[4] = {conf_line(conf_id("line"), c.id, 1),
                                 conf_line(conf_id("line"), b.id, 1),
                                 conf_line(conf_id("line"), a.id, 2),
                                 conf_line(conf_id("line"), b.id, 1)};
    stock_op op;
    assert_code(run_order(&op, conf_id("order"), lines, 4), STOCK_INSUFFICIENT,
                op.message);
    assert_int_equal(op.failed_line, 1);
    assert_i64(op.available, 1);
    conf_check_message(op.message, "sku=%s available=1", b.id);
    conf_check_sku(&a);
    conf_check_sku(&b);
    conf_check_sku(&c);
}

static void order_with_a_missing_sku_is_not_found(void **state)
{
    (void)state;
    conf_sku a;
    conf_new_sku(&a, 10);
    const char *missing = conf_id("sku");
    stock_order_line lines[3] = {conf_line(conf_id("line"), a.id, 1),
                                 conf_line(conf_id("line"), missing, 1),
                                 conf_line(conf_id("line"), missing, 1)};
    stock_op op;
    assert_code(run_order(&op, conf_id("order"), lines, 3), STOCK_NOT_FOUND,
                op.message);
    assert_int_equal(op.failed_line, 1);
    conf_check_message(op.message, "sku=%s", missing);
    conf_check_no_line(lines[0].line_id.ptr);
    conf_check_sku(&a);
}

/* Lines are walked in order, each checked for an id conflict and then for
 * its SKU; sufficiency comes only after every line passed both. */
static void first_failure_in_line_order_wins(void **state)
{
    (void)state;
    conf_sku empty;
    conf_new_sku(&empty, 0);
    const char *missing = conf_id("sku");
    const char *used = conf_id("line");
    conf_sku other;
    conf_new_sku(&other, 5);
    assert_code(stock_deduct(conf_store, used, other.id, 1, NULL, NULL), STOCK_OK, "");
    other.deducted = 1;
    stock_op op;
    /* Insufficient line first, missing SKU second: NOT_FOUND wins. */
    stock_order_line first[2] = {conf_line(conf_id("line"), empty.id, 1),
                                 conf_line(conf_id("line"), missing, 1)};
    assert_code(run_order(&op, conf_id("order"), first, 2), STOCK_NOT_FOUND,
                op.message);
    assert_int_equal(op.failed_line, 1);
    /* Missing SKU first, used line id second. */
    stock_order_line second[2] = {conf_line(conf_id("line"), missing, 1),
                                  conf_line(used, other.id, 1)};
    assert_code(run_order(&op, conf_id("order"), second, 2), STOCK_NOT_FOUND,
                op.message);
    assert_int_equal(op.failed_line, 0);
    /* Used line id first, missing SKU second. */
    stock_order_line third[2] = {conf_line(used, other.id, 1),
                                 conf_line(conf_id("line"), missing, 1)};
    assert_code(run_order(&op, conf_id("order"), third, 2), STOCK_CONFLICT,
                op.message);
    assert_int_equal(op.failed_line, 0);
    conf_check_sku(&empty);
    conf_check_sku(&other);
}

static void retry_of_an_order_replays_every_line(void **state)
{
    (void)state;
    conf_sku a, b;
    conf_new_sku(&a, 10);
    conf_new_sku(&b, 10);
    const char *order_id = conf_id("order");
    const char *ids[3] = {conf_id("line"), conf_id("line"), conf_id("line")};
    stock_order_line lines[3] = {conf_line(ids[0], a.id, 3),
                                 conf_line(ids[1], b.id, 2),
                                 conf_line(ids[2], a.id, 1)};
    stock_op op;
    assert_code(run_order(&op, order_id, lines, 3), STOCK_OK, op.message);
    assert_code(stock_deduct(conf_store, conf_id("line"), a.id, 5, NULL, NULL),
                STOCK_OK, "");
    a.deducted = 9;
    b.deducted = 2;
    stock_order_line again[3] = {conf_line(ids[0], a.id, 3),
                                 conf_line(ids[1], b.id, 2),
                                 conf_line(ids[2], a.id, 1)};
    assert_code(run_order(&op, order_id, again, 3), STOCK_REPLAY, op.message);
    assert_int_equal(op.failed_line, -1);
    assert_i64(again[0].available, 7);
    assert_i64(again[1].available, 8);
    assert_i64(again[2].available, 6);
    conf_check_sku(&a);
    conf_check_sku(&b);
    /* Refunds on its lines do not change what a replay answers. */
    assert_code(stock_refund(conf_store, conf_id("refund"), ids[0], 3, NULL, NULL),
                STOCK_OK, "");
    a.refunded = 3;
    int32_t failed_line = -2;
    assert_code(stock_order(conf_store, order_id, again, 3, &failed_line, NULL),
                STOCK_REPLAY, "");
    assert_int_equal(failed_line, -1);
    assert_i64(again[0].available, 7);
    assert_i64(again[2].available, 6);
    conf_check_sku(&a);
}

static void order_id_with_other_lines_conflicts(void **state)
{
    (void)state;
    conf_sku a, b;
    conf_new_sku(&a, 10);
    conf_new_sku(&b, 10);
    const char *order_id = conf_id("order");
    const char *ids[2] = {conf_id("line"), conf_id("line")};
    stock_order_line lines[2] = {conf_line(ids[0], a.id, 3),
                                 conf_line(ids[1], b.id, 2)};
    stock_op op;
    assert_code(run_order(&op, order_id, lines, 2), STOCK_OK, op.message);
    a.deducted = 3;
    b.deducted = 2;
    char prefix[CONF_ID_SIZE + 8];
    snprintf(prefix, sizeof prefix, "order=%s ", order_id);
    const char *fresh = conf_id("line");
    stock_order_line variants[][3] = {
        {conf_line(ids[0], a.id, 3), conf_line(ids[1], b.id, 1)},   /* qty */
        {conf_line(ids[0], a.id, 3), conf_line(ids[1], a.id, 2)},   /* sku */
        {conf_line(ids[0], a.id, 3), conf_line(fresh, b.id, 2)},    /* line id */
        {conf_line(ids[1], b.id, 2), conf_line(ids[0], a.id, 3)},   /* order */
        {conf_line(ids[0], a.id, 3), conf_line(ids[1], b.id, 2),
         conf_line(fresh, b.id, 1)},                                 /* longer */
    };
    const uint32_t counts[] = {2, 2, 2, 2, 3};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        assert_code(run_order(&op, order_id, variants[i], counts[i]),
                    STOCK_CONFLICT, op.message);
        conf_check_message_prefix(op.message, prefix);
    }
    assert_code(run_order(&op, order_id, lines, 1), STOCK_CONFLICT, op.message);
    conf_check_no_line(fresh);
    conf_check_sku(&a);
    conf_check_sku(&b);
}

static void order_reusing_a_line_id_conflicts(void **state)
{
    (void)state;
    conf_sku a;
    conf_new_sku(&a, 10);
    const char *alone = conf_id("line");
    assert_code(stock_deduct(conf_store, alone, a.id, 1, NULL, NULL), STOCK_OK, "");
    const char *in_order = conf_id("line");
    stock_order_line earlier[1] = {conf_line(in_order, a.id, 1)};
    stock_op op;
    assert_code(run_order(&op, conf_id("order"), earlier, 1), STOCK_OK, op.message);
    a.deducted = 2;
    const char *used[2] = {alone, in_order};
    for (int i = 0; i < 2; i++) {
        stock_order_line lines[2] = {conf_line(conf_id("line"), a.id, 1),
                                     conf_line(used[i], a.id, 1)};
        assert_code(run_order(&op, conf_id("order"), lines, 2), STOCK_CONFLICT,
                    op.message);
        assert_int_equal(op.failed_line, 1);
        char prefix[CONF_ID_SIZE + 8];
        snprintf(prefix, sizeof prefix, "line=%s ", used[i]);
        conf_check_message_prefix(op.message, prefix);
        conf_check_no_line(lines[0].line_id.ptr);
    }
    conf_check_sku(&a);
}

static void failed_order_records_nothing(void **state)
{
    (void)state;
    conf_sku a;
    conf_new_sku(&a, 10);
    const char *order_id = conf_id("order");
    stock_order_line lines[2] = {conf_line(conf_id("line"), a.id, 6),
                                 conf_line(conf_id("line"), a.id, 6)};
    stock_op op;
    assert_code(run_order(&op, order_id, lines, 2), STOCK_INSUFFICIENT, op.message);
    /* The same order id with other lines is a fresh order, not a conflict. */
    stock_order_line smaller[1] = {conf_line(conf_id("line"), a.id, 1)};
    assert_code(run_order(&op, conf_id("order"), smaller, 1), STOCK_OK, op.message);
    assert_code(stock_add(conf_store, a.id, 10, NULL, NULL, NULL), STOCK_OK, "");
    a.adjusted = 20;
    a.deducted = 1;
    /* The failed lines' ids are free, and the order succeeds on retry. */
    assert_code(run_order(&op, order_id, lines, 2), STOCK_OK, op.message);
    assert_i64(lines[1].available, 7);
    a.deducted = 13;
    conf_check_sku(&a);
    const char *other_order = conf_id("order");
    stock_order_line first[1] = {conf_line(conf_id("line"), a.id, 100)};
    assert_code(run_order(&op, other_order, first, 1), STOCK_INSUFFICIENT, op.message);
    stock_order_line second[1] = {conf_line(conf_id("line"), a.id, 2)};
    assert_code(run_order(&op, other_order, second, 1), STOCK_OK, op.message);
    assert_code(stock_deduct(conf_store, first[0].line_id.ptr, a.id, 1, NULL, NULL),
                STOCK_OK, "");
    a.deducted = 16;
    conf_check_sku(&a);
}

int conf_run_order(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(order_takes_every_line),
        cmocka_unit_test(same_sku_on_two_lines_is_checked_against_the_sum),
        cmocka_unit_test(order_takes_all_lines_or_none),
        cmocka_unit_test(sufficiency_is_checked_in_order_of_first_appearance),
        cmocka_unit_test(order_with_a_missing_sku_is_not_found),
        cmocka_unit_test(first_failure_in_line_order_wins),
        cmocka_unit_test(retry_of_an_order_replays_every_line),
        cmocka_unit_test(order_id_with_other_lines_conflicts),
        cmocka_unit_test(order_reusing_a_line_id_conflicts),
        cmocka_unit_test(failed_order_records_nothing),
    };
    return cmocka_run_group_tests_name("order", tests, NULL, NULL);
}
