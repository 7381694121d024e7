/*
 * deduct.c -- taking stock one line at a time, and reading lines back:
 * OK, REPLAY with the original result, INSUFFICIENT with what is there,
 * NOT_FOUND, CONFLICT, and "a failed operation records nothing" (I1, I4).
 */
#include <stdio.h>
#include <time.h>

#include "conformance.h"

static void check_line(const char *line_id, const char *sku, int64_t qty,
                       int64_t refunded, const char *order_id,
                       int64_t available_after, int64_t time_from_us,
                       int64_t time_to_us)
{
    stock_line_info info;
    memset(&info, 0xff, sizeof info);
    assert_code(stock_line(conf_store, line_id, &info, NULL), STOCK_OK, line_id);
    assert_string_equal(info.sku, sku);
    assert_string_equal(info.order_id, order_id);
    assert_i64(info.qty, qty);
    assert_i64(info.refunded, refunded);
    assert_i64(info.available_after, available_after);
    assert_in_range(info.time_us, time_from_us - CONF_CLOCK_SLACK_US,
                    time_to_us + CONF_CLOCK_SLACK_US);
}

static void deduct_takes_stock_and_records_the_line(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    const char *line_id = conf_id("line");
    int64_t available = -1;
    char message[STOCK_MESSAGE_MAX] = "";
    int64_t before_us = conf_now_us();
    assert_code(stock_deduct(conf_store, line_id, sku.id, 3, &available, message),
                STOCK_OK, message);
    int64_t after_us = conf_now_us();
    assert_i64(available, 7);
    sku.deducted = 3;
    conf_check_sku(&sku);
    check_line(line_id, sku.id, 3, 0, "", 7, before_us, after_us);
    const char *missing = conf_id("line");
    char expected[STOCK_MESSAGE_MAX];
    snprintf(expected, sizeof expected, "line=%s", missing);
    message[0] = '\0';
    assert_code(stock_line(conf_store, missing, NULL, message), STOCK_NOT_FOUND, message);
    assert_string_equal(message, expected);
}

static void deduct_down_to_zero_then_insufficient(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    int64_t available = -1;
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_deduct(conf_store, conf_id("line"), sku.id, 10, &available,
                             message), STOCK_OK, message);
    assert_i64(available, 0);
    sku.deducted = 10;
    const char *line_id = conf_id("line");
    assert_code(stock_deduct(conf_store, line_id, sku.id, 1, &available, message),
                STOCK_INSUFFICIENT, message);
    assert_i64(available, 0);
    conf_check_message(message, "sku=%s available=0", sku.id);
    conf_check_no_line(line_id);
    conf_check_sku(&sku);
}

static void insufficient_reports_what_is_there(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 3);
    const char *line_id = conf_id("line");
    int64_t available = -1;
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_deduct(conf_store, line_id, sku.id, 4, &available, message),
                STOCK_INSUFFICIENT, message);
    assert_i64(available, 3);
    conf_check_message(message, "sku=%s available=3", sku.id);
    conf_check_no_line(line_id);
    conf_check_sku(&sku);
    /* The failure recorded nothing: after a restock the retry succeeds. */
    assert_code(stock_add(conf_store, sku.id, 10, NULL, NULL, NULL), STOCK_OK, "");
    assert_code(stock_deduct(conf_store, line_id, sku.id, 4, &available, message),
                STOCK_OK, message);
    assert_i64(available, 9);
    sku.adjusted = 13;
    sku.deducted = 4;
    conf_check_sku(&sku);
}

static void deduct_from_a_missing_sku_is_not_found(void **state)
{
    (void)state;
    const char *sku = conf_id("sku");
    const char *line_id = conf_id("line");
    char message[STOCK_MESSAGE_MAX] = "";
    int64_t untouched = -7;
    assert_code(stock_deduct(conf_store, line_id, sku, 1, &untouched, message),
                STOCK_NOT_FOUND, message);
    conf_check_message(message, "sku=%s", sku);
    assert_i64(untouched, -7); /* no value exists, so none is written */
    conf_check_no_line(line_id);
    assert_code(stock_get(conf_store, sku, NULL, NULL), STOCK_NOT_FOUND, "");
    /* Once the SKU exists the same line is a fresh deduction. */
    assert_code(stock_set(conf_store, sku, 2, NULL, NULL, NULL), STOCK_OK, "");
    int64_t available = -1;
    assert_code(stock_deduct(conf_store, line_id, sku, 1, &available, message),
                STOCK_OK, message);
    assert_i64(available, 1);
}

#define REPLAY_PAUSE_NS 2000000

static void retry_replays_the_original_result(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    const char *line_id = conf_id("line");
    int64_t available = -1;
    int64_t before_us = conf_now_us();
    assert_code(stock_deduct(conf_store, line_id, sku.id, 3, &available, NULL),
                STOCK_OK, "");
    int64_t after_us = conf_now_us();
    stock_line_info original;
    assert_code(stock_line(conf_store, line_id, &original, NULL), STOCK_OK, "");
    assert_code(stock_deduct(conf_store, conf_id("line"), sku.id, 2, NULL, NULL),
                STOCK_OK, "");
    sku.deducted = 5;
    /* Let the clock move on, so that a replay stamping a new time shows. */
    nanosleep(&(struct timespec){.tv_nsec = REPLAY_PAUSE_NS}, NULL);
    assert_code(stock_deduct(conf_store, line_id, sku.id, 3, &available, NULL),
                STOCK_REPLAY, "");
    assert_i64(available, 7);
    conf_check_sku(&sku);
    /* Even when the stock could not cover it any more. */
    assert_code(stock_set(conf_store, sku.id, 0, NULL, NULL, NULL), STOCK_OK, "");
    sku.adjusted -= 5;
    assert_code(stock_deduct(conf_store, line_id, sku.id, 3, &available, NULL),
                STOCK_REPLAY, "");
    assert_i64(available, 7);
    conf_check_sku(&sku);
    check_line(line_id, sku.id, 3, 0, "", 7, before_us, after_us);
    stock_line_info replayed;
    assert_code(stock_line(conf_store, line_id, &replayed, NULL), STOCK_OK, "");
    assert_i64(replayed.time_us, original.time_us);
}

static void line_id_with_other_parameters_conflicts(void **state)
{
    (void)state;
    conf_sku sku, other;
    conf_new_sku(&sku, 10);
    conf_new_sku(&other, 10);
    const char *line_id = conf_id("line");
    assert_code(stock_deduct(conf_store, line_id, sku.id, 3, NULL, NULL),
                STOCK_OK, "");
    sku.deducted = 3;
    char prefix[CONF_ID_SIZE + 8];
    snprintf(prefix, sizeof prefix, "line=%s ", line_id);
    char message[STOCK_MESSAGE_MAX] = "";
    int64_t available = -1;
    assert_code(stock_deduct(conf_store, line_id, sku.id, 4, &available, message),
                STOCK_CONFLICT, message);
    conf_check_message_prefix(message, prefix);
    assert_code(stock_deduct(conf_store, line_id, sku.id, 2, &available, message),
                STOCK_CONFLICT, message);
    assert_code(stock_deduct(conf_store, line_id, other.id, 3, &available, message),
                STOCK_CONFLICT, message);
    conf_check_message_prefix(message, prefix);
    /* The id is judged first: with a SKU that does not exist, still CONFLICT. */
    assert_code(stock_deduct(conf_store, line_id, conf_id("sku"), 3, &available,
                             message), STOCK_CONFLICT, message);
    conf_check_message_prefix(message, prefix);
    conf_check_sku(&sku);
    conf_check_sku(&other);
}

static void deduct_of_an_order_line_conflicts(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    const char *line_id = conf_id("line");
    stock_order_line lines[1] = {conf_line(line_id, sku.id, 2)};
    assert_code(stock_order(conf_store, conf_id("order"), lines, 1, NULL, NULL),
                STOCK_OK, "");
    sku.deducted = 2;
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_deduct(conf_store, line_id, sku.id, 2, NULL, message),
                STOCK_CONFLICT, message);
    conf_check_sku(&sku);
}

/* Failure messages carry the longest ids whole (they fit the message). */
static void messages_hold_whole_64_byte_ids(void **state)
{
    (void)state;
    char sku[CONF_ID_SIZE], missing[CONF_ID_SIZE], line_id[CONF_ID_SIZE];
    conf_long_id("sku", sku);
    conf_long_id("sku", missing);
    conf_long_id("line", line_id);
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_set(conf_store, sku, 2, NULL, NULL, NULL), STOCK_OK, "");
    assert_code(stock_deduct(conf_store, line_id, sku, 3, NULL, message),
                STOCK_INSUFFICIENT, message);
    conf_check_message(message, "sku=%s available=2", sku);
    assert_code(stock_deduct(conf_store, line_id, missing, 1, NULL, message),
                STOCK_NOT_FOUND, message);
    conf_check_message(message, "sku=%s", missing);
    assert_code(stock_deduct(conf_store, line_id, sku, 1, NULL, message),
                STOCK_OK, message);
    assert_code(stock_deduct(conf_store, line_id, sku, 2, NULL, message),
                STOCK_CONFLICT, message);
    char prefix[CONF_ID_SIZE + 8];
    snprintf(prefix, sizeof prefix, "line=%s ", line_id);
    conf_check_message_prefix(message, prefix);
    assert_true(strlen(message) > strlen(prefix));
}

/* SKUs of the longest ids that differ in their last byte only are SKUs
 * apart (a backend that spreads a SKU over several keys must name them by
 * the whole id; eight of them, so that names cut short would meet). */
static void longest_skus_differing_at_the_end_are_apart(void **state)
{
    (void)state;
    enum { COUNT = 8 };
    char skus[COUNT][CONF_ID_SIZE];
    char message[STOCK_MESSAGE_MAX] = "";
    conf_long_id("sku", skus[0]);
    for (int i = 0; i < COUNT; i++) {
        memcpy(skus[i], skus[0], CONF_ID_SIZE);
        skus[i][STOCK_ID_MAX - 1] = (char)('a' + i);
        assert_code(stock_set(conf_store, skus[i], 10 * (i + 1) + i, NULL, NULL, message),
                    STOCK_OK, message);
    }
    for (int i = 0; i < COUNT; i++) {
        stock_sku_info info;
        assert_code(stock_get(conf_store, skus[i], &info, message), STOCK_OK, message);
        assert_i64(info.available, 10 * (i + 1) + i);
        assert_code(stock_deduct(conf_store, conf_id("line"), skus[i], 10 * (i + 1) + i, NULL,
                                 message), STOCK_OK, message);
    }
    for (int i = 0; i < COUNT; i++) {
        stock_sku_info info;
        assert_code(stock_get(conf_store, skus[i], &info, message), STOCK_OK, message);
        assert_i64(info.available, 0);
        assert_i64(info.deducted, 10 * (i + 1) + i);
    }
}

/* SKUs, line ids, order ids, refund ids and adjustment ids are five
 * namespaces: one string can name one of each. */
static void id_namespaces_are_separate(void **state)
{
    (void)state;
    const char *name = conf_id("name");
    char message[STOCK_MESSAGE_MAX] = "";
    int64_t available = -1;
    assert_code(stock_set(conf_store, name, 10, NULL, NULL, message), STOCK_OK, message);
    assert_code(stock_add(conf_store, name, 1, name, NULL, message), STOCK_OK, message);
    assert_code(stock_deduct(conf_store, name, name, 2, NULL, message),
                STOCK_OK, message);
    assert_code(stock_refund(conf_store, name, name, 1, &available, message),
                STOCK_OK, message);
    assert_i64(available, 10);
    stock_order_line lines[1] = {conf_line(conf_id("line"), name, 3)};
    assert_code(stock_order(conf_store, name, lines, 1, NULL, message),
                STOCK_OK, message);
    assert_i64(lines[0].available, 7);
    stock_sku_info info;
    assert_code(stock_get(conf_store, name, &info, NULL), STOCK_OK, "");
    assert_i64(info.adjusted, 11);
    assert_i64(info.deducted, 5);
    assert_i64(info.refunded, 1);
}

int conf_run_deduct(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(deduct_takes_stock_and_records_the_line),
        cmocka_unit_test(deduct_down_to_zero_then_insufficient),
        cmocka_unit_test(insufficient_reports_what_is_there),
        cmocka_unit_test(deduct_from_a_missing_sku_is_not_found),
        cmocka_unit_test(retry_replays_the_original_result),
        cmocka_unit_test(line_id_with_other_parameters_conflicts),
        cmocka_unit_test(deduct_of_an_order_line_conflicts),
        cmocka_unit_test(messages_hold_whole_64_byte_ids),
        cmocka_unit_test(longest_skus_differing_at_the_end_are_apart),
        cmocka_unit_test(id_namespaces_are_separate),
    };
    return cmocka_run_group_tests_name("deduct", tests, NULL, NULL);
}
