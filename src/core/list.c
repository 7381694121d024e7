/*
 * list.c -- pages of a listing read from the state (core_list_begin and
 * core_list_next, core.h).
 *
 * Entities are never deleted and their indices follow the order of
 * creation, so a listing is a walk over a pool from the index after the
 * cursor's entity: no sort, no copy beyond the page, and a page that
 * follows another misses and repeats nothing. A SKU's lines are found by
 * walking the line pool (the core keeps no per-SKU list: a deduction would
 * pay for one on the hot path), in slices so that the walk can pause; an
 * order's lines are contiguous. A line's refunds are found the same way,
 * by walking the refund pool.
 */
#include <assert.h>

#include "core/core_internal.h"
#include "lib/message.h"

/* The index to start from: 0, or the one after the entity named after in
 * index/pool. CORE_NONE if after names nothing. */
static uint32_t start_after(const core *state, const core_index *index,
                            const core_pool *pool, stock_id after)
{
    if (after.ptr == NULL)
        return 0;
    uint32_t entity = core_index_find(index, pool, &state->ids, core_hash(after), after);
    return entity == CORE_NONE ? CORE_NONE : entity + 1;
}

/* The SKU, order or line a listing is of; CORE_NONE if none. */
static uint32_t owner_of(const core *state, stock_list_kind kind, stock_id of)
{
    if (kind == STOCK_LIST_SKU_LINES)
        return core_sku_find(state, of, NULL);
    if (kind == STOCK_LIST_LINE_REFUNDS)
        return core_index_find(&state->line_index, &state->lines, &state->ids, core_hash(of), of);
    return core_index_find(&state->order_index, &state->orders, &state->ids, core_hash(of), of);
}

/* The index after which a listing starts (start_after of its pool). */
static uint32_t listing_start(const core *state, stock_list_kind kind, stock_id after)
{
    if (kind == STOCK_LIST_SKUS)
        return start_after(state, &state->sku_index, &state->skus, after);
    if (kind == STOCK_LIST_LINE_REFUNDS)
        return start_after(state, &state->refund_index, &state->refunds, after);
    return start_after(state, &state->line_index, &state->lines, after);
}

stock_code core_list_begin(const core *state, stock_list_kind kind, stock_id of, stock_id after,
                           core_list_cursor *cursor, char *message, size_t size)
{
    assert(state != NULL && cursor != NULL);
    assert(kind >= STOCK_LIST_SKUS && kind <= STOCK_LIST_LINE_REFUNDS);
    /* What `of` and `after` name, by kind (for NOT_FOUND). */
    static const char *const of_names[] = {[STOCK_LIST_SKU_LINES] = "sku",
                                           [STOCK_LIST_ORDER_LINES] = "order",
                                           [STOCK_LIST_LINE_REFUNDS] = "line"};
    static const char *const after_names[] = {[STOCK_LIST_SKUS] = "sku",
                                              [STOCK_LIST_SKU_LINES] = "line",
                                              [STOCK_LIST_ORDER_LINES] = "line",
                                              [STOCK_LIST_LINE_REFUNDS] = "refund"};
    *cursor = (core_list_cursor){.kind = kind, .owner = CORE_NONE};
    if (kind != STOCK_LIST_SKUS) {
        cursor->owner = owner_of(state, kind, of);
        if (cursor->owner == CORE_NONE) {
            message_set(message, size, "%s=%.*s", of_names[kind], (int)of.len, of.ptr);
            return STOCK_NOT_FOUND;
        }
    }
    cursor->next = listing_start(state, kind, after);
    if (cursor->next == CORE_NONE) {
        message_set(message, size, "%s=%.*s", after_names[kind], (int)after.len, after.ptr);
        return STOCK_NOT_FOUND;
    }
    if (kind == STOCK_LIST_ORDER_LINES) {
        const core_order *order = core_pool_at(&state->orders, cursor->owner);
        if (cursor->next < order->first_line)
            cursor->next = order->first_line;
    }
    return STOCK_OK;
}

/* Appends the line at entity to the page. */
static void add_line(const core *state, uint32_t entity, stock_list_entry *entry)
{
    core_copy_id(entry->id, core_entity_id(state, &state->lines, entity));
    core_line_info(state, entity, &entry->info.line_info);
}

/* Appends the refund at entity to the page. */
static void add_refund(const core *state, uint32_t entity, stock_list_entry *entry)
{
    const core_refund *refund = core_pool_at(&state->refunds, entity);
    core_copy_id(entry->id, core_entity_id(state, &state->refunds, entity));
    core_copy_id(entry->info.refund_info.line, core_entity_id(state, &state->lines, refund->line));
    entry->info.refund_info.qty = refund->qty;
    entry->info.refund_info.available_after = refund->available_after;
}

/* Whether the line at entity belongs to the listing (a lines listing). */
static bool line_listed(const core *state, const core_list_cursor *cursor, uint32_t entity)
{
    const core_line *line = core_pool_at(&state->lines, entity);
    return cursor->kind == STOCK_LIST_SKU_LINES ? line->sku == cursor->owner
                                                : line->order == cursor->owner;
}

bool core_list_next(const core *state, core_list_cursor *cursor, stock_list_entry *entries,
                    uint32_t max, uint32_t *count, uint32_t scan_max)
{
    assert(max >= 1 && max <= STOCK_LIST_MAX && *count <= max && scan_max >= 1);
    uint32_t end = state->skus.count;
    if (cursor->kind == STOCK_LIST_ORDER_LINES) {
        const core_order *order = core_pool_at(&state->orders, cursor->owner);
        end = order->first_line + order->line_count;
    } else if (cursor->kind == STOCK_LIST_SKU_LINES) {
        end = state->lines.count;
    } else if (cursor->kind == STOCK_LIST_LINE_REFUNDS) {
        end = state->refunds.count;
    }
    for (uint32_t scanned = 0; cursor->next < end && *count < max && scanned < scan_max; scanned++) {
        uint32_t i = cursor->next++;
        if (cursor->kind == STOCK_LIST_SKUS) {
            stock_list_entry *entry = &entries[(*count)++];
            core_copy_id(entry->id, core_entity_id(state, &state->skus, i));
            core_sku_info(state, i, &entry->info.sku_info);
        } else if (cursor->kind == STOCK_LIST_LINE_REFUNDS) {
            const core_refund *refund = core_pool_at(&state->refunds, i);
            if (refund->line == cursor->owner)
                add_refund(state, i, &entries[(*count)++]);
        } else if (line_listed(state, cursor, i)) {
            add_line(state, i, &entries[(*count)++]);
        }
    }
    return *count == max || cursor->next >= end;
}
