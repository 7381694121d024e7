/*
 * test_batches.c -- unit tests of the batch plumbing every backend shares
 * (src/lib/batches.c) and of the library's counters (src/lib/stats.c):
 * queue order and its ops limit, failing only the ops not already invalid,
 * completion in order with each batch counted once before its done runs,
 * a worker thread that serves, drains at close, reports a failed start and
 * runs its tick at start and again while idle, on its own thread
 * (src/lib/worker.c), and the edges of the sync-latency histogram's
 * buckets.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "backend/backend.h"
#include "lib/batches.h"
#include "lib/stats.h"
#include "lib/worker.h"

#define TEST_BATCHES 4
#define TEST_OPS 3

/* What the done callbacks saw, in the order they ran. */
typedef struct completions {
    stock_t *store;
    int order[TEST_BATCHES];
    uint64_t batches_counted[TEST_BATCHES];
    int count;
} completions;

static completions seen;

static void record_done(stock_batch *batch)
{
    assert_null(batch->next);   /* cleared before done runs */
    assert_true(seen.count < TEST_BATCHES);
    stock_stats stats;
    memset(&stats, 0, sizeof stats);
    stats_read(&seen.store->stats, &stats);
    seen.batches_counted[seen.count] = stats.batches;
    seen.order[seen.count++] = *(int *)batch->user;
    /* A done callback may reuse its batch at once. */
    batch->next = batch;
}

typedef struct fixture {
    struct stock store;
    stock_op ops[TEST_BATCHES][TEST_OPS];
    stock_batch batches[TEST_BATCHES];
    int numbers[TEST_BATCHES];
} fixture;

static fixture f;

static int setup(void **state)
{
    (void)state;
    memset(&f, 0, sizeof f);
    memset(&seen, 0, sizeof seen);
    seen.store = &f.store;
    for (int i = 0; i < TEST_BATCHES; i++) {
        f.numbers[i] = i;
        f.batches[i] = (stock_batch){.ops = f.ops[i], .count = TEST_OPS,
                                     .done = record_done, .user = &f.numbers[i]};
    }
    return 0;
}

static void test_queue_keeps_order(void **state)
{
    (void)state;
    batch_queue queue = {0};
    assert_null(batches_dequeue(&queue, SIZE_MAX, NULL));
    for (int i = 0; i < TEST_BATCHES; i++)
        batches_enqueue(&queue, &f.batches[i]);
    size_t ops = 0;
    stock_batch *chain = batches_dequeue(&queue, SIZE_MAX, &ops);
    assert_int_equal(ops, TEST_BATCHES * TEST_OPS);
    for (int i = 0; i < TEST_BATCHES; i++, chain = chain->next)
        assert_ptr_equal(chain, &f.batches[i]);
    assert_null(chain);
    assert_null(queue.head);
    assert_null(queue.tail);
}

static void test_queue_takes_up_to_ops_max(void **state)
{
    (void)state;
    batch_queue queue = {0};
    f.batches[0].count = STOCK_BATCH_MAX;
    f.batches[1].count = 1;
    f.batches[2].count = 2;
    for (int i = 0; i < 3; i++)
        batches_enqueue(&queue, &f.batches[i]);
    size_t ops = 0;
    /* The first fills the limit alone: it goes out by itself. */
    stock_batch *chain = batches_dequeue(&queue, STOCK_BATCH_MAX, &ops);
    assert_ptr_equal(chain, &f.batches[0]);
    assert_null(chain->next);
    assert_int_equal(ops, STOCK_BATCH_MAX);
    chain = batches_dequeue(&queue, STOCK_BATCH_MAX, &ops);
    assert_ptr_equal(chain, &f.batches[1]);
    assert_ptr_equal(chain->next, &f.batches[2]);
    assert_null(chain->next->next);
    assert_int_equal(ops, 3);
    assert_null(queue.head);
    /* The queue is usable again once emptied. */
    batches_enqueue(&queue, &f.batches[3]);
    assert_ptr_equal(batches_dequeue(&queue, SIZE_MAX, NULL), &f.batches[3]);
}

static void test_fail_spares_invalid_ops(void **state)
{
    (void)state;
    f.ops[0][1].code = STOCK_INVALID;
    strcpy(f.ops[0][1].message, "sku must be valid");
    f.batches[0].next = &f.batches[1];
    batches_fail(&f.batches[0], STOCK_IO, "the disk is gone");
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < TEST_OPS; i++) {
            const stock_op *op = &f.ops[b][i];
            if (b == 0 && i == 1) {
                assert_int_equal(op->code, STOCK_INVALID);
                assert_string_equal(op->message, "sku must be valid");
            } else {
                assert_int_equal(op->code, STOCK_IO);
                assert_string_equal(op->message, "the disk is gone");
            }
        }
    assert_int_equal(f.ops[2][0].code, STOCK_OK);   /* not in the chain */
}

static void test_complete_in_order_counting_each_batch_first(void **state)
{
    (void)state;
    for (int i = 0; i + 1 < TEST_BATCHES; i++)
        f.batches[i].next = &f.batches[i + 1];
    batches_complete(&f.store, &f.batches[0]);
    assert_int_equal(seen.count, TEST_BATCHES);
    for (int i = 0; i < TEST_BATCHES; i++) {
        assert_int_equal(seen.order[i], i);
        /* Counted before its own done, so a waiter sees itself. */
        assert_int_equal(seen.batches_counted[i], (uint64_t)i + 1);
    }
    stock_stats stats;
    memset(&stats, 0, sizeof stats);
    stats_read(&f.store.stats, &stats);
    assert_int_equal(stats.batches, TEST_BATCHES);
    assert_int_equal(stats.operations, TEST_BATCHES * TEST_OPS);
    assert_int_equal(stats.syncs, 0);
}

/* The worker's run: gives each op a result naming its batch, completes. */
static int runs;

static void run_chain(stock_t *store, stock_batch *chain)
{
    runs++;
    for (stock_batch *batch = chain; batch != NULL; batch = batch->next)
        for (size_t i = 0; i < batch->count; i++)
            batch->ops[i].available = *(int *)batch->user;
    batches_complete(store, chain);
}

static stock_code refuse_start(stock_t *store)
{
    (void)store;
    return STOCK_UNAVAILABLE;
}

static void test_worker_serves_in_order_and_drains_at_close(void **state)
{
    (void)state;
    static const worker_tasks tasks = {.run = run_chain};
    worker w;
    runs = 0;
    assert_int_equal(worker_start(&w, &f.store, &tasks, STOCK_BATCH_MAX), STOCK_OK);
    for (int i = 0; i < TEST_BATCHES; i++)
        worker_submit(&w, &f.batches[i]);
    worker_close(&w);   /* runs what is queued before the thread ends */
    assert_int_equal(seen.count, TEST_BATCHES);
    for (int i = 0; i < TEST_BATCHES; i++) {
        assert_int_equal(seen.order[i], i);
        assert_int_equal(f.ops[i][TEST_OPS - 1].available, i);
    }
    assert_true(runs >= 1 && runs <= TEST_BATCHES);
}

static void test_worker_reports_a_failed_start(void **state)
{
    (void)state;
    static const worker_tasks tasks = {.start = refuse_start, .run = run_chain};
    worker w;
    runs = 0;
    assert_int_equal(worker_start(&w, &f.store, &tasks, SIZE_MAX), STOCK_UNAVAILABLE);
    assert_int_equal(runs, 0);
}

/* The tick: counts itself, and notes a call from the test's own thread. */
#define TEST_TICK_US 5000                /* a tick every 5 ms */
#define TEST_TICK_WAIT_MS 10000          /* the most a test waits for ticks */
static _Atomic int ticks;
static _Atomic bool tick_on_caller;
static pthread_t caller;

static int64_t count_tick(stock_t *store)
{
    (void)store;
    if (pthread_equal(pthread_self(), caller))
        tick_on_caller = true;
    ticks++;
    return TEST_TICK_US;
}

static void test_worker_ticks_at_start_and_while_idle(void **state)
{
    (void)state;
    static const worker_tasks tasks = {.run = run_chain, .tick = count_tick};
    worker w;
    ticks = 0;
    tick_on_caller = false;
    caller = pthread_self();
    assert_int_equal(worker_start(&w, &f.store, &tasks, STOCK_BATCH_MAX), STOCK_OK);
    /* No batch is submitted: only the idle wait's deadline wakes the worker.
     * Waits for 3 ticks (the first, then two while idle), bounded so that a
     * worker that never ticks while idle fails instead of hanging. */
    struct timespec pause = {0, 1000000};
    for (int waited_ms = 0; ticks < 3 && waited_ms < TEST_TICK_WAIT_MS; waited_ms++)
        nanosleep(&pause, NULL);
    assert_true(ticks >= 3);
    worker_submit(&w, &f.batches[0]);
    worker_close(&w);
    int after_close = ticks;
    nanosleep(&(struct timespec){0, 3 * TEST_TICK_US * 1000}, NULL);
    assert_int_equal(ticks, after_close);   /* the thread has ended */
    assert_false(tick_on_caller);
    assert_int_equal(seen.count, 1);
}

static void test_sync_bucket_edges(void **state)
{
    (void)state;
    assert_int_equal(stats_sync_bucket(0), 0);
    assert_int_equal(stats_sync_bucket(8), 0);
    assert_int_equal(stats_sync_bucket(9), 1);
    assert_int_equal(stats_sync_bucket(16), 1);
    assert_int_equal(stats_sync_bucket(17), 2);
    for (unsigned i = 0; i + 1 < STOCK_SYNC_BUCKETS; i++) {
        uint64_t bound = stock_sync_bucket_bound_us(i);
        assert_int_equal(stats_sync_bucket(bound), i);
        assert_int_equal(stats_sync_bucket(bound + 1), i + 1);
    }
    /* The last bucket has no bound. */
    assert_int_equal(stats_sync_bucket(UINT64_MAX), STOCK_SYNC_BUCKETS - 1);
}

static void test_sync_counts_and_sum(void **state)
{
    (void)state;
    stats_counters counters;
    memset(&counters, 0, sizeof counters);
    stats_count_sync(&counters, 8);
    stats_count_sync(&counters, 9);
    stats_count_sync(&counters, 1000000);
    stock_stats stats;
    memset(&stats, 0, sizeof stats);
    stats.skus = 7;   /* not the library's: left alone */
    stats_read(&counters, &stats);
    assert_int_equal(stats.syncs, 3);
    assert_int_equal(stats.sync_latency_us_sum, 1000017);
    assert_int_equal(stats.sync_latency_buckets[0], 1);
    assert_int_equal(stats.sync_latency_buckets[1], 1);
    assert_int_equal(stats.sync_latency_buckets[STOCK_SYNC_BUCKETS - 1], 1);
    uint64_t total = 0;
    for (unsigned i = 0; i < STOCK_SYNC_BUCKETS; i++)
        total += stats.sync_latency_buckets[i];
    assert_int_equal(total, stats.syncs);
    assert_int_equal(stats.skus, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_queue_keeps_order, setup),
        cmocka_unit_test_setup(test_queue_takes_up_to_ops_max, setup),
        cmocka_unit_test_setup(test_fail_spares_invalid_ops, setup),
        cmocka_unit_test_setup(test_complete_in_order_counting_each_batch_first, setup),
        cmocka_unit_test_setup(test_worker_serves_in_order_and_drains_at_close, setup),
        cmocka_unit_test_setup(test_worker_reports_a_failed_start, setup),
        cmocka_unit_test_setup(test_worker_ticks_at_start_and_while_idle, setup),
        cmocka_unit_test(test_sync_bucket_edges),
        cmocka_unit_test(test_sync_counts_and_sum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
