/*
 * metrics.c -- counting and the Prometheus text format (see metrics.h).
 * Names follow Prometheus conventions: a stockd_ prefix, _total on counters,
 * base units (seconds) in histograms.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "server/health.h"
#include "server/metrics.h"

#define METRICS_LINE_MAX 256

static const char *const op_names[STOCK_OP_TYPE_MAX + 1] = {
    [STOCK_OP_SET] = "set", [STOCK_OP_ADD] = "add", [STOCK_OP_DEDUCT] = "deduct",
    [STOCK_OP_ORDER] = "order", [STOCK_OP_REFUND] = "refund",
    [STOCK_OP_GET] = "get", [STOCK_OP_LINE] = "line", [STOCK_OP_HOLD] = "hold",
    [STOCK_OP_CONFIRM] = "confirm", [STOCK_OP_RELEASE] = "release",
    [STOCK_OP_CONFIRM_ORDER] = "confirm_order", [STOCK_OP_HOLD_GET] = "hold_get",
};

/* The bucket of a batch latency: 16 us << i. */
static uint64_t latency_bound_us(unsigned i)
{
    return (uint64_t)16 << i;
}

void metrics_count_batch(metrics *counters, const stock_batch *batch,
                         uint64_t latency_us)
{
    assert(batch->count >= 1 && batch->count <= STOCK_BATCH_MAX);
    unsigned slot = 0;
    while (slot + 1 < METRICS_LATENCY_BUCKETS && latency_us > latency_bound_us(slot))
        slot++;
    counters->latency_buckets[slot]++;
    counters->latency_us_sum += latency_us;
    unsigned bucket = 0;
    while (((size_t)1 << bucket) < batch->count)
        bucket++;
    assert(bucket < METRICS_BATCH_BUCKETS);
    counters->batch_buckets[bucket]++;
    counters->batches++;
    counters->batch_ops += batch->count;
    for (size_t i = 0; i < batch->count; i++) {
        const stock_op *op = &batch->ops[i];
        if ((unsigned)op->type <= STOCK_OP_TYPE_MAX && (unsigned)op->code < STOCK_CODE_COUNT)
            counters->ops[op->type][op->code]++;
    }
}

static bool line(buf *out, const char *format, ...) __attribute__((format(printf, 2, 3)));

static bool line(buf *out, const char *format, ...)
{
    char text[METRICS_LINE_MAX];
    va_list args;
    va_start(args, format);
    int len = vsnprintf(text, sizeof text, format, args);
    va_end(args);
    assert(len > 0 && (size_t)len < sizeof text);
    return buf_append(out, text, (size_t)len);
}

static bool render_ops(const metrics *counters, buf *out)
{
    bool ok = line(out, "# HELP stockd_operations_total Operations completed, by type and result.\n"
                        "# TYPE stockd_operations_total counter\n");
    uint64_t replays = 0;
    for (int type = STOCK_OP_SET; type <= STOCK_OP_TYPE_MAX; type++)
        for (int code = 0; code < STOCK_CODE_COUNT; code++) {
            uint64_t n = counters->ops[type][code];
            replays += code == STOCK_REPLAY ? n : 0;
            if (n > 0 || code == STOCK_OK)
                ok = ok && line(out, "stockd_operations_total{type=\"%s\",result=\"%s\"} %" PRIu64 "\n",
                                op_names[type], stock_code_name((stock_code)code), n);
        }
    return ok && line(out, "# HELP stockd_replays_total Operations answered as replays of an earlier one.\n"
                           "# TYPE stockd_replays_total counter\n"
                           "stockd_replays_total %" PRIu64 "\n", replays);
}

static bool render_batches(const metrics *counters, buf *out)
{
    bool ok = line(out, "# HELP stockd_batch_size Operations per batch submitted to the store.\n"
                        "# TYPE stockd_batch_size histogram\n");
    uint64_t cumulative = 0;
    for (unsigned i = 0; i < METRICS_BATCH_BUCKETS; i++) {
        cumulative += counters->batch_buckets[i];
        ok = ok && line(out, "stockd_batch_size_bucket{le=\"%u\"} %" PRIu64 "\n", 1u << i, cumulative);
    }
    return ok && line(out, "stockd_batch_size_bucket{le=\"+Inf\"} %" PRIu64 "\n"
                           "stockd_batch_size_sum %" PRIu64 "\nstockd_batch_size_count %" PRIu64 "\n",
                      cumulative, counters->batch_ops, counters->batches);
}

/* A histogram of microsecond latencies in Prometheus form: cumulative
 * buckets with bounds in seconds, the last bucket unbounded. Both the
 * server's batch latency and the store's sync latency use it. */
typedef struct latency_histogram {
    const char *name;
    const char *help;
    const uint64_t *buckets;
    unsigned bucket_count;
    uint64_t (*bound_us)(unsigned i);
    uint64_t sum_us;
    uint64_t count;
} latency_histogram;

static bool render_histogram(const latency_histogram *h, buf *out)
{
    assert(h->bucket_count >= 2);
    bool ok = line(out, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
    uint64_t cumulative = 0;
    for (unsigned i = 0; i + 1 < h->bucket_count; i++) {
        cumulative += h->buckets[i];
        ok = ok && line(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", h->name,
                        (double)h->bound_us(i) / 1e6, cumulative);
    }
    cumulative += h->buckets[h->bucket_count - 1];
    return ok && line(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.6f\n%s_count %" PRIu64 "\n",
                      h->name, cumulative, h->name, (double)h->sum_us / 1e6, h->name, h->count);
}

static bool render_latency(const metrics *counters, buf *out)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < METRICS_LATENCY_BUCKETS; i++)
        total += counters->latency_buckets[i];
    assert(total == counters->batches);
    const latency_histogram h = {
        .name = "stockd_batch_seconds",
        .help = "Time from submitting a batch to the store to its completion.",
        .buckets = counters->latency_buckets, .bucket_count = METRICS_LATENCY_BUCKETS,
        .bound_us = latency_bound_us, .sum_us = counters->latency_us_sum,
        .count = counters->batches};
    return render_histogram(&h, out);
}

/* One metric with its HELP and TYPE lines. */
static bool render_one(buf *out, const char *name, const char *type, const char *help,
                       uint64_t value)
{
    return line(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type,
                name, value);
}

static bool render_connections(const metrics *counters, buf *out)
{
    const struct { const char *name, *help; uint64_t value; } totals[] = {
        {"stockd_connections_accepted_total", "Client connections accepted.",
         counters->connections_accepted},
        {"stockd_connections_rejected_total", "Connections refused over maxclients.",
         counters->connections_rejected},
        {"stockd_idle_closed_total", "Connections closed by the idle timeout.",
         counters->idle_closed},
        {"stockd_protocol_errors_total", "Malformed or oversize requests.",
         counters->protocol_errors},
        {"stockd_auth_failures_total",
         "Wrong or missing passwords, and attempts refused by the per-address limit.",
         counters->auth_failures},
        {"stockd_permission_denied_total",
         "Requests refused because the user may not make them (NOPERM, 403).",
         counters->permission_denied},
        {"stockd_tls_failures_total",
         "TLS handshakes that failed, and plaintext clients on a TLS port.",
         counters->tls_failures},
        {"stockd_backups_total", "BACKUPs that finished (their manifest written).",
         counters->backups_done},
        {"stockd_backups_failed_total",
         "BACKUPs that failed after starting (their folder has no manifest).",
         counters->backups_failed},
    };
    bool ok = render_one(out, "stockd_connections", "gauge", "Client connections open now.",
                         counters->connections_open) &&
              render_one(out, "stockd_connections_max", "gauge",
                         "Connections allowed at once (--maxclients).", counters->connections_max) &&
              render_one(out, "stockd_backup_running", "gauge",
                         "1 while a BACKUP copies the store.", counters->backup_running);
    for (size_t i = 0; ok && i < sizeof totals / sizeof totals[0]; i++)
        ok = render_one(out, totals[i].name, "counter", totals[i].help, totals[i].value);
    return ok;
}

static uint64_t sync_bound_us(unsigned i)
{
    return stock_sync_bucket_bound_us(i);
}

static bool render_sync(const stock_stats *stats, buf *out)
{
    const latency_histogram h = {
        .name = "stockd_sync_seconds",
        .help = "Latency of the store's fsync (group commit).",
        .buckets = stats->sync_latency_buckets, .bucket_count = STOCK_SYNC_BUCKETS,
        .bound_us = sync_bound_us, .sum_us = stats->sync_latency_us_sum,
        .count = stats->syncs};
    return render_histogram(&h, out);
}

static bool render_store(stock_t *store, buf *out)
{
    stock_stats stats;
    stock_get_stats(store, &stats);   /* UNSUPPORTED leaves zeros: fine */
    const struct { const char *name, *type, *help; uint64_t value; } gauges[] = {
        {"stockd_store_batches_total", "counter", "Batches the store completed.", stats.batches},
        {"stockd_store_operations_total", "counter", "Operations the store completed.", stats.operations},
        {"stockd_store_skus", "gauge", "SKUs in the store.", stats.skus},
        {"stockd_store_lines", "gauge", "Deducted lines in the store.", stats.lines},
        {"stockd_store_memory_bytes", "gauge", "Memory the store's state holds.", stats.memory_bytes},
        {"stockd_store_log_bytes", "gauge", "Flow log bytes since the last snapshot.", stats.log_bytes},
        {"stockd_store_snapshots_total", "counter", "Snapshots completed.", stats.snapshots},
        {"stockd_store_holds_outstanding", "gauge", "Holds not yet confirmed, released or expired.", stats.holds_outstanding},
        {"stockd_store_held_units", "gauge", "Units in those holds.", stats.held_units},
        {"stockd_store_hold_expiries_total", "counter", "Holds the store expired.", stats.hold_expiries},
        {"stockd_store_hold_confirmations_total", "counter", "Holds confirmed.", stats.hold_confirmations},
        {"stockd_store_hold_releases_total", "counter", "Holds released.", stats.hold_releases},
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof gauges / sizeof gauges[0]; i++)
        ok = ok && line(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", gauges[i].name,
                        gauges[i].help, gauges[i].name, gauges[i].type, gauges[i].name,
                        gauges[i].value);
    return ok && render_sync(&stats, out);
}

/* The health checks as gauges, so that alerts need no HTTP probe. */
static bool render_health(const health_report *health, buf *out)
{
    const struct { const char *name, *type, *help; uint64_t value; } gauges[] = {
        {"stockd_store_failed", "gauge", "1 when the store failed closed (a write or sync of its log failed): every write answers IOERR until stockd is restarted.", health->store.failed},
        {"stockd_ready", "gauge", "1 when /readyz answers 200: the store has not failed and the disk is not below --disk-min-free.", health->ready},
        {"stockd_snapshot_failed", "gauge", "1 when the last snapshot try failed: the log and the next start-up's replay grow until one succeeds.", health->store.snapshot_failed},
        {"stockd_snapshot_failures_total", "counter", "Snapshot tries that failed since start.", health->store.snapshot_failures},
        {"stockd_disk_free_bytes", "gauge", "Free bytes of the file system holding the store (0: unknown).", health->store.disk_free_bytes},
        {"stockd_disk_bytes", "gauge", "Size of that file system (0: unknown).", health->store.disk_bytes},
        {"stockd_disk_low", "gauge", "1 when the free disk is below --disk-min-free.", health->disk_low},
        {"stockd_replica_unreachable", "gauge", "1 when the store's read replica (postgres stock_replica) did not answer its last pre-check.", health->store.replica_unreachable},
        {"stockd_replica_lag_bytes", "gauge", "WAL bytes the read replica had not replayed of the last commit, at its last pre-check.", health->store.replica_lag_bytes},
        {"stockd_persister_running", "gauge", "1 when --persist-to runs the persister of the redis store's outbox.", health->persisting},
        {"stockd_persister_linked", "gauge", "1 when the persister's last cycle reached Redis and PostgreSQL.", health->persist.linked},
        {"stockd_persister_applied_total", "counter", "Outbox records the persister wrote into PostgreSQL.", health->persist.applied},
        {"stockd_persister_lag_records", "gauge", "Outbox records not yet persisted, at the persister's last check (once a second).", health->persist.lag_records},
        {"stockd_persister_outbox_records", "gauge", "Records the outbox holds after the persister's last trim: a reader (persister, stockevents) has not acknowledged them.", health->persist.outbox_records},
    };
    bool ok = true;
    for (size_t i = 0; i < sizeof gauges / sizeof gauges[0]; i++)
        ok = ok && line(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", gauges[i].name,
                        gauges[i].help, gauges[i].name, gauges[i].type, gauges[i].name,
                        gauges[i].value);
    return ok && line(out, "# HELP stockd_persister_lag_seconds Age of the oldest outbox record "
                           "not yet persisted, at the persister's last check.\n"
                           "# TYPE stockd_persister_lag_seconds gauge\n"
                           "stockd_persister_lag_seconds %.3f\n",
                      (double)health->persist.lag_ms / 1000.0);
}

/* A SKU as a label value: backslash and double quote escaped (ids are
 * printable ASCII, so there is no newline to escape). */
static void label_value(const char *sku, char *out)
{
    for (; *sku != '\0'; sku++) {
        if (*sku == '\\' || *sku == '"')
            *out++ = '\\';
        *out++ = *sku;
    }
    *out = '\0';
}

/* The top SKUs of each ranking: at most HOT_TOP series each, whatever the
 * number of SKUs in the store. */
static bool render_hot(const hot *h, uint64_t now_ms, buf *out)
{
    bool ok = line(out, "# HELP stockd_hot_window_seconds The window of the stockd_hot_sku_* rankings.\n"
                        "# TYPE stockd_hot_window_seconds gauge\nstockd_hot_window_seconds %d\n", HOT_WINDOW_S);
    for (int rank = 0; rank < HOT_RANKS && ok; rank++) {
        const char *name = hot_rank_name((hot_rank)rank);
        ok = line(out, "# HELP stockd_hot_sku_%s The top SKUs by %s over the window (rank 1 first).\n"
                       "# TYPE stockd_hot_sku_%s gauge\n", name, name, name);
        hot_item items[HOT_TOP];
        size_t count = hot_top(h, (hot_rank)rank, now_ms, items);
        for (size_t i = 0; i < count && ok; i++) {
            char label[2 * STOCK_ID_MAX + 1];
            label_value(items[i].sku, label);
            ok = line(out, "stockd_hot_sku_%s{rank=\"%zu\",sku=\"%s\"} %" PRIu64 "\n", name, i + 1,
                      label, items[i].count);
        }
    }
    return ok;
}

bool metrics_render(const metrics *counters, const hot *h, uint64_t now_ms, stock_t *store,
                    const health_report *health, buf *out)
{
    assert(counters != NULL && h != NULL && store != NULL && out != NULL);
    return render_ops(counters, out) && render_batches(counters, out) &&
           render_latency(counters, out) &&
           render_connections(counters, out) && render_store(store, out) &&
           render_health(health, out) && render_hot(h, now_ms, out);
}
