/*
 * retention_check.c -- retention of the embedded engine (tests/suites/
 * 33-retention.sh runs it).
 *
 *   retention_check DIR WINDOW_MS WINDOWS
 *       Opens DIR/store with retention=WINDOW_MS ms, makes a line, an
 *       order, a refund and an adjustment, then deducts lines in batches
 *       (at most RETENTION_LINES_PER_S) for WINDOWS windows while checking after every batch that the lines
 *       in memory (stock_stats.lines) are no more than those written in the
 *       last RETENTION_BOUND_WINDOWS windows and RETENTION_BOUND_SLACK_MS,
 *       and at the end that at most a third of what was written is held. Then checks that the first
 *       entities, long cold, answer as they did (REPLAY with the original
 *       result, CONFLICT, refunds capped; closed holds: HOLD, CONFIRM,
 *       RELEASE and CONFIRM_ORDER replay, CLOSED, EXPIRED, a DEDUCT with a
 *       hold's id CONFLICT, a read), that the SKU counters are exact
 *       (I2, deducted = every acknowledged qty), and the same again after a
 *       reopen with retention off. Exit 0 when all hold.
 *   retention_check DIR WINDOW_MS WINDOWS FORGET_MS
 *       The same store with forget=FORGET_MS ms: makes the first entities,
 *       drives WINDOWS windows (past FORGET_MS), and on a window at a time
 *       until a line of the first window reads as forgotten (moves run
 *       beside the writes, so a loaded machine makes them take longer: up
 *       to FORGET_WAIT_MS more), then checks that they
 *       answer as forgotten (REPLAY with available -1, a refund of the line
 *       EXCEEDS, a read NOT_FOUND; a hold's CONFIRM or RELEASE CLOSED and
 *       its read NOT_FOUND, "hold=H forgotten"), never with a second
 *       deduction, before
 *       and after a reopen.
 *   retention_check --forget-idle DIR WINDOW_MS FORGET_MS
 *       A store with forget=FORGET_MS that only reads once its one line has
 *       left memory: after FORGET_MS and FORGET_IDLE_SLACK_MS more of reads
 *       (no entity left memory meanwhile, so every move put nothing), the
 *       line reads as forgotten, also after a reopen.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stock.h"

#define RETENTION_BATCH 1000
/* The pace of the writes: a shop's steady flow, not the most one thread
 * can push. Moves run beside the writes and copy what stays in memory, so
 * at full speed with a 500 ms window a loaded 2-core machine spent more on
 * moves than the window allows, and memory grew with the machine's load
 * rather than with the window (docs/engine.md, "Moves in steps"). */
#define RETENTION_LINES_PER_S 40000
/* The bound on lines in memory: the lines written in the last 4 windows
 * and 5 s. A line leaves at the first move after it is one window old;
 * moves run every window / 4 once the snapshot of the one before is
 * written, and on a loaded 2-core machine (load average 16, other suites
 * syncing the same disk) a move of 60,000-100,000 lines took up to 3.3 s
 * where it usually takes a few hundred ms. */
#define RETENTION_BOUND_WINDOWS 4
#define RETENTION_BOUND_SLACK_MS 5000
#define RETENTION_SAMPLES_MAX 100000
#define RETENTION_STOCK 1000000000000LL
/* How long the forget check drives on past its windows, waiting for the
 * move that forgets the first window. */
#define FORGET_WAIT_MS 30000
/* --forget-idle: the reads past the horizon in which a move must have
 * forgotten the line (a move every window / 4, each of them quick here:
 * nothing is in memory), and the pause between reads. */
#define FORGET_IDLE_SLACK_MS 4000
#define FORGET_IDLE_PAUSE_MS 5

static void fail(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fprintf(stderr, "retention_check: FAIL: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    exit(1);
}

static int64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void expect(stock_code got, stock_code want, const char *what, const char *message)
{
    if (got != want)
        fail("%s: %s (%s), expected %s", what, stock_code_name(got), message,
             stock_code_name(want));
}

/* What the first entities answered when they were made. */
typedef struct firsts {
    int64_t line_available, order_available[2], refund_available, add_available;
    int64_t hold_available, confirm_available, release_available, hold_order_available[2];
    int64_t deducted;          /* every unit acknowledged on SKU S */
} firsts;

/* The first holds live HOLD_TTL_MS: closed at once (or expired), they
 * leave memory with the first move after their deadline is a window old. */
#define HOLD_TTL_MS 100
/* Released holds made after the others, read one by one until one reads
 * as forgotten: then every first hold is (a read of a hold still kept
 * brings it back into memory and into a later move, so each is read once). */
#define HOLD_PROBES 8

/* The store's notices (each move, a move taken back) go to stderr with
 * the time since start, into the suite's log. */
static void print_message(void *user, stock_log_level level, const char *message)
{
    (void)user, (void)level;
    static int64_t start;
    if (start == 0)
        start = now_ms();
    fprintf(stderr, "retention_check: %6" PRId64 " ms libstock: %s\n", now_ms() - start, message);
}

static const stock_config printing = {.log = print_message};

static stock_t *open_store(const char *uri)
{
    stock_t *store;
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_open(uri, &printing, &store, message);
    if (code != STOCK_OK)
        fail("open %s: %s %s", uri, stock_code_name(code), message);
    return store;
}

/* Closed holds of each kind: confirmed, released, expired, and two
 * confirmed as one order (docs/semantics.md, "Holds"). */
static void make_holds(stock_t *store, firsts *f)
{
    char message[STOCK_MESSAGE_MAX];
    int64_t available;
    expect(stock_hold(store, "h-conf", "S", 3, HOLD_TTL_MS, &f->hold_available, message),
           STOCK_OK, "hold h-conf", message);
    expect(stock_confirm(store, "h-conf", 2, &f->confirm_available, message), STOCK_OK,
           "confirm h-conf", message);
    expect(stock_hold(store, "h-rel", "S", 4, HOLD_TTL_MS, &available, message), STOCK_OK,
           "hold h-rel", message);
    expect(stock_release(store, "h-rel", &f->release_available, message), STOCK_OK,
           "release h-rel", message);
    expect(stock_hold(store, "h-exp", "S", 1, 1, &available, message), STOCK_OK,
           "hold h-exp", message);
    expect(stock_hold(store, "h-o1", "S", 1, HOLD_TTL_MS, &available, message), STOCK_OK,
           "hold h-o1", message);
    expect(stock_hold(store, "h-o2", "T", 2, HOLD_TTL_MS, &available, message), STOCK_OK,
           "hold h-o2", message);
    stock_order_line lines[2] = {{stock_id_from_cstr("h-o1"), {NULL, 0}, 0, 0},
                                 {stock_id_from_cstr("h-o2"), {NULL, 0}, 0, 0}};
    int32_t failed;
    expect(stock_confirm_order(store, "hord1", lines, 2, &failed, message), STOCK_OK,
           "confirm order hord1", message);
    f->hold_order_available[0] = lines[0].available;
    f->hold_order_available[1] = lines[1].available;
    for (int i = 0; i < HOLD_PROBES; i++) {
        char id[16];
        snprintf(id, sizeof id, "hp%d", i);
        expect(stock_hold(store, id, "S", 1, HOLD_TTL_MS, &available, message), STOCK_OK,
               id, message);
        expect(stock_release(store, id, &available, message), STOCK_OK, id, message);
    }
    struct timespec pause = {0, 5 * 1000000L};
    nanosleep(&pause, NULL);
    stock_hold_info info;
    expect(stock_hold_get(store, "h-exp", &info, message), STOCK_OK, "read h-exp", message);
    if (info.state != STOCK_HOLD_EXPIRED)
        fail("h-exp is %s 5 ms past its deadline", stock_hold_state_name(info.state));
    f->deducted += 2 + 1;
}

/* The first holds, long cold, answer as they did. */
static void check_hold_replays(stock_t *store, const firsts *f)
{
    char message[STOCK_MESSAGE_MAX];
    int64_t available = -1;
    expect(stock_hold(store, "h-conf", "S", 3, HOLD_TTL_MS, &available, message), STOCK_REPLAY,
           "hold h-conf again", message);
    if (available != f->hold_available)
        fail("replayed hold answered %" PRId64 ", first %" PRId64, available, f->hold_available);
    expect(stock_hold(store, "h-conf", "S", 4, HOLD_TTL_MS, &available, message),
           STOCK_CONFLICT, "hold h-conf with another qty", message);
    expect(stock_confirm(store, "h-conf", 2, &available, message), STOCK_REPLAY,
           "confirm h-conf again", message);
    if (available != f->confirm_available)
        fail("replayed confirm answered %" PRId64 ", first %" PRId64, available,
             f->confirm_available);
    expect(stock_release(store, "h-conf", &available, message), STOCK_CLOSED,
           "release confirmed h-conf", message);
    expect(stock_release(store, "h-rel", &available, message), STOCK_REPLAY,
           "release h-rel again", message);
    if (available != f->release_available)
        fail("replayed release answered %" PRId64 ", first %" PRId64, available,
             f->release_available);
    expect(stock_confirm(store, "h-rel", 0, &available, message), STOCK_CLOSED,
           "confirm released h-rel", message);
    expect(stock_confirm(store, "h-exp", 0, &available, message), STOCK_EXPIRED,
           "confirm expired h-exp", message);
    expect(stock_deduct(store, "h-rel", "S", 4, &available, message), STOCK_CONFLICT,
           "deduct with released hold h-rel's id", message);
    stock_order_line lines[2] = {{stock_id_from_cstr("h-o1"), {NULL, 0}, 0, 0},
                                 {stock_id_from_cstr("h-o2"), {NULL, 0}, 0, 0}};
    int32_t failed;
    expect(stock_confirm_order(store, "hord1", lines, 2, &failed, message), STOCK_REPLAY,
           "confirm order hord1 again", message);
    if (lines[0].available != f->hold_order_available[0] ||
        lines[1].available != f->hold_order_available[1])
        fail("replayed confirm order answered other levels");
    stock_hold_info info;
    expect(stock_hold_get(store, "h-o2", &info, message), STOCK_OK, "read h-o2", message);
    if (info.state != STOCK_HOLD_CONFIRMED || info.confirmed != 2 ||
        strcmp(info.order_id, "hord1") != 0 || strcmp(info.sku, "T") != 0)
        fail("cold hold h-o2 reads %s, confirmed %" PRId64 ", order '%s', sku '%s'",
             stock_hold_state_name(info.state), info.confirmed, info.order_id, info.sku);
}

/* Holds past the horizon answer as forgotten, and none takes stock. */
static void check_holds_forgotten(stock_t *store)
{
    char message[STOCK_MESSAGE_MAX];
    int64_t available = 0;
    expect(stock_hold(store, "h-conf", "S", 3, HOLD_TTL_MS, &available, message), STOCK_REPLAY,
           "hold forgotten h-conf again", message);
    if (available != -1)
        fail("a forgotten hold answered %" PRId64 ", not -1", available);
    expect(stock_confirm(store, "h-rel", 0, &available, message), STOCK_CLOSED,
           "confirm forgotten h-rel", message);
    if (strstr(message, "hold=h-rel forgotten") == NULL)
        fail("the confirm of a forgotten hold says '%s'", message);
    expect(stock_release(store, "h-exp", &available, message), STOCK_CLOSED,
           "release forgotten h-exp", message);
    stock_hold_info info;
    expect(stock_hold_get(store, "h-o1", &info, message), STOCK_NOT_FOUND,
           "read forgotten h-o1", message);
    if (strstr(message, "hold=h-o1 forgotten") == NULL)
        fail("the read of a forgotten hold says '%s'", message);
}

static void make_firsts(stock_t *store, firsts *f)
{
    char message[STOCK_MESSAGE_MAX];
    int64_t available;
    expect(stock_set(store, "S", RETENTION_STOCK, NULL, &available, message), STOCK_OK, "set S", message);
    expect(stock_set(store, "T", RETENTION_STOCK, NULL, &available, message), STOCK_OK, "set T", message);
    expect(stock_deduct(store, "first", "S", 5, &f->line_available, message), STOCK_OK,
           "deduct first", message);
    stock_order_line lines[2] = {{stock_id_from_cstr("o1"), stock_id_from_cstr("S"), 2, 0},
                                 {stock_id_from_cstr("o2"), stock_id_from_cstr("T"), 3, 0}};
    int32_t failed;
    expect(stock_order(store, "ord1", lines, 2, &failed, message), STOCK_OK, "order ord1", message);
    f->order_available[0] = lines[0].available;
    f->order_available[1] = lines[1].available;
    expect(stock_refund(store, "r1", "first", 1, &f->refund_available, message), STOCK_OK,
           "refund r1", message);
    expect(stock_add(store, "S", 10, "adj1", &f->add_available, message), STOCK_OK,
           "add adj1", message);
    f->deducted = 5 + 2;
    make_holds(store, f);
}

/* Deducts batches for `windows` windows, checking the bound on hot lines. */
static uint64_t drive(stock_t *store, char prefix, int64_t window_ms, int windows, firsts *f)
{
    static stock_op ops[RETENTION_BATCH];
    static char ids[RETENTION_BATCH][24];
    /* Samples of every drive: the bound counts the lines of the one
     * before as well. */
    static struct { int64_t ms; uint64_t written; } samples[RETENTION_SAMPLES_MAX];
    static uint32_t sample_count = 0;
    static uint64_t written_before = 0;
    uint64_t written = 0, hot_max = 0;
    int64_t start = now_ms();
    while (now_ms() - start < window_ms * windows && sample_count < RETENTION_SAMPLES_MAX) {
        for (int i = 0; i < RETENTION_BATCH; i++) {
            snprintf(ids[i], sizeof ids[i], "%c%" PRIu64, prefix, written + (uint64_t)i);
            ops[i] = (stock_op){.type = STOCK_OP_DEDUCT, .id = stock_id_from_cstr(ids[i]),
                                .sku = stock_id_from_cstr("S"), .amount = 1};
        }
        stock_code code = stock_execute(store, ops, RETENTION_BATCH);
        for (int i = 0; i < RETENTION_BATCH; i++)
            expect(ops[i].code, STOCK_OK, ids[i], ops[i].message);
        expect(code, STOCK_OK, "batch", "");
        written += RETENTION_BATCH;
        f->deducted += RETENTION_BATCH;
        int64_t due_ms = start + (int64_t)(written * 1000 / RETENTION_LINES_PER_S);
        if (now_ms() < due_ms) {
            struct timespec pause = {0, (long)(due_ms - now_ms()) * 1000000L};
            nanosleep(&pause, NULL);
        }
        int64_t at = now_ms();
        samples[sample_count].ms = at;
        samples[sample_count++].written = written_before + written;
        stock_stats stats;
        expect(stock_get_stats(store, &stats), STOCK_OK, "stats", "");
        /* Lines written before the bound's horizon must have left. */
        uint64_t old = 0;
        for (uint32_t s = 0; s < sample_count; s++)
            if (samples[s].ms < at - RETENTION_BOUND_WINDOWS * window_ms - RETENTION_BOUND_SLACK_MS)
                old = samples[s].written;
        /* + the first line, order and the lines thawed since */
        uint64_t allowed = written_before + written - old + 8;
        if (stats.lines > allowed)
            fail("%" PRIu64 " lines in memory after %" PRIu64 " written, more than the %"
                 PRIu64 " of the last %d windows and %d ms", stats.lines,
                 written_before + written, allowed, RETENTION_BOUND_WINDOWS,
                 RETENTION_BOUND_SLACK_MS);
        if (stats.lines > hot_max)
            hot_max = stats.lines;
    }
    printf("retention_check: %" PRIu64 " lines written over %d windows of %" PRId64
           " ms, at most %" PRIu64 " in memory\n", written, windows, window_ms, hot_max);
    written_before += written;
    return hot_max;
}

/* Every first entity, long cold, answers as it did. */
static void check_replays(stock_t *store, const firsts *f)
{
    char message[STOCK_MESSAGE_MAX];
    int64_t available = -1;
    expect(stock_deduct(store, "first", "S", 5, &available, message), STOCK_REPLAY,
           "deduct first again", message);
    if (available != f->line_available)
        fail("replayed deduct answered %" PRId64 ", first %" PRId64, available, f->line_available);
    expect(stock_deduct(store, "first", "S", 6, &available, message), STOCK_CONFLICT,
           "deduct first with another qty", message);
    stock_order_line lines[2] = {{stock_id_from_cstr("o1"), stock_id_from_cstr("S"), 2, 0},
                                 {stock_id_from_cstr("o2"), stock_id_from_cstr("T"), 3, 0}};
    int32_t failed;
    expect(stock_order(store, "ord1", lines, 2, &failed, message), STOCK_REPLAY,
           "order ord1 again", message);
    if (lines[0].available != f->order_available[0] || lines[1].available != f->order_available[1])
        fail("replayed order answered other levels");
    expect(stock_refund(store, "r1", "first", 1, &available, message), STOCK_REPLAY,
           "refund r1 again", message);
    if (available != f->refund_available)
        fail("replayed refund answered %" PRId64 ", first %" PRId64, available,
             f->refund_available);
    expect(stock_add(store, "S", 10, "adj1", &available, message), STOCK_REPLAY,
           "add adj1 again", message);
    if (available != f->add_available)
        fail("replayed add answered %" PRId64 ", first %" PRId64, available, f->add_available);
    expect(stock_deduct(store, "L0", "S", 1, &available, message), STOCK_REPLAY,
           "deduct L0 again", message);
    check_hold_replays(store, f);
}

static void check_counters(stock_t *store, const firsts *f, int64_t refunded)
{
    char message[STOCK_MESSAGE_MAX];
    stock_sku_info info;
    expect(stock_get(store, "S", &info, message), STOCK_OK, "get S", message);
    if (info.deducted != f->deducted || info.refunded != refunded ||
        info.adjusted != RETENTION_STOCK + 10 ||
        info.available != info.adjusted - info.deducted + info.refunded - info.held)
        fail("S: deducted %" PRId64 " (expected %" PRId64 "), refunded %" PRId64
             " (expected %" PRId64 "), adjusted %" PRId64 ", available %" PRId64,
             info.deducted, f->deducted, info.refunded, refunded, info.adjusted,
             info.available);
}

/* Refunds of cold lines work and stay capped. */
static void check_refunds(stock_t *store)
{
    char message[STOCK_MESSAGE_MAX];
    int64_t available;
    stock_line_info line;
    expect(stock_line(store, "o1", &line, message), STOCK_OK, "line o1", message);
    if (line.qty != 2 || line.refunded != 0 || strcmp(line.order_id, "ord1") != 0)
        fail("cold line o1 reads qty %" PRId64 " refunded %" PRId64 " order '%s'",
             line.qty, line.refunded, line.order_id);
    expect(stock_refund(store, "r2", "first", 4, &available, message), STOCK_OK,
           "refund r2 (the rest of first)", message);
    expect(stock_refund(store, "r3", "first", 1, &available, message), STOCK_EXCEEDS,
           "refund r3 past first's qty", message);
    expect(stock_refund(store, "r4", "L1", 2, &available, message), STOCK_EXCEEDS,
           "refund r4 past L1's qty", message);
    expect(stock_refund(store, "r4", "L1", 1, &available, message), STOCK_OK,
           "refund r4 of L1", message);
}

/* The first entities, past the horizon. */
static void check_forgotten(stock_t *store, const firsts *f)
{
    char message[STOCK_MESSAGE_MAX];
    int64_t available = 0;
    expect(stock_deduct(store, "first", "S", 5, &available, message), STOCK_REPLAY,
           "deduct forgotten first again", message);
    if (available != -1)
        fail("a forgotten deduct answered %" PRId64 ", not -1", available);
    stock_order_line lines[2] = {{stock_id_from_cstr("o1"), stock_id_from_cstr("S"), 2, 0},
                                 {stock_id_from_cstr("o2"), stock_id_from_cstr("T"), 3, 0}};
    int32_t failed;
    expect(stock_order(store, "ord1", lines, 2, &failed, message), STOCK_REPLAY,
           "order forgotten ord1 again", message);
    if (lines[0].available != -1 || lines[1].available != -1)
        fail("a forgotten order answered levels");
    expect(stock_refund(store, "r1", "first", 1, &available, message), STOCK_REPLAY,
           "refund forgotten r1 again", message);
    expect(stock_refund(store, "r9", "first", 1, &available, message), STOCK_EXCEEDS,
           "refund of forgotten first", message);
    if (strstr(message, "forgotten") == NULL)
        fail("the refund of a forgotten line says '%s'", message);
    expect(stock_add(store, "S", 10, "adj1", &available, message), STOCK_REPLAY,
           "add forgotten adj1 again", message);
    stock_line_info line;
    expect(stock_line(store, "first", &line, message), STOCK_NOT_FOUND, "line forgotten first",
           message);
    expect(stock_deduct(store, "o1", "S", 1, &available, message), STOCK_REPLAY,
           "deduct of forgotten order line o1", message);
    check_holds_forgotten(store);
    check_counters(store, f, 1);
}

/* Whether probe hold "hp<probe>" reads as forgotten. */
static bool hold_forgotten(stock_t *store, int probe)
{
    char id[16], message[STOCK_MESSAGE_MAX];
    snprintf(id, sizeof id, "hp%d", probe);
    stock_hold_info info;
    stock_code code = stock_hold_get(store, id, &info, message);
    return code == STOCK_NOT_FOUND && strstr(message, "forgotten") != NULL;
}

/* Whether line "L<probe>", of the first window, reads as forgotten. */
static bool forgotten(stock_t *store, int probe)
{
    char id[24], message[STOCK_MESSAGE_MAX];
    snprintf(id, sizeof id, "L%d", probe);
    stock_line_info line;
    stock_code code = stock_line(store, id, &line, message);
    return code == STOCK_NOT_FOUND && strstr(message, "forgotten") != NULL;
}

static int forget_main(const char *dir, int64_t window_ms, int windows, int64_t forget_ms)
{
    char uri[1024];
    snprintf(uri, sizeof uri, "file:%s/store?retention=%" PRId64 "ms&forget=%" PRId64 "ms",
             dir, window_ms, forget_ms);
    firsts f;
    stock_t *store = open_store(uri);
    make_firsts(store, &f);
    drive(store, 'L', window_ms, windows, &f);
    /* Each probe reads a line of the first window not read before (a read
     * brings a line back into memory, and into a later move). */
    int64_t start = now_ms();
    for (int probe = 0; !forgotten(store, probe); probe++) {
        if (now_ms() - start > FORGET_WAIT_MS || probe >= 'z' - 'a')
            fail("no line of the first window forgotten %d ms past the windows",
                 FORGET_WAIT_MS);
        drive(store, (char)('a' + probe), window_ms, 1, &f);
    }
    /* The holds left memory a little after the first lines (their
     * deadline is later), so they may be forgotten a move later. */
    for (int probe = 0; !hold_forgotten(store, probe); probe++) {
        if (probe >= HOLD_PROBES - 1)
            fail("no probe hold forgotten after %d more windows", HOLD_PROBES - 1);
        drive(store, (char)('A' + probe), window_ms, 1, &f);
    }
    check_forgotten(store, &f);
    expect(stock_close(store), STOCK_OK, "close", "");
    store = open_store(uri);
    check_forgotten(store, &f);
    expect(stock_close(store), STOCK_OK, "close", "");
    printf("retention_check: forgotten ids answer REPLAY -1, refunds EXCEEDS, reads NOTFOUND; forgotten holds CLOSED and NOTFOUND\n");
    return 0;
}

/* Reads SKU S, which wakes the writer for the moves due (a read thaws no
 * line), then pauses FORGET_IDLE_PAUSE_MS. */
static void read_s(stock_t *store)
{
    char message[STOCK_MESSAGE_MAX];
    stock_sku_info info;
    expect(stock_get(store, "S", &info, message), STOCK_OK, "get S", message);
    struct timespec pause = {0, FORGET_IDLE_PAUSE_MS * 1000000L};
    nanosleep(&pause, NULL);
}

static void expect_line_forgotten(stock_t *store, const char *what)
{
    char message[STOCK_MESSAGE_MAX];
    stock_line_info line;
    stock_code code = stock_line(store, "first", &line, message);
    if (code != STOCK_NOT_FOUND || strstr(message, "forgotten") == NULL)
        fail("%s: line first answers %s (%s), not NOTFOUND forgotten", what,
             stock_code_name(code), message);
}

static int forget_idle_main(const char *dir, int64_t window_ms, int64_t forget_ms)
{
    char uri[1024], message[STOCK_MESSAGE_MAX];
    snprintf(uri, sizeof uri, "file:%s/store?retention=%" PRId64 "ms&forget=%" PRId64 "ms",
             dir, window_ms, forget_ms);
    stock_t *store = open_store(uri);
    int64_t available;
    expect(stock_set(store, "S", RETENTION_STOCK, NULL, &available, message), STOCK_OK, "set S",
           message);
    expect(stock_deduct(store, "first", "S", 5, &available, message), STOCK_OK, "deduct first",
           message);
    int64_t start = now_ms();
    for (stock_stats stats; stock_get_stats(store, &stats) == STOCK_OK && stats.lines > 0;) {
        if (now_ms() - start > FORGET_WAIT_MS)
            fail("line first still in memory %d ms after it was made", FORGET_WAIT_MS);
        read_s(store);
    }
    /* Reads only: no move after this puts anything. */
    for (int64_t left = now_ms(); now_ms() - left < forget_ms + FORGET_IDLE_SLACK_MS;)
        read_s(store);
    expect_line_forgotten(store, "reads past the horizon");
    expect(stock_close(store), STOCK_OK, "close", "");
    store = open_store(uri);
    expect_line_forgotten(store, "reopened");
    expect(stock_close(store), STOCK_OK, "close", "");
    printf("retention_check: with only reads past the horizon, the line is forgotten\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--forget-idle") == 0)
        return forget_idle_main(argv[2], atoll(argv[3]), atoll(argv[4]));
    if (argc == 5)
        return forget_main(argv[1], atoll(argv[2]), atoi(argv[3]), atoll(argv[4]));
    if (argc != 4)
        fail("usage: retention_check DIR WINDOW_MS WINDOWS [FORGET_MS]\n"
             "       retention_check --forget-idle DIR WINDOW_MS FORGET_MS");
    int64_t window_ms = atoll(argv[2]);
    int windows = atoi(argv[3]);
    char uri[1024], plain[1024];
    snprintf(uri, sizeof uri, "file:%s/store?retention=%" PRId64 "ms", argv[1], window_ms);
    snprintf(plain, sizeof plain, "file:%s/store", argv[1]);
    firsts f;
    stock_t *store = open_store(uri);
    make_firsts(store, &f);
    uint64_t hot_max = drive(store, 'L', window_ms, windows, &f);
    /* Driven many windows past: most of what was written has left. */
    if (f.deducted < 3 * (int64_t)hot_max)
        fail("the store was not driven past its window: %" PRId64 " written, %" PRIu64
             " in memory at most", f.deducted, hot_max);
    check_replays(store, &f);
    check_counters(store, &f, 1);
    check_refunds(store);
    check_counters(store, &f, 1 + 4 + 1);
    /* r2 and r4 go cold too, then everything again after a reopen. */
    drive(store, 'M', window_ms, 2 * RETENTION_BOUND_WINDOWS, &f);
    expect(stock_close(store), STOCK_OK, "close", "");
    store = open_store(uri);
    check_replays(store, &f);
    check_counters(store, &f, 6);
    char message[STOCK_MESSAGE_MAX];
    int64_t available;
    expect(stock_refund(store, "r3", "first", 1, &available, message), STOCK_EXCEEDS,
           "refund r3 past first's qty, reopened", message);
    expect(stock_close(store), STOCK_OK, "close", "");
    /* Retention off: the cold store still answers for what it holds. */
    store = open_store(plain);
    check_replays(store, &f);
    check_counters(store, &f, 6);
    expect(stock_close(store), STOCK_OK, "close", "");
    printf("retention_check: cold replays, refunds and counters hold\n");
    return 0;
}
