/*
 * fuzz_reply.c -- libFuzzer target for the remote backend's reading of what
 * a stockd server sends back (backend/remote.h): hiredis turns the bytes into
 * replies, and remote_decode / remote_decode_list turn each reply into an
 * op's outputs or a page of a listing. The server at the other end of a
 * stockd:// URI may be anything that listens on the port, so every reply
 * must end in a result the caller can act on, never a crash, and cost no
 * more memory than a stockd's longest reply (the bounded reader of
 * backend/remote_link.h).
 *
 * The first byte picks the op type whose reply the rest is read as (the
 * listings too); each reply that hiredis completes is decoded once.
 * Checked: the code is a known one, an unknown outcome says why, values are
 * copied into bounded fields, and an order's failed line names one of its
 * lines or none.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "backend/remote.h"
#include "backend/remote_link.h"

#define FUZZ_LINES 3
#define FUZZ_PAGE 8

static void check_op(const stock_op *op)
{
    assert(op->code >= STOCK_OK && op->code < STOCK_CODE_COUNT);
    if (op->code == STOCK_UNAVAILABLE || op->code == STOCK_IO)
        assert(op->message[0] != '\0');
    assert(memchr(op->message, '\0', sizeof op->message) != NULL);
    assert(op->failed_line >= -1 && op->failed_line < (int32_t)op->line_count);
    if (op->type == STOCK_OP_LINE && op->code == STOCK_OK) {
        assert(memchr(op->info.line_info.sku, '\0', sizeof op->info.line_info.sku));
        assert(memchr(op->info.line_info.order_id, '\0',
                      sizeof op->info.line_info.order_id));
    }
}

static void decode_op(stock_op_type type, const redisReply *reply)
{
    stock_order_line lines[FUZZ_LINES] = {
        {.line_id = {"l1", 2}, .sku = {"a", 1}, .qty = 1},
        {.line_id = {"l2", 2}, .sku = {"b", 1}, .qty = 2},
        {.line_id = {"l3", 2}, .sku = {"a", 1}, .qty = 3},
    };
    stock_op op = {.type = type, .id = {"id", 2}, .sku = {"a", 1}, .line = {"l1", 2},
                   .amount = 1, .code = STOCK_OK, .failed_line = -1};
    if (type == STOCK_OP_ORDER || type == STOCK_OP_CONFIRM_ORDER) {
        op.lines = lines;
        op.line_count = FUZZ_LINES;
    }
    remote_decode(&op, reply);
    check_op(&op);
}

static void decode_list(stock_list_kind kind, const redisReply *reply)
{
    list_request request = {.kind = kind, .max = FUZZ_PAGE};
    if (kind != STOCK_LIST_SKUS)
        request.of = (stock_id){"a", 1};
    stock_list_entry entries[FUZZ_PAGE];
    uint32_t count = 99;
    char message[STOCK_MESSAGE_MAX] = "";
    stock_code code = remote_decode_list(&request, reply, entries, &count, message,
                                         sizeof message);
    if (code == STOCK_OK) {
        assert(count <= FUZZ_PAGE);
        for (uint32_t i = 0; i < count; i++)
            assert(memchr(entries[i].id, '\0', sizeof entries[i].id) != NULL);
    } else {
        assert(count == 0 && message[0] != '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Op types 1..STOCK_OP_TYPE_MAX, then the three listings. */
    const unsigned kinds = STOCK_OP_TYPE_MAX + 3;
    if (size < 1 || data[0] >= kinds)
        return -1;
    unsigned pick = data[0];
    bool oversize = false;
    redisReader *reader = remote_reader_create(&oversize);
    assert(reader != NULL);
    if (redisReaderFeed(reader, (const char *)data + 1, size - 1) == REDIS_OK) {
        void *reply = NULL;
        while (redisReaderGetReply(reader, &reply) == REDIS_OK && reply != NULL) {
            if (pick < STOCK_OP_SET)
                decode_list(STOCK_LIST_SKUS, reply);
            else if (pick <= STOCK_OP_TYPE_MAX)
                decode_op((stock_op_type)pick, reply);
            else
                decode_list((stock_list_kind)(pick - STOCK_OP_TYPE_MAX + 1), reply);
            freeReplyObject(reply);
            reply = NULL;
        }
    }
    redisReaderFree(reader);
    return 0;
}
