/*
 * redis_conn.c -- the redis backend's connections to a server: writing
 * calls and reading replies within a bound (rd_bound: a silent server, and
 * the deadline of the batch), opening a connection (connect with a
 * timeout, AUTH, check the server is Redis 7 or newer and of the wanted
 * mode, check or write the key layout version, load the function library
 * redis_functions.lua, embedded by the build as a byte list), building
 * calls and reading their replies, and the id directory's entries. Which
 * server a call goes to is redis_link.c's.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "backend/redis.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/message.h"
#include "lib/result.h"

const char rd_functions_source[] = {
#include "backend/redis_functions.inc"
    , 0
};

static stock_code fail(char *message, size_t size, stock_code code, const char *what,
                       const char *detail)
{
    message_set(message, size, "redis: %s%s%.*s", what, detail[0] != '\0' ? ": " : "",
                (int)strcspn(detail, "\r\n"), detail);
    return code;
}

/* ------------------------------------------------------------------ I/O */

/*
 * hiredis's blocking calls bound each read and write by the socket's
 * timeout (SO_RCVTIMEO, SO_SNDTIMEO: timeout_ms), which a slow server that
 * answers every call within it never reaches, while a batch makes tens of
 * calls one after the other (an order over several slots, say): their
 * delays added up without bound. So every wait here is bounded by the
 * batch's deadline as well: reads wait in poll() for what is left of it,
 * writes shorten the send timeout to it.
 */

/* The longest the next wait may last, in ms: timeout_ms, or what is left
 * before end_us when less (0: nothing left). */
static int wait_limit_ms(rd_bound bound)
{
    assert(bound.timeout_ms > 0);
    if (bound.end_us == 0)
        return bound.timeout_ms;
    int64_t left_us = bound.end_us - clock_now_us(CLOCK_MONOTONIC);
    if (left_us <= 0)
        return 0;
    int64_t left_ms = (left_us + 999) / 1000;
    return left_ms < bound.timeout_ms ? (int)left_ms : bound.timeout_ms;
}

/* Fails conn for time run out. hiredis then refuses to read or write on
 * it, which is right: the reply may still come, and would answer the next
 * call. */
static void out_of_time(redisContext *conn, rd_bound bound, int limit_ms)
{
    conn->err = REDIS_ERR_IO;
    if (limit_ms < bound.timeout_ms)
        snprintf(conn->errstr, sizeof conn->errstr, "the batch's deadline passed (timeout_ms=%d "
                 "for every %d ops of it)", bound.timeout_ms, RD_DEADLINE_OPS);
    else
        snprintf(conn->errstr, sizeof conn->errstr, "no answer within timeout_ms=%d",
                 bound.timeout_ms);
}

/* Sets conn's send timeout to limit_ms. */
static bool send_timeout(redisContext *conn, int limit_ms)
{
    struct timeval limit = {limit_ms / 1000, (limit_ms % 1000) * 1000};
    return setsockopt(conn->fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit) == 0;
}

bool rd_conn_flush(redisContext *conn, rd_bound bound)
{
    /* Each pass writes some bytes, fails, or was cut by a signal: the
     * bound ends the loop. */
    while (conn->err == 0 && sdslen(conn->obuf) > 0) {
        int limit_ms = wait_limit_ms(bound);
        if (limit_ms == 0) {
            out_of_time(conn, bound, limit_ms);
            return false;
        }
        bool shorter = limit_ms < bound.timeout_ms && send_timeout(conn, limit_ms);
        int done = 0;
        int written = redisBufferWrite(conn, &done);
        int error = errno;
        if (shorter)
            send_timeout(conn, bound.timeout_ms);
        if (written != REDIS_OK && (error == EAGAIN || error == EWOULDBLOCK))
            out_of_time(conn, bound, limit_ms);
        if (written != REDIS_OK)
            return false;
    }
    return conn->err == 0;
}

/* Waits until conn has bytes to read (or an end to report), within bound;
 * false, conn failed, when time runs out. */
static bool wait_readable(redisContext *conn, rd_bound bound)
{
    for (;;) {
        int limit_ms = wait_limit_ms(bound);
        struct pollfd watched = {.fd = conn->fd, .events = POLLIN};
        int ready = limit_ms > 0 ? poll(&watched, 1, limit_ms) : 0;
        if (ready > 0)
            return true;
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0) {
            conn->err = REDIS_ERR_IO;
            snprintf(conn->errstr, sizeof conn->errstr, "poll: %s", strerror(errno));
        } else {
            out_of_time(conn, bound, limit_ms);
        }
        return false;
    }
}

redisReply *rd_conn_reply(redisContext *conn, rd_bound bound)
{
    void *reply = NULL;
    if (!rd_conn_flush(conn, bound) || redisGetReplyFromReader(conn, &reply) != REDIS_OK)
        return NULL;
    /* Each pass reads some bytes or fails: the bound ends the loop. */
    while (reply == NULL)
        if (!wait_readable(conn, bound) || redisBufferRead(conn) != REDIS_OK ||
            redisGetReplyFromReader(conn, &reply) != REDIS_OK)
            return NULL;
    return reply;
}

redisReply *rd_conn_command(redisContext *conn, rd_bound bound, int argc, const char **argv,
                            const size_t *len)
{
    if (redisAppendCommandArgv(conn, argc, argv, len) != REDIS_OK)
        return NULL;
    return rd_conn_reply(conn, bound);
}

/* ----------------------------------------------------------------- open */

static stock_code authenticate(redisContext *conn, const rd_options *options, rd_bound bound,
                               char *message, size_t size)
{
    if (options->password[0] == '\0')
        return STOCK_OK;
    const char *argv[] = {"AUTH", options->password};
    redisReply *reply = rd_conn_command(conn, bound, 2, argv, NULL);
    stock_code code = STOCK_OK;
    if (reply == NULL)
        code = fail(message, size, STOCK_UNAVAILABLE, "the connection failed during AUTH",
                    conn->errstr);
    else if (reply->type == REDIS_REPLY_ERROR)
        code = fail(message, size, STOCK_INVALID, "the server refused the password",
                    reply->str);
    freeReplyObject(reply);
    return code;
}

/* The value of INFO's field name ("name:value\r\n"), up to the line's
 * end, or NULL when the reply is not INFO's text or has no such field. */
static const char *info_field(const redisReply *reply, const char *name)
{
    const char *at = reply->type == REDIS_REPLY_STRING ? strstr(reply->str, name) : NULL;
    return at != NULL ? at + strlen(name) : NULL;
}

/* Runs INFO section into *out: UNAVAILABLE (message set) when the
 * connection failed, else OK, the reply possibly an error. */
static stock_code info_read(redisContext *conn, const char *section, rd_bound bound,
                            redisReply **out, char *message, size_t size)
{
    const char *argv[] = {"INFO", section};
    *out = rd_conn_command(conn, bound, 2, argv, NULL);
    return *out != NULL ? STOCK_OK
                        : fail(message, size, STOCK_UNAVAILABLE, "the connection failed",
                               conn->errstr);
}

/* Reads redis_version from INFO server (Redis 7 brought Functions) and
 * redis_mode, which must be cluster exactly when the URI says cluster=1. */
static stock_code check_version(redisContext *conn, bool cluster, rd_bound bound,
                                char *message, size_t size)
{
    redisReply *reply = NULL;
    stock_code code = info_read(conn, "server", bound, &reply, message, size);
    if (code != STOCK_OK)
        return code;
    const char *version = info_field(reply, "redis_version:");
    const char *mode = info_field(reply, "redis_mode:");
    bool is_cluster = mode != NULL && strncmp(mode, "cluster", 7) == 0;
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOAUTH", 6) == 0) {
        code = fail(message, size, STOCK_INVALID, "the server wants a password "
                    "(redis://:PASSWORD@host:port or password=)", reply->str);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        code = fail(message, size, STOCK_IO, "INFO server failed", reply->str);
    } else if (is_cluster && !cluster) {
        /* Its keys are spread over nodes: refuse before anything is written
         * rather than guess that the user meant the cluster. */
        code = fail(message, size, STOCK_INVALID, "the server is a Redis Cluster node "
                    "(redis_mode:cluster); open it with cluster=1", "");
    } else if (!is_cluster && cluster) {
        code = fail(message, size, STOCK_INVALID, "cluster=1, but the server is not a "
                    "Redis Cluster node (no redis_mode:cluster)", "");
    } else if (version == NULL) {
        code = fail(message, size, STOCK_UNSUPPORTED, "the server does not say its "
                    "redis_version; Redis 7 or newer is needed", "");
    } else if (atoi(version) < RD_REDIS_MAJOR_MIN) {
        char found[32];
        snprintf(found, sizeof found, "redis_version:%.*s", (int)strcspn(version, "\r\n"),
                 version);
        code = fail(message, size, STOCK_UNSUPPORTED, "Redis 7 or newer is needed "
                    "(Functions), the server has", found);
    }
    freeReplyObject(reply);
    return code;
}

/* Refuses a server that may evict any key (maxmemory-policy allkeys-*,
 * from INFO memory): a stock key, a line's record or its directory entry
 * evicted loses what was acknowledged, and a line id whose entry is gone
 * would be deducted again (deduct_many looks up only the ids that have
 * one). noeviction and the volatile-* policies, which evict only keys
 * with a TTL (this store's leases alone), are accepted. */
static stock_code check_eviction(redisContext *conn, rd_bound bound, char *message, size_t size)
{
    redisReply *reply = NULL;
    stock_code code = info_read(conn, "memory", bound, &reply, message, size);
    if (code != STOCK_OK)
        return code;
    const char *policy = info_field(reply, "maxmemory_policy:");
    if (reply->type == REDIS_REPLY_ERROR) {
        code = fail(message, size, STOCK_IO, "INFO memory failed", reply->str);
    } else if (policy != NULL && strncmp(policy, "allkeys-", 8) == 0) {
        char what[STOCK_MESSAGE_MAX];
        snprintf(what, sizeof what, "the server's maxmemory-policy is %.*s: it may evict the "
                 "store's keys (stock, lines, their directory) and lose what was acknowledged; "
                 "set maxmemory-policy noeviction", (int)strcspn(policy, "\r\n"), policy);
        code = fail(message, size, STOCK_INVALID, what, "");
    }
    freeReplyObject(reply);
    return code;
}

/* Runs a command and fails with the server's words unless the reply is of
 * the wanted type (-1: any but an error). *out receives the reply. */
static stock_code run_checked(redisContext *conn, rd_bound bound, int count, const char **argv,
                              int type, const char *what, redisReply **out, char *message,
                              size_t size)
{
    redisReply *reply = rd_conn_command(conn, bound, count, argv, NULL);
    *out = reply;
    if (reply == NULL)
        return fail(message, size, STOCK_UNAVAILABLE, "the connection failed", conn->errstr);
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "OOM", 3) == 0)
        return fail(message, size, STOCK_IO, "the server is out of memory (maxmemory)",
                    reply->str);
    if (reply->type == REDIS_REPLY_ERROR || (type >= 0 && reply->type != type))
        return fail(message, size, STOCK_IO, what,
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    return STOCK_OK;
}

/* Whether text is a layout version this library reads (RD_LAYOUT_UPGRADES,
 * RD_LAYOUT_VERSION, RD_LAYOUT_BUCKETS, RD_LAYOUT_NO_OUTBOX: one digit). */
static bool layout_known(const char *text)
{
    return strlen(text) == 1 && (strchr(RD_LAYOUT_UPGRADES, text[0]) != NULL ||
                                 strcmp(text, RD_LAYOUT_VERSION) == 0 ||
                                 strcmp(text, RD_LAYOUT_BUCKETS) == 0 ||
                                 strcmp(text, RD_LAYOUT_NO_OUTBOX) == 0);
}

/* The refusals of a known layout that does not match the options, as to
 * whether the store has an outbox; NULL when it matches. A store's outbox
 * is chosen when it is made: turned on later its readers would miss what
 * came before, turned off they would wait for records that never come. */
static const char *outbox_mismatch(const rd_options *options, const char *stored)
{
    bool kept = strcmp(stored, RD_LAYOUT_NO_OUTBOX) != 0;
    if (!kept && options->outbox_reader)
        return "was made with outbox=0 and keeps no outbox: there is nothing for the "
               "persister or stockevents to read";
    if (!kept && options->outbox)
        return "was made with outbox=0 and keeps no outbox; open it with outbox=0";
    if (kept && !options->outbox)
        return "keeps an outbox (it was made without outbox=0); outbox=0 applies to a new "
               "store only: open this one without it, or make a new one under another prefix";
    return NULL;
}

/* Checks the layout version of an existing store, or writes it for a new
 * one (a server that is full can still open a store it already holds). */
stock_code rd_layout_check(redisContext *conn, const rd_options *options, rd_bound bound,
                           char *message, size_t size)
{
    if (options->outbox_reader && !options->outbox)
        return fail(message, size, STOCK_INVALID, "outbox=0 names a store without an outbox; "
                    "the persister and stockevents read the outbox", "");
    /* Buckets on a cluster write version 5 (their records hold one bucket's
     * totals, which a reader of version 4 would take for the SKU's); a store
     * without an outbox 6 (an older library would write records for some
     * changes only); every other store stays at 4. */
    const char *want = !options->outbox                             ? RD_LAYOUT_NO_OUTBOX
                       : rd_cb_on(options) && !options->outbox_reader ? RD_LAYOUT_BUCKETS
                                                                      : RD_LAYOUT_VERSION;
    char key[RD_PREFIX_MAX + 32];
    snprintf(key, sizeof key, "%sstock:layout", options->prefix);
    const char *get[] = {"GET", key};
    redisReply *reply = NULL;
    stock_code code = run_checked(conn, bound, 2, get, -1, "cannot read the layout version", &reply,
                                  message, size);
    if (code == STOCK_OK && reply->type == REDIS_REPLY_NIL) {
        freeReplyObject(reply);
        const char *set[] = {"SET", key, want, "NX", "GET"};
        code = run_checked(conn, bound, 5, set, -1, "cannot write the layout version", &reply,
                           message, size);
    }
    const char *mismatch = code == STOCK_OK && reply->type == REDIS_REPLY_STRING &&
                                   layout_known(reply->str)
                               ? outbox_mismatch(options, reply->str)
                               : NULL;
    if (mismatch != NULL) {
        message_set(message, size, "redis: the store%s%s %s", options->prefix[0] != '\0'
                    ? " with prefix " : "", options->prefix, mismatch);
        freeReplyObject(reply);
        return STOCK_INVALID;
    }
    bool older = code == STOCK_OK && reply->type == REDIS_REPLY_STRING &&
                 strlen(reply->str) == 1 && (strchr(RD_LAYOUT_UPGRADES, reply->str[0]) != NULL ||
                                             (strcmp(reply->str, RD_LAYOUT_VERSION) == 0 &&
                                              strcmp(want, RD_LAYOUT_BUCKETS) == 0));
    if (older) {
        /* Nothing stored changes: version 2 added the outbox streams, 3
         * marked a store with buckets (whose K Pstock:buckets records, which
         * this library reads), 4 the outbox entries of kind 'lines' (that a
         * reader of 3 would skip unseen), 5 the buckets on a cluster. */
        freeReplyObject(reply);
        const char *set[] = {"SET", key, want, "GET"};
        code = run_checked(conn, bound, 4, set, -1, "cannot upgrade the layout version", &reply,
                           message, size);
    }
    if (code == STOCK_OK && reply->type == REDIS_REPLY_STRING && !layout_known(reply->str)) {
        char what[STOCK_MESSAGE_MAX];
        snprintf(what, sizeof what, "key %s holds layout version '%.20s', this library "
                 "reads versions 1 to " RD_LAYOUT_NO_OUTBOX " only; refusing to open", key,
                 reply->str);
        code = fail(message, size, STOCK_CORRUPT, what, "");
    }
    freeReplyObject(reply);
    return code;
}

/* Loads the library unless the server holds this very code already. */
stock_code rd_functions_load(redisContext *conn, rd_bound bound, char *message, size_t size)
{
    const char *list[] = {"FUNCTION", "LIST", "LIBRARYNAME", RD_LIBRARY, "WITHCODE"};
    redisReply *reply = NULL;
    stock_code code = run_checked(conn, bound, 5, list, REDIS_REPLY_ARRAY, "FUNCTION LIST failed",
                                  &reply, message, size);
    bool loaded = false;
    for (size_t i = 0; code == STOCK_OK && i < reply->elements; i++) {
        const redisReply *library = reply->element[i];
        for (size_t k = 0; library->type == REDIS_REPLY_ARRAY && k + 1 < library->elements; k++)
            if (library->element[k]->type == REDIS_REPLY_STRING &&
                strcmp(library->element[k]->str, "library_code") == 0 &&
                library->element[k + 1]->type == REDIS_REPLY_STRING)
                loaded = strcmp(library->element[k + 1]->str, rd_functions_source) == 0;
    }
    freeReplyObject(reply);
    if (code != STOCK_OK || loaded)
        return code;
    const char *load[] = {"FUNCTION", "LOAD", "REPLACE", rd_functions_source};
    code = run_checked(conn, bound, 4, load, -1, "FUNCTION LOAD of the stockd library failed", &reply,
                       message, size);
    freeReplyObject(reply);
    return code;
}

stock_code rd_node_connect(const rd_options *options, const rd_endpoint *at, rd_bound bound,
                           redisContext **out, char *message, size_t size)
{
    *out = NULL;
    char what[RD_HOST_MAX + 64];
    snprintf(what, sizeof what, "cannot connect to %s:%d", at->host, at->port);
    int limit_ms = wait_limit_ms(bound);
    if (limit_ms == 0)
        return fail(message, size, STOCK_UNAVAILABLE, what, "the batch's deadline passed");
    struct timeval limit = {limit_ms / 1000, (limit_ms % 1000) * 1000};
    struct timeval timeout = {options->timeout_ms / 1000, (options->timeout_ms % 1000) * 1000};
    redisContext *conn = redisConnectWithTimeout(at->host, at->port, limit);
    if (conn == NULL)
        return fail(message, size, STOCK_NOMEM, "cannot allocate a connection", "");
    if (conn->err != 0) {
        stock_code code = fail(message, size, STOCK_UNAVAILABLE, what, conn->errstr);
        redisFree(conn);
        return code;
    }
    stock_code code = redisSetTimeout(conn, timeout) == REDIS_OK
                          ? STOCK_OK
                          : fail(message, size, STOCK_IO, "cannot set the timeout", conn->errstr);
    if (code == STOCK_OK)
        code = authenticate(conn, options, bound, message, size);
    if (code == STOCK_OK)
        code = check_version(conn, options->cluster, bound, message, size);
    if (code == STOCK_OK)
        code = check_eviction(conn, bound, message, size);
    if (code != STOCK_OK) {
        redisFree(conn);
        return code;
    }
    *out = conn;
    return STOCK_OK;
}

/* ------------------------------------------------------------- commands */

void rd_cmd_start(rd_cmd *cmd)
{
    cmd->argc = 0;
    cmd->keys = 0;
    cmd->used = 0;
}

/* Appends a printf-formatted argument. */
void rd_cmd_argf(rd_cmd *cmd, const char *format, ...)
{
    assert(cmd->argc < RD_ARGS_MAX);
    va_list args;
    va_start(args, format);
    int len = vsnprintf(cmd->text + cmd->used, RD_TEXT_MAX - cmd->used, format, args);
    va_end(args);
    assert(len >= 0 && cmd->used + (size_t)len < RD_TEXT_MAX);
    cmd->argv[cmd->argc] = cmd->text + cmd->used;
    cmd->len[cmd->argc++] = (size_t)len;
    cmd->used += (size_t)len + 1;
}

void rd_cmd_id(rd_cmd *cmd, stock_id id)
{
    rd_cmd_argf(cmd, "%.*s", (int)id.len, id.ptr);
}

/* Starts FCALL of function name; its keys follow, then its arguments. */
void rd_cmd_fcall(rd_cmd *cmd, const char *name)
{
    rd_cmd_start(cmd);
    rd_cmd_argf(cmd, "FCALL");
    rd_cmd_argf(cmd, RD_FN "%s", name);
    rd_cmd_argf(cmd, "0");   /* the key count, set by cmd_key */
}

/* Counts the argument pushed last as one more key of the call. */
static void key_pushed(rd_cmd *cmd)
{
    cmd->keys++;
    int len = snprintf(cmd->text + cmd->used, RD_TEXT_MAX - cmd->used, "%d", cmd->keys);
    cmd->argv[2] = cmd->text + cmd->used;
    cmd->len[2] = (size_t)len;
    cmd->used += (size_t)len + 1;
}

void rd_cmd_key(rd_cmd *cmd, const char *prefix, const char *kind, stock_id id,
                const char *suffix)
{
    rd_cmd_argf(cmd, "%s{%s:%.*s}%s", prefix, kind, (int)id.len, id.ptr, suffix);
    key_pushed(cmd);
}

void rd_cmd_key_text(rd_cmd *cmd, const char *key)
{
    rd_cmd_argf(cmd, "%s", key);
    key_pushed(cmd);
}

/* ---------------------------------------------------------------- reply */

/* Element i of an array reply as text ("" if absent or not a string). */
const char *rd_element(const redisReply *reply, size_t i)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || i >= reply->elements)
        return "";
    const redisReply *e = reply->element[i];
    return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS ? e->str : "";
}

int64_t rd_element_i64(const redisReply *reply, size_t i)
{
    return strtoll(rd_element(reply, i), NULL, 10);
}

bool rd_is(const redisReply *reply, size_t i, const char *word)
{
    return strcmp(rd_element(reply, i), word) == 0;
}

/* A string reply's text ("" for nil and other types). */
const char *rd_text_of(const redisReply *reply)
{
    return reply != NULL && (reply->type == REDIS_REPLY_STRING ||
                             reply->type == REDIS_REPLY_STATUS) ? reply->str : "";
}

/* Fails op with the server's error reply (OOM and CLUSTERDOWN named as such). */
void rd_fail_server(stock_op *op, const redisReply *reply)
{
    op->failed_line = -1;
    if (strncmp(reply->str, "OOM", 3) == 0)
        result_fail(op, STOCK_IO, "redis: the server is out of memory (maxmemory); nothing "
                    "was changed: %.120s", reply->str);
    else if (strncmp(reply->str, "CLUSTERDOWN", 11) == 0)   /* refused before it ran */
        result_fail(op, STOCK_UNAVAILABLE, "redis: the cluster is down (a master lost, a "
                    "failover under way); this call was refused before it ran, retry (a set "
                    "over buckets may have set the others): %.120s", reply->str);
    else
        result_fail(op, STOCK_IO, "redis: %.160s", reply->str);
}

/* ---------------------------------------------------------- directory */

/* The suffix of the SKU hash that holds records of kind. */
const char *rd_record_suffix(const char *kind)
{
    if (strcmp(kind, "line") == 0)
        return ":flow";
    if (strcmp(kind, "refund") == 0)
        return ":refunds";
    if (strcmp(kind, "adjust") == 0)
        return ":adjust";
    return ":orders";
}

/* Builds the claim of kind:id for owner: the directory entry "1 owner"
 * written unless there is one, whose value comes back (SET NX GET). */
void rd_claim_build(rd_cmd *cmd, const char *prefix, const char *kind, stock_id id,
                        stock_id owner)
{
    rd_cmd_start(cmd);
    rd_cmd_argf(cmd, "SET");
    rd_cmd_argf(cmd, "%s{%s:%.*s}", prefix, kind, (int)id.len, id.ptr);
    rd_cmd_argf(cmd, "1 %.*s", (int)owner.len, owner.ptr);
    rd_cmd_argf(cmd, "NX");
    rd_cmd_argf(cmd, "GET");
}

/* Reads a directory entry "generation owner" from a reply; false for none. */
bool rd_entry_parse(const redisReply *reply, char gen[RD_GEN_MAX], char owner[RD_OWNER_MAX])
{
    if (reply->type != REDIS_REPLY_STRING)
        return false;
    size_t gen_len = strcspn(reply->str, " ");
    snprintf(gen, RD_GEN_MAX, "%.*s", (int)gen_len, reply->str);
    snprintf(owner, RD_OWNER_MAX, "%s", reply->str + gen_len + (reply->str[gen_len] == ' '));
    return true;
}

/* Reads a claim's reply: true when the id is ours (new, or bound to owner
 * already) with gen set; else other and other_gen name its owner. */
bool rd_claim_parse(const redisReply *reply, stock_id owner, char gen[RD_GEN_MAX],
                        char other[RD_OWNER_MAX], char other_gen[RD_GEN_MAX])
{
    if (!rd_entry_parse(reply, other_gen, other)) {
        snprintf(gen, RD_GEN_MAX, "1");
        return true;
    }
    if (!id_equal(stock_id_from_cstr(other), owner))
        return false;
    snprintf(gen, RD_GEN_MAX, "%s", other_gen);
    return true;
}
