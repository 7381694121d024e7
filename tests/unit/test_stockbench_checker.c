/*
 * test_stockbench_checker.c -- unit tests of stockbench's invariant checker
 * (tools/stockbench/checker.c, compiled into this test since unit tests do
 * not link tools/). A fake store hands back SKU states built on purpose: an
 * honest one passes; one that oversold, lost a reply, replayed wrongly or
 * refunded too much fails, and the report names the SKU and the difference.
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

#define FAKE_SKUS 3
#define MANY_SKUS 10000      /* more than one fetch batch */

/* A store as the checker sees it: one state per SKU, or a read failure. */
typedef struct fake_store {
    stock_sku_info infos[MANY_SKUS];
    stock_code codes[MANY_SKUS];
    bool unreadable;
    uint32_t fetches;
} fake_store;

static int fake_fetch(void *context, uint32_t first, uint32_t count,
                      stock_sku_info *infos, stock_code *codes, char *message,
                      size_t message_size)
{
    fake_store *store = context;
    assert_true(count >= 1 && count <= CHECKER_FETCH_MAX);
    assert_true(first + count <= MANY_SKUS);
    store->fetches++;
    if (store->unreadable) {
        snprintf(message, message_size, "connection refused");
        return -1;
    }
    memcpy(infos, &store->infos[first], count * sizeof *infos);
    memcpy(codes, &store->codes[first], count * sizeof *codes);
    return 0;
}

static const char *fake_name(void *context, uint32_t sku)
{
    static const char *const names[FAKE_SKUS] = {"A", "B", "C"};
    (void)context;
    return sku < FAKE_SKUS ? names[sku] : "many";
}

typedef struct fixture {
    fake_store store;
    checker *ledger;
    FILE *report;
    char *report_text;
    size_t report_size;
} fixture;

/* Three SKUs at 100; the ledger acknowledged 10 deducted and 2 refunded on
 * A, 5 deducted on B, nothing on C, and the fake store agrees. */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->report = open_memstream(&f->report_text, &f->report_size);
    f->ledger = checker_create(FAKE_SKUS, f->report);
    assert_non_null(f->ledger);
    for (uint32_t sku = 0; sku < FAKE_SKUS; sku++)
        checker_set_initial(f->ledger, sku, 100);
    checker_deducted(f->ledger, 0, 7);
    checker_deducted(f->ledger, 0, 3);
    checker_refunded(f->ledger, 0, 2);
    checker_deducted(f->ledger, 1, 5);
    f->store.infos[0] = (stock_sku_info){92, 100, 10, 2, 0};
    f->store.infos[1] = (stock_sku_info){95, 100, 5, 0, 0};
    f->store.infos[2] = (stock_sku_info){100, 100, 0, 0, 0};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    checker_destroy(f->ledger);
    fclose(f->report);
    free(f->report_text);
    free(f);
    return 0;
}

static uint64_t verify(fixture *f)
{
    checker_source source = {fake_fetch, fake_name, &f->store};
    uint64_t failures = checker_verify(f->ledger, &source);
    fflush(f->report);
    return failures;
}

static void assert_reported(fixture *f, const char *text)
{
    if (f->report_text == NULL || strstr(f->report_text, text) == NULL)
        fail_msg("report lacks '%s'; it says: %s", text,
                 f->report_text ? f->report_text : "(nothing)");
}

static void test_honest_store_passes(void **state)
{
    fixture *f = *state;
    assert_int_equal(verify(f), 0);
    assert_int_equal(f->report_size, 0);
    assert_int_equal(checker_total_deducted(f->ledger), 15);
    assert_int_equal(checker_total_refunded(f->ledger), 2);
}

/* B sold 6 more than it had: available -1, deducted 101 of 100. */
static void test_oversold_store_fails(void **state)
{
    fixture *f = *state;
    checker_deducted(f->ledger, 1, 96);
    f->store.infos[1] = (stock_sku_info){-1, 100, 101, 0, 0};
    assert_true(verify(f) >= 1);
    assert_reported(f, "I1 sku=B: available=-1 is below 0");
}

/* The store deducted 4 on C but the reply was lost: nothing acknowledged. */
static void test_lost_reply_fails(void **state)
{
    fixture *f = *state;
    f->store.infos[2] = (stock_sku_info){96, 100, 4, 0, 0};
    assert_int_equal(verify(f), 2);
    assert_reported(f, "I2 sku=C: initial 100 - available 96 = 4");
    assert_reported(f, "(difference +4)");
    assert_reported(f, "the store counts 4 deducted, 0 were acknowledged");
}

/* An acknowledged deduction that the store does not have (lost write). */
static void test_lost_write_fails(void **state)
{
    fixture *f = *state;
    f->store.infos[0] = (stock_sku_info){95, 100, 7, 2, 0};
    assert_int_equal(verify(f), 2);
    assert_reported(f, "I2 sku=A");
    assert_reported(f, "(difference -3)");
}

/* Outcomes left unknown by a broken connection widen I2 by exactly what
 * they could have done, no more. */
static void test_uncertain_outcomes(void **state)
{
    fixture *f = *state;
    checker_uncertain(f->ledger, 2, 4, 0);
    f->store.infos[2] = (stock_sku_info){96, 100, 4, 0, 0};
    assert_int_equal(verify(f), 0);
    f->store.infos[2] = (stock_sku_info){95, 100, 5, 0, 0};
    assert_int_equal(verify(f), 2);
    assert_reported(f, "(difference +5)");
}

static void test_replay_checks(void **state)
{
    fixture *f = *state;
    checker_replayed(f->ledger, "L1", 42, STOCK_REPLAY, 42);
    assert_int_equal(checker_failures(f->ledger), 0);
    checker_replayed(f->ledger, "L2", 42, STOCK_REPLAY, 41);
    checker_replayed(f->ledger, "L3", 42, STOCK_OK, 41);
    assert_int_equal(verify(f), 2);
    assert_reported(f, "I4 line=L2: the replay returned available=41 but the "
                       "original said 42 (difference -1)");
    assert_reported(f, "I4 line=L3: a retry returned OK, not REPLAY");
}

static void test_refund_cap(void **state)
{
    fixture *f = *state;
    checker_refund_total(f->ledger, "L7", 3, 3);
    assert_int_equal(checker_failures(f->ledger), 0);
    checker_refund_total(f->ledger, "L7", 3, 4);
    assert_int_equal(checker_failures(f->ledger), 1);
    fflush(f->report);
    assert_reported(f, "I5 line=L7: refunds of 4 were acknowledged on a line of "
                       "qty 3 (exceeded by 1)");
}

static void test_sellout_must_empty(void **state)
{
    fixture *f = *state;
    checker_expect_empty(f->ledger, 1);
    assert_int_equal(verify(f), 1);
    assert_reported(f, "sellout sku=B: 95 left unsold");
}

static void test_unreadable_store_fails(void **state)
{
    fixture *f = *state;
    f->store.unreadable = true;
    assert_int_equal(verify(f), 1);
    assert_reported(f, "could not be read back: connection refused");
    f->store.unreadable = false;
    f->store.codes[1] = STOCK_NOT_FOUND;
    assert_int_equal(verify(f), 2);
    assert_reported(f, "sku=B: reading it back gave NOTFOUND");
}

/* Many SKUs are read in several batches, and a flood of failures is
 * counted in full but printed only CHECKER_REPORT_MAX times. */
static void test_many_skus_and_report_cap(void **state)
{
    fixture *f = *state;
    checker *many = checker_create(MANY_SKUS, f->report);
    assert_non_null(many);
    for (uint32_t sku = 0; sku < MANY_SKUS; sku++) {
        checker_set_initial(many, sku, 10);
        f->store.infos[sku] = (stock_sku_info){sku % 2 ? 9 : 10, 10, sku % 2, 0, 0};
    }
    checker_source source = {fake_fetch, fake_name, &f->store};
    assert_int_equal(checker_verify(many, &source), MANY_SKUS);
    assert_int_equal(f->store.fetches,
                     (MANY_SKUS + CHECKER_FETCH_MAX - 1) / CHECKER_FETCH_MAX);
    fflush(f->report);
    size_t lines = 0;
    for (const char *c = f->report_text; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, CHECKER_REPORT_MAX + 1);
    checker_destroy(many);
    assert_null(checker_create(0, f->report));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_honest_store_passes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversold_store_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_reply_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_write_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncertain_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refund_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sellout_must_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_store_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_skus_and_report_cap, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
