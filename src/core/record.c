/*
 * record.c -- the log records core_apply emits and core_replay re-applies.
 *
 * A record holds an operation's inputs (an unconditional set for a
 * compare-and-set, since the compare succeeded), the time the core stamped
 * on new lines, and the stock each changed SKU was left with. Replay decodes
 * the inputs, runs the same rules as core_apply (core_apply_at), and checks
 * that the op succeeded and left the same stock: a log that does not fit the
 * state it is replayed on is reported as STOCK_CORRUPT, not applied blindly.
 *
 * Layout, little-endian; id = 1 length byte + bytes:
 *   SET     type | id sku | i64 level
 *   ADD     type | id sku | id adjustment (length 0: none) | i64 delta |
 *           i64 available
 *   DEDUCT  type | id line | id sku | u32 qty | i64 time_us | i64 available
 *   ORDER   type | id order | i64 time_us | u8 count |
 *           count x (id line | id sku | u32 qty | i64 available)
 *   REFUND  type | id refund | id line | u32 qty | i64 available
 * and the records of holds, types 6..10, laid out in hold.c. A log written
 * before holds existed holds types 1..5 only, and replays as it did.
 */
#include <inttypes.h>

#include "core/codec.h"
#include "core/core_internal.h"
#include "core/record_types.h"
#include "lib/message.h"


/* Fixed bytes of one order line besides its two ids: qty and available. */
#define ORDER_LINE_FIXED_BYTES (4 + 8)

size_t core_record_size(const stock_op *op)
{
    switch (op->type) {
    case STOCK_OP_SET:
        return 1 + core_id_size(op->sku) + 8;
    case STOCK_OP_ADD:
        return 1 + core_id_size(op->sku) + core_id_size(op->id) + 8 + 8;
    case STOCK_OP_DEDUCT:
        return 1 + core_id_size(op->id) + core_id_size(op->sku) + 4 + 8 + 8;
    case STOCK_OP_ORDER: {
        size_t size = 1 + core_id_size(op->id) + 8 + 1;
        for (uint32_t i = 0; i < op->line_count; i++)
            size += core_id_size(op->lines[i].line_id) +
                    core_id_size(op->lines[i].sku) + ORDER_LINE_FIXED_BYTES;
        return size;
    }
    case STOCK_OP_REFUND:
        return 1 + core_id_size(op->id) + core_id_size(op->line) + 4 + 8;
    default:
        break;
    }
    assert(!"reads, holds and unknown ops have no record here");
    return 0;
}

static uint8_t *encode_order(const stock_op *op, int64_t time_us, uint8_t *at)
{
    assert(op->line_count >= 1 && op->line_count <= STOCK_ORDER_LINES_MAX);
    at = core_put_u8(at, RECORD_ORDER);
    at = core_put_id(at, op->id);
    at = core_put_i64(at, time_us);
    at = core_put_u8(at, (uint8_t)op->line_count);
    for (uint32_t i = 0; i < op->line_count; i++) {
        const stock_order_line *line = &op->lines[i];
        at = core_put_id(at, line->line_id);
        at = core_put_id(at, line->sku);
        at = core_put_u32(at, (uint32_t)line->qty);
        at = core_put_i64(at, line->available);
    }
    return at;
}

void core_record_encode(const stock_op *op, int64_t time_us, buf *record)
{
    size_t size = core_record_size(op);
    assert(record->cap - record->len >= size);
    uint8_t *start = record->data + record->len;
    uint8_t *at = start;
    switch (op->type) {
    case STOCK_OP_SET:
        at = core_put_u8(at, RECORD_SET);
        at = core_put_id(at, op->sku);
        at = core_put_i64(at, op->amount);
        break;
    case STOCK_OP_ADD:
        at = core_put_u8(at, RECORD_ADD);
        at = core_put_id(at, op->sku);
        at = core_put_id(at, op->id);
        at = core_put_i64(at, op->amount);
        at = core_put_i64(at, op->available);
        break;
    case STOCK_OP_DEDUCT:
        at = core_put_u8(at, RECORD_DEDUCT);
        at = core_put_id(at, op->id);
        at = core_put_id(at, op->sku);
        at = core_put_u32(at, (uint32_t)op->amount);
        at = core_put_i64(at, time_us);
        at = core_put_i64(at, op->available);
        break;
    case STOCK_OP_ORDER:
        at = encode_order(op, time_us, at);
        break;
    case STOCK_OP_REFUND:
        at = core_put_u8(at, RECORD_REFUND);
        at = core_put_id(at, op->id);
        at = core_put_id(at, op->line);
        at = core_put_u32(at, (uint32_t)op->amount);
        at = core_put_i64(at, op->available);
        break;
    default:
        assert(!"reads and holds have no record here");
    }
    assert((size_t)(at - start) == size);
    record->len += size;
}

/* ---------------------------------------------------------------- replay */

static void prefetch_id(const core_index *index, stock_id id)
{
    if (id.len > 0)
        core_index_prefetch(index, core_hash(id));
}

void core_replay_prefetch(const core *state, const uint8_t *record, size_t len)
{
    assert(state != NULL && (record != NULL || len == 0));
    core_reader reader = core_reader_make(record, len);
    uint8_t type = core_get_u8(&reader);
    stock_id first = core_get_id(&reader);
    stock_id second = core_get_id(&reader); /* empty if past the end */
    switch (type) {
    case RECORD_SET:
    case RECORD_ADD:
        prefetch_id(&state->sku_index, first);
        break;
    case RECORD_DEDUCT:
        prefetch_id(&state->line_index, first);
        prefetch_id(&state->sku_index, second);
        break;
    case RECORD_ORDER:
        prefetch_id(&state->order_index, first);
        break;
    case RECORD_REFUND:
        prefetch_id(&state->refund_index, first);
        prefetch_id(&state->line_index, second);
        break;
    case RECORD_HOLD:
        prefetch_id(&state->hold_index, first);
        prefetch_id(&state->sku_index, second);
        break;
    case RECORD_CONFIRM:
    case RECORD_RELEASE:
        prefetch_id(&state->hold_index, first);
        break;
    default:
        break;
    }
}

/* A decoded record: the op to re-apply and what it must leave behind. */
typedef struct replay {
    stock_op op;
    stock_order_line lines[STOCK_ORDER_LINES_MAX];
    int64_t time_us;
    int64_t available;   /* for every type but ORDER (lines[i].available) */
} replay;

/* An ORDER, or a CONFIRM_ORDER (holds: its lines have no sku). */
static bool decode_order(core_reader *reader, replay *out, bool holds)
{
    out->op.type = holds ? STOCK_OP_CONFIRM_ORDER : STOCK_OP_ORDER;
    out->op.id = core_get_id(reader);
    out->time_us = core_get_i64(reader);
    uint8_t count = core_get_u8(reader);
    if (count > STOCK_ORDER_LINES_MAX)
        return false;
    out->op.lines = out->lines;
    out->op.line_count = count;
    for (uint32_t i = 0; i < count; i++) {
        stock_order_line *line = &out->lines[i];
        line->line_id = core_get_id(reader);
        line->sku = holds ? (stock_id){NULL, 0} : core_get_id(reader);
        line->qty = core_get_u32(reader);
        line->available = core_get_i64(reader); /* expected, compared later */
    }
    return reader->ok;
}

/* Decodes a whole record into out; false if it is malformed. */
static bool decode(core_reader *reader, replay *out)
{
    stock_op *op = &out->op;
    uint8_t type = core_get_u8(reader);
    switch (type) {
    case RECORD_SET:
        op->type = STOCK_OP_SET;
        op->sku = core_get_id(reader);
        op->amount = core_get_i64(reader);
        out->available = op->amount;
        break;
    case RECORD_ADD:
        op->type = STOCK_OP_ADD;
        op->sku = core_get_id(reader);
        op->id = core_get_id(reader);
        if (op->id.len == 0)
            op->id.ptr = NULL;   /* length 0 on disk is "no id" (stock.h) */
        op->amount = core_get_i64(reader);
        out->available = core_get_i64(reader);
        break;
    case RECORD_DEDUCT:
        op->type = STOCK_OP_DEDUCT;
        op->id = core_get_id(reader);
        op->sku = core_get_id(reader);
        op->amount = core_get_u32(reader);
        out->time_us = core_get_i64(reader);
        out->available = core_get_i64(reader);
        break;
    case RECORD_ORDER:
    case RECORD_CONFIRM_ORDER:
        if (!decode_order(reader, out, type == RECORD_CONFIRM_ORDER))
            return false;
        break;
    case RECORD_HOLD:
        op->type = STOCK_OP_HOLD;
        op->id = core_get_id(reader);
        op->sku = core_get_id(reader);
        op->amount = core_get_u32(reader);
        op->expect = core_get_i64(reader);
        out->time_us = core_get_i64(reader);
        out->available = core_get_i64(reader);
        break;
    case RECORD_CONFIRM:
        op->type = STOCK_OP_CONFIRM;
        op->id = core_get_id(reader);
        op->amount = core_get_u32(reader);
        out->time_us = core_get_i64(reader);
        out->available = core_get_i64(reader);
        break;
    case RECORD_RELEASE:
        op->type = STOCK_OP_RELEASE;
        op->id = core_get_id(reader);
        out->available = core_get_i64(reader);
        break;
    case RECORD_REFUND:
        op->type = STOCK_OP_REFUND;
        op->id = core_get_id(reader);
        op->line = core_get_id(reader);
        op->amount = core_get_u32(reader);
        out->available = core_get_i64(reader);
        break;
    default:
        return false;
    }
    return reader->ok && reader->at == reader->end;
}

static stock_code corrupt(char *message, size_t message_size, const char *format,
                          const char *detail, const char *more)
{
    message_set(message, message_size, format, detail, more);
    return STOCK_CORRUPT;
}

/* Checks that the re-applied op left the stock the record says: available
 * for every type but ORDER, expected[i] for each line of an ORDER. */
static bool replay_matches(const stock_op *op, int64_t available,
                           const int64_t *expected)
{
    if (op->type != STOCK_OP_ORDER && op->type != STOCK_OP_CONFIRM_ORDER)
        return op->available == available;
    for (uint32_t i = 0; i < op->line_count; i++)
        if (op->lines[i].available != expected[i])
            return false;
    return true;
}

stock_code core_replay(core *state, const uint8_t *record, size_t len,
                       char *message, size_t message_size)
{
    assert(state != NULL && (record != NULL || len == 0));
    if (len > 0 && record[0] == RECORD_EXPIRE) {
        core_reader body = core_reader_make(record + 1, len - 1);
        return core_replay_expire(state, &body, message, message_size);
    }
    replay decoded;
    memset(&decoded.op, 0, sizeof decoded.op);
    decoded.time_us = 0;
    decoded.available = 0;
    core_reader reader = core_reader_make(record, len);
    if (!decode(&reader, &decoded))
        return corrupt(message, message_size,
                       "log record is truncated or malformed%s%s", "", "");
    /* The expected stock per order line was decoded into the lines, which
     * the apply overwrites: keep a copy. */
    int64_t expected[STOCK_ORDER_LINES_MAX];
    for (uint32_t i = 0; i < decoded.op.line_count; i++)
        expected[i] = decoded.lines[i].available;
    stock_op *op = &decoded.op;
    op->failed_line = -1;
    if (stock_validate(op) != STOCK_OK)
        return corrupt(message, message_size,
                       "log record holds an invalid operation: %s%s", op->message, "");
    bool changed = core_apply_at(state, op, decoded.time_us, NULL);
    if (op->code == STOCK_NOMEM)
        return STOCK_NOMEM;
    if (!changed && stock_code_succeeded(op->code))
        return corrupt(message, message_size,
                       "log record changes nothing: it was already applied%s%s",
                       "", "");
    if (!changed)
        return corrupt(message, message_size,
                       "log record does not apply to the state: %s %s",
                       stock_code_name(op->code), op->message);
    if (!replay_matches(op, decoded.available, expected))
        return corrupt(message, message_size,
                       "log record replays to a different stock level%s%s", "", "");
    return STOCK_OK;
}
