/*
 * validation.c -- the input rules: every identifier field of every op, every
 * quantity, order sizes and repeated line ids. A malformed op completes with
 * STOCK_INVALID and a message, and changes nothing: the SKU's totals stay,
 * no line appears, and the same ids work afterwards as if never seen.
 */
#include <stdio.h>

#include "conformance.h"

/* The ways an identifier can be malformed (see bad_id). */
enum {
    BAD_EMPTY, BAD_TOO_LONG, BAD_SPACE, BAD_DEL, BAD_NUL, BAD_NEWLINE,
    BAD_HIGH, BAD_ID_COUNT
};

/* Room for an id one byte too long. */
#define BAD_ID_SIZE (STOCK_ID_MAX + 2)

/* A run-unique id spoiled in the given way, so that an engine that wrongly
 * accepted it would leave state no other run could have made. */
static stock_id bad_id(int how, char buf[BAD_ID_SIZE])
{
    snprintf(buf, BAD_ID_SIZE, "%s", conf_id("bad"));
    uint32_t len = (uint32_t)strlen(buf);
    static const char spoilers[BAD_ID_COUNT] = {
        [BAD_SPACE] = 0x20, [BAD_DEL] = 0x7F, [BAD_NUL] = 0x00,
        [BAD_NEWLINE] = 0x0A, [BAD_HIGH] = (char)0xFF,
    };
    switch (how) {
    case BAD_EMPTY:
        return (stock_id){buf, 0};
    case BAD_TOO_LONG:
        memset(buf + len, 'x', BAD_ID_SIZE - 1 - len);
        return (stock_id){buf, STOCK_ID_MAX + 1};
    default:
        buf[len / 2] = spoilers[how];
        return (stock_id){buf, len};
    }
}

/* A SKU at level 10 with one line of 1 deducted from it. */
typedef struct fixture {
    conf_sku sku;
    char line[CONF_ID_SIZE];
} fixture;

static void fixture_make(fixture *f)
{
    conf_new_sku(&f->sku, 10);
    snprintf(f->line, sizeof f->line, "%s", conf_id("line"));
    assert_code(stock_deduct(conf_store, f->line, f->sku.id, 1, NULL, NULL),
                STOCK_OK, "fixture deduct");
    f->sku.deducted = 1;
}

/* Runs op, expects INVALID with a message that names what is wrong
 * (field), and that nothing changed. */
static void expect_invalid(stock_op *op, const fixture *f, const char *field)
{
    stock_op copy = *op;
    assert_code(conf_run(op), STOCK_INVALID, op->message);
    if (strstr(op->message, field) == NULL) {
        print_error("message \"%s\" does not name \"%s\"\n", op->message, field);
        fail();
    }
    assert_code(stock_validate(&copy), STOCK_INVALID, copy.message);
    conf_check_sku(&f->sku);
    stock_line_info info;
    assert_code(stock_line(conf_store, f->line, &info, NULL), STOCK_OK, "");
    assert_i64(info.refunded, 0);
}

static stock_id cid(const char *text)
{
    return stock_id_from_cstr(text);
}

static void bad_ids_in_set_add_get_line(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    char buf[BAD_ID_SIZE];
    for (int how = 0; how < BAD_ID_COUNT; how++) {
        stock_op set = {.type = STOCK_OP_SET, .sku = bad_id(how, buf), .amount = 5};
        expect_invalid(&set, &f, "sku");
        stock_op add = {.type = STOCK_OP_ADD, .sku = bad_id(how, buf), .amount = 5};
        expect_invalid(&add, &f, "sku");
        stock_op get = {.type = STOCK_OP_GET, .sku = bad_id(how, buf)};
        expect_invalid(&get, &f, "sku");
        stock_op line = {.type = STOCK_OP_LINE, .line = bad_id(how, buf)};
        expect_invalid(&line, &f, "line id");
        /* Even an empty one: only ptr NULL means "no adjustment id". */
        stock_op adjust = {.type = STOCK_OP_ADD, .sku = cid(f.sku.id),
                           .amount = 5, .id = bad_id(how, buf)};
        expect_invalid(&adjust, &f, "adjustment id");
    }
}

static void bad_ids_in_deduct_and_refund(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    char buf[BAD_ID_SIZE];
    const char *fresh_line = conf_id("line");
    for (int how = 0; how < BAD_ID_COUNT; how++) {
        stock_op by_line = {.type = STOCK_OP_DEDUCT, .id = bad_id(how, buf),
                            .sku = cid(f.sku.id), .amount = 1};
        expect_invalid(&by_line, &f, "line id");
        stock_op by_sku = {.type = STOCK_OP_DEDUCT, .id = cid(fresh_line),
                           .sku = bad_id(how, buf), .amount = 1};
        expect_invalid(&by_sku, &f, "sku");
        conf_check_no_line(fresh_line);
        stock_op by_refund = {.type = STOCK_OP_REFUND, .id = bad_id(how, buf),
                              .line = cid(f.line), .amount = 1};
        expect_invalid(&by_refund, &f, "refund id");
        stock_op by_refund_line = {.type = STOCK_OP_REFUND, .id = cid(conf_id("refund")),
                                   .line = bad_id(how, buf), .amount = 1};
        expect_invalid(&by_refund_line, &f, "line id");
    }
    /* Nothing was recorded: the line id is still free. */
    assert_code(stock_deduct(conf_store, fresh_line, f.sku.id, 1, NULL, NULL),
                STOCK_OK, "");
}

static void bad_ids_in_order(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    char buf[BAD_ID_SIZE];
    const char *order_id = conf_id("order");
    const char *first = conf_id("line");
    const char *second = conf_id("line");
    for (int how = 0; how < BAD_ID_COUNT; how++) {
        stock_order_line lines[2] = {conf_line(first, f.sku.id, 1),
                                     conf_line(second, f.sku.id, 1)};
        stock_op op = {.type = STOCK_OP_ORDER, .id = bad_id(how, buf),
                       .lines = lines, .line_count = 2};
        expect_invalid(&op, &f, "order id");
        op.id = cid(order_id);
        lines[1].line_id = bad_id(how, buf);
        expect_invalid(&op, &f, "line id");
        assert_int_equal(op.failed_line, 1);
        lines[1].line_id = cid(second);
        lines[1].sku = bad_id(how, buf);
        expect_invalid(&op, &f, "sku");
        assert_int_equal(op.failed_line, 1);
        conf_check_no_line(first);
    }
    stock_order_line lines[2] = {conf_line(first, f.sku.id, 1),
                                 conf_line(second, f.sku.id, 1)};
    assert_code(stock_order(conf_store, order_id, lines, 2, NULL, NULL),
                STOCK_OK, "");
}

/* Quantities outside 1..2^31-1. */
static const int64_t bad_quantities[] = {
    0, -1, STOCK_QTY_MAX + 1, -STOCK_QTY_MAX, INT64_MIN, INT64_MAX,
};
#define BAD_QTY_COUNT (sizeof bad_quantities / sizeof bad_quantities[0])

static void bad_quantities_in_deduct_refund_order(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    const char *fresh_line = conf_id("line");
    const char *refund_id = conf_id("refund");
    for (size_t i = 0; i < BAD_QTY_COUNT; i++) {
        int64_t qty = bad_quantities[i];
        stock_op deduct = {.type = STOCK_OP_DEDUCT, .id = cid(fresh_line),
                           .sku = cid(f.sku.id), .amount = qty};
        expect_invalid(&deduct, &f, "qty");
        stock_op refund = {.type = STOCK_OP_REFUND, .id = cid(refund_id),
                           .line = cid(f.line), .amount = qty};
        expect_invalid(&refund, &f, "qty");
        stock_order_line lines[2] = {conf_line(conf_id("line"), f.sku.id, 1),
                                     conf_line(fresh_line, f.sku.id, qty)};
        stock_op order = {.type = STOCK_OP_ORDER, .id = cid(conf_id("order")),
                          .lines = lines, .line_count = 2};
        expect_invalid(&order, &f, "qty");
        assert_int_equal(order.failed_line, 1);
        conf_check_no_line(fresh_line);
    }
    /* The ids the invalid ops named are still free. */
    assert_code(stock_refund(conf_store, refund_id, f.line, 1, NULL, NULL),
                STOCK_OK, "");
    assert_code(stock_deduct(conf_store, fresh_line, f.sku.id, 2, NULL, NULL),
                STOCK_OK, "");
}

static void bad_levels_and_deltas(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    static const int64_t bad_levels[] = {-1, INT64_MIN};
    for (size_t i = 0; i < 2; i++) {
        stock_op set = {.type = STOCK_OP_SET, .sku = cid(f.sku.id),
                        .amount = bad_levels[i]};
        expect_invalid(&set, &f, "level");
        stock_op cas = {.type = STOCK_OP_SET, .sku = cid(f.sku.id), .amount = 3,
                        .has_expect = true, .expect = bad_levels[i]};
        expect_invalid(&cas, &f, "expected");
    }
    static const int64_t bad_deltas[] = {
        0, STOCK_QTY_MAX + 1, -STOCK_QTY_MAX - 1, INT64_MIN, INT64_MAX,
    };
    const char *adjust_id = conf_id("adjust");
    for (size_t i = 0; i < sizeof bad_deltas / sizeof bad_deltas[0]; i++) {
        stock_op add = {.type = STOCK_OP_ADD, .sku = cid(f.sku.id),
                        .amount = bad_deltas[i], .id = cid(adjust_id)};
        expect_invalid(&add, &f, "delta");
    }
    /* The adjustment id the invalid ops named is still free. */
    int64_t available = -1;
    assert_code(stock_add(conf_store, f.sku.id, 5, adjust_id, &available, NULL),
                STOCK_OK, "");
    assert_i64(available, 14);
}

static void bad_order_shapes(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    stock_order_line lines[STOCK_ORDER_LINES_MAX + 1];
    for (uint32_t i = 0; i <= STOCK_ORDER_LINES_MAX; i++)
        lines[i] = conf_line(conf_id("line"), f.sku.id, 1);
    stock_op empty = {.type = STOCK_OP_ORDER, .id = cid(conf_id("order")),
                      .lines = lines, .line_count = 0};
    expect_invalid(&empty, &f, "lines");
    stock_op too_many = {.type = STOCK_OP_ORDER, .id = cid(conf_id("order")),
                         .lines = lines, .line_count = STOCK_ORDER_LINES_MAX + 1};
    expect_invalid(&too_many, &f, "lines");
    stock_op no_lines = {.type = STOCK_OP_ORDER, .id = cid(conf_id("order")),
                         .lines = NULL, .line_count = 1};
    expect_invalid(&no_lines, &f, "lines");
    /* A line id repeated within the order: the repeat is at fault. */
    lines[2].line_id = lines[0].line_id;
    stock_op repeated = {.type = STOCK_OP_ORDER, .id = cid(conf_id("order")),
                         .lines = lines, .line_count = 3};
    expect_invalid(&repeated, &f, "repeat");
    assert_int_equal(repeated.failed_line, 2);
    conf_check_no_line(lines[1].line_id.ptr);
}

static void bad_op_types(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    stock_op zero = {.type = (stock_op_type)0, .sku = cid(f.sku.id), .amount = 1};
    expect_invalid(&zero, &f, "operation");
    stock_op past = {.type = (stock_op_type)(STOCK_OP_TYPE_MAX + 1),
                     .sku = cid(f.sku.id), .amount = 1};
    expect_invalid(&past, &f, "operation");
}

/* The synchronous wrappers say INVALID too, with the message. */
static void wrappers_report_invalid(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    char message[STOCK_MESSAGE_MAX] = "";
    int64_t available = -7;
    assert_code(stock_deduct(conf_store, conf_id("line"), f.sku.id, 0,
                             &available, message), STOCK_INVALID, message);
    assert_true(strlen(message) > 0);
    assert_i64(available, -7);
    message[0] = '\0';
    assert_code(stock_add(conf_store, f.sku.id, 1, "", NULL, message),
                STOCK_INVALID, message);
    assert_true(strlen(message) > 0);
    message[0] = '\0';
    assert_code(stock_set(conf_store, NULL, 1, NULL, NULL, message),
                STOCK_INVALID, message);
    assert_true(strlen(message) > 0);
    message[0] = '\0';
    assert_code(stock_get(conf_store, "has space", NULL, message), STOCK_INVALID, message);
    assert_true(strlen(message) > 0);
    message[0] = '\0';
    assert_code(stock_line(conf_store, "", NULL, message), STOCK_INVALID, message);
    assert_true(strlen(message) > 0);
    conf_check_sku(&f.sku);
}

/* The edges of the valid ranges are accepted. */
static void boundary_values_are_valid(void **state)
{
    (void)state;
    char long_sku[CONF_ID_SIZE], long_line[CONF_ID_SIZE];
    conf_long_id("sku", long_sku);
    conf_long_id("line", long_line);
    int64_t available = -1;
    assert_code(stock_set(conf_store, long_sku, STOCK_QTY_MAX, NULL, &available,
                          NULL), STOCK_OK, "");
    assert_code(stock_deduct(conf_store, long_line, long_sku, STOCK_QTY_MAX,
                             &available, NULL), STOCK_OK, "");
    assert_i64(available, 0);
    assert_code(stock_add(conf_store, long_sku, STOCK_QTY_MAX, NULL, &available,
                          NULL), STOCK_OK, "");
    assert_code(stock_add(conf_store, long_sku, -STOCK_QTY_MAX, NULL, &available,
                          NULL), STOCK_OK, "");
    assert_i64(available, 0);
    /* The highest level, on a SKU of its own (its adjusted total would
     * overflow on one that had stock deducted). */
    conf_sku top;
    conf_new_sku(&top, INT64_MAX);
    conf_check_sku(&top);
    assert_code(stock_set(conf_store, top.id, 0, NULL, &available, NULL),
                STOCK_OK, "");
    assert_i64(available, 0);
    top.adjusted = 0;
    conf_check_sku(&top);
    /* A one-byte id cannot be run-unique, so it is only read: whatever the
     * store holds, the answer is not INVALID. */
    stock_code code = stock_get(conf_store, "~", NULL, NULL);
    assert_true(code == STOCK_OK || code == STOCK_NOT_FOUND);
    code = stock_line(conf_store, "~", NULL, NULL);
    assert_true(code == STOCK_OK || code == STOCK_NOT_FOUND);
}

static void order_of_one_hundred_lines_is_valid(void **state)
{
    (void)state;
    conf_sku sku;
    conf_new_sku(&sku, 1000);
    stock_order_line lines[STOCK_ORDER_LINES_MAX];
    for (uint32_t i = 0; i < STOCK_ORDER_LINES_MAX; i++)
        lines[i] = conf_line(conf_id("line"), sku.id, 2);
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_order(conf_store, conf_id("order"), lines,
                            STOCK_ORDER_LINES_MAX, NULL, message),
                STOCK_OK, message);
    assert_i64(lines[STOCK_ORDER_LINES_MAX - 1].available, 800);
    sku.deducted = 200;
    conf_check_sku(&sku);
}

int conf_run_validation(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_ids_in_set_add_get_line),
        cmocka_unit_test(bad_ids_in_deduct_and_refund),
        cmocka_unit_test(bad_ids_in_order),
        cmocka_unit_test(bad_quantities_in_deduct_refund_order),
        cmocka_unit_test(bad_levels_and_deltas),
        cmocka_unit_test(bad_order_shapes),
        cmocka_unit_test(bad_op_types),
        cmocka_unit_test(wrappers_report_invalid),
        cmocka_unit_test(boundary_values_are_valid),
        cmocka_unit_test(order_of_one_hundred_lines_is_valid),
    };
    return cmocka_run_group_tests_name("validation", tests, NULL, NULL);
}
