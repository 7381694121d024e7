/*
 * set_add.c -- setting levels (with compare-and-set) and adjusting them
 * (restock, write-off, adjustment ids): the set/add operations and
 * rows of docs/semantics.md.
 */
#include <stdio.h>

#include "conformance.h"

static void set_creates_and_records_deltas(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    conf_check_sku(&sku);
    int64_t available = -1;
    assert_code(stock_set(conf_store, sku.id, 4, NULL, &available, NULL),
                STOCK_OK, "");
    assert_i64(available, 4);
    sku.adjusted = 4; /* 10 + (4 - 10) */
    conf_check_sku(&sku);
    assert_code(stock_deduct(conf_store, conf_id("line"), sku.id, 3, NULL, NULL),
                STOCK_OK, "");
    sku.deducted = 3;
    assert_code(stock_set(conf_store, sku.id, 10, NULL, &available, NULL),
                STOCK_OK, "");
    assert_i64(available, 10);
    sku.adjusted += 9; /* from 1 to 10 */
    conf_check_sku(&sku);
    assert_code(stock_set(conf_store, sku.id, 0, NULL, &available, NULL),
                STOCK_OK, "");
    sku.adjusted -= 10;
    conf_check_sku(&sku);
    /* Setting the level it already has changes no total. */
    assert_code(stock_set(conf_store, sku.id, 0, NULL, &available, NULL),
                STOCK_OK, "");
    assert_i64(available, 0);
    conf_check_sku(&sku);
}

static void get_of_a_missing_sku_is_not_found(void **state)
{
    (void)state;
    stock_sku_info info;
    assert_code(stock_get(conf_store, conf_id("sku"), &info, NULL), STOCK_NOT_FOUND, "");
}

static void compare_and_set(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 7);
    int64_t expect = 7, available = -1;
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_set(conf_store, sku.id, 9, &expect, &available, message),
                STOCK_OK, message);
    assert_i64(available, 9);
    sku.adjusted = 9;
    conf_check_sku(&sku);
    /* The old value no longer matches: MISMATCH with the current one. */
    assert_code(stock_set(conf_store, sku.id, 1, &expect, &available, message),
                STOCK_MISMATCH, message);
    assert_i64(available, 9);
    conf_check_message(message, "sku=%s current=9", sku.id);
    conf_check_sku(&sku);
    /* A matching expect of 0 works too. */
    expect = 9;
    assert_code(stock_set(conf_store, sku.id, 0, &expect, &available, message),
                STOCK_OK, message);
    expect = 0;
    assert_code(stock_set(conf_store, sku.id, 5, &expect, &available, message),
                STOCK_OK, message);
    assert_i64(available, 5);
    sku.adjusted = 5;
    conf_check_sku(&sku);
}

static void compare_and_set_of_a_missing_sku_is_not_found(void **state)
{
    (void)state;
    const char *sku = conf_id("sku");
    int64_t expect = 0;
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_set(conf_store, sku, 5, &expect, NULL, message),
                STOCK_NOT_FOUND, message);
    conf_check_message(message, "sku=%s", sku);
    assert_code(stock_get(conf_store, sku, NULL, NULL), STOCK_NOT_FOUND, "");
}

static void restock_and_write_off(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    int64_t available = -1;
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_add(conf_store, sku.id, 5, NULL, &available, message),
                STOCK_OK, message);
    assert_i64(available, 15);
    assert_code(stock_add(conf_store, sku.id, -3, NULL, &available, message),
                STOCK_OK, message);
    assert_i64(available, 12);
    sku.adjusted = 12;
    conf_check_sku(&sku);
    /* A write-off never goes below 0. */
    assert_code(stock_add(conf_store, sku.id, -13, NULL, &available, message),
                STOCK_INSUFFICIENT, message);
    assert_i64(available, 12);
    conf_check_message(message, "sku=%s available=12", sku.id);
    conf_check_sku(&sku);
    assert_code(stock_add(conf_store, sku.id, -12, NULL, &available, message),
                STOCK_OK, message);
    assert_i64(available, 0);
    sku.adjusted = 0;
    conf_check_sku(&sku);
    assert_code(stock_add(conf_store, sku.id, -1, NULL, &available, message),
                STOCK_INSUFFICIENT, message);
    assert_i64(available, 0);
    conf_check_message(message, "sku=%s available=0", sku.id);
    conf_check_sku(&sku);
}

static void add_to_a_missing_sku_is_not_found(void **state)
{
    (void)state;
    const char *sku = conf_id("sku");
    const char *adjust_id = conf_id("adjust");
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_add(conf_store, sku, 5, adjust_id, NULL, message),
                STOCK_NOT_FOUND, message);
    conf_check_message(message, "sku=%s", sku);
    assert_code(stock_get(conf_store, sku, NULL, NULL), STOCK_NOT_FOUND, "");
    /* The failure recorded nothing: the adjustment id is still fresh. */
    int64_t available = -1;
    assert_code(stock_set(conf_store, sku, 1, NULL, NULL, NULL), STOCK_OK, "");
    assert_code(stock_add(conf_store, sku, 5, adjust_id, &available, message),
                STOCK_OK, message);
    assert_i64(available, 6);
}

static void adjustment_id_replays_the_original(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    const char *restock = conf_id("adjust");
    const char *write_off = conf_id("adjust");
    int64_t available = -1;
    assert_code(stock_add(conf_store, sku.id, 5, restock, &available, NULL),
                STOCK_OK, "");
    assert_i64(available, 15);
    assert_code(stock_add(conf_store, sku.id, -4, write_off, &available, NULL),
                STOCK_OK, "");
    assert_i64(available, 11);
    assert_code(stock_add(conf_store, sku.id, 7, NULL, &available, NULL),
                STOCK_OK, "");
    sku.adjusted = 18;
    conf_check_sku(&sku);
    assert_code(stock_add(conf_store, sku.id, 5, restock, &available, NULL),
                STOCK_REPLAY, "");
    assert_i64(available, 15);
    assert_code(stock_add(conf_store, sku.id, -4, write_off, &available, NULL),
                STOCK_REPLAY, "");
    assert_i64(available, 11);
    conf_check_sku(&sku);
    /* A replayed write-off is not checked against today's stock again. */
    assert_code(stock_set(conf_store, sku.id, 0, NULL, NULL, NULL), STOCK_OK, "");
    sku.adjusted = 0;
    assert_code(stock_add(conf_store, sku.id, -4, write_off, &available, NULL),
                STOCK_REPLAY, "");
    assert_i64(available, 11);
    conf_check_sku(&sku);
}

static void adjustment_id_with_other_parameters_conflicts(void **state)
{
    (void)state;
    conf_sku sku, other;
    conf_new_sku(&sku, 10);
    conf_new_sku(&other, 10);
    const char *adjust_id = conf_id("adjust");
    assert_code(stock_add(conf_store, sku.id, 5, adjust_id, NULL, NULL),
                STOCK_OK, "");
    sku.adjusted = 15;
    char message[STOCK_MESSAGE_MAX] = "";
    char prefix[CONF_ID_SIZE + 16];
    snprintf(prefix, sizeof prefix, "adjustment=%s ", adjust_id);
    int64_t deltas[] = {6, -5, 4};
    for (size_t i = 0; i < sizeof deltas / sizeof deltas[0]; i++) {
        assert_code(stock_add(conf_store, sku.id, deltas[i], adjust_id, NULL,
                              message), STOCK_CONFLICT, message);
        conf_check_message_prefix(message, prefix);
    }
    assert_code(stock_add(conf_store, other.id, 5, adjust_id, NULL, message),
                STOCK_CONFLICT, message);
    conf_check_message_prefix(message, prefix);
    /* The id is judged first: with a SKU that does not exist, still CONFLICT. */
    assert_code(stock_add(conf_store, conf_id("sku"), 5, adjust_id, NULL, message),
                STOCK_CONFLICT, message);
    conf_check_message_prefix(message, prefix);
    conf_check_sku(&sku);
    conf_check_sku(&other);
}

static void failed_adjustment_records_nothing(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    const char *adjust_id = conf_id("adjust");
    int64_t available = -1;
    assert_code(stock_add(conf_store, sku.id, -100, adjust_id, &available, NULL),
                STOCK_INSUFFICIENT, "");
    assert_code(stock_add(conf_store, sku.id, 200, NULL, NULL, NULL),
                STOCK_OK, "");
    /* The retry is a fresh attempt, not a replay of the failure. */
    assert_code(stock_add(conf_store, sku.id, -100, adjust_id, &available, NULL),
                STOCK_OK, "");
    assert_i64(available, 110);
    assert_code(stock_add(conf_store, sku.id, -100, adjust_id, &available, NULL),
                STOCK_REPLAY, "");
    assert_i64(available, 110);
    sku.adjusted = 110;
    conf_check_sku(&sku);
    /* A failed write-off leaves its id free for other parameters too. */
    const char *second = conf_id("adjust");
    assert_code(stock_add(conf_store, sku.id, -111, second, NULL, NULL),
                STOCK_INSUFFICIENT, "");
    assert_code(stock_add(conf_store, sku.id, 3, second, &available, NULL),
                STOCK_OK, "");
    assert_i64(available, 113);
}

static void restock_past_the_highest_level_is_invalid(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, INT64_MAX - 5);
    int64_t available = -1;
    char message[STOCK_MESSAGE_MAX] = "";
    const char *adjust_id = conf_id("adjust");
    assert_code(stock_add(conf_store, sku.id, 6, adjust_id, &available, message),
                STOCK_INVALID, message);
    assert_true(strlen(message) > 0);
    conf_check_sku(&sku);
    assert_code(stock_add(conf_store, sku.id, STOCK_QTY_MAX, NULL, NULL, message),
                STOCK_INVALID, message);
    conf_check_sku(&sku);
    /* Up to the highest level is fine, and the id was left free. */
    assert_code(stock_add(conf_store, sku.id, 5, adjust_id, &available, message),
                STOCK_OK, message);
    assert_i64(available, INT64_MAX);
    sku.adjusted = INT64_MAX;
    assert_code(stock_add(conf_store, sku.id, 1, NULL, NULL, message),
                STOCK_INVALID, message);
    conf_check_sku(&sku);
}

/* I2 is kept in 64-bit totals: a set whose delta would carry `adjusted`
 * past 2^63-1 (possible once stock was deducted) must fail like an
 * overflowing restock, not wrap. */
static void set_that_would_overflow_the_totals_is_invalid(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, INT64_MAX);
    assert_code(stock_deduct(conf_store, conf_id("line"), sku.id, 5, NULL, NULL),
                STOCK_OK, "");
    sku.deducted = 5;
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_set(conf_store, sku.id, INT64_MAX, NULL, NULL, message),
                STOCK_INVALID, message);
    assert_true(strlen(message) > 0);
    conf_check_sku(&sku);
    assert_code(stock_add(conf_store, sku.id, 5, NULL, NULL, message),
                STOCK_INVALID, message);
    conf_check_sku(&sku);
}

int conf_run_set_add(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(set_creates_and_records_deltas),
        cmocka_unit_test(get_of_a_missing_sku_is_not_found),
        cmocka_unit_test(compare_and_set),
        cmocka_unit_test(compare_and_set_of_a_missing_sku_is_not_found),
        cmocka_unit_test(restock_and_write_off),
        cmocka_unit_test(add_to_a_missing_sku_is_not_found),
        cmocka_unit_test(adjustment_id_replays_the_original),
        cmocka_unit_test(adjustment_id_with_other_parameters_conflicts),
        cmocka_unit_test(failed_adjustment_records_nothing),
        cmocka_unit_test(restock_past_the_highest_level_is_invalid),
        cmocka_unit_test(set_that_would_overflow_the_totals_is_invalid),
    };
    return cmocka_run_group_tests_name("set_add", tests, NULL, NULL);
}
