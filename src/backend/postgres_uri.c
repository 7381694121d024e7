/*
 * postgres_uri.c -- the postgres backend's options: the stock_* query
 * parameters of a postgres:// URI (stripped before the URI reaches libpq,
 * which would reject them) and their stock_config equivalents.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/postgres.h"
#include "lib/message.h"

#define PG_PARAM_PREFIX "stock_"

static stock_code fail(char *message, size_t size, const char *what)
{
    message_set(message, size, "postgres URI: %s", what);
    return STOCK_INVALID;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX escapes of text[0..len) into a new string; NULL if an escape is
 * malformed or decodes to NUL, or on out of memory. */
static char *percent_decode(const char *text, size_t len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '%') {
            out[used++] = text[i];
            continue;
        }
        int high = i + 2 < len ? hex_value(text[i + 1]) : -1;
        int low = i + 2 < len ? hex_value(text[i + 2]) : -1;
        if (high < 0 || low < 0 || (high == 0 && low == 0)) {
            free(out);
            return NULL;
        }
        out[used++] = (char)(high * 16 + low);
        i += 2;
    }
    out[used] = '\0';
    assert(used <= len);
    return out;
}

static bool has_postgres_scheme(const char *uri)
{
    return strncmp(uri, "postgres://", 11) == 0 ||
           strncmp(uri, "postgresql://", 13) == 0;
}

/* Applies one stock_* parameter (name and value not NUL-terminated). */
static stock_code apply_param(pg_options *options, const char *name, size_t name_len,
                              const char *value, size_t value_len, char *message,
                              size_t size)
{
    if (name_len == 11 && memcmp(name, "stock_merge", 11) == 0) {
        if (value_len != 1 || (value[0] != '0' && value[0] != '1'))
            return fail(message, size, "stock_merge must be 0 or 1");
        options->merge = value[0] == '1';
        return STOCK_OK;
    }
    if (name_len == 13 && memcmp(name, "stock_buckets", 13) == 0) {
        uint32_t buckets = 0;
        for (size_t i = 0; i < value_len && buckets <= PG_BUCKETS_MAX; i++)
            buckets = value[i] >= '0' && value[i] <= '9'
                          ? buckets * 10 + (uint32_t)(value[i] - '0')
                          : PG_BUCKETS_MAX + 1;
        if (value_len == 0 || buckets < 1 || buckets > PG_BUCKETS_MAX)
            return fail(message, size, "stock_buckets must be an integer in 1..64");
        options->buckets = buckets;
        return STOCK_OK;
    }
    if (name_len == 13 && memcmp(name, "stock_replica", 13) == 0) {
        char *replica = percent_decode(value, value_len);
        if (replica == NULL || !has_postgres_scheme(replica)) {
            free(replica);
            return fail(message, size, "stock_replica must be a percent-encoded "
                                       "postgres:// or postgresql:// URI");
        }
        free(options->replica_conninfo);
        options->replica_conninfo = replica;
        return STOCK_OK;
    }
    message_set(message, size, "postgres URI: unknown parameter '%.*s' "
                "(stock_merge, stock_buckets, stock_replica are known)",
                (int)name_len, name);
    return STOCK_INVALID;
}

/* Copies the query parameters of query (after '?') that are not ours onto
 * options->conninfo and applies ours. */
static stock_code split_query(pg_options *options, const char *query, char *message,
                              size_t size)
{
    bool first = true;
    while (*query != '\0') {
        size_t len = strcspn(query, "&");
        const char *equals = memchr(query, '=', len);
        size_t name_len = equals != NULL ? (size_t)(equals - query) : len;
        if (name_len >= strlen(PG_PARAM_PREFIX) &&
            memcmp(query, PG_PARAM_PREFIX, strlen(PG_PARAM_PREFIX)) == 0) {
            const char *value = equals != NULL ? equals + 1 : query + len;
            stock_code code = apply_param(options, query, name_len, value,
                                          (size_t)(query + len - value), message, size);
            if (code != STOCK_OK)
                return code;
        } else if (len > 0) {
            strcat(options->conninfo, first ? "?" : "&");
            strncat(options->conninfo, query, len);
            first = false;
        }
        query += len + (query[len] == '&');
    }
    return STOCK_OK;
}

stock_code pg_options_parse(const char *uri, const stock_config *config,
                            pg_options *options, char *message, size_t size)
{
    assert(uri != NULL && config != NULL && options != NULL);
    memset(options, 0, sizeof *options);
    size_t len = strnlen(uri, PG_URI_MAX + 1);
    if (len > PG_URI_MAX)
        return fail(message, size, "longer than 4096 bytes");
    if (!has_postgres_scheme(uri))
        return fail(message, size, "must start with postgres:// or postgresql://");
    if (config->buckets > PG_BUCKETS_MAX)
        return fail(message, size, "config buckets must be 0..64");
    if (config->replica_uri != NULL && !has_postgres_scheme(config->replica_uri))
        return fail(message, size, "config replica_uri must be a postgres:// or "
                                   "postgresql:// URI");
    options->buckets = config->buckets == 0 ? 1 : config->buckets;
    options->merge = config->merge;
    options->synchronous = config->durability == STOCK_DURABILITY_SYNC;
    options->conninfo = calloc(1, len + 1);
    if (config->replica_uri != NULL)
        options->replica_conninfo = strdup(config->replica_uri);
    if (options->conninfo == NULL ||
        (config->replica_uri != NULL && options->replica_conninfo == NULL)) {
        pg_options_free(options);
        return STOCK_NOMEM;
    }
    const char *query = strchr(uri, '?');
    size_t base = query != NULL ? (size_t)(query - uri) : len;
    memcpy(options->conninfo, uri, base);
    stock_code code = query != NULL ? split_query(options, query + 1, message, size)
                                    : STOCK_OK;
    if (code != STOCK_OK)
        pg_options_free(options);
    assert(code != STOCK_OK || strlen(options->conninfo) <= len);
    return code;
}

void pg_options_free(pg_options *options)
{
    free(options->conninfo);
    free(options->replica_conninfo);
    options->conninfo = NULL;
    options->replica_conninfo = NULL;
}
