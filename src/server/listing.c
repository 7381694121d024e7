/*
 * listing.c -- HTTP listings over stock_list (see listing.h).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/uri.h"
#include "server/commands.h"
#include "server/listing.h"

#define LISTING_QUERY_MAX 1024   /* bytes of a listing's query */

/* What a listing's query asks. */
typedef struct listing_query {
    char after[STOCK_ID_MAX + 2];   /* one byte over, so too long stays too long */
    bool has_after;
    uint32_t limit;
} listing_query;

/* Reads one "key=value" of the query into q; a sentence if it is wrong. */
static const char *read_option(const uri_option *option, listing_query *q)
{
    if (uri_is(option->key, option->key_len, "limit")) {
        uint64_t limit = 0;
        if (!uri_parse_uint(option->value, option->value_len, 1, STOCK_LIST_MAX, &limit))
            return "limit must be an integer in 1..1000";
        q->limit = (uint32_t)limit;
        return NULL;
    }
    if (!uri_is(option->key, option->key_len, "after"))
        return "unknown query parameter: a listing takes after= and limit=";
    q->has_after = true;
    return uri_decode(option->value, option->value_len, q->after, sizeof q->after, NULL);
}

/* Reads req's query into q; NULL, or a sentence saying what is wrong. */
static const char *read_query(const http_request *req, listing_query *q)
{
    *q = (listing_query){.limit = LISTING_LIMIT_DEFAULT};
    struct http_parser_url url;
    http_parser_url_init(&url);
    if (http_parser_parse_url((const char *)req->url.data, req->url.len, 0, &url) != 0)
        return "malformed request URL";
    if (!(url.field_set & (1 << UF_QUERY)))
        return NULL;
    char text[LISTING_QUERY_MAX];
    size_t len = url.field_data[UF_QUERY].len;
    if (len >= sizeof text)
        return "the query exceeds 1023 bytes";
    memcpy(text, req->url.data + url.field_data[UF_QUERY].off, len);
    text[len] = '\0';
    const char *cursor = text;
    uri_option option;
    while (uri_option_next(&cursor, &option)) {
        const char *why = read_option(&option, q);
        if (why != NULL)
            return why;
    }
    return NULL;
}

/* Appends text percent-encoded (all but RFC 3986 unreserved bytes). */
static size_t encode(char *out, size_t size, size_t used, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const char *at = text; *at != '\0' && used + 4 < size; at++) {
        unsigned char byte = (unsigned char)*at;
        if ((byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
            (byte >= '0' && byte <= '9') || strchr("-._~", byte) != NULL) {
            out[used++] = (char)byte;
        } else {
            out[used++] = '%';
            out[used++] = hex[byte >> 4];
            out[used++] = hex[byte & 15];
        }
    }
    out[used] = '\0';
    return used;
}

/* The Link header to the page after `next` (RFC 8288). */
static void next_link(stock_list_kind kind, const char *of, const char *next, uint32_t limit,
                      char link[LISTING_LINK_MAX])
{
    size_t used = (size_t)snprintf(link, LISTING_LINK_MAX, "Link: </v1/%s",
                                   kind == STOCK_LIST_ORDER_LINES ? "orders" : "skus");
    if (of != NULL) {
        used += (size_t)snprintf(link + used, LISTING_LINK_MAX - used, "/");
        used = encode(link, LISTING_LINK_MAX, used, of);
        used += (size_t)snprintf(link + used, LISTING_LINK_MAX - used, "/lines");
    }
    used += (size_t)snprintf(link + used, LISTING_LINK_MAX - used, "?after=");
    used = encode(link, LISTING_LINK_MAX, used, next);
    int tail = snprintf(link + used, LISTING_LINK_MAX - used, "&limit=%u>; rel=\"next\"\r\n", limit);
    assert(tail > 0 && used + (size_t)tail < LISTING_LINK_MAX);
}

static json_t *entry_json(stock_list_kind kind, const stock_list_entry *entry)
{
    if (kind == STOCK_LIST_SKUS) {
        const stock_sku_info *sku = &entry->info.sku_info;
        return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "sku", entry->id,
                         "available", (json_int_t)sku->available, "adjusted", (json_int_t)sku->adjusted,
                         "deducted", (json_int_t)sku->deducted, "refunded", (json_int_t)sku->refunded,
                         "held", (json_int_t)sku->held);
    }
    const stock_line_info *line = &entry->info.line_info;
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "line_id", entry->id, "sku", line->sku,
                     "order_id", line->order_id, "qty", (json_int_t)line->qty,
                     "refunded", (json_int_t)line->refunded, "time_us", (json_int_t)line->time_us,
                     "available_after", (json_int_t)line->available_after);
}

/* The page's body; NULL on out of memory. */
static json_t *page_json(stock_list_kind kind, const stock_list_entry *entries, uint32_t count,
                         const char *next)
{
    json_t *items = json_array();
    for (uint32_t i = 0; items != NULL && i < count; i++)
        if (json_array_append_new(items, entry_json(kind, &entries[i])) != 0) {
            json_decref(items);
            items = NULL;
        }
    return json_pack("{s:o, s:s?}", kind == STOCK_LIST_SKUS ? "skus" : "lines", items,
                     "next", next);
}

stock_code listing_http(stock_t *store, stock_list_kind kind, const char *of,
                        const http_request *req, json_t **body,
                        char link[LISTING_LINK_MAX], char *message)
{
    *body = NULL;
    link[0] = '\0';
    listing_query q;
    const char *why = read_query(req, &q);
    if (why != NULL) {
        snprintf(message, STOCK_MESSAGE_MAX, "%s", why);
        return STOCK_INVALID;
    }
    stock_list_entry *entries = malloc(q.limit * sizeof *entries);
    if (entries == NULL) {
        snprintf(message, STOCK_MESSAGE_MAX, "out of memory");
        return STOCK_NOMEM;
    }
    uint32_t count = 0;
    stock_code code = stock_list(store, kind, of, q.has_after ? q.after : NULL, entries, q.limit,
                                 &count, message);
    /* A full page may have more after it; a short one is the last. */
    const char *next = code == STOCK_OK && count == q.limit ? entries[count - 1].id : NULL;
    if (code == STOCK_OK) {
        *body = page_json(kind, entries, count, next);
        if (*body == NULL) {
            snprintf(message, STOCK_MESSAGE_MAX, "out of memory");
            code = STOCK_NOMEM;
        } else if (next != NULL) {
            next_link(kind, of, next, q.limit, link);
        }
    }
    free(entries);
    return code;
}

/* ------------------------------------------------------------------ RESP */

/* Copies an argument as a C string; one byte over an id's limit is kept,
 * so that too long stays too long for stock_list's check. */
static const char *arg_text(resp_arg arg, char text[STOCK_ID_MAX + 2])
{
    uint32_t keep = arg.len < STOCK_ID_MAX + 1 ? arg.len : STOCK_ID_MAX + 1;
    memcpy(text, arg.ptr, keep);
    text[keep] = '\0';
    return memchr(arg.ptr, '\0', arg.len) != NULL ? "" : text;   /* a NUL byte: invalid */
}

/* [id, 5 totals] for a SKU, [id, sku, order_id, 4 numbers] for a line,
 * [id, line, qty, available_after] for a refund (docs/protocol.md, LIST). */
static bool write_entry(buf *out, stock_list_kind kind, const stock_list_entry *entry)
{
    size_t fields = kind == STOCK_LIST_SKUS ? 6 : kind == STOCK_LIST_LINE_REFUNDS ? 4 : 7;
    bool ok = resp_write_array(out, fields) && resp_write_bulk(out, entry->id, strlen(entry->id));
    if (kind == STOCK_LIST_LINE_REFUNDS) {
        const stock_refund_info *refund = &entry->info.refund_info;
        return ok && resp_write_bulk(out, refund->line, strlen(refund->line)) &&
               resp_write_integer(out, refund->qty) &&
               resp_write_integer(out, refund->available_after);
    }
    if (kind == STOCK_LIST_SKUS) {
        const stock_sku_info *sku = &entry->info.sku_info;
        return ok && resp_write_integer(out, sku->available) && resp_write_integer(out, sku->adjusted) &&
               resp_write_integer(out, sku->deducted) && resp_write_integer(out, sku->refunded) &&
               resp_write_integer(out, sku->held);
    }
    const stock_line_info *line = &entry->info.line_info;
    return ok && resp_write_bulk(out, line->sku, strlen(line->sku)) &&
           resp_write_bulk(out, line->order_id, strlen(line->order_id)) &&
           resp_write_integer(out, line->qty) && resp_write_integer(out, line->refunded) &&
           resp_write_integer(out, line->time_us) && resp_write_integer(out, line->available_after);
}

/* Reads the listing's kind and `of` at argv[1..]; *next is the first
 * option's index. False after replying a syntax error. */
static bool read_kind(conn *c, const resp_request *r, stock_list_kind *kind, uint32_t *next)
{
    static const char *const words[] = {"SKUS", "SKULINES", "ORDERLINES", "REFUNDS"};
    for (int i = 0; i < 4; i++) {
        if (!resp_arg_is(r->argv[1], words[i]))
            continue;
        *kind = (stock_list_kind)(STOCK_LIST_SKUS + i);
        *next = i == 0 ? 2 : 3;
        if (*next <= r->argc)
            return true;
    }
    commands_reply_error(c, "ERR", "syntax error: LIST SKUS | SKULINES sku | ORDERLINES order_id "
                         "| REFUNDS line_id [AFTER id] [LIMIT n]");
    return false;
}

void listing_resp(conn *c, const resp_request *r)
{
    stock_list_kind kind = STOCK_LIST_SKUS;
    uint32_t at = 2;
    if (!read_kind(c, r, &kind, &at))
        return;
    char of[STOCK_ID_MAX + 2], after[STOCK_ID_MAX + 2];
    const char *of_text = kind == STOCK_LIST_SKUS ? NULL : arg_text(r->argv[2], of);
    const char *after_text = NULL;
    int64_t limit = LISTING_LIMIT_DEFAULT;
    for (; at + 1 < r->argc; at += 2) {
        if (resp_arg_is(r->argv[at], "AFTER"))
            after_text = arg_text(r->argv[at + 1], after);
        else if (!resp_arg_is(r->argv[at], "LIMIT") || !resp_arg_int64(r->argv[at + 1], &limit) ||
                 limit < 1 || limit > STOCK_LIST_MAX)
            break;
    }
    if (at != r->argc) {
        commands_reply_error(c, "ERR", "syntax error: options are AFTER id and LIMIT n (1..1000)");
        return;
    }
    stock_list_entry *entries = malloc((size_t)limit * sizeof *entries);
    uint32_t count = 0;
    char message[STOCK_MESSAGE_MAX] = "out of memory";
    stock_code code = entries == NULL ? STOCK_NOMEM
                      : stock_list(c->srv->store, kind, of_text, after_text, entries,
                                   (uint32_t)limit, &count, message);
    if (code != STOCK_OK) {
        commands_reply_error(c, stock_code_name(code), "%s", message);
    } else {
        size_t mark = 0;
        buf *out = commands_reply_begin(c, &mark);
        bool ok = resp_write_array(out, count);
        for (uint32_t i = 0; ok && i < count; i++)
            ok = write_entry(out, kind, &entries[i]);
        commands_reply_end(c, mark, ok);
    }
    free(entries);
}
