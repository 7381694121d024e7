/*
 * no_uring.c -- preloaded into stockd by 80-disk-faults so that
 * io_uring_queue_init fails as it does where io_uring is unavailable (an
 * old kernel, a seccomp filter, kernel.io_uring_disabled): the fallback,
 * where the loop waits for each fdatasync, then runs on a kernel that has
 * io_uring. Built without the sanitizers: it is loaded beside their
 * runtime, never instead of it.
 */
#include <errno.h>

struct io_uring;

int io_uring_queue_init(unsigned entries, struct io_uring *ring, unsigned flags)
{
    (void)entries, (void)ring, (void)flags;
    return -ENOSYS;
}
