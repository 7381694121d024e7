/*
 * uring_sync.h -- fdatasync without waiting for it: the sync is submitted
 * to an io_uring and its completion announced on an eventfd, which an event
 * loop can poll. The embedded engine uses it so that the thread that
 * submits a batch (stockd's loop) goes on reading while the disk syncs.
 *
 * Threads: uring_sync_submit from one thread at a time (the caller
 * serialises it); uring_sync_reap from any thread, at once with submit (the
 * submission and completion queues are apart; reaps are serialised
 * inside).
 */
#ifndef STOCK_URING_SYNC_H
#define STOCK_URING_SYNC_H

#include <stdbool.h>
#include <stdint.h>

/* Syncs in flight at most (the queue's depth). The kernel runs each in a
 * worker thread, up to 4 per CPU at once: on 2 CPUs or more, all 8 run. */
#define URING_SYNC_DEPTH 8u

typedef struct uring_sync uring_sync;

/* A new ring with its eventfd, or NULL with errno set when io_uring is
 * unavailable (ENOSYS on an old kernel or under a seccomp filter, EPERM with
 * io_uring_disabled, ENOMEM): the caller then syncs with fdatasync. Free
 * with uring_sync_destroy. */
uring_sync *uring_sync_create(void);
void uring_sync_destroy(uring_sync *ring);

/* The eventfd (non-blocking) that becomes readable when a sync completes.
 * Owned by ring. */
int uring_sync_fd(const uring_sync *ring);

/* Submits an fdatasync of fd tagged with tag (any value but
 * URING_SYNC_TAG_NONE); false (errno set) if it could not be submitted
 * (then nothing is in flight for it, and no completion will carry tag). */
bool uring_sync_submit(uring_sync *ring, int fd, uint64_t tag);

/* Reserved: the tag of an entry that a failed submit left queued, turned
 * into a no-op whose completion uring_sync_reap drops. */
#define URING_SYNC_TAG_NONE UINT64_MAX

/* Called once per completed sync: its tag, and 0 or a negative errno. */
typedef void (*uring_sync_done_fn)(void *context, uint64_t tag, int result);

/* Whether a sync's negative result says it did not run rather than that
 * data was lost: -ECANCELED, -EAGAIN, -EINTR. The caller may sync again.
 * Any other (-EIO, -ENOSPC, -EDQUOT, -EROFS, one unknown) may mean pages
 * that were never written: a later sync that succeeds proves nothing. */
bool uring_sync_retryable(int result);

/* Hands every completed sync to done (outside any lock of the caller's
 * that done takes). When none has completed yet, waits up to wait_ms for
 * one (0: not at all). Clears the eventfd first. Returns the syncs handed
 * over. */
unsigned uring_sync_reap(uring_sync *ring, unsigned wait_ms,
                         uring_sync_done_fn done, void *context);

#endif /* STOCK_URING_SYNC_H */
