/*
 * journal.c -- the data folder and its segments: opening and locking the
 * folder, listing and mapping its files, creating segments, appending
 * framed records and syncing them. Recovery is in journal_recover.c, the
 * snapshot writer in journal_snapshot.c.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "journal/journal_internal.h"
#include "lib/clock.h"

/* Parses exactly 16 lowercase hex digits. */
static bool parse_hex16(const char *text, uint64_t *value)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = text[i];
        if (c >= '0' && c <= '9')
            v = v << 4 | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v << 4 | (uint64_t)(c - 'a' + 10);
        else
            return false;
    }
    *value = v;
    return true;
}

/* The lsn in a name "<prefix><16 hex><suffix>", if it has that form. */
static bool parse_name(const char *name, const char *prefix,
                       const char *suffix, uint64_t *lsn)
{
    size_t prefix_len = strlen(prefix), suffix_len = strlen(suffix);
    if (strlen(name) != prefix_len + 16 + suffix_len)
        return false;
    if (memcmp(name, prefix, prefix_len) != 0 ||
        strcmp(name + prefix_len + 16, suffix) != 0)
        return false;
    return parse_hex16(name + prefix_len, lsn);
}

static bool push_lsn(uint64_t **array, size_t *count, uint64_t lsn)
{
    assert(array != NULL && count != NULL);
    if (*count >= JOURNAL_FILES_MAX)
        return false;
    if ((*count & (*count - 1)) == 0) {   /* 0, 1, 2, 4, ...: grow */
        size_t capacity = *count == 0 ? 16 : *count * 2;
        uint64_t *grown = realloc(*array, capacity * sizeof **array);
        if (grown == NULL)
            return false;
        *array = grown;
    }
    (*array)[(*count)++] = lsn;
    return true;
}

static int compare_lsn(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

bool journal_list(int dir_fd, journal_listing *listing, char *message,
                  size_t size)
{
    assert(dir_fd >= 0 && listing != NULL);
    memset(listing, 0, sizeof *listing);
    int fd = dup(dir_fd);
    DIR *dir = fd < 0 ? NULL : fdopendir(fd);
    if (dir == NULL) {
        message_set(message, size, "cannot list the data folder: %s",
                    strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    rewinddir(dir);
    bool ok = true;
    struct dirent *entry;
    /* readdir answers NULL both at the end and on an error: a listing cut
     * short by an error would hide segments, and recovery would then open
     * the store without the acknowledged records in them. */
    int read_errno = 0;
    while (ok) {
        errno = 0;
        entry = readdir(dir);
        if (entry == NULL) {
            read_errno = errno;
            break;
        }
        uint64_t lsn;
        if (parse_name(entry->d_name, "log-", ".wal", &lsn))
            ok = push_lsn(&listing->segments, &listing->segment_count, lsn);
        else if (parse_name(entry->d_name, "snap-", ".snap", &lsn))
            ok = push_lsn(&listing->snapshots, &listing->snapshot_count, lsn);
    }
    closedir(dir);
    if (read_errno != 0) {
        message_set(message, size, "cannot list the data folder: %s",
                    strerror(read_errno));
        journal_listing_free(listing);
        return false;
    }
    if (!ok) {
        message_set(message, size, "too many files in the data folder "
                    "or out of memory listing it");
        journal_listing_free(listing);
        return false;
    }
    if (listing->segment_count > 1)
        qsort(listing->segments, listing->segment_count, sizeof(uint64_t), compare_lsn);
    if (listing->snapshot_count > 1)
        qsort(listing->snapshots, listing->snapshot_count, sizeof(uint64_t), compare_lsn);
    return true;
}

void journal_listing_free(journal_listing *listing)
{
    free(listing->segments);
    free(listing->snapshots);
    memset(listing, 0, sizeof *listing);
}

stock_code journal_map(int dir_fd, const char *name, const uint8_t **data,
                       size_t *len, char *message, size_t size)
{
    *data = NULL;
    *len = 0;
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
    struct stat info;
    if (fd < 0 || fstat(fd, &info) != 0) {
        message_set(message, size, "cannot read %s: %s", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return STOCK_IO;
    }
    if (info.st_size > 0) {
        /* Recovery reads every byte front to back: map it all at once (one
         * pass of read-ahead, no page fault per page). */
        void *map = mmap(NULL, (size_t)info.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE,
                         fd, 0);
        if (map == MAP_FAILED) {
            message_set(message, size, "cannot map %s: %s", name, strerror(errno));
            close(fd);
            return STOCK_IO;
        }
        *data = map;
        *len = (size_t)info.st_size;
    }
    close(fd);
    return STOCK_OK;
}

void journal_unmap(const uint8_t *data, size_t len)
{
    if (data != NULL)
        munmap((void *)data, len);
}

bool journal_sync_dir(journal *log)
{
    assert(log->dir_fd >= 0);
    return fsync(log->dir_fd) == 0;
}

bool journal_write_all(int fd, const void *data, size_t len, uint64_t offset)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = ENOSPC;
            return false;
        }
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return true;
}

bool journal_sync_files_open(journal *log, const char *name)
{
    assert(log->sync_file_count >= 1 && log->sync_file_count <= JOURNAL_SYNC_FILES_MAX);
    int fds[JOURNAL_SYNC_FILES_MAX];
    for (unsigned i = 0; i < log->sync_file_count; i++) {
        /* open(), not dup(): a dup shares the open file description, and
         * with it the one report of a write-back error (journal.h). Read
         * only: fdatasync needs no write access, and nothing writes here. */
        fds[i] = openat(log->dir_fd, name, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) {
            int error = errno;
            while (i > 0)
                close(fds[--i]);
            errno = error;
            return false;
        }
    }
    for (unsigned i = 0; i < log->sync_file_count; i++) {
        if (log->sync_fds[i] >= 0)
            close(log->sync_fds[i]);
        log->sync_fds[i] = fds[i];
    }
    return true;
}

stock_code journal_segment_create(journal *log, uint64_t lsn, char *message,
                                  size_t size)
{
    char name[JOURNAL_NAME_MAX], temp[JOURNAL_NAME_MAX + 4];
    journal_segment_name(name, lsn);
    snprintf(temp, sizeof temp, "%s.tmp", name);
    uint8_t header[JOURNAL_FILE_HEADER_BYTES];
    journal_header_make(header, JOURNAL_SEGMENT_MAGIC, lsn);
    /* Temp file, then rename: a segment never exists without its header. */
    int fd = openat(log->dir_fd, temp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0 || !journal_write_all(fd, header, sizeof header, 0) || fdatasync(fd) != 0 ||
        renameat(log->dir_fd, temp, log->dir_fd, name) != 0 || !journal_sync_dir(log)) {
        message_set(message, size, "cannot create %s: %s", name, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlinkat(log->dir_fd, temp, 0);
        }
        return STOCK_IO;
    }
    /* Before the first record: a description opened later could miss an
     * error reported before it was opened to another one. */
    if (!journal_sync_files_open(log, name)) {
        message_set(message, size, "cannot open %s for syncing: %s", name, strerror(errno));
        close(fd);
        return STOCK_IO;
    }
    if (log->segment_fd >= 0)
        close(log->segment_fd);
    log->segment_fd = fd;
    log->segment_lsn = lsn;
    log->segment_bytes = JOURNAL_FILE_HEADER_BYTES;
    log->zeroed_end = JOURNAL_FILE_HEADER_BYTES;
    log->zero_failed = false;
    assert(lsn == log->next_lsn);
    return STOCK_OK;
}

static stock_code open_folder(journal *log, const char *path, char *message,
                              size_t size)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        message_set(message, size, "cannot create the data folder %s: %s",
                    path, strerror(errno));
        return STOCK_IO;
    }
    log->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->dir_fd < 0) {
        message_set(message, size, "cannot open the data folder %s: %s",
                    path, strerror(errno));
        return STOCK_IO;
    }
    log->lock_fd = openat(log->dir_fd, "LOCK", O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (log->lock_fd < 0) {
        message_set(message, size, "cannot create %s/LOCK: %s", path,
                    strerror(errno));
        return STOCK_IO;
    }
    if (flock(log->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        bool busy = errno == EWOULDBLOCK;
        message_set(message, size, busy
                    ? "the data folder %s is open in another process (%s/LOCK is held)"
                    : "cannot lock the data folder %s: %s",
                    path, busy ? path : strerror(errno));
        return busy ? STOCK_UNAVAILABLE : STOCK_IO;
    }
    return STOCK_OK;
}

stock_code journal_open(const char *path, unsigned sync_files, const journal_replay *replay,
                        const stock_log_hook *hook, journal **out,
                        char *message, size_t message_size)
{
    assert(path != NULL && replay != NULL && hook != NULL && out != NULL);
    assert(replay->load != NULL && replay->apply != NULL);
    assert(sync_files >= 1 && sync_files <= JOURNAL_SYNC_FILES_MAX);
    *out = NULL;
    journal *log = calloc(1, sizeof *log);
    if (log == NULL)
        return STOCK_NOMEM;
    log->dir_fd = log->lock_fd = log->segment_fd = log->snap_fd = -1;
    log->sync_file_count = sync_files;
    for (unsigned i = 0; i < JOURNAL_SYNC_FILES_MAX; i++)
        log->sync_fds[i] = -1;
    log->snapshot_lsn = JOURNAL_LSN_NONE;
    log->log_hook = *hook;
    log->snap_buffer = malloc(JOURNAL_SNAPSHOT_BUFFER_BYTES);
    log->snap_hash = XXH3_createState();
    stock_code code = STOCK_NOMEM;
    if (log->snap_buffer != NULL && log->snap_hash != NULL) {
        code = open_folder(log, path, message, message_size);
        if (code == STOCK_OK)
            code = journal_recover(log, replay, message, message_size);
    }
    if (code != STOCK_OK) {
        journal_close(log);
        return code;
    }
    journal_publish(log);
    *out = log;
    return STOCK_OK;
}

void journal_close(journal *log)
{
    if (log == NULL)
        return;
    journal_snapshot_poll(log, true);
    assert(log->child == 0);
    if (log->segment_fd >= 0)
        close(log->segment_fd);
    for (unsigned i = 0; i < log->sync_file_count; i++)
        if (log->sync_fds[i] >= 0)
            close(log->sync_fds[i]);
    if (log->lock_fd >= 0)
        close(log->lock_fd);   /* releases the flock */
    if (log->dir_fd >= 0)
        close(log->dir_fd);
    free(log->snap_buffer);
    if (log->snap_hash != NULL)
        XXH3_freeState(log->snap_hash);
    free(log);
}

/* The source of the zeros written ahead; never written to. */
static uint8_t zero_fill[JOURNAL_ZERO_AHEAD_BYTES];

/*
 * Keeps JOURNAL_ZERO_AHEAD_BYTES of zeros written after the end of the
 * records, so that most appends overwrite blocks the file already has and
 * their fdatasync need not commit a new size (see the constant). The
 * caller's next sync carries the zeros to the disk with its records.
 * Only a speed-up: the records are already written, so a failure just
 * stops the zero-filling for the rest of the segment. A partial write
 * leaves only zeros behind, which recovery reads as the end of the log.
 */
static void zero_ahead(journal *log, const char *name)
{
    uint64_t end = log->segment_bytes;
    assert(log->zeroed_end >= JOURNAL_FILE_HEADER_BYTES && end >= JOURNAL_FILE_HEADER_BYTES);
    if (log->zero_failed || end + JOURNAL_ZERO_AHEAD_BYTES / 2 <= log->zeroed_end)
        return;
    uint64_t from = end > log->zeroed_end ? end : log->zeroed_end;
    uint64_t to = end + JOURNAL_ZERO_AHEAD_BYTES;
    assert(from < to && to - from <= sizeof zero_fill);
    if (!journal_write_all(log->segment_fd, zero_fill, (size_t)(to - from), from)) {
        stock_log(&log->log_hook, STOCK_LOG_WARNING,
                  "cannot write zeros ahead of the records in %s (%s): "
                  "appending without them for the rest of it", name,
                  strerror(errno));
        log->zero_failed = true;
        return;
    }
    log->zeroed_end = to;
}

stock_code journal_append(journal *log, const void *data, size_t len,
                          uint64_t record_count, char *message,
                          size_t message_size)
{
    assert(log->segment_fd >= 0 && len >= JOURNAL_RECORD_HEADER_BYTES * record_count);
    char name[JOURNAL_NAME_MAX];
    journal_segment_name(name, log->segment_lsn);
    if (log->failed) {
        message_set(message, message_size, "an earlier write to %s failed", name);
        return STOCK_IO;
    }
    if (!journal_write_all(log->segment_fd, data, len, log->segment_bytes)) {
        int error = errno;
        /* Cut back what part of the group reached the file, so that a
         * failed group cannot come back at recovery. */
        if (ftruncate(log->segment_fd, (off_t)log->segment_bytes) != 0)
            stock_log(&log->log_hook, STOCK_LOG_ERROR,
                      "cannot cut %s back after a failed write: %s", name,
                      strerror(errno));
        log->zeroed_end = log->segment_bytes;   /* the cut took the zeros too */
        log->failed = true;
        message_set(message, message_size, "writing %s failed: %s", name,
                    strerror(error));
        return STOCK_IO;
    }
    log->segment_bytes += len;
    log->next_lsn += record_count;
    log->log_bytes += len;
    atomic_store_explicit(&log->shared_log_bytes, log->log_bytes, memory_order_relaxed);
    zero_ahead(log, name);
    assert(log->zero_failed || log->zeroed_end > log->segment_bytes);
    return STOCK_OK;
}

/* fdatasync of fd, timed into *latency_us. */
static stock_code sync_timed(int fd, uint64_t *latency_us, char *message,
                             size_t message_size)
{
    assert(fd >= 0 && latency_us != NULL);
    int64_t start_us = clock_now_us(CLOCK_MONOTONIC);
    int rc = fdatasync(fd);
    int error = errno;
    *latency_us = (uint64_t)(clock_now_us(CLOCK_MONOTONIC) - start_us);
    if (rc != 0) {
        message_set(message, message_size, "fdatasync of the flow log failed: %s",
                    strerror(error));
        return STOCK_IO;
    }
    return STOCK_OK;
}

stock_code journal_sync(journal *log, unsigned file, uint64_t *latency_us,
                        char *message, size_t message_size)
{
    return sync_timed(journal_sync_fd(log, file), latency_us, message, message_size);
}

int journal_sync_fd(const journal *log, unsigned file)
{
    assert(log != NULL && file < log->sync_file_count && log->sync_fds[file] >= 0);
    return log->sync_fds[file];
}

bool journal_failed(const journal *log)
{
    assert(log != NULL);
    return log->failed;
}

bool journal_rotation_due(const journal *log)
{
    assert(log->segment_fd >= 0);
    return log->segment_bytes >= JOURNAL_SEGMENT_BYTES;
}

stock_code journal_rotate(journal *log, char *message, size_t message_size)
{
    assert(log->segment_fd >= 0 && log->segment_lsn <= log->next_lsn);
    if (log->failed) {
        message_set(message, message_size, "the flow log failed earlier");
        return STOCK_IO;
    }
    if (log->segment_lsn == log->next_lsn)
        return STOCK_OK;   /* the current segment already starts here */
    /* A closed segment is always whole on disk: recovery treats damage in
     * it as corruption, never as a torn tail. */
    uint64_t latency_us;
    /* The writer's own description: it sees an error the sync files were
     * told of too, so a closed segment is never one that failed. */
    stock_code code = sync_timed(log->segment_fd, &latency_us, message, message_size);
    if (code == STOCK_OK)
        code = journal_segment_create(log, log->next_lsn, message, message_size);
    if (code != STOCK_OK)
        log->failed = true;
    return code;
}

void journal_counters(const journal *log, uint64_t *log_bytes,
                      uint64_t *snapshots)
{
    assert(log != NULL);
    if (log_bytes != NULL)
        *log_bytes = atomic_load_explicit(&log->shared_log_bytes, memory_order_relaxed);
    if (snapshots != NULL)
        *snapshots = atomic_load_explicit(&log->shared_snapshots, memory_order_relaxed);
}

void journal_publish(journal *log)
{
    assert(log != NULL);
    atomic_store_explicit(&log->shared_log_bytes, log->log_bytes, memory_order_relaxed);
}

void journal_snapshot_outcome(journal *log, bool ok)
{
    atomic_store(&log->shared_snapshot_failed, !ok);
    if (!ok)
        atomic_fetch_add(&log->shared_snapshot_failures, 1);
}

void journal_health(const journal *log, bool *snapshot_failed, uint64_t *snapshot_failures,
                    uint64_t *disk_free_bytes, uint64_t *disk_bytes)
{
    assert(log != NULL);
    *snapshot_failed = atomic_load(&log->shared_snapshot_failed);
    *snapshot_failures = atomic_load(&log->shared_snapshot_failures);
    struct statvfs disk;
    bool known = fstatvfs(log->dir_fd, &disk) == 0;
    *disk_free_bytes = known ? (uint64_t)disk.f_bavail * disk.f_frsize : 0;
    *disk_bytes = known ? (uint64_t)disk.f_blocks * disk.f_frsize : 0;
}

void journal_recovery_summary(const journal *log, journal_recovery *summary)
{
    assert(log != NULL && summary != NULL);
    *summary = log->recovery;
}
