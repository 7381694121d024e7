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
#include "server/sse.h"
#include "server/tls.h"

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

/* Bytes rendered and not yet written: libuv's pressure on the client. */
static size_t unwritten(const conn *c)
{
    return c->out.len + c->sealed.len + c->writing.len;
}

/* True when no reply is owed or unwritten. */
static bool all_written(const conn *c)
{
    return c->slot_count == 0 && !(c->flags & CONN_WRITING) && c->out.len == 0 &&
           c->sealed.len == 0;
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
    if (c->tls != NULL) {
        /* Ciphertext lands in the server's scratch and is decrypted into
         * c->in at once (on_read), so one buffer serves every client. */
        *out = uv_buf_init(c->srv->tls_read, sizeof c->srv->tls_read);
        return;
    }
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
static void update_reading(conn *c);
static void reject_with_error(conn *c, int http_status, const char *http_word, const char *message);

/* A client that speaks plaintext to a TLS port is told so in plaintext
 * (as nginx does), then closed: it would otherwise see a bare reset. */
static void refuse_plaintext(conn *c)
{
    c->srv->counters.tls_failures++;
    log_warn("client %llu (%s): plaintext on a TLS port; closing it",
             (unsigned long long)c->id, c->peer);
    tls_session_fini(c->tls);
    free(c->tls);
    c->tls = NULL;
    reject_with_error(c, 400, "INVALID", c->kind == CONN_RESP
        ? "this port speaks TLS: connect with TLS (redis-cli --tls)"
        : "a plain HTTP request was sent to the HTTPS port: use https://");
}

/* Decrypts all TLS client c's session holds into c->in, advancing the
 * handshake as it goes. False if c is closing. Decrypting everything now
 * matters: bytes left inside the session would wait for a socket read
 * that may never come. */
static bool decrypt(conn *c)
{
    tls_status status = TLS_DATA;
    char reason[TLS_REASON_MAX];
    if (!tls_ready(c->tls))
        c->srv->handshakes_this_turn++;
    while (status == TLS_DATA) {
        if (!make_room(c)) {
            conn_close(c);
            return false;
        }
        chunk *in = c->in;
        size_t got = 0;
        status = tls_read(c->tls, in->data + in->len, in->cap - in->len, &got, reason, sizeof reason);
        in->len += got;
    }
    server_mark_dirty(c->srv, c);   /* handshake records, an alert */
    if (status == TLS_MORE)
        return true;
    if (status == TLS_FAILED) {
        c->srv->counters.tls_failures++;
        log_warn("client %llu (%s): TLS %s failed: %s; closing it", (unsigned long long)c->id,
                 c->peer, tls_ready(c->tls) ? "session" : "handshake", reason);
        /* The alert that tells the client why goes out before the close. */
        if (!tls_seal(c->tls, &c->out, &c->sealed)) {
            conn_close(c);
            return false;
        }
    }
    conn_close_after_replies(c);   /* TLS_FAILED, or the client's close_notify */
    return false;
}

/* Queues c, whose handshake must wait for a later turn, and stops reading
 * it: its bytes wait in its session. */
static void defer_handshake(conn *c)
{
    server *srv = c->srv;
    assert(!(c->flags & CONN_ON_HANDSHAKES));
    c->flags |= CONN_ON_HANDSHAKES;
    c->handshake_next = NULL;
    if (srv->handshakes_tail != NULL)
        srv->handshakes_tail->handshake_next = c;
    else
        srv->handshakes = c;
    srv->handshakes_tail = c;
    update_reading(c);
    server_defer_handshakes(srv);
}

/* Hands TLS client c's ciphertext to its session and decrypts it, unless
 * this turn's handshake budget is spent. False if there is nothing to
 * process now (c deferred, refused or closing). */
static bool receive_tls(conn *c, const char *data, size_t len)
{
    if (!tls_plausible(c->tls, data, len)) {
        refuse_plaintext(c);
        return false;
    }
    if (!tls_receive(c->tls, data, len)) {
        conn_close(c);
        return false;
    }
    if (!tls_ready(c->tls) && c->srv->handshakes_this_turn >= SERVER_HANDSHAKES_PER_TURN) {
        defer_handshake(c);
        return false;
    }
    return decrypt(c);
}

bool conn_resume_handshakes(server *srv)
{
    while (srv->handshakes != NULL && srv->handshakes_this_turn < SERVER_HANDSHAKES_PER_TURN) {
        conn *c = srv->handshakes;
        srv->handshakes = c->handshake_next;
        if (srv->handshakes == NULL)
            srv->handshakes_tail = NULL;
        c->flags &= ~CONN_ON_HANDSHAKES;
        if (!is_closing(c) && decrypt(c))
            conn_resume(c);
    }
    return srv->handshakes != NULL;
}

/* Reads while c takes requests and has room for more, or while it drops
 * what a shut client still sends. */
static void update_reading(conn *c)
{
    bool want = c->state == CONN_SHUT ||
                (takes_requests(c) && !(c->flags & (CONN_ON_WAITING | CONN_ON_HANDSHAKES)) &&
                 c->slot_count < CONN_PENDING_MAX && unwritten(c) < CONN_OUTPUT_MAX);
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
    conn *c = stream->data;
    if (nread < 0) {
        if (nread != UV_EOF && nread != UV_ECONNRESET)
            log_warn("client %llu: read failed: %s", (unsigned long long)c->id,
                     uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    assert(c->tls != NULL || (size_t)nread <= c->in->cap - c->in->len);
    if (c->state == CONN_SHUT) {
        /* Rejected: the reply is sent and the write side shut; drop what the
         * client still sends so that closing does not reset the reply away. */
        c->discarded += (size_t)nread;
        c->last_active_ms = server_now_ms(c->srv);
        if (c->discarded > CONN_DISCARD_MAX)
            conn_close(c);
        return;
    }
    c->last_active_ms = server_now_ms(c->srv);
    if (c->tls == NULL)
        c->in->len += (size_t)nread;
    else if (nread == 0 || !receive_tls(c, data->base, (size_t)nread)) {
        server_flush(c->srv);
        return;
    }
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
    if (!takes_requests(c) || c->slot_count >= CONN_PENDING_MAX || unwritten(c) >= CONN_OUTPUT_MAX)
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
    c->write_progress_ms = server_now_ms(c->srv);
    buf_clear(&c->writing);
    if (status < 0) {
        conn_close(c);
        maybe_free(c);
        return;
    }
    if (c->out.len > 0 || c->sealed.len > 0)
        conn_flush(c);
    else
        written(c);
    server_flush(c->srv);
    maybe_free(c);
}

/* The bytes for the socket: c->out itself, or on a TLS connection c->out
 * sealed into records (kept as plaintext until the handshake is done).
 * NULL on out of memory. */
static buf *wire_out(conn *c)
{
    if (c->tls == NULL)
        return &c->out;
    return tls_seal(c->tls, &c->out, &c->sealed) ? &c->sealed : NULL;
}

/* Writes what the socket takes of out now, without a write request: a
 * completed uv_write costs an epoll_ctl, uv_try_write does not. False if c
 * failed. */
static bool write_now(conn *c, buf *out)
{
    uv_buf_t data = uv_buf_init((char *)out->data, (unsigned)out->len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &data, 1);
    if (n == UV_EAGAIN)
        return true;
    if (n < 0) {
        conn_close(c);
        return false;
    }
    assert((size_t)n <= out->len);
    memmove(out->data, out->data + n, out->len - (size_t)n);
    out->len -= (size_t)n;
    return true;
}

void conn_flush(conn *c)
{
    if (is_closing(c)) {
        maybe_free(c);   /* the end of a callback: no caller holds c now */
        return;
    }
    if (c->flags & CONN_WRITING)
        return;
    buf *out = wire_out(c);
    if (out == NULL) {
        conn_close(c);
        return;
    }
    if (out->len == 0 || !write_now(c, out))
        return;
    if (out->len == 0) {
        written(c);
        return;
    }
    /* The socket is full: hand the rest to libuv and write later. */
    buf swap = c->writing;
    c->writing = *out;
    *out = swap;
    buf_clear(out);
    uv_buf_t data = uv_buf_init((char *)c->writing.data, (unsigned)c->writing.len);
    c->write_req.data = c;
    int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &data, 1, on_write);
    if (rc < 0) {
        buf_clear(&c->writing);
        conn_close(c);
        return;
    }
    c->flags |= CONN_WRITING;
    c->write_progress_ms = server_now_ms(c->srv);
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

conn_later *conn_add_later(conn *c)
{
    conn_later *later = calloc(1, sizeof *later);
    if (later == NULL || !slot_room(c)) {
        free(later);
        return NULL;
    }
    slot *s = push_slot(c);
    s->later = later;
    return later;
}

void conn_later_done(conn *c, conn_later *later)
{
    assert(!later->done && c->slot_count > 0);
    later->done = true;
    conn_drain(c);
    server_flush(c->srv);
}

/* True once s's reply can be rendered. */
static bool slot_ready(const slot *s)
{
    if (s->later != NULL)
        return s->later->done;
    return s->owner == NULL || s->owner->state == BATCH_COMPLETED;
}

/* Writes one ready slot's reply to c->out. */
static void render(conn *c, slot *s)
{
    if (s->later != NULL) {
        buf_append(&c->out, s->later->text.data, s->later->text.len);
        return;
    }
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
    if (s->later != NULL) {
        buf_free(&s->later->text);
        free(s->later);
    } else if (s->owner == NULL) {
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
        if (!slot_ready(s))
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
    if (c->flags & CONN_ON_HANDSHAKES) {
        conn *before = NULL;
        for (conn *at = srv->handshakes; at != c; at = at->handshake_next)
            before = at;
        *(before != NULL ? &before->handshake_next : &srv->handshakes) = c->handshake_next;
        if (srv->handshakes_tail == c)
            srv->handshakes_tail = before;
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
    buf_free(&c->sealed);
    if (c->tls != NULL) {
        tls_session_fini(c->tls);
        free(c->tls);
    }
    routes_free_reader(c);
    sse_detach(c);
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
    bool ending = c->state == CONN_CLOSE_AFTER_REPLIES || c->state == CONN_SHUT_AFTER_REPLIES;
    if (ending && c->tls != NULL && tls_goodbye(c->tls, &c->sealed)) {
        /* A TLS client learns that the end is deliberate (close_notify);
         * once that is written, this runs again and ends c. */
        server_mark_dirty(c->srv, c);
        return;
    }
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
    if (c->tls != NULL && !tls_ready(c->tls)) {
        conn_close(c);   /* no session to say it in, and it may never come */
        return;
    }
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

/* A client that stopped reading: its replies fill the socket and wait. */
static void close_unread(conn *c, uint32_t idle_s)
{
    log_warn("client %llu: its replies went unread for more than %u s (%zu bytes "
             "waiting), closing the connection", (unsigned long long)c->id, idle_s,
             c->writing.len + c->out.len + c->sealed.len);
    conn_close(c);
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
        if ((c->flags & CONN_WRITING) && now - c->write_progress_ms >= limit_ms) {
            close_unread(c, idle_s);
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

/* A TLS session for c; false on out of memory. */
static bool start_tls(conn *c, SSL_CTX *context)
{
    c->tls = malloc(sizeof *c->tls);
    if (c->tls != NULL && tls_session_init(c->tls, context))
        return true;
    free(c->tls);
    c->tls = NULL;
    return false;
}

static conn *conn_create(server *srv, conn_kind kind, bool tls)
{
    conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->slots = malloc(sizeof *c->slots * CONN_SLOTS_INITIAL);
    c->slot_cap = CONN_SLOTS_INITIAL;
    c->in = chunk_get(srv, CONN_CHUNK_BYTES);
    if (c->slots == NULL || c->in == NULL || (kind == CONN_HTTP && !routes_new_reader(c, srv)) ||
        (tls && !start_tls(c, srv->tls_context))) {
        free(c->slots);
        if (c->in != NULL)
            chunk_release(srv, c->in);
        routes_free_reader(c);
        free(c);
        return NULL;
    }
    c->srv = srv;
    c->kind = kind;
    c->state = CONN_OPEN;
    c->id = ++srv->next_conn_id;
    c->proto = 2;
    c->role = auth_initial_role(srv->cfg);
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

/* Keeps the client's address for the log and the authentication limit. */
static void remember_peer(conn *c)
{
    struct sockaddr_storage address;
    int len = sizeof address;
    int rc = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&address, &len);
    if (rc == 0 && address.ss_family == AF_INET6)
        rc = uv_ip6_name((const struct sockaddr_in6 *)&address, c->peer, sizeof c->peer);
    else if (rc == 0)
        rc = uv_ip4_name((const struct sockaddr_in *)&address, c->peer, sizeof c->peer);
    if (rc != 0)
        snprintf(c->peer, sizeof c->peer, "unknown");
}

void conn_accept(server *srv, uv_stream_t *listener, conn_kind kind, bool tls)
{
    conn *c = conn_create(srv, kind, tls);
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
    remember_peer(c);
    srv->counters.connections_accepted++;
    if (srv->counters.connections_open > srv->cfg->maxclients) {
        refuse(c);
        return;
    }
    update_reading(c);
}
