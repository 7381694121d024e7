/* worker.c -- a backend's batch thread (see worker.h). */
#include <assert.h>
#include <errno.h>
#include <time.h>

#include "lib/clock.h"
#include "lib/worker.h"

/* Runs the tick if it is due (mutex held; released around the tick);
 * returns when the next one is due (INT64_MAX without a tick). */
static int64_t tick_if_due(worker *w, int64_t tick_at_us)
{
    if (w->tasks->tick == NULL)
        return INT64_MAX;
    if (clock_now_us(CLOCK_MONOTONIC) < tick_at_us)
        return tick_at_us;
    pthread_mutex_unlock(&w->mutex);
    int64_t delay_us = w->tasks->tick(w->store);
    assert(delay_us > 0);
    int64_t next_us = clock_now_us(CLOCK_MONOTONIC) + delay_us;
    pthread_mutex_lock(&w->mutex);
    return next_us;
}

/* Waits (mutex held) until a batch or a call is queued, the worker closes,
 * or the tick is due at tick_at_us. */
static void wait_for_work(worker *w, int64_t tick_at_us)
{
    struct timespec until = {tick_at_us / 1000000, (tick_at_us % 1000000) * 1000};
    while (w->queue.head == NULL && w->calls == NULL && !w->closing) {
        if (tick_at_us == INT64_MAX)
            pthread_cond_wait(&w->wake, &w->mutex);
        else if (pthread_cond_timedwait(&w->wake, &w->mutex, &until) == ETIMEDOUT)
            return;
    }
}

/* Runs the calls waiting (mutex held on entry and exit, not during). */
static void run_calls(worker *w)
{
    while (w->calls != NULL) {
        worker_call *call = w->calls;
        w->calls = call->next;
        pthread_mutex_unlock(&w->mutex);
        call->run(w->store, call->context);
        pthread_mutex_lock(&w->mutex);
        call->done = true;
        pthread_cond_broadcast(&w->called);
    }
}

static void *worker_main(void *argument)
{
    worker *w = argument;
    stock_code code = w->tasks->start != NULL ? w->tasks->start(w->store) : STOCK_OK;
    pthread_mutex_lock(&w->mutex);
    w->start_code = code;
    w->started = true;
    pthread_cond_broadcast(&w->wake);
    int64_t tick_at_us = 0;   /* the first tick is due at once */
    while (code == STOCK_OK) {
        tick_at_us = tick_if_due(w, tick_at_us);
        wait_for_work(w, tick_at_us);
        run_calls(w);
        stock_batch *chain = batches_dequeue(&w->queue, w->ops_max, NULL);
        if (chain == NULL && w->closing)
            break;   /* closing, and the queue is drained */
        if (chain == NULL)
            continue;   /* a call ran, or the tick is due */
        pthread_mutex_unlock(&w->mutex);
        w->tasks->run(w->store, chain);
        pthread_mutex_lock(&w->mutex);
    }
    pthread_mutex_unlock(&w->mutex);
    if (code == STOCK_OK && w->tasks->stop != NULL)
        w->tasks->stop(w->store);
    return NULL;
}

static void destroy(worker *w)
{
    pthread_cond_destroy(&w->called);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mutex);
}

stock_code worker_start(worker *w, stock_t *store, const worker_tasks *tasks,
                        size_t ops_max)
{
    assert(store != NULL && tasks != NULL && tasks->run != NULL);
    assert(ops_max >= STOCK_BATCH_MAX);
    *w = (worker){.store = store, .tasks = tasks, .ops_max = ops_max};
    pthread_mutex_init(&w->mutex, NULL);
    pthread_condattr_t clock;
    pthread_condattr_init(&clock);
    pthread_condattr_setclock(&clock, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &clock);
    pthread_condattr_destroy(&clock);
    pthread_cond_init(&w->called, NULL);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        destroy(w);
        return STOCK_NOMEM;
    }
    pthread_mutex_lock(&w->mutex);
    while (!w->started)
        pthread_cond_wait(&w->wake, &w->mutex);
    stock_code code = w->start_code;
    pthread_mutex_unlock(&w->mutex);
    if (code != STOCK_OK) {
        pthread_join(w->thread, NULL);
        destroy(w);
    }
    return code;
}
void worker_submit(worker *w, stock_batch *batch)
{
    assert(batch != NULL && batch->count >= 1 && batch->count <= STOCK_BATCH_MAX);
    pthread_mutex_lock(&w->mutex);
    bool closing = w->closing;
    if (!closing) {
        batches_enqueue(&w->queue, batch);
        pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->mutex);
    if (closing) {
        batch->next = NULL;
        batches_fail(batch, STOCK_UNAVAILABLE, "the store is closing");
        batches_complete(w->store, batch);
    }
}

void worker_call_run(worker *w, worker_call *call)
{
    assert(call != NULL && call->run != NULL && !pthread_equal(pthread_self(), w->thread));
    pthread_mutex_lock(&w->mutex);
    assert(!w->closing);
    call->done = false;
    call->next = w->calls;
    w->calls = call;
    pthread_cond_signal(&w->wake);
    while (!call->done)
        pthread_cond_wait(&w->called, &w->mutex);
    pthread_mutex_unlock(&w->mutex);
}

/* worker_list's call: the backend's run, with its listing. */
typedef struct list_call {
    void (*run)(stock_t *store, worker_listing *listing);
    worker_listing listing;
} list_call;

static void run_list_call(stock_t *store, void *context)
{
    list_call *call = context;
    call->run(store, &call->listing);
}

stock_code worker_list(worker *w, void (*run)(stock_t *store, worker_listing *listing),
                       const struct list_request *request, stock_list_entry *entries,
                       uint32_t *count, char *message, size_t message_size)
{
    list_call context = {run, {request, entries, count, message, message_size, STOCK_OK}};
    worker_call call = {.run = run_list_call, .context = &context};
    worker_call_run(w, &call);
    return context.listing.code;
}

void worker_close(worker *w)
{
    pthread_mutex_lock(&w->mutex);
    assert(w->started && w->start_code == STOCK_OK && !w->closing);
    w->closing = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mutex);
    pthread_join(w->thread, NULL);
    assert(w->queue.head == NULL);
    destroy(w);
}
