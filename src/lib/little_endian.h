/*
 * little_endian.h -- the byte order of everything libstock writes to disk:
 * log records and snapshots (src/core/codec.h builds its cursors on these)
 * and the journal's file headers and frames (src/journal). Written byte by
 * byte, so the files are the same on any host and no pointer need be
 * aligned. Each function spells its bytes out rather than looping over
 * them: GCC merges the spelled-out form into one load or store on a
 * little-endian host, but compiled the loop of eight as eight byte moves
 * (about 50 instructions per u64 on the hot path of every DEDUCT:
 * docs/benchmarks.md, "CPU per op at -P 16").
 */
#ifndef STOCK_LITTLE_ENDIAN_H
#define STOCK_LITTLE_ENDIAN_H

#include <stdint.h>

static inline void le_put_u32(uint8_t *at, uint32_t value)
{
    at[0] = (uint8_t)value;
    at[1] = (uint8_t)(value >> 8);
    at[2] = (uint8_t)(value >> 16);
    at[3] = (uint8_t)(value >> 24);
}

static inline void le_put_u64(uint8_t *at, uint64_t value)
{
    at[0] = (uint8_t)value;
    at[1] = (uint8_t)(value >> 8);
    at[2] = (uint8_t)(value >> 16);
    at[3] = (uint8_t)(value >> 24);
    at[4] = (uint8_t)(value >> 32);
    at[5] = (uint8_t)(value >> 40);
    at[6] = (uint8_t)(value >> 48);
    at[7] = (uint8_t)(value >> 56);
}

static inline uint32_t le_get_u32(const uint8_t *at)
{
    return (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 |
           (uint32_t)at[3] << 24;
}

static inline uint64_t le_get_u64(const uint8_t *at)
{
    return (uint64_t)at[0] | (uint64_t)at[1] << 8 | (uint64_t)at[2] << 16 |
           (uint64_t)at[3] << 24 | (uint64_t)at[4] << 32 | (uint64_t)at[5] << 40 |
           (uint64_t)at[6] << 48 | (uint64_t)at[7] << 56;
}

#endif /* STOCK_LITTLE_ENDIAN_H */
