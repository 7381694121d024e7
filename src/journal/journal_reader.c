/*
 * journal_reader.c -- the positioned reader of a data folder's flow
 * (journal.h, "reading"): a snapshot to start from, then the records of
 * the segments one after the other with pread, following the writer as
 * the log grows. It takes no lock and writes nothing: the writer may be
 * running, restarting or gone.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/journal_internal.h"

struct journal_reader {
    int dir_fd;
    int segment_fd;             /* the segment being read, or -1 */
    uint64_t segment_lsn;       /* its first record's lsn */
    uint64_t offset;            /* where its next record starts */
    uint64_t lsn;               /* the lsn of the record at offset */
    uint64_t next_lsn;          /* the next record to return */
    buf record;                 /* the last record read, framed */
};

/* Loads the newest valid snapshot at or before from_lsn; when none is
 * and the log no longer starts at 0, the oldest valid one. *base_lsn is
 * what the loaded one covers (0: none loaded). */
static stock_code load_start(journal_reader *reader, const journal_listing *listing,
                             uint64_t from_lsn, const journal_replay *replay,
                             uint64_t *base_lsn, char *message, size_t size)
{
    *base_lsn = 0;
    bool log_from_zero = listing->segment_count > 0 && listing->segments[0] == 0;
    uint8_t *buffer = malloc(JOURNAL_READ_CHUNK_BYTES);
    if (buffer == NULL)
        return STOCK_NOMEM;
    char damage[STOCK_MESSAGE_MAX];
    stock_code code = STOCK_OK;
    bool loaded = false;
    for (size_t i = listing->snapshot_count; i-- > 0 && code == STOCK_OK && !loaded;) {
        uint64_t lsn = listing->snapshots[i];
        bool last_chance = i == 0 && !log_from_zero;
        if (lsn > from_lsn && !last_chance)
            continue;
        uint64_t file_bytes = 0;
        code = journal_snapshot_try(reader->dir_fd, lsn, replay, buffer, &loaded,
                                    &file_bytes, damage, sizeof damage, message, size);
        if (loaded)
            *base_lsn = lsn;
    }
    free(buffer);
    if (code == STOCK_OK && !loaded && !log_from_zero && listing->segment_count > 0) {
        message_set(message, size, "no valid snapshot to start from, and the log "
                    "starts at record %llu", (unsigned long long)listing->segments[0]);
        return STOCK_CORRUPT;
    }
    return code;
}

stock_code journal_reader_open(const char *path, uint64_t from_lsn,
                               const journal_replay *replay, journal_reader **out,
                               uint64_t *start_lsn, char *message, size_t message_size)
{
    assert(path != NULL && replay != NULL && out != NULL && start_lsn != NULL);
    *out = NULL;
    journal_reader *reader = calloc(1, sizeof *reader);
    if (reader == NULL)
        return STOCK_NOMEM;
    reader->segment_fd = -1;
    reader->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (reader->dir_fd < 0) {
        message_set(message, message_size, "cannot open the data folder %s: %s", path,
                    strerror(errno));
        free(reader);
        return STOCK_IO;
    }
    journal_listing listing;
    if (!journal_list(reader->dir_fd, &listing, message, message_size)) {
        journal_reader_close(reader);
        return STOCK_IO;
    }
    uint64_t base_lsn = 0;
    stock_code code = load_start(reader, &listing, from_lsn, replay, &base_lsn, message,
                                 message_size);
    journal_listing_free(&listing);
    if (code != STOCK_OK) {
        journal_reader_close(reader);
        return code;
    }
    reader->next_lsn = base_lsn;
    *start_lsn = base_lsn;
    *out = reader;
    return STOCK_OK;
}

/* Opens the segment that holds next_lsn (the newest starting at or before
 * it). False when there is none yet (WAIT) or on failure (*failed set). */
static bool open_segment(journal_reader *reader, bool *failed, char *message, size_t size)
{
    journal_listing listing;
    if (!journal_list(reader->dir_fd, &listing, message, size)) {
        *failed = true;
        return false;
    }
    bool found = false;
    uint64_t lsn = 0;
    for (size_t i = 0; i < listing.segment_count; i++)
        if (listing.segments[i] <= reader->next_lsn) {
            found = true;
            lsn = listing.segments[i];
        }
    bool gone = !found && listing.segment_count > 0;   /* only later segments are left */
    journal_listing_free(&listing);
    if (gone) {
        message_set(message, size, "record %llu is gone: a snapshot's clean-up deleted it",
                    (unsigned long long)reader->next_lsn);
        *failed = true;
    }
    if (!found)
        return false;
    char name[JOURNAL_NAME_MAX];
    journal_segment_name(name, lsn);
    int fd = openat(reader->dir_fd, name, O_RDONLY | O_CLOEXEC);
    uint8_t header[JOURNAL_FILE_HEADER_BYTES];
    uint32_t version = 0;
    journal_header_result header_result = JOURNAL_HEADER_BAD;
    if (fd >= 0 && pread(fd, header, sizeof header, 0) == (ssize_t)sizeof header)
        header_result = journal_header_check(header, sizeof header, JOURNAL_SEGMENT_MAGIC,
                                             lsn, &version);
    if (header_result != JOURNAL_HEADER_OK) {
        /* a segment is made whole under a temporary name, then renamed */
        if (header_result == JOURNAL_HEADER_NEWER)
            journal_newer_format(message, size, name, version);
        else
            message_set(message, size, "cannot read the header of %s", name);
        *failed = true;
        if (fd >= 0)
            close(fd);
        return false;
    }
    reader->segment_fd = fd;
    reader->segment_lsn = lsn;
    reader->offset = JOURNAL_FILE_HEADER_BYTES;
    reader->lsn = lsn;
    return true;
}

/* True when the writer has started a segment at the current lsn: the rest
 * of this one is a tail it cut or will never write. */
static bool successor_exists(const journal_reader *reader)
{
    char name[JOURNAL_NAME_MAX];
    journal_segment_name(name, reader->lsn);
    struct stat info;
    return reader->lsn != reader->segment_lsn &&
           fstatat(reader->dir_fd, name, &info, 0) == 0;
}

/* Reads the whole record at offset into reader->record; false if there is
 * none whole (yet). */
static bool read_record(journal_reader *reader, const uint8_t **payload, size_t *payload_len)
{
    buf *record = &reader->record;
    record->len = 0;
    if (!buf_reserve(record, JOURNAL_RECORD_HEADER_BYTES))
        return false;
    ssize_t got = pread(reader->segment_fd, record->data, JOURNAL_RECORD_HEADER_BYTES,
                        (off_t)reader->offset);
    if (got != JOURNAL_RECORD_HEADER_BYTES)
        return false;
    uint32_t length = le_get_u32(record->data);
    if (length == 0 || length > JOURNAL_RECORD_MAX ||
        !buf_reserve(record, JOURNAL_RECORD_HEADER_BYTES + (size_t)length))
        return false;
    got = pread(reader->segment_fd, record->data + JOURNAL_RECORD_HEADER_BYTES, length,
                (off_t)(reader->offset + JOURNAL_RECORD_HEADER_BYTES));
    if (got != (ssize_t)length)
        return false;
    size_t record_len = 0;
    const char *why = NULL;
    return journal_parse(record->data, JOURNAL_RECORD_HEADER_BYTES + (size_t)length, payload,
                         payload_len, &record_len, &why) == JOURNAL_PARSE_RECORD;
}

journal_read_result journal_reader_next(journal_reader *reader, const uint8_t **payload,
                                        size_t *payload_len, uint64_t *lsn,
                                        char *message, size_t message_size)
{
    assert(reader != NULL && payload != NULL && payload_len != NULL && lsn != NULL);
    for (;;) {
        bool failed = false;
        if (reader->segment_fd < 0 && !open_segment(reader, &failed, message, message_size))
            return failed ? JOURNAL_READ_FAILED : JOURNAL_READ_WAIT;
        if (!read_record(reader, payload, payload_len)) {
            if (!successor_exists(reader))
                return JOURNAL_READ_WAIT;
            close(reader->segment_fd);
            reader->segment_fd = -1;
            continue;
        }
        uint64_t at = reader->lsn;
        reader->offset += JOURNAL_RECORD_HEADER_BYTES + *payload_len;
        reader->lsn++;
        if (at < reader->next_lsn)
            continue;   /* before the start, in the segment that holds it */
        assert(at == reader->next_lsn);
        reader->next_lsn = at + 1;
        *lsn = at;
        return JOURNAL_READ_RECORD;
    }
}

uint64_t journal_reader_needs(int dir_fd)
{
    int fd = openat(dir_fd, JOURNAL_READER_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? JOURNAL_READER_NONE : 0;
    char text[32] = "";
    ssize_t got = read(fd, text, sizeof text - 1);
    close(fd);
    char *end = NULL;
    unsigned long long lsn = got > 0 ? strtoull(text, &end, 10) : 0;
    /* a reader's records are never guessed away: anything else keeps all */
    return got > 0 && end != text && *end == '\n' && lsn < JOURNAL_READER_NONE ? (uint64_t)lsn : 0;
}

stock_code journal_reader_keep(journal_reader *reader, uint64_t lsn, char *message,
                               size_t message_size)
{
    static const char temp[] = JOURNAL_READER_FILE ".tmp";
    char text[32];
    int len = snprintf(text, sizeof text, "%llu\n", (unsigned long long)lsn);
    int fd = openat(reader->dir_fd, temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && write(fd, text, (size_t)len) == len;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    ok = ok && renameat(reader->dir_fd, temp, reader->dir_fd, JOURNAL_READER_FILE) == 0;
    if (!ok) {
        message_set(message, message_size, "cannot write %s: %s", JOURNAL_READER_FILE,
                    strerror(errno));
        return STOCK_IO;
    }
    return STOCK_OK;
}

void journal_reader_close(journal_reader *reader)
{
    if (reader == NULL)
        return;
    if (reader->segment_fd >= 0)
        close(reader->segment_fd);
    if (reader->dir_fd >= 0)
        close(reader->dir_fd);
    buf_free(&reader->record);
    free(reader);
}
