/*
 * redis_bucket.c -- the keys of a SKU's hot-SKU buckets (buckets=K,
 * docs/redis.md "Hot-SKU buckets"), and the store's record of K. Bucket 0
 * is the SKU's home, P{sku:S}, the key a store without buckets has; bucket
 * j >= 1 is P{skub:j:n:S}, with n the smallest number that puts the key in
 * the j-th K-th of the slot ring counted from the home's slot. So the K
 * buckets sit in K different slots, evenly apart: on a cluster whose masters
 * hold contiguous, equal ranges of slots (what redis-cli --cluster create
 * makes), buckets land on different masters whenever K is at most the
 * number of masters, and evenly over them otherwise. The names depend on
 * the SKU and K only, never on the current slot map, so every client finds
 * the same keys.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "backend/redis.h"
#include "lib/message.h"

#define RD_BUCKET_TRIES_MAX 1000000   /* n tried per bucket (about K are needed) */

unsigned rd_bucket_tag(stock_id sku, uint32_t bucket, uint32_t buckets, char *tag, size_t size)
{
    assert(bucket >= 1 && bucket < buckets && buckets <= RD_BUCKETS_MAX);
    unsigned width = RD_SLOTS / buckets;
    unsigned first = (rd_tag_slot("sku", sku) + bucket * width) % RD_SLOTS;
    for (unsigned n = 0; n < RD_BUCKET_TRIES_MAX; n++) {
        int len = snprintf(tag, size, "%u:%u:%.*s", bucket, n, (int)sku.len, sku.ptr);
        assert(len > 0 && (size_t)len < size);
        unsigned slot = rd_tag_slot("skub", (stock_id){tag, (size_t)len});
        if ((slot - first + RD_SLOTS) % RD_SLOTS < width)
            return slot;
    }
    assert(!"CRC16 reaches every range of slots within a few tries");
    return 0;
}

int64_t rd_sum_held(int64_t sum, int64_t value)
{
    int64_t result;
    if (!__builtin_add_overflow(sum, value, &result))
        return result;
    return value > 0 ? INT64_MAX : INT64_MIN;
}

int64_t rd_sum_clamp(__int128 sum)
{
    return sum > INT64_MAX ? INT64_MAX : sum < INT64_MIN ? INT64_MIN : (int64_t)sum;
}

unsigned rd_bucket_key(const char *prefix, stock_id sku, uint32_t bucket, uint32_t buckets,
                       const char *suffix, char *key, size_t size)
{
    int len;
    if (bucket == 0) {
        len = snprintf(key, size, "%s{sku:%.*s}%s", prefix, (int)sku.len, sku.ptr, suffix);
    } else {
        char tag[RD_BUCKET_TAG_MAX];
        rd_bucket_tag(sku, bucket, buckets, tag, sizeof tag);
        len = snprintf(key, size, "%s{skub:%s}%s", prefix, tag, suffix);
    }
    assert(len > 0 && (size_t)len < size);
    return (unsigned)len;
}

void rd_cmd_buckets(rd_cmd *cmd, const char *prefix, stock_id sku, uint32_t buckets)
{
    char key[RD_BUCKET_KEY_MAX];
    for (uint32_t j = 1; j < buckets; j++) {
        rd_bucket_key(prefix, sku, j, buckets, "", key, sizeof key);
        rd_cmd_key_text(cmd, key);
    }
}

/* Runs a command; false (message set) when it failed. */
static bool command_ok(redisContext *conn, redisReply *reply, const char *what, stock_code *code,
                       char *message, size_t size)
{
    if (reply != NULL && reply->type != REDIS_REPLY_ERROR)
        return true;
    *code = reply == NULL ? STOCK_UNAVAILABLE : STOCK_IO;
    message_set(message, size, "redis: cannot %s: %.160s", what,
                reply == NULL ? conn->errstr : reply->str);
    return false;
}

/* Records K at a new store's key Pstock:buckets, or checks it against the
 * record. A library that knows no buckets (and would read the home bucket
 * alone) refuses the store by its layout version, which is 4 whatever K is
 * (layout 3 marked K > 1; rd_layout_check). An existing store is only read,
 * so that a server at maxmemory still opens it. A reader of the outbox (the
 * persister) takes the store as it is, whatever its K. */
stock_code rd_buckets_check(redisContext *conn, const rd_options *options, rd_bound bound,
                            char *message, size_t size)
{
    if (options->outbox_reader)
        return STOCK_OK;
    char key[RD_PREFIX_MAX + 32], value[16];
    snprintf(key, sizeof key, "%sstock:buckets", options->prefix);
    snprintf(value, sizeof value, "%u", options->buckets);
    stock_code code = STOCK_OK;
    const char *get_record[] = {"GET", key};
    redisReply *reply = rd_conn_command(conn, bound, 2, get_record, NULL);
    if (command_ok(conn, reply, "read the buckets record", &code, message, size) &&
        reply->type == REDIS_REPLY_NIL) {
        freeReplyObject(reply);
        const char *set_record[] = {"SET", key, value, "NX", "GET"};
        reply = rd_conn_command(conn, bound, 5, set_record, NULL);
        command_ok(conn, reply, "record buckets", &code, message, size);
    }
    if (code == STOCK_OK && reply->type == REDIS_REPLY_STRING && strcmp(reply->str, value) != 0) {
        code = STOCK_INVALID;
        message_set(message, size, "redis: the store%s%s was made with buckets=%.8s; open it "
                    "with buckets=%.8s (a SKU's stock lies in that many keys), not buckets=%s",
                    options->prefix[0] != '\0' ? " with prefix " : "", options->prefix,
                    reply->str, reply->str, value);
    }
    freeReplyObject(reply);
    return code;
}
