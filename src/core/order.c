/*
 * order.c -- the order operation (a cart): all lines or none (I3).
 *
 * Checks follow docs/semantics.md: an existing order id is a replay or a
 * conflict; then the lines are walked in order checking line-id conflict and
 * then SKU existence (first failure wins); then each SKU is checked against
 * the sum of its lines, in order of first appearance. Only when everything
 * passes and every byte is reserved are the lines taken, contiguously in the
 * line pool, so that the order entity just names its first line.
 */
#include "core/core_internal.h"
#include "lib/result.h"

/* What the checks learn about each line, kept for the mutation step. */
typedef struct order_scratch {
    uint32_t sku[STOCK_ORDER_LINES_MAX];
    uint32_t line_hash[STOCK_ORDER_LINES_MAX];
} order_scratch;

/* An order whose id exists: a replay if every line matches, else a
 * conflict. */
static bool order_again(core *state, stock_op *op, uint32_t entity)
{
    const core_order *order = core_pool_at(&state->orders, entity);
    assert(order->line_count >= 1 && order->line_count <= STOCK_ORDER_LINES_MAX);
    bool same = order->line_count == op->line_count;
    for (uint32_t i = 0; same && i < op->line_count; i++) {
        uint32_t index = order->first_line + i;
        const core_line *line = core_pool_at(&state->lines, index);
        const stock_order_line *wanted = &op->lines[i];
        same = line->qty == wanted->qty &&
               id_equal(core_entity_id(state, &state->lines, index),
                              wanted->line_id) &&
               id_equal(core_entity_id(state, &state->skus, line->sku),
                              wanted->sku);
    }
    if (!same) {
        result_conflict(op, "order", op->id);
        return false;
    }
    for (uint32_t i = 0; i < op->line_count; i++) {
        const core_line *line = core_pool_at(&state->lines, order->first_line + i);
        op->lines[i].available = line->available_after;
    }
    op->code = STOCK_REPLAY;
    return false;
}

/* Walks the lines in order: line id conflict, then SKU existence. */
static bool order_resolve(core *state, stock_op *op, order_scratch *scratch)
{
    for (uint32_t i = 0; i < op->line_count; i++) {
        const stock_order_line *line = &op->lines[i];
        scratch->line_hash[i] = core_hash(line->line_id);
        if (core_index_find(&state->line_index, &state->lines, &state->ids,
                            scratch->line_hash[i], line->line_id) != CORE_NONE) {
            op->failed_line = (int32_t)i;
            result_conflict(op, "line", line->line_id);
            return false;
        }
        /* A hold's id is its future line's. */
        if (core_hold_find(state, line->line_id, scratch->line_hash[i]) != CORE_NONE) {
            op->failed_line = (int32_t)i;
            result_conflict(op, "line", line->line_id);
            return false;
        }
        scratch->sku[i] = core_sku_find(state, line->sku, NULL);
        if (scratch->sku[i] == CORE_NONE) {
            op->failed_line = (int32_t)i;
            result_sku_not_found(op, line->sku);
            return false;
        }
    }
    return true;
}

/* The sum of the quantities of the lines from first on that take sku. */
static int64_t order_sku_total(const stock_op *op, const order_scratch *scratch,
                               uint32_t first)
{
    int64_t total = 0;
    for (uint32_t k = first; k < op->line_count; k++)
        if (scratch->sku[k] == scratch->sku[first])
            total += op->lines[k].qty; /* <= 100 * 2^31: no overflow */
    assert(total >= op->lines[first].qty);
    return total;
}

/* Checks each SKU against the sum of its lines, in order of first
 * appearance. */
static bool order_sufficient(core *state, stock_op *op,
                             const order_scratch *scratch)
{
    for (uint32_t i = 0; i < op->line_count; i++) {
        bool first = true;
        for (uint32_t j = 0; first && j < i; j++)
            first = scratch->sku[j] != scratch->sku[i];
        if (!first)
            continue;
        int64_t total = order_sku_total(op, scratch, i);
        const core_sku *sku = core_pool_at(&state->skus, scratch->sku[i]);
        if (sku->available < total) {
            op->failed_line = (int32_t)i;
            result_insufficient(op, op->lines[i].sku, sku->available);
            return false;
        }
        if (sku->deducted > INT64_MAX - total) {
            op->failed_line = (int32_t)i;
            return core_fail_overflow(op, op->lines[i].sku);
        }
    }
    return true;
}

bool core_reserve_order(core *state, const stock_op *op, size_t record_bytes,
                        buf *record)
{
    uint32_t id_bytes = op->id.len;
    for (uint32_t i = 0; i < op->line_count; i++)
        id_bytes += op->lines[i].line_id.len;
    assert(id_bytes <= (STOCK_ORDER_LINES_MAX + 1) * STOCK_ID_MAX);
    return core_reserve_entities(state, &state->orders, &state->order_index, 1,
                                 id_bytes) &&
           core_reserve_entities(state, &state->lines, &state->line_index,
                                 op->line_count, id_bytes) &&
           (record == NULL || buf_reserve(record, record_bytes));
}

bool core_apply_order(core *state, stock_op *op, int64_t time_us, buf *record)
{
    assert(op->line_count >= 1 && op->line_count <= STOCK_ORDER_LINES_MAX);
    uint32_t hash = core_hash(op->id);
    uint32_t entity = core_index_find(&state->order_index, &state->orders,
                                      &state->ids, hash, op->id);
    if (entity != CORE_NONE)
        return order_again(state, op, entity);
    order_scratch scratch;
    if (!order_resolve(state, op, &scratch) || !order_sufficient(state, op, &scratch))
        return false;
    if (!core_reserve_order(state, op, record == NULL ? 0 : core_record_size(op), record))
        return core_fail_nomem(op);
    entity = core_entity_add(state, &state->orders, &state->order_index, hash, op->id);
    core_order *order = core_pool_at(&state->orders, entity);
    order->first_line = state->lines.count;
    order->line_count = op->line_count;
    for (uint32_t i = 0; i < op->line_count; i++) {
        uint32_t line_entity = core_line_add(state, op->lines[i].line_id,
                                             scratch.line_hash[i], scratch.sku[i],
                                             op->lines[i].qty, entity, time_us);
        const core_line *line = core_pool_at(&state->lines, line_entity);
        assert(line_entity == order->first_line + i);
        op->lines[i].available = line->available_after;
    }
    return true;
}
