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
 *               refunds, adjustments
 *   sku         i64 available, adjusted, deducted, refunded | id
 *   order       u32 first_line, line_count | id
 *   line        i64 time_us, available_after | u32 sku, qty, refunded,
 *               order | id
 *   refund      i64 available_after | u32 line, qty | id
 *   adjustment  i64 available_after | u32 sku | u32 delta | id
 *   trailer     "STKSNEND"
 * Entities appear in index order, so loading recreates the same indices.
 */
#include <inttypes.h>
#include <stdio.h>

#include "core/codec.h"
#include "core/core_internal.h"

#define SNAPSHOT_MAGIC "STKSNAP1"
#define SNAPSHOT_TRAILER "STKSNEND"
#define SNAPSHOT_MAGIC_BYTES 8
#define SNAPSHOT_VERSION 1
#define SNAPSHOT_HEADER_BYTES (SNAPSHOT_MAGIC_BYTES + 4 + 4 + 5 * 8)
/* Fixed bytes of each entry, before its id (the id's length byte included). */
#define SKU_FIXED_BYTES (4 * 8 + 1)
#define ORDER_FIXED_BYTES (2 * 4 + 1)
#define LINE_FIXED_BYTES (2 * 8 + 4 * 4 + 1)
#define REFUND_FIXED_BYTES (8 + 2 * 4 + 1)
#define ADJUSTMENT_FIXED_BYTES (8 + 2 * 4 + 1)
#define ENTRY_BYTES_MAX (LINE_FIXED_BYTES + STOCK_ID_MAX)
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
    uint8_t *at = saver_room(&out);
    memcpy(at, SNAPSHOT_TRAILER, SNAPSHOT_MAGIC_BYTES);
    saver_commit(&out, at + SNAPSHOT_MAGIC_BYTES);
    saver_flush(&out);
    return out.failed;
}

/* ------------------------------------------------------------------ load */

enum { SECTION_SKUS, SECTION_ORDERS, SECTION_LINES, SECTION_REFUNDS,
       SECTION_ADJUSTMENTS, SECTION_COUNT };

typedef struct loader {
    core *state;
    core_read_fn read;
    void *context;
    char *message;
    size_t message_size;
    uint64_t counts[SECTION_COUNT];
    uint32_t order_cursor;   /* the order a line being loaded may be in */
    uint32_t order_end;      /* the line after the last order loaded */
    uint8_t entry[ENTRY_BYTES_MAX];
} loader;

static stock_code load_corrupt(loader *in, const char *section, uint64_t entry,
                               const char *problem)
{
    if (in->message != NULL && in->message_size > 0)
        snprintf(in->message, in->message_size, "snapshot %s %" PRIu64 ": %s",
                 section, entry, problem);
    return STOCK_CORRUPT;
}

static stock_code load_nomem(loader *in)
{
    if (in->message != NULL && in->message_size > 0)
        snprintf(in->message, in->message_size,
                 "out of memory loading the snapshot");
    return STOCK_NOMEM;
}

/* Reads an entry: its fixed part (ending in the id's length byte), then
 * its id. Returns NULL, or what is wrong with it. */
static const char *load_entry(loader *in, size_t fixed, core_reader *reader,
                              stock_id *id)
{
    assert(fixed >= 1 && fixed + STOCK_ID_MAX <= ENTRY_BYTES_MAX);
    if (in->read(in->context, in->entry, fixed) != 0)
        return "truncated";
    uint8_t len = in->entry[fixed - 1];
    if (len == 0 || len > STOCK_ID_MAX)
        return "bad id length";
    if (in->read(in->context, in->entry + fixed, len) != 0)
        return "truncated";
    *id = (stock_id){(const char *)in->entry + fixed, len};
    if (!stock_id_valid(*id))
        return "id is not 1-64 printable ASCII characters";
    *reader = core_reader_make(in->entry, fixed - 1);
    return NULL;
}

/* Adds the entity named id (absent so far) and returns its record. */
static stock_code load_add(loader *in, core_pool *pool, core_index *index,
                           stock_id id, void **record)
{
    core *state = in->state;
    if (!core_reserve_entities(state, pool, index, 1, id.len))
        return STOCK_NOMEM;
    uint32_t hash = core_hash(id);
    if (core_index_find(index, pool, &state->ids, hash, id) != CORE_NONE)
        return STOCK_CORRUPT;
    uint32_t entity = core_entity_add(state, pool, index, hash, id);
    *record = core_pool_at(pool, entity);
    return STOCK_OK;
}

/* Reads one entry of a section and adds its entity. Returns the entity's
 * record, *reader over the entry's fixed part, and *code STOCK_OK; or NULL
 * with *code (and the message) saying why. */
static void *load_entity(loader *in, int section, uint64_t i, size_t fixed,
                         core_reader *reader, stock_code *code)
{
    static const char *const names[SECTION_COUNT] = {
        "sku", "order", "line", "refund", "adjustment"};
    core *state = in->state;
    core_pool *pools[SECTION_COUNT] = {&state->skus, &state->orders,
                                       &state->lines, &state->refunds,
                                       &state->adjustments};
    core_index *indexes[SECTION_COUNT] = {
        &state->sku_index, &state->order_index, &state->line_index,
        &state->refund_index, &state->adjustment_index};
    stock_id id;
    const char *problem = load_entry(in, fixed, reader, &id);
    if (problem != NULL) {
        *code = load_corrupt(in, names[section], i, problem);
        return NULL;
    }
    void *record = NULL;
    *code = load_add(in, pools[section], indexes[section], id, &record);
    if (*code == STOCK_NOMEM)
        load_nomem(in);
    else if (*code == STOCK_CORRUPT)
        load_corrupt(in, names[section], i, "the id appears twice");
    return record;
}

/* I2 and the signs of a SKU's totals, without overflow. */
static bool sku_totals_valid(const core_sku *sku)
{
    int64_t net, available;
    if (sku->available < 0 || sku->deducted < 0 || sku->refunded < 0 ||
        sku->refunded > sku->deducted)
        return false;
    if (__builtin_sub_overflow(sku->adjusted, sku->deducted, &net) ||
        __builtin_add_overflow(net, sku->refunded, &available))
        return false;
    return available == sku->available;
}

static stock_code load_skus(loader *in)
{
    stock_code code = STOCK_OK;
    for (uint64_t i = 0; i < in->counts[SECTION_SKUS]; i++) {
        core_reader reader;
        core_sku *sku = load_entity(in, SECTION_SKUS, i, SKU_FIXED_BYTES,
                                    &reader, &code);
        if (sku == NULL)
            return code;
        sku->available = core_get_i64(&reader);
        sku->adjusted = core_get_i64(&reader);
        sku->deducted = core_get_i64(&reader);
        sku->refunded = core_get_i64(&reader);
        assert(reader.ok && reader.at == reader.end);
        if (!sku_totals_valid(sku))
            return load_corrupt(in, "sku", i, "totals do not add up "
                                "(available = adjusted - deducted + refunded)");
    }
    return code;
}

static stock_code load_orders(loader *in)
{
    stock_code code = STOCK_OK;
    for (uint64_t i = 0; i < in->counts[SECTION_ORDERS]; i++) {
        core_reader reader;
        core_order *order = load_entity(in, SECTION_ORDERS, i, ORDER_FIXED_BYTES,
                                        &reader, &code);
        if (order == NULL)
            return code;
        order->first_line = core_get_u32(&reader);
        order->line_count = core_get_u32(&reader);
        assert(reader.ok && reader.at == reader.end);
        if (order->line_count < 1 || order->line_count > STOCK_ORDER_LINES_MAX ||
            order->first_line < in->order_end ||
            (uint64_t)order->first_line + order->line_count > in->counts[SECTION_LINES])
            return load_corrupt(in, "order", i, "line range out of place");
        in->order_end = order->first_line + order->line_count;
    }
    return code;
}

/* The order line number line must belong to (orders are loaded, sorted by
 * first line, and do not overlap), or CORE_NONE. */
static uint32_t load_expected_order(loader *in, uint32_t line)
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

static stock_code load_lines(loader *in)
{
    stock_code code = STOCK_OK;
    for (uint64_t i = 0; i < in->counts[SECTION_LINES]; i++) {
        core_reader reader;
        core_line *line = load_entity(in, SECTION_LINES, i, LINE_FIXED_BYTES,
                                      &reader, &code);
        if (line == NULL)
            return code;
        line->time_us = core_get_i64(&reader);
        line->available_after = core_get_i64(&reader);
        line->sku = core_get_u32(&reader);
        line->qty = core_get_u32(&reader);
        line->refunded = core_get_u32(&reader);
        line->order = core_get_u32(&reader);
        assert(reader.ok && reader.at == reader.end);
        if (line->sku >= in->state->skus.count || line->qty < 1 ||
            line->qty > STOCK_QTY_MAX || line->refunded > line->qty ||
            line->available_after < 0)
            return load_corrupt(in, "line", i, "sku, qty or refunded out of range");
        if (line->order != load_expected_order(in, (uint32_t)i))
            return load_corrupt(in, "line", i, "order does not match the order's lines");
    }
    return code;
}

static stock_code load_refunds(loader *in)
{
    stock_code code = STOCK_OK;
    for (uint64_t i = 0; i < in->counts[SECTION_REFUNDS]; i++) {
        core_reader reader;
        core_refund *refund = load_entity(in, SECTION_REFUNDS, i,
                                          REFUND_FIXED_BYTES, &reader, &code);
        if (refund == NULL)
            return code;
        refund->available_after = core_get_i64(&reader);
        refund->line = core_get_u32(&reader);
        refund->qty = core_get_u32(&reader);
        assert(reader.ok && reader.at == reader.end);
        if (refund->line >= in->state->lines.count || refund->qty < 1 ||
            refund->qty > STOCK_QTY_MAX || refund->available_after < 0)
            return load_corrupt(in, "refund", i, "line or qty out of range");
    }
    return code;
}

static stock_code load_adjustments(loader *in)
{
    stock_code code = STOCK_OK;
    for (uint64_t i = 0; i < in->counts[SECTION_ADJUSTMENTS]; i++) {
        core_reader reader;
        core_adjustment *adjustment = load_entity(
            in, SECTION_ADJUSTMENTS, i, ADJUSTMENT_FIXED_BYTES, &reader, &code);
        if (adjustment == NULL)
            return code;
        adjustment->available_after = core_get_i64(&reader);
        adjustment->sku = core_get_u32(&reader);
        adjustment->delta = (int32_t)core_get_u32(&reader);
        assert(reader.ok && reader.at == reader.end);
        if (adjustment->sku >= in->state->skus.count || adjustment->delta == 0 ||
            adjustment->delta < -STOCK_QTY_MAX || adjustment->available_after < 0)
            return load_corrupt(in, "adjustment", i, "sku or delta out of range");
    }
    return code;
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
    if (core_get_u32(&reader) != SNAPSHOT_VERSION || core_get_u32(&reader) != 0)
        return load_corrupt(in, "header", 0, "unknown format version");
    for (int i = 0; i < SECTION_COUNT; i++) {
        in->counts[i] = (uint64_t)core_get_i64(&reader);
        if (in->counts[i] > CORE_ENTITY_MAX)
            return load_corrupt(in, "header", 0, "entity count out of range");
    }
    assert(reader.ok && reader.at == reader.end);
    return STOCK_OK;
}

stock_code core_snapshot_load(core *state, core_read_fn read, void *context,
                              char *message, size_t message_size)
{
    assert(state != NULL && read != NULL);
    assert(state->skus.count == 0 && state->lines.count == 0 &&
           state->orders.count == 0 && state->refunds.count == 0 &&
           state->adjustments.count == 0);
    loader in;
    memset(&in, 0, sizeof in);
    in.state = state;
    in.read = read;
    in.context = context;
    in.message = message;
    in.message_size = message_size;
    stock_code (*const steps[])(loader *) = {
        load_header, load_skus, load_orders, load_lines, load_refunds,
        load_adjustments};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        stock_code code = steps[i](&in);
        if (code != STOCK_OK)
            return code;
    }
    uint8_t trailer[SNAPSHOT_MAGIC_BYTES];
    if (read(context, trailer, sizeof trailer) != 0 ||
        memcmp(trailer, SNAPSHOT_TRAILER, SNAPSHOT_MAGIC_BYTES) != 0)
        return load_corrupt(&in, "trailer", 0, "missing: the snapshot is cut short");
    return STOCK_OK;
}
