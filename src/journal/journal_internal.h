/*
 * journal_internal.h -- the journal's state and the helpers its files share
 * (journal.c: folder, segments, appends; journal_recover.c: recovery;
 * journal_snapshot.c: snapshot files, the forked writer, clean-up;
 * journal_record.c: framing). Not for use outside src/journal.
 */
#ifndef STOCK_JOURNAL_INTERNAL_H
#define STOCK_JOURNAL_INTERNAL_H

#include <stdatomic.h>
#include <stdio.h>
#include <sys/types.h>

#include <xxhash.h>

#include "journal/journal.h"
#include "lib/little_endian.h"
#include "lib/message.h"

/* File headers: 8-byte magic, u32 version, u32 header size, u64 lsn, u64
 * XXH3 of the 24 bytes before it. */
#define JOURNAL_FILE_HEADER_BYTES 32
/* The store format this libstock writes into every file header, and the
 * oldest it reads (docs/engine.md, "Format versions"): 1 before holds, 2
 * with them (HOLD, CONFIRM, RELEASE, EXPIRE records; snapshot body
 * version 2). A store mixes files of versions 1 and 2 after an upgrade. */
#define JOURNAL_FORMAT_VERSION 2
#define JOURNAL_FORMAT_VERSION_MIN 1
#define JOURNAL_SEGMENT_MAGIC "stockwal"
#define JOURNAL_SNAPSHOT_MAGIC "stocksnp"
/* Snapshot trailer: u64 body bytes, u64 XXH3 of header and body, magic. */
#define JOURNAL_SNAPSHOT_TRAILER_BYTES 24
#define JOURNAL_TRAILER_MAGIC "stockend"
/* The forked snapshot writer's buffer, allocated before the fork. */
#define JOURNAL_SNAPSHOT_BUFFER_BYTES (1u << 20)
/* Snapshots are read at recovery with pread in chunks of this size, once,
 * checksummed as they are loaded: reading in chunks measured several times
 * faster than mapping the file (docs/engine.md, "Measurements behind the
 * constants"). */
#define JOURNAL_READ_CHUNK_BYTES (1u << 20)
/* Files of one kind the folder may hold before open gives up. */
#define JOURNAL_FILES_MAX 100000

struct journal {
    int dir_fd;
    int lock_fd;
    int segment_fd;              /* current segment, open for writing */
    unsigned sync_file_count;    /* journal_open's sync_files */
    int sync_fds[JOURNAL_SYNC_FILES_MAX];   /* its own open()s of the
                                               current segment, for
                                               journal_sync (journal.h) */
    uint64_t segment_lsn;        /* lsn of its first record */
    uint64_t segment_bytes;      /* its records' end, header included */
    uint64_t zeroed_end;         /* it holds records or zeros up to here */
    bool zero_failed;            /* writing zeros ahead failed: stop */
    uint64_t next_lsn;           /* lsn the next appended record gets */
    bool failed;                 /* an append failed: refuse more */

    uint64_t log_bytes;          /* log since the last snapshot (writer) */
    uint64_t attempt_bytes;      /* log_bytes when a failed try started */
    uint64_t snapshot_lsn;       /* newest snapshot, or JOURNAL_LSN_NONE */
    uint64_t snapshot_bytes;     /* its file's size, or 0 */
    _Atomic uint64_t shared_log_bytes;
    _Atomic uint64_t shared_snapshots;
    _Atomic uint64_t shared_snapshot_failures;
    atomic_bool shared_snapshot_failed;   /* the last try failed */
    journal_recovery recovery;   /* what open's recovery did; fixed after */
    stock_log_hook log_hook;     /* the embedder's, for what it should know */

    _Atomic unsigned backups;    /* backups copying: clean-up waits */
    pid_t child;                 /* running snapshot writer, or 0 */
    uint64_t child_lsn;
    uint64_t child_log_bytes;    /* log_bytes when it started */

    /* The child's checksumming writer; prepared before fork(). */
    uint8_t *snap_buffer;
    size_t snap_used;
    int snap_fd;
    uint64_t snap_written;       /* bytes flushed to snap_fd */
    uint64_t snap_body_bytes;
    XXH3_state_t *snap_hash;
};

/* The folder's listing: lsns of segments (ascending) and snapshots. */
typedef struct journal_listing {
    uint64_t *segments;
    size_t segment_count;
    uint64_t *snapshots;
    size_t snapshot_count;
} journal_listing;

/* True if data[0..len) is all zero bytes (space never written). */
bool journal_all_zero(const uint8_t *data, size_t len);


/* File names: "log-%016llx.wal", "snap-%016llx.snap". */
void journal_segment_name(char name[JOURNAL_NAME_MAX], uint64_t lsn);
void journal_snapshot_name(char name[JOURNAL_NAME_MAX], uint64_t lsn);

/* What journal_header_check found. */
typedef enum journal_header_result {
    JOURNAL_HEADER_OK,     /* whole, of a version this libstock reads */
    JOURNAL_HEADER_BAD,    /* damaged, or not this file's header */
    JOURNAL_HEADER_NEWER   /* whole, but of a newer format version */
} journal_header_result;

/* Builds a 32-byte file header with the given magic, in
 * JOURNAL_FORMAT_VERSION. */
void journal_header_make(uint8_t header[JOURNAL_FILE_HEADER_BYTES],
                         const char *magic, uint64_t lsn);
/* Checks a file header: magic, checksum, lsn and a version in
 * JOURNAL_FORMAT_VERSION_MIN..JOURNAL_FORMAT_VERSION; *version receives
 * the version it names (0 when unreadable). */
journal_header_result journal_header_check(const uint8_t *data, size_t len,
                                           const char *magic, uint64_t lsn,
                                           uint32_t *version);
/* The message for a file of a newer format: names both versions and says
 * what to do. */
void journal_newer_format(char *message, size_t size, const char *name, uint32_t version);

/* Lists the folder; false on I/O error or out of memory (message set). */
bool journal_list(int dir_fd, journal_listing *listing, char *message,
                  size_t size);
void journal_listing_free(journal_listing *listing);

/* Maps a file read-only (len 0 gives data NULL). Unmap with
 * journal_unmap. Returns STOCK_OK or STOCK_IO with message. */
stock_code journal_map(int dir_fd, const char *name, const uint8_t **data,
                       size_t *len, char *message, size_t size);
void journal_unmap(const uint8_t *data, size_t len);

/* Creates segment log-<lsn>.wal (temp, header, sync, rename, dir sync) and
 * makes it the current one. Returns STOCK_OK or STOCK_IO. */
stock_code journal_segment_create(journal *log, uint64_t lsn, char *message,
                                  size_t size);

/* pwrite of all len bytes at offset; false with errno on failure. */
bool journal_write_all(int fd, const void *data, size_t len, uint64_t offset);

/* Opens sync_file_count new descriptors of segment `name` and puts them in
 * place of the sync files (closing the old ones). False with errno set,
 * and the old ones kept, when one cannot be opened. */
bool journal_sync_files_open(journal *log, const char *name);

/* fsync of the folder, so that creates, renames and unlinks last. */
bool journal_sync_dir(journal *log);

/* Recovery (journal_recover.c), called by journal_open once locked. */
stock_code journal_recover(journal *log, const journal_replay *replay,
                           char *message, size_t size);

/* Checks the frame of the snapshot file open on fd, len bytes, for lsn:
 * header and trailer, not the body. STOCK_OK with the header's bytes in
 * header, *body_len and the checksum the trailer stores for header and
 * body (recovery computes it while it loads the body); STOCK_CORRUPT and
 * *why (static storage) saying what is wrong; STOCK_UNSUPPORTED and
 * *version for a whole header of a newer format; STOCK_IO (errno set) if
 * reading failed. */
stock_code journal_snapshot_frame(int fd, uint64_t len, uint64_t lsn,
                                  uint8_t header[JOURNAL_FILE_HEADER_BYTES],
                                  uint64_t *body_len, uint64_t *checksum,
                                  const char **why, uint32_t *version);

/* Checks the frame of snapshot lsn of the folder dir_fd and, if it holds,
 * loads it through replay->load, checksumming the body as it reads it
 * through buffer (JOURNAL_READ_CHUNK_BYTES): *loaded set, *file_bytes the
 * file's size. A damaged one (a bad frame, or a checksum that does not
 * match: replay->clear then empties the state again) is only described in
 * damage (STOCK_OK, *loaded false); a newer format is STOCK_UNSUPPORTED, a
 * failure to read or load its code, with message. (journal_recover.c; the
 * reader of journal_reader.c too.) */
stock_code journal_snapshot_try(int dir_fd, uint64_t lsn, const journal_replay *replay,
                                uint8_t *buffer, bool *loaded, uint64_t *file_bytes,
                                char *damage, size_t damage_size, char *message,
                                size_t size);

/* Removes snapshots and segments older than keep_lsn (the previous
 * snapshot), keeping the segment that holds keep_lsn, and whatever a
 * reader still needs (JOURNAL_READER_FILE, journal_reader_keep). */
void journal_remove_old(journal *log, uint64_t keep_lsn);

/* Updates the counters other threads read. */
void journal_publish(journal *log);

/* Records how a snapshot try ended, for journal_health. */
void journal_snapshot_outcome(journal *log, bool ok);

#endif /* STOCK_JOURNAL_INTERNAL_H */
