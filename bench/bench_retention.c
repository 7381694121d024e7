/*
 * bench_retention.c -- the embedded engine with a retention window: memory
 * and recovery time as the store ages, and the latency of replays and
 * refunds of cold lines against hot ones (docs/benchmarks.md, "Retention").
 *
 *   bench_retention [--lines N] [--window-ms W] [--checkpoints K]
 *                   [--samples S] [--batch B] [--dir FOLDER] [--holds]
 *   bench_retention -h|--help    (usage on stdout, status 0)
 *
 * Writes N lines (default 10,000,000; ids "L" + 12 digits, qty 1, over
 * 1,000 SKUs) into FOLDER/retention-bench (default ".", created; removed
 * first if it exists) opened with retention=W ms (default 2,000) and
 * relaxed durability, in batches of B (default and most 10,000). At each
 * of K checkpoints (default 5) prints the lines written, the lines and
 * bytes in memory (stock_stats), the process RSS, the rate, and the p50,
 * p99 and longest latency of the batches written since the last checkpoint
 * (a retention move runs between batches, so the longest shows how long a
 * move stops writes: docs/engine.md, "Moves in steps"), then closes and
 * reopens the store and prints the time of stock_open (recovery: snapshot
 * + log after it). Then times S (default 2,000) replays (DEDUCT again, REPLAY) and S
 * refunds (qty 1) of lines written first (cold) and of lines of the last
 * batch (hot), each its own synchronous call, and prints p50 and p99.
 *
 * --seconds T writes instead at full speed for T seconds into one open
 * store (no checkpoints, no reopen until the end) and prints a row every
 * --every-ms P (default 1,000): the seconds elapsed, the lines written,
 * the lines and bytes in memory, the RSS, the rate over the row, the
 * lines of one window at that rate (what memory should hold, plus up to
 * a quarter window and a move), and the moves the store finished with
 * their longest step (the store's notices, docs/engine.md, "Moves in
 * steps"); then the time of a reopen. Memory bounded by the window shows
 * as "lines held" flat while "lines written" grows.
 *
 * --forget-ms F sets forget=F ms (docs/engine.md, "Forgetting: a second horizon"): with
 * --seconds, the rows then show what forgetting costs writers (the
 * longest batch of each row); the first lines are then forgotten, so no
 * replay or refund is timed.
 *
 * The store's warnings go to stderr; with BENCH_NOTICES set in the
 * environment, every message of the store does (each move's notice says
 * how long it took, in how many steps, and how long forgetting took).
 *
 * --holds makes every line a hold of HOLD_TTL_MS confirmed in the same
 * batch (HOLD then CONFIRM: the line has the hold's id), so that memory
 * shows what closed holds and their lines cost as the store ages; the
 * replays timed are then CONFIRM's (batches of at most BATCH_OPS / 2
 * lines).
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stock.h"

#define BATCH_OPS 10000
#define SKUS 1000
#define SKU_STOCK INT64_C(1000000000000)
#define LINES_DEFAULT 10000000ull
#define WINDOW_MS_DEFAULT 2000ull
#define CHECKPOINTS_DEFAULT 5ull
#define SAMPLES_DEFAULT 2000ull
#define SAMPLES_MAX 1000000ull
#define HOLD_TTL_MS 1000
#define EVERY_MS_DEFAULT 1000ull

typedef struct options {
    uint64_t lines, window_ms, checkpoints, samples, batch, seconds, every_ms, forget_ms;
    const char *dir;
    bool holds;
} options;

static void die(const char *what, stock_code code, const char *message)
{
    fprintf(stderr, "bench_retention: %s: %s %s\n", what, stock_code_name(code), message);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long pages = 0, resident = 0;
    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The resident set's anonymous part (the heap: the state) and its file
 * part (the cold store's mapped pages, page cache the kernel can drop),
 * in bytes, from /proc/self/status. */
static void rss_parts(uint64_t *anon, uint64_t *file)
{
    *anon = *file = 0;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kib;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "RssAnon: %llu kB", &kib) == 1)
            *anon = (uint64_t)kib * 1024;
        else if (sscanf(line, "RssFile: %llu kB", &kib) == 1)
            *file = (uint64_t)kib * 1024;
    }
    if (f != NULL)
        fclose(f);
}

static void line_id(char *target, uint64_t n)
{
    snprintf(target, 16, "L%012" PRIu64, n);
}

static void sku_id(char *target, uint64_t n)
{
    snprintf(target, 16, "SKU-%06" PRIu64, n % SKUS);
}

/* What the store's notices said about its moves (its writer's thread). */
static atomic_ullong moves_done, move_step_ms_max;

static void on_log(void *user, stock_log_level level, const char *message)
{
    (void)user;
    unsigned long long move, entities, steps;
    long long took_ms, longest_ms;
    if (getenv("BENCH_NOTICES") != NULL || level == STOCK_LOG_WARNING || level == STOCK_LOG_ERROR)
        fprintf(stderr, "bench_retention: store: %s\n", message);
    if (sscanf(message, "retention: move %llu took %llu entities to the cold store in %lld ms, "
                        "in %llu steps, the longest %lld ms",
               &move, &entities, &took_ms, &steps, &longest_ms) != 5)
        return;
    atomic_fetch_add(&moves_done, 1);
    unsigned long long seen = atomic_load(&move_step_ms_max);
    while ((unsigned long long)longest_ms > seen &&
           !atomic_compare_exchange_weak(&move_step_ms_max, &seen,
                                         (unsigned long long)longest_ms))
        ;
}

static stock_t *open_store(const char *uri)
{
    stock_t *store;
    char message[STOCK_MESSAGE_MAX];
    stock_config config = {.log = on_log};
    stock_code code = stock_open(uri, &config, &store, message);
    if (code != STOCK_OK)
        die("stock_open", code, message);
    return store;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Writes count lines from first in batches of batch; sorts each batch's
 * latency (s) into latency (room for count / batch + 1), returns the
 * batches. */
static uint64_t write_lines(stock_t *store, uint64_t first, uint64_t count, uint64_t batch,
                            bool holds, double *latency)
{
    static stock_op ops[BATCH_OPS];
    static char lines[BATCH_OPS][16], skus[BATCH_OPS][16];
    uint64_t batches = 0;
    uint32_t per_line = holds ? 2 : 1;
    for (uint64_t done = 0; done < count;) {
        uint64_t n = count - done < batch ? count - done : batch;
        for (uint64_t i = 0; i < n; i++) {
            line_id(lines[i], first + done + i);
            sku_id(skus[i], first + done + i);
            stock_id id = stock_id_from_cstr(lines[i]), sku = stock_id_from_cstr(skus[i]);
            if (!holds) {
                ops[i] = (stock_op){.type = STOCK_OP_DEDUCT, .id = id, .sku = sku, .amount = 1};
                continue;
            }
            ops[2 * i] = (stock_op){.type = STOCK_OP_HOLD, .id = id, .sku = sku, .amount = 1,
                                    .expect = HOLD_TTL_MS};
            ops[2 * i + 1] = (stock_op){.type = STOCK_OP_CONFIRM, .id = id};
        }
        double start = now_s();
        stock_execute(store, ops, n * per_line);
        latency[batches++] = now_s() - start;
        for (uint64_t i = 0; i < n * per_line; i++)
            if (ops[i].code != STOCK_OK)
                die(lines[i / per_line], ops[i].code, ops[i].message);
        done += n;
    }
    qsort(latency, batches, sizeof *latency, compare_double);
    return batches;
}

/* Times `samples` calls on lines first, first + 1, ...: a replay of the
 * deduction (of the confirm, with holds), then a refund of 1. */
static void latency(stock_t *store, const char *what, uint64_t first, uint64_t samples,
                    bool holds)
{
    double *replay = calloc(samples, sizeof *replay), *refund = calloc(samples, sizeof *refund);
    if (replay == NULL || refund == NULL)
        die("calloc", STOCK_NOMEM, "");
    char message[STOCK_MESSAGE_MAX], line[16], sku[16], refund_id[32];
    for (uint64_t i = 0; i < samples; i++) {
        line_id(line, first + i);
        sku_id(sku, first + i);
        int64_t available;
        double start = now_s();
        stock_code code = holds ? stock_confirm(store, line, 0, &available, message)
                                : stock_deduct(store, line, sku, 1, &available, message);
        replay[i] = now_s() - start;
        if (code != STOCK_REPLAY)
            die("replay", code, message);
        snprintf(refund_id, sizeof refund_id, "R-%s", line);
        start = now_s();
        code = stock_refund(store, refund_id, line, 1, &available, message);
        refund[i] = now_s() - start;
        if (code != STOCK_OK)
            die("refund", code, message);
    }
    qsort(replay, samples, sizeof *replay, compare_double);
    qsort(refund, samples, sizeof *refund, compare_double);
    printf("%-5s replay p50 %7.1f us  p99 %7.1f us   refund p50 %7.1f us  p99 %7.1f us\n", what,
           replay[samples / 2] * 1e6, replay[samples * 99 / 100] * 1e6,
           refund[samples / 2] * 1e6, refund[samples * 99 / 100] * 1e6);
    free(replay);
    free(refund);
}

/* --seconds: full speed into one open store, a row every o->every_ms. */
static stock_t *write_for(stock_t *store, const char *uri, const options *o, uint64_t *written)
{
    printf("%7s %11s %10s %10s %8s %8s %8s %11s %5s %9s %9s\n", "seconds", "written",
           "lines held", "memory MB", "anon MB", "file MB", "lines/s", "window lines",
           "moves", "step ms", "batch ms");
    double start = now_s(), row_start = start, batch_max_s = 0;
    uint64_t row_written = 0;
    while (now_s() - start < (double)o->seconds) {
        /* One batch at a time, so that a row ends on time. */
        double batch_s;
        write_lines(store, *written, o->batch, o->batch, o->holds, &batch_s);
        batch_max_s = batch_s > batch_max_s ? batch_s : batch_max_s;
        *written += o->batch;
        row_written += o->batch;
        double now = now_s();
        if ((now - row_start) * 1000 < (double)o->every_ms)
            continue;
        stock_stats stats;
        stock_get_stats(store, &stats);
        uint64_t anon, file;
        rss_parts(&anon, &file);
        double rate = (double)row_written / (now - row_start);
        printf("%7.1f %11" PRIu64 " %10" PRIu64 " %10.1f %8.1f %8.1f %8.0f %11.0f %5llu %9llu %9.1f\n",
               now - start, *written, stats.lines, (double)stats.memory_bytes / 1e6,
               (double)anon / 1e6, (double)file / 1e6, rate,
               rate * (double)o->window_ms / 1000, atomic_exchange(&moves_done, 0),
               atomic_exchange(&move_step_ms_max, 0), batch_max_s * 1e3);
        fflush(stdout);
        row_start = now;
        row_written = 0;
        batch_max_s = 0;
    }
    stock_close(store);
    double open_start = now_s();
    store = open_store(uri);
    printf("reopen (recovery) %.2f s\n", now_s() - open_start);
    return store;
}

static void usage(FILE *out, int status)
{
    fprintf(out, "usage: bench_retention [--lines N] [--window-ms W] [--checkpoints K]\n"
                 "                       [--samples S] [--batch B] [--dir FOLDER] [--holds]\n"
                 "                       [--seconds T [--every-ms P]] [--forget-ms F]\n");
    exit(status);
}

static options parse(int argc, char **argv)
{
    options o = {LINES_DEFAULT, WINDOW_MS_DEFAULT, CHECKPOINTS_DEFAULT, SAMPLES_DEFAULT,
                 BATCH_OPS, 0, EVERY_MS_DEFAULT, 0, ".", false};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            usage(stdout, 0);
        if (strcmp(argv[i], "--holds") == 0) {
            o.holds = true;
            continue;
        }
        if (i + 1 >= argc)
            usage(stderr, 2);
        char *end;
        unsigned long long value = strtoull(argv[i + 1], &end, 10);
        bool number = *argv[i + 1] != '\0' && *end == '\0' && value > 0;
        if (strcmp(argv[i], "--dir") == 0)
            o.dir = argv[i + 1];
        else if (number && strcmp(argv[i], "--lines") == 0)
            o.lines = value;
        else if (number && strcmp(argv[i], "--window-ms") == 0)
            o.window_ms = value;
        else if (number && strcmp(argv[i], "--seconds") == 0)
            o.seconds = value;
        else if (number && strcmp(argv[i], "--every-ms") == 0)
            o.every_ms = value;
        else if (number && strcmp(argv[i], "--forget-ms") == 0)
            o.forget_ms = value;
        else if (number && strcmp(argv[i], "--checkpoints") == 0)
            o.checkpoints = value;
        else if (number && value <= SAMPLES_MAX && strcmp(argv[i], "--samples") == 0)
            o.samples = value;
        else if (number && value <= BATCH_OPS && strcmp(argv[i], "--batch") == 0)
            o.batch = value;
        else
            usage(stderr, 2);
        i++;
    }
    if ((o.seconds == 0 && o.samples * 2 > o.lines / o.checkpoints) ||
        (o.holds && o.batch > BATCH_OPS / 2))
        usage(stderr, 2);
    return o;
}

int main(int argc, char **argv)
{
    options o = parse(argc, argv);
    char dir[4096], uri[4200], command[4200];
    snprintf(dir, sizeof dir, "%s/retention-bench", o.dir);
    snprintf(command, sizeof command, "rm -rf '%s'", dir);
    if (system(command) != 0)
        die("rm -rf", STOCK_IO, dir);
    snprintf(uri, sizeof uri, "file:%s?retention=%" PRIu64 "ms&durability=relaxed", dir,
             o.window_ms);
    if (o.forget_ms > 0)
        snprintf(uri + strlen(uri), sizeof uri - strlen(uri), "&forget=%" PRIu64 "ms",
                 o.forget_ms);
    stock_t *store = open_store(uri);
    char message[STOCK_MESSAGE_MAX], sku[16];
    for (uint64_t s = 0; s < SKUS; s++) {
        sku_id(sku, s);
        int64_t available;
        stock_code code = stock_set(store, sku, SKU_STOCK, NULL, &available, message);
        if (code != STOCK_OK)
            die("stock_set", code, message);
    }
    if (o.seconds > 0)
        printf("retention %" PRIu64 " ms, %" PRIu64 " s at full speed%s, batches of %" PRIu64
               ", relaxed\n", o.window_ms, o.seconds, o.holds ? " (each line a confirmed hold)" : "",
               o.batch);
    else
        printf("retention %" PRIu64 " ms, %" PRIu64 " lines%s, batches of %" PRIu64 ", relaxed\n",
               o.window_ms, o.lines, o.holds ? " (each a confirmed hold)" : "", o.batch);
    uint64_t written = 0, step = o.lines / o.checkpoints;
    if (o.seconds > 0) {
        store = write_for(store, uri, &o, &written);
        /* The lines written first may be forgotten: no replay to time. */
        if (o.forget_ms == 0 && o.samples * 2 <= written) {
            latency(store, "cold", 0, o.samples, o.holds);
            latency(store, "hot", written - o.samples, o.samples, o.holds);
        }
        stock_close(store);
        return 0;
    }
    printf("%14s %12s %14s %10s %10s %27s %12s\n", "written", "lines held", "memory bytes",
           "RSS MB", "lines/s", "batch p50/p99/max ms", "recovery s");
    double *batch_s = calloc(step / o.batch + 1, sizeof *batch_s);
    if (batch_s == NULL)
        die("calloc", STOCK_NOMEM, "");
    for (uint64_t k = 0; k < o.checkpoints; k++) {
        double start = now_s();
        uint64_t batches = write_lines(store, written, step, o.batch, o.holds, batch_s);
        double rate = (double)step / (now_s() - start);
        written += step;
        stock_stats stats;
        stock_get_stats(store, &stats);
        uint64_t rss = rss_bytes();
        stock_close(store);
        start = now_s();
        store = open_store(uri);
        double open_s = now_s() - start;
        printf("%14" PRIu64 " %12" PRIu64 " %14" PRIu64 " %10.1f %10.0f %9.1f/%7.1f/%7.1f %12.2f\n",
               written, stats.lines, stats.memory_bytes, (double)rss / 1e6, rate,
               batch_s[batches / 2] * 1e3, batch_s[batches * 99 / 100] * 1e3,
               batch_s[batches - 1] * 1e3, open_s);
        fflush(stdout);
    }
    free(batch_s);
    latency(store, "cold", 0, o.samples, o.holds);
    latency(store, "hot", written - o.samples, o.samples, o.holds);
    stock_close(store);
    return 0;
}
