/*
 * test_stockbench_histogram.c -- unit tests of stockbench's latency
 * histogram (tools/stockbench/histogram.c, compiled into this test since
 * unit tests do not link tools/): the bucket layout, the relative error
 * bound against exact percentiles of random data, extremes, merge, clamping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "../../tools/stockbench/histogram.c"

#define RANDOM_VALUES 100000
#define SWEEP_STEPS 200000

static uint64_t random_state = 42;

/* xorshift64: reproducible test data without the C library's rand(). */
static uint64_t next_random(void)
{
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return random_state;
}

static int compare_values(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Every value lies in the range of its bucket, buckets grow with values,
 * and no bucket is wider than the relative error allows. */
static void test_bucket_layout(void **unused)
{
    (void)unused;
    uint32_t previous = 0;
    uint64_t value = 0;
    for (int step = 0; step < SWEEP_STEPS && value <= HISTOGRAM_VALUE_MAX; step++) {
        uint32_t bucket = histogram_bucket_of(value);
        uint64_t low, high;
        histogram_bucket_range(bucket, &low, &high);
        assert_true(low <= value && value <= high);
        assert_true(bucket >= previous);
        assert_true((double)(high - low) <= (double)low / (1 << HISTOGRAM_SUB_BITS));
        previous = bucket;
        value += 1 + value / 97;
    }
    assert_int_equal(histogram_bucket_of(HISTOGRAM_VALUE_MAX), HISTOGRAM_BUCKETS - 1);
    assert_int_equal(histogram_bucket_of(UINT64_MAX), HISTOGRAM_BUCKETS - 1);
}

static void test_small_values_exact(void **unused)
{
    (void)unused;
    histogram h;
    histogram_reset(&h);
    for (uint64_t v = 1; v <= 100; v++)
        histogram_record(&h, v, 1);
    assert_int_equal(histogram_percentile(&h, 50), 50);
    assert_int_equal(histogram_percentile(&h, 90), 90);
    assert_int_equal(histogram_percentile(&h, 99), 99);
    assert_int_equal(histogram_percentile(&h, 99.9), 100);
    assert_int_equal(histogram_percentile(&h, 100), 100);
    assert_int_equal(h.min, 1);
    assert_true(histogram_mean(&h) > 50.49 && histogram_mean(&h) < 50.51);
}

/* Percentiles of log-spread random values stay within the stated relative
 * error of the exact percentile of the sorted data. */
static void test_relative_error_bound(void **unused)
{
    (void)unused;
    static uint64_t values[RANDOM_VALUES];
    histogram h;
    histogram_reset(&h);
    for (int i = 0; i < RANDOM_VALUES; i++) {
        unsigned bits = 1 + (unsigned)(next_random() % 38);
        values[i] = next_random() >> (64 - bits);
        histogram_record(&h, values[i], 1);
    }
    qsort(values, RANDOM_VALUES, sizeof values[0], compare_values);
    const double percentiles[] = {1, 10, 50, 75, 90, 99, 99.9, 99.99};
    for (size_t i = 0; i < sizeof percentiles / sizeof percentiles[0]; i++) {
        uint64_t rank = (uint64_t)(percentiles[i] / 100.0 * RANDOM_VALUES + 0.999999);
        double exact = (double)values[rank - 1];
        double reported = (double)histogram_percentile(&h, percentiles[i]);
        assert_true(reported >= exact * (1 - HISTOGRAM_RELATIVE_ERROR) - 0.5);
        assert_true(reported <= exact * (1 + HISTOGRAM_RELATIVE_ERROR) + 0.5);
    }
    assert_int_equal(histogram_percentile(&h, 100), values[RANDOM_VALUES - 1]);
    assert_int_equal(h.min, values[0]);
}

static void test_empty_and_extremes(void **unused)
{
    (void)unused;
    histogram h;
    histogram_reset(&h);
    assert_int_equal(histogram_percentile(&h, 50), 0);
    assert_true(histogram_mean(&h) == 0.0);
    histogram_record(&h, 1000003, 0);
    assert_int_equal(h.total, 0);
    histogram_record(&h, 1000003, 5);
    /* One distinct value: every percentile is that value, not a midpoint. */
    assert_int_equal(histogram_percentile(&h, 1), 1000003);
    assert_int_equal(histogram_percentile(&h, 99.9), 1000003);
    histogram_record(&h, UINT64_MAX, 1);
    assert_int_equal(h.max, UINT64_MAX);
    assert_int_equal(h.counts[HISTOGRAM_BUCKETS - 1], 1);
    assert_int_equal(histogram_percentile(&h, 100), UINT64_MAX);
}

static void test_merge_equals_recording_once(void **unused)
{
    (void)unused;
    histogram a, b, both;
    histogram_reset(&a);
    histogram_reset(&b);
    histogram_reset(&both);
    for (int i = 0; i < 5000; i++) {
        uint64_t value = next_random() % 5000000;
        histogram_record(i % 2 ? &a : &b, value, 2);
        histogram_record(&both, value, 2);
    }
    histogram_merge(&a, &b);
    assert_int_equal(a.total, both.total);
    assert_int_equal(a.min, both.min);
    assert_int_equal(a.max, both.max);
    assert_memory_equal(a.counts, both.counts, sizeof a.counts);
    assert_int_equal(histogram_percentile(&a, 99), histogram_percentile(&both, 99));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_layout),
        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_relative_error_bound),
        cmocka_unit_test(test_empty_and_extremes),
        cmocka_unit_test(test_merge_equals_recording_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
