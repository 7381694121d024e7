/*
 * redis_events_sum.c -- a SKU's available stock for the stock events of a
 * store with buckets on a Redis Cluster (layout 5, docs/events.md "From
 * Redis"). Each record there holds one bucket's levels, and the buckets'
 * records are in different streams, read in turn: no record says the
 * SKU's total. So this keeps, per SKU, the level of each bucket after its
 * latest record read, and turns a record's move of one bucket into a move
 * of their sum.
 *
 * Where a SKU's levels start (rd_sums_seed): a bucket whose stream this
 * follower reads from its first record counts from 0 (its records will all
 * be read); any other (a follower started again, reading a stream from its
 * group's position) from its level in the store when the SKU is first met,
 * which may be ahead of the records of it still to read: until they are
 * read, the sum mixes that level with the others'. No record is skipped:
 * each moves its bucket from its own before (bv) to its own after (av).
 *
 * A move between buckets (fields mv, its id, and q, the units: negative
 * out of the source, positive into the target) is two records in two
 * streams, read at different times. Between them its units would be
 * missing from the sum (or counted twice), which would read as a sale or
 * a restock; so a half whose other half has not been read yet counts its
 * units as still where they were (transit), until the other half comes or
 * every stream has been read RD_SUMS_MOVE_WAIT_MS of the store's time past
 * it (a move whose client died waits for the sweep: its units are then
 * missing, as a get of the store shows them). The reader says how far
 * every stream has been read (read_ms): a record's own time is not enough,
 * since one stream's records can be read well ahead of another's (a
 * backlog), and the other half would then come after its half was given
 * up.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/redis.h"

#define RD_SUMS_INITIAL 1024          /* slots of the SKU table at first (a power of 2) */
#define RD_SUMS_MOVES_MAX 1024        /* halves of moves waiting for the other half */
#define RD_SUMS_MOVE_WAIT_MS 10000    /* how long a half waits for the other */
#define RD_SUMS_MOVE_ID_MAX 64        /* bytes of a move id kept (ids are ~40) */

typedef struct rd_sums_sku {
    char *sku;                        /* NULL: a free slot */
    int64_t level[RD_BUCKETS_MAX];    /* each bucket's available after its latest record */
    __int128 transit;                 /* units of half-read moves counted where they were */
} rd_sums_sku;

typedef struct rd_sums_move {
    char id[RD_SUMS_MOVE_ID_MAX + 1];
    char sku[STOCK_ID_MAX + 1];
    int64_t units;                    /* what it adds to its SKU's transit */
    int64_t ms;                       /* the store's time of its record */
} rd_sums_move;

struct rd_sums {
    uint32_t buckets;
    rd_sums_sku *skus;
    size_t capacity, count;
    rd_sums_move moves[RD_SUMS_MOVES_MAX];
    size_t move_count;
};

rd_sums *rd_sums_new(uint32_t buckets)
{
    assert(buckets >= 2 && buckets <= RD_BUCKETS_MAX);
    rd_sums *sums = calloc(1, sizeof *sums);
    if (sums == NULL)
        return NULL;
    sums->buckets = buckets;
    sums->capacity = RD_SUMS_INITIAL;
    sums->skus = calloc(sums->capacity, sizeof *sums->skus);
    if (sums->skus == NULL) {
        free(sums);
        return NULL;
    }
    return sums;
}

void rd_sums_free(rd_sums *sums)
{
    if (sums == NULL)
        return;
    for (size_t i = 0; i < sums->capacity; i++)
        free(sums->skus[i].sku);
    free(sums->skus);
    free(sums);
}

/* FNV-1a of the SKU's id. */
static uint64_t sku_hash(const char *sku)
{
    uint64_t hash = 1469598103934665603u;
    for (const unsigned char *c = (const unsigned char *)sku; *c != '\0'; c++)
        hash = (hash ^ *c) * 1099511628211u;
    return hash;
}

/* The slot of sku: its own, or the free one it would take. */
static rd_sums_sku *slot_of(rd_sums_sku *skus, size_t capacity, const char *sku)
{
    size_t mask = capacity - 1;
    for (size_t i = sku_hash(sku) & mask;; i = (i + 1) & mask)
        if (skus[i].sku == NULL || strcmp(skus[i].sku, sku) == 0)
            return &skus[i];
}

static bool grow(rd_sums *sums)
{
    size_t capacity = sums->capacity * 2;
    rd_sums_sku *skus = calloc(capacity, sizeof *skus);
    if (skus == NULL)
        return false;
    for (size_t i = 0; i < sums->capacity; i++)
        if (sums->skus[i].sku != NULL)
            *slot_of(skus, capacity, sums->skus[i].sku) = sums->skus[i];
    free(sums->skus);
    sums->skus = skus;
    sums->capacity = capacity;
    return true;
}

bool rd_sums_known(const rd_sums *sums, const char *sku)
{
    return slot_of(sums->skus, sums->capacity, sku)->sku != NULL;
}

bool rd_sums_seed(rd_sums *sums, const char *sku, const int64_t *levels)
{
    assert(!rd_sums_known(sums, sku));
    if (2 * (sums->count + 1) > sums->capacity && !grow(sums))
        return false;
    rd_sums_sku *entry = slot_of(sums->skus, sums->capacity, sku);
    entry->sku = strdup(sku);
    if (entry->sku == NULL)
        return false;
    memcpy(entry->level, levels, sums->buckets * sizeof levels[0]);
    entry->transit = 0;
    sums->count++;
    return true;
}

/* Drops the half at index m, taking its units out of its SKU's transit. */
static void move_drop(rd_sums *sums, size_t m)
{
    rd_sums_sku *entry = slot_of(sums->skus, sums->capacity, sums->moves[m].sku);
    if (entry->sku != NULL)
        entry->transit -= sums->moves[m].units;
    sums->moves[m] = sums->moves[--sums->move_count];
}

/* Drops the halves that waited too long: every stream, the other half's
 * included, has been read past their time by more than the wait. */
static void moves_expire(rd_sums *sums, int64_t now_ms)
{
    for (size_t m = 0; m < sums->move_count;)
        if (now_ms - sums->moves[m].ms > RD_SUMS_MOVE_WAIT_MS)
            move_drop(sums, m);
        else
            m++;
}

/* Counts a half of move id (units: what it adds to the transit), or pairs
 * it with the other half read before. */
static void move_half(rd_sums *sums, rd_sums_sku *entry, const char *id, int64_t units,
                      int64_t ms)
{
    for (size_t m = 0; m < sums->move_count; m++)
        if (strncmp(sums->moves[m].id, id, RD_SUMS_MOVE_ID_MAX) == 0 &&
            strcmp(sums->moves[m].sku, entry->sku) == 0) {
            move_drop(sums, m);
            return;
        }
    if (sums->move_count == RD_SUMS_MOVES_MAX) {
        size_t oldest = 0;
        for (size_t m = 1; m < sums->move_count; m++)
            if (sums->moves[m].ms < sums->moves[oldest].ms)
                oldest = m;
        move_drop(sums, oldest);
    }
    rd_sums_move *move = &sums->moves[sums->move_count++];
    snprintf(move->id, sizeof move->id, "%s", id);
    snprintf(move->sku, sizeof move->sku, "%s", entry->sku);
    move->units = units;
    move->ms = ms;
    entry->transit += move->units;
}

void rd_sums_apply(rd_sums *sums, uint32_t bucket, const char *move_id, int64_t qty, int64_t ms,
                   int64_t read_ms, core_change *change)
{
    assert(bucket < sums->buckets);
    moves_expire(sums, read_ms < ms ? read_ms : ms);
    rd_sums_sku *entry = slot_of(sums->skus, sums->capacity, change->sku);
    assert(entry->sku != NULL);   /* seeded first */
    __int128 others = 0;
    for (uint32_t j = 0; j < sums->buckets; j++)
        if (j != bucket)
            others += entry->level[j];
    int64_t before = rd_sum_clamp(others + change->before + entry->transit);
    if (move_id != NULL)
        move_half(sums, entry, move_id, qty == INT64_MIN ? INT64_MAX : -qty, ms);
    entry->level[bucket] = change->after;
    change->before = before;
    change->after = rd_sum_clamp(others + change->after + entry->transit);
}
