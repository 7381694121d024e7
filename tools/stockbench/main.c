/*
 * main.c -- stockbench's command line: parses and validates the flags, runs
 * the benchmark (run.c) and reports it (report.c).
 *
 * Exit status: 0 the run passed the check; 1 the check failed; 2 bad usage;
 * 3 the run could not be made (store unreachable, setup failed, ...).
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "run.h"

#define EXIT_CHECK_FAILED 1
#define EXIT_USAGE 2
#define EXIT_NOT_RUN 3
#define DEFAULT_CONNECTIONS 4
#define DEFAULT_PIPELINE 16
#define DEFAULT_DURATION_S 5.0

static const char usage_text[] =
    "usage: stockbench --store URI [options]\n"
    "\n"
    "Drives a libstock store with a flash-sale workload, reports throughput\n"
    "and latency, and checks the invariants at the end (I1 no oversell, I2\n"
    "conservation per SKU, I4 replays return the original, I5 refunds capped).\n"
    "\n"
    "  -s, --store URI         the store: a data dir, stockd://host:port,\n"
    "                          postgres://... (required)\n"
    "  -w, --workload NAME     hot (default), sellout, uniform, cart, mixed\n"
    "  -c, --connections N     batches in flight (closed loop) or at most in\n"
    "                          flight (open loop); a server store gets one\n"
    "                          connection each (default 4, max 1024)\n"
    "  -P, --pipeline N        operations per batch (default 16, max 4096)\n"
    "  -d, --duration SECONDS  how long to run (default 5; max 3600)\n"
    "  -n, --requests N        send N operations instead of running for a time\n"
    "                          (sellout defaults to 200000)\n"
    "  -r, --rate OPS          open loop: OPS operations/s, latency measured\n"
    "                          from when each batch was due\n"
    "      --skus N            SKUs (default per workload; max 10000000)\n"
    "      --stock N           initial stock per SKU (default per workload)\n"
    "      --replays PCT       percent of ops that retry an acknowledged line\n"
    "                          (default 1 for mixed, else 0)\n"
    "      --seed N            random seed (default 1)\n"
    "      --prefix TEXT       id prefix (default: unique per run)\n"
    "      --durability MODE   sync (default) or relaxed, for stores that have it\n"
    "      --json              print one JSON object instead of the summary\n"
    "      --plot FILE.png     plot throughput and latency over time (gnuplot)\n"
    "      --no-progress       no progress line even on a terminal\n"
    "\n"
    "Crash mode (the store is a stockd that stockbench runs itself):\n"
    "      --stockd PATH       start this stockd binary on 127.0.0.1 (instead\n"
    "                          of --store)\n"
    "      --stockd-data DIR   its data folder (its output goes to DIR.log)\n"
    "      --stockd-port N     its RESP port\n"
    "      --kill-every SECS   SIGKILL and restart it every SECS seconds while\n"
    "                          the load runs; ops cut off are retried with the\n"
    "                          same ids, and the check must still pass\n"
    "  -h, --help              this text\n"
    "\n"
    "\n"
    "Ops whose outcome is unknown (UNAVAILABLE: the connection broke) are\n"
    "resent with the same ids, as a careful client would.\n"
    "Exit status: 0 check passed, 1 check failed, 2 usage, 3 could not run.\n";

typedef struct options {
    run_config run;
    bool json;
    bool no_progress;
    bool duration_set;
    const char *plot_path;
    char stockd_uri[64];
} options;

__attribute__((noreturn, format(printf, 1, 2)))
static void usage_error(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("stockbench: ", stderr);
    vfprintf(stderr, format, args);
    va_end(args);
    fputs(" (see stockbench --help)\n", stderr);
    exit(EXIT_USAGE);
}

/* Parses a whole decimal integer in [low, high] or exits with a message
 * naming the flag. */
static int64_t parse_integer(const char *flag, const char *text, int64_t low,
                             int64_t high)
{
    assert(flag != NULL && low <= high);
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < low || value > high)
        usage_error("%s must be an integer in %" PRId64 "..%" PRId64 ", not '%s'",
                    flag, low, high, text);
    return value;
}

static double parse_number(const char *flag, const char *text, double low,
                           double high)
{
    assert(flag != NULL && low <= high);
    char *end = NULL;
    errno = 0;
    double value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(value) ||
        value < low || value > high)
        usage_error("%s must be a number in %g..%g, not '%s'", flag, low, high,
                    text);
    return value;
}

enum long_only {
    OPT_SKUS = 256, OPT_STOCK, OPT_REPLAYS, OPT_SEED, OPT_PREFIX,
    OPT_DURABILITY, OPT_JSON, OPT_PLOT, OPT_NO_PROGRESS, OPT_STOCKD,
    OPT_STOCKD_DATA, OPT_STOCKD_PORT, OPT_KILL_EVERY
};

static const struct option long_options[] = {
    {"store", required_argument, NULL, 's'},
    {"workload", required_argument, NULL, 'w'},
    {"connections", required_argument, NULL, 'c'},
    {"pipeline", required_argument, NULL, 'P'},
    {"duration", required_argument, NULL, 'd'},
    {"requests", required_argument, NULL, 'n'},
    {"rate", required_argument, NULL, 'r'},
    {"skus", required_argument, NULL, OPT_SKUS},
    {"stock", required_argument, NULL, OPT_STOCK},
    {"replays", required_argument, NULL, OPT_REPLAYS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"durability", required_argument, NULL, OPT_DURABILITY},
    {"json", no_argument, NULL, OPT_JSON},
    {"plot", required_argument, NULL, OPT_PLOT},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"stockd", required_argument, NULL, OPT_STOCKD},
    {"stockd-data", required_argument, NULL, OPT_STOCKD_DATA},
    {"stockd-port", required_argument, NULL, OPT_STOCKD_PORT},
    {"kill-every", required_argument, NULL, OPT_KILL_EVERY},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void parse_prefix(workload_config *workload, const char *text)
{
    size_t length = strlen(text);
    stock_id id = {text, (uint32_t)length};
    if (length > WORKLOAD_PREFIX_MAX || !stock_id_valid(id))
        usage_error("--prefix must be 1..%d printable characters without "
                    "spaces, not '%s'", WORKLOAD_PREFIX_MAX, text);
    memcpy(workload->prefix, text, length + 1);
}

/* Applies the flags that set the workload. False if option is not one. */
static bool parse_workload_option(options *opts, int option, const char *arg)
{
    workload_config *workload = &opts->run.workload;
    switch (option) {
    case 'w':
        if (!workload_parse_kind(arg, &workload->kind))
            usage_error("unknown workload '%s': hot, sellout, uniform, cart "
                        "or mixed", arg);
        return true;
    case OPT_SKUS:
        workload->skus = (uint32_t)parse_integer("--skus", arg, 1,
                                                 WORKLOAD_SKUS_MAX);
        return true;
    case OPT_STOCK:
        workload->stock = parse_integer("--stock", arg, 1, INT64_MAX / 4);
        return true;
    case OPT_REPLAYS:
        workload->replay_percent = (int32_t)parse_integer("--replays", arg, 0, 50);
        return true;
    case OPT_SEED:
        workload->seed = (uint64_t)parse_integer("--seed", arg, 0, INT64_MAX);
        return true;
    case OPT_PREFIX:
        parse_prefix(workload, arg);
        return true;
    default:
        return false;
    }
}

/* Applies the flags that shape the load. False if option is not one. */
static bool parse_load_option(options *opts, int option, const char *arg)
{
    run_config *run = &opts->run;
    switch (option) {
    case 's':
        run->uri = arg;
        return true;
    case 'c':
        run->connections = (uint32_t)parse_integer("--connections", arg, 1,
                                                   RUN_CONNECTIONS_MAX);
        return true;
    case 'P':
        run->pipeline = (uint32_t)parse_integer("--pipeline", arg, 1,
                                                RUN_PIPELINE_MAX);
        return true;
    case 'd':
        run->duration_s = parse_number("--duration", arg, 0.1, RUN_DURATION_MAX_S);
        opts->duration_set = true;
        return true;
    case 'n':
        run->requests = (uint64_t)parse_integer("--requests", arg, 1,
                                                INT64_C(1) << 40);
        return true;
    case 'r':
        run->rate = parse_number("--rate", arg, 1, RUN_RATE_MAX);
        return true;
    case OPT_STOCKD:
        run->stockd_path = arg;
        return true;
    case OPT_STOCKD_DATA:
        run->stockd_data = arg;
        return true;
    case OPT_STOCKD_PORT:
        run->stockd_port = (int)parse_integer("--stockd-port", arg, 1, 65535);
        return true;
    case OPT_KILL_EVERY:
        run->kill_every_s = parse_number("--kill-every", arg,
                                         RUN_KILL_EVERY_MIN_S, RUN_DURATION_MAX_S);
        return true;
    case OPT_DURABILITY:
        if (strcmp(arg, "sync") != 0 && strcmp(arg, "relaxed") != 0)
            usage_error("--durability must be sync or relaxed, not '%s'", arg);
        run->store.durability = strcmp(arg, "sync") == 0
                                    ? STOCK_DURABILITY_SYNC
                                    : STOCK_DURABILITY_RELAXED;
        return true;
    default:
        return false;
    }
}

/* Crash mode: the store is the stockd the run starts. */
static void validate_crash_mode(options *opts)
{
    run_config *run = &opts->run;
    if (run->stockd_path == NULL) {
        if (run->stockd_data != NULL || run->stockd_port != 0 ||
            run->kill_every_s > 0)
            usage_error("--stockd-data, --stockd-port and --kill-every need "
                        "--stockd PATH");
        return;
    }
    if (run->uri != NULL)
        usage_error("give --store or --stockd, not both");
    if (run->stockd_data == NULL || run->stockd_port == 0)
        usage_error("--stockd needs --stockd-data DIR and --stockd-port N");
    if (access(run->stockd_path, X_OK) != 0)
        usage_error("--stockd %s is not an executable file", run->stockd_path);
    snprintf(opts->stockd_uri, sizeof opts->stockd_uri,
             "stockd://127.0.0.1:%d", run->stockd_port);
    run->uri = opts->stockd_uri;
}

/* Checks what single flags cannot: combinations and required flags. */
static void validate_options(options *opts)
{
    run_config *run = &opts->run;
    validate_crash_mode(opts);
    if (run->uri == NULL || run->uri[0] == '\0')
        usage_error("--store URI (or --stockd) is required");
    if (opts->duration_set && run->requests > 0)
        usage_error("give --duration or --requests, not both");
    if ((uint64_t)run->connections * run->pipeline > RUN_INFLIGHT_MAX)
        usage_error("--connections x --pipeline must be at most %d operations "
                    "in flight", RUN_INFLIGHT_MAX);
    if (!opts->duration_set && run->requests == 0)
        run->requests = workload_default_requests(run->workload.kind);
    if (run->workload.kind == WORKLOAD_CART && run->workload.replay_percent > 0)
        usage_error("--replays retries single deductions; the cart workload "
                    "has none");
    run->progress = !opts->json && !opts->no_progress && isatty(STDERR_FILENO);
}

/* The library's log hook: an in-process store's messages (a torn tail cut
 * at open, a failed snapshot) go to stderr beside stockbench's own. */
static void print_library_message(void *user, stock_log_level level,
                                  const char *message)
{
    (void)user;
    if (level <= STOCK_LOG_NOTICE)
        fprintf(stderr, "stockbench: libstock: %s\n", message);
}

static void parse_options(int argc, char **argv, options *opts)
{
    *opts = (options){.run = {.connections = DEFAULT_CONNECTIONS,
                              .pipeline = DEFAULT_PIPELINE,
                              .duration_s = DEFAULT_DURATION_S,
                              .store = {.log = print_library_message},
                              .workload = {.kind = WORKLOAD_HOT,
                                           .replay_percent = -1,
                                           .seed = 1}}};
    int option;
    while ((option = getopt_long(argc, argv, "s:w:c:P:d:n:r:h", long_options,
                                 NULL)) != -1) {
        if (parse_workload_option(opts, option, optarg) ||
            parse_load_option(opts, option, optarg))
            continue;
        if (option == OPT_JSON)
            opts->json = true;
        else if (option == OPT_PLOT)
            opts->plot_path = optarg;
        else if (option == OPT_NO_PROGRESS)
            opts->no_progress = true;
        else if (option == 'h') {
            fputs(usage_text, stdout);
            exit(0);
        } else
            usage_error("unknown or incomplete option");
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    validate_options(opts);
}

int main(int argc, char **argv)
{
    options opts;
    parse_options(argc, argv, &opts);
    run_result *result = malloc(sizeof *result);
    if (result == NULL) {
        fputs("stockbench: out of memory\n", stderr);
        return EXIT_NOT_RUN;
    }
    if (run_bench(&opts.run, result) != 0) {
        fprintf(stderr, "stockbench: %s\n", result->error);
        free(result);
        return EXIT_NOT_RUN;
    }
    int status = result->check_failures == 0 ? 0 : EXIT_CHECK_FAILED;
    if (opts.json) {
        if (report_json(stdout, &opts.run, result) != 0) {
            fputs("stockbench: cannot write the JSON report\n", stderr);
            status = EXIT_NOT_RUN;
        }
    } else {
        report_text(stdout, &opts.run, result);
    }
    char error[RUN_ERROR_MAX];
    if (opts.plot_path != NULL &&
        report_plot(opts.plot_path, &opts.run, result, error, sizeof error) != 0) {
        fprintf(stderr, "stockbench: --plot: %s\n", error);
        status = status == 0 ? EXIT_NOT_RUN : status;
    }
    free(result);
    return status;
}
