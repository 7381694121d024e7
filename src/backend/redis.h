/*
 * redis.h -- the pieces of the redis backend (redis.c) that live in their own
 * files: URI options (redis_uri.c) and the connection with its checks and the
 * function library (redis_conn.c). Internal to libstock; stock.h is the
 * public contract, docs/redis.md the key layout and the protocols.
 */
#ifndef STOCK_REDIS_H
#define STOCK_REDIS_H

#include <hiredis/hiredis.h>

#include "stock.h"

#define RD_URI_MAX 4096             /* bytes in a store URI */
#define RD_HOST_MAX 255             /* bytes in a host name */
#define RD_SECRET_MAX 255           /* bytes in a password */
#define RD_PREFIX_MAX 64            /* bytes in a key prefix */
#define RD_TIMEOUT_MS_DEFAULT 5000  /* silence that counts as a lost server */
#define RD_TIMEOUT_MS_MAX 3600000
#define RD_WAIT_MAX 16              /* replicas wait=N may ask for */
#define RD_LAYOUT_VERSION "1"       /* the key layout this library writes */
#define RD_LIBRARY "stockd_v1"      /* the function library's name (and version) */
#define RD_REDIS_MAJOR_MIN 7        /* Redis Functions arrived in 7.0 */

/* The backend's options, from the URI and the stock_config. */
typedef struct rd_options {
    char host[RD_HOST_MAX + 1];
    int port;
    char password[RD_SECRET_MAX + 1];   /* "" for none */
    char prefix[RD_PREFIX_MAX + 1];     /* prepended to every key */
    int timeout_ms;                     /* per reply; then the link is lost */
    int wait_replicas;                  /* 0: no WAIT after a batch */
    uint32_t buckets;                   /* 1: hot-SKU buckets are not built yet */
} rd_options;

/*
 * Reads redis://[:password@]host[:port][?prefix=P&password=X&timeout_ms=N&
 * wait=N&buckets=K] into *options (values percent-decoded). Unknown options,
 * repeated ones and bad values are refused: STOCK_INVALID with message naming
 * which; STOCK_UNSUPPORTED for buckets above 1 (not built yet).
 */
stock_code rd_options_parse(const char *uri, const stock_config *config,
                            rd_options *options, char *message, size_t size);

/*
 * Connects, authenticates, checks that the server is Redis 7 or newer and
 * that its key layout (if any) is ours, writes the layout version of a new
 * store, and loads the function library. On success *out is the connection,
 * with options->timeout_ms as its read and write timeout. On failure message
 * says why: STOCK_UNAVAILABLE (cannot connect), STOCK_INVALID (refused
 * password), STOCK_UNSUPPORTED (not Redis 7), STOCK_CORRUPT (another layout
 * version), STOCK_IO (any other error, with the server's words).
 */
stock_code rd_connect(const rd_options *options, redisContext **out, char *message,
                      size_t size);

/* The function library's source (redis_functions.lua), embedded by the
 * build. */
extern const char rd_functions_source[];

#endif /* STOCK_REDIS_H */
