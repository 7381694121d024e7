/*
 * test_retain.c -- unit tests of retention in the core (src/core/retain.c):
 * what a move (core_retain_begin, _step, _finish) moves and keeps, also
 * with ops applied between its steps, and that core_thaw_op brings back what
 * an op names so that it answers as before, against a cold store kept in
 * memory here.
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

#define COLD_ITEMS_MAX 64
#define T0 INT64_C(1700000000000000)
#define SECOND INT64_C(1000000)

/* A cold store: a list of kind + id -> value. */
typedef struct item {
    core_cold_kind kind;
    char id[STOCK_ID_MAX + 1];
    uint8_t value[CORE_COLD_VALUE_MAX];
    size_t len;
} item;

typedef struct memory_cold {
    item items[COLD_ITEMS_MAX];
    size_t count;
} memory_cold;

static item *find(memory_cold *store, core_cold_kind kind, stock_id id)
{
    for (size_t i = 0; i < store->count; i++)
        if (store->items[i].kind == kind && strlen(store->items[i].id) == id.len &&
            memcmp(store->items[i].id, id.ptr, id.len) == 0)
            return &store->items[i];
    return NULL;
}

static int put(void *context, core_cold_kind kind, stock_id id, const uint8_t *value, size_t len)
{
    memory_cold *store = context;
    item *at = find(store, kind, id);
    if (at == NULL) {
        assert_true(store->count < COLD_ITEMS_MAX);
        at = &store->items[store->count++];
        at->kind = kind;
        memcpy(at->id, id.ptr, id.len);
        at->id[id.len] = '\0';
    }
    memcpy(at->value, value, len);
    at->len = len;
    return 0;
}

static int get(void *context, core_cold_kind kind, stock_id id, uint8_t *value, size_t *len)
{
    item *at = find(context, kind, id);
    if (at == NULL)
        return 0;
    memcpy(value, at->value, at->len);
    *len = at->len;
    return 1;
}

static stock_op op_of(stock_op_type type, const char *id, const char *sku, int64_t amount)
{
    stock_op op = {.type = type, .id = stock_id_from_cstr(id), .sku = stock_id_from_cstr(sku),
                   .amount = amount};
    return op;
}

/* Thaws, then applies at time_us, as the embedded engine does. */
static stock_op run(core *state, const core_cold *cold, stock_op op, int64_t time_us)
{
    char message[STOCK_MESSAGE_MAX];
    buf record = {0};
    assert_int_equal(stock_validate(&op), STOCK_OK);
    assert_int_equal(core_thaw_op(state, &op, cold, message, sizeof message), STOCK_OK);
    if (op.code == STOCK_OK)
        core_apply(state, &op, time_us, &record);
    buf_free(&record);
    return op;
}

/* A new state with SKU "S" at level. */
static core *with_sku(const core_cold *cold, int64_t level)
{
    core *state = core_create();
    assert_non_null(state);
    stock_op set = {.type = STOCK_OP_SET, .sku = stock_id_from_cstr("S"), .amount = level};
    assert_int_equal(run(state, cold, set, T0).code, STOCK_OK);
    return state;
}

static core *retain(core *state, const core_cold *cold, int64_t cutoff_us, uint64_t expect)
{
    uint64_t moved = 0;
    stock_code code = STOCK_OK;
    core_retain_job *job = core_retain_begin(state, cutoff_us, cold);
    assert_non_null(job);
    core *hot = core_retain_finish(job, &code);
    assert_non_null(hot);
    assert_int_equal(code, STOCK_OK);
    moved = core_retain_moved(job);
    assert_int_equal(moved, expect);
    core_retain_free(job);
    core_destroy(state);
    return hot;
}

static void test_moves_old_and_closed_holds_keeps_young_and_held(void **unused)
{
    (void)unused;
    memory_cold store = {0};
    core_cold cold = {&store, put, get};
    core *state = with_sku(&cold, 100);
    assert_int_equal(run(state, &cold, op_of(STOCK_OP_DEDUCT, "old", "S", 5), T0).code, STOCK_OK);
    stock_op refund = op_of(STOCK_OP_REFUND, "r1", NULL, 2);
    refund.line = stock_id_from_cstr("old");
    assert_int_equal(run(state, &cold, refund, T0).code, STOCK_OK);
    stock_op hold = op_of(STOCK_OP_HOLD, "h1", "S", 3);
    hold.expect = 1000;
    assert_int_equal(run(state, &cold, hold, T0).code, STOCK_OK);
    stock_op confirm = op_of(STOCK_OP_CONFIRM, "h1", NULL, 0);
    confirm = run(state, &cold, confirm, T0);
    assert_int_equal(confirm.code, STOCK_OK);
    stock_op held = op_of(STOCK_OP_HOLD, "h2", "S", 4);
    held.expect = 3600 * 1000;
    assert_int_equal(run(state, &cold, held, T0).code, STOCK_OK);
    assert_int_equal(run(state, &cold, op_of(STOCK_OP_DEDUCT, "young", "S", 1), T0 + 10 * SECOND).code,
                     STOCK_OK);
    /* The line "old", its refund and the confirmed h1 (its deadline, T0 +
     * 1 s, is before the cutoff) leave; h1's line (while h1 was in
     * memory), "young" and the held h2 stay. */
    state = retain(state, &cold, T0 + 5 * SECOND, 3);
    core_stats stats;
    core_get_stats(state, &stats);
    assert_int_equal(stats.lines, 2);
    assert_int_equal(stats.refunds, 0);
    assert_int_equal(stats.holds, 1);
    /* Counters are whole: 100 - 5 + 2 - 3 - 4 - 1. */
    stock_op read = {.type = STOCK_OP_GET, .sku = stock_id_from_cstr("S")};
    read = run(state, &cold, read, T0 + 11 * SECOND);
    assert_int_equal(read.info.sku_info.available, 89);
    assert_int_equal(read.info.sku_info.held, 4);
    /* The cold hold answers as in memory: its confirm replays, a release
     * is CLOSED, a deduction with its id conflicts, a read shows it. */
    stock_op replay = run(state, &cold, op_of(STOCK_OP_CONFIRM, "h1", NULL, 0), T0 + 11 * SECOND);
    assert_int_equal(replay.code, STOCK_REPLAY);
    assert_int_equal(replay.available, confirm.available);
    assert_int_equal(run(state, &cold, op_of(STOCK_OP_RELEASE, "h1", NULL, 0), T0 + 11 * SECOND).code,
                     STOCK_CLOSED);
    assert_int_equal(run(state, &cold, op_of(STOCK_OP_DEDUCT, "h1", "S", 3), T0 + 11 * SECOND).code,
                     STOCK_CONFLICT);
    stock_op info = run(state, &cold, op_of(STOCK_OP_HOLD_GET, "h1", NULL, 0), T0 + 11 * SECOND);
    assert_int_equal(info.code, STOCK_OK);
    assert_int_equal(info.info.hold_info.state, STOCK_HOLD_CONFIRMED);
    assert_int_equal(info.info.hold_info.confirmed, 3);
    assert_int_equal(read.info.sku_info.refunded, 2);
    /* Cold answers as hot: a replay, a conflict, a capped refund. */
    stock_op again = run(state, &cold, op_of(STOCK_OP_DEDUCT, "old", "S", 5), T0 + 11 * SECOND);
    assert_int_equal(again.code, STOCK_REPLAY);
    assert_int_equal(again.available, 95);
    assert_int_equal(run(state, &cold, op_of(STOCK_OP_DEDUCT, "old", "S", 4), T0 + 11 * SECOND).code,
                     STOCK_CONFLICT);
    refund = op_of(STOCK_OP_REFUND, "r1", NULL, 2);
    refund.line = stock_id_from_cstr("old");
    assert_int_equal(run(state, &cold, refund, T0 + 11 * SECOND).code, STOCK_REPLAY);
    refund = op_of(STOCK_OP_REFUND, "r2", NULL, 4);
    refund.line = stock_id_from_cstr("old");
    assert_int_equal(run(state, &cold, refund, T0 + 11 * SECOND).code, STOCK_EXCEEDS);
    /* The next move takes what was thawed ("old", r1, h1) again, and
     * "young"; h1's line stays while h1 was in memory, and leaves with the
     * move after; the held h2 stays. */
    state = retain(state, &cold, T0 + 20 * SECOND, 4);
    core_get_stats(state, &stats);
    assert_int_equal(stats.lines, 1);
    state = retain(state, &cold, T0 + 20 * SECOND, 1);
    core_get_stats(state, &stats);
    assert_int_equal(stats.lines, 0);
    assert_int_equal(stats.holds, 1);
    core_destroy(state);
}

static void test_order_moves_whole_and_thaws_whole(void **unused)
{
    (void)unused;
    memory_cold store = {0};
    core_cold cold = {&store, put, get};
    core *state = with_sku(&cold, 100);
    stock_order_line lines[2] = {{stock_id_from_cstr("a"), stock_id_from_cstr("S"), 2, 0},
                                 {stock_id_from_cstr("b"), stock_id_from_cstr("S"), 3, 0}};
    stock_op order = {.type = STOCK_OP_ORDER, .id = stock_id_from_cstr("o"), .lines = lines,
                      .line_count = 2};
    assert_int_equal(run(state, &cold, order, T0).code, STOCK_OK);
    state = retain(state, &cold, T0 + SECOND, 3);
    /* A refund of its second line brings the order back with both lines. */
    stock_op refund = op_of(STOCK_OP_REFUND, "r", NULL, 1);
    refund.line = stock_id_from_cstr("b");
    assert_int_equal(run(state, &cold, refund, T0 + 2 * SECOND).code, STOCK_OK);
    stock_op line = {.type = STOCK_OP_LINE, .line = stock_id_from_cstr("a")};
    line = run(state, &cold, line, T0 + 2 * SECOND);
    assert_int_equal(line.code, STOCK_OK);
    assert_string_equal(line.info.line_info.order_id, "o");
    core_stats stats;
    core_get_stats(state, &stats);
    assert_int_equal(stats.orders, 1);
    assert_int_equal(stats.lines, 2);
    /* Old still: the next move takes the order, its lines and the refund. */
    state = retain(state, &cold, T0 + SECOND, 4);
    stock_op replay = {.type = STOCK_OP_ORDER, .id = stock_id_from_cstr("o"), .lines = lines,
                       .line_count = 2};
    replay = run(state, &cold, replay, T0 + 3 * SECOND);
    assert_int_equal(replay.code, STOCK_REPLAY);
    assert_int_equal(lines[1].available, 95);
    line = (stock_op){.type = STOCK_OP_LINE, .line = stock_id_from_cstr("b")};
    assert_int_equal(run(state, &cold, line, T0 + 3 * SECOND).info.line_info.refunded, 1);
    core_destroy(state);
}

static void test_adjustments_move_after_a_mark(void **unused)
{
    (void)unused;
    memory_cold store = {0};
    core_cold cold = {&store, put, get};
    core *state = with_sku(&cold, 10);
    stock_op add = op_of(STOCK_OP_ADD, "adj", "S", 5);
    assert_int_equal(run(state, &cold, add, T0).code, STOCK_OK);
    /* No mark yet older than the cutoff: it stays; the move marks now. */
    state = retain(state, &cold, T0 + SECOND, 0);
    /* A later move whose cutoff passes that mark takes it. */
    state = retain(state, &cold, T0 + SECOND, 1);
    add = run(state, &cold, op_of(STOCK_OP_ADD, "adj", "S", 5), T0 + 2 * SECOND);
    assert_int_equal(add.code, STOCK_REPLAY);
    assert_int_equal(add.available, 15);
    core_destroy(state);
}

static void test_forgotten_answers(void **unused)
{
    (void)unused;
    memory_cold store = {0};
    core_cold cold = {&store, put, get};
    core *state = with_sku(&cold, 10);
    run(state, &cold, op_of(STOCK_OP_DEDUCT, "l", "S", 2), T0);
    state = retain(state, &cold, T0 + SECOND, 1);
    find(&store, CORE_COLD_LINE, stock_id_from_cstr("l"))->len = 0;   /* forgotten */
    stock_op again = run(state, &cold, op_of(STOCK_OP_DEDUCT, "l", "S", 2), T0 + 2 * SECOND);
    assert_int_equal(again.code, STOCK_REPLAY);
    assert_int_equal(again.available, -1);
    stock_op refund = op_of(STOCK_OP_REFUND, "r", NULL, 1);
    refund.line = stock_id_from_cstr("l");
    assert_int_equal(run(state, &cold, refund, T0 + 2 * SECOND).code, STOCK_EXCEEDS);
    stock_op hold = op_of(STOCK_OP_HOLD, "l", "S", 1);
    hold.expect = 1000;
    assert_int_equal(run(state, &cold, hold, T0 + 2 * SECOND).code, STOCK_CONFLICT);
    stock_op read = {.type = STOCK_OP_GET, .sku = stock_id_from_cstr("S")};
    assert_int_equal(run(state, &cold, read, T0 + 2 * SECOND).info.sku_info.deducted, 2);
    core_destroy(state);
}

static stock_op refund_of(const char *id, const char *line, int64_t qty)
{
    stock_op refund = op_of(STOCK_OP_REFUND, id, NULL, qty);
    refund.line = stock_id_from_cstr(line);
    return refund;
}

/* Ops between the steps of a move: lines made meanwhile stay, and a refund
 * of a line that a step already put in the cold store puts it again, so
 * that the cold copy caps the next refund by what was refunded. */
static void test_ops_between_steps(void **unused)
{
    (void)unused;
    memory_cold store = {0};
    core_cold cold = {&store, put, get};
    core *state = with_sku(&cold, 100);
    const char *old[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(run(state, &cold, op_of(STOCK_OP_DEDUCT, old[i], "S", 5), T0).code,
                         STOCK_OK);
    core_retain_job *job = core_retain_begin(state, T0 + 5 * SECOND, &cold);
    assert_non_null(job);
    stock_code code;
    assert_false(core_retain_step(job, 2, UINT64_MAX, &code));   /* a and b are put */
    assert_int_equal(code, STOCK_OK);
    assert_int_equal(run(state, &cold, refund_of("ra", "a", 2), T0 + 10 * SECOND).code, STOCK_OK);
    assert_int_equal(run(state, &cold, op_of(STOCK_OP_DEDUCT, "young", "S", 1),
                         T0 + 10 * SECOND).code, STOCK_OK);
    /* c, young kept, ra with a again: caught up. */
    assert_true(core_retain_step(job, 100, UINT64_MAX, &code));
    assert_int_equal(run(state, &cold, refund_of("rb", "b", 1), T0 + 11 * SECOND).code, STOCK_OK);
    assert_int_equal(run(state, &cold, op_of(STOCK_OP_DEDUCT, "young2", "S", 1),
                         T0 + 11 * SECOND).code, STOCK_OK);
    core *hot = core_retain_finish(job, &code);
    assert_non_null(hot);
    assert_int_equal(core_retain_moved(job), 7);   /* a b c, a ra, b rb */
    core_retain_free(job);
    core_destroy(state);
    state = hot;
    core_stats stats;
    core_get_stats(state, &stats);
    assert_int_equal(stats.lines, 2);
    assert_int_equal(stats.refunds, 0);
    /* a: 5, 2 refunded: 4 more exceed, 3 fit; b shows its refund. */
    assert_int_equal(run(state, &cold, refund_of("ra2", "a", 4), T0 + 12 * SECOND).code,
                     STOCK_EXCEEDS);
    assert_int_equal(run(state, &cold, refund_of("ra3", "a", 3), T0 + 12 * SECOND).code, STOCK_OK);
    stock_op line = {.type = STOCK_OP_LINE, .line = stock_id_from_cstr("b")};
    assert_int_equal(run(state, &cold, line, T0 + 12 * SECOND).info.line_info.refunded, 1);
    stock_op read = {.type = STOCK_OP_GET, .sku = stock_id_from_cstr("S")};
    read = run(state, &cold, read, T0 + 12 * SECOND);
    assert_int_equal(read.info.sku_info.available, 100 - 15 - 2 + 2 + 1 + 3);
    core_destroy(state);
}

/* What a move's steps have left, which the embedded engine paces them by,
 * grows with the ops made between steps; a step without a limit (a late
 * move's, budget and cap at their top) takes all of it, however many ops
 * came since the step before (the budget saturates rather than wraps). */
static void test_left_and_a_step_without_limit(void **unused)
{
    (void)unused;
    memory_cold store = {0};
    core_cold cold = {&store, put, get};
    core *state = with_sku(&cold, 100);
    const char *old[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(run(state, &cold, op_of(STOCK_OP_DEDUCT, old[i], "S", 1), T0).code,
                         STOCK_OK);
    core_retain_job *job = core_retain_begin(state, T0 + 5 * SECOND, &cold);
    assert_non_null(job);
    assert_int_equal(core_retain_left(job), 3);
    stock_code code;
    assert_false(core_retain_step(job, 1, 1, &code));
    assert_int_equal(code, STOCK_OK);
    assert_int_equal(core_retain_left(job), 2);
    assert_int_equal(run(state, &cold, op_of(STOCK_OP_DEDUCT, "young", "S", 1),
                         T0 + 10 * SECOND).code, STOCK_OK);
    assert_int_equal(run(state, &cold, refund_of("ra", "a", 1), T0 + 10 * SECOND).code,
                     STOCK_OK);
    assert_int_equal(core_retain_left(job), 4);   /* b, c, young, ra */
    assert_true(core_retain_step(job, UINT64_MAX, UINT64_MAX, &code));
    assert_int_equal(code, STOCK_OK);
    assert_int_equal(core_retain_left(job), 0);
    core *hot = core_retain_finish(job, &code);
    assert_non_null(hot);
    core_retain_free(job);
    core_destroy(state);
    core_stats stats;
    core_get_stats(hot, &stats);
    assert_int_equal(stats.lines, 1);
    core_destroy(hot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moves_old_and_closed_holds_keeps_young_and_held),
        cmocka_unit_test(test_order_moves_whole_and_thaws_whole),
        cmocka_unit_test(test_adjustments_move_after_a_mark),
        cmocka_unit_test(test_forgotten_answers),
        cmocka_unit_test(test_ops_between_steps),
        cmocka_unit_test(test_left_and_a_step_without_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
