/*
 * test_redis_sums.c -- unit tests of the SKU sums that stock events publish
 * for a redis store with buckets on a cluster (src/backend/redis_events_sum.c):
 * each record moves one bucket and becomes a move of the sum; the two
 * halves of a move between buckets, read in either order, move nothing;
 * a half left alone stops counting after its wait, once every stream has
 * been read past it by that wait.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "backend/redis.h"

/* Applies a record of bucket moving it from before to after, every stream
 * read up to read_ms; returns the SKU's move through *sum_before and
 * *sum_after. */
static void record_read(rd_sums *sums, uint32_t bucket, int64_t before, int64_t after,
                        const char *move, int64_t ms, int64_t read_ms, int64_t *sum_before,
                        int64_t *sum_after)
{
    core_change change = {.before = before, .after = after};
    snprintf(change.sku, sizeof change.sku, "S");
    rd_sums_apply(sums, bucket, move, after - before, ms, read_ms, &change);
    *sum_before = change.before;
    *sum_after = change.after;
}

/* record_read with every stream read to its end. */
static void record(rd_sums *sums, uint32_t bucket, int64_t before, int64_t after,
                   const char *move, int64_t ms, int64_t *sum_before, int64_t *sum_after)
{
    record_read(sums, bucket, before, after, move, ms, INT64_MAX, sum_before, sum_after);
}

static rd_sums *seeded(const int64_t *levels)
{
    rd_sums *sums = rd_sums_new(4);
    assert_non_null(sums);
    assert_false(rd_sums_known(sums, "S"));
    assert_true(rd_sums_seed(sums, "S", levels));
    assert_true(rd_sums_known(sums, "S"));
    return sums;
}

static void records_move_the_sum(void **state)
{
    (void)state;
    int64_t zero[4] = {0}, before, after;
    rd_sums *sums = seeded(zero);
    record(sums, 0, 0, 5, NULL, 1, &before, &after);
    assert_int_equal(before, 0);
    assert_int_equal(after, 5);
    record(sums, 2, 0, 5, NULL, 2, &before, &after);
    assert_int_equal(before, 5);
    assert_int_equal(after, 10);
    record(sums, 0, 5, 4, NULL, 3, &before, &after);
    assert_int_equal(before, 10);
    assert_int_equal(after, 9);
    rd_sums_free(sums);
}

static void seeds_count_for_the_other_buckets(void **state)
{
    (void)state;
    int64_t levels[4] = {7, 3, 0, 2}, before, after;
    rd_sums *sums = seeded(levels);
    /* the record's own bucket moves from its bv, whatever its seed */
    record(sums, 1, 4, 3, NULL, 1, &before, &after);
    assert_int_equal(before, 7 + 4 + 0 + 2);
    assert_int_equal(after, 7 + 3 + 0 + 2);
    rd_sums_free(sums);
}

static void halves_of_a_move_move_nothing(void **state)
{
    (void)state;
    int64_t levels[4] = {1, 6, 0, 0}, before, after;
    rd_sums *sums = seeded(levels);
    /* out of bucket 1 first, then into bucket 0 */
    record(sums, 1, 6, 2, "mv:a", 10, &before, &after);
    assert_int_equal(before, 7);
    assert_int_equal(after, 7);
    record(sums, 0, 1, 5, "mv:a", 11, &before, &after);
    assert_int_equal(before, 7);
    assert_int_equal(after, 7);
    /* into bucket 3 first, then out of bucket 0 */
    record(sums, 3, 0, 2, "mv:b", 12, &before, &after);
    assert_int_equal(before, 7);
    assert_int_equal(after, 7);
    record(sums, 0, 5, 3, "mv:b", 13, &before, &after);
    assert_int_equal(before, 7);
    assert_int_equal(after, 7);
    /* paired: a deduction then moves the sum by itself alone */
    record(sums, 3, 2, 1, NULL, 14, &before, &after);
    assert_int_equal(before, 7);
    assert_int_equal(after, 6);
    rd_sums_free(sums);
}

static void a_half_alone_stops_counting(void **state)
{
    (void)state;
    int64_t levels[4] = {0, 4, 0, 0}, before, after;
    rd_sums *sums = seeded(levels);
    record(sums, 1, 4, 0, "mv:lost", 1000, &before, &after);
    assert_int_equal(after, 4);   /* in transit, counted where it was */
    record(sums, 2, 0, 1, NULL, 1000 + 10001, &before, &after);
    assert_int_equal(before, 0);   /* its wait is over: the units are missing */
    assert_int_equal(after, 1);
    rd_sums_free(sums);
}

/* One stream read far ahead of another (a backlog): the half read first
 * waits for the other however late its own stream's records run, since
 * the other stream has not been read past it. */
static void a_half_waits_for_a_stream_read_behind(void **state)
{
    (void)state;
    int64_t levels[4] = {10, 10, 0, 0}, before, after;
    rd_sums *sums = seeded(levels);
    /* bucket 0's stream, read ahead: the move in (ms 1000), then a sale at
     * ms 12000, while bucket 1's stream is read only to ms 500 */
    record_read(sums, 0, 10, 15, "mv:late", 1000, 500, &before, &after);
    assert_int_equal(before, 20);
    assert_int_equal(after, 20);
    record_read(sums, 0, 15, 14, NULL, 12000, 500, &before, &after);
    assert_int_equal(before, 20);
    assert_int_equal(after, 19);
    /* bucket 1's stream: the move out (ms 999) pairs, then a sale */
    record_read(sums, 1, 10, 5, "mv:late", 999, 999, &before, &after);
    assert_int_equal(before, 19);
    assert_int_equal(after, 19);
    record_read(sums, 1, 5, 4, NULL, 23000, INT64_MAX, &before, &after);
    assert_int_equal(before, 19);
    assert_int_equal(after, 18);
    rd_sums_free(sums);
}

static void many_skus_grow_the_table(void **state)
{
    (void)state;
    rd_sums *sums = rd_sums_new(2);
    assert_non_null(sums);
    int64_t levels[2] = {1, 2};
    char sku[16];
    for (int i = 0; i < 5000; i++) {
        snprintf(sku, sizeof sku, "S%d", i);
        assert_true(rd_sums_seed(sums, sku, levels));
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(sku, sizeof sku, "S%d", i);
        assert_true(rd_sums_known(sums, sku));
    }
    assert_false(rd_sums_known(sums, "S5000"));
    rd_sums_free(sums);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(records_move_the_sum),
        cmocka_unit_test(seeds_count_for_the_other_buckets),
        cmocka_unit_test(halves_of_a_move_move_nothing),
        cmocka_unit_test(a_half_alone_stops_counting),
        cmocka_unit_test(a_half_waits_for_a_stream_read_behind),
        cmocka_unit_test(many_skus_grow_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
