/*
 * redis_link.c -- where the redis backend's calls go. A single server is
 * one connection. A Redis Cluster (cluster=1) is one connection per master
 * and the slot map read from CLUSTER SLOTS: a call goes to the master of its
 * first key's slot (every key of one call shares a hash tag, docs/redis.md).
 * The calls of a round are queued per master and written to every master
 * before any reply is awaited, so each master gets one pipeline and they
 * work in parallel. Replies are handed out in send order. A MOVED or ASK
 * reply sends its call again to the node it names (after ASKING for ASK),
 * a TRYAGAIN (a slot half migrated) to the same node after a pause; a
 * MOVED also marks the map stale, so the next batch reconnects with a
 * fresh map (after a failover, the promoted replica's). A node that breaks
 * the connection or is silent for timeout_ms fails the whole link: every
 * call not answered yet has an unknown outcome, and the next batch
 * reconnects.
 */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/redis.h"
#include "lib/clock.h"
#include "lib/message.h"

/* ----------------------------------------------------------------- slots */

/* CRC16-CCITT (XMODEM), the checksum Redis Cluster places keys by. */
static uint16_t crc16(uint16_t crc, const char *bytes, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)bytes[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

/* Redis Cluster's rule: a key with a non-empty {tag} is placed by the tag
 * alone (from the first '{' to the first '}' after it). */
unsigned rd_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    const char *close = open != NULL ? memchr(open + 1, '}', len - (size_t)(open + 1 - key))
                                     : NULL;
    if (close != NULL && close > open + 1) {
        key = open + 1;
        len = (size_t)(close - key);
    }
    return crc16(0, key, len) & (RD_SLOTS - 1);
}

unsigned rd_tag_slot(const char *kind, stock_id id)
{
    const char *close = id.len > 0 ? memchr(id.ptr, '}', id.len) : NULL;
    uint16_t crc = crc16(crc16(0, kind, strlen(kind)), ":", 1);
    return crc16(crc, id.ptr, close != NULL ? (size_t)(close - id.ptr) : id.len) &
           (RD_SLOTS - 1);
}

/* ----------------------------------------------------------------- nodes */

static int node_find(const rd_link *link, const char *host, int port)
{
    for (int i = 0; i < link->node_count; i++)
        if (link->nodes[i].at.port == port && strcmp(link->nodes[i].at.host, host) == 0)
            return i;
    return -1;
}

/* The node at host:port, added (not connected) if new; -1 when full. */
static int node_at(rd_link *link, const char *host, int port)
{
    int found = node_find(link, host, port);
    if (found >= 0 || link->node_count == RD_NODES_MAX)
        return found;
    rd_node *node = &link->nodes[link->node_count];
    memset(node, 0, sizeof *node);
    snprintf(node->at.host, sizeof node->at.host, "%s", host);
    node->at.port = port;
    node->head = node->tail = -1;
    return link->node_count++;
}

/* Connects node index; load: also load the function library. */
static stock_code node_connect(rd_store *store, int index, bool load, char *message,
                               size_t size)
{
    rd_node *node = &store->link.nodes[index];
    rd_bound bound = rd_link_bound(store);
    stock_code code = rd_node_connect(&store->options, &node->at, bound, &node->conn, message,
                                      size);
    if (code == STOCK_OK && load)
        code = rd_functions_load(node->conn, bound, message, size);
    if (code != STOCK_OK && node->conn != NULL) {
        redisFree(node->conn);
        node->conn = NULL;
    }
    return code;
}

/* ------------------------------------------------------------- lifecycle */

void rd_link_close(rd_store *store)
{
    rd_link *link = &store->link;
    for (int k = 0; k < link->count; k++) {
        rd_pending *p = &link->pending[(link->first + k) % RD_PENDING_MAX];
        redisFreeCommand(p->call);
        freeReplyObject(p->reply);
    }
    for (int i = 0; i < link->node_count; i++)
        if (link->nodes[i].conn != NULL)
            redisFree(link->nodes[i].conn);
    link->first = link->count = link->node_count = 0;
    link->unflushed = false;
    link->state = RD_LINK_DOWN;
}

rd_bound rd_link_bound(const rd_store *store)
{
    return (rd_bound){.timeout_ms = store->options.timeout_ms, .end_us = store->link.end_us};
}

bool rd_linked(const rd_store *store)
{
    return store->link.state != RD_LINK_DOWN;
}

/* Fails the link after node broke: store->error says the outcome of what
 * was in flight is unknown. */
static void link_lost(rd_store *store, const rd_node *node, const char *what)
{
    snprintf(store->error, sizeof store->error, "redis: %.50s (%.64s:%d: %.60s); the outcome "
             "is unknown; retry with the same id is safe", what, node->at.host, node->at.port,
             node->conn != NULL && node->conn->errstr[0] != '\0' ? node->conn->errstr
                                                                 : "no detail");
    rd_link_close(store);
}

/* Reads CLUSTER SLOTS into the slot map: each range's master (its first
 * node; an empty host is the seed's). UNAVAILABLE when a slot has none
 * (the cluster is not ok). */
static stock_code map_read(rd_store *store, redisContext *conn, const rd_endpoint *seed,
                           rd_bound bound, char *message, size_t size)
{
    rd_link *link = &store->link;
    memset(link->slot_node, RD_NO_NODE, sizeof link->slot_node);
    const char *argv[] = {"CLUSTER", "SLOTS"};
    redisReply *reply = rd_conn_command(conn, bound, 2, argv, NULL);
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        message_set(message, size, "redis: CLUSTER SLOTS failed on %s:%d: %.100s", seed->host,
                    seed->port, reply == NULL ? conn->errstr
                                : reply->type == REDIS_REPLY_ERROR ? reply->str : "not a list");
        freeReplyObject(reply);
        return STOCK_UNAVAILABLE;
    }
    stock_code code = STOCK_OK;
    for (size_t i = 0; i < reply->elements && code == STOCK_OK; i++) {
        const redisReply *range = reply->element[i];
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
            range->element[2]->type != REDIS_REPLY_ARRAY || range->element[2]->elements < 2)
            continue;
        const redisReply *master = range->element[2];
        const char *host = master->element[0]->type == REDIS_REPLY_STRING &&
                           master->element[0]->str[0] != '\0' ? master->element[0]->str
                                                               : seed->host;
        int node = node_at(link, host, (int)master->element[1]->integer);
        if (node < 0) {
            message_set(message, size, "redis: the cluster has more than %d masters",
                        RD_NODES_MAX);
            code = STOCK_UNSUPPORTED;
        }
        for (long long s = range->element[0]->integer;
             node >= 0 && s <= range->element[1]->integer && s >= 0 && s < RD_SLOTS; s++)
            link->slot_node[s] = (uint8_t)node;
    }
    freeReplyObject(reply);
    for (int s = 0; s < RD_SLOTS && code == STOCK_OK; s++)
        if (link->slot_node[s] == RD_NO_NODE) {
            message_set(message, size, "redis: no master serves slot %d (CLUSTER SLOTS on "
                        "%s:%d); the cluster is not ok yet", s, seed->host, seed->port);
            code = STOCK_UNAVAILABLE;
        }
    return code;
}

/* The slot map from the first seed that answers. A seed that answers but is
 * refused (password, not a cluster node, not Redis 7) ends the search.
 * Each seed has at least timeout_ms of its own, past the work's deadline if
 * need be (the deadline then moves with it, for the masters' connections):
 * a seed whose host is down would otherwise spend the whole deadline, and
 * the seeds after it would never be asked. */
static stock_code map_from_seeds(rd_store *store, char *message, size_t size)
{
    stock_code code = STOCK_UNAVAILABLE;
    for (int i = 0; i < store->options.seed_count; i++) {
        const rd_endpoint *seed = &store->options.seeds[i];
        rd_bound bound = rd_link_bound(store);
        int64_t own_us = clock_now_us(CLOCK_MONOTONIC) + bound.timeout_ms * 1000LL;
        if (bound.end_us != 0 && bound.end_us < own_us)
            bound.end_us = store->link.end_us = own_us;
        redisContext *conn = NULL;
        code = rd_node_connect(&store->options, seed, bound, &conn, message, size);
        if (code == STOCK_OK) {
            store->link.node_count = 0;
            code = map_read(store, conn, seed, bound, message, size);
            redisFree(conn);
        }
        if (code != STOCK_UNAVAILABLE)
            return code;
    }
    return code;
}

/* Connects every master of the map, checks the layout on the master of
 * its key, then loads the functions everywhere (nothing is written to a
 * store of another layout). */
static stock_code open_cluster(rd_store *store, char *message, size_t size)
{
    rd_link *link = &store->link;
    stock_code code = map_from_seeds(store, message, size);
    for (int i = 0; i < link->node_count && code == STOCK_OK; i++)
        code = node_connect(store, i, false, message, size);
    if (code != STOCK_OK)
        return code;
    char key[RD_PREFIX_MAX + 32];
    int len = snprintf(key, sizeof key, "%sstock:layout", store->options.prefix);
    int owner = link->slot_node[rd_key_slot(key, (size_t)len)];
    rd_bound bound = rd_link_bound(store);
    code = rd_layout_check(link->nodes[owner].conn, &store->options, bound, message, size);
    if (code == STOCK_OK) {
        len = snprintf(key, sizeof key, "%sstock:buckets", store->options.prefix);
        owner = link->slot_node[rd_key_slot(key, (size_t)len)];
        code = rd_buckets_check(link->nodes[owner].conn, &store->options, bound, message, size);
    }
    for (int i = 0; i < link->node_count && code == STOCK_OK; i++)
        code = rd_functions_load(link->nodes[i].conn, bound, message, size);
    return code;
}

static stock_code open_single(rd_store *store, char *message, size_t size)
{
    rd_link *link = &store->link;
    node_at(link, store->options.seeds[0].host, store->options.seeds[0].port);
    rd_bound bound = rd_link_bound(store);
    stock_code code = node_connect(store, 0, false, message, size);
    if (code == STOCK_OK)
        code = rd_layout_check(link->nodes[0].conn, &store->options, bound, message, size);
    if (code == STOCK_OK)
        code = rd_buckets_check(link->nodes[0].conn, &store->options, bound, message, size);
    if (code == STOCK_OK)
        code = rd_functions_load(link->nodes[0].conn, bound, message, size);
    return code;
}

stock_code rd_link_open(rd_store *store, char *message, size_t size)
{
    rd_link_close(store);
    stock_code code = store->options.cluster ? open_cluster(store, message, size)
                                             : open_single(store, message, size);
    if (code == STOCK_OK && store->options.outbox_reader)
        code = rd_outbox_layout(store, message, size);
    if (code != STOCK_OK)
        rd_link_close(store);
    else
        store->link.state = RD_LINK_UP;
    return code;
}

/* ----------------------------------------------------------------- calls */

/* Connects a node first named by a redirect; on failure the link is lost. */
static bool node_ready(rd_store *store, int index)
{
    rd_node *node = &store->link.nodes[index];
    if (node->conn != NULL)
        return true;
    char message[STOCK_MESSAGE_MAX];
    if (node_connect(store, index, true, message, sizeof message) == STOCK_OK)
        return true;
    snprintf(store->error, sizeof store->error, "%.150s; the outcome is unknown; retry with "
             "the same id is safe", message);
    rd_link_close(store);
    return false;
}

/* Queues pending call index on node (after ASKING when asking). */
static bool queue_on(rd_store *store, int index, int node_index, bool asking)
{
    rd_link *link = &store->link;
    if (!node_ready(store, node_index))
        return false;
    rd_node *node = &link->nodes[node_index];
    rd_pending *p = &link->pending[index];
    if ((asking && redisAppendCommand(node->conn, "ASKING") != REDIS_OK) ||
        redisAppendFormattedCommand(node->conn, p->call, p->len) != REDIS_OK) {
        link_lost(store, node, "cannot queue a call");
        return false;
    }
    p->node = node_index;
    p->next = -1;
    p->asking = asking;
    if (node->tail >= 0)
        link->pending[node->tail].next = index;
    else
        node->head = index;
    node->tail = index;
    node->wrote = true;
    link->unflushed = true;
    return true;
}

/* Queues store->cmd on node. */
static bool send_to(rd_store *store, int node)
{
    rd_link *link = &store->link;
    rd_cmd *cmd = &store->cmd;
    assert(link->count < RD_PENDING_MAX);
    char *call = NULL;
    int len = redisFormatCommandArgv(&call, cmd->argc, cmd->argv, cmd->len);
    if (len < 0) {
        link_lost(store, &link->nodes[node], "cannot format a call");
        return false;
    }
    int index = (link->first + link->count++) % RD_PENDING_MAX;
    link->pending[index] = (rd_pending){.node = node, .next = -1, .call = call,
                                        .len = (size_t)len};
    return queue_on(store, index, node, false);
}

bool rd_send(rd_store *store)
{
    rd_link *link = &store->link;
    if (link->state == RD_LINK_DOWN)
        return false;
    int node = 0;
    if (store->options.cluster) {
        int key = store->cmd.keys > 0 ? 3 : 1;   /* FCALL name numkeys key... | CMD key */
        node = link->slot_node[rd_key_slot(store->cmd.argv[key], store->cmd.len[key])];
    }
    return send_to(store, node);
}

/* Writes every node's queued calls, so that the masters work in parallel
 * while the client waits for one of them. */
static bool flush_all(rd_store *store)
{
    rd_link *link = &store->link;
    link->unflushed = false;
    for (int i = 0; i < link->node_count; i++) {
        rd_node *node = &link->nodes[i];
        if (node->conn != NULL && !rd_conn_flush(node->conn, rd_link_bound(store))) {
            link_lost(store, node, "cannot send calls");
            return false;
        }
    }
    return true;
}

/* A TRYAGAIN reply (a multi-key call on a slot being migrated, its keys
 * split between two nodes): sends the call again to the same node after a
 * pause that grows with each try (the migration moves on meanwhile). */
static bool try_again(rd_store *store, int index, int node, bool *ok)
{
    rd_pending *p = &store->link.pending[index];
    p->redirects++;
    usleep((useconds_t)RD_TRYAGAIN_PAUSE_US * (useconds_t)p->redirects);
    *ok = queue_on(store, index, node, false);
    return true;
}

/* A MOVED or ASK reply ("MOVED slot host:port") to pending call index:
 * sends it again to that node; TRYAGAIN: to the same node. False when reply
 * is not one to follow (or the call followed RD_REDIRECTS_MAX already). */
static bool follow(rd_store *store, int index, const redisReply *reply, bool *ok)
{
    rd_link *link = &store->link;
    rd_pending *p = &link->pending[index];
    if (reply->type != REDIS_REPLY_ERROR || p->redirects >= RD_REDIRECTS_MAX)
        return false;
    if (strncmp(reply->str, "TRYAGAIN", 8) == 0)
        return try_again(store, index, p->node, ok);
    bool moved = strncmp(reply->str, "MOVED ", 6) == 0;
    if (!moved && strncmp(reply->str, "ASK ", 4) != 0)
        return false;
    char *end = NULL;
    unsigned long slot = strtoul(strchr(reply->str, ' ') + 1, &end, 10);
    const char *target = *end == ' ' ? end + 1 : "";
    const char *colon = strrchr(target, ':');
    if (colon == NULL || colon == target || slot >= RD_SLOTS ||
        (size_t)(colon - target) > RD_HOST_MAX)
        return false;
    char host[RD_HOST_MAX + 1];
    snprintf(host, sizeof host, "%.*s", (int)(colon - target), target);
    int node = node_at(link, host, atoi(colon + 1));
    if (node < 0)
        return false;
    if (moved) {
        link->slot_node[slot] = (uint8_t)node;
        link->state = RD_LINK_STALE;
    }
    p->redirects++;
    *ok = queue_on(store, index, node, !moved);
    return true;
}

/* Reads node's next reply into its oldest call awaiting one, or follows
 * the redirect it is. False when the link is lost. */
static bool read_one(rd_store *store, int node_index)
{
    rd_link *link = &store->link;
    if (link->unflushed && link->node_count > 1 && !flush_all(store))
        return false;
    rd_node *node = &link->nodes[node_index];
    redisReply *reply = rd_conn_reply(node->conn, rd_link_bound(store));
    if (reply == NULL) {
        link_lost(store, node, "the connection was lost or timed out");
        return false;
    }
    int index = node->head;
    rd_pending *p = &link->pending[index];
    if (p->asking) {   /* ASKING's +OK */
        p->asking = false;
        freeReplyObject(reply);
        return true;
    }
    node->head = p->next;
    if (node->head < 0)
        node->tail = -1;
    bool ok = true;
    if (follow(store, index, reply, &ok))
        freeReplyObject(reply);
    else
        p->reply = reply;
    return ok;
}

redisReply *rd_reply(rd_store *store)
{
    rd_link *link = &store->link;
    if (link->state == RD_LINK_DOWN)
        return NULL;
    assert(link->count > 0);
    rd_pending *p = &link->pending[link->first];
    while (p->reply == NULL)
        if (!read_one(store, p->node))
            return NULL;
    redisReply *reply = p->reply;
    redisFreeCommand(p->call);
    link->first = (link->first + 1) % RD_PENDING_MAX;
    link->count--;
    return reply;
}

redisReply *rd_call(rd_store *store)
{
    return rd_send(store) ? rd_reply(store) : NULL;
}

long long rd_link_wait(rd_store *store, int replicas, int wait_ms)
{
    rd_link *link = &store->link;
    int sent = 0;
    for (int i = 0; i < link->node_count && rd_linked(store); i++) {
        if (!link->nodes[i].wrote || link->nodes[i].conn == NULL)
            continue;
        rd_cmd_start(&store->cmd);
        rd_cmd_argf(&store->cmd, "WAIT");
        rd_cmd_argf(&store->cmd, "%d", replicas);
        rd_cmd_argf(&store->cmd, "%d", wait_ms);
        sent += send_to(store, i);
        link->nodes[i].wrote = false;
    }
    long long fewest = replicas;
    for (; sent > 0; sent--) {
        redisReply *reply = rd_reply(store);
        if (reply == NULL)
            return -1;
        long long acked = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
        fewest = acked < fewest ? acked : fewest;
        freeReplyObject(reply);
    }
    return rd_linked(store) ? fewest : -1;
}
