/*
 * retain.c -- retention: moving old entities out of memory into a cold
 * store, and thawing them back when an op names them (core.h, "Retention";
 * docs/engine.md, "Retention").
 *
 * Pools and indexes never delete (core_internal.h), so a move builds a new
 * state with what stays hot, in the order of the old one, and the caller
 * swaps it in once the cold store has committed the rest. A thawed entity
 * is appended as it was; it is old, so the next move takes it back out.
 *
 * Cold values (little endian, ids as core_put_id):
 *   line        id order ("" for none) | id sku | u32 qty | u32 refunded |
 *               i64 time_us | i64 available_after
 *   order       u8 count | count x id line
 *   refund      id line | u32 qty | i64 available_after
 *   adjustment  id sku | u32 delta (two's complement) | i64 available_after
 *   hold        id sku | id order ("" for none) | u8 state | u32 qty |
 *               u32 confirmed | i64 time_us | i64 deadline_us |
 *               i64 available_after | i64 closed_available
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"
#include "core/record_types.h"
#include "lib/message.h"
#include "lib/result.h"

/* ------------------------------------------------------------------ move */

/* A move in steps (core.h, "core_retain_begin"): cursors over the old
 * state's pools, which ops between steps only append to. What an op changes
 * in an entity a step has already taken is a line's refunded, and every
 * such change comes with a new refund, which a later step reaches: that
 * step brings the line's copy up to date (see refresh_line). SKUs and holds
 * change all the time, so the last step copies them. */
struct core_retain_job {
    const core *old;
    core *hot;
    const core_cold *cold;
    uint32_t *line_map;        /* old line -> hot line, or CORE_NONE */
    uint32_t *order_map;       /* old order -> hot order, or CORE_NONE */
    uint32_t lines_mapped, orders_mapped;   /* entries in the maps */
    uint32_t next_line, next_refund, next_adjustment;   /* the cursors */
    uint32_t refunds_before;   /* refunds made before the move began */
    uint64_t made_at_step;     /* lines, refunds, adjustments at the last step */
    int64_t cutoff_us;
    uint32_t adjustments_cold; /* old adjustments below this move */
    uint64_t moved;
    stock_code code;
    uint8_t value[CORE_COLD_VALUE_MAX];
};

typedef struct core_retain_job retain;

/* Copies entity of an old pool into the same pool of the hot state, its
 * fields as they are; returns its new index, or CORE_NONE on out of memory. */
static uint32_t keep(retain *r, size_t pool_offset, size_t index_offset,
                     uint32_t entity)
{
    const core_pool *from = (const core_pool *)((const char *)r->old + pool_offset);
    core_pool *pool = (core_pool *)((char *)r->hot + pool_offset);
    core_index *index = (core_index *)((char *)r->hot + index_offset);
    stock_id id = core_entity_id(r->old, from, entity);
    if (!core_reserve_entities(r->hot, pool, index, 1, id.len)) {
        r->code = STOCK_NOMEM;
        return CORE_NONE;
    }
    uint32_t at = core_entity_add(r->hot, pool, index, core_hash(id), id);
    memcpy((uint8_t *)core_pool_at(pool, at) + sizeof(uint64_t),
           (const uint8_t *)core_pool_at(from, entity) + sizeof(uint64_t),
           pool->record_size - sizeof(uint64_t));
    return at;
}

#define KEEP(r, name, index, entity) \
    keep(r, offsetof(core, name), offsetof(core, index), entity)

static bool put(retain *r, core_cold_kind kind, stock_id id, const uint8_t *end)
{
    if (r->cold->put(r->cold->context, kind, id, r->value,
                     (size_t)(end - r->value)) != 0) {
        r->code = STOCK_IO;
        return false;
    }
    r->moved++;
    return true;
}

static stock_id sku_id(const core *state, uint32_t sku)
{
    return core_entity_id(state, &state->skus, sku);
}

static bool put_line(retain *r, uint32_t entity)
{
    const core_line *line = core_pool_at(&r->old->lines, entity);
    stock_id none = {"", 0};
    stock_id order = line->order == CORE_NONE
                         ? none
                         : core_entity_id(r->old, &r->old->orders, line->order);
    uint8_t *at = core_put_id(r->value, order);
    at = core_put_id(at, sku_id(r->old, line->sku));
    at = core_put_u32(at, line->qty);
    at = core_put_u32(at, line->refunded);
    at = core_put_i64(at, line->time_us);
    at = core_put_i64(at, line->available_after);
    return put(r, CORE_COLD_LINE, core_entity_id(r->old, &r->old->lines, entity), at);
}

/* A line stays while it is young or the line of a hold in memory: a
 * replayed CONFIRM_ORDER reads its order's lines beside its holds. The
 * last step may move the hold; its line then leaves with the next move. */
static bool line_is_cold(const retain *r, uint32_t entity)
{
    const core_line *line = core_pool_at(&r->old->lines, entity);
    if (line->time_us >= r->cutoff_us)
        return false;
    stock_id id = core_entity_id(r->old, &r->old->lines, entity);
    return core_hold_find(r->old, id, core_hash(id)) == CORE_NONE;
}

static bool move_order(retain *r, uint32_t entity)
{
    const core_order *order = core_pool_at(&r->old->orders, entity);
    uint8_t *at = core_put_u8(r->value, (uint8_t)order->line_count);
    for (uint32_t i = 0; i < order->line_count; i++)
        at = core_put_id(at, core_entity_id(r->old, &r->old->lines, order->first_line + i));
    if (!put(r, CORE_COLD_ORDER, core_entity_id(r->old, &r->old->orders, entity), at))
        return false;
    for (uint32_t i = 0; i < order->line_count; i++)
        if (!put_line(r, order->first_line + i))
            return false;
    return true;
}

static bool keep_order(retain *r, uint32_t entity)
{
    const core_order *order = core_pool_at(&r->old->orders, entity);
    uint32_t kept = KEEP(r, orders, order_index, entity);
    if (kept == CORE_NONE)
        return false;
    r->order_map[entity] = kept;
    core_order *copy = core_pool_at(&r->hot->orders, kept);
    copy->first_line = r->hot->lines.count;
    for (uint32_t i = 0; i < order->line_count; i++) {
        uint32_t line = KEEP(r, lines, line_index, order->first_line + i);
        if (line == CORE_NONE)
            return false;
        r->line_map[order->first_line + i] = line;
        ((core_line *)core_pool_at(&r->hot->lines, line))->order = kept;
    }
    return true;
}

/* Grows map (CORE_NONE for the new entries) to count + 1 entries. */
static bool map_grow(uint32_t **map, uint32_t *mapped, uint32_t count)
{
    if (*mapped > count)
        return true;
    uint32_t *grown = realloc(*map, ((size_t)count + 1) * sizeof *grown);
    if (grown == NULL)
        return false;
    memset(grown + *mapped, 0xFF, ((size_t)count + 1 - *mapped) * sizeof *grown);
    *map = grown;
    *mapped = count + 1;
    return true;
}

/* The line or order at the line cursor (an order's lines, contiguous, go
 * or stay together, at its first line); returns the lines it took. */
static uint32_t move_line(retain *r)
{
    const core *old = r->old;
    uint32_t i = r->next_line;
    const core_line *line = core_pool_at(&old->lines, i);
    if (line->order != CORE_NONE) {
        const core_order *order = core_pool_at(&old->orders, line->order);
        assert(order->first_line == i);
        bool cold = true;
        for (uint32_t k = 0; cold && k < order->line_count; k++)
            cold = line_is_cold(r, i + k);
        if (cold ? !move_order(r, line->order) : !keep_order(r, line->order))
            return 0;
        return order->line_count;
    }
    if (line_is_cold(r, i))
        return put_line(r, i) ? 1 : 0;
    return (r->line_map[i] = KEEP(r, lines, line_index, i)) == CORE_NONE ? 0 : 1;
}

/* A refund made since the move began changed its line's refunded after a
 * step may have taken the line: its copy (hot, or in the cold store) takes
 * the count again. */
static bool refresh_line(retain *r, uint32_t line)
{
    uint32_t hot = r->line_map[line];
    if (hot == CORE_NONE)
        return put_line(r, line);
    ((core_line *)core_pool_at(&r->hot->lines, hot))->refunded =
        ((const core_line *)core_pool_at(&r->old->lines, line))->refunded;
    return true;
}

/* The refund at the refund cursor: it goes with its line, whose refunded
 * counts it. */
static bool move_refund(retain *r)
{
    const core *old = r->old;
    uint32_t i = r->next_refund;
    const core_refund *refund = core_pool_at(&old->refunds, i);
    assert(refund->line < r->next_line);
    if (i >= r->refunds_before && !refresh_line(r, refund->line))
        return false;
    uint32_t line = r->line_map[refund->line];
    if (line == CORE_NONE) {
        uint8_t *at = core_put_id(r->value, core_entity_id(old, &old->lines, refund->line));
        at = core_put_u32(at, refund->qty);
        at = core_put_i64(at, refund->available_after);
        return put(r, CORE_COLD_REFUND, core_entity_id(old, &old->refunds, i), at);
    }
    uint32_t kept = KEEP(r, refunds, refund_index, i);
    if (kept == CORE_NONE)
        return false;
    ((core_refund *)core_pool_at(&r->hot->refunds, kept))->line = line;
    return true;
}

static bool move_adjustment(retain *r)
{
    const core *old = r->old;
    uint32_t i = r->next_adjustment;
    if (i >= r->adjustments_cold)
        return KEEP(r, adjustments, adjustment_index, i) != CORE_NONE;
    const core_adjustment *adjustment = core_pool_at(&old->adjustments, i);
    uint8_t *at = core_put_id(r->value, sku_id(old, adjustment->sku));
    at = core_put_u32(at, (uint32_t)adjustment->delta);
    at = core_put_i64(at, adjustment->available_after);
    return put(r, CORE_COLD_ADJUSTMENT, core_entity_id(old, &old->adjustments, i), at);
}

/* Advances the cursors by up to budget entities: lines first (a refund
 * names a line the cursor has passed), then refunds, then adjustments.
 * False on a failure (r->code). */
static bool advance(retain *r, uint64_t budget)
{
    const core *old = r->old;
    if (!map_grow(&r->line_map, &r->lines_mapped, old->lines.count) ||
        !map_grow(&r->order_map, &r->orders_mapped, old->orders.count)) {
        r->code = STOCK_NOMEM;
        return false;
    }
    while (budget > 0 && r->next_line < old->lines.count) {
        uint32_t taken = move_line(r);
        if (taken == 0)
            return false;
        r->next_line += taken;
        budget -= taken < budget ? taken : budget;
    }
    for (; budget > 0 && r->next_line == old->lines.count &&
           r->next_refund < old->refunds.count; budget--, r->next_refund++)
        if (!move_refund(r))
            return false;
    for (; budget > 0 && r->next_adjustment < old->adjustments.count;
         budget--, r->next_adjustment++)
        if (!move_adjustment(r))
            return false;
    return true;
}

/* A closed hold leaves once its deadline is before the cutoff: nothing
 * changes it any more, only replays and reads name it. A HELD hold stays
 * for its deadline, even past it until its expiry is decided. */
static bool hold_is_cold(const retain *r, const core_hold *hold)
{
    return hold->state != STOCK_HOLD_HELD && hold->deadline_us < r->cutoff_us;
}

static bool put_hold(retain *r, uint32_t entity)
{
    const core_hold *hold = core_pool_at(&r->old->holds, entity);
    stock_id none = {"", 0};
    stock_id order = hold->order == CORE_NONE
                         ? none
                         : core_entity_id(r->old, &r->old->orders, hold->order);
    uint8_t *at = core_put_id(r->value, sku_id(r->old, hold->sku));
    at = core_put_id(at, order);
    at = core_put_u8(at, hold->state);
    at = core_put_u32(at, hold->qty);
    at = core_put_u32(at, hold->confirmed);
    at = core_put_i64(at, hold->time_us);
    at = core_put_i64(at, hold->deadline_us);
    at = core_put_i64(at, hold->available_after);
    at = core_put_i64(at, hold->closed_available);
    return put(r, CORE_COLD_HOLD, core_entity_id(r->old, &r->old->holds, entity), at);
}

/* SKUs stay, all of them, at the same indices; holds stay unless cold. */
static bool keep_skus_and_holds(retain *r)
{
    const core *old = r->old;
    for (uint32_t i = 0; i < old->skus.count; i++)
        if (KEEP(r, skus, sku_index, i) == CORE_NONE)
            return false;
    if (!core_heap_reserve(&r->hot->deadlines, old->deadlines.count)) {
        r->code = STOCK_NOMEM;
        return false;
    }
    for (uint32_t i = 0; i < old->holds.count; i++) {
        if (hold_is_cold(r, core_pool_at(&old->holds, i))) {
            if (!put_hold(r, i))
                return false;
            continue;
        }
        uint32_t kept = KEEP(r, holds, hold_index, i);
        if (kept == CORE_NONE)
            return false;
        core_hold *hold = core_pool_at(&r->hot->holds, kept);
        if (hold->order != CORE_NONE) {
            hold->order = r->order_map[hold->order];
            assert(hold->order != CORE_NONE);
        }
        if (hold->state == STOCK_HOLD_HELD)
            core_heap_push(&r->hot->deadlines, hold->deadline_us, kept);
    }
    r->hot->hold_totals = old->hold_totals;
    r->hot->clock_us = old->clock_us;
    return true;
}

/* The marks still ahead of the cutoff, shifted by the adjustments that
 * left, then a new one for now. */
static void carry_marks(retain *r)
{
    const core *old = r->old;
    core *hot = r->hot;
    for (uint32_t i = 0; i < old->mark_count; i++) {
        core_mark mark = old->marks[i];
        if (mark.time_us <= r->cutoff_us)
            continue;
        mark.adjustments -= r->adjustments_cold;
        hot->marks[hot->mark_count++] = mark;
    }
    if (hot->mark_count == CORE_MARKS_MAX) {
        memmove(hot->marks, hot->marks + 1, (CORE_MARKS_MAX - 1) * sizeof hot->marks[0]);
        hot->mark_count--;
    }
    hot->marks[hot->mark_count++] = (core_mark){old->clock_us, hot->adjustments.count};
}

/* Lines, refunds and adjustments in the old state. */
static uint64_t made(const core *old)
{
    return (uint64_t)old->lines.count + old->refunds.count + old->adjustments.count;
}

core_retain_job *core_retain_begin(const core *state, int64_t cutoff_us,
                                   const core_cold *cold)
{
    assert(state != NULL && cold != NULL);
    retain *r = calloc(1, sizeof *r);
    core *hot = core_create();
    if (r == NULL || hot == NULL) {
        free(r);
        core_destroy(hot);
        return NULL;
    }
    *r = (retain){.old = state, .hot = hot, .cold = cold, .cutoff_us = cutoff_us,
                  .refunds_before = state->refunds.count, .made_at_step = made(state),
                  .code = STOCK_OK};
    for (uint32_t i = 0; i < state->mark_count; i++)
        if (state->marks[i].time_us <= cutoff_us)
            r->adjustments_cold = state->marks[i].adjustments;
    return r;
}

bool core_retain_step(core_retain_job *job, uint64_t budget, uint64_t budget_max,
                      stock_code *code)
{
    assert(job != NULL && budget > 0 && budget <= budget_max && job->code == STOCK_OK);
    const core *old = job->old;
    /* Twice what ops made since the last step: the cursors gain at least
     * that much on the pools each step, so the move ends however fast ops
     * come (unless budget_max stops it). */
    uint64_t now = made(old), extra = 2 * (now - job->made_at_step);
    budget = extra >= budget_max - budget ? budget_max : budget + extra;
    job->made_at_step = now;
    *code = advance(job, budget) ? STOCK_OK : job->code;
    return *code == STOCK_OK && job->next_line == old->lines.count &&
           job->next_refund == old->refunds.count &&
           job->next_adjustment == old->adjustments.count;
}

uint64_t core_retain_moved(const core_retain_job *job)
{
    return job->moved;
}

uint64_t core_retain_left(const core_retain_job *job)
{
    uint64_t taken = (uint64_t)job->next_line + job->next_refund + job->next_adjustment;
    assert(taken <= made(job->old));
    return made(job->old) - taken;
}

core *core_retain_finish(core_retain_job *job, stock_code *code)
{
    assert(job != NULL && job->code == STOCK_OK);
    bool ok = advance(job, UINT64_MAX) && keep_skus_and_holds(job);
    *code = job->code;
    if (!ok)
        return NULL;
    carry_marks(job);
    core *hot = job->hot;
    job->hot = NULL;
    return hot;
}

void core_retain_free(core_retain_job *job)
{
    if (job == NULL)
        return;
    core_destroy(job->hot);
    free(job->line_map);
    free(job->order_map);
    free(job);
}

/* ------------------------------------------------------------------ thaw */

typedef struct thaw {
    core *state;
    const core_cold *cold;
    char *message;
    size_t message_size;
    /* The first id found forgotten (an empty value), if any. */
    bool forgotten;
    core_cold_kind forgotten_kind;
    char forgotten_id[STOCK_ID_MAX];
    uint32_t forgotten_len;
    uint8_t value[CORE_COLD_VALUE_MAX];
    uint8_t line_value[CORE_COLD_VALUE_MAX];
    uint8_t hold_value[CORE_COLD_VALUE_MAX];
} thaw;

static stock_code thaw_fail(thaw *t, stock_code code, const char *what, stock_id id)
{
    message_set(t->message, t->message_size, "%s cold %s %.*s",
                code == STOCK_IO ? "cannot read" : code == STOCK_NOMEM
                    ? "out of memory thawing" : "damaged value of",
                what, (int)id.len, id.ptr);
    return code;
}

/* 1 found (value in buffer, *len), 0 absent or forgotten (noted in t),
 * else the failure's code negated. */
static int thaw_get(thaw *t, core_cold_kind kind, stock_id id, uint8_t *buffer,
                    size_t *len, const char *what)
{
    int found = t->cold->get(t->cold->context, kind, id, buffer, len);
    if (found < 0)
        return -(int)thaw_fail(t, STOCK_IO, what, id);
    if (found == 1 && *len == 0) {
        if (!t->forgotten) {
            t->forgotten = true;
            t->forgotten_kind = kind;
            memcpy(t->forgotten_id, id.ptr, id.len);
            t->forgotten_len = id.len;
        }
        return 0;
    }
    return found;
}

/* Whether id must be thawed: it is not in memory (index over pool) and the
 * cold store has it (its value then in buffer, *len). Else *code says why
 * not: STOCK_OK (in memory, absent, or forgotten) or a failure. */
static bool cold_value(thaw *t, const core_index *index, const core_pool *pool,
                       core_cold_kind kind, stock_id id, const char *what,
                       uint8_t *buffer, size_t *len, stock_code *code)
{
    *code = STOCK_OK;
    if (core_index_find(index, pool, &t->state->ids, core_hash(id), id) != CORE_NONE)
        return false;
    int found = thaw_get(t, kind, id, buffer, len, what);
    if (found <= 0)
        *code = (stock_code)-found;
    return found > 0;
}

typedef struct cold_line {
    stock_id order, sku;
    uint32_t qty, refunded;
    int64_t time_us, available_after;
} cold_line;

static bool decode_line(const uint8_t *value, size_t len, cold_line *out)
{
    core_reader reader = core_reader_make(value, len);
    out->order = core_get_id(&reader);
    out->sku = core_get_id(&reader);
    out->qty = core_get_u32(&reader);
    out->refunded = core_get_u32(&reader);
    out->time_us = core_get_i64(&reader);
    out->available_after = core_get_i64(&reader);
    return reader.ok && reader.at == reader.end && out->sku.len > 0 &&
           out->qty >= 1 && out->refunded <= out->qty;
}

/* Appends a decoded line (room reserved); false if its SKU is unknown. */
static bool line_put(thaw *t, stock_id id, const cold_line *line, uint32_t order)
{
    core *state = t->state;
    uint32_t sku = core_sku_find(state, line->sku, NULL);
    if (sku == CORE_NONE)
        return false;
    uint32_t entity = core_entity_add(state, &state->lines, &state->line_index,
                                      core_hash(id), id);
    core_line *to = core_pool_at(&state->lines, entity);
    *to = (core_line){to->id, line->time_us, line->available_after, sku,
                      line->qty, line->refunded, order};
    return true;
}

static stock_code thaw_order(thaw *t, stock_id id)
{
    core *state = t->state;
    size_t len;
    stock_code code;
    if (!cold_value(t, &state->order_index, &state->orders, CORE_COLD_ORDER, id, "order",
                    t->value, &len, &code))
        return code;
    core_reader reader = core_reader_make(t->value, len);
    uint32_t count = core_get_u8(&reader);
    stock_id lines[STOCK_ORDER_LINES_MAX];
    uint32_t id_bytes = id.len;
    for (uint32_t i = 0; i < count && i < STOCK_ORDER_LINES_MAX; i++) {
        lines[i] = core_get_id(&reader);
        id_bytes += lines[i].len;
    }
    if (!reader.ok || reader.at != reader.end || count == 0 || count > STOCK_ORDER_LINES_MAX)
        return thaw_fail(t, STOCK_CORRUPT, "order", id);
    if (!core_reserve_entities(state, &state->orders, &state->order_index, 1, id_bytes) ||
        !core_reserve_entities(state, &state->lines, &state->line_index, count, id_bytes))
        return thaw_fail(t, STOCK_NOMEM, "order", id);
    uint32_t entity = core_entity_add(state, &state->orders, &state->order_index,
                                      core_hash(id), id);
    core_order *order = core_pool_at(&state->orders, entity);
    order->first_line = state->lines.count;
    order->line_count = count;
    /* Lines went cold with their order, so none of them is in memory, and
     * the line values are read one by one into their own buffer (the
     * order's ids point into t->value). */
    for (uint32_t i = 0; i < count; i++) {
        cold_line line;
        int found = thaw_get(t, CORE_COLD_LINE, lines[i], t->line_value, &len, "line");
        if (found < 0)
            return (stock_code)-found;
        if (found == 0 || !decode_line(t->line_value, len, &line) ||
            !id_equal(line.order, id) ||
            core_index_find(&state->line_index, &state->lines, &state->ids,
                            core_hash(lines[i]), lines[i]) != CORE_NONE ||
            !line_put(t, lines[i], &line, entity))
            return thaw_fail(t, STOCK_CORRUPT, "line", lines[i]);
    }
    return STOCK_OK;
}

static stock_code thaw_line(thaw *t, stock_id id)
{
    core *state = t->state;
    size_t len;
    stock_code code;
    if (!cold_value(t, &state->line_index, &state->lines, CORE_COLD_LINE, id, "line",
                    t->line_value, &len, &code))
        return code;
    cold_line line;
    if (!decode_line(t->line_value, len, &line))
        return thaw_fail(t, STOCK_CORRUPT, "line", id);
    if (line.order.len > 0) {
        /* The order's id is read again with it: copy it off the buffer. */
        char order_id[STOCK_ID_MAX];
        memcpy(order_id, line.order.ptr, line.order.len);
        stock_id order = {order_id, line.order.len};
        return thaw_order(t, order);
    }
    if (!core_reserve_entities(state, &state->lines, &state->line_index, 1, id.len))
        return thaw_fail(t, STOCK_NOMEM, "line", id);
    if (!line_put(t, id, &line, CORE_NONE))
        return thaw_fail(t, STOCK_CORRUPT, "line", id);
    return STOCK_OK;
}

static stock_code thaw_refund(thaw *t, stock_id id)
{
    core *state = t->state;
    size_t len;
    stock_code code;
    if (!cold_value(t, &state->refund_index, &state->refunds, CORE_COLD_REFUND, id, "refund",
                    t->value, &len, &code))
        return code;
    core_reader reader = core_reader_make(t->value, len);
    stock_id line_ref = core_get_id(&reader);
    uint32_t qty = core_get_u32(&reader);
    int64_t available_after = core_get_i64(&reader);
    if (!reader.ok || reader.at != reader.end || line_ref.len == 0 || qty == 0)
        return thaw_fail(t, STOCK_CORRUPT, "refund", id);
    char line_id[STOCK_ID_MAX];
    memcpy(line_id, line_ref.ptr, line_ref.len);
    stock_id line_name = {line_id, line_ref.len};
    code = thaw_line(t, line_name);
    if (code != STOCK_OK)
        return code;
    uint32_t line = core_index_find(&state->line_index, &state->lines, &state->ids,
                                    core_hash(line_name), line_name);
    if (line == CORE_NONE)
        return thaw_fail(t, STOCK_CORRUPT, "refund", id);
    if (!core_reserve_entities(state, &state->refunds, &state->refund_index, 1, id.len))
        return thaw_fail(t, STOCK_NOMEM, "refund", id);
    uint32_t entity = core_entity_add(state, &state->refunds, &state->refund_index,
                                      core_hash(id), id);
    core_refund *refund = core_pool_at(&state->refunds, entity);
    refund->line = line;
    refund->qty = qty;
    refund->available_after = available_after;
    return STOCK_OK;
}

static stock_code thaw_adjustment(thaw *t, stock_id id)
{
    core *state = t->state;
    size_t len;
    stock_code code;
    if (!cold_value(t, &state->adjustment_index, &state->adjustments, CORE_COLD_ADJUSTMENT, id,
                    "adjustment", t->value, &len, &code))
        return code;
    core_reader reader = core_reader_make(t->value, len);
    stock_id sku_name = core_get_id(&reader);
    int32_t delta = (int32_t)core_get_u32(&reader);
    int64_t available_after = core_get_i64(&reader);
    uint32_t sku = reader.ok && reader.at == reader.end && sku_name.len > 0
                       ? core_sku_find(state, sku_name, NULL)
                       : CORE_NONE;
    if (sku == CORE_NONE || delta == 0)
        return thaw_fail(t, STOCK_CORRUPT, "adjustment", id);
    if (!core_reserve_entities(state, &state->adjustments, &state->adjustment_index, 1, id.len))
        return thaw_fail(t, STOCK_NOMEM, "adjustment", id);
    uint32_t entity = core_entity_add(state, &state->adjustments, &state->adjustment_index,
                                      core_hash(id), id);
    core_adjustment *adjustment = core_pool_at(&state->adjustments, entity);
    adjustment->sku = sku;
    adjustment->delta = delta;
    adjustment->available_after = available_after;
    return STOCK_OK;
}

typedef struct cold_hold {
    stock_id sku, order;
    uint8_t state;
    uint32_t qty, confirmed;
    int64_t time_us, deadline_us, available_after, closed_available;
} cold_hold;

static bool decode_hold(const uint8_t *value, size_t len, cold_hold *out)
{
    core_reader reader = core_reader_make(value, len);
    out->sku = core_get_id(&reader);
    out->order = core_get_id(&reader);
    out->state = core_get_u8(&reader);
    out->qty = core_get_u32(&reader);
    out->confirmed = core_get_u32(&reader);
    out->time_us = core_get_i64(&reader);
    out->deadline_us = core_get_i64(&reader);
    out->available_after = core_get_i64(&reader);
    out->closed_available = core_get_i64(&reader);
    return reader.ok && reader.at == reader.end && out->sku.len > 0 &&
           out->state > STOCK_HOLD_HELD && out->state <= STOCK_HOLD_EXPIRED &&
           out->qty >= 1 && out->confirmed <= out->qty;
}

/* Brings a closed hold back, and the CONFIRM_ORDER order it belongs to
 * (whose index the hold keeps). It is closed, so it joins no deadline
 * queue and no total. */
static stock_code thaw_hold(thaw *t, stock_id id)
{
    core *state = t->state;
    size_t len;
    stock_code code;
    if (!cold_value(t, &state->hold_index, &state->holds, CORE_COLD_HOLD, id, "hold",
                    t->hold_value, &len, &code))
        return code;
    cold_hold cold;
    if (!decode_hold(t->hold_value, len, &cold))
        return thaw_fail(t, STOCK_CORRUPT, "hold", id);
    uint32_t sku = core_sku_find(state, cold.sku, NULL);
    if (sku == CORE_NONE)
        return thaw_fail(t, STOCK_CORRUPT, "hold", id);
    uint32_t order = CORE_NONE;
    if (cold.order.len > 0) {
        code = thaw_order(t, cold.order);
        if (code != STOCK_OK)
            return code;
        order = core_index_find(&state->order_index, &state->orders, &state->ids,
                                core_hash(cold.order), cold.order);
        /* A hold thawed and moved again outlives its order in the cold
         * store: once the order is forgotten, the hold answers without it
         * (a replay of the order itself answers as forgotten). */
        if (order == CORE_NONE && !t->forgotten)
            return thaw_fail(t, STOCK_CORRUPT, "hold", id);
    }
    if (!core_reserve_entities(state, &state->holds, &state->hold_index, 1, id.len))
        return thaw_fail(t, STOCK_NOMEM, "hold", id);
    uint32_t entity = core_entity_add(state, &state->holds, &state->hold_index,
                                      core_hash(id), id);
    core_hold *hold = core_pool_at(&state->holds, entity);
    *hold = (core_hold){hold->id, cold.time_us, cold.deadline_us, cold.available_after,
                        cold.closed_available, sku, cold.qty, cold.confirmed, order,
                        cold.state};
    return STOCK_OK;
}

/* The id of a new line or hold, which may name a hold or a line (a
 * hold's id is its line's): a hold decides the answer (a replay of HOLD,
 * else CONFLICT), so the line is thawed only when no hold has the id,
 * and a forgotten hold is the one noted. */
static stock_code thaw_hold_or_line(thaw *t, stock_id id)
{
    stock_code code = thaw_hold(t, id);
    if (code != STOCK_OK || core_hold_find(t->state, id, core_hash(id)) != CORE_NONE)
        return code;
    return thaw_line(t, id);
}

static stock_code thaw_op(thaw *t, const stock_op *op)
{
    stock_code code = STOCK_OK;
    switch (op->type) {
    case STOCK_OP_DEDUCT:
    case STOCK_OP_HOLD:
        return thaw_hold_or_line(t, op->id);
    case STOCK_OP_LINE:
        return thaw_line(t, op->line);
    case STOCK_OP_REFUND:
        code = thaw_refund(t, op->id);
        return code == STOCK_OK ? thaw_line(t, op->line) : code;
    case STOCK_OP_ADD:
        return op->id.len > 0 ? thaw_adjustment(t, op->id) : STOCK_OK;
    case STOCK_OP_ORDER:
        code = thaw_order(t, op->id);
        for (uint32_t i = 0; code == STOCK_OK && i < op->line_count; i++)
            code = thaw_hold_or_line(t, op->lines[i].line_id);
        return code;
    case STOCK_OP_CONFIRM_ORDER:
        code = thaw_order(t, op->id);
        for (uint32_t i = 0; code == STOCK_OK && i < op->line_count; i++)
            code = thaw_hold(t, op->lines[i].line_id);
        return code;
    case STOCK_OP_CONFIRM:
    case STOCK_OP_RELEASE:
    case STOCK_OP_HOLD_GET:
        return thaw_hold(t, op->id);
    case STOCK_OP_SET:
    case STOCK_OP_GET:
        return STOCK_OK;
    }
    return STOCK_OK;
}

/* The kind of the op's own id, the one a replay is found by. */
static bool own_id(const stock_op *op, core_cold_kind kind)
{
    switch (op->type) {
    case STOCK_OP_DEDUCT: return kind == CORE_COLD_LINE;
    case STOCK_OP_ORDER:
    case STOCK_OP_CONFIRM_ORDER: return kind == CORE_COLD_ORDER;
    case STOCK_OP_REFUND: return kind == CORE_COLD_REFUND;
    case STOCK_OP_ADD: return kind == CORE_COLD_ADJUSTMENT;
    case STOCK_OP_HOLD: return kind == CORE_COLD_HOLD;
    default: return false;
    }
}

/* Answers an op that names what the cold store forgot (docs/engine.md,
 * "Retention"): its own id took effect once, so it is a REPLAY whose
 * original result is gone (available -1); a forgotten line can no longer
 * be read or refunded, and its id can be taken by nothing else. */
static void answer_forgotten(const thaw *t, stock_op *op)
{
    stock_id id = {t->forgotten_id, t->forgotten_len};
    if (own_id(op, t->forgotten_kind) && id_equal(id, op->id)) {
        op->code = STOCK_REPLAY;
        op->available = -1;
        for (uint32_t i = 0; op->type != STOCK_OP_ADD && op->type != STOCK_OP_DEDUCT &&
                             op->type != STOCK_OP_REFUND && i < op->line_count; i++)
            op->lines[i].available = -1;
    } else if (t->forgotten_kind == CORE_COLD_HOLD && op->type == STOCK_OP_HOLD_GET) {
        result_hold_forgotten(op, STOCK_NOT_FOUND, id);
    } else if (t->forgotten_kind == CORE_COLD_HOLD && (op->type == STOCK_OP_CONFIRM ||
                                                       op->type == STOCK_OP_RELEASE)) {
        result_hold_forgotten(op, STOCK_CLOSED, id);
    } else if (t->forgotten_kind == CORE_COLD_HOLD && op->type == STOCK_OP_CONFIRM_ORDER) {
        for (uint32_t i = 0; i < op->line_count; i++)
            if (id_equal(op->lines[i].line_id, id))
                op->failed_line = (int32_t)i;
        result_hold_forgotten(op, STOCK_CLOSED, id);
    } else if (op->type == STOCK_OP_LINE) {
        result_forgotten(op, STOCK_NOT_FOUND, id);
    } else if (op->type == STOCK_OP_REFUND) {
        result_forgotten(op, STOCK_EXCEEDS, id);
    } else {
        result_conflict(op, "line", id);
    }
}

stock_code core_thaw_op(core *state, stock_op *op, const core_cold *cold,
                        char *message, size_t message_size)
{
    assert(state != NULL && op != NULL && cold != NULL && op->code == STOCK_OK);
    thaw *t = malloc(sizeof *t);
    if (t == NULL)
        return STOCK_NOMEM;
    t->state = state;
    t->cold = cold;
    t->message = message;
    t->message_size = message_size;
    t->forgotten = false;
    stock_code code = thaw_op(t, op);
    if (code == STOCK_OK && t->forgotten)
        answer_forgotten(t, op);
    free(t);
    return code;
}

stock_code core_thaw_record(core *state, const uint8_t *record, size_t len,
                            const core_cold *cold, char *message,
                            size_t message_size)
{
    core_reader reader = core_reader_make(record, len);
    if (core_get_u8(&reader) != RECORD_REFUND)
        return STOCK_OK;
    core_get_id(&reader);
    stock_id line = core_get_id(&reader);
    if (!reader.ok || line.len == 0 || !stock_id_valid(line))
        return STOCK_OK;
    stock_op op = {.type = STOCK_OP_LINE, .line = line};
    stock_code code = core_thaw_op(state, &op, cold, message, message_size);
    /* The refund's line was forgotten after the refund was made: recovery
     * cannot replay it (the move that forgot it must have been taken back
     * first). */
    if (code == STOCK_OK && op.code != STOCK_OK) {
        message_set(message, message_size, "the cold store forgot line %.*s, which a "
                    "refund in the log names", (int)line.len, line.ptr);
        return STOCK_CORRUPT;
    }
    return code;
}
