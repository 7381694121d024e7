/*
 * reshard_check.c -- the helper of tests/suites/55-sharded-reshard.sh.
 *
 *   reshard_check setup URI        SKUs with lines, adjustments, refunds and
 *                                  orders over several SKUs (so across
 *                                  shards), all with known results
 *   reshard_check check URI        opens the store and checks every SKU's
 *                                  available stock and every line (SKU, qty,
 *                                  refunded) against what setup did, and
 *                                  that a retry of each order answers
 *                                  REPLAY (CONFLICT with two lines
 *                                  swapped); then
 *                                  refunds one more unit of a line of each
 *                                  SKU by its line id alone (OK, or REPLAY
 *                                  when run again) and deducts a new line
 *                                  of each. Prints "skus=N lines=L"
 *   reshard_check kill OLD NEW N   stock_reshard OLD NEW, killing itself
 *                                  (SIGKILL) at the Nth DEBUG message of the
 *                                  move (one per step: a pair ran, prepared
 *                                  on each side, decided, committed on each
 *                                  side; a SKU's ids redirected; the map or
 *                                  move record written on a member). Prints
 *                                  "done" if the move ended first.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stock.h"

#define RS_SKUS 40
#define RS_LINES 3              /* lines of each SKU, qty 1..RS_LINES */
#define RS_ORDERS 20
#define RS_ORDER_LINES 3
#define RS_LEVEL 1000
#define RS_ADD 5                /* added to each even SKU */
#define RS_ID 48

static int countdown;

static void die_at(void *user, stock_log_level level, const char *message)
{
    (void)user;
    (void)message;
    if (level == STOCK_LOG_DEBUG && --countdown == 0)
        raise(SIGKILL);
}

static void name(char *out, const char *fmt, unsigned a, unsigned b)
{
    snprintf(out, RS_ID, fmt, a, b);
}

/* The SKU of line p of order o. */
static unsigned order_sku(unsigned o, unsigned p)
{
    return (o * 7 + p * 13) % RS_SKUS;
}

static int64_t expected_available(unsigned k)
{
    int64_t available = RS_LEVEL + (k % 2 == 0 ? RS_ADD : 0) + 1;   /* one refund */
    for (unsigned m = 0; m < RS_LINES; m++)
        available -= m + 1;
    for (unsigned o = 0; o < RS_ORDERS; o++)
        for (unsigned p = 0; p < RS_ORDER_LINES; p++)
            available -= order_sku(o, p) == k;
    return available;
}

static stock_t *open_store(const char *uri)
{
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX];
    if (stock_open(uri, NULL, &store, message) != STOCK_OK) {
        fprintf(stderr, "open: %s\n", message);
        exit(1);
    }
    return store;
}

static void expect(stock_code code, bool replay_too, const char *what, const char *id)
{
    if (code == STOCK_OK || (replay_too && code == STOCK_REPLAY))
        return;
    fprintf(stderr, "%s %s: %s\n", what, id, stock_code_name(code));
    exit(1);
}

/* Order o of setup: its id and lines (1 unit each). */
typedef struct rs_order {
    char id[RS_ID], line_ids[RS_ORDER_LINES][RS_ID], skus[RS_ORDER_LINES][RS_ID];
    stock_order_line lines[RS_ORDER_LINES];
} rs_order;

static void order_of(unsigned o, rs_order *order)
{
    for (unsigned p = 0; p < RS_ORDER_LINES; p++) {
        name(order->line_ids[p], "rs-o%u-%u", o, p);
        name(order->skus[p], "rs-s%u", order_sku(o, p), 0);
        order->lines[p] = (stock_order_line){.line_id = stock_id_from_cstr(order->line_ids[p]),
                                             .sku = stock_id_from_cstr(order->skus[p]),
                                             .qty = 1};
    }
    name(order->id, "rs-o%u", o, 0);
}

/* A retry of every order of setup answers REPLAY with each line's
 * recorded available, whatever shards its SKUs moved to, and one with two
 * lines swapped CONFLICT. */
static void check_order_retries(stock_t *store)
{
    for (unsigned o = 0; o < RS_ORDERS; o++) {
        rs_order order_buf, *order = &order_buf;
        order_of(o, order);
        stock_code code = stock_order(store, order->id, order->lines, RS_ORDER_LINES, NULL, NULL);
        if (code != STOCK_REPLAY) {
            fprintf(stderr, "order %s retried: %s, expected REPLAY\n", order->id,
                    stock_code_name(code));
            exit(1);
        }
        for (unsigned p = 0; p < RS_ORDER_LINES; p++) {
            stock_line_info info;
            expect(stock_line(store, order->line_ids[p], &info, NULL), false, "line",
                   order->line_ids[p]);
            if (order->lines[p].available != info.available_after) {
                fprintf(stderr, "order %s retried: line %u available %" PRId64 ", recorded "
                        "%" PRId64 "\n", order->id, p, order->lines[p].available,
                        info.available_after);
                exit(1);
            }
        }
        stock_order_line swapped = order->lines[0];
        order->lines[0] = order->lines[1];
        order->lines[1] = swapped;
        code = stock_order(store, order->id, order->lines, RS_ORDER_LINES, NULL, NULL);
        if (code != STOCK_CONFLICT) {
            fprintf(stderr, "order %s retried with two lines swapped: %s, expected "
                    "CONFLICT\n", order->id, stock_code_name(code));
            exit(1);
        }
    }
}

static int setup(const char *uri)
{
    stock_t *store = open_store(uri);
    char sku[RS_ID], id[RS_ID];
    for (unsigned k = 0; k < RS_SKUS; k++) {
        name(sku, "rs-s%u", k, 0);
        expect(stock_set(store, sku, RS_LEVEL, NULL, NULL, NULL), true, "set", sku);
        if (k % 2 == 0) {
            name(id, "rs-a%u", k, 0);
            expect(stock_add(store, sku, RS_ADD, id, NULL, NULL), true, "add", id);
        }
        for (unsigned m = 0; m < RS_LINES; m++) {
            name(id, "rs-l%u-%u", k, m);
            expect(stock_deduct(store, id, sku, m + 1, NULL, NULL), true, "deduct", id);
        }
    }
    for (unsigned o = 0; o < RS_ORDERS; o++) {
        rs_order order;
        order_of(o, &order);
        expect(stock_order(store, order.id, order.lines, RS_ORDER_LINES, NULL, NULL), true,
               "order", order.id);
    }
    for (unsigned k = 0; k < RS_SKUS; k++) {
        char line[RS_ID];
        name(id, "rs-r%u", k, 0);
        name(line, "rs-l%u-%u", k, 1);
        expect(stock_refund(store, id, line, 1, NULL, NULL), true, "refund", id);
    }
    return stock_close(store) == STOCK_OK ? 0 : 1;
}

static void check_line(stock_t *store, const char *id, unsigned sku, int64_t qty,
                       int64_t refunded)
{
    stock_line_info info;
    char want[RS_ID];
    name(want, "rs-s%u", sku, 0);
    expect(stock_line(store, id, &info, NULL), false, "line", id);
    if (strcmp(want, info.sku) != 0 || info.qty != qty || info.refunded != refunded) {
        fprintf(stderr, "line %s: sku %s qty %" PRId64 " refunded %" PRId64 ", expected %s "
                "%" PRId64 " %" PRId64 "\n", id, info.sku, info.qty,
                info.refunded, want, qty, refunded);
        exit(1);
    }
}

static int check(const char *uri)
{
    stock_t *store = open_store(uri);
    char sku[RS_ID], id[RS_ID];
    unsigned lines = 0;
    for (unsigned k = 0; k < RS_SKUS; k++) {
        name(sku, "rs-s%u", k, 0);
        stock_sku_info info;
        expect(stock_get(store, sku, &info, NULL), false, "get", sku);
        if (info.available != expected_available(k)) {
            fprintf(stderr, "sku %s: available %" PRId64 ", expected %" PRId64 "\n", sku,
                    info.available, expected_available(k));
            return 1;
        }
        for (unsigned m = 0; m < RS_LINES; m++, lines++) {
            name(id, "rs-l%u-%u", k, m);
            check_line(store, id, k, m + 1, m == 1);
        }
    }
    for (unsigned o = 0; o < RS_ORDERS; o++)
        for (unsigned p = 0; p < RS_ORDER_LINES; p++, lines++) {
            name(id, "rs-o%u-%u", o, p);
            check_line(store, id, order_sku(o, p), 1, 0);
        }
    check_order_retries(store);
    for (unsigned k = 0; k < RS_SKUS; k++) {
        char line[RS_ID];
        name(id, "rs-r2-%u", k, 0);
        name(line, "rs-l%u-%u", k, 2);
        expect(stock_refund(store, id, line, 1, NULL, NULL), true, "refund after the move", id);
        name(id, "rs-n%u", k, 0);
        name(sku, "rs-s%u", k, 0);
        expect(stock_deduct(store, id, sku, 1, NULL, NULL), true, "deduct after the move", id);
    }
    printf("skus=%u lines=%u\n", RS_SKUS, lines);
    return stock_close(store) == STOCK_OK ? 0 : 1;
}

static int kill_at(const char *from, const char *to, int n)
{
    countdown = n;
    stock_config config = {.log = die_at};
    stock_reshard_info info;
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_reshard(from, to, &config, &info, message);
    if (code != STOCK_OK) {
        fprintf(stderr, "reshard: %s: %s\n", stock_code_name(code), message);
        return 1;
    }
    printf("done\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "setup") == 0)
        return setup(argv[2]);
    if (argc == 3 && strcmp(argv[1], "check") == 0)
        return check(argv[2]);
    if (argc == 5 && strcmp(argv[1], "kill") == 0)
        return kill_at(argv[2], argv[3], atoi(argv[4]));
    fprintf(stderr, "usage: reshard_check setup URI | check URI | kill OLD NEW N\n");
    return 2;
}
