/*
 * sse.h -- GET /v1/events: the stock events of docs/events.md as a
 * text/event-stream (server-sent events) for dashboards and scripts. Each
 * event is "id: SEQ.PART", "event: <kind>" and "data: <JSON>"; a client
 * that reconnects with Last-Event-ID: SEQ.PART resumes right after that
 * event, and one without it starts at the end of the log (what happens
 * from now on). Embedded stores only.
 *
 * Each stream is a follower of the data folder's flow log of its own
 * (backend/flow_events.h): it loads the newest snapshot and replays the log
 * on a worker thread of libuv's pool, then reads on in the loop, at most
 * SSE_RECORDS_PER_TICK records every SSE_TICK_MS, and never while the
 * connection has more than SSE_OUTPUT_PAUSE bytes unwritten. A follower
 * holds a copy of the store's state, so at most SSE_STREAMS_MAX streams
 * run at once. Touched only on the loop thread (but the opening work).
 */
#ifndef STOCK_SERVER_SSE_H
#define STOCK_SERVER_SSE_H

#include "proto/http.h"
#include "server/conn.h"

#define SSE_STREAMS_MAX 16
#define SSE_TICK_MS 10
#define SSE_RECORDS_PER_TICK 1024
#define SSE_OUTPUT_PAUSE (CONN_OUTPUT_MAX / 2)
#define SSE_HEARTBEAT_MS 15000        /* a comment line, for proxies and the idle sweep */

struct sse_stream;

/* Starts the event stream of GET /v1/events on c, or answers why not
 * (400 for a bad Last-Event-ID, 501 for a store that is not embedded, 503
 * past SSE_STREAMS_MAX). Whatever c sends afterwards is dropped. */
void sse_start(conn *c, const http_request *req);

/* The connection is going away (conn.c frees it): stops and frees its
 * stream, now or once its opening work returns. */
void sse_detach(conn *c);

#endif /* STOCK_SERVER_SSE_H */
