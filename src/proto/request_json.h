/*
 * request_json.h -- the JSON bodies of the store requests and of their
 * results (docs/http-api.md), with no I/O: stockd's HTTP routes and the
 * message-queue intake (tools/stockintake, docs/intake.md) read and write
 * the same JSON through this one module, so a field, a limit or an error
 * message cannot differ between them.
 *
 * A request owns every byte its op points to (ids are copied out of the
 * JSON), so the op may wait in a batch after the body's buffer is reused.
 * Values of the wrong JSON type are passed on out of range, so that
 * stock_validate words the INVALID error as it does for every other front
 * end.
 */
#ifndef STOCK_PROTO_REQUEST_JSON_H
#define STOCK_PROTO_REQUEST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "stock.h"

/* Bytes kept of an id: one more than any valid id, so too long stays too
 * long; plus the NUL. */
#define REQUEST_ID_BYTES (STOCK_ID_MAX + 2)
#define REQUEST_MESSAGE_MAX 256   /* bytes of a parse error message */

/* What a request does; the kind of an HTTP route or of an intake subject. */
typedef enum request_kind {
    REQUEST_SET = 1, REQUEST_GET, REQUEST_ADD, REQUEST_DEDUCT, REQUEST_ORDER,
    REQUEST_REFUND, REQUEST_LINE,
    REQUEST_HOLD, REQUEST_CONFIRM, REQUEST_RELEASE, REQUEST_HOLD_ORDER, REQUEST_HOLD_GET
} request_kind;

typedef struct request_id {
    char text[REQUEST_ID_BYTES];
} request_id;

/* One parsed request: one allocation, released with free(). */
typedef struct request {
    request_kind kind;
    request_id sku, id, line;
    stock_order_line *lines;   /* ORDER, HOLD_ORDER: the op's lines (holds),
                                  inside this allocation */
    request_id *line_ids;      /* 2 per line: line (hold) id then sku */
} request;

typedef enum request_status {
    REQUEST_PARSED,     /* *made and op are set */
    REQUEST_REFUSED,    /* the body can never make an op: message says why */
    REQUEST_NOMEM
} request_status;

/*
 * Reads body (len bytes) as the JSON of a kind request and fills op (type
 * and inputs, pointing into the new request). GET, LINE and HOLD_GET read
 * no body; CONFIRM and RELEASE may have none (len 0: the whole hold).
 * path_id (path_len bytes) is the SKU of SET, ADD and GET, the line of
 * LINE or the hold of CONFIRM, RELEASE and HOLD_GET, taken from elsewhere
 * (an HTTP path); NULL for the other kinds.
 *
 * Returns REQUEST_PARSED with *made the caller's to free() once op is done
 * with; REQUEST_REFUSED with message (REQUEST_MESSAGE_MAX bytes) saying
 * why (not JSON, not an object, an unknown field, too many order lines or
 * holds, an order line or hold that is not an object: then *failed_line
 * is its index, else -1); REQUEST_NOMEM. The values themselves are left to
 * stock_validate.
 */
request_status request_json_parse(request_kind kind, const char *body, size_t len,
                                  const char *path_id, size_t path_len, stock_op *op,
                                  request **made, char *message, int32_t *failed_line);

/* The body field that names a kind's op id (the id that makes a retry a
 * replay: "line_id", "order_id", "refund_id", "id" of an adjustment,
 * "hold_id"); NULL for the kinds whose id is not the body's (SET, the
 * reads, and CONFIRM and RELEASE, whose hold id is the path's). */
const char *request_json_id_field(request_kind kind);

/* Makes id (NUL-terminated; cut past any id's limit) the op's id, the one
 * request_json_id_field names, copied into made: an HTTP Idempotency-Key
 * given instead of, or as well as, the body's field. */
void request_json_set_id(request *made, stock_op *op, const char *id);

/* The JSON body answering op (complete) of a kind request: the success
 * body of docs/http-api.md on OK and REPLAY, else the intake's error body
 * {"error", "message"[, "failed_line"]} (failed_line: the order line or
 * hold at fault). A new reference, or NULL when out of memory. */
json_t *request_json_result(request_kind kind, const stock_op *op);

/* {"error": word, "message": message}, the intake's error: a new
 * reference, or NULL. */
json_t *request_json_error(const char *word, const char *message);

/*
 * HTTP errors are RFC 9457 problem details (docs/http-api.md, "Errors"):
 * the members RFC 9457 defines (type, title, status, detail) and, as
 * extension members, what a program parses: `code`, the result's word (the
 * RESP error word: INSUFFICIENT, NOTFOUND, ...), and each fact of the
 * detail ("sku=A12 available=3" gives "sku": "A12" and "available": 3), so
 * that a client reads numbers from members, never from text.
 */
#define REQUEST_PROBLEM_TYPE "application/problem+json"

/* The problem object of an error answered with HTTP status and the code
 * word (e.g. 409, "INSUFFICIENT"), detail being the facts or sentence after
 * it. Its type is "tag:stockd,2026:" + the word in lower case; its title
 * the word's sentence. A new reference, or NULL when out of memory. */
json_t *request_json_problem(int status, const char *word, const char *detail);

/* The problem object answering op (failed) with HTTP status: its code's
 * word and message, and failed_line for the order line or hold at fault.
 * A new reference, or NULL. */
json_t *request_json_op_problem(int status, const stock_op *op);

#endif /* STOCK_PROTO_REQUEST_JSON_H */
