/*
 * thresholds.c -- stockevents' view of the thresholds file
 * (lib/thresholds.h): read again whenever its modification time or size
 * changes, so that a THRESHOLD set through stockd applies from the next
 * record derived; a file that does not read keeps the thresholds in force.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "stockevents.h"

bool events_thresholds_refresh(events_thresholds *t, char *message, size_t size)
{
    struct stat info;
    bool exists = stat(t->path, &info) == 0;
    if (!exists && errno != ENOENT) {
        snprintf(message, size, "%s: %s", t->path, strerror(errno));
        return false;
    }
    if (!exists)
        memset(&info, 0, sizeof info);
    if (t->loaded && info.st_mtim.tv_sec == t->mtime.tv_sec &&
        info.st_mtim.tv_nsec == t->mtime.tv_nsec && info.st_size == t->size)
        return true;
    /* Remembered even when it fails: the same bad file is reported once. */
    t->mtime = info.st_mtim;
    t->size = info.st_size;
    t->loaded = true;
    return thresholds_load(t->path, &t->current, message, size);
}

int64_t events_threshold_of(void *context, const char *sku)
{
    const events_thresholds *t = context;
    return thresholds_of(&t->current, sku);
}
