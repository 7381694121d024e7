/*
 * http.h -- stockd's HTTP/1.1 request reader and response writer (no I/O),
 * over Debian's http-parser.
 *
 * The reader takes bytes as they arrive and yields one whole request at a
 * time (keep-alive and pipelined requests included), copying the URL, the
 * body and the Authorization, Idempotency-Key and If-Match headers into
 * bounded buffers. Oversize headers
 * give 431 and an oversize body 413 before anything large is buffered.
 */
#ifndef STOCK_HTTP_H
#define STOCK_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <http_parser.h>

#include "lib/buf.h"

#define HTTP_HEADER_BYTES_MAX (16 * 1024)  /* request line + headers */
#define HTTP_AUTHORIZATION_MAX 1024        /* bytes of the Authorization value */
#define HTTP_FIELD_NAME_MAX 64             /* longest header name we look at */
#define HTTP_PRECONDITION_MAX 256          /* bytes of Idempotency-Key, If-Match, Last-Event-ID */

typedef struct http_request {
    enum http_method method;
    buf url;                               /* path and query, not NUL-terminated */
    buf body;
    char authorization[HTTP_AUTHORIZATION_MAX];  /* "" if absent */
    char idempotency_key[HTTP_PRECONDITION_MAX]; /* raw value, "" if absent */
    char if_match[HTTP_PRECONDITION_MAX];        /* raw value, "" if absent */
    char last_event_id[HTTP_PRECONDITION_MAX];   /* raw value, "" if absent */
    bool keep_alive;
    bool expect_continue;                  /* "Expect: 100-continue" was sent */
} http_request;

typedef enum http_read_status {
    HTTP_READ_DONE,   /* one request is in reader->request */
    HTTP_READ_MORE,   /* everything consumed; send more bytes */
    HTTP_READ_ERROR   /* reader->error_status, reader->error: answer, close */
} http_read_status;

typedef struct http_reader {
    http_parser parser;
    http_request request;
    size_t body_max;
    size_t header_bytes;
    char field[HTTP_FIELD_NAME_MAX];
    size_t field_len;
    bool field_done;        /* the value of `field` is being read */
    bool complete;
    bool continue_due;      /* headers asked for 100 Continue, body not read yet */
    int error_status;       /* 400, 413 or 431 */
    const char *error;      /* static sentence */
} http_reader;

/* Prepares a reader for a new connection; bodies over body_max bytes are
 * refused with 413. Free with http_reader_free. */
void http_reader_init(http_reader *reader, size_t body_max);

/* Frees the request buffers. */
void http_reader_free(http_reader *reader);

/*
 * Feeds data[0..len). *consumed receives the bytes used: on HTTP_READ_DONE
 * up to the end of the request (feed the rest after http_reader_next), on
 * HTTP_READ_MORE all of them.
 */
http_read_status http_reader_feed(http_reader *reader, const char *data,
                                  size_t len, size_t *consumed);

/* True once if the request being read sent "Expect: 100-continue" and its
 * headers are complete: the caller should answer "100 Continue" now (a
 * client such as curl otherwise waits a second before sending the body). */
bool http_reader_take_continue(http_reader *reader);

/* Forgets the request returned by the last HTTP_READ_DONE. */
void http_reader_next(http_reader *reader);

/*
 * Appends a whole response: status line, Content-Type (when body_len > 0 or
 * content_type given), Content-Length, Connection, extra_headers (already
 * "Name: value\r\n" lines, may be NULL) and the body. False on out of memory.
 */
bool http_write_response(buf *out, int status, const char *content_type,
                         const char *extra_headers, const char *body,
                         size_t body_len, bool keep_alive);

#endif /* STOCK_HTTP_H */
