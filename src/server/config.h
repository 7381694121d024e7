/*
 * config.h -- stockd's settings: defaults, command-line flags and the config
 * file (`key value` lines with the flags' names). Every value is checked
 * here, before anything starts, and a bad one is named in a clear message.
 */
#ifndef STOCK_SERVER_CONFIG_H
#define STOCK_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stock.h"

#define CONFIG_TEXT_MAX 1024            /* bytes of a URI, address or password */
#define CONFIG_MESSAGE_MAX 1200         /* bytes of a config error message */
#define CONFIG_FULL_USER "default"      /* the full-access user, as Redis names it */
#define CONFIG_ENV_REQUIREPASS "STOCKD_REQUIREPASS"       /* environment: requirepass */
#define CONFIG_ENV_READONLY_PASS "STOCKD_READONLY_PASS"   /* environment: readonly-pass */

/* --tls-auth-clients: whether a TLS client must show a certificate signed
 * by --tls-ca-cert-file (mutual TLS). */
typedef enum config_tls_auth {
    CONFIG_TLS_AUTH_YES = 0,   /* required (the default, as in Redis) */
    CONFIG_TLS_AUTH_OPTIONAL,  /* checked if shown */
    CONFIG_TLS_AUTH_NO         /* not asked for */
} config_tls_auth;

typedef struct config {
    char store[CONFIG_TEXT_MAX];        /* store URI, default ./stockd-data */
    char persist_to[CONFIG_TEXT_MAX];   /* the persister's database, "" = no persister */
    char bind[CONFIG_TEXT_MAX];         /* listen address, default 127.0.0.1 */
    int port;                           /* RESP port, 0 = off, default 7379 */
    int http_port;                      /* HTTP port, 0 = off, default 7380 */
    int tls_port;                       /* RESP over TLS, 0 = off (default) */
    int tls_http_port;                  /* HTTPS, 0 = off (default) */
    char tls_cert_file[CONFIG_TEXT_MAX];  /* PEM certificate chain */
    char tls_key_file[CONFIG_TEXT_MAX];   /* PEM private key */
    char tls_ca_cert_file[CONFIG_TEXT_MAX];  /* PEM CA for client certificates */
    config_tls_auth tls_auth_clients;
    char requirepass[CONFIG_TEXT_MAX];  /* user default's password, "" = none */
    char readonly_user[CONFIG_TEXT_MAX];  /* the read-only user's name */
    char readonly_pass[CONFIG_TEXT_MAX];  /* its password, "" = no such user */
    const char *secret_in_argv;         /* a secret setting given as a flag, or NULL */
    uint32_t maxclients;                /* connections at once, both ports */
    uint64_t max_request_bytes;         /* largest request (RESP or HTTP) */
    uint32_t idle_timeout_s;            /* close idle clients, 0 = never */
    uint64_t disk_min_free_bytes;       /* not ready below this, 0 = off */
    stock_durability durability;
    bool protected_mode;                /* refuse a public bind with no password */
    bool io_uring;                      /* sync through the store's io_uring */
} config;

typedef enum config_result {
    CONFIG_RUN,      /* *cfg is complete: start the server */
    CONFIG_EXIT_OK,  /* --help or --version was printed: exit 0 */
    CONFIG_EXIT_BAD  /* message says what is wrong: exit 2 */
} config_result;

/*
 * Fills *cfg with the defaults, then applies argv[1..argc) in order; a
 * `--config FILE` applies the file's lines where it appears, so later flags
 * override it. Flags are `--name value` or `--name=value`. The secrets in
 * the environment (CONFIG_ENV_*) apply before any flag.
 *
 * message   out: on CONFIG_EXIT_BAD the reason, NUL-terminated (size bytes;
 *           CONFIG_MESSAGE_MAX is enough).
 * Prints --help and --version text to stdout itself.
 */
config_result config_from_args(config *cfg, int argc, char **argv,
                               char *message, size_t size);

/* Overwrites the values of secret flags (--requirepass, --readonly-pass)
 * in argv with '*', so that ps no longer shows them. Call after
 * config_from_args, which keeps copies; a reader of the process's command
 * line before this call still saw them, hence the warning in the log. */
void config_scrub_secrets(int argc, char **argv);

/* True if bind (an IPv4 or IPv6 address) is a loopback address:
 * 127.0.0.0/8, ::1 or ::ffff:127.x.y.z. */
bool config_bind_is_loopback(const char *bind);

#endif /* STOCK_SERVER_CONFIG_H */
