/*
 * journal.h -- the flow log of the embedded engine: a write-ahead log of
 * checksummed records in segment files, snapshots written by a forked child,
 * and recovery (newest valid snapshot, then the log after it).
 *
 * The journal knows nothing of stock: a record is opaque bytes (the core
 * makes them), a snapshot is whatever a save callback writes. It does no
 * threading of its own; the embedded backend runs group commit on top of it
 * (src/backend/embedded.c) and docs/engine.md describes the format.
 *
 * A data folder holds:
 *   LOCK                      flock()ed by the process that has it open
 *   log-<first record>.wal    a segment: header, then records
 *   snap-<records>.snap       the state after the first <records> records
 * with <...> as 16 lowercase hex digits. Records are numbered from 0 (the
 * log sequence number, lsn); a segment's name says the lsn of its first record.
 *
 * Threads: every function is for one thread (the writer), except that
 * journal_sync may run on other threads concurrently with journal_append
 * (and with itself, on distinct sync files), and journal_counters on any
 * thread. The caller must not run journal_sync concurrently with
 * journal_rotate, journal_snapshot_start, journal_backup_begin or
 * journal_close.
 */
#ifndef STOCK_JOURNAL_H
#define STOCK_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "stock.h"

/* A record on disk: u32 payload length, u64 XXH3 of the payload seeded with
 * the length (so the length is covered), then the payload. Little endian. */
#define JOURNAL_RECORD_HEADER_BYTES 12
/* Largest payload; anything longer on disk is damage. */
#define JOURNAL_RECORD_MAX (1u << 20)
/* A segment is closed and a new one started once it passes this size. */
#define JOURNAL_SEGMENT_BYTES (64ull << 20)
/* Zeros kept written ahead of the end of the current segment: each append
 * that leaves less than half of it tops it up (docs/engine.md, "On-disk
 * format"). An fdatasync after overwriting blocks already allocated and
 * written is cheaper than after an appending write, for which ext4 must
 * also commit the new size and allocation through its journal (figures:
 * docs/engine.md, "Measurements behind the constants"). */
#define JOURNAL_ZERO_AHEAD_BYTES (256u << 10)
/* The unit in which data that no fdatasync covered reaches the disk: the
 * page cache writes back whole pages, in any order, so after a power loss a
 * page of the file is either written whole or still as it was (zeros).
 * Recovery's hole rule looks for such pages (docs/engine.md, "Recovery"). */
#define JOURNAL_PAGE_BYTES 4096u
/* Sync files a journal may keep (journal_open's sync_files). */
#define JOURNAL_SYNC_FILES_MAX 16u
/* Default snapshot threshold (stock_config.snapshot_log_bytes = 0). */
#define JOURNAL_SNAPSHOT_LOG_BYTES_DEFAULT (256ull << 20)
/* A snapshot is due only once the log since the last one is at least this
 * many times that snapshot's size (and the threshold): a large state is
 * then not rewritten for every threshold's worth of log, so the bytes
 * snapshots write stay at most the bytes logged, whatever the state's size
 * (docs/engine.md, "Snapshots"). */
#define JOURNAL_SNAPSHOT_LOG_RATIO 1u

typedef struct journal journal;

/* Writes len bytes; returns 0, or -1 to stop. (Same shape as core_write_fn.) */
typedef int (*journal_write_fn)(void *context, const void *data, size_t len);
/* Reads exactly len bytes; returns 0, or -1 on a short read. */
typedef int (*journal_read_fn)(void *context, void *data, size_t len);

/* How recovery hands the state back to its owner. */
typedef struct journal_replay {
    void *context;
    /* Loads a snapshot's body of size bytes into the empty state. The
     * checksum is verified as the body is read and compared once load has
     * returned: the bytes may be damaged, and nothing of the state may be
     * used (or published) before journal_open returns. Returns STOCK_OK,
     * STOCK_CORRUPT or STOCK_NOMEM with message. */
    stock_code (*load)(void *context, journal_read_fn read, void *read_context,
                       size_t size, char *message, size_t message_size);
    /* Empties the state again after a load whose snapshot then failed its
     * checksum (whatever load returned), so that an older snapshot can be
     * loaded into it. Cannot fail. */
    void (*clear)(void *context);
    /* Re-applies one record, in log order. Returns as load does. */
    stock_code (*apply)(void *context, const uint8_t *record, size_t len,
                        char *message, size_t message_size);
    /* Optional (may be NULL): a hint that a record will be applied soon,
     * given JOURNAL_REPLAY_AHEAD records ahead so that the owner's cache
     * misses overlap. The bytes are framed but not yet checksummed: any
     * content must be safe. */
    void (*prefetch)(void *context, const uint8_t *record, size_t len);
} journal_replay;

/* Records between a prefetch hint and the apply of that record. */
#define JOURNAL_REPLAY_AHEAD 8

/* What recovery did at journal_open, for the owner's stats and logs. */
typedef struct journal_recovery {
    bool snapshot_loaded;       /* recovery started from a snapshot */
    uint64_t snapshot_lsn;      /* the records that snapshot covers; 0 if none */
    uint64_t records_replayed;  /* log records applied after it */
    uint64_t torn_bytes;        /* torn tail cut from the last segment, up
                                 * to its last non-zero byte (the zeros
                                 * kept ahead of the log are not counted) */
} journal_recovery;

/* ------------------------------------------------------------ framing */

/*
 * Starts a record at the end of out by reserving its header; the caller
 * then appends the payload and calls journal_frame_end (or cancels by
 * setting out->len back to *start). False on out of memory (out unchanged).
 */
bool journal_frame_begin(buf *out, size_t *start);

/* Fills the header of the record begun at start, whose payload is every
 * byte appended since (1..JOURNAL_RECORD_MAX bytes: asserted). */
void journal_frame_end(buf *out, size_t start);

/* What journal_parse found at the start of data. */
typedef enum journal_parse_result {
    JOURNAL_PARSE_RECORD,  /* a whole, valid record */
    JOURNAL_PARSE_END,     /* no bytes left, or only zero bytes: clean end */
    JOURNAL_PARSE_BAD      /* a torn, oversized or bad-checksum record */
} journal_parse_result;

/*
 * Parses the record at the start of data[0..len). On RECORD, *payload and
 * *payload_len name its payload (inside data) and *record_len its size on
 * disk. On BAD, *why (static storage) says what is wrong. Pure function.
 */
journal_parse_result journal_parse(const uint8_t *data, size_t len,
                                   const uint8_t **payload,
                                   size_t *payload_len, size_t *record_len,
                                   const char **why);

/* --------------------------------------------------------------- files */

/*
 * Opens the data folder at path (created if missing, mode 0755), locks it,
 * recovers it through replay, and starts a new segment for appends.
 * journal_recovery_summary then says what recovery did.
 *
 * sync_files (1..JOURNAL_SYNC_FILES_MAX) is how many syncs the caller may
 * run at once: the journal keeps that many descriptors of the current
 * segment, each its own open() of the file (never a dup), opened before
 * the segment's first record and replaced at each rotation. Linux reports a
 * write-back error once per open file description: syncs that share one
 * race for the error, and the losers return success for data that never
 * reached the disk. With a description each, every sync running when a
 * page fails to write sees the error (docs/engine.md, "Threads and group
 * commit").
 *
 * Recovery loads the newest snapshot whose checksum holds (a damaged newer
 * one is renamed *.damaged) and applies every record after it. A torn tail
 * (a bad record at the end of the last segment with no valid record after
 * it, or a hole: a zero record header with data after it, valid records
 * included, in the last segment) is cut off and reported as a notice to
 * hook. Zeros after the last record are the end of the log. Damage anywhere
 * else is STOCK_CORRUPT with the file and byte offset in message, and then
 * nothing on disk has been changed.
 *
 * hook receives every message of the journal, on the thread of the call
 * that has something to say; it is copied, and the embedder's pointer in it
 * must stay valid until journal_close.
 *
 * Returns STOCK_OK and *out (free with journal_close); STOCK_UNAVAILABLE
 * (another process has the folder open), STOCK_IO, STOCK_CORRUPT,
 * STOCK_NOMEM, or the first failure of replay, with message set.
 */
stock_code journal_open(const char *path, unsigned sync_files, const journal_replay *replay,
                        const stock_log_hook *hook, journal **out,
                        char *message, size_t message_size);

/* Waits for a running snapshot child, closes the files and unlocks the
 * folder. Does not sync: the caller syncs first if it wants to. */
void journal_close(journal *log);

/*
 * Appends len bytes holding record_count whole framed records to the
 * current segment, then tops up the zeros kept ahead of them
 * (JOURNAL_ZERO_AHEAD_BYTES; a failure there is only a warning to the hook).
 * On failure the segment is cut back to where it was (best effort) and
 * STOCK_IO is returned with message; the journal then refuses further
 * appends.
 */
stock_code journal_append(journal *log, const void *data, size_t len,
                          uint64_t record_count, char *message,
                          size_t message_size);

/* fdatasync of the current segment through sync file `file` (below
 * journal_open's sync_files); records its latency in *latency_us. At most
 * one sync at a time per file. Returns STOCK_OK or STOCK_IO with message. */
stock_code journal_sync(journal *log, unsigned file, uint64_t *latency_us,
                        char *message, size_t message_size);

/* The descriptor of sync file `file`, for a caller that syncs it another
 * way (io_uring), one sync at a time per file as journal_sync. Owned by
 * the journal: the caller neither closes it nor uses it across
 * journal_rotate, journal_snapshot_start, journal_backup_begin or
 * journal_close, which replace or close it. */
int journal_sync_fd(const journal *log, unsigned file);

/* True once an append or a rotation (journal_rotate, or the one
 * journal_snapshot_start makes) has failed: the journal then refuses every
 * append until it is closed and reopened. */
bool journal_failed(const journal *log);

/* True when the current segment has passed JOURNAL_SEGMENT_BYTES. */
bool journal_rotation_due(const journal *log);

/* Syncs the current segment and starts a new one at the next lsn.
 * Returns STOCK_OK or STOCK_IO with message. */
stock_code journal_rotate(journal *log, char *message, size_t message_size);

/* ----------------------------------------------------------- snapshots */

/* Saves the whole state through write; returns 0 or -1. Runs in a forked
 * child: it must not allocate or take locks. */
typedef int (*journal_save_fn)(void *context, journal_write_fn write,
                               void *write_context);

/* The log since the last snapshot that makes the next one due: the larger
 * of floor (> 0) and JOURNAL_SNAPSHOT_LOG_RATIO times the size of the
 * newest snapshot file (the one written last, or loaded at open). */
uint64_t journal_snapshot_threshold(const journal *log, uint64_t floor);

/* True when no snapshot is running and at least threshold log bytes have
 * been written since the last snapshot (and since the last failed try). */
bool journal_snapshot_due(const journal *log, uint64_t threshold);

/*
 * Rotates to a new segment and forks a child that writes the state as of
 * that point through save into snap-<lsn>.snap (temp file, fsync, rename,
 * fsync of the folder). The caller's state must not change between the
 * call and its return. Returns STOCK_OK, or STOCK_IO with message (then no
 * snapshot runs).
 */
stock_code journal_snapshot_start(journal *log, journal_save_fn save,
                                  void *context, char *message,
                                  size_t message_size);

/*
 * Reaps a finished snapshot child (waiting for it if wait is true). When it
 * succeeded, deletes the files no longer needed: snapshots and segments
 * older than the previous snapshot (one older generation is kept as a
 * fallback). Returns true if no snapshot is running any more.
 */
bool journal_snapshot_poll(journal *log, bool wait);

/* Log bytes since the last snapshot and snapshots completed since open.
 * Safe on any thread. */
void journal_counters(const journal *log, uint64_t *log_bytes,
                      uint64_t *snapshots);

/* What an operator should know of the journal's health, on any thread:
 * whether the last snapshot try failed, the failed tries since open, and
 * the free (for unprivileged users) and total bytes of the folder's file
 * system (0 and 0 when statvfs fails). */
void journal_health(const journal *log, bool *snapshot_failed, uint64_t *snapshot_failures,
                    uint64_t *disk_free_bytes, uint64_t *disk_bytes);

/* Copies what recovery did when log was opened into *summary. Set before
 * journal_open returns and never changed after: safe on any thread. */
void journal_recovery_summary(const journal *log, journal_recovery *summary);

/* ------------------------------------------------------------- backups */

/* No lsn: there is no snapshot. */
#define JOURNAL_LSN_NONE UINT64_MAX

/* Longest file name the journal makes ("snap-<16 hex>.snap.damaged"). */
#define JOURNAL_NAME_MAX 48

/* The file a finished backup folder holds besides the data files: the
 * backup point and the files, written last (docs/operations.md). */
#define JOURNAL_BACKUP_MANIFEST "BACKUP"

/* A consistent set of files: the newest snapshot (if any) and the segments
 * after it, holding exactly the records [0, end_lsn). */
typedef struct journal_backup {
    uint64_t end_lsn;                /* the backup point */
    uint64_t snapshot_lsn;           /* its snapshot, or JOURNAL_LSN_NONE */
    char (*names)[JOURNAL_NAME_MAX]; /* the files (allocated) */
    size_t count;
} journal_backup;

/*
 * Takes a backup point: syncs and closes the current segment (a rotation,
 * so every record appended so far is in the set and every file of it is
 * whole and never written again), lists the set into *backup and pins it:
 * snapshot clean-up deletes nothing until journal_backup_end. Writer
 * thread, with no sync running (as journal_rotate). STOCK_OK, else STOCK_IO
 * (the rotation failed: the journal then refuses appends, as after any
 * failed rotation) or STOCK_NOMEM, with message, and nothing pinned.
 */
stock_code journal_backup_begin(journal *log, journal_backup *backup,
                                char *message, size_t message_size);

/*
 * A file of the journal's owner that a backup holds beside the log (the
 * embedded engine's cold store): writes it, synced, into the backup folder
 * dest_fd and names it in name (at most JOURNAL_NAME_MAX bytes with its
 * NUL), its size in *bytes. STOCK_OK, or a failure with message.
 */
typedef stock_code (*journal_backup_extra_fn)(void *context, int dest_fd, char *name,
                                              uint64_t *bytes, char *message,
                                              size_t message_size);

/*
 * Copies the pinned set into dest, a new folder (STOCK_INVALID if it
 * exists), each file fsynced, then writes the manifest last. With extra
 * (else NULL), its file comes first, right after the backup point, and
 * the manifest names it as it names the log's files, so that a restore
 * copies and checks it too. Any thread, at once with appends, rotations
 * and snapshots (it only reads the pinned files). *bytes receives the
 * bytes copied. STOCK_OK, or STOCK_INVALID, STOCK_IO, STOCK_NOMEM or the
 * failure of extra, with message (dest then holds no manifest).
 */
stock_code journal_backup_copy(const journal *log, const journal_backup *backup,
                               const char *dest, journal_backup_extra_fn extra,
                               void *extra_context, uint64_t *bytes,
                               char *message, size_t message_size);

/* Unpins the set and frees *backup. Any thread. */
void journal_backup_end(journal *log, journal_backup *backup);

/*
 * Restores the backup folder src (a manifest, and every file it names at
 * its size) into dest, a new folder: copies and fsyncs the files. Needs no
 * open journal. *backup receives the manifest's end_lsn and snapshot_lsn
 * (names NULL, count the files), *bytes the bytes copied. STOCK_OK, or
 * STOCK_INVALID (src is no finished backup, or dest exists), STOCK_IO,
 * STOCK_NOMEM with message; a copy that failed removes dest again.
 */
stock_code journal_restore(const char *src, const char *dest,
                           journal_backup *backup, uint64_t *bytes,
                           char *message, size_t message_size);

/* ------------------------------------------------------------- reading */

/*
 * A positioned reader of a data folder's flow, for the events derived from
 * it (docs/events.md): it reads the files without the lock, beside the
 * process that has the folder open and writes it, and follows the log as it
 * grows, across segments and restarts of the writer. It reads only whole
 * records whose checksum holds; a torn or half-written record at the end of
 * a segment is waited for, and skipped once the writer has started the
 * next segment at its lsn (as its recovery does after cutting a torn tail).
 * A record is read once the writer's write() has returned: before its
 * fdatasync, so a power loss (not a crash of the writer: the page cache
 * keeps it) may take back a record already read.
 *
 * Threads: one thread at a time per reader.
 */
typedef struct journal_reader journal_reader;

/*
 * Opens the data folder at path for reading from record from_lsn: loads
 * through replay->load (replay->apply is unused) the newest valid snapshot
 * that covers no more than from_lsn records, or none when there is none
 * (the log is then read from lsn 0). When the folder no longer holds the
 * records from from_lsn on (snapshots took their place), it starts at the
 * oldest valid snapshot instead. *start_lsn receives the lsn of the first
 * record journal_reader_next will return: <= from_lsn, or the later start
 * (the records between are gone).
 * Returns STOCK_OK and *out (free with journal_reader_close); STOCK_IO,
 * STOCK_CORRUPT (every snapshot damaged, a gap in the log), STOCK_NOMEM, or
 * the failure of replay->load, with message.
 */
stock_code journal_reader_open(const char *path, uint64_t from_lsn,
                               const journal_replay *replay, journal_reader **out,
                               uint64_t *start_lsn, char *message, size_t message_size);

typedef enum journal_read_result {
    JOURNAL_READ_RECORD,   /* a record: its payload and lsn */
    JOURNAL_READ_WAIT,     /* no whole record after the last one yet */
    JOURNAL_READ_FAILED    /* the folder cannot be read: message says why */
} journal_read_result;

/* Reads the next record into *payload (valid until the next call) and
 * *lsn, one after the other from *start_lsn. */
journal_read_result journal_reader_next(journal_reader *reader, const uint8_t **payload,
                                        size_t *payload_len, uint64_t *lsn,
                                        char *message, size_t message_size);

/* Closes the files and frees the reader; NULL is a no-op. */
void journal_reader_close(journal_reader *reader);

/*
 * The file of a data folder in which a reader says which record it still
 * needs: one decimal lsn and a newline. While it exists, the writer's
 * clean-up after a snapshot keeps the newest snapshot at or before that
 * lsn and every segment after it, so a reader that was stopped for a
 * while still finds its records (a file that does not read keeps
 * everything). A reader retired for good must remove it, or the log grows
 * without end.
 */
#define JOURNAL_READER_FILE "reader.lsn"

/* No lsn in JOURNAL_READER_FILE: the file does not exist. */
#define JOURNAL_READER_NONE UINT64_MAX

/* The lsn in the JOURNAL_READER_FILE of the folder dir_fd (open on a
 * folder): JOURNAL_READER_NONE without the file, 0 for a file that does not
 * read as one (which keeps everything). */
uint64_t journal_reader_needs(int dir_fd);

/* Writes lsn to the folder's JOURNAL_READER_FILE (a temporary file renamed
 * over it: a crash leaves the old value or the new one, and an old value
 * only keeps more). Returns STOCK_OK or STOCK_IO with message. */
stock_code journal_reader_keep(journal_reader *reader, uint64_t lsn, char *message,
                               size_t message_size);

#endif /* STOCK_JOURNAL_H */
