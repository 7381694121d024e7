/*
 * test_redis_sums.c -- unit tests of the SKU sums that stock events publish
 * for a redis store with buckets on a cluster (src/backend/redis_events_sum.c):
 * each record moves one bucket and becomes a move of the sum; the two
 * halves of a move between buckets, read in either order, move nothing;
 * a half left alone stops counting after its wait, once every stream has
 * been read past it by that wait; and the order records are handed out in
 * (src/backend/redis_events_order.c): by time across the streams, up to
 * the low-water mark every stream has been read to.
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

/* A record of one bucket's stream in the order tests: its bucket's move
 * and its time. */
typedef struct order_record {
    int64_t before, after, ms;
} order_record;

typedef struct order_stream {
    const order_record *records;
    size_t count, read;   /* records, and how many were read */
} order_stream;

/* Hands out every record the order lets out, into sums (stream j is
 * bucket j); keeps the least sum seen after a record in *least. */
static void order_drain(rd_order *order, rd_sums *sums, int64_t *least)
{
    uint32_t stream;
    int64_t ms;
    const order_record *record;
    while ((record = rd_order_next(order, &stream, &ms)) != NULL) {
        int64_t before, after;
        assert_int_equal(ms, record->ms);
        record_read(sums, stream, record->before, record->after, NULL, ms,
                    rd_order_low(order), &before, &after);
        if (after < *least)
            *least = after;
    }
}

/* One look for streams then one read at store time now_ms, as stockevents
 * does them: of each stream whose records are all out, up to RD_ORDER_HELD
 * more; a full read is read to its last record's time, a shorter one to
 * now_ms (its end). */
static void order_read(rd_order *order, order_stream *streams, uint32_t count, int64_t now_ms)
{
    rd_order_known_to(order, now_ms);
    for (uint32_t s = 0; s < count; s++) {
        if (!rd_order_ready(order, s))
            continue;
        size_t n = 0;
        for (; n < RD_ORDER_HELD && streams[s].read < streams[s].count; n++) {
            const order_record *record = &streams[s].records[streams[s].read++];
            rd_order_hold(order, s, (void *)record, record->ms);
        }
        rd_order_read_to(order, s, n == RD_ORDER_HELD ? streams[s].records[streams[s].read - 1].ms
                                                      : now_ms);
    }
}

/* Bucket 0 sells its 16 units (ms 1..16) and is restocked with 10 at ms
 * 17; bucket 1 sells its 5 at ms 20. The store's total goes 21 -> 5 -> 15
 * -> 10: never 0. A read takes 16 records of a stream: bucket 1's sale
 * (ms 20) is read with bucket 0's first 16, before its restock (ms 17).
 * Handed out by the read, the sum would touch 0 (a false sold_out, then a
 * back_in_stock); held below the low-water mark, it never does. */
static void no_false_pair_across_buckets(void **state)
{
    (void)state;
    order_record bucket0[17], bucket1[1] = {{5, 0, 20}};
    for (int i = 0; i < 16; i++)
        bucket0[i] = (order_record){16 - i, 15 - i, 1 + i};
    bucket0[16] = (order_record){0, 10, 17};
    order_stream streams[2] = {{bucket0, 17, 0}, {bucket1, 1, 0}};
    int64_t levels[2] = {16, 5}, least = INT64_MAX;
    rd_sums *sums = rd_sums_new(2);
    rd_order *order = rd_order_new(2);
    assert_non_null(sums);
    assert_non_null(order);
    assert_true(rd_sums_seed(sums, "S", levels));
    assert_int_equal(rd_order_add(order), 0);
    assert_int_equal(rd_order_add(order), 1);
    for (int64_t now_ms = 25; now_ms <= 27; now_ms++) {
        order_read(order, streams, 2, now_ms);
        order_drain(order, sums, &least);
    }
    assert_int_equal(streams[0].read, 17);
    assert_true(rd_order_ready(order, 0) && rd_order_ready(order, 1));
    assert_int_equal(least, 5);
    int64_t before, after;   /* the sum ends at the store's total */
    record_read(sums, 1, 0, 0, NULL, 30, 30, &before, &after);
    assert_int_equal(after, 10);
    rd_order_free(order, NULL);
    rd_sums_free(sums);
}

/* A record waits until every stream has been read to its time, and a look
 * for new streams began after it: a stream not read yet holds all back; a
 * record at the low-water mark itself goes (equal times, docs/events.md),
 * one after it waits. */
static void records_wait_for_the_low_water_mark(void **state)
{
    (void)state;
    int records[3];
    rd_order *order = rd_order_new(2);
    assert_non_null(order);
    uint32_t first = rd_order_add(order), second = rd_order_add(order), stream = 9;
    int64_t ms = 0;
    rd_order_hold(order, first, &records[0], 3);
    rd_order_hold(order, first, &records[1], 7);
    rd_order_read_to(order, first, 7);
    assert_int_equal(rd_order_low(order), INT64_MIN);
    assert_null(rd_order_next(order, &stream, &ms));
    assert_false(rd_order_ready(order, first));
    rd_order_hold(order, second, &records[2], 5);
    rd_order_read_to(order, second, 5);
    assert_int_equal(rd_order_low(order), INT64_MIN);   /* no look for streams yet */
    rd_order_known_to(order, 2);   /* a stream made at 2 may hold a record of 2 */
    assert_int_equal(rd_order_low(order), 2);
    assert_null(rd_order_next(order, &stream, &ms));
    rd_order_known_to(order, 100);
    assert_int_equal(rd_order_low(order), 5);
    assert_ptr_equal(rd_order_next(order, &stream, &ms), &records[0]);
    assert_int_equal(stream, first);
    assert_ptr_equal(rd_order_next(order, &stream, &ms), &records[2]);
    assert_int_equal(stream, second);
    assert_int_equal(ms, 5);
    assert_null(rd_order_next(order, &stream, &ms));   /* ms 7 > 5 */
    assert_true(rd_order_ready(order, second));
    rd_order_read_to(order, second, 6);
    assert_null(rd_order_next(order, &stream, &ms));
    rd_order_read_to(order, second, 7);
    assert_ptr_equal(rd_order_next(order, &stream, &ms), &records[1]);
    assert_true(rd_order_ready(order, first));
    /* a time before the stream's last held (a clock stepped back, an entry
     * whose fields are gone) counts at that last one's: still in order */
    rd_order_hold(order, first, &records[0], 9);
    rd_order_hold(order, first, &records[1], 0);
    rd_order_read_to(order, first, 9);
    rd_order_read_to(order, second, 9);
    assert_ptr_equal(rd_order_next(order, &stream, &ms), &records[0]);
    assert_ptr_equal(rd_order_next(order, &stream, &ms), &records[1]);
    assert_int_equal(ms, 9);
    rd_order_free(order, NULL);
}

/* A short read can give a record later than the master's time asked just
 * before it (another client's write between the two commands, a clock
 * stepped back): the stream still counts as read to that record, or it
 * would hold it, and with it every stream's later records, for ever. */
static void a_record_after_the_read_time_does_not_stall(void **state)
{
    (void)state;
    int records[2];
    rd_order *order = rd_order_new(2);
    assert_non_null(order);
    uint32_t first = rd_order_add(order), second = rd_order_add(order), stream = 9;
    int64_t ms = 0;
    rd_order_known_to(order, 1000);
    rd_order_hold(order, first, &records[0], 101);
    rd_order_read_to(order, first, 100);   /* TIME said 100, the record 101 */
    rd_order_hold(order, second, &records[1], 150);
    rd_order_read_to(order, second, 150);
    void *out[2] = {NULL, NULL};
    for (int round = 0; round < 1000 && out[1] == NULL; round++) {
        void *record = rd_order_next(order, &stream, &ms);
        if (record != NULL)
            out[out[0] == NULL ? 0 : 1] = record;
        for (uint32_t s = 0; s < 2; s++)   /* each stream read again, nothing new */
            if (rd_order_ready(order, s))
                rd_order_read_to(order, s, 200 + round);
    }
    assert_ptr_equal(out[0], &records[0]);
    assert_ptr_equal(out[1], &records[1]);
    rd_order_free(order, NULL);
}

/* Buckets each at most 2^63-1 can sum past it: the sum is held at the
 * cap (docs/redis.md, "Hot-SKU buckets"), never wrapped to a negative
 * level that would read as sold out. */
static void sums_past_the_cap_are_held_there(void **state)
{
    (void)state;
    int64_t levels[4] = {INT64_MAX, 5, 0, 0}, before, after;
    rd_sums *sums = seeded(levels);
    record(sums, 1, 5, 4, NULL, 1, &before, &after);
    assert_true(before == INT64_MAX);
    assert_true(after == INT64_MAX);
    record(sums, 0, INT64_MAX, 0, NULL, 2, &before, &after);
    assert_true(before == INT64_MAX);
    assert_int_equal(after, 4);
    assert_true(rd_sum_held(INT64_MAX - 1, 1) == INT64_MAX);
    assert_true(rd_sum_held(INT64_MAX, INT64_MAX) == INT64_MAX);
    assert_true(rd_sum_held(INT64_MIN, -1) == INT64_MIN);
    assert_int_equal(rd_sum_held(-3, 5), 2);
    /* mixed signs are summed exactly, then held once: not INT64_MAX - 20 */
    assert_true(rd_sum_clamp((__int128)INT64_MAX + 10 - 20) == INT64_MAX - 10);
    assert_true(rd_sum_clamp((__int128)INT64_MIN - 1) == INT64_MIN);
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
        cmocka_unit_test(no_false_pair_across_buckets),
        cmocka_unit_test(records_wait_for_the_low_water_mark),
        cmocka_unit_test(a_record_after_the_read_time_does_not_stall),
        cmocka_unit_test(sums_past_the_cap_are_held_there),
        cmocka_unit_test(many_skus_grow_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
