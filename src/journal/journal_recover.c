/*
 * journal_recover.c -- recovery at open: load the newest snapshot whose
 * checksum holds, replay the segments after it in order, cut a torn tail,
 * and refuse (STOCK_CORRUPT, file and byte offset in the message, nothing
 * changed on disk) on any damage that is not a torn tail. The rules are
 * written out in docs/engine.md, "Recovery".
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* XXH3_state_t on the stack: recovery checksums a snapshot as it loads it. */
#define XXH_STATIC_LINKING_ONLY
#include "journal/journal_internal.h"

typedef struct recovery {
    journal *log;
    const journal_replay *replay;
    journal_listing listing;
    uint64_t base_lsn;        /* records the loaded snapshot covers */
    size_t damaged_count;     /* newest snapshots skipped as damaged */
    bool cut;                 /* a torn tail to cut from the last segment */
    bool cut_hole;            /* the tail starts at a hole (zero header) */
    uint64_t cut_segment;
    uint64_t cut_offset;
    uint64_t cut_bytes;       /* up to its last non-zero byte */
    uint64_t cut_zero_bytes;  /* the zeros after that, cut too */
    uint64_t last_end;        /* end of the last valid record of the last segment */
    uint32_t last_version;    /* the store format of the last segment */
    char *message;
    size_t size;
} recovery;

/* A snapshot body read front to back, a chunk at a time, with pread, and
 * checksummed as it goes. */
typedef struct body_reader {
    int fd;
    XXH3_state_t *hash;       /* of the header and every chunk read */
    uint8_t *buffer;          /* JOURNAL_READ_CHUNK_BYTES */
    uint64_t next;            /* file offset of the next chunk */
    uint64_t end;             /* file offset where the body ends */
    size_t filled;            /* bytes of the current chunk in buffer */
    size_t pos;               /* bytes of it consumed */
    int error;                /* errno of a failed pread, or 0 */
} body_reader;

/* Reads the next chunk of the body; false at its end or on error. */
static bool refill(body_reader *reader)
{
    assert(reader->pos == reader->filled && reader->next <= reader->end);
    uint64_t left = reader->end - reader->next;
    if (left == 0)
        return false;
    size_t n = left < JOURNAL_READ_CHUNK_BYTES ? (size_t)left : JOURNAL_READ_CHUNK_BYTES;
    ssize_t got;
    do {
        got = pread(reader->fd, reader->buffer, n, (off_t)reader->next);
    } while (got < 0 && errno == EINTR);
    if (got <= 0) {
        reader->error = got < 0 ? errno : EIO;   /* EIO: the file shrank */
        return false;
    }
    XXH3_64bits_update(reader->hash, reader->buffer, (size_t)got);
    reader->next += (uint64_t)got;
    reader->filled = (size_t)got;
    reader->pos = 0;
    return true;
}

static int read_body(void *context, void *data, size_t len)
{
    body_reader *reader = context;
    uint8_t *out = data;
    while (len > 0) {
        if (reader->pos == reader->filled && !refill(reader))
            return -1;
        size_t n = reader->filled - reader->pos < len ? reader->filled - reader->pos : len;
        memcpy(out, reader->buffer + reader->pos, n);
        reader->pos += n;
        out += n;
        len -= n;
    }
    return 0;
}

/* Reads and checksums what the load left of the body (all of it when the
 * load stopped early); false on a read error (reader->error set). */
static bool drain(body_reader *reader)
{
    reader->pos = reader->filled;
    while (refill(reader))
        reader->pos = reader->filled;
    return reader->error == 0;
}

/* Loads the body of a snapshot whose frame holds, checksumming it as it is
 * read: the state is not used before the whole file has been read and its
 * checksum compared. On a mismatch the snapshot is damage, whatever the
 * load said: the state is cleared again, *damaged set and STOCK_OK
 * returned, so that recovery goes on to an older snapshot. */
static stock_code load_snapshot(const journal_replay *replay, const char *name, int fd,
                                uint8_t *buffer, const uint8_t *header,
                                uint64_t body_len, uint64_t checksum,
                                bool *damaged, char *message, size_t size)
{
    XXH3_state_t hash;
    XXH3_64bits_reset(&hash);
    XXH3_64bits_update(&hash, header, JOURNAL_FILE_HEADER_BYTES);
    body_reader reader = {.fd = fd, .hash = &hash, .buffer = buffer,
                          .next = JOURNAL_FILE_HEADER_BYTES,
                          .end = JOURNAL_FILE_HEADER_BYTES + body_len};
    char inner[STOCK_MESSAGE_MAX] = "";
    stock_code code = replay->load(replay->context, read_body, &reader,
                                      (size_t)body_len, inner, sizeof inner);
    uint64_t left = reader.end - reader.next + (reader.filled - reader.pos);
    *damaged = false;
    if (reader.error == 0 && drain(&reader) &&
        XXH3_64bits_digest(&hash) != checksum) {
        *damaged = true;
        replay->clear(replay->context);
        return STOCK_OK;
    }
    if (reader.error != 0) {
        code = STOCK_IO;
        snprintf(inner, sizeof inner, "cannot read: %s", strerror(reader.error));
    } else if (code == STOCK_OK && left != 0) {
        code = STOCK_CORRUPT;
        snprintf(inner, sizeof inner, "%llu bytes left over after the state",
                 (unsigned long long)left);
    }
    if (code != STOCK_OK)
        message_set(message, size, "%s: %s", name, inner);
    return code;
}

stock_code journal_snapshot_try(int dir_fd, uint64_t lsn, const journal_replay *replay,
                                uint8_t *buffer, bool *loaded, uint64_t *file_bytes,
                                char *damage, size_t damage_size, char *message,
                                size_t size)
{
    char name[JOURNAL_NAME_MAX];
    journal_snapshot_name(name, lsn);
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
    struct stat info;
    if (fd < 0 || fstat(fd, &info) != 0) {
        message_set(message, size, "cannot read %s: %s", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return STOCK_IO;
    }
    uint8_t header[JOURNAL_FILE_HEADER_BYTES];
    uint64_t body_len = 0, checksum = 0;
    const char *why = NULL;
    bool damaged = false;
    uint32_t version = 0;
    stock_code code = journal_snapshot_frame(fd, (uint64_t)info.st_size, lsn, header,
                                             &body_len, &checksum, &why, &version);
    if (code == STOCK_OK) {
        code = load_snapshot(replay, name, fd, buffer, header, body_len, checksum,
                             &damaged, message, size);
        why = "checksum mismatch";
    } else if (code == STOCK_UNSUPPORTED) {
        /* Not damage: an older snapshot must not stand in for it. */
        journal_newer_format(message, size, name, version);
    } else if (code == STOCK_IO) {
        message_set(message, size, "cannot read %s: %s", name, strerror(errno));
    } else {
        damaged = true;
        code = STOCK_OK;
    }
    if (damaged) {
        assert(why != NULL && code == STOCK_OK);
        snprintf(damage, damage_size, "%s: %s", name, why);
    } else if (code == STOCK_OK) {
        *loaded = true;
        *file_bytes = (uint64_t)info.st_size;
    }
    close(fd);
    return code;
}

/* Picks the newest snapshot whose checksum holds and loads it. */
static stock_code recover_snapshot(recovery *r)
{
    char first_damage[STOCK_MESSAGE_MAX] = "", damage[STOCK_MESSAGE_MAX];
    assert(r->base_lsn == 0 && r->damaged_count == 0);
    if (r->listing.snapshot_count == 0)
        return STOCK_OK;
    uint8_t *buffer = malloc(JOURNAL_READ_CHUNK_BYTES);
    if (buffer == NULL)
        return STOCK_NOMEM;
    stock_code code = STOCK_OK;
    bool loaded = false;
    for (size_t i = r->listing.snapshot_count; i-- > 0 && code == STOCK_OK && !loaded;) {
        uint64_t lsn = r->listing.snapshots[i];
        code = journal_snapshot_try(r->log->dir_fd, lsn, r->replay, buffer, &loaded,
                                    &r->log->snapshot_bytes, damage, sizeof damage,
                                    r->message, r->size);
        if (loaded) {
            r->base_lsn = lsn;
            r->damaged_count = r->listing.snapshot_count - 1 - i;
            r->log->snapshot_lsn = lsn;
            r->log->recovery.snapshot_loaded = true;
            r->log->recovery.snapshot_lsn = lsn;
        } else if (code == STOCK_OK && first_damage[0] == '\0') {
            memcpy(first_damage, damage, sizeof damage);
        }
    }
    free(buffer);
    if (code == STOCK_OK && !loaded) {
        message_set(r->message, r->size, "%s, and no older valid snapshot",
                    first_damage);
        return STOCK_CORRUPT;
    }
    return code;
}

/* Offset of the first valid record at or after from, or len if none. */
static size_t find_valid_record(const uint8_t *data, size_t len, size_t from)
{
    assert(data != NULL && from <= len);
    for (size_t p = from; p + JOURNAL_RECORD_HEADER_BYTES < len; p++) {
        uint32_t length = le_get_u32(data + p);
        /* Cheap filter first: most garbage fails the length test. */
        if (length == 0 || length > JOURNAL_RECORD_MAX ||
            length > len - p - JOURNAL_RECORD_HEADER_BYTES)
            continue;
        const uint8_t *payload;
        size_t payload_len, record_len;
        const char *why;
        if (journal_parse(data + p, len - p, &payload, &payload_len,
                          &record_len, &why) == JOURNAL_PARSE_RECORD)
            return p;
    }
    return len;
}

/* True if the bad record at data[0..len) has an all-zero header (and so,
 * as journal_parse found it bad, non-zero bytes somewhere after it). */
static bool zero_header(const uint8_t *data, size_t len)
{
    return len >= JOURNAL_RECORD_HEADER_BYTES &&
           journal_all_zero(data, JOURNAL_RECORD_HEADER_BYTES);
}

/* End of the bytes the bad record at data[offset..len) claims, never past
 * len: as its length field says or, when that is out of range (no extent
 * to trust), to the end of the page holding the first byte after its
 * header. A header cut short by the file's end claims the rest of it. */
static size_t record_extent_end(const uint8_t *data, size_t len, size_t offset)
{
    assert(offset < len);
    size_t header_end = offset + JOURNAL_RECORD_HEADER_BYTES;
    if (header_end > len)
        return len;
    uint32_t length = le_get_u32(data + offset);
    size_t end = header_end + length;
    if (length == 0 || length > JOURNAL_RECORD_MAX)
        end = (header_end / JOURNAL_PAGE_BYTES + 1) * JOURNAL_PAGE_BYTES;
    return end < len ? end : len;
}

/* True if a page of the file that starts inside the bad record at offset
 * (after its first byte, before the end of its extent and before the next
 * valid record, at limit) is all zero up to the page's end or the file's
 * end: a page that never reached the disk. The whole page must be zero, not
 * only the record's part of it: a page that was never written is zero
 * throughout, while a record whose last bytes merely happen to be zero is
 * no sign of a lost write. And the page must come before the next valid
 * record: a length field damaged to claim far more than the record would
 * otherwise reach past valid records into the zeros kept ahead of the log,
 * and cut acknowledged records. */
static bool zero_page_inside(const uint8_t *data, size_t len, size_t offset,
                             size_t limit)
{
    assert(limit <= len);
    size_t end = record_extent_end(data, len, offset);
    if (end > limit)
        end = limit;
    size_t page = (offset / JOURNAL_PAGE_BYTES + 1) * JOURNAL_PAGE_BYTES;
    assert(end <= len && end - offset <= JOURNAL_RECORD_HEADER_BYTES +
           JOURNAL_RECORD_MAX + JOURNAL_PAGE_BYTES);   /* bounds the loop */
    for (; page < end; page += JOURNAL_PAGE_BYTES) {
        size_t page_end = len - page < JOURNAL_PAGE_BYTES ? len : page + JOURNAL_PAGE_BYTES;
        if (journal_all_zero(data + page, page_end - page))
            return true;
    }
    return false;
}

/* A bad record at offset: a torn tail to cut, or damage to refuse. */
static stock_code bad_record(recovery *r, const char *name, uint64_t lsn,
                             bool last, const uint8_t *data, size_t len,
                             size_t offset, const char *why)
{
    assert(offset >= JOURNAL_FILE_HEADER_BYTES && offset < len);
    assert(why != NULL);
    if (!last) {
        message_set(r->message, r->size, "%s, offset %zu: %s in a closed "
                    "segment (damage before the end of the log)", name,
                    offset, why);
        return STOCK_CORRUPT;
    }
    /* A hole: the segment is zero-filled ahead of its records, and after a
     * power loss the pages of writes that no fdatasync covered may reach
     * the disk in any order, so a page never written (zeros) can come
     * before written ones. The bad record is a hole if its header is all
     * zero, or if a page of the file (JOURNAL_PAGE_BYTES, offset a multiple
     * of it) starts after the record's first byte and before the end of
     * its extent and is all zero to the page's end or the file's end.
     * Whatever follows a hole was written after bytes no completed sync
     * covered, so it was never acknowledged in sync mode: cut at the bad
     * record's start, valid records included. (In a closed segment, synced
     * before the next one began, a hole is damage: refused above.) */
    size_t later = find_valid_record(data, len, offset + 1);
    r->cut_hole = zero_header(data + offset, len - offset) ||
                  zero_page_inside(data, len, offset, later);
    if (r->cut_hole)
        later = len;
    if (later < len) {
        message_set(r->message, r->size, "%s, offset %zu: %s, yet a valid "
                    "record follows at offset %zu (damage, not a torn tail)",
                    name, offset, why, later);
        return STOCK_CORRUPT;
    }
    /* The notice tells the torn bytes apart from the zeros ahead of them. */
    size_t data_end = len;
    while (data_end > offset && data[data_end - 1] == 0)
        data_end--;
    assert(data_end > offset);   /* parse found it bad: not all zero */
    r->cut = true;
    r->cut_segment = lsn;
    r->cut_offset = offset;
    r->cut_bytes = data_end - offset;
    r->cut_zero_bytes = len - data_end;
    return STOCK_OK;
}

/* Hints the owner at the record framed at *ahead, if its length fits, and
 * moves *ahead past it (to len when the framing ends: the hints stop
 * there, the replay itself finds out why). */
static void prefetch_next(const recovery *r, const uint8_t *data, size_t len,
                          size_t *ahead)
{
    assert(*ahead <= len);
    if (r->replay->prefetch == NULL || len - *ahead < JOURNAL_RECORD_HEADER_BYTES) {
        *ahead = len;
        return;
    }
    uint32_t length = le_get_u32(data + *ahead);
    if (length == 0 || length > len - *ahead - JOURNAL_RECORD_HEADER_BYTES) {
        *ahead = len;
        return;
    }
    r->replay->prefetch(r->replay->context,
                        data + *ahead + JOURNAL_RECORD_HEADER_BYTES, length);
    *ahead += JOURNAL_RECORD_HEADER_BYTES + length;
}

/* Replays the records of one segment; *next is the lsn after its last. */
static stock_code replay_segment(recovery *r, const char *name, uint64_t lsn,
                                 bool last, const uint8_t *data, size_t len,
                                 uint64_t *next)
{
    size_t offset = JOURNAL_FILE_HEADER_BYTES, ahead = offset;
    assert(*next == lsn && len >= offset);
    for (int k = 0; k < JOURNAL_REPLAY_AHEAD; k++)
        prefetch_next(r, data, len, &ahead);
    for (;;) {
        const uint8_t *payload;
        size_t payload_len, record_len;
        const char *why = NULL;
        journal_parse_result result = journal_parse(
            data + offset, len - offset, &payload, &payload_len, &record_len, &why);
        if (result != JOURNAL_PARSE_RECORD)
            r->last_end = offset;
        if (result == JOURNAL_PARSE_END)
            return STOCK_OK;
        if (result == JOURNAL_PARSE_BAD)
            return bad_record(r, name, lsn, last, data, len, offset, why);
        if (*next >= r->base_lsn) {
            char inner[STOCK_MESSAGE_MAX] = "";
            stock_code code = r->replay->apply(r->replay->context, payload,
                                               payload_len, inner, sizeof inner);
            if (code != STOCK_OK) {
                message_set(r->message, r->size, "%s, offset %zu: record %llu: %s",
                            name, offset, (unsigned long long)*next, inner);
                return code;
            }
            r->log->log_bytes += record_len;
            r->log->recovery.records_replayed++;
        }
        prefetch_next(r, data, len, &ahead);
        offset += record_len;
        *next += 1;
        assert(offset <= len);
    }
}

static stock_code recover_segment(recovery *r, size_t index, uint64_t *next)
{
    assert(index < r->listing.segment_count);
    uint64_t lsn = r->listing.segments[index];
    bool last = index + 1 == r->listing.segment_count;
    char name[JOURNAL_NAME_MAX];
    journal_segment_name(name, lsn);
    if (lsn != *next) {
        message_set(r->message, r->size, "%s, offset 0: starts at record %llu "
                    "but the log before it ends at record %llu", name,
                    (unsigned long long)lsn, (unsigned long long)*next);
        return STOCK_CORRUPT;
    }
    const uint8_t *data;
    size_t len;
    stock_code code = journal_map(r->log->dir_fd, name, &data, &len, r->message, r->size);
    if (code != STOCK_OK)
        return code;
    uint32_t version = 0;
    journal_header_result header =
        journal_header_check(data, len, JOURNAL_SEGMENT_MAGIC, lsn, &version);
    if (header == JOURNAL_HEADER_NEWER) {
        journal_newer_format(r->message, r->size, name, version);
        code = STOCK_UNSUPPORTED;
    } else if (header != JOURNAL_HEADER_OK) {
        message_set(r->message, r->size, "%s, offset 0: bad segment header", name);
        code = STOCK_CORRUPT;
    } else {
        r->last_version = version;
        code = replay_segment(r, name, lsn, last, data, len, next);
    }
    journal_unmap(data, len);
    return code;
}

/* Replays every segment from the one holding the snapshot's lsn on. */
static stock_code recover_segments(recovery *r)
{
    const journal_listing *listing = &r->listing;
    uint64_t next = r->base_lsn;
    size_t start = listing->segment_count;
    for (size_t i = 0; i < listing->segment_count; i++)
        if (listing->segments[i] <= r->base_lsn)
            start = i;
    if (start == listing->segment_count && listing->segment_count > 0) {
        char name[JOURNAL_NAME_MAX];
        journal_segment_name(name, listing->segments[0]);
        message_set(r->message, r->size, "%s, offset 0: the log must start "
                    "at record %llu, earlier records are missing", name,
                    (unsigned long long)r->base_lsn);
        return STOCK_CORRUPT;
    }
    if (start < listing->segment_count)
        next = listing->segments[start];
    for (size_t i = start; i < listing->segment_count; i++) {
        assert(i == 0 || listing->segments[i - 1] < listing->segments[i]);
        stock_code code = recover_segment(r, i, &next);
        if (code != STOCK_OK)
            return code;
    }
    if (next < r->base_lsn) {
        message_set(r->message, r->size, "the log ends at record %llu, "
                    "before the snapshot's record %llu",
                    (unsigned long long)next, (unsigned long long)r->base_lsn);
        return STOCK_CORRUPT;
    }
    r->log->next_lsn = next;
    return STOCK_OK;
}

/* Cuts the torn tail found by bad_record from the last segment. */
static stock_code cut_tail(recovery *r)
{
    assert(r->cut && r->cut_offset >= JOURNAL_FILE_HEADER_BYTES);
    assert(r->cut_bytes > 0);
    char name[JOURNAL_NAME_MAX];
    journal_segment_name(name, r->cut_segment);
    int fd = openat(r->log->dir_fd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)r->cut_offset) != 0 || fsync(fd) != 0) {
        message_set(r->message, r->size, "cannot cut the torn tail of %s: %s",
                    name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return STOCK_IO;
    }
    close(fd);
    r->log->recovery.torn_bytes = r->cut_bytes;
    stock_log(&r->log->log_hook, STOCK_LOG_NOTICE,
              "cut a torn tail of %llu bytes (and %llu zero bytes after it) "
              "at offset %llu of %s (%s, never acknowledged in sync mode)",
              (unsigned long long)r->cut_bytes,
              (unsigned long long)r->cut_zero_bytes,
              (unsigned long long)r->cut_offset, name,
              r->cut_hole ? "data after a hole of zeros: unsynced writes "
                            "that reached the disk out of order"
                          : "a write the stop interrupted");
    return STOCK_OK;
}

/* Leftovers of interrupted creates: "log-*.tmp", "snap-*.tmp". Best
 * effort: a listing that fails leaves them for the next open, and no
 * recovery step reads them. */
static void remove_temps(journal *log)
{
    int fd = dup(log->dir_fd);
    DIR *dir = fd < 0 ? NULL : fdopendir(fd);
    if (dir == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    rewinddir(dir);
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        size_t len = strlen(entry->d_name);
        bool ours = strncmp(entry->d_name, "log-", 4) == 0 ||
                    strncmp(entry->d_name, "snap-", 5) == 0;
        if (ours && len > 4 && strcmp(entry->d_name + len - 4, ".tmp") == 0)
            unlinkat(log->dir_fd, entry->d_name, 0);
    }
    closedir(dir);
}

/*
 * Appends go on in the last segment (unless it is full). It is synced
 * first: records the killed process wrote but never synced are part of the
 * state now, and later records depend on them.
 */
static stock_code reopen_last(recovery *r)
{
    journal *log = r->log;
    uint64_t lsn = r->listing.segments[r->listing.segment_count - 1];
    char name[JOURNAL_NAME_MAX];
    journal_segment_name(name, lsn);
    int fd = openat(log->dir_fd, name, O_WRONLY | O_CLOEXEC);
    struct stat info;
    if (fd < 0 || fsync(fd) != 0 || fstat(fd, &info) != 0 ||
        !journal_sync_files_open(log, name)) {
        message_set(r->message, r->size, "cannot reopen %s: %s", name,
                    strerror(errno));
        if (fd >= 0)
            close(fd);
        return STOCK_IO;
    }
    /* Past the records only zeros are left (a cut tail is gone): appends
     * overwrite them, and the zero-filling goes on from the file's end. */
    uint64_t file_bytes = (uint64_t)info.st_size;
    assert(r->last_end >= JOURNAL_FILE_HEADER_BYTES && file_bytes >= r->last_end);
    assert(!r->cut || file_bytes == r->cut_offset);
    log->segment_fd = fd;
    log->segment_lsn = lsn;
    log->segment_bytes = r->last_end;
    log->zeroed_end = file_bytes;
    log->zero_failed = false;
    return STOCK_OK;
}

/* Only once everything has been read does recovery change the folder. */
static stock_code finish(recovery *r)
{
    assert(r->log->segment_fd < 0);
    assert(r->damaged_count <= r->listing.snapshot_count);
    if (r->cut) {
        stock_code code = cut_tail(r);
        if (code != STOCK_OK)
            return code;
    }
    const journal_listing *listing = &r->listing;
    for (size_t i = 0; i < r->damaged_count; i++) {
        uint64_t lsn = listing->snapshots[listing->snapshot_count - 1 - i];
        char name[JOURNAL_NAME_MAX], damaged[JOURNAL_NAME_MAX + 8];
        journal_snapshot_name(name, lsn);
        snprintf(damaged, sizeof damaged, "%s.damaged", name);
        renameat(r->log->dir_fd, name, r->log->dir_fd, damaged);
        stock_log(&r->log->log_hook, STOCK_LOG_WARNING,
                  "%s is damaged: kept as %s, recovered from an older "
                  "snapshot and the log", name, damaged);
    }
    remove_temps(r->log);
    if (r->listing.segment_count == 0)
        return journal_segment_create(r->log, r->log->next_lsn, r->message, r->size);
    stock_code code = reopen_last(r);
    /* A segment of an older format takes no records of this one: a file's
     * header names the format of everything in it. */
    if (code == STOCK_OK && (r->last_end >= JOURNAL_SEGMENT_BYTES ||
                             r->last_version < JOURNAL_FORMAT_VERSION))
        code = journal_segment_create(r->log, r->log->next_lsn, r->message, r->size);
    return code;
}

stock_code journal_recover(journal *log, const journal_replay *replay,
                           char *message, size_t size)
{
    assert(log->dir_fd >= 0 && log->segment_fd < 0);
    recovery r = {.log = log, .replay = replay, .message = message, .size = size};
    if (!journal_list(log->dir_fd, &r.listing, message, size))
        return STOCK_IO;
    stock_code code = recover_snapshot(&r);
    if (code == STOCK_OK)
        code = recover_segments(&r);
    if (code == STOCK_OK)
        code = finish(&r);
    journal_listing_free(&r.listing);
    assert(code != STOCK_OK || log->segment_fd >= 0);
    /* Every record after the snapshot was replayed, and none before it. */
    assert(code != STOCK_OK ||
           log->recovery.snapshot_lsn + log->recovery.records_replayed == log->next_lsn);
    return code;
}
