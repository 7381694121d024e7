/*
 * redis_events.c -- the moves of a redis store, for its stock events
 * (flow_sources.h, docs/events.md "From Redis"): every change's record in
 * the outbox stream of its slot (redis_outbox.c) carries the SKU's
 * available stock before (bv) and after (av) it. This follower reads the
 * streams with a consumer group of its own, "stockevents", beside the
 * persister's, so that each group gets every record; it acknowledges a
 * record once its events are confirmed (when the next one is asked for),
 * and after a crash reads the group's pending records again first.
 *
 * A SKU lives in one slot, so its records are in one stream, in order; the
 * streams are read a chunk at a time (one XREADGROUP over many streams). An event's sequence is S * RD_SLOTS + slot (S
 * the entry's sequence in its stream): one number per record for ever, and
 * rising with a SKU's records.
 */
#include <assert.h>
#include <inttypes.h>
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
    bool pending_read;            /* the group's pending records were read again */
    uint64_t last_entry;          /* S of the last entry read; 0: none yet */
} rd_events_stream;

struct rd_events {
    redisContext *redis;
    rd_options options;
    rd_events_stream streams[RD_SLOTS];
    uint32_t stream_count;
    uint32_t current;             /* the stream of the entry handed out last */
    uint32_t chunk_first;         /* the first stream of the next read */
    redisReply *entries;          /* the last read: [[key, [[id, [field, value...]]...]]...] */
    size_t reply_stream;          /* the stream of it being handed out */
    size_t next_entry;            /* and its next entry */
    const char *unacked;          /* the id handed out last, inside entries */
    uint64_t lost;                /* records deleted before they were read */
    int64_t scanned_us;
};

static journal_read_result failed(rd_events *source, const char *what, const redisReply *reply,
                                  char *message, size_t message_size)
{
    message_set(message, message_size, "redis events: %s: %s", what,
                reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str
                : source->redis->errstr[0] != '\0'                ? source->redis->errstr
                                                                  : "unexpected reply");
    return JOURNAL_READ_FAILED;
}

stock_code rd_events_open(const char *uri, rd_events **out, char *message, size_t message_size)
{
    assert(uri != NULL && out != NULL);
    *out = NULL;
    rd_events *source = calloc(1, sizeof *source);
    if (source == NULL) {
        message_set(message, message_size, "out of memory");
        return STOCK_NOMEM;
    }
    stock_config config = {0};
    stock_code code = rd_options_parse(uri, &config, &source->options, message, message_size);
    if (code == STOCK_OK && source->options.cluster) {
        message_set(message, message_size, "redis events: a Redis Cluster (cluster=1) is "
                    "not supported yet: one server");
        code = STOCK_UNSUPPORTED;
    }
    /* Each wait of the open within timeout_ms: stockevents has no batch. */
    rd_bound bound = {.timeout_ms = source->options.timeout_ms, .end_us = 0};
    if (code == STOCK_OK)
        code = rd_node_connect(&source->options, &source->options.seeds[0], bound,
                               &source->redis, message, message_size);
    if (code == STOCK_OK)
        code = rd_layout_check(source->redis, &source->options, bound, message, message_size);
    if (code != STOCK_OK) {
        rd_events_close(source);
        return code;
    }
    *out = source;
    return STOCK_OK;
}

/* Adds the stream key (its group created unless it has one). */
static bool stream_add(rd_events *source, const char *key, char *message, size_t message_size)
{
    for (uint32_t i = 0; i < source->stream_count; i++)
        if (strcmp(source->streams[i].key, key) == 0)
            return true;
    if (source->stream_count == RD_SLOTS || strlen(key) >= RD_EVENTS_KEY_MAX)
        return true;   /* not an outbox of this store: one per slot, short keys */
    redisReply *reply = redisCommand(source->redis, "XGROUP CREATE %s " RD_EVENTS_GROUP " 0",
                                     key);
    bool ok = reply != NULL && (reply->type != REDIS_REPLY_ERROR ||
                                strncmp(reply->str, "BUSYGROUP", 9) == 0);
    if (!ok)
        failed(source, "XGROUP CREATE", reply, message, message_size);
    freeReplyObject(reply);
    if (ok) {
        rd_events_stream *stream = &source->streams[source->stream_count++];
        snprintf(stream->key, sizeof stream->key, "%s", key);
        stream->slot = rd_key_slot(key, strlen(key));
        stream->pending_read = false;
    }
    return ok;
}

/* Finds the outbox streams, at most once per RD_EVENTS_SCAN_US. */
static bool scan(rd_events *source, char *message, size_t message_size)
{
    int64_t now_us = clock_now_us(CLOCK_MONOTONIC);
    if (source->scanned_us != 0 && now_us - source->scanned_us < RD_EVENTS_SCAN_US)
        return true;
    source->scanned_us = now_us;
    char pattern[2 * RD_PREFIX_MAX + 16];
    rd_outbox_pattern(source->options.prefix, pattern, sizeof pattern);
    char cursor[32] = "0";
    do {
        redisReply *reply = redisCommand(source->redis, "SCAN %s MATCH %s COUNT 1000 TYPE stream",
                                         cursor, pattern);
        if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
            failed(source, "SCAN", reply, message, message_size);
            freeReplyObject(reply);
            return false;
        }
        snprintf(cursor, sizeof cursor, "%s", reply->element[0]->str);
        bool ok = true;
        for (size_t i = 0; ok && i < reply->element[1]->elements; i++)
            ok = stream_add(source, reply->element[1]->element[i]->str, message, message_size);
        freeReplyObject(reply);
        if (!ok)
            return false;
    } while (strcmp(cursor, "0") != 0);
    return true;
}

/* Acknowledges the record handed out last: its events are confirmed. */
static bool ack(rd_events *source, char *message, size_t message_size)
{
    if (source->unacked == NULL)
        return true;
    redisReply *reply = redisCommand(source->redis, "XACK %s " RD_EVENTS_GROUP " %s",
                                     source->streams[source->current].key, source->unacked);
    bool ok = reply != NULL && reply->type == REDIS_REPLY_INTEGER;
    if (!ok)
        failed(source, "XACK", reply, message, message_size);
    freeReplyObject(reply);
    source->unacked = NULL;
    return ok;
}

/* The stream of key, or NULL. */
static rd_events_stream *stream_of(rd_events *source, const char *key)
{
    for (uint32_t i = 0; i < source->stream_count; i++)
        if (strcmp(source->streams[i].key, key) == 0)
            return &source->streams[i];
    return NULL;
}

/* The reply's entries of stream key, or NULL. */
static const redisReply *reply_entries(const redisReply *reply, const char *key)
{
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
        if (strcmp(reply->element[i]->element[0]->str, key) == 0)
            return reply->element[i]->element[1];
    return NULL;
}

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
    }
    return true;
}

/* Reads the next chunk of streams in one XREADGROUP: of each, the group's
 * pending records first (left by a publisher that died), until none is
 * left, then new ones. */
static bool read_chunk(rd_events *source, char *message, size_t message_size)
{
    uint32_t first = source->chunk_first < source->stream_count ? source->chunk_first : 0;
    uint32_t count = source->stream_count - first < RD_EVENTS_CHUNK
                         ? source->stream_count - first : RD_EVENTS_CHUNK;
    source->chunk_first = first + count;
    const char *argv[7 + 2 * RD_EVENTS_CHUNK];
    char batch[16];
    snprintf(batch, sizeof batch, "%d", RD_EVENTS_COUNT);
    int argc = 0;
    static const char *const head[] = {"XREADGROUP", "GROUP", RD_EVENTS_GROUP, "stockevents",
                                       "COUNT", NULL, "STREAMS"};
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
        argv[argc++] = head[i] != NULL ? head[i] : batch;
    for (uint32_t i = first; i < first + count; i++)
        argv[argc++] = source->streams[i].key;
    for (uint32_t i = first; i < first + count; i++)
        argv[argc++] = source->streams[i].pending_read ? ">" : "0";
    redisReply *reply = redisCommandArgv(source->redis, argc, argv, NULL);
    if (!read_valid(reply)) {
        failed(source, "XREADGROUP", reply, message, message_size);
        freeReplyObject(reply);
        return false;
    }
    for (uint32_t i = first; i < first + count; i++) {
        rd_events_stream *stream = &source->streams[i];
        const redisReply *entries = stream->pending_read ? NULL
                                                         : reply_entries(reply, stream->key);
        if (!stream->pending_read && (entries == NULL || entries->elements == 0))
            stream->pending_read = true;
    }
    source->entries = reply;
    source->reply_stream = 0;
    source->next_entry = 0;
    return true;
}

static const char *field(const redisReply *fields, const char *name)
{
    for (size_t f = 0; f + 1 < fields->elements; f += 2)
        if (fields->element[f]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[f]->str, name) == 0)
            return fields->element[f + 1]->str;
    return NULL;
}

/* The move of entry [id, fields], or false for a record that moves no
 * SKU (a warm-up's marker, or one the persister deleted while it was
 * pending here: its fields are nil). */
static bool entry_move(const rd_events *source, const redisReply *entry, uint64_t *seq,
                       core_change *change)
{
    const redisReply *fields = entry->element[1];
    if (fields->type != REDIS_REPLY_ARRAY)
        return false;
    const char *sku = field(fields, "sku"), *after = field(fields, "av"),
               *before = field(fields, "bv"), *dash = strchr(entry->element[0]->str, '-');
    if (sku == NULL || after == NULL || before == NULL || dash == NULL ||
        strlen(sku) > STOCK_ID_MAX)
        return false;
    *seq = strtoull(dash + 1, NULL, 10) * RD_SLOTS + source->streams[source->current].slot;
    snprintf(change->sku, sizeof change->sku, "%s", sku);
    change->before = strtoll(before, NULL, 10);
    change->after = strtoll(after, NULL, 10);
    return true;
}

/* Counts the records of the current stream that were deleted before this
 * follower read them (by the persister, which deletes what it persisted):
 * the gap between two entries read one after the other, but before a
 * warm-up's marker (which moves the sequence on by design), and an entry
 * deleted while pending here (its fields are nil). */
static void count_lost(rd_events *source, const redisReply *entry)
{
    rd_events_stream *stream = &source->streams[source->current];
    const char *dash = strchr(entry->element[0]->str, '-');
    uint64_t entry_seq = dash != NULL ? strtoull(dash + 1, NULL, 10) : 0;
    const redisReply *fields = entry->element[1];
    const char *kind = fields->type == REDIS_REPLY_ARRAY ? field(fields, "k") : NULL;
    if (fields->type != REDIS_REPLY_ARRAY)
        source->lost++;
    else if (stream->last_entry != 0 && entry_seq > stream->last_entry + 1 &&
             (kind == NULL || strcmp(kind, "mark") != 0))
        source->lost += entry_seq - stream->last_entry - 1;
    if (entry_seq > stream->last_entry)
        stream->last_entry = entry_seq;
}

uint64_t rd_events_lost(const rd_events *source)
{
    return source->lost;
}

/* The next entry of the last read, or NULL when it has no more; sets
 * current to its stream. */
static const redisReply *next_entry(rd_events *source)
{
    const redisReply *reply = source->entries;
    while (reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
           source->reply_stream < reply->elements) {
        const redisReply *one = reply->element[source->reply_stream];
        rd_events_stream *stream = source->next_entry == 0
                                       ? stream_of(source, one->element[0]->str)
                                       : &source->streams[source->current];
        if (stream != NULL && source->next_entry < one->element[1]->elements) {
            source->current = (uint32_t)(stream - source->streams);
            return one->element[1]->element[source->next_entry++];
        }
        source->reply_stream++;
        source->next_entry = 0;
    }
    return NULL;
}

static bool had_entries(const redisReply *reply)
{
    for (size_t i = 0; reply != NULL && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
        if (reply->element[i]->element[1]->elements > 0)
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
        const redisReply *entry = next_entry(source);
        if (entry != NULL) {
            source->unacked = entry->element[0]->str;
            count_lost(source, entry);
            if (entry_move(source, entry, seq, change))
                return JOURNAL_READ_RECORD;
            if (!ack(source, message, message_size))
                return JOURNAL_READ_FAILED;
            continue;
        }
        empty = had_entries(source->entries) ? 0 : empty + 1;
        freeReplyObject(source->entries);
        source->entries = NULL;
        if (!scan(source, message, message_size))
            return JOURNAL_READ_FAILED;
        uint32_t chunks = (source->stream_count + RD_EVENTS_CHUNK - 1) / RD_EVENTS_CHUNK;
        if (chunks == 0 || empty > chunks)
            return JOURNAL_READ_WAIT;
        if (!read_chunk(source, message, message_size))
            return JOURNAL_READ_FAILED;
    }
}

void rd_events_close(rd_events *source)
{
    if (source == NULL)
        return;
    freeReplyObject(source->entries);
    if (source->redis != NULL)
        redisFree(source->redis);
    free(source);
}
