/*
 * retries.c -- retries racing each other. Eight threads send the same
 * deductions, orders, refunds or adjustments (same ids, same parameters) at
 * the same time, as clients retrying after a timeout do. Each must take
 * effect once (I4, I5): exactly one thread gets OK for each id, every other
 * gets REPLAY with the very same result, and the SKU totals count each once.
 */
#include <stdio.h>
#include <stdlib.h>

#include "conformance.h"

#define RETRY_IDS 200      /* operations each thread sends */
#define RETRY_BATCH 20
#define RETRY_LINE_QTY 3   /* refund case: qty of each line refunded */

typedef enum retry_kind { RETRY_DEDUCT, RETRY_ORDER, RETRY_REFUND, RETRY_ADD } retry_kind;

/* What every thread sends: op n of the case is the same in all threads. */
typedef struct retry_case {
    retry_kind kind;
    const char *sku_a;
    const char *sku_b;
    char ids[RETRY_IDS][CONF_ID_SIZE];       /* line, order, refund or adjustment */
    char lines[RETRY_IDS][2][CONF_ID_SIZE];  /* order line ids; refund: [n][0] */
} retry_case;

typedef struct retry_worker {
    const retry_case *c;
    int index;
    stock_code codes[RETRY_IDS];
    int64_t available[RETRY_IDS][2];         /* op, or each order line */
} retry_worker;

static int64_t retry_size(int n)
{
    return 1 + n % 3;
}

static void retry_make(const retry_case *c, int n, stock_op *op,
                       stock_order_line lines[2])
{
    stock_id id = stock_id_from_cstr(c->ids[n]);
    stock_id sku = stock_id_from_cstr(c->sku_a);
    switch (c->kind) {
    case RETRY_DEDUCT:
        *op = (stock_op){.type = STOCK_OP_DEDUCT, .id = id, .sku = sku,
                         .amount = retry_size(n)};
        return;
    case RETRY_ORDER:
        lines[0] = conf_line(c->lines[n][0], c->sku_a, 1);
        lines[1] = conf_line(c->lines[n][1], c->sku_b, retry_size(n));
        *op = (stock_op){.type = STOCK_OP_ORDER, .id = id, .lines = lines,
                         .line_count = 2};
        return;
    case RETRY_REFUND:
        *op = (stock_op){.type = STOCK_OP_REFUND, .id = id, .amount = retry_size(n),
                         .line = stock_id_from_cstr(c->lines[n][0])};
        return;
    case RETRY_ADD:
        *op = (stock_op){.type = STOCK_OP_ADD, .id = id, .sku = sku,
                         .amount = n % 2 == 0 ? retry_size(n) : -1};
        return;
    }
}

static void *retry_run(void *arg)
{
    retry_worker *w = arg;
    stock_op ops[RETRY_BATCH];
    stock_order_line lines[RETRY_BATCH][2];
    int which[RETRY_BATCH];
    /* Each thread starts at another place in the list. */
    int start = w->index * (RETRY_IDS / THREADS);
    for (int sent = 0; sent < RETRY_IDS; sent += RETRY_BATCH) {
        for (int i = 0; i < RETRY_BATCH; i++) {
            which[i] = (start + sent + i) % RETRY_IDS;
            retry_make(w->c, which[i], &ops[i], lines[i]);
        }
        if (stock_execute(conf_store, ops, RETRY_BATCH) != STOCK_OK)
            continue;
        for (int i = 0; i < RETRY_BATCH; i++) {
            int n = which[i];
            w->codes[n] = ops[i].code;
            bool order = w->c->kind == RETRY_ORDER;
            w->available[n][0] = order ? lines[i][0].available : ops[i].available;
            w->available[n][1] = order ? lines[i][1].available : 0;
        }
    }
    return NULL;
}

/* Runs the case on every thread; checks one OK per id, the rest REPLAY
 * with the same result, and gives that result (the op's available) in
 * agreed. */
static void retry_race(const retry_case *c, int64_t agreed[RETRY_IDS])
{
    retry_worker *workers = calloc(THREADS, sizeof *workers);
    assert_non_null(workers);
    for (int i = 0; i < THREADS; i++) {
        workers[i].c = c;
        workers[i].index = i;
        for (int n = 0; n < RETRY_IDS; n++)
            workers[i].codes[n] = STOCK_CODE_COUNT; /* "never answered" */
    }
    conf_run_threads(THREADS, retry_run, workers, sizeof workers[0]);
    for (int n = 0; n < RETRY_IDS; n++) {
        int originals = 0;
        for (int i = 0; i < THREADS; i++) {
            const retry_worker *w = &workers[i];
            if (w->codes[n] == STOCK_OK)
                originals++;
            else
                assert_code(w->codes[n], STOCK_REPLAY, c->ids[n]);
            assert_i64(w->available[n][0], workers[0].available[n][0]);
            assert_i64(w->available[n][1], workers[0].available[n][1]);
        }
        assert_int_equal(originals, 1);
        agreed[n] = workers[0].available[n][0];
    }
    free(workers);
}

/* A case with fresh ids for everything. */
static retry_case *retry_case_new(retry_kind kind, const char *sku_a,
                                  const char *sku_b)
{
    retry_case *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->kind = kind;
    c->sku_a = sku_a;
    c->sku_b = sku_b;
    for (int n = 0; n < RETRY_IDS; n++) {
        snprintf(c->ids[n], CONF_ID_SIZE, "%s", conf_id("retry"));
        snprintf(c->lines[n][0], CONF_ID_SIZE, "%s", conf_id("line"));
        snprintf(c->lines[n][1], CONF_ID_SIZE, "%s", conf_id("line"));
    }
    return c;
}

static void racing_deduct_retries_take_each_line_once(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 1000);
    retry_case *c = retry_case_new(RETRY_DEDUCT, sku.id, NULL);
    int64_t agreed[RETRY_IDS];
    retry_race(c, agreed);
    for (int n = 0; n < RETRY_IDS; n++) {
        stock_line_info info;
        assert_code(stock_line(conf_store, c->ids[n], &info, NULL), STOCK_OK, c->ids[n]);
        assert_i64(info.qty, retry_size(n));
        assert_i64(info.available_after, agreed[n]);
        sku.deducted += retry_size(n);
    }
    free(c);
    conf_check_sku(&sku);
}

static void racing_order_retries_place_each_order_once(void **state)
{
    (void)state;
    conf_sku a, b;
    conf_new_sku(&a, 1000);
    conf_new_sku(&b, 1000);
    retry_case *c = retry_case_new(RETRY_ORDER, a.id, b.id);
    int64_t agreed[RETRY_IDS];
    retry_race(c, agreed);
    for (int n = 0; n < RETRY_IDS; n++) {
        a.deducted += 1;
        b.deducted += retry_size(n);
    }
    free(c);
    conf_check_sku(&a);
    conf_check_sku(&b);
}

static void racing_refund_retries_refund_once(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, RETRY_IDS * RETRY_LINE_QTY);
    retry_case *c = retry_case_new(RETRY_REFUND, sku.id, NULL);
    for (int n = 0; n < RETRY_IDS; n++)
        assert_code(stock_deduct(conf_store, c->lines[n][0], sku.id,
                                 RETRY_LINE_QTY, NULL, NULL), STOCK_OK, "");
    sku.deducted = RETRY_IDS * RETRY_LINE_QTY;
    int64_t agreed[RETRY_IDS];
    retry_race(c, agreed);
    for (int n = 0; n < RETRY_IDS; n++) {
        stock_line_info info;
        assert_code(stock_line(conf_store, c->lines[n][0], &info, NULL), STOCK_OK, "");
        assert_i64(info.refunded, retry_size(n));
        sku.refunded += retry_size(n);
    }
    free(c);
    conf_check_sku(&sku);
}

static void racing_adjustment_retries_apply_once(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, RETRY_IDS);
    retry_case *c = retry_case_new(RETRY_ADD, sku.id, NULL);
    int64_t agreed[RETRY_IDS];
    retry_race(c, agreed);
    for (int n = 0; n < RETRY_IDS; n++)
        sku.adjusted += n % 2 == 0 ? retry_size(n) : -1;
    free(c);
    conf_check_sku(&sku);
}

int conf_run_retries(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(racing_deduct_retries_take_each_line_once),
        cmocka_unit_test(racing_order_retries_place_each_order_once),
        cmocka_unit_test(racing_refund_retries_refund_once),
        cmocka_unit_test(racing_adjustment_retries_apply_once),
    };
    return cmocka_run_group_tests_name("retries", tests, NULL, NULL);
}
