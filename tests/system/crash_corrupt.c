/*
 * crash_corrupt.c -- helper of tests/suites/31-corruption.sh: fills an
 * embedded store with known deductions, and checks what a reopen finds
 * after the suite has damaged or torn its files.
 *
 *   crash_corrupt fill URI COUNT      deducts lines L0..L<COUNT-1> (qty 1 of
 *                                     SKU S, 100 per batch) and closes
 *   crash_corrupt check URI KEPT      opens; exits 3 printing "CODE: message"
 *                                     if open fails; else checks lines
 *                                     L0..L<KEPT-1> exist, L<KEPT> does not,
 *                                     and S's deducted total is KEPT
 *   crash_corrupt misc DIR            a second open of an open folder is
 *                                     UNAVAILABLE; bad URI parameters INVALID
 *   crash_corrupt stats DIR           relaxed durability with a tiny snapshot
 *                                     threshold: the counters add up, the
 *                                     timer syncs within STOCK_RELAXED_SYNC_MS,
 *                                     snapshots are taken and counted
 *   crash_corrupt full DIR            with RLIMIT_FSIZE making the log's
 *                                     write() fail: the group fails with IO,
 *                                     every later op (reads too) is IO, close
 *                                     says IO; a reopen without the limit
 *                                     has exactly the acknowledged lines
 *   crash_corrupt log-end FILE        prints the offset just past the last
 *                                     whole record of segment FILE (the
 *                                     file goes on with zeros, see
 *                                     docs/engine.md, "On-disk format")
 *   crash_corrupt record-at FILE N    prints the offset of record N (from 0)
 *                                     of segment FILE; fails if it has fewer
 * Exit 0 when everything holds, 1 on a failed check, 3 on a failed open.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "journal/journal.h"
#include "stock.h"

#define CORRUPT_BATCH 100
#define CORRUPT_ID_BYTES 24
#define CORRUPT_STOCK 1000000000LL
/* Largest file the "full" test lets the process write. */
#define CORRUPT_FILE_LIMIT 65536
#define CORRUPT_FULL_BATCHES_MAX 10000
/* Segment header size (docs/engine.md, "On-disk format"); the segments
 * log-end and record-at read must be smaller than CORRUPT_SEGMENT_MAX. */
#define CORRUPT_SEGMENT_HEADER 32
#define CORRUPT_SEGMENT_MAX (16u << 20)

/* The store's log hook: what recovery did (a torn tail cut, a damaged
 * snapshot set aside) goes to stderr, into the suite's log. */
static void print_message(void *user, stock_log_level level, const char *message)
{
    (void)user, (void)level;
    fprintf(stderr, "crash_corrupt: libstock: %s\n", message);
}

static const stock_config printing = {.log = print_message};

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "crash_corrupt: FAIL: %s: %s\n", what, detail);
    return 1;
}

/* Sets S and deducts L0..L<count-1> in batches; 0 or 1. */
static int fill_store(stock_t *store, long count)
{
    char message[STOCK_MESSAGE_MAX];
    if (stock_set(store, "S", CORRUPT_STOCK, NULL, NULL, message) != STOCK_OK)
        return fail("set", message);
    static stock_op ops[CORRUPT_BATCH];
    static char ids[CORRUPT_BATCH][CORRUPT_ID_BYTES];
    for (long base = 0; base < count; base += CORRUPT_BATCH) {
        size_t n = 0;
        for (long i = base; i < count && n < CORRUPT_BATCH; i++, n++) {
            snprintf(ids[n], CORRUPT_ID_BYTES, "L%ld", i);
            ops[n] = (stock_op){.type = STOCK_OP_DEDUCT, .id = stock_id_from_cstr(ids[n]),
                                .sku = stock_id_from_cstr("S"), .amount = 1};
        }
        if (stock_execute(store, ops, n) != STOCK_OK)
            return fail("execute", "batch refused");
        for (size_t i = 0; i < n; i++)
            if (ops[i].code != STOCK_OK)
                return fail(ids[i], ops[i].message);
    }
    return 0;
}

static int fill(const char *uri, long count)
{
    char message[STOCK_MESSAGE_MAX];
    stock_t *store;
    if (stock_open(uri, &printing, &store, message) != STOCK_OK)
        return fail("open", message);
    if (fill_store(store, count) != 0)
        return 1;
    if (stock_close(store) != STOCK_OK)
        return fail("close", "final sync failed");
    printf("filled %ld deductions\n", count);
    return 0;
}

static int check(const char *uri, long kept)
{
    char message[STOCK_MESSAGE_MAX], id[CORRUPT_ID_BYTES];
    stock_t *store;
    stock_code code = stock_open(uri, &printing, &store, message);
    if (code != STOCK_OK) {
        printf("%s: %s\n", stock_code_name(code), message);
        return 3;
    }
    int result = 0;
    for (long i = 0; i <= kept && result == 0; i++) {
        snprintf(id, sizeof id, "L%ld", i);
        stock_code found = stock_line(store, id, NULL, NULL);
        if (found != (i < kept ? STOCK_OK : STOCK_NOT_FOUND))
            result = fail(id, stock_code_name(found));
    }
    stock_sku_info info;
    if (result == 0 && (stock_get(store, "S", &info, NULL) != STOCK_OK || info.deducted != kept))
        result = fail("S", "deducted total differs from the lines kept");
    if (stock_close(store) != STOCK_OK && result == 0)
        result = fail("close", "final sync failed");
    if (result == 0)
        printf("open OK, %ld lines as expected\n", kept);
    return result;
}

/* Opening uri must fail with code and a message containing needle. */
static int expect_refusal(const char *uri, stock_code expected, const char *needle)
{
    char message[STOCK_MESSAGE_MAX];
    stock_t *store;
    stock_code code = stock_open(uri, &printing, &store, message);
    if (code == STOCK_OK)
        stock_close(store);
    if (code != expected || strstr(message, needle) == NULL)
        return fail(uri, code == STOCK_OK ? "opened" : message);
    printf("%s -> %s: %s\n", uri, stock_code_name(code), message);
    return 0;
}

static int misc(const char *dir)
{
    char message[STOCK_MESSAGE_MAX], uri[1024];
    stock_t *store;
    if (stock_open(dir, &printing, &store, message) != STOCK_OK)
        return fail("open", message);
    snprintf(uri, sizeof uri, "file:%s?durability=relaxed", dir);
    int result = expect_refusal(uri, STOCK_UNAVAILABLE, "LOCK");
    stock_close(store);
    snprintf(uri, sizeof uri, "%s?durability=fast", dir);
    result |= expect_refusal(uri, STOCK_INVALID, "durability");
    snprintf(uri, sizeof uri, "%s?fsync=always", dir);
    result |= expect_refusal(uri, STOCK_INVALID, "unknown store URI parameter 'fsync'");
    snprintf(uri, sizeof uri, "%s?snapshot_log_bytes=12", dir);
    result |= expect_refusal(uri, STOCK_INVALID, "snapshot_log_bytes");
    result |= expect_refusal("file://host/data", STOCK_INVALID, "no host");
    return result;
}

/* Deducts batches until one fails; returns the lines acknowledged. */
static long deduct_until_failure(stock_t *store, stock_op *failed)
{
    static stock_op ops[CORRUPT_BATCH];
    static char ids[CORRUPT_BATCH][CORRUPT_ID_BYTES];
    long acked = 0;
    for (int batch = 0; batch < CORRUPT_FULL_BATCHES_MAX; batch++) {
        for (int i = 0; i < CORRUPT_BATCH; i++) {
            snprintf(ids[i], CORRUPT_ID_BYTES, "L%ld", acked + i);
            ops[i] = (stock_op){.type = STOCK_OP_DEDUCT, .id = stock_id_from_cstr(ids[i]),
                                .sku = stock_id_from_cstr("S"), .amount = 1};
        }
        stock_execute(store, ops, CORRUPT_BATCH);
        for (int i = 0; i < CORRUPT_BATCH; i++) {
            if (ops[i].code != (ops[0].code == STOCK_OK ? STOCK_OK : STOCK_IO)) {
                fail(ids[i], "a group must succeed or fail as a whole");
                return -1;
            }
        }
        if (ops[0].code != STOCK_OK) {
            *failed = ops[0];
            return acked;
        }
        acked += CORRUPT_BATCH;
    }
    fail("full", "the file size limit never made a write fail");
    return -1;
}

static int full(const char *dir)
{
    char message[STOCK_MESSAGE_MAX];
    struct rlimit limit;
    signal(SIGXFSZ, SIG_IGN);   /* write() then fails with EFBIG instead */
    getrlimit(RLIMIT_FSIZE, &limit);
    struct rlimit small = {CORRUPT_FILE_LIMIT, limit.rlim_max};
    stock_t *store;
    if (setrlimit(RLIMIT_FSIZE, &small) != 0 ||
        stock_open(dir, &printing, &store, message) != STOCK_OK ||
        stock_set(store, "S", CORRUPT_STOCK, NULL, NULL, message) != STOCK_OK)
        return fail("open", message);
    stock_op failed;
    long acked = deduct_until_failure(store, &failed);
    if (acked < 0)
        return 1;
    printf("after %ld lines: %s %s\n", acked, stock_code_name(failed.code), failed.message);
    if (strstr(failed.message, "refuses work until reopened") == NULL)
        return fail("IO message", failed.message);
    if (stock_get(store, "S", NULL, NULL) != STOCK_IO ||
        stock_deduct(store, "later", "S", 1, NULL, message) != STOCK_IO)
        return fail("after the failure", "a later op did not fail with IO");
    if (stock_close(store) != STOCK_IO)
        return fail("close", "close of a broken store did not say IO");
    setrlimit(RLIMIT_FSIZE, &limit);
    printf("reopening without the limit, expecting %ld lines\n", acked);
    return check(dir, acked);
}

static int check_counters(stock_t *store, long lines, bool after_wait)
{
    stock_stats stats;
    if (stock_get_stats(store, &stats) != STOCK_OK)
        return fail("stats", "stock_get_stats failed");
    uint64_t bucket_sum = 0;
    for (unsigned i = 0; i < STOCK_SYNC_BUCKETS; i++)
        bucket_sum += stats.sync_latency_buckets[i];
    printf("batches %" PRIu64 " operations %" PRIu64 " syncs %" PRIu64 " lines %" PRIu64
           " skus %" PRIu64 " memory %" PRIu64 " log %" PRIu64 " snapshots %" PRIu64 "\n",
           stats.batches, stats.operations, stats.syncs, stats.lines, stats.skus,
           stats.memory_bytes, stats.log_bytes, stats.snapshots);
    if (stats.lines != (uint64_t)lines || stats.skus != 1 || stats.memory_bytes == 0 ||
        stats.batches < (uint64_t)lines / CORRUPT_BATCH + 1 ||
        stats.operations < (uint64_t)lines + 1 || bucket_sum != stats.syncs)
        return fail("stats", "counters do not match the work done");
    if (after_wait && (stats.syncs == 0 || stats.snapshots == 0))
        return fail("stats", "no timed sync or no snapshot within the relaxed interval");
    return 0;
}

static int stats(const char *dir)
{
    char message[STOCK_MESSAGE_MAX], uri[1024];
    snprintf(uri, sizeof uri, "%s?durability=relaxed&snapshot_log_bytes=4096", dir);
    stock_t *store;
    long lines = 20 * CORRUPT_BATCH;
    if (stock_open(uri, &printing, &store, message) != STOCK_OK)
        return fail("open", message);
    if (fill_store(store, lines) != 0)
        return 1;
    int result = check_counters(store, lines, false);
    /* The relaxed syncer and the snapshot reaper both run on timers. */
    usleep((STOCK_RELAXED_SYNC_MS + 200) * 1000);
    result |= check_counters(store, lines, true);
    if (stock_close(store) != STOCK_OK)
        return fail("close", "final sync failed");
    return result == 0 ? check(dir, lines) : result;
}

/*
 * Walks the records of segment path: prints the offset of record want
 * (want < 0: of the end of the last whole record). 0, or 1 if the file
 * cannot be read or has no record want.
 */
static int walk_records(const char *path, long want)
{
    static uint8_t data[CORRUPT_SEGMENT_MAX];
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return fail(path, "cannot open");
    size_t len = fread(data, 1, sizeof data, file);
    bool whole = feof(file) && !ferror(file);
    fclose(file);
    if (!whole || len < CORRUPT_SEGMENT_HEADER)
        return fail(path, "cannot read it whole, or not a segment");
    size_t offset = CORRUPT_SEGMENT_HEADER;
    for (long n = 0;; n++) {
        const uint8_t *payload;
        size_t payload_len, record_len;
        const char *why = NULL;
        bool record = journal_parse(data + offset, len - offset, &payload,
                                    &payload_len, &record_len, &why) == JOURNAL_PARSE_RECORD;
        if (record && n == want)
            break;
        if (!record && want >= 0)
            return fail(path, "fewer records than asked for");
        if (!record)
            break;
        offset += record_len;
    }
    printf("%zu\n", offset);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "fill") == 0)
        return fill(argv[2], strtol(argv[3], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "check") == 0)
        return check(argv[2], strtol(argv[3], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "misc") == 0)
        return misc(argv[2]);
    if (argc == 3 && strcmp(argv[1], "full") == 0)
        return full(argv[2]);
    if (argc == 3 && strcmp(argv[1], "stats") == 0)
        return stats(argv[2]);
    if (argc == 3 && strcmp(argv[1], "log-end") == 0)
        return walk_records(argv[2], -1);
    if (argc == 4 && strcmp(argv[1], "record-at") == 0 && atol(argv[3]) >= 0)
        return walk_records(argv[2], atol(argv[3]));
    fprintf(stderr, "usage: crash_corrupt fill URI COUNT | check URI KEPT | misc DIR | "
            "full DIR | stats DIR | log-end FILE | record-at FILE N\n");
    return 2;
}
