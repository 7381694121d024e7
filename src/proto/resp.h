/*
 * resp.h -- the RESP request parser and reply writers of stockd (no I/O).
 *
 * The parser is on the hot path: it is stateless and zero-copy. Each call
 * looks at the bytes received so far and either returns one whole request,
 * whose arguments point into those bytes, or says that more bytes are needed.
 * It never allocates, and every count and length it reads is checked against
 * a named limit before it is trusted, so a hostile client gets an error, not
 * an allocation. The writers append replies to a buf (lib/buf.h).
 */
#ifndef STOCK_RESP_H
#define STOCK_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define RESP_ARGS_MAX 512             /* arguments in one request, name included */
#define RESP_INLINE_MAX (64 * 1024)   /* bytes in one inline command line */
#define RESP_HEADER_MAX 32            /* bytes in a "*N\r\n" or "$N\r\n" line */
#define RESP_INT64_DIGITS_MAX 19      /* digits of a number argument */

/* One argument: borrowed bytes inside the buffer given to resp_parse. */
typedef struct resp_arg {
    const char *ptr;
    uint32_t len;
} resp_arg;

/* One request. argv entries point into the parsed buffer. */
typedef struct resp_request {
    uint32_t argc;
    resp_arg argv[RESP_ARGS_MAX];
} resp_request;

typedef enum resp_status {
    RESP_DONE,        /* one request in *request; *consumed bytes used */
    RESP_INCOMPLETE,  /* no whole request yet; *consumed bytes of empty
                         lines or empty arrays may be dropped */
    RESP_ERROR        /* protocol error: *error says what; close the link */
} resp_status;

/*
 * Parses the first request in data[0..len): a RESP array of bulk strings or
 * an inline command line. Empty inline lines and empty arrays are skipped.
 *
 * bulk_max   the largest bulk string accepted (bytes).
 * request    out: the request when RESP_DONE (argc >= 1). Its argv borrow
 *            data, which must outlive their use.
 * consumed   out: bytes of data used (the request and anything skipped).
 * error      out: on RESP_ERROR a static sentence starting "Protocol error:".
 *
 * Never reads outside data[0..len) and never allocates.
 */
resp_status resp_parse(const char *data, size_t len, size_t bulk_max,
                       resp_request *request, size_t *consumed,
                       const char **error);

/* True, with *value set, if arg is an optional '-' and 1..19 decimal digits
 * whose value fits an int64_t. */
bool resp_arg_int64(resp_arg arg, int64_t *value);

/* True if arg equals the NUL-terminated word, ignoring ASCII case. */
bool resp_arg_is(resp_arg arg, const char *word);

/*
 * Reply writers. Each appends one RESP element to out and returns false on
 * out of memory (out may then hold part of the element; the caller drops the
 * connection). proto is 2 or 3 where the encoding differs.
 */
bool resp_write_simple(buf *out, const char *text);        /* +text */
bool resp_write_error(buf *out, const char *word,           /* -WORD message */
                      const char *message);                 /* CR/LF -> space */
bool resp_write_integer(buf *out, int64_t value);           /* :value */
bool resp_write_bulk(buf *out, const char *data, size_t len);
bool resp_write_null(buf *out, int proto);                  /* $-1 or _ */
bool resp_write_array(buf *out, size_t count);              /* *count */
/* A map of count pairs: %count under RESP3, *2count under RESP2. */
bool resp_write_map(buf *out, size_t count, int proto);

#endif /* STOCK_RESP_H */
