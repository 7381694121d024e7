/*
 * journal_backup.c -- online backups of a data folder, and their restore.
 *
 * A backup is taken at a point between groups: the current segment is
 * synced and closed (a rotation), so that every file of the set -- the
 * newest snapshot, if any, and the segments from the one that holds it up
 * to that point -- is whole and never written again. The set is pinned
 * (snapshot clean-up leaves every file alone while a backup runs) and then
 * copied on the caller's thread while the store goes on. The destination
 * folder gets the files, then the manifest JOURNAL_BACKUP_MANIFEST, written
 * last: a folder without it is an unfinished backup that restore refuses.
 *
 * Manifest (text): "stockd-backup <format version>", "end_lsn <n>",
 * "snapshot_lsn <n>|none", then "file <name> <bytes>" per file.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/journal_internal.h"

/* First line of a manifest, followed by its version. */
#define BACKUP_MANIFEST_MAGIC "stockd-backup"
#define BACKUP_MANIFEST_VERSION 1
/* Longest manifest line ("file <name> <20 digits>"). */
#define BACKUP_LINE_MAX (JOURNAL_NAME_MAX + 32)

/* ------------------------------------------------------------- copying */

/* Copies name from src_fd's folder into dst_fd's folder and fsyncs it;
 * adds its size to *bytes. False with message on failure. */
static bool copy_file(int src_fd, int dst_fd, const char *name, uint8_t *buffer,
                      uint64_t *bytes, char *message, size_t size)
{
    int in = openat(src_fd, name, O_RDONLY | O_CLOEXEC);
    int out = in < 0 ? -1 : openat(dst_fd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    bool ok = out >= 0;
    uint64_t offset = 0;
    while (ok) {
        ssize_t got = read(in, buffer, JOURNAL_READ_CHUNK_BYTES);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            ok = got == 0;
            break;
        }
        ok = journal_write_all(out, buffer, (size_t)got, offset);
        offset += (uint64_t)got;
    }
    ok = ok && fsync(out) == 0;
    if (!ok)
        message_set(message, size, "cannot copy %s: %s", name, strerror(errno));
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    *bytes += offset;
    return ok;
}

/* Creates the folder path, which must not exist; its fd, or -1 with
 * message (STOCK_INVALID in *code when it exists, else STOCK_IO). */
static int create_folder(const char *path, stock_code *code, char *message, size_t size)
{
    if (mkdir(path, 0755) != 0) {
        *code = errno == EEXIST ? STOCK_INVALID : STOCK_IO;
        message_set(message, size, errno == EEXIST
                    ? "%s exists: a backup or a restore goes into a new folder"
                    : "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        *code = STOCK_IO;
        message_set(message, size, "cannot open %s: %s", path, strerror(errno));
    }
    return fd;
}

/* Writes the manifest into dst_fd (temp, fsync, rename, fsync folder):
 * the backup's files, then the extra file if extra_name is not empty. */
static bool write_manifest(int dst_fd, const journal_backup *backup,
                           const uint64_t *sizes, const char *extra_name,
                           uint64_t extra_bytes, char *message, size_t size)
{
    const char *temp = JOURNAL_BACKUP_MANIFEST ".tmp";
    int fd = openat(dst_fd, temp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    FILE *out = fd < 0 ? NULL : fdopen(fd, "w");
    bool ok = out != NULL;
    if (ok) {
        fprintf(out, "%s %d\nend_lsn %" PRIu64 "\n", BACKUP_MANIFEST_MAGIC,
                BACKUP_MANIFEST_VERSION, backup->end_lsn);
        if (backup->snapshot_lsn == JOURNAL_LSN_NONE)
            fprintf(out, "snapshot_lsn none\n");
        else
            fprintf(out, "snapshot_lsn %" PRIu64 "\n", backup->snapshot_lsn);
        for (size_t i = 0; i < backup->count; i++)
            fprintf(out, "file %s %" PRIu64 "\n", backup->names[i], sizes[i]);
        if (extra_name[0] != '\0')
            fprintf(out, "file %s %" PRIu64 "\n", extra_name, extra_bytes);
        ok = fflush(out) == 0 && fsync(fd) == 0;
        ok = fclose(out) == 0 && ok;
    } else if (fd >= 0) {
        close(fd);
    }
    ok = ok && renameat(dst_fd, temp, dst_fd, JOURNAL_BACKUP_MANIFEST) == 0 && fsync(dst_fd) == 0;
    if (!ok)
        message_set(message, size, "cannot write the manifest %s: %s",
                    JOURNAL_BACKUP_MANIFEST, strerror(errno));
    return ok;
}

/* ------------------------------------------------------------- backups */

/* Adds name to the backup's set; false on out of memory. */
static bool add_name(journal_backup *backup, const char *name)
{
    char (*names)[JOURNAL_NAME_MAX] = realloc(backup->names, (backup->count + 1) * sizeof *names);
    if (names == NULL)
        return false;
    backup->names = names;
    snprintf(backup->names[backup->count++], JOURNAL_NAME_MAX, "%s", name);
    return true;
}

/* The set: the newest snapshot, then the segments from the one holding
 * its lsn (or the first) up to the current one, which starts at end. */
static bool list_set(journal *log, journal_backup *backup, char *message, size_t size)
{
    journal_listing listing;
    if (!journal_list(log->dir_fd, &listing, message, size))
        return false;
    char name[JOURNAL_NAME_MAX];
    bool ok = true;
    uint64_t from = backup->snapshot_lsn == JOURNAL_LSN_NONE ? 0 : backup->snapshot_lsn;
    if (backup->snapshot_lsn != JOURNAL_LSN_NONE) {
        journal_snapshot_name(name, backup->snapshot_lsn);
        ok = add_name(backup, name);
    }
    for (size_t i = 0; ok && i < listing.segment_count; i++) {
        bool holds_from = i + 1 == listing.segment_count || listing.segments[i + 1] > from;
        if (listing.segments[i] >= backup->end_lsn || !holds_from)
            continue;
        journal_segment_name(name, listing.segments[i]);
        ok = add_name(backup, name);
    }
    journal_listing_free(&listing);
    if (!ok)
        message_set(message, size, "out of memory listing the backup's files");
    return ok;
}

stock_code journal_backup_begin(journal *log, journal_backup *backup, char *message,
                                size_t size)
{
    memset(backup, 0, sizeof *backup);
    stock_code code = journal_rotate(log, message, size);
    if (code != STOCK_OK)
        return code;
    backup->end_lsn = log->next_lsn;
    backup->snapshot_lsn = log->snapshot_lsn;
    if (!list_set(log, backup, message, size)) {
        free(backup->names);
        memset(backup, 0, sizeof *backup);
        return STOCK_NOMEM;
    }
    atomic_fetch_add(&log->backups, 1);
    return STOCK_OK;
}

stock_code journal_backup_copy(const journal *log, const journal_backup *backup,
                               const char *dest, journal_backup_extra_fn extra,
                               void *extra_context, uint64_t *bytes, char *message,
                               size_t size)
{
    *bytes = 0;
    stock_code code = STOCK_IO;
    int dst_fd = create_folder(dest, &code, message, size);
    if (dst_fd < 0)
        return code;
    uint8_t *buffer = malloc(JOURNAL_READ_CHUNK_BYTES);
    uint64_t *sizes = calloc(backup->count + 1, sizeof *sizes);
    code = buffer != NULL && sizes != NULL ? STOCK_OK : STOCK_NOMEM;
    if (code == STOCK_NOMEM)
        message_set(message, size, "out of memory for the copy");
    char extra_name[JOURNAL_NAME_MAX] = "";
    uint64_t extra_bytes = 0;
    if (code == STOCK_OK && extra != NULL) {
        code = extra(extra_context, dst_fd, extra_name, &extra_bytes, message, size);
        *bytes += extra_bytes;
    }
    for (size_t i = 0; code == STOCK_OK && i < backup->count; i++) {
        if (!copy_file(log->dir_fd, dst_fd, backup->names[i], buffer, &sizes[i], message, size))
            code = STOCK_IO;
        *bytes += sizes[i];
    }
    if (code == STOCK_OK &&
        !write_manifest(dst_fd, backup, sizes, extra_name, extra_bytes, message, size))
        code = STOCK_IO;
    free(sizes);
    free(buffer);
    close(dst_fd);
    return code;
}

void journal_backup_end(journal *log, journal_backup *backup)
{
    unsigned before = atomic_fetch_sub(&log->backups, 1);
    assert(before > 0);
    (void)before;
    free(backup->names);
    memset(backup, 0, sizeof *backup);
}

/* ------------------------------------------------------------- restore */

/* Reads the manifest of the backup folder src_fd into *backup (names
 * allocated; sizes into *sizes, allocated). False with message. */
static bool read_manifest(int src_fd, const char *src, journal_backup *backup,
                          uint64_t **sizes, char *message, size_t size)
{
    memset(backup, 0, sizeof *backup);
    *sizes = NULL;
    int fd = openat(src_fd, JOURNAL_BACKUP_MANIFEST, O_RDONLY | O_CLOEXEC);
    FILE *in = fd < 0 ? NULL : fdopen(fd, "r");
    if (in == NULL) {
        message_set(message, size, "%s is not a finished backup (no %s: %s)", src,
                    JOURNAL_BACKUP_MANIFEST, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    char line[BACKUP_LINE_MAX], name[BACKUP_LINE_MAX], snapshot[32];
    int version = 0;
    bool ok = fgets(line, sizeof line, in) != NULL &&
              sscanf(line, BACKUP_MANIFEST_MAGIC " %d", &version) == 1 &&
              version == BACKUP_MANIFEST_VERSION &&
              fgets(line, sizeof line, in) != NULL &&
              sscanf(line, "end_lsn %" SCNu64, &backup->end_lsn) == 1 &&
              fgets(line, sizeof line, in) != NULL &&
              sscanf(line, "snapshot_lsn %31s", snapshot) == 1;
    if (ok && strcmp(snapshot, "none") == 0)
        backup->snapshot_lsn = JOURNAL_LSN_NONE;
    else if (ok)
        ok = sscanf(snapshot, "%" SCNu64, &backup->snapshot_lsn) == 1;
    while (ok && fgets(line, sizeof line, in) != NULL) {
        uint64_t bytes = 0;
        uint64_t *more = realloc(*sizes, (backup->count + 1) * sizeof *more);
        ok = more != NULL && sscanf(line, "file %47s %" SCNu64, name, &bytes) == 2 &&
             strlen(name) < JOURNAL_NAME_MAX && strchr(name, '/') == NULL;
        if (more != NULL)
            *sizes = more;
        ok = ok && add_name(backup, name);
        if (ok)
            (*sizes)[backup->count - 1] = bytes;
    }
    fclose(in);
    if (!ok)
        message_set(message, size, "%s/%s is damaged: not the manifest of a stockd backup",
                    src, JOURNAL_BACKUP_MANIFEST);
    return ok;
}

/* Checks that every file the manifest names is there, whole. */
static bool check_files(int src_fd, const char *src, const journal_backup *backup,
                        const uint64_t *sizes, char *message, size_t size)
{
    for (size_t i = 0; i < backup->count; i++) {
        struct stat info;
        if (fstatat(src_fd, backup->names[i], &info, 0) != 0 ||
            (uint64_t)info.st_size != sizes[i]) {
            message_set(message, size, "%s/%s is missing or not the %" PRIu64
                        " bytes the manifest says: the backup is damaged",
                        src, backup->names[i], sizes[i]);
            return false;
        }
    }
    return true;
}

/* A restore that failed takes back what it copied, so that no partial
 * data folder is left to be opened by mistake (best effort). */
static void remove_restored(int dst_fd, const char *dest, const journal_backup *backup)
{
    for (size_t i = 0; i < backup->count; i++)
        unlinkat(dst_fd, backup->names[i], 0);
    rmdir(dest);
}

stock_code journal_restore(const char *src, const char *dest, journal_backup *backup,
                           uint64_t *bytes, char *message, size_t size)
{
    *bytes = 0;
    memset(backup, 0, sizeof *backup);
    int src_fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (src_fd < 0) {
        message_set(message, size, "cannot open the backup %s: %s", src, strerror(errno));
        return errno == ENOENT || errno == ENOTDIR ? STOCK_INVALID : STOCK_IO;
    }
    uint64_t *sizes = NULL;
    stock_code code = STOCK_INVALID;
    if (read_manifest(src_fd, src, backup, &sizes, message, size) &&
        check_files(src_fd, src, backup, sizes, message, size)) {
        int dst_fd = create_folder(dest, &code, message, size);
        uint8_t *buffer = dst_fd < 0 ? NULL : malloc(JOURNAL_READ_CHUNK_BYTES);
        if (dst_fd >= 0)
            code = buffer != NULL ? STOCK_OK : STOCK_NOMEM;
        for (size_t i = 0; code == STOCK_OK && i < backup->count; i++)
            if (!copy_file(src_fd, dst_fd, backup->names[i], buffer, bytes, message, size))
                code = STOCK_IO;
        if (code == STOCK_OK && fsync(dst_fd) != 0) {
            message_set(message, size, "cannot sync %s: %s", dest, strerror(errno));
            code = STOCK_IO;
        }
        free(buffer);
        if (dst_fd >= 0 && code != STOCK_OK)
            remove_restored(dst_fd, dest, backup);
        if (dst_fd >= 0)
            close(dst_fd);
    }
    free(sizes);
    free(backup->names);
    backup->names = NULL;
    close(src_fd);
    return code;
}
