/*
 * server.h -- stockd's event loop: the listeners, signals, idle sweep and
 * shutdown, and the state every part of the server shares.
 *
 * Everything here runs on the one libuv loop thread, except batch
 * completion, which the store signals from its own thread (batch.c hands it
 * back to the loop with uv_async_send).
 */
#ifndef STOCK_SERVER_SERVER_H
#define STOCK_SERVER_SERVER_H

#include <pthread.h>
#include <openssl/ssl.h>
#include <uv.h>

#include "proto/resp.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/hot.h"
#include "server/metrics.h"
#include "server/persister.h"
#include "stock.h"

#define SERVER_SHUTDOWN_GRACE_MS 10000   /* then clients still open are cut */
#define SERVER_SWEEP_MS 1000             /* idle-timeout check period */
#define SERVER_LISTEN_BACKLOG 1024
#define SERVER_TLS_READ_BYTES (64u * 1024)  /* ciphertext taken per TLS read */
/* TLS handshake steps (each a few hundred microseconds of public-key
 * work) per loop turn: past them a handshake waits for the next turn, so
 * that a storm of new clients delays established ones by one budget, not
 * by the whole storm. */
#define SERVER_HANDSHAKES_PER_TURN 16

struct backup_job;
struct batch;
struct chunk;
struct conn;

/* The listeners, by what they serve: a connection's conn_kind is its
 * listener's index modulo 2, and the last two speak TLS. */
enum server_listener {
    SERVER_LISTEN_RESP = 0,
    SERVER_LISTEN_HTTP,
    SERVER_LISTEN_RESP_TLS,
    SERVER_LISTEN_HTTP_TLS,
    SERVER_LISTENERS
};

/*
 * The server's life, one step at a time:
 *
 *   RUNNING   accepts clients and serves them
 *      |  SIGTERM or SIGINT (or a failed start)
 *      v
 *   STOPPING  listeners closed; every client closes after its replies,
 *      |      and is cut after SERVER_SHUTDOWN_GRACE_MS
 *      |  no client and no batch left (server_maybe_finish)
 *      v
 *   STOPPED   the loop's own handles closed, so uv_run returns
 */
typedef enum server_state {
    SERVER_RUNNING = 0,
    SERVER_STOPPING,
    SERVER_STOPPED
} server_state;

typedef struct server {
    server_state state;
    uv_loop_t *loop;
    stock_t *store;
    server_persister *persister;       /* --persist-to's thread, NULL: none */
    const config *cfg;
    uint64_t started_ms;

    uv_tcp_t listeners[SERVER_LISTENERS];   /* enum server_listener */
    bool listening[SERVER_LISTENERS];
    SSL_CTX *tls_context;              /* NULL when no TLS port is set */
    char tls_read[SERVER_TLS_READ_BYTES];   /* ciphertext of the read in progress */
    uv_check_t check;                  /* submits the batch gathered this turn */
    uv_idle_t handshake_idle;          /* runs deferred handshakes, turn by turn */
    uint32_t handshakes_this_turn;     /* TLS handshake steps taken this turn */
    struct conn *handshakes;           /* connections whose handshake waits */
    struct conn *handshakes_tail;
    uv_async_t async;                  /* batch completions from the store */
    uv_poll_t completions;             /* the store's completion descriptor */
    bool polling_completions;          /* completions is initialised */
    uv_timer_t sweep;                  /* idle timeout */
    uv_timer_t grace;                  /* shutdown deadline */
    uv_timer_t health_watch;           /* health.h: logs a low disk */
    bool disk_low;                     /* as the watch last logged it */
    uv_signal_t signals[2];            /* SIGTERM, SIGINT */

    struct batch *gathering;           /* ops read this turn, not submitted */
    struct batch *free_batches;
    uint32_t free_batch_count;
    uint32_t inflight;                 /* submitted, completion not handled */
    pthread_mutex_t done_lock;         /* guards done_head/done_tail */
    struct batch *done_head;
    struct batch *done_tail;
    pthread_t loop_thread;
    bool submitting;                   /* the loop thread is in stock_submit */
    struct batch *inline_head;         /* completed inside stock_submit */
    struct batch *inline_tail;

    struct chunk *free_chunks;
    uint32_t free_chunk_count;

    struct conn *conns;                /* every connection not yet freed */
    struct conn *dirty;                /* connections with replies to write */
    struct conn *waiting;              /* paused until the batch has room */
    struct backup_job *backup;         /* the BACKUP copying now, or NULL */
    uint64_t next_conn_id;

    metrics counters;
    auth_limiter auth;                 /* failed authentications by address */
    hot hot;                           /* the top SKUs of the last minute */
    resp_request request;              /* the RESP parser's scratch space */
} server;

/*
 * Listens as cfg says, serves store until SIGTERM or SIGINT, then stops
 * accepting, finishes the batches in flight, writes their replies and
 * returns. The caller still owns store (and closes it) and persister (NULL
 * when none runs; INFO and /metrics report its status). Returns 0, or 1 if
 * the server could not start (the reason is logged).
 */
int server_run(const config *cfg, stock_t *store, server_persister *persister);

/* Queues c for a write at the end of this loop callback (server_flush). */
void server_mark_dirty(server *srv, struct conn *c);

/* Makes the loop run conn_resume_handshakes every turn until none waits. */
void server_defer_handshakes(server *srv);

/* Starts the writes of every connection marked dirty. */
void server_flush(server *srv);

/* During shutdown, closes the loop's own handles once no client and no
 * batch is left. */
void server_maybe_finish(server *srv);

/* Milliseconds since the loop started (the loop's cached clock). */
uint64_t server_now_ms(const server *srv);

#endif /* STOCK_SERVER_SERVER_H */
