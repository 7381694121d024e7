/*
 * main.c -- stockintake's entry: parses the command line and runs the
 * consumer (intake.h) until SIGINT or SIGTERM.
 *
 * The intake is a program of its own rather than a part of stockd: it
 * applies requests to any store URI (an embedded folder, stockd://,
 * postgres://), so it runs beside whatever serves the store, can be
 * killed, restarted and run several times over (they share the durable
 * consumer) without touching the store's server, and only it links the
 * NATS client.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake.h"
#include "lib/uri.h"
#include "proto/subject.h"
#include "stock.h"

#define INTAKE_BROKER_DEFAULT "nats://127.0.0.1:4222"

static volatile sig_atomic_t stop_asked;

static void on_signal(int signal_number)
{
    (void)signal_number;
    stop_asked = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
        "usage: stockintake --store URI [options]\n\n"
        "Applies order, deduction and refund requests queued in NATS JetStream to a\n"
        "store and publishes their results (docs/intake.md).\n\n"
        "  --store URI              the store: any libstock URI (a folder, stockd://host:port,\n"
        "                           postgres://...); required\n"
        "  --broker URL[,URL...]    NATS servers (default " INTAKE_BROKER_DEFAULT ")\n"
        "  --prefix P               subjects P.intake.{orders,deductions,refunds} in,\n"
        "                           P.results.* and P.dead.* out; streams P_INTAKE,\n"
        "                           P_RESULTS, P_DEAD in capitals (default stock)\n"
        "  --consumer NAME          durable consumer shared by every stockintake of the\n"
        "                           stream (default stockintake)\n"
        "  --batch N                messages per pull and per store batch, 1..%d\n"
        "                           (default 256)\n"
        "  --max-pending N          unacknowledged messages the broker allows the\n"
        "                           consumer, 1..%d (default 4096)\n"
        "  --ack-wait SECONDS       redelivery of a message not acknowledged by then,\n"
        "                           1..%d (default 30)\n"
        "  --max-message-bytes N    a bigger request is a dead letter, 1..%d\n"
        "                           (default 65536)\n"
        "  --replicas N             replicas of the streams it creates, 1..%d (default 1)\n"
        "  --help, -h               this text\n"
        "  --version                the version\n\n"
        "Exit status: 0 after SIGINT or SIGTERM, 1 when the broker or the store cannot\n"
        "be used, 2 on a usage error.\n",
        INTAKE_BATCH_MAX, INTAKE_PENDING_MAX, INTAKE_ACK_WAIT_S_MAX, INTAKE_MESSAGE_BYTES_MAX,
        INTAKE_REPLICAS_MAX);
}

static bool parse_count(const char *text, const char *name, uint32_t max, uint32_t *value)
{
    uint64_t parsed = 0;
    if (!uri_parse_uint(text, strlen(text), 1, max, &parsed)) {
        fprintf(stderr, "stockintake: %s must be an integer 1..%u, not '%s'\n", name, (unsigned)max, text);
        return false;
    }
    *value = (uint32_t)parsed;
    return true;
}

/* Returns -1 when the options are good, else the exit status. */
static int parse_options(int argc, char **argv, intake_options *options)
{
    static const struct option long_options[] = {
        {"store", required_argument, NULL, 's'}, {"broker", required_argument, NULL, 'b'},
        {"prefix", required_argument, NULL, 'p'}, {"consumer", required_argument, NULL, 'c'},
        {"batch", required_argument, NULL, 'n'}, {"max-pending", required_argument, NULL, 'm'},
        {"ack-wait", required_argument, NULL, 'w'}, {"max-message-bytes", required_argument, NULL, 'x'},
        {"replicas", required_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'}, {NULL, 0, NULL, 0},
    };
    int option;
    bool ok = true;
    while (ok && (option = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (option) {
        case 's': options->store = optarg; break;
        case 'b': options->broker = optarg; break;
        case 'p': options->prefix = optarg; break;
        case 'c': options->consumer = optarg; break;
        case 'n': ok = parse_count(optarg, "--batch", INTAKE_BATCH_MAX, &options->batch); break;
        case 'm': ok = parse_count(optarg, "--max-pending", INTAKE_PENDING_MAX, &options->max_pending); break;
        case 'w': ok = parse_count(optarg, "--ack-wait", INTAKE_ACK_WAIT_S_MAX, &options->ack_wait_s); break;
        case 'x':
            ok = parse_count(optarg, "--max-message-bytes", INTAKE_MESSAGE_BYTES_MAX, &options->max_message_bytes);
            break;
        case 'r': ok = parse_count(optarg, "--replicas", INTAKE_REPLICAS_MAX, &options->replicas); break;
        case 'h': usage(stdout); return 0;
        case 'v': printf("stockintake %s\n", stock_version()); return 0;
        default: ok = false; break;
        }
    }
    if (ok && (optind != argc || options->store == NULL)) {
        fprintf(stderr, "stockintake: %s\n", optind != argc ? "unexpected arguments" : "--store is required");
        ok = false;
    }
    if (ok && (strlen(options->broker) > INTAKE_BROKER_MAX ||
               options->broker[strspn(options->broker, ",")] == '\0')) {
        fprintf(stderr, "stockintake: --broker must list 1..%d URLs in at most %d bytes\n",
                INTAKE_SERVERS_MAX, INTAKE_BROKER_MAX);
        ok = false;
    }
    if (ok && !subject_prefix_valid(options->prefix, INTAKE_PREFIX_MAX)) {
        fprintf(stderr, "stockintake: --prefix must be 1..%d bytes of NATS subject tokens without wildcards\n",
                INTAKE_PREFIX_MAX);
        ok = false;
    }
    if (ok && (options->consumer[0] == '\0' || strpbrk(options->consumer, ".*> \t") != NULL)) {
        fprintf(stderr, "stockintake: --consumer must be a name without '.', '*', '>' or spaces\n");
        ok = false;
    }
    if (!ok)
        fprintf(stderr, "see stockintake --help\n");
    return ok ? -1 : 2;
}

int main(int argc, char **argv)
{
    intake_options options = {
        .broker = INTAKE_BROKER_DEFAULT, .prefix = "stock", .consumer = "stockintake",
        .batch = 256, .max_pending = 4096, .ack_wait_s = 30, .max_message_bytes = 65536,
        .replicas = 1,
    };
    int status = parse_options(argc, argv, &options);
    if (status >= 0)
        return status;
    struct sigaction action = {.sa_handler = on_signal};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
    return intake_run(&options, &stop_asked);
}
