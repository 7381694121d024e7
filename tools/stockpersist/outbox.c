/*
 * outbox.c -- stockpersist's Redis side. The redis store appends each
 * change's flow record to the outbox stream of the change's slot,
 * P{outbox:N} (docs/redis.md). Every stream has one consumer group; one
 * persister at a time holds a stream's lease (stockd_v1_outbox_lease), so
 * a stream's records are applied in their order, and the holder claims every
 * pending entry of the group first (XAUTOCLAIM), which takes over what a
 * dead persister had read but not acknowledged.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "persist.h"

#define SCAN_COUNT "1000"           /* keys SCAN looks at per call */
#define SCAN_EVERY_MS 1000          /* new streams are found this often */

int64_t outbox_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static bool lost(persister *p, const char *what, const redisReply *reply)
{
    snprintf(p->error, sizeof p->error, "redis: %s: %s", what,
             reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str
             : p->redis != NULL && p->redis->errstr[0] != '\0' ? p->redis->errstr
                                                               : "unexpected reply");
    if (reply == NULL && p->redis != NULL) {
        redisFree(p->redis);
        p->redis = NULL;
    }
    return false;
}

bool outbox_connect(persister *p)
{
    if (p->redis != NULL)
        return true;
    stock_code code = STOCK_UNSUPPORTED;
    if (p->redis_options.cluster)
        snprintf(p->error, sizeof p->error, "redis: stockpersist reads one Redis server; "
                 "a Redis Cluster (cluster=1) is not supported yet");
    else
        code = rd_node_connect(&p->redis_options, &p->redis_options.seeds[0], &p->redis,
                               p->error, sizeof p->error);
    if (code == STOCK_OK)
        code = rd_layout_check(p->redis, &p->redis_options, p->error, sizeof p->error);
    if (code == STOCK_OK)
        code = rd_functions_load(p->redis, p->error, sizeof p->error);
    if (code != STOCK_OK && p->redis != NULL) {
        redisFree(p->redis);
        p->redis = NULL;
    }
    p->scanned_ms = 0;
    p->renewed_ms = 0;
    return code == STOCK_OK;
}

static uint32_t stream_find(const persister *p, const char *key)
{
    for (uint32_t i = 0; i < p->stream_count; i++)
        if (strcmp(p->streams[i].key, key) == 0)
            return i;
    return UINT32_MAX;
}

/* A glob pattern matching P{outbox:*} only: the prefix's glob characters
 * escaped. */
static void scan_pattern(const char *prefix, char *out, size_t size)
{
    size_t used = 0;
    for (const char *c = prefix; *c != '\0' && used + 2 < size; c++) {
        if (strchr("*?[]\\", *c) != NULL)
            out[used++] = '\\';
        out[used++] = *c;
    }
    snprintf(out + used, size - used, "{outbox:*}");
}

static bool stream_add(persister *p, const char *key)
{
    if (stream_find(p, key) != UINT32_MAX || p->stream_count == RD_SLOTS ||
        strlen(key) >= PERSIST_KEY_MAX)
        return true;
    redisReply *reply = redisCommand(p->redis, "XGROUP CREATE %s %s 0", key, p->options.group);
    if (reply == NULL)
        return lost(p, "XGROUP CREATE", reply);
    bool ok = reply->type != REDIS_REPLY_ERROR || strncmp(reply->str, "BUSYGROUP", 9) == 0;
    if (!ok)
        lost(p, "XGROUP CREATE", reply);
    freeReplyObject(reply);
    if (ok)
        snprintf(p->streams[p->stream_count++].key, PERSIST_KEY_MAX, "%s", key);
    return ok;
}

bool outbox_scan(persister *p)
{
    int64_t now = outbox_now_ms();
    if (p->scanned_ms != 0 && now - p->scanned_ms < SCAN_EVERY_MS)
        return true;
    char pattern[2 * RD_PREFIX_MAX + 16];
    scan_pattern(p->redis_options.prefix, pattern, sizeof pattern);
    char cursor[32] = "0";
    do {
        redisReply *reply = redisCommand(p->redis, "SCAN %s MATCH %s COUNT " SCAN_COUNT
                                         " TYPE stream", cursor, pattern);
        if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
            return lost(p, "SCAN", reply), freeReplyObject(reply), false;
        snprintf(cursor, sizeof cursor, "%s", reply->element[0]->str);
        redisReply *keys = reply->element[1];
        bool ok = true;
        for (size_t i = 0; ok && i < keys->elements; i++)
            ok = stream_add(p, keys->element[i]->str);
        freeReplyObject(reply);
        if (!ok)
            return false;
    } while (strcmp(cursor, "0") != 0);
    p->scanned_ms = now;
    return true;
}

bool outbox_lease(persister *p)
{
    int64_t now = outbox_now_ms();
    if (p->renewed_ms != 0 && now - p->renewed_ms < p->options.lease_ms / 3)
        return true;
    for (uint32_t i = 0; i < p->stream_count; i++)
        redisAppendCommand(p->redis, "FCALL " RD_FN "outbox_lease 1 %s:lease %s %u",
                           p->streams[i].key, p->options.name, p->options.lease_ms);
    for (uint32_t i = 0; i < p->stream_count; i++) {
        redisReply *reply = NULL;
        if (redisGetReply(p->redis, (void **)&reply) != REDIS_OK || reply == NULL)
            return lost(p, "lease", NULL);
        if (reply->type != REDIS_REPLY_INTEGER) {
            lost(p, "lease", reply);
            freeReplyObject(reply);
            return false;
        }
        p->streams[i].owned = reply->integer == 1;
        freeReplyObject(reply);
    }
    p->renewed_ms = now;
    return true;
}

/* The fields of an entry [id, [field, value, ...]] as apply arguments. */
static bool record_add(persister *p, uint32_t stream, const redisReply *entry)
{
    /* Each argument's field, and its value when the record has none (a
     * warm-up's marker has only ms and k). */
    static const char *const names[PERSIST_PARAMS] = {
        NULL, NULL, "k", "sku", "av", "adj", "ded", "ref", "id", "q", "t", "o", "line", "lr",
    };
    static const char *const missing[PERSIST_PARAMS] = {
        NULL, NULL, "", "", "0", "0", "0", "0", "", "0", "0", "", "", "0",
    };
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING ||
        entry->element[1]->type != REDIS_REPLY_ARRAY || p->record_count == PERSIST_CYCLE_MAX)
        return false;
    persist_record *r = &p->records[p->record_count++];
    r->stream = stream;
    r->id = entry->element[0]->str;
    r->params[0] = p->streams[stream].key;
    const char *dash = strchr(r->id, '-');
    r->params[1] = dash != NULL ? dash + 1 : r->id;
    const redisReply *fields = entry->element[1];
    for (int k = 2; k < PERSIST_PARAMS; k++) {
        r->params[k] = missing[k];
        for (size_t f = 0; f + 1 < fields->elements; f += 2)
            if (strcmp(fields->element[f]->str, names[k]) == 0)
                r->params[k] = fields->element[f + 1]->str;
    }
    return true;
}

/* Keeps reply for the cycle; adds its entries (an array of entries). */
static void entries_add(persister *p, uint32_t stream, const redisReply *entries)
{
    for (size_t e = 0; e < entries->elements; e++)
        record_add(p, stream, entries->element[e]);
}

/* The owned streams whose records fit in this cycle, from first on. */
static uint32_t chunk_end(const persister *p, uint32_t first)
{
    uint32_t fits = PERSIST_CYCLE_MAX / p->options.batch, end = first;
    for (uint32_t n = 0; end < p->stream_count && n < fits; end++)
        n += p->streams[end].owned;
    return end;
}

bool outbox_read(persister *p)
{
    if (p->next_stream >= p->stream_count)
        p->next_stream = 0;
    uint32_t first = p->next_stream, end = chunk_end(p, first);
    p->next_stream = end;
    for (uint32_t i = first; i < end; i++)
        if (p->streams[i].owned)
            redisAppendCommand(p->redis, "XAUTOCLAIM %s %s %s 0 0-0 COUNT %u", p->streams[i].key,
                               p->options.group, p->options.name, p->options.batch);
    bool fresh[RD_SLOTS] = {false};
    for (uint32_t i = first; i < end; i++) {
        if (!p->streams[i].owned)
            continue;
        redisReply *reply = NULL;
        if (redisGetReply(p->redis, (void **)&reply) != REDIS_OK || reply == NULL)
            return lost(p, "XAUTOCLAIM", NULL);
        p->replies[p->reply_count++] = reply;
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2)
            return lost(p, "XAUTOCLAIM", reply);
        entries_add(p, i, reply->element[1]);
        /* Entries deleted while pending (element 2) need nothing: this
         * persister deletes only what it acknowledged before. */
        fresh[i] = reply->element[1]->elements == 0;
    }
    for (uint32_t i = first; i < end; i++)
        if (fresh[i])
            redisAppendCommand(p->redis, "XREADGROUP GROUP %s %s COUNT %u STREAMS %s >",
                               p->options.group, p->options.name, p->options.batch,
                               p->streams[i].key);
    for (uint32_t i = first; i < end; i++) {
        if (!fresh[i])
            continue;
        redisReply *reply = NULL;
        if (redisGetReply(p->redis, (void **)&reply) != REDIS_OK || reply == NULL)
            return lost(p, "XREADGROUP", NULL);
        p->replies[p->reply_count++] = reply;
        if (reply->type == REDIS_REPLY_ERROR)
            return lost(p, "XREADGROUP", reply);
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
            reply->element[0]->elements == 2)
            entries_add(p, i, reply->element[0]->element[1]);
    }
    p->read += p->record_count;
    return true;
}

bool outbox_ack(persister *p)
{
    uint32_t calls = 0;
    for (uint32_t r = 0; r < p->record_count;) {
        uint32_t stream = p->records[r].stream, end = r;
        while (end < p->record_count && p->records[end].stream == stream)
            end++;
        for (int pass = 0; pass < 2; pass++) {
            const char *argv[3 + PERSIST_BATCH_MAX];
            int argc = 0;
            argv[argc++] = pass == 0 ? "XACK" : "XDEL";
            argv[argc++] = p->streams[stream].key;
            if (pass == 0)
                argv[argc++] = p->options.group;
            for (uint32_t k = r; k < end; k++)
                argv[argc++] = p->records[k].id;
            redisAppendCommandArgv(p->redis, argc, argv, NULL);
            calls++;
        }
        r = end;
    }
    for (uint32_t i = 0; i < calls; i++) {
        redisReply *reply = NULL;
        if (redisGetReply(p->redis, (void **)&reply) != REDIS_OK || reply == NULL)
            return lost(p, "XACK", NULL);
        bool ok = reply->type == REDIS_REPLY_INTEGER;
        if (!ok)
            lost(p, "XACK", reply);
        freeReplyObject(reply);
        if (!ok)
            return false;
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

bool outbox_lag(persister *p, uint64_t *records, int64_t *age_ms)
{
    *records = 0;
    *age_ms = 0;
    int64_t now = outbox_now_ms();
    for (uint32_t i = 0; i < p->stream_count; i++) {
        redisAppendCommand(p->redis, "XLEN %s", p->streams[i].key);
        redisAppendCommand(p->redis, "XRANGE %s - + COUNT 1", p->streams[i].key);
    }
    bool ok = true;
    for (uint32_t i = 0; i < 2 * p->stream_count; i++) {
        redisReply *reply = NULL;
        if (redisGetReply(p->redis, (void **)&reply) != REDIS_OK || reply == NULL)
            return lost(p, "XLEN", NULL);
        if (reply->type == REDIS_REPLY_INTEGER)
            *records += (uint64_t)reply->integer;
        else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
                 reply->element[0]->elements == 2 && reply->element[0]->element[1]->elements >= 2) {
            int64_t age = now - strtoll(reply->element[0]->element[1]->element[1]->str, NULL, 10);
            if (age > *age_ms)
                *age_ms = age;
        } else if (reply->type != REDIS_REPLY_ARRAY) {
            ok = lost(p, "XLEN", reply);
        }
        freeReplyObject(reply);
    }
    return ok;
}
