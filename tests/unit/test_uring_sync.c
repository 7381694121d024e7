/*
 * test_uring_sync.c -- unit tests of src/lib/uring_sync: an fdatasync
 * submitted to io_uring completes through the eventfd with its tag and
 * result, a failing one hands its errno back (the failure the embedded
 * engine must fail closed on), several syncs in flight at once, each on
 * its own open file description, all complete with their own tags, which
 * results say a sync did not run, and a reap with nothing done returns
 * nothing. Fails (does not skip) where io_uring is unavailable: the build
 * machines must have it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/uring_sync.h"

/* Generous: a sync on a loaded shared disk. */
#define TEST_WAIT_MS 10000

typedef struct seen {
    unsigned count;
    uint64_t tag;
    int result;
} seen;

static void record_done(void *context, uint64_t tag, int result)
{
    seen *s = context;
    s->count++;
    s->tag = tag;
    s->result = result;
}

/* Waits for the eventfd, then reaps; returns what was seen. */
static seen wait_and_reap(uring_sync *ring)
{
    struct pollfd poller = {.fd = uring_sync_fd(ring), .events = POLLIN};
    assert_int_equal(poll(&poller, 1, TEST_WAIT_MS), 1);
    seen s = {0};
    assert_int_equal(uring_sync_reap(ring, 0, record_done, &s), 1);
    return s;
}

static void test_sync_completes_with_its_tag(void **unused)
{
    (void)unused;
    uring_sync *ring = uring_sync_create();
    assert_non_null(ring);
    char path[] = "/tmp/test_uring_sync.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    assert_true(uring_sync_submit(ring, fd, 42));
    seen s = wait_and_reap(ring);
    assert_int_equal(s.tag, 42);
    assert_int_equal(s.result, 0);
    /* Nothing more in flight: a reap finds nothing, waiting or not. */
    s = (seen){0};
    assert_int_equal(uring_sync_reap(ring, 0, record_done, &s), 0);
    assert_int_equal(uring_sync_reap(ring, 5, record_done, &s), 0);
    assert_int_equal(s.count, 0);
    close(fd);
    unlink(path);
    uring_sync_destroy(ring);
}

/* A sync that fails (here: of a descriptor that is not open) hands back
 * the negative errno. */
static void test_failed_sync_returns_its_error(void **unused)
{
    (void)unused;
    uring_sync *ring = uring_sync_create();
    assert_non_null(ring);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    close(fd);
    assert_true(uring_sync_submit(ring, fd, 7));
    seen s = wait_and_reap(ring);
    assert_int_equal(s.tag, 7);
    assert_int_equal(s.result, -EBADF);
    uring_sync_destroy(ring);
}

/* Counts each tag 100.. of a successful sync into context's array. */
static void count_done(void *context, uint64_t tag, int result)
{
    unsigned *completed = context;
    assert_int_equal(result, 0);
    assert_true(tag >= 100 && tag < 100 + URING_SYNC_DEPTH);
    completed[tag - 100]++;
}

/* URING_SYNC_DEPTH syncs in flight at once, each through its own open()
 * of one file (as the embedded engine's slots use the journal's sync
 * files): each completes once, with its tag and success, in whatever order
 * the kernel finishes them. */
static void test_syncs_in_flight_complete_each_once(void **unused)
{
    (void)unused;
    uring_sync *ring = uring_sync_create();
    assert_non_null(ring);
    char path[] = "/tmp/test_uring_sync.XXXXXX";
    int writer = mkstemp(path);
    assert_true(writer >= 0);
    int fds[URING_SYNC_DEPTH];
    for (unsigned i = 0; i < URING_SYNC_DEPTH; i++) {
        assert_int_equal(pwrite(writer, "x", 1, i * 4096), 1);
        fds[i] = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fds[i] >= 0);
        assert_true(uring_sync_submit(ring, fds[i], 100 + i));
    }
    unsigned completed[URING_SYNC_DEPTH] = {0};
    unsigned reaped = 0;
    while (reaped < URING_SYNC_DEPTH) {
        struct pollfd poller = {.fd = uring_sync_fd(ring), .events = POLLIN};
        assert_int_equal(poll(&poller, 1, TEST_WAIT_MS), 1);
        reaped += uring_sync_reap(ring, 0, count_done, completed);
    }
    for (unsigned i = 0; i < URING_SYNC_DEPTH; i++)
        assert_int_equal(completed[i], 1);
    assert_int_equal(reaped, URING_SYNC_DEPTH);
    for (unsigned i = 0; i < URING_SYNC_DEPTH; i++)
        close(fds[i]);
    close(writer);
    unlink(path);
    uring_sync_destroy(ring);
}

/* Only a result that says the sync never ran may be retried; an I/O
 * error, a full or read-only disk, or one unknown, may mean lost pages. */
static void test_retryable_results(void **unused)
{
    (void)unused;
    assert_true(uring_sync_retryable(-ECANCELED));
    assert_true(uring_sync_retryable(-EAGAIN));
    assert_true(uring_sync_retryable(-EINTR));
    assert_false(uring_sync_retryable(-EIO));
    assert_false(uring_sync_retryable(-ENOSPC));
    assert_false(uring_sync_retryable(-EDQUOT));
    assert_false(uring_sync_retryable(-EROFS));
    assert_false(uring_sync_retryable(-EBADF));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_completes_with_its_tag),
        cmocka_unit_test(test_failed_sync_returns_its_error),
        cmocka_unit_test(test_syncs_in_flight_complete_each_once),
        cmocka_unit_test(test_retryable_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
