/*
 * sharded_dispatch.c -- handing ops to the members and completing the
 * chains in order (sharded.h, "shard_flight").
 *
 * A part is one member batch: copies of the ops routed to that member, and
 * where each came from. Its done callback (on the member's thread) copies
 * the results back, then releases its flight. The flights complete strictly
 * in the order the worker began them: whichever thread finds the oldest
 * flight finished completes it and every finished one after it, while the
 * others leave that to it.
 */
#include <stdlib.h>

#include "backend/sharded.h"
#include "lib/batches.h"
#include "lib/result.h"

typedef struct shard_part {
    stock_batch batch;
    sharded_store *store;
    shard_flight *flight;
    stock_op **origins;
    stock_op copies[];
} shard_part;

shard_flight *shard_flight_begin(sharded_store *store, stock_batch *chain)
{
    shard_flight *flight = calloc(1, sizeof *flight);
    if (flight == NULL)
        return NULL;
    flight->chain = chain;
    flight->pending = 1;
    pthread_mutex_lock(&store->mutex);
    if (store->flights_tail != NULL)
        store->flights_tail->next = flight;
    else
        store->flights = flight;
    store->flights_tail = flight;
    pthread_mutex_unlock(&store->mutex);
    return flight;
}

/* Drops one hold on flight, then completes every finished flight at the
 * head of the queue unless another thread is already doing so. */
static void flight_release(sharded_store *store, shard_flight *flight)
{
    pthread_mutex_lock(&store->mutex);
    flight->pending--;
    if (store->completing) {
        pthread_mutex_unlock(&store->mutex);
        return;
    }
    store->completing = true;
    while (store->flights != NULL && store->flights->pending == 0) {
        shard_flight *head = store->flights;
        store->flights = head->next;
        if (store->flights == NULL)
            store->flights_tail = NULL;
        pthread_mutex_unlock(&store->mutex);
        batches_complete(&store->base, head->chain);
        free(head);
        pthread_mutex_lock(&store->mutex);
    }
    store->completing = false;
    pthread_cond_broadcast(&store->done);
    pthread_mutex_unlock(&store->mutex);
}

void shard_flight_end(sharded_store *store, shard_flight *flight)
{
    flight_release(store, flight);
}

static void part_done(stock_batch *batch)
{
    shard_part *part = batch->user;
    sharded_store *store = part->store;
    shard_flight *flight = part->flight;
    for (size_t k = 0; k < batch->count; k++)
        *part->origins[k] = part->copies[k];
    free(part);
    pthread_mutex_lock(&store->mutex);
    if (--store->pending == 0)
        pthread_cond_broadcast(&store->done);
    pthread_mutex_unlock(&store->mutex);
    flight_release(store, flight);
}

void shard_dispatch(sharded_store *store, uint32_t first, uint32_t end, shard_flight *flight)
{
    shard_part *parts[SHARD_MAX] = {0};
    for (uint32_t i = 0; i < store->count; i++)
        store->shards[i].routed = 0;
    for (uint32_t k = first; k < end; k++)
        if (store->routes[k] >= 0 && store->ops[k]->code == STOCK_OK)
            store->shards[store->routes[k]].routed++;
    for (uint32_t i = 0; i < store->count; i++) {
        uint32_t count = store->shards[i].routed;
        if (count == 0)
            continue;
        parts[i] = malloc(sizeof *parts[i] + count * (sizeof(stock_op) + sizeof(stock_op *)));
        if (parts[i] == NULL)
            continue;
        parts[i]->origins = (stock_op **)(parts[i]->copies + count);
        parts[i]->batch = (stock_batch){.ops = parts[i]->copies, .done = part_done,
                                        .user = parts[i]};
        parts[i]->store = store;
        parts[i]->flight = flight;
    }
    for (uint32_t k = first; k < end; k++) {
        stock_op *op = store->ops[k];
        if (store->routes[k] < 0 || op->code != STOCK_OK)
            continue;
        shard_part *part = parts[store->routes[k]];
        if (part == NULL) {
            result_fail(op, STOCK_NOMEM, "no memory to route the op");
            continue;
        }
        part->copies[part->batch.count] = *op;
        part->origins[part->batch.count++] = op;
    }
    for (uint32_t i = 0; i < store->count; i++) {
        if (parts[i] == NULL)
            continue;
        pthread_mutex_lock(&store->mutex);
        store->pending++;
        flight->pending++;
        pthread_mutex_unlock(&store->mutex);
        postgres_backend.submit(store->shards[i].store, &parts[i]->batch);
    }
}

void shard_barrier(sharded_store *store)
{
    pthread_mutex_lock(&store->mutex);
    while (store->pending > 0)
        pthread_cond_wait(&store->done, &store->mutex);
    pthread_mutex_unlock(&store->mutex);
}

void shard_quiesce(sharded_store *store)
{
    pthread_mutex_lock(&store->mutex);
    while (store->pending > 0 || store->flights != NULL || store->completing)
        pthread_cond_wait(&store->done, &store->mutex);
    pthread_mutex_unlock(&store->mutex);
}
