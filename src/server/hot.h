/*
 * hot.h -- which SKUs take the load now: the SKUs with the most operations
 * and the most refusals over the last HOT_WINDOW_S seconds, for INFO,
 * /metrics and GET /v1/hot (docs/operations.md, "Hot SKUs").
 *
 * Memory and time are bounded whatever the number of SKUs: the window is
 * HOT_SLOTS sub-windows, and each keeps, per ranking, a Space-Saving summary
 * of HOT_TRACKED counters. A SKU not tracked takes the place of the one
 * with the smallest count and inherits that count as its possible
 * overestimate (error), so any SKU with more than 1/HOT_TRACKED of a
 * sub-window's operations is certain to be tracked. Over the window a
 * SKU's count sums the sub-windows, and for each full summary that does
 * not track it adds that summary's smallest count (what it may have had
 * there before it was evicted) to count and error alike: the count is
 * never under the truth, and at most error over it. Touched only on the
 * loop thread.
 */
#ifndef STOCK_SERVER_HOT_H
#define STOCK_SERVER_HOT_H

#include <stddef.h>
#include <stdint.h>

#include "stock.h"

#define HOT_WINDOW_S 60        /* the sliding window */
#define HOT_SLOTS 6            /* sub-windows of HOT_WINDOW_S / HOT_SLOTS seconds */
#define HOT_TRACKED 128        /* counters per sub-window and ranking */
#define HOT_TOP 10             /* SKUs a ranking reports */

typedef enum hot_rank {
    HOT_BY_OPERATIONS,     /* every op on the SKU (an order: each line) */
    HOT_BY_REFUSALS,       /* ops the stock rules refused (INSUFFICIENT, ...) */
    HOT_RANKS
} hot_rank;

/* One SKU of a ranking. */
typedef struct hot_item {
    char sku[STOCK_ID_MAX + 1];
    uint64_t count;        /* over the window; at most error above the truth */
    uint64_t error;
} hot_item;

typedef struct hot_entry {
    uint64_t hash;
    uint64_t count;
    uint64_t error;
    uint8_t len;
    char sku[STOCK_ID_MAX];
} hot_entry;

typedef struct hot_summary {
    uint32_t used;
    hot_entry entries[HOT_TRACKED];
} hot_summary;

typedef struct hot_slot {
    uint64_t epoch;        /* now_ms / (the sub-window's ms) when filled */
    hot_summary rank[HOT_RANKS];
} hot_slot;

typedef struct hot {
    hot_slot slots[HOT_SLOTS];
} hot;

/* Counts the ops of a completed batch at now_ms (a monotonic clock): each
 * op that names a SKU (set, add, deduct, get; every line of an order) in
 * HOT_BY_OPERATIONS, and each one refused by the stock rules in
 * HOT_BY_REFUSALS (a refused order: the SKU of its failed line). INVALID
 * ops, store failures and refunds (which name a line, not a SKU) are not
 * counted. */
void hot_count_batch(hot *h, const stock_batch *batch, uint64_t now_ms);

/* Fills items (room for HOT_TOP) with the ranking's top SKUs over the
 * window ending at now_ms, largest count first (ties: by SKU); returns how
 * many. */
size_t hot_top(const hot *h, hot_rank rank, uint64_t now_ms, hot_item *items);

/* The ranking's name: "operations", "refusals". */
const char *hot_rank_name(hot_rank rank);

#endif /* STOCK_SERVER_HOT_H */
