/*
 * bench_engine.c -- measures the embedded engine and its state machine.
 *
 *   bench_engine [--lines-max N] [--ops N] [--lib-ops N] [--in-flight N]
 *                [--skus N] [--only core|library|recovery] [--dir FOLDER]
 *   bench_engine -h|--help       (usage on stdout, status 0)
 *
 * Part 1, src/core alone (one thread, no I/O): core_apply and core_replay
 * cost per deduction on 1 SKU (hot) and --skus SKUs (uniform, default
 * 100,000; up to 10,000,000), --ops of each (default 2,000,000); then, at 1M, 10M ... up to --lines-max lines
 * (default 10,000,000; --lines-max itself too when it is not a power of
 * ten), bytes of memory per line (core_stats capacity and process RSS
 * delta), the slowest batch while filling, and snapshot save/load time.
 * Part 2, through the library (stock_open of a folder under --dir, default
 * ".", so on disk: a tmpfs would make fdatasync free): ops/s of the hot,
 * uniform, cart and mixed workloads (docs/stockbench.md), durable and relaxed,
 * --lib-ops each (default 1,000,000), --in-flight batches of 1,000 in
 * flight (default 16: a server has many connections' batches queued at
 * once; 4 left the writer idle between groups); then memory per line and
 * recovery time (stock_close, stock_open) at 1M, 10M ... lines
 * (--only recovery runs just that part).
 * Each measurement runs in its own child process. Wall-clock figures are
 * printed with the CPU time beside them: the machine may be shared.
 * Line ids are "L" + 12 digits (13 bytes), SKU ids "SKU-" + 6 digits (8
 * digits when a run has more than a million SKUs).
 */
#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

#define BATCH_OPS 1000
#define ID_BYTES 16
#define UNIFORM_SKUS 100000
#define SKUS_MAX 10000000u
#define LINES_MAX_DEFAULT 10000000u
#define LINES_FIRST 1000000u
#define OPS_DEFAULT 2000000u
#define LIB_OPS_DEFAULT 1000000u
#define SKU_STOCK_HOT INT64_C(1000000000000)
#define SKU_STOCK_UNIFORM INT64_C(1000000000)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this thread: on a shared machine, what the work itself
 * cost, next to the wall-clock figure. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resident set size of this process, from /proc/self/statm. */
static uint64_t rss_bytes(void)
{
    FILE *file = fopen("/proc/self/statm", "r");
    unsigned long pages_total = 0, pages_resident = 0;
    if (file == NULL)
        return 0;
    if (fscanf(file, "%lu %lu", &pages_total, &pages_resident) != 2)
        pages_resident = 0;
    fclose(file);
    return (uint64_t)pages_resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Writes prefix and value as exactly `digits` decimal digits: fast enough
 * not to weigh on the figures. Returns the id's length. */
static uint32_t make_id(char *target, const char *prefix, uint64_t value,
                        int digits)
{
    size_t len = strlen(prefix);
    assert(len + (size_t)digits < ID_BYTES);
    memcpy(target, prefix, len);
    for (int i = digits - 1; i >= 0; i--, value /= 10)
        target[len + (size_t)i] = (char)('0' + value % 10);
    return (uint32_t)len + (uint32_t)digits;
}

/* Digits of the SKU ids of a run of sku_count SKUs: 6 keeps the ids of the
 * published figures; more than a million SKUs need 8. */
static int sku_digits(uint32_t sku_count)
{
    return sku_count > 1000000 ? 8 : 6;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Applies one op that must succeed with a record (the setup of a run). */
static void apply_or_die(core *state, stock_op *op, buf *record)
{
    op->code = STOCK_OK;
    if (stock_validate(op) != STOCK_OK || !core_apply(state, op, 1, record)) {
        fprintf(stderr, "bench_engine: setup op failed: %s %s\n",
                stock_code_name(op->code), op->message);
        exit(1);
    }
}

/* Records appended one after another, with each one's length. */
typedef struct record_log {
    buf bytes;
    uint16_t *lengths;
    uint32_t count;
    uint32_t capacity;
} record_log;

static void log_note(record_log *log, size_t length)
{
    if (log->count == log->capacity) {
        log->capacity = log->capacity ? log->capacity * 2 : 1u << 16;
        log->lengths = realloc(log->lengths, log->capacity * sizeof *log->lengths);
        if (log->lengths == NULL) {
            fprintf(stderr, "bench_engine: out of memory\n");
            exit(1);
        }
    }
    assert(length <= UINT16_MAX);
    log->lengths[log->count++] = (uint16_t)length;
}

/* Creates count SKUs "SKU-000000"... with stock each; their records go
 * to log when it is not NULL. */
static void create_skus(core *state, uint32_t count, int64_t stock,
                        record_log *log)
{
    char sku[ID_BYTES];
    buf scratch = {0};
    for (uint32_t i = 0; i < count; i++) {
        stock_op op = {.type = STOCK_OP_SET, .amount = stock};
        op.sku = (stock_id){sku, make_id(sku, "SKU-", i, sku_digits(count))};
        size_t before = log != NULL ? log->bytes.len : 0;
        apply_or_die(state, &op, log != NULL ? &log->bytes : &scratch);
        if (log != NULL)
            log_note(log, log->bytes.len - before);
        buf_clear(&scratch);
    }
    buf_free(&scratch);
}

/* The ops of one batch and the bytes their ids point to. */
typedef struct batch {
    stock_op ops[BATCH_OPS];
    char lines[BATCH_OPS][ID_BYTES];
    char skus[BATCH_OPS][ID_BYTES];
} batch;

static void fill_deducts(batch *b, uint32_t n, uint64_t first_line,
                         uint32_t sku_count)
{
    for (uint32_t i = 0; i < n; i++) {
        stock_op *op = &b->ops[i];
        op->type = STOCK_OP_DEDUCT;
        op->code = STOCK_OK;
        op->amount = 1;
        op->id = (stock_id){b->lines[i], make_id(b->lines[i], "L", first_line + i, 12)};
        uint32_t sku = sku_count == 1 ? 0 : (uint32_t)(rng() % sku_count);
        op->sku = (stock_id){b->skus[i], make_id(b->skus[i], "SKU-", sku,
                                                 sku_digits(sku_count))};
    }
}

/* Runs count deductions of qty 1 in batches of BATCH_OPS over sku_count
 * SKUs, and returns the seconds spent inside core_apply (*cpu: CPU seconds;
 * *slowest: the wall seconds of the slowest batch, where a growth of the
 * state that stops every op, such as an index doubling, shows). Records go
 * to log when it is not NULL. */
static double run_deducts(core *state, uint64_t first_line, uint32_t count,
                          uint32_t sku_count, record_log *log, double *cpu,
                          double *slowest)
{
    static batch b;
    buf scratch = {0};
    buf *record = log != NULL ? &log->bytes : &scratch;
    double spent = 0;
    *cpu = 0;
    *slowest = 0;
    for (uint32_t done = 0; done < count;) {
        uint32_t n = count - done < BATCH_OPS ? count - done : BATCH_OPS;
        fill_deducts(&b, n, first_line + done, sku_count);
        double start = now_s(), start_cpu = cpu_s();
        for (uint32_t i = 0; i < n && i < CORE_PREFETCH_AHEAD; i++)
            core_prefetch(state, &b.ops[i]);
        for (uint32_t i = 0; i < n; i++) {
            if (i + CORE_PREFETCH_AHEAD < n)
                core_prefetch(state, &b.ops[i + CORE_PREFETCH_AHEAD]);
            size_t before = record->len;
            if (!core_apply(state, &b.ops[i], (int64_t)(first_line + done + i), record)) {
                fprintf(stderr, "bench_engine: deduct failed: %s %s\n",
                        stock_code_name(b.ops[i].code), b.ops[i].message);
                exit(1);
            }
            if (log != NULL)
                log_note(log, record->len - before);
        }
        double batch_s = now_s() - start;
        spent += batch_s;
        *slowest = batch_s > *slowest ? batch_s : *slowest;
        *cpu += cpu_s() - start_cpu;
        buf_clear(&scratch);
        done += n;
    }
    buf_free(&scratch);
    return spent;
}

/* Replays a log into state; returns the seconds it took (*cpu: CPU
 * seconds). */
static double replay_log(core *state, const record_log *log, double *cpu)
{
    char message[STOCK_MESSAGE_MAX];
    const uint8_t *at = log->bytes.data;
    double start = now_s(), start_cpu = cpu_s();
    const uint8_t *ahead = at;
    uint32_t ahead_index = 0;
    for (; ahead_index < log->count && ahead_index < CORE_PREFETCH_AHEAD; ahead_index++)
        ahead += log->lengths[ahead_index];
    for (uint32_t i = 0; i < log->count; i++) {
        if (ahead_index < log->count) {
            core_replay_prefetch(state, ahead, log->lengths[ahead_index]);
            ahead += log->lengths[ahead_index++];
        }
        if (core_replay(state, at, log->lengths[i], message, sizeof message) != STOCK_OK) {
            fprintf(stderr, "bench_engine: replay failed: %s\n", message);
            exit(1);
        }
        at += log->lengths[i];
    }
    *cpu = cpu_s() - start_cpu;
    return now_s() - start;
}

static void print_row(const char *what, double value, const char *unit,
                      const char *note)
{
    printf("  %-44s %12.1f  %-10s %s\n", what, value, unit, note);
}

/* Apply and replay cost of deductions on 1 SKU (hot) or 100,000 (uniform). */
static void bench_apply(const char *name, uint32_t sku_count, uint32_t ops)
{
    core *state = core_create();
    core *copy = core_create();
    record_log log = {0};
    if (state == NULL || copy == NULL)
        exit(1);
    int64_t stock = sku_count == 1 ? SKU_STOCK_HOT : SKU_STOCK_UNIFORM;
    create_skus(state, sku_count, stock, &log);
    double apply_cpu, replay_cpu, slowest;
    double apply_s = run_deducts(state, 0, ops, sku_count, &log, &apply_cpu, &slowest);
    double replay_s = replay_log(copy, &log, &replay_cpu);
    char what[80], note[120];
    snprintf(note, sizeof note, "CPU %.0f ns; %u deductions", apply_cpu * 1e9 / ops, ops);
    snprintf(what, sizeof what, "core_apply deduct, %s", name);
    print_row(what, apply_s * 1e9 / ops, "ns/op", note);
    snprintf(what, sizeof what, "core_replay deduct, %s", name);
    snprintf(note, sizeof note, "CPU %.0f ns; %u records", replay_cpu * 1e9 / log.count,
             log.count);
    print_row(what, replay_s * 1e9 / log.count, "ns/record", note);
    core_destroy(state);
    core_destroy(copy);
    buf_free(&log.bytes);
    free(log.lengths);
}

static int write_memory(void *context, const void *data, size_t len)
{
    return buf_append(context, data, len) ? 0 : -1;
}

typedef struct memory_reader {
    const uint8_t *data;
    size_t len;
    size_t at;
} memory_reader;

static int read_memory(void *context, void *data, size_t len)
{
    memory_reader *reader = context;
    if (reader->len - reader->at < len)
        return -1;
    memcpy(data, reader->data + reader->at, len);
    reader->at += len;
    return 0;
}

/* Memory per line and snapshot save/load time at `lines` lines spread
 * uniformly over 100,000 SKUs. */
static void bench_memory(uint32_t lines)
{
    uint64_t rss_before = rss_bytes();
    core *state = core_create();
    if (state == NULL)
        exit(1);
    create_skus(state, UNIFORM_SKUS, SKU_STOCK_UNIFORM, NULL);
    double apply_cpu, slowest;
    double apply_s = run_deducts(state, 0, lines, UNIFORM_SKUS, NULL, &apply_cpu, &slowest);
    uint64_t rss_after = rss_bytes();
    core_stats stats;
    core_get_stats(state, &stats);
    char what[80], note[120];
    snprintf(note, sizeof note, "CPU %.0f ns; 100,000 SKUs", apply_cpu * 1e9 / lines);
    snprintf(what, sizeof what, "core_apply deduct, filling %u lines", lines);
    print_row(what, apply_s * 1e9 / lines, "ns/op", note);
    print_row("  slowest batch of 1,000 while filling", slowest * 1e3, "ms",
              "the line index doubles at 3/4 load");
    print_row("  memory, core_stats.memory_bytes / line",
              (double)stats.memory_bytes / lines, "bytes", "capacity held");
    print_row("  memory, process RSS delta / line",
              (double)(rss_after - rss_before) / lines, "bytes", "pages touched");
    buf image = {0};
    if (!buf_reserve(&image, (size_t)lines * 64)) /* faulted in before timing */
        exit(1);
    memset(image.data, 0, image.cap);
    double start = now_s(), start_cpu = cpu_s();
    if (core_snapshot_save(state, write_memory, &image) != 0)
        exit(1);
    double save_s = now_s() - start, save_cpu = cpu_s() - start_cpu;
    core_destroy(state);
    snprintf(note, sizeof note, "CPU %.2f s; %.0f MB into memory", save_cpu,
             image.len / 1e6);
    print_row("  core_snapshot_save", save_s, "s", note);
    core *loaded = core_create();
    memory_reader reader = {image.data, image.len, 0};
    char message[STOCK_MESSAGE_MAX];
    start = now_s();
    start_cpu = cpu_s();
    if (loaded == NULL ||
        core_snapshot_load(loaded, read_memory, &reader, image.len, message,
                           sizeof message) != STOCK_OK)
        exit(1);
    snprintf(note, sizeof note, "CPU %.2f s; from memory", cpu_s() - start_cpu);
    print_row("  core_snapshot_load", now_s() - start, "s", note);
    core_destroy(loaded);
    buf_free(&image);
}


/* ------------------------------------------------- through the library */

#define IN_FLIGHT_DEFAULT 16
#define IN_FLIGHT_MAX 64
#define CART_SKUS 10000
#define CART_LINES 5
#define MIXED_SKUS 100000
#define MIXED_REFUND_PERCENT 5
#define MIXED_READ_PERCENT 5

typedef enum workload { HOT, UNIFORM, CART, MIXED, WORKLOAD_COUNT } workload;

static const char *const workload_names[WORKLOAD_COUNT] = {
    "hot", "uniform", "cart", "mixed"};

/* One batch of the library run, with room for its ids and order lines. */
typedef struct lib_batch {
    stock_batch batch;
    stock_op ops[BATCH_OPS];
    stock_order_line lines[BATCH_OPS][CART_LINES];
    char ids[BATCH_OPS][CART_LINES + 1][ID_BYTES];
    char skus[BATCH_OPS][CART_LINES][ID_BYTES];
    bool in_flight;
} lib_batch;

typedef struct lib_run {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    lib_batch batches[IN_FLIGHT_MAX];
    uint32_t in_flight;       /* batches of batches[] in use */
    workload kind;
    uint64_t next_line;       /* line ids are numbered */
    uint64_t next_refund;     /* mixed: the next line to refund */
    uint64_t next_order;
    uint64_t failed;          /* ops that did not succeed */
    char first_failure[STOCK_MESSAGE_MAX + 32];
} lib_run;

static void lib_batch_done(stock_batch *batch)
{
    lib_run *run = batch->user;
    lib_batch *mine = (lib_batch *)batch;
    pthread_mutex_lock(&run->mutex);
    for (size_t i = 0; i < batch->count; i++) {
        stock_op *op = &batch->ops[i];
        if (stock_code_succeeded(op->code))
            continue;
        if (run->failed++ == 0)
            snprintf(run->first_failure, sizeof run->first_failure, "%s %s",
                     stock_code_name(op->code), op->message);
    }
    mine->in_flight = false;
    pthread_cond_signal(&run->cond);
    pthread_mutex_unlock(&run->mutex);
}

static stock_id batch_id(lib_batch *b, uint32_t op, uint32_t slot,
                         const char *prefix, uint64_t value)
{
    return (stock_id){b->ids[op][slot], make_id(b->ids[op][slot], prefix, value, 12)};
}

static stock_id batch_sku(lib_batch *b, uint32_t op, uint32_t slot, uint32_t sku_count)
{
    uint32_t sku = sku_count == 1 ? 0 : (uint32_t)(rng() % sku_count);
    return (stock_id){b->skus[op][slot], make_id(b->skus[op][slot], "SKU-", sku, 6)};
}

/* Fills op i of b for the run's workload. */
static void fill_op(lib_run *run, lib_batch *b, uint32_t i)
{
    stock_op *op = &b->ops[i];
    memset(op, 0, offsetof(stock_op, code));
    uint32_t dice = (uint32_t)(rng() % 100);
    if (run->kind == CART) {
        op->type = STOCK_OP_ORDER;
        op->id = batch_id(b, i, CART_LINES, "O", run->next_order++);
        op->lines = b->lines[i];
        op->line_count = CART_LINES;
        for (uint32_t k = 0; k < CART_LINES; k++) {
            b->lines[i][k].line_id = batch_id(b, i, k, "L", run->next_line++);
            b->lines[i][k].sku = batch_sku(b, i, k, CART_SKUS);
            b->lines[i][k].qty = 1;
        }
    } else if (run->kind == MIXED && dice < MIXED_READ_PERCENT) {
        op->type = STOCK_OP_GET;
        op->sku = batch_sku(b, i, 0, MIXED_SKUS);
    } else if (run->kind == MIXED && dice < MIXED_READ_PERCENT + MIXED_REFUND_PERCENT &&
               run->next_refund + 2 * BATCH_OPS * run->in_flight < run->next_line) {
        op->type = STOCK_OP_REFUND;      /* a line deducted batches ago */
        op->id = batch_id(b, i, 0, "R", run->next_refund);
        op->line = batch_id(b, i, 1, "L", run->next_refund++);
        op->amount = 1;
    } else {
        op->type = STOCK_OP_DEDUCT;
        op->id = batch_id(b, i, 0, "L", run->next_line++);
        op->sku = batch_sku(b, i, 0, run->kind == HOT ? 1 : run->kind == MIXED
                                                            ? MIXED_SKUS : UNIFORM_SKUS);
        op->amount = 1;
    }
}

/* Runs ops ops of run->kind on store, run->in_flight batches of BATCH_OPS in
 * flight, and returns the seconds from the first submit to the last
 * completion. */
static double lib_drive(stock_t *store, lib_run *run, uint64_t ops)
{
    uint64_t submitted = 0;
    double start = now_s();
    pthread_mutex_lock(&run->mutex);
    for (;;) {
        lib_batch *idle = NULL;
        bool busy = false;
        for (uint32_t k = 0; k < run->in_flight; k++) {
            busy |= run->batches[k].in_flight;
            if (!run->batches[k].in_flight && idle == NULL)
                idle = &run->batches[k];
        }
        if (submitted >= ops && !busy)
            break;
        if (idle == NULL || submitted >= ops) {
            pthread_cond_wait(&run->cond, &run->mutex);
            continue;
        }
        idle->in_flight = true;
        pthread_mutex_unlock(&run->mutex);
        uint32_t n = ops - submitted < BATCH_OPS ? (uint32_t)(ops - submitted) : BATCH_OPS;
        for (uint32_t i = 0; i < n; i++)
            fill_op(run, idle, i);
        idle->batch = (stock_batch){.ops = idle->ops, .count = n,
                                    .done = lib_batch_done, .user = run};
        submitted += n;
        stock_submit(store, &idle->batch);
        pthread_mutex_lock(&run->mutex);
    }
    pthread_mutex_unlock(&run->mutex);
    return now_s() - start;
}

static lib_run *lib_run_create(workload kind, uint32_t in_flight)
{
    assert(in_flight >= 1 && in_flight <= IN_FLIGHT_MAX);
    lib_run *run = calloc(1, sizeof *run);
    if (run == NULL)
        exit(1);
    run->in_flight = in_flight;
    pthread_mutex_init(&run->mutex, NULL);
    pthread_cond_init(&run->cond, NULL);
    run->kind = kind;
    return run;
}

static void lib_run_destroy(lib_run *run)
{
    pthread_cond_destroy(&run->cond);
    pthread_mutex_destroy(&run->mutex);
    free(run);
}

/* Creates SKU-000000... with stock each, a batch at a time. */
static void lib_create_skus(stock_t *store, uint32_t count, int64_t stock)
{
    static stock_op ops[BATCH_OPS];
    static char skus[BATCH_OPS][ID_BYTES];
    for (uint32_t done = 0; done < count;) {
        uint32_t n = count - done < BATCH_OPS ? count - done : BATCH_OPS;
        for (uint32_t i = 0; i < n; i++) {
            memset(&ops[i], 0, sizeof ops[i]);
            ops[i].type = STOCK_OP_SET;
            ops[i].amount = stock;
            ops[i].sku = (stock_id){skus[i], make_id(skus[i], "SKU-", done + i, 6)};
        }
        if (stock_execute(store, ops, n) != STOCK_OK || ops[0].code != STOCK_OK) {
            fprintf(stderr, "bench_engine: creating SKUs failed: %s\n", ops[0].message);
            exit(1);
        }
        done += n;
    }
}

static stock_t *lib_open(const char *dir, stock_durability durability)
{
    stock_config config = {.durability = durability};
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX];
    if (stock_open(dir, &config, &store, message) != STOCK_OK) {
        fprintf(stderr, "bench_engine: stock_open(%s): %s\n", dir, message);
        exit(1);
    }
    return store;
}

/* A fresh data folder under base for one run. */
static void lib_folder(char *dir, size_t size, const char *base, const char *name)
{
    snprintf(dir, size, "%s/%s-XXXXXX", base, name);
    if (mkdtemp(dir) == NULL) {
        perror("bench_engine: mkdtemp");
        exit(1);
    }
}

static void lib_remove_folder(const char *dir)
{
    char command[4200];
    snprintf(command, sizeof command, "rm -rf -- '%s'", dir);
    if (system(command) != 0)
        fprintf(stderr, "bench_engine: could not remove %s\n", dir);
}

static const char *const durability_names[] = {"durable", "relaxed"};

/* One workload, one durability: ops/s through stock_submit. */
static void lib_workload(workload kind, stock_durability durability,
                         uint64_t ops, uint32_t in_flight, const char *base)
{
    char dir[4096];
    lib_folder(dir, sizeof dir, base, workload_names[kind]);
    stock_t *store = lib_open(dir, durability);
    uint32_t skus = kind == HOT ? 1 : kind == CART ? CART_SKUS : UNIFORM_SKUS;
    lib_create_skus(store, skus, kind == HOT ? SKU_STOCK_HOT : SKU_STOCK_UNIFORM);
    lib_run *run = lib_run_create(kind, in_flight);
    double seconds = lib_drive(store, run, ops);
    stock_stats stats;
    stock_get_stats(store, &stats);
    char what[80], note[STOCK_MESSAGE_MAX + 120];
    snprintf(what, sizeof what, "%s, %s", workload_names[kind], durability_names[durability]);
    snprintf(note, sizeof note, "%" PRIu64 " %s, %" PRIu64 " syncs, %" PRIu64 " failed %s",
             ops, kind == CART ? "orders of 5 lines" : "ops", stats.syncs,
             run->failed, run->first_failure);
    print_row(what, (double)ops / seconds, kind == CART ? "orders/s" : "ops/s", note);
    lib_run_destroy(run);
    if (stock_close(store) != STOCK_OK)
        fprintf(stderr, "bench_engine: stock_close failed\n");
    lib_remove_folder(dir);
}

/* Memory per line and recovery time of the embedded engine at `lines`
 * lines (100,000 SKUs, filled with relaxed durability to save time). */
static void lib_memory_recovery(uint32_t lines, uint32_t in_flight, const char *base)
{
    char dir[4096], what[80], note[120];
    lib_folder(dir, sizeof dir, base, "recovery");
    uint64_t rss_before = rss_bytes();
    stock_t *store = lib_open(dir, STOCK_DURABILITY_RELAXED);
    lib_create_skus(store, UNIFORM_SKUS, SKU_STOCK_UNIFORM);
    lib_run *run = lib_run_create(UNIFORM, in_flight);
    double fill_s = lib_drive(store, run, lines);
    stock_stats stats;
    stock_get_stats(store, &stats);
    uint64_t rss_after = rss_bytes();
    snprintf(what, sizeof what, "embedded: filling %u lines", lines);
    snprintf(note, sizeof note, "relaxed, %" PRIu64 " failed", run->failed);
    print_row(what, lines / fill_s, "ops/s", note);
    print_row("  memory, stock_stats.memory_bytes / line",
              (double)stats.memory_bytes / lines, "bytes", "core capacity");
    print_row("  memory, process RSS delta / line",
              (double)(rss_after - rss_before) / lines, "bytes", "whole process");
    lib_run_destroy(run);
    double start = now_s();
    stock_close(store);
    print_row("  stock_close", now_s() - start, "s", "final sync (+ snapshot if due)");
    start = now_s();
    struct timespec cpu_start, cpu_end;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu_start);
    store = lib_open(dir, STOCK_DURABILITY_SYNC);
    double open_s = now_s() - start;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu_end);
    double open_cpu = (double)(cpu_end.tv_sec - cpu_start.tv_sec) +
                      (double)(cpu_end.tv_nsec - cpu_start.tv_nsec) / 1e9;
    stock_get_stats(store, &stats);
    snprintf(note, sizeof note, "CPU %.1f s; %" PRIu64 " lines back", open_cpu,
             stats.lines);
    print_row("  recovery: stock_open of the same folder", open_s, "s", note);
    stock_close(store);
    lib_remove_folder(dir);
}

/* ---------------------------------------------------------------- main */

typedef struct options {
    uint32_t lines_max;
    uint32_t ops;
    uint32_t lib_ops;
    uint32_t in_flight;
    uint32_t skus;
    bool core;
    bool library;
    bool recovery;
    const char *dir;
} options;

/* Runs one measurement in a child process, so that each starts from a
 * clean heap (the RSS deltas stay honest) and no store outlives it. */
static void isolated(void (*measure)(const options *, uint32_t),
                     const options *opts, uint32_t arg)
{
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        perror("bench_engine: fork");
        exit(1);
    }
    if (child == 0) {
        measure(opts, arg);
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_engine: a measurement failed\n");
        exit(1);
    }
}

static void measure_core_apply(const options *opts, uint32_t sku_count)
{
    char name[32];
    snprintf(name, sizeof name, "uniform (%u SKUs)", sku_count);
    bench_apply(sku_count == 1 ? "hot (1 SKU)" : name, sku_count, opts->ops);
}

static void measure_core_memory(const options *opts, uint32_t lines)
{
    (void)opts;
    bench_memory(lines);
}

static void measure_library(const options *opts, uint32_t which)
{
    lib_workload((workload)(which / 2), (stock_durability)(which % 2),
                 opts->lib_ops, opts->in_flight, opts->dir);
}

static void measure_recovery(const options *opts, uint32_t lines)
{
    lib_memory_recovery(lines, opts->in_flight, opts->dir);
}

/* Prints the usage and exits: asked for with --help, it goes to stdout with
 * status 0; after a bad argument, to stderr with status 2. */
static void usage(FILE *out, int status)
{
    fprintf(out,
            "usage: bench_engine [--lines-max N] [--ops N] [--lib-ops N] [--in-flight N]\n"
            "                    [--skus N] [--only core|library|recovery] [--dir FOLDER]\n"
            "       bench_engine -h|--help\n"
            "  N in 1000..100000000 (--in-flight 1..%d, default %d;\n"
            "  --skus 2..%u, default %d: the core's uniform run);\n"
            "  FOLDER (default .) holds the stores\n", IN_FLIGHT_MAX, IN_FLIGHT_DEFAULT,
            SKUS_MAX, UNIFORM_SKUS);
    exit(status);
}

static bool parse_count(const char *text, uint32_t *count)
{
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (end == text || *end != '\0' || value < 1000 || value > 100000000)
        return false;
    *count = (uint32_t)value;
    return true;
}

static bool parse_in_flight(const char *text, uint32_t *count)
{
    char *end = NULL;
    unsigned long value = strtoul(text, &end, 10);
    if (end == text || *end != '\0' || value < 1 || value > IN_FLIGHT_MAX)
        return false;
    *count = (uint32_t)value;
    return true;
}

static bool parse_skus(const char *text, uint32_t *count)
{
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (end == text || *end != '\0' || value < 2 || value > SKUS_MAX)
        return false;
    *count = (uint32_t)value;
    return true;
}

static options parse_options(int argc, char **argv)
{
    options parsed = {LINES_MAX_DEFAULT, OPS_DEFAULT, LIB_OPS_DEFAULT, IN_FLIGHT_DEFAULT,
                      UNIFORM_SKUS, true, true, true, "."};
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            usage(stdout, 0);
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = value != NULL;
        if (ok && strcmp(argv[i], "--lines-max") == 0)
            ok = parse_count(value, &parsed.lines_max);
        else if (ok && strcmp(argv[i], "--ops") == 0)
            ok = parse_count(value, &parsed.ops);
        else if (ok && strcmp(argv[i], "--lib-ops") == 0)
            ok = parse_count(value, &parsed.lib_ops);
        else if (ok && strcmp(argv[i], "--in-flight") == 0)
            ok = parse_in_flight(value, &parsed.in_flight);
        else if (ok && strcmp(argv[i], "--skus") == 0)
            ok = parse_skus(value, &parsed.skus);
        else if (ok && strcmp(argv[i], "--dir") == 0)
            parsed.dir = value;
        else if (ok && strcmp(argv[i], "--only") == 0) {
            parsed.core = strcmp(value, "core") == 0;
            parsed.library = strcmp(value, "library") == 0;
            parsed.recovery = parsed.library || strcmp(value, "recovery") == 0;
            ok = parsed.core || parsed.recovery;
        } else
            ok = false;
        if (!ok)
            usage(stderr, 2);
    }
    return parsed;
}

/* Line counts run 1M, 10M, ... up to --lines-max, then --lines-max
 * itself (50M after 10M), or just --lines-max when it is below 1M (a quick
 * run). */
static uint32_t first_count(const options *opts)
{
    return opts->lines_max < LINES_FIRST ? opts->lines_max : LINES_FIRST;
}

/* The count after lines, or 0 when lines was the last. */
static uint32_t next_count(const options *opts, uint32_t lines)
{
    if (lines >= opts->lines_max)
        return 0;
    uint64_t next = (uint64_t)lines * 10;
    return next > opts->lines_max ? opts->lines_max : (uint32_t)next;
}

int main(int argc, char **argv)
{
    options opts = parse_options(argc, argv);
    printf("  %-44s %12s  %-10s %s\n", "measure", "value", "unit", "note");
    if (opts.core) {
        printf("the state machine alone (src/core), one thread, batches of %d\n",
               BATCH_OPS);
        isolated(measure_core_apply, &opts, 1);
        isolated(measure_core_apply, &opts, opts.skus);
        for (uint32_t lines = first_count(&opts); lines != 0; lines = next_count(&opts, lines))
            isolated(measure_core_memory, &opts, lines);
    }
    if (opts.recovery)
        printf("the embedded engine through stock_submit, %u batches of %d in flight\n",
               opts.in_flight, BATCH_OPS);
    if (opts.library)
        for (uint32_t which = 0; which < 2 * WORKLOAD_COUNT; which++)
            isolated(measure_library, &opts, which);
    if (opts.recovery) {
        for (uint32_t lines = first_count(&opts); lines != 0; lines = next_count(&opts, lines))
            isolated(measure_recovery, &opts, lines);
    }
    return 0;
}
