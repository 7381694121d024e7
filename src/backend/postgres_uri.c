/*
 * postgres_uri.c -- the postgres backend's options: the stock_* query
 * parameters of a postgres:// URI (stripped before the URI reaches libpq,
 * which would reject them) and their stock_config equivalents.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "backend/postgres.h"
#include "lib/message.h"
#include "lib/uri.h"

#define PG_PARAM_PREFIX "stock_"

static stock_code fail(char *message, size_t size, const char *what)
{
    message_set(message, size, "postgres URI: %s", what);
    return STOCK_INVALID;
}

bool pg_uri_accepts(const char *uri)
{
    return strncmp(uri, "postgres://", 11) == 0 ||
           strncmp(uri, "postgresql://", 13) == 0;
}

/* stock_replica: a %-encoded URI (lib/uri.h), decoded into a new string. */
static stock_code apply_replica(pg_options *options, const uri_option *option,
                                char *message, size_t size)
{
    char *replica = malloc(option->value_len + 1);
    if (replica == NULL)
        return STOCK_NOMEM;
    const char *bad = uri_decode(option->value, option->value_len, replica,
                                 option->value_len + 1, NULL);
    if (bad == NULL && pg_uri_accepts(replica)) {
        free(options->replica_conninfo);
        options->replica_conninfo = replica;
        return STOCK_OK;
    }
    free(replica);
    if (bad == NULL)
        return fail(message, size, "stock_replica must be a percent-encoded "
                                   "postgres:// or postgresql:// URI");
    message_set(message, size, "postgres URI: stock_replica: %s", bad);
    return STOCK_INVALID;
}

/* Applies one stock_* parameter. */
static stock_code apply_param(pg_options *options, const uri_option *option,
                              char *message, size_t size)
{
    const char *value = option->value;
    size_t value_len = option->value_len;
    if (uri_is(option->key, option->key_len, "stock_merge")) {
        if (value_len != 1 || (value[0] != '0' && value[0] != '1'))
            return fail(message, size, "stock_merge must be 0 or 1");
        options->merge = value[0] == '1';
        return STOCK_OK;
    }
    if (uri_is(option->key, option->key_len, "stock_buckets")) {
        uint64_t buckets = 0;
        if (!uri_parse_uint(value, value_len, 1, PG_BUCKETS_MAX, &buckets))
            return fail(message, size, "stock_buckets must be an integer in 1..64");
        options->buckets = (uint32_t)buckets;
        return STOCK_OK;
    }
    if (uri_is(option->key, option->key_len, "stock_timeout_ms")) {
        uint64_t timeout = 0;
        if (!uri_parse_uint(value, value_len, PG_TIMEOUT_MS_MIN, PG_TIMEOUT_MS_MAX, &timeout))
            return fail(message, size, "stock_timeout_ms must be an integer in 100..3600000");
        options->timeout_ms = (uint32_t)timeout;
        return STOCK_OK;
    }
    if (uri_is(option->key, option->key_len, "stock_replica"))
        return apply_replica(options, option, message, size);
    message_set(message, size, "postgres URI: unknown parameter '%.*s' "
                "(stock_merge, stock_buckets, stock_replica, stock_timeout_ms are known)",
                (int)option->key_len, option->key);
    return STOCK_INVALID;
}

/* Copies the query parameters of query (after '?') that are not ours onto
 * options->conninfo and applies ours. */
static stock_code split_query(pg_options *options, const char *query, char *message,
                              size_t size)
{
    bool first = true;
    uri_option option;
    while (uri_option_next(&query, &option)) {
        size_t prefix = strlen(PG_PARAM_PREFIX);
        if (option.key_len >= prefix && memcmp(option.key, PG_PARAM_PREFIX, prefix) == 0) {
            stock_code code = apply_param(options, &option, message, size);
            if (code != STOCK_OK)
                return code;
            continue;
        }
        strcat(options->conninfo, first ? "?" : "&");
        strncat(options->conninfo, option.key, option.length);
        first = false;
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
    if (!pg_uri_accepts(uri))
        return fail(message, size, "must start with postgres:// or postgresql://");
    if (config->buckets > PG_BUCKETS_MAX)
        return fail(message, size, "config buckets must be 0..64");
    if (config->replica_uri != NULL && !pg_uri_accepts(config->replica_uri))
        return fail(message, size, "config replica_uri must be a postgres:// or "
                                   "postgresql:// URI");
    options->buckets = config->buckets == 0 ? 1 : config->buckets;
    options->merge = !config->no_merge;
    options->synchronous = config->durability == STOCK_DURABILITY_SYNC;
    options->timeout_ms = PG_TIMEOUT_MS_DEFAULT;
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
