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
    listing->code = pg_list_page(conn, request, check, entries, count, listing->message,
                                 listing->message_size);
    return listing->code == STOCK_OK;
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
