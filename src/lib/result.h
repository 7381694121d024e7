/*
 * result.h -- how every backend words a failed operation.
 *
 * A failure's message holds the facts after the code word, in the form the
 * wire protocols print (docs/protocol.md): "sku=A12 available=3". Keeping the
 * wording in one place keeps every backend, and so every front end, saying
 * the same thing.
 */
#ifndef STOCK_RESULT_H
#define STOCK_RESULT_H

#include "stock.h"

/* Sets op->code and a printf-formatted op->message. */
void result_fail(stock_op *op, stock_code code, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* The common failures, worded once. */
void result_insufficient(stock_op *op, stock_id sku, int64_t available);
void result_sku_not_found(stock_op *op, stock_id sku);
void result_line_not_found(stock_op *op, stock_id line);
void result_mismatch(stock_op *op, stock_id sku, int64_t current);
void result_exceeds(stock_op *op, stock_id line, int64_t refundable);
/* A stock total (available or adjusted) of sku would pass INT64_MAX. */
void result_overflow(stock_op *op, stock_id sku);
/* what: "line", "order", "refund", "adjustment" or "hold". */
void result_conflict(stock_op *op, const char *what, stock_id id);
/* A line the embedded engine's cold store has forgotten (past its
 * horizon): "line=L1 forgotten" (EXCEEDS: "line=L1 refundable=0
 * forgotten"). */
void result_forgotten(stock_op *op, stock_code code, stock_id line);
/* Holds: "hold=H", "hold=H state=released", "hold=H held=3". */
void result_hold_not_found(stock_op *op, stock_id hold);
void result_hold_expired(stock_op *op, stock_id hold);
void result_hold_closed(stock_op *op, stock_id hold, stock_hold_state state);
void result_hold_exceeds(stock_op *op, stock_id hold, int64_t held);
/* A hold the embedded engine's cold store has forgotten: "hold=H
 * forgotten" with code (NOT_FOUND for a read, CLOSED for a confirm or a
 * release). */
void result_hold_forgotten(stock_op *op, stock_code code, stock_id hold);
/* The state stock_hold_state_name calls name; false for another word. */
bool result_hold_state_parse(const char *name, stock_hold_state *state);

#endif /* STOCK_RESULT_H */
