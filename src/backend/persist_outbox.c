/*
 * persist_outbox.c -- the persister's Redis side. The redis store appends
 * each change's flow record to the outbox stream of the change's slot,
 * P{outbox:N} (docs/redis.md). Every stream has one consumer group; one
 * persister at a time holds a stream's lease (stockd_v3_outbox_lease), so
 * a stream's records are applied in their order, and the holder claims every
 * pending entry of the group first (XAUTOCLAIM), which takes over what a
 * dead persister had read but not acknowledged. Records applied are only
 * acknowledged: the trim (stockd_v3_outbox_trim) then deletes what every
 * reader's group is done with, so stockevents, a reader of its own, still
 * finds the records it has not read.
 *
 * On a Redis Cluster each master holds the streams of its slots: the link
 * of the redis backend (redis_link.c) connects every master from the slot
 * map, each master is scanned, and each stream's commands go to the master
 * it was found on. Commands are pipelined over every master at once and
 * their replies read in the same order (each connection answers in order).
 * Any failure closes the whole link: the next cycle reads the slot map
 * again, so a failover's new master is found (and a MOVED is a failure).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/persist_internal.h"
#include "lib/clock.h"

#define SCAN_EVERY_MS 1000          /* new streams are found this often */

int64_t outbox_now_ms(void)
{
    return clock_now_us(CLOCK_REALTIME) / 1000;
}

int64_t outbox_tick_ms(void)
{
    return clock_now_us(CLOCK_MONOTONIC) / 1000;
}

static redisContext *node_conn(persister *p, int node)
{
    return p->redis->link.nodes[node].conn;
}

static redisContext *stream_conn(persister *p, uint32_t stream)
{
    return node_conn(p, p->streams[stream].node);
}

/* Notes what failed; the cycle's caller then closes the link. */
static bool lost(persister *p, const char *what, int node, const redisReply *reply)
{
    const redisContext *conn = node >= 0 ? node_conn(p, node) : NULL;
    snprintf(p->error, sizeof p->error, "redis: %s: %s", what,
             reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str
             : conn != NULL && conn->errstr[0] != '\0' ? conn->errstr
                                                       : "unexpected reply");
    return false;
}

/* The next reply of node into *reply (owned by the caller); false when
 * the connection failed. */
static bool reply_of(persister *p, int node, const char *what, redisReply **reply)
{
    *reply = NULL;
    if (redisGetReply(node_conn(p, node), (void **)reply) != REDIS_OK || *reply == NULL)
        return lost(p, what, node, NULL);
    return true;
}

void outbox_disconnect(persister *p)
{
    rd_link_close(p->redis);
    p->stream_count = 0;
    memset(&p->found, 0, sizeof p->found);
    p->next_stream = 0;
    p->scanned_ms = 0;
    p->renewed_ms = 0;
}

/* Registers this persister's group as a reader of the outbox, on the
 * master that holds the registry. */
static bool register_group(persister *p)
{
    char key[RD_OUTBOX_READERS_KEY_MAX];
    rd_outbox_readers_key(p->redis->options.prefix, key, sizeof key);
    redisContext *conn = outbox_conn_of(p, key);
    if (conn == NULL) {
        snprintf(p->error, sizeof p->error, "redis: no master holds %s", key);
        return false;
    }
    return rd_outbox_register(conn, p->redis->options.prefix, p->options.group, p->error,
                              sizeof p->error);
}

bool outbox_connect(persister *p)
{
    if (rd_linked(p->redis))
        return true;
    outbox_disconnect(p);
    char message[STOCK_MESSAGE_MAX];
    if (rd_link_open(p->redis, message, sizeof message) != STOCK_OK) {
        snprintf(p->error, sizeof p->error, "%s", message);
        return false;
    }
    p->record_buckets = p->redis->record_buckets;
    return register_group(p);
}

redisContext *outbox_conn_of(persister *p, const char *key)
{
    if (!p->redis->options.cluster)
        return node_conn(p, 0);
    unsigned node = p->redis->link.slot_node[rd_key_slot(key, strlen(key))];
    return node == RD_NO_NODE ? NULL : node_conn(p, (int)node);
}

/* Adds the stream key of node (rd_outbox_found_fn), with every registered
 * reader's group (the registry's members) and this persister's. */
static bool stream_add(void *reader, int node, const char *key)
{
    persister *p = reader;
    if (p->stream_count == RD_SLOTS || strlen(key) >= PERSIST_KEY_MAX)
        return true;
    bool ok = rd_outbox_groups_create(node_conn(p, node), key, p->readers, p->options.group,
                                      p->error, sizeof p->error);
    if (ok) {
        persist_stream *stream = &p->streams[p->stream_count++];
        snprintf(stream->key, PERSIST_KEY_MAX, "%s", key);
        stream->node = node;
        stream->owned = false;
    }
    return ok;
}

bool outbox_scan(persister *p)
{
    int64_t now = outbox_tick_ms();
    if (p->scanned_ms != 0 && now - p->scanned_ms < SCAN_EVERY_MS)
        return true;
    char key[RD_OUTBOX_READERS_KEY_MAX];
    rd_outbox_readers_key(p->redis->options.prefix, key, sizeof key);
    redisContext *conn = outbox_conn_of(p, key);
    redisReply *readers = conn != NULL ? redisCommand(conn, "SMEMBERS %s", key) : NULL;
    if (readers == NULL || readers->type != REDIS_REPLY_ARRAY) {
        lost(p, "SMEMBERS", -1, readers);
        freeReplyObject(readers);
        return false;
    }
    p->readers = readers;
    bool ok = true;
    for (int node = 0; ok && node < p->redis->link.node_count; node++)
        ok = rd_outbox_find(p->redis, node_conn(p, node), node, &p->found, stream_add, p,
                            p->error, sizeof p->error);
    p->readers = NULL;
    freeReplyObject(readers);
    if (ok)
        p->scanned_ms = now;
    return ok;
}

bool outbox_lease(persister *p)
{
    int64_t now = outbox_tick_ms();
    if (p->renewed_ms != 0 && now - p->renewed_ms < p->options.lease_ms / 3)
        return true;
    for (uint32_t i = 0; i < p->stream_count; i++)
        redisAppendCommand(stream_conn(p, i), "FCALL " RD_FN "outbox_lease 1 %s:lease %s %u",
                           p->streams[i].key, p->options.name, p->options.lease_ms);
    for (uint32_t i = 0; i < p->stream_count; i++) {
        redisReply *reply = NULL;
        if (!reply_of(p, p->streams[i].node, "lease", &reply))
            return false;
        bool ok = reply->type == REDIS_REPLY_INTEGER;
        if (!ok)
            lost(p, "lease", p->streams[i].node, reply);
        p->streams[i].owned = ok && reply->integer == 1;
        freeReplyObject(reply);
        if (!ok)
            return false;
    }
    p->renewed_ms = now;
    return true;
}

/* An entry of kind 'lines': nr lone deductions, record i with sequence
 * S + i (rd_lines_next). Added whole or not at all: not when the cycle has
 * no room for every line (the entry stays pending and comes again) or the
 * entry is malformed (rd_lines_count: r does not hold nr records). */
static persist_entry_added lines_add(persister *p, uint32_t stream, const char *id,
                                     uint64_t seq, const redisReply *fields)
{
    const char *time = rd_entry_field(fields, "t");
    char *text = rd_entry_field(fields, "r");
    uint64_t lines = rd_lines_count(rd_entry_field(fields, "nr"), text);
    if (time == NULL || lines == 0 || lines > PERSIST_CYCLE_MAX)
        return PERSIST_ENTRY_MALFORMED;
    if (lines > PERSIST_CYCLE_MAX - p->record_count)
        return PERSIST_ENTRY_NO_ROOM;
    for (uint64_t i = 0; i < lines; i++) {
        rd_lines_record line;
        bool cut = rd_lines_next(&text, &line);
        assert(cut);   /* rd_lines_count counted them */
        persist_record *r = &p->records[p->record_count + i];
        r->stream = stream;
        r->id = id;
        snprintf(r->seq, sizeof r->seq, "%" PRIu64, seq + i);
        const char *params[PERSIST_PARAMS] = {
            p->streams[stream].key, r->seq, "line", line.sku, line.available, line.adjusted,
            line.deducted, line.refunded, line.line, line.qty, time, "", "", "0", "0", "0", "0",
        };
        memcpy(r->params, params, sizeof params);
    }
    p->record_count += (uint32_t)lines;
    return PERSIST_ENTRY_ADDED;
}

persist_entry_added outbox_entry_add(persister *p, uint32_t stream, const redisReply *entry)
{
    /* Each argument's field, and its value when the record has none (a
     * warm-up's marker has only ms and k). */
    static const char *const names[PERSIST_PARAMS] = {
        NULL, NULL, "k", "sku", "av", "adj", "ded", "ref", "id", "q", "t", "o", "line", "lr",
        "n", "c", "bk",
    };
    static const char *const missing[PERSIST_PARAMS] = {
        NULL, NULL, "", "", "0", "0", "0", "0", "", "0", "0", "", "", "0", "0", "0", "0",
    };
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING ||
        entry->element[1]->type != REDIS_REPLY_ARRAY)
        return PERSIST_ENTRY_MALFORMED;
    if (p->record_count == PERSIST_CYCLE_MAX)
        return PERSIST_ENTRY_NO_ROOM;
    const char *id = entry->element[0]->str, *dash = strchr(id, '-');
    const redisReply *fields = entry->element[1];
    const char *kind = rd_entry_field(fields, "k");
    if (kind != NULL && strcmp(kind, RD_LINES_KIND) == 0)
        return dash == NULL ? PERSIST_ENTRY_MALFORMED
                            : lines_add(p, stream, id, strtoull(dash + 1, NULL, 10), fields);
    if (p->record_buckets == 0 && rd_entry_field(fields, "bk") != NULL)
        return PERSIST_ENTRY_LAYOUT;
    persist_record *r = &p->records[p->record_count++];
    r->stream = stream;
    r->id = id;
    r->params[0] = p->streams[stream].key;
    r->params[1] = dash != NULL ? dash + 1 : r->id;
    for (int k = 2; k < PERSIST_PARAMS; k++) {
        const char *value = rd_entry_field(fields, names[k]);
        r->params[k] = value != NULL ? value : missing[k];
    }
    return PERSIST_ENTRY_ADDED;
}

/* Adds the entries of reply (an array of entries) to the cycle, in order,
 * up to the first that is not added (a later one applied without it would
 * leave a hole in the stream's sequence), and up to about options.batch
 * records, so that 'lines' entries of one busy stream leave room for the
 * other streams of the cycle. What is left stays pending and comes again.
 * False for an entry this persister cannot read: it stops there, saying
 * which, rather than skip records (the cycle fails, and each one after it
 * until the entry is mended; docs/persister.md). */
static bool entries_add(persister *p, uint32_t stream, const redisReply *entries)
{
    uint32_t first = p->record_count;
    for (size_t e = 0; e < entries->elements && p->record_count - first < p->options.batch; e++) {
        const redisReply *entry = entries->element[e];
        persist_entry_added added = outbox_entry_add(p, stream, entry);
        if (added == PERSIST_ENTRY_MALFORMED) {
            snprintf(p->error, sizeof p->error, "redis: the outbox entry %.40s of %.64s cannot "
                     "be read (not a record this persister knows); persisting stops there",
                     entry->type == REDIS_REPLY_ARRAY && entry->elements >= 1 &&
                             entry->element[0]->type == REDIS_REPLY_STRING
                         ? entry->element[0]->str : "?",
                     p->streams[stream].key);
            return false;
        }
        if (added == PERSIST_ENTRY_LAYOUT) {
            /* The store became layout 5 after the link read it (its first
             * open with buckets on the cluster): the cycle fails, and the
             * next one's link reads the layout again. */
            snprintf(p->error, sizeof p->error, "redis: the outbox entry %.40s of %.64s holds "
                     "one bucket's totals (layout " RD_LAYOUT_BUCKETS "), the store was layout "
                     RD_LAYOUT_VERSION " when the persister connected: reading the layout again "
                     "(if it stays " RD_LAYOUT_VERSION ", the store was made by an older library: "
                     "open it once with cluster=1&buckets=K through this one)",
                     entry->element[0]->str, p->streams[stream].key);
            return false;
        }
        if (added == PERSIST_ENTRY_NO_ROOM)
            break;
    }
    return true;
}

/* The owned streams whose records fit in this cycle, from first on. */
static uint32_t chunk_end(const persister *p, uint32_t first)
{
    uint32_t fits = PERSIST_CYCLE_MAX / p->options.batch, end = first;
    for (uint32_t n = 0; end < p->stream_count && n < fits; end++)
        n += p->streams[end].owned;
    return end;
}

/* XAUTOCLAIM on the owned streams of [first, end): *fresh[i] when stream i
 * has nothing pending (so new records may be read). */
static bool read_pending(persister *p, uint32_t first, uint32_t end, bool *fresh)
{
    for (uint32_t i = first; i < end; i++)
        if (p->streams[i].owned)
            redisAppendCommand(stream_conn(p, i), "XAUTOCLAIM %s %s %s 0 0-0 COUNT %u",
                               p->streams[i].key, p->options.group, p->options.name,
                               p->options.batch);
    for (uint32_t i = first; i < end; i++) {
        if (!p->streams[i].owned)
            continue;
        redisReply *reply = NULL;
        if (!reply_of(p, p->streams[i].node, "XAUTOCLAIM", &reply))
            return false;
        p->replies[p->reply_count++] = reply;
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2)
            return lost(p, "XAUTOCLAIM", p->streams[i].node, reply);
        if (!entries_add(p, i, reply->element[1]))
            return false;
        /* Entries deleted while pending (element 2) need nothing: the
         * trim keeps every entry a group has pending, so only an older
         * persister's XDEL of records it had applied leaves one. */
        fresh[i] = reply->element[1]->elements == 0;
    }
    return true;
}

bool outbox_read(persister *p)
{
    if (p->next_stream >= p->stream_count)
        p->next_stream = 0;
    uint32_t first = p->next_stream, end = chunk_end(p, first);
    p->next_stream = end;
    bool fresh[RD_SLOTS] = {false};
    if (!read_pending(p, first, end, fresh))
        return false;
    for (uint32_t i = first; i < end; i++)
        if (fresh[i])
            redisAppendCommand(stream_conn(p, i), "XREADGROUP GROUP %s %s COUNT %u STREAMS %s >",
                               p->options.group, p->options.name, p->options.batch,
                               p->streams[i].key);
    for (uint32_t i = first; i < end; i++) {
        if (!fresh[i])
            continue;
        redisReply *reply = NULL;
        if (!reply_of(p, p->streams[i].node, "XREADGROUP", &reply))
            return false;
        p->replies[p->reply_count++] = reply;
        if (reply->type == REDIS_REPLY_ERROR)
            return lost(p, "XREADGROUP", p->streams[i].node, reply);
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
            reply->element[0]->elements == 2 && !entries_add(p, i, reply->element[0]->element[1]))
            return false;
    }
    atomic_fetch_add(&p->read, p->record_count);
    return true;
}

/* Queues the trim of stream (docs/redis.md, "The outbox"). */
static void trim_append(persister *p, uint32_t stream)
{
    redisAppendCommand(stream_conn(p, stream), "FCALL " RD_FN "outbox_trim 1 %s %s",
                       p->streams[stream].key, p->options.group);
}

/* Queues the XACK of records[r, end), all of one stream, then its trim:
 * records are never deleted here, since another reader's group may not
 * have read them yet. */
static void ack_append(persister *p, uint32_t r, uint32_t end)
{
    /* a read takes at most options.batch entries of one stream */
    const char *argv[3 + PERSIST_BATCH_MAX];
    uint32_t stream = p->records[r].stream;
    int argc = 0;
    argv[argc++] = "XACK";
    argv[argc++] = p->streams[stream].key;
    argv[argc++] = p->options.group;
    /* the records of one 'lines' entry share its id */
    for (uint32_t k = r; k < end; k++)
        if (k == r || strcmp(p->records[k].id, p->records[k - 1].id) != 0)
            argv[argc++] = p->records[k].id;
    redisAppendCommandArgv(stream_conn(p, stream), argc, argv, NULL);
    trim_append(p, stream);
}

bool outbox_ack(persister *p)
{
    for (uint32_t r = 0, end; r < p->record_count; r = end) {
        for (end = r; end < p->record_count && p->records[end].stream == p->records[r].stream;)
            end++;
        ack_append(p, r, end);
    }
    for (uint32_t r = 0, end; r < p->record_count; r = end) {
        for (end = r; end < p->record_count && p->records[end].stream == p->records[r].stream;)
            end++;
        int node = p->streams[p->records[r].stream].node;
        for (int pass = 0; pass < 2; pass++) {
            const char *what = pass == 0 ? "XACK" : "trim";
            redisReply *reply = NULL;
            if (!reply_of(p, node, what, &reply))
                return false;
            bool ok = reply->type == (pass == 0 ? REDIS_REPLY_INTEGER : REDIS_REPLY_ARRAY);
            if (!ok)
                lost(p, what, node, reply);
            freeReplyObject(reply);
            if (!ok)
                return false;
        }
    }
    return true;
}

void outbox_release(persister *p)
{
    for (uint32_t i = 0; i < p->reply_count; i++)
        freeReplyObject(p->replies[i]);
    p->reply_count = 0;
    p->record_count = 0;
}

/* Adds one stream's trim reply [trimmed, records, oldest ms, length] to the
 * lag: the records this persister's group has not acknowledged. */
static bool lag_add(persister *p, int node, const redisReply *reply, int64_t now,
                    uint64_t *records, int64_t *age_ms, uint64_t *held)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4 ||
        reply->element[1]->type != REDIS_REPLY_INTEGER ||
        reply->element[2]->type != REDIS_REPLY_STRING ||
        reply->element[3]->type != REDIS_REPLY_INTEGER)
        return lost(p, "trim", node, reply);
    *records += (uint64_t)reply->element[1]->integer;
    *held += (uint64_t)reply->element[3]->integer;
    int64_t oldest_ms = strtoll(reply->element[2]->str, NULL, 10);
    if (oldest_ms > 0 && now - oldest_ms > *age_ms)
        *age_ms = now - oldest_ms;
    return true;
}

/* Trims every stream, which also measures the lag: so a stream is trimmed
 * at least once a second even when this persister has nothing to apply
 * (another reader catching up frees what it held). */
bool outbox_lag(persister *p, uint64_t *records, int64_t *age_ms, uint64_t *held)
{
    *records = 0;
    *age_ms = 0;
    *held = 0;
    int64_t now = outbox_now_ms();
    for (uint32_t i = 0; i < p->stream_count; i++)
        trim_append(p, i);
    bool ok = true;
    for (uint32_t i = 0; i < p->stream_count; i++) {
        int node = p->streams[i].node;
        redisReply *reply = NULL;
        if (!reply_of(p, node, "trim", &reply))
            return false;
        ok = lag_add(p, node, reply, now, records, age_ms, held) && ok;
        freeReplyObject(reply);
    }
    return ok;
}
