/*
 * main.c -- the conformance runner: reads the URI, opens the store once,
 * runs every group of tests against it, closes it, and exits non-zero if any
 * test failed. Every backend's suite script calls this same binary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

stock_t *conf_store;
const char *conf_uri;
stock_config conf_config;
bool conf_quick;
bool conf_holds;

/* The groups, one per file, in the order they run: the simple rules first,
 * so that a broken backend fails where it is easiest to see why. */
static const struct {
    const char *name;
    int (*run)(void);
} groups[] = {
    {"codes", conf_run_codes},             {"validation", conf_run_validation},
    {"set_add", conf_run_set_add},         {"deduct", conf_run_deduct},
    {"order", conf_run_order},             {"refund", conf_run_refund},
    {"batches", conf_run_batches},         {"concurrency", conf_run_concurrency},
    {"races", conf_run_races},             {"retries", conf_run_retries},
    {"holds", conf_run_holds},             {"model", conf_run_model},
    {"list", conf_run_list},
    {"close", conf_run_close},
};

static void usage(FILE *out)
{
    fprintf(out,
        "usage: conformance [--quick] [--filter GLOB] [--sync-in-caller] [URI]\n"
        "\n"
        "Runs the libstock conformance suite (docs/semantics.md: operations,\n"
        "holds, choices, invariants I1-I5 and I7) against the store named by URI, or\n"
        "by $STOCK_TEST_URI when no URI is given. Examples:\n"
        "  conformance /tmp/data                 the embedded engine (a data folder)\n"
        "  conformance stockd://127.0.0.1:7379    a running stockd\n"
        "  conformance postgres://localhost/stock\n"
        "\n"
        "The store need not be empty: every id the suite makes starts with a\n"
        "run-unique token, so runs may share a store, even at the same time.\n"
        "\n"
        "  --quick        smaller concurrency tests (also CONFORMANCE_QUICK=1);\n"
        "                 for sanitizer builds and slow backends\n"
        "  --filter GLOB  run only the tests whose name matches (* and ?)\n"
        "  --skip GLOB    leave out the tests whose name matches (* and ?)\n"
        "  --sync-in-caller  open with stock_config.sync_in_caller, as stockd\n"
        "                 does (the embedded engine syncs small batches in\n"
        "                 the submitting thread)\n"
        "  --help         this text\n"
        "\n"
        "CONFORMANCE_SEED=N replays the random walk of the model test (a\n"
        "failure prints its seed). CMOCKA_MESSAGE_OUTPUT=tap|xml|subunit\n"
        "changes the report format.\n"
        "Exit status: 0 if every test passed, 1 if any failed, 2 on bad usage\n"
        "or when the store cannot be opened.\n");
}

/* Parses argv; returns the URI or NULL after printing why. */
static const char *parse_args(int argc, char **argv)
{
    const char *uri = getenv("STOCK_TEST_URI");
    const char *quick = getenv("CONFORMANCE_QUICK");
    conf_quick = quick != NULL && strcmp(quick, "0") != 0 && quick[0] != '\0';
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(argv[i], "--quick") == 0) {
            conf_quick = true;
        } else if (strcmp(argv[i], "--sync-in-caller") == 0) {
            conf_config.sync_in_caller = true;
        } else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
            cmocka_set_test_filter(argv[++i]);
        } else if (strcmp(argv[i], "--skip") == 0 && i + 1 < argc) {
            cmocka_set_skip_filter(argv[++i]);
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "conformance: unknown option %s\n", argv[i]);
            return NULL;
        } else {
            uri = argv[i];
        }
    }
    if (uri == NULL || uri[0] == '\0')
        fprintf(stderr, "conformance: no URI given and STOCK_TEST_URI unset\n");
    return uri != NULL && uri[0] != '\0' ? uri : NULL;
}

/* Asks the store whether it keeps holds: reading an unknown hold is
 * NOT_FOUND if it does, UNSUPPORTED if not. */
static bool store_keeps_holds(void)
{
    char message[STOCK_MESSAGE_MAX] = "";
    stock_code code = stock_hold_get(conf_store, conf_id("hold"), NULL, message);
    if (code == STOCK_UNSUPPORTED)
        printf("conformance: holds are not supported here (UNSUPPORTED: %s): the holds "
               "group checks that answer instead, the model walk leaves holds out\n", message);
    return code != STOCK_UNSUPPORTED;
}

int main(int argc, char **argv)
{
    const char *uri = parse_args(argc, argv);
    if (uri == NULL) {
        usage(stderr);
        return 2;
    }
    conf_uri = uri;
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_open(uri, &conf_config, &conf_store, message);
    if (code != STOCK_OK) {
        fprintf(stderr, "conformance: cannot open %s: %s: %s\n", uri,
                stock_code_name(code), message);
        return 2;
    }
    printf("conformance: %s backend at %s, run token %s%s%s\n",
           stock_backend_name(conf_store), uri, conf_run_token(),
           conf_quick ? ", quick" : "", conf_config.sync_in_caller ? ", sync in caller" : "");
    conf_holds = store_keeps_holds();
    int failed = 0;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        printf("conformance: group %s\n", groups[i].name);
        fflush(stdout);
        failed += groups[i].run();
    }
    /* NULL if the close group failed to reopen the store. */
    code = stock_close(conf_store);
    if (code != STOCK_OK) {
        fprintf(stderr, "conformance: closing the store: %s\n",
                stock_code_name(code));
        failed++;
    }
    printf("conformance: %d failed\n", failed);
    return failed == 0 ? 0 : 1;
}
