/*
 * snapshot.c -- the whole state as one stream of bytes, and back.
 *
 * Saving runs in a fork()ed child while the parent keeps serving, so it
 * allocates nothing: entries are packed into a buffer on the stack and
 * handed to the caller's write function a buffer at a time. Loading trusts
 * nothing it reads (checksums are the journal's job, lengths and indices are
 * ours): every id, count, index and total is checked, and anything that does
 * not fit is STOCK_CORRUPT with the section and entry named.
 *
 * Layout, little-endian; id = 1 length byte + bytes, after the fixed part:
 *   header      "STKSNAP1" | u32 version | u32 0 | u64 skus, orders, lines,
 *               refunds, adjustments | version 2: u64 holds | i64 clock_us
 *   sku         i64 available, adjusted, deducted, refunded | id
 *   order       u32 first_line, line_count | id
 *   line        i64 time_us, available_after | u32 sku, qty, refunded,
 *               order | id
 *   refund      i64 available_after | u32 line, qty | id
 *   adjustment  i64 available_after | u32 sku | u32 delta | id
 *   hold        (version 2) i64 time_us, deadline_us, available_after,
 *               closed_available | u32 sku, qty, confirmed, order |
 *               u8 state | id
 *   trailer     "STKSNEND"
 * Entities appear in index order, so loading recreates the same indices.
 * Version 1 (written before holds) has no holds and loads as before. A
 * SKU's held units are not saved: they are the sum of its HELD holds, which
 * loading checks (I2 with held) and the deadline heap is rebuilt from them.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "core/codec.h"
#include "core/core_internal.h"
#include "lib/message.h"

#define SNAPSHOT_MAGIC "STKSNAP1"
#define SNAPSHOT_TRAILER "STKSNEND"
#define SNAPSHOT_MAGIC_BYTES 8
#define SNAPSHOT_VERSION 2
#define SNAPSHOT_VERSION_NO_HOLDS 1
#define SNAPSHOT_HEADER_BYTES (SNAPSHOT_MAGIC_BYTES + 4 + 4 + 5 * 8)
/* What version 2 adds to the header: the hold count and the clock. */
#define SNAPSHOT_HEADER_HOLDS_BYTES (2 * 8)
/* Fixed bytes of each entry, before its id (the id's length byte included). */
#define SKU_FIXED_BYTES (4 * 8 + 1)
#define ORDER_FIXED_BYTES (2 * 4 + 1)
#define LINE_FIXED_BYTES (2 * 8 + 4 * 4 + 1)
#define REFUND_FIXED_BYTES (8 + 2 * 4 + 1)
#define ADJUSTMENT_FIXED_BYTES (8 + 2 * 4 + 1)
#define HOLD_FIXED_BYTES (4 * 8 + 4 * 4 + 1 + 1)
#define ENTRY_BYTES_MAX (HOLD_FIXED_BYTES + STOCK_ID_MAX)
/* The save buffer: on the stack of the (forked) saver. */
#define SAVE_BUFFER_BYTES (64 * 1024)

/* ------------------------------------------------------------------ save */

typedef struct saver {
    core_write_fn write;
    void *context;
    size_t used;
    int failed;
    uint8_t buffer[SAVE_BUFFER_BYTES];
} saver;

static void saver_flush(saver *out)
{
    if (out->failed == 0 && out->used > 0 &&
        out->write(out->context, out->buffer, out->used) != 0)
        out->failed = -1;
    out->used = 0;
}

/* Room for one entry (at most ENTRY_BYTES_MAX) at the end of the buffer. */
static uint8_t *saver_room(saver *out)
{
    if (SAVE_BUFFER_BYTES - out->used < ENTRY_BYTES_MAX)
        saver_flush(out);
    return out->buffer + out->used;
}

static void saver_commit(saver *out, const uint8_t *end)
{
    assert(end >= out->buffer + out->used && end <= out->buffer + SAVE_BUFFER_BYTES);
    out->used = (size_t)(end - out->buffer);
}

static void save_header(const core *state, saver *out)
{
    uint8_t *at = saver_room(out);
    memcpy(at, SNAPSHOT_MAGIC, SNAPSHOT_MAGIC_BYTES);
    at += SNAPSHOT_MAGIC_BYTES;
    at = core_put_u32(at, SNAPSHOT_VERSION);
    at = core_put_u32(at, 0);
    at = core_put_i64(at, state->skus.count);
    at = core_put_i64(at, state->orders.count);
    at = core_put_i64(at, state->lines.count);
    at = core_put_i64(at, state->refunds.count);
    at = core_put_i64(at, state->adjustments.count);
    at = core_put_i64(at, state->holds.count);
    at = core_put_i64(at, state->clock_us);
    saver_commit(out, at);
}

static void save_skus(const core *state, saver *out)
{
    for (uint32_t i = 0; i < state->skus.count && out->failed == 0; i++) {
        const core_sku *sku = core_pool_at(&state->skus, i);
        uint8_t *at = saver_room(out);
        at = core_put_i64(at, sku->available);
        at = core_put_i64(at, sku->adjusted);
        at = core_put_i64(at, sku->deducted);
        at = core_put_i64(at, sku->refunded);
        saver_commit(out, core_put_id(at, core_ids_get(&state->ids, sku->id)));
    }
}

static void save_orders(const core *state, saver *out)
{
    for (uint32_t i = 0; i < state->orders.count && out->failed == 0; i++) {
        const core_order *order = core_pool_at(&state->orders, i);
        uint8_t *at = saver_room(out);
        at = core_put_u32(at, order->first_line);
        at = core_put_u32(at, order->line_count);
        saver_commit(out, core_put_id(at, core_ids_get(&state->ids, order->id)));
    }
}

static void save_lines(const core *state, saver *out)
{
    for (uint32_t i = 0; i < state->lines.count && out->failed == 0; i++) {
        const core_line *line = core_pool_at(&state->lines, i);
        uint8_t *at = saver_room(out);
        at = core_put_i64(at, line->time_us);
        at = core_put_i64(at, line->available_after);
        at = core_put_u32(at, line->sku);
        at = core_put_u32(at, line->qty);
        at = core_put_u32(at, line->refunded);
        at = core_put_u32(at, line->order);
        saver_commit(out, core_put_id(at, core_ids_get(&state->ids, line->id)));
    }
}

static void save_refunds(const core *state, saver *out)
{
    for (uint32_t i = 0; i < state->refunds.count && out->failed == 0; i++) {
        const core_refund *refund = core_pool_at(&state->refunds, i);
        uint8_t *at = saver_room(out);
        at = core_put_i64(at, refund->available_after);
        at = core_put_u32(at, refund->line);
        at = core_put_u32(at, refund->qty);
        saver_commit(out, core_put_id(at, core_ids_get(&state->ids, refund->id)));
    }
}

static void save_adjustments(const core *state, saver *out)
{
    for (uint32_t i = 0; i < state->adjustments.count && out->failed == 0; i++) {
        const core_adjustment *adjustment = core_pool_at(&state->adjustments, i);
        uint8_t *at = saver_room(out);
        at = core_put_i64(at, adjustment->available_after);
        at = core_put_u32(at, adjustment->sku);
        at = core_put_u32(at, (uint32_t)adjustment->delta);
        saver_commit(out, core_put_id(at, core_ids_get(&state->ids, adjustment->id)));
    }
}

static void save_holds(const core *state, saver *out)
{
    for (uint32_t i = 0; i < state->holds.count && out->failed == 0; i++) {
        const core_hold *hold = core_pool_at(&state->holds, i);
        uint8_t *at = saver_room(out);
        at = core_put_i64(at, hold->time_us);
        at = core_put_i64(at, hold->deadline_us);
        at = core_put_i64(at, hold->available_after);
        at = core_put_i64(at, hold->closed_available);
        at = core_put_u32(at, hold->sku);
        at = core_put_u32(at, hold->qty);
        at = core_put_u32(at, hold->confirmed);
        at = core_put_u32(at, hold->order);
        at = core_put_u8(at, hold->state);
        saver_commit(out, core_put_id(at, core_ids_get(&state->ids, hold->id)));
    }
}

int core_snapshot_save(const core *state, core_write_fn write, void *context)
{
    assert(state != NULL && write != NULL);
    saver out;
    out.write = write;
    out.context = context;
    out.used = 0;
    out.failed = 0;
    save_header(state, &out);
    save_skus(state, &out);
    save_orders(state, &out);
    save_lines(state, &out);
    save_refunds(state, &out);
    save_adjustments(state, &out);
    save_holds(state, &out);
    uint8_t *at = saver_room(&out);
    memcpy(at, SNAPSHOT_TRAILER, SNAPSHOT_MAGIC_BYTES);
    saver_commit(&out, at + SNAPSHOT_MAGIC_BYTES);
    saver_flush(&out);
    return out.failed;
}

/* ------------------------------------------------------------------ load */

enum { SECTION_SKUS, SECTION_ORDERS, SECTION_LINES, SECTION_REFUNDS,
       SECTION_ADJUSTMENTS, SECTION_HOLDS, SECTION_COUNT };

/* One entry read but not yet added. */
typedef struct load_item {
    stock_id id;
    uint32_t hash;
    uint8_t bytes[ENTRY_BYTES_MAX];
} load_item;

typedef struct loader {
    core *state;
    core_read_fn read;
    void *context;
    size_t size;             /* bytes read can deliver in all */
    char *message;
    size_t message_size;
    uint64_t counts[SECTION_COUNT];
    uint32_t order_cursor;   /* the order a line being loaded may be in */
    uint32_t order_end;      /* the line after the last order loaded */
    size_t header_bytes;     /* of this snapshot's version */
    load_item item;
} loader;

/* What a section's entries look like and how one is checked. fill sets
 * the entity's fields from the entry's fixed part and returns NULL, or
 * what is wrong with them. */
typedef struct section {
    const char *name;
    size_t fixed;            /* bytes before the id, its length byte included */
    const char *(*fill)(loader *in, void *entity, core_reader *fixed,
                        uint32_t index);
} section;

static stock_code load_corrupt(loader *in, const char *section, uint64_t entry,
                               const char *problem)
{
    message_set(in->message, in->message_size, "snapshot %s %" PRIu64 ": %s",
                section, entry, problem);
    return STOCK_CORRUPT;
}

static stock_code load_nomem(loader *in)
{
    message_set(in->message, in->message_size, "out of memory loading the snapshot");
    return STOCK_NOMEM;
}

/* Reads an entry into item: its fixed part (ending in the id's length
 * byte), then its id. Returns NULL, or what is wrong with it. */
static const char *load_read(loader *in, size_t fixed, load_item *item)
{
    assert(fixed >= 1 && fixed + STOCK_ID_MAX <= ENTRY_BYTES_MAX);
    if (in->read(in->context, item->bytes, fixed) != 0)
        return "truncated";
    uint8_t len = item->bytes[fixed - 1];
    if (len == 0 || len > STOCK_ID_MAX)
        return "bad id length";
    if (in->read(in->context, item->bytes + fixed, len) != 0)
        return "truncated";
    item->id = (stock_id){(const char *)item->bytes + fixed, len};
    if (!stock_id_valid(item->id))
        return "id is not 1-64 printable ASCII characters";
    item->hash = core_hash(item->id);
    return NULL;
}

/* Adds the entity an item names to pool and the id arena (room reserved)
 * and stages its index slot; the index is built once the section is in. */
static uint32_t load_add(core *state, core_pool *pool, core_index *index,
                         const load_item *item)
{
    assert(pool->count == index->used);
    uint32_t entity = core_pool_push(pool);
    uint64_t *ref = core_pool_at(pool, entity);
    *ref = core_ids_push(&state->ids, item->id);
    core_index_stage(index, item->hash, entity);
    return entity;
}

/* Builds a loaded section's index, refusing a repeated id. */
static stock_code load_index(loader *in, const section *kind, core_pool *pool,
                             core_index *index)
{
    uint32_t duplicate = CORE_NONE;
    switch (core_index_build(index, pool, &in->state->ids, &duplicate)) {
    case CORE_BUILD_OK:
        return STOCK_OK;
    case CORE_BUILD_DUPLICATE:
        assert(duplicate < pool->count);
        return load_corrupt(in, kind->name, duplicate, "the id appears twice");
    case CORE_BUILD_NOMEM:
        break;
    }
    return load_nomem(in);
}

/* Loads count entries of one section into pool and index: each entry is
 * read, added and checked by the section's fill in file order (all
 * sequential writes), then the index is built in one ordered pass. */
static stock_code load_section(loader *in, const section *kind, uint64_t count,
                               core_pool *pool, core_index *index)
{
    core *state = in->state;
    assert(count <= CORE_ENTITY_MAX && pool->count == 0 && index->used == 0);
    /* load_header checked that count entries fit in the snapshot, so this
     * sizes nothing from a damaged count. */
    if (!core_pool_reserve(pool, (uint32_t)count) ||
        !core_index_reserve(index, (uint32_t)count))
        return load_nomem(in);
    load_item *item = &in->item;
    for (uint64_t k = 0; k < count; k++) {
        const char *problem = load_read(in, kind->fixed, item);
        if (problem != NULL)
            return load_corrupt(in, kind->name, k, problem);
        if (!core_ids_reserve(&state->ids, item->id.len))
            return load_nomem(in);
        uint32_t entity = load_add(state, pool, index, item);
        core_reader fixed = core_reader_make(item->bytes, kind->fixed - 1);
        problem = kind->fill(in, core_pool_at(pool, entity), &fixed, entity);
        assert(fixed.ok && fixed.at == fixed.end);
        if (problem != NULL)
            return load_corrupt(in, kind->name, k, problem);
    }
    return load_index(in, kind, pool, index);
}

/* The signs of a SKU's totals, and the units I2 says it holds (adjusted -
 * deducted + refunded - available, checked against its holds once they
 * are loaded) into sku->held; false if they do not add up. */
static bool sku_totals_valid(core_sku *sku)
{
    int64_t net, total;
    if (sku->available < 0 || sku->deducted < 0 || sku->refunded < 0 ||
        sku->refunded > sku->deducted)
        return false;
    if (__builtin_sub_overflow(sku->adjusted, sku->deducted, &net) ||
        __builtin_add_overflow(net, sku->refunded, &total) ||
        total < sku->available)
        return false;
    sku->held = total - sku->available;
    return true;
}

static const char *fill_sku(loader *in, void *entity, core_reader *fixed,
                            uint32_t index)
{
    (void)index;
    core_sku *sku = entity;
    stock_id id = core_ids_get(&in->state->ids, sku->id);
    memcpy(sku->name, id.ptr, id.len);
    sku->available = core_get_i64(fixed);
    sku->adjusted = core_get_i64(fixed);
    sku->deducted = core_get_i64(fixed);
    sku->refunded = core_get_i64(fixed);
    if (!sku_totals_valid(sku))
        return "totals do not add up (available + held = adjusted - deducted + refunded)";
    return NULL;
}

static const char *fill_order(loader *in, void *entity, core_reader *fixed,
                              uint32_t index)
{
    (void)index;
    core_order *order = entity;
    order->first_line = core_get_u32(fixed);
    order->line_count = core_get_u32(fixed);
    /* Orders come in the order of their lines, which never overlap. */
    if (order->line_count < 1 || order->line_count > STOCK_ORDER_LINES_MAX ||
        order->first_line < in->order_end ||
        (uint64_t)order->first_line + order->line_count > in->counts[SECTION_LINES])
        return "line range out of place";
    in->order_end = order->first_line + order->line_count;
    return NULL;
}

/* The order line number line must belong to (orders are loaded, sorted by
 * first line, and do not overlap), or CORE_NONE. */
static uint32_t expected_order(loader *in, uint32_t line)
{
    const core_pool *orders = &in->state->orders;
    for (; in->order_cursor < orders->count; in->order_cursor++) {
        const core_order *order = core_pool_at(orders, in->order_cursor);
        if (line < order->first_line)
            return CORE_NONE;
        if (line - order->first_line < order->line_count)
            return in->order_cursor;
    }
    return CORE_NONE;
}

static const char *fill_line(loader *in, void *entity, core_reader *fixed,
                             uint32_t index)
{
    core_line *line = entity;
    line->time_us = core_get_i64(fixed);
    line->available_after = core_get_i64(fixed);
    line->sku = core_get_u32(fixed);
    line->qty = core_get_u32(fixed);
    line->refunded = core_get_u32(fixed);
    line->order = core_get_u32(fixed);
    if (line->sku >= in->state->skus.count || line->qty < 1 ||
        line->qty > STOCK_QTY_MAX || line->refunded > line->qty ||
        line->available_after < 0)
        return "sku, qty or refunded out of range";
    if (line->order != expected_order(in, index))
        return "order does not match the order's lines";
    return NULL;
}

static const char *fill_refund(loader *in, void *entity, core_reader *fixed,
                               uint32_t index)
{
    (void)index;
    core_refund *refund = entity;
    refund->available_after = core_get_i64(fixed);
    refund->line = core_get_u32(fixed);
    refund->qty = core_get_u32(fixed);
    if (refund->line >= in->state->lines.count || refund->qty < 1 ||
        refund->qty > STOCK_QTY_MAX || refund->available_after < 0)
        return "line or qty out of range";
    return NULL;
}

static const char *fill_adjustment(loader *in, void *entity, core_reader *fixed,
                                   uint32_t index)
{
    (void)index;
    core_adjustment *adjustment = entity;
    adjustment->available_after = core_get_i64(fixed);
    adjustment->sku = core_get_u32(fixed);
    adjustment->delta = (int32_t)core_get_u32(fixed);
    if (adjustment->sku >= in->state->skus.count || adjustment->delta == 0 ||
        adjustment->delta < -STOCK_QTY_MAX || adjustment->available_after < 0)
        return "sku or delta out of range";
    return NULL;
}

static const char *fill_hold(loader *in, void *entity, core_reader *fixed,
                             uint32_t index)
{
    (void)index;
    core_hold *hold = entity;
    hold->time_us = core_get_i64(fixed);
    hold->deadline_us = core_get_i64(fixed);
    hold->available_after = core_get_i64(fixed);
    hold->closed_available = core_get_i64(fixed);
    hold->sku = core_get_u32(fixed);
    hold->qty = core_get_u32(fixed);
    hold->confirmed = core_get_u32(fixed);
    hold->order = core_get_u32(fixed);
    hold->state = core_get_u8(fixed);
    bool confirmed = hold->state == STOCK_HOLD_CONFIRMED;
    if (hold->sku >= in->state->skus.count || hold->qty < 1 ||
        hold->qty > STOCK_QTY_MAX || hold->deadline_us <= hold->time_us ||
        hold->available_after < 0 || hold->closed_available < 0)
        return "sku, qty or deadline out of range";
    if (hold->state < STOCK_HOLD_HELD || hold->state > STOCK_HOLD_EXPIRED ||
        (confirmed ? hold->confirmed < 1 || hold->confirmed > hold->qty
                   : hold->confirmed != 0) ||
        (hold->order != CORE_NONE &&
         (!confirmed || hold->order >= in->state->orders.count)))
        return "state, confirmed qty or order out of range";
    return NULL;
}

/* After the holds: each SKU's held units must be the sum of its HELD
 * holds; rebuilds the deadline heap and the hold totals. */
static stock_code load_holds_check(loader *in)
{
    core *state = in->state;
    uint64_t held_units = 0;
    for (uint32_t i = 0; i < state->holds.count; i++) {
        const core_hold *hold = core_pool_at(&state->holds, i);
        core_hold_totals *totals = &state->hold_totals;
        totals->expiries += hold->state == STOCK_HOLD_EXPIRED;
        totals->releases += hold->state == STOCK_HOLD_RELEASED;
        totals->confirmations += hold->state == STOCK_HOLD_CONFIRMED;
        if (hold->state != STOCK_HOLD_HELD)
            continue;
        core_sku *sku = core_pool_at(&state->skus, hold->sku);
        if (sku->held < hold->qty)
            return load_corrupt(in, "hold", i, "holds more than its SKU's totals allow");
        sku->held -= hold->qty;   /* counted down to 0, restored below */
        if (!core_heap_reserve(&state->deadlines, 1))
            return load_nomem(in);
        core_heap_push(&state->deadlines, hold->deadline_us, i);
        totals->outstanding++;
        held_units += hold->qty;
    }
    for (uint32_t i = 0; i < state->skus.count; i++)
        if (((const core_sku *)core_pool_at(&state->skus, i))->held != 0)
            return load_corrupt(in, "sku", i, "totals do not add up (available + "
                                "held = adjusted - deducted + refunded)");
    state->hold_totals.held_units = held_units;
    for (uint32_t i = 0; i < state->deadlines.count; i++) {
        const core_hold *hold = core_pool_at(&state->holds, state->deadlines.items[i].hold);
        ((core_sku *)core_pool_at(&state->skus, hold->sku))->held += hold->qty;
    }
    return STOCK_OK;
}

static stock_code load_header(loader *in)
{
    uint8_t header[SNAPSHOT_HEADER_BYTES];
    if (in->read(in->context, header, sizeof header) != 0)
        return load_corrupt(in, "header", 0, "truncated");
    if (memcmp(header, SNAPSHOT_MAGIC, SNAPSHOT_MAGIC_BYTES) != 0)
        return load_corrupt(in, "header", 0, "not a stockd snapshot");
    core_reader reader = core_reader_make(header + SNAPSHOT_MAGIC_BYTES,
                                          sizeof header - SNAPSHOT_MAGIC_BYTES);
    uint32_t version = core_get_u32(&reader);
    if ((version != SNAPSHOT_VERSION && version != SNAPSHOT_VERSION_NO_HOLDS) ||
        core_get_u32(&reader) != 0)
        return load_corrupt(in, "header", 0, "unknown format version");
    for (int i = 0; i < SECTION_HOLDS; i++)
        in->counts[i] = (uint64_t)core_get_i64(&reader);
    assert(reader.ok && reader.at == reader.end);
    in->header_bytes = SNAPSHOT_HEADER_BYTES;
    if (version == SNAPSHOT_VERSION) {
        uint8_t more[SNAPSHOT_HEADER_HOLDS_BYTES];
        if (in->read(in->context, more, sizeof more) != 0)
            return load_corrupt(in, "header", 0, "truncated");
        reader = core_reader_make(more, sizeof more);
        in->counts[SECTION_HOLDS] = (uint64_t)core_get_i64(&reader);
        in->state->clock_us = core_get_i64(&reader);
        in->header_bytes += SNAPSHOT_HEADER_HOLDS_BYTES;
    }
    for (int i = 0; i < SECTION_COUNT; i++)
        if (in->counts[i] > CORE_ENTITY_MAX)
            return load_corrupt(in, "header", 0, "entity count out of range");
    return STOCK_OK;
}

/* The sections in file order: every index an entry holds points into a
 * section loaded before it, except an order's lines (checked by count). */
static const section sections[SECTION_COUNT] = {
    [SECTION_SKUS] = {"sku", SKU_FIXED_BYTES, fill_sku},
    [SECTION_ORDERS] = {"order", ORDER_FIXED_BYTES, fill_order},
    [SECTION_LINES] = {"line", LINE_FIXED_BYTES, fill_line},
    [SECTION_REFUNDS] = {"refund", REFUND_FIXED_BYTES, fill_refund},
    [SECTION_ADJUSTMENTS] = {"adjustment", ADJUSTMENT_FIXED_BYTES, fill_adjustment},
    [SECTION_HOLDS] = {"hold", HOLD_FIXED_BYTES, fill_hold},
};

/* Whether the header's counts fit in the snapshot's size, each entry
 * taking at least its fixed part and a 1-byte id: everything is sized from
 * the counts up front, so a damaged count must not get that far. */
static stock_code load_check_counts(loader *in)
{
    uint64_t needed = in->header_bytes + SNAPSHOT_MAGIC_BYTES;
    for (int i = 0; i < SECTION_COUNT; i++) {
        assert(in->counts[i] <= CORE_ENTITY_MAX);
        needed += in->counts[i] * (sections[i].fixed + 1);
    }
    if (needed > in->size)
        return load_corrupt(in, "header", 0, "entity counts do not fit in the "
                            "snapshot's size");
    return STOCK_OK;
}

stock_code core_snapshot_load(core *state, core_read_fn read, void *context,
                              size_t size, char *message, size_t message_size)
{
    assert(state != NULL && read != NULL);
    assert(state->skus.count == 0 && state->lines.count == 0 &&
           state->orders.count == 0 && state->refunds.count == 0 &&
           state->adjustments.count == 0 && state->holds.count == 0);
    loader *in = calloc(1, sizeof *in);
    if (in == NULL)
        return STOCK_NOMEM;
    *in = (loader){.state = state, .read = read, .context = context,
                   .size = size, .message = message, .message_size = message_size};
    core_pool *pools[SECTION_COUNT] = {&state->skus, &state->orders, &state->lines,
                                       &state->refunds, &state->adjustments,
                                       &state->holds};
    core_index *indexes[SECTION_COUNT] = {
        &state->sku_index, &state->order_index, &state->line_index,
        &state->refund_index, &state->adjustment_index, &state->hold_index};
    stock_code code = load_header(in);
    if (code == STOCK_OK)
        code = load_check_counts(in);
    for (int i = 0; i < SECTION_COUNT && code == STOCK_OK; i++)
        code = load_section(in, &sections[i], in->counts[i], pools[i], indexes[i]);
    if (code == STOCK_OK)
        code = load_holds_check(in);
    uint8_t trailer[SNAPSHOT_MAGIC_BYTES];
    if (code == STOCK_OK && (read(context, trailer, sizeof trailer) != 0 ||
                             memcmp(trailer, SNAPSHOT_TRAILER, SNAPSHOT_MAGIC_BYTES) != 0))
        code = load_corrupt(in, "trailer", 0, "missing: the snapshot is cut short");
    free(in);
    return code;
}
