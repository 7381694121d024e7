/*
 * batch.c -- gathering ops into stock batches, submitting them and handing
 * their completion back to the loop (see batch.h).
 */
#include <assert.h>
#include <stdlib.h>

#include "server/batch.h"
#include "server/hot.h"
#include "server/conn.h"
#include "server/log.h"

/* Appends b to the list from *head to *tail. */
static void list_append(batch **head, batch **tail, batch *b)
{
    b->next = NULL;
    if (*tail != NULL)
        (*tail)->next = b;
    else
        *head = b;
    *tail = b;
}

/* Runs on the store's thread: queue and wake the loop. Inside stock_submit
 * on the loop thread (the embedded store syncs a small batch there), the
 * batch is kept for batch_submit instead: no lock, no wake-up. */
static void on_done(stock_batch *base)
{
    batch *b = base->user;
    server *srv = b->srv;
    assert(&b->base == base);
    if (srv->submitting && pthread_equal(pthread_self(), srv->loop_thread)) {
        list_append(&srv->inline_head, &srv->inline_tail, b);
        return;
    }
    pthread_mutex_lock(&srv->done_lock);
    list_append(&srv->done_head, &srv->done_tail, b);
    pthread_mutex_unlock(&srv->done_lock);
    uv_async_send(&srv->async);
}

/* Loop thread: a batch's results are in; write the replies they allow. */
static void complete(server *srv, batch *b)
{
    assert(b->state == BATCH_SUBMITTED && srv->inflight > 0);
    b->state = BATCH_COMPLETED;
    srv->inflight--;
    metrics_count_batch(&srv->counters, &b->base, (uv_hrtime() - b->submitted_ns) / 1000);
    hot_count_batch(&srv->hot, &b->base, server_now_ms(srv));
    b->unreplied++;   /* hold b while its owners drain */
    /* A connection's ops sit side by side (a pipeline is read in one go):
     * one drain per run of the same owner renders them all. */
    for (uint32_t i = 0; i < b->count; i++)
        if (i == 0 || b->owners[i] != b->owners[i - 1])
            conn_drain(b->owners[i]);
    batch_release(srv, b);
}

/* Lets the connections that waited for batch room read again. */
static void wake_waiting(server *srv)
{
    conn *list = srv->waiting;
    srv->waiting = NULL;
    while (list != NULL) {
        conn *c = list;
        list = c->waiting_next;
        c->flags &= ~CONN_ON_WAITING;
        conn_resume(c);
    }
}

/* Completes the batches of list, writes the replies out, and closes the
 * loop's handles if the server is stopping and this was the last work. */
static void answer(server *srv, batch *list)
{
    while (list != NULL) {
        batch *b = list;
        list = b->next;
        complete(srv, b);
    }
    server_flush(srv);
    server_maybe_finish(srv);
}

static void on_async(uv_async_t *handle)
{
    server *srv = handle->data;
    pthread_mutex_lock(&srv->done_lock);
    batch *list = srv->done_head;
    srv->done_head = srv->done_tail = NULL;
    pthread_mutex_unlock(&srv->done_lock);
    /* No submit here: this runs in the poll phase, and requests read later
     * in the same phase belong in the same batch, which the check phase
     * submits (with any batch held back for BATCH_INFLIGHT_MAX). */
    answer(srv, list);
}

/* The store's syncs completed: its batches complete in this call, in the
 * loop thread, and are answered as those completed inside stock_submit. */
static void on_completions(uv_poll_t *handle, int status, int events)
{
    server *srv = handle->data;
    (void)status, (void)events;   /* an error too is the store's to report */
    srv->submitting = true;
    stock_process_completions(srv->store);
    srv->submitting = false;
    batch *list = srv->inline_head;
    srv->inline_head = srv->inline_tail = NULL;
    answer(srv, list);
}

/* With the store's completion descriptor (io_uring syncs) the loop goes on
 * reading while the disk syncs; without it, stock_submit syncs a small
 * batch in the loop thread. */
static int poll_completions(server *srv)
{
    int fd = srv->cfg->io_uring ? stock_completion_fd(srv->store) : -1;
    /* Said once at start-up; a store that has io_uring and cannot make its
     * ring says why through the library's log. */
    if (fd < 0)
        return 0;
    log_info("fsyncs start through io_uring; the loop reads on while the disk syncs");
    int rc = uv_poll_init(srv->loop, &srv->completions, fd);
    if (rc < 0)
        return rc;
    srv->completions.data = srv;
    srv->polling_completions = true;
    return uv_poll_start(&srv->completions, UV_READABLE, on_completions);
}

int batch_init(server *srv)
{
    int rc = pthread_mutex_init(&srv->done_lock, NULL);
    if (rc != 0)
        return UV_ENOMEM;
    rc = uv_async_init(srv->loop, &srv->async, on_async);
    srv->async.data = srv;
    srv->loop_thread = pthread_self();
    return rc < 0 ? rc : poll_completions(srv);
}

bool batch_has_room(const server *srv)
{
    return srv->gathering == NULL || srv->gathering->count < STOCK_BATCH_MAX;
}

static batch *batch_new(server *srv)
{
    batch *b = srv->free_batches;
    if (b != NULL) {
        srv->free_batches = b->next;
        srv->free_batch_count--;
    } else {
        b = calloc(1, sizeof *b);
        if (b == NULL)
            return NULL;
        b->srv = srv;
    }
    b->count = 0;
    b->unreplied = 0;
    b->state = BATCH_GATHERING;
    b->next = NULL;
    return b;
}

static bool grow(batch *b)
{
    uint32_t cap = b->cap == 0 ? BATCH_OPS_INITIAL : b->cap * 2;
    if (cap > STOCK_BATCH_MAX)
        cap = STOCK_BATCH_MAX;
    assert(cap > b->count);
    stock_op *ops = realloc(b->ops, sizeof *ops * cap);
    if (ops == NULL)
        return false;
    b->ops = ops;
    struct conn **owners = realloc(b->owners, sizeof *owners * cap);
    if (owners == NULL)
        return false;
    b->owners = owners;
    b->cap = cap;
    return true;
}

stock_op *batch_add(server *srv, struct conn *c, batch **owner, uint32_t *index)
{
    assert(batch_has_room(srv));
    if (srv->gathering == NULL) {
        srv->gathering = batch_new(srv);
        if (srv->gathering == NULL)
            return NULL;
    }
    batch *b = srv->gathering;
    if (b->count == b->cap && !grow(b))
        return NULL;
    stock_op *op = &b->ops[b->count];
    memset(op, 0, offsetof(stock_op, code));   /* inputs; outputs are the store's */
    b->owners[b->count] = c;
    *owner = b;
    *index = b->count++;
    return op;
}

void batch_submit(server *srv)
{
    for (;;) {
        batch *b = srv->gathering;
        if (b == NULL || b->count == 0 || srv->inflight >= BATCH_INFLIGHT_MAX)
            return;
        assert(b->unreplied > 0 && b->state == BATCH_GATHERING);
        b->state = BATCH_SUBMITTED;
        srv->gathering = NULL;
        srv->inflight++;
        b->base.ops = b->ops;
        b->base.count = b->count;
        b->base.done = on_done;
        b->base.user = b;
        b->base.next = NULL;
        b->submitted_ns = uv_hrtime();
        srv->submitting = true;
        stock_submit(srv->store, &b->base);
        srv->submitting = false;
        wake_waiting(srv);
        if (srv->inline_head == NULL)
            return;
        /* Completed in the call: reply now. Replies may let connections
         * parse requests they had buffered, which gather a new batch:
         * submit it in this same turn, or it would wait for the next read. */
        batch *list = srv->inline_head;
        srv->inline_head = srv->inline_tail = NULL;
        answer(srv, list);
        if (srv->state == SERVER_STOPPED)
            return;
    }
}

void batch_release(server *srv, batch *b)
{
    assert(b->unreplied > 0);
    if (--b->unreplied > 0 || b->state != BATCH_COMPLETED)
        return;
    /* Keep a few ordinary batches for reuse; a huge one gives its memory back. */
    if (srv->free_batch_count >= BATCH_FREE_MAX || b->cap > BATCH_KEEP_OPS_MAX) {
        free(b->ops);
        free(b->owners);
        free(b);
        return;
    }
    b->next = srv->free_batches;
    srv->free_batches = b;
    srv->free_batch_count++;
}

void batch_fini(server *srv)
{
    assert(srv->inflight == 0);
    if (srv->gathering != NULL) {
        srv->gathering->next = srv->free_batches;
        srv->free_batches = srv->gathering;
        srv->gathering = NULL;
    }
    while (srv->free_batches != NULL) {
        batch *b = srv->free_batches;
        srv->free_batches = b->next;
        free(b->ops);
        free(b->owners);
        free(b);
    }
    pthread_mutex_destroy(&srv->done_lock);
}
