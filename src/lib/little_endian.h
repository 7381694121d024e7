/*
 * little_endian.h -- the byte order of everything libstock writes to disk:
 * log records and snapshots (src/core/codec.h builds its cursors on these)
 * and the journal's file headers and frames (src/journal). Written byte by
 * byte, so the files are the same on any host and no pointer need be
 * aligned.
 */
#ifndef STOCK_LITTLE_ENDIAN_H
#define STOCK_LITTLE_ENDIAN_H

#include <stdint.h>

static inline void le_put_u32(uint8_t *at, uint32_t value)
{
    for (int i = 0; i < 4; i++)
        at[i] = (uint8_t)(value >> (8 * i));
}

static inline void le_put_u64(uint8_t *at, uint64_t value)
{
    for (int i = 0; i < 8; i++)
        at[i] = (uint8_t)(value >> (8 * i));
}

static inline uint32_t le_get_u32(const uint8_t *at)
{
    uint32_t value = 0;
    for (int i = 0; i < 4; i++)
        value |= (uint32_t)at[i] << (8 * i);
    return value;
}

static inline uint64_t le_get_u64(const uint8_t *at)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value |= (uint64_t)at[i] << (8 * i);
    return value;
}

#endif /* STOCK_LITTLE_ENDIAN_H */
