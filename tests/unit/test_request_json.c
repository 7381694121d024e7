/*
 * test_request_json.c -- unit tests of the JSON request bodies and results
 * that stockd's HTTP routes and stockintake share (src/proto/request_json.c):
 * each kind's fields become its op, ids are copied (the body may go), what
 * can never make an op is refused with a message that says why (and the
 * order line at fault), values of the wrong type reach stock_validate out
 * of range, and results render as the HTTP API answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/request_json.h"

static char message[REQUEST_MESSAGE_MAX];
static int32_t failed_line;

/* Parses text as a kind body (no path id) into *op. */
static request_status parse(request_kind kind, const char *text, stock_op *op, request **made)
{
    memset(op, 0, sizeof *op);
    return request_json_parse(kind, text, strlen(text), NULL, 0, op, made, message, &failed_line);
}

/* The compact text of body, which it takes; the caller frees it. */
static char *dump(json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

static void test_order_fields_become_the_op(void **state)
{
    (void)state;
    char text[] = "{\"order_id\":\"O1\",\"lines\":[{\"line_id\":\"L1\",\"sku\":\"A\",\"qty\":2},"
                  "{\"line_id\":\"L2\",\"sku\":\"B\",\"qty\":3}]}";
    stock_op op;
    request *made = NULL;
    assert_int_equal(parse(REQUEST_ORDER, text, &op, &made), REQUEST_PARSED);
    memset(text, 'x', sizeof text - 1);   /* the op must not point into the body */
    assert_int_equal(op.type, STOCK_OP_ORDER);
    assert_int_equal(op.id.len, 2);
    assert_memory_equal(op.id.ptr, "O1", 2);
    assert_int_equal(op.line_count, 2);
    assert_memory_equal(op.lines[1].line_id.ptr, "L2", 2);
    assert_memory_equal(op.lines[1].sku.ptr, "B", 1);
    assert_int_equal(op.lines[1].qty, 3);
    assert_int_equal(stock_validate(&op), STOCK_OK);
    free(made);
}

static void test_deduction_and_refund(void **state)
{
    (void)state;
    stock_op op;
    request *made = NULL;
    assert_int_equal(parse(REQUEST_DEDUCT, "{\"line_id\":\"L1\",\"sku\":\"A\",\"qty\":4}", &op, &made),
                     REQUEST_PARSED);
    assert_int_equal(op.type, STOCK_OP_DEDUCT);
    assert_memory_equal(op.sku.ptr, "A", 1);
    assert_int_equal(op.amount, 4);
    free(made);
    assert_int_equal(parse(REQUEST_REFUND, "{\"refund_id\":\"R1\",\"line_id\":\"L1\",\"qty\":1}", &op, &made),
                     REQUEST_PARSED);
    assert_int_equal(op.type, STOCK_OP_REFUND);
    assert_memory_equal(op.line.ptr, "L1", 2);
    free(made);
}

static void test_path_id_kinds(void **state)
{
    (void)state;
    stock_op op = {0};
    request *made = NULL;
    assert_int_equal(request_json_parse(REQUEST_SET, "{\"available\":7}", 15, "A%", 2, &op, &made,
                                        message, &failed_line), REQUEST_PARSED);
    assert_int_equal(op.type, STOCK_OP_SET);
    assert_memory_equal(op.sku.ptr, "A%", 2);
    assert_int_equal(op.amount, 7);
    assert_false(op.has_expect);
    free(made);
    memset(&op, 0, sizeof op);
    assert_int_equal(request_json_parse(REQUEST_LINE, NULL, 0, "L9", 2, &op, &made, message, &failed_line),
                     REQUEST_PARSED);
    assert_int_equal(op.type, STOCK_OP_LINE);
    assert_memory_equal(op.line.ptr, "L9", 2);
    free(made);
}

/* The hold kinds: a hold's fields from the body, the hold's id from the
 * path for a confirm, release or read; a confirm or release may have no
 * body (the whole hold), and a hold order's holds may leave qty out. */
static void test_hold_kinds(void **state)
{
    (void)state;
    stock_op op;
    request *made = NULL;
    assert_int_equal(parse(REQUEST_HOLD, "{\"hold_id\":\"H1\",\"sku\":\"A\",\"qty\":2,\"ttl_ms\":900}",
                           &op, &made), REQUEST_PARSED);
    assert_int_equal(op.type, STOCK_OP_HOLD);
    assert_memory_equal(op.id.ptr, "H1", 2);
    assert_memory_equal(op.sku.ptr, "A", 1);
    assert_int_equal(op.amount, 2);
    assert_int_equal(op.expect, 900);
    free(made);
    static const struct { request_kind kind; const char *body; stock_op_type type; int64_t amount; } closes[] = {
        {REQUEST_CONFIRM, "", STOCK_OP_CONFIRM, 0},
        {REQUEST_CONFIRM, "{\"qty\":3}", STOCK_OP_CONFIRM, 3},
        {REQUEST_RELEASE, "", STOCK_OP_RELEASE, 0},
        {REQUEST_HOLD_GET, "", STOCK_OP_HOLD_GET, 0},
    };
    for (size_t i = 0; i < sizeof closes / sizeof closes[0]; i++) {
        memset(&op, 0, sizeof op);
        assert_int_equal(request_json_parse(closes[i].kind, closes[i].body, strlen(closes[i].body), "H7", 2,
                                            &op, &made, message, &failed_line), REQUEST_PARSED);
        assert_int_equal(op.type, closes[i].type);
        assert_memory_equal(op.id.ptr, "H7", 2);
        assert_int_equal(op.amount, closes[i].amount);
        free(made);
    }
    assert_int_equal(parse(REQUEST_HOLD_ORDER, "{\"order_id\":\"O\",\"holds\":[{\"hold_id\":\"H1\"},"
                           "{\"hold_id\":\"H2\",\"qty\":1}]}", &op, &made), REQUEST_PARSED);
    assert_int_equal(op.type, STOCK_OP_CONFIRM_ORDER);
    assert_int_equal(op.line_count, 2);
    assert_memory_equal(op.lines[1].line_id.ptr, "H2", 2);
    assert_int_equal(op.lines[0].qty, 0);
    assert_int_equal(op.lines[1].qty, 1);
    assert_int_equal(stock_validate(&op), STOCK_OK);
    free(made);
}

static void test_refusals_say_why(void **state)
{
    (void)state;
    static const struct { request_kind kind; const char *body, *reason; int32_t line; } cases[] = {
        {REQUEST_ORDER, "", "the body is empty: send a JSON object", -1},
        {REQUEST_ORDER, "nope", "the body is not valid JSON: ", -1},
        {REQUEST_ORDER, "[1]", "the body must be a JSON object", -1},
        {REQUEST_ORDER, "{\"order_id\":\"O\",\"x\":1}", "unknown field 'x'", -1},
        {REQUEST_ORDER, "{\"order_id\":\"O\",\"order_id\":\"P\"}", "the body is not valid JSON: ", -1},
        {REQUEST_ORDER, "{\"order_id\":\"O\",\"lines\":[{\"line_id\":\"L\",\"sku\":\"A\",\"qty\":1},7]}",
         "line 2: must be a JSON object", 1},
        {REQUEST_ORDER, "{\"order_id\":\"O\",\"lines\":[{\"line_id\":\"L\",\"colour\":1}]}",
         "line 1: unknown field 'colour'", 0},
        {REQUEST_ADD, "{\"delta\":1,\"id\":5}", "adjustment id must be a string", -1},
        {REQUEST_DEDUCT, "{\"line_id\":\"L\",\"sku\":\"A\",\"qty\":1,\"order_id\":\"O\"}",
         "unknown field 'order_id'", -1},
        {REQUEST_HOLD, "", "the body is empty: send a JSON object", -1},
        {REQUEST_CONFIRM, "{\"qty\":1,\"all\":true}", "unknown field 'all'", -1},
        {REQUEST_RELEASE, "{\"qty\":1}", "unknown field 'qty'", -1},
        {REQUEST_HOLD_ORDER, "{\"order_id\":\"O\",\"holds\":[{\"hold_id\":\"H\"},\"H2\"]}",
         "hold 2: must be a JSON object", 1},
        {REQUEST_HOLD_ORDER, "{\"order_id\":\"O\",\"holds\":[{\"hold_id\":\"H\",\"sku\":\"A\"}]}",
         "hold 1: unknown field 'sku'", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        stock_op op;
        request *made = NULL;
        assert_int_equal(parse(cases[i].kind, cases[i].body, &op, &made), REQUEST_REFUSED);
        assert_null(made);
        assert_true(strncmp(message, cases[i].reason, strlen(cases[i].reason)) == 0);
        assert_int_equal(failed_line, cases[i].line);
    }
}

static void test_too_many_lines_refused(void **state)
{
    (void)state;
    char text[8192] = "{\"order_id\":\"O\",\"lines\":[";
    for (int i = 0; i <= STOCK_ORDER_LINES_MAX; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s{\"line_id\":\"L%d\",\"sku\":\"A\",\"qty\":1}",
                 i > 0 ? "," : "", i);
    strcat(text, "]}");
    stock_op op;
    request *made = NULL;
    assert_int_equal(parse(REQUEST_ORDER, text, &op, &made), REQUEST_REFUSED);
    assert_string_equal(message, "an order must have 1..100 lines");
}

/* A wrong type is no refusal here: the value goes on out of range, so that
 * stock_validate words it as for every front end. */
static void test_wrong_types_reach_validation(void **state)
{
    (void)state;
    stock_op op;
    request *made = NULL;
    assert_int_equal(parse(REQUEST_DEDUCT, "{\"line_id\":7,\"sku\":\"A\",\"qty\":\"1\"}", &op, &made),
                     REQUEST_PARSED);
    assert_int_equal(op.id.len, 0);
    assert_int_equal(op.amount, 0);
    assert_int_equal(stock_validate(&op), STOCK_INVALID);
    free(made);
    assert_int_equal(parse(REQUEST_SET, "{\"available\":\"9\"}", &op, &made), REQUEST_PARSED);
    assert_int_equal(op.amount, -1);
    free(made);
}

static void test_results_render_as_http(void **state)
{
    (void)state;
    stock_op op;
    request *made = NULL;
    assert_int_equal(parse(REQUEST_DEDUCT, "{\"line_id\":\"L1\",\"sku\":\"A\",\"qty\":4}", &op, &made),
                     REQUEST_PARSED);
    op.code = STOCK_OK;
    op.available = 6;
    char *text = dump(request_json_result(REQUEST_DEDUCT, &op));
    assert_string_equal(text, "{\"line_id\":\"L1\",\"sku\":\"A\",\"qty\":4,\"available\":6}");
    free(text);
    op.code = STOCK_INSUFFICIENT;
    strcpy(op.message, "sku=A available=3");
    text = dump(request_json_result(REQUEST_DEDUCT, &op));
    assert_string_equal(text, "{\"error\":\"INSUFFICIENT\",\"message\":\"sku=A available=3\"}");
    free(text);
    free(made);
}

static void test_hold_results_render_as_http(void **state)
{
    (void)state;
    stock_op op;
    request *made = NULL;
    assert_int_equal(parse(REQUEST_HOLD_ORDER, "{\"order_id\":\"O\",\"holds\":[{\"hold_id\":\"H1\",\"qty\":2}]}",
                           &op, &made), REQUEST_PARSED);
    op.code = STOCK_OK;
    op.lines[0].available = 5;
    char *text = dump(request_json_result(REQUEST_HOLD_ORDER, &op));
    assert_string_equal(text, "{\"order_id\":\"O\",\"holds\":[{\"hold_id\":\"H1\",\"qty\":2,\"available\":5}]}");
    free(text);
    op.code = STOCK_EXPIRED;
    op.failed_line = 0;
    strcpy(op.message, "hold=H1");
    text = dump(request_json_result(REQUEST_HOLD_ORDER, &op));
    assert_string_equal(text, "{\"error\":\"EXPIRED\",\"message\":\"hold=H1\",\"failed_line\":0}");
    free(text);
    free(made);
}

/* HTTP errors: a problem object whose facts are members (a hold's id and
 * state here), and a failed op's with the hold at fault. */
static void test_problem_details(void **state)
{
    (void)state;
    char *text = dump(request_json_problem(409, "CLOSED", "hold=H1 state=confirmed"));
    assert_string_equal(text, "{\"type\":\"tag:stockd,2026:closed\",\"title\":\"the hold was already "
                              "confirmed or released\",\"status\":409,\"detail\":\"hold=H1 state=confirmed\","
                              "\"code\":\"CLOSED\",\"hold_id\":\"H1\",\"state\":\"confirmed\"}");
    free(text);
    stock_op op = {.type = STOCK_OP_CONFIRM_ORDER, .code = STOCK_EXCEEDS, .failed_line = 2};
    strcpy(op.message, "hold=H3 held=4 more words");
    text = dump(request_json_op_problem(409, &op));
    assert_non_null(strstr(text, "\"hold_id\":\"H3\",\"held\":4,\"failed_line\":2}"));
    free(text);
}

/* An Idempotency-Key becomes the op's id, copied into the request, for the
 * kinds whose id is the body's. */
static void test_id_from_elsewhere(void **state)
{
    (void)state;
    assert_string_equal(request_json_id_field(REQUEST_HOLD), "hold_id");
    assert_string_equal(request_json_id_field(REQUEST_HOLD_ORDER), "order_id");
    assert_null(request_json_id_field(REQUEST_CONFIRM));
    stock_op op;
    request *made = NULL;
    assert_int_equal(parse(REQUEST_HOLD, "{\"sku\":\"A\",\"qty\":1,\"ttl_ms\":5}", &op, &made), REQUEST_PARSED);
    char key[] = "k-1";
    request_json_set_id(made, &op, key);
    key[0] = 'x';
    assert_int_equal(op.id.len, 3);
    assert_memory_equal(op.id.ptr, "k-1", 3);
    assert_int_equal(stock_validate(&op), STOCK_OK);
    free(made);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_fields_become_the_op),
        cmocka_unit_test(test_deduction_and_refund),
        cmocka_unit_test(test_path_id_kinds),
        cmocka_unit_test(test_refusals_say_why),
        cmocka_unit_test(test_too_many_lines_refused),
        cmocka_unit_test(test_wrong_types_reach_validation),
        cmocka_unit_test(test_results_render_as_http),
        cmocka_unit_test(test_hold_kinds),
        cmocka_unit_test(test_hold_results_render_as_http),
        cmocka_unit_test(test_problem_details),
        cmocka_unit_test(test_id_from_elsewhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
