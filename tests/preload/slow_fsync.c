/*
 * slow_fsync.c -- preloaded into stockd by 85-backup to make a backup take
 * seconds on a small store: fsync of a file whose path contains
 * $SLOW_FSYNC_PATH sleeps $SLOW_FSYNC_MS first (a backup fsyncs every file
 * it copies, its manifest and its folder). Every other fsync, and the
 * store's own fdatasync, run at full speed. Built without the sanitizers:
 * it is loaded beside their runtime, never instead of it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int fsync(int fd)
{
    static int (*next)(int);
    if (next == NULL)
        next = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    const char *part = getenv("SLOW_FSYNC_PATH");
    const char *delay = getenv("SLOW_FSYNC_MS");
    char link[64];
    char path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = part != NULL && delay != NULL ? readlink(link, path, sizeof path - 1) : -1;
    if (len > 0) {
        path[len] = '\0';
        long ms = atol(delay);
        if (strstr(path, part) != NULL && ms > 0) {
            struct timespec pause = {ms / 1000, (ms % 1000) * 1000000};
            nanosleep(&pause, NULL);
        }
    }
    return next(fd);
}
