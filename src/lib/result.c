/*
 * result.c -- result codes as words and sentences, and the shared wording of
 * failures (see result.h).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/result.h"

static const char *const code_names[STOCK_CODE_COUNT] = {
    [STOCK_OK] = "OK",
    [STOCK_REPLAY] = "REPLAY",
    [STOCK_INSUFFICIENT] = "INSUFFICIENT",
    [STOCK_NOT_FOUND] = "NOTFOUND",
    [STOCK_CONFLICT] = "CONFLICT",
    [STOCK_EXCEEDS] = "EXCEEDS",
    [STOCK_MISMATCH] = "MISMATCH",
    [STOCK_INVALID] = "INVALID",
    [STOCK_IO] = "IOERR",
    [STOCK_CORRUPT] = "CORRUPT",
    [STOCK_NOMEM] = "NOMEM",
    [STOCK_UNAVAILABLE] = "UNAVAILABLE",
    [STOCK_UNSUPPORTED] = "UNSUPPORTED",
    [STOCK_EXPIRED] = "EXPIRED",
    [STOCK_CLOSED] = "CLOSED",
};

static const char *const code_sentences[STOCK_CODE_COUNT] = {
    [STOCK_OK] = "done",
    [STOCK_REPLAY] = "already done: the original result is returned",
    [STOCK_INSUFFICIENT] = "not enough stock available",
    [STOCK_NOT_FOUND] = "no such SKU or line",
    [STOCK_CONFLICT] = "the id was already used with other parameters",
    [STOCK_EXCEEDS] = "the refund exceeds what is left to refund on the line",
    [STOCK_MISMATCH] = "the current stock differs from the expected value",
    [STOCK_INVALID] = "invalid input: nothing was changed",
    [STOCK_IO] = "an I/O error stopped the operation",
    [STOCK_CORRUPT] = "stored data is damaged",
    [STOCK_NOMEM] = "out of memory",
    [STOCK_UNAVAILABLE] = "the store is closed or unreachable",
    [STOCK_UNSUPPORTED] = "not supported by this backend",
    [STOCK_EXPIRED] = "the hold expired: its stock was given back",
    [STOCK_CLOSED] = "the hold was already confirmed or released",
};

const char *stock_code_name(stock_code code)
{
    if ((unsigned)code >= STOCK_CODE_COUNT)
        return "UNKNOWN";
    return code_names[code];
}

const char *stock_strerror(stock_code code)
{
    if ((unsigned)code >= STOCK_CODE_COUNT)
        return "unknown result code";
    return code_sentences[code];
}

void result_fail(stock_op *op, stock_code code, const char *format, ...)
{
    assert(code != STOCK_OK && code != STOCK_REPLAY);
    va_list args;
    va_start(args, format);
    vsnprintf(op->message, sizeof op->message, format, args);
    va_end(args);
    op->code = code;
}

void result_insufficient(stock_op *op, stock_id sku, int64_t available)
{
    op->available = available;
    result_fail(op, STOCK_INSUFFICIENT, "sku=%.*s available=%" PRId64,
                (int)sku.len, sku.ptr, available);
}

void result_sku_not_found(stock_op *op, stock_id sku)
{
    result_fail(op, STOCK_NOT_FOUND, "sku=%.*s", (int)sku.len, sku.ptr);
}

void result_line_not_found(stock_op *op, stock_id line)
{
    result_fail(op, STOCK_NOT_FOUND, "line=%.*s", (int)line.len, line.ptr);
}

void result_mismatch(stock_op *op, stock_id sku, int64_t current)
{
    op->available = current;
    result_fail(op, STOCK_MISMATCH, "sku=%.*s current=%" PRId64,
                (int)sku.len, sku.ptr, current);
}

void result_exceeds(stock_op *op, stock_id line, int64_t refundable)
{
    op->available = refundable;
    result_fail(op, STOCK_EXCEEDS, "line=%.*s refundable=%" PRId64,
                (int)line.len, line.ptr, refundable);
}

void result_forgotten(stock_op *op, stock_code code, stock_id line)
{
    if (code == STOCK_EXCEEDS) {
        op->available = 0;
        result_fail(op, code, "line=%.*s refundable=0 forgotten", (int)line.len, line.ptr);
        return;
    }
    result_fail(op, code, "line=%.*s forgotten", (int)line.len, line.ptr);
}

void result_overflow(stock_op *op, stock_id sku)
{
    result_fail(op, STOCK_INVALID, "sku=%.*s a stock total would pass %" PRId64,
                (int)sku.len, sku.ptr, INT64_MAX);
}

void result_conflict(stock_op *op, const char *what, stock_id id)
{
    result_fail(op, STOCK_CONFLICT, "%s=%.*s was used with other parameters",
                what, (int)id.len, id.ptr);
}

void result_hold_not_found(stock_op *op, stock_id hold)
{
    result_fail(op, STOCK_NOT_FOUND, "hold=%.*s", (int)hold.len, hold.ptr);
}

void result_hold_forgotten(stock_op *op, stock_code code, stock_id hold)
{
    result_fail(op, code, "hold=%.*s forgotten", (int)hold.len, hold.ptr);
}

void result_hold_expired(stock_op *op, stock_id hold)
{
    result_fail(op, STOCK_EXPIRED, "hold=%.*s", (int)hold.len, hold.ptr);
}

void result_hold_closed(stock_op *op, stock_id hold, stock_hold_state state)
{
    result_fail(op, STOCK_CLOSED, "hold=%.*s state=%s", (int)hold.len,
                hold.ptr, stock_hold_state_name(state));
}

void result_hold_exceeds(stock_op *op, stock_id hold, int64_t held)
{
    op->available = held;
    result_fail(op, STOCK_EXCEEDS, "hold=%.*s held=%" PRId64, (int)hold.len,
                hold.ptr, held);
}

const char *stock_hold_state_name(stock_hold_state state)
{
    switch (state) {
    case STOCK_HOLD_HELD: return "held";
    case STOCK_HOLD_CONFIRMED: return "confirmed";
    case STOCK_HOLD_RELEASED: return "released";
    case STOCK_HOLD_EXPIRED: return "expired";
    }
    return "unknown";
}

bool result_hold_state_parse(const char *name, stock_hold_state *state)
{
    static const stock_hold_state states[] = {
        STOCK_HOLD_HELD, STOCK_HOLD_CONFIRMED, STOCK_HOLD_RELEASED,
        STOCK_HOLD_EXPIRED};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        if (strcmp(name, stock_hold_state_name(states[i])) == 0) {
            *state = states[i];
            return true;
        }
    return false;
}
