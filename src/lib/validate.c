/*
 * validate.c -- the input rules of docs/semantics.md, checked once for every
 * backend before an operation can touch state.
 */
#include <assert.h>

#include "lib/id.h"
#include "lib/result.h"

#define ID_RULE "must be 1-64 printable ASCII characters without spaces"
#define QTY_RULE "must be an integer in 1..2147483647"
#define CONFIRM_QTY_RULE "must be an integer in 0..2147483647 (0: the whole hold)"
#define TTL_RULE "must be an integer in 1..2592000000 (milliseconds)"

bool stock_id_valid(stock_id id)
{
    if (id.len == 0 || id.len > STOCK_ID_MAX || id.ptr == NULL)
        return false;
    for (uint32_t i = 0; i < id.len; i++) {
        unsigned char c = (unsigned char)id.ptr[i];
        if (c < 0x21 || c > 0x7E)
            return false;
    }
    return true;
}

static bool qty_valid(int64_t qty)
{
    return qty >= 1 && qty <= STOCK_QTY_MAX;
}

/* A CONFIRM's qty: 0 confirms the whole hold. */
static bool confirm_qty_valid(int64_t qty)
{
    return qty >= 0 && qty <= STOCK_QTY_MAX;
}

static stock_code invalid(stock_op *op, const char *what, const char *rule)
{
    result_fail(op, STOCK_INVALID, "%s %s", what, rule);
    return STOCK_INVALID;
}

/* An ORDER's lines, or a CONFIRM_ORDER's (holds: the line id names a
 * hold, the sku is not read, the qty may be 0 for the whole hold). */
static stock_code validate_order(stock_op *op, bool holds)
{
    const char *line_name = holds ? "hold id" : "line id";
    if (!stock_id_valid(op->id))
        return invalid(op, "order id", ID_RULE);
    if (op->line_count == 0 || op->line_count > STOCK_ORDER_LINES_MAX ||
        op->lines == NULL)
        return invalid(op, "an order", "must have 1..100 lines");
    for (uint32_t i = 0; i < op->line_count; i++) {
        const stock_order_line *line = &op->lines[i];
        const char *rule = NULL;
        const char *what = NULL;
        if (!stock_id_valid(line->line_id))
            what = line_name, rule = ID_RULE;
        else if (!holds && !stock_id_valid(line->sku))
            what = "sku", rule = ID_RULE;
        else if (!holds && !qty_valid(line->qty))
            what = "qty", rule = QTY_RULE;
        else if (holds && !confirm_qty_valid(line->qty))
            what = "qty", rule = CONFIRM_QTY_RULE;
        for (uint32_t j = 0; rule == NULL && j < i; j++)
            if (id_equal(op->lines[j].line_id, line->line_id))
                what = line_name, rule = "must not repeat within an order";
        if (rule != NULL) {
            op->failed_line = (int32_t)i;
            result_fail(op, STOCK_INVALID, "line %u: %s %s", i + 1, what, rule);
            return STOCK_INVALID;
        }
    }
    return STOCK_OK;
}

static stock_code validate_hold_op(stock_op *op)
{
    if (op->type == STOCK_OP_CONFIRM_ORDER)
        return validate_order(op, true);
    if (!stock_id_valid(op->id))
        return invalid(op, "hold id", ID_RULE);
    if (op->type == STOCK_OP_HOLD) {
        if (!stock_id_valid(op->sku))
            return invalid(op, "sku", ID_RULE);
        if (!qty_valid(op->amount))
            return invalid(op, "qty", QTY_RULE);
        if (op->expect < 1 || op->expect > STOCK_HOLD_TTL_MS_MAX)
            return invalid(op, "ttl", TTL_RULE);
    }
    if (op->type == STOCK_OP_CONFIRM && !confirm_qty_valid(op->amount))
        return invalid(op, "qty", CONFIRM_QTY_RULE);
    return STOCK_OK;
}

stock_code stock_validate(stock_op *op)
{
    assert(op != NULL);
    switch (op->type) {
    case STOCK_OP_SET:
        if (!stock_id_valid(op->sku))
            return invalid(op, "sku", ID_RULE);
        if (op->amount < 0)
            return invalid(op, "stock level", "must be an integer in 0..9223372036854775807");
        if (op->has_expect && op->expect < 0)
            return invalid(op, "expected level", "must be an integer in 0..9223372036854775807");
        return STOCK_OK;
    case STOCK_OP_ADD:
        if (!stock_id_valid(op->sku))
            return invalid(op, "sku", ID_RULE);
        if (op->amount == 0 || op->amount < -STOCK_QTY_MAX || op->amount > STOCK_QTY_MAX)
            return invalid(op, "delta", "must be a non-zero integer in -2147483647..2147483647");
        /* ptr NULL is "no id"; a given id, even an empty one, must be an id. */
        if ((op->id.ptr != NULL || op->id.len != 0) && !stock_id_valid(op->id))
            return invalid(op, "adjustment id", ID_RULE);
        return STOCK_OK;
    case STOCK_OP_DEDUCT:
        if (!stock_id_valid(op->id))
            return invalid(op, "line id", ID_RULE);
        if (!stock_id_valid(op->sku))
            return invalid(op, "sku", ID_RULE);
        if (!qty_valid(op->amount))
            return invalid(op, "qty", QTY_RULE);
        return STOCK_OK;
    case STOCK_OP_ORDER:
        return validate_order(op, false);
    case STOCK_OP_REFUND:
        if (!stock_id_valid(op->id))
            return invalid(op, "refund id", ID_RULE);
        if (!stock_id_valid(op->line))
            return invalid(op, "line id", ID_RULE);
        if (!qty_valid(op->amount))
            return invalid(op, "qty", QTY_RULE);
        return STOCK_OK;
    case STOCK_OP_GET:
        if (!stock_id_valid(op->sku))
            return invalid(op, "sku", ID_RULE);
        return STOCK_OK;
    case STOCK_OP_LINE:
        if (!stock_id_valid(op->line))
            return invalid(op, "line id", ID_RULE);
        return STOCK_OK;
    case STOCK_OP_HOLD:
    case STOCK_OP_CONFIRM:
    case STOCK_OP_RELEASE:
    case STOCK_OP_CONFIRM_ORDER:
    case STOCK_OP_HOLD_GET:
        return validate_hold_op(op);
    }
    return invalid(op, "operation", "must be one of set, add, deduct, order, "
                   "refund, get, line, hold, confirm, release, confirm_order, "
                   "hold_get");
}
