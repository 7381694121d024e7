/*
 * thresholds.h -- the per-SKU thresholds of the below-threshold events
 * (docs/events.md, "Thresholds"): a file, "thresholds" in the embedded
 * store's data folder by default, of lines "SKU N" (N >= 1; '#' starts a
 * comment). stockd writes it (THRESHOLD, PUT /v1/skus/{sku}/threshold);
 * stockevents reads it. It lives beside the flow log, not in it: a
 * threshold says when to speak, not what the stock is, and a change applies
 * to the records derived after it is read.
 */
#ifndef STOCK_THRESHOLDS_H
#define STOCK_THRESHOLDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "stock.h"

#define THRESHOLDS_FILE "thresholds"
#define THRESHOLDS_MAX 1000000          /* SKUs with a threshold */
#define THRESHOLDS_LINE_MAX 256         /* bytes of one line, newline included */

typedef struct threshold_item {
    char sku[STOCK_ID_MAX + 1];
    int64_t below;
} threshold_item;

typedef struct thresholds {
    threshold_item *items;              /* owned; sorted by sku */
    size_t count;
} thresholds;

/* Reads the file at path into *out (freed and replaced only on success).
 * A file that does not exist holds none. False with message (size bytes)
 * naming the file and the line that does not read. */
bool thresholds_load(const char *path, thresholds *out, char *message, size_t size);

/* sku's threshold, or 0 when it has none. */
int64_t thresholds_of(const thresholds *t, const char *sku);

/* Sets sku's threshold to below (0 removes it) in the file at path: read,
 * changed, written whole to path.tmp, fsynced and renamed over, so a crash
 * leaves the old file or the new one. sku must be a valid id and below
 * 0..INT64_MAX (asserted: the caller validates). False with message. */
bool thresholds_store(const char *path, const char *sku, int64_t below, char *message,
                      size_t size);

void thresholds_free(thresholds *t);

/* A thresholds file followed as it changes, for those that derive events
 * (stockevents, stockd's GET /v1/events): the file is read again when its
 * modification time or size changes. */
typedef struct thresholds_watch {
    const char *path;                   /* borrowed */
    thresholds current;
    bool loaded;
    struct timespec mtime;              /* of the file last read (0: none) */
    int64_t size;
} thresholds_watch;

/* Reads the file again if it changed since the last look. False with
 * message when it does not read: the thresholds in force stay, and the
 * same bad file is reported once. */
bool thresholds_refresh(thresholds_watch *watch, char *message, size_t size);

/* The threshold of sku under watch, 0 for none (a flow_threshold_fn:
 * context is the thresholds_watch). */
int64_t thresholds_watched(void *context, const char *sku);

#endif /* STOCK_THRESHOLDS_H */
