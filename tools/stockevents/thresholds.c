/*
 * thresholds.c -- the per-SKU thresholds of BELOW_THRESHOLD events, from
 * the publisher's own file (docs/events.md, "Thresholds"): one "SKU N" per
 * line, '#' starts a comment. The file is read again when its modification
 * time or size changes, so an operator edits it (or `stockctl` writes it)
 * while the publisher runs; a file that does not read keeps the thresholds
 * in force and says why.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "stockevents.h"

static int compare_sku(const void *a, const void *b)
{
    return strcmp(((const events_threshold *)a)->sku, ((const events_threshold *)b)->sku);
}

/* Parses one line into *out; false (with why) if it is not "SKU N". */
static bool parse_line(char *line, events_threshold *out, const char **why)
{
    char *comment = strchr(line, '#');
    if (comment != NULL)
        *comment = '\0';
    char sku[STOCK_ID_MAX + 2];
    long long value = 0;
    char extra;
    int fields = sscanf(line, "%65s %lld %c", sku, &value, &extra);
    if (fields <= 0)
        return false;   /* blank: *why stays NULL */
    if (fields != 2 || value < 0 || !stock_id_valid(stock_id_from_cstr(sku))) {
        *why = "not 'SKU N' with an id of the store and 0 <= N";
        return false;
    }
    memcpy(out->sku, sku, sizeof out->sku);
    out->below = value;
    return true;
}

static bool load(events_thresholds *t, FILE *file, char *message, size_t size)
{
    events_threshold *items = NULL;
    size_t count = 0, cap = 0;
    char line[256];
    for (unsigned number = 1; fgets(line, sizeof line, file) != NULL; number++) {
        events_threshold item;
        const char *why = NULL;
        if (!parse_line(line, &item, &why)) {
            if (why == NULL)
                continue;
            snprintf(message, size, "line %u: %s", number, why);
            free(items);
            return false;
        }
        if (count == EVENTS_THRESHOLDS_MAX) {
            snprintf(message, size, "more than %d thresholds", EVENTS_THRESHOLDS_MAX);
            free(items);
            return false;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            events_threshold *grown = realloc(items, cap * sizeof *items);
            if (grown == NULL) {
                snprintf(message, size, "out of memory");
                free(items);
                return false;
            }
            items = grown;
        }
        items[count++] = item;
    }
    qsort(items, count, sizeof *items, compare_sku);
    free(t->items);
    t->items = items;
    t->count = count;
    return true;
}

bool events_thresholds_refresh(events_thresholds *t, char *message, size_t size)
{
    if (t->path == NULL)
        return true;
    struct stat info;
    if (stat(t->path, &info) != 0) {
        if (errno != ENOENT) {
            snprintf(message, size, "%s: %s", t->path, strerror(errno));
            return false;
        }
        events_thresholds_free(t);   /* no file: no thresholds */
        t->loaded = false;
        return true;
    }
    if (t->loaded && info.st_mtim.tv_sec == t->mtime.tv_sec &&
        info.st_mtim.tv_nsec == t->mtime.tv_nsec && info.st_size == t->size)
        return true;
    FILE *file = fopen(t->path, "r");
    if (file == NULL) {
        snprintf(message, size, "%s: %s", t->path, strerror(errno));
        return false;
    }
    char inner[200] = "";
    bool ok = load(t, file, inner, sizeof inner);
    fclose(file);
    /* Remembered even when it failed: the same bad file is reported once. */
    t->mtime = info.st_mtim;
    t->size = info.st_size;
    t->loaded = true;
    if (!ok)
        snprintf(message, size, "%s: %s", t->path, inner);
    return ok;
}

int64_t events_threshold_of(void *context, const char *sku)
{
    const events_thresholds *t = context;
    events_threshold key;
    snprintf(key.sku, sizeof key.sku, "%s", sku);
    const events_threshold *found = t->count == 0 ? NULL
        : bsearch(&key, t->items, t->count, sizeof key, compare_sku);
    return found != NULL ? found->below : 0;
}

void events_thresholds_free(events_thresholds *t)
{
    free(t->items);
    t->items = NULL;
    t->count = 0;
}
