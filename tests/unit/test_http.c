/*
 * test_http.c -- unit tests of the HTTP reader and writer (src/proto/http.c):
 * whole, byte-by-byte and pipelined requests, keep-alive, the Authorization
 * Idempotency-Key and If-Match headers, chunked bodies, and the
 * 400/413/431 limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/http.h"

#define BODY_MAX 64

static http_reader reader;

static int setup(void **state)
{
    (void)state;
    http_reader_init(&reader, BODY_MAX);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    http_reader_free(&reader);
    return 0;
}

static void assert_buf(const buf *b, const char *text)
{
    assert_int_equal(b->len, strlen(text));
    assert_memory_equal(b->data, text, b->len);
}

static void test_post(void **state)
{
    (void)state;
    const char *text = "POST /v1/deductions?x=1 HTTP/1.1\r\nHost: a\r\n"
                       "authorization: Bearer s3cret\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
    size_t used = 0;
    assert_int_equal(http_reader_feed(&reader, text, strlen(text), &used), HTTP_READ_DONE);
    assert_int_equal(used, strlen(text));
    assert_int_equal(reader.request.method, HTTP_POST);
    assert_buf(&reader.request.url, "/v1/deductions?x=1");
    assert_buf(&reader.request.body, "{\"a\":1}");
    assert_string_equal(reader.request.authorization, "Bearer s3cret");
    assert_true(reader.request.keep_alive);
}

static void test_byte_by_byte_pipeline(void **state)
{
    (void)state;
    const char *text = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n";
    size_t len = strlen(text), offset = 0, done = 0, fed = 0;
    const char *urls[] = {"/a", "/b"};
    while (offset < len) {
        fed = fed < len ? fed + 1 : len;
        size_t used = 0;
        http_read_status status = http_reader_feed(&reader, text + offset, fed - offset, &used);
        offset += used;
        if (status == HTTP_READ_DONE) {
            assert_true(done < 2);
            assert_buf(&reader.request.url, urls[done]);
            assert_int_equal(reader.request.keep_alive, done == 0);
            done++;
            http_reader_next(&reader);
        } else
            assert_int_equal(status, HTTP_READ_MORE);
    }
    assert_int_equal(done, 2);
}

static void test_chunked(void **state)
{
    (void)state;
    const char *text = "PUT /v1/skus/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
    size_t used = 0;
    assert_int_equal(http_reader_feed(&reader, text, strlen(text), &used), HTTP_READ_DONE);
    assert_buf(&reader.request.body, "{\"a\":1}");
}

static void expect_error(const char *text, int status)
{
    size_t used = 0;
    assert_int_equal(http_reader_feed(&reader, text, strlen(text), &used), HTTP_READ_ERROR);
    assert_int_equal(reader.error_status, status);
    assert_non_null(reader.error);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("BLAH / HTTP/1.1\r\n\r\n", 400);
}

static void test_body_limit(void **state)
{
    (void)state;
    expect_error("POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n", 413);
}

static void test_chunked_body_limit(void **state)
{
    (void)state;
    char text[512];
    snprintf(text, sizeof text, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n%065d\r\n", 0);
    expect_error(text, 413);
}

static void test_header_limit(void **state)
{
    (void)state;
    size_t size = HTTP_HEADER_BYTES_MAX + 100;
    char *text = malloc(size + 64);
    assert_non_null(text);
    int n = snprintf(text, 64, "GET / HTTP/1.1\r\nX-Big: ");
    memset(text + n, 'y', size);
    strcpy(text + n + size, "\r\n\r\n");
    expect_error(text, 431);
    free(text);
}

/* Each header the request keeps is refused with 431 once its value fills
 * its buffer. */
static void test_kept_header_limits(void **state)
{
    (void)state;
    static const struct { const char *name; size_t max; } kept[] = {
        {"Authorization", HTTP_AUTHORIZATION_MAX},
        {"Idempotency-Key", HTTP_PRECONDITION_MAX},
        {"If-Match", HTTP_PRECONDITION_MAX},
    };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        char text[HTTP_AUTHORIZATION_MAX + 128];
        int n = snprintf(text, 64, "GET / HTTP/1.1\r\n%s: ", kept[i].name);
        memset(text + n, 'z', kept[i].max);
        strcpy(text + n + kept[i].max, "\r\n\r\n");
        expect_error(text, 431);
        http_reader_free(&reader);
        http_reader_init(&reader, BODY_MAX);
    }
}

static void test_precondition_headers(void **state)
{
    (void)state;
    const char *text = "POST / HTTP/1.1\r\nidempotency-KEY: \"k-1\"\r\nIf-Match: \"5-5-0-0\"\r\n"
                       "Content-Length: 0\r\n\r\n";
    size_t used = 0;
    assert_int_equal(http_reader_feed(&reader, text, strlen(text), &used), HTTP_READ_DONE);
    assert_string_equal(reader.request.idempotency_key, "\"k-1\"");
    assert_string_equal(reader.request.if_match, "\"5-5-0-0\"");
    http_reader_next(&reader);   /* the next request starts without them */
    const char *next = "GET / HTTP/1.1\r\n\r\n";
    assert_int_equal(http_reader_feed(&reader, next, strlen(next), &used), HTTP_READ_DONE);
    assert_string_equal(reader.request.idempotency_key, "");
    assert_string_equal(reader.request.if_match, "");
}

static void test_expect_continue(void **state)
{
    (void)state;
    const char *head = "POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n";
    size_t used = 0;
    assert_false(http_reader_take_continue(&reader));
    assert_int_equal(http_reader_feed(&reader, head, strlen(head), &used), HTTP_READ_MORE);
    assert_true(http_reader_take_continue(&reader));
    assert_false(http_reader_take_continue(&reader));   /* once */
    assert_int_equal(http_reader_feed(&reader, "{}", 2, &used), HTTP_READ_DONE);
    assert_true(reader.request.expect_continue);
    http_reader_next(&reader);
    assert_false(reader.request.expect_continue);
}

static void test_write(void **state)
{
    (void)state;
    buf out = {0};
    assert_true(http_write_response(&out, 409, "application/json", "Idempotent-Replayed: true\r\n",
                                    "{}", 2, false));
    assert_buf(&out, "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n"
                     "Content-Length: 2\r\nConnection: close\r\nIdempotent-Replayed: true\r\n\r\n{}");
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_post, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byte_by_byte_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_body_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_header_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precondition_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
