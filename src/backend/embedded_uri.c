/*
 * embedded_uri.c -- parses the embedded backend's URI (embedded_uri.h):
 * the data folder path and the query parameters that override stock_config.
 */
#include <assert.h>
#include <ctype.h>
#include <string.h>

#include "backend/embedded_uri.h"
#include "journal/journal.h"
#include "lib/message.h"
#include "lib/uri.h"

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

/* A duration: digits and an optional unit (ms, s, m, h, d; s without
 * one), at most EMBEDDED_RETENTION_MS_MAX. */
static bool parse_duration_ms(const char *text, size_t len, uint64_t *ms)
{
    static const struct { const char *unit; uint64_t ms; } units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    size_t digits = 0;
    while (digits < len && text[digits] >= '0' && text[digits] <= '9')
        digits++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        uint64_t count;
        if (!uri_is(text + digits, len - digits, units[i].unit) ||
            !uri_parse_uint(text, digits, 0, EMBEDDED_RETENTION_MS_MAX / units[i].ms, &count))
            continue;
        *ms = count * units[i].ms;
        return true;
    }
    return false;
}

/* One "key=value" of the query (lib/uri.h). */
static stock_code parse_parameter(const uri_option *option, embedded_uri *out,
                                  char *message, size_t size)
{
    int key_len = (int)option->key_len, value_len = (int)option->value_len;
    const char *key = option->key, *value = option->value;
    if (!option->has_value) {
        message_set(message, size, "store URI parameter '%.*s' has no value", key_len, key);
        return STOCK_INVALID;
    }
    if (uri_is(key, option->key_len, "durability")) {
        if (uri_is(value, option->value_len, "sync"))
            out->durability = STOCK_DURABILITY_SYNC;
        else if (uri_is(value, option->value_len, "relaxed"))
            out->durability = STOCK_DURABILITY_RELAXED;
        else {
            message_set(message, size, "durability must be sync or relaxed, not '%.*s'",
                        value_len, value);
            return STOCK_INVALID;
        }
        return STOCK_OK;
    }
    if (uri_is(key, option->key_len, "snapshot_log_bytes")) {
        if (!uri_parse_uint(value, option->value_len, EMBEDDED_SNAPSHOT_BYTES_MIN,
                            EMBEDDED_SNAPSHOT_BYTES_MAX, &out->snapshot_log_bytes)) {
            message_set(message, size, "snapshot_log_bytes must be an integer in "
                        "4096..2^50, not '%.*s'", value_len, value);
            return STOCK_INVALID;
        }
        return STOCK_OK;
    }
    /* Durations: retention (0: off) and forget (0: never). */
    uint64_t *duration = uri_is(key, option->key_len, "retention") ? &out->retention_ms
                         : uri_is(key, option->key_len, "forget")  ? &out->forget_ms
                                                                    : NULL;
    if (duration != NULL) {
        if (!parse_duration_ms(value, option->value_len, duration)) {
            message_set(message, size, "%.*s must be 0 or a whole number with a unit ms, s, "
                        "m, h or d (seconds without one), at most 10 years, not '%.*s'",
                        key_len, key, value_len, value);
            return STOCK_INVALID;
        }
        return STOCK_OK;
    }
    message_set(message, size, "unknown store URI parameter '%.*s' (known: durability, "
                "snapshot_log_bytes, retention, forget)", key_len, key);
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
    const char *query = path + path_len + 1;
    stock_code code = STOCK_OK;
    uri_option option;
    while (code == STOCK_OK && uri_option_next(&query, &option))
        code = parse_parameter(&option, out, message, message_size);
    assert(code != STOCK_OK || out->snapshot_log_bytes > 0);
    /* Forgetting what is still in memory would make no sense. */
    if (code == STOCK_OK && out->forget_ms > 0 &&
        (out->retention_ms == 0 || out->forget_ms <= out->retention_ms)) {
        message_set(message, message_size, "forget must be longer than retention (and "
                    "retention on): %llu ms is not more than %llu ms",
                    (unsigned long long)out->forget_ms, (unsigned long long)out->retention_ms);
        return STOCK_INVALID;
    }
    return code;
}
