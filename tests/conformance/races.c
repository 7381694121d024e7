/*
 * races.c -- mixed work racing on one SKU, checked exactly. Each thread
 * knows the effect of its own successes, so the SKU's totals at the end must
 * be the starting level plus what every thread says it did (I2), and each
 * thread can predict its own refunds to the unit because only it refunds its
 * lines (I5). Compare-and-set increments racing each other must all land
 * once (set with expect is atomic).
 */
#include <stdio.h>
#include <stdlib.h>

#include "conformance.h"

/* ------------------------------------------------------ mixed operations */

#define MIXED_BATCH 10
#define MIXED_BATCHES 30
#define MIXED_OPS (MIXED_BATCH * MIXED_BATCHES)
#define MIXED_STOCK 300
#define FAULT_SIZE (STOCK_MESSAGE_MAX + 128)   /* what, code, level, message */

typedef enum mixed_kind { DEDUCT, REFUND, RESTOCK, WRITE_OFF } mixed_kind;

typedef struct mixed_worker {
    const char *sku;
    const char *base;
    int index;
    uint64_t random_state;
    /* the thread's own successful effects */
    int64_t adjusted;
    int64_t deducted;
    int64_t refunded;
    int line_count;
    char lines[MIXED_OPS][CONF_ID_SIZE];
    int64_t line_qty[MIXED_OPS];
    int64_t line_refunded[MIXED_OPS];
    /* what went wrong */
    int64_t bad;
    char fault[FAULT_SIZE];
} mixed_worker;

/* One planned op and what the thread needs to judge its result. */
typedef struct mixed_plan {
    mixed_kind kind;
    int line;          /* index into lines of the line to refund */
    char id[CONF_ID_SIZE];
} mixed_plan;

static uint64_t next_random(mixed_worker *w)
{
    /* xorshift64: deterministic per thread, so a failure can be rerun. */
    uint64_t x = w->random_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->random_state = x;
    return x;
}

static void mixed_fault(mixed_worker *w, const stock_op *op, const char *what)
{
    if (w->bad++ == 0)
        snprintf(w->fault, sizeof w->fault, "%s: got %s available=%" PRId64
                 " (%s)", what, stock_code_name(op->code), op->available,
                 op->message);
}

/* Fills op and plan with one random operation. Refunds name only lines
 * confirmed in earlier batches (confirmed = line_count before this batch). */
static void mixed_plan_op(mixed_worker *w, int confirmed, int serial,
                          stock_op *op, mixed_plan *plan)
{
    uint64_t roll = next_random(w) % 10;
    snprintf(plan->id, CONF_ID_SIZE, "%s.%d.%d", w->base, w->index, serial);
    stock_id sku = stock_id_from_cstr(w->sku);
    stock_id id = stock_id_from_cstr(plan->id);
    int64_t size = 1 + (int64_t)(next_random(w) % 3);
    if (roll < 2 && confirmed > 0) {
        plan->kind = REFUND;
        plan->line = (int)(next_random(w) % (uint64_t)confirmed);
        *op = (stock_op){.type = STOCK_OP_REFUND, .id = id,
                         .line = stock_id_from_cstr(w->lines[plan->line]),
                         .amount = size};
    } else if (roll < 3) {
        plan->kind = RESTOCK;
        *op = (stock_op){.type = STOCK_OP_ADD, .sku = sku, .id = id, .amount = size};
    } else if (roll < 4) {
        plan->kind = WRITE_OFF;
        *op = (stock_op){.type = STOCK_OP_ADD, .sku = sku, .amount = -size};
    } else {
        plan->kind = DEDUCT;
        plan->line = -1; /* known once it succeeds (mixed_judge) */
        *op = (stock_op){.type = STOCK_OP_DEDUCT, .id = id, .sku = sku,
                         .amount = size};
    }
}

/* Judges one result against what this thread alone can know. */
static void mixed_judge(mixed_worker *w, const stock_op *op, const mixed_plan *plan)
{
    int64_t size = op->amount < 0 ? -op->amount : op->amount;
    bool short_of_stock = op->code == STOCK_INSUFFICIENT && op->available >= 0 &&
                          op->available < size;
    switch (plan->kind) {
    case DEDUCT:
        if (op->code == STOCK_OK && op->available >= 0) {
            snprintf(w->lines[w->line_count], CONF_ID_SIZE, "%s", plan->id);
            w->line_qty[w->line_count++] = size;
            w->deducted += size;
        } else if (!short_of_stock) {
            mixed_fault(w, op, "deduct");
        }
        return;
    case REFUND: {
        int64_t refundable = w->line_qty[plan->line] - w->line_refunded[plan->line];
        if (size <= refundable && op->code == STOCK_OK) {
            w->line_refunded[plan->line] += size;
            w->refunded += size;
        } else if (size > refundable && (op->code != STOCK_EXCEEDS ||
                                         op->available != refundable)) {
            mixed_fault(w, op, "refund over the cap");
        } else if (size <= refundable && op->code != STOCK_OK) {
            mixed_fault(w, op, "refund within the cap");
        }
        return;
    }
    case RESTOCK:
        if (op->code == STOCK_OK && op->available >= size)
            w->adjusted += size;
        else
            mixed_fault(w, op, "restock");
        return;
    case WRITE_OFF:
        if (op->code == STOCK_OK && op->available >= 0)
            w->adjusted -= size;
        else if (!short_of_stock)
            mixed_fault(w, op, "write-off");
        return;
    }
}

static void *mixed_run(void *arg)
{
    mixed_worker *w = arg;
    stock_op ops[MIXED_BATCH];
    mixed_plan plans[MIXED_BATCH];
    for (int b = 0; b < MIXED_BATCHES; b++) {
        int confirmed = w->line_count;
        for (int i = 0; i < MIXED_BATCH; i++)
            mixed_plan_op(w, confirmed, b * MIXED_BATCH + i, &ops[i], &plans[i]);
        if (stock_execute(conf_store, ops, MIXED_BATCH) != STOCK_OK) {
            mixed_fault(w, &ops[0], "execute");
            continue;
        }
        for (int i = 0; i < MIXED_BATCH; i++)
            mixed_judge(w, &ops[i], &plans[i]);
    }
    return NULL;
}

/* Every line's refunded total is what its thread refunded. */
static void check_mixed_lines(const mixed_worker *w)
{
    for (int n = 0; n < w->line_count; n++) {
        stock_line_info info;
        assert_code(stock_line(conf_store, w->lines[n], &info, NULL), STOCK_OK,
                    w->lines[n]);
        assert_i64(info.qty, w->line_qty[n]);
        assert_i64(info.refunded, w->line_refunded[n]);
    }
}

static void mixed_work_keeps_exact_totals(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, MIXED_STOCK);
    mixed_worker *workers = calloc(THREADS, sizeof *workers);
    assert_non_null(workers);
    const char *base = conf_id("mixed");
    for (int i = 0; i < THREADS; i++) {
        workers[i].sku = sku.id;
        workers[i].base = base;
        workers[i].index = i;
        workers[i].random_state = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
    }
    conf_run_threads(THREADS, mixed_run, workers, sizeof workers[0]);
    for (int i = 0; i < THREADS; i++) {
        const mixed_worker *w = &workers[i];
        if (w->bad != 0)
            print_error("thread %d: %" PRId64 " faults, first: %s\n", i,
                        w->bad, w->fault);
        assert_i64(w->bad, 0);
        sku.adjusted += w->adjusted;
        sku.deducted += w->deducted;
        sku.refunded += w->refunded;
        check_mixed_lines(w);
    }
    free(workers);
    conf_check_sku(&sku);
}

/* ----------------------------------------------- compare-and-set increments */

#define CAS_THREADS 4
#define CAS_INCREMENTS 25
#define CAS_ATTEMPTS_MAX 10000   /* per increment: a bound, never reached */

typedef struct cas_worker {
    const char *sku;
    atomic_uchar *seen;
    int64_t landed;
    int64_t bad;
} cas_worker;

/* Reads the level and sets it one higher if nobody moved it meanwhile.
 * Returns true when the increment landed. */
static bool cas_try(cas_worker *w)
{
    int64_t current = -1, available = -1;
    stock_sku_info info;
    if (stock_get(conf_store, w->sku, &info, NULL) != STOCK_OK) {
        w->bad++;
        return false;
    }
    current = info.available;
    stock_code code = stock_set(conf_store, w->sku, current + 1, &current,
                                &available, NULL);
    if (code == STOCK_OK) {
        /* Every landed increment makes a level no other one made. */
        if (available != current + 1 ||
            !conf_mark_level(w->seen, CAS_THREADS * CAS_INCREMENTS, current))
            w->bad++;
        return true;
    }
    /* MISMATCH reports a current value other than the expected one. */
    if (code != STOCK_MISMATCH || available == current)
        w->bad++;
    return false;
}

static void *cas_run(void *arg)
{
    cas_worker *w = arg;
    for (int n = 0; n < CAS_INCREMENTS; n++) {
        for (int attempt = 0; attempt < CAS_ATTEMPTS_MAX; attempt++) {
            if (cas_try(w)) {
                w->landed++;
                break;
            }
        }
    }
    return NULL;
}

static void racing_compare_and_set_increments_all_land(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 0);
    atomic_uchar *seen = calloc(CAS_THREADS * CAS_INCREMENTS, sizeof *seen);
    assert_non_null(seen);
    cas_worker workers[CAS_THREADS];
    for (int i = 0; i < CAS_THREADS; i++)
        workers[i] = (cas_worker){.sku = sku.id, .seen = seen};
    conf_run_threads(CAS_THREADS, cas_run, workers, sizeof workers[0]);
    free(seen);
    for (int i = 0; i < CAS_THREADS; i++) {
        assert_i64(workers[i].bad, 0);
        assert_i64(workers[i].landed, CAS_INCREMENTS);
    }
    sku.adjusted = CAS_THREADS * CAS_INCREMENTS;
    conf_check_sku(&sku);
}

int conf_run_races(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(mixed_work_keeps_exact_totals),
        cmocka_unit_test(racing_compare_and_set_increments_all_land),
    };
    return cmocka_run_group_tests_name("races", tests, NULL, NULL);
}
