/*
 * core_internal.h -- the memory layout of the state machine, shared by the
 * files of src/core only (core.c applies operations, record.c encodes and
 * replays log records, snapshot.c saves and loads the state, store.c holds
 * the containers below).
 *
 * Layout (docs/engine.md has the figures): every entity (SKU, line, order,
 * refund, adjustment) is a fixed-size struct in a core_pool, a chunked array
 * that never moves its records, addressed by a 32-bit index. Entities are
 * never deleted, so indices are stable and deterministic (they follow the
 * order of creation, on apply and on replay alike). Identifier bytes live in
 * one append-only byte arena (core_ids); an entity holds a 64-bit reference
 * (offset << 8 | length) to its id. Each namespace has a core_index: an open
 * addressing table of {32-bit hash, 32-bit entity index} slots with linear
 * probing, homed by the top bits of the hash so that a resize walks the old
 * table almost in order of the new one.
 */
#ifndef STOCK_CORE_INTERNAL_H
#define STOCK_CORE_INTERNAL_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "lib/id.h"

/* An entity index that names nothing (a line outside any order). */
#define CORE_NONE UINT32_MAX
/* Entities of one kind: the index table (load <= 3/4) must stay within
 * CORE_INDEX_CAPACITY_MAX slots. */
#define CORE_ENTITY_MAX (3u << 29)
#define CORE_INDEX_CAPACITY_MAX (1u << 31)
#define CORE_INDEX_CAPACITY_MIN 16u
/* Id-arena chunks: 8 KiB first, growing to 2 MiB; an id never straddles
 * two chunks, and the first holds the ids of the biggest order. */
#define CORE_ID_FIRST_SHIFT 13
#define CORE_ID_STEADY_SHIFT 21

/* ------------------------------------------------------------- entities */

/* Every entity struct starts with its id reference, so that one index
 * implementation serves all five namespaces. */
/* A SKU keeps a copy of its id beside its totals: a lookup then compares
 * against the cache line it needs anyway instead of missing once more into
 * the arena (SKUs are few next to lines; the arena copy serves the generic
 * code). */
typedef struct core_sku {
    uint64_t id;
    int64_t available;
    int64_t adjusted;
    int64_t deducted;
    int64_t refunded;
    char name[STOCK_ID_MAX];   /* the first (id & 0xFF) bytes are the id */
} core_sku;

typedef struct core_line {
    uint64_t id;
    int64_t time_us;
    int64_t available_after;
    uint32_t sku;
    uint32_t qty;
    uint32_t refunded;  /* <= qty */
    uint32_t order;     /* CORE_NONE for a line deducted on its own */
} core_line;

/* An order's lines are contiguous in the line pool. */
typedef struct core_order {
    uint64_t id;
    uint32_t first_line;
    uint32_t line_count;
} core_order;

typedef struct core_refund {
    uint64_t id;
    int64_t available_after;
    uint32_t line;
    uint32_t qty;
} core_refund;

typedef struct core_adjustment {
    uint64_t id;
    int64_t available_after;
    uint32_t sku;
    int32_t delta;
} core_adjustment;

/* ----------------------------------------------------------- containers */

/*
 * Chunk geometry of pools and the id arena, in units (records or bytes):
 * chunk 0 holds 1 << first units, chunk c in 1..steady-first holds
 * 1 << (first + c - 1), so that chunks 0..steady-first hold 1 << steady
 * together, and every later chunk holds 1 << steady. Small states stay
 * small, big ones get big chunks (huge pages), and no unit ever moves.
 */
static inline uint32_t core_chunk_of(uint64_t unit, uint32_t first,
                                     uint32_t steady, uint64_t *start)
{
    assert(first <= steady && steady < 32);
    if (unit >> steady) {
        *start = unit >> steady << steady;
        return (uint32_t)(unit >> steady) + steady - first;
    }
    if (unit >> first) {
        uint32_t top = 63 - (uint32_t)__builtin_clzll(unit);
        *start = (uint64_t)1 << top;
        return top - first + 1;
    }
    *start = 0;
    return 0;
}

/* Units in chunk `chunk`, as a power of two. */
static inline uint32_t core_chunk_shift(uint32_t chunk, uint32_t first,
                                        uint32_t steady)
{
    if (chunk == 0)
        return first;
    return chunk <= steady - first ? first + chunk - 1 : steady;
}

/* Units held by the chunks before `chunk` (= the first unit of chunk). */
static inline uint64_t core_chunk_start(uint32_t chunk, uint32_t first,
                                        uint32_t steady)
{
    if (chunk == 0)
        return 0;
    if (chunk <= steady - first + 1)
        return (uint64_t)1 << (first + chunk - 1);
    return (uint64_t)(chunk - (steady - first)) << steady;
}

typedef struct core_pool {
    uint8_t **chunks;
    uint32_t chunk_count;
    uint32_t chunk_capacity;   /* entries in chunks[] */
    uint32_t count;            /* records in use */
    uint32_t record_size;
    uint32_t first_shift;      /* chunk geometry, see core_chunk_of */
    uint32_t steady_shift;
} core_pool;

typedef struct core_ids {
    uint8_t **chunks;
    uint32_t chunk_count;
    uint32_t chunk_capacity;
    uint64_t end;              /* offset of the next free byte */
} core_ids;

typedef struct core_slot {
    uint32_t hash;
    uint32_t entry;            /* entity index + 1; 0 = empty slot */
} core_slot;

typedef struct core_index {
    core_slot *slots;
    uint32_t capacity;         /* power of two, or 0 before first use */
    uint32_t shift;            /* 32 - log2(capacity) */
    uint32_t used;
} core_index;

struct core {
    core_ids ids;
    core_pool skus, lines, orders, refunds, adjustments;
    core_index sku_index, line_index, order_index, refund_index,
        adjustment_index;
};

/* ----------------------------------------------------------- core_pool */

/* An empty pool of records of record_size bytes in chunks of 1 << first_shift
 * growing to 1 << steady_shift records. Allocates nothing. */
void core_pool_init(core_pool *pool, uint32_t record_size, uint32_t first_shift,
                    uint32_t steady_shift);
void core_pool_free(core_pool *pool);
/* Makes room for extra more records. False on out of memory or when the
 * pool would pass CORE_ENTITY_MAX (the pool is unchanged either way). */
bool core_pool_reserve(core_pool *pool, uint32_t extra);
/* Takes the next record (reserved before) and returns its index. The
 * record's bytes are unspecified until the caller sets them. */
uint32_t core_pool_push(core_pool *pool);
/* Bytes of memory the pool holds. */
uint64_t core_pool_memory(const core_pool *pool);

/* The record at index (index < count). */
static inline void *core_pool_at(const core_pool *pool, uint32_t index)
{
    assert(index < pool->count);
    uint64_t start;
    uint32_t chunk = core_chunk_of(index, pool->first_shift, pool->steady_shift,
                                   &start);
    return pool->chunks[chunk] + (index - start) * pool->record_size;
}

/* ------------------------------------------------------------ core_ids */

void core_ids_init(core_ids *ids);
void core_ids_free(core_ids *ids);
/* Makes room for ids totalling bytes (1..1 << CORE_ID_FIRST_SHIFT) in the
 * current chunk, so that pushing them cannot allocate. */
bool core_ids_reserve(core_ids *ids, uint32_t bytes);
/* Copies an id (space reserved before) and returns its reference. */
uint64_t core_ids_push(core_ids *ids, stock_id id);
uint64_t core_ids_memory(const core_ids *ids);

/* The id a reference names; the bytes stay owned by the arena. */
static inline stock_id core_ids_get(const core_ids *ids, uint64_t ref)
{
    uint64_t offset = ref >> 8, start;
    uint32_t chunk = core_chunk_of(offset, CORE_ID_FIRST_SHIFT,
                                   CORE_ID_STEADY_SHIFT, &start);
    assert(chunk < ids->chunk_count);
    stock_id id = {(const char *)ids->chunks[chunk] + (offset - start),
                   (uint32_t)(ref & 0xFF)};
    return id;
}

/* ---------------------------------------------------------- core_index */

/* The 32-bit hash an index stores for an id. */
uint32_t core_hash(stock_id id);

void core_index_free(core_index *index);
/* Makes room for extra more entries; false on out of memory (unchanged). */
bool core_index_reserve(core_index *index, uint32_t extra);
/* The entity of pool whose id equals id, or CORE_NONE. */
uint32_t core_index_find(const core_index *index, const core_pool *pool,
                         const core_ids *ids, uint32_t hash, stock_id id);
/* The slot where a hash's probe starts: the hash's top bits. */
static inline uint32_t core_index_home(const core_index *index, uint32_t hash)
{
    assert(index->capacity > 0);
    return (uint32_t)((uint64_t)hash >> index->shift);
}

/* Prefetches the home slot of hash (a hint; the index may be empty). */
static inline void core_index_prefetch(const core_index *index, uint32_t hash)
{
    if (index->capacity > 0)
        __builtin_prefetch(&index->slots[core_index_home(index, hash)]);
}
/*
 * Bulk loading (snapshots), in two steps. core_index_stage appends the slot
 * of entity (= the count staged so far; room reserved before) without
 * probing: a staged index serves no lookups. core_index_build then puts
 * every staged slot in its place, walking the table in order of home slot
 * (a counting sort on the hash's top CORE_BUILD_GROUP_BITS bits first):
 * at 10M entries a random probe per entry misses the cache nearly every
 * time, while the ordered walk streams through the table (docs/engine.md,
 * "Measurements behind the constants").
 * DUPLICATE: two entities share an id; *duplicate is the later one and the
 * index must not be used. NOMEM: no room for the sort (index unusable).
 */
#define CORE_BUILD_GROUP_BITS 12
#define CORE_BUILD_GROUPS (1u << CORE_BUILD_GROUP_BITS)
typedef enum core_build_result {
    CORE_BUILD_OK,
    CORE_BUILD_DUPLICATE,
    CORE_BUILD_NOMEM
} core_build_result;
void core_index_stage(core_index *index, uint32_t hash, uint32_t entity);
core_build_result core_index_build(core_index *index, const core_pool *pool,
                                   const core_ids *ids, uint32_t *duplicate);
/* Adds an entity known to be absent (room reserved before). */
void core_index_insert(core_index *index, uint32_t hash, uint32_t entity);
uint64_t core_index_memory(const core_index *index);

/* ------------------------------------------------------------- helpers */

/* The id of an entity of a pool (every entity starts with its id ref). */
static inline stock_id core_entity_id(const core *state, const core_pool *pool,
                                      uint32_t index)
{
    const uint64_t *ref = core_pool_at(pool, index);
    return core_ids_get(&state->ids, *ref);
}

/* Copies an id into a NUL-terminated field of STOCK_ID_MAX + 1 bytes. */
void core_copy_id(char *target, stock_id id);

/* The totals of the SKU / the facts of the line at entity (< count). */
void core_sku_info(const core *state, uint32_t entity, stock_sku_info *info);
void core_line_info(const core *state, uint32_t entity, stock_line_info *info);

/* Applies an op at time_us; record NULL means a replay (nothing encoded).
 * Shared by core_apply and core_replay so both run the same rules. */
bool core_apply_at(core *state, stock_op *op, int64_t time_us, buf *record);

/* Appends the record of a successful state-changing op (room reserved by
 * core_record_size). */
void core_record_encode(const stock_op *op, int64_t time_us, buf *record);
/* Bytes core_record_encode will append for op. */
size_t core_record_size(const stock_op *op);

/* Inserts a new entity into its pool, the id arena and its index, all
 * reserved before; returns the entity index. */
uint32_t core_entity_add(core *state, core_pool *pool, core_index *index,
                         uint32_t hash, stock_id id);

/* Reserves room for count new entities of one kind and id_bytes of ids.
 * False on out of memory; the logical state is unchanged either way. */
bool core_reserve_entities(core *state, core_pool *pool, core_index *index,
                           uint32_t count, uint32_t id_bytes);
/* Reserves room for op's record (record NULL: nothing to reserve). */
bool core_reserve_record(const stock_op *op, buf *record);
/* Complete op with NOMEM / with INVALID for a total that would overflow;
 * both return false (nothing changed). */
bool core_fail_nomem(stock_op *op);
bool core_fail_overflow(stock_op *op, stock_id sku);
/* The SKU named sku or CORE_NONE; *hash (may be NULL) receives its hash. */
uint32_t core_sku_find(const core *state, stock_id sku, uint32_t *hash);
/* Records a new line (room reserved, stock checked before) and takes its
 * qty off the SKU; returns the line's index. */
uint32_t core_line_add(core *state, stock_id id, uint32_t hash,
                       uint32_t sku_entity, int64_t qty, uint32_t order,
                       int64_t time_us);
/* The order operation (order.c), as core_apply_at. */
bool core_apply_order(core *state, stock_op *op, int64_t time_us, buf *record);

#endif /* STOCK_CORE_INTERNAL_H */
