/*
 * test_journal.c -- unit tests of the flow journal (src/journal) with opaque
 * byte records: framing, torn tails of every length, corruption detection
 * with file and offset in the message, the zeros written ahead of the
 * records and holes in them (a zero header, a zero page inside a record),
 * snapshots and their fallback, the folder lock, the summary of what
 * recovery did, the messages it hands to the log hook, and the sync files:
 * each its own open file description of the current segment.
 */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "journal/journal.h"

#define TEST_RECORDS_MAX 64
#define TEST_RECORD_BYTES 64
#define SEGMENT_HEADER 32
/* Largest file the tests read whole: records plus the zeros ahead. */
#define TEST_FILE_MAX (1u << 20)
/* Open/append/close rounds of the reopen test, and records per round. */
#define TEST_REOPEN_ROUNDS 5
#define TEST_RECORDS_PER_ROUND 5
/* Payload of the records the in-record hole tests write: four of them
 * (3012 bytes framed) put the page boundaries 4096 and 8192 inside the
 * second and third records. */
#define TEST_BIG_RECORD_BYTES 3000
#define TEST_BIG_RECORDS 4
/* File size limit of the failed zero-fill test: room for a few records,
 * not for the zeros ahead of them. */
#define TEST_SMALL_FILE_BYTES 4096
/* Sync files of the journals open_log opens: several, as the embedded
 * engine keeps, so that every test runs with them. */
#define TEST_SYNC_FILES 4u

/* The "state" the tests recover: the list of records seen. */
typedef struct test_state {
    size_t count;
    size_t lens[TEST_RECORDS_MAX];
    uint8_t records[TEST_RECORDS_MAX][TEST_RECORD_BYTES];
} test_state;

static stock_code apply_record(void *context, const uint8_t *record, size_t len,
                               char *message, size_t size)
{
    test_state *state = context;
    if (state->count == TEST_RECORDS_MAX || len > TEST_RECORD_BYTES) {
        snprintf(message, size, "test state full");
        return STOCK_CORRUPT;
    }
    memcpy(state->records[state->count], record, len);
    state->lens[state->count++] = len;
    return STOCK_OK;
}

static stock_code load_state(void *context, journal_read_fn read, void *read_context,
                             size_t body_size, char *message, size_t size)
{
    (void)body_size;
    test_state *state = context;
    /* Loads go into an empty state, as the core's (a load after a damaged
     * snapshot's needs clear_state first). */
    assert_int_equal(state->count, 0);
    uint32_t count;
    if (read(read_context, &count, sizeof count) != 0 || count > TEST_RECORDS_MAX) {
        snprintf(message, size, "bad test snapshot");
        return STOCK_CORRUPT;
    }
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len;
        if (read(read_context, &len, sizeof len) != 0 || len > TEST_RECORD_BYTES ||
            read(read_context, state->records[i], len) != 0) {
            snprintf(message, size, "bad test snapshot record");
            return STOCK_CORRUPT;
        }
        state->lens[i] = len;
    }
    state->count = count;
    return STOCK_OK;
}

static void clear_state(void *context)
{
    test_state *state = context;
    state->count = 0;
}

static int save_state(void *context, journal_write_fn write, void *write_context)
{
    const test_state *state = context;
    uint32_t count = (uint32_t)state->count;
    if (write(write_context, &count, sizeof count) != 0)
        return -1;
    for (size_t i = 0; i < state->count; i++) {
        uint32_t len = (uint32_t)state->lens[i];
        if (write(write_context, &len, sizeof len) != 0 ||
            write(write_context, state->records[i], len) != 0)
            return -1;
    }
    return 0;
}

static char folder[64];

/* What the journal told the log hook since the last reset_heard(). */
static struct {
    unsigned count;
    stock_log_level level;       /* of the last message */
    char last[512];
} heard;

static void hear(void *user, stock_log_level level, const char *message)
{
    assert_ptr_equal(user, &heard);
    heard.count++;
    heard.level = level;
    snprintf(heard.last, sizeof heard.last, "%s", message);
}

static const stock_log_hook hook = {hear, &heard};

static void reset_heard(void)
{
    memset(&heard, 0, sizeof heard);
}

/* The journal told the hook exactly one thing since reset_heard(), at
 * level, starting with prefix, and without a newline. */
static void assert_heard_one(stock_log_level level, const char *prefix)
{
    assert_int_equal(heard.count, 1);
    assert_int_equal(heard.level, level);
    assert_int_equal(strncmp(heard.last, prefix, strlen(prefix)), 0);
    assert_null(strchr(heard.last, '\n'));
}

static int remove_entry(const char *path, const struct stat *info, int flag,
                        struct FTW *walk)
{
    (void)info, (void)flag, (void)walk;
    return remove(path);
}

static int make_folder(void **unused)
{
    (void)unused;
    snprintf(folder, sizeof folder, "/tmp/test_journal.XXXXXX");
    return mkdtemp(folder) == NULL ? -1 : 0;
}

static int remove_folder(void **unused)
{
    (void)unused;
    return nftw(folder, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Opens the test folder into a fresh state; returns the code. */
static stock_code open_log(journal **log, test_state *state, char *message)
{
    memset(state, 0, sizeof *state);
    reset_heard();
    journal_replay replay = {.context = state, .load = load_state,
                             .clear = clear_state, .apply = apply_record};
    return journal_open(folder, TEST_SYNC_FILES, &replay, &hook, log, message,
                        STOCK_MESSAGE_MAX);
}

/* Appends one record "record-<n>" (also to state, as the core would). */
static void append_record(journal *log, test_state *state, unsigned n)
{
    buf out = {0};
    size_t start;
    assert_true(journal_frame_begin(&out, &start));
    char payload[TEST_RECORD_BYTES];
    int len = snprintf(payload, sizeof payload, "record-%u", n);
    assert_true(buf_append(&out, payload, (size_t)len));
    journal_frame_end(&out, start);
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(journal_append(log, out.data, out.len, 1, message, sizeof message),
                     STOCK_OK);
    char error[STOCK_MESSAGE_MAX];
    assert_int_equal(apply_record(state, (const uint8_t *)payload, (size_t)len,
                                  error, sizeof error), STOCK_OK);
    buf_free(&out);
}

static void path_of(char *path, size_t size, const char *name)
{
    snprintf(path, size, "%s/%s", folder, name);
}

/* Reads the whole file (it must be shorter than size). */
static size_t read_file(const char *name, uint8_t *data, size_t size)
{
    char path[128];
    path_of(path, sizeof path, name);
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    size_t len = fread(data, 1, size, file);
    fclose(file);
    assert_true(len < size);
    return len;
}

/* Offset just past the last whole record of the segment in data. */
static size_t log_end(const uint8_t *data, size_t len)
{
    size_t offset = SEGMENT_HEADER;
    for (;;) {
        const uint8_t *payload;
        size_t payload_len, record_len;
        const char *why = NULL;
        if (journal_parse(data + offset, len - offset, &payload, &payload_len,
                          &record_len, &why) != JOURNAL_PARSE_RECORD)
            return offset;
        offset += record_len;
    }
}

static bool all_zero(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (data[i] != 0)
            return false;
    return true;
}

/* Test files are read into these (too big for the stack). */
static uint8_t file_data[TEST_FILE_MAX], file_after[TEST_FILE_MAX];

static void write_file(const char *name, const uint8_t *data, size_t len)
{
    char path[128];
    path_of(path, sizeof path, name);
    FILE *file = fopen(path, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(data, 1, len, file), len);
    fclose(file);
}

/* A fresh folder with records 0..count-1 in one segment. */
static void write_log(unsigned count)
{
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    for (unsigned i = 0; i < count; i++)
        append_record(log, &state, i);
    journal_close(log);
}

#define SEGMENT0 "log-0000000000000000.wal"

/* journal_recovery_summary says exactly what the last open did. */
static void assert_recovery(const journal *log, bool snapshot_loaded, uint64_t snapshot_lsn,
                            uint64_t records_replayed, uint64_t torn_bytes)
{
    journal_recovery summary;
    memset(&summary, 0xA5, sizeof summary);   /* every field must be set */
    journal_recovery_summary(log, &summary);
    assert_int_equal(summary.snapshot_loaded, snapshot_loaded);
    assert_int_equal(summary.snapshot_lsn, snapshot_lsn);
    assert_int_equal(summary.records_replayed, records_replayed);
    assert_int_equal(summary.torn_bytes, torn_bytes);
}

static void test_frame_round_trip(void **unused)
{
    (void)unused;
    buf out = {0};
    for (size_t len = 1; len <= 300; len += 37) {
        size_t start;
        assert_true(journal_frame_begin(&out, &start));
        for (size_t i = 0; i < len; i++)
            assert_true(buf_append(&out, &(uint8_t){(uint8_t)(i * 7 + len)}, 1));
        journal_frame_end(&out, start);
    }
    size_t offset = 0, seen = 0;
    for (size_t len = 1; len <= 300; len += 37, seen++) {
        const uint8_t *payload;
        size_t payload_len, record_len;
        const char *why = NULL;
        assert_int_equal(journal_parse(out.data + offset, out.len - offset, &payload,
                                       &payload_len, &record_len, &why),
                         JOURNAL_PARSE_RECORD);
        assert_int_equal(payload_len, len);
        assert_int_equal(payload[len - 1], (uint8_t)((len - 1) * 7 + len));
        offset += record_len;
    }
    assert_int_equal(offset, out.len);
    buf_free(&out);
}

/* Every single-bit flip anywhere in a record is caught. */
static void test_parse_detects_flips(void **unused)
{
    (void)unused;
    buf out = {0};
    size_t start;
    assert_true(journal_frame_begin(&out, &start));
    assert_true(buf_append(&out, "deduct L1 A 1", 13));
    journal_frame_end(&out, start);
    for (size_t byte = 0; byte < out.len; byte++)
        for (int bit = 0; bit < 8; bit++) {
            out.data[byte] ^= (uint8_t)(1u << bit);
            const uint8_t *payload;
            size_t payload_len, record_len;
            const char *why = NULL;
            journal_parse_result result = journal_parse(out.data, out.len, &payload,
                                                        &payload_len, &record_len, &why);
            assert_int_equal(result, JOURNAL_PARSE_BAD);
            assert_non_null(why);
            out.data[byte] ^= (uint8_t)(1u << bit);
        }
    buf_free(&out);
}

static void test_parse_zeros_end_the_log(void **unused)
{
    (void)unused;
    uint8_t zeros[40] = {0};
    const uint8_t *payload;
    size_t payload_len, record_len;
    const char *why = NULL;
    assert_int_equal(journal_parse(zeros, sizeof zeros, &payload, &payload_len,
                                   &record_len, &why), JOURNAL_PARSE_END);
    zeros[30] = 1;   /* data after a zero header is damage, not an end */
    assert_int_equal(journal_parse(zeros, sizeof zeros, &payload, &payload_len,
                                   &record_len, &why), JOURNAL_PARSE_BAD);
}

/* Records appended are replayed, in order, after a reopen. */
static void test_reopen_replays(void **unused)
{
    (void)unused;
    write_log(5);
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(state.count, 5);
    assert_memory_equal(state.records[4], "record-4", 8);
    assert_recovery(log, false, 0, 5, 0);
    append_record(log, &state, 5);
    journal_close(log);
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(state.count, 6);
    assert_memory_equal(state.records[5], "record-5", 8);
    assert_recovery(log, false, 0, 6, 0);
    journal_close(log);
}

/* Cutting the last segment at every length keeps exactly the whole records
 * before the cut, and open trims the file back to them. */
static void test_torn_tail_every_length(void **unused)
{
    (void)unused;
    write_log(4);
    uint8_t *whole = file_data;
    size_t size = log_end(whole, read_file(SEGMENT0, whole, TEST_FILE_MAX));
    size_t record = 12 + strlen("record-0");   /* all four have this size */
    assert_int_equal(size, SEGMENT_HEADER + 4 * record);
    for (size_t len = SEGMENT_HEADER; len <= size; len++) {
        write_file(SEGMENT0, whole, len);
        journal *log;
        test_state state;
        char message[STOCK_MESSAGE_MAX];
        assert_int_equal(open_log(&log, &state, message), STOCK_OK);
        size_t kept = (len - SEGMENT_HEADER) / record;
        assert_int_equal(state.count, kept);
        /* The torn part starts with a non-zero length byte; its zero bytes
         * at the end (if any) count as the zeros after the tail. */
        size_t torn = len - SEGMENT_HEADER - kept * record;
        journal_recovery summary;
        journal_recovery_summary(log, &summary);
        assert_int_equal(summary.records_replayed, kept);
        assert_true(summary.torn_bytes <= torn);
        assert_int_equal(summary.torn_bytes > 0, torn > 0);
        journal_close(log);
        struct stat info;
        char path[128];
        path_of(path, sizeof path, SEGMENT0);
        assert_int_equal(stat(path, &info), 0);
        assert_int_equal((size_t)info.st_size, SEGMENT_HEADER + kept * record);
    }
}

/* A bad byte before the last record: CORRUPT naming file and offset, and
 * the file is left exactly as it was. */
static void test_corruption_in_the_middle(void **unused)
{
    (void)unused;
    write_log(4);
    uint8_t *data = file_data, *after = file_after;
    size_t size = read_file(SEGMENT0, data, TEST_FILE_MAX);
    size_t record = 12 + strlen("record-0");
    size_t offset = SEGMENT_HEADER + record;   /* second record */
    data[offset + 14] ^= 0x20;
    write_file(SEGMENT0, data, size);
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX], expected[64];
    assert_int_equal(open_log(&log, &state, message), STOCK_CORRUPT);
    snprintf(expected, sizeof expected, "%s, offset %zu:", SEGMENT0, offset);
    assert_non_null(strstr(message, expected));
    assert_int_equal(read_file(SEGMENT0, after, TEST_FILE_MAX), size);
    assert_memory_equal(after, data, size);
}

/* A bad last record with nothing after it is a torn tail: cut. */
static void test_bad_last_record_is_cut(void **unused)
{
    (void)unused;
    write_log(3);
    uint8_t *data = file_data;
    size_t size = read_file(SEGMENT0, data, TEST_FILE_MAX);
    data[log_end(data, size) - 1] ^= 0x01;
    write_file(SEGMENT0, data, size);
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(state.count, 2);
    /* The whole third record is cut (its last byte, flipped, is not
     * zero), and none of the zeros kept ahead of it are counted. */
    assert_recovery(log, false, 0, 2, 12 + strlen("record-2"));
    assert_heard_one(STOCK_LOG_NOTICE, "cut a torn tail of 20 bytes ");
    assert_non_null(strstr(heard.last, SEGMENT0));
    journal_close(log);
}

/* Snapshot, then records; reopen loads the snapshot and replays the rest;
 * a damaged newest snapshot falls back to the previous one and its log. */
static void test_snapshots_and_fallback(void **unused)
{
    (void)unused;
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    for (unsigned round = 0; round < 2; round++) {
        for (unsigned i = 0; i < 3; i++)
            append_record(log, &state, round * 3 + i);
        assert_true(journal_snapshot_due(log, 1));
        assert_int_equal(journal_snapshot_start(log, save_state, &state, message,
                                                sizeof message), STOCK_OK);
        assert_true(journal_snapshot_poll(log, true));
    }
    append_record(log, &state, 6);
    uint64_t log_bytes, snapshots;
    journal_counters(log, &log_bytes, &snapshots);
    assert_int_equal(snapshots, 2);
    assert_int_equal(log_bytes, 12 + strlen("record-6"));
    journal_close(log);
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(state.count, 7);
    assert_recovery(log, true, 6, 1, 0);
    assert_int_equal(heard.count, 0);   /* a clean reopen says nothing */
    journal_close(log);
    /* Damage a record in the newest snapshot (lsn 6): it loads, then fails
     * its checksum; recovery clears the state and uses snap 3 + log. */
    uint8_t *data = file_data;
    size_t size = read_file("snap-0000000000000006.snap", data, TEST_FILE_MAX);
    data[size / 2] ^= 0xFF;
    write_file("snap-0000000000000006.snap", data, size);
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(state.count, 7);
    assert_memory_equal(state.records[6], "record-6", 8);
    assert_recovery(log, true, 3, 4, 0);
    assert_heard_one(STOCK_LOG_WARNING, "snap-0000000000000006.snap is damaged: kept as "
                                        "snap-0000000000000006.snap.damaged");
    journal_close(log);
    /* Damage the older one too: nothing valid is left to start from. */
    size = read_file("snap-0000000000000003.snap", data, TEST_FILE_MAX);
    data[size - 3] ^= 0xFF;
    write_file("snap-0000000000000003.snap", data, size);
    assert_int_equal(open_log(&log, &state, message), STOCK_CORRUPT);
    assert_non_null(strstr(message, "snap-0000000000000003.snap"));
}

/* A snapshot is due after the larger of the threshold and
 * JOURNAL_SNAPSHOT_LOG_RATIO times the newest snapshot's size, also after
 * a reopen that loaded it. */
static void test_snapshot_threshold_grows_with_the_state(void **unused)
{
    (void)unused;
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(journal_snapshot_threshold(log, 1), 1);   /* no snapshot yet */
    unsigned n = 0;
    for (; n < 10; n++)
        append_record(log, &state, n);
    assert_true(journal_snapshot_due(log, journal_snapshot_threshold(log, 1)));
    assert_int_equal(journal_snapshot_start(log, save_state, &state, message,
                                            sizeof message), STOCK_OK);
    assert_true(journal_snapshot_poll(log, true));
    uint64_t size = read_file("snap-000000000000000a.snap", file_data, TEST_FILE_MAX);
    uint64_t due_at = size * JOURNAL_SNAPSHOT_LOG_RATIO;
    assert_true(due_at > 1);
    assert_int_equal(journal_snapshot_threshold(log, 1), due_at);
    assert_int_equal(journal_snapshot_threshold(log, due_at + 1), due_at + 1);
    uint64_t log_bytes, snapshots;
    for (;;) {
        journal_counters(log, &log_bytes, &snapshots);
        assert_int_equal(journal_snapshot_due(log, journal_snapshot_threshold(log, 1)),
                         log_bytes >= due_at);
        if (log_bytes >= due_at)
            break;
        append_record(log, &state, n++);
    }
    journal_close(log);
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(journal_snapshot_threshold(log, 1), due_at);
    assert_true(journal_snapshot_due(log, journal_snapshot_threshold(log, 1)));
    journal_close(log);
}

/* True if the file name exists in dir. */
static bool exists_in(const char *dir, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* A backup pins its files: two snapshots that would delete its snapshot
 * and segments while it copies delete nothing; the copy, restored into a
 * new folder, recovers exactly the records before the backup point (the
 * records appended after it are not there); the clean-up catches up after
 * the next snapshot. Restore refuses a folder without the manifest and
 * one whose file is short. */
static void test_backup_pins_and_restores(void **unused)
{
    (void)unused;
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    for (unsigned i = 0; i < 3; i++)
        append_record(log, &state, i);
    assert_int_equal(journal_snapshot_start(log, save_state, &state, message, sizeof message),
                     STOCK_OK);
    assert_true(journal_snapshot_poll(log, true));
    append_record(log, &state, 3);
    journal_backup backup;
    assert_int_equal(journal_backup_begin(log, &backup, message, sizeof message), STOCK_OK);
    assert_int_equal(backup.end_lsn, 4);
    assert_int_equal(backup.snapshot_lsn, 3);
    assert_int_equal(backup.count, 2);   /* snap-3 and log-3 */
    for (unsigned round = 0; round < 2; round++) {
        append_record(log, &state, 4 + round);
        assert_int_equal(journal_snapshot_start(log, save_state, &state, message,
                                                sizeof message), STOCK_OK);
        assert_true(journal_snapshot_poll(log, true));
    }
    assert_true(exists_in(folder, "snap-0000000000000003.snap"));
    assert_true(exists_in(folder, "log-0000000000000003.wal"));
    char dest[sizeof folder + 8], restored[sizeof folder];
    snprintf(dest, sizeof dest, "%s/backup", folder);
    snprintf(restored, sizeof restored, "%.40s.restored", folder);
    uint64_t bytes = 0;
    assert_int_equal(journal_backup_copy(log, &backup, dest, NULL, NULL, &bytes, message, sizeof message),
                     STOCK_OK);
    assert_true(bytes > 0 && exists_in(dest, JOURNAL_BACKUP_MANIFEST));
    assert_int_equal(journal_backup_copy(log, &backup, dest, NULL, NULL, &bytes, message, sizeof message),
                     STOCK_INVALID);   /* dest exists */
    journal_backup_end(log, &backup);
    append_record(log, &state, 6);
    assert_int_equal(journal_snapshot_start(log, save_state, &state, message, sizeof message),
                     STOCK_OK);
    assert_true(journal_snapshot_poll(log, true));
    assert_false(exists_in(folder, "snap-0000000000000003.snap"));
    journal_close(log);

    journal_backup restore;
    assert_int_equal(journal_restore(dest, restored, &restore, &bytes, message, sizeof message),
                     STOCK_OK);
    assert_int_equal(restore.end_lsn, 4);
    char saved[sizeof folder];
    memcpy(saved, folder, sizeof folder);
    snprintf(folder, sizeof folder, "%s", restored);
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(state.count, 4);
    assert_memory_equal(state.records[3], "record-3", 8);
    journal_close(log);
    memcpy(folder, saved, sizeof folder);
    assert_int_equal(nftw(restored, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);

    /* A short file, then no manifest: refused, nothing made. */
    char path[256];
    snprintf(path, sizeof path, "%s/log-0000000000000003.wal", dest);
    assert_int_equal(truncate(path, 100), 0);
    assert_int_equal(journal_restore(dest, restored, &restore, &bytes, message, sizeof message),
                     STOCK_INVALID);
    assert_non_null(strstr(message, "log-0000000000000003.wal is missing or not the"));
    snprintf(path, sizeof path, "%s/%s", dest, JOURNAL_BACKUP_MANIFEST);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(journal_restore(dest, restored, &restore, &bytes, message, sizeof message),
                     STOCK_INVALID);
    assert_non_null(strstr(message, "is not a finished backup"));
    assert_false(exists_in(restored, "."));
}

/* An application that ignores SIGCHLD has its children reaped for it:
 * the snapshot still counts once its file is in place. */
static void test_snapshot_with_sigchld_ignored(void **unused)
{
    (void)unused;
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    append_record(log, &state, 0);
    struct sigaction ignore = {.sa_handler = SIG_IGN}, previous;
    assert_int_equal(sigaction(SIGCHLD, &ignore, &previous), 0);
    assert_int_equal(journal_snapshot_start(log, save_state, &state, message,
                                            sizeof message), STOCK_OK);
    assert_true(journal_snapshot_poll(log, true));
    assert_int_equal(sigaction(SIGCHLD, &previous, NULL), 0);
    uint64_t snapshots;
    journal_counters(log, NULL, &snapshots);
    assert_int_equal(snapshots, 1);
    journal_close(log);
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(state.count, 1);
    journal_close(log);
}

/* A missing segment in the middle of the log is refused. */
static void test_gap_is_refused(void **unused)
{
    (void)unused;
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    append_record(log, &state, 0);
    assert_int_equal(journal_rotate(log, message, sizeof message), STOCK_OK);
    append_record(log, &state, 1);
    assert_int_equal(journal_rotate(log, message, sizeof message), STOCK_OK);
    append_record(log, &state, 2);
    journal_close(log);
    char path[128];
    path_of(path, sizeof path, "log-0000000000000001.wal");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(open_log(&log, &state, message), STOCK_CORRUPT);
    assert_non_null(strstr(message, "log-0000000000000002.wal, offset 0"));
}

/* Every sync file is the segment `name`, under its own descriptor and its
 * own open file description: a file offset moved through one is not
 * moved through another (descriptors made by dup() share the offset, as
 * they share the one report of a write-back error), and each syncs. */
static void assert_own_sync_files(journal *log, const char *name)
{
    char path[128];
    path_of(path, sizeof path, name);
    struct stat segment;
    assert_int_equal(stat(path, &segment), 0);
    for (unsigned i = 0; i < TEST_SYNC_FILES; i++) {
        int fd = journal_sync_fd(log, i);
        struct stat info;
        assert_int_equal(fstat(fd, &info), 0);
        assert_true(info.st_dev == segment.st_dev && info.st_ino == segment.st_ino);
        assert_int_equal(lseek(fd, (off_t)(100 + i), SEEK_SET), (off_t)(100 + i));
        for (unsigned j = 0; j < i; j++) {
            assert_int_not_equal(journal_sync_fd(log, j), fd);
            assert_int_equal(lseek(journal_sync_fd(log, j), 0, SEEK_CUR), (off_t)(100 + j));
        }
        uint64_t latency_us;
        char message[STOCK_MESSAGE_MAX];
        assert_int_equal(journal_sync(log, i, &latency_us, message, sizeof message),
                         STOCK_OK);
    }
}

/* The sync files follow the current segment: at a new folder's first
 * segment, after a rotation, and at a reopen that appends to the last
 * segment. */
static void test_sync_files_are_own_descriptions(void **unused)
{
    (void)unused;
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_own_sync_files(log, "log-0000000000000000.wal");
    append_record(log, &state, 0);
    assert_int_equal(journal_rotate(log, message, sizeof message), STOCK_OK);
    assert_own_sync_files(log, "log-0000000000000001.wal");
    append_record(log, &state, 1);
    journal_close(log);
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(state.count, 2);
    assert_own_sync_files(log, "log-0000000000000001.wal");
    journal_close(log);
}

/* Records 0 and 1 in SEGMENT0, a rotation, record 2 in the next segment;
 * the journal closed again. */
static void write_two_segments(test_state *state, char *message)
{
    journal *log;
    assert_int_equal(open_log(&log, state, message), STOCK_OK);
    append_record(log, state, 0);
    append_record(log, state, 1);
    assert_int_equal(journal_rotate(log, message, STOCK_MESSAGE_MAX), STOCK_OK);
    append_record(log, state, 2);
    journal_close(log);
}

/* A bad last record is a torn tail only in the last segment: in a closed
 * one (synced before the next began) it is damage. */
static void test_damage_in_closed_segment(void **unused)
{
    (void)unused;
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX];
    write_two_segments(&state, message);
    uint8_t *data = file_data;
    size_t size = read_file(SEGMENT0, data, TEST_FILE_MAX);
    data[log_end(data, size) - 1] ^= 0x40;
    write_file(SEGMENT0, data, size);
    assert_int_equal(open_log(&log, &state, message), STOCK_CORRUPT);
    char expected[64];
    snprintf(expected, sizeof expected, "%s, offset %zu:", SEGMENT0,
             (size_t)SEGMENT_HEADER + 12 + strlen("record-0"));
    assert_non_null(strstr(message, expected));
    assert_non_null(strstr(message, "closed segment"));
}

/* Counts records at replay, for logs longer than a test_state holds. */
static stock_code count_record(void *context, const uint8_t *record, size_t len,
                               char *message, size_t size)
{
    (void)record, (void)len, (void)message, (void)size;
    *(size_t *)context += 1;
    return STOCK_OK;
}

/* Appends count records of TEST_RECORD_BYTES in one group. */
static void append_group(journal *log, unsigned count)
{
    buf out = {0};
    uint8_t payload[TEST_RECORD_BYTES];
    memset(payload, 'g', sizeof payload);
    for (unsigned i = 0; i < count; i++) {
        size_t start;
        assert_true(journal_frame_begin(&out, &start));
        assert_true(buf_append(&out, payload, sizeof payload));
        journal_frame_end(&out, start);
    }
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(journal_append(log, out.data, out.len, count, message,
                                     sizeof message), STOCK_OK);
    buf_free(&out);
}

/* Each append leaves JOURNAL_ZERO_AHEAD_BYTES of zeros after the records,
 * topped up only once less than half is left; the zeros read back as the
 * end of the log. */
static void test_zeros_ahead_of_the_records(void **unused)
{
    (void)unused;
    write_log(4);
    size_t size = read_file(SEGMENT0, file_data, TEST_FILE_MAX);
    size_t end = log_end(file_data, size), record = 12 + strlen("record-0");
    assert_int_equal(end, SEGMENT_HEADER + 4 * record);
    /* Only the first append wrote zeros: the next three had enough. */
    assert_int_equal(size, SEGMENT_HEADER + record + JOURNAL_ZERO_AHEAD_BYTES);
    assert_true(all_zero(file_data + end, size - end));
    /* A group that eats more than half of them: topped up from its end. */
    unsigned count = JOURNAL_ZERO_AHEAD_BYTES / 2 / TEST_RECORD_BYTES;
    size_t replayed = 0;
    journal_replay replay = {.context = &replayed, .load = load_state,
                             .clear = clear_state, .apply = count_record};
    journal *log;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(journal_open(folder, 1, &replay, &hook, &log, message, sizeof message), STOCK_OK);
    append_group(log, count);
    journal_close(log);
    size = read_file(SEGMENT0, file_data, TEST_FILE_MAX);
    end = log_end(file_data, size);
    assert_int_equal(end, SEGMENT_HEADER + 4 * record + count * (12 + TEST_RECORD_BYTES));
    assert_int_equal(size, end + JOURNAL_ZERO_AHEAD_BYTES);
    assert_true(all_zero(file_data + end, size - end));
    replayed = 0;
    assert_int_equal(journal_open(folder, 1, &replay, &hook, &log, message, sizeof message), STOCK_OK);
    assert_int_equal(replayed, 4 + count);
    journal_close(log);
}

/* Reopened over and over, a segment with zeros after its records takes
 * the new records over the zeros, and every record comes back in order. */
static void test_reopen_appends_over_zeros(void **unused)
{
    (void)unused;
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX];
    for (unsigned round = 0; round < TEST_REOPEN_ROUNDS; round++) {
        assert_int_equal(open_log(&log, &state, message), STOCK_OK);
        assert_int_equal(state.count, round * TEST_RECORDS_PER_ROUND);
        for (unsigned i = 0; i < TEST_RECORDS_PER_ROUND; i++)
            append_record(log, &state, round * TEST_RECORDS_PER_ROUND + i);
        journal_close(log);
        size_t size = read_file(SEGMENT0, file_data, TEST_FILE_MAX);
        size_t end = log_end(file_data, size);
        assert_true(size > end);
        assert_true(all_zero(file_data + end, size - end));
    }
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(state.count, TEST_REOPEN_ROUNDS * TEST_RECORDS_PER_ROUND);
    for (unsigned n = 0; n < state.count; n++) {
        char expected[TEST_RECORD_BYTES];
        int len = snprintf(expected, sizeof expected, "record-%u", n);
        assert_int_equal(state.lens[n], (size_t)len);
        assert_memory_equal(state.records[n], expected, (size_t)len);
    }
    journal_close(log);
}

/* A hole (a zero record header with data after it) in the last segment is
 * where unsynced writes reached the disk out of order: the log is cut
 * there, valid records after it included, and appends go on. */
static void test_hole_in_last_segment_is_cut(void **unused)
{
    (void)unused;
    write_log(4);
    size_t size = read_file(SEGMENT0, file_data, TEST_FILE_MAX);
    size_t record = 12 + strlen("record-0");
    memset(file_data + SEGMENT_HEADER + record, 0, 12);   /* record 1's header */
    write_file(SEGMENT0, file_data, size);
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(state.count, 1);
    /* Cut from the hole to the end of record 3, whose bytes are counted
     * although they were valid: nothing after a hole was acknowledged. */
    assert_recovery(log, false, 0, 1, 3 * record);
    append_record(log, &state, 1);
    journal_close(log);
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(state.count, 2);
    assert_memory_equal(state.records[1], "record-1", 8);
    journal_close(log);
}

/* A closed segment keeps its zeros after its records and recovers; a hole
 * in it is damage (it was synced before the next segment began). */
static void test_zeros_and_hole_in_closed_segment(void **unused)
{
    (void)unused;
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX];
    write_two_segments(&state, message);
    uint8_t *data = file_data;
    size_t size = read_file(SEGMENT0, data, TEST_FILE_MAX);
    size_t end = log_end(data, size), record = 12 + strlen("record-0");
    assert_int_equal(end, SEGMENT_HEADER + 2 * record);
    assert_true(size > end && all_zero(data + end, size - end));
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(state.count, 3);
    journal_close(log);
    memset(data + SEGMENT_HEADER + record, 0, 12);   /* record 1's header */
    write_file(SEGMENT0, data, size);
    assert_int_equal(open_log(&log, &state, message), STOCK_CORRUPT);
    char expected[96];
    snprintf(expected, sizeof expected, "%s, offset %zu: zero record header",
             SEGMENT0, (size_t)SEGMENT_HEADER + record);
    assert_non_null(strstr(message, expected));
    assert_non_null(strstr(message, "closed segment"));
    assert_int_equal(read_file(SEGMENT0, file_after, TEST_FILE_MAX), size);
    assert_memory_equal(file_after, data, size);
}

/* Appends one record of TEST_BIG_RECORD_BYTES (all 'b'). */
static void append_big(journal *log)
{
    static uint8_t payload[TEST_BIG_RECORD_BYTES];
    memset(payload, 'b', sizeof payload);
    buf out = {0};
    size_t start;
    assert_true(journal_frame_begin(&out, &start));
    assert_true(buf_append(&out, payload, sizeof payload));
    journal_frame_end(&out, start);
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(journal_append(log, out.data, out.len, 1, message, sizeof message),
                     STOCK_OK);
    buf_free(&out);
}

/* Opens the test folder counting the records replayed into *replayed. */
static stock_code open_counting(journal **log, size_t *replayed, char *message)
{
    *replayed = 0;
    journal_replay replay = {.context = replayed, .load = load_state,
                             .clear = clear_state, .apply = count_record};
    return journal_open(folder, 1, &replay, &hook, log, message, STOCK_MESSAGE_MAX);
}

/* TEST_BIG_RECORDS big records in SEGMENT0 and, if rotate, one more in a
 * second segment; SEGMENT0 read into file_data, its size returned. */
static size_t write_big_log(bool rotate)
{
    journal *log;
    size_t replayed;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(open_counting(&log, &replayed, message), STOCK_OK);
    for (unsigned i = 0; i < TEST_BIG_RECORDS; i++)
        append_big(log);
    if (rotate) {
        assert_int_equal(journal_rotate(log, message, STOCK_MESSAGE_MAX), STOCK_OK);
        append_big(log);
    }
    journal_close(log);
    size_t size = read_file(SEGMENT0, file_data, TEST_FILE_MAX);
    size_t record = 12 + TEST_BIG_RECORD_BYTES;
    assert_int_equal(log_end(file_data, size), SEGMENT_HEADER + TEST_BIG_RECORDS * record);
    /* The page at JOURNAL_PAGE_BYTES starts inside record 1 (the second),
     * the next one inside record 2, and record 3 lies after both. */
    assert_true(SEGMENT_HEADER + record + 12 < JOURNAL_PAGE_BYTES);
    assert_true(SEGMENT_HEADER + 2 * record > JOURNAL_PAGE_BYTES);
    assert_true(SEGMENT_HEADER + 3 * record > 2 * JOURNAL_PAGE_BYTES);
    return size;
}

/* A page that never reached the disk, starting inside record 1 past its
 * header (the rest of record 1 and the start of record 2 zero), in the last
 * segment: a hole, so the log is cut at record 1 although record 3 after
 * it is valid; record 0 is recovered and appends go on. */
static void test_zero_page_inside_record_is_cut(void **unused)
{
    (void)unused;
    size_t size = write_big_log(false);
    memset(file_data + JOURNAL_PAGE_BYTES, 0, JOURNAL_PAGE_BYTES);
    write_file(SEGMENT0, file_data, size);
    journal *log;
    size_t replayed;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(open_counting(&log, &replayed, message), STOCK_OK);
    assert_int_equal(replayed, 1);
    size_t cut = SEGMENT_HEADER + 12 + TEST_BIG_RECORD_BYTES;
    assert_int_equal(read_file(SEGMENT0, file_after, TEST_FILE_MAX), cut);
    assert_memory_equal(file_after, file_data, cut);
    append_big(log);
    journal_close(log);
    assert_int_equal(open_counting(&log, &replayed, message), STOCK_OK);
    assert_int_equal(replayed, 2);
    journal_close(log);
}

/* Opens the damaged SEGMENT0 in file_data[0..size): CORRUPT at record 1
 * for why, and the file left exactly as it was. */
static void assert_refused_at_record_1(size_t size, const char *why, const char *reason)
{
    write_file(SEGMENT0, file_data, size);
    journal *log;
    size_t replayed;
    char message[STOCK_MESSAGE_MAX], expected[96];
    assert_int_equal(open_counting(&log, &replayed, message), STOCK_CORRUPT);
    snprintf(expected, sizeof expected, "%s, offset %zu: %s", SEGMENT0,
             (size_t)SEGMENT_HEADER + 12 + TEST_BIG_RECORD_BYTES, why);
    assert_non_null(strstr(message, expected));
    assert_non_null(strstr(message, reason));
    assert_int_equal(read_file(SEGMENT0, file_after, TEST_FILE_MAX), size);
    assert_memory_equal(file_after, file_data, size);
}

/* Removes SEGMENT0 and writes a fresh big log; returns its size. */
static size_t rewrite_big_log(void)
{
    char path[128];
    path_of(path, sizeof path, SEGMENT0);
    assert_int_equal(unlink(path), 0);
    return write_big_log(false);
}

/* No zero page inside the bad record, no hole, so with valid records after
 * it the damage is refused: a page zeroed but for one byte; zeros only over
 * record 1's part of the page (record 2 intact after them in the same
 * page, so the page did reach the disk); a zero page after a record whose
 * length is out of range (its extent ends at the page holding its header's
 * end, before the page); a length that claims the zero tail. */
static void test_zeros_short_of_a_page_are_refused(void **unused)
{
    (void)unused;
    size_t size = write_big_log(false);
    memset(file_data + JOURNAL_PAGE_BYTES, 0, JOURNAL_PAGE_BYTES);
    file_data[JOURNAL_PAGE_BYTES + 100] = 0x01;
    assert_refused_at_record_1(size, "record checksum mismatch", "valid record follows");
    size = rewrite_big_log();
    size_t record_1 = SEGMENT_HEADER + 12 + TEST_BIG_RECORD_BYTES;
    size_t record_2 = record_1 + 12 + TEST_BIG_RECORD_BYTES;
    memset(file_data + JOURNAL_PAGE_BYTES, 0, record_2 - JOURNAL_PAGE_BYTES);
    assert_refused_at_record_1(size, "record checksum mismatch", "valid record follows");
    size = rewrite_big_log();
    memset(file_data + record_1, 0xff, 4);   /* length out of range */
    memset(file_data + JOURNAL_PAGE_BYTES, 0, JOURNAL_PAGE_BYTES);
    assert_refused_at_record_1(size, "record length out of range", "valid record follows");
    /* A length in range but damaged to reach past the valid records into
     * the zeros kept ahead of the log: those zero pages lie after the next
     * valid record, so they are no hole. */
    size = rewrite_big_log();
    size_t claimed = size - record_1 - 12 - 100;
    assert_true(claimed <= JOURNAL_RECORD_MAX && size - log_end(file_data, size) > JOURNAL_PAGE_BYTES);
    file_data[record_1] = (uint8_t)claimed;
    file_data[record_1 + 1] = (uint8_t)(claimed >> 8);
    file_data[record_1 + 2] = (uint8_t)(claimed >> 16);
    file_data[record_1 + 3] = (uint8_t)(claimed >> 24);
    assert_refused_at_record_1(size, "record checksum mismatch", "valid record follows");
}

/* The same zero page in a closed segment (synced whole before the next
 * began) is damage. */
static void test_zero_page_in_closed_segment_is_refused(void **unused)
{
    (void)unused;
    size_t size = write_big_log(true);
    memset(file_data + JOURNAL_PAGE_BYTES, 0, JOURNAL_PAGE_BYTES);
    assert_refused_at_record_1(size, "record checksum mismatch", "closed segment");
}

/* The zeros are only a speed-up: when writing them fails (here the file
 * size limit), the append still succeeds and so do later ones. */
static void test_failed_zero_fill_is_not_a_failed_append(void **unused)
{
    (void)unused;
    journal *log;
    test_state state;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    struct rlimit limit, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &limit), 0);
    small = (struct rlimit){TEST_SMALL_FILE_BYTES, limit.rlim_max};
    struct sigaction ignore = {.sa_handler = SIG_IGN}, previous;
    assert_int_equal(sigaction(SIGXFSZ, &ignore, &previous), 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    char error[STOCK_MESSAGE_MAX] = "";
    stock_code codes[3];
    for (unsigned i = 0; i < 3; i++) {
        char payload[TEST_RECORD_BYTES];
        buf out = {0};
        size_t start;
        int len = snprintf(payload, sizeof payload, "record-%u", i);
        bool framed = journal_frame_begin(&out, &start) &&
                      buf_append(&out, payload, (size_t)len);
        if (framed)
            journal_frame_end(&out, start);
        codes[i] = framed ? journal_append(log, out.data, out.len, 1, error, sizeof error)
                          : STOCK_NOMEM;
        buf_free(&out);
    }
    /* Put the limit back before any check can fail and leave it set. */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &limit), 0);
    assert_int_equal(sigaction(SIGXFSZ, &previous, NULL), 0);
    journal_close(log);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(codes[i], STOCK_OK);
    /* Said once, as a warning: the appends went on without the zeros. */
    assert_heard_one(STOCK_LOG_WARNING, "cannot write zeros ahead of the records in "
                                        SEGMENT0);
    size_t size = read_file(SEGMENT0, file_data, TEST_FILE_MAX);
    size_t end = log_end(file_data, size);
    assert_int_equal(size, TEST_SMALL_FILE_BYTES);   /* zeros up to the limit */
    assert_true(all_zero(file_data + end, size - end));
    assert_int_equal(open_log(&log, &state, message), STOCK_OK);
    assert_int_equal(state.count, 3);
    assert_memory_equal(state.records[2], "record-2", 8);
    journal_close(log);
}

static void test_second_open_is_refused(void **unused)
{
    (void)unused;
    journal *first, *second;
    test_state state_one, state_two;
    char message[STOCK_MESSAGE_MAX];
    assert_int_equal(open_log(&first, &state_one, message), STOCK_OK);
    assert_int_equal(open_log(&second, &state_two, message), STOCK_UNAVAILABLE);
    assert_non_null(strstr(message, "LOCK"));
    journal_close(first);
    assert_int_equal(open_log(&second, &state_two, message), STOCK_OK);
    journal_close(second);
}

int main(void)
{
#define FOLDER_TEST(name) cmocka_unit_test_setup_teardown(name, make_folder, remove_folder)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_round_trip),
        cmocka_unit_test(test_parse_detects_flips),
        cmocka_unit_test(test_parse_zeros_end_the_log),
        FOLDER_TEST(test_reopen_replays),
        FOLDER_TEST(test_torn_tail_every_length),
        FOLDER_TEST(test_corruption_in_the_middle),
        FOLDER_TEST(test_bad_last_record_is_cut),
        FOLDER_TEST(test_snapshots_and_fallback),
        FOLDER_TEST(test_snapshot_threshold_grows_with_the_state),
        FOLDER_TEST(test_backup_pins_and_restores),
        FOLDER_TEST(test_snapshot_with_sigchld_ignored),
        FOLDER_TEST(test_gap_is_refused),
        FOLDER_TEST(test_damage_in_closed_segment),
        FOLDER_TEST(test_zeros_ahead_of_the_records),
        FOLDER_TEST(test_reopen_appends_over_zeros),
        FOLDER_TEST(test_hole_in_last_segment_is_cut),
        FOLDER_TEST(test_zeros_and_hole_in_closed_segment),
        FOLDER_TEST(test_zero_page_inside_record_is_cut),
        FOLDER_TEST(test_zeros_short_of_a_page_are_refused),
        FOLDER_TEST(test_zero_page_in_closed_segment_is_refused),
        FOLDER_TEST(test_failed_zero_fill_is_not_a_failed_append),
        FOLDER_TEST(test_second_open_is_refused),
        FOLDER_TEST(test_sync_files_are_own_descriptions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
