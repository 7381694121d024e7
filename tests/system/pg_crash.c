/*
 * pg_crash.c -- the postgres backend's crash test helper.
 *
 *   pg_crash write URI     places carts and deductions as fast as it can, in
 *                          large batches, until it is killed; prints "ready"
 *                          once the first batch has committed; fails on any
 *                          result but OK and IOERR (a lost session)
 *   pg_crash check URI     connects with libpq and checks that the database
 *                          holds only whole orders and balanced SKUs
 *
 * tests/suites/50-postgres-faults.sh kills the writer with SIGKILL
 * mid-batch and then runs the check: every order has all its lines in the
 * flow table and every order line has its order (I3); for every SKU the
 * stock equals adjusted - deducted + refunded, the deducted total equals the
 * flow rows' quantities, and no bucket is negative (I1, I2).
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stock.h"

#define CRASH_SKUS 50
#define CRASH_BATCH 400          /* ops per batch: carts and deductions */
#define CRASH_CART_LINES 3
#define CRASH_ID_SIZE 48
#define CRASH_STOCK 1000000000LL

typedef struct crash_op {
    char id[CRASH_ID_SIZE];
    char lines[CRASH_CART_LINES][CRASH_ID_SIZE];
    char skus[CRASH_CART_LINES][CRASH_ID_SIZE];
    stock_order_line order_lines[CRASH_CART_LINES];
} crash_op;

static stock_op ops[CRASH_BATCH];
static crash_op names[CRASH_BATCH];

static void sku_name(char *out, const char *token, unsigned index)
{
    snprintf(out, CRASH_ID_SIZE, "crash-%.20s-%u", token, index % CRASH_SKUS);
}

/* Op i of batch n: even ones carts of 3 lines, odd ones single deductions. */
static void fill_op(const char *token, long batch, unsigned i, unsigned *seed)
{
    crash_op *name = &names[i];
    stock_op *op = &ops[i];
    snprintf(name->id, CRASH_ID_SIZE, "c%.20s-%ld-%u", token, batch, i);
    if (i % 2 == 1) {
        sku_name(name->skus[0], token, (unsigned)rand_r(seed));
        *op = (stock_op){.type = STOCK_OP_DEDUCT, .id = stock_id_from_cstr(name->id),
                         .sku = stock_id_from_cstr(name->skus[0]), .amount = 1 + i % 3};
        return;
    }
    for (unsigned k = 0; k < CRASH_CART_LINES; k++) {
        snprintf(name->lines[k], CRASH_ID_SIZE, "%.40s-l%u", name->id, k);
        sku_name(name->skus[k], token, (unsigned)rand_r(seed));
        name->order_lines[k] = (stock_order_line){
            .line_id = stock_id_from_cstr(name->lines[k]),
            .sku = stock_id_from_cstr(name->skus[k]), .qty = 1 + k};
    }
    *op = (stock_op){.type = STOCK_OP_ORDER, .id = stock_id_from_cstr(name->id),
                     .lines = name->order_lines, .line_count = CRASH_CART_LINES};
}

static int write_forever(const char *uri)
{
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX], token[24];
    if (stock_open(uri, NULL, &store, message) != STOCK_OK) {
        fprintf(stderr, "pg_crash: cannot open %s: %s\n", uri, message);
        return 1;
    }
    snprintf(token, sizeof token, "%lx-%d", (long)time(NULL), (int)getpid());
    for (unsigned i = 0; i < CRASH_SKUS; i++) {
        char sku[CRASH_ID_SIZE];
        sku_name(sku, token, i);
        if (stock_set(store, sku, CRASH_STOCK, NULL, NULL, message) != STOCK_OK) {
            fprintf(stderr, "pg_crash: set: %s\n", message);
            return 1;
        }
    }
    unsigned seed = (unsigned)getpid();
    for (long batch = 0;; batch++) {
        for (unsigned i = 0; i < CRASH_BATCH; i++)
            fill_op(token, batch, i, &seed);
        stock_execute(store, ops, CRASH_BATCH);
        for (unsigned i = 0; i < CRASH_BATCH; i++)
            if (ops[i].code == STOCK_UNAVAILABLE || ops[i].code == STOCK_IO) {
                /* A terminated session can leave an outcome unknown: allowed,
                 * the check afterwards judges the database. */
                fprintf(stderr, "pg_crash: op %u: %s\n", i, ops[i].message);
            } else if (ops[i].code != STOCK_OK) {
                fprintf(stderr, "pg_crash: op %u: %s %s\n", i,
                        stock_code_name(ops[i].code), ops[i].message);
                return 1;
            }
        if (batch == 0) {
            printf("ready\n");
            fflush(stdout);
        }
    }
}

/* Runs a query that must return zero rows; prints them if it does not. */
static int expect_none(PGconn *conn, const char *what, const char *sql)
{
    PGresult *result = PQexec(conn, sql);
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pg_crash: %s: %s", what, PQerrorMessage(conn));
        PQclear(result);
        return 1;
    }
    int rows = PQntuples(result);
    for (int r = 0; r < rows && r < 5; r++)
        fprintf(stderr, "pg_crash: %s: %s\n", what, PQgetvalue(result, r, 0));
    PQclear(result);
    return rows == 0 ? 0 : 1;
}

static int check(const char *uri)
{
    PGconn *conn = PQconnectdb(uri);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "pg_crash: cannot connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return 1;
    }
    int failures = 0;
    failures += expect_none(conn, "order without all its lines",
        "SELECT o.order_id FROM inventory_orders o LEFT JOIN inventory_flow f "
        "ON f.order_id = o.order_id GROUP BY o.order_id, o.line_count "
        "HAVING count(f.line_id) <> o.line_count");
    failures += expect_none(conn, "order line without its order",
        "SELECT f.line_id FROM inventory_flow f WHERE f.order_id <> '' AND NOT EXISTS "
        "(SELECT 1 FROM inventory_orders o WHERE o.order_id = f.order_id)");
    failures += expect_none(conn, "SKU out of balance (I2)",
        "SELECT sku_id FROM inventory GROUP BY sku_id "
        "HAVING sum(leaved_amount) <> sum(adjusted) - sum(deducted) + sum(refunded) "
        "OR min(leaved_amount) < 0");
    failures += expect_none(conn, "SKU whose deducted total is not its flow",
        "SELECT i.sku_id FROM (SELECT sku_id, sum(deducted) AS d FROM inventory GROUP BY 1) i "
        "LEFT JOIN (SELECT sku_id, sum(qty) AS q FROM inventory_flow GROUP BY 1) f "
        "USING (sku_id) WHERE i.d <> coalesce(f.q, 0)");
    PQfinish(conn);
    if (failures == 0)
        printf("pg_crash: only whole orders, every SKU balanced\n");
    return failures == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "write") == 0)
        return write_forever(argv[2]);
    if (argc == 3 && strcmp(argv[1], "check") == 0)
        return check(argv[2]);
    fprintf(stderr, "usage: pg_crash write|check URI\n");
    return 2;
}
