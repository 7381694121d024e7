/*
 * holds_bench.c -- the two figures of holds (docs/benchmarks.md, "Holds").
 *
 *   holds_bench expiry DIR [HOLDS [SPREAD_S]]
 *       the embedded engine at DIR (a fresh folder): HOLDS holds (default
 *       1,000,000) on 100 SKUs, their deadlines spread evenly over SPREAD_S
 *       seconds (default 60) starting 5 s after the last is made; then the
 *       expiry lag: the store expires in deadline order, so the k-th expiry
 *       counted (stock_stats.hold_expiries, sampled every 200 us) is the
 *       hold with the k-th deadline, and its lag is the time it was first
 *       counted minus that deadline. Prints the memory the holds took per
 *       hold (stock_stats.memory_bytes) and the lag's p50, p99, p99.9, max.
 *   holds_bench confirm URI [PAIRS [THREADS]]
 *       one hot SKU through URI (e.g. stockd://127.0.0.1:7379): THREADS
 *       threads (default 16) each deduct, then each hold and confirm, PAIRS
 *       in all (default 20,000), one synchronous call at a time; five
 *       rounds of each, alternated; prints each round and the medians of
 *       deductions/s, pairs/s and the time of a pair over a deduction's.
 *   holds_bench -h|--help
 *
 * Wall-clock figures on a shared machine: run it several times.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stock.h"

#define ID_BYTES 32
#define BATCH_OPS 1000
#define SKUS 100
#define SKU_LEVEL 1000000000
#define START_DELAY_MS 5000
#define SAMPLE_US 200
#define HOT_LEVEL 1000000000
#define CONFIRM_ROUNDS 5

static int64_t now_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

static void die(const char *what, stock_code code, const char *message)
{
    fprintf(stderr, "holds_bench: %s: %s %s\n", what, stock_code_name(code), message);
    exit(1);
}

static stock_t *open_store(const char *uri)
{
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_open(uri, NULL, &store, message);
    if (code != STOCK_OK)
        die(uri, code, message);
    return store;
}

static int compare_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ---------------------------------------------------------------- expiry */

/* Makes count holds whose deadlines, in index order, are first_deadline +
 * i * spread / count; returns the deadlines (the store's time of each hold
 * plus its TTL, as hold_info says). */
static int64_t *make_holds(stock_t *store, uint32_t count, int64_t spread_us)
{
    static stock_op ops[BATCH_OPS];
    static char ids[BATCH_OPS][ID_BYTES], skus[SKUS][ID_BYTES];
    for (int s = 0; s < SKUS; s++) {
        snprintf(skus[s], ID_BYTES, "SKU-%d", s);
        stock_set(store, skus[s], SKU_LEVEL, NULL, NULL, NULL);
    }
    int64_t *deadlines = malloc(count * sizeof *deadlines);
    /* Each hold's TTL puts it at its place in the spread after the last
     * hold is made: estimate the making at 2 us a hold, pad by the delay. */
    int64_t first = now_us() + (int64_t)count * 2 + START_DELAY_MS * 1000LL;
    for (uint32_t done = 0; done < count;) {
        uint32_t n = count - done < BATCH_OPS ? count - done : BATCH_OPS;
        int64_t at = now_us();
        for (uint32_t i = 0; i < n; i++) {
            uint32_t k = done + i;
            int64_t deadline = first + (int64_t)((double)spread_us * k / count);
            snprintf(ids[i], ID_BYTES, "H%u", k);
            ops[i] = (stock_op){.type = STOCK_OP_HOLD, .id = stock_id_from_cstr(ids[i]),
                                .sku = stock_id_from_cstr(skus[k % SKUS]), .amount = 1,
                                .expect = (deadline - at) / 1000};
        }
        stock_execute(store, ops, n);
        for (uint32_t i = 0; i < n; i++)
            if (ops[i].code != STOCK_OK)
                die("hold", ops[i].code, ops[i].message);
        done += n;
    }
    /* The true deadlines, as the store recorded them (sorted: the store
     * expires in deadline order). */
    for (uint32_t done = 0; done < count;) {
        uint32_t n = count - done < BATCH_OPS ? count - done : BATCH_OPS;
        for (uint32_t i = 0; i < n; i++) {
            snprintf(ids[i], ID_BYTES, "H%u", done + i);
            ops[i] = (stock_op){.type = STOCK_OP_HOLD_GET, .id = stock_id_from_cstr(ids[i])};
        }
        stock_execute(store, ops, n);
        for (uint32_t i = 0; i < n; i++)
            deadlines[done + i] = ops[i].info.hold_info.deadline_us;
        done += n;
    }
    qsort(deadlines, count, sizeof *deadlines, compare_i64);
    return deadlines;
}

static int bench_expiry(const char *dir, uint32_t count, int spread_s)
{
    stock_t *store = open_store(dir);
    stock_stats before, after;
    stock_get_stats(store, &before);
    int64_t made_at = now_us();
    int64_t *deadlines = make_holds(store, count, (int64_t)spread_s * 1000000);
    stock_get_stats(store, &after);
    printf("holds: %u made in %.2f s; memory %.1f bytes a hold (%" PRIu64 " -> %" PRIu64 ")\n",
           count, (now_us() - made_at) / 1e6,
           (double)(after.memory_bytes - before.memory_bytes) / count,
           before.memory_bytes, after.memory_bytes);
    if (deadlines[0] < now_us())
        printf("warning: making the holds took longer than the start delay\n");
    int64_t *lags = malloc(count * sizeof *lags);
    uint64_t seen = 0;
    while (seen < count) {
        stock_stats stats;
        stock_get_stats(store, &stats);
        int64_t at = now_us();
        for (; seen < stats.hold_expiries && seen < count; seen++)
            lags[seen] = at - deadlines[seen];
        usleep(SAMPLE_US);
    }
    qsort(lags, count, sizeof *lags, compare_i64);
    printf("expiry lag over %u holds in %d s: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, "
           "max %.2f ms (sampled every %d us)\n", count, spread_s,
           lags[count / 2] / 1e3, lags[(uint64_t)count * 99 / 100] / 1e3,
           lags[(uint64_t)count * 999 / 1000] / 1e3, lags[count - 1] / 1e3, SAMPLE_US);
    free(lags);
    free(deadlines);
    return stock_close(store) == STOCK_OK ? 0 : 1;
}

/* --------------------------------------------------------------- confirm */

typedef struct worker {
    stock_t *store;
    int index;
    uint32_t pairs;
    bool holds;
    const char *run;
} worker;

static void *work(void *context)
{
    worker *w = context;
    char id[ID_BYTES + 16], message[STOCK_MESSAGE_MAX];
    for (uint32_t i = 0; i < w->pairs; i++) {
        snprintf(id, sizeof id, "%s-%c%d-%u", w->run, w->holds ? 'H' : 'D', w->index, i);
        stock_code code = w->holds
            ? stock_hold(w->store, id, "hot", 1, 600000, NULL, message)
            : stock_deduct(w->store, id, "hot", 1, NULL, message);
        if (code == STOCK_OK && w->holds)
            code = stock_confirm(w->store, id, 0, NULL, message);
        if (code != STOCK_OK)
            die(w->holds ? "hold+confirm" : "deduct", code, message);
    }
    return NULL;
}

static double run_threads(stock_t *store, int threads, uint32_t pairs, bool holds,
                          const char *run)
{
    pthread_t ids[threads];
    worker workers[threads];
    int64_t start = now_us();
    for (int t = 0; t < threads; t++) {
        workers[t] = (worker){store, t, pairs / (uint32_t)threads, holds, run};
        pthread_create(&ids[t], NULL, work, &workers[t]);
    }
    for (int t = 0; t < threads; t++)
        pthread_join(ids[t], NULL);
    return (now_us() - start) / 1e6;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Alternates CONFIRM_ROUNDS runs of each, so that both see the same load;
 * reports the medians and each round's ratio. */
static int bench_confirm(const char *uri, uint32_t pairs, int threads)
{
    stock_t *store = open_store(uri);
    stock_set(store, "hot", HOT_LEVEL, NULL, NULL, NULL);
    double deduct_s[CONFIRM_ROUNDS], pair_s[CONFIRM_ROUNDS], ratio[CONFIRM_ROUNDS];
    for (int r = 0; r < CONFIRM_ROUNDS; r++) {
        char run[32];
        snprintf(run, sizeof run, "%" PRIx64 "r%d", (uint64_t)now_us(), r);
        deduct_s[r] = run_threads(store, threads, pairs, false, run);
        pair_s[r] = run_threads(store, threads, pairs, true, run);
        ratio[r] = pair_s[r] / deduct_s[r];
        printf("round %d: deductions %.2f s, hold+confirm pairs %.2f s, ratio %.2f\n", r,
               deduct_s[r], pair_s[r], ratio[r]);
    }
    qsort(deduct_s, CONFIRM_ROUNDS, sizeof(double), compare_double);
    qsort(pair_s, CONFIRM_ROUNDS, sizeof(double), compare_double);
    qsort(ratio, CONFIRM_ROUNDS, sizeof(double), compare_double);
    uint32_t done = pairs / (uint32_t)threads * (uint32_t)threads;
    int mid = CONFIRM_ROUNDS / 2;
    printf("%s, %d threads, one hot SKU, medians of %d rounds: %.0f deductions/s; %.0f "
           "hold+confirm pairs/s (%.0f ops/s); a pair takes %.2fx a deduction\n",
           uri, threads, CONFIRM_ROUNDS, done / deduct_s[mid], done / pair_s[mid],
           2 * done / pair_s[mid], ratio[mid]);
    return stock_close(store) == STOCK_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "expiry") == 0)
        return bench_expiry(argv[2], argc > 3 ? (uint32_t)atol(argv[3]) : 1000000,
                            argc > 4 ? atoi(argv[4]) : 60);
    if (argc >= 3 && strcmp(argv[1], "confirm") == 0)
        return bench_confirm(argv[2], argc > 3 ? (uint32_t)atol(argv[3]) : 20000,
                             argc > 4 ? atoi(argv[4]) : 16);
    FILE *out = argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
                    ? stdout : stderr;
    fprintf(out, "usage: holds_bench expiry DIR [HOLDS [SPREAD_S]]\n"
                 "       holds_bench confirm URI [PAIRS [THREADS]]\n");
    return out == stdout ? 0 : 2;
}
