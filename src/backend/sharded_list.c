/*
 * sharded_list.c -- one page of a listing (stock_list) over the members,
 * read on their control sessions on the worker's thread (worker_list).
 *
 * Every member lists in byte order of the ids (postgres_list.c), so the
 * store's order is the same: a SKU listing asks each member for a page
 * after `after` and merges them, keeping the max smallest ids; a SKU's
 * lines live on the SKU's shard alone, which answers the page; an order's
 * lines (at most STOCK_ORDER_LINES_MAX, over its shards' parts) are merged
 * in byte order of their line ids; a line's refunds live with the line, on
 * the one member that knows the line, asked in turn until one does. Names
 * are checked where they live: the
 * `after` SKU on its shard, `of` on the SKU's shard; the other members are
 * asked without checks. Memory: one page per member during the merge.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sharded.h"
#include "lib/message.h"

static int entry_cmp(const void *left, const void *right)
{
    return strcmp(((const stock_list_entry *)left)->id, ((const stock_list_entry *)right)->id);
}

/* One member's page into entries; false with listing->code set. */
static bool member_page(sharded_store *store, uint32_t i, const list_request *request,
                        bool check, stock_list_entry *entries, uint32_t *count,
                        worker_listing *listing)
{
    PGconn *conn = shard_control(store, i, listing->message, listing->message_size);
    if (conn == NULL) {
        listing->code = STOCK_UNAVAILABLE;
        return false;
    }
    char why[STOCK_MESSAGE_MAX];
    listing->code = pg_list_page(conn, store->shards[i].options.timeout_ms, request, check,
                                 entries, count, why, sizeof why);
    if (listing->code == STOCK_OK)
        return true;
    if (listing->code == STOCK_UNAVAILABLE) {
        message_set(listing->message, listing->message_size, "shard %u (%s): %s", i,
                    store->shards[i].name, why);
        shard_mark_down(store, i);
    } else {
        message_set(listing->message, listing->message_size, "%s", why);
    }
    return false;
}

/* A hot SKU is listed by each member that holds one of its pieces: folds
 * the sorted entries of one SKU into one, its totals summed. Every SKU kept
 * within the first max is whole: each member's page reaches at least as
 * far as the max-th SKU of the union. Returns the count left. */
static uint32_t sum_pieces(stock_list_entry *entries, uint32_t count)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (kept > 0 && strcmp(entries[kept - 1].id, entries[i].id) == 0) {
            stock_sku_info *into = &entries[kept - 1].info.sku_info;
            const stock_sku_info *piece = &entries[i].info.sku_info;
            into->available += piece->available;
            into->adjusted += piece->adjusted;
            into->deducted += piece->deducted;
            into->refunded += piece->refunded;
            into->held += piece->held;
        } else if (kept++ != i) {
            entries[kept - 1] = entries[i];
        }
    }
    return kept;
}

/* Every member's page of the same request, merged in byte order and cut
 * to max. home: the member that checks the names (-1: none). */
static void merge_members(sharded_store *store, worker_listing *listing,
                          const list_request *request, int64_t home)
{
    stock_list_entry *all = calloc((size_t)store->count * request->max, sizeof *all);
    if (all == NULL) {
        message_set(listing->message, listing->message_size, "out of memory");
        listing->code = STOCK_NOMEM;
        return;
    }
    uint32_t total = 0;
    for (uint32_t i = 0; i < store->count; i++) {
        uint32_t count = 0;
        if (!member_page(store, i, request, (int64_t)i == home, all + total, &count, listing))
            break;
        total += count;
    }
    if (listing->code == STOCK_OK) {
        qsort(all, total, sizeof *all, entry_cmp);
        if (request->kind == STOCK_LIST_SKUS)
            total = sum_pieces(all, total);
        *listing->count = total < request->max ? total : request->max;
        memcpy(listing->entries, all, *listing->count * sizeof *all);
    }
    free(all);
}

/* An order's lines from every member, in byte order of line ids, from the
 * one after `after`. */
static void order_lines(sharded_store *store, worker_listing *listing)
{
    list_request all = *listing->request;
    all.after = (stock_id){NULL, 0};
    all.max = STOCK_ORDER_LINES_MAX;
    stock_list_entry *entries = listing->entries;
    uint32_t max = listing->request->max;
    stock_list_entry lines[STOCK_ORDER_LINES_MAX];
    listing->entries = lines;
    merge_members(store, listing, &all, -1);
    listing->entries = entries;
    uint32_t count = *listing->count, first = 0;
    *listing->count = 0;
    if (listing->code != STOCK_OK)
        return;
    if (count == 0) {
        message_set(listing->message, listing->message_size, "order=%.*s",
                    (int)all.of.len, all.of.ptr);
        listing->code = STOCK_NOT_FOUND;
        return;
    }
    if (listing->request->after.ptr != NULL) {
        stock_id after = listing->request->after;
        while (first < count && (strlen(lines[first].id) != after.len ||
                                 memcmp(lines[first].id, after.ptr, after.len) != 0))
            first++;
        if (first == count) {
            message_set(listing->message, listing->message_size, "line=%.*s",
                        (int)after.len, after.ptr);
            listing->code = STOCK_NOT_FOUND;
            return;
        }
        first++;
    }
    *listing->count = count - first < max ? count - first : max;
    memcpy(entries, lines + first, *listing->count * sizeof *entries);
}

/* A line's refunds: the page of the member that has the line (the others
 * answer NOT_FOUND "line=..."). */
static void line_refunds(sharded_store *store, worker_listing *listing)
{
    for (uint32_t i = 0; i < store->count; i++) {
        if (member_page(store, i, listing->request, true, listing->entries, listing->count,
                        listing) ||
            listing->code != STOCK_NOT_FOUND || strncmp(listing->message, "line=", 5) != 0)
            return;
    }
}

/* A hot SKU's lines, with its pieces: merged like SKUs, after checking
 * that piece 0 (which every hot SKU has, see sharded_hot.c) holds the SKU
 * and some piece the line `after`. */
static void hot_lines(sharded_store *store, worker_listing *listing)
{
    const list_request *request = listing->request;
    list_request first = *request;
    first.after = (stock_id){NULL, 0};
    first.max = 0;
    if (!member_page(store, shard_of(store, request->of), &first, true, listing->entries,
                     listing->count, listing))
        return;
    bool found = request->after.ptr == NULL;
    char line[STOCK_ID_MAX + 1], sku[STOCK_ID_MAX + 1];
    snprintf(line, sizeof line, "%.*s", (int)request->after.len, request->after.ptr);
    snprintf(sku, sizeof sku, "%.*s", (int)request->of.len, request->of.ptr);
    const char *values[2] = {line, sku};
    for (uint32_t j = 0; !found && j < shard_spread(store, request->of); j++) {
        PGresult *result = shard_exec(store, shard_piece(store, request->of, j),
                                      "SELECT 1 FROM inventory_flow WHERE line_id = $1 "
                                      "AND sku_id = $2", 2, values, PGRES_TUPLES_OK,
                                      listing->message, listing->message_size);
        if (result == NULL) {
            listing->code = STOCK_UNAVAILABLE;
            return;
        }
        found = PQntuples(result) > 0;
        PQclear(result);
    }
    if (!found) {
        message_set(listing->message, listing->message_size, "line=%s", line);
        listing->code = STOCK_NOT_FOUND;
        return;
    }
    merge_members(store, listing, request, -1);
}

static void run_listing(stock_t *base, worker_listing *listing)
{
    sharded_store *store = (sharded_store *)base;
    const list_request *request = listing->request;
    *listing->count = 0;
    switch (request->kind) {
    case STOCK_LIST_SKUS:
        merge_members(store, listing, request,
                      request->after.ptr != NULL ? (int64_t)shard_of(store, request->after) : -1);
        break;
    case STOCK_LIST_SKU_LINES:
        if (shard_spread(store, request->of) > 1)
            hot_lines(store, listing);
        else
            member_page(store, shard_of(store, request->of), request, true, listing->entries,
                        listing->count, listing);
        break;
    case STOCK_LIST_ORDER_LINES:
        order_lines(store, listing);
        break;
    case STOCK_LIST_LINE_REFUNDS:
        line_refunds(store, listing);
        break;
    }
}

stock_code sharded_list(stock_t *base, const list_request *request, stock_list_entry *entries,
                        uint32_t *count, char *message, size_t message_size)
{
    sharded_store *store = (sharded_store *)base;
    return worker_list(&store->worker, run_listing, request, entries, count, message,
                       message_size);
}
