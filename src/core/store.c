/*
 * store.c -- the containers of the state machine (core_internal.h): the
 * chunked record pool, the id byte arena and the open-addressing index.
 *
 * None of them ever frees or moves a record while the core lives: lines are
 * never deleted, so a chunked arena gives stable addresses without the copy
 * (and the doubled peak memory) of realloc at 10M lines.
 */
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/core_internal.h"

/* Entries of a chunk-pointer array at first use. */
#define CHUNK_LIST_MIN 16u

/* Grows a chunk-pointer array to hold one more pointer. */
static bool chunk_list_grow(uint8_t ***chunks, uint32_t *capacity,
                            uint32_t count)
{
    assert(count <= *capacity);
    if (count < *capacity)
        return true;
    uint32_t wanted = *capacity == 0 ? CHUNK_LIST_MIN : *capacity * 2;
    uint8_t **grown = realloc(*chunks, (size_t)wanted * sizeof *grown);
    if (grown == NULL)
        return false;
    *chunks = grown;
    *capacity = wanted;
    return true;
}

/* ------------------------------------------------------------ core_pool */

void core_pool_init(core_pool *pool, uint32_t record_size, uint32_t chunk_shift)
{
    assert(record_size > 0 && record_size % 8 == 0);
    assert(chunk_shift >= 4 && chunk_shift <= 20);
    memset(pool, 0, sizeof *pool);
    pool->record_size = record_size;
    pool->chunk_shift = chunk_shift;
}

void core_pool_free(core_pool *pool)
{
    for (uint32_t i = 0; i < pool->chunk_count; i++)
        free(pool->chunks[i]);
    free(pool->chunks);
    core_pool_init(pool, pool->record_size, pool->chunk_shift);
}

bool core_pool_reserve(core_pool *pool, uint32_t extra)
{
    assert(pool->record_size > 0);
    if (extra > CORE_ENTITY_MAX - pool->count)
        return false;
    uint64_t needed = (uint64_t)pool->count + extra;
    while (((uint64_t)pool->chunk_count << pool->chunk_shift) < needed) {
        if (!chunk_list_grow(&pool->chunks, &pool->chunk_capacity,
                             pool->chunk_count))
            return false;
        uint8_t *chunk = malloc((size_t)pool->record_size << pool->chunk_shift);
        if (chunk == NULL)
            return false;
        pool->chunks[pool->chunk_count++] = chunk;
    }
    return true;
}

uint32_t core_pool_push(core_pool *pool)
{
    assert(((uint64_t)pool->chunk_count << pool->chunk_shift) > pool->count);
    assert(pool->count < CORE_ENTITY_MAX);
    return pool->count++;
}

uint64_t core_pool_memory(const core_pool *pool)
{
    return ((uint64_t)pool->chunk_count * pool->record_size << pool->chunk_shift) +
           (uint64_t)pool->chunk_capacity * sizeof(uint8_t *);
}

/* ------------------------------------------------------------- core_ids */

void core_ids_init(core_ids *ids)
{
    memset(ids, 0, sizeof *ids);
}

void core_ids_free(core_ids *ids)
{
    for (uint32_t i = 0; i < ids->chunk_count; i++)
        free(ids->chunks[i]);
    free(ids->chunks);
    core_ids_init(ids);
}

bool core_ids_reserve(core_ids *ids, uint32_t bytes)
{
    assert(bytes >= 1 && bytes <= CORE_ID_CHUNK_BYTES);
    if (ids->chunk_count > 0 && ids->used + bytes <= CORE_ID_CHUNK_BYTES)
        return true;
    /* The reference keeps 56 bits of offset: far beyond any memory. */
    if (!chunk_list_grow(&ids->chunks, &ids->chunk_capacity, ids->chunk_count))
        return false;
    uint8_t *chunk = malloc(CORE_ID_CHUNK_BYTES);
    if (chunk == NULL)
        return false;
    ids->chunks[ids->chunk_count++] = chunk;
    ids->used = 0;
    return true;
}

uint64_t core_ids_push(core_ids *ids, stock_id id)
{
    assert(ids->chunk_count > 0);
    assert(id.len >= 1 && id.len <= STOCK_ID_MAX &&
           ids->used + id.len <= CORE_ID_CHUNK_BYTES);
    uint64_t offset = ((uint64_t)(ids->chunk_count - 1) << CORE_ID_CHUNK_SHIFT) +
                      ids->used;
    memcpy(ids->chunks[ids->chunk_count - 1] + ids->used, id.ptr, id.len);
    ids->used += id.len;
    ids->total += id.len;
    return offset << 8 | id.len;
}

uint64_t core_ids_memory(const core_ids *ids)
{
    return (uint64_t)ids->chunk_count * CORE_ID_CHUNK_BYTES +
           (uint64_t)ids->chunk_capacity * sizeof(uint8_t *);
}

/* ----------------------------------------------------------- core_index */

uint32_t core_hash(stock_id id)
{
    assert(id.ptr != NULL || id.len == 0);
    return (uint32_t)(XXH3_64bits(id.ptr, id.len) >> 32);
}

void core_index_free(core_index *index)
{
    free(index->slots);
    memset(index, 0, sizeof *index);
}

/* The home slot of a hash: its top bits, so slot order follows hash order. */
static inline uint32_t index_home(const core_index *index, uint32_t hash)
{
    return (uint32_t)((uint64_t)hash >> index->shift);
}

static void index_place(core_slot *slots, uint32_t mask, uint32_t home,
                        core_slot slot)
{
    uint32_t at = home;
    while (slots[at].entry != 0)
        at = (at + 1) & mask;
    slots[at] = slot;
}

/* Rebuilds the table at a new capacity (a power of two). */
static bool index_resize(core_index *index, uint32_t capacity)
{
    assert(capacity >= CORE_INDEX_CAPACITY_MIN && (capacity & (capacity - 1)) == 0);
    assert(capacity > index->used);
    core_slot *slots = calloc(capacity, sizeof *slots);
    if (slots == NULL)
        return false;
    uint32_t shift = 32 - (uint32_t)__builtin_ctz(capacity);
    for (uint32_t i = 0; i < index->capacity; i++) {
        core_slot slot = index->slots[i];
        if (slot.entry != 0)
            index_place(slots, capacity - 1,
                        (uint32_t)((uint64_t)slot.hash >> shift), slot);
    }
    free(index->slots);
    index->slots = slots;
    index->capacity = capacity;
    index->shift = shift;
    return true;
}

bool core_index_reserve(core_index *index, uint32_t extra)
{
    if (extra > CORE_ENTITY_MAX - index->used)
        return false;
    uint64_t needed = (uint64_t)index->used + extra;
    uint64_t capacity = index->capacity ? index->capacity : CORE_INDEX_CAPACITY_MIN;
    while (needed * 4 > capacity * 3)
        capacity *= 2;
    assert(capacity <= CORE_INDEX_CAPACITY_MAX);
    if (capacity == index->capacity)
        return true;
    return index_resize(index, (uint32_t)capacity);
}

uint32_t core_index_find(const core_index *index, const core_pool *pool,
                         const core_ids *ids, uint32_t hash, stock_id id)
{
    if (index->capacity == 0)
        return CORE_NONE;
    uint32_t mask = index->capacity - 1;
    for (uint32_t at = index_home(index, hash);; at = (at + 1) & mask) {
        core_slot slot = index->slots[at];
        if (slot.entry == 0)
            return CORE_NONE;
        if (slot.hash != hash)
            continue;
        const uint64_t *ref = core_pool_at(pool, slot.entry - 1);
        if (core_ids_equal(core_ids_get(ids, *ref), id))
            return slot.entry - 1;
    }
}

void core_index_insert(core_index *index, uint32_t hash, uint32_t entity)
{
    assert(index->capacity > 0 && (uint64_t)(index->used + 1) * 4 <=
                                      (uint64_t)index->capacity * 3);
    assert(entity < CORE_ENTITY_MAX);
    core_slot slot = {hash, entity + 1};
    index_place(index->slots, index->capacity - 1, index_home(index, hash), slot);
    index->used++;
}

uint64_t core_index_memory(const core_index *index)
{
    return (uint64_t)index->capacity * sizeof(core_slot);
}
