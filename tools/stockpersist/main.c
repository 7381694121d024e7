/*
 * main.c -- stockpersist's entry: the command line, then cycles until
 * SIGINT or SIGTERM (or, with --drain, until every outbox is empty): list
 * the streams, hold their leases, read records, apply them to PostgreSQL in
 * one transaction, and only after its COMMIT acknowledge and delete them in
 * Redis. A lost link is logged and retried; no record is acknowledged that
 * was not committed, so a kill -9 at any point loses nothing, and a record
 * applied twice changes nothing (apply.c).
 *
 * It is a program of its own, like stockintake: it can be killed, restarted
 * and run several times over without touching the stores' servers.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/uri.h"
#include "persist.h"
#include "stock.h"

#define IDLE_SLEEP_MS 20            /* a cycle that found nothing waits this long */
#define RETRY_SLEEP_MS 500          /* after a failure */

static volatile sig_atomic_t stop_asked;

static void on_signal(int signal_number)
{
    (void)signal_number;
    stop_asked = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
        "usage: stockpersist --redis URI --postgres URI [options]\n\n"
        "Moves the redis store's outbox (every change's flow record) into a PostgreSQL\n"
        "database in the postgres backend's schema (docs/persister.md).\n\n"
        "  --redis URI        the redis store: redis://... (its prefix and password)\n"
        "  --postgres URI     the database: a libpq URI, postgres://...\n"
        "  --group NAME       the streams' consumer group (default stockpersist)\n"
        "  --name NAME        this persister's consumer and lease name\n"
        "                     (default <host>-<pid>)\n"
        "  --batch N          records read per stream per cycle, 1..%d (default 2048)\n"
        "  --lease-ms N       a stream's lease, 100..%d ms (default 5000): another\n"
        "                     persister takes a stream over this long after its holder died\n"
        "  --stats-s N        a stats line every N s, 0..%d (default 10; 0: none)\n"
        "  --drain            exit 0 once every outbox stream is empty\n"
        "  --warm             load every SKU of the database (with its lines, refunds\n"
        "                     and adjustments) into Redis where Redis does not hold it,\n"
        "                     then exit (0: done)\n"
        "  --help, -h         this text\n"
        "  --version          the version\n\n"
        "Stats lines (stderr): applied records, their rate, lag_records (records not yet\n"
        "persisted) and lag_ms (the age of the oldest).\n"
        "Exit status: 0 after SIGINT, SIGTERM, --drain or --warm; 1 when --warm failed;\n"
        "2 on a usage error.\n",
        PERSIST_BATCH_MAX, PERSIST_LEASE_MS_MAX, PERSIST_STATS_S_MAX);
}

static bool parse_count(const char *text, const char *name, uint32_t min, uint32_t max,
                        uint32_t *value)
{
    uint64_t parsed = 0;
    if (!uri_parse_uint(text, strlen(text), min, max, &parsed)) {
        fprintf(stderr, "stockpersist: %s must be an integer %u..%u, not '%s'\n", name,
                (unsigned)min, (unsigned)max, text);
        return false;
    }
    *value = (uint32_t)parsed;
    return true;
}

static bool parse_name(const char *text, const char *option, char *out)
{
    size_t len = strlen(text);
    if (len == 0 || len > PERSIST_NAME_MAX || strpbrk(text, " \t\r\n") != NULL) {
        fprintf(stderr, "stockpersist: %s must be 1..%d bytes without spaces\n", option,
                PERSIST_NAME_MAX);
        return false;
    }
    memcpy(out, text, len + 1);
    return true;
}

/* Returns -1 when the options are good, else the exit status. */
static int parse_options(int argc, char **argv, persist_options *options)
{
    static const struct option long_options[] = {
        {"redis", required_argument, NULL, 'r'}, {"postgres", required_argument, NULL, 'p'},
        {"group", required_argument, NULL, 'g'}, {"name", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'}, {"lease-ms", required_argument, NULL, 'l'},
        {"stats-s", required_argument, NULL, 's'}, {"drain", no_argument, NULL, 'd'},
        {"warm", no_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    int option;
    bool ok = true;
    while (ok && (option = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (option) {
        case 'r': options->redis_uri = optarg; break;
        case 'p': options->postgres_uri = optarg; break;
        case 'g': ok = parse_name(optarg, "--group", options->group); break;
        case 'n': ok = parse_name(optarg, "--name", options->name); break;
        case 'b': ok = parse_count(optarg, "--batch", 1, PERSIST_BATCH_MAX, &options->batch); break;
        case 'l':
            ok = parse_count(optarg, "--lease-ms", 100, PERSIST_LEASE_MS_MAX, &options->lease_ms);
            break;
        case 's':
            ok = parse_count(optarg, "--stats-s", 0, PERSIST_STATS_S_MAX, &options->stats_s);
            break;
        case 'd': options->drain = true; break;
        case 'w': options->warm = true; break;
        case 'h': usage(stdout); return 0;
        case 'v': printf("stockpersist %s\n", stock_version()); return 0;
        default: ok = false; break;
        }
    }
    if (ok && (optind != argc || options->redis_uri == NULL || options->postgres_uri == NULL)) {
        fprintf(stderr, "stockpersist: %s\n", optind != argc ? "unexpected arguments"
                                                             : "--redis and --postgres are required");
        ok = false;
    }
    if (!ok)
        fprintf(stderr, "see stockpersist --help\n");
    return ok ? -1 : 2;
}

static void sleep_ms(int ms)
{
    struct timespec pause = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

/* One stats line: totals, the rate since the last line, and the lag. */
static void stats_line(persister *p, const char *when, uint64_t *last_applied, int64_t *last_ms)
{
    uint64_t records = 0;
    int64_t age_ms = 0;
    bool lag = p->redis != NULL && outbox_lag(p, &records, &age_ms);
    int64_t now = outbox_now_ms();
    double seconds = (double)(now - *last_ms) / 1000.0;
    uint32_t owned = 0;
    for (uint32_t i = 0; i < p->stream_count; i++)
        owned += p->streams[i].owned;
    fprintf(stderr, "stockpersist: %s applied=%" PRIu64 " read=%" PRIu64 " rate=%.0f/s "
            "streams=%u owned=%u lag_records=%s%" PRIu64 " lag_ms=%" PRId64 "\n", when,
            p->applied, p->read,
            seconds > 0 ? (double)(p->applied - *last_applied) / seconds : 0.0,
            p->stream_count, owned, lag ? "" : "?", records, age_ms);
    *last_applied = p->applied;
    *last_ms = now;
}

/* One cycle; returns the records read (0: idle), -1 on a failure. */
static int64_t cycle(persister *p)
{
    if (!outbox_connect(p) || !apply_connect(p) || !outbox_scan(p) || !outbox_lease(p))
        return -1;
    bool ok = outbox_read(p);
    int64_t read = p->record_count;
    uint64_t applied = 0;
    if (ok && read > 0)
        ok = apply_records(p, &applied) && (p->applied += applied, outbox_ack(p));
    outbox_release(p);
    if (!ok) {   /* list the streams again: one may be gone with its group (a Redis that lost its data) */
        p->stream_count = 0;
        p->scanned_ms = 0;
        p->renewed_ms = 0;
    }
    return ok ? read : -1;
}

/* With --drain: true once no stream holds a record. */
static bool drained(persister *p)
{
    uint64_t records = 0;
    int64_t age_ms = 0;
    return p->redis != NULL && outbox_lag(p, &records, &age_ms) && records == 0;
}

static int run(persister *p)
{
    uint64_t last_applied = 0;
    int64_t last_ms = outbox_now_ms(), stats_ms = last_ms;
    char last_error[sizeof p->error] = "";
    while (!stop_asked) {
        int64_t read = cycle(p);
        if (read < 0 && strcmp(last_error, p->error) != 0) {
            fprintf(stderr, "stockpersist: %s (retrying)\n", p->error);
            snprintf(last_error, sizeof last_error, "%s", p->error);
        } else if (read >= 0) {
            last_error[0] = '\0';
        }
        if (p->options.stats_s > 0 && outbox_now_ms() - stats_ms >= p->options.stats_s * 1000) {
            stats_line(p, "stats", &last_applied, &last_ms);
            stats_ms = outbox_now_ms();
        }
        if (read == 0 && p->options.drain && drained(p))
            break;
        if (read <= 0)
            sleep_ms(read < 0 ? RETRY_SLEEP_MS : IDLE_SLEEP_MS);
    }
    stats_line(p, "exit", &last_applied, &last_ms);
    return 0;
}

int main(int argc, char **argv)
{
    persister *p = calloc(1, sizeof *p);
    if (p == NULL) {
        fprintf(stderr, "stockpersist: out of memory\n");
        return 1;
    }
    p->options = (persist_options){.group = "stockpersist", .batch = 2048, .lease_ms = 5000,
                                   .stats_s = 10};
    char host[PERSIST_NAME_MAX / 2] = "host";
    gethostname(host, sizeof host - 1);
    snprintf(p->options.name, sizeof p->options.name, "%s-%ld", host, (long)getpid());
    int status = parse_options(argc, argv, &p->options);
    if (status < 0) {
        stock_config config = {0};
        char message[STOCK_MESSAGE_MAX];
        if (rd_options_parse(p->options.redis_uri, &config, &p->redis_options, message,
                             sizeof message) != STOCK_OK) {
            fprintf(stderr, "stockpersist: --redis: %s\n", message);
            status = 2;
        }
    }
    if (status < 0) {
        struct sigaction action = {.sa_handler = on_signal};
        sigemptyset(&action.sa_mask);
        sigaction(SIGINT, &action, NULL);
        sigaction(SIGTERM, &action, NULL);
        signal(SIGPIPE, SIG_IGN);
        status = p->options.warm ? warm_run(p) : run(p);
    }
    if (p->redis != NULL)
        redisFree(p->redis);
    if (p->pg != NULL)
        PQfinish(p->pg);
    free(p);
    return status;
}
