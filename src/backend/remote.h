/*
 * remote.h -- internals of the remote backend (remote.c): the codec that
 * turns a stock_op into a stockd RESP command and a stockd reply back into
 * the op's outputs. The codec does no I/O, so the connection thread in
 * remote.c is the only place that touches the socket.
 *
 * The wire forms are those of docs/protocol.md with `STOCKPROTO 1` in force:
 * SETSTOCK/ADDSTOCK/DEDUCT/REFUND reply [status, integer], ORDER replies
 * [status, [integer per line]], SKUINFO/LINEINFO a flat field/value array,
 * LIST an array of entries, and errors are "-CODEWORD facts" with
 * CODEWORD = stock_code_name().
 */
#ifndef STOCK_REMOTE_H
#define STOCK_REMOTE_H

#include <hiredis/hiredis.h>

#include "backend/backend.h"
#include "stock.h"

/* Arguments of the longest command: ORDER order_id + 3 per line. */
#define REMOTE_ARGS_MAX (2 + 3 * STOCK_ORDER_LINES_MAX)
/* Room for a decimal int64 and its NUL. */
#define REMOTE_NUMBER_MAX 24

/* One encoded command. argv entries point into the op (ids, borrowed) or
 * into numbers (owned here); lengths are byte counts, no NUL needed. */
typedef struct remote_command {
    int argc;
    const char *argv[REMOTE_ARGS_MAX];
    size_t lengths[REMOTE_ARGS_MAX];
    char numbers[REMOTE_ARGS_MAX][REMOTE_NUMBER_MAX];
} remote_command;

/*
 * Encodes a validated op (code STOCK_OK on entry) as a stockd command.
 * command is overwritten; it borrows op's id bytes, so op must outlive the
 * use of command. Never fails: every valid op has a command.
 */
void remote_encode(const stock_op *op, remote_command *command);

/*
 * Sets op's outputs (code, available, failed_line, info, message) from the
 * server's reply to the command remote_encode made for it. reply is
 * borrowed and not retained. A reply of an unexpected shape completes the
 * op with STOCK_UNAVAILABLE and a message saying the outcome is unknown (the
 * server may have applied it), so the caller knows a retry with the same id
 * is the way to find out.
 */
void remote_decode(stock_op *op, const redisReply *reply);

/*
 * Completes op after the connection was lost once its command may have
 * been sent: STOCK_UNAVAILABLE, with a message that says the outcome is
 * unknown and whether a retry is safe (ops with an id are idempotent).
 * reason (borrowed) says what went wrong, e.g. hiredis's errstr.
 */
void remote_fail_unknown(stock_op *op, const char *reason);

/* Completes op as not sent: STOCK_UNAVAILABLE, "cannot reach stockd at
 * <address>: <reason>; nothing was sent". Both strings are borrowed. */
void remote_fail_unsent(stock_op *op, const char *address, const char *reason);

/* Encodes a validated stock_list call as LIST SKUS|SKULINES of|ORDERLINES
 * of [AFTER after] LIMIT max, borrowing request's ids. */
void remote_encode_list(const list_request *request, remote_command *command);

/*
 * Reads the reply to remote_encode_list's command into entries (up to
 * request->max) and *count; on failure *count is 0 and message (size
 * bytes) says why. Returns STOCK_OK, the code of a "-CODEWORD facts"
 * error, STOCK_UNSUPPORTED for a server that does not know LIST, or
 * STOCK_IO for a reply of another shape.
 */
stock_code remote_decode_list(const list_request *request, const redisReply *reply,
                              stock_list_entry *entries, uint32_t *count,
                              char *message, size_t size);

/* An error reply to a command that is not an op (LIST, BACKUP): a
 * "-CODEWORD facts" error gives its code and the facts in message; an
 * unknown command STOCK_UNSUPPORTED; anything else STOCK_IO, with the
 * text. reply is an error reply. */
stock_code remote_decode_error(const redisReply *reply, const char *command, char *message,
                               size_t size);

#endif /* STOCK_REMOTE_H */
