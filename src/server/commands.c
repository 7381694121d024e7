/*
 * commands.c -- the RESP front end: the command table, the read loop of a
 * RESP connection, the store commands (SETSTOCK, ADDSTOCK, DEDUCT, ORDER,
 * REFUND, STOCK, SKUINFO, LINEINFO; holds: HOLD, CONFIRM, RELEASE,
 * CONFIRMORDER, HOLDINFO) and their replies (see commands.h,
 * docs/protocol.md).
 *
 * A store command becomes one stock_op in the gathering batch; its ids point
 * into the read chunk (zero-copy). Numbers that do not parse are passed on
 * as out-of-range values so that stock_validate words the INVALID error, the
 * same words for every front end.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/backup.h"
#include "server/commands.h"
#include "server/listing.h"
#include "server/log.h"
#include "server/session.h"
#include "server/threshold.h"

#define COMMANDS_ERROR_MAX 256     /* bytes of an immediate error message */
#define COMMANDS_NAME_ECHO_MAX 64  /* bytes of a bad command name echoed back */

/* ------------------------------------------------------ immediate replies */

buf *commands_reply_begin(conn *c, size_t *mark)
{
    return conn_reply_begin(c, mark);
}

void commands_reply_end(conn *c, size_t mark, bool ok)
{
    if (!ok || !conn_reply_end(c, mark)) {
        log_warn("client %llu: out of memory for a reply", (unsigned long long)c->id);
        conn_close(c);
    }
}

void commands_reply_error(conn *c, const char *word, const char *format, ...)
{
    char message[COMMANDS_ERROR_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    size_t mark = 0;
    buf *out = conn_reply_begin(c, &mark);
    commands_reply_end(c, mark, resp_write_error(out, word, message));
}

void commands_reply_simple(conn *c, const char *text)
{
    size_t mark = 0;
    buf *out = conn_reply_begin(c, &mark);
    commands_reply_end(c, mark, resp_write_simple(out, text));
}

void commands_reply_integer(conn *c, int64_t value)
{
    size_t mark = 0;
    buf *out = conn_reply_begin(c, &mark);
    commands_reply_end(c, mark, resp_write_integer(out, value));
}

void commands_reply_bulk(conn *c, const char *data, size_t len)
{
    size_t mark = 0;
    buf *out = conn_reply_begin(c, &mark);
    commands_reply_end(c, mark, resp_write_bulk(out, data, len));
}

/* ------------------------------------------------------- store commands */

static stock_id arg_id(resp_arg arg)
{
    return (stock_id){arg.ptr, arg.len};
}

/* The argument's value, or fallback (out of range for the field, so that
 * stock_validate names the field and its range) if it is not a number. */
static int64_t arg_number(resp_arg arg, int64_t fallback)
{
    int64_t value = 0;
    return resp_arg_int64(arg, &value) ? value : fallback;
}

static stock_op *add_op(conn *c, commands_reply kind, void *extra)
{
    stock_op *op = conn_add_op(c, (uint16_t)kind, extra, true);
    if (op == NULL)
        commands_reply_error(c, "NOMEM", "out of memory");
    return op;
}

static void arity_error(conn *c, const char *name)
{
    commands_reply_error(c, "ERR", "wrong number of arguments for '%s' command", name);
}

static void cmd_setstock(conn *c, const resp_request *r)
{
    if (r->argc != 3 && r->argc != 5) {
        arity_error(c, "setstock");
        return;
    }
    if (r->argc == 5 && !resp_arg_is(r->argv[3], "EXPECT")) {
        commands_reply_error(c, "ERR", "syntax error: expected EXPECT current");
        return;
    }
    stock_op *op = add_op(c, COMMANDS_REPLY_AVAILABLE, NULL);
    if (op == NULL)
        return;
    op->type = STOCK_OP_SET;
    op->sku = arg_id(r->argv[1]);
    op->amount = arg_number(r->argv[2], -1);
    if (r->argc == 5) {
        op->has_expect = true;
        op->expect = arg_number(r->argv[4], -1);
    }
}

static void cmd_addstock(conn *c, const resp_request *r)
{
    if (r->argc != 3 && r->argc != 5) {
        arity_error(c, "addstock");
        return;
    }
    if (r->argc == 5 && !resp_arg_is(r->argv[3], "ID")) {
        commands_reply_error(c, "ERR", "syntax error: expected ID adjust_id");
        return;
    }
    stock_op *op = add_op(c, COMMANDS_REPLY_AVAILABLE, NULL);
    if (op == NULL)
        return;
    op->type = STOCK_OP_ADD;
    op->sku = arg_id(r->argv[1]);
    op->amount = arg_number(r->argv[2], 0);
    if (r->argc == 5)
        op->id = arg_id(r->argv[4]);
    else
        op->id = (stock_id){NULL, 0};
}

static void cmd_deduct(conn *c, const resp_request *r)
{
    stock_op *op = add_op(c, COMMANDS_REPLY_AVAILABLE, NULL);
    if (op == NULL)
        return;
    op->type = STOCK_OP_DEDUCT;
    op->id = arg_id(r->argv[1]);
    op->sku = arg_id(r->argv[2]);
    op->amount = arg_number(r->argv[3], 0);
}

static void cmd_order(conn *c, const resp_request *r)
{
    if ((r->argc - 2) % 3 != 0) {
        arity_error(c, "order");
        return;
    }
    uint32_t count = (r->argc - 2) / 3;
    stock_order_line *lines = calloc(count, sizeof *lines);
    if (lines == NULL) {
        commands_reply_error(c, "NOMEM", "out of memory");
        return;
    }
    for (uint32_t i = 0; i < count; i++) {
        lines[i].line_id = arg_id(r->argv[2 + 3 * i]);
        lines[i].sku = arg_id(r->argv[3 + 3 * i]);
        lines[i].qty = arg_number(r->argv[4 + 3 * i], 0);
    }
    stock_op *op = add_op(c, COMMANDS_REPLY_ORDER, lines);
    if (op == NULL)
        return;
    op->type = STOCK_OP_ORDER;
    op->id = arg_id(r->argv[1]);
    op->lines = lines;
    op->line_count = count;
}

static void cmd_refund(conn *c, const resp_request *r)
{
    stock_op *op = add_op(c, COMMANDS_REPLY_AVAILABLE, NULL);
    if (op == NULL)
        return;
    op->type = STOCK_OP_REFUND;
    op->id = arg_id(r->argv[1]);
    op->line = arg_id(r->argv[2]);
    op->amount = arg_number(r->argv[3], 0);
}

static void read_sku(conn *c, const resp_request *r, commands_reply kind)
{
    stock_op *op = add_op(c, kind, NULL);
    if (op == NULL)
        return;
    op->type = STOCK_OP_GET;
    op->sku = arg_id(r->argv[1]);
}

static void cmd_stock(conn *c, const resp_request *r)
{
    read_sku(c, r, COMMANDS_REPLY_STOCK);
}

static void cmd_skuinfo(conn *c, const resp_request *r)
{
    read_sku(c, r, COMMANDS_REPLY_SKUINFO);
}

static void cmd_lineinfo(conn *c, const resp_request *r)
{
    stock_op *op = add_op(c, COMMANDS_REPLY_LINEINFO, NULL);
    if (op == NULL)
        return;
    op->type = STOCK_OP_LINE;
    op->line = arg_id(r->argv[1]);
}

static void cmd_hold(conn *c, const resp_request *r)
{
    stock_op *op = add_op(c, COMMANDS_REPLY_AVAILABLE, NULL);
    if (op == NULL)
        return;
    op->type = STOCK_OP_HOLD;
    op->id = arg_id(r->argv[1]);
    op->sku = arg_id(r->argv[2]);
    op->amount = arg_number(r->argv[3], 0);
    op->expect = arg_number(r->argv[4], 0);
}

/* CONFIRM hold_id [qty]: without qty, the whole hold (0). */
static void cmd_confirm(conn *c, const resp_request *r)
{
    if (r->argc > 3) {
        arity_error(c, "confirm");
        return;
    }
    stock_op *op = add_op(c, COMMANDS_REPLY_AVAILABLE, NULL);
    if (op == NULL)
        return;
    op->type = STOCK_OP_CONFIRM;
    op->id = arg_id(r->argv[1]);
    op->amount = r->argc == 3 ? arg_number(r->argv[2], -1) : 0;
}

static void cmd_release(conn *c, const resp_request *r)
{
    stock_op *op = add_op(c, COMMANDS_REPLY_AVAILABLE, NULL);
    if (op == NULL)
        return;
    op->type = STOCK_OP_RELEASE;
    op->id = arg_id(r->argv[1]);
}

static void cmd_confirmorder(conn *c, const resp_request *r)
{
    if ((r->argc - 2) % 2 != 0) {
        arity_error(c, "confirmorder");
        return;
    }
    uint32_t count = (r->argc - 2) / 2;
    stock_order_line *lines = calloc(count, sizeof *lines);
    if (lines == NULL) {
        commands_reply_error(c, "NOMEM", "out of memory");
        return;
    }
    for (uint32_t i = 0; i < count; i++) {
        lines[i].line_id = arg_id(r->argv[2 + 2 * i]);
        lines[i].qty = arg_number(r->argv[3 + 2 * i], -1);
    }
    stock_op *op = add_op(c, COMMANDS_REPLY_ORDER, lines);
    if (op == NULL)
        return;
    op->type = STOCK_OP_CONFIRM_ORDER;
    op->id = arg_id(r->argv[1]);
    op->lines = lines;
    op->line_count = count;
}

static void cmd_holdinfo(conn *c, const resp_request *r)
{
    stock_op *op = add_op(c, COMMANDS_REPLY_HOLDINFO, NULL);
    if (op == NULL)
        return;
    op->type = STOCK_OP_HOLD_GET;
    op->id = arg_id(r->argv[1]);
}

/* ---------------------------------------------------------------- table */

const commands_entry commands_table[] = {
    {"DEDUCT", 4, AUTH_FULL, cmd_deduct, "Takes qty of a SKU for an order line (idempotent by line id)."},
    {"ORDER", -5, AUTH_FULL, cmd_order, "Takes every line of an order, or none."},
    {"REFUND", 4, AUTH_FULL, cmd_refund, "Gives qty of a deducted line back (idempotent by refund id)."},
    {"STOCK", 2, AUTH_READ_ONLY, cmd_stock, "Returns a SKU's available stock."},
    {"SETSTOCK", -3, AUTH_FULL, cmd_setstock, "Creates a SKU or sets its level, optionally compare-and-set."},
    {"ADDSTOCK", -3, AUTH_FULL, cmd_addstock, "Restocks or writes off a SKU (idempotent by adjustment id)."},
    {"THRESHOLD", -2, AUTH_FULL, threshold_command, "Reads or sets a SKU's threshold for the below-threshold event (an embedded store)."},
    {"SKUINFO", 2, AUTH_READ_ONLY, cmd_skuinfo, "Returns a SKU's available, adjusted, deducted and refunded totals."},
    {"LINEINFO", 2, AUTH_READ_ONLY, cmd_lineinfo, "Returns a deducted line."},
    {"HOLD", 5, AUTH_FULL, cmd_hold, "Holds qty of a SKU for ttl milliseconds (idempotent by hold id)."},
    {"CONFIRM", -2, AUTH_FULL, cmd_confirm, "Turns a hold, or qty of it, into a deducted line with its id."},
    {"RELEASE", 2, AUTH_FULL, cmd_release, "Gives a hold's stock back."},
    {"CONFIRMORDER", -4, AUTH_FULL, cmd_confirmorder, "Confirms every hold of an order, or none."},
    {"HOLDINFO", 2, AUTH_READ_ONLY, cmd_holdinfo, "Returns a hold and its state."},
    {"LIST", -2, AUTH_READ_ONLY, listing_resp, "Lists SKUs, a SKU's lines or an order's lines, a page at a time."},
    {"BACKUP", 2, AUTH_FULL, backup_resp, "Takes an online backup of the store into a new folder on the server."},
    {"STOCKPROTO", 2, AUTH_READ_ONLY, session_stockproto, "Switches replies to tell a replay (for libstock's remote backend)."},
    {"PING", -1, AUTH_READ_ONLY, session_ping, "Returns PONG, or the message."},
    {"ECHO", 2, AUTH_READ_ONLY, session_echo, "Returns the message."},
    {"QUIT", -1, AUTH_NONE, session_quit, "Closes the connection."},
    {"HELLO", -1, AUTH_NONE, session_hello, "Handshakes, optionally authenticating and choosing RESP2 or RESP3."},
    {"AUTH", -2, AUTH_NONE, session_auth, "Authenticates the connection."},
    {"SELECT", 2, AUTH_READ_ONLY, session_select, "Selects database 0, the only one."},
    {"CLIENT", -2, AUTH_READ_ONLY, session_client, "SETNAME, GETNAME, SETINFO, ID."},
    {"COMMAND", -1, AUTH_READ_ONLY, session_command, "Describes the commands."},
    {"CONFIG", -2, AUTH_READ_ONLY, session_config, "CONFIG GET answers appendonly and save."},
    {"INFO", -1, AUTH_READ_ONLY, session_info, "Returns server, client, stats and store information."},
};

const size_t commands_table_count = sizeof commands_table / sizeof commands_table[0];

static const commands_entry *lookup(resp_arg name)
{
    for (size_t i = 0; i < commands_table_count; i++) {
        const commands_entry *entry = &commands_table[i];
        if (resp_arg_is(name, entry->name))
            return entry;
    }
    return NULL;
}

/* The first COMMANDS_NAME_ECHO_MAX bytes of name for an error line, with
 * bytes that are not printable as \xNN: a NUL or CR must not cut or break
 * the reply, and the client should see what it sent. */
static void escape_name(resp_arg name, char text[COMMANDS_NAME_ECHO_MAX * 4 + 1])
{
    uint32_t len = name.len < COMMANDS_NAME_ECHO_MAX ? name.len : COMMANDS_NAME_ECHO_MAX;
    size_t n = 0;
    for (uint32_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name.ptr[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            text[n++] = (char)ch;
        else
            n += (size_t)snprintf(text + n, 5, "\\x%02x", ch);
    }
    text[n] = '\0';
}

/* The command's name in lower case, as Redis words its errors. */
static void lower_name(const commands_entry *entry, char lower[16])
{
    size_t n = strlen(entry->name);
    assert(n < 16);
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)(entry->name[i] | (entry->name[i] >= 'A' && entry->name[i] <= 'Z' ? 0x20 : 0));
}

/* A command c's role does not allow: NOAUTH before AUTH, else NOPERM in
 * Redis's words (the command does not run, so nothing changes). */
static void deny(conn *c, const commands_entry *entry)
{
    if (c->role == AUTH_NONE) {
        commands_reply_error(c, "NOAUTH", "Authentication required.");
        return;
    }
    c->srv->counters.permission_denied++;
    char lower[16];
    lower_name(entry, lower);
    commands_reply_error(c, "NOPERM", "User %s has no permissions to run the '%s' command",
                         auth_user_name(c->srv->cfg, c->role), lower);
}

static bool arity_ok(const commands_entry *entry, uint32_t argc)
{
    return entry->arity > 0 ? argc == (uint32_t)entry->arity
                            : argc >= (uint32_t)-entry->arity;
}

static void execute(conn *c, const resp_request *r)
{
    assert(r->argc >= 1);
    const commands_entry *entry = lookup(r->argv[0]);
    if (entry == NULL) {
        char name[COMMANDS_NAME_ECHO_MAX * 4 + 1];
        escape_name(r->argv[0], name);
        commands_reply_error(c, "ERR", "unknown command '%s'", name);
        return;
    }
    if (c->role < entry->needs) {
        deny(c, entry);
        return;
    }
    if (!arity_ok(entry, r->argc)) {
        char lower[16];
        lower_name(entry, lower);
        arity_error(c, lower);
        return;
    }
    entry->handle(c, r);
}

static void protocol_error(conn *c, const char *error)
{
    c->srv->counters.protocol_errors++;
    log_warn("client %llu: %s; closing it", (unsigned long long)c->id, error);
    commands_reply_error(c, "ERR", "%s", error);
    conn_reject(c);
}

void commands_process(conn *c)
{
    assert(c->kind == CONN_RESP);
    server *srv = c->srv;
    size_t request_max = srv->cfg->max_request_bytes;
    while (conn_can_take(c)) {
        chunk *in = c->in;
        size_t used = 0;
        const char *error = NULL;
        resp_status status = resp_parse(in->data + in->parsed, in->len - in->parsed,
                                        request_max, &srv->request, &used, &error);
        assert(used <= in->len - in->parsed);
        in->parsed += used;
        if (status == RESP_ERROR) {
            protocol_error(c, error);
            return;
        }
        if (status == RESP_DONE && used > request_max) {
            protocol_error(c, "Protocol error: request bigger than max-request-bytes");
            return;
        }
        if (status == RESP_INCOMPLETE) {
            if (in->len - in->parsed > request_max)
                protocol_error(c, "Protocol error: request bigger than max-request-bytes");
            return;
        }
        execute(c, &srv->request);
    }
}

/* ---------------------------------------------------------------- replies */

static bool render_status(conn *c, const stock_op *op, buf *out)
{
    if (!c->stockproto)
        return true;
    return resp_write_array(out, 2) &&
           resp_write_simple(out, op->code == STOCK_REPLAY ? "REPLAY" : "OK");
}

static bool render_order(conn *c, const stock_op *op, buf *out)
{
    bool ok = render_status(c, op, out) && resp_write_array(out, op->line_count);
    for (uint32_t i = 0; ok && i < op->line_count; i++)
        ok = resp_write_integer(out, op->lines[i].available);
    return ok;
}

static bool render_pair(buf *out, const char *field, int64_t value)
{
    return resp_write_bulk(out, field, strlen(field)) && resp_write_integer(out, value);
}

static bool render_skuinfo(conn *c, const stock_sku_info *info, buf *out)
{
    return resp_write_map(out, 5, c->proto) &&
           render_pair(out, "available", info->available) &&
           render_pair(out, "adjusted", info->adjusted) &&
           render_pair(out, "deducted", info->deducted) &&
           render_pair(out, "refunded", info->refunded) &&
           render_pair(out, "held", info->held);
}

static bool render_text(buf *out, const char *field, const char *value)
{
    return resp_write_bulk(out, field, strlen(field)) &&
           resp_write_bulk(out, value, strlen(value));
}

static bool render_holdinfo(conn *c, const stock_hold_info *info, buf *out)
{
    return resp_write_map(out, 7, c->proto) && render_text(out, "sku", info->sku) &&
           render_text(out, "order_id", info->order_id) &&
           render_text(out, "state", stock_hold_state_name(info->state)) &&
           render_pair(out, "qty", info->qty) &&
           render_pair(out, "confirmed", info->confirmed) &&
           render_pair(out, "time_us", info->time_us) &&
           render_pair(out, "deadline_us", info->deadline_us);
}

static bool render_lineinfo(conn *c, const stock_line_info *info, buf *out)
{
    return resp_write_map(out, 6, c->proto) &&
           resp_write_bulk(out, "sku", 3) && resp_write_bulk(out, info->sku, strlen(info->sku)) &&
           resp_write_bulk(out, "order_id", 8) &&
           resp_write_bulk(out, info->order_id, strlen(info->order_id)) &&
           render_pair(out, "qty", info->qty) && render_pair(out, "refunded", info->refunded) &&
           render_pair(out, "time_us", info->time_us) &&
           render_pair(out, "available_after", info->available_after);
}

void commands_render(conn *c, const slot *s, const stock_op *op, buf *out)
{
    assert(c->kind == CONN_RESP && s->owner != NULL);
    bool ok = true;
    if (!stock_code_succeeded(op->code))
        ok = resp_write_error(out, stock_code_name(op->code), op->message);
    else if (s->kind == COMMANDS_REPLY_AVAILABLE)
        ok = render_status(c, op, out) && resp_write_integer(out, op->available);
    else if (s->kind == COMMANDS_REPLY_STOCK)
        ok = resp_write_integer(out, op->info.sku_info.available);
    else if (s->kind == COMMANDS_REPLY_ORDER)
        ok = render_order(c, op, out);
    else if (s->kind == COMMANDS_REPLY_SKUINFO)
        ok = render_skuinfo(c, &op->info.sku_info, out);
    else if (s->kind == COMMANDS_REPLY_LINEINFO)
        ok = render_lineinfo(c, &op->info.line_info, out);
    else {
        assert(s->kind == COMMANDS_REPLY_HOLDINFO);
        ok = render_holdinfo(c, &op->info.hold_info, out);
    }
    if (!ok) {
        log_warn("client %llu: out of memory for a reply", (unsigned long long)c->id);
        conn_close(c);
    }
}
