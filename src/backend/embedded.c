/*
 * embedded.c -- the embedded backend: the state machine (src/core) in
 * memory behind the flow journal (src/journal), with group commit.
 *
 * Three kinds of threads meet here:
 *   callers   stock_submit() links a batch onto the queue (intrusive `next`,
 *             no allocation). If no thread is applying, the caller becomes
 *             the applier: it takes everything queued, applies each op,
 *             frames the records into one buffer and write()s it; batches
 *             queued meanwhile by other callers are applied by it too. It
 *             then leaves the sync to a syncer or, if the caller asked
 *             for it (stock_config.sync_in_caller), syncs a small group
 *             itself and completes it. A thread
 *             hand-off costs more here than applying a batch, so a server
 *             loop applies, writes and syncs its batch in the turn that read
 *             it, as Redis does with appendfsync always;
 *   writer    a background thread that takes the applier's role for the slow
 *             work between groups (segment rotation, starting and reaping
 *             snapshots) and for closing, so that callers never fork or
 *             wait for a rotation;
 *   syncers   EMBEDDED_SYNCERS threads for the syncs callers leave: an idle
 *             one starts an fdatasync as soon as a group is written, even
 *             while another sync runs.
 * A sync covers every byte written before it started; written groups wait
 * in a ring and complete strictly in order once a sync covers them. So a
 * batch completes only after its records, and those of every op applied
 * before it, are on stable storage (I6, and I7 for reads). With relaxed
 * durability the applier completes batches right after write() and one
 * syncer syncs on a timer instead. Rotations and snapshots run with the
 * syncers drained (docs/engine.md, "Durability").
 *
 * A failed write or sync breaks the store for good: memory is then ahead of
 * disk, so every later op completes with STOCK_IO until it is reopened.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/embedded_cold.h"
#include "backend/embedded_uri.h"
#include "core/core.h"
#include "journal/journal.h"
#include "lib/batches.h"
#include "lib/clock.h"
#include "lib/little_endian.h"
#include "lib/message.h"
#include "lib/log.h"
#include "lib/result.h"
#include "lib/uring_sync.h"

/* A group is written once it holds this much log, even if more is queued. */
#define EMBEDDED_GROUP_BYTES_MAX (8u << 20)
/* How long the writer sleeps without work before polling a snapshot. */
#define EMBEDDED_IDLE_MS 50
/* Relaxed durability: sync period, well inside STOCK_RELAXED_SYNC_MS. */
#define EMBEDDED_RELAXED_PERIOD_MS (STOCK_RELAXED_SYNC_MS / 4)
/* A clean close snapshots when the log is past 1/this of the threshold (16
 * MiB by default), so that the next open replays little. */
#define EMBEDDED_CLOSE_SNAPSHOT_DIVISOR 16
/* Syncer threads, so syncs that may run at once. Two overlapping
 * fdatasyncs of a preallocated log each take about as long as one alone
 * (docs/engine.md, "Measurements behind the constants"), so a group that
 * lands while a sync runs need not wait for its end. */
#define EMBEDDED_SYNCERS 2
/* With stock_config.sync_in_caller, a group of at most this many ops is
 * synced by the thread that applied it (when no sync runs), as Redis does
 * with appendfsync always: handing it to a syncer and back costs two thread
 * wake-ups, which at stockd's pipeline depth 1 (a few ops a group) are a
 * large part of its CPU per request. A larger group goes to a syncer, so
 * that its caller can apply the next one meanwhile: a thread keeping many
 * large batches in flight would otherwise wait out every sync itself
 * (figures: docs/engine.md, "Measurements behind the constants"). */
#define EMBEDDED_INLINE_SYNC_OPS_MAX 256
/* Holds expired per EXPIRE record, and per group at most: a group starts
 * by expiring every hold due at its time, up to this many (about 70 MiB of
 * log for 64-byte ids), so that a burst of deadlines delays no group by
 * more than a few hundred milliseconds; the rest go in the next groups, or
 * when an op touches them (docs/semantics.md, "Holds"). */
#define EMBEDDED_EXPIRE_RECORD_HOLDS CORE_EXPIRE_RECORD_MAX
#define EMBEDDED_EXPIRE_GROUP_MAX (64u * 1024)
/* The writer's longest sleep while holds are outstanding: it sleeps until
 * the earliest deadline (an applier that publishes an earlier one wakes
 * it), but no longer than this, should the system clock be stepped. */
#define EMBEDDED_EXPIRY_SLEEP_MS_MAX 1000
/* Written groups waiting for their sync. When it is full a new group joins
 * the newest one instead of waiting: the applier may be a syncer's thread
 * (a done callback that submits), which must never wait for a syncer. */
#define EMBEDDED_GROUPS_MAX 64
/* Syncs in flight through the completion descriptor's io_uring at once: a
 * group that lands while others run starts its own. Overlapping fdatasyncs
 * of the log each take about as long as one alone, 8 at once and more
 * (docs/engine.md, "Measurements behind the constants"), so a group at
 * stockd's -P 16 seldom waits for a free slot. */
#define EMBEDDED_URING_SYNCS URING_SYNC_DEPTH
/* Syncs through sync_log that may run at once: one per syncer thread, and
 * one applier (it syncs only when no sync runs) or the closing thread. */
#define EMBEDDED_SYNC_LOG_FILES (EMBEDDED_SYNCERS + 1u)
/* The journal's sync files (journal_open): one per sync that may be in
 * flight at once, so that each sees every write-back error (journal.h).
 * Files 0.. are the io_uring slots', the last EMBEDDED_SYNC_LOG_FILES
 * sync_log's. */
#define EMBEDDED_SYNC_FILES (EMBEDDED_URING_SYNCS + EMBEDDED_SYNC_LOG_FILES)
_Static_assert(EMBEDDED_SYNC_FILES <= JOURNAL_SYNC_FILES_MAX, "a sync file per sync");
/* How long a thread that waits for an io_uring sync (maintenance, a read,
 * closing) blocks before it looks again: the loop may have reaped it. */
#define EMBEDDED_URING_WAIT_MS 10
/* Entities a listing looks at before it lets queued writes run: 65536
 * line records are a few MiB of memory to walk. */
#define EMBEDDED_LIST_SLICE 65536
/* Retention moves per window: an entity leaves memory between one window
 * and 1 + 1/this windows after it was made; each move rebuilds the hot
 * state (docs/engine.md, "Retention"), so more moves cost more CPU. */
#define EMBEDDED_MOVES_PER_WINDOW 4
/* Entities a step of a retention move takes at least (lines, refunds,
 * adjustments, kept or put in the cold store) before it lets the queued
 * batches run, plus twice what ops made since the step before, up to
 * EMBEDDED_MOVE_STEP_MAX: about 1-3 us an entity, so 10-100 ms a step
 * (docs/engine.md, "Moves in steps"). A step takes more when the move is
 * behind its pace: what is left spread over the time left until the next
 * move is due (a quarter window). A move still under way then (forgetting
 * included) is late: each step takes EMBEDDED_MOVE_LATE_FACTOR times what
 * ops made since the step before, without the cap, so the writers slow to
 * a fraction of their speed until it ends (the back-pressure that bounds
 * memory), and no single step waits for all of what is left. */
#define EMBEDDED_MOVE_STEP_ENTITIES 8192
#define EMBEDDED_MOVE_STEP_MAX (4 * EMBEDDED_MOVE_STEP_ENTITIES)
#define EMBEDDED_MOVE_LATE_FACTOR 4
/* Entities put in the cold store before a step's transaction is committed
 * (a sync of cold.mdb, while ops run): fewer syncs a move. */
#define EMBEDDED_MOVE_COMMIT_ENTITIES 65536
/* Keys of the cold store a turn of the writer forgets (forget=), off the
 * applier's role: about 5-15 us a key (an LMDB read and three writes with
 * their undo), so a turn of 10-100 ms, after which the writer sees to
 * rotations, snapshots and closing again. A late move's slices, under the
 * role, take more (move_forget_late). */
#define EMBEDDED_FORGET_KEYS 8192
/* Bytes of a snapshot's trailer when a cold store is in use: u64 moves. */
#define EMBEDDED_SNAPSHOT_COLD_BYTES 8

/* One written group: its batches, and the count of writing groups that
 * must be synced before it may complete (its own, or the last before it). */
typedef struct embedded_group {
    stock_batch *head, *tail;
    uint64_t need;
} embedded_group;

/* Retention's lifecycle: a move runs in steps between groups, then the
 * engine owes a snapshot of the state it left before the next may begin. */
typedef enum embedded_move_state {
    EMBEDDED_MOVE_IDLE,           /* the next move begins at next_move_us */
    EMBEDDED_MOVE_FORGETTING,     /* a move has begun in the cold store,
                                     which forgets off the applier's role
                                     before its steps begin */
    EMBEDDED_MOVE_STEPPING,       /* a move is under way (embedded.move,
                                     once core_retain_begin made it) */
    EMBEDDED_MOVE_FINISHING,      /* it has caught up and its steps are
                                     committed: the last step comes next */
    EMBEDDED_MOVE_WAITING,        /* it has caught up, and waits for the
                                     snapshot that runs to end: that one
                                     holds the state before it, so it
                                     cannot be the snapshot it owes */
    EMBEDDED_MOVE_SNAPSHOT_OWED   /* a move committed; its snapshot is not
                                     written yet */
} embedded_move_state;

typedef struct embedded {
    struct stock base;           /* first: the library reaches ops through it */
    core *state;                 /* applier's role only, once open */
    cold *cold;                  /* the cold store, or NULL (never used) */
    core_cold cold_ops;          /* the core's way to it */
    int64_t retention_us;        /* 0: nothing moves */
    int64_t forget_us;           /* 0: the cold store forgets nothing */
    int64_t next_move_us;        /* applier's role: when the next move runs
                                    (monotonic: a clock set back would
                                    hold moves up, and memory would grow) */
    embedded_move_state move_state;   /* applier's role, as the fields below */
    core_retain_job *move;       /* the move under way, or NULL */
    int64_t move_cutoff_us;      /* the move's: lines before it leave */
    bool move_forgetting;        /* writer: the move begun has forgetting
                                    left to do, off the role (move_forget) */
    uint64_t move_forgotten;     /* writer: entities it forgot */
    int64_t move_forget_us;      /* writer: how long it took */
    int64_t move_forget_role_us; /* writer: how much of it under the role
                                    (the slices of a late move) */
    uint64_t move_forget_made;   /* lines, refunds and adjustments made by
                                    the last late slice of forgetting */
    int64_t move_started_us;     /* monotonic */
    int64_t move_stepped_us;     /* monotonic: when its last step ended */
    uint64_t move_left;          /* what its cursors had left then */
    uint64_t move_steps;
    int64_t move_step_us_max;    /* its longest step */
    bool move_step_put;          /* writer: a step put into the cold store,
                                    not committed yet */
    uint64_t move_committed;     /* writer: entities put by the steps committed */
    stock_code move_step_code;   /* writer: how the last step's commit went */
    char move_step_message[STOCK_MESSAGE_MAX];
    uint64_t snapshots_at_move;  /* the journal's snapshot count when the
                                    last move committed */
    uint64_t state_generation;   /* moves that replaced the state (listing) */
    bool cold_paired;            /* recovery: the cold store matches the
                                    snapshot loaded (cold_rollback ran) */
    journal *log;
    stock_durability durability;
    bool sync_in_caller;         /* stock_config.sync_in_caller */
    uint64_t snapshot_log_bytes;
    uint64_t open_ms;            /* wall time of embedded_open; fixed after */
    stock_log_hook log_hook;     /* stock_config.log, for every thread */
    pthread_t writer_thread;
    pthread_t syncer_threads[EMBEDDED_SYNCERS];
    unsigned syncers;            /* threads started */

    pthread_mutex_t queue_mutex; /* guards the fields below */
    pthread_cond_t writer_cond;  /* the writer waits for maintenance or closing */
    pthread_cond_t role_cond;    /* the writer waits for the applier's role */
    batch_queue queue;
    bool applying;               /* a thread has the applier's role */
    bool writer_waiting;         /* the writer waits on role_cond */
    unsigned listers_waiting;    /* stock_list callers waiting on role_cond */
    bool maintenance_due;        /* the writer should rotate or snapshot */
    int64_t writer_wake_us;      /* when the sleeping writer wakes: INT64_MAX
                                    while it waits to be signalled */
    bool closing;

    pthread_mutex_t sync_mutex;  /* guards the fields below to broken_message */
    pthread_cond_t sync_cond;    /* syncers wait for work */
    pthread_cond_t idle_cond;    /* the writer waits for the syncers to drain */
    embedded_group groups[EMBEDDED_GROUPS_MAX];   /* a ring, oldest first */
    uint64_t groups_first;       /* ring index of the oldest group */
    uint64_t groups_end;         /* ring index past the newest */
    uint64_t writes;             /* groups that wrote bytes, since open */
    uint64_t syncs_started;      /* writes covered by the newest sync started */
    uint64_t synced;             /* writes known to be on stable storage */
    unsigned syncs_running;
    /* One per sync file (EMBEDDED_SYNC_FILES; 0.. the io_uring slots',
     * then sync_log's): whether a sync through it is in flight, the one
     * state that keeps two syncs off one file. */
    struct {
        bool running;
        uint64_t target;         /* writes it covers */
        int64_t started_us;      /* monotonic, for the latency stats */
    } sync_slots[EMBEDDED_SYNC_FILES];
    bool completing;             /* a syncer is completing groups */
    bool sync_failed;            /* an fdatasync failed: nothing more is durable */
    bool syncer_stop;
    char broken_message[STOCK_MESSAGE_MAX];
    atomic_bool broken;
    /* Set by stock_completion_fd: syncs of the caller's groups go through
     * it, announced on its eventfd (NULL: they block the caller). */
    uring_sync *uring;
    unsigned uring_running;      /* sync_slots 0.. running (io_uring's) */

    buf group;                   /* writer: the records of one group */

    _Atomic uint64_t skus, lines, memory_bytes;   /* the core's, published */
    _Atomic uint64_t holds_outstanding, held_units, hold_expiries,
        hold_confirmations, hold_releases;
    core_stats opened;           /* the core's hold totals after recovery */
    _Atomic int64_t next_deadline_us;   /* the core's, published */
} embedded;

static embedded *from_store(stock_t *store)
{
    assert(store != NULL && store->ops == &embedded_backend);
    return (embedded *)store;
}

/* ------------------------------------------------------------ failure */

/* Marks the store broken; the first reason is the one every op reports,
 * and the log hook hears it at once (an operator should not learn of a
 * failed disk only when the store closes). */
static void break_store(embedded *e, const char *reason)
{
    assert(reason != NULL && reason[0] != '\0');
    pthread_mutex_lock(&e->sync_mutex);
    bool first = !atomic_load(&e->broken);
    if (first) {
        snprintf(e->broken_message, sizeof e->broken_message,
                 "%s; the store refuses work until reopened", reason);
        atomic_store(&e->broken, true);
    }
    pthread_mutex_unlock(&e->sync_mutex);
    if (first)
        stock_log(&e->log_hook, STOCK_LOG_ERROR, "the store broke: %s; every "
                  "operation fails with IOERR until it is reopened: fix the disk (free "
                  "space, check the kernel log) and restart, recovery keeps every "
                  "acknowledged operation", reason);
}

/* Every op of the list that was not invalid completes with STOCK_IO. */
static void fail_batches(embedded *e, stock_batch *list)
{
    assert(atomic_load(&e->broken));
    char reason[STOCK_MESSAGE_MAX];
    pthread_mutex_lock(&e->sync_mutex);
    memcpy(reason, e->broken_message, sizeof reason);
    pthread_mutex_unlock(&e->sync_mutex);
    batches_fail(list, STOCK_IO, reason);
}

/* ------------------------------------------------------------- syncer */

/* Whether some write is covered by no sync started yet, and a sync can
 * still make it durable (sync_mutex held). */
static bool sync_due(const embedded *e)
{
    return e->writes > e->syncs_started && !e->sync_failed;
}

/* Whether the oldest written group may complete: its writes are synced, or
 * a sync failed and it fails (sync_mutex held). */
static bool oldest_group_ready(const embedded *e)
{
    return e->groups_first != e->groups_end &&
           (e->groups[e->groups_first % EMBEDDED_GROUPS_MAX].need <= e->synced ||
            e->sync_failed);
}

/* The first sync file in first..end-1 with no sync running; one is free
 * (sync_mutex held). */
static unsigned free_slot(const embedded *e, unsigned first, unsigned end)
{
    unsigned slot = first;
    while (slot < end && e->sync_slots[slot].running)
        slot++;
    assert(slot < end);
    return slot;
}

/* One fdatasync covering every write up to target; with sync_mutex held on
 * entry and exit (released during the sync). After a failed fdatasync the
 * kernel may have dropped the dirty pages, so a later success proves
 * nothing: the failure is permanent, and no sync raises `synced` after it. */
static void sync_log(embedded *e, uint64_t target)
{
    assert(target > e->synced && target <= e->writes);
    unsigned slot = free_slot(e, EMBEDDED_URING_SYNCS, EMBEDDED_SYNC_FILES);
    e->sync_slots[slot].running = true;
    e->sync_slots[slot].target = target;
    e->syncs_started = target;
    e->syncs_running++;
    pthread_mutex_unlock(&e->sync_mutex);
    char message[STOCK_MESSAGE_MAX];
    uint64_t latency_us = 0;
    stock_code code = journal_sync(e->log, slot, &latency_us, message, sizeof message);
    if (code != STOCK_OK)
        break_store(e, message);
    else
        stats_count_sync(&e->base.stats, latency_us);
    pthread_mutex_lock(&e->sync_mutex);
    e->sync_slots[slot].running = false;
    e->syncs_running--;
    if (code != STOCK_OK)
        e->sync_failed = true;
    else if (!e->sync_failed && target > e->synced)
        e->synced = target;
}

/* Completes, in order, every group whose writes are synced (or fails them
 * once a sync has failed). One syncer at a time does it, so that batches
 * complete in order; another that raises `synced` meanwhile leaves the new
 * groups to it. Called and returns with sync_mutex held. */
static void complete_groups(embedded *e)
{
    if (e->completing)
        return;
    e->completing = true;
    while (oldest_group_ready(e)) {
        embedded_group *group = &e->groups[e->groups_first % EMBEDDED_GROUPS_MAX];
        bool durable = group->need <= e->synced;
        stock_batch *list = group->head;
        e->groups_first++;
        pthread_mutex_unlock(&e->sync_mutex);
        if (!durable)
            fail_batches(e, list);
        batches_complete(&e->base, list);
        pthread_mutex_lock(&e->sync_mutex);
    }
    e->completing = false;
    pthread_cond_broadcast(&e->idle_cond);
}

/* Starts an io_uring sync of every write made so far if one is due and a
 * slot is free (sync_mutex held). When none can start, a running one's
 * completion starts it; if submitting fails, the syncers take the work. */
static void uring_start(embedded *e)
{
    assert(e->uring != NULL);
    if (!sync_due(e) || e->uring_running == EMBEDDED_URING_SYNCS)
        return;
    unsigned slot = free_slot(e, 0, EMBEDDED_URING_SYNCS);
    int64_t started_us = clock_now_us(CLOCK_MONOTONIC);
    if (!uring_sync_submit(e->uring, journal_sync_fd(e->log, slot), slot)) {
        pthread_cond_signal(&e->sync_cond);
        return;
    }
    e->sync_slots[slot].running = true;
    e->sync_slots[slot].target = e->writes;
    e->sync_slots[slot].started_us = started_us;
    e->uring_running++;
    e->syncs_started = e->writes;
    e->syncs_running++;
}

/* One io_uring sync finished (the uring_sync_done_fn; sync_mutex not
 * held): as sync_log after its fdatasync. A result that says the sync did
 * not run (uring_sync_retryable) says nothing of the data: its writes are
 * due again, and the syncer threads take them. */
static void uring_finished(void *context, uint64_t slot, int result)
{
    embedded *e = context;
    assert(slot < EMBEDDED_URING_SYNCS);
    bool retry = result < 0 && uring_sync_retryable(result);
    bool failed = result < 0 && !retry;
    if (failed) {
        char message[STOCK_MESSAGE_MAX];
        message_set(message, sizeof message, "fdatasync of the flow log failed: %s",
                    strerror(-result));
        break_store(e, message);
    }
    pthread_mutex_lock(&e->sync_mutex);
    assert(e->sync_slots[slot].running && e->uring_running > 0);
    uint64_t target = e->sync_slots[slot].target;
    if (result >= 0)
        stats_count_sync(&e->base.stats, (uint64_t)(clock_now_us(CLOCK_MONOTONIC) -
                                                    e->sync_slots[slot].started_us));
    e->sync_slots[slot].running = false;
    e->uring_running--;
    e->syncs_running--;
    if (failed) {
        e->sync_failed = true;
    } else if (retry) {
        if (e->syncs_started > e->synced)
            e->syncs_started = e->synced;
        pthread_cond_signal(&e->sync_cond);
    } else if (!e->sync_failed && target > e->synced) {
        e->synced = target;
    }
    pthread_mutex_unlock(&e->sync_mutex);
}

/* Takes in the io_uring syncs that finished (waiting up to
 * EMBEDDED_URING_WAIT_MS for one with wait), completes what they made
 * durable and starts the next sync. Called and returns with sync_mutex
 * held; releases it meanwhile. */
static void uring_reap(embedded *e, bool wait)
{
    assert(e->uring != NULL);
    pthread_mutex_unlock(&e->sync_mutex);
    uring_sync_reap(e->uring, wait ? EMBEDDED_URING_WAIT_MS : 0, uring_finished, e);
    pthread_mutex_lock(&e->sync_mutex);
    complete_groups(e);
    uring_start(e);
}

/* Sync durability: start a sync whenever writes are not yet covered by
 * one, and complete what the syncs have made durable. */
static void syncer_loop_sync(embedded *e)
{
    pthread_mutex_lock(&e->sync_mutex);
    for (;;) {
        if (sync_due(e)) {
            sync_log(e, e->writes);
        } else if (e->completing || !oldest_group_ready(e)) {
            if (e->syncer_stop && e->groups_first == e->groups_end)
                break;
            pthread_cond_wait(&e->sync_cond, &e->sync_mutex);
            continue;
        }
        complete_groups(e);
        /* Another syncer may be waiting for what this one just left. */
        pthread_cond_signal(&e->sync_cond);
    }
    pthread_mutex_unlock(&e->sync_mutex);
}

/* Relaxed durability: batches are already complete; sync on a timer. */
static void syncer_loop_relaxed(embedded *e)
{
    pthread_mutex_lock(&e->sync_mutex);
    while (!e->syncer_stop) {
        struct timespec until = clock_monotonic_after_ms(EMBEDDED_RELAXED_PERIOD_MS);
        pthread_cond_timedwait(&e->sync_cond, &e->sync_mutex, &until);
        if (sync_due(e)) {
            sync_log(e, e->writes);
            pthread_cond_broadcast(&e->idle_cond);
        }
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

/* Waits until no group waits and no sync runs; returns with sync_mutex
 * held, so that no sync can start until the caller unlocks. */
static void pause_syncer(embedded *e)
{
    pthread_mutex_lock(&e->sync_mutex);
    while (e->groups_first != e->groups_end || e->syncs_running > 0 || e->completing) {
        if (e->uring_running > 0)
            uring_reap(e, true);
        else
            pthread_cond_wait(&e->idle_cond, &e->sync_mutex);
    }
    assert(e->syncs_running == 0 && e->groups_first == e->groups_end);
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
    if (e->cold != NULL) {
        char message[STOCK_MESSAGE_MAX] = "";
        stock_code code = core_thaw_op(e->state, op, &e->cold_ops, message, sizeof message);
        if (code != STOCK_OK)
            result_fail(op, code, "%s", message);
        if (op->code != STOCK_OK) {   /* failed, or answered as forgotten */
            e->group.len = start;
            return;
        }
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
    pthread_mutex_lock(&e->sync_mutex);
    e->writes += wrote;
    if (e->durability == STOCK_DURABILITY_RELAXED) {
        pthread_mutex_unlock(&e->sync_mutex);
        batches_complete(&e->base, list);
        return;
    }
    stock_batch *tail = list;
    while (tail->next != NULL)
        tail = tail->next;
    /* A group that wrote nothing (reads, refusals) still waits for the
     * writes before it: reads never show what could still be lost (I7). */
    if (e->groups_end - e->groups_first < EMBEDDED_GROUPS_MAX) {
        e->groups[e->groups_end % EMBEDDED_GROUPS_MAX] = (embedded_group){list, tail, e->writes};
        e->groups_end++;
    } else {
        embedded_group *newest = &e->groups[(e->groups_end - 1) % EMBEDDED_GROUPS_MAX];
        newest->tail->next = list;
        newest->tail = tail;
        newest->need = e->writes;
    }
    pthread_mutex_unlock(&e->sync_mutex);
}

static void publish_core_stats(embedded *e)
{
    core_stats stats;
    core_get_stats(e->state, &stats);
    atomic_store_explicit(&e->skus, stats.skus, memory_order_relaxed);
    atomic_store_explicit(&e->lines, stats.lines, memory_order_relaxed);
    atomic_store_explicit(&e->memory_bytes, stats.memory_bytes, memory_order_relaxed);
    atomic_store_explicit(&e->holds_outstanding, stats.holds_outstanding,
                          memory_order_relaxed);
    atomic_store_explicit(&e->held_units, stats.held_units, memory_order_relaxed);
    /* Events since open: recovery's replay counted the older ones. */
    atomic_store_explicit(&e->hold_expiries,
                          stats.hold_expiries - e->opened.hold_expiries,
                          memory_order_relaxed);
    atomic_store_explicit(&e->hold_confirmations,
                          stats.hold_confirmations - e->opened.hold_confirmations,
                          memory_order_relaxed);
    atomic_store_explicit(&e->hold_releases,
                          stats.hold_releases - e->opened.hold_releases,
                          memory_order_relaxed);
    atomic_store_explicit(&e->next_deadline_us, core_next_deadline(e->state),
                          memory_order_relaxed);
}

/* Expires the holds due at time_us, up to EMBEDDED_EXPIRE_GROUP_MAX, as
 * framed EXPIRE records in the group buffer. The applier only. */
static void expire_due(embedded *e, int64_t time_us, uint64_t *records)
{
    uint32_t expired = 0;
    while (expired < EMBEDDED_EXPIRE_GROUP_MAX) {
        size_t start;
        if (!journal_frame_begin(&e->group, &start))
            return;   /* out of memory: the next group tries again */
        uint32_t count = core_expire(e->state, time_us,
                                     EMBEDDED_EXPIRE_RECORD_HOLDS, &e->group);
        if (count == 0) {
            e->group.len = start;
            return;
        }
        journal_frame_end(&e->group, start);
        *records += 1;
        expired += count;
    }
}

/* Applies a list of batches as one or more groups (split at
 * EMBEDDED_GROUP_BYTES_MAX, always between batches). */
static void apply_batches(embedded *e, stock_batch *list)
{
    while (list != NULL) {
        stock_batch *first = list, *last = NULL;
        uint64_t records = 0;
        int64_t time_us = core_time(e->state, clock_now_us(CLOCK_REALTIME));
        bool broken = atomic_load(&e->broken);
        /* Every op of the group sees the holds due at its time expired. */
        if (!broken)
            expire_due(e, time_us, &records);
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

/* The state, then (with a cold store) the number of moves it holds the
 * rest of the state in, so that recovery can take later moves back. */
static int save_state(void *context, journal_write_fn write, void *write_context)
{
    const embedded *e = context;
    if (core_snapshot_save(e->state, write, write_context) != 0)
        return -1;
    if (e->cold == NULL)
        return 0;
    uint8_t moves[EMBEDDED_SNAPSHOT_COLD_BYTES];
    le_put_u64(moves, cold_moves(e->cold));
    return write(write_context, moves, sizeof moves);
}

/* ---------------------------------------------------------- retention */

static uint64_t snapshots_done(const embedded *e)
{
    uint64_t log_bytes, snapshots;
    journal_counters(e->log, &log_bytes, &snapshots);
    return snapshots;
}

/* A move needs the snapshot of the one before to be written first: then
 * recovery never has more than COLD_UNDO_MOVES moves to take back. */
static bool move_due(embedded *e)
{
    if (e->move_state == EMBEDDED_MOVE_SNAPSHOT_OWED && snapshots_done(e) > e->snapshots_at_move)
        e->move_state = EMBEDDED_MOVE_IDLE;
    return e->retention_us > 0 && e->move_state == EMBEDDED_MOVE_IDLE &&
           clock_now_us(CLOCK_MONOTONIC) >= e->next_move_us;
}

/* Whether the writer has retention work now: a move to begin or to step
 * (a waiting move steps when the writer wakes to poll the snapshot). */
static bool move_wanted(embedded *e)
{
    return e->move_state == EMBEDDED_MOVE_STEPPING ||
           e->move_state == EMBEDDED_MOVE_FORGETTING ||
           e->move_state == EMBEDDED_MOVE_FINISHING || move_due(e);
}

/* Drops the move under way, if any (the writer: the cold store's
 * transaction is its thread's). A move is under way in the cold store
 * from move_begin on, whether or not its steps (embedded.move) began: a
 * move whose steps could not begin must be aborted too, or its write
 * transaction stays open and no move ever begins again. */
static void move_abandon(embedded *e)
{
    if (e->move_state == EMBEDDED_MOVE_IDLE || e->move_state == EMBEDDED_MOVE_SNAPSHOT_OWED)
        return;
    char message[STOCK_MESSAGE_MAX] = "";
    if (cold_move_abort(e->cold, message, sizeof message) != STOCK_OK)
        stock_log(&e->log_hook, STOCK_LOG_WARNING, "retention: %s; the next open takes the "
                  "unfinished move back", message);
    core_retain_free(e->move);
    e->move = NULL;
    e->move_step_put = false;
    e->move_forgetting = false;
    e->move_state = EMBEDDED_MOVE_IDLE;
}

/* Whether a caller has queued a batch (the applier's role holds it up). */
static bool batches_waiting(embedded *e)
{
    pthread_mutex_lock(&e->queue_mutex);
    bool waiting = e->queue.head != NULL;
    pthread_mutex_unlock(&e->queue_mutex);
    return waiting;
}

/* Counts a step that began at started_us (monotonic) for the move's
 * notice. */
static void count_step(embedded *e, int64_t started_us)
{
    int64_t took_us = clock_now_us(CLOCK_MONOTONIC) - started_us;
    e->move_steps++;
    if (took_us > e->move_step_us_max)
        e->move_step_us_max = took_us;
}

/* Ends a move that failed: the cold store drops what it put, memory
 * keeps everything. */
static void move_failed(embedded *e, stock_code code, const char *message)
{
    move_abandon(e);
    stock_log(&e->log_hook, STOCK_LOG_WARNING, "retention: the move to the cold store "
              "failed, memory keeps everything until the next one: %s",
              message[0] != '\0' ? message : stock_strerror(code));
}

/* The last step: what ops made since the step before, the SKUs and holds;
 * the cold store commits, then the state left replaces the old one. A
 * crash before the next snapshot is written rolls the move back at
 * recovery, which then replays the log on the state as it was. A move
 * that put nothing commits all the same when it forgot something: taken
 * back, its forgetting would be undone, so that nothing would be forgotten
 * while nothing leaves memory, and the next move would forget it again. */
static void move_finish(embedded *e, int64_t step_started_us)
{
    char message[STOCK_MESSAGE_MAX] = "";
    stock_code code;
    core *hot = core_retain_finish(e->move, &code);
    uint64_t moved = core_retain_moved(e->move);
    bool changed = moved > 0 || e->move_forgotten > 0;
    if (hot != NULL && changed)
        code = cold_move_commit(e->cold, message, sizeof message);
    else if (hot != NULL)
        code = cold_move_abort(e->cold, message, sizeof message);
    if (code != STOCK_OK) {
        core_destroy(hot);
        move_failed(e, code, message);
        return;
    }
    core_retain_free(e->move);
    e->move = NULL;
    core_destroy(e->state);
    e->state = hot;
    e->state_generation++;
    publish_core_stats(e);
    e->move_state = EMBEDDED_MOVE_IDLE;
    if (!changed)
        return;
    e->move_state = EMBEDDED_MOVE_SNAPSHOT_OWED;
    e->snapshots_at_move = snapshots_done(e);
    count_step(e, step_started_us);
    stock_log(&e->log_hook, STOCK_LOG_NOTICE, "retention: move %llu took %llu entities to "
              "the cold store in %lld ms, in %llu steps, the longest %lld ms; forgetting "
              "%llu entities took %lld ms of it, %lld ms under the applier's role",
              (unsigned long long)cold_moves(e->cold), (unsigned long long)moved,
              (long long)(clock_now_us(CLOCK_MONOTONIC) - e->move_started_us) / 1000,
              (unsigned long long)e->move_steps, (long long)e->move_step_us_max / 1000,
              (unsigned long long)e->move_forgotten, (long long)e->move_forget_us / 1000,
              (long long)e->move_forget_role_us / 1000);
}

/* Whether the move under way is late at now_us (monotonic): still under
 * way a quarter window after it began, when the next is due. */
static bool move_late(const embedded *e, int64_t now_us)
{
    return now_us >= e->move_started_us + e->retention_us / EMBEDDED_MOVES_PER_WINDOW;
}

/* The entities a step of the move under way takes at now_us, on time:
 * what is left spread over the time left until it is late, in proportion
 * to the time since the last step. */
static uint64_t move_pace(const embedded *e, int64_t now_us)
{
    int64_t late_us = e->move_started_us + e->retention_us / EMBEDDED_MOVES_PER_WINDOW;
    assert(now_us < late_us);
    uint64_t left = core_retain_left(e->move);
    double share = (double)(now_us - e->move_stepped_us) / (double)(late_us - now_us);
    return share >= 1 ? left : (uint64_t)((double)left * share);
}

/* One step of the move under way (the writer, between groups): at least
 * EMBEDDED_MOVE_STEP_ENTITIES entities (and what ops made since the step
 * before, up to EMBEDDED_MOVE_STEP_MAX), more when the move is behind its
 * pace (move_pace). A step that finds the move caught up leaves the last
 * step to the next turn, once what the steps put is committed and no
 * snapshot runs. */
static void move_step(embedded *e, bool snapshot_running)
{
    assert(e->move != NULL);
    if (e->move_step_code != STOCK_OK) {
        move_failed(e, e->move_step_code, e->move_step_message);
        return;
    }
    int64_t started_us = clock_now_us(CLOCK_MONOTONIC);
    if (e->move_state == EMBEDDED_MOVE_FINISHING && !snapshot_running) {
        move_finish(e, started_us);
        return;
    }
    uint64_t budget, budget_max;
    if (move_late(e, started_us)) {
        /* core_retain_step adds twice what ops made since the last step. */
        uint64_t left = core_retain_left(e->move);
        uint64_t made = left > e->move_left ? left - e->move_left : 0;
        budget = EMBEDDED_MOVE_STEP_ENTITIES + (EMBEDDED_MOVE_LATE_FACTOR - 2) * made;
        budget_max = UINT64_MAX;
    } else {
        uint64_t pace = move_pace(e, started_us);
        budget = pace > EMBEDDED_MOVE_STEP_ENTITIES ? pace : EMBEDDED_MOVE_STEP_ENTITIES;
        budget_max = pace > EMBEDDED_MOVE_STEP_MAX ? pace : EMBEDDED_MOVE_STEP_MAX;
    }
    stock_code code;
    bool caught_up;
    /* While no batch waits, the step goes on: the cap is for them. */
    do {
        caught_up = core_retain_step(e->move, budget, budget_max, &code);
    } while (code == STOCK_OK && !caught_up && !batches_waiting(e));
    if (code != STOCK_OK) {
        move_failed(e, code, "");
        return;
    }
    e->move_state = !caught_up ? EMBEDDED_MOVE_STEPPING
                    : snapshot_running ? EMBEDDED_MOVE_WAITING : EMBEDDED_MOVE_FINISHING;
    e->move_step_put = true;
    e->move_stepped_us = clock_now_us(CLOCK_MONOTONIC);
    e->move_left = core_retain_left(e->move);
    count_step(e, started_us);
}

/* The steps of the move begun (forgetting, if any, committed): the
 * first of them now. Their pace (move_pace) counts from the move's begin,
 * forgetting included: a move keeps its time however long forgetting
 * took, so that memory stays bounded by the window. */
static void move_steps_begin(embedded *e, bool snapshot_running)
{
    e->move_state = EMBEDDED_MOVE_STEPPING;
    e->move_stepped_us = clock_now_us(CLOCK_MONOTONIC);
    e->move = core_retain_begin(e->state, e->move_cutoff_us, &e->cold_ops);
    if (e->move == NULL) {
        move_failed(e, STOCK_NOMEM, "");
        return;
    }
    e->move_left = core_retain_left(e->move);
    move_step(e, snapshot_running);
}

/* Begins a move of what is older than the window to the cold store: its
 * steps at once, or, when the cold store forgets, once the writer has
 * forgotten off the role (move_forget). */
static void move_begin(embedded *e, bool snapshot_running)
{
    int64_t now_us = core_time(e->state, clock_now_us(CLOCK_REALTIME));
    e->next_move_us = clock_now_us(CLOCK_MONOTONIC) + e->retention_us / EMBEDDED_MOVES_PER_WINDOW;
    char message[STOCK_MESSAGE_MAX] = "";
    int64_t forget_before_us = e->forget_us > 0 ? now_us - e->forget_us : 0;
    stock_code code = cold_move_begin(e->cold, now_us, forget_before_us, message,
                                      sizeof message);
    if (code != STOCK_OK) {
        stock_log(&e->log_hook, STOCK_LOG_WARNING, "retention: the move to the cold store "
                  "failed, memory keeps everything until the next one: %s", message);
        return;
    }
    e->move_step_code = STOCK_OK;
    e->move_committed = 0;
    e->move_steps = 0;
    e->move_step_us_max = 0;
    e->move_forgotten = 0;
    e->move_forget_us = 0;
    e->move_forget_role_us = 0;
    core_stats stats;
    core_get_stats(e->state, &stats);
    e->move_forget_made = stats.lines + stats.refunds + stats.adjustments;
    e->move_started_us = clock_now_us(CLOCK_MONOTONIC);
    e->move_cutoff_us = now_us - e->retention_us;
    e->move_forgetting = forget_before_us > 0;
    if (!e->move_forgetting) {
        move_steps_begin(e, snapshot_running);
        return;
    }
    e->move_state = EMBEDDED_MOVE_FORGETTING;
}

/* Forgets a slice of what the cold store is to forget: once the writer
 * has given the applier's role up while the move is on time (ops go on
 * meanwhile: memory does not change, and thaws read what is committed),
 * and under the role, as a step, once it is late (the writers then wait
 * a slice at a time: forgetting that cannot keep up with them would let
 * memory grow). Commits all of it at once when nothing is left, so that
 * no thaw sees an order forgotten without its lines. A failure fails the
 * move at the writer's next turn. */
static void move_forget(embedded *e, uint64_t keys)
{
    int64_t started_us = clock_now_us(CLOCK_MONOTONIC);
    bool done = false;
    uint64_t forgotten = 0;
    e->move_step_code = cold_move_forget(e->cold, keys, &done, &forgotten,
                                         e->move_step_message, sizeof e->move_step_message);
    e->move_forgotten += forgotten;
    if (e->move_step_code == STOCK_OK && done)
        e->move_step_code = cold_move_step(e->cold, e->move_step_message,
                                           sizeof e->move_step_message);
    e->move_forget_us += clock_now_us(CLOCK_MONOTONIC) - started_us;
    e->move_forgetting = !done && e->move_step_code == STOCK_OK;
}

/* Commits what the steps put, once the writer has given the applier's
 * role up: the commit syncs the cold store, and ops need not wait for that
 * (they read what is committed, and what the steps put is still in
 * memory). Steps under way commit every EMBEDDED_MOVE_COMMIT_ENTITIES; a
 * move that caught up commits all, so that its last step commits little.
 * A failure fails the move at its next step. */
static void move_commit_step(embedded *e)
{
    if (e->move_forgetting) {
        /* A late move forgets under the role only: slices here would let
         * the writers run free meanwhile. */
        if (!move_late(e, clock_now_us(CLOCK_MONOTONIC)))
            move_forget(e, EMBEDDED_FORGET_KEYS);
        return;
    }
    if (!e->move_step_put || (e->move_state == EMBEDDED_MOVE_STEPPING &&
                              core_retain_moved(e->move) - e->move_committed <
                                  EMBEDDED_MOVE_COMMIT_ENTITIES))
        return;
    e->move_step_put = false;
    e->move_committed = core_retain_moved(e->move);
    e->move_step_code = cold_move_step(e->cold, e->move_step_message,
                                       sizeof e->move_step_message);
}

/* The writer's turn while a move forgets (it has the role): once the
 * move is late, a slice of forgetting under the role, of the base size
 * and EMBEDDED_MOVE_LATE_FACTOR keys for each line, refund and adjustment
 * made since the turn before, so that forgetting gains on the writers as
 * a late move's steps do. */
static void move_forget_late(embedded *e)
{
    core_stats stats;
    core_get_stats(e->state, &stats);
    uint64_t made = stats.lines + stats.refunds + stats.adjustments;
    uint64_t since = made > e->move_forget_made ? made - e->move_forget_made : 0;
    e->move_forget_made = made;
    if (!move_late(e, clock_now_us(CLOCK_MONOTONIC)))
        return;
    int64_t forget_us = e->move_forget_us;
    move_forget(e, EMBEDDED_FORGET_KEYS + EMBEDDED_MOVE_LATE_FACTOR * since);
    e->move_forget_role_us += e->move_forget_us - forget_us;
}

/* The writer's retention work between groups. */
static void move_work(embedded *e, bool snapshot_running)
{
    if (e->move_state == EMBEDDED_MOVE_FORGETTING && e->move_forgetting &&
        e->move_step_code == STOCK_OK)
        move_forget_late(e);
    if (e->move_state == EMBEDDED_MOVE_FORGETTING && e->move_step_code != STOCK_OK)
        move_failed(e, e->move_step_code, e->move_step_message);
    else if (e->move_state == EMBEDDED_MOVE_FORGETTING && !e->move_forgetting)
        move_steps_begin(e, snapshot_running);
    else if (e->move != NULL)
        move_step(e, snapshot_running);
    else if (move_due(e))
        move_begin(e, snapshot_running);
}

/* The log since the last snapshot that makes the next one due:
 * snapshot_log_bytes, or more for a state whose snapshot is larger. */
static uint64_t snapshot_threshold(const embedded *e)
{
    return journal_snapshot_threshold(e->log, e->snapshot_log_bytes);
}

/* Between groups: reap a snapshot, start one or rotate when due. Returns
 * whether a snapshot is running afterwards. */
static bool maintain(embedded *e, uint64_t threshold)
{
    /* A move steps while a snapshot runs too: the snapshot is of a copy
     * of the state (a forked child). */
    bool snapshot_running = !journal_snapshot_poll(e->log, false);
    if (!atomic_load(&e->broken))
        move_work(e, snapshot_running);
    if (snapshot_running)
        return true;
    if (atomic_load(&e->broken))
        return false;
    bool snapshot = journal_snapshot_due(e->log, threshold) ||
                    (e->move_state == EMBEDDED_MOVE_SNAPSHOT_OWED &&
                     snapshots_done(e) == e->snapshots_at_move);
    if (!snapshot && !journal_rotation_due(e->log))
        return false;
    char message[STOCK_MESSAGE_MAX] = "";
    pause_syncer(e);
    stock_code code = snapshot
        ? journal_snapshot_start(e->log, save_state, e, message, sizeof message)
        : journal_rotate(e->log, message, sizeof message);
    pthread_mutex_unlock(&e->sync_mutex);
    /* A failed snapshot only delays clean-up. A failed rotation (its own,
     * or the one that starts a snapshot) leaves the journal refusing
     * appends: the store breaks now, with that reason, rather than at the
     * next write with a reason that names no failed call. */
    if (code != STOCK_OK && journal_failed(e->log))
        break_store(e, message);
    if (code != STOCK_OK)
        stock_log(&e->log_hook, journal_failed(e->log) ? STOCK_LOG_ERROR : STOCK_LOG_WARNING,
                  "%s failed: %s%s", snapshot ? "starting a snapshot" : "segment rotation",
                  message, journal_failed(e->log) ? "" : "; the store goes on and tries again "
                  "after more log, which grows meanwhile: check free memory and disk");
    return snapshot && code == STOCK_OK;
}

/* Applies everything queued, then gives the applier's role up (the caller
 * has it, queue_mutex not held). Only the applier may touch the core and
 * the journal's appends, so it is also the one to see that the writer is
 * needed for a rotation or a snapshot. */
static size_t apply_queue(embedded *e)
{
    size_t ops = 0;
    for (;;) {
        pthread_mutex_lock(&e->queue_mutex);
        assert(e->applying);
        size_t taken = 0;
        stock_batch *list = batches_dequeue(&e->queue, SIZE_MAX, &taken);
        if (list == NULL)
            break;
        pthread_mutex_unlock(&e->queue_mutex);
        ops += taken;
        apply_batches(e, list);
    }
    bool due = !atomic_load(&e->broken) &&
               (journal_rotation_due(e->log) || move_wanted(e) ||
                journal_snapshot_due(e->log, snapshot_threshold(e)));
    if (due && !e->maintenance_due) {
        e->maintenance_due = true;
        pthread_cond_signal(&e->writer_cond);
    }
    /* A hold due before the writer means to wake: wake it to sleep less. */
    if (atomic_load_explicit(&e->next_deadline_us, memory_order_relaxed) < e->writer_wake_us)
        pthread_cond_signal(&e->writer_cond);
    e->applying = false;
    if (e->writer_waiting || e->listers_waiting > 0)
        pthread_cond_broadcast(&e->role_cond);
    pthread_mutex_unlock(&e->queue_mutex);
    return ops;
}

/* How long the writer may sleep: until the earliest hold deadline (at
 * most EMBEDDED_EXPIRY_SLEEP_MS_MAX), and at most EMBEDDED_IDLE_MS while a
 * snapshot runs; -1 for as long as it likes. */
static long writer_sleep_ms(embedded *e, bool snapshot_running)
{
    long ms = snapshot_running ? EMBEDDED_IDLE_MS : -1;
    int64_t deadline = atomic_load_explicit(&e->next_deadline_us, memory_order_relaxed);
    if (deadline == INT64_MAX)
        return ms;
    int64_t wait_us = deadline - clock_now_us(CLOCK_REALTIME);
    long hold_ms = wait_us <= 0 ? 0 : (long)(wait_us / 1000) + 1;
    if (hold_ms > EMBEDDED_EXPIRY_SLEEP_MS_MAX)
        hold_ms = EMBEDDED_EXPIRY_SLEEP_MS_MAX;
    return ms < 0 || hold_ms < ms ? hold_ms : ms;
}

/* Writer: waits for maintenance, closing, a hold's deadline, or (while a
 * snapshot runs) up to EMBEDDED_IDLE_MS to reap it; then takes the
 * applier's role, waiting for a caller to give it up. Returns whether the
 * store is closing. */
static bool take_role(embedded *e, bool snapshot_running)
{
    pthread_mutex_lock(&e->queue_mutex);
    while (!e->maintenance_due && !e->closing) {
        long sleep_ms = writer_sleep_ms(e, snapshot_running);
        if (sleep_ms < 0) {
            e->writer_wake_us = INT64_MAX;
            pthread_cond_wait(&e->writer_cond, &e->queue_mutex);
            e->writer_wake_us = 0;
            continue;
        }
        if (sleep_ms > 0) {
            struct timespec until = clock_monotonic_after_ms(sleep_ms);
            e->writer_wake_us = clock_now_us(CLOCK_REALTIME) + sleep_ms * 1000LL;
            pthread_cond_timedwait(&e->writer_cond, &e->queue_mutex, &until);
            e->writer_wake_us = 0;
        }
        break;
    }
    e->writer_waiting = true;
    while (e->applying)
        pthread_cond_wait(&e->role_cond, &e->queue_mutex);
    e->writer_waiting = false;
    e->applying = true;
    e->maintenance_due = false;
    bool closing = e->closing;
    pthread_mutex_unlock(&e->queue_mutex);
    return closing;
}

/* After apply_queue, which applied ops: with sync_in_caller, a small group
 * is synced by the applier in its own thread when no sync is running, and
 * completed there; anything else (a large group, a sync already running, a
 * write after this one) is left to the syncer threads. One fdatasync at
 * most, so that a caller is never kept for other callers. */
static void sync_written(embedded *e, size_t ops)
{
    if (e->durability != STOCK_DURABILITY_SYNC)
        return;
    pthread_mutex_lock(&e->sync_mutex);
    if (e->uring != NULL) {
        /* The sync runs while the caller goes on; groups that need no new
         * sync (reads after synced writes) complete here. */
        uring_start(e);
        complete_groups(e);
        pthread_mutex_unlock(&e->sync_mutex);
        return;
    }
    bool in_caller = e->sync_in_caller && ops <= EMBEDDED_INLINE_SYNC_OPS_MAX;
    if (in_caller && e->syncs_running == 0 && sync_due(e)) {
        sync_log(e, e->writes);
        complete_groups(e);
    }
    bool left = e->writes > e->syncs_started ||
                (e->groups_first != e->groups_end && !e->completing);
    if (left)
        pthread_cond_signal(&e->sync_cond);
    pthread_mutex_unlock(&e->sync_mutex);
}

/* The writer's sweep, between groups (it has the applier's role): expires
 * the holds due now when no op came to do it, as a group of its own that
 * completes no batch; the syncers make it durable, and the groups after it
 * wait for that sync as for any write before them. */
static void expire_idle(embedded *e)
{
    if (atomic_load(&e->broken) || core_next_deadline(e->state) == INT64_MAX)
        return;
    uint64_t records = 0;
    int64_t time_us = core_time(e->state, clock_now_us(CLOCK_REALTIME));
    expire_due(e, time_us, &records);
    publish_core_stats(e);
    if (records == 0)
        return;
    char message[STOCK_MESSAGE_MAX];
    bool wrote = journal_append(e->log, e->group.data, e->group.len, records,
                                message, sizeof message) == STOCK_OK;
    if (!wrote)
        break_store(e, message);
    buf_clear(&e->group);
    pthread_mutex_lock(&e->sync_mutex);
    e->writes += wrote;
    pthread_cond_signal(&e->sync_cond);
    pthread_mutex_unlock(&e->sync_mutex);
}

static void *writer_main(void *context)
{
    embedded *e = context;
    bool closing, snapshot_running = false;
    do {
        closing = take_role(e, snapshot_running);
        snapshot_running = maintain(e, snapshot_threshold(e));
        expire_idle(e);
        size_t ops = apply_queue(e);
        sync_written(e, ops);
        move_commit_step(e);
    } while (!closing);
    /* Closing: no caller submits any more and everything is applied; let
     * the syncers finish, then leave a snapshot behind if the log is
     * large, so the next open is quick. */
    pause_syncer(e);
    pthread_mutex_unlock(&e->sync_mutex);
    journal_snapshot_poll(e->log, true);
    /* A move that has not finished is dropped (memory holds all of it),
     * and none begins. */
    move_abandon(e);
    e->retention_us = 0;
    maintain(e, snapshot_threshold(e) / EMBEDDED_CLOSE_SNAPSHOT_DIVISOR);
    /* The child dies with this thread (PR_SET_PDEATHSIG): wait for it. */
    journal_snapshot_poll(e->log, true);
    return NULL;
}

/* ---------------------------------------------------------- interface */

static void embedded_submit(stock_t *store, stock_batch *batch)
{
    embedded *e = from_store(store);
    assert(batch->count >= 1 && batch->done != NULL);
    pthread_mutex_lock(&e->queue_mutex);
    assert(!e->closing);
    batches_enqueue(&e->queue, batch);
    /* The thread applying now takes this batch before it gives up. */
    bool apply = !e->applying;
    e->applying = true;
    pthread_mutex_unlock(&e->queue_mutex);
    if (apply) {
        size_t ops = apply_queue(e);
        sync_written(e, ops);
    }
}

/* Waits until every write made so far is on stable storage (I7: a read
 * never shows what could still be lost); false if a sync failed. Relaxed
 * durability acknowledges before syncing, so it does not wait. */
static bool wait_durable(embedded *e)
{
    if (e->durability != STOCK_DURABILITY_SYNC)
        return true;
    pthread_mutex_lock(&e->sync_mutex);
    uint64_t target = e->writes;
    while (e->synced < target && !e->sync_failed) {
        if (e->uring_running > 0) {
            uring_reap(e, true);
            continue;
        }
        if (e->syncs_started < target)
            pthread_cond_signal(&e->sync_cond);   /* a syncer starts one */
        pthread_cond_wait(&e->idle_cond, &e->sync_mutex);
    }
    bool durable = e->synced >= target;
    pthread_mutex_unlock(&e->sync_mutex);
    return durable;
}

/* Waits for the applier's role, as the writer does (only the role's holder
 * may touch the core). */
static void take_role_to_read(embedded *e)
{
    pthread_mutex_lock(&e->queue_mutex);
    assert(!e->closing);
    e->listers_waiting++;
    while (e->applying)
        pthread_cond_wait(&e->role_cond, &e->queue_mutex);
    e->listers_waiting--;
    e->applying = true;
    pthread_mutex_unlock(&e->queue_mutex);
}

/* Gives the role up the way every applier does: applying what was queued
 * meanwhile, and leaving its sync to the syncers. */
static void give_role_up(embedded *e)
{
    size_t ops = apply_queue(e);
    sync_written(e, ops);
}

/* A new cursor after the last entry a listing took (or where it began). */
static stock_code relist(embedded *e, const list_request *request,
                         const stock_list_entry *entries, uint32_t count,
                         core_list_cursor *cursor, char *message, size_t message_size)
{
    stock_id after = request->after;
    if (count > 0)
        after = stock_id_from_cstr(entries[count - 1].id);
    return core_list_begin(e->state, request->kind, request->of, after, cursor, message,
                           message_size);
}

/* A page read in slices of EMBEDDED_LIST_SLICE entities under the
 * applier's role, which is given up between slices: a long walk (a rarely
 * sold SKU's lines among millions) then delays writes by one slice at a
 * time, not by the whole walk. */
static stock_code embedded_list(stock_t *store, const list_request *request,
                                stock_list_entry *entries, uint32_t *count,
                                char *message, size_t message_size)
{
    embedded *e = from_store(store);
    core_list_cursor cursor;
    take_role_to_read(e);
    stock_code code = core_list_begin(e->state, request->kind, request->of, request->after,
                                      &cursor, message, message_size);
    while (code == STOCK_OK &&
           !core_list_next(e->state, &cursor, entries, request->max, count, EMBEDDED_LIST_SLICE)) {
        uint64_t generation = e->state_generation;
        give_role_up(e);
        take_role_to_read(e);
        /* A retention move rebuilt the state: the cursor's indices name
         * other entities now; go on after the last entry taken. */
        if (generation != e->state_generation)
            code = relist(e, request, entries, *count, &cursor, message, message_size);
    }
    give_role_up(e);
    if (wait_durable(e) && !atomic_load(&e->broken))
        return code;
    *count = 0;   /* what was read may be lost */
    pthread_mutex_lock(&e->sync_mutex);
    message_set(message, message_size, "%s", e->broken_message);
    pthread_mutex_unlock(&e->sync_mutex);
    return STOCK_IO;
}

/* What a backup copies of the cold store: the store, and its move count
 * at the backup point. */
typedef struct embedded_cold_copy {
    cold *store;
    uint64_t moves_at_point;
} embedded_cold_copy;

/* journal_backup_extra_fn: the cold store beside the log. */
static stock_code copy_cold(void *context, int dest_fd, char *name, uint64_t *bytes,
                            char *message, size_t message_size)
{
    const embedded_cold_copy *copy = context;
    snprintf(name, JOURNAL_NAME_MAX, "%s", COLD_FILE);
    return cold_copy(copy->store, dest_fd, copy->moves_at_point, bytes, message,
                     message_size);
}

/* The backup point is taken under the applier's role with the syncers
 * drained, as a rotation is (it is one); the copy then runs on the
 * caller's thread while groups go on. A cold store is copied first: its
 * copy may be a few moves past the point, which the restored store's open
 * takes back to the backup snapshot's moves, as any recovery does
 * (docs/engine.md, "Backups of a store with a cold store"). */
static stock_code embedded_backup(stock_t *store, const char *dest, stock_backup_info *info,
                                  char *message, size_t message_size)
{
    embedded *e = from_store(store);
    journal_backup backup;
    embedded_cold_copy copy = {e->cold, 0};
    stock_code code = STOCK_IO;
    take_role_to_read(e);
    if (atomic_load(&e->broken)) {
        pthread_mutex_lock(&e->sync_mutex);
        message_set(message, message_size, "%s", e->broken_message);
        pthread_mutex_unlock(&e->sync_mutex);
    } else {
        pause_syncer(e);
        code = journal_backup_begin(e->log, &backup, message, message_size);
        pthread_mutex_unlock(&e->sync_mutex);
        if (code != STOCK_OK && journal_failed(e->log))
            break_store(e, message);
        if (e->cold != NULL)
            copy.moves_at_point = cold_moves(e->cold);
    }
    give_role_up(e);
    if (code != STOCK_OK)
        return code;
    code = journal_backup_copy(e->log, &backup, dest, e->cold != NULL ? copy_cold : NULL,
                               &copy, &info->bytes, message, message_size);
    info->end_lsn = backup.end_lsn;
    info->snapshot_lsn = backup.snapshot_lsn == JOURNAL_LSN_NONE ? 0 : backup.snapshot_lsn;
    info->files = backup.count + (e->cold != NULL);
    journal_backup_end(e->log, &backup);
    return code;
}

/* The embedded engine's data folder is what a backup holds, so restoring
 * one is its business too (stock.h). */
stock_code stock_restore(const char *src, const char *path, stock_backup_info *info,
                         char *message)
{
    char sentence[STOCK_MESSAGE_MAX] = "";
    stock_backup_info restored = {0};
    stock_code code = STOCK_INVALID;
    size_t src_len = src == NULL ? 0 : strnlen(src, STOCK_PATH_MAX);
    size_t path_len = path == NULL ? 0 : strnlen(path, STOCK_PATH_MAX);
    if (src_len == 0 || src_len == STOCK_PATH_MAX || path_len == 0 || path_len == STOCK_PATH_MAX) {
        message_set(sentence, sizeof sentence, "the backup and the data folder must each be "
                    "1..%d bytes", STOCK_PATH_MAX - 1);
    } else {
        journal_backup backup;
        code = journal_restore(src, path, &backup, &restored.bytes, sentence, sizeof sentence);
        restored.end_lsn = backup.end_lsn;
        restored.snapshot_lsn = backup.snapshot_lsn == JOURNAL_LSN_NONE ? 0 : backup.snapshot_lsn;
        restored.files = backup.count;
    }
    if (info != NULL)
        *info = restored;
    if (message != NULL)
        memcpy(message, sentence, sizeof sentence);
    return code;
}

static stock_code embedded_get_health(stock_t *store, stock_health *health)
{
    embedded *e = from_store(store);
    if (atomic_load(&e->broken)) {
        health->failed = true;
        pthread_mutex_lock(&e->sync_mutex);
        memcpy(health->failure, e->broken_message, sizeof health->failure);
        pthread_mutex_unlock(&e->sync_mutex);
    }
    journal_health(e->log, &health->snapshot_failed, &health->snapshot_failures,
                   &health->disk_free_bytes, &health->disk_bytes);
    return STOCK_OK;
}

static stock_code embedded_get_stats(stock_t *store, stock_stats *stats)
{
    embedded *e = from_store(store);
    assert(stats != NULL);
    stats->skus = atomic_load_explicit(&e->skus, memory_order_relaxed);
    stats->lines = atomic_load_explicit(&e->lines, memory_order_relaxed);
    stats->memory_bytes = atomic_load_explicit(&e->memory_bytes, memory_order_relaxed);
    stats->holds_outstanding = atomic_load_explicit(&e->holds_outstanding,
                                                    memory_order_relaxed);
    stats->held_units = atomic_load_explicit(&e->held_units, memory_order_relaxed);
    stats->hold_expiries = atomic_load_explicit(&e->hold_expiries, memory_order_relaxed);
    stats->hold_confirmations = atomic_load_explicit(&e->hold_confirmations,
                                                     memory_order_relaxed);
    stats->hold_releases = atomic_load_explicit(&e->hold_releases, memory_order_relaxed);
    uint64_t log_bytes = 0, snapshots = 0;
    journal_counters(e->log, &log_bytes, &snapshots);
    stats->log_bytes = log_bytes;
    stats->snapshots = snapshots;
    journal_recovery recovery;
    journal_recovery_summary(e->log, &recovery);
    stats->recovered = true;
    stats->recovery_snapshot_loaded = recovery.snapshot_loaded;
    stats->recovery_snapshot_lsn = recovery.snapshot_lsn;
    stats->recovery_records = recovery.records_replayed;
    stats->recovery_torn_bytes = recovery.torn_bytes;
    stats->recovery_ms = e->open_ms;
    return STOCK_OK;
}

static void destroy(embedded *e)
{
    assert(e->uring_running == 0);
    uring_sync_destroy(e->uring);
    journal_close(e->log);
    cold_close(e->cold);
    core_destroy(e->state);
    buf_free(&e->group);
    pthread_cond_destroy(&e->idle_cond);
    pthread_cond_destroy(&e->sync_cond);
    pthread_mutex_destroy(&e->sync_mutex);
    pthread_cond_destroy(&e->role_cond);
    pthread_cond_destroy(&e->writer_cond);
    pthread_mutex_destroy(&e->queue_mutex);
    free(e);
}

static void stop_syncers(embedded *e)
{
    pthread_mutex_lock(&e->sync_mutex);
    e->syncer_stop = true;
    pthread_cond_broadcast(&e->sync_cond);
    pthread_mutex_unlock(&e->sync_mutex);
    for (unsigned i = 0; i < e->syncers; i++)
        pthread_join(e->syncer_threads[i], NULL);
    e->syncers = 0;
}

static stock_code embedded_close(stock_t *store)
{
    embedded *e = from_store(store);
    pthread_mutex_lock(&e->queue_mutex);
    e->closing = true;
    pthread_cond_signal(&e->writer_cond);
    pthread_mutex_unlock(&e->queue_mutex);
    pthread_join(e->writer_thread, NULL);
    stop_syncers(e);
    /* Relaxed durability leaves the last writes to this final sync. */
    pthread_mutex_lock(&e->sync_mutex);
    if (sync_due(e))
        sync_log(e, e->writes);
    pthread_mutex_unlock(&e->sync_mutex);
    /* stock_close has no message of its own: the reason goes to the hook. */
    stock_code code = STOCK_OK;
    if (atomic_load(&e->broken)) {
        stock_log(&e->log_hook, STOCK_LOG_ERROR, "closing the store: %s",
                  e->broken_message);
        code = STOCK_IO;
    }
    destroy(e);
    return code;
}

/* Recovery: takes back the cold store's moves after the snapshot's (moves
 * is 0 without a snapshot), before any record is replayed on it. */
static stock_code pair_cold(embedded *e, uint64_t moves, char *message, size_t message_size)
{
    if (e->cold_paired || e->cold == NULL)
        return STOCK_OK;
    e->cold_paired = true;
    uint64_t ahead = cold_moves(e->cold) > moves ? cold_moves(e->cold) - moves : 0;
    bool unfinished;
    stock_code code = cold_rollback(e->cold, moves, &unfinished, message, message_size);
    if (code == STOCK_OK && unfinished)
        stock_log(&e->log_hook, STOCK_LOG_NOTICE, "retention: the steps of an unfinished cold "
                  "store move taken back");
    if (code == STOCK_OK && ahead > 0)
        stock_log(&e->log_hook, STOCK_LOG_NOTICE, "retention: %llu cold store move(s) newer "
                  "than the snapshot taken back; the log replays them", (unsigned long long)ahead);
    return code;
}

/* Counts what the core's loader reads, so that the trailer after it is
 * found. */
typedef struct counted_read {
    journal_read_fn read;
    void *context;
    size_t bytes;
} counted_read;

static int read_counted(void *context, void *data, size_t len)
{
    counted_read *counted = context;
    counted->bytes += len;
    return counted->read(counted->context, data, len);
}

static stock_code load_state(void *context, journal_read_fn read, void *read_context,
                             size_t size, char *message, size_t message_size)
{
    embedded *e = context;
    counted_read counted = {read, read_context, 0};
    stock_code code = core_snapshot_load(e->state, read_counted, &counted, size, message,
                                         message_size);
    if (code != STOCK_OK || counted.bytes == size)
        return code == STOCK_OK ? pair_cold(e, 0, message, message_size) : code;
    uint8_t moves[EMBEDDED_SNAPSHOT_COLD_BYTES];
    if (size - counted.bytes != sizeof moves || read(read_context, moves, sizeof moves) != 0) {
        message_set(message, message_size, "%zu bytes after the state, not a cold store's "
                    "move count", size - counted.bytes);
        return STOCK_CORRUPT;
    }
    if (e->cold == NULL) {
        message_set(message, message_size, "the snapshot holds the hot part of a store "
                    "with retention, and %s, which holds the rest, is missing", COLD_FILE);
        return STOCK_CORRUPT;
    }
    return pair_cold(e, le_get_u64(moves), message, message_size);
}

/* A snapshot that failed its checksum after loading: empty the state for
 * an older one. */
static void clear_state(void *context)
{
    embedded *e = context;
    core_clear(e->state);
}

static stock_code replay_record(void *context, const uint8_t *record, size_t len,
                                char *message, size_t message_size)
{
    embedded *e = context;
    if (e->cold != NULL) {
        stock_code code = pair_cold(e, 0, message, message_size);
        if (code == STOCK_OK)
            code = core_thaw_record(e->state, record, len, &e->cold_ops, message,
                                    message_size);
        if (code != STOCK_OK)
            return code;
    }
    return core_replay(e->state, record, len, message, message_size);
}

static void prefetch_record(void *context, const uint8_t *record, size_t len)
{
    const embedded *e = context;
    core_replay_prefetch(e->state, record, len);
}

/* Opens the cold store when retention is on or the folder has one (its
 * ids must keep answering even with retention turned off). */
static stock_code open_cold(embedded *e, const embedded_uri *uri, char *message,
                            size_t message_size)
{
    if (uri->retention_ms == 0 && !cold_exists(uri->path))
        return STOCK_OK;
    if (mkdir(uri->path, 0755) != 0 && errno != EEXIST) {
        message_set(message, message_size, "cannot create %s: %s", uri->path, strerror(errno));
        return STOCK_IO;
    }
    stock_code code = cold_open(uri->path, &e->cold, message, message_size);
    if (code != STOCK_OK)
        return code;
    e->cold_ops = (core_cold){e->cold, cold_move_put, cold_get};
    e->retention_us = (int64_t)uri->retention_ms * 1000;
    e->forget_us = (int64_t)uri->forget_ms * 1000;
    e->next_move_us = clock_now_us(CLOCK_MONOTONIC) + e->retention_us / EMBEDDED_MOVES_PER_WINDOW;
    return STOCK_OK;
}

/* Recovers the folder and starts the two threads. */
static stock_code start(embedded *e, const embedded_uri *uri, char *message,
                        size_t message_size)
{
    e->state = core_create();
    if (e->state == NULL)
        return STOCK_NOMEM;
    stock_code code = open_cold(e, uri, message, message_size);
    if (code != STOCK_OK)
        return code;
    journal_replay replay = {.context = e, .load = load_state, .clear = clear_state,
                             .apply = replay_record, .prefetch = prefetch_record};
    code = journal_open(uri->path, EMBEDDED_SYNC_FILES, &replay, &e->log_hook, &e->log,
                        message, message_size);
    if (code == STOCK_OK)
        code = pair_cold(e, 0, message, message_size);
    if (code != STOCK_OK)
        return code;
    core_get_stats(e->state, &e->opened);
    publish_core_stats(e);
    /* Relaxed durability syncs on a timer: one syncer is enough. */
    unsigned wanted = e->durability == STOCK_DURABILITY_SYNC ? EMBEDDED_SYNCERS : 1;
    while (e->syncers < wanted) {
        if (pthread_create(&e->syncer_threads[e->syncers], NULL, syncer_main, e) != 0) {
            stop_syncers(e);
            return STOCK_NOMEM;
        }
        e->syncers++;
    }
    if (pthread_create(&e->writer_thread, NULL, writer_main, e) != 0) {
        stop_syncers(e);
        return STOCK_NOMEM;
    }
    return STOCK_OK;
}

static stock_code embedded_open(const char *uri, const stock_config *config,
                                stock_t **store, char *message, size_t message_size)
{
    assert(uri != NULL && config != NULL && store != NULL);
    *store = NULL;
    int64_t started_us = clock_now_us(CLOCK_MONOTONIC);
    embedded_uri parsed;
    stock_code code = embedded_uri_parse(uri, config, &parsed, message, message_size);
    if (code != STOCK_OK)
        return code;
    embedded *e = calloc(1, sizeof *e);
    if (e == NULL)
        return STOCK_NOMEM;
    e->base.ops = &embedded_backend;
    e->durability = parsed.durability;
    e->sync_in_caller = config->sync_in_caller;
    e->snapshot_log_bytes = parsed.snapshot_log_bytes;
    e->log_hook = stock_log_hook_of(config);
    pthread_mutex_init(&e->queue_mutex, NULL);
    /* Both have timed waits (the writer's snapshot poll, the relaxed sync
     * timer): a monotonic clock, so that a wall clock set back or forth
     * neither stalls nor hurries them. */
    clock_cond_init_monotonic(&e->writer_cond);
    pthread_cond_init(&e->role_cond, NULL);
    pthread_mutex_init(&e->sync_mutex, NULL);
    clock_cond_init_monotonic(&e->sync_cond);
    pthread_cond_init(&e->idle_cond, NULL);
    code = start(e, &parsed, message, message_size);
    if (code != STOCK_OK) {
        bool said = message != NULL && message_size > 0 && message[0] != '\0';
        if (code == STOCK_NOMEM && !said)
            message_set(message, message_size, "out of memory opening %s", parsed.path);
        destroy(e);
        return code;
    }
    e->open_ms = (uint64_t)(clock_now_us(CLOCK_MONOTONIC) - started_us) / 1000;
    *store = &e->base;
    return STOCK_OK;
}

/* The io_uring is made on the first call, before any submit (stock.h). */
static int embedded_completion_fd(stock_t *store)
{
    embedded *e = from_store(store);
    if (e->durability != STOCK_DURABILITY_SYNC)
        return -1;
    pthread_mutex_lock(&e->sync_mutex);
    int unavailable = 0;
    if (e->uring == NULL) {
        e->uring = uring_sync_create();
        unavailable = e->uring == NULL ? errno : 0;
    }
    int fd = e->uring == NULL ? -1 : uring_sync_fd(e->uring);
    pthread_mutex_unlock(&e->sync_mutex);
    /* The embedder sees the fallback's cost only as latency: say why. */
    if (unavailable != 0)
        stock_log(&e->log_hook, STOCK_LOG_NOTICE, "io_uring is unavailable (%s): each sync "
                  "waits in the thread that submits", strerror(unavailable));
    return fd;
}

static void embedded_process_completions(stock_t *store)
{
    embedded *e = from_store(store);
    if (e->uring == NULL)
        return;
    pthread_mutex_lock(&e->sync_mutex);
    uring_reap(e, false);
    pthread_mutex_unlock(&e->sync_mutex);
}

const stock_backend_ops embedded_backend = {
    .name = "embedded",
    .holds = true,
    .accepts = embedded_uri_accepts,
    .open = embedded_open,
    .submit = embedded_submit,
    .close = embedded_close,
    .get_stats = embedded_get_stats,
    .list = embedded_list,
    .completion_fd = embedded_completion_fd,
    .process_completions = embedded_process_completions,
    .get_health = embedded_get_health,
    .backup = embedded_backup,
};
