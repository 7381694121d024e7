/*
 * backend.h -- the interface every backend implements behind stock.h.
 *
 * stock_open() walks the table in registry.c and hands the URI to the first
 * backend whose accepts() says yes. A backend's store struct begins with a
 * `struct stock` so that the library can reach its vtable.
 *
 * The library validates every op before a backend sees it: on entry to
 * submit(), ops whose code is STOCK_INVALID are already complete and must be
 * left untouched; every other op has code STOCK_OK, failed_line -1 and an
 * empty message, and must be given its result. submit() must call
 * batch->done exactly once, after the last op of the batch has its result
 * (and, for a durable backend, after the batch's effects are durable).
 */
#ifndef STOCK_BACKEND_H
#define STOCK_BACKEND_H

#include "stock.h"

typedef struct stock_backend_ops {
    const char *name;
    /* True if this backend serves the URI (usually a scheme prefix test). */
    bool (*accepts)(const char *uri);
    /* As stock_open(); *store receives the backend's struct stock. */
    stock_code (*open)(const char *uri, const stock_config *config,
                       stock_t **store, char *message, size_t message_size);
    /* As stock_submit() after validation (see above). */
    void (*submit)(stock_t *store, stock_batch *batch);
    /* As stock_close(): drain, flush, free. */
    stock_code (*close)(stock_t *store);
    /* As stock_get_stats(); NULL if the backend keeps no counters. */
    stock_code (*get_stats)(stock_t *store, stock_stats *stats);
} stock_backend_ops;

struct stock {
    const stock_backend_ops *ops;
};

/* The backends, in the order stock_open() asks them (registry.c). */
extern const stock_backend_ops *const stock_backends[];

/* Each backend exports one table. */
extern const stock_backend_ops embedded_backend;
extern const stock_backend_ops remote_backend;     /* stockd:// (remote.c) */
extern const stock_backend_ops postgres_backend;   /* postgres:// (postgres.c) */
extern const stock_backend_ops redis_backend;      /* redis:// (redis.c) */

#endif /* STOCK_BACKEND_H */
