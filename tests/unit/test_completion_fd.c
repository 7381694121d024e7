/*
 * test_completion_fd.c -- the embedded engine's completion descriptor
 * (stock_completion_fd, io_uring syncs): a durable batch submitted by the
 * polling thread does not complete inside stock_submit, nor before the
 * descriptor announces its sync; stock_process_completions then completes
 * it in the calling thread, with its result. Relaxed durability has no
 * descriptor. Fails where io_uring is unavailable (the build machines must
 * have it).
 */
#include <ftw.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "stock.h"

/* Generous: a sync on a loaded shared disk. */
#define TEST_WAIT_MS 10000

static char folder[64];
static unsigned completed;

static void count_done(stock_batch *batch)
{
    (void)batch;
    completed++;
}

static int remove_entry(const char *path, const struct stat *info, int flag,
                        struct FTW *ftw)
{
    (void)info, (void)flag, (void)ftw;
    return remove(path);
}

static int make_folder(void **unused)
{
    (void)unused;
    snprintf(folder, sizeof folder, "/tmp/test_completion_fd.XXXXXX");
    return mkdtemp(folder) == NULL ? -1 : 0;
}

static int remove_folder(void **unused)
{
    (void)unused;
    return nftw(folder, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static stock_t *open_store(stock_durability durability)
{
    stock_config config = {.durability = durability, .sync_in_caller = true};
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(stock_open(folder, &config, &store, message), STOCK_OK);
    return store;
}

/* Submits SET sku 10 and returns once the batch completed through the
 * descriptor; asserts it did not complete before. */
static void set_through_descriptor(stock_t *store, int fd, const char *sku)
{
    stock_op op = {.type = STOCK_OP_SET, .sku = stock_id_from_cstr(sku), .amount = 10};
    stock_batch batch = {.ops = &op, .count = 1, .done = count_done};
    completed = 0;
    stock_submit(store, &batch);
    /* Written, and its sync started: not durable yet, so not complete. */
    assert_int_equal(completed, 0);
    for (int tries = 0; completed == 0; tries++) {
        assert_true(tries < 100);
        struct pollfd poller = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&poller, 1, TEST_WAIT_MS), 1);
        stock_process_completions(store);
    }
    assert_int_equal(completed, 1);
    assert_int_equal(op.code, STOCK_OK);
    assert_int_equal(op.available, 10);
}

static void test_batches_complete_through_the_descriptor(void **unused)
{
    (void)unused;
    stock_t *store = open_store(STOCK_DURABILITY_SYNC);
    int fd = stock_completion_fd(store);
    assert_true(fd >= 0);
    set_through_descriptor(store, fd, "a");
    set_through_descriptor(store, fd, "b");
    stock_stats stats;
    assert_int_equal(stock_get_stats(store, &stats), STOCK_OK);
    assert_true(stats.syncs >= 2);
    assert_int_equal(stock_close(store), STOCK_OK);
    /* Both are durable: a reopen has them. */
    store = open_store(STOCK_DURABILITY_SYNC);
    stock_op get = {.type = STOCK_OP_GET, .sku = stock_id_from_cstr("b")};
    assert_int_equal(stock_execute(store, &get, 1), STOCK_OK);
    assert_int_equal(get.info.sku_info.available, 10);
    assert_int_equal(stock_close(store), STOCK_OK);
}

static void test_relaxed_has_no_descriptor(void **unused)
{
    (void)unused;
    stock_t *store = open_store(STOCK_DURABILITY_RELAXED);
    assert_int_equal(stock_completion_fd(store), -1);
    stock_process_completions(store);   /* a no-op */
    assert_int_equal(stock_close(store), STOCK_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batches_complete_through_the_descriptor,
                                        make_folder, remove_folder),
        cmocka_unit_test_setup_teardown(test_relaxed_has_no_descriptor,
                                        make_folder, remove_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
