/*
 * concurrency.c -- many threads on one hot SKU at once: exactly the stock is
 * sold, never more (I1), every success sees a distinct level (the ops are
 * applied one at a time), a read after an acknowledgement shows it (I7),
 * orders stay whole (I3), refunds racing each other stay capped (I5).
 * Retries racing each other are in retries.c.
 *
 * Workers never assert (cmocka's assertions belong to the main thread):
 * they count what they saw, and the test checks the counts after joining.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "conformance.h"

/* ------------------------------------------------ hot SKU, sync batches */

#define HOT_BATCH 50

typedef struct hot_worker {
    const char *sku;
    const char *base;
    int index;
    int batches;
    int64_t stock;
    atomic_uchar *seen;
    /* results */
    int64_t taken;
    int64_t bad;    /* a wrong code, level, or order of levels */
} hot_worker;

/* I7: once a batch is acknowledged, a read from the same client shows its
 * effects: the level is at most the last one this thread's success saw. */
static bool hot_sees_own_effects(const char *sku, int64_t last)
{
    stock_sku_info info;
    if (stock_get(conf_store, sku, &info, NULL) != STOCK_OK)
        return false;
    return last == INT64_MAX || info.available <= last;
}

static void *hot_run(void *arg)
{
    hot_worker *w = arg;
    stock_op ops[HOT_BATCH];
    char ids[HOT_BATCH][CONF_ID_SIZE];
    int64_t last = INT64_MAX;
    for (int b = 0; b < w->batches; b++) {
        for (int i = 0; i < HOT_BATCH; i++) {
            snprintf(ids[i], CONF_ID_SIZE, "%s.%d.%d", w->base, w->index,
                     b * HOT_BATCH + i);
            ops[i] = (stock_op){.type = STOCK_OP_DEDUCT,
                                .id = stock_id_from_cstr(ids[i]),
                                .sku = stock_id_from_cstr(w->sku), .amount = 1};
        }
        if (stock_execute(conf_store, ops, HOT_BATCH) != STOCK_OK) {
            w->bad++;
            continue;
        }
        for (int i = 0; i < HOT_BATCH; i++) {
            if (ops[i].code == STOCK_OK) {
                w->taken++;
                /* One thread's ops apply in order: its levels only fall. */
                if (!conf_mark_level(w->seen, w->stock, ops[i].available) ||
                    ops[i].available >= last)
                    w->bad++;
                last = ops[i].available;
            } else if (ops[i].code != STOCK_INSUFFICIENT || ops[i].available != 0) {
                w->bad++;
            }
        }
        if (!hot_sees_own_effects(w->sku, last))
            w->bad++;
    }
    return NULL;
}

#define WATCH_PAUSE_NS 100000

/* Reads the SKU while the workers run: never negative, never rising, I2. */
typedef struct watcher {
    const char *sku;
    atomic_bool stop;
    atomic_llong reads;
    int64_t bad;
} watcher;

static void *watch_run(void *arg)
{
    watcher *w = arg;
    int64_t last = INT64_MAX;
    while (!atomic_load(&w->stop)) {
        stock_sku_info info;
        if (stock_get(conf_store, w->sku, &info, NULL) != STOCK_OK ||
            info.available < 0 || info.available > last ||
            !conf_totals_balance(&info))
            w->bad++;
        last = info.available;
        atomic_fetch_add(&w->reads, 1);
        /* Leave the cores to the writers: this only samples. */
        nanosleep(&(struct timespec){.tv_nsec = WATCH_PAUSE_NS}, NULL);
    }
    return NULL;
}

static void hot_sku_sells_exactly_its_stock(void **state)
{
    (void)state;
    int64_t stock = conf_quick ? 200 : 1000;
    int batches = conf_quick ? 5 : 10; /* per thread: 2000 or 4000 attempts */
    conf_sku sku;
    conf_new_sku(&sku, stock);
    atomic_uchar *seen = calloc((size_t)stock, sizeof *seen);
    assert_non_null(seen);
    hot_worker workers[THREADS];
    const char *base = conf_id("hot");
    for (int i = 0; i < THREADS; i++)
        workers[i] = (hot_worker){.sku = sku.id, .base = base, .index = i,
                                  .batches = batches, .stock = stock,
                                  .seen = seen};
    watcher watch = {.sku = sku.id};
    pthread_t watch_thread;
    assert_int_equal(pthread_create(&watch_thread, NULL, watch_run, &watch), 0);
    /* The workers start once the watcher reads, so that it reads among them. */
    while (atomic_load(&watch.reads) == 0)
        nanosleep(&(struct timespec){.tv_nsec = WATCH_PAUSE_NS}, NULL);
    conf_run_threads(THREADS, hot_run, workers, sizeof workers[0]);
    atomic_store(&watch.stop, true);
    assert_int_equal(pthread_join(watch_thread, NULL), 0);
    free(seen);
    int64_t taken = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_i64(workers[i].bad, 0);
        taken += workers[i].taken;
    }
    assert_i64(taken, stock);
    assert_i64(watch.bad, 0);
    sku.deducted = stock;
    conf_check_sku(&sku);
}

/* ---------------------------------------- sellout, pipelined async batches */

#define SELLOUT_BATCH 500
#define SELLOUT_WINDOW 4

/* One batch buffer of a pipelining worker. */
typedef struct sellout_slot {
    stock_batch batch;
    stock_op ops[SELLOUT_BATCH];
    char ids[SELLOUT_BATCH][CONF_ID_SIZE];
    int64_t sequence;      /* which of the worker's batches it holds */
    int64_t completed_as;  /* the worker's completion count at done() */
    bool done;
    struct sellout_worker *worker;
} sellout_slot;

typedef struct sellout_worker {
    const char *sku;
    const char *base;
    int index;
    int batches;
    int64_t stock;
    atomic_uchar *seen;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int64_t completions;
    sellout_slot *slots;   /* SELLOUT_WINDOW of them */
    /* results */
    int64_t taken;
    int64_t bad;
} sellout_worker;

static void sellout_done(stock_batch *batch)
{
    sellout_slot *slot = batch->user;
    sellout_worker *w = slot->worker;
    pthread_mutex_lock(&w->mutex);
    slot->completed_as = w->completions++;
    slot->done = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mutex);
}

static void sellout_submit(sellout_worker *w, sellout_slot *slot, int64_t sequence)
{
    slot->sequence = sequence;
    slot->done = false;
    for (int i = 0; i < SELLOUT_BATCH; i++) {
        snprintf(slot->ids[i], CONF_ID_SIZE, "%s.%d.%" PRId64 ".%d", w->base,
                 w->index, sequence, i);
        slot->ops[i] = (stock_op){.type = STOCK_OP_DEDUCT,
                                  .id = stock_id_from_cstr(slot->ids[i]),
                                  .sku = stock_id_from_cstr(w->sku),
                                  .amount = 1};
    }
    slot->batch = (stock_batch){.ops = slot->ops, .count = SELLOUT_BATCH,
                                .done = sellout_done, .user = slot};
    stock_submit(conf_store, &slot->batch);
}

static void sellout_collect(sellout_worker *w, sellout_slot *slot)
{
    pthread_mutex_lock(&w->mutex);
    while (!slot->done)
        pthread_cond_wait(&w->cond, &w->mutex);
    pthread_mutex_unlock(&w->mutex);
    /* Batches from one thread complete in the order submitted. */
    if (slot->completed_as != slot->sequence)
        w->bad++;
    for (int i = 0; i < SELLOUT_BATCH; i++) {
        const stock_op *op = &slot->ops[i];
        if (op->code == STOCK_OK) {
            w->taken++;
            if (!conf_mark_level(w->seen, w->stock, op->available))
                w->bad++;
        } else if (op->code != STOCK_INSUFFICIENT || op->available != 0) {
            w->bad++;
        }
    }
}

static void *sellout_run(void *arg)
{
    sellout_worker *w = arg;
    for (int b = 0; b < SELLOUT_WINDOW && b < w->batches; b++)
        sellout_submit(w, &w->slots[b], b);
    for (int b = 0; b < w->batches; b++) {
        sellout_slot *slot = &w->slots[b % SELLOUT_WINDOW];
        sellout_collect(w, slot);
        if (b + SELLOUT_WINDOW < w->batches)
            sellout_submit(w, slot, b + SELLOUT_WINDOW);
    }
    return NULL;
}

static void sellout_sells_exactly_the_units(void **state)
{
    (void)state;
    /* docs/stockbench.md's sellout: 10,000 units, 200,000 attempts. */
    int64_t stock = conf_quick ? 1000 : 10000;
    int64_t attempts = conf_quick ? 20000 : 200000;
    int batches = (int)(attempts / THREADS / SELLOUT_BATCH);
    assert_i64((int64_t)batches * THREADS * SELLOUT_BATCH, attempts);
    conf_sku sku;
    conf_new_sku(&sku, stock);
    atomic_uchar *seen = calloc((size_t)stock, sizeof *seen);
    sellout_worker *workers = calloc(THREADS, sizeof *workers);
    assert_non_null(seen);
    assert_non_null(workers);
    const char *base = conf_id("sell");
    for (int i = 0; i < THREADS; i++) {
        sellout_worker *w = &workers[i];
        *w = (sellout_worker){.sku = sku.id, .base = base, .index = i,
                              .batches = batches, .stock = stock, .seen = seen,
                              .slots = calloc(SELLOUT_WINDOW, sizeof(sellout_slot))};
        assert_non_null(w->slots);
        pthread_mutex_init(&w->mutex, NULL);
        pthread_cond_init(&w->cond, NULL);
        for (int s = 0; s < SELLOUT_WINDOW; s++)
            w->slots[s].worker = w;
    }
    conf_run_threads(THREADS, sellout_run, workers, sizeof workers[0]);
    int64_t taken = 0, bad = 0;
    for (int i = 0; i < THREADS; i++) {
        taken += workers[i].taken;
        bad += workers[i].bad;
        pthread_mutex_destroy(&workers[i].mutex);
        pthread_cond_destroy(&workers[i].cond);
        free(workers[i].slots);
    }
    free(workers);
    free(seen);
    assert_i64(bad, 0);
    assert_i64(taken, stock);
    sku.deducted = stock;
    conf_check_sku(&sku);
}

/* ------------------------------------------------------ concurrent carts */

#define CART_ORDERS 100
#define CART_THREADS 4

typedef struct cart_worker {
    const char *sku_a;
    const char *sku_b;
    const char *base;
    int index;
    stock_order_line lines[CART_ORDERS][2];
    char ids[CART_ORDERS][3][CONF_ID_SIZE];   /* order, line a, line b */
    stock_code codes[CART_ORDERS];
    int64_t bad;
} cart_worker;

static void *cart_run(void *arg)
{
    cart_worker *w = arg;
    for (int n = 0; n < CART_ORDERS; n++) {
        for (int k = 0; k < 3; k++)
            snprintf(w->ids[n][k], CONF_ID_SIZE, "%s.%d.%d.%d", w->base,
                     w->index, n, k);
        /* Odd threads put B first: two carts locking the same SKUs in
         * opposite orders must not deadlock a backend with row locks. */
        int a_line = w->index % 2;
        w->lines[n][a_line] = conf_line(w->ids[n][1], w->sku_a, 1);
        w->lines[n][1 - a_line] = conf_line(w->ids[n][2], w->sku_b, 1);
        int32_t failed_line = -2;
        w->codes[n] = stock_order(conf_store, w->ids[n][0], w->lines[n], 2,
                                  &failed_line, NULL);
        /* Only A can run short; it is named whichever line it is on. */
        if (w->codes[n] == STOCK_INSUFFICIENT ? failed_line != a_line
                                               : w->codes[n] != STOCK_OK)
            w->bad++;
    }
    return NULL;
}

/* Every line of an order exists if and only if the order succeeded. */
static void check_cart_lines(const cart_worker *w)
{
    stock_op ops[CART_ORDERS * 2];
    for (int n = 0; n < CART_ORDERS; n++)
        for (int k = 0; k < 2; k++)
            ops[n * 2 + k] = (stock_op){.type = STOCK_OP_LINE,
                                        .line = w->lines[n][k].line_id};
    assert_code(stock_execute(conf_store, ops, CART_ORDERS * 2), STOCK_OK, "");
    for (int n = 0; n < CART_ORDERS; n++)
        for (int k = 0; k < 2; k++)
            assert_code(ops[n * 2 + k].code,
                        w->codes[n] == STOCK_OK ? STOCK_OK : STOCK_NOT_FOUND,
                        w->lines[n][k].line_id.ptr);
}

static void concurrent_orders_take_all_lines_or_none(void **state)
{
    (void)state;
    const int64_t stock_a = 150, stock_b = 300;
    conf_sku a, b;
    conf_new_sku(&a, stock_a);
    conf_new_sku(&b, stock_b);
    cart_worker *workers = calloc(CART_THREADS, sizeof *workers);
    assert_non_null(workers);
    const char *base = conf_id("cart");
    for (int i = 0; i < CART_THREADS; i++) {
        workers[i].sku_a = a.id;
        workers[i].sku_b = b.id;
        workers[i].base = base;
        workers[i].index = i;
    }
    conf_run_threads(CART_THREADS, cart_run, workers, sizeof workers[0]);
    int64_t placed = 0;
    for (int i = 0; i < CART_THREADS; i++) {
        assert_i64(workers[i].bad, 0);
        for (int n = 0; n < CART_ORDERS; n++)
            placed += workers[i].codes[n] == STOCK_OK;
        check_cart_lines(&workers[i]);
    }
    free(workers);
    assert_i64(placed, stock_a);
    a.deducted = stock_a;
    b.deducted = stock_a;
    conf_check_sku(&a);
    conf_check_sku(&b);
}

/* ---------------------------------------------- refunds racing each other */

#define REFUND_LINE_QTY 100
#define REFUNDS_PER_THREAD 25

typedef struct refund_worker {
    const char *line;
    const char *base;
    int index;
    atomic_uchar *seen;
    int64_t refunded;
    int64_t bad;
} refund_worker;

static void *refund_run(void *arg)
{
    refund_worker *w = arg;
    for (int n = 0; n < REFUNDS_PER_THREAD; n++) {
        char id[CONF_ID_SIZE];
        snprintf(id, sizeof id, "%s.%d.%d", w->base, w->index, n);
        int64_t available = -1;
        stock_code code = stock_refund(conf_store, id, w->line, 1, &available, NULL);
        if (code == STOCK_OK) {
            w->refunded++;
            /* Levels after refunds from 0 are 1..REFUND_LINE_QTY, once each. */
            if (!conf_mark_level(w->seen, REFUND_LINE_QTY, available - 1))
                w->bad++;
        } else if (code != STOCK_EXCEEDS || available != 0) {
            w->bad++;
        }
    }
    return NULL;
}

static void racing_refunds_stay_capped(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, REFUND_LINE_QTY);
    const char *line = conf_id("line");
    assert_code(stock_deduct(conf_store, line, sku.id, REFUND_LINE_QTY, NULL, NULL),
                STOCK_OK, "");
    atomic_uchar *seen = calloc(REFUND_LINE_QTY, sizeof *seen);
    assert_non_null(seen);
    refund_worker workers[THREADS];
    const char *base = conf_id("refund");
    for (int i = 0; i < THREADS; i++)
        workers[i] = (refund_worker){.line = line, .base = base, .index = i,
                                     .seen = seen};
    conf_run_threads(THREADS, refund_run, workers, sizeof workers[0]);
    free(seen);
    int64_t refunded = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_i64(workers[i].bad, 0);
        refunded += workers[i].refunded;
    }
    assert_i64(refunded, REFUND_LINE_QTY);
    stock_line_info info;
    assert_code(stock_line(conf_store, line, &info, NULL), STOCK_OK, "");
    assert_i64(info.refunded, REFUND_LINE_QTY);
    sku.deducted = REFUND_LINE_QTY;
    sku.refunded = REFUND_LINE_QTY;
    conf_check_sku(&sku);
}

int conf_run_concurrency(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(hot_sku_sells_exactly_its_stock),
        cmocka_unit_test(sellout_sells_exactly_the_units),
        cmocka_unit_test(concurrent_orders_take_all_lines_or_none),
        cmocka_unit_test(racing_refunds_stay_capped),
    };
    return cmocka_run_group_tests_name("concurrency", tests, NULL, NULL);
}
