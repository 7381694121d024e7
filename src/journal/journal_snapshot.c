/*
 * journal_snapshot.c -- snapshots: the forked child that writes the state
 * through a checksumming buffered writer, the parent's non-blocking reaping
 * and clean-up of files the snapshot makes unneeded, and the check of a
 * snapshot file's frame (header and trailer) at recovery.
 *
 * File: 32-byte header (magic "stocksnp", version, lsn), the body written by
 * the save callback, then a 24-byte trailer: body length, XXH3 of header and
 * body, magic "stockend". The child writes a temp file, fsyncs it, renames it
 * into place and fsyncs the folder, so a snapshot file is whole or absent.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "journal/journal_internal.h"

/* pread of exactly len bytes at offset; false with errno (EIO for a file
 * that ends early: it changed under us). */
static bool read_exact(int fd, uint8_t *data, size_t len, uint64_t offset)
{
    while (len > 0) {
        ssize_t got = pread(fd, data, len, (off_t)offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                errno = EIO;
            return false;
        }
        data += got;
        len -= (size_t)got;
        offset += (uint64_t)got;
    }
    return true;
}

stock_code journal_snapshot_frame(int fd, uint64_t len, uint64_t lsn,
                                  uint8_t header[JOURNAL_FILE_HEADER_BYTES],
                                  uint64_t *body_len, uint64_t *checksum,
                                  const char **why, uint32_t *version)
{
    assert(header != NULL && body_len != NULL && checksum != NULL && why != NULL);
    if (len < JOURNAL_FILE_HEADER_BYTES + JOURNAL_SNAPSHOT_TRAILER_BYTES) {
        *why = "file too short for a snapshot";
        return STOCK_CORRUPT;
    }
    uint8_t trailer[JOURNAL_SNAPSHOT_TRAILER_BYTES];
    if (!read_exact(fd, header, JOURNAL_FILE_HEADER_BYTES, 0) ||
        !read_exact(fd, trailer, sizeof trailer, len - sizeof trailer))
        return STOCK_IO;
    journal_header_result header_result = journal_header_check(
        header, JOURNAL_FILE_HEADER_BYTES, JOURNAL_SNAPSHOT_MAGIC, lsn, version);
    if (header_result == JOURNAL_HEADER_NEWER)
        return STOCK_UNSUPPORTED;
    if (header_result != JOURNAL_HEADER_OK) {
        *why = "bad snapshot header (offset 0)";
        return STOCK_CORRUPT;
    }
    uint64_t stored_len = le_get_u64(trailer);
    if (memcmp(trailer + 16, JOURNAL_TRAILER_MAGIC, 8) != 0 ||
        stored_len != len - JOURNAL_FILE_HEADER_BYTES - JOURNAL_SNAPSHOT_TRAILER_BYTES) {
        *why = "bad or missing trailer (an unfinished snapshot)";
        return STOCK_CORRUPT;
    }
    *body_len = stored_len;
    *checksum = le_get_u64(trailer + 8);
    return STOCK_OK;
}

static int snap_flush(journal *log)
{
    assert(log->snap_used <= JOURNAL_SNAPSHOT_BUFFER_BYTES);
    if (!journal_write_all(log->snap_fd, log->snap_buffer, log->snap_used,
                           log->snap_written))
        return -1;
    log->snap_written += log->snap_used;
    log->snap_used = 0;
    return 0;
}

/* Buffers bytes for the snapshot file; hashed when hash is true. */
static int snap_put(journal *log, const void *data, size_t len, bool hash)
{
    if (hash)
        XXH3_64bits_update(log->snap_hash, data, len);
    const uint8_t *p = data;
    while (len > 0) {
        size_t room = JOURNAL_SNAPSHOT_BUFFER_BYTES - log->snap_used;
        size_t n = len < room ? len : room;
        memcpy(log->snap_buffer + log->snap_used, p, n);
        log->snap_used += n;
        p += n;
        len -= n;
        if (log->snap_used == JOURNAL_SNAPSHOT_BUFFER_BYTES && snap_flush(log) != 0)
            return -1;
    }
    return 0;
}

/* The journal_write_fn handed to the save callback. */
static int snap_write_body(void *context, const void *data, size_t len)
{
    journal *log = context;
    log->snap_body_bytes += len;
    return snap_put(log, data, len, true);
}

/* Runs in the forked child: writes the snapshot and exits. */
static void snapshot_child(journal *log, journal_save_fn save, void *context,
                           pid_t parent, const char *temp, const char *name)
{
    /* Die with the parent: a snapshot of a killed process must not race
     * the next one to open the folder, nor hold its lock. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(2);
    close(log->lock_fd);
    log->snap_fd = openat(log->dir_fd, temp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (log->snap_fd < 0)
        _exit(3);
    uint8_t header[JOURNAL_FILE_HEADER_BYTES];
    journal_header_make(header, JOURNAL_SNAPSHOT_MAGIC, log->child_lsn);
    if (snap_put(log, header, sizeof header, true) != 0 ||
        save(context, snap_write_body, log) != 0)
        _exit(4);
    uint8_t trailer[JOURNAL_SNAPSHOT_TRAILER_BYTES];
    le_put_u64(trailer, log->snap_body_bytes);
    le_put_u64(trailer + 8, XXH3_64bits_digest(log->snap_hash));
    memcpy(trailer + 16, JOURNAL_TRAILER_MAGIC, 8);
    if (snap_put(log, trailer, sizeof trailer, false) != 0 || snap_flush(log) != 0 ||
        fsync(log->snap_fd) != 0)
        _exit(5);
    if (renameat(log->dir_fd, temp, log->dir_fd, name) != 0 || fsync(log->dir_fd) != 0)
        _exit(6);
    _exit(0);
}

uint64_t journal_snapshot_threshold(const journal *log, uint64_t floor)
{
    assert(floor > 0);
    uint64_t proportional = log->snapshot_bytes * JOURNAL_SNAPSHOT_LOG_RATIO;
    return proportional > floor ? proportional : floor;
}

bool journal_snapshot_due(const journal *log, uint64_t threshold)
{
    assert(threshold > 0);
    return log->child == 0 && !log->failed && log->log_bytes >= threshold &&
           log->log_bytes - log->attempt_bytes >= threshold;
}

stock_code journal_snapshot_start(journal *log, journal_save_fn save,
                                  void *context, char *message,
                                  size_t message_size)
{
    assert(log->child == 0 && save != NULL);
    stock_code code = journal_rotate(log, message, message_size);
    if (code != STOCK_OK)
        return code;
    assert(log->segment_lsn == log->next_lsn);
    char name[JOURNAL_NAME_MAX], temp[JOURNAL_NAME_MAX + 4];
    journal_snapshot_name(name, log->next_lsn);
    snprintf(temp, sizeof temp, "%s.tmp", name);
    /* Everything the child needs is prepared here: it must not allocate. */
    log->child_lsn = log->next_lsn;
    log->child_log_bytes = log->log_bytes;
    log->snap_used = 0;
    log->snap_written = 0;
    log->snap_body_bytes = 0;
    XXH3_64bits_reset(log->snap_hash);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        log->attempt_bytes = log->log_bytes;
        journal_snapshot_outcome(log, false);
        message_set(message, message_size, "cannot fork the snapshot writer: %s",
                    strerror(errno));
        return STOCK_IO;
    }
    if (pid == 0)
        snapshot_child(log, save, context, parent, temp, name);
    log->child = pid;
    return STOCK_OK;
}

/* Bookkeeping after a child finished (ok: it wrote the snapshot). */
static void snapshot_finished(journal *log, bool ok, int status)
{
    char name[JOURNAL_NAME_MAX], temp[JOURNAL_NAME_MAX + 4];
    journal_snapshot_name(name, log->child_lsn);
    log->child = 0;
    if (!ok) {
        snprintf(temp, sizeof temp, "%s.tmp", name);
        unlinkat(log->dir_fd, temp, 0);
        log->attempt_bytes = log->child_log_bytes;
        journal_snapshot_outcome(log, false);
        stock_log(&log->log_hook, STOCK_LOG_WARNING,
                  "writing snapshot %s failed (status %d); the log keeps "
                  "everything, another try follows after more log; meanwhile the log "
                  "and the next start-up's replay grow: check the disk's free space",
                  name, status);
        return;
    }
    journal_snapshot_outcome(log, true);
    uint64_t previous = log->snapshot_lsn;
    log->snapshot_lsn = log->child_lsn;
    struct stat info;
    if (fstatat(log->dir_fd, name, &info, 0) == 0)
        log->snapshot_bytes = (uint64_t)info.st_size;
    assert(log->log_bytes >= log->child_log_bytes);
    log->log_bytes -= log->child_log_bytes;
    log->attempt_bytes = 0;
    atomic_fetch_add_explicit(&log->shared_snapshots, 1, memory_order_relaxed);
    journal_publish(log);
    /* Keep the previous snapshot and the log after it as a fallback in
     * case this one is damaged later. */
    journal_remove_old(log, previous == JOURNAL_LSN_NONE ? 0 : previous);
}

bool journal_snapshot_poll(journal *log, bool wait)
{
    if (log->child == 0)
        return true;
    int status = 0;
    pid_t pid;
    do {
        pid = waitpid(log->child, &status, wait ? 0 : WNOHANG);
    } while (pid < 0 && errno == EINTR);
    if (pid == 0)
        return false;
    bool ok = pid == log->child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (pid < 0 && errno == ECHILD) {
        /* The application reaps children itself (SIGCHLD ignored, or a
         * handler of its own): the file in place is the only word left. */
        char name[JOURNAL_NAME_MAX];
        journal_snapshot_name(name, log->child_lsn);
        ok = faccessat(log->dir_fd, name, F_OK, 0) == 0;
    }
    snapshot_finished(log, ok, status);
    assert(log->child == 0);
    return true;
}

/* Lowers keep_lsn to the newest snapshot at or before the lsn a reader
 * still needs (to lsn 0 when there is none), so that the reader can
 * rebuild the state there and read on. */
static uint64_t keep_for_reader(const journal *log, const journal_listing *listing,
                                uint64_t keep_lsn)
{
    uint64_t needed = journal_reader_needs(log->dir_fd);
    if (needed == JOURNAL_READER_NONE || needed >= keep_lsn)
        return keep_lsn;
    uint64_t keep = 0;
    for (size_t i = 0; i < listing->snapshot_count; i++)
        if (listing->snapshots[i] <= needed)
            keep = listing->snapshots[i];
    return keep;
}

void journal_remove_old(journal *log, uint64_t keep_lsn)
{
    /* A backup copies files of its own choosing: they all stay until the
     * clean-up after the next snapshot, which removes everything older. */
    if (atomic_load(&log->backups) > 0)
        return;
    journal_listing listing;
    if (!journal_list(log->dir_fd, &listing, NULL, 0))
        return;   /* clean-up is retried after the next snapshot */
    keep_lsn = keep_for_reader(log, &listing, keep_lsn);
    char name[JOURNAL_NAME_MAX];
    for (size_t i = 0; i < listing.snapshot_count; i++) {
        if (listing.snapshots[i] >= keep_lsn)
            continue;
        journal_snapshot_name(name, listing.snapshots[i]);
        unlinkat(log->dir_fd, name, 0);
    }
    /* A segment is unneeded when the next one starts at or before keep. */
    for (size_t i = 0; i + 1 < listing.segment_count; i++) {
        if (listing.segments[i + 1] > keep_lsn)
            break;
        assert(listing.segments[i] != log->segment_lsn);
        journal_segment_name(name, listing.segments[i]);
        unlinkat(log->dir_fd, name, 0);
    }
    journal_sync_dir(log);
    journal_listing_free(&listing);
}
