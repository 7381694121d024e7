/*
 * batches.h -- what every backend does with the batches stock_submit hands
 * it: queue them for its own thread, fail the ops it cannot run, and
 * complete them, in order, through batch->done.
 *
 * A batch is linked through its `next` field while a backend holds it (a
 * chain: first batch, then next, ..., NULL), so none of this allocates.
 */
#ifndef STOCK_BATCHES_H
#define STOCK_BATCHES_H

#include <stddef.h>

#include "stock.h"

/* Batches waiting for a backend thread, oldest first. Not locked: the
 * backend guards it with its own mutex. Zero-initialise. */
typedef struct batch_queue {
    stock_batch *head;
    stock_batch *tail;
} batch_queue;

/* Appends batch (its next is overwritten). */
void batches_enqueue(batch_queue *queue, stock_batch *batch);

/*
 * Takes batches from the front of the queue while their ops add up to at
 * most ops_max (SIZE_MAX: all of them; at least STOCK_BATCH_MAX, so the
 * first always fits). Returns them as a chain in queue order, NULL if the
 * queue is empty; *ops (may be NULL) receives the count of their ops.
 */
stock_batch *batches_dequeue(batch_queue *queue, size_t ops_max, size_t *ops);

/* Completes every op of the chain that is not already STOCK_INVALID with
 * code (a failure) and message (borrowed; copied, truncated to fit). */
void batches_fail(stock_batch *chain, stock_code code, const char *message);

/*
 * Completes the chain in order: counts each batch and its ops in the
 * store's counters (lib/stats.h), then calls its done. A batch's next is
 * read and cleared before its done runs, since done may free or reuse it.
 * Every completion of every backend goes through here, so the counters see
 * each batch exactly once.
 */
void batches_complete(stock_t *store, stock_batch *chain);

#endif /* STOCK_BATCHES_H */
