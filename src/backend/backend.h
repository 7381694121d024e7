/*
 * backend.h -- the interface every backend implements behind stock.h.
 *
 * stock_open() walks the table in registry.c and hands the URI to the first
 * backend whose accepts() says yes. A backend's store struct begins with a
 * `struct stock` so that the library can reach its vtable and counters;
 * allocated zeroed, the counters start at 0.
 *
 * What a backend must do:
 *   - open: parse its URI and config, connect or recover, and say in the
 *     message what failed;
 *   - submit: give every op that is not already complete its result, in
 *     order (an op sees the effects of every op submitted before it), then
 *     complete each batch exactly once, in submission order, through
 *     batches_complete (lib/batches.h) -- for a durable backend only once
 *     the batch's effects are durable;
 *   - close: finish every batch already submitted, make it durable, free;
 *   - list (optional): one page of a listing, as stock_list; a backend
 *     without it answers STOCK_UNSUPPORTED;
 *   - backup (optional): an online backup, as stock_backup; a backend
 *     without it answers STOCK_UNSUPPORTED.
 *
 * What it gets for free:
 *   - validation: stock_submit runs stock_validate on every op first. On
 *     entry to submit(), ops whose code is STOCK_INVALID are complete and
 *     must be left untouched; every other op has code STOCK_OK, failed_line
 *     -1 and an empty message. A batch with no valid op never reaches the
 *     backend; nor does a hold op when the backend has no holds (holds
 *     below): it is UNSUPPORTED;
 *   - completion and accounting: batches_complete calls done in order and
 *     counts batches and operations in struct stock's counters
 *     (lib/stats.h), which stock_get_stats reports; batches_fail fails
 *     what cannot run; a backend that makes batches durable feeds the
 *     sync/commit histogram with stats_count_sync;
 *   - a thread, when the work blocks: lib/worker.h queues batches for one
 *     thread and hands them over as chains (remote.c, postgres.c);
 *   - wording: results through lib/result.h, stock_open's message through
 *     message_set (lib/message.h);
 *   - URIs: percent-decoding, query options and integers (lib/uri.h);
 *     the clock (lib/clock.h); id equality (lib/id.h).
 */
#ifndef STOCK_BACKEND_H
#define STOCK_BACKEND_H

#include "lib/stats.h"
#include "stock.h"

/* A stock_list call, validated: kind in range, of an id (SKU_LINES,
 * ORDER_LINES) or {NULL, 0} (SKUS), after an id or {NULL, 0}, max in
 * 1..STOCK_LIST_MAX. */
typedef struct list_request {
    stock_list_kind kind;
    stock_id of;
    stock_id after;
    uint32_t max;
} list_request;

typedef struct stock_backend_ops {
    const char *name;
    /* True if it keeps holds (STOCK_OP_HOLD .. STOCK_OP_HOLD_GET). For a
     * backend without, stock_submit answers every hold op UNSUPPORTED
     * itself, so its submit never sees one. */
    bool holds;
    /* True if this backend serves the URI (usually a scheme prefix test). */
    bool (*accepts)(const char *uri);
    /* As stock_open(); *store receives the backend's struct stock. message
     * is never NULL and holds message_size (STOCK_MESSAGE_MAX) bytes. */
    stock_code (*open)(const char *uri, const stock_config *config,
                       stock_t **store, char *message, size_t message_size);
    /* As stock_submit() after validation (see above). */
    void (*submit)(stock_t *store, stock_batch *batch);
    /* As stock_close(): drain, flush, free. */
    stock_code (*close)(stock_t *store);
    /* As stock_get_stats(), for the fields only this backend knows: the
     * library has filled the rest from struct stock's counters. NULL if
     * those are all it has. */
    stock_code (*get_stats)(stock_t *store, stock_stats *stats);
    /* As stock_list() after validation: writes *count entries; message is
     * never NULL and holds message_size bytes, "" on entry. NULL if the
     * backend cannot list. */
    stock_code (*list)(stock_t *store, const list_request *request,
                       stock_list_entry *entries, uint32_t *count,
                       char *message, size_t message_size);
    /* As stock_completion_fd(); NULL if the backend has none (-1). */
    int (*completion_fd)(stock_t *store);
    /* As stock_process_completions(); NULL with completion_fd. */
    void (*process_completions)(stock_t *store);
    /* As stock_get_health(), *health zeroed; NULL if the backend knows
     * nothing of it. */
    stock_code (*get_health)(stock_t *store, stock_health *health);
    /* As stock_backup() after validation (dest 1..STOCK_PATH_MAX - 1
     * bytes, *info zeroed): message is never NULL and holds message_size
     * bytes, "" on entry. NULL if the backend cannot back up. */
    stock_code (*backup)(stock_t *store, const char *dest, stock_backup_info *info,
                         char *message, size_t message_size);
} stock_backend_ops;

struct stock {
    const stock_backend_ops *ops;
    stats_counters stats;   /* the library's counters (lib/stats.h) */
};

/* The backends, in the order stock_open() asks them (registry.c). */
extern const stock_backend_ops *const stock_backends[];

/* Each backend exports one table. */
extern const stock_backend_ops embedded_backend;
extern const stock_backend_ops remote_backend;     /* stockd:// (remote.c) */
extern const stock_backend_ops postgres_backend;   /* postgres:// (postgres.c) */
extern const stock_backend_ops sharded_backend;    /* shards: (sharded.c) */
extern const stock_backend_ops redis_backend;      /* redis:// (redis.c) */

#endif /* STOCK_BACKEND_H */
