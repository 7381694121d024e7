/*
 * test_uri.c -- unit tests of the URI helpers every backend and stockd's
 * HTTP paths share (src/lib/uri.c): the one percent-decoding rule (escapes
 * of either case, a malformed or cut '%' refused, %00 refused, '+' kept),
 * cutting a long result, walking a query's options, and decimal integers
 * with their bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/uri.h"

#define TEST_OUT_MAX 64

static char out[TEST_OUT_MAX];

/* Decodes text into out; returns the reason, NULL when it decodes. */
static const char *decode(const char *text, size_t *decoded)
{
    memset(out, 'x', sizeof out);
    return uri_decode(text, strlen(text), out, sizeof out, decoded);
}

static void test_decode_good(void **state)
{
    (void)state;
    size_t decoded = 0;
    assert_null(decode("plain", &decoded));
    assert_string_equal(out, "plain");
    assert_int_equal(decoded, 5);
    assert_null(decode("a%2Fb%2fc", &decoded));   /* either case */
    assert_string_equal(out, "a/b/c");
    assert_int_equal(decoded, 5);
    assert_null(decode("s3cret%26x%3D%25", NULL));
    assert_string_equal(out, "s3cret&x=%");
    assert_null(decode("%ff", &decoded));
    assert_int_equal((unsigned char)out[0], 0xff);
    assert_int_equal(decoded, 1);
    assert_null(decode("", &decoded));
    assert_string_equal(out, "");
    assert_int_equal(decoded, 0);
}

static void test_decode_plus_is_a_plus(void **state)
{
    (void)state;
    assert_null(decode("a+b", NULL));
    assert_string_equal(out, "a+b");
    assert_null(decode("%2B", NULL));
    assert_string_equal(out, "+");
}

static void test_decode_refuses_malformed_escapes(void **state)
{
    (void)state;
    static const char *const bad[] = {"%", "a%", "a%4", "%zz", "%4g", "%g4", "ab%2/c",
                                      "% 41", "%-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = decode(bad[i], NULL);
        assert_non_null(why);
        assert_non_null(strstr(why, "two hex digits"));
    }
}

static void test_decode_refuses_nul(void **state)
{
    (void)state;
    const char *why = decode("ab%00cd", NULL);
    assert_non_null(why);
    assert_non_null(strstr(why, "%00"));
    assert_non_null(decode("%00", NULL));
    /* %000 is %00 then '0': still a NUL. */
    assert_non_null(decode("%000", NULL));
    /* Other control bytes are bytes like any other. */
    assert_null(decode("%01", NULL));
    assert_int_equal(out[0], 1);
}

static void test_decode_cuts_but_checks_the_rest(void **state)
{
    (void)state;
    char small[4];
    size_t decoded = 0;
    assert_null(uri_decode("abcdef", 6, small, sizeof small, &decoded));
    assert_string_equal(small, "abc");
    assert_int_equal(decoded, 6);
    /* A bad escape after the cut is still found. */
    assert_non_null(uri_decode("abcdef%zz", 9, small, sizeof small, &decoded));
    assert_non_null(uri_decode("abcdef%00", 9, small, sizeof small, &decoded));
    /* Only the given length is read. */
    assert_null(uri_decode("ab%zz", 2, small, sizeof small, &decoded));
    assert_string_equal(small, "ab");
}

static void test_options(void **state)
{
    (void)state;
    const char *query = "password=s%26x&&timeout_ms=5&flag&=v&";
    uri_option option;
    assert_true(uri_option_next(&query, &option));
    assert_true(uri_is(option.key, option.key_len, "password"));
    assert_true(option.has_value);
    assert_true(uri_is(option.value, option.value_len, "s%26x"));   /* not decoded */
    assert_int_equal(option.length, strlen("password=s%26x"));
    /* The empty item between "&&" is skipped. */
    assert_true(uri_option_next(&query, &option));
    assert_true(uri_is(option.key, option.key_len, "timeout_ms"));
    assert_true(uri_is(option.value, option.value_len, "5"));
    assert_true(uri_option_next(&query, &option));
    assert_true(uri_is(option.key, option.key_len, "flag"));
    assert_false(option.has_value);
    assert_int_equal(option.value_len, 0);
    assert_true(uri_option_next(&query, &option));
    assert_int_equal(option.key_len, 0);
    assert_true(option.has_value);
    assert_true(uri_is(option.value, option.value_len, "v"));
    /* The trailing '&' ends the query. */
    assert_false(uri_option_next(&query, &option));
    assert_false(uri_option_next(&query, &option));
    const char *empty = "";
    assert_false(uri_option_next(&empty, &option));
}

static void test_option_value_keeps_later_equals(void **state)
{
    (void)state;
    const char *query = "durability=sync=x";
    uri_option option;
    assert_true(uri_option_next(&query, &option));
    assert_true(uri_is(option.key, option.key_len, "durability"));
    assert_true(uri_is(option.value, option.value_len, "sync=x"));
    assert_false(uri_is(option.key, option.key_len, "durabilit"));
    assert_false(uri_is(option.key, option.key_len, "durability2"));
}

static bool parse(const char *text, uint64_t min, uint64_t max, uint64_t *value)
{
    return uri_parse_uint(text, strlen(text), min, max, value);
}

static void test_parse_uint(void **state)
{
    (void)state;
    uint64_t value = 0;
    assert_true(parse("1", 1, 65535, &value));
    assert_int_equal(value, 1);
    assert_true(parse("65535", 1, 65535, &value));
    assert_int_equal(value, 65535);
    assert_true(parse("007", 1, 65535, &value));
    assert_int_equal(value, 7);
    assert_true(parse("18446744073709551615", 0, UINT64_MAX, &value));
    assert_int_equal(value, UINT64_MAX);
    value = 42;
    static const char *const bad[] = {"", "0", "65536", "-1", "+1", " 1", "1 ", "1x",
                                      "0x10", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(parse(bad[i], 1, 65535, &value));
    assert_false(parse("18446744073709551616", 0, UINT64_MAX, &value));   /* overflow */
    assert_int_equal(value, 42);   /* untouched on failure */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_good),
        cmocka_unit_test(test_decode_plus_is_a_plus),
        cmocka_unit_test(test_decode_refuses_malformed_escapes),
        cmocka_unit_test(test_decode_refuses_nul),
        cmocka_unit_test(test_decode_cuts_but_checks_the_rest),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_option_value_keeps_later_equals),
        cmocka_unit_test(test_parse_uint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
