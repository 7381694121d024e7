/*
 * test_remote_codec.c -- unit tests of the remote backend's codec
 * (src/backend/remote_codec.c): the command each op becomes, and how each
 * server reply -- well-formed, an error, or malformed -- becomes the op's
 * result. Replies are parsed from raw RESP bytes by hiredis's own reader, as
 * they are in the backend.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend/remote.h"

static redisReply *parse(const char *bytes)
{
    redisReader *reader = redisReaderCreate();
    assert_non_null(reader);
    assert_int_equal(redisReaderFeed(reader, bytes, strlen(bytes)), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(reader, &reply), REDIS_OK);
    assert_non_null(reply);
    redisReaderFree(reader);
    return reply;
}

/* Decodes bytes as the reply to op (reset to "not yet answered" first). */
static void decode(stock_op *op, const char *bytes)
{
    redisReply *reply = parse(bytes);
    op->code = STOCK_OK;
    op->failed_line = -1;
    op->available = 0;
    op->message[0] = '\0';
    remote_decode(op, reply);
    freeReplyObject(reply);
}

static stock_op deduct_op(void)
{
    return (stock_op){.type = STOCK_OP_DEDUCT, .id = stock_id_from_cstr("L1"),
                      .sku = stock_id_from_cstr("A12"), .amount = 2};
}

static void test_encode(void **state)
{
    (void)state;
    static remote_command command;
    stock_op op = {.type = STOCK_OP_SET, .sku = stock_id_from_cstr("A12"),
                   .amount = 9223372036854775807LL, .has_expect = true, .expect = 7};
    remote_encode(&op, &command);
    assert_int_equal(command.argc, 5);
    assert_memory_equal(command.argv[0], "SETSTOCK", 8);
    assert_int_equal(command.lengths[2], 19);
    assert_memory_equal(command.argv[2], "9223372036854775807", 19);
    assert_memory_equal(command.argv[3], "EXPECT", 6);

    stock_order_line lines[2] = {
        {.line_id = stock_id_from_cstr("L1"), .sku = stock_id_from_cstr("A"), .qty = 1},
        {.line_id = stock_id_from_cstr("L2"), .sku = stock_id_from_cstr("B"), .qty = 3},
    };
    op = (stock_op){.type = STOCK_OP_ORDER, .id = stock_id_from_cstr("O1"),
                    .lines = lines, .line_count = 2};
    remote_encode(&op, &command);
    assert_int_equal(command.argc, 8);
    assert_memory_equal(command.argv[7], "3", 1);

    op = (stock_op){.type = STOCK_OP_ADD, .sku = stock_id_from_cstr("A"), .amount = -5};
    remote_encode(&op, &command);
    assert_int_equal(command.argc, 3);   /* no ID without an adjustment id */
    assert_memory_equal(command.argv[2], "-5", 2);
}

static void test_success_and_replay(void **state)
{
    (void)state;
    stock_op op = deduct_op();
    decode(&op, "*2\r\n+OK\r\n:8\r\n");
    assert_int_equal(op.code, STOCK_OK);
    assert_int_equal(op.available, 8);
    decode(&op, "*2\r\n+REPLAY\r\n:8\r\n");
    assert_int_equal(op.code, STOCK_REPLAY);
    assert_int_equal(op.available, 8);
}

static void test_errors_carry_their_facts(void **state)
{
    (void)state;
    stock_op op = deduct_op();
    decode(&op, "-INSUFFICIENT sku=A12 available=3\r\n");
    assert_int_equal(op.code, STOCK_INSUFFICIENT);
    assert_int_equal(op.available, 3);
    assert_string_equal(op.message, "sku=A12 available=3");

    op = (stock_op){.type = STOCK_OP_REFUND, .id = stock_id_from_cstr("R1"),
                    .line = stock_id_from_cstr("L9"), .amount = 5};
    decode(&op, "-EXCEEDS line=L9 refundable=2\r\n");
    assert_int_equal(op.code, STOCK_EXCEEDS);
    assert_int_equal(op.available, 2);

    op = (stock_op){.type = STOCK_OP_SET, .sku = stock_id_from_cstr("A12"),
                    .amount = 1, .has_expect = true, .expect = 3};
    decode(&op, "-MISMATCH sku=A12 current=7\r\n");
    assert_int_equal(op.code, STOCK_MISMATCH);
    assert_int_equal(op.available, 7);

    op = deduct_op();
    decode(&op, "-NOTFOUND sku=A12\r\n");
    assert_int_equal(op.code, STOCK_NOT_FOUND);
    assert_string_equal(op.message, "sku=A12");
}

static void test_order_failed_line(void **state)
{
    (void)state;
    stock_order_line lines[3] = {
        {.line_id = stock_id_from_cstr("L1"), .sku = stock_id_from_cstr("A"), .qty = 1},
        {.line_id = stock_id_from_cstr("L2"), .sku = stock_id_from_cstr("B"), .qty = 1},
        {.line_id = stock_id_from_cstr("L3"), .sku = stock_id_from_cstr("B"), .qty = 1},
    };
    stock_op op = {.type = STOCK_OP_ORDER, .id = stock_id_from_cstr("O1"),
                   .lines = lines, .line_count = 3};
    decode(&op, "-INSUFFICIENT sku=B available=1\r\n");
    assert_int_equal(op.failed_line, 1);
    assert_int_equal(op.available, 1);
    decode(&op, "-CONFLICT line=L3 was used with other parameters\r\n");
    assert_int_equal(op.failed_line, 2);
    decode(&op, "-CONFLICT order=O1 was used with other parameters\r\n");
    assert_int_equal(op.failed_line, -1);
    decode(&op, "*2\r\n+REPLAY\r\n*3\r\n:4\r\n:1\r\n:0\r\n");
    assert_int_equal(op.code, STOCK_REPLAY);
    assert_int_equal(lines[0].available, 4);
    assert_int_equal(lines[2].available, 0);
}

static void test_malformed_replies_are_unknown(void **state)
{
    (void)state;
    const char *bad[] = {
        ":8\r\n",                          /* STOCKPROTO 1 not in force */
        "*2\r\n+YES\r\n:8\r\n",            /* unknown status */
        "*2\r\n+OK\r\n:-1\r\n",            /* negative stock */
        "*2\r\n+OK\r\n$1\r\n8\r\n",        /* a string, not an integer */
        "*3\r\n+OK\r\n:8\r\n:9\r\n",       /* too long */
        "-OK fine\r\n",                    /* a success word as an error */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        stock_op op = deduct_op();
        decode(&op, bad[i]);
        if (i + 1 == sizeof bad / sizeof bad[0]) {
            assert_int_equal(op.code, STOCK_IO);
            continue;
        }
        assert_int_equal(op.code, STOCK_UNAVAILABLE);
        assert_non_null(strstr(op.message, "outcome unknown"));
        assert_non_null(strstr(op.message, "retry with the same id is safe"));
    }
}

static void test_info_replies(void **state)
{
    (void)state;
    stock_op op = {.type = STOCK_OP_GET, .sku = stock_id_from_cstr("A")};
    decode(&op, "*8\r\n$9\r\navailable\r\n:5\r\n$8\r\nadjusted\r\n:10\r\n"
                "$8\r\ndeducted\r\n:7\r\n$8\r\nrefunded\r\n:2\r\n");
    assert_int_equal(op.code, STOCK_OK);
    assert_int_equal(op.info.sku_info.adjusted, 10);
    assert_int_equal(op.info.sku_info.refunded, 2);
    decode(&op, "*2\r\n$9\r\navailable\r\n:5\r\n");   /* fields missing */
    assert_int_equal(op.code, STOCK_UNAVAILABLE);

    op = (stock_op){.type = STOCK_OP_LINE, .line = stock_id_from_cstr("L1")};
    const char *line = "*12\r\n$3\r\nsku\r\n$1\r\nA\r\n$8\r\norder_id\r\n$0\r\n\r\n"
                       "$3\r\nqty\r\n:3\r\n$8\r\nrefunded\r\n:%d\r\n$7\r\ntime_us\r\n:17\r\n"
                       "$15\r\navailable_after\r\n:7\r\n";
    char bytes[512];
    snprintf(bytes, sizeof bytes, line, 2);
    decode(&op, bytes);
    assert_int_equal(op.code, STOCK_OK);
    assert_string_equal(op.info.line_info.sku, "A");
    assert_string_equal(op.info.line_info.order_id, "");
    assert_int_equal(op.info.line_info.time_us, 17);
    snprintf(bytes, sizeof bytes, line, 4);   /* refunded more than qty */
    decode(&op, bytes);
    assert_int_equal(op.code, STOCK_UNAVAILABLE);
}

/* Holds: the commands, the hold's fields, the facts of their failures, and
 * the hold named by a failed CONFIRMORDER. */
static void test_holds(void **state)
{
    (void)state;
    static remote_command command;
    stock_op op = {.type = STOCK_OP_HOLD, .id = stock_id_from_cstr("H1"),
                   .sku = stock_id_from_cstr("A"), .amount = 2, .expect = 900000};
    remote_encode(&op, &command);
    assert_int_equal(command.argc, 5);
    assert_memory_equal(command.argv[0], "HOLD", 4);
    assert_memory_equal(command.argv[4], "900000", 6);
    op = (stock_op){.type = STOCK_OP_CONFIRM, .id = stock_id_from_cstr("H1")};
    remote_encode(&op, &command);
    assert_int_equal(command.argc, 3);   /* qty 0 is sent: the whole hold */
    decode(&op, "*2\r\n+REPLAY\r\n:6\r\n");
    assert_int_equal(op.code, STOCK_REPLAY);
    assert_int_equal(op.available, 6);
    decode(&op, "-EXCEEDS hold=H1 held=2\r\n");
    assert_int_equal(op.code, STOCK_EXCEEDS);
    assert_int_equal(op.available, 2);
    decode(&op, "-CLOSED hold=H1 state=released\r\n");
    assert_int_equal(op.code, STOCK_CLOSED);
    assert_string_equal(op.message, "hold=H1 state=released");
    decode(&op, "-EXPIRED hold=H1\r\n");
    assert_int_equal(op.code, STOCK_EXPIRED);

    op = (stock_op){.type = STOCK_OP_HOLD_GET, .id = stock_id_from_cstr("H1")};
    decode(&op, "*14\r\n$3\r\nsku\r\n$1\r\nA\r\n$8\r\norder_id\r\n$0\r\n\r\n"
                "$5\r\nstate\r\n$7\r\nexpired\r\n$3\r\nqty\r\n:2\r\n"
                "$9\r\nconfirmed\r\n:0\r\n$7\r\ntime_us\r\n:10\r\n"
                "$11\r\ndeadline_us\r\n:20\r\n");
    assert_int_equal(op.code, STOCK_OK);
    assert_int_equal(op.info.hold_info.state, STOCK_HOLD_EXPIRED);
    assert_int_equal(op.info.hold_info.deadline_us, 20);
    decode(&op, "*2\r\n$5\r\nstate\r\n$5\r\nfrozen\r\n");
    assert_int_equal(op.code, STOCK_UNAVAILABLE);   /* not a hold: outcome unknown */

    stock_order_line lines[2] = {{.line_id = stock_id_from_cstr("H1")},
                                 {.line_id = stock_id_from_cstr("H2"), .qty = 1}};
    op = (stock_op){.type = STOCK_OP_CONFIRM_ORDER, .id = stock_id_from_cstr("O1"),
                    .lines = lines, .line_count = 2};
    remote_encode(&op, &command);
    assert_int_equal(command.argc, 6);
    assert_memory_equal(command.argv[0], "CONFIRMORDER", 12);
    decode(&op, "-EXPIRED hold=H2\r\n");
    assert_int_equal(op.code, STOCK_EXPIRED);
    assert_int_equal(op.failed_line, 1);
}

static void test_foreign_errors(void **state)
{
    (void)state;
    stock_op op = deduct_op();
    decode(&op, "-NOAUTH Authentication required.\r\n");
    assert_int_equal(op.code, STOCK_UNAVAILABLE);
    assert_non_null(strstr(op.message, "password"));
    decode(&op, "-ERR unknown command 'DEDUCT'\r\n");
    assert_int_equal(op.code, STOCK_UNSUPPORTED);
    decode(&op, "-NOPERM User reader has no permissions to run the 'deduct' command\r\n");
    assert_int_equal(op.code, STOCK_UNSUPPORTED);
    assert_non_null(strstr(op.message, "may not DEDUCT, nothing changed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_success_and_replay),
        cmocka_unit_test(test_errors_carry_their_facts),
        cmocka_unit_test(test_order_failed_line),
        cmocka_unit_test(test_malformed_replies_are_unknown),
        cmocka_unit_test(test_info_replies),
        cmocka_unit_test(test_foreign_errors),
        cmocka_unit_test(test_holds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
