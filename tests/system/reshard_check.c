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
 *   reshard_check hotsetup URI     hot SKUs rs-h0..rs-h7 (URI names them hot):
 *                                  each set, deducted by lines that land on
 *                                  its several pieces, one line refunded;
 *                                  orders of two hot SKUs' lines (carts
 *                                  over their pieces);
 *                                  the last RS_HOT_LATE are set through the
 *                                  URI without its hot= segment (SKUs named
 *                                  hot later: rows on piece 0 alone)
 *   reshard_check hotcheck URI     each hot SKU's total and every line (SKU,
 *                                  qty, refunded) as hotsetup left them; a
 *                                  unit of each line but the first two
 *                                  refunded by line id alone; a retry of
 *                                  each order answers REPLAY (CONFLICT with
 *                                  its lines swapped); then deductions
 *                                  down to 0 exactly, none refused before,
 *                                  and one more refused INSUFFICIENT
 *   reshard_check hotlate URI      no move: SKUs rs-l0..rs-l4 set through
 *                                  the URI without its hot= segment (rows
 *                                  on piece 0 alone), then, through URI
 *                                  (which names them hot), carts of their
 *                                  lines: each taken while the SKU's total
 *                                  covers it (whatever piece its lines
 *                                  hash to), REPLAY when retried, and
 *                                  refused INSUFFICIENT with the total when
 *                                  it does not cover it, changing nothing
 *   reshard_check ranks N SKU...   for each SKU, its line then the N member
 *                                  positions ranked by its rendezvous
 *                                  score, highest first (docs/sharded.md,
 *                                  "Where a SKU lives"), computed here from
 *                                  that rule, not by the library: the
 *                                  first K are where a hot SKU's pieces go
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

#include <xxhash.h>

#include "stock.h"

#define RS_SKUS 40
#define RS_LINES 3              /* lines of each SKU, qty 1..RS_LINES */
#define RS_ORDERS 20
#define RS_ORDER_LINES 3
#define RS_LEVEL 1000
#define RS_ADD 5                /* added to each even SKU */
#define RS_ID 48
#define RS_HOT_SKUS 8
#define RS_HOT_LEVEL 100
#define RS_HOT_LINES 8          /* lines of each hot SKU, qty 1..RS_HOT_LINES */
#define RS_HOT_STEP 3           /* deducted at a time down to 0 */
#define RS_HOT_LATE 4           /* hot SKUs created before they were named hot */
#define RS_LATE_SKUS 4          /* hotlate's SKUs with carts, rs-l0..rs-l3 */
#define RS_LATE_LEVEL 20
#define RS_LATE_SHORT 5         /* the level of hotlate's last SKU, rs-l4 */
#define RS_MEMBERS_MAX 16       /* members of a store (docs/sharded.md, "The URI") */

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

/* An order of the checks: its id, and its lines' ids and SKUs, which
 * lines point into. */
#define RS_CART_LINES_MAX 4
typedef struct rs_order {
    char id[RS_ID], line_ids[RS_CART_LINES_MAX][RS_ID], skus[RS_CART_LINES_MAX][RS_ID];
    stock_order_line lines[RS_CART_LINES_MAX];
} rs_order;

/* Points line p of order at its id and SKU (already named) for qty. */
static void order_line(rs_order *order, unsigned p, int64_t qty)
{
    order->lines[p] = (stock_order_line){.line_id = stock_id_from_cstr(order->line_ids[p]),
                                         .sku = stock_id_from_cstr(order->skus[p]), .qty = qty};
}

/* Order o of setup: its id and lines (1 unit each). */
static void order_of(unsigned o, rs_order *order)
{
    for (unsigned p = 0; p < RS_ORDER_LINES; p++) {
        name(order->line_ids[p], "rs-o%u-%u", o, p);
        name(order->skus[p], "rs-s%u", order_sku(o, p), 0);
        order_line(order, p, 1);
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

/* Line id reads back with its SKU (want), qty and refunded units. */
static void check_line_of(stock_t *store, const char *id, const char *want, int64_t qty,
                          int64_t refunded)
{
    stock_line_info info;
    expect(stock_line(store, id, &info, NULL), false, "line", id);
    if (strcmp(want, info.sku) != 0 || info.qty != qty || info.refunded != refunded) {
        fprintf(stderr, "line %s: sku %s qty %" PRId64 " refunded %" PRId64 ", expected %s "
                "%" PRId64 " %" PRId64 "\n", id, info.sku, info.qty,
                info.refunded, want, qty, refunded);
        exit(1);
    }
}

static void check_line(stock_t *store, const char *id, unsigned sku, int64_t qty,
                       int64_t refunded)
{
    char want[RS_ID];
    name(want, "rs-s%u", sku, 0);
    check_line_of(store, id, want, qty, refunded);
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

/* Hot orders of hotsetup: order o takes a unit of rs-h<2o> and one of
 * rs-h<2o+1>, a cart over their pieces; only SKUs set while named hot, so
 * that those named hot later keep rows on piece 0 alone up to the move
 * (hotlate orders such SKUs, without a move). */
#define RS_HOT_ORDERS ((RS_HOT_SKUS - RS_HOT_LATE) / 2)

/* What hot SKU k has deducted after hotsetup: its lines, and one order
 * line if it has one. */
static int64_t hot_deducted(unsigned k)
{
    return RS_HOT_LINES * (RS_HOT_LINES + 1) / 2 + (k < 2 * RS_HOT_ORDERS);
}

/* What hot SKU k holds after hotsetup: less one unit refunded. */
static int64_t hot_available(unsigned k)
{
    return RS_HOT_LEVEL - hot_deducted(k) + 1;
}

static void hot_order_of(unsigned o, rs_order *order)
{
    for (unsigned p = 0; p < 2; p++) {
        name(order->line_ids[p], "rs-hol%u-%u", o, p);
        name(order->skus[p], "rs-h%u", 2 * o + p, 0);
        order_line(order, p, 1);
    }
    name(order->id, "rs-ho%u", o, 0);
}

/* Opens uri without its hot= segment: a store that names no SKU hot, so
 * a SKU set through it has rows on its piece 0 alone. */
static stock_t *open_plain(const char *uri)
{
    char plain[4096];
    const char *members = strchr(uri, ';');
    if (members == NULL || strncmp(uri, "shards:hot=", strlen("shards:hot=")) != 0) {
        fprintf(stderr, "%s has no hot= segment\n", uri);
        exit(2);
    }
    snprintf(plain, sizeof plain, "shards:%s", members + 1);
    return open_store(plain);
}

static int hot_setup(const char *uri)
{
    char sku[RS_ID], id[RS_ID], line[RS_ID];
    stock_t *store = open_plain(uri);
    for (unsigned k = RS_HOT_SKUS - RS_HOT_LATE; k < RS_HOT_SKUS; k++) {
        name(sku, "rs-h%u", k, 0);
        expect(stock_set(store, sku, RS_HOT_LEVEL, NULL, NULL, NULL), true, "set", sku);
    }
    if (stock_close(store) != STOCK_OK)
        return 1;
    store = open_store(uri);
    for (unsigned k = 0; k < RS_HOT_SKUS; k++) {
        name(sku, "rs-h%u", k, 0);
        if (k < RS_HOT_SKUS - RS_HOT_LATE)
            expect(stock_set(store, sku, RS_HOT_LEVEL, NULL, NULL, NULL), true, "set", sku);
        for (unsigned m = 0; m < RS_HOT_LINES; m++) {
            name(id, "rs-hl%u-%u", k, m);
            expect(stock_deduct(store, id, sku, m + 1, NULL, NULL), true, "deduct", id);
        }
        name(id, "rs-hr%u", k, 0);
        name(line, "rs-hl%u-%u", k, 1);
        expect(stock_refund(store, id, line, 1, NULL, NULL), true, "refund", id);
    }
    for (unsigned o = 0; o < RS_HOT_ORDERS; o++) {
        rs_order order;
        hot_order_of(o, &order);
        char message[STOCK_MESSAGE_MAX];
        stock_code code = stock_order(store, order.id, order.lines, 2, NULL, message);
        if (code != STOCK_OK && code != STOCK_REPLAY)
            fprintf(stderr, "order %s: %s\n", order.id, message);
        expect(code, true, "order", order.id);
    }
    return stock_close(store) == STOCK_OK ? 0 : 1;
}

/* Deducts sku's available down to 0, RS_HOT_STEP at a time: a refusal
 * before 0 is a failure, as is a deduction taken past it. */
static bool hot_sell_out(stock_t *store, unsigned k, const char *sku, int64_t available)
{
    char id[RS_ID];
    for (unsigned n = 0; available > 0; n++) {
        int64_t qty = available < RS_HOT_STEP ? available : RS_HOT_STEP, after = -1;
        name(id, "rs-hd%u-%u", k, n);
        stock_code code = stock_deduct(store, id, sku, qty, &after, NULL);
        if (code != STOCK_OK || after != available - qty) {
            fprintf(stderr, "sku %s: deducting %" PRId64 " of %" PRId64 ": %s, available "
                    "after %" PRId64 "\n", sku, qty, available, stock_code_name(code), after);
            return false;
        }
        available -= qty;
    }
    name(id, "rs-hd%u-last", k, 0);
    stock_code code = stock_deduct(store, id, sku, 1, NULL, NULL);
    if (code != STOCK_INSUFFICIENT) {
        fprintf(stderr, "sku %s: a deduction past 0: %s\n", sku, stock_code_name(code));
        return false;
    }
    return true;
}

static int hot_check(const char *uri)
{
    stock_t *store = open_store(uri);
    char sku[RS_ID], id[RS_ID], line[RS_ID];
    for (unsigned k = 0; k < RS_HOT_SKUS; k++) {
        name(sku, "rs-h%u", k, 0);
        stock_sku_info info;
        expect(stock_get(store, sku, &info, NULL), false, "get", sku);
        if (info.available != hot_available(k) || info.deducted != hot_deducted(k) ||
            info.refunded != 1) {
            fprintf(stderr, "hot sku %s: available %" PRId64 " deducted %" PRId64 " refunded %"
                    PRId64 ", expected %" PRId64 " %" PRId64 " 1\n", sku, info.available,
                    info.deducted, info.refunded, hot_available(k), hot_deducted(k));
            return 1;
        }
        for (unsigned m = 0; m < RS_HOT_LINES; m++) {
            name(id, "rs-hl%u-%u", k, m);
            check_line_of(store, id, sku, m + 1, m == 1);
        }
        for (unsigned m = 2; m < RS_HOT_LINES; m++) {
            name(id, "rs-hr2-%u-%u", k, m);
            name(line, "rs-hl%u-%u", k, m);
            expect(stock_refund(store, id, line, 1, NULL, NULL), false, "refund after the move",
                   id);
        }
    }
    for (unsigned o = 0; o < RS_HOT_ORDERS; o++) {
        rs_order order;
        hot_order_of(o, &order);
        char message[STOCK_MESSAGE_MAX];
        int32_t failed = -1;
        stock_code code = stock_order(store, order.id, order.lines, 2, &failed, message);
        if (code != STOCK_REPLAY) {
            fprintf(stderr, "hot order %s retried: %s (line %d: %s), expected REPLAY\n",
                    order.id, stock_code_name(code), failed, message);
            return 1;
        }
        for (unsigned p = 0; p < 2; p++)
            check_line_of(store, order.line_ids[p], order.skus[p], 1, 0);
        stock_order_line swapped = order.lines[0];
        order.lines[0] = order.lines[1];
        order.lines[1] = swapped;
        code = stock_order(store, order.id, order.lines, 2, NULL, NULL);
        if (code != STOCK_CONFLICT) {
            fprintf(stderr, "hot order %s retried with its lines swapped: %s, expected "
                    "CONFLICT\n", order.id, stock_code_name(code));
            return 1;
        }
    }
    for (unsigned k = 0; k < RS_HOT_SKUS; k++) {
        name(sku, "rs-h%u", k, 0);
        if (!hot_sell_out(store, k, sku, hot_available(k) + RS_HOT_LINES - 2))
            return 1;
    }
    printf("hot skus=%u sold out\n", RS_HOT_SKUS);
    return stock_close(store) == STOCK_OK ? 0 : 1;
}

/* Order o of hotlate: RS_LATE_LINES lines of 1, 2, ... units, the first
 * half of rs-l<o>, the rest of the next SKU: a cart over the pieces of
 * both, with lines on either piece. */
#define RS_LATE_LINES RS_CART_LINES_MAX
static void late_order_of(unsigned o, rs_order *order)
{
    for (unsigned p = 0; p < RS_LATE_LINES; p++) {
        name(order->line_ids[p], "rs-lol%u-%u", o, p);
        name(order->skus[p], "rs-l%u", (o + p / (RS_LATE_LINES / 2)) % RS_LATE_SKUS, 0);
        order_line(order, p, p + 1);
    }
    name(order->id, "rs-lo%u", o, 0);
}

/* Orders order_id, expecting want; an INSUFFICIENT must name line 0 and
 * the SKU's total, available. */
static bool late_cart(stock_t *store, const char *order_id, stock_order_line *lines,
                      unsigned count, stock_code want, int64_t available)
{
    char message[STOCK_MESSAGE_MAX], total[32];
    int32_t failed = -1;
    snprintf(total, sizeof total, "available=%" PRId64, available);
    stock_code code = stock_order(store, order_id, lines, count, &failed, message);
    bool ok = code == want && (code != STOCK_INSUFFICIENT ||
                               (failed == 0 && strstr(message, total) != NULL));
    if (!ok)
        fprintf(stderr, "order %s: %s (line %d: %s), expected %s\n", order_id,
                stock_code_name(code), failed, code == STOCK_OK ? "" : message,
                stock_code_name(want));
    return ok;
}

static bool late_totals(stock_t *store, const char *sku, int64_t available, int64_t deducted)
{
    stock_sku_info info;
    expect(stock_get(store, sku, &info, NULL), false, "get", sku);
    if (info.available == available && info.deducted == deducted)
        return true;
    fprintf(stderr, "sku %s: available %" PRId64 " deducted %" PRId64 ", expected %" PRId64
            " %" PRId64 "\n", sku, info.available, info.deducted, available, deducted);
    return false;
}

static int hot_late(const char *uri)
{
    char sku[RS_ID];
    stock_t *store = open_plain(uri);
    for (unsigned k = 0; k <= RS_LATE_SKUS; k++) {
        name(sku, "rs-l%u", k, 0);
        expect(stock_set(store, sku, k < RS_LATE_SKUS ? RS_LATE_LEVEL : RS_LATE_SHORT, NULL,
                         NULL, NULL), false, "set", sku);
    }
    if (stock_close(store) != STOCK_OK)
        return 1;
    store = open_store(uri);
    for (unsigned pass = 0; pass < 2; pass++)
        for (unsigned o = 0; o < RS_LATE_SKUS; o++) {
            rs_order order;
            late_order_of(o, &order);
            if (!late_cart(store, order.id, order.lines, RS_LATE_LINES,
                           pass == 0 ? STOCK_OK : STOCK_REPLAY, 0))
                return 1;
        }
    /* Each SKU has the first half of its own order's lines and the second
     * half of the order before's: all of 1..RS_LATE_LINES units. */
    int64_t ordered = RS_LATE_LINES * (RS_LATE_LINES + 1) / 2;
    for (unsigned k = 0; k < RS_LATE_SKUS; k++) {
        name(sku, "rs-l%u", k, 0);
        if (!late_totals(store, sku, RS_LATE_LEVEL - ordered, ordered))
            return 1;
    }
    /* The last SKU holds RS_LATE_SHORT on piece 0: a cart of one unit
     * more is refused by its total, one of all of it is taken. */
    name(sku, "rs-l%u", RS_LATE_SKUS, 0);
    rs_order order;
    for (unsigned p = 0; p < RS_LATE_LINES; p++) {
        name(order.line_ids[p], "rs-lsl%u", p, 0);
        memcpy(order.skus[p], sku, sizeof order.skus[p]);
        order_line(&order, p, 1);
    }
    order.lines[0].qty = RS_LATE_SHORT - RS_LATE_LINES + 2;
    if (!late_cart(store, "rs-ls0", order.lines, RS_LATE_LINES, STOCK_INSUFFICIENT,
                   RS_LATE_SHORT) || !late_totals(store, sku, RS_LATE_SHORT, 0))
        return 1;
    order.lines[0].qty--;
    if (!late_cart(store, "rs-ls1", order.lines, RS_LATE_LINES, STOCK_OK, 0) ||
        !late_totals(store, sku, 0, RS_LATE_SHORT))
        return 1;
    printf("late skus=%u ordered\n", RS_LATE_SKUS + 1);
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

/* Prints each SKU of skus with the count member positions by its scores
 * (XXH3 of the SKU seeded with position + 1), highest first, a tie to the
 * lower position. */
static int ranks(int count, char **skus, int sku_count)
{
    if (count < 1 || count > RS_MEMBERS_MAX) {
        fprintf(stderr, "ranks: 1 to %d members, not %d\n", RS_MEMBERS_MAX, count);
        return 2;
    }
    for (int s = 0; s < sku_count; s++) {
        uint64_t scores[RS_MEMBERS_MAX];
        bool ranked[RS_MEMBERS_MAX] = {false};
        for (int i = 0; i < count; i++)
            scores[i] = XXH3_64bits_withSeed(skus[s], strlen(skus[s]), (uint64_t)i + 1);
        printf("%s", skus[s]);
        for (int rank = 0; rank < count; rank++) {
            int best = -1;
            for (int i = 0; i < count; i++)
                if (!ranked[i] && (best < 0 || scores[i] > scores[best]))
                    best = i;
            ranked[best] = true;
            printf(" %d", best);
        }
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "setup") == 0)
        return setup(argv[2]);
    if (argc == 3 && strcmp(argv[1], "check") == 0)
        return check(argv[2]);
    if (argc == 3 && strcmp(argv[1], "hotsetup") == 0)
        return hot_setup(argv[2]);
    if (argc == 3 && strcmp(argv[1], "hotcheck") == 0)
        return hot_check(argv[2]);
    if (argc == 3 && strcmp(argv[1], "hotlate") == 0)
        return hot_late(argv[2]);
    if (argc >= 4 && strcmp(argv[1], "ranks") == 0)
        return ranks(atoi(argv[2]), argv + 3, argc - 3);
    if (argc == 5 && strcmp(argv[1], "kill") == 0)
        return kill_at(argv[2], argv[3], atoi(argv[4]));
    fprintf(stderr, "usage: reshard_check setup URI | check URI | hotsetup URI | hotcheck URI | "
            "hotlate URI | ranks N SKU... | kill OLD NEW N\n");
    return 2;
}
