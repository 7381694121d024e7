/*
 * redis_faults.c -- the redis backend when things go wrong, on a real
 * redis-server (tests/suites/55-redis.sh starts it):
 *
 *   redis_faults options URI     bad options are refused and named; good ones
 *                                open; a port nobody listens on is UNAVAILABLE;
 *                                a server whose maxmemory-policy may evict
 *                                any key (allkeys-lru) is refused, one that
 *                                evicts only keys with a TTL is not
 *   redis_faults directory URI   a client that died between a line's directory
 *                                entry and its deduction: the entry alone
 *                                means NOTFOUND, and the line id stays usable
 *   redis_faults stale URI       a client that died in the middle of an order
 *                                over two slots: the retry undoes the stale
 *                                attempt and places the order exactly once
 *   redis_faults sweep URI       the same without a retry: the next open's
 *                                sweep gives it back, late calls are fenced
 *   redis_faults write URI FILE  deducts until the server goes away, writing
 *                                the last acknowledged line number to FILE
 *   redis_faults check URI FILE  every acknowledged line is there
 *   redis_faults full URI        on a server at maxmemory: writes fail with a
 *                                clear error and change nothing, reads work
 *   redis_faults waited URI      wait=1 with a replica: writes succeed
 *   redis_faults unreplicated URI  wait=1, no replica: writes say they are
 *                                on the master only (and are)
 *   redis_faults stopped URI PIDS  the server frozen (SIGSTOP to each of the
 *                                comma-separated PIDS: a cluster's masters):
 *                                an op times out UNAVAILABLE, its retry
 *                                counts once
 *   redis_faults slow URI PIDS   the server answering every call late but
 *                                within timeout_ms (frozen and thawed over
 *                                and over, as stopped): a batch of orders
 *                                over two slots, dozens of calls one after
 *                                the other, ends by its deadline, twice
 *                                (the second reconnects first), the ops
 *                                left UNAVAILABLE; their retries count once
 *
 *   redis_faults buckets URI     buckets=4 on one server: the buckets lie in 4
 *                                slots a quarter of the ring apart; a
 *                                deduction that the total covers but no
 *                                bucket does succeeds; refunds, compare-and-
 *                                set, orders and write-offs over buckets;
 *                                every bucket keeps I2; a store made with
 *                                buckets=4 refuses another K
 *
 *   redis_faults outbox URI      a store made with outbox=0 (with and without
 *                                buckets): sets, adds, deductions one by one
 *                                and in a batch, refunds and orders over
 *                                two SKUs work and leave no stream; its
 *                                layout is 6; opened without outbox=0, a
 *                                store with an outbox opened with it, and
 *                                the persister's and stockevents' link
 *                                (an outbox reader) are refused with a
 *                                clear error and write nothing
 *
 *   redis_faults moved URI       on a cluster: prints "sku S" and waits for a
 *                                line on stdin before each of three
 *                                deductions from S (the suite moves S's slot
 *                                to another master meanwhile: the first
 *                                deduction meets ASK, the second MOVED; then
 *                                moves it back with S's stock key first, so
 *                                the third meets TRYAGAIN until the rest
 *                                of the slot follows); each succeeds once,
 *                                on one store handle
 *
 * URI is redis://host:port without a query string (stopped, slow and moved
 * also take a cluster's URI). The crash states are made
 * with raw commands through hiredis, as a dying client leaves them.
 */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend/redis.h"
#include "stock.h"

#define URI_MAX 1024
#define WRITE_BATCH 50

static int failures;

static redisContext *raw_connect(const char *uri);
static void raw(redisContext *conn, int count, const char **argv);

static void expect(bool ok, const char *what, stock_code code, const char *message)
{
    printf("%s %s (%s %s)\n", ok ? "ok  " : "FAIL", what, stock_code_name(code),
           message != NULL ? message : "");
    failures += !ok;
}

/* ---------------------------------------------------------------- options */

typedef struct options_case {
    const char *suffix;
    stock_code code;
    const char *words;
} options_case;

static const options_case option_cases[] = {
    {"?prefx=a", STOCK_INVALID, "unknown option 'prefx'"},
    {"?prefix=a&prefix=b", STOCK_INVALID, "given twice"},
    {"?prefix=a{b}", STOCK_INVALID, "prefix"},
    {"?timeout_ms=0", STOCK_INVALID, "timeout_ms"},
    {"?timeout_ms=5s", STOCK_INVALID, "timeout_ms"},
    {"?wait=17", STOCK_INVALID, "wait"},
    {"?buckets=0", STOCK_INVALID, "buckets"},
    {"?buckets=17", STOCK_INVALID, "buckets must be an integer in 1..16"},
    {"?buckets=2&cluster=1", STOCK_INVALID, "cluster=1, but the server is not a Redis Cluster node"},
    {"?password=", STOCK_INVALID, "password"},
    {"?prefix", STOCK_INVALID, "no value"},
    {"/3", STOCK_INVALID, "database"},
    {"?fused=2", STOCK_INVALID, "fused"},
    {"?cluster=2", STOCK_INVALID, "cluster"},
    {"?cluster=1", STOCK_INVALID, "cluster=1, but the server is not a Redis Cluster node"},
    {",127.0.0.1:1", STOCK_INVALID, "several hosts name a Redis Cluster's seed nodes: add "
     "cluster=1"},
    {"?password=a%zz", STOCK_INVALID, "password: a '%' must be followed by two hex digits"},
    {"?password=a%00b", STOCK_INVALID, "password: %00 (a NUL byte) is not allowed"},
    {"?prefix=" "0123456789012345678901234567890123456789012345678901234567890123456789",
     STOCK_INVALID, "prefix must be 1..64 bytes"},
    {"?wait=1x", STOCK_INVALID, "wait must be an integer in 0..16, not '1x'"},
    {"?outbox=2", STOCK_INVALID, "outbox must be an integer in 0..1"},
    {"?outbox=0&outbox_lag_max=5", STOCK_INVALID, "with outbox=0 there is no outbox"},
    {"?outbox_lag_max_ms=100&outbox=0", STOCK_INVALID, "with outbox=0 there is no outbox"},
    {"?prefix=opt%3A&timeout_ms=2000&wait=0&buckets=1&fused=0", STOCK_OK, ""},
};

static void check_open(const char *uri, stock_code want, const char *words)
{
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX] = "";
    stock_code code = stock_open(uri, NULL, &store, message);
    bool ok = code == want && (want == STOCK_OK) == (store != NULL) &&
              (want == STOCK_OK || strstr(message, words) != NULL);
    expect(ok, uri, code, message);
    if (store != NULL)
        stock_close(store);
}

static void run_options(const char *base)
{
    char uri[URI_MAX];
    for (size_t i = 0; i < sizeof option_cases / sizeof option_cases[0]; i++) {
        snprintf(uri, sizeof uri, "%s%s", base, option_cases[i].suffix);
        check_open(uri, option_cases[i].code, option_cases[i].words);
    }
    check_open("redis://127.0.0.1:1", STOCK_UNAVAILABLE, "cannot connect");
    check_open("redis://:@127.0.0.1:1", STOCK_INVALID, "password");
    /* A server that may evict any key is refused; one that evicts only
     * keys with a TTL is not. */
    redisContext *conn = raw_connect(base);
    const char *lru[] = {"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"};
    raw(conn, 4, lru);
    snprintf(uri, sizeof uri, "%s?prefix=evict:", base);
    check_open(uri, STOCK_INVALID, "maxmemory-policy is allkeys-lru: it may evict the store's keys");
    const char *volatile_lru[] = {"CONFIG", "SET", "maxmemory-policy", "volatile-lru"};
    raw(conn, 4, volatile_lru);
    check_open(uri, STOCK_OK, "");
    const char *none[] = {"CONFIG", "SET", "maxmemory-policy", "noeviction"};
    raw(conn, 4, none);
    redisFree(conn);
}

/* -------------------------------------------------------------- raw state */

static redisContext *raw_connect(const char *uri)
{
    char host[256];
    int port = 0;
    if (sscanf(uri, "redis://%255[^:]:%d", host, &port) != 2) {
        fprintf(stderr, "redis_faults: cannot read host:port of %s\n", uri);
        exit(2);
    }
    redisContext *conn = redisConnect(host, port);
    if (conn == NULL || conn->err != 0) {
        fprintf(stderr, "redis_faults: cannot connect to %s\n", uri);
        exit(2);
    }
    return conn;
}

/* Runs a raw command (argv form) and prints an error reply. */
static void raw(redisContext *conn, int count, const char **argv)
{
    redisReply *reply = redisCommandArgv(conn, count, argv, NULL);
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "redis_faults: %s failed: %s\n", argv[0],
                reply != NULL ? reply->str : conn->errstr);
        exit(2);
    }
    freeReplyObject(reply);
}

static stock_t *open_or_die(const char *uri)
{
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX] = "";
    if (stock_open(uri, NULL, &store, message) != STOCK_OK) {
        fprintf(stderr, "redis_faults: cannot open %s: %s\n", uri, message);
        exit(2);
    }
    return store;
}

/* A run-unique name. */
static void unique(char *out, size_t size, const char *kind)
{
    snprintf(out, size, "f%lx-%d-%s", (unsigned long)time(NULL), (int)getpid(), kind);
}

/* The line's directory entry written alone, as by a client that died right
 * after claiming it: the line does not exist, and its id is still free. */
static void run_directory(const char *uri)
{
    redisContext *conn = raw_connect(uri);
    stock_t *store = open_or_die(uri);
    char sku[64], other[64], line[64], key[128], refund[64];
    unique(sku, sizeof sku, "sku");
    unique(other, sizeof other, "other");
    unique(line, sizeof line, "line");
    unique(refund, sizeof refund, "refund");
    stock_set(store, sku, 10, NULL, NULL, NULL);
    stock_set(store, other, 10, NULL, NULL, NULL);
    snprintf(key, sizeof key, "{line:%s}", line);
    char entry[80];
    snprintf(entry, sizeof entry, "1 %s", sku);
    const char *claim[] = {"SET", key, entry};
    raw(conn, 3, claim);
    stock_line_info info;
    char message[STOCK_MESSAGE_MAX] = "";
    stock_code code = stock_line(store, line, &info, NULL);
    expect(code == STOCK_NOT_FOUND, "a directory entry alone: LINE is NOTFOUND", code, "");
    code = stock_refund(store, refund, line, 1, NULL, message);
    expect(code == STOCK_NOT_FOUND && strstr(message, line) != NULL,
           "a directory entry alone: REFUND is NOTFOUND", code, message);
    /* The line id was never used: a deduction on another SKU is fresh. */
    int64_t available = -1;
    code = stock_deduct(store, line, other, 3, &available, message);
    expect(code == STOCK_OK && available == 7, "the id is free for another SKU", code, message);
    code = stock_line(store, line, &info, NULL);
    expect(code == STOCK_OK && strcmp(info.sku, other) == 0 && info.qty == 3,
           "the line names the SKU it was taken from", code, "");
    code = stock_deduct(store, line, sku, 3, NULL, message);
    expect(code == STOCK_CONFLICT, "and is taken now: the first SKU conflicts", code, message);
    code = stock_refund(store, refund, line, 1, &available, message);
    expect(code == STOCK_OK && available == 8, "the refund finds the line", code, message);
    stock_sku_info totals;
    stock_get(store, sku, &totals, NULL);
    expect(totals.available == 10 && totals.deducted == 0, "the first SKU is untouched",
           STOCK_OK, "");
    stock_close(store);
    redisFree(conn);
}

/* What a client that died in the middle of an order over two slots leaves:
 * the order's record "taking" with a lease long past, its pending index
 * entry, and its first line taken (qty 2 of SKU a). */
typedef struct stale_order {
    char a[64], b[64], order[64], line_a[64], line_b[64];
    char stock_a[128], flow_a[128], fence_a[128], outbox_a[64];
} stale_order;

/* Attempt 1, time, one line (its id, stock key 1, qty 2, gen 1, here, no
 * other buckets), no lag limits. */
static const char *const stale_take_args[] = {"1", "1000", "1", NULL, "1", "2", "1", "0",
                                              "0", "0", "0", "0"};
#define STALE_TAKE_ARGS (sizeof stale_take_args / sizeof stale_take_args[0])

/* The dead client's order_take in SKU a's slot, with attempt 1. */
static redisReply *stale_take(redisContext *conn, const stale_order *s)
{
    const char *take[8 + STALE_TAKE_ARGS] = {"FCALL", "stockd_v3_order_take", "4", s->stock_a,
                                             s->flow_a, s->fence_a, s->outbox_a, s->order};
    for (size_t i = 0; i < STALE_TAKE_ARGS; i++)
        take[8 + i] = stale_take_args[i] != NULL ? stale_take_args[i] : s->line_a;
    return redisCommandArgv(conn, 8 + STALE_TAKE_ARGS, take, NULL);
}

static void stale_leave(redisContext *conn, stock_t *store, stale_order *s)
{
    unique(s->a, sizeof s->a, "a");
    unique(s->b, sizeof s->b, "b");
    unique(s->order, sizeof s->order, "order");
    unique(s->line_a, sizeof s->line_a, "la");
    unique(s->line_b, sizeof s->line_b, "lb");
    stock_set(store, s->a, 5, NULL, NULL, NULL);
    stock_set(store, s->b, 5, NULL, NULL, NULL);
    char spec[512], order_key[128], record[128], line_key[128], entry[80];
    snprintf(spec, sizeof spec, "%s %s 2 %s %s 3", s->line_a, s->a, s->line_b, s->b);
    snprintf(order_key, sizeof order_key, "{order:%s}", s->order);
    snprintf(record, sizeof record, "{order:%s}:x", s->order);
    snprintf(s->stock_a, sizeof s->stock_a, "{sku:%s}", s->a);
    snprintf(s->flow_a, sizeof s->flow_a, "{sku:%s}:flow", s->a);
    snprintf(s->fence_a, sizeof s->fence_a, "{sku:%s}:ofence", s->a);
    snprintf(s->outbox_a, sizeof s->outbox_a, "{outbox:%s}",
             rd_slot_tag(rd_tag_slot("sku", stock_id_from_cstr(s->a))));
    snprintf(line_key, sizeof line_key, "{line:%s}", s->line_a);
    const char *pending[] = {"ZADD", "{stock:pending}", "1001", s->order};
    raw(conn, 4, pending);
    const char *begin[] = {"FCALL", "stockd_v3_order_begin", "2", order_key, record, spec,
                           "1000", "1"};
    raw(conn, 8, begin);
    snprintf(entry, sizeof entry, "1 %s", s->a);
    const char *claim[] = {"SET", line_key, entry};
    raw(conn, 3, claim);
    freeReplyObject(stale_take(conn, s));
    stock_sku_info totals;
    stock_get(store, s->a, &totals, NULL);
    expect(totals.available == 3, "the dead client took its first slot", STOCK_OK, "");
}

/* The retry of an interrupted order gives back the stale attempt and places
 * the order exactly once. */
static void run_stale(const char *uri)
{
    redisContext *conn = raw_connect(uri);
    stock_t *store = open_or_die(uri);
    stale_order s;
    stale_leave(conn, store, &s);
    stock_order_line lines[2] = {{stock_id_from_cstr(s.line_a), stock_id_from_cstr(s.a), 2, -1},
                                 {stock_id_from_cstr(s.line_b), stock_id_from_cstr(s.b), 3, -1}};
    int32_t failed = 0;
    char message[STOCK_MESSAGE_MAX] = "";
    stock_code code = stock_order(store, s.order, lines, 2, &failed, message);
    expect(code == STOCK_OK && lines[0].available == 3 && lines[1].available == 2,
           "the retry undid the stale attempt and placed the order", code, message);
    stock_sku_info totals;
    stock_get(store, s.a, &totals, NULL);
    expect(totals.available == 3 && totals.deducted == 2, "the first slot was taken once",
           STOCK_OK, "");
    code = stock_order(store, s.order, lines, 2, &failed, message);
    expect(code == STOCK_REPLAY && lines[1].available == 2, "a second retry replays", code,
           message);
    /* A sweep that read the stale attempt before the retry gives it back
     * late: the new attempt's line stays. */
    const char *untake[] = {"FCALL", "stockd_v3_order_untake", "4", s.stock_a, s.flow_a,
                            s.fence_a, s.outbox_a, s.order, "1", "1", s.line_a, "1"};
    redisReply *late = redisCommandArgv(conn, 12, untake, NULL);
    stock_get(store, s.a, &totals, NULL);
    expect(late != NULL && late->type == REDIS_REPLY_INTEGER && late->integer == 0 &&
           totals.deducted == 2 && stock_line(store, s.line_a, NULL, NULL) == STOCK_OK,
           "a late give-back of the stale attempt leaves the new one's line", STOCK_OK, "");
    freeReplyObject(late);
    stock_close(store);
    redisFree(conn);
}

/* Without a retry, the next open's sweep gives the stale attempt back, and
 * the dead client's late calls are fenced out. */
static void run_sweep(const char *uri)
{
    redisContext *conn = raw_connect(uri);
    stock_t *store = open_or_die(uri);
    stale_order s;
    stale_leave(conn, store, &s);
    stock_close(store);
    store = open_or_die(uri);
    stock_sku_info totals = {0};
    for (int i = 0; i < 100 && totals.available != 5; i++) {
        stock_get(store, s.a, &totals, NULL);
        usleep(50000);
    }
    expect(totals.available == 5 && totals.deducted == 0,
           "the sweep at open gave the first slot back", STOCK_OK, "");
    stock_code code = stock_line(store, s.line_a, NULL, NULL);
    expect(code == STOCK_NOT_FOUND, "the taken line is gone", code, "");
    redisReply *late = stale_take(conn, &s);
    bool fenced = late != NULL && late->type == REDIS_REPLY_ARRAY && late->elements > 0 &&
                  strcmp(late->element[0]->str, "FENCED") == 0;
    freeReplyObject(late);
    stock_get(store, s.a, &totals, NULL);
    expect(fenced && totals.available == 5, "the dead client's late take is fenced out",
           STOCK_OK, "");
    const char *score[] = {"ZSCORE", "{stock:pending}", s.order};
    redisReply *entry = redisCommandArgv(conn, 3, score, NULL);
    expect(entry != NULL && entry->type == REDIS_REPLY_NIL, "the pending entry is gone",
           STOCK_OK, "");
    freeReplyObject(entry);
    stock_close(store);
    redisFree(conn);
}

/* ----------------------------------------------------------------- buckets */

/* The key of bucket j of sku's k buckets. */
static void bucket_key(const char *prefix, const char *sku, uint32_t j, uint32_t k, char *key,
                       size_t size)
{
    char tag[RD_BUCKET_TAG_MAX];
    if (j == 0) {
        snprintf(key, size, "%s{sku:%s}", prefix, sku);
        return;
    }
    rd_bucket_tag(stock_id_from_cstr(sku), j, k, tag, sizeof tag);
    snprintf(key, size, "%s{skub:%s}", prefix, tag);
}

/* Reads the totals of every bucket of sku (K of them) with raw HMGETs: each
 * must keep I2 (av = adj - ded + ref) and their sum must equal want. */
static void check_buckets(redisContext *conn, const char *prefix, const char *sku, uint32_t k,
                          const stock_sku_info *want, const char *what)
{
    int64_t sum[4] = {0}, max_av = 0;
    bool balanced = true;
    for (uint32_t j = 0; j < k; j++) {
        char key[256];
        bucket_key(prefix, sku, j, k, key, sizeof key);
        redisReply *reply = redisCommand(conn, "HMGET %s av adj ded ref", key);
        int64_t v[4] = {0};
        for (size_t f = 0; reply != NULL && f < 4 && f < reply->elements; f++)
            if (reply->element[f]->type == REDIS_REPLY_STRING)
                v[f] = strtoll(reply->element[f]->str, NULL, 10);
        freeReplyObject(reply);
        balanced = balanced && v[0] == v[1] - v[2] + v[3] && v[0] >= 0;
        for (int f = 0; f < 4; f++)
            sum[f] += v[f];
        max_av = v[0] > max_av ? v[0] : max_av;
    }
    bool ok = balanced && sum[0] == want->available && sum[1] == want->adjusted &&
              sum[2] == want->deducted && sum[3] == want->refunded;
    char facts[160];
    snprintf(facts, sizeof facts, "sum av=%" PRId64 " adj=%" PRId64 " ded=%" PRId64
             " ref=%" PRId64 ", largest bucket %" PRId64, sum[0], sum[1], sum[2], sum[3], max_av);
    expect(ok, what, STOCK_OK, facts);
}

/* The bucket of sku that holds line: the one whose ded and ref are those
 * given (a refund goes back to the bucket its line came from). */
static bool bucket_holds(redisContext *conn, const char *prefix, const char *sku, uint32_t k,
                         const char *ded, const char *ref)
{
    bool found = false;
    for (uint32_t j = 0; j < k && !found; j++) {
        char key[256];
        bucket_key(prefix, sku, j, k, key, sizeof key);
        redisReply *reply = redisCommand(conn, "HMGET %s ded ref", key);
        found = reply != NULL && reply->elements == 2 &&
                reply->element[0]->type == REDIS_REPLY_STRING &&
                reply->element[1]->type == REDIS_REPLY_STRING &&
                strcmp(reply->element[0]->str, ded) == 0 && strcmp(reply->element[1]->str, ref) == 0;
        freeReplyObject(reply);
    }
    return found;
}

/* The K buckets' slots: K different ones, one in each K-th of the ring
 * counted from the home's slot (so on masters holding equal contiguous
 * ranges, K <= masters buckets are on K masters). */
static void check_bucket_slots(const char *sku, uint32_t k)
{
    unsigned home = rd_tag_slot("sku", stock_id_from_cstr(sku));
    bool spread = true;
    for (uint32_t j = 1; j < k; j++) {
        char tag[RD_BUCKET_TAG_MAX];
        unsigned slot = rd_bucket_tag(stock_id_from_cstr(sku), j, k, tag, sizeof tag);
        spread = spread && (slot - home + RD_SLOTS) % RD_SLOTS / (RD_SLOTS / k) == j;
    }
    expect(spread, "each bucket lies in its own K-th of the slot ring", STOCK_OK, "");
}

static void run_buckets(const char *base)
{
    redisContext *conn = raw_connect(base);
    char prefix[64], uri[URI_MAX], sku[64], other[64], line[64], big[64], message[STOCK_MESSAGE_MAX];
    unique(prefix, sizeof prefix, "bk:");
    unique(sku, sizeof sku, "hot");
    unique(other, sizeof other, "other");
    unique(line, sizeof line, "line");
    unique(big, sizeof big, "big");
    snprintf(uri, sizeof uri, "%s?prefix=%s&buckets=4", base, prefix);
    stock_t *store = open_or_die(uri);
    check_bucket_slots(sku, 4);
    check_bucket_slots(sku, 3);
    stock_sku_info totals = {0};
    int64_t available = -1;
    stock_code code = stock_set(store, sku, 8, NULL, &available, message);
    expect(code == STOCK_OK && available == 8, "set 8 over 4 buckets", code, message);
    check_buckets(conn, prefix, sku, 4, &(stock_sku_info){8, 8, 0, 0, 0}, "2 units in each bucket");
    code = stock_deduct(store, big, sku, 5, &available, message);
    expect(code == STOCK_OK && available == 3,
           "a deduction of 5 that no bucket of 2 covers but the total does succeeds", code,
           message);
    check_buckets(conn, prefix, sku, 4, &(stock_sku_info){3, 8, 5, 0, 0},
                  "the buckets after it: moves between buckets kept each one balanced");
    code = stock_deduct(store, line, sku, 4, &available, message);
    expect(code == STOCK_INSUFFICIENT && available == 3, "4 more: the total is 3", code, message);
    code = stock_deduct(store, big, sku, 5, &available, message);
    expect(code == STOCK_REPLAY && available == 3, "the retry replays", code, message);
    code = stock_refund(store, "r1", big, 2, &available, message);
    expect(code == STOCK_OK && available == 5, "a refund of 2 goes back", code, message);
    check_buckets(conn, prefix, sku, 4, &(stock_sku_info){5, 8, 5, 2, 0},
                  "the buckets after the refund");
    expect(bucket_holds(conn, prefix, sku, 4, "5", "2"),
           "the refund went back to the bucket the line was taken from", STOCK_OK, "");
    code = stock_set(store, sku, 9, &(int64_t){4}, &available, message);
    expect(code == STOCK_MISMATCH && available == 5, "compare-and-set reads the sum", code,
           message);
    code = stock_set(store, sku, 9, &(int64_t){5}, &available, message);
    expect(code == STOCK_OK && available == 9, "and sets it", code, message);
    code = stock_add(store, sku, -7, NULL, &available, message);
    expect(code == STOCK_OK && available == 2, "a write-off of 7 over the buckets", code,
           message);
    stock_set(store, other, 1, NULL, NULL, NULL);
    stock_order_line lines[3] = {{stock_id_from_cstr("o1"), stock_id_from_cstr(sku), 1, -1},
                                 {stock_id_from_cstr("o2"), stock_id_from_cstr(other), 1, -1},
                                 {stock_id_from_cstr("o3"), stock_id_from_cstr(sku), 1, -1}};
    int32_t failed = -1;
    code = stock_order(store, "order1", lines, 3, &failed, message);
    expect(code == STOCK_OK && lines[0].available == 1 && lines[2].available == 0,
           "an order takes two lines of the bucketed SKU", code, message);
    stock_get(store, sku, &totals, NULL);
    check_buckets(conn, prefix, sku, 4, &totals, "every bucket balanced, the sum is the SKU");
    expect(totals.available == 0 && totals.adjusted == 5 && totals.deducted == 7 &&
           totals.refunded == 2, "the SKU's totals", STOCK_OK, "");
    stock_close(store);
    snprintf(uri, sizeof uri, "%s?prefix=%s&buckets=2", base, prefix);
    check_open(uri, STOCK_INVALID, "was made with buckets=4; open it with buckets=4");
    snprintf(uri, sizeof uri, "%s?prefix=%s", base, prefix);
    check_open(uri, STOCK_INVALID, "was made with buckets=4");
    redisFree(conn);
}

/* ------------------------------------------------------------- AOF restart */

/* Replaces FILE's count by renaming a new file over it: a kill at any
 * moment leaves the old count or the new one, never an empty file. */
static void write_ack(const char *file, long acked)
{
    char temporary[4096];
    snprintf(temporary, sizeof temporary, "%s.new", file);
    FILE *out = fopen(temporary, "w");
    if (out == NULL)
        exit(2);
    fprintf(out, "%ld\n", acked);
    fflush(out);
    fdatasync(fileno(out));
    fclose(out);
    if (rename(temporary, file) != 0)
        exit(2);
}

/* Deducts lines w0, w1, ... of SKU "w" (qty 1) in batches until a batch
 * fails; FILE holds the count acknowledged so far. */
static int run_write(const char *uri, const char *file)
{
    stock_t *store = open_or_die(uri);
    stock_set(store, "fault-w", 1000000000, NULL, NULL, NULL);
    static char ids[WRITE_BATCH][32];
    stock_op ops[WRITE_BATCH];
    write_ack(file, 0);
    printf("ready\n");
    fflush(stdout);
    for (long acked = 0;;) {
        for (int i = 0; i < WRITE_BATCH; i++) {
            snprintf(ids[i], sizeof ids[i], "fault-w%ld", acked + i);
            ops[i] = (stock_op){.type = STOCK_OP_DEDUCT, .id = stock_id_from_cstr(ids[i]),
                                .sku = stock_id_from_cstr("fault-w"), .amount = 1};
        }
        stock_execute(store, ops, WRITE_BATCH);
        for (int i = 0; i < WRITE_BATCH; i++)
            if (!stock_code_succeeded(ops[i].code)) {
                printf("stopped at line %ld: %s %s\n", acked + i,
                       stock_code_name(ops[i].code), ops[i].message);
                stock_close(store);
                return 0;
            }
        acked += WRITE_BATCH;
        write_ack(file, acked);
    }
}

static int run_check(const char *uri, const char *file)
{
    FILE *in = fopen(file, "r");
    long acked = -1;
    if (in == NULL || fscanf(in, "%ld", &acked) != 1)
        return 2;
    fclose(in);
    stock_t *store = open_or_die(uri);
    stock_sku_info totals;
    stock_code code = stock_get(store, "fault-w", &totals, NULL);
    char what[128];
    snprintf(what, sizeof what, "%ld lines acknowledged, %" PRId64 " deducted after restart",
             acked, totals.deducted);
    /* The batch in flight when the server died may be there in part or
     * whole: the server fsyncs each call before its reply, so all of its
     * calls can be on disk with their replies lost. */
    expect(code == STOCK_OK && acked > 0 && totals.deducted >= acked &&
           totals.deducted <= acked + WRITE_BATCH, what, code, "");
    char line[32];
    snprintf(line, sizeof line, "fault-w%ld", acked - 1);
    stock_line_info info;
    code = stock_line(store, line, &info, NULL);
    expect(code == STOCK_OK, "the last acknowledged line is there", code, line);
    stock_close(store);
    return 0;
}

/* -------------------------------------------------------- replicas, stops */

/* wait=1: with a replica every write is acknowledged as usual; without one
 * (replicated false) it says it is applied on the master only, and is. */
static void run_wait(const char *base, bool replicated)
{
    char uri[URI_MAX], sku[64], line[64], message[STOCK_MESSAGE_MAX] = "";
    /* Long enough for a loaded machine's replica, short for a missing one. */
    snprintf(uri, sizeof uri, "%s?wait=1&timeout_ms=%d", base, replicated ? 3000 : 1000);
    stock_t *store = open_or_die(uri);
    unique(sku, sizeof sku, replicated ? "waited" : "unreplicated");
    unique(line, sizeof line, "wl");
    stock_code code = stock_set(store, sku, 5, NULL, NULL, message);
    stock_code want = replicated ? STOCK_OK : STOCK_UNAVAILABLE;
    const char *words = replicated ? "" : "applied on the master but not yet replicated";
    expect(code == want && strstr(message, words) != NULL, "set with wait=1", code, message);
    code = stock_deduct(store, line, sku, 2, NULL, message);
    expect(code == want && strstr(message, words) != NULL, "deduct with wait=1", code, message);
    code = stock_deduct(store, line, sku, 2, NULL, message);
    expect(code == (replicated ? STOCK_REPLAY : STOCK_UNAVAILABLE), "its retry", code, message);
    stock_sku_info totals;
    code = stock_get(store, sku, &totals, NULL);
    expect(code == STOCK_OK && totals.available == 3, "a read answers, the deduction is there",
           code, "");
    stock_close(store);
}

/* Sends signal to each PID of the comma-separated list. */
static void signal_all(const char *pids, int signal)
{
    for (const char *at = pids; *at != '\0'; at += strcspn(at, ",") + (at[strcspn(at, ",")] == ','))
        kill((pid_t)atoi(at), signal);
}

#define STOPPED_SET_TRIES 20   /* sets tried before the freeze */

/* A frozen server (SIGSTOP): an op times out with UNAVAILABLE, and once the
 * server runs again its retry with the same id takes effect once. */
static void run_stopped(const char *base, const char *servers)
{
    char uri[URI_MAX], sku[64], line[64], message[STOCK_MESSAGE_MAX] = "";
    snprintf(uri, sizeof uri, "%s%ctimeout_ms=300", base, strchr(base, '?') ? '&' : '?');
    stock_t *store = open_or_die(uri);
    unique(sku, sizeof sku, "frozen");
    unique(line, sizeof line, "fl");
    /* The link must be up when the server freezes: under a heavy load a
     * set may itself outlast timeout_ms (it is safe to repeat). */
    stock_code code = STOCK_UNAVAILABLE;
    for (int tries = 0; code == STOCK_UNAVAILABLE && tries < STOPPED_SET_TRIES; tries++)
        code = stock_set(store, sku, 5, NULL, NULL, message);
    expect(code == STOCK_OK, "the set before the freeze", code, message);
    signal_all(servers, SIGSTOP);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    code = stock_deduct(store, line, sku, 1, NULL, message);
    clock_gettime(CLOCK_MONOTONIC, &end);
    signal_all(servers, SIGCONT);
    double seconds = (double)(end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    expect(code == STOCK_UNAVAILABLE && strstr(message, "retry with the same id is safe") &&
           seconds < 2, "a deduction on a frozen server times out", code, message);
    int64_t available = -1;
    code = stock_deduct(store, line, sku, 1, &available, message);
    expect(stock_code_succeeded(code) && available == 4, "its retry takes effect once", code,
           message);
    stock_sku_info totals;
    stock_get(store, sku, &totals, NULL);
    expect(totals.deducted == 1, "deducted once", STOCK_OK, "");
    stock_close(store);
}

#define SLOW_TIMEOUT_MS 1000   /* the store's timeout_ms */
#define SLOW_STOP_MS 300       /* the server frozen, well within timeout_ms... */
#define SLOW_RUN_MS 5          /* ...then running this long, over and over */
#define SLOW_ORDERS 16         /* orders of two lines over two slots, some 8 calls each */
#define SLOW_SECONDS_MAX 2.5   /* a batch's deadline, and slack for a loaded machine */
#define SLOW_RETRIES 100       /* retries of what is left UNAVAILABLE... */
#define SLOW_RETRY_PAUSE_US 100000   /* ...this far apart: an order's attempt cut
                                      * off holds it for its lease (2 x timeout_ms) */

/* Freezes and thaws the servers PIDS until killed (a child process). */
static void stutter(const char *servers)
{
    for (;;) {
        signal_all(servers, SIGSTOP);
        usleep(SLOW_STOP_MS * 1000);
        signal_all(servers, SIGCONT);
        usleep(SLOW_RUN_MS * 1000);
    }
}

/* Runs ops[0..count) (their outputs cleared first); returns its seconds. */
static double timed_execute(stock_t *store, stock_op *ops, size_t count)
{
    for (size_t i = 0; i < count; i++)
        ops[i].code = STOCK_OK, ops[i].failed_line = -1, ops[i].message[0] = '\0';
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    stock_execute(store, ops, count);
    clock_gettime(CLOCK_MONOTONIC, &end);
    return (double)(end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
}

/* A server slow on every call, each reply within timeout_ms: a batch whose
 * ops make many calls in turn still ends by its deadline (before, each call
 * was bounded alone, and such a batch took a call's delay times its calls),
 * the ops it could not finish UNAVAILABLE; once the server is quick again
 * their retries with the same ids take each order once. */
static void run_slow(const char *base, const char *servers)
{
    char uri[URI_MAX], sku[2][64], ids[SLOW_ORDERS][3][96], message[STOCK_MESSAGE_MAX] = "";
    char detail[STOCK_MESSAGE_MAX + 96];
    snprintf(uri, sizeof uri, "%s%ctimeout_ms=%d", base, strchr(base, '?') ? '&' : '?',
             SLOW_TIMEOUT_MS);
    stock_t *store = open_or_die(uri);
    unique(sku[0], sizeof sku[0], "slow-a");
    unique(sku[1], sizeof sku[1], "slow-b");
    while (rd_tag_slot("sku", stock_id_from_cstr(sku[1])) ==
           rd_tag_slot("sku", stock_id_from_cstr(sku[0])))
        strcat(sku[1], "x");
    for (int k = 0; k < 2; k++) {
        stock_code code = stock_set(store, sku[k], 100, NULL, NULL, message);
        expect(code == STOCK_OK, "a set before the slowness", code, message);
    }
    stock_op ops[SLOW_ORDERS];
    stock_order_line lines[SLOW_ORDERS][2];
    for (int i = 0; i < SLOW_ORDERS; i++) {
        for (int k = 0; k < 3; k++)
            snprintf(ids[i][k], sizeof ids[i][k], "%s-o%d-%d", sku[0], i, k);
        for (int k = 0; k < 2; k++)
            lines[i][k] = (stock_order_line){.line_id = stock_id_from_cstr(ids[i][k + 1]),
                                             .sku = stock_id_from_cstr(sku[k]), .qty = 1};
        ops[i] = (stock_op){.type = STOCK_OP_ORDER, .id = stock_id_from_cstr(ids[i][0]),
                            .lines = lines[i], .line_count = 2};
    }
    fflush(stdout);
    pid_t child = fork();
    if (child == 0)
        stutter(servers);
    for (int round = 0; round < 2; round++) {
        double seconds = timed_execute(store, ops, SLOW_ORDERS);
        int unknown = 0;
        for (int i = 0; i < SLOW_ORDERS; i++)
            unknown += ops[i].code == STOCK_UNAVAILABLE &&
                       strstr(ops[i].message, "retry with the same id is safe") != NULL;
        snprintf(detail, sizeof detail, "%.2f s, %d of %d orders left unknown: %s", seconds,
                 unknown, SLOW_ORDERS, ops[SLOW_ORDERS - 1].message);
        expect(seconds < SLOW_SECONDS_MAX && unknown > 0, round == 0
               ? "a batch of calls on a slow server ends by its deadline"
               : "and again, reconnecting first", ops[SLOW_ORDERS - 1].code, detail);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    signal_all(servers, SIGCONT);
    int left = SLOW_ORDERS;
    for (int tries = 0; left > 0 && tries < SLOW_RETRIES; tries++) {
        if (tries > 0)
            usleep(SLOW_RETRY_PAUSE_US);
        timed_execute(store, ops, SLOW_ORDERS);
        left = 0;
        for (int i = 0; i < SLOW_ORDERS; i++)
            left += ops[i].code == STOCK_UNAVAILABLE;
    }
    int placed = 0, first_failed = 0;
    for (int i = SLOW_ORDERS - 1; i >= 0; i--) {
        placed += stock_code_succeeded(ops[i].code);
        first_failed = stock_code_succeeded(ops[i].code) ? first_failed : i;
    }
    expect(placed == SLOW_ORDERS, "the retries place every order", ops[first_failed].code,
           ops[first_failed].message);
    for (int k = 0; k < 2; k++) {
        stock_sku_info totals = {0};
        stock_code code = stock_get(store, sku[k], &totals, message);
        expect(code == STOCK_OK && totals.deducted == SLOW_ORDERS &&
               totals.available == 100 - SLOW_ORDERS, "each order taken once", code, message);
    }
    stock_close(store);
}

/* A slot moved under an open store: the handle follows ASK, then MOVED;
 * then moved again with the SKU's stock key sent ahead of its other keys,
 * so that a call over them answers TRYAGAIN until the rest follows. */
static void run_moved(const char *uri)
{
    static const char *const steps[] = {"ask", "moved", "tryagain"};
    static const char *const named[] = {"a deduction during the migration (ASK)",
                                        "a deduction after it (MOVED)",
                                        "a deduction while its keys are split (TRYAGAIN)"};
    enum { STEPS = sizeof steps / sizeof steps[0] };
    char sku[64], line[STEPS][64], message[STOCK_MESSAGE_MAX] = "", go[16];
    stock_t *store = open_or_die(uri);
    unique(sku, sizeof sku, "moved");
    stock_code code = stock_set(store, sku, 5, NULL, NULL, message);
    expect(code == STOCK_OK, "set", code, message);
    /* A first line, so that the SKU's flow key exists when its slot moves. */
    unique(line[0], sizeof line[0], "before");
    code = stock_deduct(store, line[0], sku, 1, NULL, message);
    expect(code == STOCK_OK, "a deduction before the move", code, message);
    printf("sku %s\n", sku);
    fflush(stdout);
    for (int i = 0; i < STEPS; i++) {
        if (fgets(go, sizeof go, stdin) == NULL)
            exit(2);
        unique(line[i], sizeof line[i], steps[i]);
        int64_t available = -1;
        code = stock_deduct(store, line[i], sku, 1, &available, message);
        expect(code == STOCK_OK && available == 3 - i, named[i], code, message);
        printf("deducted %d\n", i);
        fflush(stdout);
    }
    stock_sku_info totals;
    code = stock_get(store, sku, &totals, message);
    expect(code == STOCK_OK && totals.available == 1 && totals.deducted == 4,
           "the SKU holds every deduction once", code, message);
    stock_line_info info;
    code = stock_line(store, line[0], &info, message);
    expect(code == STOCK_OK && strcmp(info.sku, sku) == 0, "the first line is there", code,
           message);
    stock_close(store);
}

/* ------------------------------------------------------------------ full */

static void run_full(const char *uri)
{
    stock_t *store = open_or_die(uri);
    char message[STOCK_MESSAGE_MAX] = "";
    stock_sku_info before, after;
    stock_code code = stock_get(store, "fault-w", &before, NULL);
    expect(code == STOCK_OK, "a read works on a full server", code, "");
    code = stock_deduct(store, "fault-full-line", "fault-w", 1, NULL, message);
    expect(code == STOCK_IO && strstr(message, "out of memory") != NULL,
           "a deduction is refused with a clear error", code, message);
    code = stock_set(store, "fault-full-sku", 5, NULL, NULL, message);
    expect(code == STOCK_IO && strstr(message, "maxmemory") != NULL,
           "a set is refused with a clear error", code, message);
    stock_get(store, "fault-w", &after, NULL);
    expect(after.deducted == before.deducted, "nothing changed", STOCK_OK, "");
    code = stock_line(store, "fault-full-line", NULL, NULL);
    expect(code == STOCK_NOT_FOUND, "no line was written", code, "");
    stock_close(store);
}

/* ----------------------------------------------------------- outbox=0 */

/* The keys under prefix (SCAN), and how many of them are streams. */
static long keys_under(redisContext *conn, const char *prefix, long *streams)
{
    char pattern[128], cursor[32] = "0";
    snprintf(pattern, sizeof pattern, "%s*", prefix);
    long count = 0;
    *streams = 0;
    do {
        redisReply *reply = redisCommand(conn, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
            fprintf(stderr, "redis_faults: SCAN failed\n");
            exit(2);
        }
        snprintf(cursor, sizeof cursor, "%s", reply->element[0]->str);
        const redisReply *keys = reply->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            redisReply *type = redisCommand(conn, "TYPE %s", keys->element[i]->str);
            *streams += type != NULL && type->type == REDIS_REPLY_STATUS &&
                        strcmp(type->str, "stream") == 0;
            freeReplyObject(type);
            count++;
        }
        freeReplyObject(reply);
    } while (strcmp(cursor, "0") != 0);
    return count;
}

/* Every kind of call that changes stock, on a store of uri (made with
 * outbox=0): each does what it does with an outbox. */
static void outbox_exercise(const char *uri, const char *what)
{
    stock_t *store = open_or_die(uri);
    char message[STOCK_MESSAGE_MAX] = "";
    bool ok = stock_set(store, "nob-a", 100, NULL, NULL, message) == STOCK_OK &&
              stock_set(store, "nob-b", 10, NULL, NULL, message) == STOCK_OK &&
              stock_add(store, "nob-a", 5, "nob-adj", NULL, message) == STOCK_OK &&
              stock_deduct(store, "nob-l1", "nob-a", 2, NULL, message) == STOCK_OK &&
              stock_refund(store, "nob-r1", "nob-l1", 1, NULL, message) == STOCK_OK;
    stock_op batch[16];   /* one deduct_many call */
    char lines[16][24];
    for (int i = 0; i < 16; i++) {
        snprintf(lines[i], sizeof lines[i], "nob-m%d", i);
        batch[i] = (stock_op){.type = STOCK_OP_DEDUCT, .id = stock_id_from_cstr(lines[i]),
                              .sku = stock_id_from_cstr("nob-a"), .amount = 1};
    }
    ok = ok && stock_execute(store, batch, 16) == STOCK_OK;
    for (int i = 0; ok && i < 16; i++)
        ok = batch[i].code == STOCK_OK;
    stock_order_line order[2] = {{stock_id_from_cstr("nob-o1"), stock_id_from_cstr("nob-a"), 1, -1},
                                 {stock_id_from_cstr("nob-o2"), stock_id_from_cstr("nob-b"), 3, -1}};
    int32_t failed = 0;
    ok = ok && stock_order(store, "nob-order", order, 2, &failed, message) == STOCK_OK;
    stock_order_line refused[2] = {{stock_id_from_cstr("nob-o3"), stock_id_from_cstr("nob-a"), 1, -1},
                                   {stock_id_from_cstr("nob-o4"), stock_id_from_cstr("nob-b"), 99, -1}};
    ok = ok && stock_order(store, "nob-refused", refused, 2, &failed, message) ==
                   STOCK_INSUFFICIENT && failed == 1;
    stock_sku_info a = {0}, b = {0};
    ok = ok && stock_get(store, "nob-a", &a, message) == STOCK_OK &&
         stock_get(store, "nob-b", &b, message) == STOCK_OK;
    /* a: 100 + 5 - 2 + 1 - 16 - 1; b: 10 - 3; the refused order took nothing */
    ok = ok && a.available == 87 && b.available == 7 && a.deducted == 19 && a.refunded == 1;
    char done[160];
    snprintf(done, sizeof done, "%s: every change works without an outbox", what);
    expect(ok, done, STOCK_OK, message);
    stock_close(store);
}

static void run_outbox(const char *uri)
{
    redisContext *conn = raw_connect(uri);
    char prefix[64], kept[64], with[URI_MAX], without[URI_MAX], layout[128];
    long streams = 0;
    for (int buckets = 1; buckets <= 2; buckets++) {
        char what[32];
        snprintf(what, sizeof what, "buckets=%d", buckets);
        unique(prefix, sizeof prefix, buckets == 1 ? "nob1:" : "nob2:");
        snprintf(without, sizeof without, "%s?prefix=%s&buckets=%d&outbox=0", uri, prefix, buckets);
        snprintf(with, sizeof with, "%s?prefix=%s&buckets=%d", uri, prefix, buckets);
        outbox_exercise(without, what);
        long keys = keys_under(conn, prefix, &streams);
        expect(keys > 0 && streams == 0, "no stream under the store's prefix", STOCK_OK, "");
        snprintf(layout, sizeof layout, "%sstock:layout", prefix);
        redisReply *reply = redisCommand(conn, "GET %s", layout);
        expect(reply != NULL && reply->type == REDIS_REPLY_STRING && strcmp(reply->str, "6") == 0,
               "the store's layout is 6", STOCK_OK, reply != NULL ? reply->str : "");
        freeReplyObject(reply);
        check_open(with, STOCK_INVALID, "was made with outbox=0 and keeps no outbox; open it "
                   "with outbox=0");
        long now = keys_under(conn, prefix, &streams);
        expect(now == keys && streams == 0, "the refused open wrote nothing", STOCK_OK, "");
    }
    /* An outbox reader (the persister's and stockevents' link) on it. */
    rd_store reader;
    memset(&reader, 0, sizeof reader);
    char message[STOCK_MESSAGE_MAX] = "";
    stock_config config = {0};
    snprintf(without, sizeof without, "%s?prefix=%s", uri, prefix);
    stock_code code = rd_options_parse(without, &config, &reader.options, message, sizeof message);
    reader.options.outbox_reader = true;
    if (code == STOCK_OK)
        code = rd_link_open(&reader, message, sizeof message);
    expect(code == STOCK_INVALID && strstr(message, "nothing for the persister or stockevents") != NULL,
           "an outbox reader is refused", code, message);
    rd_link_close(&reader);
    /* A store with an outbox, opened with outbox=0. */
    unique(kept, sizeof kept, "kept:");
    snprintf(with, sizeof with, "%s?prefix=%s", uri, kept);
    stock_t *store = open_or_die(with);
    stock_set(store, "kept-a", 3, NULL, NULL, NULL);
    stock_close(store);
    long keys = keys_under(conn, kept, &streams);
    expect(streams == 1, "a store made without outbox=0 has its outbox", STOCK_OK, "");
    snprintf(without, sizeof without, "%s?prefix=%s&outbox=0", uri, kept);
    check_open(without, STOCK_INVALID, "keeps an outbox (it was made without outbox=0); "
               "outbox=0 applies to a new store only");
    expect(keys_under(conn, kept, &streams) == keys, "the refused open wrote nothing", STOCK_OK, "");
    redisFree(conn);
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strchr(argv[2], '?') != NULL && strcmp(argv[1], "stopped") != 0 &&
                     strcmp(argv[1], "slow") != 0 && strcmp(argv[1], "moved") != 0)) {
        fprintf(stderr, "usage: redis_faults options|directory|stale|sweep|write|check|full|"
                        "waited|unreplicated|stopped|slow|moved|buckets|outbox URI [FILE|PIDS]\n");
        return 2;
    }
    const char *mode = argv[1], *uri = argv[2];
    if (strcmp(mode, "options") == 0)
        run_options(uri);
    else if (strcmp(mode, "directory") == 0)
        run_directory(uri);
    else if (strcmp(mode, "stale") == 0)
        run_stale(uri);
    else if (strcmp(mode, "sweep") == 0)
        run_sweep(uri);
    else if (strcmp(mode, "write") == 0 && argc == 4)
        return run_write(uri, argv[3]);
    else if (strcmp(mode, "check") == 0 && argc == 4)
        return run_check(uri, argv[3]);
    else if (strcmp(mode, "full") == 0)
        run_full(uri);
    else if (strcmp(mode, "waited") == 0 || strcmp(mode, "unreplicated") == 0)
        run_wait(uri, strcmp(mode, "waited") == 0);
    else if (strcmp(mode, "moved") == 0)
        run_moved(uri);
    else if (strcmp(mode, "buckets") == 0)
        run_buckets(uri);
    else if (strcmp(mode, "outbox") == 0)
        run_outbox(uri);
    else if (strcmp(mode, "stopped") == 0 && argc == 4)
        run_stopped(uri, argv[3]);
    else if (strcmp(mode, "slow") == 0 && argc == 4)
        run_slow(uri, argv[3]);
    else
        return 2;
    printf("redis_faults %s: %d failed\n", mode, failures);
    return failures == 0 ? 0 : 1;
}
