/*
 * api.c -- the front of libstock: picks a backend by URI, validates every
 * operation before a backend sees it, and builds the synchronous calls on
 * top of the batch interface.
 */
#include <assert.h>
#include <pthread.h>
#include <string.h>

#include "backend/backend.h"
#include "lib/batches.h"
#include "lib/message.h"
#include "lib/result.h"

const char *stock_version(void)
{
    return STOCK_VERSION;
}

stock_id stock_id_from_cstr(const char *text)
{
    stock_id id = {text, 0};
    if (text != NULL) {
        size_t len = strnlen(text, STOCK_ID_MAX + 1);
        id.len = (uint32_t)len;
    }
    return id;
}

/* Hands uri to the first backend that serves it; the failure's sentence
 * goes to message (never NULL, STOCK_MESSAGE_MAX bytes). */
static stock_code open_backend(const char *uri, const stock_config *config,
                               stock_t **store, char *message)
{
    if (uri == NULL || uri[0] == '\0') {
        message_set(message, STOCK_MESSAGE_MAX, "the store URI is empty");
        return STOCK_INVALID;
    }
    for (size_t i = 0; stock_backends[i] != NULL; i++) {
        const stock_backend_ops *ops = stock_backends[i];
        if (!ops->accepts(uri))
            continue;
        stock_code code = ops->open(uri, config, store, message, STOCK_MESSAGE_MAX);
        assert((code == STOCK_OK) == (*store != NULL));
        assert(code != STOCK_OK || (*store)->ops == ops);
        return code;
    }
    message_set(message, STOCK_MESSAGE_MAX, "no backend serves the URI '%s'", uri);
    return STOCK_UNSUPPORTED;
}

stock_code stock_open(const char *uri, const stock_config *config,
                      stock_t **store, char *message)
{
    assert(store != NULL);
    *store = NULL;
    stock_config defaults = {0};
    if (config == NULL)
        config = &defaults;
    /* Backends always get a buffer, and a failure always a sentence. */
    char sentence[STOCK_MESSAGE_MAX] = "";
    stock_code code = open_backend(uri, config, store, sentence);
    if (code != STOCK_OK && sentence[0] == '\0')
        message_set(sentence, sizeof sentence, "%s", stock_strerror(code));
    if (message != NULL)
        memcpy(message, sentence, sizeof sentence);
    return code;
}

stock_code stock_close(stock_t *store)
{
    if (store == NULL)
        return STOCK_OK;
    return store->ops->close(store);
}

const char *stock_backend_name(const stock_t *store)
{
    assert(store != NULL);
    return store->ops->name;
}

int stock_completion_fd(stock_t *store)
{
    assert(store != NULL);
    return store->ops->completion_fd == NULL ? -1 : store->ops->completion_fd(store);
}

void stock_process_completions(stock_t *store)
{
    assert(store != NULL);
    if (store->ops->process_completions != NULL)
        store->ops->process_completions(store);
}

stock_code stock_get_stats(stock_t *store, stock_stats *stats)
{
    assert(store != NULL && stats != NULL);
    memset(stats, 0, sizeof *stats);
    stats_read(&store->stats, stats);
    if (store->ops->get_stats == NULL)
        return STOCK_OK;
    return store->ops->get_stats(store, stats);
}

stock_code stock_get_health(stock_t *store, stock_health *health)
{
    assert(store != NULL && health != NULL);
    memset(health, 0, sizeof *health);
    if (store->ops->get_health == NULL)
        return STOCK_OK;
    return store->ops->get_health(store, health);
}

stock_code stock_backup(stock_t *store, const char *dest, stock_backup_info *info,
                        char *message)
{
    assert(store != NULL);
    char sentence[STOCK_MESSAGE_MAX] = "";
    stock_backup_info taken = {0};
    stock_code code = STOCK_INVALID;
    size_t len = dest == NULL ? 0 : strnlen(dest, STOCK_PATH_MAX);
    if (len == 0 || len == STOCK_PATH_MAX)
        message_set(sentence, sizeof sentence, "the backup's folder must be 1..%d bytes",
                    STOCK_PATH_MAX - 1);
    else if (store->ops->backup == NULL)
        code = STOCK_UNSUPPORTED;
    else
        code = store->ops->backup(store, dest, &taken, sentence, sizeof sentence);
    if (code == STOCK_UNSUPPORTED && sentence[0] == '\0')
        message_set(sentence, sizeof sentence, "the %s backend takes no backups "
                    "(use its own tools)", store->ops->name);
    if (info != NULL)
        *info = taken;
    if (message != NULL)
        memcpy(message, sentence, sizeof sentence);
    return code;
}

/* Whether the op is one of the hold ops, which a backend may not keep. */
static bool is_hold_op(const stock_op *op)
{
    return op->type >= STOCK_OP_HOLD && op->type <= STOCK_OP_HOLD_GET;
}

void stock_submit(stock_t *store, stock_batch *batch)
{
    assert(store != NULL && batch != NULL && batch->done != NULL);
    assert(batch->count >= 1 && batch->count <= STOCK_BATCH_MAX);
    size_t valid = 0;
    for (size_t i = 0; i < batch->count; i++) {
        stock_op *op = &batch->ops[i];
        op->code = STOCK_OK;
        op->failed_line = -1;
        op->message[0] = '\0';
        op->available = 0;
        if (stock_validate(op) != STOCK_OK)
            continue;
        if (is_hold_op(op) && !store->ops->holds)
            result_fail(op, STOCK_UNSUPPORTED, "the %s backend keeps no holds; nothing changed",
                        store->ops->name);
        else
            valid++;
    }
    if (valid == 0) {
        batch->next = NULL;
        batches_complete(store, batch);
        return;
    }
    store->ops->submit(store, batch);
}

/* A batch that one thread waits on. */
typedef struct waiter {
    stock_batch batch;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    bool finished;
} waiter;

static void waiter_done(stock_batch *batch)
{
    waiter *w = batch->user;
    pthread_mutex_lock(&w->mutex);
    w->finished = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mutex);
}

stock_code stock_execute(stock_t *store, stock_op *ops, size_t count)
{
    if (store == NULL || ops == NULL || count == 0 || count > STOCK_BATCH_MAX)
        return STOCK_INVALID;
    waiter w = {.batch = {.ops = ops, .count = count, .done = waiter_done}};
    w.batch.user = &w;
    pthread_mutex_init(&w.mutex, NULL);
    pthread_cond_init(&w.cond, NULL);
    stock_submit(store, &w.batch);
    pthread_mutex_lock(&w.mutex);
    while (!w.finished)
        pthread_cond_wait(&w.cond, &w.mutex);
    pthread_mutex_unlock(&w.mutex);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.mutex);
    return STOCK_OK;
}

/* Runs one op and copies its common outputs. */
static stock_code run_one(stock_t *store, stock_op *op, int64_t *available,
                          char *message)
{
    stock_code code = stock_execute(store, op, 1);
    assert(code == STOCK_OK);
    if (available != NULL && op->code != STOCK_NOT_FOUND &&
        op->code != STOCK_CONFLICT && op->code < STOCK_INVALID)
        *available = op->available;
    if (message != NULL)
        memcpy(message, op->message, STOCK_MESSAGE_MAX);
    return op->code;
}

stock_code stock_set(stock_t *store, const char *sku, int64_t level,
                     const int64_t *expect, int64_t *available, char *message)
{
    stock_op op = {.type = STOCK_OP_SET, .sku = stock_id_from_cstr(sku),
                   .amount = level};
    if (expect != NULL) {
        op.has_expect = true;
        op.expect = *expect;
    }
    return run_one(store, &op, available, message);
}

stock_code stock_add(stock_t *store, const char *sku, int64_t delta,
                     const char *adjust_id, int64_t *available, char *message)
{
    stock_op op = {.type = STOCK_OP_ADD, .sku = stock_id_from_cstr(sku),
                   .amount = delta};
    op.id = stock_id_from_cstr(adjust_id);
    return run_one(store, &op, available, message);
}

stock_code stock_deduct(stock_t *store, const char *line_id, const char *sku,
                        int64_t qty, int64_t *available, char *message)
{
    stock_op op = {.type = STOCK_OP_DEDUCT, .id = stock_id_from_cstr(line_id),
                   .sku = stock_id_from_cstr(sku), .amount = qty};
    return run_one(store, &op, available, message);
}

/* Runs an ORDER or a CONFIRM_ORDER and reports its failed line. */
static stock_code run_order(stock_t *store, stock_op_type type, const char *order_id,
                            stock_order_line *lines, uint32_t line_count,
                            int32_t *failed_line, char *message)
{
    stock_op op = {.type = type, .id = stock_id_from_cstr(order_id),
                   .lines = lines, .line_count = line_count};
    stock_code code = run_one(store, &op, NULL, message);
    if (failed_line != NULL)
        *failed_line = op.failed_line;
    return code;
}

stock_code stock_order(stock_t *store, const char *order_id,
                       stock_order_line *lines, uint32_t line_count,
                       int32_t *failed_line, char *message)
{
    return run_order(store, STOCK_OP_ORDER, order_id, lines, line_count, failed_line,
                     message);
}

stock_code stock_refund(stock_t *store, const char *refund_id,
                        const char *line_id, int64_t qty, int64_t *available,
                        char *message)
{
    stock_op op = {.type = STOCK_OP_REFUND, .id = stock_id_from_cstr(refund_id),
                   .line = stock_id_from_cstr(line_id), .amount = qty};
    return run_one(store, &op, available, message);
}

stock_code stock_get(stock_t *store, const char *sku, stock_sku_info *info,
                     char *message)
{
    stock_op op = {.type = STOCK_OP_GET, .sku = stock_id_from_cstr(sku)};
    stock_code code = run_one(store, &op, NULL, message);
    if (code == STOCK_OK && info != NULL)
        *info = op.info.sku_info;
    return code;
}

stock_code stock_line(stock_t *store, const char *line_id,
                      stock_line_info *info, char *message)
{
    stock_op op = {.type = STOCK_OP_LINE, .line = stock_id_from_cstr(line_id)};
    stock_code code = run_one(store, &op, NULL, message);
    if (code == STOCK_OK && info != NULL)
        *info = op.info.line_info;
    return code;
}

stock_code stock_hold(stock_t *store, const char *hold_id, const char *sku,
                      int64_t qty, int64_t ttl_ms, int64_t *available,
                      char *message)
{
    stock_op op = {.type = STOCK_OP_HOLD, .id = stock_id_from_cstr(hold_id),
                   .sku = stock_id_from_cstr(sku), .amount = qty,
                   .expect = ttl_ms};
    return run_one(store, &op, available, message);
}

stock_code stock_confirm(stock_t *store, const char *hold_id, int64_t qty,
                         int64_t *available, char *message)
{
    stock_op op = {.type = STOCK_OP_CONFIRM, .id = stock_id_from_cstr(hold_id),
                   .amount = qty};
    return run_one(store, &op, available, message);
}

stock_code stock_release(stock_t *store, const char *hold_id,
                         int64_t *available, char *message)
{
    stock_op op = {.type = STOCK_OP_RELEASE, .id = stock_id_from_cstr(hold_id)};
    return run_one(store, &op, available, message);
}

stock_code stock_confirm_order(stock_t *store, const char *order_id,
                               stock_order_line *lines, uint32_t line_count,
                               int32_t *failed_line, char *message)
{
    return run_order(store, STOCK_OP_CONFIRM_ORDER, order_id, lines, line_count,
                     failed_line, message);
}

stock_code stock_hold_get(stock_t *store, const char *hold_id,
                          stock_hold_info *info, char *message)
{
    stock_op op = {.type = STOCK_OP_HOLD_GET, .id = stock_id_from_cstr(hold_id)};
    stock_code code = run_one(store, &op, NULL, message);
    if (code == STOCK_OK && info != NULL)
        *info = op.info.hold_info;
    return code;
}

/* Checks a stock_list call's inputs into *request; the sentence on failure
 * goes to message (STOCK_MESSAGE_MAX bytes). */
static bool list_valid(stock_list_kind kind, const char *of, const char *after,
                       uint32_t max, list_request *request, char *message)
{
    *request = (list_request){kind, stock_id_from_cstr(of), stock_id_from_cstr(after), max};
    static const char *const of_names[] = {[STOCK_LIST_SKU_LINES] = "sku",
                                           [STOCK_LIST_ORDER_LINES] = "order id",
                                           [STOCK_LIST_LINE_REFUNDS] = "line id"};
    if (kind < STOCK_LIST_SKUS || kind > STOCK_LIST_LINE_REFUNDS)
        message_set(message, STOCK_MESSAGE_MAX, "unknown listing kind %d", (int)kind);
    else if (kind == STOCK_LIST_SKUS && of != NULL)
        message_set(message, STOCK_MESSAGE_MAX, "a listing of SKUs is of nothing: pass of = NULL");
    else if (kind != STOCK_LIST_SKUS && !stock_id_valid(request->of))
        message_set(message, STOCK_MESSAGE_MAX, "%s must be 1-64 printable ASCII characters without spaces",
                    of_names[kind]);
    else if (after != NULL && !stock_id_valid(request->after))
        message_set(message, STOCK_MESSAGE_MAX, "after must be 1-64 printable ASCII characters without spaces");
    else if (max < 1 || max > STOCK_LIST_MAX)
        message_set(message, STOCK_MESSAGE_MAX, "limit must be an integer in 1..%d", STOCK_LIST_MAX);
    else
        return true;
    return false;
}

stock_code stock_list(stock_t *store, stock_list_kind kind, const char *of,
                      const char *after, stock_list_entry *entries,
                      uint32_t max, uint32_t *count, char *message)
{
    assert(store != NULL && entries != NULL && count != NULL);
    *count = 0;
    char sentence[STOCK_MESSAGE_MAX] = "";
    list_request request;
    stock_code code = STOCK_INVALID;
    if (!list_valid(kind, of, after, max, &request, sentence)) {
        code = STOCK_INVALID;
    } else if (store->ops->list == NULL) {
        message_set(sentence, sizeof sentence, "the %s backend cannot list", store->ops->name);
        code = STOCK_UNSUPPORTED;
    } else {
        code = store->ops->list(store, &request, entries, count, sentence, sizeof sentence);
    }
    assert(*count <= max && (code == STOCK_OK || *count == 0));
    if (message != NULL)
        memcpy(message, sentence, sizeof sentence);
    return code;
}
