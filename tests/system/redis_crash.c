/*
 * redis_crash.c -- a client of the redis backend killed with SIGKILL between
 * the steps of its orders and deductions, then a check that the store
 * converged (tests/suites/55-redis.sh):
 *
 *   redis_crash write URI FILE   places orders over two slots and lone
 *                                deductions on a pool of SKUs, in batches,
 *                                until killed; FILE holds the number of
 *                                batches acknowledged
 *   redis_crash retry URI FILE   the same, but a batch that fails only
 *                                UNAVAILABLE (a master killed, a failover
 *                                under way) is sent again with the same ids
 *                                until it succeeds (for up to 120 s)
 *   redis_crash check URI FILE   after the lease: every order has all its
 *                                lines or none, every acknowledged one all;
 *                                every SKU balances (I2) and its deducted
 *                                total is the sum of its lines (I1-I3)
 *   redis_crash hot URI FILE     as retry, on one hot SKU: each batch 14
 *                                deductions of 2 units and 2 refunds of 1
 *                                unit of the last batch's first lines (for
 *                                buckets=K: the lines spread over the
 *                                SKU's buckets, so over the masters)
 *   redis_crash hotcheck URI FILE  every acknowledged deduction and refund
 *                                is there, none twice; the SKU's totals are
 *                                its lines' sums and balance (I1, I2, I5);
 *                                an acknowledged deduction and refund sent
 *                                again replay and change nothing (I4, I5)
 *
 * URI is redis://host:port[?prefix=P]; the writer adds timeout_ms=1000 (a
 * 2 s lease: long enough that a loaded machine, or a sanitizer build, does
 * not time a reply out and end the writer before it is killed); the checker
 * opens after waiting that out, so its open's sweep gives back whatever the
 * dead writer left in flight.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stock.h"

#define CRASH_SKUS 8
#define CRASH_ORDERS 8           /* orders per batch, each with 2 lines */
#define CRASH_DEDUCTS 8          /* lone deductions per batch */
#define CRASH_BATCH (CRASH_ORDERS + CRASH_DEDUCTS)
#define CRASH_STOCK 100000000
#define CRASH_URI_MAX 1024
#define CRASH_TIMEOUT_MS 1000    /* the writer's timeout_ms */
#define CRASH_LEASE_US (2 * CRASH_TIMEOUT_MS * 1000)   /* the backend's lease */
#define CRASH_RETRY_S 120        /* how long retry sends a batch again */
#define CRASH_RETRY_PAUSE_US 100000
#define CRASH_HOT_SKU "crash-hot"
#define CRASH_HOT_DEDUCTS 14     /* hot: deductions per batch, 2 units each */
#define CRASH_HOT_REFUNDS 2      /* hot: refunds per batch, 1 unit of a line of the last */

static stock_t *open_or_die(const char *uri)
{
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX] = "";
    if (stock_open(uri, NULL, &store, message) != STOCK_OK) {
        fprintf(stderr, "redis_crash: cannot open %s: %s\n", uri, message);
        exit(2);
    }
    return store;
}

static void sku_name(char *out, size_t size, int i)
{
    snprintf(out, size, "crash-sku%d", i);
}

/* The ids of batch n: order k has lines "o<n>.<k>a" and "...b" on SKUs k
 * and k + 1 (two slots); deduction k is line "d<n>.<k>" on SKU k. */
static void order_ids(long n, int k, char *order, char *line_a, char *line_b, size_t size)
{
    snprintf(order, size, "crash-o%ld.%d", n, k);
    snprintf(line_a, size, "crash-o%ld.%da", n, k);
    snprintf(line_b, size, "crash-o%ld.%db", n, k);
}

static void deduct_id(long n, int k, char *line, size_t size)
{
    snprintf(line, size, "crash-d%ld.%d", n, k);
}

/* Replaces FILE's count by renaming a new file over it: a kill at any
 * moment leaves the old count or the new one, never an empty file. */
static void write_count(const char *file, long count)
{
    char temporary[4096];
    snprintf(temporary, sizeof temporary, "%s.new", file);
    FILE *out = fopen(temporary, "w");
    if (out == NULL)
        exit(2);
    fprintf(out, "%ld\n", count);
    fflush(out);
    fdatasync(fileno(out));
    fclose(out);
    if (rename(temporary, file) != 0)
        exit(2);
}

/* Builds batch n: the orders, then the lone deductions. */
static void build_batch(long n, char skus[][32], char ids[][3][48],
                        stock_order_line lines[][2], stock_op *ops)
{
    for (int k = 0; k < CRASH_ORDERS; k++) {
        order_ids(n, k, ids[k][0], ids[k][1], ids[k][2], sizeof ids[k][0]);
        lines[k][0] = (stock_order_line){stock_id_from_cstr(ids[k][1]),
                                         stock_id_from_cstr(skus[k]), 1, 0};
        lines[k][1] = (stock_order_line){stock_id_from_cstr(ids[k][2]),
                                         stock_id_from_cstr(skus[(k + 1) % CRASH_SKUS]), 2, 0};
        ops[k] = (stock_op){.type = STOCK_OP_ORDER, .id = stock_id_from_cstr(ids[k][0]),
                            .lines = lines[k], .line_count = 2};
    }
    for (int k = 0; k < CRASH_DEDUCTS; k++) {
        char *line = ids[CRASH_ORDERS + k][0];
        deduct_id(n, k, line, sizeof ids[0][0]);
        ops[CRASH_ORDERS + k] = (stock_op){.type = STOCK_OP_DEDUCT,
                                           .id = stock_id_from_cstr(line),
                                           .sku = stock_id_from_cstr(skus[k]), .amount = 1};
    }
}

/* hot's ids: deduction k of batch n is line "h<n>.<k>"; refund k of batch
 * n gives back 1 unit of line "h<n-1>.<k>". */
static void hot_line_id(long n, int k, char *line, size_t size)
{
    snprintf(line, size, "crash-h%ld.%d", n, k);
}

static void hot_refund_id(long n, int k, char *refund, size_t size)
{
    snprintf(refund, size, "crash-hr%ld.%d", n, k);
}

/* Builds hot's batch n (no refunds in batch 0). */
static void build_hot(long n, char ids[][3][48], stock_op *ops)
{
    for (int k = 0; k < CRASH_BATCH; k++)
        ops[k] = (stock_op){.type = STOCK_OP_DEDUCT, .sku = stock_id_from_cstr(CRASH_HOT_SKU),
                            .amount = 2};
    for (int k = 0; k < CRASH_HOT_DEDUCTS; k++) {
        hot_line_id(n, k, ids[k][0], sizeof ids[k][0]);
        ops[k].id = stock_id_from_cstr(ids[k][0]);
    }
    for (int k = 0; k < CRASH_HOT_REFUNDS; k++) {
        stock_op *op = &ops[CRASH_HOT_DEDUCTS + k];
        char *line = ids[CRASH_HOT_DEDUCTS + k][1], *refund = ids[CRASH_HOT_DEDUCTS + k][0];
        /* Batch 0 has no last batch: one more deduction instead. */
        hot_line_id(n, CRASH_HOT_DEDUCTS + k, refund, sizeof ids[0][0]);
        if (n == 0) {
            op->id = stock_id_from_cstr(refund);
            continue;
        }
        hot_refund_id(n, k, refund, sizeof ids[0][0]);
        hot_line_id(n - 1, k, line, sizeof ids[0][0]);
        *op = (stock_op){.type = STOCK_OP_REFUND, .id = stock_id_from_cstr(refund),
                         .line = stock_id_from_cstr(line), .amount = 1};
    }
}

/* The first op of the batch that failed, or -1; *unavailable says whether
 * every failure is UNAVAILABLE. */
static int batch_failure(const stock_op *ops, bool *unavailable)
{
    int first = -1;
    *unavailable = true;
    for (int k = 0; k < CRASH_BATCH; k++)
        if (!stock_code_succeeded(ops[k].code)) {
            first = first < 0 ? k : first;
            *unavailable = *unavailable && ops[k].code == STOCK_UNAVAILABLE;
        }
    return first;
}

/* write, retry (retry) and hot (hot, which retries too). */
static int run_write(const char *base, const char *file, bool retry, bool hot)
{
    char uri[CRASH_URI_MAX];
    snprintf(uri, sizeof uri, "%s%ctimeout_ms=%d", base, strchr(base, '?') ? '&' : '?',
             CRASH_TIMEOUT_MS);
    stock_t *store = open_or_die(uri);
    static char skus[CRASH_SKUS][32];
    for (int i = 0; i < CRASH_SKUS; i++) {
        sku_name(skus[i], sizeof skus[i], i);
        stock_set(store, skus[i], CRASH_STOCK, NULL, NULL, NULL);
    }
    if (hot)
        stock_set(store, CRASH_HOT_SKU, CRASH_STOCK, NULL, NULL, NULL);
    write_count(file, 0);
    printf("ready\n");
    fflush(stdout);
    static char ids[CRASH_BATCH][3][48];
    stock_order_line lines[CRASH_ORDERS][2];
    stock_op ops[CRASH_BATCH];
    long retries = 0;
    for (long n = 0;; n++) {
        time_t deadline = time(NULL) + CRASH_RETRY_S;
        int failed;
        bool unavailable;
        do {
            if (hot)
                build_hot(n, ids, ops);
            else
                build_batch(n, skus, ids, lines, ops);
            stock_execute(store, ops, CRASH_BATCH);
            failed = batch_failure(ops, &unavailable);
            if (failed >= 0 && retry && unavailable && time(NULL) < deadline) {
                if (retries++ == 0)
                    printf("retrying batch %ld: %s\n", n, ops[failed].message);
                fflush(stdout);
                usleep(CRASH_RETRY_PAUSE_US);
                continue;
            }
            break;
        } while (true);
        if (failed >= 0) {
            fprintf(stderr, "redis_crash: batch %ld op %d: %s %s\n", n, failed,
                    stock_code_name(ops[failed].code), ops[failed].message);
            return 1;
        }
        write_count(file, n + 1);
    }
}

static int failures;

static void expect(bool ok, const char *what)
{
    if (!ok) {
        printf("FAIL %s\n", what);
        failures++;
    }
}

/* Checks batch n's orders (all lines or none; all when acknowledged) and
 * adds what exists to the SKUs' expected deducted totals. */
static void check_batch(stock_t *store, long n, bool acknowledged, int64_t *deducted)
{
    char order[48], line_a[48], line_b[48], what[160];
    stock_line_info info;
    for (int k = 0; k < CRASH_ORDERS; k++) {
        order_ids(n, k, order, line_a, line_b, sizeof order);
        bool has_a = stock_line(store, line_a, &info, NULL) == STOCK_OK;
        bool has_b = stock_line(store, line_b, &info, NULL) == STOCK_OK;
        snprintf(what, sizeof what, "order %s: lines %d %d (acknowledged %d)", order, has_a,
                 has_b, acknowledged);
        expect(has_a == has_b && (has_a || !acknowledged), what);
        deducted[k] += has_a ? 1 : 0;
        deducted[(k + 1) % CRASH_SKUS] += has_b ? 2 : 0;
    }
    for (int k = 0; k < CRASH_DEDUCTS; k++) {
        deduct_id(n, k, line_a, sizeof line_a);
        bool has = stock_line(store, line_a, &info, NULL) == STOCK_OK;
        snprintf(what, sizeof what, "deduction %s lost", line_a);
        expect(has || !acknowledged, what);
        deducted[k] += has ? 1 : 0;
    }
}

static int run_check(const char *base, const char *file)
{
    FILE *in = fopen(file, "r");
    long acked = -1;
    if (in == NULL || fscanf(in, "%ld", &acked) != 1)
        return 2;
    fclose(in);
    usleep(2 * CRASH_LEASE_US);   /* every attempt of the dead writer is stale */
    stock_t *store = open_or_die(base);
    int64_t deducted[CRASH_SKUS] = {0};
    /* The batch in flight when the writer died may have begun; none after. */
    for (long n = 0; n <= acked; n++)
        check_batch(store, n, n < acked, deducted);
    for (int i = 0; i < CRASH_SKUS; i++) {
        char sku[32], what[160];
        sku_name(sku, sizeof sku, i);
        stock_sku_info totals;
        stock_get(store, sku, &totals, NULL);
        snprintf(what, sizeof what, "%s: deducted %" PRId64 ", lines %" PRId64 ", available %"
                 PRId64, sku, totals.deducted, deducted[i], totals.available);
        expect(totals.deducted == deducted[i] && totals.available >= 0 &&
               totals.available == totals.adjusted - totals.deducted + totals.refunded, what);
    }
    stock_close(store);
    printf("redis_crash check: %ld batches acknowledged, %d failed\n", acked, failures);
    return failures == 0 ? 0 : 1;
}

/* Checks hot's line h<n>.<k>: there when acknowledged, with its refund
 * when the next batch was acknowledged; adds its units to the sums. */
static void check_hot_line(stock_t *store, long n, int k, long acked, int64_t *deducted,
                           int64_t *refunded)
{
    char line[48], what[160];
    hot_line_id(n, k, line, sizeof line);
    stock_line_info info;
    bool has = stock_line(store, line, &info, NULL) == STOCK_OK;
    snprintf(what, sizeof what, "deduction %s lost", line);
    expect(has || n >= acked, what);
    if (!has)
        return;
    bool refunds = k < CRASH_HOT_REFUNDS && n + 1 < acked;
    snprintf(what, sizeof what, "line %s: qty %" PRId64 " refunded %" PRId64 " (refund "
             "acknowledged %d)", line, info.qty, info.refunded, refunds);
    expect(info.qty == 2 && info.refunded <= (k < CRASH_HOT_REFUNDS ? 1 : 0) &&
           (!refunds || info.refunded == 1), what);
    *deducted += info.qty;
    *refunded += info.refunded;
}

/* The first acknowledged deduction and refund sent again: REPLAY, and
 * the SKU's totals unchanged (I4, I5). */
static void check_hot_replay(stock_t *store, long acked, const stock_sku_info *before)
{
    char line[48], refund[48];
    hot_line_id(0, 0, line, sizeof line);
    expect(stock_deduct(store, line, CRASH_HOT_SKU, 2, NULL, NULL) == STOCK_REPLAY,
           "an acknowledged deduction sent again does not replay");
    if (acked >= 2) {
        hot_refund_id(1, 0, refund, sizeof refund);
        expect(stock_refund(store, refund, line, 1, NULL, NULL) == STOCK_REPLAY,
               "an acknowledged refund sent again does not replay");
    }
    stock_sku_info after;
    stock_get(store, CRASH_HOT_SKU, &after, NULL);
    expect(after.available == before->available && after.deducted == before->deducted &&
           after.refunded == before->refunded, "a replay changed the hot SKU's totals");
}

static int run_hot_check(const char *base, const char *file)
{
    FILE *in = fopen(file, "r");
    long acked = -1;
    if (in == NULL || fscanf(in, "%ld", &acked) != 1)
        return 2;
    fclose(in);
    usleep(2 * CRASH_LEASE_US);   /* the dead writer's moves are stale: the sweep ends them */
    stock_t *store = open_or_die(base);
    int64_t deducted = 0, refunded = 0;
    /* The batch in flight when the writer died may have begun; none after. */
    for (long n = 0; n <= acked; n++)
        for (int k = 0; k < (n == 0 ? CRASH_BATCH : CRASH_HOT_DEDUCTS); k++)
            check_hot_line(store, n, k, acked, &deducted, &refunded);
    stock_sku_info totals;
    stock_get(store, CRASH_HOT_SKU, &totals, NULL);
    char what[200];
    snprintf(what, sizeof what, "%s: deducted %" PRId64 " (lines %" PRId64 "), refunded %" PRId64
             " (lines %" PRId64 "), available %" PRId64 ", adjusted %" PRId64, CRASH_HOT_SKU,
             totals.deducted, deducted, totals.refunded, refunded, totals.available,
             totals.adjusted);
    expect(totals.deducted == deducted && totals.refunded == refunded && totals.available >= 0 &&
           totals.adjusted == CRASH_STOCK &&
           totals.available == totals.adjusted - totals.deducted + totals.refunded, what);
    if (acked >= 1)
        check_hot_replay(store, acked, &totals);
    stock_close(store);
    printf("redis_crash hotcheck: %ld batches acknowledged (%" PRId64 " units deducted, %" PRId64
           " refunded), %d failed\n", acked, deducted, refunded, failures);
    return failures == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: redis_crash write|retry|check|hot|hotcheck URI FILE\n");
        return 2;
    }
    if (strcmp(argv[1], "write") == 0 || strcmp(argv[1], "retry") == 0)
        return run_write(argv[2], argv[3], strcmp(argv[1], "retry") == 0, false);
    if (strcmp(argv[1], "hot") == 0)
        return run_write(argv[2], argv[3], true, true);
    if (strcmp(argv[1], "check") == 0)
        return run_check(argv[2], argv[3]);
    if (strcmp(argv[1], "hotcheck") == 0)
        return run_hot_check(argv[2], argv[3]);
    return 2;
}
