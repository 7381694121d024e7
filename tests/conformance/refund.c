/*
 * refund.c -- giving stock back on a line: capped by what was deducted on it
 * and idempotent by refund id (I5); and a longer walk that checks the
 * totals (I1, I2) after every step of every kind.
 */
#include <stdio.h>

#include "conformance.h"

/* A SKU at level 10 with one line of 5 deducted. */
typedef struct refund_fixture {
    conf_sku sku;
    char line[CONF_ID_SIZE];
} refund_fixture;

static void fixture_make(refund_fixture *f)
{
    conf_new_sku(&f->sku, 10);
    snprintf(f->line, sizeof f->line, "%s", conf_id("line"));
    assert_code(stock_deduct(conf_store, f->line, f->sku.id, 5, NULL, NULL),
                STOCK_OK, "");
    f->sku.deducted = 5;
}

static void check_refunded(const char *line_id, int64_t refunded)
{
    stock_line_info info;
    assert_code(stock_line(conf_store, line_id, &info, NULL), STOCK_OK, "");
    assert_i64(info.refunded, refunded);
}

static void partial_refunds_add_up_to_the_line(void **state)
{
    (void)state;
    refund_fixture f;
    fixture_make(&f);
    int64_t available = -1;
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_refund(conf_store, conf_id("refund"), f.line, 2,
                             &available, message), STOCK_OK, message);
    assert_i64(available, 7);
    f.sku.refunded = 2;
    conf_check_sku(&f.sku);
    check_refunded(f.line, 2);
    assert_code(stock_refund(conf_store, conf_id("refund"), f.line, 3,
                             &available, message), STOCK_OK, message);
    assert_i64(available, 10);
    f.sku.refunded = 5;
    conf_check_sku(&f.sku);
    check_refunded(f.line, 5);
    /* Nothing is left to refund. */
    assert_code(stock_refund(conf_store, conf_id("refund"), f.line, 1,
                             &available, message), STOCK_EXCEEDS, message);
    assert_i64(available, 0);
    conf_check_message(message, "line=%s refundable=0", f.line);
    conf_check_sku(&f.sku);
    check_refunded(f.line, 5);
}

static void refund_beyond_the_line_exceeds(void **state)
{
    (void)state;
    refund_fixture f;
    fixture_make(&f);
    int64_t available = -1;
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_refund(conf_store, conf_id("refund"), f.line, 6,
                             &available, message), STOCK_EXCEEDS, message);
    assert_i64(available, 5);
    conf_check_message(message, "line=%s refundable=5", f.line);
    assert_code(stock_refund(conf_store, conf_id("refund"), f.line, 4,
                             &available, message), STOCK_OK, message);
    assert_code(stock_refund(conf_store, conf_id("refund"), f.line, 2,
                             &available, message), STOCK_EXCEEDS, message);
    assert_i64(available, 1);
    conf_check_message(message, "line=%s refundable=1", f.line);
    f.sku.refunded = 4;
    conf_check_sku(&f.sku);
    check_refunded(f.line, 4);
}

static void failed_refund_records_nothing(void **state)
{
    (void)state;
    refund_fixture f;
    fixture_make(&f);
    const char *refund_id = conf_id("refund");
    int64_t available = -1;
    assert_code(stock_refund(conf_store, refund_id, f.line, 6, &available, NULL),
                STOCK_EXCEEDS, "");
    /* The same refund id with another qty is fresh, not a conflict. */
    assert_code(stock_refund(conf_store, refund_id, f.line, 2, &available, NULL),
                STOCK_OK, "");
    assert_i64(available, 7);
    assert_code(stock_refund(conf_store, refund_id, f.line, 2, &available, NULL),
                STOCK_REPLAY, "");
    assert_i64(available, 7);
    f.sku.refunded = 2;
    conf_check_sku(&f.sku);
}

static void retry_of_a_refund_replays_the_original(void **state)
{
    (void)state;
    refund_fixture f;
    fixture_make(&f);
    const char *refund_id = conf_id("refund");
    int64_t available = -1;
    assert_code(stock_refund(conf_store, refund_id, f.line, 2, &available, NULL),
                STOCK_OK, "");
    assert_i64(available, 7);
    assert_code(stock_deduct(conf_store, conf_id("line"), f.sku.id, 4, NULL, NULL),
                STOCK_OK, "");
    assert_code(stock_refund(conf_store, conf_id("refund"), f.line, 3, NULL, NULL),
                STOCK_OK, "");
    f.sku.deducted = 9;
    f.sku.refunded = 5;
    /* Still a replay with the original result when nothing is refundable. */
    assert_code(stock_refund(conf_store, refund_id, f.line, 2, &available, NULL),
                STOCK_REPLAY, "");
    assert_i64(available, 7);
    conf_check_sku(&f.sku);
    check_refunded(f.line, 5);
}

static void refund_id_with_other_parameters_conflicts(void **state)
{
    (void)state;
    refund_fixture f, other;
    fixture_make(&f);
    fixture_make(&other);
    const char *refund_id = conf_id("refund");
    assert_code(stock_refund(conf_store, refund_id, f.line, 2, NULL, NULL),
                STOCK_OK, "");
    f.sku.refunded = 2;
    char prefix[CONF_ID_SIZE + 8];
    snprintf(prefix, sizeof prefix, "refund=%s ", refund_id);
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_refund(conf_store, refund_id, f.line, 1, NULL, message),
                STOCK_CONFLICT, message);
    conf_check_message_prefix(message, prefix);
    assert_code(stock_refund(conf_store, refund_id, other.line, 2, NULL, message),
                STOCK_CONFLICT, message);
    conf_check_message_prefix(message, prefix);
    /* The id is judged first: with a line that does not exist, still CONFLICT. */
    assert_code(stock_refund(conf_store, refund_id, conf_id("line"), 2, NULL, message),
                STOCK_CONFLICT, message);
    conf_check_message_prefix(message, prefix);
    conf_check_sku(&f.sku);
    conf_check_sku(&other.sku);
    check_refunded(f.line, 2);
    check_refunded(other.line, 0);
}

static void refund_of_a_missing_line_is_not_found(void **state)
{
    (void)state;
    refund_fixture f;
    fixture_make(&f);
    const char *missing = conf_id("line");
    const char *refund_id = conf_id("refund");
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_refund(conf_store, refund_id, missing, 1, NULL, message),
                STOCK_NOT_FOUND, message);
    conf_check_message(message, "line=%s", missing);
    /* The refund id stayed free. */
    assert_code(stock_refund(conf_store, refund_id, f.line, 1, NULL, message),
                STOCK_OK, message);
    f.sku.refunded = 1;
    conf_check_sku(&f.sku);
}

static void refund_of_an_order_line(void **state)
{
    (void)state;
    conf_sku a;
    conf_new_sku(&a, 0);
    assert_code(stock_set(conf_store, a.id, 10, NULL, NULL, NULL), STOCK_OK, "");
    a.adjusted = 10;
    stock_order_line lines[2] = {conf_line(conf_id("line"), a.id, 4),
                                 conf_line(conf_id("line"), a.id, 6)};
    assert_code(stock_order(conf_store, conf_id("order"), lines, 2, NULL, NULL),
                STOCK_OK, "");
    a.deducted = 10;
    int64_t available = -1;
    assert_code(stock_refund(conf_store, conf_id("refund"), lines[1].line_id.ptr,
                             6, &available, NULL), STOCK_OK, "");
    assert_i64(available, 6);
    assert_code(stock_refund(conf_store, conf_id("refund"), lines[0].line_id.ptr,
                             5, &available, NULL), STOCK_EXCEEDS, "");
    assert_i64(available, 4);
    a.refunded = 6;
    conf_check_sku(&a);
    check_refunded(lines[0].line_id.ptr, 0);
    check_refunded(lines[1].line_id.ptr, 6);
}

/* Every kind of step, and the totals checked after each (I1, I2). */
static void totals_hold_after_every_step(void **state)
{
    (void)state;
    conf_sku s;
    conf_new_sku(&s, 20);
    conf_check_sku(&s);
    const char *line1 = conf_id("line"), *line2 = conf_id("line");
    assert_code(stock_deduct(conf_store, line1, s.id, 8, NULL, NULL), STOCK_OK, "");
    s.deducted += 8;
    conf_check_sku(&s);
    assert_code(stock_add(conf_store, s.id, -2, conf_id("adjust"), NULL, NULL),
                STOCK_OK, "");
    s.adjusted -= 2;
    conf_check_sku(&s);
    stock_order_line lines[2] = {conf_line(line2, s.id, 5),
                                 conf_line(conf_id("line"), s.id, 5)};
    assert_code(stock_order(conf_store, conf_id("order"), lines, 2, NULL, NULL),
                STOCK_OK, "");
    s.deducted += 10;
    conf_check_sku(&s);
    assert_code(stock_refund(conf_store, conf_id("refund"), line1, 3, NULL, NULL),
                STOCK_OK, "");
    s.refunded += 3;
    conf_check_sku(&s);
    assert_code(stock_set(conf_store, s.id, 50, NULL, NULL, NULL), STOCK_OK, "");
    s.adjusted += 50 - 3;
    conf_check_sku(&s);
    assert_code(stock_refund(conf_store, conf_id("refund"), line2, 5, NULL, NULL),
                STOCK_OK, "");
    s.refunded += 5;
    conf_check_sku(&s);
    assert_code(stock_deduct(conf_store, conf_id("line"), s.id, 56, NULL, NULL),
                STOCK_INSUFFICIENT, "");
    assert_code(stock_deduct(conf_store, conf_id("line"), s.id, 55, NULL, NULL),
                STOCK_OK, "");
    s.deducted += 55;
    conf_check_sku(&s);
    assert_i64(conf_available(&s), 0);
}

int conf_run_refund(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(partial_refunds_add_up_to_the_line),
        cmocka_unit_test(refund_beyond_the_line_exceeds),
        cmocka_unit_test(failed_refund_records_nothing),
        cmocka_unit_test(retry_of_a_refund_replays_the_original),
        cmocka_unit_test(refund_id_with_other_parameters_conflicts),
        cmocka_unit_test(refund_of_a_missing_line_is_not_found),
        cmocka_unit_test(refund_of_an_order_line),
        cmocka_unit_test(totals_hold_after_every_step),
    };
    return cmocka_run_group_tests_name("refund", tests, NULL, NULL);
}
