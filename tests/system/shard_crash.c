/*
 * shard_crash.c -- the sharded backend's crash test helper: carts over
 * several shards killed at each step of their two-phase commit.
 *
 *   shard_crash setup URI TOKEN        creates the SKUs of the run
 *   shard_crash write URI TOKEN STEP ROUND COUNT
 *                                      places carts over every SKU, one at a
 *                                      time, numbered from ROUND's base, and
 *                                      kills itself with SIGKILL when the
 *                                      store's log says STEP (a word of its
 *                                      DEBUG messages: "preparing" and
 *                                      "decided" once per cart, "prepared"
 *                                      and "committed" once per shard of
 *                                      it) for the COUNTth time; exits 3 if
 *                                      it never does
 *   shard_crash check URI TOKEN ROUNDS opens the store (its recovery runs),
 *                                      then checks: every cart has all its
 *                                      lines or none (I3); each SKU's totals
 *                                      balance (I2) and its deducted total
 *                                      is the sum of the lines it holds;
 *                                      no prepared transaction is left on
 *                                      any member. Prints "carts=N whole=W".
 *   shard_crash prepared URI           prints the count of prepared
 *                                      transactions over the members
 *   shard_crash hotwrite URI TOKEN STEP ROUND COUNT
 *                                      URI spreads every SKU over 3 shards
 *                                      ("hot=3:*"): sets SKU hc-TOKEN-ROUND
 *                                      to HOT_LEVEL (a third per piece),
 *                                      then deducts HOT_LINES lines of
 *                                      HOT_QTY, more than a piece holds, so
 *                                      that each is gathered across the
 *                                      pieces by two-phase commit ("no
 *                                      piece covers", then the cart steps);
 *                                      dies at STEP as write does
 *   shard_crash hotcheck URI TOKEN ROUND
 *                                      opens the store (its recovery runs);
 *                                      checks that the SKU balances (I2),
 *                                      holds HOT_LEVEL less the lines the
 *                                      directory finds, and that no
 *                                      prepared transaction is left. Prints
 *                                      "lines=N"
 *
 * tests/suites/55-sharded-crash.sh runs write then check, many times, at
 * every step. The SKUs are many enough that a cart spans several shards.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stock.h"

#define CRASH_SKUS 8            /* lines per cart: one per SKU */
#define CRASH_CARTS_MAX 200     /* carts a writer places before giving up */
#define CRASH_ID_SIZE 64
#define CRASH_STOCK 1000000LL
#define CRASH_URI_MAX 8192

static const char *crash_step;
static int crash_countdown;

/* The log hook of the writer: dies at the step (a kill -9 of itself). The
 * store's only thread that logs these steps is its worker. */
static void die_at_step(void *user, stock_log_level level, const char *message)
{
    (void)user;
    if (level == STOCK_LOG_DEBUG && strstr(message, crash_step) != NULL && --crash_countdown == 0)
        raise(SIGKILL);
}

static void sku_name(char *out, const char *token, unsigned k)
{
    snprintf(out, CRASH_ID_SIZE, "sc-%.24s-sku%u", token, k);
}

static void line_name(char *out, const char *token, unsigned cart, unsigned k)
{
    snprintf(out, CRASH_ID_SIZE, "sc-%.24s-c%u-l%u", token, cart, k);
}

static stock_t *open_store(const char *uri, const stock_config *config)
{
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_open(uri, config, &store, message);
    if (code != STOCK_OK) {
        fprintf(stderr, "shard_crash: open: %s: %s\n", stock_code_name(code), message);
        exit(1);
    }
    return store;
}

static int setup(const char *uri, const char *token)
{
    stock_t *store = open_store(uri, NULL);
    for (unsigned k = 0; k < CRASH_SKUS; k++) {
        char sku[CRASH_ID_SIZE];
        sku_name(sku, token, k);
        char message[STOCK_MESSAGE_MAX];
        stock_code code = stock_set(store, sku, CRASH_STOCK, NULL, NULL, message);
        if (code != STOCK_OK) {
            fprintf(stderr, "shard_crash: set %s: %s %s\n", sku, stock_code_name(code), message);
            return 1;
        }
    }
    return stock_close(store) == STOCK_OK ? 0 : 1;
}

static int write_carts(const char *uri, const char *token, const char *step, unsigned round,
                       int count)
{
    crash_step = step;
    crash_countdown = count;
    stock_config config = {.log = die_at_step};
    stock_t *store = open_store(uri, &config);
    unsigned first = round * CRASH_CARTS_MAX;
    for (unsigned cart = first; cart < first + CRASH_CARTS_MAX; cart++) {
        char order[CRASH_ID_SIZE], lines[CRASH_SKUS][CRASH_ID_SIZE], skus[CRASH_SKUS][CRASH_ID_SIZE];
        stock_order_line order_lines[CRASH_SKUS];
        snprintf(order, sizeof order, "sc-%.24s-c%u", token, cart);
        for (unsigned k = 0; k < CRASH_SKUS; k++) {
            line_name(lines[k], token, cart, k);
            sku_name(skus[k], token, k);
            order_lines[k] = (stock_order_line){stock_id_from_cstr(lines[k]),
                                                stock_id_from_cstr(skus[k]), 1 + k, 0};
        }
        char message[STOCK_MESSAGE_MAX];
        stock_code code = stock_order(store, order, order_lines, CRASH_SKUS, NULL, message);
        if (code != STOCK_OK) {
            fprintf(stderr, "shard_crash: order %s: %s %s\n", order, stock_code_name(code), message);
            return 1;
        }
    }
    fprintf(stderr, "shard_crash: the step \"%s\" never came\n", step);
    return 3;
}

/* The members' URIs, split from a shards: URI (in place). */
static unsigned members(char *uri, char **out, unsigned max)
{
    unsigned count = 0;
    char *cursor = uri + strlen("shards:");
    for (char *next = NULL; cursor != NULL && count < max; cursor = next) {
        next = strchr(cursor, ';');
        if (next != NULL)
            *next++ = '\0';
        if (strncmp(cursor, "hot=", 4) != 0)   /* the hot SKUs, not a member */
            out[count++] = cursor;
    }
    return count;
}

/* Prepared transactions over every member; -1 on an error. */
static long prepared_count(const char *uri)
{
    char copy[CRASH_URI_MAX], *uris[16];
    snprintf(copy, sizeof copy, "%s", uri);
    unsigned count = members(copy, uris, 16);
    long total = 0;
    for (unsigned i = 0; i < count; i++) {
        PGconn *conn = PQconnectdb(uris[i]);
        PGresult *result = PQexec(conn, "SELECT count(*) FROM pg_prepared_xacts");
        if (PQresultStatus(result) != PGRES_TUPLES_OK) {
            fprintf(stderr, "shard_crash: member %u: %s", i, PQerrorMessage(conn));
            total = -1;
        } else if (total >= 0) {
            total += atol(PQgetvalue(result, 0, 0));
        }
        PQclear(result);
        PQfinish(conn);
    }
    return total;
}

/* Counts the lines of one cart that exist; adds their quantities to the
 * SKUs' sums. */
static unsigned cart_lines(stock_t *store, const char *token, unsigned cart, int64_t *sums)
{
    unsigned found = 0;
    for (unsigned k = 0; k < CRASH_SKUS; k++) {
        char line[CRASH_ID_SIZE];
        line_name(line, token, cart, k);
        stock_line_info info;
        if (stock_line(store, line, &info, NULL) == STOCK_OK) {
            found++;
            sums[k] += info.qty;
        }
    }
    return found;
}

/* Whether sku balances (I2), its deducted total is lines (the quantities
 * of the lines found) and it holds level less that; says why not. */
static bool balanced(stock_t *store, const char *sku, int64_t level, int64_t lines)
{
    stock_sku_info info = {0};
    if (stock_get(store, sku, &info, NULL) == STOCK_OK &&
        info.available == info.adjusted - info.deducted + info.refunded &&
        info.deducted == lines && info.available == level - lines)
        return true;
    fprintf(stderr, "shard_crash: %s does not balance: available %" PRId64 " adjusted %" PRId64
            " deducted %" PRId64 ", lines %" PRId64 " (I2)\n", sku, info.available,
            info.adjusted, info.deducted, lines);
    return false;
}

/* Whether no member holds a prepared transaction; says how many if so. */
static bool none_prepared(const char *uri)
{
    long prepared = prepared_count(uri);
    if (prepared != 0)
        fprintf(stderr, "shard_crash: %ld prepared transaction(s) left after recovery\n", prepared);
    return prepared == 0;
}

static int check(const char *uri, const char *token, unsigned rounds)
{
    stock_t *store = open_store(uri, NULL);
    int64_t sums[CRASH_SKUS] = {0};
    int failures = 0;
    unsigned carts = 0, whole = 0;
    for (unsigned base = 0; base < rounds * CRASH_CARTS_MAX; base += CRASH_CARTS_MAX) {
        for (unsigned cart = base; cart < base + CRASH_CARTS_MAX; cart++) {
            unsigned found = cart_lines(store, token, cart, sums);
            if (found == 0)
                break;   /* a writer's carts are consecutive: it died here */
            carts++;
            whole += found == CRASH_SKUS;
            if (found != CRASH_SKUS) {
                fprintf(stderr, "shard_crash: cart %u has %u of %d lines (I3)\n", cart, found,
                        CRASH_SKUS);
                failures++;
            }
        }
    }
    for (unsigned k = 0; k < CRASH_SKUS; k++) {
        char sku[CRASH_ID_SIZE];
        sku_name(sku, token, k);
        failures += !balanced(store, sku, CRASH_STOCK, sums[k]);
    }
    stock_close(store);
    failures += !none_prepared(uri);
    printf("carts=%u whole=%u\n", carts, whole);
    return failures == 0 ? 0 : 1;
}

#define HOT_LEVEL 300
#define HOT_QTY 101
#define HOT_LINES 2

static void hot_names(char *sku, char *line, const char *token, unsigned round, unsigned k)
{
    snprintf(sku, CRASH_ID_SIZE, "hc-%.24s-%u", token, round);
    snprintf(line, CRASH_ID_SIZE, "hc-%.24s-%u-l%u", token, round, k);
}

static int hot_write(const char *uri, const char *token, const char *step, unsigned round,
                     int count)
{
    /* Armed after the set, which is a two-phase commit too: the kill must
     * land in a deduction's. */
    crash_step = step;
    crash_countdown = -1;
    stock_config config = {.log = die_at_step};
    stock_t *store = open_store(uri, &config);
    char sku[CRASH_ID_SIZE], line[CRASH_ID_SIZE];
    hot_names(sku, line, token, round, 0);
    if (stock_set(store, sku, HOT_LEVEL, NULL, NULL, NULL) != STOCK_OK)
        return 1;
    crash_countdown = count;
    for (unsigned k = 0; k < HOT_LINES; k++) {
        hot_names(sku, line, token, round, k);
        stock_code code = stock_deduct(store, line, sku, HOT_QTY, NULL, NULL);
        if (code != STOCK_OK) {
            fprintf(stderr, "shard_crash: deduct %s: %s\n", line, stock_code_name(code));
            return 1;
        }
    }
    stock_close(store);
    return 3;   /* never reached the step */
}

static int hot_check(const char *uri, const char *token, unsigned round)
{
    stock_t *store = open_store(uri, NULL);
    char sku[CRASH_ID_SIZE], line[CRASH_ID_SIZE];
    int64_t lines = 0, sum = 0;
    for (unsigned k = 0; k < HOT_LINES; k++) {
        hot_names(sku, line, token, round, k);
        stock_line_info info;
        if (stock_line(store, line, &info, NULL) == STOCK_OK) {
            lines++;
            sum += info.qty;
        }
    }
    int failures = !balanced(store, sku, HOT_LEVEL, sum);
    stock_close(store);
    failures += !none_prepared(uri);
    printf("lines=%" PRId64 "\n", lines);
    return failures == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "hotwrite") == 0)
        return hot_write(argv[2], argv[3], argv[4], (unsigned)atoi(argv[5]), atoi(argv[6]));
    if (argc == 5 && strcmp(argv[1], "hotcheck") == 0)
        return hot_check(argv[2], argv[3], (unsigned)atoi(argv[4]));
    if (argc == 4 && strcmp(argv[1], "setup") == 0)
        return setup(argv[2], argv[3]);
    if (argc == 7 && strcmp(argv[1], "write") == 0)
        return write_carts(argv[2], argv[3], argv[4], (unsigned)atoi(argv[5]), atoi(argv[6]));
    if (argc == 5 && strcmp(argv[1], "check") == 0)
        return check(argv[2], argv[3], (unsigned)atoi(argv[4]));
    if (argc == 3 && strcmp(argv[1], "prepared") == 0) {
        long count = prepared_count(argv[2]);
        printf("%ld\n", count);
        return count < 0 ? 1 : 0;
    }
    fprintf(stderr, "usage: shard_crash setup|write|check|prepared|hotwrite|hotcheck URI [TOKEN [STEP ROUND COUNT | ROUNDS]]\n");
    return 2;
}
