/*
 * conn.c -- client connections: chunked zero-copy reading, the ordered
 * reply queue, bounded writing and closing (see conn.h).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/resp.h"
#include "server/commands.h"
#include "server/conn.h"
#include "server/log.h"
#include "server/routes.h"

#define CONN_MESSAGE_MAX 96   /* an error the server sends on its own */

/* ------------------------------------------------------------ lifecycle */

/* Moves c to next, asserting that the diagram in conn.h has that step: a
 * state is never left for an earlier one, nor skipped over where the
 * diagram has no arrow. */
static void conn_set_state(conn *c, conn_state next)
{
    static const unsigned steps[] = {
        [CONN_OPEN] = 1u << CONN_CLOSE_AFTER_REPLIES | 1u << CONN_SHUT_AFTER_REPLIES |
                      1u << CONN_CLOSING,
        [CONN_CLOSE_AFTER_REPLIES] = 1u << CONN_SHUT_AFTER_REPLIES | 1u << CONN_CLOSING,
        [CONN_SHUT_AFTER_REPLIES] = 1u << CONN_SHUT | 1u << CONN_CLOSING,
        [CONN_SHUT] = 1u << CONN_CLOSING,
        [CONN_CLOSING] = 1u << CONN_CLOSED,
        [CONN_CLOSED] = 0,
    };
    assert((unsigned)c->state < sizeof steps / sizeof steps[0]);
    bool allowed = (steps[c->state] >> next) & 1u;
    assert(allowed);
    (void)allowed;
    c->state = next;
}

/* True while c reads requests and answers them. */
static bool takes_requests(const conn *c)
{
    /* Stopping moves every connection on (conn_stop), and no listener is
     * left to accept a new one. */
    assert(c->state != CONN_OPEN || c->srv->state == SERVER_RUNNING);
    return c->state == CONN_OPEN;
}

/* True once uv_close is called: nothing is read, rendered or written. */
static bool is_closing(const conn *c)
{
    return c->state == CONN_CLOSING || c->state == CONN_CLOSED;
}

/* True when no reply is owed or unwritten. */
static bool all_written(const conn *c)
{
    return c->slot_count == 0 && !(c->flags & CONN_WRITING) && c->out.len == 0;
}

/* ------------------------------------------------------------- chunks */

static chunk *chunk_get(server *srv, size_t cap)
{
    chunk *ch = NULL;
    if (cap == CONN_CHUNK_BYTES && srv->free_chunks != NULL) {
        ch = srv->free_chunks;
        srv->free_chunks = ch->next;
        srv->free_chunk_count--;
    } else {
        ch = malloc(sizeof *ch + cap);
        if (ch == NULL)
            return NULL;
        ch->cap = cap;
    }
    ch->refs = 1;
    ch->len = 0;
    ch->parsed = 0;
    ch->next = NULL;
    return ch;
}

static void chunk_release(server *srv, chunk *ch)
{
    assert(ch->refs > 0);
    if (--ch->refs > 0)
        return;
    if (ch->cap == CONN_CHUNK_BYTES && srv->free_chunk_count < CONN_FREE_CHUNKS_MAX) {
        ch->next = srv->free_chunks;
        srv->free_chunks = ch;
        srv->free_chunk_count++;
        return;
    }
    free(ch);
}

void conn_fini(server *srv)
{
    while (srv->free_chunks != NULL) {
        chunk *ch = srv->free_chunks;
        srv->free_chunks = ch->next;
        free(ch);
    }
    srv->free_chunk_count = 0;
}

/* Makes room for a read of at least CONN_READ_MIN bytes after the unparsed
 * tail. Reuses the chunk when no request borrows from it. */
static bool make_room(conn *c)
{
    chunk *in = c->in;
    size_t unparsed = in->len - in->parsed;
    if (in->cap - in->len >= CONN_READ_MIN)
        return true;
    if (in->refs == 1 && in->cap - unparsed >= CONN_READ_MIN) {
        memmove(in->data, in->data + in->parsed, unparsed);
        in->len = unparsed;
        in->parsed = 0;
        return true;
    }
    size_t cap = CONN_CHUNK_BYTES;
    while (cap - unparsed < CONN_READ_MIN || cap < unparsed * 2)
        cap *= 2;
    chunk *fresh = chunk_get(c->srv, cap);
    if (fresh == NULL)
        return false;
    memcpy(fresh->data, in->data + in->parsed, unparsed);
    fresh->len = unparsed;
    chunk_release(c->srv, in);
    c->in = fresh;
    return true;
}

/* ------------------------------------------------------------ reading */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *out)
{
    (void)suggested;
    conn *c = handle->data;
    if (!make_room(c)) {
        *out = uv_buf_init(NULL, 0);   /* libuv reports UV_ENOBUFS */
        return;
    }
    chunk *in = c->in;
    *out = uv_buf_init(in->data + in->len, (unsigned)(in->cap - in->len));
}

static void process(conn *c)
{
    if (c->kind == CONN_RESP)
        commands_process(c);
    else
        routes_process(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *data);

/* Reads while c takes requests and has room for more, or while it drops
 * what a shut client still sends. */
static void update_reading(conn *c)
{
    bool want = c->state == CONN_SHUT ||
                (takes_requests(c) && !(c->flags & CONN_ON_WAITING) &&
                 c->slot_count < CONN_PENDING_MAX &&
                 c->out.len + c->writing.len < CONN_OUTPUT_MAX);
    bool reading = c->flags & CONN_READING;
    if (want && !reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->flags |= CONN_READING;
    else if (!want && reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->flags &= ~CONN_READING;
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *data)
{
    (void)data;
    conn *c = stream->data;
    if (nread < 0) {
        if (nread != UV_EOF && nread != UV_ECONNRESET)
            log_warn("client %llu: read failed: %s", (unsigned long long)c->id,
                     uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    assert((size_t)nread <= c->in->cap - c->in->len);
    if (c->state == CONN_SHUT) {
        /* Rejected: the reply is sent and the write side shut; drop what the
         * client still sends so that closing does not reset the reply away. */
        c->discarded += (size_t)nread;
        c->last_active_ms = server_now_ms(c->srv);
        if (c->discarded > CONN_DISCARD_MAX)
            conn_close(c);
        return;
    }
    c->in->len += (size_t)nread;
    c->last_active_ms = server_now_ms(c->srv);
    process(c);
    update_reading(c);
    server_flush(c->srv);
}

void conn_resume(conn *c)
{
    if (is_closing(c))
        return;
    if (c->in->len > c->in->parsed)
        process(c);
    update_reading(c);
}

bool conn_can_take(conn *c)
{
    if (!takes_requests(c) || c->slot_count >= CONN_PENDING_MAX ||
        c->out.len + c->writing.len >= CONN_OUTPUT_MAX)
        return false;
    if (batch_has_room(c->srv))
        return true;
    if (!(c->flags & CONN_ON_WAITING)) {
        c->flags |= CONN_ON_WAITING;
        c->waiting_next = c->srv->waiting;
        c->srv->waiting = c;
    }
    return false;
}

/* ------------------------------------------------------------ writing */

static void maybe_free(conn *c);
static void end_after_replies(conn *c);

/* All output is written: end c if it takes no more requests and owes no
 * reply, else read again if output pressure had paused reading. */
static void written(conn *c)
{
    c->last_active_ms = server_now_ms(c->srv);
    if (!takes_requests(c) && c->slot_count == 0)
        end_after_replies(c);
    else if (!(c->flags & CONN_READING))
        conn_resume(c);
}

static void on_write(uv_write_t *request, int status)
{
    conn *c = request->data;
    assert(c->flags & CONN_WRITING);
    c->flags &= ~CONN_WRITING;
    buf_clear(&c->writing);
    if (status < 0) {
        conn_close(c);
        maybe_free(c);
        return;
    }
    if (c->out.len > 0)
        conn_flush(c);
    else
        written(c);
    server_flush(c->srv);
    maybe_free(c);
}

/* Writes what the socket takes now, without a write request: a completed
 * uv_write costs an epoll_ctl, uv_try_write does not. False if c failed. */
static bool write_now(conn *c)
{
    uv_buf_t data = uv_buf_init((char *)c->out.data, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &data, 1);
    if (n == UV_EAGAIN)
        return true;
    if (n < 0) {
        conn_close(c);
        return false;
    }
    assert((size_t)n <= c->out.len);
    memmove(c->out.data, c->out.data + n, c->out.len - (size_t)n);
    c->out.len -= (size_t)n;
    return true;
}

void conn_flush(conn *c)
{
    if (is_closing(c)) {
        maybe_free(c);   /* the end of a callback: no caller holds c now */
        return;
    }
    if ((c->flags & CONN_WRITING) || c->out.len == 0 || !write_now(c))
        return;
    if (c->out.len == 0) {
        written(c);
        return;
    }
    /* The socket is full: hand the rest to libuv and write later. */
    buf swap = c->writing;
    c->writing = c->out;
    c->out = swap;
    buf_clear(&c->out);
    uv_buf_t data = uv_buf_init((char *)c->writing.data, (unsigned)c->writing.len);
    c->write_req.data = c;
    int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &data, 1, on_write);
    if (rc < 0) {
        buf_clear(&c->writing);
        conn_close(c);
        return;
    }
    c->flags |= CONN_WRITING;
}

/* ------------------------------------------------------------ replies */

/* The slot i places after the head. The ring's size is a power of 2, so a
 * mask stands for the modulo (a division per request otherwise). */
static slot *slot_at(const conn *c, uint32_t i)
{
    assert(c->slot_cap > 0 && (c->slot_cap & (c->slot_cap - 1)) == 0);
    return &c->slots[(c->slot_head + i) & (c->slot_cap - 1)];
}

/* Makes room for one more slot: the ring starts small and doubles up to
 * CONN_PENDING_MAX, so idle connections stay cheap. False on out of memory. */
static bool slot_room(conn *c)
{
    assert(c->slot_count < CONN_PENDING_MAX && c->slot_count <= c->slot_cap);
    if (c->slot_count < c->slot_cap)
        return true;
    uint32_t cap = c->slot_cap * 2;
    slot *slots = malloc(sizeof *slots * cap);
    if (slots == NULL)
        return false;
    for (uint32_t i = 0; i < c->slot_count; i++)
        slots[i] = *slot_at(c, i);
    free(c->slots);
    c->slots = slots;
    c->slot_cap = cap;
    c->slot_head = 0;
    return true;
}

static slot *push_slot(conn *c)
{
    assert(c->slot_count < c->slot_cap);
    slot *s = slot_at(c, c->slot_count);
    c->slot_count++;
    memset(s, 0, sizeof *s);
    return s;
}

stock_op *conn_add_op(conn *c, uint16_t kind, void *extra, bool borrow)
{
    batch *owner = NULL;
    uint32_t index = 0;
    stock_op *op = slot_room(c) ? batch_add(c->srv, c, &owner, &index) : NULL;
    if (op == NULL) {
        free(extra);
        return NULL;
    }
    slot *s = push_slot(c);
    s->owner = owner;
    s->index = index;
    s->kind = kind;
    s->extra = extra;
    if (borrow) {
        s->borrowed = c->in;
        c->in->refs++;
    }
    owner->unreplied++;
    return op;
}

buf *conn_reply_begin(conn *c, size_t *mark)
{
    buf *target = c->slot_count == 0 ? &c->out : &c->deferred;
    *mark = target->len;
    return target;
}

bool conn_reply_end(conn *c, size_t mark)
{
    if (c->slot_count == 0) {
        assert(mark <= c->out.len);
        server_mark_dirty(c->srv, c);
        return true;
    }
    assert(mark <= c->deferred.len);
    if (!slot_room(c))
        return false;
    slot *s = push_slot(c);
    s->text_len = (uint32_t)(c->deferred.len - mark);
    return true;
}

/* Writes one ready slot's reply to c->out. */
static void render(conn *c, slot *s)
{
    if (s->owner == NULL) {
        assert(c->deferred_head + s->text_len <= c->deferred.len);
        buf_append(&c->out, c->deferred.data + c->deferred_head, s->text_len);
        return;
    }
    stock_op *op = &s->owner->ops[s->index];
    if (c->kind == CONN_RESP)
        commands_render(c, s, op, &c->out);
    else
        routes_render(c, s, op, &c->out);
}

static void pop_slot(conn *c, slot *s)
{
    if (s->owner == NULL) {
        c->deferred_head += s->text_len;
        if (c->deferred_head == c->deferred.len) {
            buf_clear(&c->deferred);
            c->deferred_head = 0;
        }
    } else
        batch_release(c->srv, s->owner);
    if (s->borrowed != NULL)
        chunk_release(c->srv, s->borrowed);
    if (c->kind == CONN_HTTP)
        routes_release(c, s);
    free(s->extra);
    c->slot_head = (c->slot_head + 1) & (c->slot_cap - 1);
    c->slot_count--;
}

void conn_drain(conn *c)
{
    uint32_t rendered = 0;
    while (c->slot_count > 0) {
        slot *s = &c->slots[c->slot_head];
        if (s->owner != NULL && s->owner->state != BATCH_COMPLETED)
            break;
        if (!is_closing(c))
            render(c, s);
        pop_slot(c, s);
        rendered++;
    }
    if (rendered == 0)
        return;
    /* A closing c is freed by server_flush, not here: the caller may still
     * hold c (a batch lists its owner once per op). */
    server_mark_dirty(c->srv, c);
    if (!(c->flags & CONN_READING))
        conn_resume(c);
}

/* ------------------------------------------------------------ closing */

static void unlink_conn(conn *c)
{
    server *srv = c->srv;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->flags & CONN_ON_WAITING) {
        conn **link = &srv->waiting;
        while (*link != c)
            link = &(*link)->waiting_next;
        *link = c->waiting_next;
    }
}

/* Frees c once its handle is closed and no batch refers to it. */
static void maybe_free(conn *c)
{
    if (c->state != CONN_CLOSED || c->slot_count > 0 ||
        (c->flags & (CONN_WRITING | CONN_ON_DIRTY)))
        return;
    server *srv = c->srv;
    unlink_conn(c);
    chunk_release(srv, c->in);
    buf_free(&c->out);
    buf_free(&c->writing);
    buf_free(&c->deferred);
    routes_free_reader(c);
    free(c->slots);
    free(c);
    srv->counters.connections_open--;
    server_maybe_finish(srv);
}

static void on_close(uv_handle_t *handle)
{
    conn *c = handle->data;
    conn_set_state(c, CONN_CLOSED);
    maybe_free(c);
}

void conn_close(conn *c)
{
    if (is_closing(c))
        return;
    conn_set_state(c, CONN_CLOSING);
    c->flags &= ~CONN_READING;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_shutdown(uv_shutdown_t *request, int status)
{
    conn *c = request->data;
    if (status < 0)
        conn_close(c);
}

/* Shuts a rejected client's write side (it sees its reply, then EOF) and
 * drops its input from now on. */
static void shut_write_side(conn *c)
{
    conn_set_state(c, CONN_SHUT);
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    c->flags &= ~CONN_READING;   /* reading is restarted in drop mode */
    uv_read_stop((uv_stream_t *)&c->tcp);
    update_reading(c);
}

/* Every reply owed by c, which takes no more requests, is written: close
 * it or shut it as its state asks; later states have nothing left to do. */
static void end_after_replies(conn *c)
{
    assert(!takes_requests(c) && c->slot_count == 0 && !(c->flags & CONN_WRITING));
    if (c->state == CONN_CLOSE_AFTER_REPLIES)
        conn_close(c);
    else if (c->state == CONN_SHUT_AFTER_REPLIES)
        shut_write_side(c);
}

void conn_close_after_replies(conn *c)
{
    if (c->state == CONN_OPEN)
        conn_set_state(c, CONN_CLOSE_AFTER_REPLIES);
    if (all_written(c))
        end_after_replies(c);
}

void conn_reject(conn *c)
{
    if (c->state == CONN_OPEN || c->state == CONN_CLOSE_AFTER_REPLIES)
        conn_set_state(c, CONN_SHUT_AFTER_REPLIES);
    conn_close_after_replies(c);
}

void conn_stop(conn *c)
{
    if (c->state == CONN_SHUT)
        conn_close(c);   /* its reply is out */
    else
        conn_close_after_replies(c);
}

/* Tells a client the server is closing it, in its protocol (RESP -ERR
 * message, or an HTTP status with word and message), and closes it once
 * that is written; at once if it cannot be queued. */
static void reject_with_error(conn *c, int http_status, const char *http_word, const char *message)
{
    size_t mark = 0;
    buf *out = conn_reply_begin(c, &mark);
    bool queued = c->kind == CONN_RESP
                      ? resp_write_error(out, "ERR", message)
                      : routes_write_error(c, out, http_status, http_word, message, false);
    if (!queued || !conn_reply_end(c, mark)) {
        conn_close(c);
        return;
    }
    conn_reject(c);
}

/* A half-sent request would otherwise just see EOF. */
static void close_idle(conn *c, uint32_t idle_s)
{
    char message[CONN_MESSAGE_MAX];
    snprintf(message, sizeof message, "idle for more than %u s, closing the connection", idle_s);
    log_info("client %llu: %s", (unsigned long long)c->id, message);
    reject_with_error(c, 408, "TIMEOUT", message);
}

uint32_t conn_sweep_idle(server *srv)
{
    uint32_t idle_s = srv->cfg->idle_timeout_s;
    uint64_t limit_ms = (uint64_t)idle_s * 1000;
    uint64_t now = server_now_ms(srv);
    uint32_t closed = 0;
    for (conn *c = srv->conns; c != NULL; c = c->next) {
        /* A rejected client has had its error: one that then stays silent
         * would otherwise hold its place under --maxclients for ever. */
        if (c->state == CONN_SHUT && now - c->last_active_ms >= limit_ms) {
            conn_close(c);
            closed++;
            continue;
        }
        if (!takes_requests(c) || c->slot_count > 0 || (c->flags & CONN_WRITING))
            continue;
        if (now - c->last_active_ms >= limit_ms) {
            close_idle(c, idle_s);
            closed++;
        }
    }
    return closed;
}

/* ------------------------------------------------------------ accepting */

static conn *conn_create(server *srv, conn_kind kind)
{
    conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->slots = malloc(sizeof *c->slots * CONN_SLOTS_INITIAL);
    c->slot_cap = CONN_SLOTS_INITIAL;
    c->in = chunk_get(srv, CONN_CHUNK_BYTES);
    if (c->slots == NULL || c->in == NULL || (kind == CONN_HTTP && !routes_new_reader(c, srv))) {
        free(c->slots);
        if (c->in != NULL)
            chunk_release(srv, c->in);
        free(c);
        return NULL;
    }
    c->srv = srv;
    c->kind = kind;
    c->state = CONN_OPEN;
    c->id = ++srv->next_conn_id;
    c->proto = 2;
    c->authed = srv->cfg->requirepass[0] == '\0';
    c->last_active_ms = server_now_ms(srv);
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->counters.connections_open++;
    return c;
}

/* Answers a client over --maxclients with an error, then closes it. */
static void refuse(conn *c)
{
    c->srv->counters.connections_rejected++;
    reject_with_error(c, 503, "UNAVAILABLE", "max number of clients reached");
    server_flush(c->srv);
}

void conn_accept(server *srv, uv_stream_t *listener, conn_kind kind)
{
    conn *c = conn_create(srv, kind);
    if (c == NULL) {
        log_warn("out of memory accepting a client");
        return;
    }
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    int rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (rc < 0) {
        log_warn("accept failed: %s", uv_strerror(rc));
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    srv->counters.connections_accepted++;
    if (srv->counters.connections_open > srv->cfg->maxclients) {
        refuse(c);
        return;
    }
    update_reading(c);
}
