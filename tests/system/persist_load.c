/*
 * persist_load.c -- load for the redis backend's outbox and the check that
 * the persister moved all of it (tests/suites/57-persister.sh):
 *
 *   persist_load setup URI            creates the SKUs (idempotent: set)
 *   persist_load write URI TAG N      N ops with ids TAG-...: deductions,
 *                                     refunds, adjustments with and without
 *                                     an id, sets, and orders over two slots,
 *                                     some of which fail after one slot took
 *                                     its line (so the give-back is in the
 *                                     flow too); batches of 32
 *   persist_load check A B TAG:N ...  every SKU (get) and every line id the
 *                                     writes of TAG:N may have made (line)
 *                                     read the same through store A and
 *                                     store B; exit 1 with the differences
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stock.h"

#define PL_SKUS 8                 /* SKUs the deductions spread over */
#define PL_STOCK 100000000        /* their stock at setup */
#define PL_SCARCE_STOCK 40        /* the scarce SKU: orders fail once it is gone */
#define PL_BATCH 32
#define PL_ID_MAX 96
#define PL_TAG_MAX 47             /* bytes of a TAG (the %47 below) */
#define PL_SHOWN_MAX 10           /* differences printed */
#define PL_CHECK_BATCH 300        /* LINE reads per batch of the check */

static stock_t *open_or_die(const char *uri)
{
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX] = "";
    if (stock_open(uri, NULL, &store, message) != STOCK_OK) {
        fprintf(stderr, "persist_load: cannot open %s: %s\n", uri, message);
        exit(2);
    }
    return store;
}

/* SKU i; PL_SKUS is the scarce one. */
static void sku_name(char *out, int i)
{
    snprintf(out, PL_ID_MAX, i < PL_SKUS ? "pl-sku%d" : "pl-scarce", i);
}

static int setup(const char *uri)
{
    stock_t *store = open_or_die(uri);
    int status = 0;
    for (int i = 0; i <= PL_SKUS; i++) {
        char sku[PL_ID_MAX], message[STOCK_MESSAGE_MAX];
        sku_name(sku, i);
        stock_code code = stock_set(store, sku, i < PL_SKUS ? PL_STOCK : PL_SCARCE_STOCK, NULL,
                                    NULL, message);
        if (code != STOCK_OK) {
            fprintf(stderr, "persist_load: set %s: %s\n", sku, message);
            status = 1;
        }
    }
    stock_close(store);
    return status;
}

/* The ids op k may use (line ids in order: d, then the order's a and b). */
typedef struct pl_ids {
    char id[PL_ID_MAX], line[PL_ID_MAX], line_b[PL_ID_MAX], sku[PL_ID_MAX], sku_b[PL_ID_MAX];
} pl_ids;

static void ids_of(const char *tag, long k, pl_ids *ids)
{
    snprintf(ids->line, PL_ID_MAX, "%s-d%ld", tag, k);
    snprintf(ids->line_b, PL_ID_MAX, "%s-o%ldb", tag, k);
    sku_name(ids->sku, (int)(k % PL_SKUS));
    sku_name(ids->sku_b, PL_SKUS);
}

/* Fills op (and its order lines) as op k of the mix. */
static void op_build(const char *tag, long k, stock_op *op, pl_ids *ids, stock_order_line *lines)
{
    memset(op, 0, sizeof *op);
    ids_of(tag, k, ids);
    op->sku = stock_id_from_cstr(ids->sku);
    switch (k % 8) {
    case 4:   /* refund 1 of the deduction made 4 ops earlier */
        snprintf(ids->id, PL_ID_MAX, "%s-r%ld", tag, k);
        snprintf(ids->line, PL_ID_MAX, "%s-d%ld", tag, k - 4);
        op->type = STOCK_OP_REFUND;
        op->id = stock_id_from_cstr(ids->id);
        op->line = stock_id_from_cstr(ids->line);
        op->amount = 1;
        return;
    case 5:
        snprintf(ids->id, PL_ID_MAX, "%s-a%ld", tag, k);
        op->type = STOCK_OP_ADD;
        op->id = k % 16 == 5 ? stock_id_from_cstr(ids->id) : (stock_id){0};
        op->amount = 2;
        return;
    case 6:   /* an order over two slots; fails once the scarce SKU is gone */
        snprintf(ids->id, PL_ID_MAX, "%s-o%ld", tag, k);
        snprintf(ids->line, PL_ID_MAX, "%s-o%lda", tag, k);
        lines[0] = (stock_order_line){.line_id = stock_id_from_cstr(ids->line),
                                      .sku = stock_id_from_cstr(ids->sku), .qty = 3};
        lines[1] = (stock_order_line){.line_id = stock_id_from_cstr(ids->line_b),
                                      .sku = stock_id_from_cstr(ids->sku_b), .qty = 1};
        op->type = STOCK_OP_ORDER;
        op->id = stock_id_from_cstr(ids->id);
        op->lines = lines;
        op->line_count = 2;
        return;
    case 7:
        if (k % 64 == 7) {
            op->type = STOCK_OP_SET;
            op->amount = PL_STOCK - k;
            return;
        }
        break;
    default:
        break;
    }
    op->type = STOCK_OP_DEDUCT;
    op->id = stock_id_from_cstr(ids->line);
    op->amount = 1 + k % 3;
}

static int write_ops(const char *uri, const char *tag, long count)
{
    stock_t *store = open_or_die(uri);
    static stock_op ops[PL_BATCH];
    static pl_ids ids[PL_BATCH];
    static stock_order_line lines[PL_BATCH][2];
    int status = 0;
    for (long first = 0; first < count && status == 0; first += PL_BATCH) {
        size_t n = 0;
        for (long k = first; k < count && n < PL_BATCH; k++, n++)
            op_build(tag, k, &ops[n], &ids[n], lines[n]);
        if (stock_execute(store, ops, n) != STOCK_OK)
            status = 1;
        for (size_t i = 0; i < n && status == 0; i++)
            if (ops[i].code == STOCK_UNAVAILABLE || ops[i].code == STOCK_IO) {
                fprintf(stderr, "persist_load: op %ld: %s\n", first + (long)i, ops[i].message);
                status = 1;
            }
    }
    stock_close(store);
    return status;
}

static long differences;

static void differ(const char *what, const char *id, const char *a, const char *b)
{
    if (++differences <= PL_SHOWN_MAX)
        printf("differs: %s %s: %s | %s\n", what, id, a, b);
}

static void check_sku(stock_t *a, stock_t *b, const char *sku)
{
    stock_sku_info x = {0}, y = {0};
    stock_code cx = stock_get(a, sku, &x, NULL), cy = stock_get(b, sku, &y, NULL);
    char tx[160], ty[160];
    snprintf(tx, sizeof tx, "%s av=%" PRId64 " adj=%" PRId64 " ded=%" PRId64 " ref=%" PRId64,
             stock_code_name(cx), x.available, x.adjusted, x.deducted, x.refunded);
    snprintf(ty, sizeof ty, "%s av=%" PRId64 " adj=%" PRId64 " ded=%" PRId64 " ref=%" PRId64,
             stock_code_name(cy), y.available, y.adjusted, y.deducted, y.refunded);
    if (strcmp(tx, ty) != 0)
        differ("sku", sku, tx, ty);
}

/* The line's outputs as text. */
static void line_text(const stock_op *op, char *out, size_t size)
{
    const stock_line_info *x = &op->info.line_info;
    if (op->code != STOCK_OK) {
        snprintf(out, size, "%s", stock_code_name(op->code));
        return;
    }
    snprintf(out, size, "OK sku=%s order=%s qty=%" PRId64 " refunded=%" PRId64 " time=%" PRId64
             " after=%" PRId64, x->sku, x->order_id, x->qty, x->refunded, x->time_us,
             x->available_after);
}

/* Reads lines ids[0..count) through both stores, a batch each; returns how
 * many exist in A. */
static long check_lines(stock_t *a, stock_t *b, char (*ids)[PL_ID_MAX], size_t count)
{
    static stock_op x[PL_CHECK_BATCH], y[PL_CHECK_BATCH];
    for (size_t i = 0; i < count; i++) {
        memset(&x[i], 0, sizeof x[i]);
        x[i].type = STOCK_OP_LINE;
        x[i].line = stock_id_from_cstr(ids[i]);
        y[i] = x[i];
    }
    if (stock_execute(a, x, count) != STOCK_OK || stock_execute(b, y, count) != STOCK_OK) {
        fprintf(stderr, "persist_load: a batch of LINE failed\n");
        exit(2);
    }
    long found = 0;
    for (size_t i = 0; i < count; i++) {
        char tx[400], ty[400];
        line_text(&x[i], tx, sizeof tx);
        line_text(&y[i], ty, sizeof ty);
        if (strcmp(tx, ty) != 0)
            differ("line", ids[i], tx, ty);
        found += x[i].code == STOCK_OK;
    }
    return found;
}

static int check(const char *uri_a, const char *uri_b, int runs, char **run)
{
    stock_t *a = open_or_die(uri_a), *b = open_or_die(uri_b);
    long lines = 0, found = 0;
    for (int i = 0; i <= PL_SKUS; i++) {
        char sku[PL_ID_MAX];
        sku_name(sku, i);
        check_sku(a, b, sku);
    }
    for (int r = 0; r < runs; r++) {
        char tag[PL_TAG_MAX + 1];
        long count = 0;
        if (sscanf(run[r], "%47[^:]:%ld", tag, &count) != 2) {
            fprintf(stderr, "persist_load: '%s' is not TAG:N\n", run[r]);
            return 2;
        }
        static char batch[PL_CHECK_BATCH][PL_ID_MAX];
        size_t n = 0;
        for (long k = 0; k < count; k++) {
            pl_ids ids;
            ids_of(tag, k, &ids);
            snprintf(batch[n++], PL_ID_MAX, "%s", ids.line);
            snprintf(batch[n++], PL_ID_MAX, "%s-o%lda", tag, k);
            snprintf(batch[n++], PL_ID_MAX, "%s", ids.line_b);
            lines += 3;
            if (n + 3 > PL_CHECK_BATCH || k + 1 == count) {
                found += check_lines(a, b, batch, n);
                n = 0;
            }
        }
    }
    stock_close(a);
    stock_close(b);
    printf("%s: %d SKUs and %ld line ids (%ld lines) compared, %ld differences\n",
           differences == 0 ? "equal" : "DIFFERENT", PL_SKUS + 1, lines, found, differences);
    return differences == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "setup") == 0)
        return setup(argv[2]);
    if (argc == 5 && strcmp(argv[1], "write") == 0 && strlen(argv[3]) <= PL_TAG_MAX)
        return write_ops(argv[2], argv[3], strtol(argv[4], NULL, 10));
    if (argc >= 5 && strcmp(argv[1], "check") == 0)
        return check(argv[2], argv[3], argc - 4, argv + 4);
    fprintf(stderr, "usage: persist_load setup URI | write URI TAG N | check A B TAG:N...\n");
    return 2;
}
