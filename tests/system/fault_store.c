/*
 * fault_store.c -- injected faults against the embedded engine, in-process
 * (tests/suites/80-disk-faults.sh and 81-malloc-faults.sh run it). It must
 * run under `fiu-run -x` (libfiu's POSIX preload library): it arms the
 * preload's failure points itself through libfiu's control API, counting
 * the calls so that a fault lands at an exact call.
 *
 *   fault_store write DIR POINT ERRNO AT [relaxed] [once]
 *       Opens DIR, stocks four SKUs, then runs a workload of deductions,
 *       two-line orders, refunds and restocks (each with its id) in batches
 *       of 8, with POINT (e.g. posix/io/sync/fdatasync) failing with ERRNO
 *       from call AT on (counted from the first batch; AT is "first",
 *       "middle", "random:SEED" or a number; middle and random are placed
 *       within the calls a clean run of the same workload makes, counted
 *       first in DIR/count; with "once" only call AT fails, as an
 *       fdatasync whose EIO the kernel reports once). Every op must be acknowledged (OK) until one
 *       fails with STOCK_IO, and every op after that must be STOCK_IO too
 *       (the store fails closed); stock_close must then say STOCK_IO. The
 *       fault is lifted and the store reopened: see verify below.
 *   fault_store read DIR POINT ERRNO AT
 *       Makes a store with snapshots and log after them, closes it, and
 *       opens it with POINT failing from call AT on (counted from the open):
 *       the open must fail with STOCK_IO (STOCK_NOMEM for posix/mm/mmap,
 *       which the state's memory uses too) and a message, and leave every
 *       file of the folder as it was; once the fault is lifted the open
 *       must succeed and verify must hold. POINT libstock/readdir fails
 *       the listing of the data folder (see __wrap_readdir64).
 *   fault_store nomem DIR [once]
 *       SQLite's out-of-memory loop: for N = 1, 2, ... opens a fresh store
 *       and runs a small workload with the Nth allocation of the library
 *       (malloc, calloc, realloc) failing, until a run makes fewer than N
 *       allocations. The Nth and every later allocation fail (memory
 *       stays short), or with "once" the Nth only. Each op is OK or STOCK_NOMEM (a store whose open failed must say
 *       STOCK_NOMEM or STOCK_IO); then the store is closed and reopened
 *       without the fault, and verify must hold, with every op that was
 *       refused with NOMEM absent (its retry is a fresh OK).
 *   fault_store move-nomem DIR
 *       Opens DIR with retention=FAULT_WINDOW_MS, deducts a line and holds
 *       a unit (the hold wakes the writer), then fails the library's next
 *       allocation once while no op runs: the next move's begin
 *       (core_retain_begin) is the one to fail, with a warning. The line
 *       must then leave memory (stock_stats.lines 0) within
 *       FAULT_MOVE_WAIT_MS: the failed move was abandoned in the cold store
 *       and the next one ran.
 *
 * verify: every op is retried with its id, in the original order. An
 * acknowledged op must answer STOCK_REPLAY with its original result (it was
 * durable); one that failed with STOCK_IO must answer OK or REPLAY (a failed
 * fdatasync leaves its outcome unknown: the records may have reached the
 * log); one refused with NOMEM must answer OK (it recorded nothing). Then
 * each SKU's totals must equal every op applied exactly once (I2, I4, I5),
 * and each line its quantity and refund.
 *
 * Exit status 0 when every check held; 1 with a message on stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <fiu-control.h>
/* fiu.h is all stubs unless FIU_ENABLE is defined. */
#define FIU_ENABLE 1
#include <fiu.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stock.h"

#define FAULT_SKUS 4
#define FAULT_LEVEL 1000000000LL
#define FAULT_BATCH_OPS 8
#define FAULT_BATCHES 48
#define FAULT_NOMEM_BATCHES 40
/* When the fault has not hit by the end of the workload (a call made by a
 * background thread: the snapshot's rotation, the relaxed sync timer), up
 * to this many more batches run, FAULT_LATE_PAUSE_MS apart, to give it
 * time. */
#define FAULT_BATCHES_MAX 96
#define FAULT_LATE_PAUSE_MS 20
#define FAULT_OPS_MAX (FAULT_BATCHES_MAX * FAULT_BATCH_OPS)
#define FAULT_ID_BYTES 48
#define FAULT_SNAPSHOT_BYTES 4096
#define FAULT_NOMEM_RUNS_MAX 20000
#define FAULT_FILES_MAX 64
#define FAULT_PATH_MAX 512
#define FAULT_RELAXED_PAUSE_MS 25
/* move-nomem: the retention window, a move every quarter of it, and how
 * long the line may take to leave memory after the failed move: tens of
 * windows, for a loaded machine. */
#define FAULT_WINDOW_MS 200
#define FAULT_MOVE_WAIT_MS 10000
#define FAULT_READ_PAUSE_MS 2
#define FAULT_HOLD_TTL_MS 600000

static void die(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("fault_store: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    exit(1);
}

/* ------------------------------------------------------------ the fault */

/* The armed point fails with fault_errno from call fault_at on (counted
 * while armed), until disarmed: a full disk stays full. */
static atomic_bool fault_armed;
static atomic_long fault_calls;
static long fault_at;
static bool sync_fault;   /* fdatasync in sync durability: see run_batches */
static bool fault_once;   /* only call fault_at fails (a transient fault) */
static int fault_errno;
static atomic_bool fault_fired;
/* A batch of run_batches waits for its done, and the fault hit meanwhile:
 * only then can the failed call be the fdatasync that covered it. One
 * that hits after its done (the rotation of a snapshot, which waits for
 * the batch's group to complete) may still land before the submitting
 * thread looks at fault_fired. */
static atomic_bool batch_pending;
static atomic_bool fault_fired_pending;

static int fail_from_call(const char *name, int *failnum, void **failinfo,
                          unsigned int *flags)
{
    (void)name, (void)failnum, (void)failinfo, (void)flags;
    if (!atomic_load(&fault_armed))
        return 0;
    long call = atomic_fetch_add(&fault_calls, 1) + 1;
    if (fault_at <= 0 || call < fault_at || (fault_once && call > fault_at))
        return 0;
    atomic_store(&fault_fired, true);
    if (atomic_load(&batch_pending))
        atomic_store(&fault_fired_pending, true);
    return 1;
}

/* Arms point to fail with error from call `at` on; at 0 only counts. */
static void arm(const char *point, int error, long at)
{
    fault_at = at;
    fault_errno = error;
    atomic_store(&fault_calls, 0);
    atomic_store(&fault_fired, false);
    if (fiu_enable_external(point, 1, (void *)(intptr_t)error, 0, fail_from_call) != 0)
        die("cannot enable the failure point %s", point);
    atomic_store(&fault_armed, true);
}

static void disarm(const char *point)
{
    atomic_store(&fault_armed, false);
    fiu_disable(point);
}

/* The library's allocations (linked with --wrap=malloc,calloc,realloc: see
 * the Makefile) pass this failure point first. Not the preload's
 * libc/mm/malloc: that one cannot run under ASan, and it would also fail
 * the C library's own allocations, which are not the library's to handle. */
#define FAULT_ALLOC_POINT "libstock/alloc"

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *old, size_t size);

void *__wrap_malloc(size_t size)
{
    if (fiu_fail(FAULT_ALLOC_POINT)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(size);
}

void *__wrap_calloc(size_t count, size_t size)
{
    if (fiu_fail(FAULT_ALLOC_POINT)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(count, size);
}

void *__wrap_realloc(void *old, size_t size)
{
    if (fiu_fail(FAULT_ALLOC_POINT)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realloc(old, size);
}

/* The data folder's listing (linked with --wrap=readdir64: the library is
 * built with 64-bit file offsets, so it calls readdir64, which the
 * preload's posix/io/dir/readdir does not see). A failing readdir answers
 * NULL with errno set, as the C library does on an error. */
#define FAULT_READDIR_POINT "libstock/readdir"

struct dirent64 *__real_readdir64(DIR *dir);

struct dirent64 *__wrap_readdir64(DIR *dir)
{
    if (fiu_fail(FAULT_READDIR_POINT)) {
        errno = (int)(intptr_t)fiu_failinfo();
        return NULL;
    }
    return __real_readdir64(dir);
}

/* ----------------------------------------------------------- the workload */

typedef enum outcome { PLANNED, ACKED, UNKNOWN, REFUSED } outcome;

typedef struct planned {
    stock_op op;
    stock_order_line lines[2];
    char id[FAULT_ID_BYTES], line_ids[2][FAULT_ID_BYTES], ref[FAULT_ID_BYTES];
    outcome result;
    int64_t available, line_available[2];
} planned;

typedef struct workload {
    planned ops[FAULT_OPS_MAX];
    size_t count;
    char skus[FAULT_SKUS][16];
    size_t refundable[FAULT_OPS_MAX];   /* acked deductions not refunded yet */
    size_t refundable_count;
    bool failed_closed;                 /* an op failed with IO or NOMEM */
} workload;

static stock_id id_of(const char *text)
{
    return stock_id_from_cstr(text);
}

/* Plans op number n of the mix: deduct, order, refund, restock. */
static void plan(workload *w, size_t n)
{
    planned *p = &w->ops[w->count++];
    memset(p, 0, sizeof *p);
    const char *sku = w->skus[n % FAULT_SKUS];
    switch (n % 4) {
    case 2:
        if (w->refundable_count > 0) {
            planned *line = &w->ops[w->refundable[--w->refundable_count]];
            snprintf(p->id, sizeof p->id, "R%zu", n);
            memcpy(p->ref, line->id, sizeof p->ref);
            p->op = (stock_op){.type = STOCK_OP_REFUND, .id = id_of(p->id),
                               .line = id_of(p->ref), .amount = 1};
            return;
        }
        /* nothing to refund yet: a deduction instead */
        __attribute__((fallthrough));
    case 0:
        snprintf(p->id, sizeof p->id, "L%zu", n);
        p->op = (stock_op){.type = STOCK_OP_DEDUCT, .id = id_of(p->id),
                           .sku = id_of(sku), .amount = 2 + (int64_t)(n % 5)};
        return;
    case 1:
        snprintf(p->id, sizeof p->id, "O%zu", n);
        for (int i = 0; i < 2; i++) {
            snprintf(p->line_ids[i], sizeof p->line_ids[i], "O%zu.%d", n, i);
            p->lines[i] = (stock_order_line){id_of(p->line_ids[i]),
                                             id_of(w->skus[(n + (size_t)i) % FAULT_SKUS]),
                                             1 + i, 0};
        }
        p->op = (stock_op){.type = STOCK_OP_ORDER, .id = id_of(p->id),
                           .lines = p->lines, .line_count = 2};
        return;
    default:
        snprintf(p->id, sizeof p->id, "A%zu", n);
        p->op = (stock_op){.type = STOCK_OP_ADD, .id = id_of(p->id),
                           .sku = id_of(sku), .amount = 5};
        return;
    }
}

/* Records what the store answered for a planned op in its first run. */
static void record(workload *w, planned *p, size_t index, bool nomem_allowed)
{
    stock_code code = p->op.code;
    if (code == STOCK_OK) {
        if (w->failed_closed)
            die("op %s acknowledged after the store had failed", p->id);
        p->result = ACKED;
        p->available = p->op.available;
        for (uint32_t i = 0; i < p->op.line_count; i++)
            p->line_available[i] = p->lines[i].available;
        if (p->op.type == STOCK_OP_DEDUCT)
            w->refundable[w->refundable_count++] = index;
    } else if (code == STOCK_IO) {
        p->result = UNKNOWN;
        w->failed_closed = true;
    } else if (code == STOCK_NOMEM && nomem_allowed) {
        p->result = REFUSED;
        if (p->op.message[0] == '\0')
            die("op %s: NOMEM without a message", p->id);
    } else {
        die("op %s: %s %s (expected OK, or IOERR once the fault hit)", p->id,
            stock_code_name(code), p->op.message);
    }
    /* The reason must be the failed call's own, not a later symptom. */
    if (code == STOCK_IO && fault_errno != 0 && fault_errno != ENOMEM &&
        strstr(p->op.message, strerror(fault_errno)) == NULL)
        die("op %s: IOERR \"%s\" does not say \"%s\"", p->id, p->op.message,
            strerror(fault_errno));
    if (code == STOCK_IO && p->op.message[0] == '\0')
        die("op %s: IOERR without a message", p->id);
}

/* A batch whose done a thread waits for (stock_execute with batch_pending
 * cleared by done itself, before the waiter wakes). */
typedef struct waited_batch {
    stock_batch batch;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    bool done;
} waited_batch;

static void waited_done(stock_batch *batch)
{
    waited_batch *waited = batch->user;
    atomic_store(&batch_pending, false);
    pthread_mutex_lock(&waited->mutex);
    waited->done = true;
    pthread_cond_signal(&waited->cond);
    pthread_mutex_unlock(&waited->mutex);
}

static void execute_pending(stock_t *store, stock_op *ops, size_t count)
{
    waited_batch waited = {.batch = {.ops = ops, .count = count, .done = waited_done},
                           .mutex = PTHREAD_MUTEX_INITIALIZER,
                           .cond = PTHREAD_COND_INITIALIZER};
    waited.batch.user = &waited;
    atomic_store(&fault_fired_pending, false);
    atomic_store(&batch_pending, true);
    stock_submit(store, &waited.batch);
    pthread_mutex_lock(&waited.mutex);
    while (!waited.done)
        pthread_cond_wait(&waited.cond, &waited.mutex);
    pthread_mutex_unlock(&waited.mutex);
}

/* Runs batches [from, to) of the workload through store, pause_ms apart. */
static void run_batches(workload *w, stock_t *store, size_t from, size_t to,
                        bool nomem_allowed, unsigned pause_ms)
{
    for (size_t b = from; b < to; b++) {
        if (pause_ms > 0)
            usleep(pause_ms * 1000u);
        size_t first = w->count;
        for (size_t i = 0; i < FAULT_BATCH_OPS; i++)
            plan(w, b * FAULT_BATCH_OPS + i);
        stock_op ops[FAULT_BATCH_OPS];
        for (size_t i = 0; i < FAULT_BATCH_OPS; i++)
            ops[i] = w->ops[first + i].op;
        bool fired_before = atomic_load(&fault_fired);
        execute_pending(store, ops, FAULT_BATCH_OPS);
        /* One batch in flight at a time: in sync durability, a failed
         * fdatasync before its done was the one that covered it, and no
         * later sync may make it durable (fsync never retried and
         * believed). */
        bool sync_failed_under = sync_fault && !fired_before &&
                                 atomic_load(&fault_fired_pending);
        for (size_t i = 0; i < FAULT_BATCH_OPS; i++) {
            planned *p = &w->ops[first + i];
            p->op = ops[i];
            if (sync_failed_under && ops[i].code == STOCK_OK)
                die("op %s acknowledged although the fdatasync covering it failed",
                    p->id);
            record(w, p, first + i, nomem_allowed);
        }
    }
}

/* ------------------------------------------------------------- the store */

/* Warnings and errors the store logged: a fault it carries on through
 * (a failed snapshot) must at least be told. */
static atomic_int warnings;

static void hook(void *user, stock_log_level level, const char *message)
{
    (void)user;
    if (level <= STOCK_LOG_WARNING)
        atomic_fetch_add(&warnings, 1);
    if (getenv("FAULT_VERBOSE") != NULL)
        fprintf(stderr, "  log %d: %s\n", (int)level, message);
}

static stock_code open_store(const char *dir, bool relaxed, stock_t **store,
                             char *message)
{
    stock_config config = {.log = hook};
    config.durability = relaxed ? STOCK_DURABILITY_RELAXED : STOCK_DURABILITY_SYNC;
    config.snapshot_log_bytes = FAULT_SNAPSHOT_BYTES;
    return stock_open(dir, &config, store, message);
}

static stock_t *open_or_die(const char *dir, bool relaxed)
{
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX];
    stock_code code = open_store(dir, relaxed, &store, message);
    if (code != STOCK_OK)
        die("cannot open %s: %s %s", dir, stock_code_name(code), message);
    return store;
}

static void stock_skus(workload *w, stock_t *store)
{
    for (int i = 0; i < FAULT_SKUS; i++) {
        snprintf(w->skus[i], sizeof w->skus[i], "S%d", i);
        char message[STOCK_MESSAGE_MAX];
        stock_code code = stock_set(store, w->skus[i], FAULT_LEVEL, NULL, NULL, message);
        if (code != STOCK_OK)
            die("cannot stock %s: %s %s", w->skus[i], stock_code_name(code), message);
    }
}

/* Retries one op in the reopened store (see verify at the top). */
static void retry(stock_t *store, planned *p)
{
    stock_op op = p->op;
    stock_order_line lines[2];
    memcpy(lines, p->lines, sizeof lines);
    op.lines = op.line_count > 0 ? lines : NULL;
    if (stock_execute(store, &op, 1) != STOCK_OK)
        die("stock_execute refused a retry");
    bool same = op.type == STOCK_OP_ORDER || op.available == p->available;
    for (uint32_t i = 0; i < op.line_count; i++)
        same = same && lines[i].available == p->line_available[i];
    switch (p->result) {
    case ACKED:
        if (op.code != STOCK_REPLAY || !same)
            die("acknowledged op %s after reopen: %s %s (expected REPLAY with "
                "available %" PRId64 ", got %" PRId64 ")", p->id,
                stock_code_name(op.code), op.message, p->available, op.available);
        break;
    case UNKNOWN:
    case PLANNED:
        if (!stock_code_succeeded(op.code))
            die("op %s of unknown outcome, retried: %s %s", p->id,
                stock_code_name(op.code), op.message);
        break;
    case REFUSED:
        if (op.code != STOCK_OK)
            die("op %s was refused with NOMEM, yet its retry says %s: it was "
                "half applied", p->id, stock_code_name(op.code));
        break;
    }
    /* From now on the op is acknowledged, with the result its retry got. */
    p->result = ACKED;
    p->available = op.available;
    for (uint32_t i = 0; i < op.line_count; i++)
        p->line_available[i] = lines[i].available;
}

/* Every op retried, then the totals of every SKU and every line checked
 * against the workload applied exactly once. */
static void verify(workload *w, stock_t *store)
{
    for (size_t i = 0; i < w->count; i++)
        retry(store, &w->ops[i]);
    int64_t adjusted[FAULT_SKUS], deducted[FAULT_SKUS] = {0}, refunded[FAULT_SKUS] = {0};
    for (int s = 0; s < FAULT_SKUS; s++)
        adjusted[s] = FAULT_LEVEL;
    for (size_t i = 0; i < w->count; i++) {
        const stock_op *op = &w->ops[i].op;
        const char *sku = op->sku.ptr;
        if (op->type == STOCK_OP_REFUND) {
            stock_line_info line;
            char message[STOCK_MESSAGE_MAX];
            if (stock_line(store, w->ops[i].ref, &line, message) != STOCK_OK)
                die("refunded line %s is missing", w->ops[i].ref);
            sku = NULL;
            refunded[line.sku[1] - '0'] += op->amount;
        }
        if (op->type == STOCK_OP_ORDER)
            for (int l = 0; l < 2; l++)
                deducted[op->lines[l].sku.ptr[1] - '0'] += op->lines[l].qty;
        if (op->type == STOCK_OP_DEDUCT)
            deducted[sku[1] - '0'] += op->amount;
        if (op->type == STOCK_OP_ADD)
            adjusted[sku[1] - '0'] += op->amount;
    }
    for (int s = 0; s < FAULT_SKUS; s++) {
        stock_sku_info info;
        char message[STOCK_MESSAGE_MAX];
        if (stock_get(store, w->skus[s], &info, message) != STOCK_OK)
            die("SKU %s is missing after reopen", w->skus[s]);
        int64_t available = adjusted[s] - deducted[s] + refunded[s];
        if (info.adjusted != adjusted[s] || info.deducted != deducted[s] ||
            info.refunded != refunded[s] || info.available != available)
            die("SKU %s: available %" PRId64 " adjusted %" PRId64 " deducted %" PRId64
                " refunded %" PRId64 ", expected %" PRId64 " %" PRId64 " %" PRId64
                " %" PRId64 " (every op once)", w->skus[s], info.available,
                info.adjusted, info.deducted, info.refunded, available,
                adjusted[s], deducted[s], refunded[s]);
    }
}

/* --------------------------------------------------------------- modes */

static long parse_at(const char *at, long calls)
{
    if (strcmp(at, "first") == 0)
        return 1;
    if (strcmp(at, "middle") == 0)
        return calls / 2 > 0 ? calls / 2 : 1;
    if (strncmp(at, "random:", 7) == 0) {
        srandom((unsigned)strtoul(at + 7, NULL, 10));
        return 1 + random() % (calls > 1 ? calls : 1);
    }
    char *end;
    long n = strtol(at, &end, 10);
    if (*end != '\0' || n < 1)
        die("AT must be first, middle, random:SEED or a call number: %s", at);
    return n;
}

static void path_join(char *out, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, FAULT_PATH_MAX, "%s/%s", dir, name) >= FAULT_PATH_MAX)
        die("path too long: %s/%s", dir, name);
}

/* Relaxed durability syncs on a timer (STOCK_RELAXED_SYNC_MS / 4): paced
 * batches give it several syncs to fail within the workload. */
static unsigned pause_ms(bool relaxed)
{
    return relaxed ? FAULT_RELAXED_PAUSE_MS : 0;
}

/* The calls a clean run of the write workload makes to point. */
static long count_write_calls(const char *dir, const char *point, bool relaxed)
{
    static workload w;
    memset(&w, 0, sizeof w);
    stock_t *store = open_or_die(dir, relaxed);
    stock_skus(&w, store);
    arm(point, 0, 0);
    run_batches(&w, store, 0, FAULT_BATCHES, false, pause_ms(relaxed));
    long calls = atomic_load(&fault_calls);
    disarm(point);
    if (stock_close(store) != STOCK_OK)
        die("a clean run failed to close");
    return calls;
}

static int mode_write(const char *dir, const char *point, int error,
                      const char *at, bool relaxed)
{
    char count_dir[FAULT_PATH_MAX], store_dir[FAULT_PATH_MAX];
    path_join(count_dir, dir, "count");
    path_join(store_dir, dir, "store");
    long calls = count_write_calls(count_dir, point, relaxed);
    long target = parse_at(at, calls);
    static workload w;
    stock_t *store = open_or_die(store_dir, relaxed);
    stock_skus(&w, store);
    atomic_store(&warnings, 0);
    sync_fault = !relaxed && strcmp(point, "posix/io/sync/fdatasync") == 0;
    arm(point, error, target);
    run_batches(&w, store, 0, FAULT_BATCHES, false, pause_ms(relaxed));
    for (size_t b = FAULT_BATCHES; b < FAULT_BATCHES_MAX && target <= calls &&
                                   !atomic_load(&fault_fired); b++)
        run_batches(&w, store, b, b + 1, false, FAULT_LATE_PAUSE_MS);
    disarm(point);
    bool fired = atomic_load(&fault_fired);
    stock_code closed = stock_close(store);
    if (!fired && (closed != STOCK_OK || w.failed_closed))
        die("no fault hit, yet the store failed");
    if (!fired && target <= calls)
        die("the fault at call %ld of %ld never hit", target, calls);
    if (w.failed_closed && closed != STOCK_IO)
        die("ops failed with IOERR but stock_close said %s", stock_code_name(closed));
    /* A fault hit either broke the store (IOERR from close at least) or
     * was one it carries on through (a snapshot), with a warning. */
    if (fired && closed != STOCK_IO && atomic_load(&warnings) == 0)
        die("the fault hit (call %ld of %ld), nothing failed and nothing was "
            "logged", target, calls);
    size_t acked = 0, unknown = 0;
    for (size_t i = 0; i < w.count; i++)
        acked += w.ops[i].result == ACKED, unknown += w.ops[i].result == UNKNOWN;
    store = open_or_die(store_dir, relaxed);
    verify(&w, store);
    if (stock_close(store) != STOCK_OK)
        die("closing the reopened store failed");
    printf("write %s errno %d at call %ld of %ld: %zu acknowledged, %zu IOERR, "
           "close %s, %d warnings; reopened: all acknowledged present, totals exact\n",
           point, error, target, calls, acked, unknown, stock_code_name(closed),
           atomic_load(&warnings));
    return 0;
}

/* A listing of the folder: name, size and modification time of each file. */
typedef struct folder_state {
    char names[FAULT_FILES_MAX][256];
    struct stat info[FAULT_FILES_MAX];
    size_t count;
} folder_state;

static void folder_read(const char *dir, folder_state *state)
{
    memset(state, 0, sizeof *state);
    DIR *d = opendir(dir);
    if (d == NULL)
        die("cannot list %s", dir);
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        if (state->count == FAULT_FILES_MAX)
            die("too many files in %s", dir);
        memcpy(state->names[state->count], entry->d_name, sizeof state->names[0]);
        char path[FAULT_PATH_MAX];
        path_join(path, dir, entry->d_name);
        if (stat(path, &state->info[state->count]) != 0)
            die("cannot stat %s", path);
        state->count++;
    }
    closedir(d);
}

static void folder_same(const folder_state *a, const folder_state *b)
{
    if (a->count != b->count)
        die("a failed open changed the folder: %zu files before, %zu after",
            a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        size_t j = 0;
        while (j < b->count && strcmp(a->names[i], b->names[j]) != 0)
            j++;
        if (j == b->count)
            die("a failed open removed or renamed %s", a->names[i]);
        if (a->info[i].st_size != b->info[j].st_size ||
            a->info[i].st_mtim.tv_sec != b->info[j].st_mtim.tv_sec ||
            a->info[i].st_mtim.tv_nsec != b->info[j].st_mtim.tv_nsec)
            die("a failed open changed %s", a->names[i]);
    }
}

static int mode_read(const char *dir, const char *point, int error, const char *at)
{
    static workload w;
    stock_t *store = open_or_die(dir, false);
    stock_skus(&w, store);
    run_batches(&w, store, 0, FAULT_BATCHES / 2, false, 0);
    if (stock_close(store) != STOCK_OK)
        die("closing the prepared store failed");
    /* Append records after the last snapshot, so recovery replays log too. */
    store = open_or_die(dir, false);
    run_batches(&w, store, FAULT_BATCHES / 2, FAULT_BATCHES, false, 0);
    if (stock_close(store) != STOCK_OK)
        die("closing the prepared store failed");
    /* Count the calls a clean open makes, then fail one of them. */
    store = NULL;
    char message[STOCK_MESSAGE_MAX];
    arm(point, 0, 0);
    stock_code code = open_store(dir, false, &store, message);
    long calls = atomic_load(&fault_calls);
    disarm(point);
    if (code != STOCK_OK || stock_close(store) != STOCK_OK)
        die("a clean open failed: %s %s", stock_code_name(code), message);
    if (calls == 0)
        die("a clean open makes no call to %s", point);
    long target = parse_at(at, calls);
    folder_state before, after;
    folder_read(dir, &before);
    bool snapshot = false;
    for (size_t i = 0; i < before.count; i++)
        snapshot = snapshot || strncmp(before.names[i], "snap-", 5) == 0;
    if (!snapshot)
        die("the prepared store has no snapshot");
    arm(point, error, target);
    store = NULL;
    code = open_store(dir, false, &store, message);
    disarm(point);
    bool mmap_point = strcmp(point, "posix/mm/mmap") == 0;
    if (code == STOCK_OK)
        die("open with %s failing at call %ld of %ld succeeded", point, target, calls);
    if (store != NULL)
        die("a failed open returned a store");
    if (code != STOCK_IO && !(mmap_point && code == STOCK_NOMEM))
        die("open with %s failing: %s %s (expected IOERR)", point,
            stock_code_name(code), message);
    if (message[0] == '\0')
        die("a failed open said nothing");
    folder_read(dir, &after);
    folder_same(&before, &after);
    store = open_or_die(dir, false);
    verify(&w, store);
    if (stock_close(store) != STOCK_OK)
        die("closing the reopened store failed");
    printf("read %s errno %d at call %ld of %ld: open %s \"%s\", folder unchanged; "
           "reopened: all acknowledged present, totals exact\n", point, error,
           target, calls, stock_code_name(code), message);
    return 0;
}

/* What the out-of-memory loop saw, for its summary. */
static long nomem_open_refusals, nomem_op_refusals, nomem_broken;

/* One run of the out-of-memory loop with allocation n failing. Returns
 * whether the fault hit. */
static bool nomem_run(const char *dir, long n)
{
    static workload w;
    memset(&w, 0, sizeof w);
    stock_t *store = open_or_die(dir, false);
    stock_skus(&w, store);
    if (stock_close(store) != STOCK_OK)
        die("closing the prepared store failed");
    char message[STOCK_MESSAGE_MAX] = "";
    store = NULL;
    arm(FAULT_ALLOC_POINT, ENOMEM, n);
    stock_code code = open_store(dir, false, &store, message);
    if (code == STOCK_OK)
        run_batches(&w, store, 0, FAULT_NOMEM_BATCHES, true, 0);
    disarm(FAULT_ALLOC_POINT);
    bool fired = atomic_load(&fault_fired);
    if (code != STOCK_OK) {
        if (!fired || (code != STOCK_NOMEM && code != STOCK_IO) || message[0] == '\0')
            die("allocation %ld: open said %s \"%s\"", n, stock_code_name(code), message);
        nomem_open_refusals++;
    } else {
        for (size_t i = 0; i < w.count; i++)
            nomem_op_refusals += w.ops[i].result == REFUSED;
        nomem_broken += w.failed_closed;
        /* In memory first: an op refused with NOMEM that changed the state
         * without logging it would vanish at the reopen. */
        if (!w.failed_closed)
            verify(&w, store);
        stock_code closed = stock_close(store);
        if (closed != STOCK_OK && !(closed == STOCK_IO && w.failed_closed))
            die("allocation %ld: close said %s", n, stock_code_name(closed));
    }
    store = open_or_die(dir, false);
    verify(&w, store);
    if (stock_close(store) != STOCK_OK)
        die("closing the reopened store failed");
    return fired;
}

static int mode_nomem(const char *dir, bool once)
{
    fault_once = once;
    long n = 1;
    for (; n <= FAULT_NOMEM_RUNS_MAX; n++) {
        char run_dir[FAULT_PATH_MAX];
        char name[32];
        snprintf(name, sizeof name, "n%ld", n);
        path_join(run_dir, dir, name);
        bool fired = nomem_run(run_dir, n);
        char command[FAULT_PATH_MAX + 16];
        snprintf(command, sizeof command, "rm -rf '%s'", run_dir);
        if (system(command) != 0)
            die("cannot remove %s", run_dir);
        if (!fired)
            break;
    }
    if (n == 1)
        die("the workload made no allocation through the failure point");
    if (n > FAULT_NOMEM_RUNS_MAX)
        die("the workload still allocates after %d runs", FAULT_NOMEM_RUNS_MAX);
    printf("nomem%s: allocations 1..%ld each failed in turn: %ld opens refused, "
           "%ld ops NOMEM, %ld stores broken (IOERR); nothing half applied, "
           "every reopen exact\n", once ? " (once)" : "", n - 1, nomem_open_refusals, nomem_op_refusals,
           nomem_broken);
    return 0;
}

/* Waits FAULT_READ_PAUSE_MS, making no op: an op allocates (its thaw),
 * and the allocation armed is to be a move's. */
static void pause_idle(void)
{
    usleep(FAULT_READ_PAUSE_MS * 1000);
}

static int mode_move_nomem(const char *dir)
{
    char uri[FAULT_PATH_MAX + 64], message[STOCK_MESSAGE_MAX];
    snprintf(uri, sizeof uri, "file:%s?retention=%dms", dir, FAULT_WINDOW_MS);
    stock_t *store = open_or_die(uri, false);
    int64_t available;
    /* The hold outstanding wakes the writer at least every second without
     * an op (docs/engine.md), and moves begin at its wakes. */
    if (stock_set(store, "S", FAULT_LEVEL, NULL, NULL, message) != STOCK_OK ||
        stock_deduct(store, "first", "S", 1, &available, message) != STOCK_OK ||
        stock_hold(store, "wake", "S", 1, FAULT_HOLD_TTL_MS, &available, message) != STOCK_OK)
        die("cannot stock S, deduct and hold: %s", message);
    fault_once = true;
    atomic_store(&warnings, 0);
    arm(FAULT_ALLOC_POINT, ENOMEM, 1);
    for (int waited = 0; !atomic_load(&fault_fired); waited += FAULT_READ_PAUSE_MS) {
        if (waited > FAULT_MOVE_WAIT_MS)
            die("no allocation in %d ms: no move began", FAULT_MOVE_WAIT_MS);
        pause_idle();
    }
    disarm(FAULT_ALLOC_POINT);
    stock_stats stats;
    int waited = 0;
    for (;; waited += FAULT_READ_PAUSE_MS) {
        stock_get_stats(store, &stats);
        if (stats.lines == 0)
            break;
        if (waited > FAULT_MOVE_WAIT_MS)
            die("the line is still in memory %d ms after a move failed for want of "
                "memory: no move ran since", FAULT_MOVE_WAIT_MS);
        pause_idle();
    }
    if (atomic_load(&warnings) == 0)
        die("the failed allocation was not a move's (no warning)");
    if (stock_close(store) != STOCK_OK)
        die("close failed");
    printf("move-nomem: a move whose begin ran out of memory was abandoned; the line left "
           "memory %d ms later\n", waited);
    return 0;
}

int main(int argc, char **argv)
{
    if (fiu_init(0) != 0)
        die("fiu_init failed");
    if (argc >= 6 && strcmp(argv[1], "write") == 0) {
        bool relaxed = false;
        for (int i = 6; i < argc; i++) {
            if (strcmp(argv[i], "relaxed") == 0)
                relaxed = true;
            else if (strcmp(argv[i], "once") == 0)
                fault_once = true;
            else
                die("unknown option %s", argv[i]);
        }
        return mode_write(argv[2], argv[3], atoi(argv[4]), argv[5], relaxed);
    }
    if (argc == 6 && strcmp(argv[1], "read") == 0)
        return mode_read(argv[2], argv[3], atoi(argv[4]), argv[5]);
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "nomem") == 0)
        return mode_nomem(argv[2], argc == 4 && strcmp(argv[3], "once") == 0);
    if (argc == 3 && strcmp(argv[1], "move-nomem") == 0)
        return mode_move_nomem(argv[2]);
    fprintf(stderr, "usage: fault_store write DIR POINT ERRNO AT [relaxed] [once]\n"
                    "       fault_store read DIR POINT ERRNO AT\n"
                    "       fault_store nomem DIR [once]\n"
                    "       fault_store move-nomem DIR\n"
                    "(run under fiu-run -x; AT: first, middle, random:SEED or N)\n");
    return 2;
}
