/*
 * embedded_uri.h -- how the embedded backend reads its URI: "./dir",
 * "file:./dir", "file:///abs/dir", each with an optional query
 * "?durability=sync|relaxed&snapshot_log_bytes=N&retention=T&forget=T" whose
 * first two override the stock_config. For src/backend/embedded*.c, and for
 * stockd's routes that read the data folder beside the store
 * (src/server/threshold.c, sse.c).
 */
#ifndef STOCK_EMBEDDED_URI_H
#define STOCK_EMBEDDED_URI_H

#include <limits.h>

#include "stock.h"

/* Longest data folder path, NUL included. */
#define EMBEDDED_PATH_MAX PATH_MAX
/* Bounds of the snapshot threshold a URI may ask for. */
#define EMBEDDED_SNAPSHOT_BYTES_MIN 4096ull
#define EMBEDDED_SNAPSHOT_BYTES_MAX (1ull << 50)

/* Longest retention window a URI may ask for: 10 years, in milliseconds. */
#define EMBEDDED_RETENTION_MS_MAX (10ull * 366 * 24 * 3600 * 1000)

typedef struct embedded_uri {
    char path[EMBEDDED_PATH_MAX];
    stock_durability durability;
    uint64_t snapshot_log_bytes;   /* never 0 once parsed */
    uint64_t retention_ms;         /* 0: off, everything stays in memory */
    uint64_t forget_ms;            /* 0: the cold store keeps everything;
                                      else more than retention_ms */
} embedded_uri;

/* True for "file:..." and for anything without a "scheme://" prefix. */
bool embedded_uri_accepts(const char *uri);

/*
 * Parses uri with config's values as defaults (config not NULL). Returns
 * STOCK_OK, or STOCK_INVALID with message saying what is wrong (an unknown
 * parameter, a bad value, an empty or too long path, a host in file://).
 */
stock_code embedded_uri_parse(const char *uri, const stock_config *config,
                              embedded_uri *out, char *message,
                              size_t message_size);

#endif /* STOCK_EMBEDDED_URI_H */
