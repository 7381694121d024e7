/*
 * pg_abandon.c -- a postgres store gives up on a batch whose session the
 * network silenced mid-transaction, then takes the next op on the same SKU
 * (83-network-holes).
 *
 *   pg_abandon URI SKU COUNT HOLE
 *
 * Opens URI (a proxied postgres:// URI whose proxy black-holes a connection
 * once it sees HOLE: tests/harness/fault_proxy.py --hole-on), runs one batch
 * of COUNT deductions of 1 from SKU whose last line id is HOLE (the others
 * "l<i>", which must not hold HOLE), so that the server gets the start of the transaction (its
 * row lock on SKU) and never its end. That batch must fail UNAVAILABLE.
 * Then prints "abandoned", waits for a line on stdin (the suite heals the
 * proxy meanwhile: new connections pass) and deducts 1 more as line
 * "l-after", which must answer OK: the store ends the silenced session
 * before it runs anything on a new one, or that session's lock holds the
 * SKU for as long as the silence lasts. Exits 0 when both hold, 1 if not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stock.h"

#define ABANDON_COUNT_MAX 4096
#define ABANDON_ID_MAX 64

static stock_op ops[ABANDON_COUNT_MAX];
static char ids[ABANDON_COUNT_MAX][ABANDON_ID_MAX];

int main(int argc, char **argv)
{
    long count = argc == 5 ? strtol(argv[3], NULL, 10) : 0;
    if (count < 2 || count > ABANDON_COUNT_MAX || strlen(argv[4]) >= ABANDON_ID_MAX) {
        fprintf(stderr, "usage: pg_abandon URI SKU COUNT(2..%d) HOLE\n", ABANDON_COUNT_MAX);
        return 2;
    }
    const char *sku = argv[2], *hole = argv[4];
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX] = "";
    if (stock_open(argv[1], NULL, &store, message) != STOCK_OK) {
        fprintf(stderr, "pg_abandon: open: %s\n", message);
        return 1;
    }
    for (long i = 0; i < count; i++) {
        if (i + 1 < count)
            snprintf(ids[i], ABANDON_ID_MAX, "l%ld", i);
        else
            snprintf(ids[i], ABANDON_ID_MAX, "%s", hole);
        ops[i] = (stock_op){.type = STOCK_OP_DEDUCT, .id = stock_id_from_cstr(ids[i]),
                            .sku = stock_id_from_cstr(sku), .amount = 1};
    }
    int status = 0;
    if (stock_execute(store, ops, (size_t)count) != STOCK_OK ||
        ops[0].code != STOCK_UNAVAILABLE) {
        fprintf(stderr, "pg_abandon: the silenced batch answered %s (%s), not UNAVAILABLE\n",
                stock_code_name(ops[0].code), ops[0].message);
        status = 1;
    }
    printf("abandoned: %s\n", ops[0].message);
    fflush(stdout);
    char line[16];
    if (status == 0 && fgets(line, sizeof line, stdin) == NULL) {
        fprintf(stderr, "pg_abandon: no go-ahead on stdin\n");
        status = 1;
    }
    stock_code code = status == 0 ? stock_deduct(store, "l-after", sku, 1, NULL, message)
                                  : STOCK_OK;
    if (status == 0 && code != STOCK_OK) {
        fprintf(stderr, "pg_abandon: the next deduction on %s answered %s: %s\n", sku,
                stock_code_name(code), message);
        status = 1;
    }
    if (status == 0)
        printf("next deduction: OK\n");
    stock_close(store);
    return status;
}
