/*
 * embedded_uri.c -- parses the embedded backend's URI (embedded_uri.h):
 * the data folder path and the query parameters that override stock_config.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/embedded_uri.h"
#include "journal/journal.h"
#include "lib/message.h"

bool embedded_uri_accepts(const char *uri)
{
    assert(uri != NULL);
    if (strncmp(uri, "file:", 5) == 0)
        return true;
    const char *separator = strstr(uri, "://");
    if (separator == NULL)
        return true;
    /* "a/b://c" is a path; only [A-Za-z][A-Za-z0-9+.-]* is a scheme. */
    if (separator == uri || !isalpha((unsigned char)uri[0]))
        return true;
    for (const char *p = uri; p < separator; p++)
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '.' && *p != '-')
            return true;
    return false;
}

static stock_code parse_bytes(const char *value, uint64_t *bytes, char *message,
                              size_t size)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(value, &end, 10);
    if (!isdigit((unsigned char)value[0]) || *end != '\0' || errno != 0 ||
        n < EMBEDDED_SNAPSHOT_BYTES_MIN || n > EMBEDDED_SNAPSHOT_BYTES_MAX) {
        message_set(message, size, "snapshot_log_bytes must be an integer in 4096..2^50, "
            "not '%s'", value);
        return STOCK_INVALID;
    }
    *bytes = n;
    return STOCK_OK;
}

/* One "key=value" of the query (text is modified in place). */
static stock_code parse_parameter(char *text, embedded_uri *out, char *message,
                                  size_t size)
{
    char *value = strchr(text, '=');
    if (value == NULL) {
        message_set(message, size, "store URI parameter '%s' has no value", text);
        return STOCK_INVALID;
    }
    *value++ = '\0';
    if (strcmp(text, "durability") == 0) {
        if (strcmp(value, "sync") == 0)
            out->durability = STOCK_DURABILITY_SYNC;
        else if (strcmp(value, "relaxed") == 0)
            out->durability = STOCK_DURABILITY_RELAXED;
        else {
            message_set(message, size, "durability must be sync or relaxed, not '%s'", value);
            return STOCK_INVALID;
        }
        return STOCK_OK;
    }
    if (strcmp(text, "snapshot_log_bytes") == 0)
        return parse_bytes(value, &out->snapshot_log_bytes, message, size);
    message_set(message, size, "unknown store URI parameter '%s' (known: durability, "
        "snapshot_log_bytes)", text);
    return STOCK_INVALID;
}

/* The path part: "file:" and an empty "//" authority stripped. */
static const char *path_start(const char *uri, char *message, size_t size)
{
    if (strncmp(uri, "file:", 5) != 0)
        return uri;
    uri += 5;
    if (strncmp(uri, "//", 2) != 0)
        return uri;
    if (uri[2] != '/') {
        message_set(message, size, "a file: URI takes no host: '%s'", uri);
        return NULL;
    }
    return uri + 2;
}

stock_code embedded_uri_parse(const char *uri, const stock_config *config,
                              embedded_uri *out, char *message,
                              size_t message_size)
{
    assert(uri != NULL && config != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    out->durability = config->durability;
    out->snapshot_log_bytes = config->snapshot_log_bytes != 0
                                  ? config->snapshot_log_bytes
                                  : JOURNAL_SNAPSHOT_LOG_BYTES_DEFAULT;
    if (config->snapshot_log_bytes != 0 &&
        (config->snapshot_log_bytes < EMBEDDED_SNAPSHOT_BYTES_MIN ||
         config->snapshot_log_bytes > EMBEDDED_SNAPSHOT_BYTES_MAX)) {
        message_set(message, message_size, "config snapshot_log_bytes must be 0 "
            "(default) or in 4096..2^50");
        return STOCK_INVALID;
    }
    if (config->durability != STOCK_DURABILITY_SYNC &&
        config->durability != STOCK_DURABILITY_RELAXED) {
        message_set(message, message_size, "config durability is neither sync nor relaxed");
        return STOCK_INVALID;
    }
    const char *path = path_start(uri, message, message_size);
    if (path == NULL)
        return STOCK_INVALID;
    size_t path_len = strcspn(path, "?");
    if (path_len == 0 || path_len >= sizeof out->path) {
        message_set(message, message_size, "the data folder path in '%s' is empty or too long", uri);
        return STOCK_INVALID;
    }
    memcpy(out->path, path, path_len);
    out->path[path_len] = '\0';
    if (path[path_len] == '\0')
        return STOCK_OK;
    char *query = strdup(path + path_len + 1);
    if (query == NULL)
        return STOCK_NOMEM;
    stock_code code = STOCK_OK;
    char *save = NULL;
    for (char *item = strtok_r(query, "&", &save); item != NULL && code == STOCK_OK;
         item = strtok_r(NULL, "&", &save))
        code = parse_parameter(item, out, message, message_size);
    free(query);
    assert(code != STOCK_OK || out->snapshot_log_bytes > 0);
    return code;
}
