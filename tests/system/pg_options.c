/*
 * pg_options.c -- checks how stock_open treats the postgres backend's URI
 * options and an unreachable server.
 *
 *   pg_options URI          (a reachable server, without a query string)
 *
 * Malformed stock_* parameters are INVALID with a message naming them, and
 * nothing is opened; libpq's own parameters pass through; the config fields
 * work like the parameters; a port nobody listens on is UNAVAILABLE.
 */
#include <stdio.h>
#include <string.h>

#include "stock.h"

#define OPTIONS_URI_MAX 1024

typedef struct options_case {
    const char *suffix;      /* appended to the URI */
    stock_code expect;
    const char *words;       /* in the message when failing */
} options_case;

static const options_case cases[] = {
    {"?stock_merge=2", STOCK_INVALID, "stock_merge"},
    {"?stock_buckets=0", STOCK_INVALID, "stock_buckets"},
    {"?stock_buckets=65", STOCK_INVALID, "stock_buckets"},
    {"?stock_buckets=4x", STOCK_INVALID, "stock_buckets"},
    {"?stock_replica=mysql%3A%2F%2Fx", STOCK_INVALID, "stock_replica"},
    {"?stock_replica=postgres%3A%2F%2F%zz", STOCK_INVALID, "stock_replica"},
    {"?stock_replica=postgres%3A%2F%2Fx%00y", STOCK_INVALID, "stock_replica: %00"},
    {"?stock_timeout_ms=99", STOCK_INVALID, "stock_timeout_ms"},
    {"?stock_timeout_ms=3600001", STOCK_INVALID, "stock_timeout_ms"},
    {"?stock_timeout_ms=2s", STOCK_INVALID, "stock_timeout_ms"},
    {"?stock_timeout_ms=", STOCK_INVALID, "stock_timeout_ms"},
    {"?stock_bucket=4", STOCK_INVALID, "unknown parameter 'stock_bucket'"},
    {"?connect_timeout=5&stock_merge=1&stock_buckets=64&application_name=x", STOCK_OK, ""},
    {"?stock_timeout_ms=100&keepalives_idle=30", STOCK_OK, ""},
    {"?stock_merge=0", STOCK_OK, ""},
};

static int check(const char *uri, const stock_config *config, stock_code expect,
                 const char *words)
{
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX] = "";
    stock_code code = stock_open(uri, config, &store, message);
    bool ok = code == expect && (expect == STOCK_OK) == (store != NULL) &&
              (expect == STOCK_OK || strstr(message, words) != NULL);
    printf("%s %s -> %s %s\n", ok ? "ok  " : "FAIL", uri, stock_code_name(code), message);
    if (store != NULL && strcmp(stock_backend_name(store), "postgres") != 0) {
        printf("FAIL backend %s\n", stock_backend_name(store));
        ok = false;
    }
    stock_close(store);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 2 || strchr(argv[1], '?') != NULL) {
        fprintf(stderr, "usage: pg_options URI (without a query string)\n");
        return 2;
    }
    char uri[OPTIONS_URI_MAX];
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(uri, sizeof uri, "%s%s", argv[1], cases[i].suffix);
        failures += check(uri, NULL, cases[i].expect, cases[i].words);
    }
    stock_config bad = {.buckets = 65};
    failures += check(argv[1], &bad, STOCK_INVALID, "buckets");
    stock_config not_postgres = {.replica_uri = "redis://127.0.0.1:1"};
    failures += check(argv[1], &not_postgres, STOCK_INVALID, "replica_uri");
    stock_config good = {.buckets = 8, .no_merge = true};
    failures += check(argv[1], &good, STOCK_OK, "");
    /* Port 1 on loopback: nothing listens there. */
    failures += check("postgresql://postgres@127.0.0.1:1/postgres", NULL,
                      STOCK_UNAVAILABLE, "cannot connect");
    printf("pg_options: %d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
