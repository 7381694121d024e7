/*
 * list.c -- pages of a listing read from the state (core_list, core.h).
 *
 * Entities are never deleted and their indices follow the order of
 * creation, so a listing is a walk over a pool from the index after the
 * cursor's entity: no sort, no copy beyond the page, and a page that
 * follows another misses and repeats nothing. A SKU's lines are found by
 * walking the whole line pool (the core keeps no per-SKU list: a deduction
 * would pay for one on the hot path); an order's lines are contiguous.
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

/* Appends the line at entity to the page. */
static void add_line(const core *state, uint32_t entity, stock_list_entry *entry)
{
    core_copy_id(entry->id, core_entity_id(state, &state->lines, entity));
    core_line_info(state, entity, &entry->info.line_info);
}

static void list_skus(const core *state, uint32_t start, stock_list_entry *entries,
                      uint32_t max, uint32_t *count)
{
    for (uint32_t i = start; i < state->skus.count && *count < max; i++) {
        stock_list_entry *entry = &entries[(*count)++];
        core_copy_id(entry->id, core_entity_id(state, &state->skus, i));
        core_sku_info(state, i, &entry->info.sku_info);
    }
}

static void list_sku_lines(const core *state, uint32_t sku, uint32_t start,
                           stock_list_entry *entries, uint32_t max, uint32_t *count)
{
    for (uint32_t i = start; i < state->lines.count && *count < max; i++) {
        const core_line *line = core_pool_at(&state->lines, i);
        if (line->sku == sku)
            add_line(state, i, &entries[(*count)++]);
    }
}

static void list_order_lines(const core *state, uint32_t order, uint32_t start,
                             stock_list_entry *entries, uint32_t max, uint32_t *count)
{
    const core_order *entity = core_pool_at(&state->orders, order);
    uint32_t first = start > entity->first_line ? start : entity->first_line;
    uint32_t end = entity->first_line + entity->line_count;
    for (uint32_t i = first; i < end && *count < max; i++)
        add_line(state, i, &entries[(*count)++]);
}

stock_code core_list(const core *state, stock_list_kind kind, stock_id of, stock_id after,
                     stock_list_entry *entries, uint32_t max, uint32_t *count,
                     char *message, size_t size)
{
    assert(state != NULL && entries != NULL && count != NULL);
    assert(max >= 1 && max <= STOCK_LIST_MAX);
    *count = 0;
    bool of_sku = kind == STOCK_LIST_SKU_LINES;
    uint32_t owner = CORE_NONE;
    if (kind != STOCK_LIST_SKUS) {
        owner = of_sku ? core_sku_find(state, of, NULL)
                       : core_index_find(&state->order_index, &state->orders, &state->ids,
                                         core_hash(of), of);
        if (owner == CORE_NONE) {
            message_set(message, size, "%s=%.*s", of_sku ? "sku" : "order", (int)of.len, of.ptr);
            return STOCK_NOT_FOUND;
        }
    }
    uint32_t start = kind == STOCK_LIST_SKUS
                         ? start_after(state, &state->sku_index, &state->skus, after)
                         : start_after(state, &state->line_index, &state->lines, after);
    if (start == CORE_NONE) {
        message_set(message, size, "%s=%.*s", kind == STOCK_LIST_SKUS ? "sku" : "line",
                    (int)after.len, after.ptr);
        return STOCK_NOT_FOUND;
    }
    if (kind == STOCK_LIST_SKUS)
        list_skus(state, start, entries, max, count);
    else if (of_sku)
        list_sku_lines(state, owner, start, entries, max, count);
    else
        list_order_lines(state, owner, start, entries, max, count);
    return STOCK_OK;
}
