/*
 * worker.h -- the thread a backend runs its batches on when its work blocks
 * (a database connection, a socket). stock_submit only queues the batch and
 * wakes the thread, so a caller's event loop never waits for the network;
 * the thread takes everything queued meanwhile as one chain (up to ops_max
 * ops), in submission order, and hands it to the backend's run. Closing
 * lets the thread drain the queue first.
 *
 * The backend keeps a worker inside its store and gives it its tasks; each
 * runs on the worker's thread, so what they touch needs no lock. A
 * synchronous call that needs the thread's connection (stock_list) runs
 * there too, between two chains, through worker_call_run.
 */
#ifndef STOCK_WORKER_H
#define STOCK_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/batches.h"

typedef struct worker_tasks {
    /* Before serving (may be NULL): returns STOCK_OK to serve, or the
     * failure that worker_start returns (the thread then ends). */
    stock_code (*start)(stock_t *store);
    /* Gives every valid op of the chain its result and completes every
     * batch of it, in order (batches_complete), before it returns. */
    void (*run)(stock_t *store, stock_batch *chain);
    /* Once the queue is drained at close (may be NULL). */
    void (*stop)(stock_t *store);
    /* Upkeep that is due with or without traffic (may be NULL), such as the
     * redis backend's sweep of abandoned orders: runs once after start,
     * then again, between runs or while idle, once the microseconds it
     * returned (> 0) have passed on CLOCK_MONOTONIC. */
    int64_t (*tick)(stock_t *store);
} worker_tasks;

/* A call to run on the worker's thread; lives on the caller's stack. */
typedef struct worker_call {
    void (*run)(stock_t *store, void *context);
    void *context;
    bool done;                   /* the worker's, under its mutex */
    struct worker_call *next;
} worker_call;

typedef struct worker {
    stock_t *store;
    const worker_tasks *tasks;
    size_t ops_max;              /* ops handed to one run, >= STOCK_BATCH_MAX */
    pthread_t thread;
    pthread_mutex_t mutex;       /* guards the fields below */
    pthread_cond_t wake;         /* the thread waits for work, the opener for start;
                                  * on CLOCK_MONOTONIC, the tick's clock */
    batch_queue queue;
    worker_call *calls;          /* to run before the next chain, newest first */
    pthread_cond_t called;       /* callers wait for their call's end */
    bool started;
    stock_code start_code;
    bool closing;
} worker;

/*
 * Starts the thread for store and waits until tasks->start has run.
 * tasks is borrowed for the worker's life. Returns STOCK_OK (the worker
 * serves until worker_close), STOCK_NOMEM if no thread could be made, or
 * what start returned; on failure the worker is gone, nothing to close.
 */
stock_code worker_start(worker *w, stock_t *store, const worker_tasks *tasks,
                        size_t ops_max);

/* Queues batch for the thread. Once closing has begun, it completes at once
 * with STOCK_UNAVAILABLE instead (stock.h forbids that race; this keeps it
 * harmless). */
void worker_submit(worker *w, stock_batch *batch);

/* Runs call->run(store, call->context) on the worker's thread, after the
 * chain it is running (if any), and waits for it to end. Any thread but the
 * worker's own (never a done callback), not during worker_close. */
void worker_call_run(worker *w, worker_call *call);

/* A stock_list call for the worker's thread, the one shape every backend
 * that lists over its connection uses: run reads the page for request into
 * entries and *count, says why it failed in message, and sets code. */
struct list_request;
typedef struct worker_listing {
    const struct list_request *request;
    stock_list_entry *entries;
    uint32_t *count;
    char *message;
    size_t message_size;
    stock_code code;             /* STOCK_OK until run says otherwise */
} worker_listing;

/* Runs run(store, listing) on the worker's thread (worker_call_run) for a
 * backend's list, and returns what it set in listing->code. */
stock_code worker_list(worker *w, void (*run)(stock_t *store, worker_listing *listing),
                       const struct list_request *request, stock_list_entry *entries,
                       uint32_t *count, char *message, size_t message_size);

/* Lets the thread run everything queued, stop, and end; frees the worker's
 * resources (not the store). */
void worker_close(worker *w);

#endif /* STOCK_WORKER_H */
