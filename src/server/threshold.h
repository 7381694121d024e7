/*
 * threshold.h -- the per-SKU thresholds of the stock events through stockd
 * (docs/events.md, "Thresholds"): RESP THRESHOLD and HTTP
 * GET/PUT /v1/skus/{sku}/threshold. They live in the thresholds file of the
 * embedded store's data folder (lib/thresholds.h), where stockevents reads
 * them; a server over another store has none to set.
 */
#ifndef STOCK_SERVER_THRESHOLD_H
#define STOCK_SERVER_THRESHOLD_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/resp.h"
#include "server/server.h"

/*
 * Reads sku's threshold into *value (set false; 0 when it has none), or
 * sets it to *value (set true; 0 removes it). Synchronous file I/O on the
 * calling thread: an administrative call, a rewrite of a small file.
 * Returns STOCK_OK; STOCK_INVALID (a bad sku or value: nothing changed),
 * STOCK_UNSUPPORTED (the store is not embedded), STOCK_IO; with message.
 */
stock_code threshold_run(const server *srv, const char *sku, size_t sku_len, bool set,
                         int64_t *value, char *message, size_t message_size);

/* The data folder of srv's store into path (size bytes): STOCK_OK, or
 * STOCK_UNSUPPORTED when the store is not embedded, with message. (Also
 * for GET /v1/events, server/sse.h.) */
stock_code threshold_store_folder(const server *srv, char *path, size_t size, char *message,
                                  size_t message_size);

/* RESP: THRESHOLD sku [n] -> the threshold as an integer. */
void threshold_command(struct conn *c, const resp_request *r);

#endif /* STOCK_SERVER_THRESHOLD_H */
