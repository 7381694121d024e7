/*
 * hold_crash.c -- kill -9 under a load of holds with short TTLs (run by
 * tests/suites/32-holds-crash.sh).
 *
 *   hold_crash write DIR ROUND SEED   holds, confirms and releases on the
 *                                     embedded store at DIR until killed,
 *                                     printing each attempt before it and
 *                                     each answer after it (flushed)
 *   hold_crash check DIR ACKS         reopens DIR and checks it against the
 *                                     lines a writer printed
 *
 * The check, on every hold a writer attempted:
 *   - an acknowledged hold exists; an acknowledged confirm left it
 *     CONFIRMED with its line, an acknowledged release RELEASED, a confirm
 *     or release answered EXPIRED left it EXPIRED;
 *   - no hold is both expired and confirmed: a line exists exactly for the
 *     CONFIRMED ones, and a CONFIRMED hold's confirmed qty is its line's;
 *   - each SKU's held units are the sum of its HELD holds, and I2 holds,
 *     read in one batch (one instant of the store);
 *   - once every deadline has passed, no hold is HELD, no SKU holds a unit,
 *     and the store counted one expiry for each hold HELD when it reopened
 *     (recovery refuses a log that expires a hold twice, so a reopen after
 *     that proves the log has one expiry per hold).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stock.h"

#define SKUS 4
#define SKU_LEVEL 1000000
#define TTL_MS_MAX 200
#define IDLE_EXPIRY_WAIT_MS 2000
#define HOLDS_MAX 200000
#define ID_BYTES 32

static void die(const char *what, stock_code code, const char *message)
{
    fprintf(stderr, "hold_crash: %s: %s %s\n", what, stock_code_name(code), message);
    exit(1);
}

/* HOLD_CRASH_URI (e.g. "?retention=100ms", 33-retention) is appended to
 * the folder's URI, for writers and checker alike. */
static stock_t *open_store(const char *dir)
{
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX];
    char uri[1024];
    const char *extra = getenv("HOLD_CRASH_URI");
    snprintf(uri, sizeof uri, "file:%s%s", dir, extra != NULL ? extra : "");
    stock_code code = stock_open(uri, NULL, &store, message);
    if (code != STOCK_OK)
        die("open", code, message);
    return store;
}

static void sku_name(int i, char out[ID_BYTES])
{
    snprintf(out, ID_BYTES, "S%d", i);
}

/* ----------------------------------------------------------------- write */

static uint64_t rng_state;

static uint32_t rng(uint32_t bound)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % bound);
}

/* Runs until killed. */
_Noreturn static void write_loop(const char *dir, int round, uint64_t seed)
{
    stock_t *store = open_store(dir);
    rng_state = seed | 1;
    char sku[ID_BYTES], id[ID_BYTES], message[STOCK_MESSAGE_MAX];
    for (int i = 0; i < SKUS; i++) {
        sku_name(i, sku);
        if (stock_get(store, sku, NULL, NULL) == STOCK_NOT_FOUND)
            stock_set(store, sku, SKU_LEVEL, NULL, NULL, NULL);
    }
    for (int n = 0;; n++) {
        uint32_t dice = rng(10);
        if (dice < 5 || n < 4) {
            int s = (int)rng(SKUS);
            int64_t qty = 1 + rng(3), ttl = 1 + rng(TTL_MS_MAX);
            snprintf(id, sizeof id, "H%d-%d", round, n);
            sku_name(s, sku);
            printf("attempt %s %s %" PRId64 "\n", id, sku, qty);
            fflush(stdout);
            stock_code code = stock_hold(store, id, sku, qty, ttl, NULL, message);
            printf("hold %s %s\n", id, stock_code_name(code));
        } else {
            snprintf(id, sizeof id, "H%d-%u", round, rng((uint32_t)n));
            bool confirm = dice < 8;
            stock_code code = confirm ? stock_confirm(store, id, 0, NULL, message)
                                      : stock_release(store, id, NULL, message);
            printf("%s %s %s\n", confirm ? "confirm" : "release", id, stock_code_name(code));
        }
        fflush(stdout);
    }
}

/* ----------------------------------------------------------------- check */

typedef struct known_hold {
    char id[ID_BYTES];
    char sku[ID_BYTES];
    int64_t qty;
    stock_code hold, confirm, release;   /* answers seen; STOCK_CODE_COUNT: none */
    stock_hold_state state;              /* as read */
} known_hold;

static known_hold holds[HOLDS_MAX];
static int hold_count;

static stock_code code_of(const char *word)
{
    for (int code = 0; code < STOCK_CODE_COUNT; code++)
        if (strcmp(word, stock_code_name((stock_code)code)) == 0)
            return (stock_code)code;
    return STOCK_CODE_COUNT;
}

static known_hold *find(const char *id)
{
    for (int i = hold_count - 1; i >= 0; i--)
        if (strcmp(holds[i].id, id) == 0)
            return &holds[i];
    return NULL;
}

/* Reads a writer's lines; a last line cut by the kill is ignored. */
static void read_acks(const char *path)
{
    FILE *in = fopen(path, "r");
    if (in == NULL) {
        perror(path);
        exit(1);
    }
    char kind[16], id[ID_BYTES], word[ID_BYTES];
    int64_t qty;
    char line[256];
    while (fgets(line, sizeof line, in) != NULL) {
        if (line[strlen(line) - 1] != '\n')
            break;
        if (sscanf(line, "attempt %31s %31s %" SCNd64, id, word, &qty) == 3) {
            if (hold_count == HOLDS_MAX)
                die("too many holds", STOCK_NOMEM, "");
            known_hold *h = &holds[hold_count++];
            *h = (known_hold){.qty = qty, .hold = STOCK_CODE_COUNT,
                              .confirm = STOCK_CODE_COUNT, .release = STOCK_CODE_COUNT};
            snprintf(h->id, sizeof h->id, "%s", id);
            snprintf(h->sku, sizeof h->sku, "%s", word);
        } else if (sscanf(line, "%15s %31s %31s", kind, id, word) == 3) {
            known_hold *h = find(id);
            if (h == NULL)
                continue;   /* a confirm or release of an id never held */
            stock_code code = code_of(word);
            if (strcmp(kind, "hold") == 0)
                h->hold = code;
            else if (strcmp(kind, "confirm") == 0 && h->confirm != STOCK_OK)
                h->confirm = code;
            else if (strcmp(kind, "release") == 0 && h->release != STOCK_OK)
                h->release = code;
        }
    }
    fclose(in);
}

static int failures;

static void bad(const known_hold *h, const char *what)
{
    fprintf(stderr, "hold_crash: hold %s (%s qty %" PRId64 "): %s\n", h->id, h->sku,
            h->qty, what);
    failures++;
}

/* Checks one hold, as read, against what the writer was told; records its
 * state. */
static void check_hold(stock_t *store, known_hold *h, const stock_op *read)
{
    const stock_hold_info info = read->info.hold_info;
    h->state = 0;
    if (read->code == STOCK_NOT_FOUND) {
        if (stock_code_succeeded(h->hold))
            bad(h, "acknowledged, and lost");
        return;
    }
    if (read->code != STOCK_OK)
        die("hold_get", read->code, h->id);
    h->state = info.state;
    stock_line_info line;
    bool has_line = stock_line(store, h->id, &line, NULL) == STOCK_OK;
    if (has_line != (info.state == STOCK_HOLD_CONFIRMED))
        bad(h, "a line exists for a hold that is not confirmed, or none for a confirmed one");
    if (has_line && line.qty != info.confirmed)
        bad(h, "its line's qty is not the confirmed qty");
    if (stock_code_succeeded(h->confirm) && info.state != STOCK_HOLD_CONFIRMED)
        bad(h, "an acknowledged confirm was lost");
    if (stock_code_succeeded(h->release) && info.state != STOCK_HOLD_RELEASED)
        bad(h, "an acknowledged release was lost");
    if ((h->confirm == STOCK_EXPIRED || h->release == STOCK_EXPIRED) &&
        info.state != STOCK_HOLD_EXPIRED)
        bad(h, "answered EXPIRED, but is not expired");
}

/* Each SKU's held units are the sum of its HELD holds, and I2 holds. */
static void check_skus(const stock_op *reads, bool none_held)
{
    for (int s = 0; s < SKUS; s++) {
        char sku[ID_BYTES];
        sku_name(s, sku);
        stock_sku_info info = reads[s].info.sku_info;
        if (reads[s].code != STOCK_OK)
            continue;   /* the writer died before setting it */
        int64_t held = 0;
        for (int i = 0; i < hold_count; i++)
            if (holds[i].state == STOCK_HOLD_HELD && strcmp(holds[i].sku, sku) == 0)
                held += holds[i].qty;
        if (info.held != held || (none_held && held != 0)) {
            fprintf(stderr, "hold_crash: sku %s holds %" PRId64 ", its HELD holds %" PRId64 "\n",
                    sku, info.held, held);
            failures++;
        }
        if (info.available < 0 ||
            info.available + info.held != info.adjusted - info.deducted + info.refunded) {
            fprintf(stderr, "hold_crash: sku %s breaks I1/I2\n", sku);
            failures++;
        }
    }
}

static stock_op reads[HOLDS_MAX + SKUS];
static char sku_names[SKUS][ID_BYTES];

/* Every hold and SKU read in one batch: one instant of the store. */
static void check_all(stock_t *store, bool none_held)
{
    for (int i = 0; i < hold_count; i++)
        reads[i] = (stock_op){.type = STOCK_OP_HOLD_GET,
                              .id = stock_id_from_cstr(holds[i].id)};
    for (int s = 0; s < SKUS; s++) {
        sku_name(s, sku_names[s]);
        reads[hold_count + s] = (stock_op){.type = STOCK_OP_GET,
                                           .sku = stock_id_from_cstr(sku_names[s])};
    }
    if (stock_execute(store, reads, (size_t)hold_count + SKUS) != STOCK_OK)
        die("execute", STOCK_INVALID, "the reads");
    for (int i = 0; i < hold_count; i++) {
        check_hold(store, &holds[i], &reads[i]);
        if (none_held && holds[i].state == STOCK_HOLD_HELD)
            bad(&holds[i], "still held after its deadline");
    }
    check_skus(reads + hold_count, none_held);
}

static int check(const char *dir, const char *acks)
{
    read_acks(acks);
    stock_t *store = open_store(dir);
    /* The writer may have expired some already: the holds HELD when the
     * recovery ended are those still held plus those it expired since. The
     * counters are published one by one, so read until two reads agree. */
    stock_stats opened, again;
    stock_get_stats(store, &again);
    do {
        opened = again;
        usleep(1000);
        stock_get_stats(store, &again);
    } while (again.holds_outstanding != opened.holds_outstanding ||
             again.hold_expiries != opened.hold_expiries);
    uint64_t held_at_open = opened.holds_outstanding + opened.hold_expiries;
    check_all(store, false);
    /* Past every deadline: the store expires each HELD hold once, on its
     * own (reading the counters touches no hold), within its writer's
     * wake-up; IDLE_EXPIRY_WAIT_MS allows for a loaded machine. */
    usleep(TTL_MS_MAX * 1000);
    stock_stats stats;
    stock_get_stats(store, &stats);
    for (int waited = 0; stats.holds_outstanding != 0 && waited < IDLE_EXPIRY_WAIT_MS;
         waited += 10) {
        usleep(10 * 1000);
        stock_get_stats(store, &stats);
    }
    if (stats.holds_outstanding != 0) {
        fprintf(stderr, "hold_crash: %" PRIu64 " holds outlived their deadline on an idle "
                "store\n", stats.holds_outstanding);
        failures++;
    }
    check_all(store, true);
    stock_get_stats(store, &stats);
    if (stats.hold_expiries != held_at_open || stats.holds_outstanding != 0 ||
        stats.held_units != 0) {
        fprintf(stderr, "hold_crash: %" PRIu64 " holds were held at the reopen, the store "
                "counted %" PRIu64 " expiries, %" PRIu64 " are still held\n",
                held_at_open, stats.hold_expiries, stats.holds_outstanding);
        failures++;
    }
    if (stock_close(store) != STOCK_OK)
        die("close", STOCK_IO, "");
    /* Reopened, the log replays (no hold expired twice) and nothing is due. */
    store = open_store(dir);
    stock_get_stats(store, &stats);
    if (stats.holds_outstanding != 0 || stats.held_units != 0) {
        fprintf(stderr, "hold_crash: the second reopen finds holds held\n");
        failures++;
    }
    stock_close(store);
    printf("hold_crash: %d holds attempted, %" PRIu64 " held at the reopen and expired "
           "once; %d failures\n", hold_count, held_at_open, failures);
    return failures == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "write") == 0)
        write_loop(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "check") == 0)
        return check(argv[2], argv[3]);
    fprintf(stderr, "usage: hold_crash write DIR ROUND SEED | check DIR ACKS\n");
    return 2;
}
