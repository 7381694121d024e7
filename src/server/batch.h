/*
 * batch.h -- gathering requests into stock batches, submitting them, and
 * handing completions back to the loop.
 *
 * Every op read during one loop turn, over all connections, goes into the
 * gathering batch; the loop's check phase submits it (up to
 * BATCH_INFLIGHT_MAX batches in flight, so reading goes on while the store
 * makes earlier batches durable and group commit has company). The store
 * completes a batch on its own thread; batch.c queues it under a mutex and
 * wakes the loop, which marks it completed and drains the replies of each
 * connection that had an op in it.
 */
#ifndef STOCK_SERVER_BATCH_H
#define STOCK_SERVER_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "server/server.h"

#define BATCH_INFLIGHT_MAX 64    /* batches submitted and not yet completed */
#define BATCH_OPS_INITIAL 256    /* first capacity of a batch's op array */
#define BATCH_FREE_MAX 16        /* finished batches kept for reuse */
#define BATCH_KEEP_OPS_MAX 4096  /* larger batches are freed, not kept */

/* A batch's life, told on the loop thread: it takes ops during one loop
 * turn (GATHERING), batch_submit hands it to the store (SUBMITTED), and its
 * completion, handed back to the loop, lets its replies render (COMPLETED).
 * Once no slot holds it, it is freed, or kept for reuse and GATHERING anew. */
typedef enum batch_state {
    BATCH_GATHERING = 0,
    BATCH_SUBMITTED,
    BATCH_COMPLETED
} batch_state;

typedef struct batch {
    stock_batch base;            /* what the store sees; base.user = this */
    server *srv;
    stock_op *ops;               /* cap entries, count used */
    struct conn **owners;        /* owners[i] sent ops[i] */
    uint32_t count;
    uint32_t cap;
    uint32_t unreplied;          /* slots still reading this batch's ops */
    batch_state state;
    uint64_t submitted_ns;       /* uv_hrtime() at stock_submit */
    struct batch *next;          /* free list or done queue */
} batch;

/* Creates the async handle and the done queue. Returns 0 or a libuv error. */
int batch_init(server *srv);

/* True if the gathering batch can take one more op. */
bool batch_has_room(const server *srv);

/*
 * Appends an op for c to the gathering batch (creating it if needed): its
 * inputs zeroed, to be filled by the caller before the loop turn ends.
 * *owner receives the batch and *index the op's position. Returns NULL on
 * out of memory. The caller checked batch_has_room.
 */
stock_op *batch_add(server *srv, struct conn *c, batch **owner, uint32_t *index);

/* Submits the gathering batch if it has ops and BATCH_INFLIGHT_MAX allows. */
void batch_submit(server *srv);

/* Drops one slot's hold on b; frees b once completed and unreferenced. */
void batch_release(server *srv, batch *b);

/* Frees the free list (at exit, after every batch completed). */
void batch_fini(server *srv);

#endif /* STOCK_SERVER_BATCH_H */
