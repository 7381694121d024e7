/*
 * histogram.h -- a log-bucketed latency histogram with bounded relative
 * error, in the manner of HdrHistogram: values below 2^HISTOGRAM_SUB_BITS are
 * counted exactly; above, each power of two is split into
 * 2^HISTOGRAM_SUB_BITS equal buckets, so any value is reported within
 * HISTOGRAM_RELATIVE_ERROR of itself. Fixed size, no allocation, so it can be
 * recorded into on the hot path and merged cheaply. Not thread-safe.
 */
#ifndef STOCKBENCH_HISTOGRAM_H
#define STOCKBENCH_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_SUB_BITS 7          /* 128 buckets per power of two */
#define HISTOGRAM_MAX_BITS 40         /* values up to 2^40 (18 min in ns) */
#define HISTOGRAM_VALUE_MAX ((UINT64_C(1) << HISTOGRAM_MAX_BITS) - 1)
#define HISTOGRAM_BUCKETS \
    ((HISTOGRAM_MAX_BITS - HISTOGRAM_SUB_BITS + 1) << HISTOGRAM_SUB_BITS)
/* Reported values are bucket midpoints: off by at most half a bucket. */
#define HISTOGRAM_RELATIVE_ERROR (1.0 / (2 << HISTOGRAM_SUB_BITS))

typedef struct histogram {
    uint64_t total;      /* values recorded */
    uint64_t min;        /* exact; UINT64_MAX while empty */
    uint64_t max;        /* exact (before clamping) */
    double sum;          /* for the mean */
    uint64_t counts[HISTOGRAM_BUCKETS];
} histogram;

/* Empties h (also the way to initialise one). */
void histogram_reset(histogram *h);

/* Records value count times. Values above HISTOGRAM_VALUE_MAX are counted in
 * the last bucket (max still holds the true value). count may be 0. */
void histogram_record(histogram *h, uint64_t value, uint64_t count);

/* Adds every count of source into target. */
void histogram_merge(histogram *target, const histogram *source);

/*
 * The value at percentile (0..100]: the smallest recorded value v such that
 * at least percentile% of the values are <= v, within
 * HISTOGRAM_RELATIVE_ERROR, and never above max. 0 for an empty histogram;
 * percentile 100 returns max exactly.
 */
uint64_t histogram_percentile(const histogram *h, double percentile);

/* The mean of the recorded values; 0 when empty. */
double histogram_mean(const histogram *h);

/* The bucket a value falls in, and the range [low, high] of a bucket:
 * exposed for the unit test. */
uint32_t histogram_bucket_of(uint64_t value);
void histogram_bucket_range(uint32_t bucket, uint64_t *low, uint64_t *high);

#endif /* STOCKBENCH_HISTOGRAM_H */
