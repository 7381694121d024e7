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
 * table almost in order of the new one. A table that fills to 3/4 grows to
 * twice its size a little at a time (CORE_INDEX_MOVE_PER_INSERT old slots
 * moved per entity added), as Redis rehashes its dicts: building a table of
 * 2^27 slots in one go stopped every operation for 2.5-3 s at 50 million
 * lines (docs/benchmarks.md, "How the cost grows"). The table it grows into
 * is mapped earlier, at 5/8 load, and its pages written a few at every
 * entity added until 11/16: the kernel zeroes a page (and, for a huge page,
 * may first compact memory) at its first write, and the first writes to a
 * table mapped at the growth would all come at once, from the random homes
 * of the next few thousand inserts (a 0.6-1.2 s stall at 25 million lines).
 */
#ifndef STOCK_CORE_INTERNAL_H
#define STOCK_CORE_INTERNAL_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/codec.h"
#include "core/core.h"
#include "lib/id.h"

/* An entity index that names nothing (a line outside any order). */
#define CORE_NONE UINT32_MAX
/* Entities of one kind: the index table (load <= 3/4) must stay within
 * CORE_INDEX_CAPACITY_MAX slots. */
#define CORE_ENTITY_MAX (3u << 29)
#define CORE_INDEX_CAPACITY_MAX (1u << 31)
#define CORE_INDEX_CAPACITY_MIN 16u
/* Old slots moved per entity added while a table grows: the move ends after
 * old capacity / 8 additions, long before the new table (twice the size,
 * 3/8 full when it starts) reaches 3/4. */
#define CORE_INDEX_MOVE_PER_INSERT 8u
/* The next table is mapped when the load passes 5/8 and written in full
 * by 11/16 (capacity / 16 additions), before a growth at 3/4 needs it. */
#define CORE_INDEX_PREPARE_EIGHTHS 5u
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
    int64_t held;              /* units of its HELD holds */
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

/* A hold (hold.c). Its state only moves from HELD to one of the three
 * others, once. closed_available is the SKU's stock right after that move
 * (the answer a replayed CONFIRM or RELEASE gives). */
typedef struct core_hold {
    uint64_t id;
    int64_t time_us;
    int64_t deadline_us;
    int64_t available_after;   /* the SKU's stock right after the hold */
    int64_t closed_available;
    uint32_t sku;
    uint32_t qty;
    uint32_t confirmed;        /* 1..qty once CONFIRMED, else 0 */
    uint32_t order;            /* the CONFIRM_ORDER's order, or CORE_NONE */
    uint8_t state;             /* stock_hold_state */
} core_hold;

/* A HELD hold's place in the expiry queue: a binary min-heap on (deadline,
 * hold index). Entries of holds closed before their deadline are not
 * removed: they are dropped when they reach the top. */
typedef struct core_deadline {
    int64_t deadline_us;
    uint32_t hold;
} core_deadline;

typedef struct core_heap {
    core_deadline *items;
    uint32_t count;
    uint32_t capacity;
} core_heap;

/* ----------------------------------------------------------- containers */

/*
 * Chunk geometry of pools and the id arena, in units (records or bytes):
 * chunk 0 holds 1 << first units, chunk c in 1..steady-first holds
 * 1 << (first + c - 1), so that chunks 0..steady-first hold 1 << steady
 * together, and every later chunk holds 1 << steady. Small states stay
 * small, big ones get big chunks (whole pages from the kernel), and no unit
 * ever moves.
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
    /* While the table grows: the table being moved into slots (NULL when
     * not growing), its size, and how many of its slots, from the front,
     * are also in slots. Nothing is ever removed, so a lookup that misses
     * slots and finds the entity in the old table is right. */
    core_slot *old_slots;
    uint32_t old_capacity;
    uint32_t old_shift;
    uint32_t moved;
    /* The table of the next growth (twice capacity), mapped once the load
     * passes 5/8 (NULL before), and how many of its bytes, from the
     * front, are written already. */
    core_slot *next_slots;
    uint32_t next_capacity;
    size_t next_written;
} core_index;

/* What the holds add up to, kept as they change (core_get_stats). The
 * three totals count every event applied or replayed since the core was
 * created. */
typedef struct core_hold_totals {
    uint64_t outstanding;      /* holds HELD */
    uint64_t held_units;       /* units in them */
    uint64_t expiries, confirmations, releases;
} core_hold_totals;

/* When a retention move ran and how many adjustments there were then:
 * adjustments carry no time of their own, so a move takes as cold those
 * created before the newest mark at or before its cutoff (retain.c). */
typedef struct core_mark {
    int64_t time_us;
    uint32_t adjustments;
} core_mark;
/* Marks kept: with a move every window / 4 (docs/engine.md, "Retention"),
 * 8 cover twice the window. */
#define CORE_MARKS_MAX 8

struct core {
    core_ids ids;
    core_pool skus, lines, orders, refunds, adjustments, holds;
    core_index sku_index, line_index, order_index, refund_index,
        adjustment_index, hold_index;
    core_heap deadlines;       /* HELD holds by deadline (hold.c) */
    core_hold_totals hold_totals;
    int64_t clock_us;          /* the latest time a record carries: the
                                  store's clock never runs backwards */
    core_changes *watch;       /* core_watch's list, or NULL */
    core_mark marks[CORE_MARKS_MAX];   /* oldest first; not in snapshots */
    uint32_t mark_count;
    uint32_t recent_sku;       /* the SKU a DEDUCT found last, or CORE_NONE
                                  (core_recent_sku) */
};

/* Notes a move of sku's available to `available` in the watch (core.h). */
void core_watch_note(core *state, const core_sku *sku, int64_t available);

/* Sets sku's available stock: the one place it changes, so that a watch
 * sees every move. */
static inline void core_sku_set_available(core *state, core_sku *sku, int64_t available)
{
    if (state->watch != NULL)
        core_watch_note(state, sku, available);
    sku->available = available;
}

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

/* One table to probe: the current one, or the one a growing index is
 * leaving. core_index_tables fills tables[0] and, while growing, tables[1];
 * returns how many. A lookup that misses the first probes the second. */
typedef struct core_index_table {
    const core_slot *slots;
    uint32_t mask;
    uint32_t shift;
} core_index_table;

static inline uint32_t core_index_tables(const core_index *index,
                                         core_index_table tables[2])
{
    if (index->capacity == 0)
        return 0;
    tables[0] = (core_index_table){index->slots, index->capacity - 1, index->shift};
    if (index->old_slots == NULL)
        return 1;
    tables[1] = (core_index_table){index->old_slots, index->old_capacity - 1,
                                   index->old_shift};
    return 2;
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
/* True if sku names state->recent_sku. A flash sale's DEDUCTs name one SKU:
 * comparing its name skips the hash and the index probe of core_sku_find. */
static inline bool core_recent_sku(const core *state, stock_id sku)
{
    if (state->recent_sku >= state->skus.count)
        return false;
    const core_sku *recent = core_pool_at(&state->skus, state->recent_sku);
    return (recent->id & 0xFF) == sku.len && memcmp(recent->name, sku.ptr, sku.len) == 0;
}
/* Records a new line (room reserved, stock checked before) and takes its
 * qty off the SKU; returns the line's index. */
uint32_t core_line_add(core *state, stock_id id, uint32_t hash,
                       uint32_t sku_entity, int64_t qty, uint32_t order,
                       int64_t time_us);
/* Reserves an order of op->line_count lines (ORDER, CONFIRM_ORDER): the
 * order, its lines, their ids, and record_bytes of record (record NULL:
 * none). False on out of memory; nothing logical changes either way. */
bool core_reserve_order(core *state, const stock_op *op, size_t record_bytes,
                        buf *record);
/* The order operation (order.c), as core_apply_at. */
bool core_apply_order(core *state, stock_op *op, int64_t time_us, buf *record);

/* The hold operations (hold.c): HOLD, CONFIRM, RELEASE, CONFIRM_ORDER and
 * HOLD_GET, as core_apply_at, except that they encode their own record
 * (record NULL: a replay, nothing encoded). An op that touches a HELD hold
 * past its deadline expires it first, which changes state: it then
 * appends an EXPIRE record and returns true whatever the op's code. */
bool core_apply_hold(core *state, stock_op *op, int64_t time_us, buf *record);
/* The hold of that id, or CORE_NONE. */
uint32_t core_hold_find(const core *state, stock_id id, uint32_t hash);
/* Re-applies an EXPIRE record's body (record.c has read its type byte);
 * STOCK_OK or STOCK_CORRUPT with message. */
stock_code core_replay_expire(core *state, core_reader *reader, char *message,
                              size_t message_size);
/* Moves the store's clock to time_us if that is later. Only the ops whose
 * records carry their time call it (a line, a hold, an expiry), so that
 * replay moves the clock exactly as the apply did. */
void core_clock_advance(core *state, int64_t time_us);
/* Pushes a HELD hold onto the deadline heap (room reserved). */
void core_heap_push(core_heap *heap, int64_t deadline_us, uint32_t hold);
bool core_heap_reserve(core_heap *heap, uint32_t extra);
void core_heap_free(core_heap *heap);

#endif /* STOCK_CORE_INTERNAL_H */
