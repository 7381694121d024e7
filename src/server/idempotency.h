/*
 * idempotency.h -- the Idempotency-Key header of HTTP POSTs
 * (draft-ietf-httpapi-idempotency-key-header; docs/http-api.md).
 *
 * A key is the id of the request's operation (a deduction's line_id, an
 * order's order_id, a refund's refund_id, an adjustment's id): the store
 * already answers a repeat as a replay and the same id with another payload
 * as CONFLICT, and keeps its ids as long as it keeps the lines. What the
 * store cannot tell is that the first request with a key is still in
 * progress: this module keeps the keys of the requests read and not yet
 * answered, so that a duplicate sent meanwhile is refused (409) instead of
 * waiting behind it.
 *
 * Loop thread only: the table is the process's one server's.
 */
#ifndef STOCK_SERVER_IDEMPOTENCY_H
#define STOCK_SERVER_IDEMPOTENCY_H

#include <stdbool.h>
#include <stdint.h>

#include "stock.h"

/* One request's key while it is in flight; lives in the request's call. */
typedef struct idempotency_entry {
    uint16_t route;                         /* keys are per route */
    char key[STOCK_ID_MAX + 1];
    bool registered;
    struct idempotency_entry *next;         /* its bucket's chain */
} idempotency_entry;

/*
 * Reads the key from an Idempotency-Key header value: a structured-field
 * string ("\"k-1\"", the draft's form, with \" and \\ escapes) or a bare
 * token (k-1). The key must be an id (1..STOCK_ID_MAX printable ASCII
 * bytes without space). Returns NULL and fills key (size bytes,
 * STOCK_ID_MAX + 1 at least), or a sentence saying what is wrong.
 */
const char *idempotency_parse(const char *value, char *key, size_t size);

/* True if a request of route with key has been registered and not ended. */
bool idempotency_in_flight(uint16_t route, const char *key);

/* Registers entry (not registered yet) as in flight for route and key. */
void idempotency_begin(idempotency_entry *entry, uint16_t route, const char *key);

/* Ends entry's registration; nothing if it is not registered. */
void idempotency_end(idempotency_entry *entry);

#endif /* STOCK_SERVER_IDEMPOTENCY_H */
