/*
 * hold.c -- holds: stock taken from available until a deadline, then
 * confirmed into a line, released, or expired by the store (docs/semantics.md,
 * "Holds").
 *
 * A hold's state moves once, from HELD to CONFIRMED, RELEASED or EXPIRED.
 * Expiry is an event of the store's history like any other: an EXPIRE
 * record in the log, made either by core_expire (the applier's sweep at the
 * start of every group and the writer's when idle) or by the first op that
 * touches a HELD hold past its deadline. Whichever comes first moves the
 * state; the other then finds the hold EXPIRED, so a hold expires once.
 * Replay re-applies the EXPIRE records and never decides an expiry itself:
 * recovery and a replica reach the same state whatever their clocks say.
 *
 * Records (layout in record.c's words; id = 1 length byte + bytes):
 *   HOLD           type | id hold | id sku | u32 qty | i64 ttl_ms |
 *                  i64 time_us | i64 available
 *   CONFIRM        type | id hold | u32 qty | i64 time_us | i64 available
 *   RELEASE        type | id hold | i64 available
 *   CONFIRM_ORDER  type | id order | i64 time_us | u8 count |
 *                  count x (id hold | u32 qty | i64 available)
 *   EXPIRE         type | i64 time_us | u32 count | count x id hold
 * A CONFIRM's qty is the one it confirmed (never 0), so that its replay
 * needs no hold to resolve it.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "core/core_internal.h"
#include "core/record_types.h"
#include "lib/message.h"
#include "lib/result.h"

#define US_PER_MS 1000
/* Fixed bytes of one CONFIRM_ORDER line besides its id: qty, available. */
#define CONFIRM_LINE_FIXED_BYTES (4 + 8)

/* ------------------------------------------------------------------ heap */

bool core_heap_reserve(core_heap *heap, uint32_t extra)
{
    if (heap->capacity - heap->count >= extra)
        return true;
    uint64_t wanted = (uint64_t)heap->count + extra;
    uint64_t capacity = heap->capacity == 0 ? 64 : heap->capacity;
    while (capacity < wanted)
        capacity *= 2;
    if (capacity > CORE_ENTITY_MAX)
        return false;
    core_deadline *items = realloc(heap->items, capacity * sizeof *items);
    if (items == NULL)
        return false;
    heap->items = items;
    heap->capacity = (uint32_t)capacity;
    return true;
}

void core_heap_free(core_heap *heap)
{
    free(heap->items);
    *heap = (core_heap){0};
}

static bool deadline_before(core_deadline a, core_deadline b)
{
    return a.deadline_us < b.deadline_us ||
           (a.deadline_us == b.deadline_us && a.hold < b.hold);
}

void core_heap_push(core_heap *heap, int64_t deadline_us, uint32_t hold)
{
    assert(heap->count < heap->capacity);
    core_deadline item = {deadline_us, hold};
    uint32_t at = heap->count++;
    while (at > 0 && deadline_before(item, heap->items[(at - 1) / 2])) {
        heap->items[at] = heap->items[(at - 1) / 2];
        at = (at - 1) / 2;
    }
    heap->items[at] = item;
}

static void heap_pop(core_heap *heap)
{
    assert(heap->count > 0);
    core_deadline last = heap->items[--heap->count];
    uint32_t at = 0;
    for (;;) {
        uint32_t child = 2 * at + 1;
        if (child >= heap->count)
            break;
        if (child + 1 < heap->count &&
            deadline_before(heap->items[child + 1], heap->items[child]))
            child++;
        if (!deadline_before(heap->items[child], last))
            break;
        heap->items[at] = heap->items[child];
        at = child;
    }
    if (heap->count > 0)
        heap->items[at] = last;
}

int64_t core_next_deadline(const core *state)
{
    assert(state != NULL);
    return state->deadlines.count == 0 ? INT64_MAX
                                       : state->deadlines.items[0].deadline_us;
}

int64_t core_time(const core *state, int64_t now_us)
{
    return now_us > state->clock_us ? now_us : state->clock_us;
}

void core_clock_advance(core *state, int64_t time_us)
{
    if (time_us > state->clock_us)
        state->clock_us = time_us;
}

/* ------------------------------------------------------------- helpers */

uint32_t core_hold_find(const core *state, stock_id id, uint32_t hash)
{
    return core_index_find(&state->hold_index, &state->holds, &state->ids,
                           hash, id);
}

static core_hold *hold_at(core *state, uint32_t entity)
{
    return core_pool_at(&state->holds, entity);
}

static bool hold_due(const core_hold *hold, int64_t time_us)
{
    return hold->state == STOCK_HOLD_HELD && hold->deadline_us <= time_us;
}

/* Moves a HELD hold to `to`, its units from held back to available (a
 * confirm then takes what it confirms as a line). */
static void hold_close(core *state, core_hold *hold, stock_hold_state to)
{
    assert(hold->state == STOCK_HOLD_HELD && to != STOCK_HOLD_HELD);
    core_sku *sku = core_pool_at(&state->skus, hold->sku);
    assert(sku->held >= hold->qty);
    sku->held -= hold->qty;
    core_sku_set_available(state, sku, sku->available + hold->qty);   /* available + held <= INT64_MAX (I2) */
    hold->state = (uint8_t)to;
    hold->closed_available = sku->available;
    core_hold_totals *totals = &state->hold_totals;
    assert(totals->outstanding > 0 && totals->held_units >= hold->qty);
    totals->outstanding--;
    totals->held_units -= hold->qty;
    totals->expiries += to == STOCK_HOLD_EXPIRED;
    totals->releases += to == STOCK_HOLD_RELEASED;
    totals->confirmations += to == STOCK_HOLD_CONFIRMED;
}

/* Size of an EXPIRE record naming count ids of up to STOCK_ID_MAX bytes. */
static size_t expire_record_max(uint32_t count)
{
    return 1 + 8 + 4 + (size_t)count * (1 + STOCK_ID_MAX);
}

/* An EXPIRE record being written: its count is patched at the end. */
typedef struct expire_writer {
    buf *record;
    size_t start;
    uint32_t count;
} expire_writer;

static bool expire_begin(core *state, expire_writer *out, buf *record,
                         int64_t time_us, uint32_t limit)
{
    if (!buf_reserve(record, expire_record_max(limit)))
        return false;
    out->record = record;
    out->start = record->len;
    out->count = 0;
    uint8_t *at = record->data + record->len;
    core_clock_advance(state, time_us);
    at = core_put_u8(at, RECORD_EXPIRE);
    at = core_put_i64(at, time_us);
    at = core_put_u32(at, 0);
    record->len = (size_t)(at - record->data);
    return true;
}

static void expire_add(core *state, expire_writer *out, uint32_t entity)
{
    core_hold *hold = hold_at(state, entity);
    hold_close(state, hold, STOCK_HOLD_EXPIRED);
    uint8_t *at = out->record->data + out->record->len;
    at = core_put_id(at, core_entity_id(state, &state->holds, entity));
    out->record->len = (size_t)(at - out->record->data);
    out->count++;
}

/* Patches the count, or takes the record back if it names no hold. */
static void expire_end(expire_writer *out)
{
    if (out->count == 0) {
        out->record->len = out->start;
        return;
    }
    le_put_u32(out->record->data + out->start + 1 + 8, out->count);
}

uint32_t core_expire(core *state, int64_t now_us, uint32_t limit, buf *record)
{
    assert(state != NULL && record != NULL);
    assert(limit >= 1 && limit <= CORE_EXPIRE_RECORD_MAX);
    core_heap *heap = &state->deadlines;
    if (heap->count == 0 || heap->items[0].deadline_us > now_us)
        return 0;
    expire_writer out;
    if (!expire_begin(state, &out, record, now_us, limit))
        return 0;
    while (out.count < limit && heap->count > 0 &&
           heap->items[0].deadline_us <= now_us) {
        uint32_t entity = heap->items[0].hold;
        heap_pop(heap);
        if (hold_at(state, entity)->state == STOCK_HOLD_HELD)
            expire_add(state, &out, entity);
    }
    expire_end(&out);
    return out.count;
}

/* An op touched due holds (entities[0..count)): expires them in one
 * EXPIRE record, or, in a replay, changes nothing (a logged op never
 * touched a due hold: the expiry came first). Returns whether it changed
 * state. */
static bool expire_touched(core *state, const uint32_t *entities,
                           uint32_t count, int64_t time_us, buf *record)
{
    assert(count >= 1 && count <= STOCK_ORDER_LINES_MAX);
    expire_writer out;
    if (record == NULL || !expire_begin(state, &out, record, time_us, count))
        return false;
    for (uint32_t i = 0; i < count; i++)
        expire_add(state, &out, entities[i]);
    expire_end(&out);
    return true;
}

/* Copies an id into a NUL-terminated field of STOCK_ID_MAX + 1 bytes. */
static void copy_id(char *target, stock_id id)
{
    assert(id.len <= STOCK_ID_MAX);
    memcpy(target, id.ptr, id.len);
    target[id.len] = '\0';
}

/* ------------------------------------------------------------------ hold */

static bool hold_again(core *state, stock_op *op, uint32_t entity)
{
    const core_hold *hold = hold_at(state, entity);
    stock_id sku = core_entity_id(state, &state->skus, hold->sku);
    if (hold->qty != op->amount || !id_equal(sku, op->sku) ||
        hold->deadline_us - hold->time_us != op->expect * US_PER_MS) {
        result_conflict(op, "hold", op->id);
        return false;
    }
    op->code = STOCK_REPLAY;
    op->available = hold->available_after;
    return false;
}

static size_t hold_record_size(const stock_op *op)
{
    return 1 + core_id_size(op->id) + core_id_size(op->sku) + 4 + 8 + 8 + 8;
}

static void hold_encode(const stock_op *op, int64_t time_us, buf *record)
{
    uint8_t *at = record->data + record->len;
    at = core_put_u8(at, RECORD_HOLD);
    at = core_put_id(at, op->id);
    at = core_put_id(at, op->sku);
    at = core_put_u32(at, (uint32_t)op->amount);
    at = core_put_i64(at, op->expect);
    at = core_put_i64(at, time_us);
    at = core_put_i64(at, op->available);
    assert((size_t)(at - record->data) == record->len + hold_record_size(op));
    record->len = (size_t)(at - record->data);
}

/* Room for a new hold: entity, id, heap slot and record. */
static bool hold_reserve(core *state, const stock_op *op, buf *record)
{
    return core_reserve_entities(state, &state->holds, &state->hold_index, 1,
                                 op->id.len) &&
           core_heap_reserve(&state->deadlines, 1) &&
           (record == NULL || buf_reserve(record, hold_record_size(op)));
}

static bool apply_hold(core *state, stock_op *op, int64_t time_us, buf *record)
{
    uint32_t hash = core_hash(op->id);
    uint32_t entity = core_hold_find(state, op->id, hash);
    if (entity != CORE_NONE)
        return hold_again(state, op, entity);
    /* The hold's line will take its id: no line may have it already. */
    if (core_index_find(&state->line_index, &state->lines, &state->ids,
                        core_hash(op->id), op->id) != CORE_NONE) {
        result_conflict(op, "hold", op->id);
        return false;
    }
    uint32_t sku_entity = core_sku_find(state, op->sku, NULL);
    if (sku_entity == CORE_NONE) {
        result_sku_not_found(op, op->sku);
        return false;
    }
    core_sku *sku = core_pool_at(&state->skus, sku_entity);
    if (sku->available < op->amount) {
        result_insufficient(op, op->sku, sku->available);
        return false;
    }
    if (!hold_reserve(state, op, record))
        return core_fail_nomem(op);
    entity = core_entity_add(state, &state->holds, &state->hold_index, hash, op->id);
    core_hold *hold = hold_at(state, entity);
    core_sku_set_available(state, sku, sku->available - op->amount);
    sku->held += op->amount;
    *hold = (core_hold){.id = hold->id, .time_us = time_us,
                        .deadline_us = time_us + op->expect * US_PER_MS,
                        .available_after = sku->available, .sku = sku_entity,
                        .qty = (uint32_t)op->amount, .order = CORE_NONE,
                        .state = STOCK_HOLD_HELD};
    core_heap_push(&state->deadlines, hold->deadline_us, entity);
    core_clock_advance(state, time_us);
    state->hold_totals.outstanding++;
    state->hold_totals.held_units += (uint64_t)op->amount;
    op->available = sku->available;
    if (record != NULL)
        hold_encode(op, time_us, record);
    return true;
}

/* ------------------------------------------------------ confirm, release */

/* The qty a CONFIRM asks of a hold: 0 is all of it. */
static int64_t confirm_qty(int64_t amount, const core_hold *hold)
{
    return amount == 0 ? hold->qty : amount;
}

/* Answers a CONFIRM or RELEASE of a hold that is no longer HELD. */
static void hold_closed(stock_op *op, const core_hold *hold)
{
    bool confirming = op->type == STOCK_OP_CONFIRM;
    stock_hold_state wanted = confirming ? STOCK_HOLD_CONFIRMED : STOCK_HOLD_RELEASED;
    if (hold->state == STOCK_HOLD_EXPIRED) {
        result_hold_expired(op, op->id);
    } else if (hold->state != wanted) {
        result_hold_closed(op, op->id, (stock_hold_state)hold->state);
    } else if (confirming && (hold->order != CORE_NONE ||
                              confirm_qty(op->amount, hold) != hold->confirmed)) {
        result_conflict(op, "hold", op->id);
    } else {
        op->code = STOCK_REPLAY;
        op->available = hold->closed_available;
    }
}

static size_t confirm_record_size(const stock_op *op)
{
    return 1 + core_id_size(op->id) + 4 + 8 + 8;
}

/* The hold a CONFIRM or RELEASE names, if it is HELD and in time; else
 * NULL with the op answered, and *changed set if answering expired it. */
static core_hold *hold_open(core *state, stock_op *op, int64_t time_us, buf *record,
                            bool *changed)
{
    *changed = false;
    uint32_t entity = core_hold_find(state, op->id, core_hash(op->id));
    if (entity == CORE_NONE) {
        result_hold_not_found(op, op->id);
        return NULL;
    }
    core_hold *hold = hold_at(state, entity);
    if (hold->state != STOCK_HOLD_HELD) {
        hold_closed(op, hold);
        return NULL;
    }
    if (hold_due(hold, time_us)) {
        result_hold_expired(op, op->id);
        *changed = expire_touched(state, &entity, 1, time_us, record);
        return NULL;
    }
    return hold;
}

static bool apply_confirm(core *state, stock_op *op, int64_t time_us, buf *record)
{
    bool changed;
    core_hold *hold = hold_open(state, op, time_us, record, &changed);
    if (hold == NULL)
        return changed;
    int64_t qty = confirm_qty(op->amount, hold);
    if (qty > hold->qty) {
        result_hold_exceeds(op, op->id, hold->qty);
        return false;
    }
    core_sku *sku = core_pool_at(&state->skus, hold->sku);
    if (sku->deducted > INT64_MAX - qty)
        return core_fail_overflow(op, core_entity_id(state, &state->skus, hold->sku));
    if (!core_reserve_entities(state, &state->lines, &state->line_index, 1, op->id.len) ||
        (record != NULL && !buf_reserve(record, confirm_record_size(op))))
        return core_fail_nomem(op);
    hold_close(state, hold, STOCK_HOLD_CONFIRMED);
    hold->confirmed = (uint32_t)qty;
    core_line_add(state, op->id, core_hash(op->id), hold->sku, qty, CORE_NONE, time_us);
    hold->closed_available = sku->available;
    op->available = sku->available;
    if (record != NULL) {
        uint8_t *at = record->data + record->len;
        at = core_put_u8(at, RECORD_CONFIRM);
        at = core_put_id(at, op->id);
        at = core_put_u32(at, (uint32_t)qty);
        at = core_put_i64(at, time_us);
        at = core_put_i64(at, op->available);
        record->len = (size_t)(at - record->data);
    }
    return true;
}

static bool apply_release(core *state, stock_op *op, int64_t time_us, buf *record)
{
    bool changed;
    core_hold *hold = hold_open(state, op, time_us, record, &changed);
    if (hold == NULL)
        return changed;
    size_t size = 1 + core_id_size(op->id) + 8;
    if (record != NULL && !buf_reserve(record, size))
        return core_fail_nomem(op);
    hold_close(state, hold, STOCK_HOLD_RELEASED);
    op->available = hold->closed_available;
    if (record != NULL) {
        uint8_t *at = record->data + record->len;
        at = core_put_u8(at, RECORD_RELEASE);
        at = core_put_id(at, op->id);
        at = core_put_i64(at, op->available);
        record->len = (size_t)(at - record->data);
    }
    return true;
}

/* ----------------------------------------------------------------- read */

static bool apply_hold_get(core *state, stock_op *op, int64_t time_us, buf *record)
{
    uint32_t entity = core_hold_find(state, op->id, core_hash(op->id));
    if (entity == CORE_NONE) {
        result_hold_not_found(op, op->id);
        return false;
    }
    core_hold *hold = hold_at(state, entity);
    bool changed = false;
    /* A read that would show a hold HELD past its deadline expires it. */
    if (hold_due(hold, time_us))
        changed = expire_touched(state, &entity, 1, time_us, record);
    stock_hold_info *info = &op->info.hold_info;
    copy_id(info->sku, core_entity_id(state, &state->skus, hold->sku));
    info->order_id[0] = '\0';
    if (hold->order != CORE_NONE)
        copy_id(info->order_id, core_entity_id(state, &state->orders, hold->order));
    info->state = (stock_hold_state)hold->state;
    info->qty = hold->qty;
    info->confirmed = hold->confirmed;
    info->time_us = hold->time_us;
    info->deadline_us = hold->deadline_us;
    return changed;
}

/* -------------------------------------------------------- confirm order */

/* What the checks of a CONFIRM_ORDER learn, kept for the mutation. */
typedef struct confirm_scratch {
    uint32_t hold[STOCK_ORDER_LINES_MAX];
    int64_t qty[STOCK_ORDER_LINES_MAX];
    uint32_t due[STOCK_ORDER_LINES_MAX];
    uint32_t due_count;
} confirm_scratch;

/* An order id already used: a replay if it confirmed exactly these holds
 * with these quantities, else a conflict. */
static bool confirm_order_again(core *state, stock_op *op, uint32_t entity)
{
    const core_order *order = core_pool_at(&state->orders, entity);
    bool same = order->line_count == op->line_count;
    for (uint32_t i = 0; same && i < op->line_count; i++) {
        const stock_order_line *wanted = &op->lines[i];
        uint32_t hold_entity = core_hold_find(state, wanted->line_id,
                                              core_hash(wanted->line_id));
        const core_line *line = core_pool_at(&state->lines, order->first_line + i);
        same = hold_entity != CORE_NONE &&
               hold_at(state, hold_entity)->order == entity &&
               confirm_qty(wanted->qty, hold_at(state, hold_entity)) == line->qty &&
               id_equal(core_entity_id(state, &state->lines, order->first_line + i),
                        wanted->line_id);
    }
    if (!same) {
        result_conflict(op, "order", op->id);
        return false;
    }
    for (uint32_t i = 0; i < op->line_count; i++)
        op->lines[i].available =
            ((const core_line *)core_pool_at(&state->lines, order->first_line + i))
                ->available_after;
    op->code = STOCK_REPLAY;
    return false;
}

/* Checks line i; false with op's result set if it cannot be confirmed (a
 * due hold is only noted: every due hold of the order is expired). */
static bool confirm_line_check(core *state, stock_op *op, uint32_t i,
                               int64_t time_us, confirm_scratch *scratch)
{
    const stock_order_line *line = &op->lines[i];
    uint32_t entity = core_hold_find(state, line->line_id, core_hash(line->line_id));
    scratch->hold[i] = entity;
    if (entity == CORE_NONE) {
        result_hold_not_found(op, line->line_id);
        return false;
    }
    const core_hold *hold = hold_at(state, entity);
    if (hold_due(hold, time_us)) {
        scratch->due[scratch->due_count++] = entity;
        result_hold_expired(op, line->line_id);
        return false;
    }
    if (hold->state == STOCK_HOLD_EXPIRED) {
        result_hold_expired(op, line->line_id);
        return false;
    }
    if (hold->state != STOCK_HOLD_HELD) {
        result_hold_closed(op, line->line_id, (stock_hold_state)hold->state);
        return false;
    }
    scratch->qty[i] = line->qty == 0 ? hold->qty : line->qty;
    if (scratch->qty[i] > hold->qty) {
        result_hold_exceeds(op, line->line_id, hold->qty);
        return false;
    }
    const core_sku *sku = core_pool_at(&state->skus, hold->sku);
    if (sku->deducted > INT64_MAX - (int64_t)STOCK_ORDER_LINES_MAX * STOCK_QTY_MAX)
        return core_fail_overflow(op, core_entity_id(state, &state->skus, hold->sku));
    return true;
}

/* Walks every line; the first failure is the op's result, and every due
 * hold is noted. True if all can be confirmed. */
static bool confirm_order_check(core *state, stock_op *op, int64_t time_us,
                                confirm_scratch *scratch)
{
    scratch->due_count = 0;
    bool ok = true;
    stock_op first = {0};
    for (uint32_t i = 0; i < op->line_count; i++) {
        stock_op probe = *op;
        probe.code = STOCK_OK;
        if (confirm_line_check(state, &probe, i, time_us, scratch) || !ok)
            continue;
        ok = false;
        first = probe;
        first.failed_line = (int32_t)i;
    }
    if (!ok) {
        op->code = first.code;
        op->failed_line = first.failed_line;
        op->available = first.available;
        memcpy(op->message, first.message, sizeof op->message);
    }
    return ok;
}

static size_t confirm_order_record_size(const stock_op *op)
{
    size_t size = 1 + core_id_size(op->id) + 8 + 1;
    for (uint32_t i = 0; i < op->line_count; i++)
        size += core_id_size(op->lines[i].line_id) + CONFIRM_LINE_FIXED_BYTES;
    return size;
}

static void confirm_order_encode(const stock_op *op, const confirm_scratch *scratch,
                                 int64_t time_us, buf *record)
{
    uint8_t *at = record->data + record->len;
    at = core_put_u8(at, RECORD_CONFIRM_ORDER);
    at = core_put_id(at, op->id);
    at = core_put_i64(at, time_us);
    at = core_put_u8(at, (uint8_t)op->line_count);
    for (uint32_t i = 0; i < op->line_count; i++) {
        at = core_put_id(at, op->lines[i].line_id);
        at = core_put_u32(at, (uint32_t)scratch->qty[i]);
        at = core_put_i64(at, op->lines[i].available);
    }
    record->len = (size_t)(at - record->data);
}

static bool apply_confirm_order(core *state, stock_op *op, int64_t time_us,
                                buf *record)
{
    assert(op->line_count >= 1 && op->line_count <= STOCK_ORDER_LINES_MAX);
    uint32_t hash = core_hash(op->id);
    uint32_t entity = core_index_find(&state->order_index, &state->orders,
                                      &state->ids, hash, op->id);
    if (entity != CORE_NONE)
        return confirm_order_again(state, op, entity);
    confirm_scratch scratch;
    if (!confirm_order_check(state, op, time_us, &scratch))
        return scratch.due_count > 0 &&
               expire_touched(state, scratch.due, scratch.due_count, time_us, record);
    if (!core_reserve_order(state, op, confirm_order_record_size(op), record))
        return core_fail_nomem(op);
    entity = core_entity_add(state, &state->orders, &state->order_index, hash, op->id);
    core_order *order = core_pool_at(&state->orders, entity);
    order->first_line = state->lines.count;
    order->line_count = op->line_count;
    for (uint32_t i = 0; i < op->line_count; i++) {
        core_hold *hold = hold_at(state, scratch.hold[i]);
        hold_close(state, hold, STOCK_HOLD_CONFIRMED);
        hold->confirmed = (uint32_t)scratch.qty[i];
        hold->order = entity;
        stock_id id = op->lines[i].line_id;
        uint32_t line = core_line_add(state, id, core_hash(id), hold->sku,
                                      scratch.qty[i], entity, time_us);
        assert(line == order->first_line + i);
        op->lines[i].available =
            ((const core_line *)core_pool_at(&state->lines, line))->available_after;
        hold->closed_available = op->lines[i].available;
    }
    if (record != NULL)
        confirm_order_encode(op, &scratch, time_us, record);
    return true;
}

/* ------------------------------------------------------------- dispatch */

bool core_apply_hold(core *state, stock_op *op, int64_t time_us, buf *record)
{
    switch (op->type) {
    case STOCK_OP_HOLD: return apply_hold(state, op, time_us, record);
    case STOCK_OP_CONFIRM: return apply_confirm(state, op, time_us, record);
    case STOCK_OP_RELEASE: return apply_release(state, op, time_us, record);
    case STOCK_OP_CONFIRM_ORDER: return apply_confirm_order(state, op, time_us, record);
    case STOCK_OP_HOLD_GET: return apply_hold_get(state, op, time_us, record);
    default: break;
    }
    assert(!"not a hold operation");
    return false;
}

/* --------------------------------------------------------------- replay */

stock_code core_replay_expire(core *state, core_reader *reader, char *message,
                              size_t message_size)
{
    int64_t time_us = core_get_i64(reader);
    uint32_t count = core_get_u32(reader);
    if (!reader->ok || count < 1 || count > CORE_EXPIRE_RECORD_MAX) {
        message_set(message, message_size, "log record is truncated or malformed");
        return STOCK_CORRUPT;
    }
    core_clock_advance(state, time_us);
    for (uint32_t i = 0; i < count; i++) {
        stock_id id = core_get_id(reader);
        if (!reader->ok || !stock_id_valid(id)) {
            message_set(message, message_size, "log record is truncated or malformed");
            return STOCK_CORRUPT;
        }
        uint32_t entity = core_hold_find(state, id, core_hash(id));
        if (entity == CORE_NONE || !hold_due(hold_at(state, entity), time_us)) {
            message_set(message, message_size,
                        "log record expires hold=%.*s, which is not held past "
                        "its deadline", (int)id.len, id.ptr);
            return STOCK_CORRUPT;
        }
        hold_close(state, hold_at(state, entity), STOCK_HOLD_EXPIRED);
    }
    if (reader->at != reader->end) {
        message_set(message, message_size, "log record is truncated or malformed");
        return STOCK_CORRUPT;
    }
    return STOCK_OK;
}
