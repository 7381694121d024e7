/*
 * remote_codec.c -- the remote backend's translation between stock_op and
 * stockd's RESP commands and replies (see remote.h). Everything a server
 * sends is checked before it reaches an op: a reply of the wrong shape never
 * becomes a success.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/remote.h"
#include "lib/result.h"

/* ------------------------------------------------------------- encoding */

static void command_add(remote_command *command, const char *bytes,
                        size_t length)
{
    assert(command->argc < REMOTE_ARGS_MAX);
    command->argv[command->argc] = bytes;
    command->lengths[command->argc] = length;
    command->argc++;
}

static void command_word(remote_command *command, const char *word)
{
    command_add(command, word, strlen(word));
}

static void command_id(remote_command *command, stock_id id)
{
    assert(id.len >= 1 && id.len <= STOCK_ID_MAX);
    command_add(command, id.ptr, id.len);
}

static void command_number(remote_command *command, int64_t value)
{
    assert(command->argc < REMOTE_ARGS_MAX);
    char *text = command->numbers[command->argc];
    int length = snprintf(text, REMOTE_NUMBER_MAX, "%" PRId64, value);
    assert(length > 0 && length < REMOTE_NUMBER_MAX);
    command_add(command, text, (size_t)length);
}

static const char *command_name(stock_op_type type);

/* The commands of holds (docs/protocol.md, the command table). */
static void encode_hold(const stock_op *op, remote_command *command)
{
    command_word(command, command_name(op->type));
    command_id(command, op->id);
    switch (op->type) {
    case STOCK_OP_HOLD:
        command_id(command, op->sku);
        command_number(command, op->amount);
        command_number(command, op->expect);
        break;
    case STOCK_OP_CONFIRM:
        command_number(command, op->amount);
        break;
    case STOCK_OP_CONFIRM_ORDER:
        for (uint32_t i = 0; i < op->line_count; i++) {
            command_id(command, op->lines[i].line_id);
            command_number(command, op->lines[i].qty);
        }
        break;
    default:
        break;   /* RELEASE, HOLDINFO: the id alone */
    }
}

void remote_encode(const stock_op *op, remote_command *command)
{
    assert(op->code == STOCK_OK);
    command->argc = 0;
    switch (op->type) {
    case STOCK_OP_SET:
        command_word(command, "SETSTOCK");
        command_id(command, op->sku);
        command_number(command, op->amount);
        if (op->has_expect) {
            command_word(command, "EXPECT");
            command_number(command, op->expect);
        }
        break;
    case STOCK_OP_ADD:
        command_word(command, "ADDSTOCK");
        command_id(command, op->sku);
        command_number(command, op->amount);
        if (op->id.len != 0) {
            command_word(command, "ID");
            command_id(command, op->id);
        }
        break;
    case STOCK_OP_DEDUCT:
        command_word(command, "DEDUCT");
        command_id(command, op->id);
        command_id(command, op->sku);
        command_number(command, op->amount);
        break;
    case STOCK_OP_ORDER:
        command_word(command, "ORDER");
        command_id(command, op->id);
        for (uint32_t i = 0; i < op->line_count; i++) {
            command_id(command, op->lines[i].line_id);
            command_id(command, op->lines[i].sku);
            command_number(command, op->lines[i].qty);
        }
        break;
    case STOCK_OP_REFUND:
        command_word(command, "REFUND");
        command_id(command, op->id);
        command_id(command, op->line);
        command_number(command, op->amount);
        break;
    case STOCK_OP_GET:
        command_word(command, "SKUINFO");
        command_id(command, op->sku);
        break;
    case STOCK_OP_LINE:
        command_word(command, "LINEINFO");
        command_id(command, op->line);
        break;
    default:
        encode_hold(op, command);
        break;
    }
    assert(command->argc >= 2);
}

/* ---------------------------------------------------- failure messages */

static const char *command_name(stock_op_type type)
{
    switch (type) {
    case STOCK_OP_SET: return "SETSTOCK";
    case STOCK_OP_ADD: return "ADDSTOCK";
    case STOCK_OP_DEDUCT: return "DEDUCT";
    case STOCK_OP_ORDER: return "ORDER";
    case STOCK_OP_REFUND: return "REFUND";
    case STOCK_OP_GET: return "SKUINFO";
    case STOCK_OP_LINE: return "LINEINFO";
    case STOCK_OP_HOLD: return "HOLD";
    case STOCK_OP_CONFIRM: return "CONFIRM";
    case STOCK_OP_RELEASE: return "RELEASE";
    case STOCK_OP_CONFIRM_ORDER: return "CONFIRMORDER";
    case STOCK_OP_HOLD_GET: return "HOLDINFO";
    }
    return "?";
}

/* What a caller may do after an op whose outcome is unknown: ops with an id
 * are idempotent, so their retry finds out; reads change nothing; set and
 * an add without id are not idempotent, so the caller must look first. */
static const char *retry_advice(const stock_op *op)
{
    switch (op->type) {
    case STOCK_OP_GET:
    case STOCK_OP_LINE:
        return "a read changes nothing, so a retry is safe";
    case STOCK_OP_SET:
        return "read the SKU before retrying";
    case STOCK_OP_ADD:
        if (op->id.len == 0)
            return "read the SKU before retrying (an add without id is not idempotent)";
        return "a retry with the same id is safe";
    default:
        return "a retry with the same id is safe";
    }
}

void remote_fail_unknown(stock_op *op, const char *reason)
{
    assert(reason != NULL);
    op->failed_line = -1;
    result_fail(op, STOCK_UNAVAILABLE, "outcome unknown: %s %s (%.100s); %s",
                command_name(op->type),
                op->type == STOCK_OP_GET || op->type == STOCK_OP_LINE
                    ? "got no reply" : "may or may not have been applied",
                reason, retry_advice(op));
}

void remote_fail_unsent(stock_op *op, const char *address, const char *reason)
{
    assert(address != NULL && reason != NULL);
    op->failed_line = -1;
    result_fail(op, STOCK_UNAVAILABLE,
                "cannot reach stockd at %.60s: %.60s; nothing was sent",
                address, reason);
}

/* ---------------------------------------------------- reply primitives */

static bool reply_text_equals(const redisReply *reply, const char *text)
{
    if (reply->type != REDIS_REPLY_STATUS && reply->type != REDIS_REPLY_STRING)
        return false;
    size_t length = strlen(text);
    return reply->len == length && memcmp(reply->str, text, length) == 0;
}

/* Parses all of text[0..length) as a decimal int64. */
static bool parse_int64(const char *text, size_t length, int64_t *value)
{
    char digits[REMOTE_NUMBER_MAX];
    if (length == 0 || length >= sizeof digits)
        return false;
    memcpy(digits, text, length);
    digits[length] = '\0';
    char *end = NULL;
    errno = 0;
    long long parsed = strtoll(digits, &end, 10);
    if (errno != 0 || end != digits + length ||
        !(digits[0] == '-' || (digits[0] >= '0' && digits[0] <= '9')))
        return false;
    *value = (int64_t)parsed;
    return true;
}

/* An integer reply, or a bulk string holding one (RESP2 maps of mixed
 * values carry numbers as strings in some servers). */
static bool reply_int64(const redisReply *reply, int64_t *value)
{
    if (reply->type == REDIS_REPLY_INTEGER) {
        *value = (int64_t)reply->integer;
        return true;
    }
    if (reply->type == REDIS_REPLY_STRING)
        return parse_int64(reply->str, reply->len, value);
    return false;
}

/* Success status: "OK" or "REPLAY". */
static bool reply_status(const redisReply *reply, stock_code *code)
{
    if (reply_text_equals(reply, "OK"))
        *code = STOCK_OK;
    else if (reply_text_equals(reply, "REPLAY"))
        *code = STOCK_REPLAY;
    else
        return false;
    return true;
}

static void unexpected(stock_op *op, const char *expected)
{
    char reason[80];
    snprintf(reason, sizeof reason, "stockd's reply is not %s", expected);
    remote_fail_unknown(op, reason);
}

/* ---------------------------------------------------------- error replies */

/* The value of "key=" among space-separated facts, as an int64. */
static bool fact_int64(const char *facts, const char *key, int64_t *value)
{
    size_t key_length = strlen(key);
    for (const char *at = facts; (at = strstr(at, key)) != NULL; at++) {
        if ((at != facts && at[-1] != ' ') || at[key_length] != '=')
            continue;
        const char *start = at + key_length + 1;
        return parse_int64(start, strcspn(start, " "), value);
    }
    return false;
}

/* The line an order failure names: "line=ID" (or, confirming holds,
 * "hold=ID") by its id, "sku=ID" by the first line on that SKU (as the
 * embedded engine reports it); else -1. */
static int32_t order_failed_line(const stock_op *op, const char *facts)
{
    assert((op->type == STOCK_OP_ORDER || op->type == STOCK_OP_CONFIRM_ORDER) &&
           op->line_count <= STOCK_ORDER_LINES_MAX);
    bool by_line = strncmp(facts, "line=", 5) == 0 || strncmp(facts, "hold=", 5) == 0;
    bool by_sku = strncmp(facts, "sku=", 4) == 0;
    if (!by_line && !by_sku)
        return -1;
    const char *name = facts + (by_line ? 5 : 4);
    size_t length = strcspn(name, " ");
    for (uint32_t i = 0; i < op->line_count; i++) {
        stock_id id = by_line ? op->lines[i].line_id : op->lines[i].sku;
        if (id.len == length && memcmp(id.ptr, name, length) == 0)
            return (int32_t)i;
    }
    return -1;
}

/* The stock_code whose wire word is word[0..length), or STOCK_CODE_COUNT. */
static stock_code code_from_word(const char *word, size_t length)
{
    for (int code = 0; code < STOCK_CODE_COUNT; code++) {
        const char *name = stock_code_name((stock_code)code);
        if (strlen(name) == length && memcmp(name, word, length) == 0)
            return (stock_code)code;
    }
    return STOCK_CODE_COUNT;
}

/* Errors whose first word is not a stock code: Redis-style words. */
static void decode_foreign_error(stock_op *op, const char *text)
{
    if (strncmp(text, "NOAUTH", 6) == 0 || strncmp(text, "WRONGPASS", 9) == 0)
        result_fail(op, STOCK_UNAVAILABLE,
                    "stockd refused the password (%.120s); set ?password= in the URI",
                    text);
    else if (strncmp(text, "NOPERM", 6) == 0)
        result_fail(op, STOCK_UNSUPPORTED, "the URI's user may not %s, nothing changed "
                    "(%.120s); use a user with full access", command_name(op->type), text);
    else if (strstr(text, "unknown command") != NULL)
        result_fail(op, STOCK_UNSUPPORTED, "stockd does not know %s (%.120s)",
                    command_name(op->type), text);
    else
        result_fail(op, STOCK_IO, "stockd refused %s: %.150s",
                    command_name(op->type), text);
}

static void decode_error(stock_op *op, const redisReply *reply)
{
    char text[STOCK_MESSAGE_MAX];
    snprintf(text, sizeof text, "%.*s", (int)reply->len, reply->str);
    size_t word_length = strcspn(text, " ");
    stock_code code = code_from_word(text, word_length);
    if (code == STOCK_CODE_COUNT || stock_code_succeeded(code)) {
        decode_foreign_error(op, text);
        return;
    }
    const char *facts = text + word_length + (text[word_length] == ' ');
    result_fail(op, code, "%s", facts[0] != '\0' ? facts : stock_code_name(code));
    int64_t value = 0;
    if ((code == STOCK_INSUFFICIENT && fact_int64(facts, "available", &value)) ||
        (code == STOCK_MISMATCH && fact_int64(facts, "current", &value)) ||
        (code == STOCK_EXCEEDS && fact_int64(facts, "refundable", &value)) ||
        (code == STOCK_EXCEEDS && fact_int64(facts, "held", &value)))
        op->available = value;
    if (op->type == STOCK_OP_ORDER || op->type == STOCK_OP_CONFIRM_ORDER)
        op->failed_line = order_failed_line(op, facts);
    assert(op->code != STOCK_OK);
}

/* ------------------------------------------------------- success replies */

/* [status, integer] for SET, ADD, DEDUCT, REFUND, HOLD, CONFIRM, RELEASE. */
static void decode_counted(stock_op *op, const redisReply *reply)
{
    assert(op->type != STOCK_OP_ORDER && op->type != STOCK_OP_CONFIRM_ORDER &&
           op->type != STOCK_OP_GET && op->type != STOCK_OP_LINE &&
           op->type != STOCK_OP_HOLD_GET);
    stock_code code = STOCK_OK;
    int64_t available = 0;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        !reply_status(reply->element[0], &code) ||
        reply->element[1]->type != REDIS_REPLY_INTEGER ||
        !reply_int64(reply->element[1], &available) || available < 0) {
        unexpected(op, "[OK|REPLAY, stock level]");
        return;
    }
    op->code = code;
    op->available = available;
}

/* [status, [integer per line]] for ORDER and CONFIRMORDER. */
static void decode_order(stock_op *op, const redisReply *reply)
{
    assert(op->line_count >= 1);
    stock_code code = STOCK_OK;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        !reply_status(reply->element[0], &code) ||
        reply->element[1]->type != REDIS_REPLY_ARRAY ||
        reply->element[1]->elements != op->line_count) {
        unexpected(op, "[OK|REPLAY, [stock level per line]]");
        return;
    }
    const redisReply *levels = reply->element[1];
    for (uint32_t i = 0; i < op->line_count; i++) {
        int64_t available = 0;
        if (levels->element[i]->type != REDIS_REPLY_INTEGER ||
            !reply_int64(levels->element[i], &available) || available < 0) {
            unexpected(op, "[OK|REPLAY, [stock level per line]]");
            return;
        }
        op->lines[i].available = available;
    }
    op->code = code;
}

/* ---------------------------------------------------------- info replies */

/* The value following field name in a flat field/value array, or NULL. */
static const redisReply *field_value(const redisReply *reply, const char *name)
{
    assert(reply->type == REDIS_REPLY_ARRAY && reply->elements % 2 == 0);
    for (size_t i = 0; i + 1 < reply->elements; i += 2)
        if (reply_text_equals(reply->element[i], name))
            return reply->element[i + 1];
    return NULL;
}

static bool field_int64(const redisReply *reply, const char *name,
                        int64_t *value)
{
    const redisReply *field = field_value(reply, name);
    return field != NULL && reply_int64(field, value);
}

/* Copies a string field into a STOCK_ID_MAX + 1 buffer; empty is allowed
 * only when may_be_empty (a line deducted on its own has no order). */
static bool field_id(const redisReply *reply, const char *name,
                     char text[STOCK_ID_MAX + 1], bool may_be_empty)
{
    const redisReply *field = field_value(reply, name);
    if (field == NULL || field->type == REDIS_REPLY_NIL) {
        text[0] = '\0';
        return field != NULL && may_be_empty;
    }
    if (field->type != REDIS_REPLY_STRING && field->type != REDIS_REPLY_STATUS)
        return false;
    stock_id id = {field->str, (uint32_t)field->len};
    if (field->len > STOCK_ID_MAX || (field->len > 0 && !stock_id_valid(id)) ||
        (field->len == 0 && !may_be_empty))
        return false;
    memcpy(text, field->str, field->len);
    text[field->len] = '\0';
    return true;
}

static bool is_field_array(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ARRAY && reply->elements % 2 == 0;
}

static void decode_sku_info(stock_op *op, const redisReply *reply)
{
    assert(op->type == STOCK_OP_GET);
    stock_sku_info *info = &op->info.sku_info;
    if (!is_field_array(reply) ||
        !field_int64(reply, "available", &info->available) ||
        !field_int64(reply, "adjusted", &info->adjusted) ||
        !field_int64(reply, "deducted", &info->deducted) ||
        !field_int64(reply, "refunded", &info->refunded) ||
        info->available < 0 || info->deducted < 0 || info->refunded < 0) {
        memset(info, 0, sizeof *info);
        unexpected(op, "available/adjusted/deducted/refunded fields");
        return;
    }
    /* A stockd older than holds sends no "held": it holds nothing. */
    if (!field_int64(reply, "held", &info->held))
        info->held = 0;
    op->available = info->available;
    op->code = STOCK_OK;
}

static void decode_line_info(stock_op *op, const redisReply *reply)
{
    assert(op->type == STOCK_OP_LINE);
    stock_line_info *info = &op->info.line_info;
    if (!is_field_array(reply) || !field_id(reply, "sku", info->sku, false) ||
        !field_id(reply, "order_id", info->order_id, true) ||
        !field_int64(reply, "qty", &info->qty) ||
        !field_int64(reply, "refunded", &info->refunded) ||
        !field_int64(reply, "time_us", &info->time_us) ||
        !field_int64(reply, "available_after", &info->available_after) ||
        info->qty < 1 || info->refunded < 0 || info->refunded > info->qty ||
        info->available_after < 0) {
        memset(info, 0, sizeof *info);
        unexpected(op, "sku/order_id/qty/refunded/time_us/available_after fields");
        return;
    }
    op->code = STOCK_OK;
}

static void decode_hold_info(stock_op *op, const redisReply *reply)
{
    assert(op->type == STOCK_OP_HOLD_GET);
    stock_hold_info *info = &op->info.hold_info;
    const redisReply *state = is_field_array(reply) ? field_value(reply, "state") : NULL;
    char word[16] = "";
    if (state != NULL && state->type == REDIS_REPLY_STRING && state->len < sizeof word)
        memcpy(word, state->str, state->len);
    if (state == NULL || !result_hold_state_parse(word, &info->state) ||
        !field_id(reply, "sku", info->sku, false) ||
        !field_id(reply, "order_id", info->order_id, true) ||
        !field_int64(reply, "qty", &info->qty) ||
        !field_int64(reply, "confirmed", &info->confirmed) ||
        !field_int64(reply, "time_us", &info->time_us) ||
        !field_int64(reply, "deadline_us", &info->deadline_us) ||
        info->qty < 1 || info->confirmed < 0 || info->confirmed > info->qty) {
        memset(info, 0, sizeof *info);
        unexpected(op, "a hold's fields");
        return;
    }
    op->code = STOCK_OK;
}

void remote_decode(stock_op *op, const redisReply *reply)
{
    assert(op->code == STOCK_OK && reply != NULL);
    if (reply->type == REDIS_REPLY_ERROR) {
        decode_error(op, reply);
        return;
    }
    switch (op->type) {
    case STOCK_OP_SET:
    case STOCK_OP_ADD:
    case STOCK_OP_DEDUCT:
    case STOCK_OP_REFUND:
    case STOCK_OP_HOLD:
    case STOCK_OP_CONFIRM:
    case STOCK_OP_RELEASE:
        decode_counted(op, reply);
        break;
    case STOCK_OP_ORDER:
    case STOCK_OP_CONFIRM_ORDER:
        decode_order(op, reply);
        break;
    case STOCK_OP_HOLD_GET:
        decode_hold_info(op, reply);
        break;
    case STOCK_OP_GET:
        decode_sku_info(op, reply);
        break;
    case STOCK_OP_LINE:
        decode_line_info(op, reply);
        break;
    }
    assert(op->code != STOCK_OK || op->message[0] == '\0');
}

/* ---------------------------------------------------------------- LIST */

void remote_encode_list(const list_request *request, remote_command *command)
{
    static const char *const kinds[] = {"SKUS", "SKULINES", "ORDERLINES", "REFUNDS"};
    assert(request->kind >= STOCK_LIST_SKUS && request->kind <= STOCK_LIST_LINE_REFUNDS);
    command->argc = 0;
    command_word(command, "LIST");
    command_word(command, kinds[request->kind - STOCK_LIST_SKUS]);
    if (request->kind != STOCK_LIST_SKUS)
        command_id(command, request->of);
    if (request->after.ptr != NULL) {
        command_word(command, "AFTER");
        command_id(command, request->after);
    }
    command_word(command, "LIMIT");
    command_number(command, request->max);
}

/* Reads text (a string of at most STOCK_ID_MAX bytes) into out. */
static bool decode_id(const redisReply *text, char out[STOCK_ID_MAX + 1])
{
    if (text->type != REDIS_REPLY_STRING || text->len > STOCK_ID_MAX)
        return false;
    memcpy(out, text->str, text->len);
    out[text->len] = '\0';
    return true;
}

/* A refund: [id, line, qty, available_after]. */
static bool decode_refund(const redisReply *reply, stock_list_entry *entry)
{
    stock_refund_info *refund = &entry->info.refund_info;
    return reply->type == REDIS_REPLY_ARRAY && reply->elements == 4 &&
           decode_id(reply->element[0], entry->id) && decode_id(reply->element[1], refund->line) &&
           reply_int64(reply->element[2], &refund->qty) &&
           reply_int64(reply->element[3], &refund->available_after);
}

/* One entry: [id, 5 totals] for SKUs, [id, sku, order_id, 4 numbers] for
 * lines, [id, line, qty, available_after] for refunds (docs/protocol.md,
 * LIST). */
static bool decode_entry(stock_list_kind kind, const redisReply *reply, stock_list_entry *entry)
{
    if (kind == STOCK_LIST_LINE_REFUNDS)
        return decode_refund(reply, entry);
    size_t fields = kind == STOCK_LIST_SKUS ? 6 : 7;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != fields)
        return false;
    char *targets[3] = {entry->id, entry->info.line_info.sku, entry->info.line_info.order_id};
    size_t text_count = kind == STOCK_LIST_SKUS ? 1 : 3;
    for (size_t i = 0; i < text_count; i++)
        if (!decode_id(reply->element[i], targets[i]))
            return false;
    int64_t numbers[5];
    for (size_t i = 0; i < fields - text_count; i++)
        if (!reply_int64(reply->element[text_count + i], &numbers[i]))
            return false;
    if (kind == STOCK_LIST_SKUS)
        entry->info.sku_info = (stock_sku_info){numbers[0], numbers[1], numbers[2], numbers[3], numbers[4]};
    else {
        stock_line_info *line = &entry->info.line_info;
        line->qty = numbers[0];
        line->refunded = numbers[1];
        line->time_us = numbers[2];
        line->available_after = numbers[3];
    }
    return true;
}

stock_code remote_decode_error(const redisReply *reply, const char *command, char *message,
                               size_t size)
{
    char text[STOCK_MESSAGE_MAX];
    snprintf(text, sizeof text, "%.*s", (int)reply->len, reply->str);
    size_t word_length = strcspn(text, " ");
    stock_code code = code_from_word(text, word_length);
    if (code != STOCK_CODE_COUNT && !stock_code_succeeded(code)) {
        /* A bare word still has to say why: the word is the reason. */
        const char *facts = text + word_length + (text[word_length] == ' ');
        snprintf(message, size, "%s", facts[0] != '\0' ? facts : stock_code_name(code));
        return code;
    }
    if (strstr(text, "unknown command") != NULL) {
        snprintf(message, size, "this stockd does not know %s (%.120s)", command, text);
        return STOCK_UNSUPPORTED;
    }
    snprintf(message, size, "stockd refused %s: %.150s", command, text);
    return STOCK_IO;
}

stock_code remote_decode_list(const list_request *request, const redisReply *reply,
                              stock_list_entry *entries, uint32_t *count,
                              char *message, size_t size)
{
    *count = 0;
    /* A stockd from before the REFUNDS listing takes it for bad syntax. */
    if (reply->type == REDIS_REPLY_ERROR && request->kind == STOCK_LIST_LINE_REFUNDS &&
        strncmp(reply->str, "ERR syntax error", 16) == 0) {
        snprintf(message, size, "this stockd cannot list a line's refunds (LIST REFUNDS)");
        return STOCK_UNSUPPORTED;
    }
    if (reply->type == REDIS_REPLY_ERROR)
        return remote_decode_error(reply, "LIST", message, size);
    bool ok = reply->type == REDIS_REPLY_ARRAY && reply->elements <= request->max;
    for (size_t i = 0; ok && i < reply->elements; i++)
        ok = decode_entry(request->kind, reply->element[i], &entries[i]);
    if (!ok) {
        snprintf(message, size, "stockd's reply to LIST is not an array of up to %u entries",
                 request->max);
        return STOCK_IO;
    }
    *count = (uint32_t)reply->elements;
    return STOCK_OK;
}
