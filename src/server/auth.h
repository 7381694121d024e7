/*
 * auth.h -- who a client is and what it may do, for both protocols: the
 * users (--requirepass's "default", with full access, and the optional
 * read-only user), the one constant-time password check that RESP AUTH,
 * HELLO AUTH and HTTP Bearer tokens share, and the per-address limit on
 * failed attempts that makes guessing a password slow.
 *
 * Everything here runs on the loop thread.
 */
#ifndef STOCK_SERVER_AUTH_H
#define STOCK_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/config.h"

#define AUTH_FAILURES_MAX 10            /* failed attempts per address per window */
#define AUTH_WINDOW_MS 60000            /* the window, and how long a limit lasts */
#define AUTH_ADDRESSES_MAX 1024         /* addresses remembered (a hash table) */
#define AUTH_ADDRESS_MAX 64             /* bytes of a printed IPv6 address */

/* What a client may do, in increasing order: a command or route names the
 * least role it needs. */
typedef enum auth_role {
    AUTH_NONE = 0,     /* not authenticated: AUTH, HELLO, QUIT, /healthz */
    AUTH_READ_ONLY,    /* reads: STOCK, SKUINFO, LINEINFO, GET routes, /metrics */
    AUTH_FULL          /* everything */
} auth_role;

/* One address's failed attempts in the current window. */
typedef struct auth_entry {
    char address[AUTH_ADDRESS_MAX];    /* "" = free */
    uint32_t failures;
    uint64_t window_start_ms;
} auth_entry;

typedef struct auth_limiter {
    auth_entry entries[AUTH_ADDRESSES_MAX];
} auth_limiter;

/* The role of a client that has not authenticated: AUTH_FULL when no
 * password is configured, else AUTH_NONE. */
auth_role auth_initial_role(const config *cfg);

/*
 * The role that user (NULL: any user, by the password alone, as
 * `AUTH pass` and Bearer tokens do) with password earns, or AUTH_NONE if
 * the pair is wrong. Both users' passwords are compared in full, in time
 * that depends on the lengths only, whoever matches.
 */
auth_role auth_check(const config *cfg, const char *user, size_t user_len,
                     const char *password, size_t password_len);

/* The user name of role (AUTH_READ_ONLY or AUTH_FULL), for messages. */
const char *auth_user_name(const config *cfg, auth_role role);

/* True if address has used up its failed attempts; *retry_s says when it
 * may try again. A limited address's passwords are not even checked. */
bool auth_limited(auth_limiter *limiter, const char *address, uint64_t now_ms,
                  uint32_t *retry_s);

/* Counts a failed attempt from address; true if this one reached the
 * limit (the caller logs that once). */
bool auth_failed(auth_limiter *limiter, const char *address, uint64_t now_ms);

struct conn;

typedef enum auth_outcome {
    AUTH_ACCEPTED,     /* c->role is the user's */
    AUTH_REFUSED,      /* a wrong user or password; c->role is unchanged */
    AUTH_THROTTLED     /* c's address failed too often: nothing was checked */
} auth_outcome;

/*
 * One authentication attempt by connection c, over either protocol: checks
 * the address's limit, then user (NULL: by password alone) and password;
 * counts and logs a failure (address and user, never the password). On
 * AUTH_ACCEPTED *role is the user's (a RESP session keeps it in c->role;
 * an HTTP request holds it for itself alone); *retry_s is set when
 * AUTH_THROTTLED.
 */
auth_outcome auth_attempt(struct conn *c, const char *user, size_t user_len,
                          const char *password, size_t password_len,
                          auth_role *role, uint32_t *retry_s);

#endif /* STOCK_SERVER_AUTH_H */
