/*
 * run.c -- stockbench's engine (see run.h).
 *
 * Threads: the main thread generates ops, submits batches and does all the
 * accounting, so the workload and the checker need no locks. A batch's done
 * callback, which may run on a backend thread or inside stock_submit, only
 * stamps the completion time and pushes the batch onto a queue that the main
 * thread drains.
 */
#include "run.h"
#include "lib/clock.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000ull
#define TICK_NS NS_PER_S                 /* progress and plot interval */
#define SETUP_BATCH CHECKER_FETCH_MAX    /* SETs per setup batch */
#define SETUP_TRIES 5                    /* sends of a setup batch at most */
#define SETUP_RETRY_PAUSE_US 200000      /* between them */

typedef struct run_slot {
    stock_batch batch;
    stock_op *ops;                   /* pipeline entries */
    workload_item *items;            /* pipeline entries */
    stock_t *store;
    struct run_queue *queue;         /* where the done callback puts it */
    uint64_t due_ns;                 /* when the batch was (to be) sent */
    uint64_t done_ns;                /* stamped by the done callback */
    struct run_slot *next;           /* completion queue or free list */
} run_slot;

/* An op waiting to be sent again with the same ids (workload_retry). */
typedef struct run_retry {
    stock_op op;
    workload_item item;
} run_retry;

typedef struct run_queue {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    run_slot *head;                  /* completed, not yet accounted */
} run_queue;

typedef struct run_state {
    const run_config *config;
    run_result *result;
    stock_t *stores[RUN_CONNECTIONS_MAX];
    checker *ledger;
    workload *load;
    run_slot *slots;                 /* config->connections entries */
    run_slot *free_slots;            /* slots not in flight */
    run_queue queue;
    uint64_t start_ns;
    uint64_t deadline_ns;            /* duration mode */
    uint64_t issued;                 /* ops generated */
    uint32_t inflight;               /* batches */
    uint64_t next_send_ns;           /* open loop */
    uint64_t send_interval_ns;       /* open loop */
    uint64_t tick_start_ns;          /* the current interval */
    uint64_t tick_ns;                /* when the current interval ends */
    uint64_t tick_ops;
    histogram tick_latency;
    run_retry *retries;              /* connections x pipeline entries */
    uint32_t retry_count;
    bool backoff;                    /* a batch just failed: pause a little */
    bool broken;                     /* crash mode could not restart stockd */
    spawn server;                    /* crash mode */
    uint64_t next_kill_ns;
} run_state;

static uint64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * NS_PER_S + (uint64_t)now.tv_nsec;
}

__attribute__((format(printf, 2, 3)))
static int run_error(run_result *result, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(result->error, sizeof result->error, format, args);
    va_end(args);
    return -1;
}

/* The done callback: stamp, queue, wake the main thread. Short, as
 * stock.h asks, and never touches the workload or the ledger. */
static void on_batch_done(stock_batch *batch)
{
    run_slot *slot = batch->user;
    assert(slot != NULL && &slot->batch == batch);
    slot->done_ns = now_ns();
    run_queue *queue = slot->queue;
    pthread_mutex_lock(&queue->mutex);
    slot->next = queue->head;
    queue->head = slot;
    pthread_cond_signal(&queue->cond);
    pthread_mutex_unlock(&queue->mutex);
}

/* Takes every completed batch, waiting until one is there or until
 * wake_ns (CLOCK_MONOTONIC). NULL when the wait ran out. */
static run_slot *queue_take(run_queue *queue, uint64_t wake_ns)
{
    struct timespec until = {.tv_sec = (time_t)(wake_ns / NS_PER_S),
                             .tv_nsec = (long)(wake_ns % NS_PER_S)};
    pthread_mutex_lock(&queue->mutex);
    int status = 0;
    while (queue->head == NULL && status != ETIMEDOUT)
        status = pthread_cond_timedwait(&queue->cond, &queue->mutex, &until);
    assert(status == 0 || status == ETIMEDOUT);
    run_slot *taken = queue->head;
    queue->head = NULL;
    pthread_mutex_unlock(&queue->mutex);
    return taken;
}

static int queue_init(run_queue *queue)
{
    if (clock_cond_init_monotonic(&queue->cond) != 0)
        return -1;
    pthread_mutex_init(&queue->mutex, NULL);
    queue->head = NULL;
    return 0;
}

static void queue_destroy(run_queue *queue)
{
    assert(queue->head == NULL);
    pthread_cond_destroy(&queue->cond);
    pthread_mutex_destroy(&queue->mutex);
}

/* ------------------------------------------------------------ the stores */

/* Opens the first store; an in-process engine is shared, any other backend
 * gets one handle (one connection) per in-flight batch. */
static int open_stores(run_state *state)
{
    const run_config *config = state->config;
    run_result *result = state->result;
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_open(config->uri, &config->store, &state->stores[0],
                                 message);
    /* URIs print without their query, which may hold a password. */
    int uri_length = (int)strcspn(config->uri, "?");
    if (code != STOCK_OK)
        return run_error(result, "cannot open the store '%.*s': %s: %s",
                         uri_length, config->uri, stock_code_name(code), message);
    result->stores = 1;
    snprintf(result->backend, sizeof result->backend, "%s",
             stock_backend_name(state->stores[0]));
    if (strcmp(result->backend, "embedded") == 0)
        return 0;
    for (uint32_t i = 1; i < config->connections; i++) {
        code = stock_open(config->uri, &config->store, &state->stores[i],
                          message);
        if (code != STOCK_OK)
            return run_error(result, "cannot open connection %" PRIu32
                             " to '%.*s': %s: %s", i + 1, uri_length,
                             config->uri, stock_code_name(code), message);
        result->stores++;
    }
    return 0;
}

static int close_stores(run_state *state)
{
    int status = 0;
    for (uint32_t i = 0; i < RUN_CONNECTIONS_MAX && state->stores[i]; i++) {
        stock_code code = stock_close(state->stores[i]);
        state->stores[i] = NULL;
        if (code != STOCK_OK && status == 0)
            status = run_error(state->result, "closing the store failed: %s",
                               stock_strerror(code));
    }
    return status;
}

/* Creates the workload's SKUs at their initial level, SETUP_BATCH at a
 * time, and checks that every SET took. A batch with a SET left
 * UNAVAILABLE (the outcome unknown: a lost link, a sharded store's
 * recovery rolling back a cart it took for a dead one's) is sent again, up
 * to SETUP_TRIES times: setting a level twice leaves it the same. */
static int setup_skus(run_state *state)
{
    static stock_op ops[SETUP_BATCH];
    uint32_t sku_count = state->result->skus;
    for (uint32_t first = 0; first < sku_count; first += SETUP_BATCH) {
        uint32_t count = sku_count - first;
        if (count > SETUP_BATCH)
            count = SETUP_BATCH;
        uint32_t failed = count;
        for (int tries = 0; failed < count || tries == 0; tries++) {
            if (tries > 0) {
                if (tries == SETUP_TRIES || ops[failed].code != STOCK_UNAVAILABLE)
                    return run_error(state->result, "setting up sku=%s: %s %s",
                                     workload_sku_name(state->load, first + failed),
                                     stock_code_name(ops[failed].code), ops[failed].message);
                usleep(SETUP_RETRY_PAUSE_US);
            }
            workload_setup_ops(state->load, first, count, ops);
            stock_execute(state->stores[0], ops, count);
            for (failed = 0; failed < count && ops[failed].code == STOCK_OK; failed++)
                ;
        }
    }
    return 0;
}

/* checker_fetch_fn: reads SKUs back with one batch of GETs. */
static int fetch_skus(void *context, uint32_t first, uint32_t count,
                      stock_sku_info *infos, stock_code *codes, char *message,
                      size_t message_size)
{
    static stock_op ops[CHECKER_FETCH_MAX];
    run_state *state = context;
    assert(count >= 1 && count <= CHECKER_FETCH_MAX);
    for (uint32_t i = 0; i < count; i++) {
        memset(&ops[i], 0, sizeof ops[i]);
        ops[i].type = STOCK_OP_GET;
        ops[i].sku = stock_id_from_cstr(workload_sku_name(state->load, first + i));
    }
    if (stock_execute(state->stores[0], ops, count) != STOCK_OK) {
        snprintf(message, message_size, "the batch of GETs was refused");
        return -1;
    }
    for (uint32_t i = 0; i < count; i++) {
        codes[i] = ops[i].code;
        infos[i] = ops[i].info.sku_info;
    }
    return 0;
}

/* workload_execute_fn: one batch on the first store, waited for. */
static int execute_ops(void *context, stock_op *ops, size_t count,
                       char *message, size_t message_size)
{
    run_state *state = context;
    assert(count >= 1 && count <= STOCK_BATCH_MAX);
    if (stock_execute(state->stores[0], ops, count) != STOCK_OK) {
        snprintf(message, message_size, "the batch of %zu reads was refused",
                 count);
        return -1;
    }
    return 0;
}

static const char *name_sku(void *context, uint32_t sku)
{
    run_state *state = context;
    return workload_sku_name(state->load, sku);
}

/* ------------------------------------------------------------- the load */

static int slots_create(run_state *state)
{
    const run_config *config = state->config;
    state->slots = calloc(config->connections, sizeof *state->slots);
    state->retries = calloc((size_t)config->connections * config->pipeline,
                            sizeof *state->retries);
    if (state->slots == NULL || state->retries == NULL)
        return run_error(state->result, "out of memory for the batches");
    for (uint32_t i = 0; i < config->connections; i++) {
        run_slot *slot = &state->slots[i];
        slot->ops = calloc(config->pipeline, sizeof *slot->ops);
        slot->items = calloc(config->pipeline, sizeof *slot->items);
        if (slot->ops == NULL || slot->items == NULL)
            return run_error(state->result, "out of memory for the batches");
        slot->store = state->stores[i % state->result->stores];
        slot->queue = &state->queue;
        slot->batch = (stock_batch){.ops = slot->ops, .done = on_batch_done,
                                    .user = slot};
        slot->next = state->free_slots;
        state->free_slots = slot;
    }
    return 0;
}

static void slots_destroy(run_state *state)
{
    free(state->retries);
    if (state->slots == NULL)
        return;
    for (uint32_t i = 0; i < state->config->connections; i++) {
        free(state->slots[i].ops);
        free(state->slots[i].items);
    }
    free(state->slots);
}

/* True while new ops may be generated: the count is not reached, or the
 * duration has not run out at time (the send time of the next batch). */
static bool new_allowed(const run_state *state, uint64_t time)
{
    if (state->broken)
        return false;
    if (state->config->requests > 0)
        return state->issued < state->config->requests;
    return time < state->deadline_ns;
}

/* True while there is anything to send: retries first, then new ops. */
static bool more_to_send(const run_state *state, uint64_t time)
{
    return (state->retry_count > 0 && !state->broken) || new_allowed(state, time);
}

/* Fills a slot with waiting retries, then new ops, up to pipeline of them
 * (fewer for the last batch of a counted run), and submits it as due at
 * due_ns. */
static void send_slot(run_state *state, run_slot *slot, uint64_t due_ns)
{
    uint32_t count = 0;
    while (count < state->config->pipeline && state->retry_count > 0) {
        run_retry *retry = &state->retries[--state->retry_count];
        slot->ops[count] = retry->op;
        slot->items[count] = retry->item;
        workload_rebind(&slot->ops[count], &slot->items[count]);
        count++;
    }
    while (count < state->config->pipeline && new_allowed(state, due_ns)) {
        workload_next(state->load, &slot->ops[count], &slot->items[count]);
        state->issued++;
        count++;
    }
    assert(count >= 1 && count <= RUN_PIPELINE_MAX);
    state->inflight++;
    slot->batch.count = count;
    slot->due_ns = due_ns;
    stock_submit(slot->store, &slot->batch);
}

/* Keeps an op whose outcome is unknown for a resend with the same ids.
 * Bounded: an op is either in flight or here, never both. */
static void keep_for_retry(run_state *state, const stock_op *op,
                           const workload_item *item)
{
    uint64_t capacity = (uint64_t)state->config->connections *
                        state->config->pipeline;
    assert(state->retry_count < capacity);
    run_retry *retry = &state->retries[state->retry_count++];
    retry->op = *op;
    retry->item = *item;
    state->backoff = true;
}

/* Accounts one completed batch: latency from its due time, the code of
 * each op, and the op's effect in the ledger (or its retry). */
static void account_slot(run_state *state, run_slot *slot)
{
    assert(slot->done_ns >= slot->due_ns);
    run_result *result = state->result;
    uint64_t latency_ns = slot->done_ns - slot->due_ns;
    histogram_record(&state->tick_latency, latency_ns, slot->batch.count);
    for (size_t i = 0; i < slot->batch.count; i++) {
        stock_op *op = &slot->ops[i];
        assert(op->code < STOCK_CODE_COUNT);
        result->codes[op->code]++;
        if (workload_retry(state->load, op, &slot->items[i]))
            keep_for_retry(state, op, &slot->items[i]);
        else
            workload_complete(state->load, op, &slot->items[i]);
    }
    result->ops += slot->batch.count;
    state->tick_ops += slot->batch.count;
    assert(state->inflight > 0);
    state->inflight--;
}

/* Closes the current interval: a point for the plot, a progress line, and
 * its latencies folded into the run's histogram. */
static void tick(run_state *state, uint64_t now)
{
    run_result *result = state->result;
    assert(now >= state->tick_start_ns);
    double seconds = (double)(now - state->tick_start_ns) / (double)NS_PER_S;
    run_point point = {
        .time_s = (double)(now - state->start_ns) / (double)NS_PER_S,
        .ops_per_s = seconds > 0 ? (double)state->tick_ops / seconds : 0,
        .p50_ns = histogram_percentile(&state->tick_latency, 50),
        .p99_ns = histogram_percentile(&state->tick_latency, 99),
    };
    /* A last interval cut very short says little about the rate: it keeps
     * its latencies but gets no point of its own. */
    bool long_enough = now - state->tick_start_ns >= TICK_NS / 4;
    if (long_enough && result->series_count < RUN_SERIES_MAX)
        result->series[result->series_count++] = point;
    if (state->config->progress) {
        uint64_t errors = result->ops - result->codes[STOCK_OK] -
                          result->codes[STOCK_REPLAY] -
                          result->codes[STOCK_INSUFFICIENT] -
                          result->codes[STOCK_EXCEEDS];
        fprintf(stderr, "\r%6.1fs %12.0f ops/s  p50 %8.3f ms  p99 %8.3f ms  "
                "errors %" PRIu64 "   ", point.time_s, point.ops_per_s,
                (double)point.p50_ns / 1e6, (double)point.p99_ns / 1e6, errors);
        fflush(stderr);
    }
    histogram_merge(&result->latency, &state->tick_latency);
    histogram_reset(&state->tick_latency);
    state->tick_ops = 0;
    state->tick_start_ns = now;
    state->tick_ns = now + TICK_NS;
}

static run_slot *pop_free(run_state *state)
{
    run_slot *slot = state->free_slots;
    assert(slot != NULL);
    state->free_slots = slot->next;
    return slot;
}

static void push_free(run_state *state, run_slot *slot)
{
    assert(slot != NULL);
    slot->next = state->free_slots;
    state->free_slots = slot;
}

static void sleep_ms(long ms)
{
    struct timespec pause = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

/* Accounts every completed batch in the list; in the closed loop each one
 * goes straight back out while there is more to send, after a short pause
 * if some op failed for want of the store (so a store that is down is not
 * hammered). */
static void drain(run_state *state, run_slot *done, bool closed_loop)
{
    for (run_slot *slot = done; slot != NULL; slot = slot->next)
        account_slot(state, slot);
    if (state->backoff) {
        sleep_ms(RUN_RETRY_BACKOFF_MS);
        state->backoff = false;
    }
    while (done != NULL) {
        run_slot *next = done->next;
        uint64_t now = now_ns();
        if (closed_loop && more_to_send(state, now))
            send_slot(state, done, now);
        else
            push_free(state, done);
        done = next;
    }
}

/* Crash mode: SIGKILL stockd and start it again when it is time. A
 * restart that fails stops the run (its error says why). */
static void maybe_kill(run_state *state, uint64_t now)
{
    const run_config *config = state->config;
    if (config->kill_every_s <= 0 || now < state->next_kill_ns || state->broken ||
        !new_allowed(state, now))
        return;
    spawn_kill(&state->server);
    state->result->kills++;
    if (spawn_start(&state->server, state->result->error,
                    sizeof state->result->error) != 0) {
        fprintf(stderr, "stockbench: restarting stockd: %s\n", state->result->error);
        state->broken = true;
    }
    state->next_kill_ns = now_ns() + (uint64_t)(config->kill_every_s * (double)NS_PER_S);
}

static void run_closed(run_state *state)
{
    while (state->free_slots != NULL && more_to_send(state, now_ns()))
        send_slot(state, pop_free(state), now_ns());
    while (state->inflight > 0) {
        run_slot *done = queue_take(&state->queue, state->tick_ns);
        drain(state, done, true);
        uint64_t now = now_ns();
        if (now >= state->tick_ns)
            tick(state, now);
        maybe_kill(state, now);
        while (state->free_slots != NULL && more_to_send(state, now))
            send_slot(state, pop_free(state), now);
    }
}

/* Open loop: true while batches are due. A duration run also stops at the
 * deadline on the clock: a store that fell behind would otherwise keep the
 * run going until its backlog is sent. */
static bool open_more(const run_state *state, uint64_t now)
{
    if (!more_to_send(state, state->next_send_ns))
        return false;
    return state->config->requests > 0 || now < state->deadline_ns;
}

/* Counts the ops that fell due before the deadline but were never sent
 * because the store did not keep up. */
static void count_unsent(run_state *state)
{
    assert(state->send_interval_ns > 0);
    if (state->config->requests > 0 || state->next_send_ns >= state->deadline_ns)
        return;
    uint64_t batches = (state->deadline_ns - state->next_send_ns +
                        state->send_interval_ns - 1) / state->send_interval_ns;
    state->result->unsent_ops = batches * state->config->pipeline;
}

/* The open loop: a batch is due every send_interval_ns whether or not the
 * store has kept up; a due batch waits for a free slot, and that wait is
 * part of its latency. */
static void run_open(run_state *state)
{
    state->next_send_ns = state->start_ns;
    for (;;) {
        uint64_t now = now_ns();
        bool more = open_more(state, now);
        while (more && state->free_slots != NULL && state->next_send_ns <= now) {
            send_slot(state, pop_free(state), state->next_send_ns);
            state->next_send_ns += state->send_interval_ns;
            more = open_more(state, now);
        }
        if (!more && state->inflight == 0)
            break;
        uint64_t wake_ns = state->tick_ns;
        if (more && state->free_slots != NULL && state->next_send_ns < wake_ns)
            wake_ns = state->next_send_ns;
        drain(state, queue_take(&state->queue, wake_ns), false);
        now = now_ns();
        if (now >= state->tick_ns)
            tick(state, now);
        maybe_kill(state, now);
    }
    count_unsent(state);
}

/* Runs the load to its end and closes the last, partial interval. */
static void run_load(run_state *state)
{
    const run_config *config = state->config;
    state->start_ns = now_ns();
    state->deadline_ns =
        state->start_ns + (uint64_t)(config->duration_s * (double)NS_PER_S);
    state->tick_start_ns = state->start_ns;
    state->tick_ns = state->start_ns + TICK_NS;
    if (config->rate > 0) {
        state->send_interval_ns = (uint64_t)((double)config->pipeline /
                                             config->rate * (double)NS_PER_S);
        if (state->send_interval_ns == 0)
            state->send_interval_ns = 1;
        run_open(state);
    } else {
        run_closed(state);
    }
    uint64_t end_ns = now_ns();
    if (state->tick_ops > 0)
        tick(state, end_ns);    /* also folds the last latencies in */
    assert(state->tick_latency.total == 0);
    if (config->progress)
        fputc('\n', stderr);
    state->result->elapsed_s =
        (double)(end_ns - state->start_ns) / (double)NS_PER_S;
    assert(state->inflight == 0);
}

/* Sums the counters of every open store handle into *total; false if no
 * handle keeps any. */
static bool sum_stats(const run_state *state, stock_stats *total)
{
    assert(state->result->stores >= 1);
    memset(total, 0, sizeof *total);
    bool any = false;
    for (uint32_t i = 0; i < state->result->stores; i++) {
        stock_stats one;
        if (stock_get_stats(state->stores[i], &one) != STOCK_OK)
            continue;
        any = true;
        total->batches += one.batches;
        total->operations += one.operations;
        total->syncs += one.syncs;
        total->sync_latency_us_sum += one.sync_latency_us_sum;
    }
    return any;
}

/* Runs the load between two readings of the store's counters, so that the
 * setup's batches and syncs are not counted. */
static void run_counted(run_state *state)
{
    stock_stats before, after;
    bool counted = sum_stats(state, &before);
    run_load(state);
    counted = sum_stats(state, &after) && counted;
    run_result *result = state->result;
    result->has_store_stats = counted;
    if (!counted)
        return;
    assert(after.operations >= before.operations);
    result->store_stats.batches = after.batches - before.batches;
    result->store_stats.operations = after.operations - before.operations;
    result->store_stats.syncs = after.syncs - before.syncs;
    result->store_stats.sync_latency_us_sum =
        after.sync_latency_us_sum - before.sync_latency_us_sum;
}

static bool config_kills(const run_config *config)
{
    return config->stockd_path != NULL && config->kill_every_s > 0;
}

/* Crash mode: starts the stockd the run will kill and restart. */
static int start_server(run_state *state)
{
    const run_config *config = state->config;
    if (config->stockd_path == NULL)
        return 0;
    static char log_path[RUN_ERROR_MAX];
    snprintf(log_path, sizeof log_path, "%s.log", config->stockd_data);
    state->server = (spawn){.path = config->stockd_path,
                            .data = config->stockd_data,
                            .log_path = log_path, .port = config->stockd_port};
    if (spawn_start(&state->server, state->result->error,
                    sizeof state->result->error) != 0)
        return -1;
    return 0;
}

/* Opens, sets up, runs and checks; the caller cleans up. */
static int run_stages(run_state *state)
{
    run_result *result = state->result;
    if (start_server(state) != 0 || open_stores(state) != 0 ||
        setup_skus(state) != 0 || slots_create(state) != 0)
        return -1;
    if (config_kills(state->config))
        state->next_kill_ns =
            now_ns() + (uint64_t)(state->config->kill_every_s * (double)NS_PER_S);
    run_counted(state);
    /* Retries still waiting (the run broke off): their outcome stays
     * unknown, and the check allows for either. */
    while (state->retry_count > 0) {
        run_retry *retry = &state->retries[--state->retry_count];
        workload_complete(state->load, &retry->op, &retry->item);
    }
    result->retries = workload_retries(state->load);
    for (int kind = 0; kind < WORKLOAD_OP_KIND_COUNT; kind++)
        result->kinds[kind] = workload_count(state->load, kind);
    workload_finish(state->load);
    result->lines_checked = workload_verify_lines(state->load, execute_ops, state);
    checker_source source = {.fetch = fetch_skus, .name = name_sku,
                             .context = state};
    result->check_failures = checker_verify(state->ledger, &source);
    result->deducted = checker_total_deducted(state->ledger);
    result->refunded = checker_total_refunded(state->ledger);
    return 0;
}

int run_bench(const run_config *config, run_result *result)
{
    assert(config != NULL && result != NULL && config->uri != NULL);
    assert(config->connections >= 1 && config->connections <= RUN_CONNECTIONS_MAX);
    assert(config->pipeline >= 1 && config->pipeline <= RUN_PIPELINE_MAX);
    memset(result, 0, sizeof *result);
    histogram_reset(&result->latency);
    run_state state = {.config = config, .result = result};
    histogram_reset(&state.tick_latency);
    result->skus = workload_sku_count(&config->workload);
    if (queue_init(&state.queue) != 0)
        return run_error(result, "cannot create the completion queue");
    state.ledger = checker_create(result->skus, stderr);
    if (state.ledger != NULL)
        state.load = workload_create(&config->workload, state.ledger);
    int status = state.load == NULL
                     ? run_error(result, "out of memory for the workload")
                     : 0;
    if (status == 0) {
        snprintf(result->prefix, sizeof result->prefix, "%s",
                 workload_prefix(state.load));
        status = run_stages(&state);
        if (state.broken)
            status = -1;    /* result->error says why stockd is gone */
    }
    slots_destroy(&state);
    if (close_stores(&state) != 0)
        status = -1;
    if (!spawn_stop(&state.server) && status == 0)
        status = run_error(result, "stockd did not exit cleanly on SIGTERM; "
                           "see %s.log", config->stockd_data);
    queue_destroy(&state.queue);
    workload_destroy(state.load);
    checker_destroy(state.ledger);
    return status;
}
