/*
 * redis_outbox.c -- where a change's flow record goes: the outbox stream of
 * the change's cluster slot (docs/redis.md, "The outbox"). A function call
 * may only touch keys of one slot, so each slot has its own stream,
 * P{outbox:N}, with N chosen so that the hash tag "outbox:N" maps to that
 * slot: the smallest such number. The table of those numbers is computed
 * once per process.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/redis.h"
#include "lib/message.h"
#include "lib/result.h"

#define RD_TAG_MAX 8                /* bytes of a slot's tag ("123456" + NUL) */

static char slot_tags[RD_SLOTS][RD_TAG_MAX];
static pthread_once_t slot_tags_once = PTHREAD_ONCE_INIT;

/* Every slot is reached by a number below 2^20 (about 180,000 tries). */
static void slot_tags_fill(void)
{
    unsigned found = 0;
    for (unsigned n = 0; found < RD_SLOTS && n < (1u << 20); n++) {
        char text[RD_TAG_MAX];
        int len = snprintf(text, sizeof text, "%u", n);
        unsigned slot = rd_tag_slot("outbox", (stock_id){text, (size_t)len});
        if (slot_tags[slot][0] == '\0') {
            memcpy(slot_tags[slot], text, (size_t)len + 1);
            found++;
        }
    }
    assert(found == RD_SLOTS);
}

const char *rd_slot_tag(unsigned slot)
{
    pthread_once(&slot_tags_once, slot_tags_fill);
    return slot < RD_SLOTS ? slot_tags[slot] : "";
}

void rd_cmd_outbox_of_slot(rd_cmd *cmd, const rd_options *options, unsigned slot)
{
    rd_cmd_key(cmd, options->prefix, "outbox", stock_id_from_cstr(rd_slot_tag(slot)),
               options->outbox ? "" : RD_OUTBOX_NONE);
}

void rd_cmd_outbox(rd_cmd *cmd, const rd_options *options, stock_id sku)
{
    rd_cmd_outbox_of_slot(cmd, options, rd_tag_slot("sku", sku));
}

char *rd_entry_field(const redisReply *fields, const char *name)
{
    for (size_t f = 0; f + 1 < fields->elements; f += 2)
        if (fields->element[f]->type == REDIS_REPLY_STRING &&
            fields->element[f + 1]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[f]->str, name) == 0)
            return fields->element[f + 1]->str;
    return NULL;
}

bool rd_outbox_find(const rd_store *store, redisContext *conn, int node, rd_outbox_found *found,
                    rd_outbox_found_fn add, void *reader, char *message, size_t size)
{
    const char *prefix = store->options.prefix;
    static _Thread_local uint16_t asked[RD_SLOTS];
    unsigned count = 0;
    bool ok = true;
    for (unsigned slot = 0; ok && slot < RD_SLOTS; slot++) {
        if ((found->slots[slot / 8] & (1u << (slot % 8))) != 0 ||
            (store->options.cluster && store->link.slot_node[slot] != node))
            continue;
        ok = redisAppendCommand(conn, "EXISTS %s{outbox:%s}", prefix, rd_slot_tag(slot)) ==
             REDIS_OK;
        if (ok)
            asked[count++] = (uint16_t)slot;
        else
            message_set(message, size, "redis: out of memory queueing EXISTS");
    }
    /* Every reply is read before add runs: it calls on conn too. */
    unsigned existing = 0;
    for (unsigned i = 0; i < count; i++) {
        redisReply *reply = rd_conn_reply(conn, rd_link_bound(store));
        bool gone = reply == NULL;
        if (gone || reply->type != REDIS_REPLY_INTEGER) {
            if (ok)
                message_set(message, size, "redis: EXISTS of an outbox stream: %s",
                            !gone && reply->type == REDIS_REPLY_ERROR ? reply->str
                            : conn->errstr[0] != '\0' ? conn->errstr : "unexpected reply");
            ok = false;
        } else if (reply->integer == 1) {
            asked[existing++] = asked[i];
        }
        freeReplyObject(reply);
        if (gone)
            return false;   /* the rest of the replies will not come */
    }
    for (unsigned i = 0; ok && i < existing; i++) {
        char key[RD_PREFIX_MAX + 24];
        snprintf(key, sizeof key, "%s{outbox:%s}", prefix, rd_slot_tag(asked[i]));
        ok = add(reader, node, key);
        if (ok)
            found->slots[asked[i] / 8] |= (uint8_t)(1u << (asked[i] % 8));
    }
    return ok;
}

void rd_outbox_readers_key(const char *prefix, char *out, size_t size)
{
    snprintf(out, size, "%sstock:readers", prefix);
}

/* The value of the store's key name ("layout", "buckets") into out, ""
 * when it does not exist; false when its server did not answer. */
static bool store_value(rd_store *store, const char *name, char *out, size_t out_size,
                        char *message, size_t size)
{
    char key[RD_PREFIX_MAX + 32];
    int len = snprintf(key, sizeof key, "%sstock:%s", store->options.prefix, name);
    unsigned node = store->options.cluster ? store->link.slot_node[rd_key_slot(key, (size_t)len)]
                                           : 0;
    redisContext *conn = node != RD_NO_NODE ? store->link.nodes[node].conn : NULL;
    const char *get[] = {"GET", key};
    redisReply *reply = conn != NULL ? rd_conn_command(conn, rd_link_bound(store), 2, get, NULL)
                                     : NULL;
    bool ok = reply != NULL && (reply->type == REDIS_REPLY_STRING ||
                                reply->type == REDIS_REPLY_NIL);
    if (ok)
        snprintf(out, out_size, "%s", reply->type == REDIS_REPLY_STRING ? reply->str : "");
    else
        message_set(message, size, "redis: GET %s: %s", key,
                    reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str
                    : conn != NULL && conn->errstr[0] != '\0'         ? conn->errstr
                                                                      : "no answer");
    freeReplyObject(reply);
    return ok;
}

stock_code rd_outbox_layout(rd_store *store, char *message, size_t size)
{
    assert(store->options.outbox_reader);
    char layout[16], buckets[16];
    store->record_buckets = 0;
    if (!store_value(store, "layout", layout, sizeof layout, message, size))
        return STOCK_UNAVAILABLE;
    if (strcmp(layout, RD_LAYOUT_BUCKETS) != 0)
        return STOCK_OK;
    if (!store_value(store, "buckets", buckets, sizeof buckets, message, size))
        return STOCK_UNAVAILABLE;
    char *end = NULL;
    unsigned long k = strtoul(buckets, &end, 10);
    if (buckets[0] < '1' || buckets[0] > '9' || *end != '\0' || k < 2 || k > RD_BUCKETS_MAX) {
        message_set(message, size, "redis: the store%s%s holds layout " RD_LAYOUT_BUCKETS
                    " (buckets on a Redis Cluster) but its key %sstock:buckets holds '%.20s', "
                    "not a K of 2 to %d", store->options.prefix[0] != '\0' ? " with prefix " : "",
                    store->options.prefix, store->options.prefix, buckets, RD_BUCKETS_MAX);
        return STOCK_CORRUPT;
    }
    store->record_buckets = (uint32_t)k;
    return STOCK_OK;
}

bool rd_outbox_register(redisContext *conn, const char *prefix, const char *group,
                        char *message, size_t size)
{
    char key[RD_OUTBOX_READERS_KEY_MAX];
    rd_outbox_readers_key(prefix, key, sizeof key);
    redisReply *reply = redisCommand(conn, "SADD %s %s", key, group);
    bool ok = reply != NULL && reply->type == REDIS_REPLY_INTEGER;
    if (!ok)
        message_set(message, size, "redis: SADD %s: %s", key,
                    reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str
                    : conn->errstr[0] != '\0'                        ? conn->errstr
                                                                      : "unexpected reply");
    freeReplyObject(reply);
    return ok;
}

static bool group_create(redisContext *conn, const char *stream, const char *group,
                         char *message, size_t size)
{
    redisReply *reply = redisCommand(conn, "XGROUP CREATE %s %s 0", stream, group);
    bool ok = reply != NULL && (reply->type != REDIS_REPLY_ERROR ||
                                strncmp(reply->str, "BUSYGROUP", 9) == 0);
    if (!ok)
        message_set(message, size, "redis: XGROUP CREATE %s %s: %s", stream, group,
                    reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str
                    : conn->errstr[0] != '\0'                        ? conn->errstr
                                                                      : "unexpected reply");
    freeReplyObject(reply);
    return ok;
}

bool rd_outbox_groups_create(redisContext *conn, const char *stream, const redisReply *readers,
                             const char *own, char *message, size_t size)
{
    for (size_t i = 0; readers != NULL && readers->type == REDIS_REPLY_ARRAY &&
                       i < readers->elements; i++)
        if (readers->element[i]->type == REDIS_REPLY_STRING &&
            !group_create(conn, stream, readers->element[i]->str, message, size))
            return false;
    return group_create(conn, stream, own, message, size);
}

/* The next space-separated token of *text, cut off in place; NULL at the
 * end. */
static const char *token_next(char **text)
{
    char *start = *text + strspn(*text, " ");
    if (*start == '\0')
        return NULL;
    char *end = start + strcspn(start, " ");
    *text = *end == '\0' ? end : end + 1;
    *end = '\0';
    return start;
}

bool rd_lines_next(char **text, rd_lines_record *record)
{
    assert(text != NULL && *text != NULL && record != NULL);
    const char **fields[] = {
        &record->sku, &record->line, &record->qty, &record->available, &record->adjusted,
        &record->deducted, &record->refunded, &record->before,
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if ((*fields[i] = token_next(text)) == NULL)
            return false;
    return true;
}

uint64_t rd_lines_count(const char *count, const char *text)
{
    if (count == NULL || text == NULL || count[0] < '1' || count[0] > '9' ||
        strspn(count, "0123456789") != strlen(count) || strlen(count) > RD_LINES_DIGITS_MAX)
        return 0;
    uint64_t records = strtoull(count, NULL, 10), tokens = 0;
    /* Counted without cutting, and no further than one token past the
     * last record's. */
    for (const char *at = text + strspn(text, " ");
         *at != '\0' && tokens <= records * RD_LINES_TOKENS;
         at += strspn(at, " ")) {
        at += strcspn(at, " ");
        tokens++;
    }
    return tokens == records * RD_LINES_TOKENS ? records : 0;
}

void rd_cmd_lag_limits(rd_cmd *cmd, const rd_options *options)
{
    rd_cmd_argf(cmd, "%d", options->lag_max_records);
    rd_cmd_argf(cmd, "%d", options->lag_max_ms);
}

void rd_fail_lagging(stock_op *op, const rd_options *options)
{
    op->failed_line = -1;
    result_fail(op, STOCK_UNAVAILABLE, "redis: deduction refused: the outbox of this SKU's "
                "slot is further behind than the limit (outbox_lag_max=%d records, "
                "outbox_lag_max_ms=%d); its readers (the persister, stockevents) must catch up; "
                "nothing was changed",
                options->lag_max_records, options->lag_max_ms);
}
