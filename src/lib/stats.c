/* stats.c -- the library's counters (see stats.h). */
#include <assert.h>
#include <stdatomic.h>

#include "lib/stats.h"

unsigned stats_sync_bucket(uint64_t latency_us)
{
    unsigned bucket = 0;
    while (bucket + 1 < STOCK_SYNC_BUCKETS &&
           latency_us > stock_sync_bucket_bound_us(bucket))
        bucket++;
    assert(bucket < STOCK_SYNC_BUCKETS);
    return bucket;
}

void stats_count_batch(stats_counters *counters, size_t operations)
{
    assert(operations >= 1 && operations <= STOCK_BATCH_MAX);
    atomic_fetch_add_explicit(&counters->batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&counters->operations, operations, memory_order_relaxed);
}

void stats_count_sync(stats_counters *counters, uint64_t latency_us)
{
    unsigned bucket = stats_sync_bucket(latency_us);
    atomic_fetch_add_explicit(&counters->syncs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&counters->sync_latency_us_sum, latency_us,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&counters->sync_latency_buckets[bucket], 1,
                              memory_order_relaxed);
}

void stats_read(const stats_counters *counters, stock_stats *stats)
{
    assert(counters != NULL && stats != NULL);
    stats->batches = atomic_load_explicit(&counters->batches, memory_order_relaxed);
    stats->operations = atomic_load_explicit(&counters->operations, memory_order_relaxed);
    stats->syncs = atomic_load_explicit(&counters->syncs, memory_order_relaxed);
    stats->sync_latency_us_sum =
        atomic_load_explicit(&counters->sync_latency_us_sum, memory_order_relaxed);
    for (unsigned i = 0; i < STOCK_SYNC_BUCKETS; i++)
        stats->sync_latency_buckets[i] =
            atomic_load_explicit(&counters->sync_latency_buckets[i], memory_order_relaxed);
}
