/*
 * main.c -- stockctl's entry: parses the command line, opens the store named
 * by --store (any libstock URI: stockd://host:port for a running server, a
 * plain path for the embedded engine in-process), runs one subcommand and
 * exits with a code that says how it went (the table in usage()).
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stockctl.h"

static const int exit_codes[STOCK_CODE_COUNT] = {
    [STOCK_OK] = 0,           [STOCK_REPLAY] = 0,
    [STOCK_INVALID] = 2,      [STOCK_INSUFFICIENT] = 3,
    [STOCK_NOT_FOUND] = 4,    [STOCK_CONFLICT] = 5,
    [STOCK_EXCEEDS] = 6,      [STOCK_MISMATCH] = 7,
    [STOCK_IO] = 8,           [STOCK_CORRUPT] = 9,
    [STOCK_NOMEM] = 10,       [STOCK_UNAVAILABLE] = 11,
    [STOCK_UNSUPPORTED] = 12, [STOCK_EXPIRED] = 13,
    [STOCK_CLOSED] = 14,
};

int ctl_exit_code(stock_code code)
{
    assert((unsigned)code < STOCK_CODE_COUNT);
    return exit_codes[code];
}

/* A usage error's form is fixed before any parsing (see json_requested), so
 * that an error found before --json is reached still comes out as JSON. */
static bool usage_json;
static int usage_exit_code = CTL_EXIT_USAGE;   /* INTERNAL if JSON unwritten */

void ctl_usage_error(const char *format, ...)
{
    char text[CTL_USAGE_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    if (!usage_json) {
        fprintf(stderr, "stockctl: %s; see stockctl --help\n", text);
        return;
    }
    /* The text quotes raw arguments, which need not be UTF-8 (jansson
     * refuses such strings), and may be cut mid-character: keep it ASCII. */
    for (char *c = text; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
    static const ctl_args json_args = {.json = true};
    usage_exit_code = ctl_print_failure(&json_args, STOCK_INVALID, text);
    assert(usage_exit_code == CTL_EXIT_USAGE ||
           usage_exit_code == CTL_EXIT_INTERNAL);
}

bool ctl_parse_int64(const char *text, const char *what, int64_t *value)
{
    char *end = NULL;
    errno = 0;
    long long parsed = strtoll(text, &end, 10);
    bool digits = (text[0] >= '0' && text[0] <= '9') ||
                  (text[0] == '-' && text[1] >= '0' && text[1] <= '9');
    if (!digits || *end != '\0' || errno == ERANGE) {
        ctl_usage_error("%s must be an integer, not '%s'", what, text);
        return false;
    }
    *value = (int64_t)parsed;
    return true;
}

/* Width of the "name synopsis" column of the command list. */
#define CTL_USAGE_COLUMN 55

static void usage(FILE *out)
{
    fprintf(out,
        "usage: stockctl [--store URI] [--json] COMMAND ARGS...\n"
        "       stockctl COMMAND --help   (or: stockctl help COMMAND)\n\n"
        "A command-line client for stockd and libstock.\n\n"
        "commands:\n");
    /* Name and synopsis as one column, so that long names stay aligned. */
    for (const ctl_command *command = ctl_commands; command->name; command++) {
        char left[CTL_USAGE_COLUMN + 1];
        snprintf(left, sizeof left, "%s %s", command->name, command->synopsis);
        fprintf(out, "  %-*s %s\n", CTL_USAGE_COLUMN, left, command->summary);
    }
    fprintf(out,
        "\noptions:\n"
        "  --store URI  the store: stockd://host:port[?password=P] for a server,\n"
        "               a directory for the embedded engine (in-process), ...\n"
        "               (default $STOCKCTL_STORE, else " CTL_STORE_DEFAULT ")\n"
        "  --json       print one JSON object on stdout, failures included\n"
        "  --broker URL, --prefix P, --wait SECONDS\n"
        "               publish only (see stockctl publish --help)\n"
        "  --http URL   hot and threshold: stockd's HTTP address (default $STOCKCTL_HTTP,\n"
        "               else " CTL_HTTP_DEFAULT ")\n"
        "  --repair     reconcile only: make B agree with A\n"
        "  --help, -h   this text; after a command, that command's help\n\n"
        "exit codes:\n"
        "  0 OK or REPLAY   1 stockctl failed   2 bad arguments or INVALID\n"
        "  3 INSUFFICIENT   4 NOTFOUND   5 CONFLICT   6 EXCEEDS   7 MISMATCH\n"
        "  8 IOERR   9 CORRUPT   10 NOMEM   11 UNAVAILABLE   12 UNSUPPORTED\n"
        "  13 EXPIRED   14 CLOSED\n"
        "  reconcile: 0 equal, 1 different, 2 error (see stockctl reconcile --help)\n");
}

static void command_usage(const ctl_command *command)
{
    printf("usage: stockctl [--store URI] [--json] %s %s\n\n%s\n%s",
           command->name, command->synopsis, command->summary, command->details);
    printf("\nexit codes: see stockctl --help\n");
}

static const ctl_command *find_command(const char *name)
{
    for (const ctl_command *command = ctl_commands; command->name; command++)
        if (strcmp(command->name, name) == 0)
            return command;
    return NULL;
}

/* The value of an option that takes one: "--name value" or "--name=value". */
static const char *option_value(int argc, char **argv, int *index,
                                const char *name)
{
    const char *arg = argv[*index];
    size_t length = strlen(name);
    if (arg[length] == '=')
        return arg + length + 1;
    if (*index + 1 >= argc) {
        ctl_usage_error("%s needs a value", name);
        return NULL;
    }
    *index += 1;
    return argv[*index];
}

static bool is_option(const char *arg, const char *name)
{
    size_t length = strlen(name);
    return strncmp(arg, name, length) == 0 &&
           (arg[length] == '\0' || arg[length] == '=');
}

/* Takes one option at argv[*index]; false on a usage error. */
static bool parse_option(int argc, char **argv, int *index, ctl_args *args)
{
    const char *arg = argv[*index];
    const char *value = NULL;
    if (strcmp(arg, "--json") == 0) {
        args->json = true;
    } else if (strcmp(arg, "--repair") == 0) {
        args->repair = true;
    } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
        args->help = true;
    } else if (is_option(arg, "--store")) {
        if ((value = option_value(argc, argv, index, "--store")) == NULL)
            return false;
        args->store_uri = value;
    } else if (is_option(arg, "--expect")) {
        if ((value = option_value(argc, argv, index, "--expect")) == NULL ||
            !ctl_parse_int64(value, "--expect", &args->expect))
            return false;
        args->has_expect = true;
    } else if (is_option(arg, "--id")) {
        if ((value = option_value(argc, argv, index, "--id")) == NULL)
            return false;
        args->adjust_id = value;
    } else if (is_option(arg, "--broker")) {
        if ((value = option_value(argc, argv, index, "--broker")) == NULL)
            return false;
        args->broker = value;
        args->has_publish_option = true;
    } else if (is_option(arg, "--prefix")) {
        if ((value = option_value(argc, argv, index, "--prefix")) == NULL)
            return false;
        args->prefix = value;
        args->has_publish_option = true;
    } else if (is_option(arg, "--http")) {
        if ((value = option_value(argc, argv, index, "--http")) == NULL)
            return false;
        args->http = value;
        args->has_http = true;
    } else if (is_option(arg, "--wait")) {
        if ((value = option_value(argc, argv, index, "--wait")) == NULL ||
            !ctl_parse_int64(value, "--wait", &args->wait_s))
            return false;
        if (args->wait_s < 1 || args->wait_s > CTL_WAIT_S_MAX) {
            ctl_usage_error("--wait must be 1..%d seconds", CTL_WAIT_S_MAX);
            return false;
        }
        args->has_publish_option = true;
    } else {
        ctl_usage_error("unknown option '%s'", arg);
        return false;
    }
    return true;
}

/* Whether argv asks for --json, by the rule parse_args follows: a literal
 * "--json" before any "--", not the value of an option that takes one
 * ("--store --json" names a store). A scan of its own so that a usage error
 * met before --json (e.g. "frob --json", "--bogus --json") is JSON too. */
static bool json_requested(int argc, char **argv)
{
    static const char *const with_value[] = {"--store", "--expect", "--id", "--broker",
                                             "--prefix", "--wait", "--http"};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--json") == 0)
            return true;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            if (strcmp(argv[i], with_value[k]) == 0)
                i++;   /* its value, whatever it looks like */
    }
    return false;
}

/* Options may come anywhere; "--" ends them. A lone "-5" is an argument
 * (a negative delta), not an option. */
static bool parse_args(int argc, char **argv, ctl_args *args)
{
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (!options_done && (strncmp(arg, "--", 2) == 0 ||
                                     strcmp(arg, "-h") == 0)) {
            if (!parse_option(argc, argv, &i, args))
                return false;
        } else if (args->command == NULL) {
            args->command = arg;
        } else if (args->positional_count == CTL_POSITIONAL_MAX) {
            ctl_usage_error("too many arguments (an order has at most %d lines)",
                            STOCK_ORDER_LINES_MAX);
            return false;
        } else {
            args->positional[args->positional_count++] = arg;
        }
    }
    return true;
}

/* Checks the argument count and the options against the command. */
static bool check_args(const ctl_command *command, const ctl_args *args)
{
    assert(command->positional_min <= command->positional_max);
    assert(args->positional_count <= CTL_POSITIONAL_MAX);
    int count = args->positional_count;
    bool count_ok = count >= command->positional_min &&
                    count <= command->positional_max &&
                    (command->repeat == 0 ||
                     (count - command->positional_min) % command->repeat == 0);
    if (!count_ok) {
        ctl_usage_error("%s takes %s", command->name,
                        command->synopsis[0] ? command->synopsis : "no arguments");
        return false;
    }
    if (args->has_expect && strcmp(command->name, "set") != 0) {
        ctl_usage_error("--expect goes with set only");
        return false;
    }
    if (args->adjust_id != NULL && strcmp(command->name, "add") != 0) {
        ctl_usage_error("--id goes with add only");
        return false;
    }
    if (args->repair && strcmp(command->name, "reconcile") != 0) {
        ctl_usage_error("--repair goes with reconcile only");
        return false;
    }
    if (args->has_publish_option && command->direct != ctl_publish) {
        ctl_usage_error("--broker, --prefix and --wait go with publish only");
        return false;
    }
    if (args->has_http && command->direct != ctl_hot && command->direct != ctl_threshold) {
        ctl_usage_error("--http goes with hot and threshold only");
        return false;
    }
    return true;
}

void ctl_library_message(void *user, stock_log_level level, const char *message)
{
    (void)user;
    if (level <= STOCK_LOG_NOTICE)
        fprintf(stderr, "stockctl: libstock: %s\n", message);
}

int ctl_open(const ctl_args *args, const char *uri, stock_t **store)
{
    char message[STOCK_MESSAGE_MAX];
    const stock_config config = {.log = ctl_library_message};
    stock_code code = stock_open(uri, &config, store, message);
    if (code == STOCK_OK)
        return CTL_EXIT_OK;
    char failure[sizeof message + 120];
    snprintf(failure, sizeof failure, "cannot open the store '%.80s': %s", uri, message);
    return ctl_print_failure(args, code, failure);
}

static int run(const ctl_args *args, ctl_request *request)
{
    stock_t *store = NULL;
    int exit_code = ctl_open(args, args->store_uri, &store);
    if (exit_code != CTL_EXIT_OK)
        return exit_code;
    exit_code = ctl_run(store, args, request);
    /* Text output goes through printf unchecked: a full disk or a closed
     * pipe shows here, and a script must not read exit 0 as "printed". */
    if ((fflush(stdout) != 0 || ferror(stdout)) && exit_code != CTL_EXIT_INTERNAL) {
        fprintf(stderr, "stockctl: cannot write the output\n");
        exit_code = CTL_EXIT_INTERNAL;
    }
    if (stock_close(store) != STOCK_OK && exit_code == CTL_EXIT_OK) {
        fprintf(stderr, "stockctl: closing the store failed: the last "
                "operations may not be durable\n");
        exit_code = ctl_exit_code(STOCK_IO);
    }
    return exit_code;
}

int main(int argc, char **argv)
{
    ctl_args args = {.store_uri = getenv("STOCKCTL_STORE"), .broker = getenv("STOCKCTL_BROKER"),
                     .http = getenv("STOCKCTL_HTTP"),
                     .prefix = "stock", .wait_s = CTL_WAIT_S_DEFAULT};
    if (args.store_uri == NULL || args.store_uri[0] == '\0')
        args.store_uri = CTL_STORE_DEFAULT;
    if (args.broker == NULL || args.broker[0] == '\0')
        args.broker = CTL_BROKER_DEFAULT;
    if (args.http == NULL || args.http[0] == '\0')
        args.http = CTL_HTTP_DEFAULT;
    usage_json = json_requested(argc, argv);
    if (!parse_args(argc, argv, &args))
        return usage_exit_code;
    assert(args.json == usage_json);
    if (args.command == NULL && args.json && !args.help) {
        ctl_usage_error("no command given");
        return usage_exit_code;
    }
    if (args.command == NULL || strcmp(args.command, "help") == 0) {
        const ctl_command *topic = args.positional_count == 1
                                       ? find_command(args.positional[0]) : NULL;
        if (topic != NULL)
            command_usage(topic);
        else
            usage(args.help || args.command != NULL ? stdout : stderr);
        return args.help || args.command != NULL ? CTL_EXIT_OK : CTL_EXIT_USAGE;
    }
    const ctl_command *command = find_command(args.command);
    if (command == NULL) {
        ctl_usage_error("unknown command '%s'", args.command);
        return usage_exit_code;
    }
    if (args.help) {
        command_usage(command);
        return CTL_EXIT_OK;
    }
    if (!check_args(command, &args))
        return usage_exit_code;
    if (command->direct != NULL)
        return command->direct(&args);
    static ctl_request request;   /* static: 100 order lines are large */
    if (!command->prepare(&args, &request))
        return usage_exit_code;
    /* The library's own input rules, before a store is opened. */
    if ((int)request.op.type != 0 && stock_validate(&request.op) != STOCK_OK) {
        char text[STOCK_MESSAGE_MAX + 40];
        snprintf(text, sizeof text, "%s: INVALID %s", command->name,
                 request.op.message);
        return ctl_print_failure(&args, STOCK_INVALID,
                                 args.json ? request.op.message : text);
    }
    return run(&args, &request);
}
