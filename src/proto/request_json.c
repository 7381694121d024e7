/*
 * request_json.c -- store requests and results as JSON (see
 * request_json.h, docs/http-api.md), shared by stockd's HTTP routes and
 * stockintake; and HTTP's problem details, whose facts are the leading
 * "key=value" words that lib/result.c writes.
 */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/uri.h"
#include "proto/request_json.h"

#define PROBLEM_TYPE_PREFIX "tag:stockd,2026:"
#define PROBLEM_WORD_MAX 32
#define PROBLEM_FACTS_MAX 4   /* "sku=A available=3" has 2; room to spare */

/* Copies len bytes of text (NULL when len is 0: a kind without a path id
 * given none) into target, cut past any id's limit. */
static stock_id copy_id(request_id *target, const char *text, size_t len)
{
    size_t keep = len < sizeof target->text - 1 ? len : sizeof target->text - 1;
    if (keep > 0)
        memcpy(target->text, text, keep);
    target->text[keep] = '\0';
    return (stock_id){target->text, (uint32_t)keep};
}

/* The string field key of object, copied; absent or not a string: "". */
static stock_id json_id(json_t *object, const char *key, request_id *target)
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

/* Whether a kind reads a body: the reads take none; a confirm or release
 * without one closes the whole hold. */
typedef enum body_need { BODY_NONE, BODY_OPTIONAL, BODY_REQUIRED } body_need;

static body_need body_need_of(request_kind kind)
{
    switch (kind) {
    case REQUEST_GET: case REQUEST_LINE: case REQUEST_HOLD_GET: return BODY_NONE;
    case REQUEST_CONFIRM: case REQUEST_RELEASE: return BODY_OPTIONAL;
    default: return BODY_REQUIRED;
    }
}

/* The fields each kind's body may have (the reads have no body). */
static const char *const *allowed_fields(request_kind kind)
{
    static const char *const set[] = {"available", "expect", NULL};
    static const char *const add[] = {"delta", "id", NULL};
    static const char *const deduct[] = {"line_id", "sku", "qty", NULL};
    static const char *const order[] = {"order_id", "lines", NULL};
    static const char *const refund[] = {"refund_id", "line_id", "qty", NULL};
    static const char *const hold[] = {"hold_id", "sku", "qty", "ttl_ms", NULL};
    static const char *const confirm[] = {"qty", NULL};
    static const char *const release[] = {NULL};
    static const char *const hold_order[] = {"order_id", "holds", NULL};
    switch (kind) {
    case REQUEST_SET: return set;
    case REQUEST_ADD: return add;
    case REQUEST_DEDUCT: return deduct;
    case REQUEST_ORDER: return order;
    case REQUEST_REFUND: return refund;
    case REQUEST_HOLD: return hold;
    case REQUEST_CONFIRM: return confirm;
    case REQUEST_RELEASE: return release;
    case REQUEST_HOLD_ORDER: return hold_order;
    case REQUEST_GET: case REQUEST_LINE: case REQUEST_HOLD_GET: break;
    }
    assert(!"the reads have no body");
    return NULL;
}

/* The array of an order's lines ("lines") or of a hold order's holds
 * ("holds"); NULL for the kinds without one. */
static json_t *order_items(request_kind kind, json_t *body)
{
    if (kind == REQUEST_ORDER)
        return json_object_get(body, "lines");
    if (kind == REQUEST_HOLD_ORDER)
        return json_object_get(body, "holds");
    return NULL;
}

/* Parses the body: a JSON object with no field outside allowed. NULL with
 * message set otherwise. */
static json_t *load_body(const char *text, size_t len, const char *const *allowed, char *message)
{
    json_error_t error;
    json_t *body = len == 0 ? NULL : json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    if (len == 0)
        snprintf(message, REQUEST_MESSAGE_MAX, "the body is empty: send a JSON object");
    else if (body == NULL)
        snprintf(message, REQUEST_MESSAGE_MAX, "the body is not valid JSON: %s (byte %d)",
                 error.text, error.position);
    else if (!json_is_object(body))
        snprintf(message, REQUEST_MESSAGE_MAX, "the body must be a JSON object");
    else if (only_fields(body, allowed, message, REQUEST_MESSAGE_MAX))
        return body;
    json_decref(body);
    return NULL;
}

/* Checks the body's shape beyond its fields: an order's lines or a hold
 * order's holds (objects of known fields only, so a typo in a line is
 * refused like one in the body; at most STOCK_ORDER_LINES_MAX of them) and
 * an adjustment id's type. The values are checked by stock_validate, which
 * names a line the same way. */
static bool shape_ok(request_kind kind, json_t *body, char *message, int32_t *failed_line)
{
    static const char *const line_fields[] = {"line_id", "sku", "qty", NULL};
    static const char *const hold_fields[] = {"hold_id", "qty", NULL};
    json_t *id = json_object_get(body, "id");
    if (kind == REQUEST_ADD && id != NULL && !json_is_string(id)) {
        snprintf(message, REQUEST_MESSAGE_MAX, "adjustment id must be a string");
        return false;
    }
    json_t *lines = order_items(kind, body);
    const char *noun = kind == REQUEST_HOLD_ORDER ? "hold" : "line";
    size_t count = json_is_array(lines) ? json_array_size(lines) : 0;
    if (count > STOCK_ORDER_LINES_MAX) {
        snprintf(message, REQUEST_MESSAGE_MAX, "an order must have 1..%d %ss", STOCK_ORDER_LINES_MAX, noun);
        return false;
    }
    const char *const *fields = kind == REQUEST_HOLD_ORDER ? hold_fields : line_fields;
    char field[REQUEST_MESSAGE_MAX / 2];
    for (size_t i = 0; i < count; i++) {
        json_t *line = json_array_get(lines, i);
        if (json_is_object(line) && only_fields(line, fields, field, sizeof field))
            continue;
        if (!json_is_object(line))
            snprintf(message, REQUEST_MESSAGE_MAX, "%s %zu: must be a JSON object", noun, i + 1);
        else
            snprintf(message, REQUEST_MESSAGE_MAX, "%s %zu: %s", noun, i + 1, field);
        *failed_line = (int32_t)i;
        return false;
    }
    return true;
}

static request *request_new(request_kind kind, uint32_t line_count)
{
    size_t size = sizeof(request) + line_count * (sizeof(stock_order_line) + 2 * sizeof(request_id));
    request *made = calloc(1, size);
    if (made == NULL)
        return NULL;
    made->kind = kind;
    made->lines = (stock_order_line *)(made + 1);
    made->line_ids = (request_id *)(made->lines + line_count);
    return made;
}

static void fill_order(request *made, json_t *body, stock_op *op)
{
    json_t *lines = json_object_get(body, "lines");
    uint32_t count = json_is_array(lines) ? (uint32_t)json_array_size(lines) : 0;
    for (uint32_t i = 0; i < count; i++) {
        json_t *line = json_array_get(lines, i);
        made->lines[i].line_id = json_id(line, "line_id", &made->line_ids[2 * i]);
        made->lines[i].sku = json_id(line, "sku", &made->line_ids[2 * i + 1]);
        made->lines[i].qty = json_number(line, "qty", 0);
    }
    op->type = STOCK_OP_ORDER;
    op->id = json_id(body, "order_id", &made->id);
    op->lines = made->lines;
    op->line_count = count;
}

/* A hold order's holds: a hold's qty left out is the whole hold (0), one
 * of the wrong type is passed on out of range. */
static void fill_hold_order(request *made, json_t *body, stock_op *op)
{
    json_t *holds = json_object_get(body, "holds");
    uint32_t count = json_is_array(holds) ? (uint32_t)json_array_size(holds) : 0;
    for (uint32_t i = 0; i < count; i++) {
        json_t *hold = json_array_get(holds, i);
        made->lines[i].line_id = json_id(hold, "hold_id", &made->line_ids[2 * i]);
        made->lines[i].qty = json_number(hold, "qty", json_object_get(hold, "qty") != NULL ? -1 : 0);
    }
    op->type = STOCK_OP_CONFIRM_ORDER;
    op->id = json_id(body, "order_id", &made->id);
    op->lines = made->lines;
    op->line_count = count;
}

/* Sets the inputs of a hold kind's op: the hold's id comes from the path
 * but for HOLD. A confirm without a body confirms the whole hold (0). */
static void fill_hold_op(request *made, json_t *body, const char *path_id, size_t path_len, stock_op *op)
{
    switch (made->kind) {
    case REQUEST_HOLD:
        op->type = STOCK_OP_HOLD;
        op->id = json_id(body, "hold_id", &made->id);
        op->sku = json_id(body, "sku", &made->sku);
        op->amount = json_number(body, "qty", 0);
        op->expect = json_number(body, "ttl_ms", 0);
        return;
    case REQUEST_CONFIRM: case REQUEST_RELEASE:
        op->type = made->kind == REQUEST_CONFIRM ? STOCK_OP_CONFIRM : STOCK_OP_RELEASE;
        op->id = copy_id(&made->id, path_id, path_len);
        op->amount = body != NULL ? json_number(body, "qty", -1) : 0;
        return;
    case REQUEST_HOLD_ORDER:
        fill_hold_order(made, body, op);
        return;
    case REQUEST_HOLD_GET:
        op->type = STOCK_OP_HOLD_GET;
        op->id = copy_id(&made->id, path_id, path_len);
        return;
    default:
        assert(!"not a hold kind");
    }
}

/* Sets op's type and inputs from body (NULL for the reads, and for a
 * confirm or release sent without one). */
static void fill_op(request *made, json_t *body, const char *path_id, size_t path_len, stock_op *op)
{
    switch (made->kind) {
    case REQUEST_SET:
        op->type = STOCK_OP_SET;
        op->sku = copy_id(&made->sku, path_id, path_len);
        op->amount = json_number(body, "available", -1);
        op->has_expect = json_object_get(body, "expect") != NULL;
        op->expect = json_number(body, "expect", -1);
        break;
    case REQUEST_ADD:
        op->type = STOCK_OP_ADD;
        op->sku = copy_id(&made->sku, path_id, path_len);
        op->amount = json_number(body, "delta", 0);
        op->id = json_object_get(body, "id") != NULL ? json_id(body, "id", &made->id)
                                                    : (stock_id){NULL, 0};
        break;
    case REQUEST_DEDUCT:
        op->type = STOCK_OP_DEDUCT;
        op->id = json_id(body, "line_id", &made->id);
        op->sku = json_id(body, "sku", &made->sku);
        op->amount = json_number(body, "qty", 0);
        break;
    case REQUEST_ORDER:
        fill_order(made, body, op);
        break;
    case REQUEST_REFUND:
        op->type = STOCK_OP_REFUND;
        op->id = json_id(body, "refund_id", &made->id);
        op->line = json_id(body, "line_id", &made->line);
        op->amount = json_number(body, "qty", 0);
        break;
    case REQUEST_GET:
        op->type = STOCK_OP_GET;
        op->sku = copy_id(&made->sku, path_id, path_len);
        break;
    case REQUEST_LINE:
        op->type = STOCK_OP_LINE;
        op->line = copy_id(&made->line, path_id, path_len);
        break;
    case REQUEST_HOLD: case REQUEST_CONFIRM: case REQUEST_RELEASE:
    case REQUEST_HOLD_ORDER: case REQUEST_HOLD_GET:
        fill_hold_op(made, body, path_id, path_len, op);
        break;
    }
}

request_status request_json_parse(request_kind kind, const char *body, size_t len,
                                  const char *path_id, size_t path_len, stock_op *op,
                                  request **made, char *message, int32_t *failed_line)
{
    assert(op != NULL && made != NULL && message != NULL && failed_line != NULL);
    *made = NULL;
    *failed_line = -1;
    message[0] = '\0';
    json_t *json = NULL;
    body_need need = body_need_of(kind);
    if (need == BODY_REQUIRED || (need == BODY_OPTIONAL && len > 0)) {
        json = load_body(body, len, allowed_fields(kind), message);
        if (json == NULL || !shape_ok(kind, json, message, failed_line)) {
            json_decref(json);
            return REQUEST_REFUSED;
        }
    }
    json_t *lines = order_items(kind, json);
    *made = request_new(kind, json_is_array(lines) ? (uint32_t)json_array_size(lines) : 0);
    if (*made != NULL)
        fill_op(*made, json, path_id, path_len, op);
    json_decref(json);
    return *made != NULL ? REQUEST_PARSED : REQUEST_NOMEM;
}

const char *request_json_id_field(request_kind kind)
{
    switch (kind) {
    case REQUEST_ADD: return "id";
    case REQUEST_DEDUCT: return "line_id";
    case REQUEST_ORDER: case REQUEST_HOLD_ORDER: return "order_id";
    case REQUEST_REFUND: return "refund_id";
    case REQUEST_HOLD: return "hold_id";
    case REQUEST_SET: case REQUEST_GET: case REQUEST_LINE: case REQUEST_CONFIRM:
    case REQUEST_RELEASE: case REQUEST_HOLD_GET:
        break;
    }
    return NULL;
}

void request_json_set_id(request *made, stock_op *op, const char *id)
{
    assert(request_json_id_field(made->kind) != NULL);
    op->id = copy_id(&made->id, id, strlen(id));
}

/* ------------------------------------------------------------ results */

json_t *request_json_error(const char *word, const char *message)
{
    return json_pack("{s:s, s:s}", "error", word, "message", message);
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

/* A hold order's holds: no SKU, the hold id. */
static json_t *hold_order_body(const stock_op *op)
{
    json_t *holds = json_array();
    for (uint32_t i = 0; holds != NULL && i < op->line_count; i++) {
        const stock_order_line *line = &op->lines[i];
        json_array_append_new(holds, json_pack("{s:s#, s:I, s:I}",
            "hold_id", line->line_id.ptr, (int)line->line_id.len, "qty", (json_int_t)line->qty,
            "available", (json_int_t)line->available));
    }
    return json_pack("{s:s#, s:o}", "order_id", op->id.ptr, (int)op->id.len, "holds", holds);
}

static json_t *hold_body(const stock_op *op)
{
    const stock_hold_info *hold = &op->info.hold_info;
    return json_pack("{s:s#, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "hold_id", op->id.ptr,
                     (int)op->id.len, "sku", hold->sku, "state",
                     stock_hold_state_name(hold->state), "order_id", hold->order_id,
                     "qty", (json_int_t)hold->qty, "confirmed", (json_int_t)hold->confirmed,
                     "time_us", (json_int_t)hold->time_us,
                     "deadline_us", (json_int_t)hold->deadline_us);
}

static json_t *success_body(request_kind kind, const stock_op *op)
{
    const stock_sku_info *sku = &op->info.sku_info;
    const stock_line_info *line = &op->info.line_info;
    switch (kind) {
    case REQUEST_SET: case REQUEST_ADD:
        return json_pack("{s:s#, s:I}", "sku", op->sku.ptr, (int)op->sku.len,
                         "available", (json_int_t)op->available);
    case REQUEST_GET:
        return json_pack("{s:s#, s:I, s:I, s:I, s:I, s:I}", "sku", op->sku.ptr, (int)op->sku.len,
                         "available", (json_int_t)sku->available, "adjusted", (json_int_t)sku->adjusted,
                         "deducted", (json_int_t)sku->deducted, "refunded", (json_int_t)sku->refunded,
                         "held", (json_int_t)sku->held);
    case REQUEST_HOLD:
        return json_pack("{s:s#, s:s#, s:I, s:I}", "hold_id", op->id.ptr, (int)op->id.len,
                         "sku", op->sku.ptr, (int)op->sku.len, "qty", (json_int_t)op->amount,
                         "available", (json_int_t)op->available);
    case REQUEST_CONFIRM: case REQUEST_RELEASE:
        return json_pack("{s:s#, s:I}", "hold_id", op->id.ptr, (int)op->id.len,
                         "available", (json_int_t)op->available);
    case REQUEST_HOLD_ORDER:
        return hold_order_body(op);
    case REQUEST_HOLD_GET:
        return hold_body(op);
    case REQUEST_DEDUCT:
        return json_pack("{s:s#, s:s#, s:I, s:I}", "line_id", op->id.ptr, (int)op->id.len,
                         "sku", op->sku.ptr, (int)op->sku.len, "qty", (json_int_t)op->amount,
                         "available", (json_int_t)op->available);
    case REQUEST_ORDER:
        return order_body(op);
    case REQUEST_REFUND:
        return json_pack("{s:s#, s:s#, s:I, s:I}", "refund_id", op->id.ptr, (int)op->id.len,
                         "line_id", op->line.ptr, (int)op->line.len, "qty", (json_int_t)op->amount,
                         "available", (json_int_t)op->available);
    case REQUEST_LINE:
        return json_pack("{s:s#, s:s, s:s, s:I, s:I, s:I, s:I}", "line_id", op->line.ptr,
                         (int)op->line.len, "sku", line->sku, "order_id", line->order_id,
                         "qty", (json_int_t)line->qty, "refunded", (json_int_t)line->refunded,
                         "time_us", (json_int_t)line->time_us,
                         "available_after", (json_int_t)line->available_after);
    }
    assert(!"unknown request kind");
    return NULL;
}

/* Adds failed_line to a failed op's error body: the order line or hold at
 * fault, if one is. Returns body. */
static json_t *with_failed_line(json_t *body, const stock_op *op)
{
    if (body != NULL && (op->type == STOCK_OP_ORDER || op->type == STOCK_OP_CONFIRM_ORDER) &&
        op->failed_line >= 0)
        json_object_set_new(body, "failed_line", json_integer(op->failed_line));
    return body;
}

json_t *request_json_result(request_kind kind, const stock_op *op)
{
    if (stock_code_succeeded(op->code))
        return success_body(kind, op);
    return with_failed_line(request_json_error(stock_code_name(op->code), op->message), op);
}

/* ---------------------------------------------------- problem details */

/* A fact key of lib/result.c's wording and the member it becomes (named as
 * the HTTP bodies name that thing: line -> line_id). */
typedef struct fact_key {
    const char *key;
    const char *member;
    bool integer;
} fact_key;

static const fact_key fact_keys[] = {
    {"sku", "sku", false},
    {"line", "line_id", false},
    {"order", "order_id", false},
    {"refund", "refund_id", false},
    {"adjustment", "adjustment_id", false},
    {"hold", "hold_id", false},
    {"state", "state", false},
    {"available", "available", true},
    {"refundable", "refundable", true},
    {"current", "current", true},
    {"held", "held", true},
};

/* Titles of the words that are not result codes (stock_strerror has the
 * others): the server's own refusals. */
static const struct { const char *word, *title; } server_titles[] = {
    {"NOAUTH", "authentication required"},
    {"NOPERM", "the user may not do this"},
    {"TOOMANY", "too many failed authentications from this address"},
    {"TIMEOUT", "the connection was idle too long"},
    {"TOOBIG", "the request is too large"},
    {"INFLIGHT", "a request with this Idempotency-Key is still in progress"},
};

static const char *title_of(const char *word)
{
    for (int code = 0; code < STOCK_CODE_COUNT; code++)
        if (strcmp(stock_code_name((stock_code)code), word) == 0)
            return stock_strerror((stock_code)code);
    for (size_t i = 0; i < sizeof server_titles / sizeof server_titles[0]; i++)
        if (strcmp(server_titles[i].word, word) == 0)
            return server_titles[i].title;
    return "error";
}

static const fact_key *fact_key_of(const char *key, size_t len)
{
    for (size_t i = 0; i < sizeof fact_keys / sizeof fact_keys[0]; i++)
        if (uri_is(key, len, fact_keys[i].key))
            return &fact_keys[i];
    return NULL;
}

/* Adds one fact as a member; false if the value is not what the key holds
 * (then the walk stops: what follows is prose). The numbers of facts are
 * levels and quantities: 0..INT64_MAX. */
static bool add_fact(json_t *problem, const fact_key *fact, const char *value, size_t len)
{
    if (!fact->integer)
        return json_object_set_new(problem, fact->member, json_stringn(value, len)) == 0;
    uint64_t number = 0;
    if (!uri_parse_uint(value, len, 0, INT64_MAX, &number))
        return false;
    return json_object_set_new(problem, fact->member, json_integer((json_int_t)number)) == 0;
}

/* Walks the leading "key=value" words of detail (ids hold no space, so a
 * word ends at one); stops at the first word that is not a known fact. */
static void add_facts(json_t *problem, const char *detail)
{
    const char *at = detail;
    for (int taken = 0; taken < PROBLEM_FACTS_MAX && *at != '\0'; taken++) {
        size_t word = strcspn(at, " ");
        const char *equals = memchr(at, '=', word);
        const fact_key *fact = equals != NULL ? fact_key_of(at, (size_t)(equals - at)) : NULL;
        if (fact == NULL || !add_fact(problem, fact, equals + 1, word - (size_t)(equals + 1 - at)))
            return;
        at += word;
        at += strspn(at, " ");
    }
}

json_t *request_json_problem(int status, const char *word, const char *detail)
{
    char type[sizeof PROBLEM_TYPE_PREFIX + PROBLEM_WORD_MAX];
    size_t used = (size_t)snprintf(type, sizeof type, "%s", PROBLEM_TYPE_PREFIX);
    for (size_t i = 0; word[i] != '\0' && used + 1 < sizeof type; i++)
        type[used++] = (char)tolower((unsigned char)word[i]);
    type[used] = '\0';
    json_t *problem = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type,
                                "title", title_of(word), "status", status,
                                "detail", detail, "code", word);
    if (problem != NULL)
        add_facts(problem, detail);
    return problem;
}

json_t *request_json_op_problem(int status, const stock_op *op)
{
    return with_failed_line(request_json_problem(status, stock_code_name(op->code), op->message), op);
}
