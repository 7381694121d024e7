/*
 * redis_uri.c -- the redis backend's options:
 * redis://[:password@]host[:port][,host[:port]...] with the query options of
 * docs/redis.md (several hosts: a Redis Cluster's seed nodes, cluster=1). Parsing is strict, as for the
 * postgres backend: an unknown, repeated or malformed option is refused and
 * the message says which, so that a typo never silently changes behaviour.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/redis.h"
#include "lib/message.h"
#include "lib/uri.h"

#define RD_SCHEME "redis://"
#define RD_PORT_DEFAULT 6379
#define RD_PORT_MAX 65535
#define RD_LAG_MAX 1000000000     /* outbox_lag_max, outbox_lag_max_ms */

static stock_code fail(char *message, size_t size, stock_code code, const char *format,
                       ...) __attribute__((format(printf, 4, 5)));

/* Says "redis URI: <what the format says>" in message; returns code. */
static stock_code fail(char *message, size_t size, stock_code code, const char *format, ...)
{
    char what[STOCK_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(what, sizeof what, format, args);
    va_end(args);
    message_set(message, size, "redis URI: %s", what);
    return code;
}

/* Percent-decodes the value of `name` into out (out_size bytes): refused
 * when empty, malformed (uri_decode says how) or longer than out_size - 1. */
static stock_code decode_value(const char *name, const char *value, size_t len, char *out,
                               size_t out_size, char *message, size_t size)
{
    size_t decoded_len = 0;
    const char *bad = uri_decode(value, len, out, out_size, &decoded_len);
    if (bad != NULL)
        return fail(message, size, STOCK_INVALID, "%s: %s", name, bad);
    if (decoded_len == 0 || decoded_len >= out_size)
        return fail(message, size, STOCK_INVALID, "%s must be 1..%zu bytes (percent-encoded)",
                    name, out_size - 1);
    return STOCK_OK;
}

/* Reads value[0..len) as an integer in min..max into *out. */
static stock_code parse_number(const char *name, const char *value, size_t len, int min,
                               int max, int *out, char *message, size_t size)
{
    uint64_t number = 0;
    if (!uri_parse_uint(value, len, (uint64_t)min, (uint64_t)max, &number))
        return fail(message, size, STOCK_INVALID, "%s must be an integer in %d..%d, not '%.*s'",
                    name, min, max, (int)len, value);
    *out = (int)number;
    return STOCK_OK;
}

/* A prefix must keep keys readable and their hash tags intact. */
static bool prefix_valid(const char *prefix)
{
    for (const char *c = prefix; *c != '\0'; c++)
        if (*c < 0x21 || *c > 0x7E || *c == '{' || *c == '}')
            return false;
    return true;
}

typedef enum rd_option_name {
    RD_OPT_PREFIX, RD_OPT_PASSWORD, RD_OPT_TIMEOUT, RD_OPT_WAIT, RD_OPT_BUCKETS,
    RD_OPT_FUSED, RD_OPT_CLUSTER, RD_OPT_LAG_RECORDS, RD_OPT_LAG_MS, RD_OPT_OUTBOX, RD_OPT_COUNT
} rd_option_name;

static const char *const option_names[RD_OPT_COUNT] = {
    [RD_OPT_PREFIX] = "prefix", [RD_OPT_PASSWORD] = "password",
    [RD_OPT_TIMEOUT] = "timeout_ms", [RD_OPT_WAIT] = "wait", [RD_OPT_BUCKETS] = "buckets",
    [RD_OPT_FUSED] = "fused", [RD_OPT_CLUSTER] = "cluster",
    [RD_OPT_LAG_RECORDS] = "outbox_lag_max", [RD_OPT_LAG_MS] = "outbox_lag_max_ms",
    [RD_OPT_OUTBOX] = "outbox",
};

/* Applies option `which` with value[0..len). */
static stock_code apply_option(rd_options *options, rd_option_name which, const char *value,
                               size_t len, char *message, size_t size)
{
    int number = 0;
    stock_code code = STOCK_OK;
    switch (which) {
    case RD_OPT_PREFIX:
        code = decode_value("prefix", value, len, options->prefix, sizeof options->prefix,
                            message, size);
        if (code == STOCK_OK && !prefix_valid(options->prefix))
            return fail(message, size, STOCK_INVALID, "prefix must be printable characters "
                        "without spaces, '{' or '}' (they would break the hash tags)");
        return code;
    case RD_OPT_PASSWORD:
        return decode_value("password", value, len, options->password,
                            sizeof options->password, message, size);
    case RD_OPT_TIMEOUT:
        return parse_number("timeout_ms", value, len, 1, RD_TIMEOUT_MS_MAX,
                            &options->timeout_ms, message, size);
    case RD_OPT_WAIT:
        return parse_number("wait", value, len, 0, RD_WAIT_MAX, &options->wait_replicas,
                            message, size);
    case RD_OPT_BUCKETS:
        code = parse_number("buckets", value, len, 1, RD_BUCKETS_MAX, &number, message, size);
        options->buckets = (uint32_t)number;
        return code;
    case RD_OPT_FUSED:
        code = parse_number("fused", value, len, 0, 1, &number, message, size);
        options->fused = number == 1;
        return code;
    case RD_OPT_CLUSTER:
        code = parse_number("cluster", value, len, 0, 1, &number, message, size);
        options->cluster = number == 1;
        return code;
    case RD_OPT_LAG_RECORDS:
        return parse_number("outbox_lag_max", value, len, 0, RD_LAG_MAX, &options->lag_max_records,
                            message, size);
    case RD_OPT_LAG_MS:
        return parse_number("outbox_lag_max_ms", value, len, 0, RD_LAG_MAX, &options->lag_max_ms,
                            message, size);
    case RD_OPT_OUTBOX:
        code = parse_number("outbox", value, len, 0, 1, &number, message, size);
        options->outbox = number == 1;
        return code;
    case RD_OPT_COUNT:
        break;
    }
    assert(!"unknown option");
    return STOCK_INVALID;
}

/* Reads the query (after '?'): name=value items joined by '&'. */
static stock_code parse_query(rd_options *options, const char *query, char *message,
                              size_t size)
{
    bool seen[RD_OPT_COUNT] = {false};
    uri_option option;
    while (uri_option_next(&query, &option)) {
        if (!option.has_value)
            return fail(message, size, STOCK_INVALID, "option '%.*s' has no value",
                        (int)option.key_len, option.key);
        rd_option_name which = RD_OPT_COUNT;
        for (int i = 0; i < RD_OPT_COUNT; i++)
            if (uri_is(option.key, option.key_len, option_names[i]))
                which = (rd_option_name)i;
        if (which == RD_OPT_COUNT)
            return fail(message, size, STOCK_INVALID, "unknown option '%.*s' (prefix, "
                        "password, timeout_ms, wait, buckets, fused, cluster, outbox_lag_max, "
                        "outbox_lag_max_ms, outbox are known)",
                        (int)option.key_len, option.key);
        if (seen[which])
            return fail(message, size, STOCK_INVALID, "option '%.*s' given twice",
                        (int)option.key_len, option.key);
        seen[which] = true;
        stock_code code = apply_option(options, which, option.value, option.value_len,
                                       message, size);
        if (code != STOCK_OK)
            return code;
    }
    return STOCK_OK;
}

/* Reads host[:port] from text[0..len) into *at. */
static stock_code parse_endpoint(rd_endpoint *at, const char *text, size_t len, char *message,
                                 size_t size)
{
    const char *colon = memchr(text, ':', len);
    size_t host_len = colon != NULL ? (size_t)(colon - text) : len;
    if (host_len == 0 || host_len > RD_HOST_MAX)
        return fail(message, size, STOCK_INVALID, "a host of 1..%d bytes is needed: "
                    "redis://host:port[,host:port...]", RD_HOST_MAX);
    memcpy(at->host, text, host_len);
    at->host[host_len] = '\0';
    at->port = RD_PORT_DEFAULT;
    if (colon == NULL)
        return STOCK_OK;
    return parse_number("the port", colon + 1, len - host_len - 1, 1, RD_PORT_MAX, &at->port,
                        message, size);
}

/* Reads the hosts, host[:port] joined by ',', from text[0..len). */
static stock_code parse_hosts(rd_options *options, const char *text, size_t len,
                              char *message, size_t size)
{
    const char *end = text + len;
    for (;;) {
        const char *comma = memchr(text, ',', (size_t)(end - text));
        size_t item = comma != NULL ? (size_t)(comma - text) : (size_t)(end - text);
        if (options->seed_count == RD_SEEDS_MAX)
            return fail(message, size, STOCK_INVALID, "more than %d hosts", RD_SEEDS_MAX);
        rd_endpoint *at = &options->seeds[options->seed_count];
        stock_code code = parse_endpoint(at, text, item, message, size);
        if (code != STOCK_OK)
            return code;
        for (int i = 0; i < options->seed_count; i++)
            if (options->seeds[i].port == at->port && strcmp(options->seeds[i].host, at->host) == 0)
                return fail(message, size, STOCK_INVALID, "host %s:%d given twice", at->host,
                            at->port);
        options->seed_count++;
        if (comma == NULL)
            return STOCK_OK;
        text = comma + 1;
    }
}

/* Reads [:password@]hosts from authority[0..len). */
static stock_code parse_authority(rd_options *options, const char *authority, size_t len,
                                  char *message, size_t size)
{
    const char *at = memchr(authority, '@', len);
    if (at != NULL) {
        if (authority[0] != ':')
            return fail(message, size, STOCK_INVALID, "the part before '@' must be "
                        ":password (no user name is served)");
        stock_code code = decode_value("password", authority + 1,
                                       (size_t)(at - authority - 1), options->password,
                                       sizeof options->password, message, size);
        if (code != STOCK_OK)
            return code;
        len -= (size_t)(at + 1 - authority);
        authority = at + 1;
    }
    return parse_hosts(options, authority, len, message, size);
}

stock_code rd_options_parse(const char *uri, const stock_config *config,
                            rd_options *options, char *message, size_t size)
{
    assert(uri != NULL && config != NULL && options != NULL);
    memset(options, 0, sizeof *options);
    options->timeout_ms = RD_TIMEOUT_MS_DEFAULT;
    options->buckets = config->buckets > 1 ? config->buckets : 1;
    options->fused = true;
    options->outbox = true;
    size_t len = strnlen(uri, RD_URI_MAX + 1);
    if (len > RD_URI_MAX)
        return fail(message, size, STOCK_INVALID, "longer than %d bytes", RD_URI_MAX);
    if (strncmp(uri, RD_SCHEME, strlen(RD_SCHEME)) != 0)
        return fail(message, size, STOCK_INVALID, "must start with " RD_SCHEME);
    if (config->buckets > RD_BUCKETS_MAX)
        return fail(message, size, STOCK_INVALID, "config buckets must be 1..%d",
                    RD_BUCKETS_MAX);
    const char *authority = uri + strlen(RD_SCHEME);
    size_t authority_len = strcspn(authority, "/?");
    stock_code code = parse_authority(options, authority, authority_len, message, size);
    const char *rest = authority + authority_len;
    if (code == STOCK_OK && *rest == '/' && rest[1] != '\0' && rest[1] != '?')
        return fail(message, size, STOCK_INVALID, "no database path is served (the store "
                    "uses database 0): '%.*s'", (int)strcspn(rest, "?"), rest);
    rest += *rest == '/';
    if (code == STOCK_OK && *rest == '?')
        code = parse_query(options, rest + 1, message, size);
    if (code == STOCK_OK && options->seed_count > 1 && !options->cluster)
        return fail(message, size, STOCK_INVALID, "several hosts name a Redis Cluster's seed "
                    "nodes: add cluster=1 (one server takes one host)");
    if (code == STOCK_OK && !options->outbox &&
        (options->lag_max_records > 0 || options->lag_max_ms > 0))
        return fail(message, size, STOCK_INVALID, "outbox_lag_max and outbox_lag_max_ms limit "
                    "how far the outbox's readers are behind; with outbox=0 there is no outbox");
    assert(code != STOCK_OK || options->seeds[0].port > 0);
    return code;
}
