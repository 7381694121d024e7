/*
 * stats.h -- the counters of stock_stats that are the library's, not one
 * backend's: batches and operations, which the library counts as each batch
 * completes (lib/batches.h), and the histogram of the syncs or commits that
 * make batches durable, which a durable backend feeds (the embedded engine
 * per fdatasync, postgres per commit). Every store carries one set in its
 * struct stock (backend/backend.h).
 *
 * Every counter is a relaxed atomic: the counters publish no other data,
 * and a reader wants totals, not an order between them. A caller still
 * sees its own batch counted once its done callback has run, because the
 * count is made before the callback (and whatever the callback signals
 * carries the ordering).
 */
#ifndef STOCK_STATS_H
#define STOCK_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "stock.h"

typedef struct stats_counters {
    _Atomic uint64_t batches;
    _Atomic uint64_t operations;
    _Atomic uint64_t syncs;
    _Atomic uint64_t sync_latency_us_sum;
    _Atomic uint64_t sync_latency_buckets[STOCK_SYNC_BUCKETS];
} stats_counters;

/* The histogram bucket of a latency: the first i whose bound
 * (stock_sync_bucket_bound_us) it does not exceed, or the last bucket. */
unsigned stats_sync_bucket(uint64_t latency_us);

/* Counts one completed batch of operations ops. */
void stats_count_batch(stats_counters *counters, size_t operations);

/* Counts one sync (or commit) that took latency_us. */
void stats_count_sync(stats_counters *counters, uint64_t latency_us);

/* Copies the counters into their stock_stats fields; leaves the others. */
void stats_read(const stats_counters *counters, stock_stats *stats);

#endif /* STOCK_STATS_H */
