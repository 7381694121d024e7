/*
 * pg_bench.c -- a short load generator for the postgres backend in-process
 * (libstock linked into this program), for the figures in docs/postgres.md.
 *
 *   pg_bench URI hot|uniform|sellout [clients] [window] [batch] [seconds] [token]
 *
 * clients threads each keep `window` batches of `batch` deductions in flight
 * (stock_submit), like stockd's connections with pipelining clients. hot: one
 * SKU with ample stock; uniform: 100,000 SKUs, random; sellout: one SKU with
 * 10,000 units and 200,000 attempts (the run ends when all are answered).
 * token names the SKUs (default: unique per run); several processes given the
 * same token deduct the same SKUs, as several stores on one database do.
 * Prints one line: deductions/s, outcomes, commits and their mean latency.
 * Exits non-zero if a deduction failed for any reason but insufficient stock,
 * or if the sellout did not sell exactly its units.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stock.h"

#define BENCH_CLIENTS_MAX 256
#define BENCH_WINDOW_MAX 64
#define BENCH_BATCH_MAX 1024
#define BENCH_UNIFORM_SKUS 100000
#define BENCH_SELLOUT_UNITS 10000
#define BENCH_SELLOUT_ATTEMPTS 200000
#define BENCH_ID_SIZE 48
#define BENCH_SETUP_BATCH 1000

typedef enum { HOT, UNIFORM, SELLOUT } workload;

typedef struct bench {
    stock_t *store;
    workload kind;
    int window, batch;
    double seconds;
    char token[16];             /* names the SKUs */
    char lines_token[32];       /* names the line ids */
    atomic_llong next_line;     /* line numbers handed out */
    atomic_llong ok, insufficient, other;
    atomic_bool stop;
} bench;

/* One batch in flight: its ops, their ids, and the condition it signals. */
typedef struct slot {
    stock_batch batch;
    stock_op ops[BENCH_BATCH_MAX];
    char lines[BENCH_BATCH_MAX][BENCH_ID_SIZE];
    char skus[BENCH_BATCH_MAX][BENCH_ID_SIZE];
    struct client *client;
    bool busy;
} slot;

typedef struct client {
    bench *b;
    unsigned seed;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int busy;
    slot *slots;   /* window entries */
} client;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void slot_done(stock_batch *batch)
{
    slot *s = batch->user;
    bench *b = s->client->b;
    for (size_t i = 0; i < batch->count; i++) {
        stock_code code = batch->ops[i].code;
        if (code == STOCK_OK)
            atomic_fetch_add(&b->ok, 1);
        else if (code == STOCK_INSUFFICIENT)
            atomic_fetch_add(&b->insufficient, 1);
        else if (atomic_fetch_add(&b->other, 1) == 0)
            fprintf(stderr, "pg_bench: %s %s\n", stock_code_name(code), batch->ops[i].message);
    }
    pthread_mutex_lock(&s->client->mutex);
    s->busy = false;
    s->client->busy--;
    pthread_cond_signal(&s->client->cond);
    pthread_mutex_unlock(&s->client->mutex);
}

/* Fills a slot with deductions; false when the sellout has no attempts left. */
static bool slot_fill(client *c, slot *s)
{
    bench *b = c->b;
    int count = 0;
    for (; count < b->batch; count++) {
        long long line = atomic_fetch_add(&b->next_line, 1);
        if (b->kind == SELLOUT && line >= BENCH_SELLOUT_ATTEMPTS)
            break;
        snprintf(s->lines[count], BENCH_ID_SIZE, "b%s-%lld", b->lines_token, line);
        if (b->kind == UNIFORM)
            snprintf(s->skus[count], BENCH_ID_SIZE, "u%s-%d", b->token,
                     rand_r(&c->seed) % BENCH_UNIFORM_SKUS);
        else
            snprintf(s->skus[count], BENCH_ID_SIZE, "h%s", b->token);
        s->ops[count] = (stock_op){.type = STOCK_OP_DEDUCT,
                                   .id = stock_id_from_cstr(s->lines[count]),
                                   .sku = stock_id_from_cstr(s->skus[count]),
                                   .amount = 1};
    }
    s->batch = (stock_batch){.ops = s->ops, .count = (size_t)count, .done = slot_done, .user = s};
    return count > 0;
}

static void *client_main(void *arg)
{
    client *c = arg;
    bench *b = c->b;
    for (;;) {
        pthread_mutex_lock(&c->mutex);
        while (c->busy == b->window)
            pthread_cond_wait(&c->cond, &c->mutex);
        slot *s = NULL;
        for (int i = 0; s == NULL && i < b->window; i++)
            if (!c->slots[i].busy)
                s = &c->slots[i];
        pthread_mutex_unlock(&c->mutex);
        if (atomic_load(&b->stop) || !slot_fill(c, s))
            break;
        pthread_mutex_lock(&c->mutex);
        s->busy = true;
        c->busy++;
        pthread_mutex_unlock(&c->mutex);
        stock_submit(b->store, &s->batch);
    }
    pthread_mutex_lock(&c->mutex);
    while (c->busy > 0)
        pthread_cond_wait(&c->cond, &c->mutex);
    pthread_mutex_unlock(&c->mutex);
    return NULL;
}

/* Creates the workload's SKUs in batches of sets. */
static int setup(bench *b)
{
    static stock_op ops[BENCH_SETUP_BATCH];
    static char skus[BENCH_SETUP_BATCH][BENCH_ID_SIZE];
    int total = b->kind == UNIFORM ? BENCH_UNIFORM_SKUS : 1;
    for (int first = 0; first < total; first += BENCH_SETUP_BATCH) {
        int count = total - first < BENCH_SETUP_BATCH ? total - first : BENCH_SETUP_BATCH;
        for (int i = 0; i < count; i++) {
            if (b->kind == UNIFORM)
                snprintf(skus[i], BENCH_ID_SIZE, "u%s-%d", b->token, first + i);
            else
                snprintf(skus[i], BENCH_ID_SIZE, "h%s", b->token);
            ops[i] = (stock_op){.type = STOCK_OP_SET, .sku = stock_id_from_cstr(skus[i]),
                                .amount = b->kind == SELLOUT ? BENCH_SELLOUT_UNITS
                                                             : 1000000000LL};
        }
        stock_execute(b->store, ops, (size_t)count);
        for (int i = 0; i < count; i++)
            if (ops[i].code != STOCK_OK) {
                fprintf(stderr, "pg_bench: setup: %s %s\n", stock_code_name(ops[i].code),
                        ops[i].message);
                return -1;
            }
    }
    return 0;
}

static int parse_args(bench *b, int *clients, int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: pg_bench URI hot|uniform|sellout [clients] [window] "
                        "[batch] [seconds] [token]\n");
        return -1;
    }
    b->kind = strcmp(argv[2], "hot") == 0 ? HOT : strcmp(argv[2], "uniform") == 0 ? UNIFORM
              : strcmp(argv[2], "sellout") == 0 ? SELLOUT : -1;
    *clients = argc > 3 ? atoi(argv[3]) : 16;
    b->window = argc > 4 ? atoi(argv[4]) : 1;
    b->batch = argc > 5 ? atoi(argv[5]) : 1;
    b->seconds = argc > 6 ? atof(argv[6]) : 10;
    if ((int)b->kind < 0 || *clients < 1 || *clients > BENCH_CLIENTS_MAX || b->window < 1 ||
        b->window > BENCH_WINDOW_MAX || b->batch < 1 || b->batch > BENCH_BATCH_MAX ||
        b->seconds <= 0) {
        fprintf(stderr, "pg_bench: bad arguments (clients 1..256, window 1..64, "
                        "batch 1..1024, seconds > 0)\n");
        return -1;
    }
    snprintf(b->token, sizeof b->token, "%lx", (unsigned long)time(NULL) ^ (unsigned long)rand());
    if (argc > 7)
        snprintf(b->token, sizeof b->token, "%.15s", argv[7]);
    /* Line ids stay unique per process even when the SKUs are shared. */
    snprintf(b->lines_token, sizeof b->lines_token, "%lx-%d", (unsigned long)time(NULL),
             (int)getpid());
    return 0;
}

static void report(bench *b, const char *uri, int clients, double elapsed, const stock_stats *s)
{
    long long done = atomic_load(&b->ok) + atomic_load(&b->insufficient) + atomic_load(&b->other);
    printf("%s %s clients=%d window=%d batch=%d: %.0f deductions/s over %.1f s "
           "(ok %lld, insufficient %lld, other %lld); %" PRIu64 " commits, %.1f ops/commit, "
           "mean commit %.2f ms\n",
           uri, b->kind == HOT ? "hot" : b->kind == UNIFORM ? "uniform" : "sellout", clients,
           b->window, b->batch, done / elapsed, elapsed, atomic_load(&b->ok),
           atomic_load(&b->insufficient), atomic_load(&b->other), s->syncs,
           s->syncs ? (double)s->operations / s->syncs : 0.0,
           s->syncs ? s->sync_latency_us_sum / 1000.0 / s->syncs : 0.0);
}

int main(int argc, char **argv)
{
    static bench b;
    static client clients[BENCH_CLIENTS_MAX];
    int count = 0;
    srand((unsigned)time(NULL));
    if (parse_args(&b, &count, argc, argv) != 0)
        return 2;
    char message[STOCK_MESSAGE_MAX];
    if (stock_open(argv[1], NULL, &b.store, message) != STOCK_OK) {
        fprintf(stderr, "pg_bench: cannot open %s: %s\n", argv[1], message);
        return 1;
    }
    if (setup(&b) != 0)
        return 1;
    stock_stats before, after;
    stock_get_stats(b.store, &before);
    pthread_t threads[BENCH_CLIENTS_MAX];
    double start = now_s();
    for (int i = 0; i < count; i++) {
        clients[i].b = &b;
        clients[i].seed = (unsigned)i * 7919u + 1;
        pthread_mutex_init(&clients[i].mutex, NULL);
        pthread_cond_init(&clients[i].cond, NULL);
        clients[i].slots = calloc((size_t)b.window, sizeof(slot));
        if (clients[i].slots == NULL) {
            fprintf(stderr, "pg_bench: out of memory\n");
            return 1;
        }
        for (int k = 0; k < b.window; k++)
            clients[i].slots[k].client = &clients[i];
        pthread_create(&threads[i], NULL, client_main, &clients[i]);
    }
    /* A sellout ends when its attempts are used up; the others run for
     * the given seconds. */
    while (b.kind != SELLOUT && now_s() - start < b.seconds) {
        struct timespec tick = {0, 50000000};
        nanosleep(&tick, NULL);
    }
    if (b.kind != SELLOUT)
        atomic_store(&b.stop, true);
    for (int i = 0; i < count; i++)
        pthread_join(threads[i], NULL);
    double elapsed = now_s() - start;
    stock_get_stats(b.store, &after);
    after.operations -= before.operations;
    after.syncs -= before.syncs;
    after.sync_latency_us_sum -= before.sync_latency_us_sum;
    report(&b, argv[1], count, elapsed, &after);
    stock_close(b.store);
    bool sold_right = b.kind != SELLOUT || atomic_load(&b.ok) == BENCH_SELLOUT_UNITS;
    if (!sold_right)
        fprintf(stderr, "pg_bench: sellout sold %lld, not %d\n", atomic_load(&b.ok),
                BENCH_SELLOUT_UNITS);
    return atomic_load(&b.other) == 0 && sold_right ? 0 : 1;
}
