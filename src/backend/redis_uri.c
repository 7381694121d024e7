/*
 * redis_uri.c -- the redis backend's options: redis://[:password@]host[:port]
 * with the query options of docs/redis.md. Parsing is strict, as for the
 * postgres backend: an unknown, repeated or malformed option is refused and
 * the message says which, so that a typo never silently changes behaviour.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/redis.h"

#define RD_SCHEME "redis://"
#define RD_PORT_DEFAULT 6379

/* shared: replaced by src/lib when issue 9's plumbing lands */
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

/* shared: replaced by src/lib when issue 9's plumbing lands */
/* Decodes the %XX escapes of text[0..len) into out (size bytes). False if an
 * escape is malformed or decodes to NUL, or the result does not fit. */
static bool percent_decode(const char *text, size_t len, char *out, size_t size)
{
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '%') {
            int high = i + 2 < len ? hex_value(text[i + 1]) : -1;
            int low = i + 2 < len ? hex_value(text[i + 2]) : -1;
            if (high < 0 || low < 0 || (high == 0 && low == 0))
                return false;
            c = (char)(high * 16 + low);
            i += 2;
        }
        if (used + 1 >= size)
            return false;
        out[used++] = c;
    }
    out[used] = '\0';
    return true;
}

static stock_code fail(char *message, size_t size, stock_code code, const char *format,
                       const char *detail, size_t detail_len)
{
    if (message != NULL && size > 0) {
        char what[STOCK_MESSAGE_MAX];
        snprintf(what, sizeof what, format, (int)detail_len, detail);
        snprintf(message, size, "redis URI: %s", what);
    }
    return code;
}

/* Reads a decimal integer in lo..hi from value[0..len). */
static bool parse_int(const char *value, size_t len, long lo, long hi, long *out)
{
    if (len == 0 || len > 10)
        return false;
    long n = 0;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9')
            return false;
        n = n * 10 + (value[i] - '0');
    }
    *out = n;
    return n >= lo && n <= hi;
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
    RD_OPT_FUSED, RD_OPT_COUNT
} rd_option_name;

static const char *const option_names[RD_OPT_COUNT] = {
    [RD_OPT_PREFIX] = "prefix", [RD_OPT_PASSWORD] = "password",
    [RD_OPT_TIMEOUT] = "timeout_ms", [RD_OPT_WAIT] = "wait", [RD_OPT_BUCKETS] = "buckets",
    [RD_OPT_FUSED] = "fused",
};

/* Applies option `which` with value[0..len). */
static stock_code apply_option(rd_options *options, rd_option_name which, const char *value,
                               size_t len, char *message, size_t size)
{
    long n = 0;
    switch (which) {
    case RD_OPT_PREFIX:
        if (!percent_decode(value, len, options->prefix, sizeof options->prefix) ||
            !prefix_valid(options->prefix))
            return fail(message, size, STOCK_INVALID, "prefix must be up to 64 printable "
                        "characters without spaces, '{' or '}'%.*s", "", 0);
        return STOCK_OK;
    case RD_OPT_PASSWORD:
        if (len == 0 || !percent_decode(value, len, options->password, sizeof options->password))
            return fail(message, size, STOCK_INVALID, "password must be 1..255 bytes, "
                        "percent-encoded%.*s", "", 0);
        return STOCK_OK;
    case RD_OPT_TIMEOUT:
        if (!parse_int(value, len, 1, RD_TIMEOUT_MS_MAX, &n))
            return fail(message, size, STOCK_INVALID,
                        "timeout_ms must be an integer in 1..3600000, not '%.*s'", value, len);
        options->timeout_ms = (int)n;
        return STOCK_OK;
    case RD_OPT_WAIT:
        if (!parse_int(value, len, 0, RD_WAIT_MAX, &n))
            return fail(message, size, STOCK_INVALID,
                        "wait must be an integer in 0..16, not '%.*s'", value, len);
        options->wait_replicas = (int)n;
        return STOCK_OK;
    case RD_OPT_BUCKETS:
        if (!parse_int(value, len, 1, 64, &n))
            return fail(message, size, STOCK_INVALID,
                        "buckets must be an integer in 1..64, not '%.*s'", value, len);
        if (n > 1)
            return fail(message, size, STOCK_UNSUPPORTED, "buckets=%.*s: hot-SKU buckets are "
                        "not built yet; only buckets=1 is served", value, len);
        options->buckets = (uint32_t)n;
        return STOCK_OK;
    case RD_OPT_FUSED:
        if (len != 1 || (value[0] != '0' && value[0] != '1'))
            return fail(message, size, STOCK_INVALID, "fused must be 0 or 1, not '%.*s'",
                        value, len);
        options->fused = value[0] == '1';
        return STOCK_OK;
    case RD_OPT_COUNT:
        break;
    }
    assert(!"unknown option");
    return STOCK_INVALID;
}

/* Reads the query (after '?'): name=value pairs joined by '&'. */
static stock_code parse_query(rd_options *options, const char *query, char *message,
                              size_t size)
{
    bool seen[RD_OPT_COUNT] = {false};
    while (*query != '\0') {
        size_t len = strcspn(query, "&");
        const char *equals = memchr(query, '=', len);
        if (equals == NULL)
            return fail(message, size, STOCK_INVALID, "option '%.*s' has no value", query, len);
        size_t name_len = (size_t)(equals - query);
        rd_option_name which = RD_OPT_COUNT;
        for (int i = 0; i < RD_OPT_COUNT; i++)
            if (strlen(option_names[i]) == name_len &&
                memcmp(option_names[i], query, name_len) == 0)
                which = (rd_option_name)i;
        if (which == RD_OPT_COUNT)
            return fail(message, size, STOCK_INVALID, "unknown option '%.*s' (prefix, "
                        "password, timeout_ms, wait, buckets, fused are known)", query, name_len);
        if (seen[which])
            return fail(message, size, STOCK_INVALID, "option '%.*s' given twice", query,
                        name_len);
        seen[which] = true;
        stock_code code = apply_option(options, which, equals + 1, len - name_len - 1,
                                       message, size);
        if (code != STOCK_OK)
            return code;
        query += len + (query[len] == '&');
    }
    return STOCK_OK;
}

/* Reads [:password@]host[:port] from authority[0..len). */
static stock_code parse_authority(rd_options *options, const char *authority, size_t len,
                                  char *message, size_t size)
{
    const char *at = memchr(authority, '@', len);
    if (at != NULL) {
        if (authority[0] != ':' || at == authority + 1 ||
            !percent_decode(authority + 1, (size_t)(at - authority - 1), options->password,
                            sizeof options->password))
            return fail(message, size, STOCK_INVALID, "the part before '@' must be "
                        ":password (percent-encoded, 1..255 bytes)%.*s", "", 0);
        len -= (size_t)(at + 1 - authority);
        authority = at + 1;
    }
    const char *colon = memchr(authority, ':', len);
    size_t host_len = colon != NULL ? (size_t)(colon - authority) : len;
    if (host_len == 0 || host_len > RD_HOST_MAX)
        return fail(message, size, STOCK_INVALID, "a host is needed: redis://host:port%.*s",
                    "", 0);
    memcpy(options->host, authority, host_len);
    options->host[host_len] = '\0';
    long port = RD_PORT_DEFAULT;
    if (colon != NULL && !parse_int(colon + 1, len - host_len - 1, 1, 65535, &port))
        return fail(message, size, STOCK_INVALID, "the port must be 1..65535, not '%.*s'",
                    colon + 1, len - host_len - 1);
    options->port = (int)port;
    return STOCK_OK;
}

stock_code rd_options_parse(const char *uri, const stock_config *config,
                            rd_options *options, char *message, size_t size)
{
    assert(uri != NULL && config != NULL && options != NULL);
    memset(options, 0, sizeof *options);
    options->timeout_ms = RD_TIMEOUT_MS_DEFAULT;
    options->buckets = 1;
    options->fused = true;
    size_t len = strnlen(uri, RD_URI_MAX + 1);
    if (len > RD_URI_MAX)
        return fail(message, size, STOCK_INVALID, "longer than 4096 bytes%.*s", "", 0);
    if (strncmp(uri, RD_SCHEME, strlen(RD_SCHEME)) != 0)
        return fail(message, size, STOCK_INVALID, "must start with redis://%.*s", "", 0);
    if (config->buckets > 1)
        return fail(message, size, STOCK_UNSUPPORTED, "config buckets above 1: hot-SKU "
                    "buckets are not built yet%.*s", "", 0);
    const char *authority = uri + strlen(RD_SCHEME);
    size_t authority_len = strcspn(authority, "/?");
    stock_code code = parse_authority(options, authority, authority_len, message, size);
    const char *rest = authority + authority_len;
    if (code == STOCK_OK && *rest == '/' && rest[1] != '\0' && rest[1] != '?')
        return fail(message, size, STOCK_INVALID, "no database path is served (the store "
                    "uses database 0): '%.*s'", rest, strcspn(rest, "?"));
    rest += *rest == '/';
    if (code == STOCK_OK && *rest == '?')
        code = parse_query(options, rest + 1, message, size);
    assert(code != STOCK_OK || options->port > 0);
    return code;
}
