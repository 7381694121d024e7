/*
 * thresholds.c -- the thresholds file of thresholds.h: parse, look up, and
 * rewrite with one SKU changed.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/message.h"
#include "lib/thresholds.h"

static int compare_sku(const void *a, const void *b)
{
    return strcmp(((const threshold_item *)a)->sku, ((const threshold_item *)b)->sku);
}

/* Parses one line into *out; false with *why set if it is not "SKU N",
 * false with *why NULL if it is blank or a comment. */
static bool parse_line(char *line, threshold_item *out, const char **why)
{
    char *comment = strchr(line, '#');
    if (comment != NULL)
        *comment = '\0';
    char sku[STOCK_ID_MAX + 2];
    long long value = 0;
    char extra;
    int fields = sscanf(line, "%65s %lld %c", sku, &value, &extra);
    if (fields <= 0)
        return false;
    if (fields != 2 || value < 1 || !stock_id_valid(stock_id_from_cstr(sku))) {
        *why = "not 'SKU N' with a valid SKU id and N >= 1";
        return false;
    }
    memcpy(out->sku, sku, sizeof out->sku);
    out->below = value;
    return true;
}

static bool push(thresholds *t, size_t *cap, const threshold_item *item)
{
    if (t->count == *cap) {
        size_t grown_cap = *cap ? *cap * 2 : 64;
        threshold_item *grown = realloc(t->items, grown_cap * sizeof *grown);
        if (grown == NULL)
            return false;
        t->items = grown;
        *cap = grown_cap;
    }
    t->items[t->count++] = *item;
    return true;
}

static bool read_lines(FILE *file, const char *path, thresholds *t, char *message, size_t size)
{
    size_t cap = 0;
    char line[THRESHOLDS_LINE_MAX];
    for (unsigned number = 1; fgets(line, sizeof line, file) != NULL; number++) {
        threshold_item item;
        const char *why = NULL;
        if (!parse_line(line, &item, &why)) {
            if (why == NULL)
                continue;   /* blank, or a comment */
            message_set(message, size, "%s, line %u: %s", path, number, why);
            return false;
        }
        if (t->count == THRESHOLDS_MAX || !push(t, &cap, &item)) {
            message_set(message, size, "%s: more than %d thresholds, or out of memory", path,
                        THRESHOLDS_MAX);
            return false;
        }
    }
    qsort(t->items, t->count, sizeof *t->items, compare_sku);
    return true;
}

bool thresholds_load(const char *path, thresholds *out, char *message, size_t size)
{
    FILE *file = fopen(path, "r");
    if (file == NULL && errno != ENOENT) {
        message_set(message, size, "%s: %s", path, strerror(errno));
        return false;
    }
    thresholds loaded = {0};
    bool ok = file == NULL || read_lines(file, path, &loaded, message, size);
    if (file != NULL)
        fclose(file);
    if (!ok) {
        thresholds_free(&loaded);
        return false;
    }
    thresholds_free(out);
    *out = loaded;
    return true;
}

int64_t thresholds_of(const thresholds *t, const char *sku)
{
    threshold_item key;
    snprintf(key.sku, sizeof key.sku, "%s", sku);
    const threshold_item *found =
        t->count == 0 ? NULL : bsearch(&key, t->items, t->count, sizeof key, compare_sku);
    return found != NULL ? found->below : 0;
}

/* Writes t whole to path.tmp, syncs it and renames it over path. */
static bool write_file(const char *path, const thresholds *t, char *message, size_t size)
{
    char temp[4096 + 8];
    snprintf(temp, sizeof temp, "%s.tmp", path);
    FILE *file = fopen(temp, "w");
    bool ok = file != NULL;
    for (size_t i = 0; ok && i < t->count; i++)
        ok = fprintf(file, "%s %" PRId64 "\n", t->items[i].sku, t->items[i].below) > 0;
    ok = ok && fflush(file) == 0 && fsync(fileno(file)) == 0;
    if (file != NULL && fclose(file) != 0)
        ok = false;
    ok = ok && rename(temp, path) == 0;
    if (!ok)
        message_set(message, size, "cannot write %s: %s", path, strerror(errno));
    return ok;
}

bool thresholds_store(const char *path, const char *sku, int64_t below, char *message,
                      size_t size)
{
    assert(stock_id_valid(stock_id_from_cstr(sku)) && below >= 0);
    thresholds t = {0};
    if (!thresholds_load(path, &t, message, size))
        return false;
    size_t at = 0;
    while (at < t.count && strcmp(t.items[at].sku, sku) != 0)
        at++;
    size_t cap = t.count;
    bool ok = true;
    if (at < t.count && below > 0) {
        t.items[at].below = below;
    } else if (at < t.count) {
        t.items[at] = t.items[--t.count];
    } else if (below > 0) {
        threshold_item item = {.below = below};
        snprintf(item.sku, sizeof item.sku, "%s", sku);
        ok = t.count < THRESHOLDS_MAX && push(&t, &cap, &item);
        if (!ok)
            message_set(message, size, "more than %d thresholds, or out of memory",
                        THRESHOLDS_MAX);
    }
    if (ok) {
        qsort(t.items, t.count, sizeof *t.items, compare_sku);
        ok = write_file(path, &t, message, size);
    }
    thresholds_free(&t);
    return ok;
}

void thresholds_free(thresholds *t)
{
    free(t->items);
    t->items = NULL;
    t->count = 0;
}

bool thresholds_refresh(thresholds_watch *watch, char *message, size_t size)
{
    struct stat info;
    bool exists = stat(watch->path, &info) == 0;
    if (!exists && errno != ENOENT) {
        message_set(message, size, "%s: %s", watch->path, strerror(errno));
        return false;
    }
    if (!exists)
        memset(&info, 0, sizeof info);
    if (watch->loaded && info.st_mtim.tv_sec == watch->mtime.tv_sec &&
        info.st_mtim.tv_nsec == watch->mtime.tv_nsec && info.st_size == watch->size)
        return true;
    watch->mtime = info.st_mtim;
    watch->size = info.st_size;
    watch->loaded = true;
    return thresholds_load(watch->path, &watch->current, message, size);
}

int64_t thresholds_watched(void *context, const char *sku)
{
    const thresholds_watch *watch = context;
    return thresholds_of(&watch->current, sku);
}
