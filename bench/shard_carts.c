/*
 * shard_carts.c -- what a cart over two shards costs against a cart on one,
 * in-process, for the figures in docs/sharded.md.
 *
 *   shard_carts URI [carts]      URI: a shards: store of 2 or more members
 *
 * Creates SKUs, then tells which pairs share a member by placing one probe
 * cart per pair: a cart on one member is that member's commit (the store's
 * syncs grow), a cart over two runs by two-phase commit on the router's own
 * sessions (they do not). Then places `carts` (default 200) two-line carts,
 * one at a time, of each kind, and prints the mean and median latency of
 * each. Exits non-zero if a cart fails or no pair of either kind is found.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stock.h"

#define CARTS_SKUS 16
#define CARTS_ID_SIZE 64
#define CARTS_MAX 100000

static char token[24];
static unsigned serial;

static int64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static void sku_name(char *out, unsigned k)
{
    snprintf(out, CARTS_ID_SIZE, "carts-%s-%u", token, k);
}

/* Places one cart of a line of SKU a and one of SKU b. */
static stock_code cart(stock_t *store, unsigned a, unsigned b)
{
    char order[CARTS_ID_SIZE], lines[2][CARTS_ID_SIZE], skus[2][CARTS_ID_SIZE];
    unsigned n = serial++;
    snprintf(order, sizeof order, "carts-%s-o%u", token, n);
    snprintf(lines[0], sizeof lines[0], "carts-%s-o%u-a", token, n);
    snprintf(lines[1], sizeof lines[1], "carts-%s-o%u-b", token, n);
    sku_name(skus[0], a);
    sku_name(skus[1], b);
    stock_order_line order_lines[2] = {
        {stock_id_from_cstr(lines[0]), stock_id_from_cstr(skus[0]), 1, 0},
        {stock_id_from_cstr(lines[1]), stock_id_from_cstr(skus[1]), 1, 0}};
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_order(store, order, order_lines, 2, NULL, message);
    if (code != STOCK_OK)
        fprintf(stderr, "shard_carts: order %s: %s %s\n", order, stock_code_name(code), message);
    return code;
}

static uint64_t syncs(stock_t *store)
{
    stock_stats stats;
    stock_get_stats(store, &stats);
    return stats.syncs;
}

static int compare(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Times count carts of SKUs a and b; prints mean and median. */
static int time_carts(stock_t *store, const char *label, unsigned a, unsigned b, unsigned count)
{
    int64_t *took = calloc(count, sizeof *took);
    if (took == NULL)
        return 1;
    int64_t total = 0;
    for (unsigned k = 0; k < count; k++) {
        int64_t start = now_ns();
        if (cart(store, a, b) != STOCK_OK) {
            free(took);
            return 1;
        }
        took[k] = now_ns() - start;
        total += took[k];
    }
    qsort(took, count, sizeof *took, compare);
    printf("%-26s %4u carts  mean %6.2f ms  p50 %6.2f ms\n", label, count,
           (double)total / count / 1e6, (double)took[count / 2] / 1e6);
    free(took);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: shard_carts URI [carts]\n");
        return 2;
    }
    unsigned count = argc == 3 ? (unsigned)atoi(argv[2]) : 200;
    if (count < 1 || count > CARTS_MAX) {
        fprintf(stderr, "shard_carts: carts must be 1..%d\n", CARTS_MAX);
        return 2;
    }
    snprintf(token, sizeof token, "%ld-%ld", (long)getpid(), (long)time(NULL));
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_open(argv[1], NULL, &store, message);
    if (code != STOCK_OK) {
        fprintf(stderr, "shard_carts: open: %s %s\n", stock_code_name(code), message);
        return 1;
    }
    for (unsigned k = 0; k < CARTS_SKUS; k++) {
        char sku[CARTS_ID_SIZE];
        sku_name(sku, k);
        if (stock_set(store, sku, 1000000000, NULL, NULL, message) != STOCK_OK)
            return 1;
    }
    int same = -1, across = -1;
    for (unsigned k = 1; k < CARTS_SKUS && (same < 0 || across < 0); k++) {
        uint64_t before = syncs(store);
        if (cart(store, 0, k) != STOCK_OK)
            return 1;
        if (syncs(store) > before)
            same = same < 0 ? (int)k : same;
        else
            across = across < 0 ? (int)k : across;
    }
    if (same < 0 || across < 0) {
        fprintf(stderr, "shard_carts: no pair of SKUs %s\n",
                same < 0 ? "on one member" : "on two members");
        return 1;
    }
    int failed = time_carts(store, "cart on one member", 0, (unsigned)same, count) ||
                 time_carts(store, "cart over two members", 0, (unsigned)across, count);
    return stock_close(store) == STOCK_OK && !failed ? 0 : 1;
}
