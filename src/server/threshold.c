/*
 * threshold.c -- THRESHOLD and the thresholds routes (threshold.h): find
 * the data folder of the embedded store the server runs, then read or
 * rewrite its thresholds file (lib/thresholds.h).
 */
#include <stdio.h>
#include <string.h>

#include "backend/embedded_uri.h"
#include "lib/message.h"
#include "lib/thresholds.h"
#include "server/commands.h"
#include "server/conn.h"
#include "server/threshold.h"

stock_code threshold_store_folder(const server *srv, char *path, size_t size, char *message,
                                  size_t message_size)
{
    const char *backend = stock_backend_name(srv->store);
    if (strcmp(backend, "embedded") != 0) {
        message_set(message, message_size, "thresholds live in the data folder of an embedded "
                    "store; this server's store is %s", backend);
        return STOCK_UNSUPPORTED;
    }
    static embedded_uri uri;   /* PATH_MAX: too big for the loop's stack; loop thread only */
    const stock_config defaults = {0};
    if (embedded_uri_parse(srv->cfg->store, &defaults, &uri, message, message_size) != STOCK_OK)
        return STOCK_INVALID;   /* not reached: the store opened with it */
    if ((size_t)snprintf(path, size, "%s", uri.path) >= size) {
        message_set(message, message_size, "the data folder's path is too long");
        return STOCK_INVALID;
    }
    return STOCK_OK;
}

/* The thresholds file of srv's store. */
static stock_code file_of(const server *srv, char *path, size_t size, char *message,
                          size_t message_size)
{
    stock_code code = threshold_store_folder(srv, path, size, message, message_size);
    size_t len = strlen(path);
    if (code == STOCK_OK && snprintf(path + len, size - len, "/%s", THRESHOLDS_FILE) >= (int)(size - len)) {
        message_set(message, message_size, "the data folder's path is too long");
        return STOCK_INVALID;
    }
    return code;
}

stock_code threshold_run(const server *srv, const char *sku, size_t sku_len, bool set,
                         int64_t *value, char *message, size_t message_size)
{
    stock_id id = {sku, sku_len};
    if (!stock_id_valid(id)) {
        message_set(message, message_size, "sku must be 1..%d bytes of printable ASCII "
                    "without space", STOCK_ID_MAX);
        return STOCK_INVALID;
    }
    if (set && *value < 0) {
        message_set(message, message_size, "threshold must be 0..%lld (0 removes it)",
                    (long long)INT64_MAX);
        return STOCK_INVALID;
    }
    static char path[EMBEDDED_PATH_MAX + sizeof THRESHOLDS_FILE + 1];
    stock_code code = file_of(srv, path, sizeof path, message, message_size);
    if (code != STOCK_OK)
        return code;
    char name[STOCK_ID_MAX + 1];
    memcpy(name, sku, sku_len);
    name[sku_len] = '\0';
    if (set)
        return thresholds_store(path, name, *value, message, message_size) ? STOCK_OK : STOCK_IO;
    thresholds all = {0};
    if (!thresholds_load(path, &all, message, message_size))
        return STOCK_IO;
    *value = thresholds_of(&all, name);
    thresholds_free(&all);
    return STOCK_OK;
}

void threshold_command(conn *c, const resp_request *r)
{
    if (r->argc != 2 && r->argc != 3) {
        commands_reply_error(c, "ERR", "wrong number of arguments for 'threshold' command");
        return;
    }
    int64_t value = 0;
    if (r->argc == 3 && !resp_arg_int64(r->argv[2], &value)) {
        commands_reply_error(c, "INVALID", "threshold must be an integer");
        return;
    }
    char message[STOCK_MESSAGE_MAX];
    stock_code code = threshold_run(c->srv, r->argv[1].ptr, r->argv[1].len, r->argc == 3,
                                    &value, message, sizeof message);
    if (code != STOCK_OK)
        commands_reply_error(c, stock_code_name(code), "%s", message);
    else
        commands_reply_integer(c, value);
}
