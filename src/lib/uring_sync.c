/*
 * uring_sync.c -- fdatasync through io_uring, completed through an eventfd
 * (see uring_sync.h).
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <liburing.h>

#include "lib/uring_sync.h"

struct uring_sync {
    struct io_uring ring;
    int event_fd;
    pthread_mutex_t reap_mutex;   /* one reaper of the completion queue */
};

uring_sync *uring_sync_create(void)
{
    uring_sync *ring = calloc(1, sizeof *ring);
    if (ring == NULL)
        return NULL;
    ring->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ring->event_fd < 0) {
        free(ring);
        return NULL;
    }
    /* liburing answers -errno rather than setting it. */
    int rc = io_uring_queue_init(URING_SYNC_DEPTH, &ring->ring, 0);
    if (rc == 0) {
        rc = io_uring_register_eventfd(&ring->ring, ring->event_fd);
        if (rc == 0 && (rc = -pthread_mutex_init(&ring->reap_mutex, NULL)) == 0)
            return ring;
        io_uring_queue_exit(&ring->ring);
    }
    close(ring->event_fd);
    free(ring);
    errno = -rc;
    return NULL;
}

void uring_sync_destroy(uring_sync *ring)
{
    if (ring == NULL)
        return;
    io_uring_queue_exit(&ring->ring);
    close(ring->event_fd);
    pthread_mutex_destroy(&ring->reap_mutex);
    free(ring);
}

int uring_sync_fd(const uring_sync *ring)
{
    assert(ring != NULL && ring->event_fd >= 0);
    return ring->event_fd;
}

bool uring_sync_submit(uring_sync *ring, int fd, uint64_t tag)
{
    assert(ring != NULL && fd >= 0 && tag != URING_SYNC_TAG_NONE);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring->ring);
    if (sqe == NULL) {
        errno = EBUSY;
        return false;
    }
    io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, tag);
    /* Entries a failed submit left (no-ops now) go ahead of this one: it
     * was sent only if every queued entry was. */
    unsigned queued = io_uring_sq_ready(&ring->ring);
    assert(queued >= 1);
    int rc;
    do {
        rc = io_uring_submit(&ring->ring);
    } while (rc == -EINTR);
    if (rc < 0 || (unsigned)rc < queued) {
        /* The entry stays in the submission queue, and the next submit
         * would send it for a sync its caller believes never started.
         * Without a polling kernel thread the kernel reads the queue only
         * inside io_uring_enter, so rewriting it in place is safe. */
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, URING_SYNC_TAG_NONE);
        errno = rc < 0 ? -rc : EIO;
        return false;
    }
    return true;
}

bool uring_sync_retryable(int result)
{
    assert(result < 0);
    return result == -ECANCELED || result == -EAGAIN || result == -EINTR;
}

unsigned uring_sync_reap(uring_sync *ring, unsigned wait_ms,
                         uring_sync_done_fn done, void *context)
{
    assert(ring != NULL && done != NULL);
    pthread_mutex_lock(&ring->reap_mutex);
    uint64_t count;
    /* Cleared before the queue is read: a completion after the read sets it
     * again, so none is left unannounced. */
    while (read(ring->event_fd, &count, sizeof count) < 0 && errno == EINTR)
        continue;
    unsigned reaped = 0;
    struct io_uring_cqe *cqe;
    for (;;) {
        int rc;
        if (reaped == 0 && wait_ms > 0) {
            struct __kernel_timespec timeout = {.tv_sec = wait_ms / 1000,
                                                .tv_nsec = (long long)(wait_ms % 1000) * 1000000};
            rc = io_uring_wait_cqe_timeout(&ring->ring, &cqe, &timeout);
            if (rc == -ETIME)
                break;
        } else {
            rc = io_uring_peek_cqe(&ring->ring, &cqe);
        }
        if (rc == -EINTR)
            continue;
        if (rc != 0)
            break;
        uint64_t tag = io_uring_cqe_get_data64(cqe);
        int result = cqe->res;
        io_uring_cqe_seen(&ring->ring, cqe);
        if (tag == URING_SYNC_TAG_NONE)
            continue;
        done(context, tag, result);
        reaped++;
    }
    pthread_mutex_unlock(&ring->reap_mutex);
    return reaped;
}
