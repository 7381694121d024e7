/* batches.c -- queueing, failing and completing batches (see batches.h). */
#include <assert.h>
#include <stdint.h>

#include "backend/backend.h"
#include "lib/batches.h"
#include "lib/result.h"

void batches_enqueue(batch_queue *queue, stock_batch *batch)
{
    assert(batch != NULL && batch->count >= 1);
    batch->next = NULL;
    if (queue->tail != NULL)
        queue->tail->next = batch;
    else
        queue->head = batch;
    queue->tail = batch;
}

stock_batch *batches_dequeue(batch_queue *queue, size_t ops_max, size_t *ops)
{
    assert(ops_max >= STOCK_BATCH_MAX);
    stock_batch *first = queue->head, *last = NULL;
    size_t taken = 0;
    while (queue->head != NULL && queue->head->count <= ops_max - taken) {
        last = queue->head;
        taken += last->count;
        queue->head = last->next;
    }
    assert((first == NULL) == (last == NULL));
    if (last != NULL)
        last->next = NULL;
    if (queue->head == NULL)
        queue->tail = NULL;
    if (ops != NULL)
        *ops = taken;
    return last != NULL ? first : NULL;
}

void batches_fail(stock_batch *chain, stock_code code, const char *message)
{
    assert(message != NULL);
    for (stock_batch *batch = chain; batch != NULL; batch = batch->next)
        for (size_t i = 0; i < batch->count; i++) {
            stock_op *op = &batch->ops[i];
            if (op->code != STOCK_INVALID)
                result_fail(op, code, "%s", message);
        }
}

void batches_complete(stock_t *store, stock_batch *chain)
{
    assert(store != NULL);
    while (chain != NULL) {
        stock_batch *batch = chain;
        assert(batch->done != NULL);
        chain = batch->next;
        batch->next = NULL;
        stats_count_batch(&store->stats, batch->count);
        batch->done(batch);
    }
}
