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
#define JOURNAL_FORMAT_VERSION 1
#define JOURNAL_SEGMENT_MAGIC "stockwal"
#define JOURNAL_SNAPSHOT_MAGIC "stocksnp"
/* Snapshot trailer: u64 body bytes, u64 XXH3 of header and body, magic. */
#define JOURNAL_SNAPSHOT_TRAILER_BYTES 24
#define JOURNAL_TRAILER_MAGIC "stockend"
/* The forked snapshot writer's buffer, allocated before the fork. */
#define JOURNAL_SNAPSHOT_BUFFER_BYTES (1u << 20)
/* Snapshots are read at recovery with pread in chunks of this size, once
 * to check them and once to load them: reading in chunks measured several
 * times faster than mapping the file (docs/engine.md, "Measurements behind
 * the constants"). */
#define JOURNAL_READ_CHUNK_BYTES (1u << 20)
/* Longest file name the journal makes ("snap-<16 hex>.snap.damaged"). */
#define JOURNAL_NAME_MAX 48
/* Files of one kind the folder may hold before open gives up. */
#define JOURNAL_FILES_MAX 100000
/* No lsn: there is no snapshot. */
#define JOURNAL_LSN_NONE UINT64_MAX

struct journal {
    int dir_fd;
    int lock_fd;
    int segment_fd;              /* current segment, open for writing */
    uint64_t segment_lsn;        /* lsn of its first record */
    uint64_t segment_bytes;      /* its records' end, header included */
    uint64_t zeroed_end;         /* it holds records or zeros up to here */
    bool zero_failed;            /* writing zeros ahead failed: stop */
    uint64_t next_lsn;           /* lsn the next appended record gets */
    bool failed;                 /* an append failed: refuse more */

    uint64_t log_bytes;          /* log since the last snapshot (writer) */
    uint64_t attempt_bytes;      /* log_bytes when a failed try started */
    uint64_t snapshot_lsn;       /* newest snapshot, or JOURNAL_LSN_NONE */
    _Atomic uint64_t shared_log_bytes;
    _Atomic uint64_t shared_snapshots;
    journal_recovery recovery;   /* what open's recovery did; fixed after */
    stock_log_hook log_hook;     /* the embedder's, for what it should know */

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

/* Builds / checks a 32-byte file header with the given magic. */
void journal_header_make(uint8_t header[JOURNAL_FILE_HEADER_BYTES],
                         const char *magic, uint64_t lsn);
bool journal_header_check(const uint8_t *data, size_t len, const char *magic,
                          uint64_t lsn);

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

/* fsync of the folder, so that creates, renames and unlinks last. */
bool journal_sync_dir(journal *log);

/* Recovery (journal_recover.c), called by journal_open once locked. */
stock_code journal_recover(journal *log, const journal_replay *replay,
                           char *message, size_t size);

/* Checks the snapshot file open on fd, len bytes, for lsn: header,
 * trailer and the checksum of the whole file, read front to back through
 * buffer (JOURNAL_READ_CHUNK_BYTES). STOCK_OK and *body_len; STOCK_CORRUPT
 * and *why (static storage) saying what is wrong; STOCK_IO (errno set) if
 * reading failed. */
stock_code journal_snapshot_check(int fd, uint64_t len, uint64_t lsn,
                                  uint8_t *buffer, uint64_t *body_len,
                                  const char **why);

/* Checks snapshot lsn of the folder dir_fd and, if it holds, loads it
 * through replay->load (*loaded set), reading through buffer
 * (JOURNAL_READ_CHUNK_BYTES). A damaged one is only described in damage
 * (STOCK_OK, *loaded false); a failure to read or load is its code with
 * message. (journal_recover.c; the reader of journal_reader.c too.) */
stock_code journal_snapshot_try(int dir_fd, uint64_t lsn, const journal_replay *replay,
                                uint8_t *buffer, bool *loaded, char *damage,
                                size_t damage_size, char *message, size_t size);

/* Removes snapshots and segments older than keep_lsn (the previous
 * snapshot), keeping the segment that holds keep_lsn, and whatever a
 * reader still needs (JOURNAL_READER_FILE, journal_reader_keep). */
void journal_remove_old(journal *log, uint64_t keep_lsn);

/* Updates the counters other threads read. */
void journal_publish(journal *log);

#endif /* STOCK_JOURNAL_INTERNAL_H */
