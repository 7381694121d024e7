/*
 * auth.c -- users, the constant-time password check and the limit on
 * failed attempts per address (see auth.h).
 */
#include <assert.h>
#include <string.h>

#include "server/auth.h"
#include "server/conn.h"
#include "server/log.h"

#define AUTH_PROBES 8   /* slots tried for one address before evicting */

auth_role auth_initial_role(const config *cfg)
{
    return cfg->requirepass[0] == '\0' ? AUTH_FULL : AUTH_NONE;
}

/* True if given equals secret (NUL-terminated). Every byte of given is
 * compared whatever differs first, so the time tells nothing about how
 * much of a guess was right. */
static bool equal_in_constant_time(const char *given, size_t given_len, const char *secret)
{
    size_t len = strlen(secret);
    assert(len > 0);
    unsigned char differ = (unsigned char)(given_len != len);
    for (size_t i = 0; i < given_len; i++)
        differ |= (unsigned char)(given[i] ^ secret[i < len ? i : 0]);
    return differ == 0;
}

static bool user_is(const char *user, size_t user_len, const char *name)
{
    return user == NULL || (strlen(name) == user_len && memcmp(user, name, user_len) == 0);
}

auth_role auth_check(const config *cfg, const char *user, size_t user_len,
                     const char *password, size_t password_len)
{
    assert(password != NULL);
    if (cfg->requirepass[0] == '\0')
        return AUTH_NONE;
    /* Both comparisons always run: which user matched must not show. */
    bool full = equal_in_constant_time(password, password_len, cfg->requirepass);
    bool reader = cfg->readonly_pass[0] != '\0' &&
                  equal_in_constant_time(password, password_len, cfg->readonly_pass);
    if (full && user_is(user, user_len, CONFIG_FULL_USER))
        return AUTH_FULL;
    if (reader && user_is(user, user_len, cfg->readonly_user))
        return AUTH_READ_ONLY;
    return AUTH_NONE;
}

const char *auth_user_name(const config *cfg, auth_role role)
{
    assert(role != AUTH_NONE);
    return role == AUTH_FULL ? CONFIG_FULL_USER : cfg->readonly_user;
}

/* ------------------------------------------------------------- limiter */

static uint32_t address_hash(const char *address)
{
    uint32_t hash = 2166136261u;   /* FNV-1a */
    for (const char *p = address; *p != '\0'; p++)
        hash = (hash ^ (unsigned char)*p) * 16777619u;
    return hash;
}

static bool expired(const auth_entry *entry, uint64_t now_ms)
{
    return entry->address[0] == '\0' || now_ms - entry->window_start_ms >= AUTH_WINDOW_MS;
}

/* The entry of address, or NULL if it has none (create false); with create,
 * a fresh one in a free or expired slot, or in the oldest of its probes. */
static auth_entry *find(auth_limiter *limiter, const char *address, uint64_t now_ms, bool create)
{
    assert(strlen(address) < AUTH_ADDRESS_MAX);
    uint32_t start = address_hash(address);
    auth_entry *spare = NULL;
    for (uint32_t i = 0; i < AUTH_PROBES; i++) {
        auth_entry *entry = &limiter->entries[(start + i) % AUTH_ADDRESSES_MAX];
        if (strcmp(entry->address, address) == 0 && !expired(entry, now_ms))
            return entry;
        /* Prefer a free or expired slot, else the oldest window. */
        if (spare == NULL)
            spare = entry;
        else if (!expired(spare, now_ms) &&
                 (expired(entry, now_ms) || entry->window_start_ms < spare->window_start_ms))
            spare = entry;
    }
    if (!create)
        return NULL;
    strcpy(spare->address, address);
    spare->failures = 0;
    spare->window_start_ms = now_ms;
    return spare;
}

bool auth_limited(auth_limiter *limiter, const char *address, uint64_t now_ms,
                  uint32_t *retry_s)
{
    const auth_entry *entry = find(limiter, address, now_ms, false);
    if (entry == NULL || entry->failures < AUTH_FAILURES_MAX)
        return false;
    uint64_t left_ms = AUTH_WINDOW_MS - (now_ms - entry->window_start_ms);
    *retry_s = (uint32_t)((left_ms + 999) / 1000);
    return true;
}

bool auth_failed(auth_limiter *limiter, const char *address, uint64_t now_ms)
{
    auth_entry *entry = find(limiter, address, now_ms, true);
    assert(entry != NULL && entry->failures < AUTH_FAILURES_MAX);
    return ++entry->failures == AUTH_FAILURES_MAX;
}

/* ------------------------------------------------------------ attempts */

#define AUTH_USER_ECHO_MAX 32   /* bytes of a user name written to the log */

auth_outcome auth_attempt(conn *c, const char *user, size_t user_len,
                          const char *password, size_t password_len,
                          auth_role *role, uint32_t *retry_s)
{
    server *srv = c->srv;
    uint64_t now_ms = server_now_ms(srv);
    if (auth_limited(&srv->auth, c->peer, now_ms, retry_s)) {
        srv->counters.auth_failures++;
        return AUTH_THROTTLED;
    }
    *role = auth_check(srv->cfg, user, user_len, password, password_len);
    if (*role != AUTH_NONE)
        return AUTH_ACCEPTED;
    srv->counters.auth_failures++;
    /* The user name is the client's text: printable bytes only, cut short. */
    char name[AUTH_USER_ECHO_MAX + 1] = "";
    size_t n = 0;
    for (size_t i = 0; user != NULL && i < user_len && n < AUTH_USER_ECHO_MAX; i++)
        name[n++] = user[i] > ' ' && user[i] <= '~' ? user[i] : '?';
    name[n] = '\0';
    log_warn("client %llu (%s): authentication failed%s%s%s", (unsigned long long)c->id,
             c->peer, user != NULL ? " for user '" : "", name, user != NULL ? "'" : "");
    if (auth_failed(&srv->auth, c->peer, now_ms))
        log_warn("%s: %d failed authentications in %d s: its attempts are refused for the "
                 "rest of that time", c->peer, AUTH_FAILURES_MAX, AUTH_WINDOW_MS / 1000);
    return AUTH_REFUSED;
}
