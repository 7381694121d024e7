/*
 * core.c -- the rules of every operation (docs/semantics.md: the operations
 * and each row of its choices) applied to the in-memory state of core_internal.h.
 *
 * Each state-changing function works in three steps so that a failure never
 * leaves half an operation behind: look up and check (no change), reserve
 * every byte the change needs (may fail with NOMEM, no change), then mutate
 * and encode the record (cannot fail). Orders live in order.c.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"
#include "lib/result.h"

/* Records per pool chunk, as powers of two: the first chunk and the steady
 * size (see core_chunk_of). A steady line chunk is 40 << 18 bytes = 10 MiB,
 * reached after 256K lines, and comes straight from the kernel (store.c,
 * chunk_kind); an empty core holds a few KiB. */
#define SKU_CHUNK_SHIFT 10
#define LINE_FIRST_SHIFT 8
#define LINE_STEADY_SHIFT 18
#define ORDER_CHUNK_SHIFT 10
#define REFUND_CHUNK_SHIFT 10
#define ADJUSTMENT_CHUNK_SHIFT 8
#define HOLD_FIRST_SHIFT 8
#define HOLD_STEADY_SHIFT 18

/* Sets up an empty state in zeroed memory: allocates nothing. */
static void init_state(core *state)
{
    core_ids_init(&state->ids);
    core_pool_init(&state->skus, sizeof(core_sku), SKU_CHUNK_SHIFT,
                   SKU_CHUNK_SHIFT);
    core_pool_init(&state->lines, sizeof(core_line), LINE_FIRST_SHIFT,
                   LINE_STEADY_SHIFT);
    core_pool_init(&state->orders, sizeof(core_order), ORDER_CHUNK_SHIFT,
                   ORDER_CHUNK_SHIFT);
    core_pool_init(&state->refunds, sizeof(core_refund), REFUND_CHUNK_SHIFT,
                   REFUND_CHUNK_SHIFT);
    core_pool_init(&state->adjustments, sizeof(core_adjustment),
                   ADJUSTMENT_CHUNK_SHIFT, ADJUSTMENT_CHUNK_SHIFT);
    core_pool_init(&state->holds, sizeof(core_hold), HOLD_FIRST_SHIFT,
                   HOLD_STEADY_SHIFT);
    state->recent_sku = CORE_NONE;
}

/* Frees everything the state holds, not the state itself. */
static void release_state(core *state)
{
    core_ids_free(&state->ids);
    core_heap_free(&state->deadlines);
    core_pool *pools[] = {&state->skus, &state->lines, &state->orders,
                          &state->refunds, &state->adjustments, &state->holds};
    core_index *indexes[] = {&state->sku_index, &state->line_index,
                             &state->order_index, &state->refund_index,
                             &state->adjustment_index, &state->hold_index};
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
        core_pool_free(pools[i]);
        core_index_free(indexes[i]);
    }
}

core *core_create(void)
{
    core *state = calloc(1, sizeof *state);
    if (state == NULL)
        return NULL;
    init_state(state);
    return state;
}

void core_destroy(core *state)
{
    if (state == NULL)
        return;
    release_state(state);
    free(state);
}

void core_clear(core *state)
{
    assert(state != NULL);
    release_state(state);
    memset(state, 0, sizeof *state);
    init_state(state);
    assert(state->skus.count == 0 && state->lines.count == 0);
}

void core_get_stats(const core *state, core_stats *stats)
{
    assert(state != NULL && stats != NULL);
    assert(state->lines.count == state->line_index.used);
    const core_pool *pools[] = {&state->skus, &state->lines, &state->orders,
                                &state->refunds, &state->adjustments,
                                &state->holds};
    const core_index *indexes[] = {&state->sku_index, &state->line_index,
                                   &state->order_index, &state->refund_index,
                                   &state->adjustment_index, &state->hold_index};
    uint64_t memory = sizeof *state + core_ids_memory(&state->ids) +
                      (uint64_t)state->deadlines.capacity * sizeof(core_deadline);
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++)
        memory += core_pool_memory(pools[i]) + core_index_memory(indexes[i]);
    *stats = (core_stats){
        .skus = state->skus.count,
        .lines = state->lines.count,
        .orders = state->orders.count,
        .refunds = state->refunds.count,
        .adjustments = state->adjustments.count,
        .holds = state->holds.count,
        .holds_outstanding = state->hold_totals.outstanding,
        .held_units = state->hold_totals.held_units,
        .hold_expiries = state->hold_totals.expiries,
        .hold_confirmations = state->hold_totals.confirmations,
        .hold_releases = state->hold_totals.releases,
        .memory_bytes = memory,
    };
}

uint32_t core_entity_add(core *state, core_pool *pool, core_index *index,
                         uint32_t hash, stock_id id)
{
    assert(pool->count == index->used);
    uint32_t entity = core_pool_push(pool);
    uint64_t *ref = core_pool_at(pool, entity);
    *ref = core_ids_push(&state->ids, id);
    core_index_insert(index, hash, entity);
    return entity;
}

bool core_reserve_entities(core *state, core_pool *pool, core_index *index,
                             uint32_t count, uint32_t id_bytes)
{
    return core_pool_reserve(pool, count) && core_index_reserve(index, count) &&
           core_ids_reserve(&state->ids, id_bytes);
}

bool core_reserve_record(const stock_op *op, buf *record)
{
    return record == NULL || buf_reserve(record, core_record_size(op));
}

bool core_fail_nomem(stock_op *op)
{
    result_fail(op, STOCK_NOMEM, "the state could not grow: out of memory");
    return false;
}

bool core_fail_overflow(stock_op *op, stock_id sku)
{
    result_overflow(op, sku);
    return false;
}

/* As core_index_find, comparing against the SKU's own copy of its id. */
uint32_t core_sku_find(const core *state, stock_id sku, uint32_t *hash)
{
    uint32_t sku_hash = core_hash(sku);
    if (hash != NULL)
        *hash = sku_hash;
    core_index_table tables[2];
    uint32_t count = core_index_tables(&state->sku_index, tables);
    for (uint32_t t = 0; t < count; t++) {
        const core_index_table *table = &tables[t];
        for (uint32_t at = (uint32_t)((uint64_t)sku_hash >> table->shift);;
             at = (at + 1) & table->mask) {
            core_slot slot = table->slots[at];
            if (slot.entry == 0)
                break;
            if (slot.hash != sku_hash)
                continue;
            const core_sku *record = core_pool_at(&state->skus, slot.entry - 1);
            assert((record->id & 0xFF) <= STOCK_ID_MAX);
            if ((record->id & 0xFF) == sku.len && memcmp(record->name, sku.ptr, sku.len) == 0)
                return slot.entry - 1;
        }
    }
    return CORE_NONE;
}

/* ------------------------------------------------------------------ set */

static bool sku_create(core *state, stock_op *op, uint32_t hash, buf *record)
{
    assert(!op->has_expect && op->amount >= 0);
    if (!core_reserve_entities(state, &state->skus, &state->sku_index, 1, op->sku.len) ||
        !core_reserve_record(op, record))
        return core_fail_nomem(op);
    uint32_t entity = core_entity_add(state, &state->skus, &state->sku_index,
                                      hash, op->sku);
    core_sku *sku = core_pool_at(&state->skus, entity);
    memcpy(sku->name, op->sku.ptr, op->sku.len);
    sku->available = 0;
    core_sku_set_available(state, sku, op->amount);
    sku->adjusted = op->amount;
    sku->deducted = 0;
    sku->refunded = 0;
    sku->held = 0;
    op->available = op->amount;
    return true;
}

static bool apply_set(core *state, stock_op *op, buf *record)
{
    uint32_t hash;
    uint32_t entity = core_sku_find(state, op->sku, &hash);
    if (entity == CORE_NONE) {
        if (op->has_expect) {
            result_sku_not_found(op, op->sku);
            return false;
        }
        return sku_create(state, op, hash, record);
    }
    core_sku *sku = core_pool_at(&state->skus, entity);
    if (op->has_expect && op->expect != sku->available) {
        result_mismatch(op, op->sku, sku->available);
        return false;
    }
    int64_t delta = op->amount - sku->available; /* both in 0..INT64_MAX */
    int64_t adjusted;
    if (__builtin_add_overflow(sku->adjusted, delta, &adjusted))
        return core_fail_overflow(op, op->sku);
    op->available = op->amount;
    if (delta == 0)
        return false; /* nothing changes, so nothing is recorded */
    if (!core_reserve_record(op, record))
        return core_fail_nomem(op);
    core_sku_set_available(state, sku, op->amount);
    sku->adjusted = adjusted;
    return true;
}

/* ------------------------------------------------------------------ add */

/* An add whose adjustment id exists: a replay or a conflict. */
static bool add_again(core *state, stock_op *op, uint32_t entity)
{
    const core_adjustment *adjustment = core_pool_at(&state->adjustments, entity);
    stock_id sku = core_entity_id(state, &state->skus, adjustment->sku);
    if (adjustment->delta != op->amount || !id_equal(sku, op->sku)) {
        result_conflict(op, "adjustment", op->id);
        return false;
    }
    op->code = STOCK_REPLAY;
    op->available = adjustment->available_after;
    return false;
}

static void adjustment_add(core *state, stock_op *op, uint32_t hash,
                           uint32_t sku)
{
    uint32_t entity = core_entity_add(state, &state->adjustments,
                                      &state->adjustment_index, hash, op->id);
    core_adjustment *adjustment = core_pool_at(&state->adjustments, entity);
    adjustment->sku = sku;
    adjustment->delta = (int32_t)op->amount;
    adjustment->available_after = op->available;
}

static bool apply_add(core *state, stock_op *op, buf *record)
{
    uint32_t hash = 0;
    if (op->id.len > 0) {
        hash = core_hash(op->id);
        uint32_t entity = core_index_find(&state->adjustment_index,
                                          &state->adjustments, &state->ids,
                                          hash, op->id);
        if (entity != CORE_NONE)
            return add_again(state, op, entity);
    }
    uint32_t entity = core_sku_find(state, op->sku, NULL);
    if (entity == CORE_NONE) {
        result_sku_not_found(op, op->sku);
        return false;
    }
    core_sku *sku = core_pool_at(&state->skus, entity);
    int64_t available, adjusted;
    if (__builtin_add_overflow(sku->available, op->amount, &available) ||
        __builtin_add_overflow(sku->adjusted, op->amount, &adjusted))
        return core_fail_overflow(op, op->sku);
    if (available < 0) {
        result_insufficient(op, op->sku, sku->available);
        return false;
    }
    if ((op->id.len > 0 && !core_reserve_entities(state, &state->adjustments,
                                             &state->adjustment_index, 1,
                                             op->id.len)) ||
        !core_reserve_record(op, record))
        return core_fail_nomem(op);
    core_sku_set_available(state, sku, available);
    sku->adjusted = adjusted;
    op->available = available;
    if (op->id.len > 0)
        adjustment_add(state, op, hash, entity);
    return true;
}

/* --------------------------------------------------------------- deduct */

/* A deduct whose line id exists: a replay or a conflict. */
static bool deduct_again(core *state, stock_op *op, uint32_t entity)
{
    const core_line *line = core_pool_at(&state->lines, entity);
    stock_id sku = core_entity_id(state, &state->skus, line->sku);
    /* A confirmed hold's line was not made by this deduction. */
    if (line->order != CORE_NONE || line->qty != op->amount ||
        !id_equal(sku, op->sku) ||
        core_hold_find(state, op->id, core_hash(op->id)) != CORE_NONE) {
        result_conflict(op, "line", op->id);
        return false;
    }
    op->code = STOCK_REPLAY;
    op->available = line->available_after;
    return false;
}

uint32_t core_line_add(core *state, stock_id id, uint32_t hash, uint32_t sku_entity,
                       int64_t qty, uint32_t order, int64_t time_us)
{
    assert(qty >= 1 && qty <= STOCK_QTY_MAX);
    core_sku *sku = core_pool_at(&state->skus, sku_entity);
    assert(sku->available >= qty);
    uint32_t entity = core_entity_add(state, &state->lines, &state->line_index,
                                      hash, id);
    core_line *line = core_pool_at(&state->lines, entity);
    core_sku_set_available(state, sku, sku->available - qty);
    sku->deducted += qty;
    line->time_us = time_us;
    line->available_after = sku->available;
    line->sku = sku_entity;
    line->qty = (uint32_t)qty;
    line->refunded = 0;
    line->order = order;
    core_clock_advance(state, time_us);
    return entity;
}

static bool apply_deduct(core *state, stock_op *op, int64_t time_us, buf *record)
{
    uint32_t hash = core_hash(op->id);
    uint32_t entity = core_index_find(&state->line_index, &state->lines,
                                      &state->ids, hash, op->id);
    if (entity != CORE_NONE)
        return deduct_again(state, op, entity);
    /* A hold's id is its future line's: no deduction may take it. */
    if (core_hold_find(state, op->id, hash) != CORE_NONE) {
        result_conflict(op, "line", op->id);
        return false;
    }
    uint32_t sku_entity = core_recent_sku(state, op->sku)
                              ? state->recent_sku : core_sku_find(state, op->sku, NULL);
    if (sku_entity == CORE_NONE) {
        result_sku_not_found(op, op->sku);
        return false;
    }
    state->recent_sku = sku_entity;
    const core_sku *sku = core_pool_at(&state->skus, sku_entity);
    if (sku->available < op->amount) {
        result_insufficient(op, op->sku, sku->available);
        return false;
    }
    if (sku->deducted > INT64_MAX - op->amount)
        return core_fail_overflow(op, op->sku);
    if (!core_reserve_entities(state, &state->lines, &state->line_index, 1, op->id.len) ||
        !core_reserve_record(op, record))
        return core_fail_nomem(op);
    entity = core_line_add(state, op->id, hash, sku_entity, op->amount,
                           CORE_NONE, time_us);
    op->available = sku->available;
    assert(((const core_line *)core_pool_at(&state->lines, entity))->available_after ==
           op->available);
    return true;
}

/* --------------------------------------------------------------- refund */

/* A refund whose id exists: a replay or a conflict. */
static bool refund_again(core *state, stock_op *op, uint32_t entity)
{
    const core_refund *refund = core_pool_at(&state->refunds, entity);
    stock_id line = core_entity_id(state, &state->lines, refund->line);
    if (refund->qty != op->amount || !id_equal(line, op->line)) {
        result_conflict(op, "refund", op->id);
        return false;
    }
    op->code = STOCK_REPLAY;
    op->available = refund->available_after;
    return false;
}

static bool apply_refund(core *state, stock_op *op, buf *record)
{
    uint32_t hash = core_hash(op->id);
    uint32_t entity = core_index_find(&state->refund_index, &state->refunds,
                                      &state->ids, hash, op->id);
    if (entity != CORE_NONE)
        return refund_again(state, op, entity);
    uint32_t line_entity = core_index_find(&state->line_index, &state->lines,
                                           &state->ids, core_hash(op->line),
                                           op->line);
    if (line_entity == CORE_NONE) {
        result_line_not_found(op, op->line);
        return false;
    }
    core_line *line = core_pool_at(&state->lines, line_entity);
    assert(line->refunded <= line->qty);
    int64_t refundable = (int64_t)line->qty - line->refunded;
    if (op->amount > refundable) {
        result_exceeds(op, op->line, refundable);
        return false;
    }
    core_sku *sku = core_pool_at(&state->skus, line->sku);
    int64_t available, refunded;
    if (__builtin_add_overflow(sku->available, op->amount, &available) ||
        __builtin_add_overflow(sku->refunded, op->amount, &refunded))
        return core_fail_overflow(op, core_entity_id(state, &state->skus, line->sku));
    if (!core_reserve_entities(state, &state->refunds, &state->refund_index, 1, op->id.len) ||
        !core_reserve_record(op, record))
        return core_fail_nomem(op);
    line->refunded += (uint32_t)op->amount;
    core_sku_set_available(state, sku, available);
    sku->refunded = refunded;
    op->available = available;
    entity = core_entity_add(state, &state->refunds, &state->refund_index, hash, op->id);
    core_refund *refund = core_pool_at(&state->refunds, entity);
    refund->line = line_entity;
    refund->qty = (uint32_t)op->amount;
    refund->available_after = available;
    return true;
}

/* ---------------------------------------------------------------- reads */

void core_sku_info(const core *state, uint32_t entity, stock_sku_info *info)
{
    const core_sku *sku = core_pool_at(&state->skus, entity);
    assert(sku->available >= 0);
    *info = (stock_sku_info){
        .available = sku->available,
        .adjusted = sku->adjusted,
        .deducted = sku->deducted,
        .refunded = sku->refunded,
        .held = sku->held,
    };
}

static void apply_get(const core *state, stock_op *op)
{
    uint32_t entity = core_sku_find(state, op->sku, NULL);
    if (entity == CORE_NONE) {
        result_sku_not_found(op, op->sku);
        return;
    }
    core_sku_info(state, entity, &op->info.sku_info);
    op->available = op->info.sku_info.available;
}

void core_copy_id(char *target, stock_id id)
{
    assert(id.len <= STOCK_ID_MAX);
    memcpy(target, id.ptr, id.len);
    target[id.len] = '\0';
}

void core_line_info(const core *state, uint32_t entity, stock_line_info *info)
{
    const core_line *line = core_pool_at(&state->lines, entity);
    core_copy_id(info->sku, core_entity_id(state, &state->skus, line->sku));
    info->order_id[0] = '\0';
    if (line->order != CORE_NONE)
        core_copy_id(info->order_id, core_entity_id(state, &state->orders, line->order));
    info->qty = line->qty;
    info->refunded = line->refunded;
    info->time_us = line->time_us;
    info->available_after = line->available_after;
}

static void apply_line(const core *state, stock_op *op)
{
    uint32_t entity = core_index_find(&state->line_index, &state->lines,
                                      &state->ids, core_hash(op->line), op->line);
    if (entity == CORE_NONE) {
        result_line_not_found(op, op->line);
        return;
    }
    core_line_info(state, entity, &op->info.line_info);
}

/* -------------------------------------------------------------- prefetch */

static void prefetch_slot(const core_index *index, stock_id id)
{
    assert(id.len <= STOCK_ID_MAX);
    core_index_prefetch(index, core_hash(id));
}

void core_prefetch(const core *state, const stock_op *op)
{
    assert(state != NULL && op != NULL);
    switch (op->type) {
    case STOCK_OP_SET:
    case STOCK_OP_ADD:
    case STOCK_OP_GET:
        prefetch_slot(&state->sku_index, op->sku);
        break;
    case STOCK_OP_DEDUCT:
        prefetch_slot(&state->line_index, op->id);
        prefetch_slot(&state->sku_index, op->sku);
        break;
    case STOCK_OP_ORDER:
        for (uint32_t i = 0; i < op->line_count && i < STOCK_ORDER_LINES_MAX; i++) {
            prefetch_slot(&state->line_index, op->lines[i].line_id);
            prefetch_slot(&state->sku_index, op->lines[i].sku);
        }
        break;
    case STOCK_OP_REFUND:
        prefetch_slot(&state->refund_index, op->id);
        prefetch_slot(&state->line_index, op->line);
        break;
    case STOCK_OP_LINE:
        prefetch_slot(&state->line_index, op->line);
        break;
    case STOCK_OP_HOLD:
        prefetch_slot(&state->hold_index, op->id);
        prefetch_slot(&state->sku_index, op->sku);
        break;
    case STOCK_OP_CONFIRM:
    case STOCK_OP_RELEASE:
    case STOCK_OP_HOLD_GET:
        prefetch_slot(&state->hold_index, op->id);
        break;
    case STOCK_OP_CONFIRM_ORDER:
        break;
    }
}

/* ---------------------------------------------------------------- apply */

bool core_apply_at(core *state, stock_op *op, int64_t time_us, buf *record)
{
    assert(state != NULL && op != NULL);
    assert(op->code == STOCK_OK);
    bool changed = false;
    switch (op->type) {
    case STOCK_OP_SET: changed = apply_set(state, op, record); break;
    case STOCK_OP_ADD: changed = apply_add(state, op, record); break;
    case STOCK_OP_DEDUCT: changed = apply_deduct(state, op, time_us, record); break;
    case STOCK_OP_ORDER: changed = core_apply_order(state, op, time_us, record); break;
    case STOCK_OP_REFUND: changed = apply_refund(state, op, record); break;
    case STOCK_OP_GET: apply_get(state, op); break;
    case STOCK_OP_LINE: apply_line(state, op); break;
    case STOCK_OP_HOLD:
    case STOCK_OP_CONFIRM:
    case STOCK_OP_RELEASE:
    case STOCK_OP_CONFIRM_ORDER:
    case STOCK_OP_HOLD_GET:
        /* Holds encode their own records (an expiry among them). */
        return core_apply_hold(state, op, time_us, record);
    }
    assert(!changed || op->code == STOCK_OK);
    if (changed && record != NULL)
        core_record_encode(op, time_us, record);
    return changed;
}

bool core_apply(core *state, stock_op *op, int64_t now_us, buf *record)
{
    assert(record != NULL);
    assert(op->type >= STOCK_OP_SET && op->type <= STOCK_OP_TYPE_MAX);
    return core_apply_at(state, op, now_us, record);
}
