/*
 * hot.c -- the top SKUs by operations and by refusals over a sliding
 * window, in bounded memory (see hot.h).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "server/hot.h"

#define HOT_SLOT_MS ((uint64_t)HOT_WINDOW_S * 1000 / HOT_SLOTS)
#define HOT_MERGED_MAX (HOT_SLOTS * HOT_TRACKED)

/* The index of the counter with the smallest count of a full summary:
 * the one a newcomer takes (Space-Saving). */
static uint32_t summary_least(const hot_summary *s)
{
    assert(s->used == HOT_TRACKED);
    uint32_t least = 0;
    for (uint32_t i = 1; i < HOT_TRACKED; i++)
        if (s->entries[i].count < s->entries[least].count)
            least = i;
    return least;
}

/* Adds amount to id's counter in summary s (Space-Saving). */
static void summary_add(hot_summary *s, stock_id id, uint64_t hash, uint64_t amount)
{
    assert(id.len >= 1 && id.len <= STOCK_ID_MAX);
    for (uint32_t i = 0; i < s->used; i++) {
        hot_entry *e = &s->entries[i];
        if (e->hash == hash && e->len == id.len && memcmp(e->sku, id.ptr, id.len) == 0) {
            e->count += amount;
            return;
        }
    }
    hot_entry *slot = NULL;
    uint64_t inherited = 0;
    if (s->used < HOT_TRACKED) {
        slot = &s->entries[s->used++];
    } else {
        slot = &s->entries[summary_least(s)];
        inherited = slot->count;   /* the newcomer may have had that many */
    }
    slot->hash = hash;
    slot->count = inherited + amount;
    slot->error = inherited;
    slot->len = (uint8_t)id.len;
    memcpy(slot->sku, id.ptr, id.len);
}

/* The sub-window of now_ms, emptied if it last held an older one. */
static hot_slot *current_slot(hot *h, uint64_t now_ms)
{
    uint64_t epoch = now_ms / HOT_SLOT_MS;
    hot_slot *slot = &h->slots[epoch % HOT_SLOTS];
    if (slot->epoch != epoch) {
        memset(slot, 0, sizeof *slot);
        slot->epoch = epoch;
    }
    return slot;
}

/* Consecutive counts of one SKU in one rank, added to the summary as one:
 * Space-Saving adding an id n times in a row ends as adding it once with
 * amount n (the first add finds or takes a counter, the others find it),
 * and a flash sale's batch names its one hot SKU hundreds of times, each
 * add a scan of the summary, a hash and a validity check. */
typedef struct hot_run {
    stock_id sku;
    uint64_t amount;   /* 0: no run */
} hot_run;

static void run_flush(hot_slot *slot, hot_rank rank, hot_run *run)
{
    if (run->amount > 0 && stock_id_valid(run->sku))
        summary_add(&slot->rank[rank], run->sku, XXH3_64bits(run->sku.ptr, run->sku.len),
                    run->amount);
    run->amount = 0;
}

static void count_sku(hot_slot *slot, hot_rank rank, hot_run *runs, stock_id sku)
{
    hot_run *run = &runs[rank];
    if (run->amount > 0 && run->sku.len == sku.len &&
        (sku.len == 0 || memcmp(run->sku.ptr, sku.ptr, sku.len) == 0)) {
        run->amount++;
        return;
    }
    run_flush(slot, rank, run);
    *run = (hot_run){sku, 1};
}

/* Refusals by the stock rules, as opposed to bad input or a failing store. */
static bool refused(stock_code code)
{
    return code == STOCK_INSUFFICIENT || code == STOCK_NOT_FOUND || code == STOCK_CONFLICT ||
           code == STOCK_EXCEEDS || code == STOCK_MISMATCH;
}

static void count_op(hot_slot *slot, hot_run *runs, const stock_op *op)
{
    if (op->code == STOCK_INVALID || (!stock_code_succeeded(op->code) && !refused(op->code)))
        return;
    bool refusal = refused(op->code);
    if (op->type == STOCK_OP_ORDER) {
        for (uint32_t i = 0; i < op->line_count; i++)
            count_sku(slot, HOT_BY_OPERATIONS, runs, op->lines[i].sku);
        if (refusal && op->failed_line >= 0 && (uint32_t)op->failed_line < op->line_count)
            count_sku(slot, HOT_BY_REFUSALS, runs, op->lines[op->failed_line].sku);
        return;
    }
    if (op->type == STOCK_OP_REFUND || op->type == STOCK_OP_LINE)
        return;
    count_sku(slot, HOT_BY_OPERATIONS, runs, op->sku);
    if (refusal)
        count_sku(slot, HOT_BY_REFUSALS, runs, op->sku);
}

void hot_count_batch(hot *h, const stock_batch *batch, uint64_t now_ms)
{
    assert(h != NULL && batch != NULL && batch->count <= STOCK_BATCH_MAX);
    hot_slot *slot = current_slot(h, now_ms);
    hot_run runs[HOT_RANKS] = {{{NULL, 0}, 0}};
    for (size_t i = 0; i < batch->count; i++)
        count_op(slot, runs, &batch->ops[i]);
    for (int rank = 0; rank < HOT_RANKS; rank++)
        run_flush(slot, (hot_rank)rank, &runs[rank]);
}

/* ------------------------------------------------------------ ranking */

typedef struct merged {
    const hot_entry *first;    /* for the SKU's bytes */
    uint64_t count, error;
    uint32_t slots;            /* the sub-windows that track it, one bit each */
} merged;

static int merged_compare(const void *a, const void *b)
{
    const merged *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    int order = memcmp(x->first->sku, y->first->sku,
                       x->first->len < y->first->len ? x->first->len : y->first->len);
    return order != 0 ? order : (int)x->first->len - (int)y->first->len;
}

/* Adds e, tracked by sub-window s, to the merge: summed with the same SKU
 * of another sub-window. */
static size_t merge_entry(merged *all, size_t count, const hot_entry *e, size_t s)
{
    for (size_t i = 0; i < count; i++)
        if (all[i].first->hash == e->hash && all[i].first->len == e->len &&
            memcmp(all[i].first->sku, e->sku, e->len) == 0) {
            all[i].count += e->count;
            all[i].error += e->error;
            all[i].slots |= 1u << s;
            return count;
        }
    assert(count < HOT_MERGED_MAX);
    all[count] = (merged){.first = e, .count = e->count, .error = e->error, .slots = 1u << s};
    return count + 1;
}

/* What a SKU the summary does not track may have had in its sub-window:
 * nothing while a counter is free (no SKU was ever evicted), else up to
 * the smallest count, since an evicted SKU's counter went to a newcomer
 * only when it was the smallest, and counts only grow. */
static uint64_t untracked_bound(const hot_summary *summary)
{
    return summary->used < HOT_TRACKED ? 0 : summary->entries[summary_least(summary)].count;
}

size_t hot_top(const hot *h, hot_rank rank, uint64_t now_ms, hot_item *items)
{
    assert(h != NULL && (unsigned)rank < HOT_RANKS && items != NULL);
    merged all[HOT_MERGED_MAX];
    uint64_t bound[HOT_SLOTS] = {0};
    size_t count = 0;
    uint64_t epoch = now_ms / HOT_SLOT_MS;
    for (size_t s = 0; s < HOT_SLOTS; s++) {
        const hot_slot *slot = &h->slots[s];
        if (slot->epoch > epoch || epoch - slot->epoch >= HOT_SLOTS)
            continue;   /* outside the window (or never filled) */
        bound[s] = untracked_bound(&slot->rank[rank]);
        for (uint32_t i = 0; i < slot->rank[rank].used; i++)
            count = merge_entry(all, count, &slot->rank[rank].entries[i], s);
    }
    /* A SKU evicted from one sub-window's summary and tracked in another
     * would otherwise be reported under its true count. */
    for (size_t i = 0; i < count; i++)
        for (size_t s = 0; s < HOT_SLOTS; s++)
            if (!(all[i].slots & (1u << s))) {
                all[i].count += bound[s];
                all[i].error += bound[s];
            }
    qsort(all, count, sizeof *all, merged_compare);
    size_t top = count < HOT_TOP ? count : HOT_TOP;
    for (size_t i = 0; i < top; i++) {
        memcpy(items[i].sku, all[i].first->sku, all[i].first->len);
        items[i].sku[all[i].first->len] = '\0';
        items[i].count = all[i].count;
        items[i].error = all[i].error;
    }
    return top;
}

const char *hot_rank_name(hot_rank rank)
{
    return rank == HOT_BY_OPERATIONS ? "operations" : "refusals";
}
