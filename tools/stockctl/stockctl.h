/*
 * stockctl.h -- the parts of stockctl, the command-line client over
 * libstock: main.c parses the command line and maps result codes to exit
 * codes, commands.c runs each subcommand, output.c prints results as text
 * for people or as JSON for scripts (--json).
 */
#ifndef STOCKCTL_H
#define STOCKCTL_H

#include <stdbool.h>
#include <stdint.h>

#include "stock.h"

#define CTL_STORE_DEFAULT "stockd://127.0.0.1:7379"
#define CTL_BROKER_DEFAULT "nats://127.0.0.1:4222"
#define CTL_HTTP_DEFAULT "http://127.0.0.1:7380"
#define CTL_WAIT_S_DEFAULT 60
#define CTL_WAIT_S_MAX 86400
#define CTL_POSITIONAL_MAX (1 + 3 * STOCK_ORDER_LINES_MAX)

/* Exit codes: 0 success (OK or REPLAY), 1 stockctl itself failed (output
 * could not be written), 2 bad arguments or INVALID, then one per code. */
#define CTL_EXIT_OK 0
#define CTL_EXIT_INTERNAL 1
#define CTL_EXIT_USAGE 2

/* The parsed command line. Strings are borrowed from argv. */
typedef struct ctl_args {
    const char *store_uri;
    bool json;
    bool help;
    bool has_expect;
    int64_t expect;
    const char *adjust_id;            /* add --id; NULL when absent */
    const char *broker;               /* publish: NATS URL(s) */
    const char *prefix;               /* publish: subject prefix */
    int64_t wait_s;                   /* publish: for results, after the last */
    bool has_publish_option;          /* --broker, --prefix or --wait given */
    const char *http;                 /* hot, threshold: stockd's HTTP address */
    bool has_http;                    /* --http given */
    bool repair;                      /* reconcile --repair */
    const char *command;              /* NULL when none was given */
    int positional_count;
    const char *positional[CTL_POSITIONAL_MAX];
} ctl_args;

/* One operation, built from the command line before any store is opened,
 * so that bad arguments never cost a connection. type 0 is `stats`. */
typedef struct ctl_request {
    stock_op op;
    stock_order_line lines[STOCK_ORDER_LINES_MAX];
} ctl_request;

/* Builds a subcommand's request from args (count already checked); false
 * after printing a usage error. */
typedef bool (*ctl_prepare_fn)(const ctl_args *args, ctl_request *request);

typedef struct ctl_command {
    const char *name;
    const char *synopsis;             /* the arguments, for usage lines */
    const char *summary;              /* one line */
    const char *details;              /* the per-command --help text */
    int positional_min;
    int positional_max;               /* ORDER: lines repeat, see repeat */
    int repeat;                       /* > 0: count - positional_min is a
                                         multiple of repeat */
    ctl_prepare_fn prepare;           /* NULL for a command that needs no store */
    int (*direct)(const ctl_args *args);   /* runs that command; returns
                                         the exit code */
} ctl_command;

/* The subcommands, NULL-name terminated (commands.c). */
extern const ctl_command ctl_commands[];

/* Runs a prepared request over an open store, prints its result and
 * returns the exit code. request is modified (the op's outputs). */
int ctl_run(stock_t *store, const ctl_args *args, ctl_request *request);

/* Opens uri as the store commands use (the library's messages on stderr);
 * CTL_EXIT_OK and *store, else the exit code after printing why. */
int ctl_open(const ctl_args *args, const char *uri, stock_t **store);

/* `backup URI DEST` and `restore SRC DIR` (backup.c). */
int ctl_backup(const ctl_args *args);
int ctl_restore(const ctl_args *args);

/* `publish KIND [FILE]`: sends requests to stockintake's stream and
 * prints their results (publish.c, docs/intake.md). */
int ctl_publish(const ctl_args *args);

/* `hot`: prints a running stockd's hot SKUs from its GET /v1/hot at
 * args->http (http.c, docs/stockctl.md). */
int ctl_hot(const ctl_args *args);

/* `threshold SKU [N]`: reads or sets a SKU's threshold for the
 * below-threshold event through GET/PUT /v1/skus/{sku}/threshold at
 * args->http (http.c, docs/events.md). */
int ctl_threshold(const ctl_args *args);

/* The exit code for a result code (see the table in --help). */
int ctl_exit_code(stock_code code);

/* Parses text as a decimal int64 into *value; false (and prints a usage
 * error naming what) when it is not one. */
bool ctl_parse_int64(const char *text, const char *what, int64_t *value);

/* Prints a usage error: "stockctl: <text>; see stockctl --help" on stderr,
 * or, when argv holds --json (a literal "--json" before any "--"), one JSON
 * failure on stdout with code INVALID and <text> as "message" (stderr
 * silent, as for every JSON failure). The caller exits 2 (1 when that JSON
 * could not be written). <text> is cut at CTL_USAGE_MESSAGE_MAX. */
#define CTL_USAGE_MESSAGE_MAX 512
void ctl_usage_error(const char *format, ...)
    __attribute__((format(printf, 1, 2)));

/* ---------------------------------------------------------------- output
 * Each prints a finished operation to stdout (text or JSON per json) or its
 * failure to stderr (text) / stdout (JSON), and returns the exit code. */

int ctl_print_level(const ctl_args *args, const char *verb, const stock_op *op);
int ctl_print_order(const ctl_args *args, const stock_op *op);
int ctl_print_sku(const ctl_args *args, const stock_op *op);
int ctl_print_line(const ctl_args *args, const stock_op *op);
int ctl_print_hold(const ctl_args *args, const stock_op *op);
int ctl_print_stats(const ctl_args *args, const char *backend,
                    stock_code code, const stock_stats *stats);
/* A backup taken (verb "backup") or restored ("restore") into folder. */
int ctl_print_backup(const ctl_args *args, const char *verb, const char *folder,
                     const stock_backup_info *info);
/* A move to a longer member list, done (stockctl reshard). */
int ctl_print_reshard(const ctl_args *args, const stock_reshard_info *info);
/* The library's log hook: an in-process store's messages (a torn tail cut
 * at open, why a close failed, a move's progress) go to stderr at NOTICE
 * and above, never into the output. */
void ctl_library_message(void *user, stock_log_level level, const char *message);
int ctl_reshard(const ctl_args *args);
/* A failure outside an op (the store would not open). */
int ctl_print_failure(const ctl_args *args, stock_code code,
                      const char *message);

#endif /* STOCKCTL_H */
