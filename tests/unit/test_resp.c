/*
 * test_resp.c -- unit tests of the RESP parser and writers (src/proto/resp.c):
 * whole, split, pipelined and inline requests, every limit, and the exact
 * bytes of each reply type.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/resp.h"

#define BULK_MAX 1024

static resp_request request;

static resp_status parse(const char *text, size_t *consumed, const char **error)
{
    *error = NULL;
    return resp_parse(text, strlen(text), BULK_MAX, &request, consumed, error);
}

static void assert_arg(uint32_t i, const char *text)
{
    assert_true(i < request.argc);
    assert_int_equal(request.argv[i].len, strlen(text));
    assert_memory_equal(request.argv[i].ptr, text, strlen(text));
}

static void test_array(void **state)
{
    (void)state;
    const char *text = "*4\r\n$6\r\nDEDUCT\r\n$2\r\nL1\r\n$3\r\nhot\r\n$1\r\n1\r\n";
    size_t consumed = 0;
    const char *error = NULL;
    assert_int_equal(parse(text, &consumed, &error), RESP_DONE);
    assert_int_equal(consumed, strlen(text));
    assert_int_equal(request.argc, 4);
    assert_arg(0, "DEDUCT");
    assert_arg(3, "1");
    /* zero-copy: arguments point into the input */
    assert_ptr_equal(request.argv[1].ptr, text + 20);
}

static void test_every_split_is_incomplete(void **state)
{
    (void)state;
    const char *text = "*3\r\n$4\r\nECHO\r\n$0\r\n\r\n$3\r\nabc\r\n";
    size_t len = strlen(text);
    for (size_t cut = 0; cut < len; cut++) {
        size_t consumed = 99;
        const char *error = NULL;
        resp_status status = resp_parse(text, cut, BULK_MAX, &request,
                                        &consumed, &error);
        assert_int_equal(status, RESP_INCOMPLETE);
        assert_int_equal(consumed, 0);
    }
    size_t consumed = 0;
    const char *error = NULL;
    assert_int_equal(parse(text, &consumed, &error), RESP_DONE);
    assert_int_equal(request.argc, 3);
    assert_arg(1, "");
}

static void test_pipeline(void **state)
{
    (void)state;
    const char *text = "*1\r\n$4\r\nPING\r\nPING\r\n\r\n*0\r\nSTOCK a\n";
    size_t offset = 0, consumed = 0;
    const char *error = NULL;
    const char *expect[] = {"PING", "PING", "STOCK"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(resp_parse(text + offset, strlen(text) - offset,
                                    BULK_MAX, &request, &consumed, &error),
                         RESP_DONE);
        assert_arg(0, expect[i]);
        offset += consumed;
    }
    assert_arg(1, "a");
    assert_int_equal(offset, strlen(text));
}

static void test_inline(void **state)
{
    (void)state;
    size_t consumed = 0;
    const char *error = NULL;
    assert_int_equal(parse("  deduct\tL1  hot 1 \r\n", &consumed, &error), RESP_DONE);
    assert_int_equal(request.argc, 4);
    assert_arg(0, "deduct");
    assert_arg(2, "hot");
    assert_arg(3, "1");
    assert_int_equal(parse("deduct L1", &consumed, &error), RESP_INCOMPLETE);
    assert_int_equal(parse("\r\n\n", &consumed, &error), RESP_INCOMPLETE);
    assert_int_equal(consumed, 3);   /* empty lines are dropped */
    assert_int_equal(parse("a\rb\n", &consumed, &error), RESP_ERROR);
}

static void expect_error(const char *text, const char *words)
{
    size_t consumed = 0;
    const char *error = NULL;
    assert_int_equal(parse(text, &consumed, &error), RESP_ERROR);
    assert_non_null(error);
    assert_non_null(strstr(error, words));
}

static void test_limits(void **state)
{
    (void)state;
    expect_error("*513\r\n", "too many arguments");
    expect_error("*99999999999999999999\r\n", "invalid multibulk length");
    expect_error("*-2\r\n", "invalid multibulk length");
    expect_error("*x\r\n", "invalid multibulk length");
    expect_error("*1\r\n$1025\r\n", "invalid bulk length (over the request size limit)");
    expect_error("*1\r\n$-1\r\n", "invalid bulk length");
    expect_error("*1\r\n:1\r\n", "expected '$'");
    expect_error("*1\r\n$1\r\nab\r\n", "not ended by CRLF");
    expect_error("*1\r\n$000000000000000000000000000000001\r\n", "invalid bulk length");
    char *line = malloc(RESP_INLINE_MAX + 1);
    assert_non_null(line);
    memset(line, 'a', RESP_INLINE_MAX);
    line[RESP_INLINE_MAX] = '\0';
    expect_error(line, "too big inline request");
    free(line);
    /* 513 inline words */
    char words[513 * 2 + 2];
    for (int i = 0; i < 513; i++)
        words[2 * i] = 'w', words[2 * i + 1] = ' ';
    words[513 * 2] = '\n';
    words[513 * 2 + 1] = '\0';
    expect_error(words, "too many arguments");
}

static void test_int64(void **state)
{
    (void)state;
    int64_t value = 0;
    resp_arg arg = {"9223372036854775807", 19};
    assert_true(resp_arg_int64(arg, &value));
    assert_true(value == INT64_MAX);
    arg = (resp_arg){"9223372036854775808", 19};
    assert_false(resp_arg_int64(arg, &value));
    arg = (resp_arg){"-42", 3};
    assert_true(resp_arg_int64(arg, &value));
    assert_int_equal(value, -42);
    const char *bad[] = {"", "-", "+1", "1.5", "1e3", " 1", "12345678901234567890", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        arg = (resp_arg){bad[i], (uint32_t)strlen(bad[i])};
        assert_false(resp_arg_int64(arg, &value));
    }
    assert_true(resp_arg_is((resp_arg){"eXpEcT", 6}, "EXPECT"));
    assert_false(resp_arg_is((resp_arg){"EXPEC", 5}, "EXPECT"));
}

static void expect_output(buf *out, const char *text)
{
    assert_int_equal(out->len, strlen(text));
    assert_memory_equal(out->data, text, out->len);
    buf_clear(out);
}

static void test_writers(void **state)
{
    (void)state;
    buf out = {0};
    assert_true(resp_write_integer(&out, -9223372036854775807LL - 1));
    expect_output(&out, ":-9223372036854775808\r\n");
    assert_true(resp_write_integer(&out, 0));
    expect_output(&out, ":0\r\n");
    assert_true(resp_write_error(&out, "INSUFFICIENT", "sku=A12 available=3"));
    expect_output(&out, "-INSUFFICIENT sku=A12 available=3\r\n");
    assert_true(resp_write_error(&out, "ERR", "bad\r\nthing"));
    expect_output(&out, "-ERR bad  thing\r\n");
    assert_true(resp_write_simple(&out, "OK"));
    expect_output(&out, "+OK\r\n");
    assert_true(resp_write_bulk(&out, "ab", 2));
    expect_output(&out, "$2\r\nab\r\n");
    assert_true(resp_write_null(&out, 2) && resp_write_null(&out, 3));
    expect_output(&out, "$-1\r\n_\r\n");
    assert_true(resp_write_map(&out, 2, 2) && resp_write_map(&out, 2, 3));
    expect_output(&out, "*4\r\n%2\r\n");
    assert_true(resp_write_array(&out, 3));
    expect_output(&out, "*3\r\n");
    buf_free(&out);
}

/* Integers of every digit count, each side of every power of ten, are
 * written as snprintf writes them (the writer formats two digits a step). */
static void test_integer_digits(void **state)
{
    (void)state;
    buf out = {0};
    char expected[32];
    int64_t power = 1;   /* 10^(digits - 1), the least number of that many digits */
    for (int digits = 1; digits <= 19; digits++) {
        if (digits > 1)
            power *= 10;
        const int64_t values[] = {power - 1, power, power + 1, -power, -(power - 1)};
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
            snprintf(expected, sizeof expected, ":%lld\r\n", (long long)values[i]);
            assert_true(resp_write_integer(&out, values[i]));
            expect_output(&out, expected);
        }
    }
    assert_true(resp_write_integer(&out, INT64_MAX));
    expect_output(&out, ":9223372036854775807\r\n");
    buf_free(&out);
}

/* Headers of one and two digits take a fast path; longer ones, leading
 * zeros and lines cut short take the general one: all must agree. */
static void test_header_widths(void **state)
{
    (void)state;
    size_t consumed = 0;
    const char *error = NULL;
    const char *text = "*2\r\n$012\r\nabcdefghijkl\r\n$1\r\nx\r\n";
    assert_int_equal(parse(text, &consumed, &error), RESP_DONE);
    assert_int_equal(consumed, strlen(text));
    assert_arg(0, "abcdefghijkl");
    assert_arg(1, "x");
    text = "*1\r\n$100\r\n";
    assert_int_equal(parse(text, &consumed, &error), RESP_INCOMPLETE);
    assert_int_equal(parse("*1\r\n$1x\r\n", &consumed, &error), RESP_ERROR);
    assert_int_equal(parse("*1\r\n$12\rx", &consumed, &error), RESP_ERROR);
    assert_int_equal(parse("*1\r\n$-1\r\n", &consumed, &error), RESP_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_array),
        cmocka_unit_test(test_every_split_is_incomplete),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_int64),
        cmocka_unit_test(test_writers),
        cmocka_unit_test(test_integer_digits),
        cmocka_unit_test(test_header_widths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
