/*
 * metrics.h -- stockd's counters and their Prometheus text rendering
 * (GET /metrics): operations by type and result, batch sizes, connections,
 * protocol errors, the store's own counters (fsync latency histogram)
 * from stock_get_stats, and the hot SKUs (server/hot.h). Counters are touched only on the loop thread.
 */
#ifndef STOCK_SERVER_METRICS_H
#define STOCK_SERVER_METRICS_H

#include <stdint.h>

#include "lib/buf.h"
#include "server/hot.h"
#include "stock.h"

#define METRICS_BATCH_BUCKETS 17   /* batch size <= 1, 2, 4, ... 65536 */
#define METRICS_LATENCY_BUCKETS 16 /* batch latency <= 16 us << i, last +Inf */

typedef struct metrics {
    uint64_t ops[STOCK_OP_TYPE_MAX + 1][STOCK_CODE_COUNT];
    uint64_t batch_buckets[METRICS_BATCH_BUCKETS];
    uint64_t batches;
    uint64_t batch_ops;
    uint64_t latency_buckets[METRICS_LATENCY_BUCKETS];
    uint64_t latency_us_sum;
    uint64_t connections_accepted;
    uint64_t connections_rejected;   /* over --maxclients */
    uint64_t connections_open;
    uint64_t connections_max;        /* --maxclients, so alerts can compare */
    uint64_t idle_closed;            /* closed by --idle-timeout */
    uint64_t protocol_errors;        /* malformed or oversize requests */
    uint64_t auth_failures;          /* wrong passwords, and attempts refused by the limit */
    uint64_t permission_denied;      /* NOPERM / 403: a user without the right */
    uint64_t tls_failures;           /* failed handshakes, plaintext on a TLS port */
    uint64_t backup_running;         /* 1 while BACKUP copies (backup.c) */
    uint64_t backups_done;           /* BACKUPs that wrote their manifest */
    uint64_t backups_failed;         /* BACKUPs that failed after starting */
} metrics;

/* Counts one completed batch: its size, each op's type and result, and
 * latency_us, the time from stock_submit to the loop seeing it complete. */
void metrics_count_batch(metrics *counters, const stock_batch *batch,
                         uint64_t latency_us);

struct health_report;

/*
 * Appends the Prometheus text exposition of counters, of store's
 * stock_get_stats, of the health report (health.h) and of the hot SKUs of
 * h at now_ms to out. Returns false on out of memory.
 */
bool metrics_render(const metrics *counters, const hot *h, uint64_t now_ms, stock_t *store,
                    const struct health_report *health, buf *out);

#endif /* STOCK_SERVER_METRICS_H */
