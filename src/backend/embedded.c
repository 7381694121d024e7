/*
 * embedded.c -- the embedded backend: the state machine (src/core) in
 * memory behind the flow journal (src/journal), with group commit.
 *
 * Three kinds of threads meet here:
 *   callers   stock_submit() links a batch onto the queue (intrusive `next`,
 *             no allocation) and returns;
 *   writer    owns the core: takes everything queued, applies each op, frames
 *             the records into one buffer, write()s it, and hands the batches
 *             to the syncer; then goes on with the next group while the
 *             previous one is being synced;
 *   syncer    one fdatasync for everything written so far, then completes the
 *             batches it was handed, strictly in order.
 * So a batch completes only after its records, and those of every op applied
 * before it, are on stable storage (I6, and I7 for reads). With relaxed
 * durability the writer completes batches right after write() and the syncer
 * syncs on a timer instead. The writer also rotates segments and starts
 * snapshots, each with the syncer drained (docs/engine.md, "Durability").
 *
 * A failed write or sync breaks the store for good: memory is then ahead of
 * disk, so every later op completes with STOCK_IO until it is reopened.
 */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/embedded_uri.h"
#include "core/core.h"
#include "journal/journal.h"
#include "lib/result.h"

/* A group is written once it holds this much log, even if more is queued. */
#define EMBEDDED_GROUP_BYTES_MAX (8u << 20)
/* How long the writer sleeps without work before polling a snapshot. */
#define EMBEDDED_IDLE_MS 50
/* Relaxed durability: sync period, well inside STOCK_RELAXED_SYNC_MS. */
#define EMBEDDED_RELAXED_PERIOD_MS (STOCK_RELAXED_SYNC_MS / 4)
/* A clean close snapshots when the log is past 1/this of the threshold (16
 * MiB by default), so that the next open replays little. */
#define EMBEDDED_CLOSE_SNAPSHOT_DIVISOR 16

typedef struct embedded {
    struct stock base;           /* first: the library reaches ops through it */
    core *state;                 /* writer thread only, once open */
    journal *log;
    stock_durability durability;
    uint64_t snapshot_log_bytes;
    pthread_t writer_thread;
    pthread_t syncer_thread;

    pthread_mutex_t queue_mutex; /* guards the four fields below */
    pthread_cond_t queue_cond;
    stock_batch *queue_head;
    stock_batch *queue_tail;
    bool closing;

    pthread_mutex_t sync_mutex;  /* guards the fields below to broken_message */
    pthread_cond_t sync_cond;    /* the syncer waits for work */
    pthread_cond_t idle_cond;    /* the writer waits for the syncer to drain */
    stock_batch *pending_head;   /* written, waiting for a sync */
    stock_batch *pending_tail;
    bool unsynced;               /* bytes written since the last sync */
    bool syncer_busy;
    bool syncer_stop;
    char broken_message[STOCK_MESSAGE_MAX];
    atomic_bool broken;

    buf group;                   /* writer: the records of one group */
    bool sync_failed;            /* syncer: an fdatasync failed */

    atomic_uint_fast64_t batches, operations, syncs, sync_latency_us_sum;
    atomic_uint_fast64_t sync_buckets[STOCK_SYNC_BUCKETS];
    atomic_uint_fast64_t skus, lines, memory_bytes;
} embedded;

static embedded *from_store(stock_t *store)
{
    assert(store != NULL && store->ops == &embedded_backend);
    return (embedded *)store;
}

static int64_t now_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

/* ------------------------------------------------------------ failure */

/* Marks the store broken; the first reason is the one every op reports. */
static void break_store(embedded *e, const char *reason)
{
    assert(reason != NULL && reason[0] != '\0');
    pthread_mutex_lock(&e->sync_mutex);
    if (!atomic_load(&e->broken)) {
        snprintf(e->broken_message, sizeof e->broken_message,
                 "%s; the store refuses work until reopened", reason);
        atomic_store(&e->broken, true);
    }
    pthread_mutex_unlock(&e->sync_mutex);
}

/* Every op of the list that was not invalid completes with STOCK_IO. */
static void fail_batches(embedded *e, stock_batch *list)
{
    assert(atomic_load(&e->broken));
    char reason[STOCK_MESSAGE_MAX];
    pthread_mutex_lock(&e->sync_mutex);
    memcpy(reason, e->broken_message, sizeof reason);
    pthread_mutex_unlock(&e->sync_mutex);
    for (stock_batch *batch = list; batch != NULL; batch = batch->next)
        for (size_t i = 0; i < batch->count; i++) {
            stock_op *op = &batch->ops[i];
            if (op->code != STOCK_INVALID)
                result_fail(op, STOCK_IO, "%s", reason);
        }
}

/* Calls done on each batch of the list, in order. */
static void complete_batches(embedded *e, stock_batch *list)
{
    while (list != NULL) {
        stock_batch *batch = list;
        assert(batch->done != NULL && batch->count >= 1);
        list = batch->next;   /* read before done: the caller may reuse it */
        atomic_fetch_add_explicit(&e->batches, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&e->operations, batch->count, memory_order_relaxed);
        batch->next = NULL;
        batch->done(batch);
    }
}

/* ------------------------------------------------------------- syncer */

static void record_sync(embedded *e, uint64_t latency_us)
{
    unsigned bucket = 0;
    while (bucket + 1 < STOCK_SYNC_BUCKETS &&
           latency_us > stock_sync_bucket_bound_us(bucket))
        bucket++;
    assert(bucket < STOCK_SYNC_BUCKETS);
    atomic_fetch_add_explicit(&e->syncs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->sync_latency_us_sum, latency_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->sync_buckets[bucket], 1, memory_order_relaxed);
}

/* One fdatasync; false (and the store broken) if it failed now or before.
 * After a failed fdatasync the kernel may have dropped the dirty pages, so
 * a later success proves nothing: the failure is permanent. */
static bool sync_log(embedded *e)
{
    if (e->sync_failed)
        return false;
    char message[STOCK_MESSAGE_MAX];
    uint64_t latency_us = 0;
    if (journal_sync(e->log, &latency_us, message, sizeof message) != STOCK_OK) {
        e->sync_failed = true;
        break_store(e, message);
        return false;
    }
    record_sync(e, latency_us);
    return true;
}

/* Sync durability: sync what was written, then complete its batches. */
static void syncer_loop_sync(embedded *e)
{
    pthread_mutex_lock(&e->sync_mutex);
    for (;;) {
        while (e->pending_head == NULL && !e->syncer_stop)
            pthread_cond_wait(&e->sync_cond, &e->sync_mutex);
        if (e->pending_head == NULL)
            break;
        assert(!e->syncer_busy && e->pending_tail != NULL);
        stock_batch *list = e->pending_head;
        bool need_sync = e->unsynced;
        e->pending_head = e->pending_tail = NULL;
        e->unsynced = false;
        e->syncer_busy = true;
        pthread_mutex_unlock(&e->sync_mutex);
        /* A group of reads alone wrote nothing: its order is all it needs. */
        bool ok = need_sync ? sync_log(e) : !e->sync_failed;
        if (!ok)
            fail_batches(e, list);
        complete_batches(e, list);
        pthread_mutex_lock(&e->sync_mutex);
        e->syncer_busy = false;
        pthread_cond_broadcast(&e->idle_cond);
    }
    pthread_mutex_unlock(&e->sync_mutex);
}

/* Relaxed durability: batches are already complete; sync on a timer. */
static void syncer_loop_relaxed(embedded *e)
{
    pthread_mutex_lock(&e->sync_mutex);
    while (!e->syncer_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)EMBEDDED_RELAXED_PERIOD_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&e->sync_cond, &e->sync_mutex, &until);
        if (!e->unsynced)
            continue;
        e->unsynced = false;
        e->syncer_busy = true;
        pthread_mutex_unlock(&e->sync_mutex);
        sync_log(e);
        pthread_mutex_lock(&e->sync_mutex);
        e->syncer_busy = false;
        pthread_cond_broadcast(&e->idle_cond);
    }
    pthread_mutex_unlock(&e->sync_mutex);
}

static void *syncer_main(void *context)
{
    embedded *e = context;
    if (e->durability == STOCK_DURABILITY_SYNC)
        syncer_loop_sync(e);
    else
        syncer_loop_relaxed(e);
    return NULL;
}

/* Waits until the syncer has nothing pending and is not syncing; returns
 * with sync_mutex held, so that it cannot start until the caller unlocks. */
static void pause_syncer(embedded *e)
{
    pthread_mutex_lock(&e->sync_mutex);
    while (e->pending_head != NULL || e->syncer_busy)
        pthread_cond_wait(&e->idle_cond, &e->sync_mutex);
    assert(e->pending_head == NULL && !e->syncer_busy);
}

/* ------------------------------------------------------------- writer */

/* Applies one op, framing its record (if any) into the group buffer. */
static void apply_op(embedded *e, stock_op *op, int64_t time_us, uint64_t *records)
{
    assert(op->code == STOCK_OK);
    size_t start;
    if (!journal_frame_begin(&e->group, &start)) {
        result_fail(op, STOCK_NOMEM, "out of memory for the log record");
        return;
    }
    if (core_apply(e->state, op, time_us, &e->group)) {
        journal_frame_end(&e->group, start);
        *records += 1;
    } else {
        e->group.len = start;
    }
}

/* Applies every valid op of a batch, prefetching the table slots of the op
 * CORE_PREFETCH_AHEAD places later so that their cache misses overlap. */
static void apply_batch(embedded *e, stock_batch *batch, int64_t time_us,
                        uint64_t *records)
{
    assert(batch->count >= 1 && batch->count <= STOCK_BATCH_MAX);
    size_t ahead = batch->count < CORE_PREFETCH_AHEAD ? batch->count : CORE_PREFETCH_AHEAD;
    for (size_t i = 0; i < ahead; i++)
        if (batch->ops[i].code != STOCK_INVALID)
            core_prefetch(e->state, &batch->ops[i]);
    for (size_t i = 0; i < batch->count; i++) {
        size_t later = i + CORE_PREFETCH_AHEAD;
        if (later < batch->count && batch->ops[later].code != STOCK_INVALID)
            core_prefetch(e->state, &batch->ops[later]);
        if (batch->ops[i].code != STOCK_INVALID)
            apply_op(e, &batch->ops[i], time_us, records);
    }
}

/* Writes the group's records and passes its batches on for completion. */
static void write_group(embedded *e, stock_batch *list, uint64_t records)
{
    assert(list != NULL);
    assert(records == 0 || e->group.len >= records * JOURNAL_RECORD_HEADER_BYTES);
    bool wrote = false;
    if (e->group.len > 0) {
        char message[STOCK_MESSAGE_MAX];
        if (journal_append(e->log, e->group.data, e->group.len, records,
                           message, sizeof message) != STOCK_OK)
            break_store(e, message);
        else
            wrote = true;
    }
    if (atomic_load(&e->broken) && !wrote)
        fail_batches(e, list);
    buf_clear(&e->group);
    if (e->durability == STOCK_DURABILITY_RELAXED) {
        pthread_mutex_lock(&e->sync_mutex);
        e->unsynced |= wrote;
        pthread_mutex_unlock(&e->sync_mutex);
        complete_batches(e, list);
        return;
    }
    pthread_mutex_lock(&e->sync_mutex);
    if (e->pending_tail != NULL)
        e->pending_tail->next = list;
    else
        e->pending_head = list;
    while (list->next != NULL)
        list = list->next;
    e->pending_tail = list;
    e->unsynced |= wrote;
    pthread_cond_signal(&e->sync_cond);
    pthread_mutex_unlock(&e->sync_mutex);
}

static void publish_core_stats(embedded *e)
{
    core_stats stats;
    core_get_stats(e->state, &stats);
    atomic_store_explicit(&e->skus, stats.skus, memory_order_relaxed);
    atomic_store_explicit(&e->lines, stats.lines, memory_order_relaxed);
    atomic_store_explicit(&e->memory_bytes, stats.memory_bytes, memory_order_relaxed);
}

/* Applies a list of batches as one or more groups (split at
 * EMBEDDED_GROUP_BYTES_MAX, always between batches). */
static void apply_batches(embedded *e, stock_batch *list)
{
    while (list != NULL) {
        stock_batch *first = list, *last = NULL;
        uint64_t records = 0;
        int64_t time_us = now_us();
        bool broken = atomic_load(&e->broken);
        while (list != NULL && e->group.len < EMBEDDED_GROUP_BYTES_MAX) {
            if (!broken)
                apply_batch(e, list, time_us, &records);
            last = list;
            list = list->next;
        }
        assert(last != NULL);
        last->next = NULL;
        /* Before completion, so a caller sees counts that include its ops. */
        publish_core_stats(e);
        write_group(e, first, records);
    }
}

static int save_state(void *context, journal_write_fn write, void *write_context)
{
    return core_snapshot_save(context, write, write_context);
}

/* Between groups: reap a snapshot, start one or rotate when due. */
static void maintain(embedded *e, uint64_t threshold)
{
    journal_snapshot_poll(e->log, false);
    if (atomic_load(&e->broken))
        return;
    bool snapshot = journal_snapshot_due(e->log, threshold);
    if (!snapshot && !journal_rotation_due(e->log))
        return;
    char message[STOCK_MESSAGE_MAX] = "";
    pause_syncer(e);
    stock_code code = snapshot
        ? journal_snapshot_start(e->log, save_state, e->state, message, sizeof message)
        : journal_rotate(e->log, message, sizeof message);
    pthread_mutex_unlock(&e->sync_mutex);
    /* A failed snapshot only delays clean-up; a failed rotation leaves the
     * journal refusing appends, which breaks the store at the next write. */
    if (code != STOCK_OK)
        fprintf(stderr, "libstock: %s failed: %s\n",
                snapshot ? "starting a snapshot" : "segment rotation", message);
}

/* Takes everything queued, waiting up to EMBEDDED_IDLE_MS for work. */
static stock_batch *take_queue(embedded *e, bool *closing)
{
    pthread_mutex_lock(&e->queue_mutex);
    assert((e->queue_head == NULL) == (e->queue_tail == NULL));
    if (e->queue_head == NULL && !e->closing) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)EMBEDDED_IDLE_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&e->queue_cond, &e->queue_mutex, &until);
    }
    stock_batch *list = e->queue_head;
    e->queue_head = e->queue_tail = NULL;
    *closing = e->closing;
    pthread_mutex_unlock(&e->queue_mutex);
    return list;
}

static void *writer_main(void *context)
{
    embedded *e = context;
    for (;;) {
        bool closing = false;
        stock_batch *list = take_queue(e, &closing);
        if (list == NULL && closing)
            break;
        if (list != NULL)
            apply_batches(e, list);
        maintain(e, e->snapshot_log_bytes);
    }
    /* Closing: everything is applied; let the syncer finish, then leave a
     * snapshot behind if the log is large, so the next open is quick. */
    pause_syncer(e);
    pthread_mutex_unlock(&e->sync_mutex);
    journal_snapshot_poll(e->log, true);
    maintain(e, e->snapshot_log_bytes / EMBEDDED_CLOSE_SNAPSHOT_DIVISOR);
    /* The child dies with this thread (PR_SET_PDEATHSIG): wait for it. */
    journal_snapshot_poll(e->log, true);
    return NULL;
}

/* ---------------------------------------------------------- interface */

static void embedded_submit(stock_t *store, stock_batch *batch)
{
    embedded *e = from_store(store);
    assert(batch->count >= 1 && batch->done != NULL);
    batch->next = NULL;
    pthread_mutex_lock(&e->queue_mutex);
    assert(!e->closing);
    if (e->queue_tail != NULL)
        e->queue_tail->next = batch;
    else
        e->queue_head = batch;
    e->queue_tail = batch;
    pthread_cond_signal(&e->queue_cond);
    pthread_mutex_unlock(&e->queue_mutex);
}

static stock_code embedded_get_stats(stock_t *store, stock_stats *stats)
{
    embedded *e = from_store(store);
    assert(stats != NULL);
    stats->batches = atomic_load_explicit(&e->batches, memory_order_relaxed);
    stats->operations = atomic_load_explicit(&e->operations, memory_order_relaxed);
    stats->syncs = atomic_load_explicit(&e->syncs, memory_order_relaxed);
    stats->sync_latency_us_sum =
        atomic_load_explicit(&e->sync_latency_us_sum, memory_order_relaxed);
    for (unsigned i = 0; i < STOCK_SYNC_BUCKETS; i++)
        stats->sync_latency_buckets[i] =
            atomic_load_explicit(&e->sync_buckets[i], memory_order_relaxed);
    stats->skus = atomic_load_explicit(&e->skus, memory_order_relaxed);
    stats->lines = atomic_load_explicit(&e->lines, memory_order_relaxed);
    stats->memory_bytes = atomic_load_explicit(&e->memory_bytes, memory_order_relaxed);
    uint64_t log_bytes = 0, snapshots = 0;
    journal_counters(e->log, &log_bytes, &snapshots);
    stats->log_bytes = log_bytes;
    stats->snapshots = snapshots;
    return STOCK_OK;
}

static void destroy(embedded *e)
{
    journal_close(e->log);
    core_destroy(e->state);
    buf_free(&e->group);
    pthread_cond_destroy(&e->idle_cond);
    pthread_cond_destroy(&e->sync_cond);
    pthread_mutex_destroy(&e->sync_mutex);
    pthread_cond_destroy(&e->queue_cond);
    pthread_mutex_destroy(&e->queue_mutex);
    free(e);
}

static stock_code embedded_close(stock_t *store)
{
    embedded *e = from_store(store);
    pthread_mutex_lock(&e->queue_mutex);
    e->closing = true;
    pthread_cond_signal(&e->queue_cond);
    pthread_mutex_unlock(&e->queue_mutex);
    pthread_join(e->writer_thread, NULL);
    pthread_mutex_lock(&e->sync_mutex);
    e->syncer_stop = true;
    bool unsynced = e->unsynced;
    pthread_cond_signal(&e->sync_cond);
    pthread_mutex_unlock(&e->sync_mutex);
    pthread_join(e->syncer_thread, NULL);
    /* Relaxed durability leaves the last writes to this final sync. */
    if (unsynced && !atomic_load(&e->broken))
        sync_log(e);
    stock_code code = atomic_load(&e->broken) ? STOCK_IO : STOCK_OK;
    destroy(e);
    return code;
}

static stock_code load_state(void *context, journal_read_fn read, void *read_context,
                             size_t size, char *message, size_t message_size)
{
    return core_snapshot_load(context, read, read_context, size, message,
                              message_size);
}

static stock_code replay_record(void *context, const uint8_t *record, size_t len,
                                char *message, size_t message_size)
{
    return core_replay(context, record, len, message, message_size);
}

static void prefetch_record(void *context, const uint8_t *record, size_t len)
{
    core_replay_prefetch(context, record, len);
}

/* Recovers the folder and starts the two threads. */
static stock_code start(embedded *e, const embedded_uri *uri, char *message,
                        size_t message_size)
{
    e->state = core_create();
    if (e->state == NULL)
        return STOCK_NOMEM;
    journal_replay replay = {e->state, load_state, replay_record, prefetch_record};
    stock_code code = journal_open(uri->path, &replay, &e->log, message, message_size);
    if (code != STOCK_OK)
        return code;
    publish_core_stats(e);
    if (pthread_create(&e->syncer_thread, NULL, syncer_main, e) != 0)
        return STOCK_NOMEM;
    if (pthread_create(&e->writer_thread, NULL, writer_main, e) != 0) {
        pthread_mutex_lock(&e->sync_mutex);
        e->syncer_stop = true;
        pthread_cond_signal(&e->sync_cond);
        pthread_mutex_unlock(&e->sync_mutex);
        pthread_join(e->syncer_thread, NULL);
        return STOCK_NOMEM;
    }
    return STOCK_OK;
}

static stock_code embedded_open(const char *uri, const stock_config *config,
                                stock_t **store, char *message, size_t message_size)
{
    assert(uri != NULL && config != NULL && store != NULL);
    *store = NULL;
    embedded_uri parsed;
    stock_code code = embedded_uri_parse(uri, config, &parsed, message, message_size);
    if (code != STOCK_OK)
        return code;
    embedded *e = calloc(1, sizeof *e);
    if (e == NULL)
        return STOCK_NOMEM;
    e->base.ops = &embedded_backend;
    e->durability = parsed.durability;
    e->snapshot_log_bytes = parsed.snapshot_log_bytes;
    pthread_mutex_init(&e->queue_mutex, NULL);
    pthread_cond_init(&e->queue_cond, NULL);
    pthread_mutex_init(&e->sync_mutex, NULL);
    pthread_cond_init(&e->sync_cond, NULL);
    pthread_cond_init(&e->idle_cond, NULL);
    code = start(e, &parsed, message, message_size);
    if (code != STOCK_OK) {
        if (code == STOCK_NOMEM && message != NULL && message_size > 0 && message[0] == '\0')
            snprintf(message, message_size, "out of memory opening %s", parsed.path);
        destroy(e);
        return code;
    }
    *store = &e->base;
    return STOCK_OK;
}

const stock_backend_ops embedded_backend = {
    .name = "embedded",
    .accepts = embedded_uri_accepts,
    .open = embedded_open,
    .submit = embedded_submit,
    .close = embedded_close,
    .get_stats = embedded_get_stats,
};
