/*
 * sse.c -- GET /v1/events as server-sent events (sse.h): open a follower of
 * the flow log on libuv's pool, then a timer that derives the events of the
 * records written since and appends them to the connection's output.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/embedded_uri.h"
#include "backend/flow_events.h"
#include "lib/message.h"
#include "lib/thresholds.h"
#include "server/log.h"
#include "server/routes.h"
#include "server/sse.h"
#include "server/threshold.h"

typedef struct sse_stream {
    conn *c;                     /* NULL once the connection is gone */
    uv_loop_t *loop;
    uv_work_t work;
    uv_timer_t timer;
    bool opening;                /* the work has not returned yet */
    bool from_now;               /* no Last-Event-ID: start at the log's end */
    uint64_t from_seq;           /* Last-Event-ID's record */
    int64_t skip_part;           /* and its part (-1: none to skip) */
    uint64_t first_seq;          /* what the follower could start from */
    stock_code code;             /* of the opening */
    char message[STOCK_MESSAGE_MAX];
    flow_events *follower;
    thresholds_watch thresholds;
    uint64_t written_ms;         /* the last event or heartbeat */
    char folder[EMBEDDED_PATH_MAX];
    char thresholds_path[EMBEDDED_PATH_MAX + sizeof THRESHOLDS_FILE + 1];
} sse_stream;

/* Streams running or opening, against SSE_STREAMS_MAX (the loop thread's). */
static unsigned streams_open;

static void stream_free(sse_stream *s)
{
    flow_events_close(s->follower);
    thresholds_free(&s->thresholds.current);
    free(s);
    streams_open--;
}

/* "SEQ.PART", both decimal; false for anything else. */
static bool parse_event_id(const char *text, uint64_t *seq, int64_t *part)
{
    char *end = NULL;
    if (text[0] < '0' || text[0] > '9')
        return false;
    unsigned long long s = strtoull(text, &end, 10);
    if (*end != '.' || end[1] < '0' || end[1] > '9')
        return false;
    const char *at = end + 1;
    long long p = strtoll(at, &end, 10);
    if (*end != '\0' || p > UINT32_MAX)
        return false;
    *seq = (uint64_t)s;
    *part = (int64_t)p;
    return true;
}

/* Appends text to c's output, in turn with any earlier replies. */
static void send_text(conn *c, const char *text, size_t len)
{
    size_t mark = 0;
    buf *out = conn_reply_begin(c, &mark);
    if (!buf_append(out, text, len) || !conn_reply_end(c, mark))
        conn_close(c);
}

static void send_event(sse_stream *s, const flow_event *event)
{
    char json[FLOW_EVENT_JSON_MAX];
    flow_event_json(event, json);
    char text[FLOW_EVENT_JSON_MAX + 96];
    int len = snprintf(text, sizeof text, "id: %" PRIu64 ".%" PRIu32 "\nevent: %s\ndata: %s\n\n",
                       event->seq, event->part, flow_event_kind_name(event->kind), json);
    send_text(s->c, text, (size_t)len);
}

/* Derives and sends the events of up to SSE_RECORDS_PER_TICK records;
 * false when the stream has ended (the log cannot be read). */
static bool pump(sse_stream *s)
{
    for (unsigned n = 0; n < SSE_RECORDS_PER_TICK; n++) {
        const flow_event *events = NULL;
        uint32_t count = 0;
        uint64_t seq = 0;
        char message[STOCK_MESSAGE_MAX];
        journal_read_result read = flow_events_next(s->follower, thresholds_watched,
                                                    &s->thresholds, &events, &count, &seq,
                                                    message, sizeof message);
        if (read == JOURNAL_READ_WAIT) {
            if (!thresholds_refresh(&s->thresholds, message, sizeof message))
                log_warn("GET /v1/events: thresholds kept as they were: %s", message);
            return true;
        }
        if (read == JOURNAL_READ_FAILED) {
            log_warn("GET /v1/events: %s; ending the stream", message);
            return false;
        }
        for (uint32_t i = 0; i < count; i++)
            if (!(events[i].seq == s->from_seq && (int64_t)events[i].part <= s->skip_part))
                send_event(s, &events[i]);
        if (count > 0)
            s->written_ms = uv_now(s->loop);
    }
    return true;
}

static void on_tick(uv_timer_t *timer)
{
    sse_stream *s = timer->data;
    conn *c = s->c;
    if (c == NULL || c->state != CONN_OPEN || c->out.len > SSE_OUTPUT_PAUSE)
        return;
    if (!pump(s)) {
        send_text(c, ": the flow log cannot be read\n\n", 31);
        conn_close_after_replies(c);
        return;
    }
    uint64_t now = uv_now(s->loop);
    if (now - s->written_ms >= SSE_HEARTBEAT_MS) {
        send_text(c, ":\n\n", 3);
        s->written_ms = now;
    }
    c->last_active_ms = server_now_ms(c->srv);   /* a live stream is not idle */
}

/* On the pool: open the follower and, without Last-Event-ID, read to the
 * end of the log without sending anything. */
static void open_work(uv_work_t *work)
{
    sse_stream *s = work->data;
    /* A file that does not read is not the stream's failure: it has no
     * thresholds until the file is fixed (the log says why at the first
     * look from the loop, which reads it again: loaded stays false). */
    char message[STOCK_MESSAGE_MAX];
    if (!thresholds_refresh(&s->thresholds, message, sizeof message))
        s->thresholds.loaded = false;
    s->code = flow_events_open(s->folder, s->from_now ? FLOW_EVENTS_FROM_END : s->from_seq,
                               false, &s->follower, &s->first_seq, s->message,
                               sizeof s->message);
    while (s->code == STOCK_OK && s->from_now) {
        const flow_event *events = NULL;
        uint32_t count = 0;
        uint64_t seq = 0;
        journal_read_result read = flow_events_next(s->follower, NULL, NULL, &events, &count,
                                                    &seq, s->message, sizeof s->message);
        if (read == JOURNAL_READ_WAIT)
            break;
        if (read == JOURNAL_READ_FAILED)
            s->code = STOCK_IO;
    }
}

static void on_timer_closed(uv_handle_t *handle)
{
    stream_free(handle->data);
}

static void open_done(uv_work_t *work, int status)
{
    sse_stream *s = work->data;
    s->opening = false;
    conn *c = s->c;
    if (c == NULL || status != 0 || s->code != STOCK_OK) {
        if (c != NULL) {
            log_warn("GET /v1/events: %s", status != 0 ? "cancelled" : s->message);
            size_t mark = 0;
            buf *out = conn_reply_begin(c, &mark);
            if (!routes_write_error(c, out, 503, "UNAVAILABLE", s->message, false) ||
                !conn_reply_end(c, mark))
                conn_close(c);
            else
                conn_close_after_replies(c);
            c->sse = NULL;
        }
        stream_free(s);
        return;
    }
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
    send_text(c, head, sizeof head - 1);
    if (!s->from_now && s->first_seq > s->from_seq) {
        char gap[128];
        int len = snprintf(gap, sizeof gap, ": the events of records %" PRIu64 "..%" PRIu64
                           " are lost: the data folder no longer holds them\n\n",
                           s->from_seq, s->first_seq - 1);
        send_text(c, gap, (size_t)len);
    }
    s->written_ms = uv_now(s->loop);
    uv_timer_init(s->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_tick, 0, SSE_TICK_MS);
}

/* Answers an error at once; the request is done. */
static void refuse(conn *c, const http_request *req, int status, const char *word,
                   const char *message)
{
    size_t mark = 0;
    buf *out = conn_reply_begin(c, &mark);
    if (!routes_write_error(c, out, status, word, message, req->keep_alive) ||
        !conn_reply_end(c, mark))
        conn_close(c);
    else if (!req->keep_alive)
        conn_close_after_replies(c);
}

void sse_start(conn *c, const http_request *req)
{
    sse_stream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        refuse(c, req, 500, "NOMEM", "out of memory");
        return;
    }
    char message[STOCK_MESSAGE_MAX];
    stock_code code = threshold_store_folder(c->srv, s->folder, sizeof s->folder, message,
                                             sizeof message);
    s->skip_part = -1;
    s->from_now = req->last_event_id[0] == '\0';
    if (code != STOCK_OK) {
        refuse(c, req, code == STOCK_UNSUPPORTED ? 501 : 400, stock_code_name(code), message);
    } else if (!s->from_now && !parse_event_id(req->last_event_id, &s->from_seq, &s->skip_part)) {
        refuse(c, req, 400, "INVALID", "Last-Event-ID must be SEQ.PART, as the stream's ids");
        code = STOCK_INVALID;
    } else if (streams_open >= SSE_STREAMS_MAX) {
        snprintf(message, sizeof message, "%d event streams are open already", SSE_STREAMS_MAX);
        refuse(c, req, 503, "UNAVAILABLE", message);
        code = STOCK_UNAVAILABLE;
    }
    if (code != STOCK_OK) {
        free(s);
        return;
    }
    snprintf(s->thresholds_path, sizeof s->thresholds_path, "%s/%s", s->folder, THRESHOLDS_FILE);
    s->thresholds.path = s->thresholds_path;
    s->c = c;
    s->loop = c->srv->loop;
    s->opening = true;
    s->work.data = s;
    c->sse = s;
    streams_open++;
    if (uv_queue_work(s->loop, &s->work, open_work, open_done) != 0) {
        c->sse = NULL;
        stream_free(s);
        refuse(c, req, 500, "IOERR", "cannot start the event stream");
    }
}

void sse_detach(conn *c)
{
    sse_stream *s = c->sse;
    if (s == NULL)
        return;
    c->sse = NULL;
    s->c = NULL;
    if (s->opening)
        return;   /* open_done frees it */
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}
