/*
 * remote.c -- the remote backend: stock_open("stockd://host:port") speaks
 * RESP to a running stockd through hiredis, so the whole library API works
 * over the network.
 *
 * One connection per store, owned by one thread. stock_submit only queues
 * the batch; the thread takes every queued batch at once and pipelines
 * their ops (appends up to REMOTE_PIPELINE_MAX commands, then reads all the
 * replies), which is what lets the server gather them into one durable
 * batch. Batches complete in the order they were queued.
 *
 * A lost connection is reopened on the next batch. Ops whose command may
 * have reached the server when the connection broke complete with
 * STOCK_UNAVAILABLE and a message that their outcome is unknown; a retry
 * with the same id is safe because deductions, orders, refunds and
 * adjustments with an id are idempotent (the retry answers REPLAY if the
 * first attempt took effect).
 *
 * URI: stockd://host[:port][?password=SECRET&timeout_ms=N]; the port
 * defaults to 7379, timeout_ms (how long to wait for a reply before the
 * connection is declared lost) to 30000; the password may be %-encoded
 * (lib/uri.h: a bad escape or %00 is refused).
 */
#include <assert.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "backend/backend.h"
#include "backend/remote.h"
#include "lib/batches.h"
#include "lib/message.h"
#include "lib/uri.h"
#include "lib/worker.h"

#define REMOTE_SCHEME "stockd://"
#define REMOTE_PORT_DEFAULT 7379
#define REMOTE_HOST_MAX 256
#define REMOTE_PASSWORD_MAX 256
#define REMOTE_REASON_MAX 160
#define REMOTE_CONNECT_TIMEOUT_MS 2000
#define REMOTE_REPLY_TIMEOUT_MS_DEFAULT 30000
#define REMOTE_REPLY_TIMEOUT_MS_MAX 3600000
/* Commands written before their replies are read. Bounded so that neither
 * side's socket buffers can fill up with both sides blocked writing. */
#define REMOTE_PIPELINE_MAX 1024

typedef struct remote_store {
    struct stock base;
    char host[REMOTE_HOST_MAX];
    int port;
    char address[REMOTE_HOST_MAX + 8];      /* "host:port", for messages */
    char password[REMOTE_PASSWORD_MAX];     /* "" when none */
    int reply_timeout_ms;

    worker worker;                          /* the connection thread */
    /* The thread's own: the connection, scratch for encoding, the ops of
     * the pipeline in flight, and why its first connection failed. */
    redisContext *context;                  /* NULL while disconnected */
    remote_command command;
    stock_op *pipeline[REMOTE_PIPELINE_MAX];
    char open_reason[REMOTE_REASON_MAX];
} remote_store;

static bool remote_accepts(const char *uri)
{
    return strncmp(uri, REMOTE_SCHEME, strlen(REMOTE_SCHEME)) == 0;
}

/* --------------------------------------------------------------- the URI */

/* host[:port] or [v6]:port, up to end. */
static bool parse_authority(remote_store *store, const char *text,
                            size_t length, char *why, size_t why_size)
{
    assert(text != NULL && why != NULL && why_size > 0);
    const char *host = text, *colon = NULL;
    size_t host_length = length;
    if (length > 0 && text[0] == '[') {
        const char *close = memchr(text, ']', length);
        if (close == NULL) {
            snprintf(why, why_size, "an IPv6 host needs a closing ']'");
            return false;
        }
        host = text + 1;
        host_length = (size_t)(close - host);
        colon = close + 1 < text + length && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(text, ':', length);
        if (colon != NULL)
            host_length = (size_t)(colon - text);
    }
    if (host_length == 0 || host_length >= REMOTE_HOST_MAX) {
        snprintf(why, why_size, "the host must be 1-%d characters", REMOTE_HOST_MAX - 1);
        return false;
    }
    memcpy(store->host, host, host_length);
    store->host[host_length] = '\0';
    uint64_t port = REMOTE_PORT_DEFAULT;
    if (colon != NULL &&
        !uri_parse_uint(colon + 1, (size_t)(text + length - colon - 1), 1, 65535, &port)) {
        snprintf(why, why_size, "the port must be an integer in 1..65535");
        return false;
    }
    store->port = (int)port;
    assert(store->port >= 1 && store->port <= 65535);
    snprintf(store->address, sizeof store->address, "%s:%d", store->host, store->port);
    return true;
}

/* The password, %-decoded (lib/uri.h) into store->password. */
static bool parse_password(remote_store *store, const uri_option *option,
                           char *why, size_t why_size)
{
    size_t decoded = 0;
    const char *bad = uri_decode(option->value, option->value_len, store->password,
                                 sizeof store->password, &decoded);
    if (bad != NULL) {
        snprintf(why, why_size, "password: %s", bad);
        return false;
    }
    if (decoded == 0 || decoded >= sizeof store->password) {
        snprintf(why, why_size, "password must be 1-%d bytes, %%XX-encoded where needed",
                 REMOTE_PASSWORD_MAX - 1);
        return false;
    }
    return true;
}

/* password=...&timeout_ms=... */
static bool parse_query(remote_store *store, const char *query, char *why,
                        size_t why_size)
{
    assert(query != NULL && why != NULL);
    uri_option option;
    while (uri_option_next(&query, &option)) {
        uint64_t timeout = 0;
        if (uri_is(option.key, option.key_len, "password")) {
            if (!parse_password(store, &option, why, why_size))
                return false;
        } else if (uri_is(option.key, option.key_len, "timeout_ms")) {
            if (!uri_parse_uint(option.value, option.value_len, 1,
                                REMOTE_REPLY_TIMEOUT_MS_MAX, &timeout)) {
                snprintf(why, why_size, "timeout_ms must be an integer in 1..%d",
                         REMOTE_REPLY_TIMEOUT_MS_MAX);
                return false;
            }
            store->reply_timeout_ms = (int)timeout;
        } else {
            snprintf(why, why_size, "unknown parameter '%.*s' (known: password, timeout_ms)",
                     (int)(option.key_len > 40 ? 40 : option.key_len), option.key);
            return false;
        }
    }
    return true;
}

static bool parse_uri(remote_store *store, const char *uri, char *why,
                      size_t why_size)
{
    assert(remote_accepts(uri));
    const char *rest = uri + strlen(REMOTE_SCHEME);
    size_t authority_length = strcspn(rest, "?/");
    if (rest[authority_length] == '/' && rest[authority_length + 1] != '\0' &&
        rest[authority_length + 1] != '?') {
        snprintf(why, why_size, "a stockd URI has no path");
        return false;
    }
    if (!parse_authority(store, rest, authority_length, why, why_size))
        return false;
    const char *query = strchr(rest + authority_length, '?');
    return query == NULL || parse_query(store, query + 1, why, why_size);
}

/* ------------------------------------------------------- the connection */

static struct timeval timeval_from_ms(int ms)
{
    assert(ms > 0);
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

static void drop_connection(remote_store *store)
{
    assert(store != NULL);
    if (store->context != NULL)
        redisFree(store->context);
    store->context = NULL;
}

/* Reads one handshake reply and checks it is +OK. */
static stock_code handshake_reply(redisContext *context, const char *what,
                                  char *reason, size_t reason_size)
{
    redisReply *reply = NULL;
    if (redisGetReply(context, (void **)&reply) != REDIS_OK || reply == NULL) {
        snprintf(reason, reason_size, "%s got no reply: %s", what, context->errstr);
        return STOCK_UNAVAILABLE;
    }
    stock_code code = STOCK_OK;
    if (reply->type == REDIS_REPLY_ERROR) {
        bool refused = strstr(reply->str, "STOCKPROTO") != NULL ||
                       strncmp(reply->str, "ERR unknown command", 19) == 0;
        bool noauth = strncmp(reply->str, "NOAUTH", 6) == 0;
        snprintf(reason, reason_size, "%s refused: %.100s%s", what, reply->str,
                 refused ? " (is this a stockd server?)"
                 : noauth ? " (add ?password=... to the URI)" : "");
        code = refused ? STOCK_UNSUPPORTED : STOCK_UNAVAILABLE;
    } else if (reply->type != REDIS_REPLY_STATUS || strcmp(reply->str, "OK") != 0) {
        snprintf(reason, reason_size, "%s: the server did not answer +OK "
                 "(is this a stockd server?)", what);
        code = STOCK_UNSUPPORTED;
    }
    freeReplyObject(reply);
    return code;
}

/* Connects and sends AUTH (with a password) and STOCKPROTO 1, pipelined.
 * On failure the store stays disconnected and reason says why. */
static stock_code connect_store(remote_store *store, char *reason,
                                size_t reason_size)
{
    assert(store->context == NULL);
    redisContext *context = redisConnectWithTimeout(
        store->host, store->port, timeval_from_ms(REMOTE_CONNECT_TIMEOUT_MS));
    if (context == NULL) {
        snprintf(reason, reason_size, "out of memory");
        return STOCK_NOMEM;
    }
    if (context->err) {
        snprintf(reason, reason_size, "%s", context->errstr);
        redisFree(context);
        return STOCK_UNAVAILABLE;
    }
    redisSetTimeout(context, timeval_from_ms(store->reply_timeout_ms));
    redisEnableKeepAlive(context);
    bool auth = store->password[0] != '\0';
    if (auth)
        redisAppendCommand(context, "AUTH %s", store->password);
    redisAppendCommand(context, "STOCKPROTO 1");
    stock_code code = auth ? handshake_reply(context, "AUTH", reason, reason_size)
                           : STOCK_OK;
    stock_code proto = handshake_reply(context, "STOCKPROTO 1", reason,
                                       code == STOCK_OK ? reason_size : 0);
    if (code == STOCK_OK)
        code = proto;
    if (code != STOCK_OK) {
        redisFree(context);
        return code;
    }
    store->context = context;
    assert(store->context->err == 0);
    return STOCK_OK;
}

/* True if the idle connection is still usable. A connection with no request
 * in flight must have nothing to read: readable means the server closed it
 * (EOF) or sent something unasked, and either way it is dropped before a
 * command is written to it, so that a restarted server costs no op an
 * unknown outcome. */
static bool connection_alive(remote_store *store)
{
    assert(store->context != NULL);
    struct pollfd probe = {.fd = store->context->fd, .events = POLLIN};
    int ready = poll(&probe, 1, 0);
    return ready == 0;
}

static stock_code ensure_connected(remote_store *store, char *reason,
                                   size_t reason_size)
{
    if (store->context != NULL && !connection_alive(store))
        drop_connection(store);
    if (store->context != NULL)
        return STOCK_OK;
    return connect_store(store, reason, reason_size);
}

/* ------------------------------------------------------------- pipeline */

/* Sends the count ops of the pipeline and reads their replies in order. */
static void pipeline_flush(remote_store *store, size_t count)
{
    assert(count <= REMOTE_PIPELINE_MAX);
    if (count == 0)
        return;
    char reason[REMOTE_REASON_MAX];
    if (ensure_connected(store, reason, sizeof reason) != STOCK_OK) {
        for (size_t i = 0; i < count; i++)
            remote_fail_unsent(store->pipeline[i], store->address, reason);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        remote_encode(store->pipeline[i], &store->command);
        int appended = redisAppendCommandArgv(store->context, store->command.argc,
                                              store->command.argv,
                                              store->command.lengths);
        assert(appended == REDIS_OK || store->context->err != 0);
    }
    for (size_t i = 0; i < count; i++) {
        redisReply *reply = NULL;
        if (redisGetReply(store->context, (void **)&reply) != REDIS_OK ||
            reply == NULL) {
            snprintf(reason, sizeof reason, "connection to %.60s lost: %.60s",
                     store->address, store->context->errstr);
            drop_connection(store);
            for (size_t j = i; j < count; j++)
                remote_fail_unknown(store->pipeline[j], reason);
            return;
        }
        remote_decode(store->pipeline[i], reply);
        freeReplyObject(reply);
        assert(store->pipeline[i]->code != STOCK_OK ||
               store->pipeline[i]->message[0] == '\0');
    }
}

/* The worker's run: a list of batches (linked by next, in submission
 * order), their ops pipelined across batch boundaries. A batch completes
 * after the flush that carried its last op. */
static void run_batches(stock_t *base, stock_batch *batch)
{
    remote_store *store = (remote_store *)base;
    stock_batch *finished = NULL, **finished_tail = &finished;
    size_t count = 0;
    while (batch != NULL) {
        stock_batch *next = batch->next;
        for (size_t i = 0; i < batch->count; i++) {
            stock_op *op = &batch->ops[i];
            if (op->code != STOCK_OK)
                continue;   /* invalid: already complete (backend.h) */
            if (count == REMOTE_PIPELINE_MAX) {
                pipeline_flush(store, count);
                count = 0;
                batches_complete(&store->base, finished);
                finished = NULL, finished_tail = &finished;
            }
            store->pipeline[count++] = op;
            assert(count <= REMOTE_PIPELINE_MAX);
        }
        batch->next = NULL;
        *finished_tail = batch;
        finished_tail = &batch->next;
        batch = next;
    }
    pipeline_flush(store, count);
    batches_complete(&store->base, finished);
}

/* The worker's start: connects once for stock_open's sake. SIGPIPE is
 * blocked on the connection thread because hiredis writes with write(2): a
 * write to a connection the server closed must fail with EPIPE, not kill
 * the process. */
static stock_code thread_start(stock_t *base)
{
    remote_store *store = (remote_store *)base;
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, NULL);
    return connect_store(store, store->open_reason, sizeof store->open_reason);
}

static void thread_stop(stock_t *base)
{
    drop_connection((remote_store *)base);
}

static const worker_tasks remote_tasks = {
    .start = thread_start, .run = run_batches, .stop = thread_stop,
};

/* ------------------------------------------------------------- listing */

/* A stock_list call, run on the connection thread (worker_call_run). */
typedef struct remote_listing {
    const list_request *request;
    stock_list_entry *entries;
    uint32_t *count;
    char *message;
    size_t message_size;
    stock_code code;
} remote_listing;

/* Sends LIST and reads its reply. A lost connection is UNAVAILABLE: a
 * listing changes nothing, so it is always safe to ask again. */
static void run_listing(stock_t *base, void *context)
{
    remote_store *store = (remote_store *)base;
    remote_listing *listing = context;
    char reason[REMOTE_REASON_MAX];
    if (ensure_connected(store, reason, sizeof reason) != STOCK_OK) {
        message_set(listing->message, listing->message_size, "cannot reach stockd at %s: %s",
                    store->address, reason);
        listing->code = STOCK_UNAVAILABLE;
        return;
    }
    remote_encode_list(listing->request, &store->command);
    redisReply *reply = redisCommandArgv(store->context, store->command.argc,
                                         store->command.argv, store->command.lengths);
    if (reply == NULL) {
        message_set(listing->message, listing->message_size,
                    "connection to %s lost: %s; nothing changed, ask again", store->address,
                    store->context->errstr);
        drop_connection(store);
        listing->code = STOCK_UNAVAILABLE;
        return;
    }
    listing->code = remote_decode_list(listing->request, reply, listing->entries, listing->count,
                                       listing->message, listing->message_size);
    freeReplyObject(reply);
}

static stock_code remote_list(stock_t *base, const list_request *request,
                              stock_list_entry *entries, uint32_t *count,
                              char *message, size_t message_size)
{
    remote_store *store = (remote_store *)base;
    remote_listing listing = {request, entries, count, message, message_size, STOCK_OK};
    worker_call call = {.run = run_listing, .context = &listing};
    worker_call_run(&store->worker, &call);
    return listing.code;
}

/* ------------------------------------------------------------ the table */

static void remote_submit(stock_t *base, stock_batch *batch)
{
    remote_store *store = (remote_store *)base;
    assert(store->base.ops == &remote_backend);
    worker_submit(&store->worker, batch);
}

static void store_free(remote_store *store)
{
    assert(store->context == NULL);
    free(store);
}

static stock_code remote_close(stock_t *base)
{
    remote_store *store = (remote_store *)base;
    assert(store->base.ops == &remote_backend);
    worker_close(&store->worker);
    store_free(store);
    return STOCK_OK;
}

/* Starts the connection thread and waits for its first connection. */
static stock_code start_thread(remote_store *store, char *message,
                               size_t message_size)
{
    stock_code code = worker_start(&store->worker, &store->base, &remote_tasks, SIZE_MAX);
    if (code == STOCK_NOMEM && store->open_reason[0] == '\0')
        message_set(message, message_size, "cannot start the connection thread");
    else if (code != STOCK_OK)
        message_set(message, message_size, "cannot open stockd at %s: %s",
                    store->address, store->open_reason);
    return code;
}

static stock_code remote_open(const char *uri, const stock_config *config,
                              stock_t **result, char *message,
                              size_t message_size)
{
    (void)config;   /* the server's own configuration applies */
    remote_store *store = calloc(1, sizeof *store);
    if (store == NULL) {
        message_set(message, message_size, "out of memory");
        return STOCK_NOMEM;
    }
    store->base.ops = &remote_backend;
    store->reply_timeout_ms = REMOTE_REPLY_TIMEOUT_MS_DEFAULT;
    char why[REMOTE_REASON_MAX] = "";
    if (!parse_uri(store, uri, why, sizeof why)) {
        message_set(message, message_size, "bad stockd URI: %s "
                    "(form: stockd://host[:port][?password=...&timeout_ms=N])", why);
        free(store);
        return STOCK_INVALID;
    }
    stock_code code = start_thread(store, message, message_size);
    if (code != STOCK_OK) {
        store_free(store);
        return code;
    }
    *result = &store->base;
    return STOCK_OK;
}

const stock_backend_ops remote_backend = {
    .name = "remote",
    .accepts = remote_accepts,
    .open = remote_open,
    .submit = remote_submit,
    .close = remote_close,
    .list = remote_list,
};
