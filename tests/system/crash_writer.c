/*
 * crash_writer.c -- the crash test of the embedded engine (tests/suites/
 * 30-crash.sh runs it).
 *
 *   crash_writer run WORKDIR ROUNDS SEED
 *       For each round: starts "crash_writer write" on WORKDIR/store, lets it
 *       run for a random 200..800 ms, kills it with SIGKILL, reopens the store
 *       and checks (1) every operation any writer ever acknowledged is there
 *       with the result it was acknowledged with, and (2) invariants I1-I5
 *       over every line ever written. Rounds alternate sync and relaxed
 *       durability (a process kill must lose nothing acknowledged in either).
 *       The snapshot threshold is tiny, so kills also land during snapshots.
 *   crash_writer write STORE ROUND SEED ACKFILE DURABILITY
 *       Deducts, orders, refunds, restocks and replays under load until
 *       killed. After each batch completes it appends one line per op to
 *       ACKFILE (one write() per batch), saying what was acknowledged.
 *
 * Line ids are L<round>.<n> with n counting up in submission order, and the
 * stock is ample, so the lines that survive a crash are exactly a prefix
 * L<round>.0 .. L<round>.<k-1> of each round: the checker finds every line
 * by scanning for that prefix.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stock.h"

#define CRASH_SKUS 8
#define CRASH_BATCH_OPS 100
#define CRASH_INFLIGHT 4
#define CRASH_ORDER_LINES 3
#define CRASH_ID_BYTES 32
#define CRASH_INITIAL_STOCK 1000000000000LL
#define CRASH_SNAPSHOT_BYTES 131072
#define CRASH_ACKED_MAX (1u << 20)
#define CRASH_ROUNDS_MAX 10000
#define CRASH_LINES_MAX (1u << 22)
#define CRASH_SCAN_BATCH 1000
#define CRASH_REPLAY_SAMPLE 50
#define CRASH_KILL_MIN_MS 200
#define CRASH_KILL_SPAN_MS 600
#define CRASH_OPEN_RETRIES 300

static void die(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));

#include <stdarg.h>
static void die(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fprintf(stderr, "crash_writer: FAIL: ");
    vfprintf(stderr, format, args);
    fprintf(stderr, "\n");
    va_end(args);
    exit(1);
}

/* The store's log hook: what recovery did after a kill (a torn tail cut)
 * goes to stderr, into the suite's log. */
static void print_message(void *user, stock_log_level level, const char *message)
{
    (void)user, (void)level;
    fprintf(stderr, "crash_writer: libstock: %s\n", message);
}

static const stock_config printing = {.log = print_message};

static uint64_t rng_next(uint64_t *state)
{
    /* splitmix64: deterministic per seed, good enough for a workload. */
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* CRASH_URI_EXTRA (e.g. "&retention=100ms", 33-retention) is appended to
 * the store URI of writers and checker alike. */
static void store_uri(char *uri, size_t size, const char *store, const char *durability)
{
    const char *extra = getenv("CRASH_URI_EXTRA");
    snprintf(uri, size, "%s?durability=%s&snapshot_log_bytes=%d%s", store, durability,
             CRASH_SNAPSHOT_BYTES, extra != NULL ? extra : "");
}

/* ============================================================== writer */

/* One batch in flight with the bytes its ids point to. */
typedef struct slot {
    stock_batch batch;
    stock_op ops[CRASH_BATCH_OPS];
    stock_order_line lines[CRASH_BATCH_OPS][CRASH_ORDER_LINES];
    char ids[CRASH_BATCH_OPS][CRASH_ORDER_LINES + 1][CRASH_ID_BYTES];
} slot;

/* A deducted line acknowledged OK, for refunds and replays. */
typedef struct acked_line {
    char id[CRASH_ID_BYTES];
    int sku;
    int64_t qty;
} acked_line;

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    slot *free_slots[CRASH_INFLIGHT];
    int free_count;
    acked_line *acked;
    size_t acked_count;
    int ack_fd;
    int round;
    uint64_t next_line, next_other;
} writer = {.mutex = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static const char *sku_name(int sku)
{
    static const char *names[CRASH_SKUS] = {"S0", "S1", "S2", "S3", "S4", "S5", "S6", "S7"};
    assert(sku >= 0 && sku < CRASH_SKUS);
    return names[sku];
}

static int sku_index(const char *name)
{
    for (int i = 0; i < CRASH_SKUS; i++)
        if (strcmp(name, sku_name(i)) == 0)
            return i;
    return -1;
}

static stock_id make_id(char *storage, const char *prefix, int round, uint64_t n,
                        const char *suffix)
{
    int len = snprintf(storage, CRASH_ID_BYTES, "%s%d.%" PRIu64 "%s", prefix, round,
                       n, suffix);
    assert(len > 0 && len < CRASH_ID_BYTES);
    return (stock_id){storage, (uint32_t)len};
}

/* Half the load goes to S0, the hot SKU. */
static int pick_sku(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    return r % 2 == 0 ? 0 : (int)(r / 2 % CRASH_SKUS);
}

static void fill_order(slot *s, int i, uint64_t *rng)
{
    stock_op *op = &s->ops[i];
    uint32_t count = 2 + (uint32_t)(rng_next(rng) % (CRASH_ORDER_LINES - 1));
    char suffix[8];
    snprintf(suffix, sizeof suffix, "x%u", count);
    op->type = STOCK_OP_ORDER;
    op->id = make_id(s->ids[i][0], "O", writer.round, writer.next_other++, suffix);
    for (uint32_t l = 0; l < count; l++) {
        stock_order_line *line = &s->lines[i][l];
        line->line_id = make_id(s->ids[i][l + 1], "L", writer.round, writer.next_line++, "");
        line->sku = stock_id_from_cstr(sku_name(pick_sku(rng)));
        line->qty = 1 + (int64_t)(rng_next(rng) % 3);
    }
    op->lines = s->lines[i];
    op->line_count = count;
}

/* A refund (kind 0) or a replay (kind 1) of an acknowledged line. */
static bool fill_from_acked(slot *s, int i, uint64_t *rng, int kind)
{
    stock_op *op = &s->ops[i];
    pthread_mutex_lock(&writer.mutex);
    size_t count = writer.acked_count;
    acked_line line = count > 0 ? writer.acked[rng_next(rng) % count] : (acked_line){0};
    pthread_mutex_unlock(&writer.mutex);
    if (count == 0)
        return false;
    memcpy(s->ids[i][1], line.id, CRASH_ID_BYTES);
    if (kind == 0) {
        op->type = STOCK_OP_REFUND;
        op->id = make_id(s->ids[i][0], "R", writer.round, writer.next_other++, "");
        op->line = stock_id_from_cstr(s->ids[i][1]);
        op->amount = 1;
    } else {
        op->type = STOCK_OP_DEDUCT;
        op->id = stock_id_from_cstr(s->ids[i][1]);
        op->sku = stock_id_from_cstr(sku_name(line.sku));
        op->amount = line.qty;
    }
    return true;
}

static void fill_op(slot *s, int i, uint64_t *rng)
{
    stock_op *op = &s->ops[i];
    memset(op, 0, sizeof *op);
    unsigned kind = (unsigned)(rng_next(rng) % 100);
    if (kind >= 70 && kind < 80) {
        fill_order(s, i, rng);
    } else if (kind >= 80 && kind < 95 && fill_from_acked(s, i, rng, kind < 90 ? 0 : 1)) {
        return;
    } else if (kind >= 95) {
        op->type = STOCK_OP_ADD;
        op->id = make_id(s->ids[i][0], "A", writer.round, writer.next_other++, "");
        op->sku = stock_id_from_cstr(sku_name(pick_sku(rng)));
        op->amount = 1 + (int64_t)(rng_next(rng) % 100);
    } else {
        op->type = STOCK_OP_DEDUCT;
        op->id = make_id(s->ids[i][0], "L", writer.round, writer.next_line++, "");
        op->sku = stock_id_from_cstr(sku_name(pick_sku(rng)));
        op->amount = 1 + (int64_t)(rng_next(rng) % 3);
    }
}

/* Appends the ack line of one op to out; remembers OK deductions. */
static size_t format_ack(const stock_op *op, char *out, size_t room)
{
    const char *code = stock_code_name(op->code);
    int n = 0;
    if (op->type == STOCK_OP_DEDUCT)
        n = snprintf(out, room, "D %.*s %.*s %" PRId64 " %s %" PRId64 "\n",
                     (int)op->id.len, op->id.ptr, (int)op->sku.len, op->sku.ptr,
                     op->amount, code, op->available);
    else if (op->type == STOCK_OP_REFUND)
        n = snprintf(out, room, "R %.*s %.*s %" PRId64 " %s\n", (int)op->id.len,
                     op->id.ptr, (int)op->line.len, op->line.ptr, op->amount, code);
    else if (op->type == STOCK_OP_ADD)
        n = snprintf(out, room, "A %.*s %s\n", (int)op->id.len, op->id.ptr, code);
    else if (op->type == STOCK_OP_ORDER) {
        n = snprintf(out, room, "O %.*s %u %s", (int)op->id.len, op->id.ptr,
                     op->line_count, code);
        for (uint32_t l = 0; l < op->line_count && n > 0 && (size_t)n < room; l++) {
            const stock_order_line *line = &op->lines[l];
            n += snprintf(out + n, room - (size_t)n, " %.*s %.*s %" PRId64 " %" PRId64,
                          (int)line->line_id.len, line->line_id.ptr, (int)line->sku.len,
                          line->sku.ptr, line->qty, line->available);
        }
        if (n > 0 && (size_t)n < room)
            n += snprintf(out + n, room - (size_t)n, "\n");
    }
    if (n <= 0 || (size_t)n >= room)
        die("ack line does not fit");
    return (size_t)n;
}

static void remember_line(const stock_op *op)
{
    if (op->type != STOCK_OP_DEDUCT || op->code != STOCK_OK ||
        writer.acked_count == CRASH_ACKED_MAX)
        return;
    acked_line *line = &writer.acked[writer.acked_count++];
    snprintf(line->id, sizeof line->id, "%.*s", (int)op->id.len, op->id.ptr);
    line->sku = op->sku.ptr[1] - '0';
    line->qty = op->amount;
}

/* Batch completion: the ops are acknowledged, so log them, one write(). */
static void writer_done(stock_batch *batch)
{
    static char text[CRASH_BATCH_OPS * 512];
    slot *s = batch->user;
    size_t len = 0;
    pthread_mutex_lock(&writer.mutex);
    for (size_t i = 0; i < batch->count; i++) {
        len += format_ack(&s->ops[i], text + len, sizeof text - len);
        remember_line(&s->ops[i]);
    }
    if (write(writer.ack_fd, text, len) != (ssize_t)len)
        die("writing the ack file: %s", strerror(errno));
    writer.free_slots[writer.free_count++] = s;
    pthread_cond_signal(&writer.cond);
    pthread_mutex_unlock(&writer.mutex);
}

static void writer_setup(stock_t *store)
{
    for (int i = 0; i < CRASH_SKUS; i++) {
        stock_code code = stock_get(store, sku_name(i), NULL, NULL);
        if (code == STOCK_NOT_FOUND)
            code = stock_set(store, sku_name(i), CRASH_INITIAL_STOCK, NULL, NULL, NULL);
        if (code != STOCK_OK)
            die("setting up %s: %s", sku_name(i), stock_code_name(code));
    }
}

static int writer_main(const char *store_path, int round, uint64_t seed,
                       const char *ack_file, const char *durability)
{
    char uri[1024], message[STOCK_MESSAGE_MAX];
    store_uri(uri, sizeof uri, store_path, durability);
    writer.round = round;
    writer.acked = calloc(CRASH_ACKED_MAX, sizeof *writer.acked);
    writer.ack_fd = open(ack_file, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0644);
    slot *slots = calloc(CRASH_INFLIGHT, sizeof *slots);
    if (writer.acked == NULL || slots == NULL || writer.ack_fd < 0)
        die("writer setup: %s", strerror(errno));
    stock_t *store;
    if (stock_open(uri, &printing, &store, message) != STOCK_OK)
        die("writer open %s: %s", uri, message);
    writer_setup(store);
    for (int i = 0; i < CRASH_INFLIGHT; i++)
        writer.free_slots[writer.free_count++] = &slots[i];
    uint64_t rng = seed;
    for (;;) {   /* until SIGKILL */
        pthread_mutex_lock(&writer.mutex);
        while (writer.free_count == 0)
            pthread_cond_wait(&writer.cond, &writer.mutex);
        slot *s = writer.free_slots[--writer.free_count];
        pthread_mutex_unlock(&writer.mutex);
        for (int i = 0; i < CRASH_BATCH_OPS; i++)
            fill_op(s, i, &rng);
        s->batch = (stock_batch){.ops = s->ops, .count = CRASH_BATCH_OPS,
                                 .done = writer_done, .user = s};
        stock_submit(store, &s->batch);
    }
}

/* ============================================================= checker */

/* What the checker found of one line. */
typedef struct found_line {
    int64_t available_after;
    int64_t refunded;
    int64_t acked_refunds;
    uint32_t qty;
    int sku;
    char order_id[CRASH_ID_BYTES];
} found_line;

typedef struct round_lines {
    found_line *lines;
    size_t count;
} round_lines;

typedef struct checker {
    stock_t *store;
    int rounds;
    round_lines found[CRASH_ROUNDS_MAX];
    int64_t deducted[CRASH_SKUS];
    int64_t refunded[CRASH_SKUS];
    size_t total_lines, acked_ops;
    int killed_in_snapshot;   /* rounds killed while a snapshot was written */
} checker;

static void keep_line(checker *c, int round, const stock_line_info *info)
{
    round_lines *found = &c->found[round];
    if (found->count % 4096 == 0) {
        found->lines = realloc(found->lines, (found->count + 4096) * sizeof *found->lines);
        if (found->lines == NULL)
            die("out of memory");
    }
    found_line *line = &found->lines[found->count++];
    memset(line, 0, sizeof *line);
    line->available_after = info->available_after;
    line->refunded = info->refunded;
    line->qty = (uint32_t)info->qty;
    line->sku = sku_index(info->sku);
    snprintf(line->order_id, sizeof line->order_id, "%s", info->order_id);
    if (line->sku < 0 || info->refunded < 0 || info->refunded > info->qty)
        die("line L%d.%zu: sku %s qty %" PRId64 " refunded %" PRId64 " (I5)", round,
            found->count - 1, info->sku, info->qty, info->refunded);
    c->deducted[line->sku] += info->qty;
    c->refunded[line->sku] += info->refunded;
}

/* Reads L<round>.0, L<round>.1, ... until the first missing one, in
 * batches, and checks that nothing after it in the batch exists. */
static void scan_round(checker *c, int round)
{
    static stock_op ops[CRASH_SCAN_BATCH];
    static char ids[CRASH_SCAN_BATCH][CRASH_ID_BYTES];
    for (uint64_t base = 0;; base += CRASH_SCAN_BATCH) {
        for (int i = 0; i < CRASH_SCAN_BATCH; i++) {
            memset(&ops[i], 0, sizeof ops[i]);
            ops[i].type = STOCK_OP_LINE;
            ops[i].line = make_id(ids[i], "L", round, base + (uint64_t)i, "");
        }
        if (stock_execute(c->store, ops, CRASH_SCAN_BATCH) != STOCK_OK)
            die("scan batch refused");
        bool missing = false;
        for (int i = 0; i < CRASH_SCAN_BATCH; i++) {
            if (ops[i].code == STOCK_OK && missing)
                die("line %s exists after a missing one: lost a write in the middle", ids[i]);
            if (ops[i].code == STOCK_OK)
                keep_line(c, round, &ops[i].info.line_info);
            else if (ops[i].code == STOCK_NOT_FOUND)
                missing = true;
            else
                die("line %s: %s %s", ids[i], stock_code_name(ops[i].code), ops[i].message);
        }
        if (missing)
            return;
    }
}

/* The line an id "L<round>.<n>" names, or die: the ack says it exists. */
static found_line *acked_line_of(checker *c, const char *id, const char *what)
{
    int round;
    unsigned long long n;
    if (sscanf(id, "L%d.%llu", &round, &n) != 2 || round < 0 || round >= c->rounds)
        die("bad line id %s in an ack file", id);
    if (n >= c->found[round].count)
        die("%s: acknowledged line %s is missing after the crash (I6)", what, id);
    return &c->found[round].lines[n];
}

static void check_line(found_line *line, const char *id, const char *sku,
                       int64_t qty, int64_t available, const char *order)
{
    if (line->sku != sku_index(sku) || line->qty != (uint32_t)qty ||
        line->available_after != available || strcmp(line->order_id, order) != 0)
        die("line %s differs from its acknowledgement: sku %s qty %" PRId64
            " available %" PRId64 " order '%s'", id, sku, qty, available, order);
}

static void check_order_ack(checker *c, char *rest)
{
    char order[CRASH_ID_BYTES], code[16];
    unsigned count;
    int used = 0;
    if (sscanf(rest, "%31s %u %15s%n", order, &count, code, &used) != 3)
        die("bad order ack: %s", rest);
    if (strcmp(code, "OK") != 0)
        die("order %s was answered %s (stock is ample)", order, code);
    char *p = rest + used;
    for (unsigned l = 0; l < count; l++) {
        char id[CRASH_ID_BYTES], sku[CRASH_ID_BYTES];
        long long qty, available;
        if (sscanf(p, " %31s %31s %lld %lld%n", id, sku, &qty, &available, &used) != 4)
            die("bad order ack line: %s", rest);
        p += used;
        check_line(acked_line_of(c, id, "order"), id, sku, qty, available, order);
    }
}

static void check_ack(checker *c, char *text)
{
    char id[CRASH_ID_BYTES], other[CRASH_ID_BYTES], code[16];
    long long qty, available;
    c->acked_ops++;
    if (text[0] == 'D' && sscanf(text + 2, "%31s %31s %lld %15s %lld", id, other, &qty,
                                 code, &available) == 5) {
        if (strcmp(code, "OK") != 0 && strcmp(code, "REPLAY") != 0)
            die("deduct %s was answered %s (stock is ample)", id, code);
        check_line(acked_line_of(c, id, "deduct"), id, other, qty, available, "");
    } else if (text[0] == 'R' && sscanf(text + 2, "%31s %31s %lld %15s", other, id,
                                        &qty, code) == 4) {
        if (strcmp(code, "OK") == 0)
            acked_line_of(c, id, "refund")->acked_refunds += qty;
        else if (strcmp(code, "EXCEEDS") != 0)
            die("refund %s was answered %s", other, code);
    } else if (text[0] == 'O') {
        check_order_ack(c, text + 2);
    } else if (text[0] != 'A') {
        die("bad ack line: %s", text);
    }
}

/* Every complete line of an ack file (a kill may cut the last one). */
static void check_ack_file(checker *c, const char *path)
{
    FILE *file = fopen(path, "r");
    if (file == NULL)
        return;   /* the writer was killed before it opened it */
    static char text[CRASH_BATCH_OPS * 512];
    while (fgets(text, sizeof text, file) != NULL)
        if (strchr(text, '\n') != NULL)
            check_ack(c, text);
    fclose(file);
}

/* I1, I2, conservation of the line totals, I5 against acked refunds. */
static void check_skus(checker *c)
{
    for (int i = 0; i < CRASH_SKUS; i++) {
        stock_sku_info info;
        if (stock_get(c->store, sku_name(i), &info, NULL) != STOCK_OK)
            continue;   /* the first writer was killed before setting it */
        if (info.available < 0)
            die("%s: available %" PRId64 " < 0 (I1)", sku_name(i), info.available);
        if (info.available != info.adjusted - info.deducted + info.refunded)
            die("%s: available %" PRId64 " != adjusted %" PRId64 " - deducted %" PRId64
                " + refunded %" PRId64 " (I2)", sku_name(i), info.available,
                info.adjusted, info.deducted, info.refunded);
        if (info.deducted != c->deducted[i] || info.refunded != c->refunded[i])
            die("%s: deducted %" PRId64 " refunded %" PRId64 " but its lines sum to %"
                PRId64 " and %" PRId64, sku_name(i), info.deducted, info.refunded,
                c->deducted[i], c->refunded[i]);
    }
    for (int r = 0; r < c->rounds; r++)
        for (size_t n = 0; n < c->found[r].count; n++)
            if (c->found[r].lines[n].refunded < c->found[r].lines[n].acked_refunds)
                die("line L%d.%zu: refunded %" PRId64 " < acknowledged refunds %" PRId64,
                    r, n, c->found[r].lines[n].refunded, c->found[r].lines[n].acked_refunds);
}

/* I3: an order's lines are consecutive and all there ("O..x<count>"). */
static void check_orders(checker *c)
{
    for (int r = 0; r < c->rounds; r++) {
        const round_lines *found = &c->found[r];
        for (size_t n = 0; n < found->count;) {
            const char *order = found->lines[n].order_id;
            size_t run = 1;
            while (n + run < found->count && order[0] != '\0' &&
                   strcmp(found->lines[n + run].order_id, order) == 0)
                run++;
            const char *x = strrchr(order, 'x');
            if (order[0] != '\0' && (x == NULL || strtoul(x + 1, NULL, 10) != run))
                die("order %s has %zu of its lines (I3)", order, run);
            n += run;
        }
    }
}

/* I4 after recovery: replaying acknowledged deductions changes nothing. */
static void check_replays(checker *c, int round)
{
    const round_lines *found = &c->found[round];
    static stock_op ops[CRASH_REPLAY_SAMPLE];
    static char ids[CRASH_REPLAY_SAMPLE][CRASH_ID_BYTES];
    size_t count = 0;
    for (size_t n = found->count; n-- > 0 && count < CRASH_REPLAY_SAMPLE;) {
        if (found->lines[n].order_id[0] != '\0')
            continue;
        memset(&ops[count], 0, sizeof ops[count]);
        ops[count].type = STOCK_OP_DEDUCT;
        ops[count].id = make_id(ids[count], "L", round, n, "");
        ops[count].sku = stock_id_from_cstr(sku_name(found->lines[n].sku));
        ops[count].amount = found->lines[n].qty;
        ops[count].expect = found->lines[n].available_after;   /* kept for the check */
        count++;
    }
    if (count > 0 && stock_execute(c->store, ops, count) != STOCK_OK)
        die("replay batch refused");
    for (size_t i = 0; i < count; i++)
        if (ops[i].code != STOCK_REPLAY || ops[i].available != ops[i].expect)
            die("retry of %s answered %s available %" PRId64 ", not REPLAY %" PRId64 " (I4)",
                ids[i], stock_code_name(ops[i].code), ops[i].available, ops[i].expect);
}

/* A snap-*.tmp left behind means the kill landed during a snapshot. */
static bool snapshot_was_running(const char *store_path)
{
    DIR *dir = opendir(store_path);
    bool found = false;
    struct dirent *entry;
    while (dir != NULL && (entry = readdir(dir)) != NULL)
        found |= strncmp(entry->d_name, "snap-", 5) == 0 &&
                 strstr(entry->d_name, ".tmp") != NULL;
    if (dir != NULL)
        closedir(dir);
    return found;
}

static stock_t *open_for_check(const char *store_path)
{
    char uri[1024], message[STOCK_MESSAGE_MAX];
    store_uri(uri, sizeof uri, store_path, "sync");
    /* The killed writer's snapshot child may hold the lock for a moment
     * before PR_SET_PDEATHSIG takes it down. */
    for (int attempt = 0; attempt < CRASH_OPEN_RETRIES; attempt++) {
        stock_t *store;
        stock_code code = stock_open(uri, &printing, &store, message);
        if (code == STOCK_OK)
            return store;
        if (code != STOCK_UNAVAILABLE)
            die("reopen after the crash: %s: %s", stock_code_name(code), message);
        usleep(10000);
    }
    die("reopen after the crash: %s", message);
}

static void check_store(checker *c, const char *workdir, const char *store_path)
{
    memset(c->deducted, 0, sizeof c->deducted);
    memset(c->refunded, 0, sizeof c->refunded);
    c->acked_ops = c->total_lines = 0;
    if (snapshot_was_running(store_path)) {
        c->killed_in_snapshot++;
        printf("  the kill landed while a snapshot was being written\n");
    }
    c->store = open_for_check(store_path);
    for (int r = 0; r < c->rounds; r++) {
        c->found[r].count = 0;
        scan_round(c, r);
        c->total_lines += c->found[r].count;
    }
    for (int r = 0; r < c->rounds; r++) {
        char path[600];
        snprintf(path, sizeof path, "%s/acks-%d.txt", workdir, r);
        check_ack_file(c, path);
    }
    check_skus(c);
    check_orders(c);
    check_replays(c, c->rounds - 1);
    stock_stats stats;
    stock_get_stats(c->store, &stats);
    if (stock_close(c->store) != STOCK_OK)
        die("close after the check failed");
    printf("  %zu lines, %zu acknowledged ops verified, %" PRIu64 " bytes of log\n",
           c->total_lines, c->acked_ops, stats.log_bytes);
}

/* Starts a writer for round, kills it after a random delay. */
static void run_writer(const char *self, const char *store_path, const char *workdir,
                       int round, uint64_t *rng)
{
    char round_text[16], seed_text[32], ack[600];
    const char *durability = round % 2 == 0 ? "sync" : "relaxed";
    snprintf(round_text, sizeof round_text, "%d", round);
    snprintf(seed_text, sizeof seed_text, "%" PRIu64, rng_next(rng));
    snprintf(ack, sizeof ack, "%s/acks-%d.txt", workdir, round);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        execl(self, self, "write", store_path, round_text, seed_text, ack, durability,
              (char *)NULL);
        _exit(127);
    }
    unsigned delay_ms = CRASH_KILL_MIN_MS + (unsigned)(rng_next(rng) % CRASH_KILL_SPAN_MS);
    usleep(delay_ms * 1000);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFSIGNALED(status))
        die("round %d: the writer ended by itself (status %d)", round, status);
    printf("round %d (%s): killed after %u ms\n", round, durability, delay_ms);
}

static int run_main(const char *self, const char *workdir, int rounds, uint64_t seed)
{
    if (rounds < 1 || rounds > CRASH_ROUNDS_MAX)
        die("rounds must be 1..%d", CRASH_ROUNDS_MAX);
    char store_path[600];
    snprintf(store_path, sizeof store_path, "%s/store", workdir);
    checker *c = calloc(1, sizeof *c);
    if (c == NULL)
        die("out of memory");
    uint64_t rng = seed;
    for (int round = 0; round < rounds; round++) {
        run_writer(self, store_path, workdir, round, &rng);
        c->rounds = round + 1;
        check_store(c, workdir, store_path);
    }
    for (int r = 0; r < rounds; r++)
        free(c->found[r].lines);
    printf("crash test: %d rounds passed (seed %" PRIu64 "), %d killed mid-snapshot\n",
           rounds, seed, c->killed_in_snapshot);
    free(c);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 5 && strcmp(argv[1], "run") == 0)
        return run_main("/proc/self/exe", argv[2], atoi(argv[3]),
                        strtoull(argv[4], NULL, 10));
    if (argc == 7 && strcmp(argv[1], "write") == 0)
        return writer_main(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10),
                           argv[5], argv[6]);
    fprintf(stderr, "usage: crash_writer run WORKDIR ROUNDS SEED\n"
                    "       crash_writer write STORE ROUND SEED ACKFILE DURABILITY\n");
    return 2;
}
