/*
 * routes.c -- the HTTP/JSON front end (see routes.h, docs/http-api.md).
 *
 * Each request is routed by method and path; a store route's JSON body (and
 * percent-decoded path id) becomes a request (proto/request_json.h) that
 * the reply slot owns, so the op can wait in a batch after the request
 * buffers are reused. Around that parse, the HTTP headers that change an
 * op: Idempotency-Key (the op's id, server/idempotency.h) and If-Match (a
 * SET's expected level, server/etag.h). Errors are RFC 9457 problem
 * details (request_json_problem).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "lib/uri.h"
#include "proto/http.h"
#include "proto/request_json.h"
#include "server/etag.h"
#include "server/health.h"
#include "server/idempotency.h"
#include "server/listing.h"
#include "server/log.h"
#include "server/routes.h"
#include "server/sse.h"
#include "server/threshold.h"

#define ROUTES_SEGMENTS_MAX 5
#define ROUTES_MESSAGE_MAX 256
#define ROUTES_ALLOW_MAX 64   /* "Allow: GET, PUT\r\n": every method a path has */
#define ROUTES_JSON_TYPE "application/json"
#define ROUTES_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* What a route does. A store route is a request kind (proto/request_json.h)
 * and its slot's kind, which says how the op's reply is rendered (kind 0
 * is a ready text reply's, so no route takes it); health, metrics, the hot
 * SKUs and the listings are answered at once, with no op. */
typedef enum route_kind {
    ROUTE_SET = REQUEST_SET, ROUTE_GET = REQUEST_GET, ROUTE_ADD = REQUEST_ADD,
    ROUTE_DEDUCT = REQUEST_DEDUCT, ROUTE_ORDER = REQUEST_ORDER, ROUTE_REFUND = REQUEST_REFUND,
    ROUTE_LINE = REQUEST_LINE, ROUTE_HOLD = REQUEST_HOLD, ROUTE_CONFIRM = REQUEST_CONFIRM,
    ROUTE_RELEASE = REQUEST_RELEASE, ROUTE_HOLD_ORDER = REQUEST_HOLD_ORDER,
    ROUTE_HOLD_GET = REQUEST_HOLD_GET, ROUTE_HEALTH, ROUTE_READY, ROUTE_METRICS, ROUTE_HOT,
    ROUTE_LIST_SKUS, ROUTE_LIST_SKU_LINES, ROUTE_LIST_ORDER_LINES, ROUTE_THRESHOLD_GET,
    ROUTE_THRESHOLD_PUT, ROUTE_EVENTS
} route_kind;

/* A store request's slot kind is its route kind, plus this bit when the
 * client keeps the connection alive; the slot's extra is its call. */
#define ROUTES_SLOT_KEEP_ALIVE 0x100u

/* What a store request keeps until its slot is popped (routes_release). */
typedef struct call {
    request *made;             /* the parsed request: the op points into it */
    bool keyed;                /* the op's id came from Idempotency-Key */
    bool if_match;             /* a SET's expect came from If-Match */
    idempotency_entry key;     /* in flight while keyed */
} call;

/* A path split at '/', each segment percent-decoded. */
typedef struct path {
    uint32_t count;
    struct { char text[REQUEST_ID_BYTES * 3]; size_t len; } segment[ROUTES_SEGMENTS_MAX];
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
    const char *type = status >= 400 ? REQUEST_PROBLEM_TYPE : ROUTES_JSON_TYPE;
    bool ok = http_write_response(out, status, type, extra, text, strlen(text), keep_alive);
    free(text);
    return ok;
}

bool routes_write_error(conn *c, buf *out, int status, const char *word,
                        const char *message, bool keep_alive)
{
    (void)c;
    const char *extra = status == 401 ? "WWW-Authenticate: Bearer realm=\"stockd\"\r\n" : NULL;
    return write_json(out, status, request_json_problem(status, word, message), extra, keep_alive);
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

static void reply_text(conn *c, bool keep_alive, int status, const char *type, const char *body,
                       size_t len)
{
    size_t mark = 0;
    buf *out = conn_reply_begin(c, &mark);
    reply_finish(c, mark, http_write_response(out, status, type, NULL, body, len, keep_alive),
                 keep_alive);
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

/* Checks a POST's Idempotency-Key (idempotency.h) into key ("" when the
 * request has none, or its kind takes no id from the body): it must be an
 * id, equal to the body's field when that is given too, and not in
 * flight. Replies 400 or 409 and returns false otherwise. */
static bool admit_key(conn *c, const http_request *req, route_kind kind, const stock_op *op,
                      char key[REQUEST_ID_BYTES])
{
    key[0] = '\0';
    const char *field = request_json_id_field((request_kind)kind);
    if (req->idempotency_key[0] == '\0' || field == NULL)
        return true;
    char message[ROUTES_MESSAGE_MAX];
    const char *why = idempotency_parse(req->idempotency_key, key, REQUEST_ID_BYTES);
    if (why != NULL) {
        reply_error(c, req->keep_alive, 400, "INVALID", why);
    } else if (op->id.len > 0 && !(op->id.len == strlen(key) && memcmp(op->id.ptr, key, op->id.len) == 0)) {
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

/* Reads a PUT's If-Match into *level (etag.h): true if the request has
 * none or a usable one; replies 400 and returns false otherwise. */
static bool admit_if_match(conn *c, const http_request *req, route_kind kind, const stock_op *op,
                           int64_t *level)
{
    if (req->if_match[0] == '\0' || kind != ROUTE_SET)
        return true;
    const char *why = op->has_expect ? "give expect or If-Match, not both"
                                     : etag_if_match_level(req->if_match, level);
    if (why == NULL)
        return true;
    reply_error(c, req->keep_alive, 400, "INVALID", why);
    return false;
}

/* Answers 400 INVALID for a body that can never make an op (message says
 * why; failed_line >= 0 names the order line or hold at fault). */
static void reply_refused(conn *c, const http_request *req, const char *message, int32_t failed_line)
{
    json_t *body = request_json_problem(400, "INVALID", message);
    if (body != NULL && failed_line >= 0)
        json_object_set_new(body, "failed_line", json_integer(failed_line));
    reply_json(c, req->keep_alive, 400, body, NULL);
}

/* Queues parsed (made's op) with its call as slot extra, the admitted key
 * in flight and If-Match's level as the expected one. */
static void queue_call(conn *c, const http_request *req, route_kind kind, request *made,
                       const stock_op *parsed, const char *key, int64_t level)
{
    call *cl = calloc(1, sizeof *cl);
    uint16_t slot_kind = (uint16_t)(kind | (req->keep_alive ? ROUTES_SLOT_KEEP_ALIVE : 0));
    stock_op *op = cl != NULL ? conn_add_op(c, slot_kind, cl, false) : NULL;
    if (op == NULL) {
        free(made);
        reply_error(c, req->keep_alive, 500, "NOMEM", "out of memory");
        return;
    }
    cl->made = made;
    *op = *parsed;
    if (key[0] != '\0') {
        request_json_set_id(made, op, key);
        cl->keyed = true;
        idempotency_begin(&cl->key, (uint16_t)kind, key);
    }
    if (req->if_match[0] != '\0' && kind == ROUTE_SET) {
        cl->if_match = true;
        op->has_expect = true;
        op->expect = level;
    }
    if (!req->keep_alive)
        conn_close_after_replies(c);
}

/* Queues the store request of route kind for the body and path id (NULL
 * for the routes whose path has none), or answers 400 INVALID at once when
 * the body can never make one or a header is refused. */
static void route_store(conn *c, const http_request *req, route_kind kind, const path *p)
{
    bool path_has_id = kind == ROUTE_SET || kind == ROUTE_ADD || kind == ROUTE_GET ||
                       kind == ROUTE_LINE || kind == ROUTE_CONFIRM || kind == ROUTE_RELEASE ||
                       kind == ROUTE_HOLD_GET;
    const char *path_id = path_has_id ? p->segment[2].text : NULL;
    size_t path_len = path_has_id ? p->segment[2].len : 0;
    char message[REQUEST_MESSAGE_MAX];
    int32_t failed_line = -1;
    request *made = NULL;
    stock_op parsed = {0};
    request_status status = request_json_parse((request_kind)kind, (const char *)req->body.data,
                                               req->body.len, path_id, path_len, &parsed, &made,
                                               message, &failed_line);
    if (status == REQUEST_REFUSED) {
        reply_refused(c, req, message, failed_line);
        return;
    }
    if (status == REQUEST_NOMEM) {
        reply_error(c, req->keep_alive, 500, "NOMEM", "out of memory");
        return;
    }
    char key[REQUEST_ID_BYTES];
    int64_t level = -1;
    if (!admit_key(c, req, kind, &parsed, key) || !admit_if_match(c, req, kind, &parsed, &level)) {
        free(made);
        return;
    }
    queue_call(c, req, kind, made, &parsed, key, level);
}

static void route_metrics(conn *c, const http_request *req)
{
    buf text = {0};
    health_report health;
    health_read(c->srv, &health);
    if (!metrics_render(&c->srv->counters, &c->srv->hot, server_now_ms(c->srv), c->srv->store,
                        &health, &text))
        reply_error(c, req->keep_alive, 500, "NOMEM", "out of memory");
    else
        reply_text(c, req->keep_alive, 200, ROUTES_METRICS_TYPE, (const char *)text.data, text.len);
    buf_free(&text);
}

/* {"window_seconds", "operations": [{"sku", "count", "error"}...],
 * "refusals": [...]}: the hot SKUs (server/hot.h). */
static void route_hot(conn *c, const http_request *req)
{
    json_t *body = json_pack("{s:i}", "window_seconds", HOT_WINDOW_S);
    for (int rank = 0; body != NULL && rank < HOT_RANKS; rank++) {
        hot_item items[HOT_TOP];
        size_t count = hot_top(&c->srv->hot, (hot_rank)rank, server_now_ms(c->srv), items);
        json_t *list = json_array();
        for (size_t i = 0; list != NULL && i < count; i++)
            json_array_append_new(list, json_pack("{s:s, s:I, s:I}", "sku", items[i].sku,
                                                  "count", (json_int_t)items[i].count,
                                                  "error", (json_int_t)items[i].error));
        json_object_set_new(body, hot_rank_name((hot_rank)rank), list);
    }
    if (body == NULL)
        reply_error(c, req->keep_alive, 500, "NOMEM", "out of memory");
    else
        reply_json(c, req->keep_alive, 200, body, NULL);
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

/* GET or PUT /v1/skus/{sku}/threshold (server/threshold.h), answered at
 * once: {"sku", "threshold"}; PUT takes {"threshold": N}. */
static void route_threshold(conn *c, const http_request *req, const path *p, route_kind kind)
{
    int64_t value = 0;
    bool set = kind == ROUTE_THRESHOLD_PUT;
    if (set) {
        json_error_t error;
        json_t *body = json_loadb((const char *)req->body.data, req->body.len, 0, &error);
        json_t *threshold = json_object_get(body, "threshold");
        bool ok = json_is_integer(threshold) && json_object_size(body) == 1;
        value = ok ? json_integer_value(threshold) : 0;
        json_decref(body);
        if (!ok) {
            reply_error(c, req->keep_alive, 400, "INVALID",
                        "the body must be {\"threshold\": N}, N an integer (0 removes it)");
            return;
        }
    }
    char message[STOCK_MESSAGE_MAX];
    stock_code code = threshold_run(c->srv, p->segment[2].text, p->segment[2].len, set, &value,
                                    message, sizeof message);
    if (code != STOCK_OK) {
        reply_error(c, req->keep_alive, status_of(code), stock_code_name(code), message);
        return;
    }
    json_t *body = json_pack("{s:s, s:I}", "sku", p->segment[2].text, "threshold",
                             (json_int_t)value);
    if (body == NULL)
        reply_error(c, req->keep_alive, 500, "NOMEM", "out of memory");
    else
        reply_json(c, req->keep_alive, 200, body, NULL);
}

/* ------------------------------------------------------------ routing */

typedef struct route_entry {
    const char *pattern[4];      /* "*" matches one segment (an id) */
    uint32_t count;
    enum http_method method;
    route_kind kind;
    auth_role needs;             /* the least role that may use it */
} route_entry;

static const route_entry route_table[] = {
    {{"healthz"}, 1, HTTP_GET, ROUTE_HEALTH, AUTH_NONE},
    {{"readyz"}, 1, HTTP_GET, ROUTE_READY, AUTH_NONE},
    {{"metrics"}, 1, HTTP_GET, ROUTE_METRICS, AUTH_READ_ONLY},
    {{"v1", "hot"}, 2, HTTP_GET, ROUTE_HOT, AUTH_READ_ONLY},
    {{"v1", "events"}, 2, HTTP_GET, ROUTE_EVENTS, AUTH_READ_ONLY},
    {{"v1", "skus"}, 2, HTTP_GET, ROUTE_LIST_SKUS, AUTH_READ_ONLY},
    {{"v1", "skus", "*"}, 3, HTTP_PUT, ROUTE_SET, AUTH_FULL},
    {{"v1", "skus", "*"}, 3, HTTP_GET, ROUTE_GET, AUTH_READ_ONLY},
    {{"v1", "skus", "*", "adjustments"}, 4, HTTP_POST, ROUTE_ADD, AUTH_FULL},
    {{"v1", "skus", "*", "lines"}, 4, HTTP_GET, ROUTE_LIST_SKU_LINES, AUTH_READ_ONLY},
    {{"v1", "skus", "*", "threshold"}, 4, HTTP_GET, ROUTE_THRESHOLD_GET, AUTH_READ_ONLY},
    {{"v1", "skus", "*", "threshold"}, 4, HTTP_PUT, ROUTE_THRESHOLD_PUT, AUTH_FULL},
    {{"v1", "orders", "*", "lines"}, 4, HTTP_GET, ROUTE_LIST_ORDER_LINES, AUTH_READ_ONLY},
    {{"v1", "deductions"}, 2, HTTP_POST, ROUTE_DEDUCT, AUTH_FULL},
    {{"v1", "orders"}, 2, HTTP_POST, ROUTE_ORDER, AUTH_FULL},
    {{"v1", "refunds"}, 2, HTTP_POST, ROUTE_REFUND, AUTH_FULL},
    {{"v1", "lines", "*"}, 3, HTTP_GET, ROUTE_LINE, AUTH_READ_ONLY},
    {{"v1", "holds"}, 2, HTTP_POST, ROUTE_HOLD, AUTH_FULL},
    {{"v1", "holds", "*"}, 3, HTTP_GET, ROUTE_HOLD_GET, AUTH_READ_ONLY},
    {{"v1", "holds", "*", "confirm"}, 4, HTTP_POST, ROUTE_CONFIRM, AUTH_FULL},
    {{"v1", "holds", "*", "release"}, 4, HTTP_POST, ROUTE_RELEASE, AUTH_FULL},
    {{"v1", "hold-orders"}, 2, HTTP_POST, ROUTE_HOLD_ORDER, AUTH_FULL},
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

/* Whether the request's Bearer token (if a password is set) earns the
 * role entry needs. Replies 401 (no or a wrong token), 403 (a user without
 * the right), or 429 (the address failed too often) and returns false if
 * not; the route then does not run, so nothing changes. The role holds
 * for this request only: HTTP has no session. */
static bool permitted(conn *c, const http_request *req, const route_entry *entry)
{
    auth_role role = c->role;
    uint32_t retry_s = 0;
    if (role < entry->needs && strncasecmp(req->authorization, "Bearer ", 7) == 0) {
        const char *token = req->authorization + 7;
        if (auth_attempt(c, NULL, 0, token, strlen(token), &role, &retry_s) == AUTH_THROTTLED) {
            char message[ROUTES_MESSAGE_MAX], extra[ROUTES_MESSAGE_MAX];
            snprintf(message, sizeof message, "too many failed authentications from %s; "
                     "try again in %u s", c->peer, retry_s);
            snprintf(extra, sizeof extra, "Retry-After: %u\r\n", retry_s);
            reply_json(c, req->keep_alive, 429, request_json_problem(429, "TOOMANY", message), extra);
            return false;
        }
    } else if (role < entry->needs)
        c->srv->counters.auth_failures++;
    if (role >= entry->needs)
        return true;
    if (role == AUTH_NONE) {
        reply_error(c, req->keep_alive, 401, "NOAUTH",
                    "send the password as 'Authorization: Bearer <password>'");
        return false;
    }
    c->srv->counters.permission_denied++;
    char message[ROUTES_MESSAGE_MAX];
    snprintf(message, sizeof message, "User %s has no permissions to %s %.*s",
             auth_user_name(c->srv->cfg, role), http_method_str(req->method),
             (int)(req->url.len < 128 ? req->url.len : 128), (const char *)req->url.data);
    reply_error(c, req->keep_alive, 403, "NOPERM", message);
    return false;
}

/* Liveness (/healthz): 503 once the store failed closed, which a restart
 * mends. Readiness (/readyz): 503 also while the disk is low, which a
 * restart does not mend. Both carry the whole report (health.h). */
static void route_health(conn *c, const http_request *req, bool readiness)
{
    health_report report;
    health_read(c->srv, &report);
    bool ok = readiness ? report.ready : report.alive;
    json_t *body = health_json(c->srv, &report, readiness);
    char *text = body == NULL ? NULL : json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (text == NULL) {
        conn_close(c);
        return;
    }
    reply_text(c, req->keep_alive, ok ? 200 : 503, ROUTES_JSON_TYPE, text, strlen(text));
    free(text);
}

static void dispatch(conn *c, const http_request *req, const path *p, route_kind kind)
{
    switch (kind) {
    case ROUTE_HEALTH: case ROUTE_READY: route_health(c, req, kind == ROUTE_READY); break;
    case ROUTE_METRICS: route_metrics(c, req); break;
    case ROUTE_HOT: route_hot(c, req); break;
    case ROUTE_LIST_SKUS: case ROUTE_LIST_SKU_LINES: case ROUTE_LIST_ORDER_LINES:
        route_list(c, req, p, kind);
        break;
    case ROUTE_THRESHOLD_GET: case ROUTE_THRESHOLD_PUT:
        route_threshold(c, req, p, kind);
        break;
    case ROUTE_EVENTS: sse_start(c, req); break;
    case ROUTE_SET: case ROUTE_ADD: case ROUTE_DEDUCT: case ROUTE_ORDER:
    case ROUTE_REFUND: case ROUTE_GET: case ROUTE_LINE: case ROUTE_HOLD: case ROUTE_CONFIRM:
    case ROUTE_RELEASE: case ROUTE_HOLD_ORDER: case ROUTE_HOLD_GET:
        route_store(c, req, kind, p);
        break;
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
        if (permitted(c, req, entry))
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
    reply_json(c, req->keep_alive, 405, request_json_problem(405, "INVALID", message), allow);
}

void routes_process(conn *c)
{
    assert(c->kind == CONN_HTTP && c->http != NULL);
    while (conn_can_take(c)) {
        chunk *in = c->in;
        if (c->sse != NULL)
            in->parsed = in->len;   /* a stream takes no more requests */
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
    case STOCK_EXPIRED: case STOCK_CLOSED:
        return 409;
    case STOCK_UNAVAILABLE: return 503;
    case STOCK_UNSUPPORTED: return 501;
    default: return 500;
    }
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
static const char *success_headers(request_kind kind, const stock_op *op, char etag[ETAG_HEADER_MAX])
{
    if (op->code == STOCK_REPLAY)
        return "Idempotent-Replayed: true\r\n";
    if (kind != REQUEST_GET)
        return NULL;
    etag_header(&op->info.sku_info, etag);
    return etag;
}

void routes_render(conn *c, const slot *s, const stock_op *op, buf *out)
{
    const call *cl = s->extra;
    assert(c->kind == CONN_HTTP && cl != NULL);
    bool keep_alive = (s->kind & ROUTES_SLOT_KEEP_ALIVE) != 0;
    request_kind kind = (request_kind)(s->kind & ~ROUTES_SLOT_KEEP_ALIVE);
    bool ok;
    char etag[ETAG_HEADER_MAX];
    if (!stock_code_succeeded(op->code)) {
        int status = failure_status(cl, op);
        ok = write_json(out, status, request_json_op_problem(status, op), NULL, keep_alive);
    } else {
        ok = write_json(out, 200, request_json_result(kind, op), success_headers(kind, op, etag),
                        keep_alive);
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
    if (cl == NULL)
        return;
    idempotency_end(&cl->key);
    free(cl->made);
}
