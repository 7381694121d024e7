/*
 * redis_list.c -- one page of a listing (stock_list) read from the key
 * layout of docs/redis.md with plain commands, on the worker's connection
 * between two chains (worker_list), so a page shows every batch
 * submitted before it.
 *
 * Redis keeps no order of its own over keys or hash fields, so a page is in
 * byte order of the ids, as postgres's: SCAN over the SKU keys (or HSCAN
 * over the SKU's flow hash) from start to end, keeping only the `max`
 * smallest ids after `after`. A page therefore costs one pass over the
 * store's SKUs, or over the SKU's lines, while its memory stays two pages
 * whatever the store holds. An order's lines come from its record, in the
 * order's line order. A line's refunds are those of its SKU's refunds hash
 * (HSCAN, the SKU found in the line's directory entry) that name it. On a Redis Cluster every command goes to the master
 * of its key's slot, and the SKU scan visits every master.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/redis.h"
#include "lib/message.h"

#define RD_SCAN_COUNT "1000"    /* SCAN / HSCAN's COUNT hint per call */
#define RD_KEY_MAX (RD_PREFIX_MAX + RD_BUCKET_TAG_MAX + 24)

/* The page being built: up to 2 * max candidates, cut back to the max
 * smallest when full. */
typedef struct rd_page {
    stock_list_entry *slots;
    uint32_t count;
    uint32_t max;
    const char *after;          /* "" from the first */
    char bound[STOCK_ID_MAX + 1];   /* after a cut: the largest id kept, so
                                       no larger id can be on the page */
} rd_page;

static bool link_lost(rd_store *store, worker_listing *listing, const redisContext *conn);

static int entry_cmp(const void *left, const void *right)
{
    return strcmp(((const stock_list_entry *)left)->id, ((const stock_list_entry *)right)->id);
}

/* Sorts the candidates and keeps the max smallest. */
static void page_cut(rd_page *page)
{
    qsort(page->slots, page->count, sizeof page->slots[0], entry_cmp);
    if (page->count >= page->max) {
        page->count = page->max;
        memcpy(page->bound, page->slots[page->max - 1].id, sizeof page->bound);
    }
}

/* A slot for id if it may belong to the page (NULL if not): after `after`
 * and, once the page is full, before its largest. */
static stock_list_entry *page_offer(rd_page *page, const char *id, size_t len)
{
    if (len == 0 || len > STOCK_ID_MAX)
        return NULL;
    char text[STOCK_ID_MAX + 1];
    memcpy(text, id, len);
    text[len] = '\0';
    if (strcmp(text, page->after) <= 0)
        return NULL;
    if (page->bound[0] != '\0' && strcmp(text, page->bound) >= 0)
        return NULL;
    if (page->count == 2 * page->max)
        page_cut(page);
    stock_list_entry *slot = &page->slots[page->count++];
    memset(slot, 0, sizeof *slot);
    memcpy(slot->id, text, len + 1);
    return slot;
}

/* Node n's connection (node 0: the single server). */
static redisContext *node_conn(rd_store *store, int node)
{
    return store->link.nodes[node].conn;
}

/* The node serving key: 0 on a single server, else its slot's master
 * (RD_NO_NODE when the map names none). */
static int node_of(const rd_store *store, const char *key, size_t len)
{
    return store->options.cluster ? store->link.slot_node[rd_key_slot(key, len)] : 0;
}

/* Runs a command on node (-1: the node of its key, argv[1]); NULL
 * (listing->code UNAVAILABLE, the link dropped) when the link failed, or
 * the reply (an error reply: listing->code IO). */
static redisReply *command(rd_store *store, worker_listing *listing, int node, int argc,
                           const char **argv, const size_t *lengths)
{
    if (node < 0)
        node = node_of(store, argv[1], lengths != NULL ? lengths[1] : strlen(argv[1]));
    if (node == RD_NO_NODE) {
        message_set(listing->message, listing->message_size, "redis: listing: no master "
                    "serves the slot of %s; ask again", argv[1]);
        listing->code = STOCK_UNAVAILABLE;
        return NULL;
    }
    redisReply *reply = redisCommandArgv(node_conn(store, node), argc, argv, lengths);
    if (reply == NULL) {
        link_lost(store, listing, node_conn(store, node));
        return NULL;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        message_set(listing->message, listing->message_size, "redis: listing: %s", reply->str);
        listing->code = STOCK_IO;
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* The key P{kind:id}suffix into out. */
static size_t key_of(const rd_store *store, const char *kind, stock_id id, const char *suffix,
                     char out[RD_KEY_MAX])
{
    int len = snprintf(out, RD_KEY_MAX, "%s{%s:%.*s}%s", store->options.prefix, kind,
                       (int)id.len, id.ptr, suffix);
    assert(len > 0 && len < RD_KEY_MAX);
    return (size_t)len;
}

/* The key of bucket (0: the home) of sku, with suffix. */
static size_t bucket_key(const rd_store *store, stock_id sku, uint32_t bucket, const char *suffix,
                         char out[RD_KEY_MAX])
{
    return rd_bucket_key(store->options.prefix, sku, bucket, store->options.buckets, suffix, out,
                         RD_KEY_MAX);
}

/* The key of a record hash at a directory entry's owner: a SKU's home, or
 * with buckets on a cluster a location "S j" (rd_cb_location). */
static size_t owner_key(const rd_store *store, const char *owner, const char *suffix,
                        char out[RD_KEY_MAX])
{
    uint32_t bucket = 0;
    stock_id sku = rd_cb_location_parse(owner, &bucket);
    if (!rd_cb_on(&store->options) || bucket >= store->options.buckets)
        bucket = 0;
    return bucket_key(store, sku, bucket, suffix, out);
}

/* HGET key field: the reply (string or nil); NULL on a failure. */
static redisReply *hget(rd_store *store, worker_listing *listing, const char *key, const char *field,
                        size_t field_len)
{
    const char *argv[] = {"HGET", key, field};
    const size_t lengths[] = {4, strlen(key), field_len};
    return command(store, listing, -1, 3, argv, lengths);
}

/* Reads a flow value "qty refunded time_us available_after order" (a
 * tombstone starts with '~': false). */
static bool line_parse(const char *value, const char *sku, stock_line_info *line)
{
    char order[STOCK_ID_MAX + 1];
    long long qty, refunded, time_us, after;
    if (value[0] == '~' ||
        sscanf(value, "%lld %lld %lld %lld %64s", &qty, &refunded, &time_us, &after, order) != 5)
        return false;
    snprintf(line->sku, sizeof line->sku, "%s", sku);
    snprintf(line->order_id, sizeof line->order_id, "%s", strcmp(order, "-") == 0 ? "" : order);
    line->qty = qty;
    line->refunded = refunded;
    line->time_us = time_us;
    line->available_after = after;
    return true;
}

/* Whether `after` names something (NOT_FOUND otherwise), and `of` for the
 * SKU's lines: the SKU, and after a line of its flow. */
static bool names_exist(rd_store *store, worker_listing *listing)
{
    const list_request *request = listing->request;
    char key[RD_KEY_MAX];
    bool skus = request->kind == STOCK_LIST_SKUS;
    if (!skus) {
        const char *argv[] = {"EXISTS", key};
        size_t lengths[] = {6, key_of(store, "sku", request->of, "", key)};
        redisReply *reply = command(store, listing, -1, 2, argv, lengths);
        if (reply == NULL)
            return false;
        bool found = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
        freeReplyObject(reply);
        if (!found) {
            message_set(listing->message, listing->message_size, "sku=%.*s",
                        (int)request->of.len, request->of.ptr);
            listing->code = STOCK_NOT_FOUND;
            return false;
        }
    }
    if (request->after.ptr == NULL)
        return true;
    redisReply *reply = NULL;
    if (skus) {
        const char *argv[] = {"EXISTS", key};
        size_t lengths[] = {6, key_of(store, "sku", request->after, "", key)};
        reply = command(store, listing, -1, 2, argv, lengths);
    } else {
        /* With buckets on a cluster a lone line lies in its bucket's flow,
         * an order's line in the home's. */
        uint32_t bucket = rd_cb_on(&store->options)
                              ? rd_cb_line_bucket(request->after, store->options.buckets) : 0;
        bucket_key(store, request->of, bucket, ":flow", key);
        reply = hget(store, listing, key, request->after.ptr, request->after.len);
        if (reply != NULL && bucket != 0 && reply->type != REDIS_REPLY_STRING) {
            freeReplyObject(reply);
            key_of(store, "sku", request->of, ":flow", key);
            reply = hget(store, listing, key, request->after.ptr, request->after.len);
        }
    }
    if (reply == NULL)
        return false;
    bool found = skus ? reply->type == REDIS_REPLY_INTEGER && reply->integer == 1
                      : reply->type == REDIS_REPLY_STRING && reply->str[0] != '~';
    freeReplyObject(reply);
    if (!found) {
        message_set(listing->message, listing->message_size, "%s=%.*s", skus ? "sku" : "line",
                    (int)request->after.len, request->after.ptr);
        listing->code = STOCK_NOT_FOUND;
    }
    return found;
}

/* A SCAN or HSCAN reply's cursor and items; false when malformed. */
static bool scan_parts(worker_listing *listing, const redisReply *reply, const char **cursor,
                       const redisReply **items)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        message_set(listing->message, listing->message_size, "redis: listing: a malformed "
                    "SCAN reply");
        listing->code = STOCK_IO;
        return false;
    }
    *cursor = reply->element[0]->str;
    *items = reply->element[1];
    return true;
}

/* Offers each SKU key of one SCAN reply: P{sku:S}, nothing after the
 * brace (the SKU's other keys have a suffix). */
static void offer_skus(const rd_store *store, rd_page *page, const redisReply *items)
{
    size_t head = strlen(store->options.prefix) + strlen("{sku:");
    for (size_t i = 0; i < items->elements; i++) {
        const redisReply *key = items->element[i];
        if (key->type == REDIS_REPLY_STRING && key->len > head + 1 && key->str[key->len - 1] == '}')
            page_offer(page, key->str + head, key->len - head - 1);
    }
}

/* Offers each line of one HSCAN reply of the SKU's flow (field, value). */
static void offer_lines(rd_page *page, const char *sku, const redisReply *items)
{
    for (size_t i = 0; i + 1 < items->elements; i += 2) {
        const redisReply *field = items->element[i], *value = items->element[i + 1];
        if (field->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING ||
            value->str[0] == '~')
            continue;
        stock_list_entry *slot = page_offer(page, field->str, field->len);
        if (slot != NULL && !line_parse(value->str, sku, &slot->info.line_info))
            page->count--;   /* not a line's value: given back */
    }
}

/* Reads a refund value "line qty available_after" into refund (a
 * tombstone starts with '~': false). */
static bool refund_parse(const char *value, stock_refund_info *refund)
{
    long long qty, after;
    if (value[0] == '~' || sscanf(value, "%64s %lld %lld", refund->line, &qty, &after) != 3)
        return false;
    refund->qty = qty;
    refund->available_after = after;
    return true;
}

/* Offers each refund of the line `line` in one HSCAN reply of its SKU's
 * refunds hash (field, value). */
static void offer_refunds(rd_page *page, const char *line, const redisReply *items)
{
    for (size_t i = 0; i + 1 < items->elements; i += 2) {
        const redisReply *field = items->element[i], *value = items->element[i + 1];
        stock_refund_info refund;
        if (field->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING ||
            !refund_parse(value->str, &refund) || strcmp(refund.line, line) != 0)
            continue;
        stock_list_entry *slot = page_offer(page, field->str, field->len);
        if (slot != NULL)
            slot->info.refund_info = refund;
    }
}

/* Walks SCAN (SKUs) or HSCAN (the SKU's flow, or for a line's refunds the
 * refunds hash of its SKU `sku`) from start to end. */
static bool scan_all(rd_store *store, worker_listing *listing, rd_page *page, const char *sku)
{
    const list_request *request = listing->request;
    bool skus = request->kind == STOCK_LIST_SKUS;
    bool refunds = request->kind == STOCK_LIST_LINE_REFUNDS;
    char key[RD_KEY_MAX], pattern[2 * RD_PREFIX_MAX + 16], cursor[32] = "0", of[STOCK_ID_MAX + 1];
    size_t used = 0;
    for (const char *c = store->options.prefix; *c != '\0'; c++) {
        if (strchr("*?[]\\", *c) != NULL)
            pattern[used++] = '\\';   /* the prefix is matched literally */
        pattern[used++] = *c;
    }
    snprintf(pattern + used, sizeof pattern - used, "{sku:*}");
    snprintf(of, sizeof of, "%.*s", (int)request->of.len, request->of.ptr ? request->of.ptr : "");
    if (refunds)
        owner_key(store, sku, ":refunds", key);
    else if (!skus)
        key_of(store, "sku", request->of, ":flow", key);
    int node = 0, last_node = skus ? store->link.node_count - 1 : 0;
    /* With buckets on a cluster a SKU's lines lie in every bucket's flow. */
    uint32_t bucket = 0;
    uint32_t last_bucket = !skus && !refunds && rd_cb_on(&store->options)
                               ? store->options.buckets - 1 : 0;
    for (;;) {
        const char *scan[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", RD_SCAN_COUNT};
        const char *hscan[] = {"HSCAN", key, cursor, "COUNT", RD_SCAN_COUNT};
        redisReply *reply = skus ? command(store, listing, node, 6, scan, NULL)
                                 : command(store, listing, -1, 5, hscan, NULL);
        const char *next = NULL;
        const redisReply *items = NULL;
        if (reply == NULL || !scan_parts(listing, reply, &next, &items)) {
            if (reply != NULL)
                freeReplyObject(reply);
            return false;
        }
        if (skus)
            offer_skus(store, page, items);
        else if (refunds)
            offer_refunds(page, of, items);
        else
            offer_lines(page, of, items);
        snprintf(cursor, sizeof cursor, "%s", next);
        freeReplyObject(reply);
        if (strcmp(cursor, "0") != 0)
            continue;
        if (bucket < last_bucket) {
            bucket_key(store, request->of, ++bucket, ":flow", key);
            continue;
        }
        if (node == last_node)
            break;
        node++;   /* a cluster: the next master's keys, from the start */
    }
    page_cut(page);
    return true;
}

/* A link lost mid-pipeline (on conn): dropped, UNAVAILABLE. */
static bool link_lost(rd_store *store, worker_listing *listing, const redisContext *conn)
{
    message_set(listing->message, listing->message_size,
                "redis: listing: the connection was lost (%s); nothing changed, ask again",
                conn->errstr);
    rd_link_close(store);
    listing->code = STOCK_UNAVAILABLE;
    return false;
}

/* Adds the totals of bucket (with alone: that bucket alone) of each SKU of
 * the page to its entry. */
static bool read_bucket_totals(rd_store *store, worker_listing *listing, rd_page *page,
                               uint32_t bucket, bool alone)
{
    char key[RD_KEY_MAX];
    int nodes[STOCK_LIST_MAX];   /* each SKU's node: its replies come back in order */
    for (uint32_t i = 0; i < page->count; i++) {
        size_t len = bucket_key(store, stock_id_from_cstr(page->slots[i].id), bucket, "", key);
        nodes[i] = node_of(store, key, len);
        if (nodes[i] == RD_NO_NODE) {
            message_set(listing->message, listing->message_size, "redis: listing: no "
                        "master serves the slot of %s; ask again", key);
            listing->code = STOCK_UNAVAILABLE;
            return false;
        }
        redisContext *conn = node_conn(store, nodes[i]);
        rd_cmd *cmd = &store->cmd;
        stock_id sku = stock_id_from_cstr(page->slots[i].id);
        rd_cmd_fcall(cmd, "get");
        rd_cb_key(cmd, &store->options, sku, bucket, "");
        if (!alone)
            rd_cmd_buckets(cmd, store->options.prefix, sku, store->options.buckets);
        if (redisAppendCommandArgv(conn, cmd->argc, cmd->argv, cmd->len) != REDIS_OK)
            return link_lost(store, listing, conn);
    }
    for (uint32_t i = 0; i < page->count; i++) {
        void *raw = NULL;
        redisContext *conn = node_conn(store, nodes[i]);
        if (redisGetReply(conn, &raw) != REDIS_OK || raw == NULL)
            return link_lost(store, listing, conn);
        redisReply *reply = raw;
        stock_sku_info *info = &page->slots[i].info.sku_info;
        /* Held at the cap: a listing shows every SKU, where one past it
         * would fail the page (a get of that SKU answers INVALID). */
        info->available = rd_sum_held(info->available, rd_element_i64(reply, 1));
        info->adjusted = rd_sum_held(info->adjusted, rd_element_i64(reply, 2));
        info->deducted = rd_sum_held(info->deducted, rd_element_i64(reply, 3));
        info->refunded = rd_sum_held(info->refunded, rd_element_i64(reply, 4));
        freeReplyObject(reply);
    }
    return true;
}

/* Reads the totals of each SKU of the page, pipelined, through the get
 * function, which sums a SKU's buckets; with buckets on a cluster, one get
 * per bucket (each in its own slot), summed here. */
static bool read_totals(rd_store *store, worker_listing *listing, rd_page *page)
{
    uint32_t gets = rd_cb_on(&store->options) ? store->options.buckets : 1;
    for (uint32_t i = 0; i < page->count; i++)
        page->slots[i].info.sku_info = (stock_sku_info){0};
    for (uint32_t bucket = 0; bucket < gets; bucket++)
        if (!read_bucket_totals(store, listing, page, bucket, gets > 1))
            return false;
    return true;
}

/* The record holding an order's lines: its SKU's slot's orders hash, or
 * its own record for an order over several slots; false (NOT_FOUND) when
 * the directory has no such order. */
static bool order_record(rd_store *store, worker_listing *listing, char key[RD_KEY_MAX],
                         const char **field, size_t *field_len)
{
    char gen[RD_GEN_MAX], owner[RD_OWNER_MAX];
    stock_id order = listing->request->of;
    const char *argv[] = {"GET", key};
    size_t lengths[] = {3, key_of(store, "order", order, "", key)};
    redisReply *reply = command(store, listing, -1, 2, argv, lengths);
    if (reply == NULL)
        return false;
    bool found = rd_entry_parse(reply, gen, owner);
    freeReplyObject(reply);
    if (!found) {
        message_set(listing->message, listing->message_size, "order=%.*s", (int)order.len,
                    order.ptr);
        listing->code = STOCK_NOT_FOUND;
    } else if (strcmp(owner, "*") == 0) {
        key_of(store, "order", order, ":x", key);
        *field = "spec";
        *field_len = 4;
    } else {
        key_of(store, "sku", stock_id_from_cstr(owner), ":orders", key);
        *field = order.ptr;
        *field_len = order.len;
    }
    return found;
}

/* The lines of an order, "line sku qty ..." into spec. */
static bool order_spec(rd_store *store, worker_listing *listing, char *spec, size_t size)
{
    char key[RD_KEY_MAX];
    const char *field = NULL;
    size_t field_len = 0;
    if (!order_record(store, listing, key, &field, &field_len))
        return false;
    redisReply *reply = hget(store, listing, key, field, field_len);
    if (reply == NULL)
        return false;
    bool found = reply->type == REDIS_REPLY_STRING;
    snprintf(spec, size, "%s", found ? reply->str : "");
    freeReplyObject(reply);
    if (!found) {
        message_set(listing->message, listing->message_size, "order=%.*s",
                    (int)listing->request->of.len, listing->request->of.ptr);
        listing->code = STOCK_NOT_FOUND;
    }
    return found;
}

/* One line of an order into the page (skipped when its flow has none:
 * an attempt that was given back). */
static bool order_line(rd_store *store, worker_listing *listing, const char *line, const char *sku,
                       rd_page *page)
{
    char key[RD_KEY_MAX];
    key_of(store, "sku", stock_id_from_cstr(sku), ":flow", key);
    redisReply *reply = hget(store, listing, key, line, strlen(line));
    if (reply == NULL)
        return false;
    stock_list_entry *slot = &page->slots[page->count];
    if (reply->type == REDIS_REPLY_STRING && line_parse(reply->str, sku, &slot->info.line_info)) {
        snprintf(slot->id, sizeof slot->id, "%s", line);
        page->count++;
    }
    freeReplyObject(reply);
    return true;
}

/* An order's lines after `after` (a line of the order), in its order. */
static bool list_order(rd_store *store, worker_listing *listing, rd_page *page)
{
    char spec[RD_SPEC_MAX];
    if (!order_spec(store, listing, spec, sizeof spec))
        return false;
    const char *after = page->after;
    bool started = after[0] == '\0';
    char *save = NULL;
    for (char *line = strtok_r(spec, " ", &save); line != NULL && page->count < page->max;
         line = strtok_r(NULL, " ", &save)) {
        char *sku = strtok_r(NULL, " ", &save);
        if (sku == NULL || strtok_r(NULL, " ", &save) == NULL)
            break;
        if (started && !order_line(store, listing, line, sku, page))
            return false;
        started = started || strcmp(line, after) == 0;
    }
    if (!started) {
        message_set(listing->message, listing->message_size, "line=%s", after);
        listing->code = STOCK_NOT_FOUND;
        return false;
    }
    return true;
}

/* Sets listing's NOT_FOUND "what=id"; false. */
static bool not_found(worker_listing *listing, const char *what, stock_id id)
{
    message_set(listing->message, listing->message_size, "%s=%.*s", what, (int)id.len, id.ptr);
    listing->code = STOCK_NOT_FOUND;
    return false;
}

/* The SKU of the line `of` (its directory entry), which must be a line of
 * that SKU's flow, and `after` a refund of it. */
static bool refund_names(rd_store *store, worker_listing *listing, char sku[RD_OWNER_MAX])
{
    const list_request *request = listing->request;
    char key[RD_KEY_MAX], gen[RD_GEN_MAX];
    const char *argv[] = {"GET", key};
    size_t lengths[] = {3, key_of(store, "line", request->of, "", key)};
    redisReply *reply = command(store, listing, -1, 2, argv, lengths);
    if (reply == NULL)
        return false;
    bool found = rd_entry_parse(reply, gen, sku);
    freeReplyObject(reply);
    if (!found)
        return not_found(listing, "line", request->of);
    owner_key(store, sku, ":flow", key);
    if ((reply = hget(store, listing, key, request->of.ptr, request->of.len)) == NULL)
        return false;
    found = reply->type == REDIS_REPLY_STRING && reply->str[0] != '~';
    freeReplyObject(reply);
    if (!found)
        return not_found(listing, "line", request->of);
    if (request->after.ptr == NULL)
        return true;
    owner_key(store, sku, ":refunds", key);
    if ((reply = hget(store, listing, key, request->after.ptr, request->after.len)) == NULL)
        return false;
    stock_refund_info refund;
    found = reply->type == REDIS_REPLY_STRING && refund_parse(reply->str, &refund) &&
            strlen(refund.line) == request->of.len &&
            memcmp(refund.line, request->of.ptr, request->of.len) == 0;
    freeReplyObject(reply);
    return found || not_found(listing, "refund", request->after);
}

/* The page of a listing other than an order's lines. */
static bool list_scanned(rd_store *store, worker_listing *listing, rd_page *page)
{
    stock_list_kind kind = listing->request->kind;
    char sku[RD_OWNER_MAX] = "";
    if (kind == STOCK_LIST_LINE_REFUNDS)
        return refund_names(store, listing, sku) && scan_all(store, listing, page, sku);
    return names_exist(store, listing) && scan_all(store, listing, page, NULL) &&
           (kind != STOCK_LIST_SKUS || read_totals(store, listing, page));
}

static void run_listing(stock_t *base, worker_listing *listing)
{
    rd_store *store = (rd_store *)base;
    const list_request *request = listing->request;
    if (!rd_linked(store) &&
        rd_link_open(store, listing->message, listing->message_size) != STOCK_OK) {
        listing->code = STOCK_UNAVAILABLE;
        return;
    }
    char after[STOCK_ID_MAX + 1];
    snprintf(after, sizeof after, "%.*s", (int)request->after.len,
             request->after.ptr != NULL ? request->after.ptr : "");
    stock_list_entry *slots = calloc(2 * (size_t)request->max, sizeof *slots);
    if (slots == NULL) {
        message_set(listing->message, listing->message_size, "out of memory");
        listing->code = STOCK_NOMEM;
        return;
    }
    rd_page page = {.slots = slots, .max = request->max, .after = after};
    bool ok = request->kind == STOCK_LIST_ORDER_LINES ? list_order(store, listing, &page)
                                                      : list_scanned(store, listing, &page);
    if (ok) {
        memcpy(listing->entries, slots, page.count * sizeof *slots);
        *listing->count = page.count;
    }
    free(slots);
}

stock_code rd_list(stock_t *base, const list_request *request, stock_list_entry *entries,
                   uint32_t *count, char *message, size_t message_size)
{
    rd_store *store = (rd_store *)base;
    *count = 0;
    return worker_list(&store->worker, run_listing, request, entries, count, message,
                       message_size);
}
