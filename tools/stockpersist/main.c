/*
 * main.c -- stockpersist: the persister of src/backend/persist.h as a
 * program of its own (like stockintake): the command line, then the
 * persister's loop on the main thread until SIGINT or SIGTERM (or, with
 * --drain, until its group has acknowledged every record), its log lines on stderr. It can be
 * killed, restarted and run several times over without touching the
 * stores' servers; stockd --persist-to runs the same loop on a thread.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/persist.h"
#include "lib/uri.h"
#include "stock.h"

static atomic_bool stop_asked;

static void on_signal(int signal_number)
{
    (void)signal_number;
    atomic_store(&stop_asked, true);
}

/* The persister's log hook: a line on stderr. */
static void log_line(void *user, stock_log_level level, const char *message)
{
    (void)user;
    (void)level;
    fprintf(stderr, "stockpersist: %s\n", message);
}

static void usage(FILE *out)
{
    fprintf(out,
        "usage: stockpersist --redis URI --postgres URI [options]\n\n"
        "Moves the redis store's outbox (every change's flow record) into a PostgreSQL\n"
        "database in the postgres backend's schema (docs/persister.md).\n\n"
        "  --redis URI        the redis store: redis://... (its prefix and password;\n"
        "                     with cluster=1 every master's outbox, the slot map followed)\n"
        "  --postgres URI     the database: a libpq URI, postgres://...; its\n"
        "                     stock_timeout_ms=N (default 30000) bounds every wait on it\n"
        "  --group NAME       the streams' consumer group (default stockpersist)\n"
        "  --name NAME        this persister's consumer and lease name\n"
        "                     (default <host>-<pid>)\n"
        "  --batch N          records read per stream per cycle, 1..%d (default %d)\n"
        "  --lease-ms N       a stream's lease, %d..%d ms (default %d): another\n"
        "                     persister takes a stream over this long after its holder died\n"
        "  --stats-s N        a stats line every N s, 0..%d (default %d; 0: none)\n"
        "  --drain            exit 0 once its group has acknowledged every record\n"
        "  --warm             load every SKU of the database (with its lines, refunds\n"
        "                     and adjustments) into Redis where Redis does not hold it,\n"
        "                     each bucket from its row on a store with buckets on a\n"
        "                     cluster, then exit (0: done; 1 also when a SKU was refused,\n"
        "                     its rows holding another bucket count than the store's)\n"
        "  --help, -h         this text\n"
        "  --version          the version\n\n"
        "Stats lines (stderr): applied records, their rate, lag_records (records not yet\n"
        "persisted), lag_ms (the age of the oldest) and outbox_records (records the\n"
        "outbox holds: the persister trims only what every reader has acknowledged).\n"
        "Exit status: 0 after SIGINT, SIGTERM, --drain or --warm; 1 when --warm failed;\n"
        "2 on a usage error.\n",
        PERSIST_BATCH_MAX, PERSIST_BATCH_DEFAULT, PERSIST_LEASE_MS_MIN, PERSIST_LEASE_MS_MAX,
        PERSIST_LEASE_MS_DEFAULT, PERSIST_STATS_S_MAX, PERSIST_STATS_S_DEFAULT);
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
static int parse_options(int argc, char **argv, persist_options *options, bool *warm)
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
            ok = parse_count(optarg, "--lease-ms", PERSIST_LEASE_MS_MIN, PERSIST_LEASE_MS_MAX, &options->lease_ms);
            break;
        case 's':
            ok = parse_count(optarg, "--stats-s", 0, PERSIST_STATS_S_MAX, &options->stats_s);
            break;
        case 'd': options->drain = true; break;
        case 'w': *warm = true; break;
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

int main(int argc, char **argv)
{
    persist_options options;
    persist_options_default(&options);
    bool warm = false;
    int status = parse_options(argc, argv, &options, &warm);
    if (status >= 0)
        return status;
    char message[STOCK_MESSAGE_MAX];
    persister *p = persist_new(&options, message, sizeof message);
    if (p == NULL) {
        fprintf(stderr, "stockpersist: %s\n", message);
        return 2;
    }
    struct sigaction action = {.sa_handler = on_signal};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
    const stock_log_hook log = {log_line, NULL};
    if (warm)
        status = persist_warm(p, &log) ? 0 : 1;
    else
        persist_run(p, &stop_asked, &log);
    persist_free(p);
    return status < 0 ? 0 : status;
}
