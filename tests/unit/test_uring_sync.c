/*
 * test_uring_sync.c -- unit tests of src/lib/uring_sync: an fdatasync
 * submitted to io_uring completes through the eventfd with its tag and
 * result, a failing one hands its errno back (the failure the embedded
 * engine must fail closed on), and a reap with nothing done returns
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_completes_with_its_tag),
        cmocka_unit_test(test_failed_sync_returns_its_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
