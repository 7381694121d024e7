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
#include <sys/mman.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/core_internal.h"

/* Entries of a chunk-pointer array at first use. */
#define CHUNK_LIST_MIN 16u
/* A transparent huge page: a region of whole ones comes from the kernel. */
#define HUGE_PAGE_BYTES ((size_t)2 << 20)

/* Where a region's memory comes from. Only the index asks for huge pages:
 * its probes land at random over the whole table, where 4 KiB pages would
 * miss the TLB on nearly every one. The pools and the id arena are filled
 * front to back, and under this project's hypervisor a fresh huge page
 * costs several times the first touch of 4 KiB pages (docs/engine.md,
 * "Measurements behind the constants"). */
typedef enum region_kind {
    REGION_HEAP,         /* malloc: reused pages cost no faults */
    REGION_PAGES,        /* the kernel's zeroed 4 KiB pages */
    REGION_HUGE_PAGES,   /* the kernel's, 2 MiB-aligned, huge pages advised */
} region_kind;

static size_t page_round(size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (bytes + page - 1) & ~(page - 1);
}

/* A region of bytes of the given kind; a heap one is zeroed only if asked
 * (the kernel's always are). NULL on failure. */
static void *region_map(size_t bytes, region_kind kind, bool zero)
{
    if (kind == REGION_HEAP)
        return zero ? calloc(1, bytes) : malloc(bytes);
    size_t size = page_round(bytes);
    if (kind == REGION_PAGES) {
        void *region = mmap(NULL, size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (region == MAP_FAILED)
            return NULL;
        /* Advice only: with transparent huge pages set to "always" the
         * kernel would otherwise give these huge pages too. */
        (void)madvise(region, size, MADV_NOHUGEPAGE);
        return region;
    }
    size_t span = size + HUGE_PAGE_BYTES;
    uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t mask = HUGE_PAGE_BYTES - 1;
    uint8_t *aligned = (uint8_t *)(((uintptr_t)raw + mask) & ~mask);
    size_t head = (size_t)(aligned - raw);
    if (head > 0)
        munmap(raw, head);
    if (span - head > size)
        munmap(aligned + size, span - head - size);
    /* Advice only: without huge pages the region still works. */
    (void)madvise(aligned, size, MADV_HUGEPAGE);
    return aligned;
}

/* Frees a region made by region_map with the same bytes and kind. */
static void region_unmap(void *region, size_t bytes, region_kind kind)
{
    if (kind == REGION_HEAP)
        free(region);
    else if (region != NULL)
        munmap(region, page_round(bytes));
}

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

/* A chunk of a whole number of 2 MiB (the big steady ones: 10 MiB of lines,
 * 2 MiB of ids) comes from the kernel: it is never freed while the core
 * lives, so in the heap it would only hold memory back from reuse; smaller
 * chunks come from the heap, whose reused pages cost no faults. */
static region_kind chunk_kind(size_t bytes)
{
    return bytes % HUGE_PAGE_BYTES == 0 ? REGION_PAGES : REGION_HEAP;
}

void core_pool_init(core_pool *pool, uint32_t record_size, uint32_t first_shift,
                    uint32_t steady_shift)
{
    assert(record_size > 0 && record_size % 8 == 0);
    assert(first_shift >= 4 && first_shift <= steady_shift && steady_shift <= 24);
    memset(pool, 0, sizeof *pool);
    pool->record_size = record_size;
    pool->first_shift = first_shift;
    pool->steady_shift = steady_shift;
}

static size_t pool_chunk_bytes(const core_pool *pool, uint32_t chunk)
{
    return (size_t)pool->record_size
           << core_chunk_shift(chunk, pool->first_shift, pool->steady_shift);
}

/* Records the first `chunks` chunks hold. */
static uint64_t pool_capacity(const core_pool *pool, uint32_t chunks)
{
    return core_chunk_start(chunks, pool->first_shift, pool->steady_shift);
}

void core_pool_free(core_pool *pool)
{
    for (uint32_t i = 0; i < pool->chunk_count; i++) {
        size_t bytes = pool_chunk_bytes(pool, i);
        region_unmap(pool->chunks[i], bytes, chunk_kind(bytes));
    }
    free(pool->chunks);
    core_pool_init(pool, pool->record_size, pool->first_shift, pool->steady_shift);
}

bool core_pool_reserve(core_pool *pool, uint32_t extra)
{
    assert(pool->record_size > 0);
    if (extra > CORE_ENTITY_MAX - pool->count)
        return false;
    uint64_t needed = (uint64_t)pool->count + extra;
    while (pool_capacity(pool, pool->chunk_count) < needed) {
        if (!chunk_list_grow(&pool->chunks, &pool->chunk_capacity,
                             pool->chunk_count))
            return false;
        size_t bytes = pool_chunk_bytes(pool, pool->chunk_count);
        uint8_t *chunk = region_map(bytes, chunk_kind(bytes), false);
        if (chunk == NULL)
            return false;
        pool->chunks[pool->chunk_count++] = chunk;
    }
    return true;
}

uint32_t core_pool_push(core_pool *pool)
{
    assert(pool_capacity(pool, pool->chunk_count) > pool->count);
    assert(pool->count < CORE_ENTITY_MAX);
    return pool->count++;
}

uint64_t core_pool_memory(const core_pool *pool)
{
    return pool_capacity(pool, pool->chunk_count) * pool->record_size +
           (uint64_t)pool->chunk_capacity * sizeof(uint8_t *);
}

/* ------------------------------------------------------------- core_ids */

static size_t ids_chunk_bytes(uint32_t chunk)
{
    return (size_t)1 << core_chunk_shift(chunk, CORE_ID_FIRST_SHIFT,
                                         CORE_ID_STEADY_SHIFT);
}

static uint64_t ids_capacity(uint32_t chunks)
{
    return core_chunk_start(chunks, CORE_ID_FIRST_SHIFT, CORE_ID_STEADY_SHIFT);
}

void core_ids_init(core_ids *ids)
{
    memset(ids, 0, sizeof *ids);
}

void core_ids_free(core_ids *ids)
{
    for (uint32_t i = 0; i < ids->chunk_count; i++) {
        size_t bytes = ids_chunk_bytes(i);
        region_unmap(ids->chunks[i], bytes, chunk_kind(bytes));
    }
    free(ids->chunks);
    core_ids_init(ids);
}

bool core_ids_reserve(core_ids *ids, uint32_t bytes)
{
    assert(bytes >= 1 && bytes <= (1u << CORE_ID_FIRST_SHIFT));
    if (ids->end + bytes <= ids_capacity(ids->chunk_count))
        return true;
    /* The reference keeps 56 bits of offset: far beyond any memory. */
    if (!chunk_list_grow(&ids->chunks, &ids->chunk_capacity, ids->chunk_count))
        return false;
    size_t chunk_bytes = ids_chunk_bytes(ids->chunk_count);
    uint8_t *chunk = region_map(chunk_bytes, chunk_kind(chunk_bytes), false);
    if (chunk == NULL)
        return false;
    /* The tail of the last chunk stays unused: an id never straddles. */
    ids->end = ids_capacity(ids->chunk_count);
    ids->chunks[ids->chunk_count++] = chunk;
    return true;
}

uint64_t core_ids_push(core_ids *ids, stock_id id)
{
    assert(ids->chunk_count > 0 && id.len >= 1 && id.len <= STOCK_ID_MAX);
    assert(ids->end + id.len <= ids_capacity(ids->chunk_count));
    uint64_t offset = ids->end;
    uint64_t start = ids_capacity(ids->chunk_count - 1);
    memcpy(ids->chunks[ids->chunk_count - 1] + (offset - start), id.ptr, id.len);
    ids->end += id.len;
    return offset << 8 | id.len;
}

uint64_t core_ids_memory(const core_ids *ids)
{
    return ids_capacity(ids->chunk_count) +
           (uint64_t)ids->chunk_capacity * sizeof(uint8_t *);
}

/* ----------------------------------------------------------- core_index */

uint32_t core_hash(stock_id id)
{
    assert(id.ptr != NULL || id.len == 0);
    return (uint32_t)(XXH3_64bits(id.ptr, id.len) >> 32);
}

static size_t index_bytes(uint32_t capacity)
{
    return (size_t)capacity * sizeof(core_slot);
}

/* An index table of a huge page or more gets huge pages (region_kind). */
static region_kind index_kind(size_t bytes)
{
    return bytes >= HUGE_PAGE_BYTES ? REGION_HUGE_PAGES : REGION_HEAP;
}

static void index_table_free(core_slot *slots, uint32_t capacity)
{
    region_unmap(slots, index_bytes(capacity), index_kind(index_bytes(capacity)));
}

void core_index_free(core_index *index)
{
    index_table_free(index->slots, index->capacity);
    if (index->old_slots != NULL)
        index_table_free(index->old_slots, index->old_capacity);
    if (index->next_slots != NULL)
        index_table_free(index->next_slots, index->next_capacity);
    memset(index, 0, sizeof *index);
}

static void index_place(core_slot *slots, uint32_t mask, uint32_t home,
                        core_slot slot)
{
    uint32_t at = home;
    while (slots[at].entry != 0)
        at = (at + 1) & mask;
    slots[at] = slot;
}

/* Moves up to count more slots of the table a growing index is leaving into
 * the current one; frees the old table once all are moved. */
static void index_move(core_index *index, uint64_t count)
{
    if (index->old_slots == NULL)
        return;
    uint64_t end = (uint64_t)index->moved + count;
    if (end > index->old_capacity)
        end = index->old_capacity;
    for (uint32_t i = index->moved; i < end; i++) {
        core_slot slot = index->old_slots[i];
        if (slot.entry != 0)
            index_place(index->slots, index->capacity - 1, core_index_home(index, slot.hash), slot);
    }
    index->moved = (uint32_t)end;
    if (index->moved == index->old_capacity) {
        index_table_free(index->old_slots, index->old_capacity);
        index->old_slots = NULL;
        index->old_capacity = index->old_shift = index->moved = 0;
    }
}

/* Starts growing the table to capacity (a power of two): the current table
 * becomes the old one, to be moved a little at every insert, or at once
 * when at_once (a bulk reserve, which would outrun the moves). */
static bool index_grow(core_index *index, uint32_t capacity, bool at_once)
{
    assert(capacity >= CORE_INDEX_CAPACITY_MIN && (capacity & (capacity - 1)) == 0);
    assert(capacity > index->used);
    index_move(index, UINT64_MAX);   /* at most one old table at a time */
    core_slot *slots = NULL;
    if (index->next_slots != NULL && index->next_capacity == capacity) {
        slots = index->next_slots;
    } else {
        size_t bytes = index_bytes(capacity);
        slots = region_map(bytes, index_kind(bytes), true);
        if (slots == NULL)
            return false;
        if (index->next_slots != NULL)   /* a bulk reserve grew past it */
            index_table_free(index->next_slots, index->next_capacity);
    }
    index->next_slots = NULL;
    index->next_capacity = 0;
    index->next_written = 0;
    if (index->capacity > 0) {
        index->old_slots = index->slots;
        index->old_capacity = index->capacity;
        index->old_shift = index->shift;
        index->moved = 0;
    }
    index->slots = slots;
    index->capacity = capacity;
    index->shift = 32 - (uint32_t)__builtin_ctz(capacity);
    if (at_once)
        index_move(index, UINT64_MAX);
    return true;
}

/* Maps the next table once the load passes 5/8 and writes its pages in
 * proportion to the entities added since, so that all are written by 11/16;
 * used is the count the entities about to be added will reach. Only tables
 * of huge pages: a small one is zeroed in microseconds. A failed mapping is
 * left to the growth, which tries again and reports it. */
static void index_prepare(core_index *index, uint64_t used)
{
    uint64_t start = (uint64_t)index->capacity * CORE_INDEX_PREPARE_EIGHTHS / 8;
    if (index->capacity == 0 || index->capacity >= CORE_INDEX_CAPACITY_MAX || used <= start)
        return;
    uint32_t capacity = index->capacity * 2;
    size_t bytes = index_bytes(capacity);
    if (bytes < HUGE_PAGE_BYTES)
        return;
    if (index->next_slots == NULL) {
        index->next_slots = region_map(bytes, index_kind(bytes), true);
        if (index->next_slots == NULL)
            return;
        index->next_capacity = capacity;
        index->next_written = 0;
    }
    uint64_t span = index->capacity / 16;   /* additions from 5/8 to 11/16 */
    uint64_t done = used - start;
    size_t target = done >= span ? bytes : (size_t)((unsigned __int128)bytes * done / span);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    volatile uint8_t *table = (volatile uint8_t *)index->next_slots;
    for (; index->next_written < target; index->next_written += page)
        table[index->next_written] = 0;
}

bool core_index_reserve(core_index *index, uint32_t extra)
{
    if (extra > CORE_ENTITY_MAX - index->used)
        return false;
    index_move(index, (uint64_t)extra * CORE_INDEX_MOVE_PER_INSERT);
    index_prepare(index, (uint64_t)index->used + extra);
    uint64_t needed = (uint64_t)index->used + extra;
    uint64_t capacity = index->capacity ? index->capacity : CORE_INDEX_CAPACITY_MIN;
    while (needed * 4 > capacity * 3)
        capacity *= 2;
    assert(capacity <= CORE_INDEX_CAPACITY_MAX);
    if (capacity == index->capacity)
        return true;
    bool at_once = (uint64_t)extra * CORE_INDEX_MOVE_PER_INSERT * 2 > index->capacity;
    return index_grow(index, (uint32_t)capacity, at_once);
}

uint32_t core_index_find(const core_index *index, const core_pool *pool,
                         const core_ids *ids, uint32_t hash, stock_id id)
{
    core_index_table tables[2];
    uint32_t count = core_index_tables(index, tables);
    for (uint32_t t = 0; t < count; t++) {
        const core_index_table *table = &tables[t];
        for (uint32_t at = (uint32_t)((uint64_t)hash >> table->shift);;
             at = (at + 1) & table->mask) {
            core_slot slot = table->slots[at];
            if (slot.entry == 0)
                break;
            if (slot.hash != hash)
                continue;
            const uint64_t *ref = core_pool_at(pool, slot.entry - 1);
            if (id_equal(core_ids_get(ids, *ref), id))
                return slot.entry - 1;
        }
    }
    return CORE_NONE;
}

void core_index_stage(core_index *index, uint32_t hash, uint32_t entity)
{
    assert(index->old_slots == NULL);   /* bulk loads start from an empty index */
    assert(index->capacity > 0 && (uint64_t)(index->used + 1) * 4 <=
                                      (uint64_t)index->capacity * 3);
    assert(entity == index->used);
    index->slots[index->used++] = (core_slot){hash, entity + 1};
}

/* Places slot at the first free slot from its home, unless an entity with
 * the same id is met on the way: then returns that entity (else CORE_NONE). */
static uint32_t index_place_unique(core_index *index, const core_pool *pool,
                                   const core_ids *ids, core_slot slot)
{
    uint32_t mask = index->capacity - 1;
    stock_id id = {NULL, 0};
    for (uint32_t at = core_index_home(index, slot.hash);; at = (at + 1) & mask) {
        core_slot held = index->slots[at];
        if (held.entry == 0) {
            index->slots[at] = slot;
            return CORE_NONE;
        }
        if (held.hash != slot.hash)
            continue;
        /* Equal 32-bit hashes are rare (a few thousand pairs in 10M ids):
         * only they pay for reading the ids. */
        if (id.ptr == NULL)
            id = core_ids_get(ids, *(const uint64_t *)core_pool_at(pool, slot.entry - 1));
        const uint64_t *ref = core_pool_at(pool, held.entry - 1);
        if (id_equal(core_ids_get(ids, *ref), id))
            return held.entry - 1;
    }
}

core_build_result core_index_build(core_index *index, const core_pool *pool,
                                   const core_ids *ids, uint32_t *duplicate)
{
    assert(index->used == pool->count);
    uint32_t count = index->used;
    if (count == 0)
        return CORE_BUILD_OK;
    size_t bytes = (size_t)count * sizeof(core_slot);
    /* The counting sort below writes it at random, as the index's probes
     * read: it gets the index's kind of pages. */
    region_kind kind = index_kind(bytes);
    core_slot *sorted = region_map(bytes, kind, false);
    if (sorted == NULL)
        return CORE_BUILD_NOMEM;
    /* Counting sort of the staged slots by the top bits of their hash (a
     * prefix of the home slot), so that the placement below walks the
     * table from front to back instead of jumping at random. */
    uint32_t *starts = calloc(CORE_BUILD_GROUPS, sizeof *starts);
    if (starts == NULL) {
        region_unmap(sorted, bytes, kind);
        return CORE_BUILD_NOMEM;
    }
    uint32_t shift = 32 - CORE_BUILD_GROUP_BITS;
    for (uint32_t i = 0; i < count; i++)
        starts[index->slots[i].hash >> shift]++;
    uint32_t total = 0;
    for (uint32_t g = 0; g < CORE_BUILD_GROUPS; g++) {
        uint32_t size = starts[g];
        starts[g] = total;
        total += size;
    }
    assert(total == count);
    for (uint32_t i = 0; i < count; i++)
        sorted[starts[index->slots[i].hash >> shift]++] = index->slots[i];
    free(starts);
    memset(index->slots, 0, bytes);
    core_build_result result = CORE_BUILD_OK;
    for (uint32_t i = 0; i < count && result == CORE_BUILD_OK; i++) {
        uint32_t found = index_place_unique(index, pool, ids, sorted[i]);
        if (found != CORE_NONE) {
            uint32_t entity = sorted[i].entry - 1;
            *duplicate = found > entity ? found : entity;
            result = CORE_BUILD_DUPLICATE;
        }
    }
    region_unmap(sorted, bytes, kind);
    return result;
}

void core_index_insert(core_index *index, uint32_t hash, uint32_t entity)
{
    assert(index->capacity > 0 && (uint64_t)(index->used + 1) * 4 <=
                                      (uint64_t)index->capacity * 3);
    assert(entity < CORE_ENTITY_MAX);
    core_slot slot = {hash, entity + 1};
    index_place(index->slots, index->capacity - 1, core_index_home(index, hash), slot);
    index->used++;
}

uint64_t core_index_memory(const core_index *index)
{
    return ((uint64_t)index->capacity + index->old_capacity + index->next_capacity) * sizeof(core_slot);
}
