/*
 * routes.h -- stockd's HTTP/JSON front end (docs/http-api.md): reading
 * requests off an HTTP connection, routing them, turning JSON bodies into
 * stock ops, and rendering each op's JSON reply when its batch completes.
 */
#ifndef STOCK_SERVER_ROUTES_H
#define STOCK_SERVER_ROUTES_H

#include "server/conn.h"

/* Creates c->http (an http_reader limited to --max-request-bytes bodies).
 * False on out of memory. */
bool routes_new_reader(conn *c, server *srv);

/* Frees c->http (NULL is fine). */
void routes_free_reader(conn *c);

/* Reads and handles the requests buffered on HTTP connection c, as many as
 * c may take now; a malformed or oversize request is answered and closes c. */
void routes_process(conn *c);

/* Appends the HTTP response to op (complete) as slot s asks, to out. */
void routes_render(conn *c, const slot *s, const stock_op *op, buf *out);

/* Ends what slot s of HTTP connection c holds beyond its memory (the
 * Idempotency-Key it keeps in flight), rendered or not: call it before the
 * slot's extra is freed. */
void routes_release(conn *c, const slot *s);

/* Appends an error response: an RFC 9457 problem object (problem.h)
 * whose code is word and detail message. */
bool routes_write_error(conn *c, buf *out, int status, const char *word,
                        const char *message, bool keep_alive);

#endif /* STOCK_SERVER_ROUTES_H */
