/*
 * close.c -- closing and reopening the store, run last: stock_close
 * completes every batch already submitted before it returns, and what was
 * acknowledged is there when the same URI is opened again (and, for a
 * backend that recovers, its stats say that recovery rebuilt it).
 */
#include <pthread.h>
#include <stdio.h>

#include "conformance.h"

#define CLOSE_BATCHES 8
#define CLOSE_OPS 50

typedef struct close_batch {
    stock_batch batch;
    stock_op ops[CLOSE_OPS];
    char ids[CLOSE_OPS][CONF_ID_SIZE];
} close_batch;

static atomic_int completed;

static void count_done(stock_batch *batch)
{
    (void)batch;
    atomic_fetch_add(&completed, 1);
}

static void close_completes_pending_batches_and_reopen_keeps_them(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, CLOSE_BATCHES * CLOSE_OPS);
    static close_batch batches[CLOSE_BATCHES];
    for (int b = 0; b < CLOSE_BATCHES; b++) {
        for (int i = 0; i < CLOSE_OPS; i++) {
            snprintf(batches[b].ids[i], CONF_ID_SIZE, "%s", conf_id("line"));
            batches[b].ops[i] = (stock_op){
                .type = STOCK_OP_DEDUCT, .amount = 1,
                .id = stock_id_from_cstr(batches[b].ids[i]),
                .sku = stock_id_from_cstr(sku.id)};
        }
        batches[b].batch = (stock_batch){.ops = batches[b].ops, .count = CLOSE_OPS,
                                         .done = count_done};
        stock_submit(conf_store, &batches[b].batch);
    }
    /* No waiting: close itself must finish them. */
    stock_code code = stock_close(conf_store);
    conf_store = NULL;
    assert_code(code, STOCK_OK, "stock_close");
    assert_int_equal(atomic_load(&completed), CLOSE_BATCHES);
    for (int b = 0; b < CLOSE_BATCHES; b++)
        for (int i = 0; i < CLOSE_OPS; i++)
            assert_code(batches[b].ops[i].code, STOCK_OK, batches[b].ops[i].message);
    char message[STOCK_MESSAGE_MAX] = "";
    code = stock_open(conf_uri, &conf_config, &conf_store, message);
    assert_code(code, STOCK_OK, message);
    sku.deducted = CLOSE_BATCHES * CLOSE_OPS;
    conf_check_sku(&sku);
    stock_line_info info;
    assert_code(stock_line(conf_store, batches[CLOSE_BATCHES - 1].ids[CLOSE_OPS - 1],
                           &info, NULL), STOCK_OK, "");
    assert_i64(info.available_after, 0);
    /* A backend that recovers rebuilt that state from its snapshot and log
     * (so from at least one record), and a clean close tears no write. */
    stock_stats stats;
    stock_get_stats(conf_store, &stats);
    if (stats.recovered) {
        assert_true(stats.recovery_snapshot_lsn + stats.recovery_records > 0);
        assert_int_equal(stats.recovery_torn_bytes, 0);
    }
}

int conf_run_close(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(close_completes_pending_batches_and_reopen_keeps_them),
    };
    return cmocka_run_group_tests_name("close", tests, NULL, NULL);
}
