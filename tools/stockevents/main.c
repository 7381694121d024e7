/*
 * main.c -- stockevents' entry: reads the command line and publishes the
 * stock events of a store (publish.c) until SIGINT or SIGTERM.
 *
 * A program of its own rather than a part of stockd: the events are
 * derived from the durable flow log, not from what the server saw, so the
 * publisher reads the folder beside a running stockd (or none), survives
 * its crashes and restarts, and only it links the NATS client.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/flow_events.h"
#include "lib/uri.h"
#include "proto/subject.h"
#include "stockevents.h"

#define EVENTS_PATH_MAX 4096

static volatile sig_atomic_t stop_asked;

static void on_signal(int signal_number)
{
    (void)signal_number;
    stop_asked = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
        "usage: stockevents --data FOLDER [options]\n"
        "       stockevents --store URI [options]\n\n"
        "Publishes the stock events of a store's durable flow (sold out, back in\n"
        "stock, below a threshold, and optionally every change) to NATS JetStream\n"
        "(docs/events.md): an embedded store's flow log, beside the stockd that has\n"
        "FOLDER open, or a postgres or redis store's own record of its changes.\n\n"
        "  --data FOLDER            an embedded store's data folder\n"
        "  --store URI              or a postgres://... or redis://... store (one\n"
        "                           Redis server, or a cluster with cluster=1); one\n"
        "                           of the two is required\n"
        "  --broker URL[,URL...]    NATS servers (default " EVENTS_BROKER_DEFAULT ")\n"
        "  --prefix P               subjects P.events.<event>, stream P_EVENTS in\n"
        "                           capitals (default stock)\n"
        "  --thresholds FILE        per-SKU thresholds, lines 'SKU N' (default\n"
        "                           FOLDER/" THRESHOLDS_FILE ", where stockd's THRESHOLD writes;\n"
        "                           none for --store)\n"
        "  --every-change           also a 'change' event for every move of a level\n"
        "  --replicas N             replicas of the stream it creates, 1..%d (default 1)\n"
        "  --poll-ms N              wait between looks at a log with nothing new,\n"
        "                           1..%d (default %d)\n"
        "  --help, -h               this text\n"
        "  --version                the version\n\n"
        "Exit status: 0 after SIGINT or SIGTERM, 1 when the broker or the folder cannot\n"
        "be used, 2 on a usage error.\n",
        EVENTS_REPLICAS_MAX, EVENTS_POLL_MS_MAX, EVENTS_POLL_MS_DEFAULT);
}

static bool parse_count(const char *text, const char *name, int max, int *value)
{
    uint64_t parsed = 0;
    if (!uri_parse_uint(text, strlen(text), 1, (uint64_t)max, &parsed)) {
        fprintf(stderr, "stockevents: %s must be an integer 1..%d, not '%s'\n", name, max, text);
        return false;
    }
    *value = (int)parsed;
    return true;
}

/* Checks what getopt cannot; false after saying why. */
static bool options_valid(const events_options *options)
{
    const char *why = NULL;
    if ((options->data == NULL) == (options->store == NULL))
        why = "one of --data and --store is required";
    else if (options->data != NULL && strlen(options->data) > EVENTS_PATH_MAX)
        why = "--data is too long";
    else if (options->data != NULL && flow_events_network(options->data))
        why = "--data names a folder: a postgres or redis store is --store";
    else if (options->store != NULL && !flow_events_network(options->store))
        why = "--store must be a postgres://, postgresql:// or redis:// URI";
    else if (!subject_prefix_valid(options->prefix, EVENTS_PREFIX_MAX))
        why = "--prefix must be 1..64 bytes of NATS subject tokens without wildcards";
    else if (options->broker[strspn(options->broker, ",")] == '\0')
        why = "--broker must name a server";
    if (why != NULL)
        fprintf(stderr, "stockevents: %s\n", why);
    return why == NULL;
}

/* Returns -1 when the options are good, else the exit status. */
static int parse_options(int argc, char **argv, events_options *options)
{
    static const struct option long_options[] = {
        {"data", required_argument, NULL, 'd'}, {"store", required_argument, NULL, 's'},
        {"broker", required_argument, NULL, 'b'},
        {"prefix", required_argument, NULL, 'p'}, {"thresholds", required_argument, NULL, 't'},
        {"every-change", no_argument, NULL, 'e'}, {"replicas", required_argument, NULL, 'r'},
        {"poll-ms", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'}, {NULL, 0, NULL, 0},
    };
    int option;
    bool ok = true;
    while (ok && (option = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (option) {
        case 'd': options->data = optarg; break;
        case 's': options->store = optarg; break;
        case 'b': options->broker = optarg; break;
        case 'p': options->prefix = optarg; break;
        case 't': options->thresholds = optarg; break;
        case 'e': options->every_change = true; break;
        case 'r': ok = parse_count(optarg, "--replicas", EVENTS_REPLICAS_MAX, &options->replicas); break;
        case 'l': ok = parse_count(optarg, "--poll-ms", EVENTS_POLL_MS_MAX, &options->poll_ms); break;
        case 'h': usage(stdout); return 0;
        case 'v': printf("stockevents %s\n", stock_version()); return 0;
        default: ok = false; break;
        }
    }
    if (ok && optind != argc) {
        fprintf(stderr, "stockevents: unexpected arguments\n");
        ok = false;
    }
    if (!ok || !options_valid(options)) {
        fprintf(stderr, "see stockevents --help\n");
        return 2;
    }
    return -1;
}

int main(int argc, char **argv)
{
    events_options options = {.broker = EVENTS_BROKER_DEFAULT, .prefix = "stock", .replicas = 1,
                              .poll_ms = EVENTS_POLL_MS_DEFAULT};
    int status = parse_options(argc, argv, &options);
    if (status >= 0)
        return status;
    static char thresholds[EVENTS_PATH_MAX + sizeof THRESHOLDS_FILE + 1];
    if (options.thresholds == NULL && options.data != NULL) {
        snprintf(thresholds, sizeof thresholds, "%s/%s", options.data, THRESHOLDS_FILE);
        options.thresholds = thresholds;
    }
    struct sigaction action = {.sa_handler = on_signal};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
    return events_run(&options, &stop_asked);
}
