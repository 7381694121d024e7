/*
 * redis_events.c -- the moves of a redis store, for its stock events
 * (flow_sources.h, docs/events.md "From Redis"): every change's record in
 * the outbox stream of its slot (redis_outbox.c) carries the SKU's
 * available stock before (bv) and after (av) it. This follower reads the
 * streams with a consumer group of its own, "stockevents", beside the
 * persister's, so that each group gets every record; it acknowledges a
 * record once its events are confirmed (when the next one is asked for),
 * and after a crash reads the group's pending records again first. Its
 * group is registered as an outbox reader (Pstock:readers), so the
 * persister's trim keeps what it has not read, even on streams made while
 * it was stopped. It never trims: the outbox is there for the persister,
 * which may not have made its group yet.
 *
 * A SKU lives in one slot, so its records are in one stream, in order
 * (with buckets on a cluster, layout 5, each bucket's are in its own slot's
 * stream, holding that bucket's levels: redis_events_sum.c sums them, and
 * redis_events_order.c hands the records read out by their ms across the
 * streams, up to the time every stream has been read to); the
 * streams are read a chunk at a time (one XREADGROUP over them on one
 * server; one per stream, pipelined to its master, on a cluster). An event's sequence is S * RD_SLOTS + slot (S
 * the record's sequence in its stream): one number per record for ever, and
 * rising with a SKU's records, on one server or a cluster alike. An entry of
 * kind 'lines' (deduct_many's) holds nr records with the sequences S, S + 1,
 * ... from its id's: they are handed out one by one, and the entry is
 * acknowledged after the last, so a crash in between hands them all out
 * again (events are at least once).
 *
 * On a Redis Cluster it takes the redis backend's link (redis_link.c), as
 * the persister does: every master of the slot map, each scanned for
 * streams, each stream's commands sent to the master it was found on. A
 * failure (a master gone, a MOVED after a failover) fails the read: the
 * publisher exits and, started again, resumes from the broker and the
 * group's pending records.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/flow_sources.h"
#include "backend/redis.h"
#include "lib/clock.h"
#include "lib/message.h"

#define RD_EVENTS_GROUP "stockevents"
#define RD_EVENTS_SCAN_US 1000000      /* new streams are looked for this often */
#define RD_EVENTS_KEY_MAX (RD_PREFIX_MAX + 24)
/* One read takes this many streams, and this many records of each at most:
 * an idle publisher looks at 16,384 streams in 64 calls, and a reply holds
 * 32,768 records at most. */
#define RD_EVENTS_CHUNK 256
#define RD_EVENTS_COUNT 128

typedef struct rd_events_stream {
    char key[RD_EVENTS_KEY_MAX];
    unsigned slot;
    int node;                     /* the master that holds it (link.nodes) */
    bool pending_read;            /* the group's pending records were read again */
    uint64_t last_entry;          /* S of the last entry read; 0: none yet */
    bool whole;                   /* layout 5: read from its first record (stream_whole) */
} rd_events_stream;

struct rd_events {
    /* The redis backend's store struct, for its options and its link: the
     * server, or every master of a cluster. Nothing else of it is used. */
    rd_store *store;
    rd_events_stream streams[RD_SLOTS];
    uint32_t stream_count;
    uint32_t current;             /* the stream of the entry handed out last */
    uint32_t chunk_first;         /* the first stream of the next read */
    /* The last read: its XREADGROUP replies (one, or one per stream on a
     * cluster), each nil or [[key, [[id, [field, value...]]...]]...]. */
    redisReply *entries[RD_EVENTS_CHUNK];
    uint32_t entries_first;       /* the chunk's first stream */
    uint32_t entries_count;
    size_t reply_stream;          /* the reply being handed out */
    size_t reply_pair;            /* its [key, entries] pair */
    size_t next_entry;            /* and its next entry */
    const char *unacked;          /* the id handed out last, inside entries (or handed) */
    rd_lines_cursor lines;        /* the 'lines' entry being handed out */
    uint64_t lost;                /* records deleted before they were read */
    rd_sums *sums;                /* layout 5: each SKU's buckets' levels; else NULL */
    /* Layout 5: the records read of every stream (stream i is the order's
     * stream i), the entry handed out last (freed once acknowledged) and
     * its ms, and whether the last read held any. */
    rd_order *order;
    redisReply *handed;
    int64_t handed_ms;
    bool read_any;
    uint16_t slot_stream[RD_SLOTS];   /* layout 5: 1 + the index of each slot's stream, 0: none */
    int64_t scanned_us;
    rd_outbox_found found;        /* the slots of streams[] */
    /* While it looks for streams: the registry's members, and where a
     * failure is said. */
    const redisReply *readers;
    char *message;
    size_t message_size;
};

static redisContext *node_conn(rd_events *source, int node)
{
    return source->store->link.nodes[node].conn;
}

/* The connection of the master that serves key (NULL: none). */
static redisContext *conn_of(rd_events *source, const char *key)
{
    if (!source->store->options.cluster)
        return node_conn(source, 0);
    unsigned node = source->store->link.slot_node[rd_key_slot(key, strlen(key))];
    return node == RD_NO_NODE ? NULL : node_conn(source, (int)node);
}

static journal_read_result failed(const redisContext *conn, const char *what,
                                  const redisReply *reply, char *message, size_t message_size)
{
    message_set(message, message_size, "redis events: %s: %s", what,
                reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str
                : conn != NULL && conn->errstr[0] != '\0'         ? conn->errstr
                                                                  : "unexpected reply");
    return JOURNAL_READ_FAILED;
}

stock_code rd_events_open(const char *uri, rd_events **out, char *message, size_t message_size)
{
    assert(uri != NULL && out != NULL);
    *out = NULL;
    rd_events *source = calloc(1, sizeof *source);
    rd_store *store = calloc(1, sizeof *store);
    if (source == NULL || store == NULL) {
        free(source);
        free(store);
        message_set(message, message_size, "out of memory");
        return STOCK_NOMEM;
    }
    source->store = store;
    stock_config config = {0};
    stock_code code = rd_options_parse(uri, &config, &store->options, message, message_size);
    store->options.outbox_reader = true;
    if (code == STOCK_OK)
        code = rd_link_open(store, message, message_size);
    char key[RD_OUTBOX_READERS_KEY_MAX];
    rd_outbox_readers_key(store->options.prefix, key, sizeof key);
    redisContext *registry = code == STOCK_OK ? conn_of(source, key) : NULL;
    if (code == STOCK_OK &&
        (registry == NULL || !rd_outbox_register(registry, store->options.prefix,
                                                 RD_EVENTS_GROUP, message, message_size)))
        code = STOCK_UNAVAILABLE;
    if (code == STOCK_OK && store->record_buckets > 0 &&
        ((source->sums = rd_sums_new(store->record_buckets)) == NULL ||
         (source->order = rd_order_new(RD_SLOTS)) == NULL)) {
        message_set(message, message_size, "out of memory");
        code = STOCK_NOMEM;
    }
    if (code != STOCK_OK) {
        rd_events_close(source);
        return code;
    }
    *out = source;
    return STOCK_OK;
}

/* The value of field name in a flat [field, value, ...] reply, or NULL. */
static const redisReply *map_value(const redisReply *map, const char *name)
{
    for (size_t f = 0; map->type == REDIS_REPLY_ARRAY && f + 1 < map->elements; f += 2)
        if (map->element[f]->type == REDIS_REPLY_STRING && strcmp(map->element[f]->str, name) == 0)
            return map->element[f + 1];
    return NULL;
}

/* Whether this follower reads every record of stream key from its first:
 * its first record is still there (XINFO STREAM's recorded-first-entry-id
 * 0-1: nothing trimmed) and its group was handed none yet (XINFO GROUPS'
 * last-delivered-id 0-0). False, the safe answer, when Redis does not say. */
static bool stream_whole(redisContext *conn, const char *key, char *message, size_t size,
                         bool *whole)
{
    redisReply *stream = redisCommand(conn, "XINFO STREAM %s", key);
    redisReply *groups = stream != NULL ? redisCommand(conn, "XINFO GROUPS %s", key) : NULL;
    bool ok = stream != NULL && groups != NULL && stream->type == REDIS_REPLY_ARRAY &&
              groups->type == REDIS_REPLY_ARRAY;
    *whole = false;
    if (!ok) {
        failed(conn, "XINFO", groups != NULL ? groups : stream, message, size);
    } else {
        const redisReply *first = map_value(stream, "recorded-first-entry-id");
        for (size_t g = 0; g < groups->elements; g++) {
            const redisReply *name = map_value(groups->element[g], "name");
            const redisReply *read = map_value(groups->element[g], "last-delivered-id");
            if (name != NULL && name->type == REDIS_REPLY_STRING &&
                strcmp(name->str, RD_EVENTS_GROUP) == 0)
                *whole = first != NULL && first->type == REDIS_REPLY_STRING &&
                         strcmp(first->str, "0-1") == 0 && read != NULL &&
                         read->type == REDIS_REPLY_STRING && strcmp(read->str, "0-0") == 0;
        }
    }
    freeReplyObject(stream);
    freeReplyObject(groups);
    return ok;
}

/* Adds the stream key (rd_outbox_found_fn), with every registered reader's
 * group (the registry's members) and this follower's, each created unless
 * it exists. */
static bool stream_add(void *reader, int node, const char *key)
{
    rd_events *source = reader;
    if (source->stream_count == RD_SLOTS || strlen(key) >= RD_EVENTS_KEY_MAX)
        return true;   /* not an outbox of this store: one per slot, short keys */
    bool ok = rd_outbox_groups_create(node_conn(source, node), key, source->readers,
                                      RD_EVENTS_GROUP, source->message, source->message_size);
    bool whole = false;
    if (ok && source->sums != NULL)
        ok = stream_whole(node_conn(source, node), key, source->message, source->message_size,
                          &whole);
    if (ok) {
        rd_events_stream *stream = &source->streams[source->stream_count++];
        snprintf(stream->key, sizeof stream->key, "%s", key);
        stream->slot = rd_key_slot(key, strlen(key));
        stream->node = node;
        stream->pending_read = false;
        stream->whole = whole;
        if (source->order != NULL) {
            uint32_t held = rd_order_add(source->order);
            assert(held + 1 == source->stream_count);   /* added with streams[], one for one */
            (void)held;
        }
        source->slot_stream[stream->slot] = (uint16_t)source->stream_count;
    }
    return ok;
}

/* A master's time (ms) from its reply to TIME, or -1. */
static int64_t time_ms(const redisReply *reply)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING)
        return -1;
    return strtoll(reply->element[0]->str, NULL, 10) * 1000 +
           strtoll(reply->element[1]->str, NULL, 10) / 1000;
}

/* Layout 5: the least time of every master, into *ms (TIME on each). */
static bool masters_time(rd_events *source, int64_t *ms, char *message, size_t message_size)
{
    *ms = INT64_MAX;
    for (int node = 0; node < source->store->link.node_count; node++) {
        redisContext *conn = node_conn(source, node);
        redisReply *reply = redisCommand(conn, "TIME");
        int64_t node_ms = time_ms(reply);
        if (node_ms < 0)
            failed(conn, "TIME", reply, message, message_size);
        freeReplyObject(reply);
        if (node_ms < 0)
            return false;
        *ms = node_ms < *ms ? node_ms : *ms;
    }
    return true;
}

/* Finds the outbox streams of every master, at most once per
 * RD_EVENTS_SCAN_US. On a store of layout 5 it takes every master's time
 * first: a stream made after it holds records of later times only, so the
 * order hands out records up to that time at most (rd_order_known_to). */
static bool scan(rd_events *source, char *message, size_t message_size)
{
    int64_t now_us = clock_now_us(CLOCK_MONOTONIC);
    if (source->scanned_us != 0 && now_us - source->scanned_us < RD_EVENTS_SCAN_US)
        return true;
    source->scanned_us = now_us;
    int64_t look_ms = 0;
    if (source->order != NULL && !masters_time(source, &look_ms, message, message_size))
        return false;
    char key[RD_OUTBOX_READERS_KEY_MAX];
    rd_outbox_readers_key(source->store->options.prefix, key, sizeof key);
    redisContext *registry = conn_of(source, key);
    redisReply *readers = registry != NULL ? redisCommand(registry, "SMEMBERS %s", key) : NULL;
    if (readers == NULL || readers->type != REDIS_REPLY_ARRAY) {
        failed(registry, "SMEMBERS", readers, message, message_size);
        freeReplyObject(readers);
        return false;
    }
    source->readers = readers;
    source->message = message;
    source->message_size = message_size;
    bool ok = true;
    for (int node = 0; ok && node < source->store->link.node_count; node++)
        ok = rd_outbox_find(source->store, node_conn(source, node), node, &source->found,
                            stream_add, source, message, message_size);
    source->readers = NULL;
    freeReplyObject(readers);
    if (ok && source->order != NULL)
        rd_order_known_to(source->order, look_ms);
    return ok;
}

/* Acknowledges the record handed out last: its events are confirmed. */
static bool ack(rd_events *source, char *message, size_t message_size)
{
    if (source->unacked == NULL)
        return true;
    const rd_events_stream *stream = &source->streams[source->current];
    redisContext *conn = node_conn(source, stream->node);
    redisReply *reply = redisCommand(conn, "XACK %s " RD_EVENTS_GROUP " %s", stream->key,
                                     source->unacked);
    bool ok = reply != NULL && reply->type == REDIS_REPLY_INTEGER;
    if (!ok)
        failed(conn, "XACK", reply, message, message_size);
    freeReplyObject(reply);
    source->unacked = NULL;
    freeReplyObject(source->handed);
    source->handed = NULL;
    return ok;
}

/* Whether reply is an XREADGROUP reply: nil, or [[key, entries]...]. */
static bool read_valid(const redisReply *reply)
{
    if (reply == NULL || (reply->type != REDIS_REPLY_NIL && reply->type != REDIS_REPLY_ARRAY))
        return false;
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const redisReply *one = reply->element[i];
        if (one->type != REDIS_REPLY_ARRAY || one->elements != 2 ||
            one->element[0]->type != REDIS_REPLY_STRING ||
            one->element[1]->type != REDIS_REPLY_ARRAY)
            return false;
        /* Each entry [id, fields], fields nil for one deleted while pending. */
        for (size_t e = 0; e < one->element[1]->elements; e++) {
            const redisReply *entry = one->element[1]->element[e];
            if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
                entry->element[0]->type != REDIS_REPLY_STRING ||
                (entry->element[1]->type != REDIS_REPLY_ARRAY &&
                 entry->element[1]->type != REDIS_REPLY_NIL))
                return false;
        }
    }
    return true;
}

/* The [key, entries] pairs of a read reply (0 for nil). */
static size_t pair_count(const redisReply *reply)
{
    return reply != NULL && reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0;
}

/* The entries the last read gave of the stream key; NULL: none. */
static const redisReply *entries_of(const rd_events *source, const char *key)
{
    for (uint32_t r = 0; r < source->entries_count; r++)
        for (size_t i = 0; i < pair_count(source->entries[r]); i++)
            if (strcmp(source->entries[r]->element[i]->element[0]->str, key) == 0)
                return source->entries[r]->element[i]->element[1];
    return NULL;
}

static void entries_free(rd_events *source)
{
    for (uint32_t i = 0; i < source->entries_count; i++)
        freeReplyObject(source->entries[i]);
    source->entries_count = 0;
}

/* Queues one XREADGROUP over streams [at, at + count) to the master of
 * at: of each, the group's pending records until none is left, then new
 * ones. */
static void read_append_one(rd_events *source, uint32_t at, uint32_t count)
{
    char batch[16];
    snprintf(batch, sizeof batch, "%d",
             source->sums != NULL ? RD_ORDER_HELD : RD_EVENTS_COUNT);
    static const char *const head[] = {"XREADGROUP", "GROUP", RD_EVENTS_GROUP, "stockevents",
                                       "COUNT", NULL, "STREAMS"};
    const char *argv[7 + 2 * RD_EVENTS_CHUNK];
    int argc = 0;
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
        argv[argc++] = head[i] != NULL ? head[i] : batch;
    for (uint32_t i = at; i < at + count; i++)
        argv[argc++] = source->streams[i].key;
    for (uint32_t i = at; i < at + count; i++)
        argv[argc++] = source->streams[i].pending_read ? ">" : "0";
    redisAppendCommandArgv(node_conn(source, source->streams[at].node), argc, argv, NULL);
}

/* Queues the read of streams [first, first + count): on one server one
 * XREADGROUP over all of them; on a cluster, which refuses a call over
 * several slots, one per stream, each on its master. Returns the replies
 * to expect. */
static uint32_t read_append(rd_events *source, uint32_t first, uint32_t count)
{
    uint32_t per_call = source->store->options.cluster ? 1 : count, calls = 0;
    for (uint32_t at = first; at < first + count; at += per_call, calls++)
        read_append_one(source, at, per_call);
    return calls;
}

/* The server time (field ms) of an entry; 0 for one whose fields are gone. */
static int64_t entry_ms(const redisReply *entry)
{
    const char *ms = entry->element[1]->type == REDIS_REPLY_ARRAY
                         ? rd_entry_field(entry->element[1], "ms") : NULL;
    return ms != NULL ? strtoll(ms, NULL, 10) : 0;
}

/* Layout 5: holds the n entries read of stream i (its reply's, taken out
 * of it) in the order, and says how far the stream has been read: to the
 * last one's time when more may wait (a full read, or its group's pending
 * records: the new ones come after them), to now_ms, its master's time
 * just before the read, when a read of new records was not full (every
 * record written before then was read; one written after has a later
 * ms); a read of no pending record says nothing. */
static void stream_hold(rd_events *source, uint32_t i, redisReply *entries, int64_t now_ms)
{
    const rd_events_stream *stream = &source->streams[i];
    size_t n = entries != NULL ? entries->elements : 0;
    int64_t last_ms = INT64_MIN;
    for (size_t e = 0; e < n; e++) {
        int64_t ms = entry_ms(entries->element[e]);
        last_ms = ms > last_ms ? ms : last_ms;
        rd_order_hold(source->order, i, entries->element[e], ms);
        entries->element[e] = NULL;   /* the order's now; freeReplyObject skips NULL */
    }
    source->read_any = source->read_any || n > 0;
    if (!stream->pending_read && n == 0)
        return;
    rd_order_read_to(source->order, i,
                     !stream->pending_read || n == RD_ORDER_HELD ? last_ms : now_ms);
}

/* Reads the next chunk of streams, pipelined to their masters: of each,
 * the group's pending records first (left by a publisher that died), until
 * none is left, then new ones. */
static bool read_chunk(rd_events *source, char *message, size_t message_size)
{
    uint32_t first = source->chunk_first < source->stream_count ? source->chunk_first : 0;
    uint32_t count = source->stream_count - first < RD_EVENTS_CHUNK
                         ? source->stream_count - first : RD_EVENTS_CHUNK;
    source->chunk_first = first + count;
    uint32_t calls = read_append(source, first, count);
    bool ok = true;
    for (uint32_t c = 0; c < calls; c++) {
        /* call c went to the master of stream first + c (one call: first's) */
        redisContext *conn = node_conn(source, source->streams[first + c].node);
        redisReply *reply = NULL;
        /* A connection that failed sends nothing more; the others' replies
         * are all read, so that none is left for a later call. */
        if (conn->err != 0 || redisGetReply(conn, (void **)&reply) != REDIS_OK ||
            !read_valid(reply)) {
            if (ok)
                failed(conn, "XREADGROUP", reply, message, message_size);
            freeReplyObject(reply);
            reply = NULL;
            ok = false;
        }
        source->entries[source->entries_count++] = reply;
    }
    for (uint32_t i = first; ok && i < first + count; i++) {
        rd_events_stream *stream = &source->streams[i];
        const redisReply *entries = entries_of(source, stream->key);
        if (!stream->pending_read && (entries == NULL || entries->elements == 0))
            stream->pending_read = true;
    }
    source->entries_first = first;
    source->reply_stream = 0;
    source->reply_pair = 0;
    source->next_entry = 0;
    return ok;
}

/* As read_chunk on a store of layout 5, into the order: of the chunk's
 * streams, those whose records read before are all out, each by a call of
 * its own after a TIME on its master (stream_hold). */
static bool read_held(rd_events *source, char *message, size_t message_size)
{
    uint32_t first = source->chunk_first < source->stream_count ? source->chunk_first : 0;
    uint32_t count = source->stream_count - first < RD_EVENTS_CHUNK
                         ? source->stream_count - first : RD_EVENTS_CHUNK;
    source->chunk_first = first + count;
    uint32_t reads[RD_EVENTS_CHUNK], read_count = 0;
    for (uint32_t i = first; i < first + count; i++)
        if (rd_order_ready(source->order, i)) {
            redisAppendCommand(node_conn(source, source->streams[i].node), "TIME");
            read_append_one(source, i, 1);
            reads[read_count++] = i;
        }
    bool ok = true;
    source->read_any = false;
    for (uint32_t r = 0; r < read_count; r++) {
        rd_events_stream *stream = &source->streams[reads[r]];
        redisContext *conn = node_conn(source, stream->node);
        redisReply *time = NULL, *reply = NULL;
        /* Every reply is read, as in read_chunk, so that none is left. */
        bool got = conn->err == 0 && redisGetReply(conn, (void **)&time) == REDIS_OK &&
                   redisGetReply(conn, (void **)&reply) == REDIS_OK;
        if (ok && (!got || time_ms(time) < 0 || !read_valid(reply) || pair_count(reply) > 1)) {
            failed(conn, time_ms(time) < 0 ? "TIME" : "XREADGROUP",
                   time_ms(time) < 0 ? time : reply, message, message_size);
            ok = false;
        }
        if (ok) {
            redisReply *entries = pair_count(reply) == 1 ? reply->element[0]->element[1] : NULL;
            stream_hold(source, reads[r], entries, time_ms(time));
            if (!stream->pending_read && (entries == NULL || entries->elements == 0))
                stream->pending_read = true;
        }
        freeReplyObject(time);
        freeReplyObject(reply);
    }
    return ok;
}

bool rd_entry_move(const redisReply *entry, unsigned slot, uint64_t *seq, core_change *change)
{
    const redisReply *fields = entry->element[1];
    if (fields->type != REDIS_REPLY_ARRAY)
        return false;
    const char *sku = rd_entry_field(fields, "sku"), *after = rd_entry_field(fields, "av"),
               *before = rd_entry_field(fields, "bv"), *dash = strchr(entry->element[0]->str, '-');
    if (sku == NULL || after == NULL || before == NULL || dash == NULL ||
        strlen(sku) > STOCK_ID_MAX)
        return false;
    *seq = strtoull(dash + 1, NULL, 10) * RD_SLOTS + slot;
    snprintf(change->sku, sizeof change->sku, "%s", sku);
    change->before = strtoll(before, NULL, 10);
    change->after = strtoll(after, NULL, 10);
    return true;
}

void rd_lines_start(rd_lines_cursor *lines, const redisReply *entry, uint64_t seq)
{
    const redisReply *fields = entry->element[1];
    lines->text = rd_entry_field(fields, "r");
    lines->id = entry->element[0]->str;
    lines->seq = seq;
    lines->left = rd_lines_count(rd_entry_field(fields, "nr"), lines->text);
}

bool rd_lines_move(rd_lines_cursor *lines, unsigned slot, uint64_t *seq, core_change *change)
{
    rd_lines_record line;
    if (!rd_lines_next(&lines->text, &line)) {
        lines->left = 0;
        return false;
    }
    lines->left--;
    if (strlen(line.sku) > STOCK_ID_MAX)
        return false;
    *seq = lines->seq++ * RD_SLOTS + slot;
    snprintf(change->sku, sizeof change->sku, "%s", line.sku);
    change->after = strtoll(line.available, NULL, 10);
    change->before = strtoll(line.before, NULL, 10);
    return true;
}

uint64_t rd_entry_lost(const redisReply *entry, uint64_t *last_entry)
{
    const char *dash = strchr(entry->element[0]->str, '-');
    uint64_t entry_seq = dash != NULL ? strtoull(dash + 1, NULL, 10) : 0, lost = 0;
    const redisReply *fields = entry->element[1];
    const char *kind = fields->type == REDIS_REPLY_ARRAY ? rd_entry_field(fields, "k") : NULL;
    bool lines = kind != NULL && strcmp(kind, RD_LINES_KIND) == 0;
    const char *count = lines ? rd_entry_field(fields, "nr") : NULL;
    uint64_t records = count != NULL ? strtoull(count, NULL, 10) : 1;
    if (fields->type != REDIS_REPLY_ARRAY)
        lost = 1;
    else if (*last_entry != 0 && entry_seq > *last_entry + 1 &&
             (kind == NULL || strcmp(kind, "mark") != 0))
        lost = entry_seq - *last_entry - 1;
    /* a 'lines' entry's records take the sequences up to S + nr - 1 */
    if (records > 0 && entry_seq + records - 1 > *last_entry)
        *last_entry = entry_seq + records - 1;
    return lost;
}

/* Gives sku, met for the first time, the levels its buckets start from: 0
 * for a bucket whose stream this follower reads whole (or has not found
 * yet: it will read it from its first record), else the bucket's level in
 * the store now; one HGET per such bucket, pipelined to their masters. A
 * failure fails the read (the publisher exits), so replies left unread are
 * never taken for a later call's. */
static bool sums_seed(rd_events *source, const char *sku, char *message, size_t message_size)
{
    const rd_store *store = source->store;
    uint32_t buckets = store->record_buckets;
    redisContext *conns[RD_BUCKETS_MAX] = {NULL};
    int64_t levels[RD_BUCKETS_MAX] = {0};
    for (uint32_t j = 0; j < buckets; j++) {
        char key[RD_BUCKET_KEY_MAX];
        rd_bucket_key(store->options.prefix, stock_id_from_cstr(sku), j, buckets, "", key,
                      sizeof key);
        uint16_t stream = source->slot_stream[rd_key_slot(key, strlen(key))];
        if (stream == 0 || source->streams[stream - 1].whole)
            continue;
        conns[j] = conn_of(source, key);
        if (conns[j] == NULL) {
            message_set(message, message_size, "redis events: no master serves %s", key);
            return false;
        }
        redisAppendCommand(conns[j], "HGET %s av", key);
    }
    for (uint32_t j = 0; j < buckets; j++) {
        redisReply *reply = NULL;
        if (conns[j] == NULL)
            continue;
        if (conns[j]->err != 0 || redisGetReply(conns[j], (void **)&reply) != REDIS_OK ||
            (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL)) {
            failed(conns[j], "HGET of a bucket", reply, message, message_size);
            freeReplyObject(reply);
            return false;
        }
        levels[j] = reply->type == REDIS_REPLY_STRING ? strtoll(reply->str, NULL, 10) : 0;
        freeReplyObject(reply);
    }
    if (!rd_sums_seed(source->sums, sku, levels)) {
        message_set(message, message_size, "out of memory");
        return false;
    }
    return true;
}

/* On a store of layout 5: change, the move of the record's bucket (fields
 * of entry: bk, mv, q; NULL for a 'lines' record, of the home), into the
 * move of its SKU's sum; the entry's ms was parsed once, when it was held
 * (handed_ms). */
static bool sums_apply(rd_events *source, const redisReply *fields, core_change *change,
                       char *message, size_t message_size)
{
    if (!rd_sums_known(source->sums, change->sku) &&
        !sums_seed(source, change->sku, message, message_size))
        return false;
    const char *bucket = fields != NULL ? rd_entry_field(fields, "bk") : NULL;
    const char *move = fields != NULL ? rd_entry_field(fields, "mv") : NULL;
    const char *qty = fields != NULL ? rd_entry_field(fields, "q") : NULL;
    unsigned long j = bucket != NULL ? strtoul(bucket, NULL, 10) : 0;
    rd_sums_apply(source->sums, j < source->store->record_buckets ? (uint32_t)j : 0, move,
                  qty != NULL ? strtoll(qty, NULL, 10) : 0,
                  source->handed_ms, rd_order_low(source->order), change);
    return true;
}

uint64_t rd_events_lost(const rd_events *source)
{
    return source->lost;
}

/* The stream of key among the chunk last read, or NULL. */
static rd_events_stream *chunk_stream(rd_events *source, const char *key)
{
    for (uint32_t i = source->entries_first;
         i < source->stream_count && i < source->entries_first + RD_EVENTS_CHUNK; i++)
        if (strcmp(source->streams[i].key, key) == 0)
            return &source->streams[i];
    return NULL;
}

/* The next entry of the last read, or NULL when it has no more; sets
 * current to its stream. */
static const redisReply *next_entry(rd_events *source)
{
    while (source->reply_stream < source->entries_count) {
        const redisReply *reply = source->entries[source->reply_stream];
        if (source->reply_pair < pair_count(reply)) {
            const redisReply *pair = reply->element[source->reply_pair];
            rd_events_stream *stream = source->next_entry == 0
                                           ? chunk_stream(source, pair->element[0]->str)
                                           : &source->streams[source->current];
            if (stream != NULL && source->next_entry < pair->element[1]->elements) {
                source->current = (uint32_t)(stream - source->streams);
                return pair->element[1]->element[source->next_entry++];
            }
            source->reply_pair++;
            source->next_entry = 0;
            continue;
        }
        source->reply_stream++;
        source->reply_pair = 0;
        source->next_entry = 0;
    }
    return NULL;
}


/* As next_entry, on a store of layout 5: the next record the order lets
 * out, kept as handed until it is acknowledged. */
static const redisReply *next_held(rd_events *source)
{
    assert(source->handed == NULL);   /* acknowledged, and freed, first */
    uint32_t stream;
    source->handed = rd_order_next(source->order, &stream, &source->handed_ms);
    if (source->handed != NULL)
        source->current = stream;
    return source->handed;
}

static bool had_entries(const rd_events *source)
{
    if (source->order != NULL)
        return source->read_any;
    for (uint32_t r = 0; r < source->entries_count; r++)
        for (size_t i = 0; i < pair_count(source->entries[r]); i++)
            if (source->entries[r]->element[i]->element[1]->elements > 0)
                return true;
    return false;
}

journal_read_result rd_events_next(rd_events *source, uint64_t *seq, core_change *change,
                                   char *message, size_t message_size)
{
    assert(source != NULL && seq != NULL && change != NULL);
    if (!ack(source, message, message_size))
        return JOURNAL_READ_FAILED;
    /* The streams a chunk at a time, until a record comes or every chunk
     * was found empty once in a row. */
    for (uint32_t empty = 0;;) {
        while (source->lines.left > 0) {
            rd_events_stream *stream = &source->streams[source->current];
            bool moved = rd_lines_move(&source->lines, stream->slot, seq, change);
            if (source->lines.left == 0)
                source->unacked = source->lines.id;   /* confirmed with its last record */
            if (moved && source->sums != NULL &&
                !sums_apply(source, NULL, change, message, message_size))
                return JOURNAL_READ_FAILED;
            if (moved)
                return JOURNAL_READ_RECORD;
        }
        if (!ack(source, message, message_size))   /* a 'lines' entry that ended malformed */
            return JOURNAL_READ_FAILED;
        const redisReply *entry = source->order != NULL ? next_held(source)
                                                        : next_entry(source);
        if (entry != NULL) {
            source->unacked = entry->element[0]->str;
            source->lost += rd_entry_lost(entry, &source->streams[source->current].last_entry);
            const char *kind = entry->element[1]->type == REDIS_REPLY_ARRAY
                                   ? rd_entry_field(entry->element[1], "k") : NULL;
            if (kind != NULL && strcmp(kind, RD_LINES_KIND) == 0) {
                source->unacked = NULL;
                const char *dash = strchr(entry->element[0]->str, '-');
                rd_lines_start(&source->lines, entry,
                               dash != NULL ? strtoull(dash + 1, NULL, 10) : 0);
                if (source->lines.left == 0)
                    source->unacked = entry->element[0]->str;   /* moves nothing */
                continue;
            }
            if (rd_entry_move(entry, source->streams[source->current].slot, seq, change)) {
                if (source->sums == NULL && rd_entry_field(entry->element[1], "bk") != NULL) {
                    /* Its first open with buckets on the cluster made the
                     * store layout 5 after this follower read 4. */
                    message_set(message, message_size, "redis events: the outbox entry %s "
                                "holds one bucket's levels (layout " RD_LAYOUT_BUCKETS "), the "
                                "store was layout " RD_LAYOUT_VERSION " at open: start "
                                "stockevents again (if the layout is still "
                                RD_LAYOUT_VERSION ", the store was made by an older library: "
                                "open it once with cluster=1&buckets=K through this one "
                                "first)", entry->element[0]->str);
                    return JOURNAL_READ_FAILED;
                }
                if (source->sums != NULL &&
                    !sums_apply(source, entry->element[1], change, message, message_size))
                    return JOURNAL_READ_FAILED;
                return JOURNAL_READ_RECORD;
            }
            if (!ack(source, message, message_size))
                return JOURNAL_READ_FAILED;
            continue;
        }
        empty = had_entries(source) ? 0 : empty + 1;
        entries_free(source);
        if (!scan(source, message, message_size))
            return JOURNAL_READ_FAILED;
        uint32_t chunks = (source->stream_count + RD_EVENTS_CHUNK - 1) / RD_EVENTS_CHUNK;
        if (chunks == 0 || empty > chunks)
            return JOURNAL_READ_WAIT;
        if (source->order != NULL ? !read_held(source, message, message_size)
                                  : !read_chunk(source, message, message_size))
            return JOURNAL_READ_FAILED;
    }
}

void rd_events_close(rd_events *source)
{
    if (source == NULL)
        return;
    entries_free(source);
    freeReplyObject(source->handed);
    rd_order_free(source->order, freeReplyObject);
    rd_sums_free(source->sums);
    if (source->store != NULL)
        rd_link_close(source->store);
    free(source->store);
    free(source);
}
