/*
 * remote.c -- the remote backend: stock_open("stockd://host:port") speaks
 * RESP to a running stockd (over TLS for "stockds://host:port"), so the
 * whole library API works over the network. remote_link.c owns the socket;
 * hiredis formats the commands and parses the replies.
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
 * URI: stockd://host[:port][?user=NAME&password=SECRET&timeout_ms=N], or
 * stockds://... with also ca=PATH (the CA that signs the server's
 * certificate; default the system's), cert=PATH&key=PATH (a client
 * certificate, for servers that require one). The port defaults to 7379,
 * timeout_ms (how long to wait for a reply before the connection is
 * declared lost) to 30000; values may be %-encoded (lib/uri.h: a bad escape
 * or %00 is refused). The server's certificate must name the host.
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
#include "backend/remote_link.h"
#include "lib/batches.h"
#include "lib/buf.h"
#include "lib/message.h"
#include "lib/uri.h"
#include "lib/worker.h"

#define REMOTE_SCHEME "stockd://"
#define REMOTE_TLS_SCHEME "stockds://"
#define REMOTE_PATH_MAX 1024   /* bytes of a ca, cert or key path */
#define REMOTE_PORT_DEFAULT 7379
#define REMOTE_HOST_MAX 256
#define REMOTE_PASSWORD_MAX 256
#define REMOTE_REASON_MAX 160
/* Longest silence of the server while it copies a backup (BACKUP answers
 * only when the copy is done). */
#define REMOTE_BACKUP_TIMEOUT_MS (60 * 60 * 1000)
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
    char user[REMOTE_PASSWORD_MAX];         /* "" = by the password alone */
    char password[REMOTE_PASSWORD_MAX];     /* "" when none */
    int reply_timeout_ms;
    bool tls;                               /* stockds:// */
    char ca[REMOTE_PATH_MAX], cert[REMOTE_PATH_MAX], key[REMOTE_PATH_MAX];   /* "" = none */
    SSL_CTX *tls_context;                   /* stockds:// only */

    worker worker;                          /* the connection thread */
    /* The thread's own: the connection, scratch for encoding, the ops of
     * the pipeline in flight, and why its first connection failed. */
    remote_link link;                       /* fd -1 while disconnected */
    remote_command command;
    buf outgoing;                           /* the pipeline's commands, encoded */
    stock_op *pipeline[REMOTE_PIPELINE_MAX];
    char open_reason[REMOTE_REASON_MAX];
} remote_store;

static bool remote_accepts(const char *uri)
{
    return strncmp(uri, REMOTE_SCHEME, strlen(REMOTE_SCHEME)) == 0 ||
           strncmp(uri, REMOTE_TLS_SCHEME, strlen(REMOTE_TLS_SCHEME)) == 0;
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

/* An option's value, %-decoded (lib/uri.h) into target (size bytes). */
static bool parse_text(const uri_option *option, char *target, size_t size,
                       char *why, size_t why_size)
{
    size_t decoded = 0;
    const char *bad = uri_decode(option->value, option->value_len, target, size, &decoded);
    if (bad != NULL) {
        snprintf(why, why_size, "%.*s: %s", (int)option->key_len, option->key, bad);
        return false;
    }
    if (decoded == 0 || decoded >= size) {
        snprintf(why, why_size, "%.*s must be 1-%zu bytes, %%XX-encoded where needed",
                 (int)option->key_len, option->key, size - 1);
        return false;
    }
    return true;
}

/* The text option named by option's key, or NULL if it is not one; the
 * TLS ones only for stockds://. */
static char *text_option(remote_store *store, const uri_option *option, size_t *size)
{
    struct { const char *name; char *target; size_t size; bool tls; } texts[] = {
        {"user", store->user, sizeof store->user, false},
        {"password", store->password, sizeof store->password, false},
        {"ca", store->ca, sizeof store->ca, true},
        {"cert", store->cert, sizeof store->cert, true},
        {"key", store->key, sizeof store->key, true},
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (uri_is(option->key, option->key_len, texts[i].name) && (store->tls || !texts[i].tls)) {
            *size = texts[i].size;
            return texts[i].target;
        }
    return NULL;
}

/* user=...&password=...&timeout_ms=...[&ca=...&cert=...&key=...] */
static bool parse_query(remote_store *store, const char *query, char *why,
                        size_t why_size)
{
    assert(query != NULL && why != NULL);
    uri_option option;
    while (uri_option_next(&query, &option)) {
        uint64_t timeout = 0;
        size_t size = 0;
        char *text = text_option(store, &option, &size);
        if (text != NULL) {
            if (!parse_text(&option, text, size, why, why_size))
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
            snprintf(why, why_size, "unknown parameter '%.*s' (known: user, password, "
                     "timeout_ms%s)", (int)(option.key_len > 40 ? 40 : option.key_len),
                     option.key, store->tls ? ", ca, cert, key" : "; ca, cert, key with stockds://");
            return false;
        }
    }
    if ((store->cert[0] == '\0') != (store->key[0] == '\0')) {
        snprintf(why, why_size, "cert and key go together");
        return false;
    }
    return true;
}

static bool parse_uri(remote_store *store, const char *uri, char *why,
                      size_t why_size)
{
    assert(remote_accepts(uri));
    store->tls = strncmp(uri, REMOTE_TLS_SCHEME, strlen(REMOTE_TLS_SCHEME)) == 0;
    const char *rest = uri + strlen(store->tls ? REMOTE_TLS_SCHEME : REMOTE_SCHEME);
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

static void drop_connection(remote_store *store)
{
    assert(store != NULL);
    remote_link_close(&store->link);
}

/* Reads one handshake reply and checks it is +OK. */
static stock_code handshake_reply(remote_link *link, const char *what,
                                  char *reason, size_t reason_size)
{
    redisReply *reply = NULL;
    if (!remote_link_reply(link, &reply)) {
        message_set(reason, reason_size, "%s got no reply: %s", what, link->error);
        return STOCK_UNAVAILABLE;
    }
    stock_code code = STOCK_OK;
    if (reply->type == REDIS_REPLY_ERROR) {
        bool refused = strstr(reply->str, "STOCKPROTO") != NULL ||
                       strncmp(reply->str, "ERR unknown command", 19) == 0;
        bool noauth = strncmp(reply->str, "NOAUTH", 6) == 0;
        message_set(reason, reason_size, "%s refused: %.100s%s", what, reply->str,
                    refused ? " (is this a stockd server?)"
                    : noauth ? " (add ?password=... to the URI)" : "");
        code = refused ? STOCK_UNSUPPORTED : STOCK_UNAVAILABLE;
    } else if (reply->type != REDIS_REPLY_STATUS || strcmp(reply->str, "OK") != 0) {
        message_set(reason, reason_size, "%s: the server did not answer +OK "
                    "(is this a stockd server?)", what);
        code = STOCK_UNSUPPORTED;
    }
    freeReplyObject(reply);
    return code;
}

/* Appends one command, RESP-encoded by hiredis, to store->outgoing. */
static bool encode_command(remote_store *store, int argc, const char **argv, const size_t *lengths)
{
    char *command = NULL;
    int length = redisFormatCommandArgv(&command, argc, argv, lengths);
    bool ok = length > 0 && buf_append(&store->outgoing, command, (size_t)length);
    redisFreeCommand(command);
    return ok;
}

/* Connects and sends AUTH (with a password) and STOCKPROTO 1, pipelined.
 * On failure the store stays disconnected and reason says why. */
static stock_code connect_store(remote_store *store, char *reason,
                                size_t reason_size)
{
    assert(store->link.fd < 0);
    if (!remote_link_open(&store->link, store->host, store->port, store->tls_context,
                          REMOTE_CONNECT_TIMEOUT_MS, store->reply_timeout_ms)) {
        message_set(reason, reason_size, "%s", store->link.error);
        return STOCK_UNAVAILABLE;
    }
    bool auth = store->password[0] != '\0', user = store->user[0] != '\0';
    const char *auth_argv[] = {"AUTH", user ? store->user : store->password, store->password};
    const size_t auth_lengths[] = {4, strlen(auth_argv[1]), strlen(store->password)};
    const char *proto_argv[] = {"STOCKPROTO", "1"};
    const size_t proto_lengths[] = {10, 1};
    buf_clear(&store->outgoing);
    if ((auth && !encode_command(store, user ? 3 : 2, auth_argv, auth_lengths)) ||
        !encode_command(store, 2, proto_argv, proto_lengths)) {
        drop_connection(store);
        message_set(reason, reason_size, "out of memory");
        return STOCK_NOMEM;
    }
    if (!remote_link_send(&store->link, (const char *)store->outgoing.data, store->outgoing.len)) {
        message_set(reason, reason_size, "%s", store->link.error);
        drop_connection(store);
        return STOCK_UNAVAILABLE;
    }
    stock_code code = auth ? handshake_reply(&store->link, "AUTH", reason, reason_size)
                           : STOCK_OK;
    stock_code proto = handshake_reply(&store->link, "STOCKPROTO 1", reason,
                                       code == STOCK_OK ? reason_size : 0);
    if (code == STOCK_OK)
        code = proto;
    if (code != STOCK_OK)
        drop_connection(store);
    return code;
}

/* True if the idle connection is still usable. A connection with no request
 * in flight must have nothing to read: readable means the server closed it
 * (EOF) or sent something unasked, and either way it is dropped before a
 * command is written to it, so that a restarted server costs no op an
 * unknown outcome. */
static stock_code ensure_connected(remote_store *store, char *reason,
                                   size_t reason_size)
{
    if (store->link.fd >= 0 && !remote_link_idle_ok(&store->link))
        drop_connection(store);
    if (store->link.fd >= 0)
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
    buf_clear(&store->outgoing);
    for (size_t i = 0; i < count; i++) {
        remote_encode(store->pipeline[i], &store->command);
        if (!encode_command(store, store->command.argc, store->command.argv,
                            store->command.lengths)) {
            for (size_t j = 0; j < count; j++)
                remote_fail_unsent(store->pipeline[j], store->address, "out of memory");
            return;
        }
    }
    bool sent = remote_link_send(&store->link, (const char *)store->outgoing.data,
                                 store->outgoing.len);
    for (size_t i = 0; i < count; i++) {
        redisReply *reply = NULL;
        if (!sent || !remote_link_reply(&store->link, &reply)) {
            snprintf(reason, sizeof reason, "connection to %.60s lost: %.60s",
                     store->address, store->link.error);
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
 * blocked on the connection thread because OpenSSL writes with write(2): a
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

/* Sends the command in store->command (already encoded there) and reads
 * its reply into *reply, waiting up to timeout_ms for each read. A server
 * out of reach or lost on the way is STOCK_UNAVAILABLE, with message
 * saying so and then lost_note (what that means for this command). */
static stock_code call_command(remote_store *store, int timeout_ms, const char *lost_note,
                               redisReply **reply, char *message, size_t message_size)
{
    char reason[REMOTE_REASON_MAX];
    if (ensure_connected(store, reason, sizeof reason) != STOCK_OK) {
        message_set(message, message_size, "cannot reach stockd at %s: %s", store->address,
                    reason);
        return STOCK_UNAVAILABLE;
    }
    buf_clear(&store->outgoing);
    if (!encode_command(store, store->command.argc, store->command.argv, store->command.lengths)) {
        message_set(message, message_size, "out of memory");
        return STOCK_NOMEM;
    }
    int usual_ms = store->link.timeout_ms;
    store->link.timeout_ms = timeout_ms;
    bool answered = remote_link_send(&store->link, (const char *)store->outgoing.data,
                                     store->outgoing.len) &&
                    remote_link_reply(&store->link, reply);
    store->link.timeout_ms = usual_ms;
    if (answered)
        return STOCK_OK;
    message_set(message, message_size, "connection to %s lost: %s; %s", store->address,
                store->link.error, lost_note);
    drop_connection(store);
    return STOCK_UNAVAILABLE;
}

/* Sends LIST and reads its reply. A lost connection is UNAVAILABLE: a
 * listing changes nothing, so it is always safe to ask again. */
static void run_listing(stock_t *base, worker_listing *listing)
{
    remote_store *store = (remote_store *)base;
    remote_encode_list(listing->request, &store->command);
    redisReply *reply = NULL;
    listing->code = call_command(store, store->link.timeout_ms, "nothing changed, ask again",
                                 &reply, listing->message, listing->message_size);
    if (listing->code != STOCK_OK)
        return;
    listing->code = remote_decode_list(listing->request, reply, listing->entries, listing->count,
                                       listing->message, listing->message_size);
    freeReplyObject(reply);
}

static stock_code remote_list(stock_t *base, const list_request *request,
                              stock_list_entry *entries, uint32_t *count,
                              char *message, size_t message_size)
{
    remote_store *store = (remote_store *)base;
    return worker_list(&store->worker, run_listing, request, entries, count, message,
                       message_size);
}

/* -------------------------------------------------------------- backup */

/* A stock_backup call, run on the connection thread. */
typedef struct remote_backup {
    const char *dest;
    stock_backup_info *info;
    char *message;
    size_t message_size;
    stock_code code;
} remote_backup;

/* The reply to BACKUP: [end_lsn, snapshot_lsn, files, bytes]
 * (docs/protocol.md), or an error line. */
static stock_code decode_backup(const redisReply *reply, stock_backup_info *info, char *message,
                                size_t message_size)
{
    if (reply->type == REDIS_REPLY_ERROR)
        return remote_decode_error(reply, "BACKUP", message, message_size);
    uint64_t *fields[] = {&info->end_lsn, &info->snapshot_lsn, &info->files, &info->bytes};
    size_t count = sizeof fields / sizeof fields[0];
    bool ok = reply->type == REDIS_REPLY_ARRAY && reply->elements == count;
    for (size_t i = 0; ok && i < count; i++) {
        ok = reply->element[i]->type == REDIS_REPLY_INTEGER && reply->element[i]->integer >= 0;
        if (ok)
            *fields[i] = (uint64_t)reply->element[i]->integer;
    }
    if (ok)
        return STOCK_OK;
    message_set(message, message_size, "stockd answered BACKUP with something else than "
                "[end_lsn, snapshot_lsn, files, bytes]");
    return STOCK_IO;
}

/* Sends BACKUP dest and waits for the server's copy, however long it
 * takes (up to REMOTE_BACKUP_TIMEOUT_MS of silence). A lost connection is
 * UNAVAILABLE: the backup then has no manifest, and a new one is safe. */
static void run_backup(stock_t *base, void *context)
{
    remote_store *store = (remote_store *)base;
    remote_backup *backup = context;
    store->command.argc = 2;
    store->command.argv[0] = "BACKUP";
    store->command.lengths[0] = 6;
    store->command.argv[1] = backup->dest;
    store->command.lengths[1] = strlen(backup->dest);
    redisReply *reply = NULL;
    backup->code = call_command(store, REMOTE_BACKUP_TIMEOUT_MS,
                                "the backup is unfinished (no manifest), take another into a new "
                                "folder", &reply, backup->message, backup->message_size);
    if (backup->code != STOCK_OK)
        return;
    backup->code = decode_backup(reply, backup->info, backup->message, backup->message_size);
    freeReplyObject(reply);
}

static stock_code remote_backup_take(stock_t *base, const char *dest, stock_backup_info *info,
                                     char *message, size_t message_size)
{
    remote_store *store = (remote_store *)base;
    remote_backup backup = {dest, info, message, message_size, STOCK_OK};
    worker_call call = {.run = run_backup, .context = &backup};
    worker_call_run(&store->worker, &call);
    return backup.code;
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
    assert(store->link.fd < 0);
    buf_free(&store->outgoing);
    SSL_CTX_free(store->tls_context);
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
    remote_link_init(&store->link);
    char why[REMOTE_REASON_MAX] = "";
    if (!parse_uri(store, uri, why, sizeof why)) {
        message_set(message, message_size, "bad stockd URI: %s (form: stockd[s]://host[:port]"
                    "[?user=...&password=...&timeout_ms=N], stockds:// also &ca=&cert=&key=)", why);
        store_free(store);
        return STOCK_INVALID;
    }
    if (store->tls && (store->tls_context = remote_link_tls_context(
            store->ca[0] != '\0' ? store->ca : NULL, store->cert[0] != '\0' ? store->cert : NULL,
            store->key[0] != '\0' ? store->key : NULL, why, sizeof why)) == NULL) {
        message_set(message, message_size, "stockds://: %s", why);
        store_free(store);
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
    .holds = true,
    .accepts = remote_accepts,
    .open = remote_open,
    .submit = remote_submit,
    .close = remote_close,
    .list = remote_list,
    .backup = remote_backup_take,
};
