/*
 * test_etag.c -- unit tests of src/server/etag.c: a SKU's ETag and reading
 * it back from If-Match.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server/etag.h"

static void test_header(void **state)
{
    (void)state;
    char header[ETAG_HEADER_MAX];
    etag_header(&(stock_sku_info){7, 10, 5, 2, 0}, header);
    assert_string_equal(header, "ETag: \"7.10.5.2\"\r\n");
    etag_header(&(stock_sku_info){INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, 0}, header);
    assert_string_equal(header, "ETag: \"9223372036854775807.9223372036854775807."
                                "9223372036854775807.9223372036854775807\"\r\n");
}

static void test_if_match(void **state)
{
    (void)state;
    int64_t level = -1;
    assert_null(etag_if_match_level("\"7.10.5.2\"", &level));
    assert_int_equal(level, 7);
    assert_null(etag_if_match_level("\"9223372036854775807.1.0.0\"", &level));
    assert_int_equal(level, INT64_MAX);
    const char *refused[] = {"*", "W/\"7.10.5.2\"", "7.10.5.2", "\"7.10.5\"", "\"7.10.5.2.1\"",
                             "\"7.10.5.2\", \"8.11.5.2\"", "\"-1.0.0.0\"", "\"\"",
                             "\"9223372036854775808.0.0.0\"", "\"7.10.5.2"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_non_null(etag_if_match_level(refused[i], &level));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_if_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
