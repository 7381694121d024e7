/*
 * commands.h -- stockd's RESP command table (docs/protocol.md): reading
 * requests off a RESP connection, turning store commands into stock ops,
 * and rendering each op's reply when its batch completes. The Redis session
 * commands (PING, HELLO, AUTH, INFO, COMMAND...) live in session.c.
 */
#ifndef STOCK_SERVER_COMMANDS_H
#define STOCK_SERVER_COMMANDS_H

#include "proto/resp.h"
#include "server/auth.h"
#include "server/conn.h"

/* How an op's reply is rendered (slot.kind on RESP connections). */
typedef enum commands_reply {
    COMMANDS_REPLY_AVAILABLE = 1,  /* integer op->available (STOCKPROTO: [status, n]) */
    COMMANDS_REPLY_STOCK,          /* integer info.sku_info.available */
    COMMANDS_REPLY_ORDER,          /* array of lines[i].available */
    COMMANDS_REPLY_SKUINFO,        /* field/value pairs, a map under RESP3 */
    COMMANDS_REPLY_LINEINFO,
    COMMANDS_REPLY_HOLDINFO        /* field/value pairs, a map under RESP3 */
} commands_reply;

/* A command handler: the request's arity is already checked. */
typedef void (*commands_handler)(conn *c, const resp_request *request);

typedef struct commands_entry {
    const char *name;      /* upper case */
    int arity;             /* Redis style: N exact, -N at least N */
    auth_role needs;       /* the least role that may run it */
    commands_handler handle;
    const char *summary;   /* for COMMAND DOCS */
} commands_entry;

/* The table, and its length. Static storage. */
extern const commands_entry commands_table[];
extern const size_t commands_table_count;

/* Parses and executes the requests buffered on RESP connection c, as many
 * as c may take now; a protocol error is answered and closes c. */
void commands_process(conn *c);

/* Appends the reply to op (complete) as slot s asks, to out. */
void commands_render(conn *c, const slot *s, const stock_op *op, buf *out);

/* Immediate replies, in request order (see conn_reply_begin). On out of
 * memory they close c. The error's message is printf-formatted. */
void commands_reply_error(conn *c, const char *word, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
void commands_reply_simple(conn *c, const char *text);
void commands_reply_integer(conn *c, int64_t value);
void commands_reply_bulk(conn *c, const char *data, size_t len);
/* Starts a multi-element immediate reply; end it with commands_reply_end. */
buf *commands_reply_begin(conn *c, size_t *mark);
void commands_reply_end(conn *c, size_t mark, bool ok);

#endif /* STOCK_SERVER_COMMANDS_H */
