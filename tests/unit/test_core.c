/*
 * test_core.c -- unit tests of the state machine (src/core): each rule of
 * docs/semantics.md, replay determinism, snapshot round trips, and damaged
 * records and snapshots (which must give STOCK_CORRUPT, never a crash).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"

/* Pools of ids the random mix draws from: small, so that replays and
 * conflicts happen often. */
#define MIX_SKUS 12
#define MIX_LINES 240
#define MIX_ORDERS 40
#define MIX_REFUNDS 80
#define MIX_ADJUSTMENTS 24
#define MIX_HOLDS 200
/* Hold TTLs in the mix: the fixture's clock moves 1 us per op, so a hold
 * of 1 ms outlives about a thousand ops. */
#define MIX_TTL_MS_MAX 2
/* The type byte of an EXPIRE record (src/core/record_types.h). */
#define RECORD_EXPIRE_BYTE 10
#define MIX_OPS 2000
#define LOG_RECORDS_MAX 8192
#define NAME_BYTES 24

/* ------------------------------------------------------------- harness */

/* The records core_apply emitted, one after another, with their bounds. */
typedef struct record_log {
    buf bytes;
    size_t start[LOG_RECORDS_MAX];
    size_t count;
} record_log;

typedef struct fixture {
    core *state;
    record_log log;
    int64_t now_us;
} fixture;

static int setup(void **context)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->state = core_create();
    assert_non_null(f->state);
    f->now_us = 1700000000000000;
    *context = f;
    return 0;
}

static int teardown(void **context)
{
    fixture *f = *context;
    core_destroy(f->state);
    buf_free(&f->log.bytes);
    free(f);
    return 0;
}

/* An id over a C string (the library's stock_id_from_cstr lives with the
 * backends, which this test does not link). */
static stock_id id_of(const char *text)
{
    return (stock_id){text, (uint32_t)strlen(text)};
}

/* Validates and applies op; checks that exactly the state-changing results
 * emit one record, and keeps it. Returns the op's code. */
static stock_code run(fixture *f, stock_op *op)
{
    op->code = STOCK_OK;
    op->failed_line = -1;
    op->message[0] = '\0';
    if (stock_validate(op) != STOCK_OK)
        return op->code;
    size_t before = f->log.bytes.len;
    bool changed = core_apply(f->state, op, f->now_us++, &f->log.bytes);
    assert_int_equal(changed, f->log.bytes.len > before);
    if (changed) {
        /* A change is the op's, or the expiry of a hold it touched. */
        if (op->code != STOCK_OK)
            assert_int_equal(f->log.bytes.data[before], RECORD_EXPIRE_BYTE);
        assert_true(f->log.count < LOG_RECORDS_MAX);
        f->log.start[f->log.count++] = before;
    }
    if (op->code != STOCK_OK && op->code != STOCK_REPLAY)
        assert_true(op->message[0] != '\0');
    return op->code;
}

static stock_op op_set(const char *sku, int64_t level)
{
    return (stock_op){.type = STOCK_OP_SET, .sku = id_of(sku),
                      .amount = level};
}

static stock_op op_cas(const char *sku, int64_t level, int64_t expect)
{
    stock_op op = op_set(sku, level);
    op.has_expect = true;
    op.expect = expect;
    return op;
}

static stock_op op_add(const char *sku, int64_t delta, const char *id)
{
    return (stock_op){.type = STOCK_OP_ADD, .sku = id_of(sku),
                      .amount = delta,
                      .id = id ? id_of(id) : (stock_id){0}};
}

static stock_op op_deduct(const char *line, const char *sku, int64_t qty)
{
    return (stock_op){.type = STOCK_OP_DEDUCT, .id = id_of(line),
                      .sku = id_of(sku), .amount = qty};
}

static stock_op op_refund(const char *refund, const char *line, int64_t qty)
{
    return (stock_op){.type = STOCK_OP_REFUND, .id = id_of(refund),
                      .line = id_of(line), .amount = qty};
}

static stock_op op_order(const char *order, stock_order_line *lines,
                         uint32_t count)
{
    return (stock_op){.type = STOCK_OP_ORDER, .id = id_of(order),
                      .lines = lines, .line_count = count};
}

static stock_order_line order_line(const char *line, const char *sku, int64_t qty)
{
    return (stock_order_line){id_of(line), id_of(sku),
                              qty, 0};
}

/* Runs op and checks its code (and available, unless it is -1). */
static void expect(fixture *f, stock_op op, stock_code code, int64_t available)
{
    stock_code got = run(f, &op);
    if (got != code)
        fail_msg("expected %s, got %s (%s)", stock_code_name(code),
                 stock_code_name(got), op.message);
    if (available != -1)
        assert_int_equal(op.available, available);
}

static stock_sku_info get(fixture *f, const char *sku)
{
    stock_op op = {.type = STOCK_OP_GET, .sku = id_of(sku)};
    assert_int_equal(run(f, &op), STOCK_OK);
    return op.info.sku_info;
}

static stock_line_info line_info(fixture *f, const char *line)
{
    stock_op op = {.type = STOCK_OP_LINE, .line = id_of(line)};
    assert_int_equal(run(f, &op), STOCK_OK);
    return op.info.line_info;
}

static void assert_i2(fixture *f, const char *sku)
{
    stock_sku_info info = get(f, sku);
    assert_int_equal(info.available, info.adjusted - info.deducted + info.refunded);
    assert_true(info.available >= 0);
}

/* ------------------------------------------------------------- set, add */

static void test_set(void **context)
{
    fixture *f = *context;
    expect(f, op_cas("A", 5, 0), STOCK_NOT_FOUND, -1);   /* CAS needs a value */
    expect(f, op_set("A", 10), STOCK_OK, 10);            /* creates */
    expect(f, op_cas("A", 3, 7), STOCK_MISMATCH, 10);    /* current in available */
    stock_op op = op_cas("A", 3, 7);
    run(f, &op);
    assert_string_equal(op.message, "sku=A current=10");
    expect(f, op_cas("A", 4, 10), STOCK_OK, 4);
    expect(f, op_deduct("L1", "A", 3), STOCK_OK, 1);
    expect(f, op_set("A", 20), STOCK_OK, 20);            /* adjusted += 19 */
    stock_sku_info info = get(f, "A");
    assert_int_equal(info.adjusted, 10 - 6 + 19);
    assert_int_equal(info.deducted, 3);
    assert_i2(f, "A");
    size_t records = f->log.count;
    expect(f, op_set("A", 20), STOCK_OK, 20);            /* no change, no record */
    assert_int_equal(f->log.count, records);
}

static void test_add(void **context)
{
    fixture *f = *context;
    expect(f, op_add("A", 5, NULL), STOCK_NOT_FOUND, -1); /* set creates, add not */
    expect(f, op_set("A", 2), STOCK_OK, 2);
    expect(f, op_add("A", -3, NULL), STOCK_INSUFFICIENT, 2);
    expect(f, op_add("A", -2, NULL), STOCK_OK, 0);
    expect(f, op_add("A", 5, "J1"), STOCK_OK, 5);
    expect(f, op_add("A", 1, NULL), STOCK_OK, 6);
    expect(f, op_add("A", 5, "J1"), STOCK_REPLAY, 5);     /* the original */
    expect(f, op_add("A", 4, "J1"), STOCK_CONFLICT, -1);  /* other delta */
    expect(f, op_set("B", 1), STOCK_OK, 1);
    expect(f, op_add("B", 5, "J1"), STOCK_CONFLICT, -1);  /* other SKU */
    expect(f, op_add("Z", 5, "J1"), STOCK_CONFLICT, -1);  /* even a missing one */
    expect(f, op_add("A", -7, "J2"), STOCK_INSUFFICIENT, 6);
    expect(f, op_add("A", -6, "J2"), STOCK_OK, 0);       /* failed id is fresh */
    assert_int_equal(get(f, "A").adjusted, 0);
    assert_i2(f, "A");
}

/* Totals stay within int64: whatever would push one past it is INVALID.
 * Since adjusted = available + deducted - refunded, the adjusted total is
 * the first to overflow once stock sits near the top. */
static void test_overflow(void **context)
{
    fixture *f = *context;
    expect(f, op_set("A", INT64_MAX), STOCK_OK, INT64_MAX);
    expect(f, op_add("A", 1, NULL), STOCK_INVALID, -1);
    expect(f, op_deduct("L1", "A", 5), STOCK_OK, INT64_MAX - 5);
    expect(f, op_add("A", 5, NULL), STOCK_INVALID, -1);
    expect(f, op_set("A", INT64_MAX), STOCK_INVALID, -1);
    expect(f, op_refund("R1", "L1", 5), STOCK_OK, INT64_MAX);
    assert_i2(f, "A");
    expect(f, op_set("A", 0), STOCK_OK, 0);
    assert_i2(f, "A");
}

/* -------------------------------------------------------------- deduct */

static void test_deduct(void **context)
{
    fixture *f = *context;
    expect(f, op_deduct("L1", "A", 1), STOCK_NOT_FOUND, -1);
    stock_op op = op_deduct("L1", "A", 1);
    run(f, &op);
    assert_string_equal(op.message, "sku=A");
    expect(f, op_set("A", 10), STOCK_OK, 10);
    expect(f, op_deduct("L1", "A", 11), STOCK_INSUFFICIENT, 10);
    op = op_deduct("L1", "A", 11);
    run(f, &op);
    assert_string_equal(op.message, "sku=A available=10");
    expect(f, op_deduct("L1", "A", 4), STOCK_OK, 6);     /* the retry is fresh */
    expect(f, op_deduct("L2", "A", 6), STOCK_OK, 0);
    expect(f, op_deduct("L1", "A", 4), STOCK_REPLAY, 6); /* original after */
    expect(f, op_deduct("L1", "A", 3), STOCK_CONFLICT, -1);
    expect(f, op_set("B", 10), STOCK_OK, 10);
    expect(f, op_deduct("L1", "B", 4), STOCK_CONFLICT, -1);
    op = op_deduct("L1", "B", 4);
    run(f, &op);
    assert_string_equal(op.message, "line=L1 was used with other parameters");
    expect(f, op_deduct("L3", "A", 1), STOCK_INSUFFICIENT, 0);
    stock_sku_info info = get(f, "A");
    assert_int_equal(info.deducted, 10);
    assert_i2(f, "A");
}

/* DEDUCTs alternating between SKUs whose names share a prefix or a length
 * each take from their own SKU (core.c remembers the SKU a DEDUCT found
 * last and compares names before looking it up). */
static void test_deduct_alternating_skus(void **context)
{
    fixture *f = *context;
    static const char *const skus[] = {"A", "AB", "B", "A", "A", "AB", "BA", "B", "A"};
    expect(f, op_set("A", 100), STOCK_OK, 100);
    expect(f, op_set("AB", 200), STOCK_OK, 200);
    expect(f, op_set("B", 300), STOCK_OK, 300);
    expect(f, op_deduct("L0", "BA", 1), STOCK_NOT_FOUND, -1);
    int64_t taken[3] = {0, 0, 0};
    for (size_t i = 0; i < sizeof skus / sizeof skus[0]; i++) {
        char line[16];
        snprintf(line, sizeof line, "L%zu", i + 1);
        stock_op op = op_deduct(line, skus[i], (int64_t)i + 1);
        stock_code code = run(f, &op);
        if (strcmp(skus[i], "BA") == 0) {
            assert_int_equal(code, STOCK_NOT_FOUND);
            continue;
        }
        int which = strcmp(skus[i], "A") == 0 ? 0 : strcmp(skus[i], "AB") == 0 ? 1 : 2;
        taken[which] += (int64_t)i + 1;
        assert_int_equal(code, STOCK_OK);
        assert_int_equal(op.available, (which + 1) * 100 - taken[which]);
    }
    assert_int_equal(get(f, "A").deducted, taken[0]);
    assert_int_equal(get(f, "AB").deducted, taken[1]);
    assert_int_equal(get(f, "B").deducted, taken[2]);
    assert_i2(f, "A");
    assert_i2(f, "AB");
    assert_i2(f, "B");
}

static void test_line_info(void **context)
{
    fixture *f = *context;
    expect(f, op_set("SKU-1", 10), STOCK_OK, 10);
    int64_t time_us = f->now_us;
    expect(f, op_deduct("L1", "SKU-1", 3), STOCK_OK, 7);
    stock_line_info info = line_info(f, "L1");
    assert_string_equal(info.sku, "SKU-1");
    assert_string_equal(info.order_id, "");
    assert_int_equal(info.qty, 3);
    assert_int_equal(info.refunded, 0);
    assert_int_equal(info.time_us, time_us);
    assert_int_equal(info.available_after, 7);
    expect(f, op_deduct("L1", "SKU-1", 3), STOCK_REPLAY, 7); /* time unchanged */
    assert_int_equal(line_info(f, "L1").time_us, time_us);
    stock_op op = {.type = STOCK_OP_LINE, .line = id_of("L9")};
    assert_int_equal(run(f, &op), STOCK_NOT_FOUND);
    assert_string_equal(op.message, "line=L9");
    op = (stock_op){.type = STOCK_OP_GET, .sku = id_of("X")};
    assert_int_equal(run(f, &op), STOCK_NOT_FOUND);
}

/* --------------------------------------------------------------- order */

static void test_order_success_and_replay(void **context)
{
    fixture *f = *context;
    expect(f, op_set("A", 10), STOCK_OK, 10);
    expect(f, op_set("B", 5), STOCK_OK, 5);
    stock_order_line lines[3] = {order_line("O1-1", "A", 2),
                                 order_line("O1-2", "B", 5),
                                 order_line("O1-3", "A", 3)};
    expect(f, op_order("O1", lines, 3), STOCK_OK, -1);
    assert_int_equal(lines[0].available, 8);   /* right after each line */
    assert_int_equal(lines[1].available, 0);
    assert_int_equal(lines[2].available, 5);
    assert_string_equal(line_info(f, "O1-2").order_id, "O1");
    expect(f, op_add("A", 10, NULL), STOCK_OK, 15);
    stock_order_line again[3] = {order_line("O1-1", "A", 2),
                                 order_line("O1-2", "B", 5),
                                 order_line("O1-3", "A", 3)};
    expect(f, op_order("O1", again, 3), STOCK_REPLAY, -1);
    assert_int_equal(again[0].available, 8);
    assert_int_equal(again[2].available, 5);
    again[2].qty = 4;
    expect(f, op_order("O1", again, 3), STOCK_CONFLICT, -1);
    expect(f, op_order("O1", again, 2), STOCK_CONFLICT, -1);  /* other count */
    /* A line of an order is not a deduct of its own. */
    expect(f, op_deduct("O1-1", "A", 2), STOCK_CONFLICT, -1);
    assert_int_equal(get(f, "A").deducted, 5);
    assert_i2(f, "A");
    assert_i2(f, "B");
}

static void test_order_failures(void **context)
{
    fixture *f = *context;
    expect(f, op_set("A", 10), STOCK_OK, 10);
    expect(f, op_set("B", 1), STOCK_OK, 1);
    expect(f, op_deduct("L1", "A", 1), STOCK_OK, 9);
    /* Line-id conflict with a lone line: CONFLICT naming the line. */
    stock_order_line lines[3] = {order_line("N1", "A", 1),
                                 order_line("L1", "A", 1),
                                 order_line("N3", "B", 1)};
    stock_op op = op_order("O1", lines, 3);
    assert_int_equal(run(f, &op), STOCK_CONFLICT);
    assert_int_equal(op.failed_line, 1);
    /* First failure wins: a missing SKU before a conflicting line. */
    lines[0] = order_line("N1", "Z", 1);
    op = op_order("O1", lines, 3);
    assert_int_equal(run(f, &op), STOCK_NOT_FOUND);
    assert_int_equal(op.failed_line, 0);
    assert_string_equal(op.message, "sku=Z");
    /* Existence before sufficiency: B is short, but line 3's SKU is missing. */
    stock_order_line short_lines[3] = {order_line("N1", "B", 2),
                                       order_line("N2", "A", 1),
                                       order_line("N3", "Y", 1)};
    op = op_order("O1", short_lines, 3);
    assert_int_equal(run(f, &op), STOCK_NOT_FOUND);
    assert_int_equal(op.failed_line, 2);
    /* A SKU is checked against the sum of its lines, at its first line. */
    stock_order_line sum_lines[3] = {order_line("N1", "A", 1),
                                     order_line("N2", "B", 1),
                                     order_line("N3", "B", 1)};
    op = op_order("O1", sum_lines, 3);
    assert_int_equal(run(f, &op), STOCK_INSUFFICIENT);
    assert_int_equal(op.failed_line, 1);
    assert_int_equal(op.available, 1);
    assert_string_equal(op.message, "sku=B available=1");
    /* Nothing was taken (I3) and the failed order id is fresh. */
    assert_int_equal(get(f, "A").available, 9);
    assert_int_equal(get(f, "B").available, 1);
    sum_lines[2].qty = 0;   /* invalid: rejected before the core */
    op = op_order("O1", sum_lines, 3);
    assert_int_equal(run(f, &op), STOCK_INVALID);
    expect(f, op_order("O1", sum_lines, 2), STOCK_OK, -1);
    /* A line of one order cannot join another. */
    stock_order_line other[1] = {order_line("N2", "A", 1)};
    op = op_order("O2", other, 1);
    assert_int_equal(run(f, &op), STOCK_CONFLICT);
    assert_int_equal(op.failed_line, 0);
}

/* -------------------------------------------------------------- refund */

static void test_refund(void **context)
{
    fixture *f = *context;
    expect(f, op_refund("R1", "L1", 1), STOCK_NOT_FOUND, -1);
    expect(f, op_set("A", 10), STOCK_OK, 10);
    expect(f, op_deduct("L1", "A", 4), STOCK_OK, 6);
    expect(f, op_refund("R1", "L1", 5), STOCK_EXCEEDS, 4);
    stock_op op = op_refund("R1", "L1", 5);
    run(f, &op);
    assert_string_equal(op.message, "line=L1 refundable=4");
    expect(f, op_refund("R1", "L1", 3), STOCK_OK, 9);    /* the retry is fresh */
    expect(f, op_deduct("L2", "A", 9), STOCK_OK, 0);
    expect(f, op_refund("R1", "L1", 3), STOCK_REPLAY, 9); /* the original */
    expect(f, op_refund("R1", "L1", 1), STOCK_CONFLICT, -1);
    expect(f, op_refund("R1", "L2", 3), STOCK_CONFLICT, -1);
    expect(f, op_refund("R2", "L1", 2), STOCK_EXCEEDS, 1);
    expect(f, op_refund("R2", "L1", 1), STOCK_OK, 1);
    expect(f, op_refund("R3", "L1", 1), STOCK_EXCEEDS, 0);
    stock_line_info info = line_info(f, "L1");
    assert_int_equal(info.refunded, 4);
    stock_sku_info sku = get(f, "A");
    assert_int_equal(sku.refunded, 4);
    assert_int_equal(sku.deducted, 13);
    assert_i2(f, "A");
}

static void test_refund_order_line(void **context)
{
    fixture *f = *context;
    expect(f, op_set("A", 3), STOCK_OK, 3);
    stock_order_line lines[2] = {order_line("X1", "A", 1), order_line("X2", "A", 2)};
    expect(f, op_order("O1", lines, 2), STOCK_OK, -1);
    expect(f, op_refund("R1", "X2", 2), STOCK_OK, 2);
    expect(f, op_refund("R2", "X2", 1), STOCK_EXCEEDS, 0);
    assert_i2(f, "A");
}

/* ------------------------------------------------------------ the mix */

static uint64_t rng_state;

static uint32_t rng(uint32_t bound)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % bound);
}

static void mix_order(fixture *f, char *order_id)
{
    char names[2][5][NAME_BYTES];
    stock_order_line lines[5];
    uint32_t count = 1 + rng(5);
    for (uint32_t i = 0; i < count; i++) {
        snprintf(names[0][i], NAME_BYTES, "L%u", rng(MIX_LINES));
        snprintf(names[1][i], NAME_BYTES, "S%u", rng(MIX_SKUS));
        lines[i] = order_line(names[0][i], names[1][i], 1 + rng(4));
    }
    stock_op op = op_order(order_id, lines, count);
    run(f, &op);
}

/* The sweep the embedded engine runs before each group. */
static void mix_sweep(fixture *f)
{
    size_t before = f->log.bytes.len;
    uint32_t expired = core_expire(f->state, f->now_us, 1 + rng(4), &f->log.bytes);
    assert_int_equal(expired > 0, f->log.bytes.len > before);
    if (expired > 0) {
        assert_true(f->log.count < LOG_RECORDS_MAX);
        f->log.start[f->log.count++] = before;
    }
}

/* A hold op over the pools: hold, confirm (all, part or too much),
 * release, read, or a confirmed order of two. */
static void mix_hold(fixture *f, const char *sku)
{
    char hold[NAME_BYTES], other[NAME_BYTES], order[NAME_BYTES];
    snprintf(hold, sizeof hold, "H%u", rng(MIX_HOLDS));
    snprintf(other, sizeof other, "H%u", rng(MIX_HOLDS));
    uint32_t kind = rng(10);
    stock_op op = {.id = id_of(hold)};
    stock_order_line lines[2] = {order_line(hold, sku, rng(3)),
                                 order_line(other, sku, 0)};
    if (kind < 4) {
        op.type = STOCK_OP_HOLD;
        op.sku = id_of(sku);
        op.amount = 1 + rng(4);
        op.expect = 1 + rng(MIX_TTL_MS_MAX);
    } else if (kind < 6) {
        op.type = STOCK_OP_CONFIRM;
        op.amount = rng(4);
    } else if (kind < 8) {
        op.type = STOCK_OP_RELEASE;
    } else if (kind < 9) {
        op.type = STOCK_OP_HOLD_GET;
    } else {
        snprintf(order, sizeof order, "P%u", rng(MIX_ORDERS));
        op = (stock_op){.type = STOCK_OP_CONFIRM_ORDER, .id = id_of(order),
                        .lines = lines, .line_count = strcmp(hold, other) ? 2 : 1};
    }
    run(f, &op);
}

/* One random operation over small id pools: every outcome happens. */
static void mix_one(fixture *f)
{
    char a[NAME_BYTES], b[NAME_BYTES], c[NAME_BYTES];
    uint32_t kind = rng(100);
    snprintf(a, sizeof a, "S%u", rng(MIX_SKUS));
    snprintf(b, sizeof b, "L%u", rng(MIX_LINES));
    stock_op op;
    if (kind < 6) {
        op = rng(2) ? op_set(a, rng(60)) : op_cas(a, rng(60), rng(30));
    } else if (kind < 14) {
        snprintf(c, sizeof c, "J%u", rng(MIX_ADJUSTMENTS));
        op = op_add(a, (int64_t)rng(30) - 10, rng(2) ? c : NULL);
    } else if (kind < 54) {
        op = op_deduct(b, a, 1 + rng(4));
    } else if (kind < 70) {
        snprintf(c, sizeof c, "O%u", rng(MIX_ORDERS));
        mix_order(f, c);
        return;
    } else if (kind < 80) {
        snprintf(c, sizeof c, "R%u", rng(MIX_REFUNDS));
        op = op_refund(c, b, 1 + rng(3));
    } else if (kind < 92) {
        mix_hold(f, a);
        return;
    } else if (kind < 94) {
        mix_sweep(f);
        return;
    } else {
        op = rng(2) ? (stock_op){.type = STOCK_OP_GET, .sku = id_of(a)}
                    : (stock_op){.type = STOCK_OP_LINE, .line = id_of(b)};
    }
    run(f, &op);
}

static void mix(fixture *f, uint64_t seed, int ops)
{
    rng_state = seed;
    for (int i = 0; i < MIX_SKUS; i++) {
        char sku[NAME_BYTES];
        snprintf(sku, sizeof sku, "S%d", i);
        stock_op op = op_set(sku, 30 + rng(60));
        run(f, &op);
    }
    for (int i = 0; i < ops; i++)
        mix_one(f);
}

/* Runs a read on a core directly. */
static void query(core *state, stock_op *op)
{
    buf scratch = {0};
    op->code = STOCK_OK;
    op->message[0] = '\0';
    assert_false(core_apply(state, op, 0, &scratch));
    assert_int_equal(scratch.len, 0);
    buf_free(&scratch);
}

static int write_buf(void *context, const void *data, size_t len)
{
    return buf_append(context, data, len) ? 0 : -1;
}

typedef struct memory_reader {
    const uint8_t *data;
    size_t len;
    size_t at;
} memory_reader;

static int read_memory(void *context, void *data, size_t len)
{
    memory_reader *reader = context;
    if (reader->len - reader->at < len)
        return -1;
    memcpy(data, reader->data + reader->at, len);
    reader->at += len;
    return 0;
}

static void snapshot(const core *state, buf *out)
{
    buf_clear(out);
    assert_int_equal(core_snapshot_save(state, write_buf, out), 0);
}

/* Compares two states through get and line of every id the mix uses, the
 * stats, and the snapshot bytes. */
static void assert_same_state(core *a, core *b)
{
    char name[NAME_BYTES];
    for (int i = 0; i < MIX_SKUS; i++) {
        snprintf(name, sizeof name, "S%d", i);
        stock_op x = {.type = STOCK_OP_GET, .sku = id_of(name)};
        stock_op y = x;
        query(a, &x);
        query(b, &y);
        assert_int_equal(x.code, y.code);
        assert_memory_equal(&x.info.sku_info, &y.info.sku_info, sizeof x.info.sku_info);
    }
    for (int i = 0; i < MIX_LINES; i++) {
        snprintf(name, sizeof name, "L%d", i);
        stock_op x = {.type = STOCK_OP_LINE, .line = id_of(name)};
        stock_op y = x;
        query(a, &x);
        query(b, &y);
        assert_int_equal(x.code, y.code);
        assert_memory_equal(&x.info.line_info, &y.info.line_info, sizeof x.info.line_info);
    }
    for (int i = 0; i < MIX_HOLDS; i++) {
        snprintf(name, sizeof name, "H%d", i);
        stock_op x = {.type = STOCK_OP_HOLD_GET, .id = id_of(name)};
        stock_op y = x;
        query(a, &x);
        query(b, &y);
        assert_int_equal(x.code, y.code);
        assert_memory_equal(&x.info.hold_info, &y.info.hold_info, sizeof x.info.hold_info);
    }
    core_stats sa, sb;
    core_get_stats(a, &sa);
    core_get_stats(b, &sb);
    assert_int_equal(sa.holds, sb.holds);
    assert_int_equal(sa.holds_outstanding, sb.holds_outstanding);
    assert_int_equal(sa.held_units, sb.held_units);
    assert_int_equal(sa.skus, sb.skus);
    assert_int_equal(sa.lines, sb.lines);
    assert_int_equal(sa.orders, sb.orders);
    assert_int_equal(sa.refunds, sb.refunds);
    assert_int_equal(sa.adjustments, sb.adjustments);
    buf snap_a = {0}, snap_b = {0};
    snapshot(a, &snap_a);
    snapshot(b, &snap_b);
    assert_int_equal(snap_a.len, snap_b.len);
    assert_memory_equal(snap_a.data, snap_b.data, snap_a.len);
    buf_free(&snap_a);
    buf_free(&snap_b);
}

static const uint8_t *record_at(const record_log *log, size_t i, size_t *len)
{
    size_t end = i + 1 < log->count ? log->start[i + 1] : log->bytes.len;
    *len = end - log->start[i];
    return log->bytes.data + log->start[i];
}

static void replay_range(core *state, const record_log *log, size_t from, size_t to)
{
    char message[STOCK_MESSAGE_MAX];
    for (size_t i = from; i < to; i++) {
        size_t len;
        if (i + CORE_PREFETCH_AHEAD < to) {
            const uint8_t *later = record_at(log, i + CORE_PREFETCH_AHEAD, &len);
            core_replay_prefetch(state, later, len);
        }
        const uint8_t *record = record_at(log, i, &len);
        stock_code code = core_replay(state, record, len, message, sizeof message);
        if (code != STOCK_OK)
            fail_msg("record %zu: %s %s", i, stock_code_name(code), message);
    }
}

static void test_replay_determinism(void **context)
{
    fixture *f = *context;
    mix(f, 0x9E3779B97F4A7C15u, MIX_OPS);
    core_stats stats;
    core_get_stats(f->state, &stats);
    assert_true(stats.lines > 100 && stats.orders > 10 && stats.refunds > 10 &&
                stats.adjustments > 5);
    assert_true(stats.holds > 50 && stats.hold_expiries > 5 &&
                stats.hold_confirmations > 2 && stats.hold_releases > 2);
    core *copy = core_create();
    replay_range(copy, &f->log, 0, f->log.count);
    assert_same_state(f->state, copy);
    core_destroy(copy);
}

static void test_snapshot_round_trip(void **context)
{
    fixture *f = *context;
    mix(f, 12345, MIX_OPS / 2);
    buf image = {0};
    snapshot(f->state, &image);
    size_t records_at_snapshot = f->log.count;
    for (int i = 0; i < MIX_OPS / 2; i++)
        mix_one(f);
    /* Recovery: the snapshot, then the log after it. */
    core *copy = core_create();
    memory_reader reader = {image.data, image.len, 0};
    char message[STOCK_MESSAGE_MAX] = "";
    assert_int_equal(core_snapshot_load(copy, read_memory, &reader, reader.len, message,
                                        sizeof message), STOCK_OK);
    assert_int_equal(reader.at, image.len);
    replay_range(copy, &f->log, records_at_snapshot, f->log.count);
    assert_same_state(f->state, copy);
    core_destroy(copy);
    /* An empty state round-trips too. */
    core *empty = core_create(), *loaded = core_create();
    snapshot(empty, &image);
    reader = (memory_reader){image.data, image.len, 0};
    assert_int_equal(core_snapshot_load(loaded, read_memory, &reader, reader.len, NULL, 0), STOCK_OK);
    core_destroy(empty);
    core_destroy(loaded);
    buf_free(&image);
}

/* A hold expires at its deadline on the time the core is given, once; a
 * clock stepped back neither un-expires it nor lets an op see it held. */
static void test_hold_expiry_and_clock(void **context)
{
    fixture *f = *context;
    expect(f, op_set("S", 10), STOCK_OK, 10);
    stock_op hold = {.type = STOCK_OP_HOLD, .id = id_of("H"), .sku = id_of("S"),
                     .amount = 4, .expect = 10};
    expect(f, hold, STOCK_OK, 6);
    int64_t deadline = f->now_us - 1 + 10 * 1000;
    buf record = {0};
    assert_int_equal(core_next_deadline(f->state), deadline);
    assert_int_equal(core_expire(f->state, deadline - 1, 8, &record), 0);
    assert_int_equal(record.len, 0);
    assert_int_equal(core_expire(f->state, deadline, 8, &record), 1);
    assert_true(record.len > 0);
    assert_int_equal(get(f, "S").available, 10);
    assert_int_equal(get(f, "S").held, 0);
    /* Once: a later sweep and a touch find it expired. */
    buf_clear(&record);
    assert_int_equal(core_expire(f->state, deadline + 1000, 8, &record), 0);
    f->now_us = deadline - 5000;   /* the clock steps back */
    stock_op confirm = {.type = STOCK_OP_CONFIRM, .id = id_of("H")};
    expect(f, confirm, STOCK_EXPIRED, -1);
    assert_true(core_time(f->state, f->now_us) >= deadline - 10 * 1000);
    /* A second hold, touched after its deadline: the touch expires it. */
    hold.id = id_of("H2");
    f->now_us = deadline + 10;
    expect(f, hold, STOCK_OK, 6);
    f->now_us += 20 * 1000;
    stock_op release = {.type = STOCK_OP_RELEASE, .id = id_of("H2")};
    size_t before = f->log.bytes.len;
    run(f, &release);
    assert_int_equal(release.code, STOCK_EXPIRED);
    assert_int_equal(f->log.bytes.data[before], RECORD_EXPIRE_BYTE);
    assert_int_equal(get(f, "S").available, 10);
    buf_free(&record);
}

static int fail_writes_after;

static int write_failing(void *context, const void *data, size_t len)
{
    (void)context, (void)data, (void)len;
    return fail_writes_after-- > 0 ? 0 : -1;
}

/* Enough lines that the snapshot takes several writes. */
#define WRITE_FAILURE_LINES 5000

static void test_snapshot_write_failure(void **context)
{
    fixture *f = *context;
    expect(f, op_set("A", WRITE_FAILURE_LINES), STOCK_OK, WRITE_FAILURE_LINES);
    char line[NAME_BYTES];
    for (int i = 0; i < WRITE_FAILURE_LINES; i++) {
        snprintf(line, sizeof line, "line-%d", i);
        expect(f, op_deduct(line, "A", 1), STOCK_OK, WRITE_FAILURE_LINES - 1 - i);
    }
    for (int ok_writes = 0; ok_writes < 3; ok_writes++) {
        fail_writes_after = ok_writes;
        assert_int_equal(core_snapshot_save(f->state, write_failing, NULL), -1);
    }
    fail_writes_after = 1000;
    assert_int_equal(core_snapshot_save(f->state, write_failing, NULL), 0);
}

static void test_stats(void **context)
{
    fixture *f = *context;
    expect(f, op_set("A", 1000), STOCK_OK, 1000);
    char line[NAME_BYTES];
    for (int i = 0; i < 500; i++) {
        snprintf(line, sizeof line, "line-%d", i);
        expect(f, op_deduct(line, "A", 1), STOCK_OK, 999 - i);
    }
    core_stats stats;
    core_get_stats(f->state, &stats);
    assert_int_equal(stats.skus, 1);
    assert_int_equal(stats.lines, 500);
    assert_int_equal(stats.orders, 0);
    assert_true(stats.memory_bytes > 500 * 40);
}

/* Past 2^18 lines the line pool switches to its steady 10 MiB chunks and
 * the id arena to 2 MiB ones: lines on both sides must stay reachable. */
#define MANY_LINES ((1 << 18) + 5000)

static void test_many_lines(void **context)
{
    fixture *f = *context;
    expect(f, op_set("A", MANY_LINES), STOCK_OK, MANY_LINES);
    char line[NAME_BYTES];
    for (int i = 0; i < MANY_LINES; i++) {
        snprintf(line, sizeof line, "line-%d", i);
        stock_op op = op_deduct(line, "A", 1);
        f->log.count = 0;      /* the records are not kept */
        buf_clear(&f->log.bytes);
        assert_int_equal(run(f, &op), STOCK_OK);
    }
    static const int probes[] = {0, 255, 256, 4095, 1 << 17, (1 << 18) - 1,
                                 1 << 18, MANY_LINES - 1};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        snprintf(line, sizeof line, "line-%d", probes[i]);
        stock_line_info info = line_info(f, line);
        assert_int_equal(info.available_after, MANY_LINES - 1 - probes[i]);
        expect(f, op_deduct(line, "A", 1), STOCK_REPLAY, MANY_LINES - 1 - probes[i]);
    }
    buf image = {0};
    snapshot(f->state, &image);
    core *copy = core_create();
    memory_reader reader = {image.data, image.len, 0};
    assert_int_equal(core_snapshot_load(copy, read_memory, &reader, reader.len, NULL, 0), STOCK_OK);
    buf again = {0};
    snapshot(copy, &again);
    assert_int_equal(again.len, image.len);
    assert_memory_equal(again.data, image.data, image.len);
    core_destroy(copy);
    buf_free(&image);
    buf_free(&again);
}

/* ------------------------------------------------------- damaged bytes */

#define CORRUPT_RECORDS_MAX 80

static void assert_corrupt(stock_code code, const char *message)
{
    assert_int_equal(code, STOCK_CORRUPT);
    assert_true(message[0] != '\0');
}

/* Replays damaged copies of one record on the state it belongs to: every
 * truncation must be CORRUPT; every byte changed must be CORRUPT or apply
 * (a changed id byte can make another valid record), never crash. */
static void damage_record(core *state, const uint8_t *record, size_t len)
{
    static const uint8_t values[] = {0x00, 0x01, 0x20, 0x41, 0x7F, 0xFF};
    uint8_t copy[STOCK_ORDER_LINES_MAX * 160];
    char message[STOCK_MESSAGE_MAX];
    assert_true(len + 1 <= sizeof copy);
    for (size_t cut = 0; cut < len; cut++) {
        message[0] = '\0';
        core_replay_prefetch(state, record, cut);
        assert_corrupt(core_replay(state, record, cut, message, sizeof message),
                       message);
    }
    memcpy(copy, record, len);
    copy[len] = 0;  /* a trailing byte */
    message[0] = '\0';
    assert_corrupt(core_replay(state, copy, len + 1, message, sizeof message), message);
    for (size_t at = 0; at < len; at++) {
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
            memcpy(copy, record, len);
            copy[at] = copy[at] == values[v] ? (uint8_t)~values[v] : values[v];
            core_replay_prefetch(state, copy, len);
            stock_code code = core_replay(state, copy, len, message, sizeof message);
            assert_true(code == STOCK_OK || code == STOCK_CORRUPT);
        }
    }
}

static void test_corrupt_records(void **context)
{
    fixture *f = *context;
    mix(f, 4242, 150);
    size_t count = f->log.count < CORRUPT_RECORDS_MAX ? f->log.count
                                                      : CORRUPT_RECORDS_MAX;
    for (size_t i = 0; i < count; i++) {
        core *state = core_create();
        replay_range(state, &f->log, 0, i);
        size_t len;
        const uint8_t *record = record_at(&f->log, i, &len);
        damage_record(state, record, len);
        core_destroy(state);
    }
}

static void test_records_that_do_not_apply(void **context)
{
    fixture *f = *context;
    expect(f, op_set("A", 5), STOCK_OK, 5);
    expect(f, op_deduct("L1", "A", 2), STOCK_OK, 3);
    size_t len;
    const uint8_t *deduct = record_at(&f->log, 1, &len);
    char message[STOCK_MESSAGE_MAX];
    core *state = core_create();
    /* A deduct of a SKU the state does not have. */
    assert_corrupt(core_replay(state, deduct, len, message, sizeof message), message);
    assert_non_null(strstr(message, "NOTFOUND"));
    replay_range(state, &f->log, 0, 2);
    /* The same deduct twice: the log does not fit the state. */
    assert_corrupt(core_replay(state, deduct, len, message, sizeof message), message);
    /* Unknown record types. */
    uint8_t bad[64];
    memcpy(bad, deduct, len);
    bad[0] = 0;
    assert_corrupt(core_replay(state, bad, len, message, sizeof message), message);
    bad[0] = 6;
    assert_corrupt(core_replay(state, bad, len, message, sizeof message), message);
    assert_corrupt(core_replay(state, NULL, 0, message, sizeof message), message);
    core_destroy(state);
}

static stock_code load_bytes(const uint8_t *data, size_t len, char *message)
{
    core *state = core_create();
    memory_reader reader = {data, len, 0};
    message[0] = '\0';
    stock_code code = core_snapshot_load(state, read_memory, &reader, len, message,
                                         STOCK_MESSAGE_MAX);
    core_destroy(state);
    return code;
}

static void test_corrupt_snapshots(void **context)
{
    fixture *f = *context;
    mix(f, 99, 120);
    buf image = {0};
    snapshot(f->state, &image);
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(load_bytes(image.data, image.len, message), STOCK_OK);
    for (size_t cut = 0; cut < image.len; cut++)
        assert_corrupt(load_bytes(image.data, cut, message), message);
    uint8_t *copy = malloc(image.len);
    assert_non_null(copy);
    for (size_t at = 0; at < image.len; at++) {
        for (int v = 0; v < 2; v++) {
            memcpy(copy, image.data, image.len);
            copy[at] = v ? (uint8_t)~copy[at] : (uint8_t)(copy[at] ^ 0x01);
            stock_code code = load_bytes(copy, image.len, message);
            assert_true(code == STOCK_OK || code == STOCK_CORRUPT);
        }
    }
    free(copy);
    buf_free(&image);
}

static void test_snapshot_checks(void **context)
{
    fixture *f = *context;
    expect(f, op_set("AA", 5), STOCK_OK, 5);
    expect(f, op_set("AB", 7), STOCK_OK, 7);
    buf image = {0};
    snapshot(f->state, &image);
    char message[STOCK_MESSAGE_MAX];
    uint8_t *second = memmem(image.data, image.len, "AB", 2);
    assert_non_null(second);
    second[1] = 'A';                     /* the same SKU twice */
    assert_corrupt(load_bytes(image.data, image.len, message), message);
    assert_non_null(strstr(message, "appears twice"));
    second[1] = 'B';
    size_t first_sku = 8 + 4 + 4 + 5 * 8 + 2 * 8;   /* version 2 header */
    image.data[first_sku] ^= 1;          /* available no longer adds up */
    assert_corrupt(load_bytes(image.data, image.len, message), message);
    assert_non_null(strstr(message, "totals"));
    image.data[first_sku] ^= 1;
    image.data[16] = 0xFF;               /* more SKUs than the bytes hold */
    assert_corrupt(load_bytes(image.data, image.len, message), message);
    assert_non_null(strstr(message, "do not fit"));
    image.data[0] = 'X';                 /* not a snapshot */
    assert_corrupt(load_bytes(image.data, image.len, message), message);
    assert_non_null(strstr(message, "not a stockd snapshot"));
    buf_free(&image);
}

/* A repeated id among many entries (the index is built in bulk, by hash
 * order, once a section is read) is still found, and the later entry is
 * the one named. */
static void test_snapshot_duplicate_among_many(void **context)
{
    fixture *f = *context;
    expect(f, op_set("S", 1000000), STOCK_OK, 1000000);
    char id[16];
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof id, "L%05d", i);
        expect(f, op_deduct(id, "S", 1), STOCK_OK, 1000000 - 1 - i);
    }
    buf image = {0};
    snapshot(f->state, &image);
    char message[STOCK_MESSAGE_MAX];
    uint8_t *late = memmem(image.data, image.len, "L02900", 6);
    assert_non_null(late);
    memcpy(late, "L00017", 6);           /* line 2900 repeats line 17's id */
    assert_corrupt(load_bytes(image.data, image.len, message), message);
    assert_non_null(strstr(message, "snapshot line 2900: the id appears twice"));
    buf_free(&image);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deduct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deduct_alternating_skus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_success_and_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refund, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_expiry_and_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refund_order_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_determinism, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_write_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_records_that_do_not_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_snapshots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_duplicate_among_many, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
