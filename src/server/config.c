/*
 * config.c -- parses stockd's flags and config file (see config.h). One
 * table lists every setting with its parser, so the flags, the config file
 * and --help cannot drift apart.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"

#define CONFIG_LINE_MAX 2048
#define CONFIG_LINES_MAX 10000
#define CONFIG_MAXCLIENTS_MAX 1000000
#define CONFIG_REQUEST_BYTES_MIN 4096
#define CONFIG_REQUEST_BYTES_MAX (512ULL << 20)
#define CONFIG_IDLE_TIMEOUT_MAX (7 * 24 * 3600)

typedef bool (*setting_fn)(config *cfg, const char *value, char *why, size_t size);

typedef struct setting {
    const char *name;
    setting_fn apply;
    const char *help;
} setting;

/* Parses a whole decimal value in min..max. */
static bool parse_number(const char *value, uint64_t min, uint64_t max,
                         uint64_t *out, char *why, size_t size)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 ||
        n < min || n > max) {
        snprintf(why, size, "must be an integer in %" PRIu64 "..%" PRIu64, min, max);
        return false;
    }
    *out = n;
    return true;
}

static bool copy_text(char *target, const char *value, char *why, size_t size)
{
    if (value[0] == '\0' || strlen(value) >= CONFIG_TEXT_MAX) {
        snprintf(why, size, "must be 1..%d bytes", CONFIG_TEXT_MAX - 1);
        return false;
    }
    strcpy(target, value);
    return true;
}

static bool set_store(config *cfg, const char *value, char *why, size_t size)
{
    return copy_text(cfg->store, value, why, size);
}

static bool set_bind(config *cfg, const char *value, char *why, size_t size)
{
    unsigned char address[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, value, address) != 1 && inet_pton(AF_INET6, value, address) != 1) {
        snprintf(why, size, "is not an IPv4 or IPv6 address (e.g. 127.0.0.1, 0.0.0.0, ::1)");
        return false;
    }
    return copy_text(cfg->bind, value, why, size);
}

static bool set_requirepass(config *cfg, const char *value, char *why, size_t size)
{
    return copy_text(cfg->requirepass, value, why, size);
}

static bool set_port(config *cfg, const char *value, char *why, size_t size)
{
    uint64_t n = 0;
    if (!parse_number(value, 0, 65535, &n, why, size))
        return false;
    cfg->port = (int)n;
    return true;
}

static bool set_http_port(config *cfg, const char *value, char *why, size_t size)
{
    uint64_t n = 0;
    if (!parse_number(value, 0, 65535, &n, why, size))
        return false;
    cfg->http_port = (int)n;
    return true;
}

static bool set_maxclients(config *cfg, const char *value, char *why, size_t size)
{
    uint64_t n = 0;
    if (!parse_number(value, 1, CONFIG_MAXCLIENTS_MAX, &n, why, size))
        return false;
    cfg->maxclients = (uint32_t)n;
    return true;
}

static bool set_max_request_bytes(config *cfg, const char *value, char *why, size_t size)
{
    return parse_number(value, CONFIG_REQUEST_BYTES_MIN, CONFIG_REQUEST_BYTES_MAX,
                        &cfg->max_request_bytes, why, size);
}

static bool set_idle_timeout(config *cfg, const char *value, char *why, size_t size)
{
    uint64_t n = 0;
    if (!parse_number(value, 0, CONFIG_IDLE_TIMEOUT_MAX, &n, why, size))
        return false;
    cfg->idle_timeout_s = (uint32_t)n;
    return true;
}

static bool set_durability(config *cfg, const char *value, char *why, size_t size)
{
    if (strcmp(value, "sync") == 0)
        cfg->durability = STOCK_DURABILITY_SYNC;
    else if (strcmp(value, "relaxed") == 0)
        cfg->durability = STOCK_DURABILITY_RELAXED;
    else {
        snprintf(why, size, "must be sync or relaxed");
        return false;
    }
    return true;
}

static const setting settings[] = {
    {"store", set_store, "URI     the store: a data folder (default ./stockd-data), stockd://, postgres://"},
    {"port", set_port, "N        RESP port (default 7379, 0 = off)"},
    {"http-port", set_http_port, "N   HTTP port (default 7380, 0 = off)"},
    {"bind", set_bind, "ADDR     listen address, IPv4 or IPv6 (default 127.0.0.1)"},
    {"requirepass", set_requirepass, "PASS  password: RESP AUTH, HTTP Bearer token"},
    {"maxclients", set_maxclients, "N  connections at once (default 10000)"},
    {"max-request-bytes", set_max_request_bytes, "N  largest request (default 1048576)"},
    {"idle-timeout", set_idle_timeout, "S  close clients idle, or not reading replies, S seconds (default 300, 0 = never)"},
    {"durability", set_durability, "sync|relaxed  fsync before replying (default sync)"},
};

#define SETTINGS_COUNT (sizeof settings / sizeof settings[0])

static const setting *find_setting(const char *name, size_t len)
{
    for (size_t i = 0; i < SETTINGS_COUNT; i++)
        if (strlen(settings[i].name) == len && strncmp(settings[i].name, name, len) == 0)
            return &settings[i];
    return NULL;
}

static void print_help(void)
{
    printf("usage: stockd [--flag value]...\n"
           "stockd serves libstock over RESP and HTTP/JSON.\n\n");
    for (size_t i = 0; i < SETTINGS_COUNT; i++)
        printf("  --%s %s\n", settings[i].name, settings[i].help);
    printf("  --config FILE  read `name value` lines (the flags above, without --)\n"
           "  --help, -h     print this and exit\n"
           "  --version      print the version and exit\n");
}

static void set_defaults(config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->store, "./stockd-data");
    strcpy(cfg->bind, "127.0.0.1");
    cfg->port = 7379;
    cfg->http_port = 7380;
    cfg->maxclients = 10000;
    cfg->max_request_bytes = 1 << 20;
    cfg->idle_timeout_s = 300;
    cfg->durability = STOCK_DURABILITY_SYNC;
}

/* Applies one setting; where names the source for the message. */
static bool apply(config *cfg, const char *name, size_t name_len,
                  const char *value, const char *where, char *message, size_t size)
{
    const setting *s = find_setting(name, name_len);
    if (s == NULL) {
        snprintf(message, size, "%s: unknown setting '%.*s' (see --help)",
                 where, (int)name_len, name);
        return false;
    }
    char why[256];
    if (!s->apply(cfg, value, why, sizeof why)) {
        snprintf(message, size, "%s: %s '%s' %s", where, s->name, value, why);
        return false;
    }
    return true;
}

/* Splits one config-file line into name and value; false if malformed. */
static bool split_line(char *line, char **name, char **value)
{
    line[strcspn(line, "\r\n")] = '\0';
    *name = line + strspn(line, " \t");
    char *gap = *name + strcspn(*name, " \t");
    if (*gap == '\0')
        return false;
    *gap = '\0';
    *value = gap + 1 + strspn(gap + 1, " \t");
    char *end = *value + strlen(*value);
    while (end > *value && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    return **value != '\0';
}

static bool load_file(config *cfg, const char *path, char *message, size_t size)
{
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        snprintf(message, size, "--config %s: %s", path, strerror(errno));
        return false;
    }
    char line[CONFIG_LINE_MAX], where[CONFIG_TEXT_MAX + 32];
    bool ok = true;
    for (int number = 1; ok && fgets(line, sizeof line, file) != NULL; number++) {
        snprintf(where, sizeof where, "%s:%d", path, number);
        char *name = NULL, *value = NULL;
        char *first = line + strspn(line, " \t\r\n");
        if (*first == '#' || *first == '\0')
            continue;
        if (number > CONFIG_LINES_MAX || (strchr(line, '\n') == NULL && !feof(file))) {
            snprintf(message, size, "%s: line too long or too many lines", where);
            ok = false;
        } else if (!split_line(line, &name, &value)) {
            snprintf(message, size, "%s: expected 'name value'", where);
            ok = false;
        } else
            ok = apply(cfg, name, strlen(name), value, where, message, size);
    }
    fclose(file);
    return ok;
}

config_result config_from_args(config *cfg, int argc, char **argv,
                               char *message, size_t size)
{
    assert(cfg != NULL && message != NULL && size > 0);
    set_defaults(cfg);
    message[0] = '\0';
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help();
            return CONFIG_EXIT_OK;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("stockd %s\n", STOCK_VERSION);
            return CONFIG_EXIT_OK;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(message, size, "unexpected argument '%s' (see --help)", arg);
            return CONFIG_EXIT_BAD;
        }
        const char *name = arg + 2, *equals = strchr(name, '=');
        size_t name_len = equals != NULL ? (size_t)(equals - name) : strlen(name);
        const char *value = equals != NULL ? equals + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (value == NULL) {
            snprintf(message, size, "--%s needs a value (see --help)", name);
            return CONFIG_EXIT_BAD;
        }
        bool ok = name_len == 6 && strncmp(name, "config", 6) == 0
            ? load_file(cfg, value, message, size)
            : apply(cfg, name, name_len, value, "flag", message, size);
        if (!ok)
            return CONFIG_EXIT_BAD;
    }
    if (cfg->port == 0 && cfg->http_port == 0) {
        snprintf(message, size, "--port and --http-port are both 0: nothing to serve");
        return CONFIG_EXIT_BAD;
    }
    if (cfg->port != 0 && cfg->port == cfg->http_port) {
        snprintf(message, size, "--port and --http-port are both %d", cfg->port);
        return CONFIG_EXIT_BAD;
    }
    return CONFIG_RUN;
}
