/*
 * histogram.c -- log-bucketed latency histogram (see histogram.h).
 *
 * Bucket layout, with S = HISTOGRAM_SUB_BITS: a value v < 2^S is its own
 * bucket. For larger v with highest set bit m, the top S+1 bits of v
 * (v >> (m - S), in [2^S, 2^(S+1))) pick one of 2^S buckets in the group of
 * m; group m starts at bucket (m - S + 1) * 2^S. Group S begins at 2^S, right
 * after the exact buckets, so the index is continuous and monotonic in v.
 */
#include "histogram.h"

#include <assert.h>
#include <string.h>

#define SUB_COUNT (UINT64_C(1) << HISTOGRAM_SUB_BITS)

void histogram_reset(histogram *h)
{
    assert(h != NULL);
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

uint32_t histogram_bucket_of(uint64_t value)
{
    if (value > HISTOGRAM_VALUE_MAX)
        value = HISTOGRAM_VALUE_MAX;
    if (value < SUB_COUNT)
        return (uint32_t)value;
    unsigned top_bit = 63u - (unsigned)__builtin_clzll(value);
    assert(top_bit >= HISTOGRAM_SUB_BITS && top_bit < HISTOGRAM_MAX_BITS);
    uint64_t mantissa = value >> (top_bit - HISTOGRAM_SUB_BITS);
    uint64_t group = top_bit - HISTOGRAM_SUB_BITS + 1;
    uint64_t bucket = group * SUB_COUNT + (mantissa - SUB_COUNT);
    assert(bucket < HISTOGRAM_BUCKETS);
    return (uint32_t)bucket;
}

void histogram_bucket_range(uint32_t bucket, uint64_t *low, uint64_t *high)
{
    assert(bucket < HISTOGRAM_BUCKETS && low != NULL && high != NULL);
    if (bucket < SUB_COUNT) {
        *low = *high = bucket;
        return;
    }
    uint64_t group = bucket / SUB_COUNT;          /* >= 1 */
    uint64_t mantissa = SUB_COUNT + bucket % SUB_COUNT;
    unsigned shift = (unsigned)(group - 1);
    *low = mantissa << shift;
    *high = *low + (UINT64_C(1) << shift) - 1;
    assert(histogram_bucket_of(*low) == bucket);
}

void histogram_record(histogram *h, uint64_t value, uint64_t count)
{
    assert(h != NULL);
    if (count == 0)
        return;
    h->counts[histogram_bucket_of(value)] += count;
    h->total += count;
    h->sum += (double)value * (double)count;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
}

void histogram_merge(histogram *target, const histogram *source)
{
    assert(target != NULL && source != NULL && target != source);
    if (source->total == 0)
        return;
    for (uint32_t i = 0; i < HISTOGRAM_BUCKETS; i++)
        target->counts[i] += source->counts[i];
    target->total += source->total;
    target->sum += source->sum;
    if (source->min < target->min)
        target->min = source->min;
    if (source->max > target->max)
        target->max = source->max;
}

/* The value reported for a bucket: its midpoint, kept within [min, max] so
 * that the exact extremes are never contradicted. */
static uint64_t bucket_value(const histogram *h, uint32_t bucket)
{
    uint64_t low, high;
    histogram_bucket_range(bucket, &low, &high);
    uint64_t value = low + (high - low) / 2;
    if (value > h->max)
        value = h->max;
    if (value < h->min)
        value = h->min;
    return value;
}

uint64_t histogram_percentile(const histogram *h, double percentile)
{
    assert(h != NULL);
    assert(percentile > 0.0 && percentile <= 100.0);
    if (h->total == 0)
        return 0;
    if (percentile >= 100.0)
        return h->max;
    /* The rank of the wanted value, 1-based, rounded up: p50 of 4 values is
     * the 2nd, p99.9 of 1000 values the 999th. */
    double exact_rank = percentile / 100.0 * (double)h->total;
    uint64_t rank = (uint64_t)exact_rank;
    if ((double)rank < exact_rank || rank == 0)
        rank++;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < HISTOGRAM_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank)
            return bucket_value(h, i);
    }
    assert(!"histogram counts do not add up to total");
    return h->max;
}

double histogram_mean(const histogram *h)
{
    assert(h != NULL);
    return h->total == 0 ? 0.0 : h->sum / (double)h->total;
}
