/*
 * test_pg_fenced.c -- unit tests of how an op of a sharded member's batch
 * refused by a fence is answered (pg_fenced_conflict, src/backend/postgres.c):
 * the fence trigger's detail names a kind and the fenced ids; an op that
 * writes one answers CONFLICT naming it, an order its earliest fenced line
 * as one database would, and an op that writes none is left alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "backend/postgres.h"

static stock_id id_of(const char *text)
{
    return (stock_id){text, (uint32_t)strlen(text)};
}

static void an_order_names_its_earliest_fenced_line(void **state)
{
    (void)state;
    stock_order_line lines[3] = {{.line_id = id_of("c")}, {.line_id = id_of("b")},
                                 {.line_id = id_of("a")}};
    stock_op op = {.type = STOCK_OP_ORDER, .id = id_of("O1"), .lines = lines, .line_count = 3};
    /* the detail's ids are sorted; the order's line 1 comes before line 2 */
    assert_true(pg_fenced_conflict(&op, "L a b"));
    assert_int_equal(op.code, STOCK_CONFLICT);
    assert_int_equal(op.failed_line, 1);
}

static void an_order_fenced_by_its_id(void **state)
{
    (void)state;
    stock_order_line lines[1] = {{.line_id = id_of("x")}};
    stock_op op = {.type = STOCK_OP_ORDER, .id = id_of("O1"), .lines = lines, .line_count = 1};
    assert_false(pg_fenced_conflict(&op, "O O2 O3"));
    assert_true(pg_fenced_conflict(&op, "O O0 O1"));
    assert_int_equal(op.code, STOCK_CONFLICT);
    assert_int_equal(op.failed_line, -1);
}

static void ops_of_other_ids_or_kinds_are_left(void **state)
{
    (void)state;
    stock_op deduct = {.type = STOCK_OP_DEDUCT, .id = id_of("L10")};
    assert_false(pg_fenced_conflict(&deduct, "L L1 L100"));   /* whole ids only */
    assert_false(pg_fenced_conflict(&deduct, "R L10"));       /* a refund's id */
    assert_false(pg_fenced_conflict(&deduct, ""));
    assert_false(pg_fenced_conflict(&deduct, "L"));
    assert_int_equal(deduct.code, STOCK_OK);
    assert_true(pg_fenced_conflict(&deduct, "L L1 L10"));
    assert_int_equal(deduct.code, STOCK_CONFLICT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_order_names_its_earliest_fenced_line),
        cmocka_unit_test(an_order_fenced_by_its_id),
        cmocka_unit_test(ops_of_other_ids_or_kinds_are_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
