/*
 * codec.h -- cursors over the integers and ids that log records (record.c)
 * and snapshots (snapshot.c) are made of, in the byte order of
 * lib/little_endian.h.
 *
 * Writing assumes the room was reserved. Reading never trusts the input: a
 * core_reader that runs past its end stops, remembers the failure and
 * yields zeros, so a decoder checks `ok` once at the end instead of after
 * every field.
 */
#ifndef STOCK_CORE_CODEC_H
#define STOCK_CORE_CODEC_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lib/little_endian.h"
#include "stock.h"

static inline uint8_t *core_put_u8(uint8_t *at, uint8_t value)
{
    *at = value;
    return at + 1;
}

static inline uint8_t *core_put_u32(uint8_t *at, uint32_t value)
{
    le_put_u32(at, value);
    return at + 4;
}

static inline uint8_t *core_put_i64(uint8_t *at, int64_t value)
{
    le_put_u64(at, (uint64_t)value);
    return at + 8;
}

/* An id as one length byte and its bytes (len 0..STOCK_ID_MAX). */
static inline uint8_t *core_put_id(uint8_t *at, stock_id id)
{
    assert(id.len <= STOCK_ID_MAX);
    *at = (uint8_t)id.len;
    if (id.len > 0)
        memcpy(at + 1, id.ptr, id.len);
    return at + 1 + id.len;
}

/* Bytes core_put_id writes. */
static inline size_t core_id_size(stock_id id)
{
    return 1 + (size_t)id.len;
}

typedef struct core_reader {
    const uint8_t *at;
    const uint8_t *end;
    bool ok;
} core_reader;

static inline core_reader core_reader_make(const uint8_t *data, size_t len)
{
    core_reader reader = {data, data + len, true};
    return reader;
}

/* The next len bytes, or NULL (and ok = false) if fewer are left. */
static inline const uint8_t *core_take(core_reader *reader, size_t len)
{
    if (!reader->ok || (size_t)(reader->end - reader->at) < len) {
        reader->ok = false;
        return NULL;
    }
    const uint8_t *taken = reader->at;
    reader->at += len;
    return taken;
}

static inline uint8_t core_get_u8(core_reader *reader)
{
    const uint8_t *at = core_take(reader, 1);
    return at == NULL ? 0 : at[0];
}

static inline uint32_t core_get_u32(core_reader *reader)
{
    const uint8_t *at = core_take(reader, 4);
    return at == NULL ? 0 : le_get_u32(at);
}

static inline int64_t core_get_i64(core_reader *reader)
{
    const uint8_t *at = core_take(reader, 8);
    return at == NULL ? 0 : (int64_t)le_get_u64(at);
}

/* An id written by core_put_id. Its bytes point into the reader's input;
 * they are not checked here (stock_validate / stock_id_valid do that). */
static inline stock_id core_get_id(core_reader *reader)
{
    uint8_t len = core_get_u8(reader);
    const uint8_t *bytes = core_take(reader, len);
    stock_id id = {bytes == NULL ? "" : (const char *)bytes,
                   bytes == NULL ? 0 : len};
    return id;
}

#endif /* STOCK_CORE_CODEC_H */
