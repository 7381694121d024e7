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
#include <sys/stat.h>

#include "server/config.h"

#define CONFIG_LINE_MAX 2048
#define CONFIG_LINES_MAX 10000
#define CONFIG_MAXCLIENTS_MAX 1000000
#define CONFIG_REQUEST_BYTES_MIN 4096
#define CONFIG_REQUEST_BYTES_MAX (512ULL << 20)
#define CONFIG_IDLE_TIMEOUT_MAX (7 * 24 * 3600)
/* --disk-min-free: 256 MiB by default, room for the snapshot of a few
 * million lines and the log meanwhile (docs/operations.md, "Sizing"); at
 * most 2^62, beyond any disk. */
#define CONFIG_DISK_MIN_FREE_DEFAULT (256ull << 20)
#define CONFIG_DISK_MIN_FREE_MAX (1ull << 62)

typedef bool (*setting_fn)(config *cfg, const char *value, char *why, size_t size);

typedef struct setting {
    const char *name;
    setting_fn apply;
    const char *help;
    bool secret;       /* its value is a secret: never echoed in a message */
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

/* A port, 0..65535 (0 = off). */
static bool parse_port(const char *value, int *port, char *why, size_t size)
{
    uint64_t n = 0;
    if (!parse_number(value, 0, 65535, &n, why, size))
        return false;
    *port = (int)n;
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

/* --persist-to: a libpq URI (the persister writes the postgres
 * backend's schema there). */
static bool set_persist_to(config *cfg, const char *value, char *why, size_t size)
{
    if (strncmp(value, "postgres://", 11) != 0 && strncmp(value, "postgresql://", 13) != 0) {
        snprintf(why, size, "must be a postgres:// or postgresql:// URI");
        return false;
    }
    return copy_text(cfg->persist_to, value, why, size);
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

static bool set_readonly_pass(config *cfg, const char *value, char *why, size_t size)
{
    return copy_text(cfg->readonly_pass, value, why, size);
}

static bool set_readonly_user(config *cfg, const char *value, char *why, size_t size)
{
    for (const char *p = value; *p != '\0'; p++)
        if (*p <= ' ' || *p > '~') {
            snprintf(why, size, "must be printable ASCII without spaces");
            return false;
        }
    if (strcmp(value, CONFIG_FULL_USER) == 0) {
        snprintf(why, size, "is the full-access user's name; choose another");
        return false;
    }
    return copy_text(cfg->readonly_user, value, why, size);
}

/* Refuses a file others may read when it holds a secret, as ssh refuses a
 * private key with group or world permissions. */
static bool private_enough(int fd, const char *path, char *why, size_t size)
{
    struct stat info;
    if (fstat(fd, &info) != 0) {
        snprintf(why, size, "%s: %s", path, strerror(errno));
        return false;
    }
    if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        snprintf(why, size, "%s: permissions %04o are too open: it holds a secret, so "
                 "no other user may read it (chmod 600 %s)", path,
                 (unsigned)(info.st_mode & 07777), path);
        return false;
    }
    return true;
}

/* Reads a secret from the first line of the file at path (its owner only
 * may read it) into target (CONFIG_TEXT_MAX bytes). */
static bool read_secret_file(char *target, const char *path, char *why, size_t size)
{
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        snprintf(why, size, "%s: %s", path, strerror(errno));
        return false;
    }
    char line[CONFIG_TEXT_MAX + 2] = "";
    bool ok = private_enough(fileno(file), path, why, size);
    if (ok && fgets(line, sizeof line, file) == NULL)
        line[0] = '\0';
    fclose(file);
    if (!ok)
        return false;
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] == '\0' || strlen(line) >= CONFIG_TEXT_MAX) {
        snprintf(why, size, "%s: the first line must hold the password, 1..%d bytes",
                 path, CONFIG_TEXT_MAX - 1);
        return false;
    }
    strcpy(target, line);
    return true;
}

static bool set_requirepass_file(config *cfg, const char *value, char *why, size_t size)
{
    return read_secret_file(cfg->requirepass, value, why, size);
}

static bool set_readonly_pass_file(config *cfg, const char *value, char *why, size_t size)
{
    return read_secret_file(cfg->readonly_pass, value, why, size);
}

static bool set_port(config *cfg, const char *value, char *why, size_t size)
{
    return parse_port(value, &cfg->port, why, size);
}

static bool set_http_port(config *cfg, const char *value, char *why, size_t size)
{
    return parse_port(value, &cfg->http_port, why, size);
}

static bool set_tls_port(config *cfg, const char *value, char *why, size_t size)
{
    return parse_port(value, &cfg->tls_port, why, size);
}

static bool set_tls_http_port(config *cfg, const char *value, char *why, size_t size)
{
    return parse_port(value, &cfg->tls_http_port, why, size);
}

static bool set_tls_cert_file(config *cfg, const char *value, char *why, size_t size)
{
    return copy_text(cfg->tls_cert_file, value, why, size);
}

/* The key file holds a secret: refused if others may read it. */
static bool set_tls_key_file(config *cfg, const char *value, char *why, size_t size)
{
    FILE *file = fopen(value, "r");
    if (file == NULL) {
        snprintf(why, size, "%s", strerror(errno));
        return false;
    }
    bool ok = private_enough(fileno(file), value, why, size);
    fclose(file);
    return ok && copy_text(cfg->tls_key_file, value, why, size);
}

static bool set_tls_ca_cert_file(config *cfg, const char *value, char *why, size_t size)
{
    return copy_text(cfg->tls_ca_cert_file, value, why, size);
}

static bool set_tls_auth_clients(config *cfg, const char *value, char *why, size_t size)
{
    if (strcmp(value, "yes") == 0)
        cfg->tls_auth_clients = CONFIG_TLS_AUTH_YES;
    else if (strcmp(value, "optional") == 0)
        cfg->tls_auth_clients = CONFIG_TLS_AUTH_OPTIONAL;
    else if (strcmp(value, "no") == 0)
        cfg->tls_auth_clients = CONFIG_TLS_AUTH_NO;
    else {
        snprintf(why, size, "must be yes, optional or no");
        return false;
    }
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

static bool set_disk_min_free(config *cfg, const char *value, char *why, size_t size)
{
    return parse_number(value, 0, CONFIG_DISK_MIN_FREE_MAX, &cfg->disk_min_free_bytes, why, size);
}

static bool set_idle_timeout(config *cfg, const char *value, char *why, size_t size)
{
    uint64_t n = 0;
    if (!parse_number(value, 0, CONFIG_IDLE_TIMEOUT_MAX, &n, why, size))
        return false;
    cfg->idle_timeout_s = (uint32_t)n;
    return true;
}

/* Parses yes or no. */
static bool parse_yes_no(const char *value, bool *out, char *why, size_t size)
{
    if (strcmp(value, "yes") == 0)
        *out = true;
    else if (strcmp(value, "no") == 0)
        *out = false;
    else {
        snprintf(why, size, "must be yes or no");
        return false;
    }
    return true;
}

static bool set_protected_mode(config *cfg, const char *value, char *why, size_t size)
{
    return parse_yes_no(value, &cfg->protected_mode, why, size);
}

static bool set_io_uring(config *cfg, const char *value, char *why, size_t size)
{
    return parse_yes_no(value, &cfg->io_uring, why, size);
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
    {"store", set_store, "URI     the store: a data folder (default ./stockd-data), stockd://, postgres://, shards:, redis://", false},
    {"persist-to", set_persist_to, "URI  with a redis:// store: run the persister (docs/persister.md) on a thread,\n"
     "                     moving the store's outbox into this PostgreSQL database (postgres://...)", false},
    {"port", set_port, "N        RESP port (default 7379, 0 = off)", false},
    {"http-port", set_http_port, "N   HTTP port (default 7380, 0 = off)", false},
    {"bind", set_bind, "ADDR     listen address, IPv4 or IPv6 (default 127.0.0.1)", false},
    {"requirepass", set_requirepass, "PASS  password of user default (full access): RESP AUTH, HTTP Bearer token;\n"
     "                     ps shows a flag to every local user: prefer requirepass-file", true},
    {"requirepass-file", set_requirepass_file, "PATH  the password from the first line of PATH (mode 600 or stricter)", false},
    {"readonly-pass", set_readonly_pass, "PASS  password of the read-only user (reads and /metrics only)", true},
    {"readonly-pass-file", set_readonly_pass_file, "PATH  the read-only password from PATH (mode 600 or stricter)", false},
    {"readonly-user", set_readonly_user, "NAME  the read-only user's name for AUTH NAME PASS (default reader)", false},
    {"tls-port", set_tls_port, "N    RESP over TLS port (default 0 = off)", false},
    {"tls-http-port", set_tls_http_port, "N  HTTPS port (default 0 = off)", false},
    {"tls-cert-file", set_tls_cert_file, "PATH  server certificate chain (PEM), for the TLS ports", false},
    {"tls-key-file", set_tls_key_file, "PATH  its private key (PEM, mode 600 or stricter)", false},
    {"tls-ca-cert-file", set_tls_ca_cert_file, "PATH  CA (PEM) that signs client certificates", false},
    {"tls-auth-clients", set_tls_auth_clients, "yes|optional|no  require a client certificate (default yes)", false},
    {"protected-mode", set_protected_mode, "yes|no  refuse a non-loopback --bind without a password (default yes)", false},
    {"maxclients", set_maxclients, "N  connections at once (default 10000)", false},
    {"max-request-bytes", set_max_request_bytes, "N  largest request (default 1048576)", false},
    {"idle-timeout", set_idle_timeout, "S  close clients idle, or not reading replies, S seconds (default 300, 0 = never)", false},
    {"disk-min-free", set_disk_min_free, "BYTES  below this much free disk the store is not ready (default 268435456, 0 = no check)", false},
    {"durability", set_durability, "sync|relaxed  fsync before replying (default sync)", false},
    {"io-uring", set_io_uring, "yes|no  with sync durability, start each fsync through io_uring and\n"
     "                     go on reading while it runs (default yes; no, or io_uring\n"
     "                     unavailable: the loop waits for each fsync)", false},
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
    printf("  --config FILE  read `name value` lines (the flags above, without --);\n"
           "                 refused if others may read it while it holds a password\n"
           "  --help, -h     print this and exit\n"
           "  --version      print the version and exit\n\n"
           "environment (applied before the flags):\n"
           "  %s   as --requirepass\n"
           "  %s  as --readonly-pass\n", CONFIG_ENV_REQUIREPASS, CONFIG_ENV_READONLY_PASS);
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
    cfg->disk_min_free_bytes = CONFIG_DISK_MIN_FREE_DEFAULT;
    cfg->idle_timeout_s = 300;
    cfg->durability = STOCK_DURABILITY_SYNC;
    cfg->protected_mode = true;
    cfg->io_uring = true;
    strcpy(cfg->readonly_user, "reader");
}

/* The environment's secrets, between the defaults and the settings: a
 * process's environment is readable by its own user only, unlike argv.
 * A value that does not fit is refused like a bad flag. */
static bool load_environment(config *cfg, char *message, size_t size)
{
    static const struct { const char *variable; size_t offset; } secrets[] = {
        {CONFIG_ENV_REQUIREPASS, offsetof(config, requirepass)},
        {CONFIG_ENV_READONLY_PASS, offsetof(config, readonly_pass)},
    };
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        const char *value = getenv(secrets[i].variable);
        if (value == NULL || value[0] == '\0')
            continue;
        char why[128];
        if (!copy_text((char *)cfg + secrets[i].offset, value, why, sizeof why)) {
            snprintf(message, size, "environment: %s %s", secrets[i].variable, why);
            return false;
        }
    }
    return true;
}

bool config_bind_is_loopback(const char *bind)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, bind, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;   /* 127.0.0.0/8 */
    if (inet_pton(AF_INET6, bind, &v6) != 1)
        return false;
    if (IN6_IS_ADDR_V4MAPPED(&v6))
        return v6.s6_addr[12] == 127;
    return IN6_IS_ADDR_LOOPBACK(&v6);
}

/* The persister moves a redis store's outbox: no other store has one. */
static bool persist_consistent(const config *cfg, char *message, size_t size)
{
    if (cfg->persist_to[0] == '\0' || strncmp(cfg->store, "redis://", 8) == 0)
        return true;
    snprintf(message, size, "--persist-to moves a redis store's outbox into PostgreSQL: it needs "
             "--store redis://..., and the store is '%.200s'", cfg->store);
    return false;
}

/* At least one port, and no port twice. */
static bool ports_consistent(const config *cfg, char *message, size_t size)
{
    const int ports[] = {cfg->port, cfg->http_port, cfg->tls_port, cfg->tls_http_port};
    const char *names[] = {"--port", "--http-port", "--tls-port", "--tls-http-port"};
    bool any = false;
    for (int i = 0; i < 4; i++) {
        any |= ports[i] != 0;
        for (int j = i + 1; j < 4; j++)
            if (ports[i] != 0 && ports[i] == ports[j]) {
                snprintf(message, size, "%s and %s are both %d", names[i], names[j], ports[i]);
                return false;
            }
    }
    if (!any)
        snprintf(message, size, "--port and --http-port are both 0 and no TLS port is set: "
                 "nothing to serve");
    return any;
}

/* A TLS port needs a certificate and key; client verification a CA. */
static bool tls_consistent(const config *cfg, char *message, size_t size)
{
    if (cfg->tls_port == 0 && cfg->tls_http_port == 0)
        return true;
    if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0') {
        snprintf(message, size, "a TLS port needs --tls-cert-file and --tls-key-file");
        return false;
    }
    if (cfg->tls_auth_clients != CONFIG_TLS_AUTH_NO && cfg->tls_ca_cert_file[0] == '\0') {
        snprintf(message, size, "--tls-auth-clients %s needs --tls-ca-cert-file, the CA that "
                 "signs client certificates (or --tls-auth-clients no)",
                 cfg->tls_auth_clients == CONFIG_TLS_AUTH_YES ? "yes (the default)" : "optional");
        return false;
    }
    return true;
}

/* A read-only password needs a full one (else every client has full
 * access anyway), and the two must differ (a Bearer token names its user
 * by the password alone). */
static bool credentials_consistent(const config *cfg, char *message, size_t size)
{
    if (cfg->readonly_pass[0] == '\0')
        return true;
    if (cfg->requirepass[0] == '\0') {
        snprintf(message, size, "a read-only password needs a full one too "
                 "(--requirepass-file): without it every client has full access");
        return false;
    }
    if (strcmp(cfg->readonly_pass, cfg->requirepass) == 0) {
        snprintf(message, size, "the read-only password is the full one: "
                 "a client could not be told apart; choose two passwords");
        return false;
    }
    return true;
}

/* Protected mode, as Redis has it: a server anyone on the network can
 * reach must not also let anyone in. Checked once every setting is read,
 * so the order of --bind and --requirepass does not matter. */
static bool protected_mode_allows(const config *cfg, char *message, size_t size)
{
    if (!cfg->protected_mode || cfg->requirepass[0] != '\0' || config_bind_is_loopback(cfg->bind))
        return true;
    snprintf(message, size,
             "protected mode: --bind %s is reachable from other hosts and no password is set, "
             "so anyone could change stock. Set a password (--requirepass-file PATH, or the "
             CONFIG_ENV_REQUIREPASS " environment variable), "
             "or bind to 127.0.0.1, or, "
             "if the network itself keeps strangers out, turn protection off explicitly "
             "with --protected-mode no", cfg->bind);
    return false;
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
    char why[CONFIG_TEXT_MAX + 256];
    if (!s->apply(cfg, value, why, sizeof why)) {
        if (s->secret)
            snprintf(message, size, "%s: %s %s", where, s->name, why);
        else
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
    bool ok = true, secret = false;
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
        } else {
            ok = apply(cfg, name, strlen(name), value, where, message, size);
            const setting *known = find_setting(name, strlen(name));
            secret |= known != NULL && known->secret;
        }
    }
    char why[CONFIG_TEXT_MAX + 256];
    if (ok && secret && !private_enough(fileno(file), path, why, sizeof why)) {
        snprintf(message, size, "--config %s", why);
        ok = false;
    }
    fclose(file);
    return ok;
}

void config_scrub_secrets(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0)
            continue;
        const char *name = argv[i] + 2;
        char *equals = strchr(name, '=');
        size_t name_len = equals != NULL ? (size_t)(equals - name) : strlen(name);
        const setting *s = find_setting(name, name_len);
        if (s == NULL || !s->secret)
            continue;
        char *value = equals != NULL ? equals + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (value != NULL)
            memset(value, '*', strlen(value));
    }
}

config_result config_from_args(config *cfg, int argc, char **argv,
                               char *message, size_t size)
{
    assert(cfg != NULL && message != NULL && size > 0);
    set_defaults(cfg);
    message[0] = '\0';
    if (!load_environment(cfg, message, size))
        return CONFIG_EXIT_BAD;
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
        const setting *s = find_setting(name, name_len);
        if (s != NULL && s->secret)
            cfg->secret_in_argv = s->name;
    }
    if (!credentials_consistent(cfg, message, size))
        return CONFIG_EXIT_BAD;
    if (!ports_consistent(cfg, message, size) || !tls_consistent(cfg, message, size) ||
        !persist_consistent(cfg, message, size))
        return CONFIG_EXIT_BAD;
    if (!protected_mode_allows(cfg, message, size))
        return CONFIG_EXIT_BAD;
    return CONFIG_RUN;
}
