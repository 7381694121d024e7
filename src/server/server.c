/*
 * server.c -- stockd's loop: listeners, the check phase that submits the
 * batch gathered in one turn, signals, the idle sweep and an orderly
 * shutdown (see server.h).
 */
#include <assert.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "server/batch.h"
#include "server/conn.h"
#include "server/health.h"
#include "server/log.h"
#include "server/server.h"
#include "server/tls.h"

/* Moves srv one step along its life (server.h). */
static void server_set_state(server *srv, server_state next)
{
    assert(next == srv->state + 1);
    srv->state = next;
}

uint64_t server_now_ms(const server *srv)
{
    return uv_now(srv->loop);
}

void server_mark_dirty(server *srv, conn *c)
{
    if (c->flags & CONN_ON_DIRTY)
        return;
    c->flags |= CONN_ON_DIRTY;
    c->dirty_next = srv->dirty;
    srv->dirty = c;
}

void server_flush(server *srv)
{
    while (srv->dirty != NULL) {
        conn *c = srv->dirty;
        srv->dirty = c->dirty_next;
        c->flags &= ~CONN_ON_DIRTY;
        conn_flush(c);   /* may free a closing c */
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    server *srv = listener->data;
    if (status < 0) {
        log_warn("accept failed: %s", uv_strerror(status));
        return;
    }
    int index = (int)((uv_tcp_t *)listener - srv->listeners);
    assert(index >= 0 && index < SERVER_LISTENERS);
    conn_accept(srv, listener, index % 2 == 0 ? CONN_RESP : CONN_HTTP,
                index >= SERVER_LISTEN_RESP_TLS);
}

/* The check phase runs once per loop turn, after the reads of that turn. */
static void on_check(uv_check_t *handle)
{
    server *srv = handle->data;
    batch_submit(srv);
    srv->handshakes_this_turn = 0;
}

/* While handshakes wait, an active idle handle keeps the loop from
 * sleeping in poll, and each turn takes the next budget of them. */
static void on_handshake_idle(uv_idle_t *handle)
{
    server *srv = handle->data;
    if (!conn_resume_handshakes(srv))
        uv_idle_stop(handle);
    server_flush(srv);
}

void server_defer_handshakes(server *srv)
{
    uv_idle_start(&srv->handshake_idle, on_handshake_idle);
}

static void on_sweep(uv_timer_t *timer)
{
    server *srv = timer->data;
    uint32_t closed = conn_sweep_idle(srv);
    srv->counters.idle_closed += closed;
    server_flush(srv);
}

static void close_handle(uv_handle_t *handle)
{
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

void server_maybe_finish(server *srv)
{
    if (srv->state != SERVER_STOPPING || srv->conns != NULL || srv->inflight > 0 ||
        srv->backup != NULL)
        return;
    if (srv->gathering != NULL && srv->gathering->count > 0)
        return;
    server_set_state(srv, SERVER_STOPPED);
    close_handle((uv_handle_t *)&srv->check);
    close_handle((uv_handle_t *)&srv->handshake_idle);
    close_handle((uv_handle_t *)&srv->async);
    if (srv->polling_completions)
        close_handle((uv_handle_t *)&srv->completions);
    close_handle((uv_handle_t *)&srv->sweep);
    close_handle((uv_handle_t *)&srv->grace);
    health_stop(srv);
    close_handle((uv_handle_t *)&srv->signals[0]);
    close_handle((uv_handle_t *)&srv->signals[1]);
}

static void on_grace(uv_timer_t *timer)
{
    server *srv = timer->data;
    log_warn("shutdown: clients still open after %d ms, closing them",
             SERVER_SHUTDOWN_GRACE_MS);
    for (conn *c = srv->conns; c != NULL; c = c->next)
        conn_close(c);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    server *srv = handle->data;
    if (srv->state != SERVER_RUNNING) {
        log_info("%s again: shutdown already in progress", strsignal(signum));
        return;
    }
    log_info("%s: shutting down: no new clients, finishing %u batches in flight%s",
             strsignal(signum), srv->inflight,
             srv->backup != NULL ? " and the backup that is copying" : "");
    server_set_state(srv, SERVER_STOPPING);
    for (int i = 0; i < SERVER_LISTENERS; i++)
        if (srv->listening[i])
            close_handle((uv_handle_t *)&srv->listeners[i]);
    for (conn *c = srv->conns; c != NULL; c = c->next)
        conn_stop(c);
    uv_timer_start(&srv->grace, on_grace, SERVER_SHUTDOWN_GRACE_MS, 0);
    uv_unref((uv_handle_t *)&srv->grace);
    batch_submit(srv);
    server_flush(srv);
    server_maybe_finish(srv);
}

/* Binds and listens on port (0: off). Returns 0 or a libuv error. */
static int listen_on(server *srv, enum server_listener which, int port)
{
    static const char *const names[SERVER_LISTENERS] = {
        [SERVER_LISTEN_RESP] = "RESP", [SERVER_LISTEN_HTTP] = "HTTP",
        [SERVER_LISTEN_RESP_TLS] = "RESP over TLS", [SERVER_LISTEN_HTTP_TLS] = "HTTPS",
    };
    if (port == 0)
        return 0;
    struct sockaddr_storage address;
    int rc = strchr(srv->cfg->bind, ':') != NULL
        ? uv_ip6_addr(srv->cfg->bind, port, (struct sockaddr_in6 *)&address)
        : uv_ip4_addr(srv->cfg->bind, port, (struct sockaddr_in *)&address);
    if (rc < 0) {
        log_error("--bind %s: not an IPv4 or IPv6 address", srv->cfg->bind);
        return rc;
    }
    uv_tcp_t *listener = &srv->listeners[which];
    uv_tcp_init(srv->loop, listener);
    listener->data = srv;
    srv->listening[which] = true;
    rc = uv_tcp_bind(listener, (const struct sockaddr *)&address, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)listener, SERVER_LISTEN_BACKLOG, on_connection);
    if (rc < 0) {
        log_error("cannot listen on %s port %d: %s", srv->cfg->bind, port, uv_strerror(rc));
        return rc;
    }
    log_info("listening for %s on %s:%d", names[which], srv->cfg->bind, port);
    return 0;
}

static int start_handles(server *srv)
{
    int rc = batch_init(srv);
    if (rc < 0)
        return rc;
    uv_check_init(srv->loop, &srv->check);
    srv->check.data = srv;
    uv_check_start(&srv->check, on_check);
    uv_idle_init(srv->loop, &srv->handshake_idle);
    srv->handshake_idle.data = srv;
    uv_timer_init(srv->loop, &srv->sweep);
    uv_timer_init(srv->loop, &srv->grace);
    srv->sweep.data = srv->grace.data = srv;
    if (srv->cfg->idle_timeout_s > 0)
        uv_timer_start(&srv->sweep, on_sweep, SERVER_SWEEP_MS, SERVER_SWEEP_MS);
    health_start(srv);
    const int signums[2] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; i++) {
        uv_signal_init(srv->loop, &srv->signals[i]);
        srv->signals[i].data = srv;
        uv_signal_start(&srv->signals[i], on_signal, signums[i]);
    }
    return 0;
}

/* On a failed start: close what was opened and let the loop finish. */
static void abort_start(server *srv)
{
    server_set_state(srv, SERVER_STOPPING);
    for (int i = 0; i < SERVER_LISTENERS; i++)
        if (srv->listening[i])
            close_handle((uv_handle_t *)&srv->listeners[i]);
    server_maybe_finish(srv);
    uv_run(srv->loop, UV_RUN_DEFAULT);
}

/* Sets up TLS if a TLS port is set, then listens on every port that is
 * not 0. False (the reason logged) if any of it fails. */
static bool start_serving(server *srv)
{
    const config *cfg = srv->cfg;
    if (cfg->tls_port != 0 || cfg->tls_http_port != 0) {
        char message[CONFIG_MESSAGE_MAX];
        srv->tls_context = tls_context_new(cfg, message, sizeof message);
        if (srv->tls_context == NULL) {
            log_error("cannot set up TLS: %s", message);
            return false;
        }
    }
    return listen_on(srv, SERVER_LISTEN_RESP, cfg->port) == 0 &&
           listen_on(srv, SERVER_LISTEN_HTTP, cfg->http_port) == 0 &&
           listen_on(srv, SERVER_LISTEN_RESP_TLS, cfg->tls_port) == 0 &&
           listen_on(srv, SERVER_LISTEN_HTTP_TLS, cfg->tls_http_port) == 0;
}

int server_run(const config *cfg, stock_t *store, server_persister *persister)
{
    assert(cfg != NULL && store != NULL);
    signal(SIGPIPE, SIG_IGN);   /* a vanished client is an error code, not a signal */
    server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        log_error("out of memory");
        return 1;
    }
    srv->state = SERVER_RUNNING;
    srv->loop = uv_default_loop();
    srv->store = store;
    srv->persister = persister;
    srv->cfg = cfg;
    srv->started_ms = uv_now(srv->loop);
    srv->counters.connections_max = cfg->maxclients;
    if (start_handles(srv) < 0) {
        log_error("cannot set up the event loop");
        free(srv);
        return 1;
    }
    int exit_code = 0;
    if (start_serving(srv))
        uv_run(srv->loop, UV_RUN_DEFAULT);
    else {
        abort_start(srv);
        exit_code = 1;
    }
    assert(srv->conns == NULL && srv->inflight == 0 && srv->backup == NULL);
    batch_fini(srv);
    conn_fini(srv);
    tls_context_free(srv->tls_context);
    uv_loop_close(srv->loop);
    free(srv);
    return exit_code;
}
