/*
 * holds.c -- holds (docs/semantics.md, "Holds"): stock taken from available
 * until a deadline, then confirmed into a line, released, or expired by the
 * store, once. Every result code, replays, partial confirms, confirming
 * after the deadline, releasing after a confirm, orders of holds, and the
 * totals (I2 with held) after each step.
 *
 * Deadlines are real: a hold meant to expire has a TTL of HOLD_SHORT_TTL_MS
 * and the test sleeps HOLD_WAIT_MS before touching it; every other hold
 * lives an hour. Short holds are made last, or together in one batch, so
 * that none expires before the test has made the ones it counts on.
 */
#include <stdio.h>
#include <unistd.h>

#include "conformance.h"

#define HOLD_LONG_TTL_MS 3600000
#define HOLD_SHORT_TTL_MS 20
#define HOLD_WAIT_MS 100

/* Holds qty of sku for ttl_ms, asserting OK and the stock left. */
static void hold_ok(conf_sku *sku, const char *hold, int64_t qty, int64_t ttl_ms)
{
    int64_t available = -1;
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_hold(conf_store, hold, sku->id, qty, ttl_ms, &available,
                           message), STOCK_OK, message);
    sku->held += qty;
    assert_i64(available, conf_available(sku));
    assert_string_equal(message, "");
}

static stock_hold_info hold_info(const char *hold)
{
    stock_hold_info info;
    memset(&info, 0, sizeof info);
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_hold_get(conf_store, hold, &info, message), STOCK_OK, message);
    return info;
}

static void wait_past_short_deadlines(void)
{
    usleep(HOLD_WAIT_MS * 1000);
}

static void hold_takes_from_available_into_held(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    const char *hold = conf_id("hold");
    int64_t before = conf_now_us();
    hold_ok(&sku, hold, 4, HOLD_LONG_TTL_MS);
    conf_check_sku(&sku);
    stock_hold_info info = hold_info(hold);
    assert_string_equal(info.sku, sku.id);
    assert_string_equal(info.order_id, "");
    assert_int_equal(info.state, STOCK_HOLD_HELD);
    assert_i64(info.qty, 4);
    assert_i64(info.confirmed, 0);
    assert_i64(info.deadline_us - info.time_us, HOLD_LONG_TTL_MS * 1000LL);
    assert_true(info.time_us > before - CONF_CLOCK_SLACK_US &&
                info.time_us < conf_now_us() + CONF_CLOCK_SLACK_US);
    /* A hold is not a line. */
    conf_check_no_line(hold);
}

static void hold_results(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 5);
    const char *hold = conf_id("hold");
    int64_t available = -1;
    char message[STOCK_MESSAGE_MAX];
    assert_code(stock_hold(conf_store, hold, sku.id, 6, HOLD_LONG_TTL_MS,
                           &available, message), STOCK_INSUFFICIENT, message);
    assert_i64(available, 5);
    conf_check_message(message, "sku=%s available=5", sku.id);
    const char *missing = conf_id("sku");
    assert_code(stock_hold(conf_store, hold, missing, 1, HOLD_LONG_TTL_MS, NULL,
                           message), STOCK_NOT_FOUND, message);
    conf_check_message(message, "sku=%s", missing);
    /* The failures recorded nothing: the id is still free. */
    assert_code(stock_hold_get(conf_store, hold, NULL, message), STOCK_NOT_FOUND,
                message);
    conf_check_message(message, "hold=%s", hold);
    hold_ok(&sku, hold, 5, HOLD_LONG_TTL_MS);
    /* A retry answers the original result; other parameters conflict. */
    available = -1;
    assert_code(stock_hold(conf_store, hold, sku.id, 5, HOLD_LONG_TTL_MS,
                           &available, message), STOCK_REPLAY, message);
    assert_i64(available, 0);
    assert_code(stock_hold(conf_store, hold, sku.id, 4, HOLD_LONG_TTL_MS, NULL,
                           message), STOCK_CONFLICT, message);
    conf_check_message(message, "hold=%s was used with other parameters", hold);
    assert_code(stock_hold(conf_store, hold, sku.id, 5, HOLD_LONG_TTL_MS + 1,
                           NULL, message), STOCK_CONFLICT, message);
    conf_check_sku(&sku);
}

static void hold_input_is_validated(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 5);
    char message[STOCK_MESSAGE_MAX];
    assert_code(stock_hold(conf_store, conf_id("hold"), sku.id, 1, 0, NULL,
                           message), STOCK_INVALID, message);
    conf_check_message(message, "ttl must be an integer in 1..2592000000 (milliseconds)");
    assert_code(stock_hold(conf_store, conf_id("hold"), sku.id, 1,
                           STOCK_HOLD_TTL_MS_MAX + 1, NULL, message),
                STOCK_INVALID, message);
    assert_code(stock_hold(conf_store, conf_id("hold"), sku.id, 0, 10, NULL,
                           message), STOCK_INVALID, message);
    assert_code(stock_hold(conf_store, "", sku.id, 1, 10, NULL, message),
                STOCK_INVALID, message);
    conf_check_message_prefix(message, "hold id must be");
    assert_code(stock_confirm(conf_store, conf_id("hold"), -1, NULL, message),
                STOCK_INVALID, message);
    conf_check_message(message, "qty must be an integer in 0..2147483647 (0: the whole hold)");
    conf_check_sku(&sku);
}

static void a_hold_id_and_a_line_id_never_meet(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    char message[STOCK_MESSAGE_MAX];
    const char *line = conf_id("line");
    assert_code(stock_deduct(conf_store, line, sku.id, 1, NULL, message), STOCK_OK,
                message);
    sku.deducted = 1;
    assert_code(stock_hold(conf_store, line, sku.id, 1, HOLD_LONG_TTL_MS, NULL,
                           message), STOCK_CONFLICT, message);
    const char *hold = conf_id("hold");
    hold_ok(&sku, hold, 2, HOLD_LONG_TTL_MS);
    assert_code(stock_deduct(conf_store, hold, sku.id, 2, NULL, message),
                STOCK_CONFLICT, message);
    stock_order_line lines[] = {conf_line(conf_id("line"), sku.id, 1),
                                conf_line(hold, sku.id, 1)};
    int32_t failed = -2;
    assert_code(stock_order(conf_store, conf_id("order"), lines, 2, &failed, message),
                STOCK_CONFLICT, message);
    assert_int_equal(failed, 1);
    conf_check_sku(&sku);
}

static void confirm_makes_a_refundable_line(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    const char *hold = conf_id("hold");
    hold_ok(&sku, hold, 4, HOLD_LONG_TTL_MS);
    int64_t available = -1;
    char message[STOCK_MESSAGE_MAX];
    assert_code(stock_confirm(conf_store, hold, 0, &available, message), STOCK_OK,
                message);
    sku.held -= 4;
    sku.deducted += 4;
    assert_i64(available, 6);
    conf_check_sku(&sku);
    stock_line_info line;
    assert_code(stock_line(conf_store, hold, &line, message), STOCK_OK, message);
    assert_string_equal(line.sku, sku.id);
    assert_i64(line.qty, 4);
    assert_i64(line.available_after, 6);
    stock_hold_info info = hold_info(hold);
    assert_int_equal(info.state, STOCK_HOLD_CONFIRMED);
    assert_i64(info.confirmed, 4);
    /* Replays: the whole hold again, or its qty named. */
    available = -1;
    assert_code(stock_confirm(conf_store, hold, 0, &available, message),
                STOCK_REPLAY, message);
    assert_i64(available, 6);
    assert_code(stock_confirm(conf_store, hold, 4, &available, message),
                STOCK_REPLAY, message);
    assert_code(stock_confirm(conf_store, hold, 3, NULL, message), STOCK_CONFLICT,
                message);
    /* A release after the confirm is refused, and names the state. */
    assert_code(stock_release(conf_store, hold, NULL, message), STOCK_CLOSED, message);
    conf_check_message(message, "hold=%s state=confirmed", hold);
    assert_code(stock_refund(conf_store, conf_id("refund"), hold, 4, &available,
                             message), STOCK_OK, message);
    sku.refunded += 4;
    assert_i64(available, 10);
    conf_check_sku(&sku);
}

static void partial_confirm_releases_the_rest(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    const char *hold = conf_id("hold");
    hold_ok(&sku, hold, 5, HOLD_LONG_TTL_MS);
    int64_t available = -1;
    char message[STOCK_MESSAGE_MAX];
    assert_code(stock_confirm(conf_store, hold, 6, &available, message),
                STOCK_EXCEEDS, message);
    assert_i64(available, 5);
    conf_check_message(message, "hold=%s held=5", hold);
    assert_code(stock_confirm(conf_store, hold, 2, &available, message), STOCK_OK,
                message);
    sku.held -= 5;
    sku.deducted += 2;
    assert_i64(available, 8);
    conf_check_sku(&sku);
    assert_i64(hold_info(hold).confirmed, 2);
    assert_code(stock_confirm(conf_store, hold, 2, &available, message),
                STOCK_REPLAY, message);
    assert_i64(available, 8);
    assert_code(stock_confirm(conf_store, hold, 0, NULL, message), STOCK_CONFLICT,
                message);
}

static void release_gives_the_units_back(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    const char *hold = conf_id("hold");
    hold_ok(&sku, hold, 3, HOLD_LONG_TTL_MS);
    int64_t available = -1;
    char message[STOCK_MESSAGE_MAX];
    assert_code(stock_release(conf_store, hold, &available, message), STOCK_OK,
                message);
    sku.held -= 3;
    assert_i64(available, 10);
    conf_check_sku(&sku);
    assert_int_equal(hold_info(hold).state, STOCK_HOLD_RELEASED);
    assert_code(stock_release(conf_store, hold, &available, message), STOCK_REPLAY,
                message);
    assert_i64(available, 10);
    assert_code(stock_confirm(conf_store, hold, 0, NULL, message), STOCK_CLOSED,
                message);
    conf_check_message(message, "hold=%s state=released", hold);
    conf_check_no_line(hold);
    const char *missing = conf_id("hold");
    assert_code(stock_release(conf_store, missing, NULL, message),
                STOCK_NOT_FOUND, message);
    conf_check_message(message, "hold=%s", missing);
    assert_code(stock_confirm(conf_store, missing, 0, NULL, message),
                STOCK_NOT_FOUND, message);
    conf_check_sku(&sku);
}

static void a_hold_expires_once_at_its_deadline(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    char ids[4][CONF_ID_SIZE];
    stock_op ops[4];
    for (int i = 0; i < 4; i++) {
        snprintf(ids[i], CONF_ID_SIZE, "%s", conf_id("hold"));
        ops[i] = (stock_op){.type = STOCK_OP_HOLD, .id = stock_id_from_cstr(ids[i]),
                            .sku = stock_id_from_cstr(sku.id), .amount = 1 + i,
                            .expect = HOLD_SHORT_TTL_MS};
    }
    assert_code(stock_execute(conf_store, ops, 4), STOCK_OK, "execute");
    for (int i = 0; i < 4; i++)
        assert_code(ops[i].code, STOCK_OK, ops[i].message);
    const char *early = ids[1], *late = ids[2], *read = ids[0], *swept = ids[3];
    wait_past_short_deadlines();
    /* Whatever touches them first, every one is expired and its units are
     * back: a read of the SKU, a confirm, a release, a read of the hold. */
    sku.held = 0;
    conf_check_sku(&sku);
    char message[STOCK_MESSAGE_MAX];
    assert_code(stock_confirm(conf_store, early, 0, NULL, message), STOCK_EXPIRED,
                message);
    conf_check_message(message, "hold=%s", early);
    assert_code(stock_release(conf_store, late, NULL, message), STOCK_EXPIRED,
                message);
    assert_int_equal(hold_info(read).state, STOCK_HOLD_EXPIRED);
    assert_int_equal(hold_info(swept).state, STOCK_HOLD_EXPIRED);
    /* Once: asking again changes nothing, and a retry of the hold itself
     * still answers its original result. */
    assert_code(stock_confirm(conf_store, early, 0, NULL, message), STOCK_EXPIRED,
                message);
    int64_t available = -1;
    assert_code(stock_hold(conf_store, early, sku.id, 2, HOLD_SHORT_TTL_MS,
                           &available, message), STOCK_REPLAY, message);
    assert_i64(available, ops[1].available);
    assert_i64(ops[1].available, 7);   /* 10 - 1 - 2: after the first two */
    conf_check_no_line(early);
    conf_check_sku(&sku);
}

static void confirm_order_takes_every_hold_or_none(void **state)
{
    (void)state;
    conf_sku a, b;
    conf_new_sku(&a, 10);
    conf_new_sku(&b, 10);
    char first[CONF_ID_SIZE], second[CONF_ID_SIZE], gone[CONF_ID_SIZE];
    snprintf(first, sizeof first, "%s", conf_id("hold"));
    snprintf(second, sizeof second, "%s", conf_id("hold"));
    snprintf(gone, sizeof gone, "%s", conf_id("hold"));
    hold_ok(&a, first, 3, HOLD_LONG_TTL_MS);
    hold_ok(&b, second, 4, HOLD_LONG_TTL_MS);
    hold_ok(&b, gone, 1, HOLD_SHORT_TTL_MS);
    wait_past_short_deadlines();
    b.held -= 1;
    char message[STOCK_MESSAGE_MAX];
    int32_t failed = -2;
    stock_order_line bad[] = {conf_line(first, "", 0), conf_line(gone, "", 0)};
    assert_code(stock_confirm_order(conf_store, conf_id("order"), bad, 2, &failed,
                                    message), STOCK_EXPIRED, message);
    assert_int_equal(failed, 1);
    conf_check_message(message, "hold=%s", gone);
    conf_check_sku(&a);   /* none was confirmed */
    conf_check_sku(&b);
    const char *order = conf_id("order");
    stock_order_line lines[] = {conf_line(first, "", 0), conf_line(second, "", 3)};
    assert_code(stock_confirm_order(conf_store, order, lines, 2, &failed, message),
                STOCK_OK, message);
    assert_int_equal(failed, -1);
    a.held -= 3, a.deducted += 3;
    b.held -= 4, b.deducted += 3;
    assert_i64(lines[0].available, 7);
    assert_i64(lines[1].available, 7);
    conf_check_sku(&a);
    conf_check_sku(&b);
    stock_line_info line;
    assert_code(stock_line(conf_store, second, &line, message), STOCK_OK, message);
    assert_string_equal(line.order_id, order);
    assert_string_equal(hold_info(first).order_id, order);
    /* A retry replays; the holds are now confirmed, so another order of
     * them is refused. */
    stock_order_line again[] = {conf_line(first, "", 0), conf_line(second, "", 3)};
    assert_code(stock_confirm_order(conf_store, order, again, 2, &failed, message),
                STOCK_REPLAY, message);
    assert_i64(again[1].available, 7);
    stock_order_line other[] = {conf_line(first, "", 0)};
    assert_code(stock_confirm_order(conf_store, conf_id("order"), other, 1, &failed,
                                    message), STOCK_CLOSED, message);
    assert_int_equal(failed, 0);
    assert_code(stock_confirm(conf_store, first, 0, NULL, message), STOCK_CONFLICT,
                message);
}

static void many_holds_expire_and_balance(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 1000);
    enum { COUNT = 200 };
    stock_op ops[COUNT];
    char ids[COUNT][CONF_ID_SIZE];
    for (int i = 0; i < COUNT; i++) {
        snprintf(ids[i], CONF_ID_SIZE, "%s", conf_id("hold"));
        ops[i] = (stock_op){.type = STOCK_OP_HOLD, .id = stock_id_from_cstr(ids[i]),
                            .sku = stock_id_from_cstr(sku.id), .amount = 1 + i % 3,
                            .expect = i % 2 ? HOLD_SHORT_TTL_MS : HOLD_LONG_TTL_MS};
    }
    assert_code(stock_execute(conf_store, ops, COUNT), STOCK_OK, "execute");
    for (int i = 0; i < COUNT; i++) {
        assert_code(ops[i].code, STOCK_OK, ops[i].message);
        sku.held += i % 2 ? 0 : 1 + i % 3;   /* the short ones will expire */
    }
    wait_past_short_deadlines();
    conf_check_sku(&sku);
    for (int i = 0; i < COUNT; i++)
        assert_int_equal(hold_info(ids[i]).state,
                         i % 2 ? STOCK_HOLD_EXPIRED : STOCK_HOLD_HELD);
}

/* The answer of a store without holds to a hold op. */
static void expect_unsupported(stock_code code, const char *message)
{
    assert_code(code, STOCK_UNSUPPORTED, message);
    assert_non_null(strstr(message, "keeps no holds; nothing changed"));
}

/* A store without holds answers every hold op UNSUPPORTED, saying so,
 * and changes nothing: the SKU keeps its stock and nothing is held. */
static void holds_are_unsupported(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 10);
    const char *hold = conf_id("hold");
    stock_order_line line = conf_line(hold, "", 0);
    char message[STOCK_MESSAGE_MAX] = "";
    expect_unsupported(stock_hold(conf_store, hold, sku.id, 4, HOLD_LONG_TTL_MS, NULL, message),
                       message);
    expect_unsupported(stock_confirm(conf_store, hold, 0, NULL, message), message);
    expect_unsupported(stock_release(conf_store, hold, NULL, message), message);
    expect_unsupported(stock_confirm_order(conf_store, conf_id("order"), &line, 1, NULL, message),
                       message);
    expect_unsupported(stock_hold_get(conf_store, hold, NULL, message), message);
    conf_check_sku(&sku);
}

int conf_run_holds(void)
{
    static const struct CMUnitTest unsupported[] = {
        cmocka_unit_test(holds_are_unsupported),
    };
    if (!conf_holds)
        return cmocka_run_group_tests_name("holds (UNSUPPORTED by this backend)", unsupported,
                                           NULL, NULL);
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(hold_takes_from_available_into_held),
        cmocka_unit_test(hold_results),
        cmocka_unit_test(hold_input_is_validated),
        cmocka_unit_test(a_hold_id_and_a_line_id_never_meet),
        cmocka_unit_test(confirm_makes_a_refundable_line),
        cmocka_unit_test(partial_confirm_releases_the_rest),
        cmocka_unit_test(release_gives_the_units_back),
        cmocka_unit_test(a_hold_expires_once_at_its_deadline),
        cmocka_unit_test(confirm_order_takes_every_hold_or_none),
        cmocka_unit_test(many_holds_expire_and_balance),
    };
    return cmocka_run_group_tests_name("holds", tests, NULL, NULL);
}
