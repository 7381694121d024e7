/*
 * routes.c -- the HTTP/JSON front end (see routes.h, docs/http-api.md).
 *
 * Each request is routed by method and path; store routes copy their ids
 * out of the JSON body (or the percent-decoded path) into a `call` that the
 * reply slot owns, so the op can wait in a batch after the request buffers
 * are reused. Values of the wrong JSON type are passed on out of range, so
 * stock_validate words the INVALID error exactly as over RESP.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "lib/uri.h"
#include "proto/http.h"
#include "server/etag.h"
#include "server/idempotency.h"
#include "server/listing.h"
#include "server/log.h"
#include "server/problem.h"
#include "server/routes.h"

#define ROUTES_ID_BYTES (STOCK_ID_MAX + 2)  /* 65 bytes kept, so too long stays too long */
#define ROUTES_SEGMENTS_MAX 5
#define ROUTES_MESSAGE_MAX 256
#define ROUTES_ALLOW_MAX 64   /* "Allow: GET, PUT\r\n": every method a path has */
#define ROUTES_JSON_TYPE "application/json"
#define ROUTES_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* What a route does. A store route is also its slot's kind, which says
 * how the op's reply is rendered (kind 0 is a ready text reply's, so no
 * route takes it); health, metrics and listings are answered at once, with
 * no op. */
typedef enum route_kind {
    ROUTE_SET = 1, ROUTE_GET, ROUTE_ADD, ROUTE_DEDUCT, ROUTE_ORDER, ROUTE_REFUND, ROUTE_LINE,
    ROUTE_HEALTH, ROUTE_METRICS, ROUTE_LIST_SKUS, ROUTE_LIST_SKU_LINES, ROUTE_LIST_ORDER_LINES
} route_kind;

typedef struct id_copy {
    char text[ROUTES_ID_BYTES];
} id_copy;

/* What a store request keeps until its reply is written (slot.extra). */
typedef struct call {
    bool keep_alive;
    bool keyed;                /* the op's id came from Idempotency-Key */
    bool if_match;             /* a PUT's expect came from If-Match */
    idempotency_entry key;     /* in flight while keyed */
    id_copy sku, id, line;
    stock_order_line *lines;   /* ORDER: line_count entries after the call */
    id_copy *line_ids;         /* ORDER: 2 per line, line id then sku */
} call;

/* A path split at '/', each segment percent-decoded. */
typedef struct path {
    uint32_t count;
    struct { char text[ROUTES_ID_BYTES * 3]; size_t len; } segment[ROUTES_SEGMENTS_MAX];
} path;

bool routes_new_reader(conn *c, server *srv)
{
    c->http = malloc(sizeof *c->http);
    if (c->http == NULL)
        return false;
    http_reader_init(c->http, srv->cfg->max_request_bytes);
    return true;
}

void routes_free_reader(conn *c)
{
    if (c->http == NULL)
        return;
    http_reader_free(c->http);
    free(c->http);
    c->http = NULL;
}

/* ------------------------------------------------------------ responses */

/* Appends a response with body (a success's JSON, or an error's problem
 * object for a status of 400 or more); takes body's reference. */
static bool write_json(buf *out, int status, json_t *body, const char *extra, bool keep_alive)
{
    if (body == NULL)
        return false;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL)
        return false;
    const char *type = status >= 400 ? PROBLEM_CONTENT_TYPE : ROUTES_JSON_TYPE;
    bool ok = http_write_response(out, status, type, extra, text, strlen(text), keep_alive);
    free(text);
    return ok;
}

bool routes_write_error(conn *c, buf *out, int status, const char *word,
                        const char *message, bool keep_alive)
{
    (void)c;
    const char *extra = status == 401 ? "WWW-Authenticate: Bearer realm=\"stockd\"\r\n" : NULL;
    return write_json(out, status, problem_json(status, word, message), extra, keep_alive);
}

/* Ends a response written after conn_reply_begin's mark: closes c if it
 * could not be written, or once it is sent if the client asked to close. */
static void reply_finish(conn *c, size_t mark, bool written, bool keep_alive)
{
    if (!written || !conn_reply_end(c, mark)) {
        conn_close(c);
        return;
    }
    if (!keep_alive)
        conn_close_after_replies(c);
}

/* Queues an immediate error response. */
static void reply_error(conn *c, bool keep_alive, int status, const char *word, const char *message)
{
    size_t mark = 0;
    buf *out = conn_reply_begin(c, &mark);
    reply_finish(c, mark, routes_write_error(c, out, status, word, message, keep_alive), keep_alive);
}

/* Queues an immediate JSON response with extra headers (or NULL); takes
 * body's reference. */
static void reply_json(conn *c, bool keep_alive, int status, json_t *body, const char *extra)
{
    size_t mark = 0;
    buf *out = conn_reply_begin(c, &mark);
    reply_finish(c, mark, write_json(out, status, body, extra, keep_alive), keep_alive);
}

static void reply_text(conn *c, bool keep_alive, const char *type, const char *body, size_t len)
{
    size_t mark = 0;
    buf *out = conn_reply_begin(c, &mark);
    reply_finish(c, mark, http_write_response(out, 200, type, NULL, body, len, keep_alive), keep_alive);
}

/* Tells a client that sent "Expect: 100-continue" to send its body. */
static void reply_continue(conn *c)
{
    static const char text[] = "HTTP/1.1 100 Continue\r\n\r\n";
    size_t mark = 0;
    buf *out = conn_reply_begin(c, &mark);
    if (!buf_append(out, text, sizeof text - 1) || !conn_reply_end(c, mark))
        conn_close(c);
}

/* ------------------------------------------------------------ parsing */

typedef enum path_status { PATH_OK, PATH_MALFORMED, PATH_NO_ROUTE } path_status;

/* Splits the URL's path and percent-decodes each segment (lib/uri.h: a bad
 * escape or %00 makes the path malformed, *why says which). A segment
 * longer than its buffer is cut there: the cut segment is still over any
 * id's limit, so the id check, not a vague "malformed", answers it. A path
 * with more segments than any route has is no route. */
static path_status split_path(const http_request *req, path *p, const char **why)
{
    *why = NULL;
    struct http_parser_url url;
    http_parser_url_init(&url);
    if (http_parser_parse_url((const char *)req->url.data, req->url.len, 0, &url) != 0 ||
        !(url.field_set & (1 << UF_PATH)))
        return PATH_MALFORMED;
    const char *text = (const char *)req->url.data + url.field_data[UF_PATH].off;
    size_t len = url.field_data[UF_PATH].len;
    p->count = 0;
    for (size_t i = 0; i < len;) {
        if (text[i++] != '/')
            return PATH_MALFORMED;
        if (p->count == ROUTES_SEGMENTS_MAX)
            return PATH_NO_ROUTE;
        const char *slash = memchr(text + i, '/', len - i);
        size_t end = slash != NULL ? (size_t)(slash - text) : len;
        size_t decoded = 0;
        *why = uri_decode(text + i, end - i, p->segment[p->count].text,
                          sizeof p->segment[0].text, &decoded);
        if (*why != NULL)
            return PATH_MALFORMED;
        size_t kept = sizeof p->segment[0].text - 1;
        p->segment[p->count++].len = decoded < kept ? decoded : kept;
        i = end;
    }
    return PATH_OK;
}

static bool segment_is(const path *p, uint32_t i, const char *word)
{
    return i < p->count && strcmp(p->segment[i].text, word) == 0;
}

static stock_id copy_id(id_copy *target, const char *text, size_t len)
{
    size_t keep = len < sizeof target->text - 1 ? len : sizeof target->text - 1;
    memcpy(target->text, text, keep);
    target->text[keep] = '\0';
    return (stock_id){target->text, (uint32_t)keep};
}

/* The string field key of object, copied; absent or not a string: "". */
static stock_id json_id(json_t *object, const char *key, id_copy *target)
{
    json_t *value = json_object_get(object, key);
    if (!json_is_string(value))
        return copy_id(target, "", 0);
    return copy_id(target, json_string_value(value), json_string_length(value));
}

/* The integer field key of object; absent or not an integer: fallback. */
static int64_t json_number(json_t *object, const char *key, int64_t fallback)
{
    json_t *value = json_object_get(object, key);
    return json_is_integer(value) ? (int64_t)json_integer_value(value) : fallback;
}

/* Checks that object has no field outside allowed (NULL-terminated). */
static bool only_fields(json_t *object, const char *const *allowed, char *message, size_t size)
{
    const char *key = NULL;
    json_t *value = NULL;
    json_object_foreach(object, key, value) {
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known) {
            snprintf(message, size, "unknown field '%.64s'", key);
            return false;
        }
    }
    return true;
}

/* Parses the body: a JSON object with no field outside allowed. Replies
 * 400 and returns NULL otherwise. */
static json_t *load_body(conn *c, const http_request *req, const char *const *allowed)
{
    char message[ROUTES_MESSAGE_MAX];
    json_error_t error;
    json_t *body = req->body.len == 0 ? NULL
                   : json_loadb((const char *)req->body.data, req->body.len,
                                JSON_REJECT_DUPLICATES, &error);
    if (req->body.len == 0)
        snprintf(message, sizeof message, "the body is empty: send a JSON object");
    else if (body == NULL)
        snprintf(message, sizeof message, "the body is not valid JSON: %s (byte %d)",
                 error.text, error.position);
    else if (!json_is_object(body))
        snprintf(message, sizeof message, "the body must be a JSON object");
    else if (only_fields(body, allowed, message, sizeof message))
        return body;
    json_decref(body);
    reply_error(c, req->keep_alive, 400, "INVALID", message);
    return NULL;
}

/* A call with room for line_count order lines; its op in the batch. */
static stock_op *new_call_op(conn *c, const http_request *req, route_kind kind,
                             uint32_t line_count, call **made)
{
    size_t size = sizeof(call) + line_count * (sizeof(stock_order_line) + 2 * sizeof(id_copy));
    call *cl = calloc(1, size);
    stock_op *op = cl != NULL ? conn_add_op(c, (uint16_t)kind, cl, false) : NULL;
    if (op == NULL) {
        reply_error(c, req->keep_alive, 500, "NOMEM", "out of memory");
        return NULL;
    }
    cl->keep_alive = req->keep_alive;
    cl->lines = (stock_order_line *)(cl + 1);
    cl->line_ids = (id_copy *)(cl->lines + line_count);
    *made = cl;
    if (!req->keep_alive)
        conn_close_after_replies(c);
    return op;
}

/* Checks a POST's Idempotency-Key (idempotency.h) into key ("" when the
 * request has none): it must be an id, equal to the body's field when that
 * is given too, and not in flight. Replies 400 or 409 and returns false
 * otherwise. */
static bool admit_key(conn *c, const http_request *req, json_t *body, const char *field,
                      route_kind kind, char key[ROUTES_ID_BYTES])
{
    key[0] = '\0';
    if (req->idempotency_key[0] == '\0')
        return true;
    char message[ROUTES_MESSAGE_MAX];
    const char *why = idempotency_parse(req->idempotency_key, key, ROUTES_ID_BYTES);
    json_t *id = json_object_get(body, field);
    if (why != NULL) {
        reply_error(c, req->keep_alive, 400, "INVALID", why);
    } else if (id != NULL && !(json_is_string(id) && json_string_length(id) == strlen(key) &&
                               strcmp(json_string_value(id), key) == 0)) {
        snprintf(message, sizeof message,
                 "Idempotency-Key '%s' differs from %s: send one of them, or both the same", key, field);
        reply_error(c, req->keep_alive, 400, "INVALID", message);
    } else if (idempotency_in_flight((uint16_t)kind, key)) {
        snprintf(message, sizeof message,
                 "a request with Idempotency-Key '%s' is in progress: retry once it is answered", key);
        reply_error(c, req->keep_alive, 409, "INFLIGHT", message);
    } else {
        return true;
    }
    return false;
}

/* The op's id: the admitted key, registered in flight until the reply;
 * else the body's field ("" when absent: stock_validate words it). */
static stock_id key_or_field(call *cl, route_kind kind, const char *key, json_t *body,
                             const char *field, id_copy *target)
{
    if (key[0] == '\0')
        return json_id(body, field, target);
    cl->keyed = true;
    idempotency_begin(&cl->key, (uint16_t)kind, key);
    return copy_id(target, key, strlen(key));
}

/* Reads a PUT's If-Match into *level (etag.h): true if the request has
 * none or a usable one; replies 400 and returns false otherwise. */
static bool admit_if_match(conn *c, const http_request *req, json_t *body, int64_t *level)
{
    if (req->if_match[0] == '\0')
        return true;
    const char *why = json_object_get(body, "expect") != NULL
                          ? "give expect or If-Match, not both"
                          : etag_if_match_level(req->if_match, level);
    if (why == NULL)
        return true;
    reply_error(c, req->keep_alive, 400, "INVALID", why);
    return false;
}

static void route_set(conn *c, const http_request *req, const path *p)
{
    static const char *const allowed[] = {"available", "expect", NULL};
    json_t *body = load_body(c, req, allowed);
    int64_t level = -1;
    call *cl = NULL;
    stock_op *op = body != NULL && admit_if_match(c, req, body, &level)
                       ? new_call_op(c, req, ROUTE_SET, 0, &cl) : NULL;
    if (op != NULL) {
        op->type = STOCK_OP_SET;
        op->sku = copy_id(&cl->sku, p->segment[2].text, p->segment[2].len);
        op->amount = json_number(body, "available", -1);
        cl->if_match = req->if_match[0] != '\0';
        op->has_expect = cl->if_match || json_object_get(body, "expect") != NULL;
        op->expect = cl->if_match ? level : json_number(body, "expect", -1);
    }
    json_decref(body);
}

static void route_add(conn *c, const http_request *req, const path *p)
{
    static const char *const allowed[] = {"delta", "id", NULL};
    json_t *body = load_body(c, req, allowed);
    if (body == NULL)
        return;
    json_t *id = json_object_get(body, "id");
    char key[ROUTES_ID_BYTES];
    call *cl = NULL;
    stock_op *op = NULL;
    if (id != NULL && !json_is_string(id))
        reply_error(c, req->keep_alive, 400, "INVALID", "adjustment id must be a string");
    else if (admit_key(c, req, body, "id", ROUTE_ADD, key))
        op = new_call_op(c, req, ROUTE_ADD, 0, &cl);
    if (op != NULL) {
        op->type = STOCK_OP_ADD;
        op->sku = copy_id(&cl->sku, p->segment[2].text, p->segment[2].len);
        op->amount = json_number(body, "delta", 0);
        op->id = id != NULL || key[0] != '\0' ? key_or_field(cl, ROUTE_ADD, key, body, "id", &cl->id)
                                               : (stock_id){NULL, 0};
    }
    json_decref(body);
}

static void route_deduct(conn *c, const http_request *req)
{
    static const char *const allowed[] = {"line_id", "sku", "qty", NULL};
    json_t *body = load_body(c, req, allowed);
    char key[ROUTES_ID_BYTES] = "";
    call *cl = NULL;
    stock_op *op = body != NULL && admit_key(c, req, body, "line_id", ROUTE_DEDUCT, key)
                       ? new_call_op(c, req, ROUTE_DEDUCT, 0, &cl) : NULL;
    if (op != NULL) {
        op->type = STOCK_OP_DEDUCT;
        op->id = key_or_field(cl, ROUTE_DEDUCT, key, body, "line_id", &cl->id);
        op->sku = json_id(body, "sku", &cl->sku);
        op->amount = json_number(body, "qty", 0);
    }
    json_decref(body);
}

static void route_refund(conn *c, const http_request *req)
{
    static const char *const allowed[] = {"refund_id", "line_id", "qty", NULL};
    json_t *body = load_body(c, req, allowed);
    char key[ROUTES_ID_BYTES] = "";
    call *cl = NULL;
    stock_op *op = body != NULL && admit_key(c, req, body, "refund_id", ROUTE_REFUND, key)
                       ? new_call_op(c, req, ROUTE_REFUND, 0, &cl) : NULL;
    if (op != NULL) {
        op->type = STOCK_OP_REFUND;
        op->id = key_or_field(cl, ROUTE_REFUND, key, body, "refund_id", &cl->id);
        op->line = json_id(body, "line_id", &cl->line);
        op->amount = json_number(body, "qty", 0);
    }
    json_decref(body);
}

/* Checks that every order line is an object of known fields only, so that
 * a typo in a line is refused like one in the body; replies 400 with the
 * line's index as failed_line otherwise. The values are checked by
 * stock_submit, which names the line the same way. */
static bool lines_well_formed(conn *c, const http_request *req, json_t *lines, size_t count)
{
    static const char *const allowed[] = {"line_id", "sku", "qty", NULL};
    char field[ROUTES_MESSAGE_MAX / 2], message[ROUTES_MESSAGE_MAX];
    for (size_t i = 0; i < count; i++) {
        json_t *line = json_array_get(lines, i);
        if (json_is_object(line) && only_fields(line, allowed, field, sizeof field))
            continue;
        if (!json_is_object(line))
            snprintf(message, sizeof message, "line %zu: must be a JSON object", i + 1);
        else
            snprintf(message, sizeof message, "line %zu: %s", i + 1, field);
        json_t *body = problem_json(400, "INVALID", message);
        if (body != NULL)
            json_object_set_new(body, "failed_line", json_integer((json_int_t)i));
        reply_json(c, req->keep_alive, 400, body, NULL);
        return false;
    }
    return true;
}

static void fill_lines(call *cl, json_t *lines, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        json_t *line = json_array_get(lines, i);
        cl->lines[i].line_id = json_id(line, "line_id", &cl->line_ids[2 * i]);
        cl->lines[i].sku = json_id(line, "sku", &cl->line_ids[2 * i + 1]);
        cl->lines[i].qty = json_number(line, "qty", 0);
    }
}

static void route_order(conn *c, const http_request *req)
{
    static const char *const allowed[] = {"order_id", "lines", NULL};
    json_t *body = load_body(c, req, allowed);
    if (body == NULL)
        return;
    json_t *lines = json_object_get(body, "lines");
    size_t count = json_is_array(lines) ? json_array_size(lines) : 0;
    char key[ROUTES_ID_BYTES] = "";
    call *cl = NULL;
    stock_op *op = NULL;
    if (count > STOCK_ORDER_LINES_MAX)
        reply_error(c, req->keep_alive, 400, "INVALID", "an order must have 1..100 lines");
    else if (lines_well_formed(c, req, lines, count) &&
             admit_key(c, req, body, "order_id", ROUTE_ORDER, key))
        op = new_call_op(c, req, ROUTE_ORDER, (uint32_t)count, &cl);
    if (op != NULL) {
        op->type = STOCK_OP_ORDER;
        op->id = key_or_field(cl, ROUTE_ORDER, key, body, "order_id", &cl->id);
        fill_lines(cl, lines, (uint32_t)count);
        op->lines = cl->lines;
        op->line_count = (uint32_t)count;
    }
    json_decref(body);
}

static void route_read(conn *c, const http_request *req, const path *p, route_kind kind)
{
    call *cl = NULL;
    stock_op *op = new_call_op(c, req, kind, 0, &cl);
    if (op == NULL)
        return;
    op->type = kind == ROUTE_GET ? STOCK_OP_GET : STOCK_OP_LINE;
    if (kind == ROUTE_GET)
        op->sku = copy_id(&cl->sku, p->segment[2].text, p->segment[2].len);
    else
        op->line = copy_id(&cl->line, p->segment[2].text, p->segment[2].len);
}

static void route_metrics(conn *c, const http_request *req)
{
    buf text = {0};
    if (!metrics_render(&c->srv->counters, c->srv->store, &text))
        reply_error(c, req->keep_alive, 500, "NOMEM", "out of memory");
    else
        reply_text(c, req->keep_alive, ROUTES_METRICS_TYPE, (const char *)text.data, text.len);
    buf_free(&text);
}

static int status_of(stock_code code);

/* A listing page (listing.h), answered at once. */
static void route_list(conn *c, const http_request *req, const path *p, route_kind kind)
{
    stock_list_kind list = kind == ROUTE_LIST_SKUS       ? STOCK_LIST_SKUS
                           : kind == ROUTE_LIST_SKU_LINES ? STOCK_LIST_SKU_LINES
                                                          : STOCK_LIST_ORDER_LINES;
    const char *of = list == STOCK_LIST_SKUS ? NULL : p->segment[2].text;
    json_t *body = NULL;
    char link[LISTING_LINK_MAX], message[STOCK_MESSAGE_MAX];
    stock_code code = listing_http(c->srv->store, list, of, req, &body, link, message);
    if (code == STOCK_OK)
        reply_json(c, req->keep_alive, 200, body, link[0] != '\0' ? link : NULL);
    else
        reply_error(c, req->keep_alive, status_of(code), stock_code_name(code), message);
}

/* ------------------------------------------------------------ routing */

typedef struct route_entry {
    const char *pattern[4];      /* "*" matches one segment (an id) */
    uint32_t count;
    enum http_method method;
    route_kind kind;
} route_entry;

static const route_entry route_table[] = {
    {{"healthz"}, 1, HTTP_GET, ROUTE_HEALTH},
    {{"metrics"}, 1, HTTP_GET, ROUTE_METRICS},
    {{"v1", "skus"}, 2, HTTP_GET, ROUTE_LIST_SKUS},
    {{"v1", "skus", "*"}, 3, HTTP_PUT, ROUTE_SET},
    {{"v1", "skus", "*"}, 3, HTTP_GET, ROUTE_GET},
    {{"v1", "skus", "*", "adjustments"}, 4, HTTP_POST, ROUTE_ADD},
    {{"v1", "skus", "*", "lines"}, 4, HTTP_GET, ROUTE_LIST_SKU_LINES},
    {{"v1", "orders", "*", "lines"}, 4, HTTP_GET, ROUTE_LIST_ORDER_LINES},
    {{"v1", "deductions"}, 2, HTTP_POST, ROUTE_DEDUCT},
    {{"v1", "orders"}, 2, HTTP_POST, ROUTE_ORDER},
    {{"v1", "refunds"}, 2, HTTP_POST, ROUTE_REFUND},
    {{"v1", "lines", "*"}, 3, HTTP_GET, ROUTE_LINE},
};

static bool pattern_matches(const route_entry *entry, const path *p)
{
    if (entry->count != p->count)
        return false;
    for (uint32_t i = 0; i < p->count; i++)
        if (strcmp(entry->pattern[i], "*") != 0 && !segment_is(p, i, entry->pattern[i]))
            return false;
    return true;
}

/* Bearer token check; constant time over the token's length. */
static bool authorized(conn *c, const http_request *req)
{
    const char *password = c->srv->cfg->requirepass;
    if (password[0] == '\0')
        return true;
    if (strncasecmp(req->authorization, "Bearer ", 7) != 0)
        return false;
    const char *token = req->authorization + 7;
    size_t len = strlen(password), given = strlen(token);
    unsigned char differ = (unsigned char)(given != len);
    for (size_t i = 0; i < given; i++)
        differ |= (unsigned char)(token[i] ^ password[i < len ? i : 0]);
    return differ == 0;
}

static void dispatch(conn *c, const http_request *req, const path *p, route_kind kind)
{
    switch (kind) {
    case ROUTE_HEALTH:
        reply_text(c, req->keep_alive, ROUTES_JSON_TYPE, "{\"status\":\"ok\"}", 15);
        break;
    case ROUTE_METRICS: route_metrics(c, req); break;
    case ROUTE_SET: route_set(c, req, p); break;
    case ROUTE_ADD: route_add(c, req, p); break;
    case ROUTE_DEDUCT: route_deduct(c, req); break;
    case ROUTE_ORDER: route_order(c, req); break;
    case ROUTE_REFUND: route_refund(c, req); break;
    case ROUTE_GET:
    case ROUTE_LINE: route_read(c, req, p, kind); break;
    case ROUTE_LIST_SKUS:
    case ROUTE_LIST_SKU_LINES:
    case ROUTE_LIST_ORDER_LINES: route_list(c, req, p, kind); break;
    }
}

static void route(conn *c, const http_request *req)
{
    path p;
    const char *why = NULL;
    path_status status = split_path(req, &p, &why);
    if (status == PATH_MALFORMED) {
        char message[ROUTES_MESSAGE_MAX];
        snprintf(message, sizeof message, "malformed request path%s%s",
                 why != NULL ? ": " : "", why != NULL ? why : "");
        reply_error(c, req->keep_alive, 400, "INVALID", message);
        return;
    }
    bool path_known = false;
    for (size_t i = 0; status == PATH_OK && i < sizeof route_table / sizeof route_table[0]; i++) {
        const route_entry *entry = &route_table[i];
        if (!pattern_matches(entry, &p))
            continue;
        path_known = true;
        if (entry->method != req->method)
            continue;
        if (entry->kind != ROUTE_HEALTH && !authorized(c, req)) {
            c->srv->counters.auth_failures++;
            reply_error(c, req->keep_alive, 401, "NOAUTH",
                               "send the password as 'Authorization: Bearer <password>'");
            return;
        }
        dispatch(c, req, &p, entry->kind);
        return;
    }
    char message[ROUTES_MESSAGE_MAX];
    snprintf(message, sizeof message, "%s %.*s", path_known ? "method not allowed on" : "no route for",
             (int)(req->url.len < 128 ? req->url.len : 128), (const char *)req->url.data);
    if (!path_known) {
        reply_error(c, req->keep_alive, 404, "NOTFOUND", message);
        return;
    }
    /* A 405 names the methods the path has (RFC 9110, 15.5.6). */
    char allow[ROUTES_ALLOW_MAX] = "Allow: ";
    const char *separator = "";
    for (size_t i = 0; i < sizeof route_table / sizeof route_table[0]; i++) {
        if (!pattern_matches(&route_table[i], &p))
            continue;
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof allow - used, "%s%s", separator,
                 http_method_str((enum http_method)route_table[i].method));
        separator = ", ";
    }
    size_t used = strlen(allow);
    snprintf(allow + used, sizeof allow - used, "\r\n");
    reply_json(c, req->keep_alive, 405, problem_json(405, "INVALID", message), allow);
}

void routes_process(conn *c)
{
    assert(c->kind == CONN_HTTP && c->http != NULL);
    while (conn_can_take(c)) {
        chunk *in = c->in;
        if (in->parsed == in->len)
            return;
        size_t used = 0;
        http_read_status status = http_reader_feed(c->http, in->data + in->parsed,
                                                   in->len - in->parsed, &used);
        in->parsed += used;
        if (status == HTTP_READ_MORE) {
            if (http_reader_take_continue(c->http))
                reply_continue(c);
            return;
        }
        if (status == HTTP_READ_ERROR) {
            c->srv->counters.protocol_errors++;
            log_warn("client %llu: HTTP %d: %s; closing it", (unsigned long long)c->id,
                     c->http->error_status, c->http->error);
            reply_error(c, false, c->http->error_status,
                               c->http->error_status == 400 ? "INVALID" : "TOOBIG", c->http->error);
            conn_reject(c);
            return;
        }
        route(c, &c->http->request);
        http_reader_next(c->http);
    }
}

/* ------------------------------------------------------------ replies */

static int status_of(stock_code code)
{
    switch (code) {
    case STOCK_INVALID: return 400;
    case STOCK_NOT_FOUND: return 404;
    case STOCK_INSUFFICIENT: case STOCK_CONFLICT: case STOCK_EXCEEDS: case STOCK_MISMATCH:
        return 409;
    case STOCK_UNAVAILABLE: return 503;
    case STOCK_UNSUPPORTED: return 501;
    default: return 500;
    }
}

static json_t *order_body(const stock_op *op)
{
    json_t *lines = json_array();
    for (uint32_t i = 0; lines != NULL && i < op->line_count; i++) {
        const stock_order_line *line = &op->lines[i];
        json_array_append_new(lines, json_pack("{s:s#, s:s#, s:I, s:I}",
            "line_id", line->line_id.ptr, (int)line->line_id.len,
            "sku", line->sku.ptr, (int)line->sku.len, "qty", (json_int_t)line->qty,
            "available", (json_int_t)line->available));
    }
    return json_pack("{s:s#, s:o}", "order_id", op->id.ptr, (int)op->id.len, "lines", lines);
}

static json_t *success_body(route_kind kind, const stock_op *op)
{
    const stock_sku_info *sku = &op->info.sku_info;
    const stock_line_info *line = &op->info.line_info;
    switch (kind) {
    case ROUTE_SET: case ROUTE_ADD:
        return json_pack("{s:s#, s:I}", "sku", op->sku.ptr, (int)op->sku.len,
                         "available", (json_int_t)op->available);
    case ROUTE_GET:
        return json_pack("{s:s#, s:I, s:I, s:I, s:I}", "sku", op->sku.ptr, (int)op->sku.len,
                         "available", (json_int_t)sku->available, "adjusted", (json_int_t)sku->adjusted,
                         "deducted", (json_int_t)sku->deducted, "refunded", (json_int_t)sku->refunded);
    case ROUTE_DEDUCT:
        return json_pack("{s:s#, s:s#, s:I, s:I}", "line_id", op->id.ptr, (int)op->id.len,
                         "sku", op->sku.ptr, (int)op->sku.len, "qty", (json_int_t)op->amount,
                         "available", (json_int_t)op->available);
    case ROUTE_ORDER:
        return order_body(op);
    case ROUTE_REFUND:
        return json_pack("{s:s#, s:s#, s:I, s:I}", "refund_id", op->id.ptr, (int)op->id.len,
                         "line_id", op->line.ptr, (int)op->line.len, "qty", (json_int_t)op->amount,
                         "available", (json_int_t)op->available);
    case ROUTE_LINE:
        return json_pack("{s:s#, s:s, s:s, s:I, s:I, s:I, s:I}", "line_id", op->line.ptr,
                         (int)op->line.len, "sku", line->sku, "order_id", line->order_id,
                         "qty", (json_int_t)line->qty, "refunded", (json_int_t)line->refunded,
                         "time_us", (json_int_t)line->time_us,
                         "available_after", (json_int_t)line->available_after);
    case ROUTE_HEALTH: case ROUTE_METRICS:
    case ROUTE_LIST_SKUS: case ROUTE_LIST_SKU_LINES: case ROUTE_LIST_ORDER_LINES:
        break;
    }
    assert(!"a route answered at once has no op to render");
    return NULL;
}

static json_t *error_body(int status, const stock_op *op)
{
    json_t *body = problem_json(status, stock_code_name(op->code), op->message);
    if (body != NULL && op->type == STOCK_OP_ORDER && op->failed_line >= 0)
        json_object_set_new(body, "failed_line", json_integer(op->failed_line));
    return body;
}

/* The status of a failed op: status_of, except where a header asked for
 * the HTTP convention. A key reused with another payload is 422, as the
 * Idempotency-Key draft says (the same id in the body alone stays 409); an
 * If-Match that fails, level differing or SKU gone, is 412 (RFC 9110). */
static int failure_status(const call *cl, const stock_op *op)
{
    if (op->code == STOCK_CONFLICT && cl->keyed)
        return 422;
    if ((op->code == STOCK_MISMATCH || op->code == STOCK_NOT_FOUND) && cl->if_match)
        return 412;
    return status_of(op->code);
}

/* The extra headers of a success: the replay mark, or a SKU's ETag. */
static const char *success_headers(route_kind kind, const stock_op *op, char etag[ETAG_HEADER_MAX])
{
    if (op->code == STOCK_REPLAY)
        return "Idempotent-Replayed: true\r\n";
    if (kind != ROUTE_GET)
        return NULL;
    etag_header(&op->info.sku_info, etag);
    return etag;
}

void routes_render(conn *c, const slot *s, const stock_op *op, buf *out)
{
    const call *cl = s->extra;
    assert(c->kind == CONN_HTTP && cl != NULL);
    bool ok;
    char etag[ETAG_HEADER_MAX];
    if (!stock_code_succeeded(op->code)) {
        int status = failure_status(cl, op);
        ok = write_json(out, status, error_body(status, op), NULL, cl->keep_alive);
    } else {
        ok = write_json(out, 200, success_body((route_kind)s->kind, op),
                        success_headers((route_kind)s->kind, op, etag), cl->keep_alive);
    }
    if (!ok) {
        log_warn("client %llu: could not build a response", (unsigned long long)c->id);
        conn_close(c);
    }
}

void routes_release(conn *c, const slot *s)
{
    assert(c->kind == CONN_HTTP);
    call *cl = s->extra;
    if (cl != NULL)
        idempotency_end(&cl->key);
}
