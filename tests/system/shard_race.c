/*
 * shard_race.c -- the sharded backend's id race helper: two processes
 * deducting the same line ids at the same moment, each for its own SKU,
 * the two SKUs on different shards (docs/sharded.md, "One id, one winner").
 *
 *   shard_race URI SKU PREFIX COUNT START [SKU2]
 *       waits until the wall clock reaches START (seconds since the epoch,
 *       so that two processes begin together; each later id waits for its
 *       own start, RACE_PACE_S after the one before), then deducts 1 unit of SKU
 *       with the line ids PREFIX0 .. PREFIX<COUNT-1>, one batch per id, in
 *       that order, and prints "<line id> <code name>" for each. Each batch
 *       also deducts 1 unit of SKU with a line id of this process alone,
 *       "<line id>.<SKU>", printed as "own <id> <code name>": it goes to the
 *       same member in the same batch as the racing op, and no other
 *       process uses its id.
 *       With SKU2, each id is instead an order's: PREFIX<i> with the lines
 *       "PREFIX<i>.SKU" (1 of SKU) and "PREFIX<i>.SKU2" (1 of SKU2), a cart
 *       over two shards when the two SKUs live on two.
 *       Exits 0 once every op has an answer, 1 if the store cannot be
 *       opened.
 *
 * tests/suites/55-sharded.sh runs two at once and checks that each id has
 * exactly one winner, whose SKU the line names, and that every op of this
 * process alone succeeds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stock.h"

#define RACE_ID_SIZE 64
/* Each id starts this long after the one before, in both processes alike,
 * so that they meet on every id: left to run freely, the one that falls
 * behind (its ops meet the other's ids, a slower path) stays behind. */
#define RACE_PACE_S 0.025

static void wait_until(double start_s)
{
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        double left = start_s - ((double)now.tv_sec + (double)now.tv_nsec / 1e9);
        if (left <= 0)
            return;
        struct timespec pause = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        nanosleep(&pause, NULL);
    }
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: shard_race URI SKU PREFIX COUNT START [SKU2]\n");
        return 2;
    }
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_open(argv[1], NULL, &store, message);
    if (code != STOCK_OK) {
        fprintf(stderr, "shard_race: cannot open the store: %s\n", message);
        return 1;
    }
    long count = strtol(argv[4], NULL, 10);
    double start_s = strtod(argv[5], NULL);
    for (long i = 0; i < count; i++) {
        wait_until(start_s + (double)i * RACE_PACE_S);
        char id[RACE_ID_SIZE], own[2 * RACE_ID_SIZE], second[2 * RACE_ID_SIZE];
        snprintf(id, sizeof id, "%s%ld", argv[3], i);
        snprintf(own, sizeof own, "%s.%s", id, argv[2]);
        if (argc == 7) {
            snprintf(second, sizeof second, "%s.%s", id, argv[6]);
            stock_order_line lines[2] = {
                {.line_id = stock_id_from_cstr(own), .sku = stock_id_from_cstr(argv[2]), .qty = 1},
                {.line_id = stock_id_from_cstr(second), .sku = stock_id_from_cstr(argv[6]),
                 .qty = 1}};
            stock_op order = {.type = STOCK_OP_ORDER, .id = stock_id_from_cstr(id),
                              .lines = lines, .line_count = 2};
            code = stock_execute(store, &order, 1);
            printf("%s %s\n", id, stock_code_name(code != STOCK_OK ? code : order.code));
            continue;
        }
        stock_op ops[2] = {
            {.type = STOCK_OP_DEDUCT, .id = stock_id_from_cstr(id),
             .sku = stock_id_from_cstr(argv[2]), .amount = 1},
            {.type = STOCK_OP_DEDUCT, .id = stock_id_from_cstr(own),
             .sku = stock_id_from_cstr(argv[2]), .amount = 1}};
        code = stock_execute(store, ops, 2);
        printf("%s %s\n", id, stock_code_name(code != STOCK_OK ? code : ops[0].code));
        printf("own %s %s\n", own, stock_code_name(code != STOCK_OK ? code : ops[1].code));
    }
    stock_close(store);
    return 0;
}
