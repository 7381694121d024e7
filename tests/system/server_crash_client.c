/*
 * server_crash_client.c -- the load side of the crash test
 * (tests/suites/46-server-crash.sh): deducts and refunds against a stockd
 * through the remote backend while the server is killed with SIGKILL and
 * restarted, and writes down every operation it tried and every reply that
 * acknowledged one, for server_crash_check to verify afterwards.
 *
 *   server_crash_client URI PREFIX SKU_COUNT LOG
 *
 * SKUs are S0..S<SKU_COUNT-1> (set up by the caller with ample stock). Line
 * ids are PREFIX-d<n>, refund ids PREFIX-r<n>, orders PREFIX-o<n> with the
 * two lines PREFIX-o<n>-1 and PREFIX-o<n>-2 on two SKUs. An op whose outcome is
 * unknown (the server died under it: STOCK_UNAVAILABLE) is retried with the
 * same id until it gets a definite answer, as the remote backend's message
 * says is safe. On SIGTERM the client stops starting new ops, settles the
 * unknown ones (up to CLIENT_SETTLE_S) and exits 0, or 1 if any reply broke
 * the rules (a CONFLICT on a retry, say).
 *
 * Log lines: "try D line sku qty", "ack D line sku qty available code",
 * "try R refund line qty", "ack R refund line qty available code", and per
 * order line "try O line sku qty", "ack O line sku qty available code".
 *
 * CRASH_CLIENT_PACE_US=N pauses N microseconds after each batch, so a soak
 * of a thousand rounds keeps its store and logs to a size a test machine
 * holds (unpaced, a round adds some 170,000 ops).
 */
#include <assert.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stock.h"

#define CLIENT_BATCH 64             /* ops per batch */
#define CLIENT_REFUND_EVERY 8       /* one op in 8 refunds an acked line */
#define CLIENT_ORDER_EVERY 5        /* one op in 5 (of the rest) is an order */
#define CLIENT_ORDER_LINES 2
#define CLIENT_SETTLE_S 30          /* time to settle unknown ops at the end */
#define CLIENT_RETRY_PAUSE_US 50000 /* between batches that found no server */
#define CLIENT_OPEN_TRIES 200       /* opens that found no server (10 s) */
#define CLIENT_ID_MAX 48

/* One op and the id strings its stock_op points to (slot_bind). */
typedef struct slot {
    stock_op op;
    char id[CLIENT_ID_MAX];
    char target[CLIENT_ID_MAX];     /* sku (deduct) or line (refund) */
    stock_order_line lines[CLIENT_ORDER_LINES];
    char line_ids[CLIENT_ORDER_LINES][CLIENT_ID_MAX];
    char line_skus[CLIENT_ORDER_LINES][CLIENT_ID_MAX];
    bool pending;                   /* outcome unknown: retry as is */
} slot;

/* Acked lines not yet refunded: refund candidates. */
typedef struct acked_lines {
    char (*ids)[CLIENT_ID_MAX];
    size_t count, cap;
} acked_lines;

static volatile sig_atomic_t stopping;

static void on_term(int signal_number)
{
    (void)signal_number;
    stopping = 1;
}

static void acked_push(acked_lines *lines, const char *id)
{
    if (lines->count == lines->cap) {
        lines->cap = lines->cap ? lines->cap * 2 : 1024;
        lines->ids = realloc(lines->ids, lines->cap * sizeof *lines->ids);
        if (lines->ids == NULL) {
            fprintf(stderr, "server_crash_client: out of memory\n");
            exit(1);
        }
    }
    snprintf(lines->ids[lines->count++], CLIENT_ID_MAX, "%s", id);
}

/* Points the op's ids at the slot's own strings (again after a move). */
static void slot_bind(slot *s)
{
    s->op.id = stock_id_from_cstr(s->id);
    if (s->op.type == STOCK_OP_DEDUCT)
        s->op.sku = stock_id_from_cstr(s->target);
    if (s->op.type == STOCK_OP_REFUND)
        s->op.line = stock_id_from_cstr(s->target);
    if (s->op.type != STOCK_OP_ORDER)
        return;
    s->op.lines = s->lines;
    for (int i = 0; i < CLIENT_ORDER_LINES; i++) {
        s->lines[i].line_id = stock_id_from_cstr(s->line_ids[i]);
        s->lines[i].sku = stock_id_from_cstr(s->line_skus[i]);
    }
}

static void fresh_order(slot *s, const char *prefix, uint64_t n, int sku_count,
                        FILE *log)
{
    snprintf(s->id, CLIENT_ID_MAX, "%s-o%" PRIu64, prefix, n);
    s->op = (stock_op){.type = STOCK_OP_ORDER, .line_count = CLIENT_ORDER_LINES};
    for (int i = 0; i < CLIENT_ORDER_LINES; i++) {
        snprintf(s->line_ids[i], CLIENT_ID_MAX, "%s-%d", s->id, i + 1);
        snprintf(s->line_skus[i], CLIENT_ID_MAX, "S%d",
                 (int)((n + (uint64_t)i) % (uint64_t)sku_count));
        s->lines[i].qty = 1 + i;
        fprintf(log, "try O %s %s %d\n", s->line_ids[i], s->line_skus[i], 1 + i);
    }
}

/* Fills a fresh op into s: a refund of an acked line now and then, an order
 * now and then, else a deduction. */
static void fresh_op(slot *s, const char *prefix, uint64_t n, int sku_count,
                     acked_lines *lines, FILE *log)
{
    memset(s, 0, sizeof *s);
    if (n % CLIENT_REFUND_EVERY == 0 && lines->count > 0) {
        /* take the newest acked line: each line is refunded once, qty 1 */
        snprintf(s->target, CLIENT_ID_MAX, "%s", lines->ids[--lines->count]);
        snprintf(s->id, CLIENT_ID_MAX, "%s-r%" PRIu64, prefix, n);
        s->op = (stock_op){.type = STOCK_OP_REFUND, .amount = 1};
        fprintf(log, "try R %s %s 1\n", s->id, s->target);
    } else if (n % CLIENT_ORDER_EVERY == 0) {
        fresh_order(s, prefix, n, sku_count, log);
    } else {
        snprintf(s->id, CLIENT_ID_MAX, "%s-d%" PRIu64, prefix, n);
        snprintf(s->target, CLIENT_ID_MAX, "S%d", (int)(n % (uint64_t)sku_count));
        s->op = (stock_op){.type = STOCK_OP_DEDUCT, .amount = 1 + (int64_t)(n % 3)};
        fprintf(log, "try D %s %s %" PRId64 "\n", s->id, s->target, s->op.amount);
    }
    slot_bind(s);
}

/* Records one finished op; false if its result breaks the rules. */
static bool record(slot *s, acked_lines *lines, FILE *log)
{
    stock_op *op = &s->op;
    s->pending = op->code == STOCK_UNAVAILABLE;
    if (s->pending)
        return true;
    if (!stock_code_succeeded(op->code)) {
        fprintf(stderr, "server_crash_client: %s: %s %s\n", s->id,
                stock_code_name(op->code), op->message);
        return false;
    }
    const char *code = stock_code_name(op->code);
    if (op->type == STOCK_OP_ORDER) {
        for (int i = 0; i < CLIENT_ORDER_LINES; i++)
            fprintf(log, "ack O %s %s %" PRId64 " %" PRId64 " %s\n", s->line_ids[i],
                    s->line_skus[i], s->lines[i].qty, s->lines[i].available, code);
        return true;
    }
    bool deduct = op->type == STOCK_OP_DEDUCT;
    fprintf(log, "ack %c %s %s %" PRId64 " %" PRId64 " %s\n", deduct ? 'D' : 'R',
            s->id, s->target, op->amount, op->available, code);
    if (deduct)
        acked_push(lines, s->id);
    return true;
}

/* Runs one batch of the active slots; returns false on a broken rule.
 * *unknown counts the ops left with an unknown outcome. */
static bool run_batch(stock_t *store, slot *slots, size_t count,
                      acked_lines *lines, FILE *log, size_t *unknown)
{
    stock_op ops[CLIENT_BATCH];
    assert(count >= 1 && count <= CLIENT_BATCH);
    for (size_t i = 0; i < count; i++)
        ops[i] = slots[i].op;
    fflush(log);   /* every "try" is on disk before the ops can take effect */
    if (stock_execute(store, ops, count) != STOCK_OK)
        return false;
    bool good = true;
    *unknown = 0;
    for (size_t i = 0; i < count; i++) {
        slots[i].op = ops[i];
        good = record(&slots[i], lines, log) && good;
        *unknown += slots[i].pending;
    }
    fflush(log);
    return good;
}

/* Compacts slots to the pending ones, then tops up with fresh ops unless
 * stopping. Returns the number of active slots. */
static size_t refill(slot *slots, size_t count, const char *prefix,
                     uint64_t *next, int sku_count, acked_lines *lines,
                     FILE *log)
{
    size_t active = 0;
    for (size_t i = 0; i < count; i++)
        if (slots[i].pending) {
            if (active != i)
                slots[active] = slots[i];
            slot_bind(&slots[active++]);
        }
    while (!stopping && active < CLIENT_BATCH)
        fresh_op(&slots[active++], prefix, (*next)++, sku_count, lines, log);
    return active;
}

int main(int argc, char **argv)
{
    if (argc != 5 || atoi(argv[3]) < 1) {
        fprintf(stderr, "usage: server_crash_client URI PREFIX SKU_COUNT LOG\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    const char *pace = getenv("CRASH_CLIENT_PACE_US");
    useconds_t pace_us = pace != NULL ? (useconds_t)strtoul(pace, NULL, 10) : 0;
    FILE *log = fopen(argv[4], "w");
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX] = "";
    /* The connection the open makes may be lost too (a network fault):
     * try again while the server is unreachable, as for a batch. */
    stock_code opened = STOCK_UNAVAILABLE;
    for (int tries = 0; log != NULL && opened == STOCK_UNAVAILABLE &&
                        tries < CLIENT_OPEN_TRIES; tries++) {
        opened = stock_open(argv[1], NULL, &store, message);
        if (opened == STOCK_UNAVAILABLE)
            usleep(CLIENT_RETRY_PAUSE_US);
    }
    if (log == NULL || opened != STOCK_OK) {
        fprintf(stderr, "server_crash_client: cannot start: %s\n", log ? message : argv[4]);
        return 1;
    }
    static slot slots[CLIENT_BATCH];
    acked_lines lines = {0};
    uint64_t next = 1;
    size_t count = 0, unknown = 0, batches = 0, retried = 0;
    bool good = true;
    time_t settle_deadline = 0;
    for (;;) {
        count = refill(slots, count, argv[2], &next, atoi(argv[3]), &lines, log);
        if (count == 0)
            break;
        if (stopping && settle_deadline == 0)
            settle_deadline = time(NULL) + CLIENT_SETTLE_S;
        if (settle_deadline != 0 && time(NULL) > settle_deadline) {
            fprintf(stderr, "server_crash_client: %zu ops still unknown\n", count);
            good = false;
            break;
        }
        good = run_batch(store, slots, count, &lines, log, &unknown) && good;
        batches++;
        retried += unknown;
        if (unknown == count)
            usleep(CLIENT_RETRY_PAUSE_US);   /* the server is away */
        else if (pace_us > 0)
            usleep(pace_us);
    }
    printf("server_crash_client %s: %zu batches, %" PRIu64 " ops started, "
           "%zu outcomes left unknown (UNAVAILABLE) and retried\n",
           argv[2], batches, next - 1, retried);
    stock_close(store);
    fclose(log);
    free(lines.ids);
    return good ? 0 : 1;
}
