/*
 * test_idempotency.c -- unit tests of src/server/idempotency.c: reading
 * Idempotency-Key values (structured-field strings and bare tokens) and the
 * table of keys in flight, per route.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/idempotency.h"

static void test_parse(void **state)
{
    (void)state;
    char key[STOCK_ID_MAX + 1];
    assert_null(idempotency_parse("\"k-1\"", key, sizeof key));
    assert_string_equal(key, "k-1");
    assert_null(idempotency_parse("k-1", key, sizeof key));
    assert_string_equal(key, "k-1");
    assert_null(idempotency_parse("\"a\\\"b\\\\c\"", key, sizeof key));
    assert_string_equal(key, "a\"b\\c");
    char longest[STOCK_ID_MAX + 3] = "\"";
    memset(longest + 1, 'x', STOCK_ID_MAX);
    strcpy(longest + 1 + STOCK_ID_MAX, "\"");
    assert_null(idempotency_parse(longest, key, sizeof key));
    assert_int_equal(strlen(key), STOCK_ID_MAX);
}

static void test_parse_refused(void **state)
{
    (void)state;
    char key[STOCK_ID_MAX + 1];
    const char *refused[] = {"", "\"\"", "\"a b\"", "\"abc", "\"abc\"x", "\"a\\nb\"", "a b"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_non_null(idempotency_parse(refused[i], key, sizeof key));
    char too_long[STOCK_ID_MAX + 4] = "\"";
    memset(too_long + 1, 'x', STOCK_ID_MAX + 1);
    strcpy(too_long + 2 + STOCK_ID_MAX, "\"");
    assert_non_null(idempotency_parse(too_long, key, sizeof key));
}

static void test_in_flight(void **state)
{
    (void)state;
    idempotency_entry first = {0}, second = {0}, other_route = {0};
    assert_false(idempotency_in_flight(1, "k"));
    idempotency_begin(&first, 1, "k");
    idempotency_begin(&other_route, 2, "k");
    assert_true(idempotency_in_flight(1, "k"));
    assert_false(idempotency_in_flight(1, "k2"));
    idempotency_end(&first);
    assert_false(idempotency_in_flight(1, "k"));
    assert_true(idempotency_in_flight(2, "k"));   /* keys are per route */
    idempotency_end(&first);                      /* ending twice is harmless */
    idempotency_begin(&second, 1, "k");
    assert_true(idempotency_in_flight(1, "k"));
    idempotency_end(&second);
    idempotency_end(&other_route);
    assert_false(idempotency_in_flight(2, "k"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
