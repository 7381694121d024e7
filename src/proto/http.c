/*
 * http.c -- HTTP/1.1 request reading over http-parser and response writing
 * (see http.h). http-parser calls back with pieces of the request; the
 * callbacks copy what stockd needs and count everything against the limits,
 * then pause the parser at the end of each message so that requests are
 * handed out one at a time, in order.
 */
#include <assert.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proto/http.h"

static int fail(http_parser *parser, int status, const char *error)
{
    http_reader *r = parser->data;
    r->error_status = status;
    r->error = error;
    return -1;   /* stops http-parser (1 from on_headers_complete would mean "no body") */
}

static int count_header_bytes(http_parser *parser, size_t len)
{
    http_reader *r = parser->data;
    r->header_bytes += len;
    if (r->header_bytes > HTTP_HEADER_BYTES_MAX)
        return fail(parser, 431, "request line and headers exceed 16384 bytes");
    return 0;
}

static int on_url(http_parser *parser, const char *at, size_t len)
{
    http_reader *r = parser->data;
    if (count_header_bytes(parser, len) != 0)
        return -1;
    return buf_append(&r->request.url, at, len) ? 0 : fail(parser, 500, "out of memory");
}

static int on_header_field(http_parser *parser, const char *at, size_t len)
{
    http_reader *r = parser->data;
    if (count_header_bytes(parser, len) != 0)
        return -1;
    if (r->field_done) {   /* a new header starts */
        r->field_done = false;
        r->field_len = 0;
    }
    size_t room = sizeof r->field - 1 - r->field_len;
    size_t take = len < room ? len : room;
    memcpy(r->field + r->field_len, at, take);
    r->field_len += take;
    r->field[r->field_len] = '\0';
    return 0;
}

/* A header whose value the request keeps: its buffer in r->request. */
typedef struct kept_header {
    const char *name;
    size_t offset;
    size_t size;
    const char *too_long;   /* the 431's sentence */
} kept_header;

static const kept_header kept_headers[] = {
    {"authorization", offsetof(http_request, authorization), HTTP_AUTHORIZATION_MAX,
     "the Authorization header exceeds 1023 bytes"},
    {"idempotency-key", offsetof(http_request, idempotency_key), HTTP_PRECONDITION_MAX,
     "the Idempotency-Key header exceeds 255 bytes"},
    {"if-match", offsetof(http_request, if_match), HTTP_PRECONDITION_MAX,
     "the If-Match header exceeds 255 bytes"},
    {"last-event-id", offsetof(http_request, last_event_id), HTTP_PRECONDITION_MAX,
     "the Last-Event-ID header exceeds 255 bytes"},
};

static int on_header_value(http_parser *parser, const char *at, size_t len)
{
    http_reader *r = parser->data;
    if (count_header_bytes(parser, len) != 0)
        return -1;
    r->field_done = true;
    if (strcasecmp(r->field, "expect") == 0 && len == 12 && strncasecmp(at, "100-continue", 12) == 0)
        r->request.expect_continue = true;
    for (size_t i = 0; i < sizeof kept_headers / sizeof kept_headers[0]; i++) {
        const kept_header *kept = &kept_headers[i];
        if (strcasecmp(r->field, kept->name) != 0)
            continue;
        /* a value may come in pieces: append */
        char *value = (char *)&r->request + kept->offset;
        size_t used = strlen(value);
        if (used + len >= kept->size)
            return fail(parser, 431, kept->too_long);
        memcpy(value + used, at, len);
        value[used + len] = '\0';
    }
    return 0;
}

static int on_headers_complete(http_parser *parser)
{
    http_reader *r = parser->data;
    /* content_length is ULLONG_MAX when absent (chunked or no body). */
    if (parser->content_length != ULLONG_MAX && parser->content_length > r->body_max)
        return fail(parser, 413, "the request body exceeds max-request-bytes");
    r->continue_due = r->request.expect_continue;
    return 0;
}

static int on_body(http_parser *parser, const char *at, size_t len)
{
    http_reader *r = parser->data;
    if (r->request.body.len + len > r->body_max)
        return fail(parser, 413, "the request body exceeds max-request-bytes");
    return buf_append(&r->request.body, at, len) ? 0 : fail(parser, 500, "out of memory");
}

static int on_message_complete(http_parser *parser)
{
    http_reader *r = parser->data;
    r->request.method = (enum http_method)parser->method;
    r->request.keep_alive = http_should_keep_alive(parser) != 0;
    r->complete = true;
    http_parser_pause(parser, 1);   /* hand this request out before the next */
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void http_reader_init(http_reader *reader, size_t body_max)
{
    assert(reader != NULL && body_max > 0);
    memset(reader, 0, sizeof *reader);
    http_parser_init(&reader->parser, HTTP_REQUEST);
    reader->parser.data = reader;
    reader->body_max = body_max;
}

void http_reader_free(http_reader *reader)
{
    buf_free(&reader->request.url);
    buf_free(&reader->request.body);
}

http_read_status http_reader_feed(http_reader *reader, const char *data,
                                  size_t len, size_t *consumed)
{
    assert(!reader->complete && reader->error_status == 0);
    size_t used = http_parser_execute(&reader->parser, &settings, data, len);
    assert(used <= len);
    *consumed = used;
    if (reader->complete)
        return HTTP_READ_DONE;
    enum http_errno error = HTTP_PARSER_ERRNO(&reader->parser);
    if (reader->error_status != 0)
        return HTTP_READ_ERROR;
    if (error != HPE_OK || reader->parser.upgrade) {
        reader->error_status = 400;
        reader->error = reader->parser.upgrade ? "protocol upgrades are not supported"
                                               : http_errno_description(error);
        return HTTP_READ_ERROR;
    }
    assert(used == len);
    return HTTP_READ_MORE;
}

bool http_reader_take_continue(http_reader *reader)
{
    bool due = reader->continue_due && !reader->complete && reader->error_status == 0;
    reader->continue_due = false;
    return due;
}

void http_reader_next(http_reader *reader)
{
    assert(reader->complete);
    buf_clear(&reader->request.url);
    buf_clear(&reader->request.body);
    reader->request.authorization[0] = '\0';
    reader->request.idempotency_key[0] = '\0';
    reader->request.if_match[0] = '\0';
    reader->request.last_event_id[0] = '\0';
    reader->request.expect_continue = false;
    reader->continue_due = false;
    reader->header_bytes = 0;
    reader->field_len = 0;
    reader->field_done = false;
    reader->complete = false;
    http_parser_pause(&reader->parser, 0);
}

bool http_write_response(buf *out, int status, const char *content_type,
                         const char *extra_headers, const char *body,
                         size_t body_len, bool keep_alive)
{
    assert(status >= 100 && status <= 599);
    assert(body != NULL || body_len == 0);
    char head[512];
    int len = snprintf(head, sizeof head,
                       "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\nConnection: %s\r\n",
                       status, http_status_str((enum http_status)status),
                       content_type != NULL ? "Content-Type: " : "",
                       content_type != NULL ? content_type : "",
                       content_type != NULL ? "\r\n" : "", body_len,
                       keep_alive ? "keep-alive" : "close");
    assert(len > 0 && (size_t)len < sizeof head);
    return buf_append(out, head, (size_t)len) &&
           (extra_headers == NULL || buf_append(out, extra_headers, strlen(extra_headers))) &&
           buf_append(out, "\r\n", 2) && buf_append(out, body, body_len);
}
