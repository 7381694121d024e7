/*
 * embed_log.c -- helper of tests/suites/11-header.sh: a program that embeds
 * libstock as a stranger would, through include/stock.h alone, and checks
 * that the library tells it things through the log hook and never prints.
 *
 *   embed_log version        prints "MAJOR.MINOR.PATCH STOCK_VERSION
 *                            stock_version()" (header macros, then library)
 *   embed_log write DIR      opens DIR (embedded) with a log hook, sets SKU S
 *                            and deducts EMBED_LINES lines, closes; the hook
 *                            must hear nothing
 *   embed_log reopen DIR     after the suite tore the log's tail: opens DIR
 *                            with the hook, which must hear that recovery cut
 *                            a torn tail (a notice), and finds every line
 *   embed_log silent DIR     the same reopen without a hook (the default):
 *                            stock_stats must show the cut
 *
 * Everything the hook hears is printed on stdout ("heard LEVEL: message");
 * the suite checks that stderr stays empty. Exit 0 when everything holds,
 * 1 otherwise.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "stock.h"

#define EMBED_LINES 10
#define EMBED_STOCK 100
#define EMBED_HEARD_MAX 16
#define EMBED_TORN_NOTICE "cut a torn tail of "

/* What the hook heard. The hook may run on several threads at once. */
typedef struct heard_log {
    pthread_mutex_t mutex;
    unsigned count;
    stock_log_level levels[EMBED_HEARD_MAX];
    char messages[EMBED_HEARD_MAX][512];
} heard_log;

static heard_log heard = {.mutex = PTHREAD_MUTEX_INITIALIZER};

static void hear(void *user, stock_log_level level, const char *message)
{
    heard_log *log = user;
    pthread_mutex_lock(&log->mutex);
    if (log->count < EMBED_HEARD_MAX) {
        log->levels[log->count] = level;
        snprintf(log->messages[log->count], sizeof log->messages[0], "%s", message);
    }
    log->count++;
    pthread_mutex_unlock(&log->mutex);
}

static const char *level_name(stock_log_level level)
{
    static const char *const names[] = {"ERROR", "WARNING", "NOTICE", "DEBUG"};
    return (unsigned)level < sizeof names / sizeof names[0] ? names[level] : "?";
}

/* Prints what was heard; true if it is exactly one notice of a torn tail
 * (want_torn) or nothing at all (!want_torn). */
static bool heard_as_expected(bool want_torn)
{
    unsigned kept = heard.count < EMBED_HEARD_MAX ? heard.count : EMBED_HEARD_MAX;
    for (unsigned i = 0; i < kept; i++)
        printf("heard %s: %s\n", level_name(heard.levels[i]), heard.messages[i]);
    if (!want_torn)
        return heard.count == 0;
    return heard.count == 1 && heard.levels[0] == STOCK_LOG_NOTICE &&
           strncmp(heard.messages[0], EMBED_TORN_NOTICE,
                   strlen(EMBED_TORN_NOTICE)) == 0 &&
           strchr(heard.messages[0], '\n') == NULL;
}

static int fail(const char *what, const char *detail)
{
    printf("embed_log: FAIL: %s: %s\n", what, detail);
    return 1;
}

static void line_id(char id[16], int i)
{
    snprintf(id, 16, "L%d", i);
}

static int write_store(stock_t *store)
{
    char message[STOCK_MESSAGE_MAX], id[16];
    if (stock_set(store, "S", EMBED_STOCK, NULL, NULL, message) != STOCK_OK)
        return fail("set", message);
    for (int i = 0; i < EMBED_LINES; i++) {
        line_id(id, i);
        if (stock_deduct(store, id, "S", 1, NULL, message) != STOCK_OK)
            return fail("deduct", message);
    }
    return 0;
}

/* Every line written is there, and S's totals add up. */
static int check_store(stock_t *store)
{
    char message[STOCK_MESSAGE_MAX], id[16];
    for (int i = 0; i < EMBED_LINES; i++) {
        line_id(id, i);
        if (stock_line(store, id, NULL, message) != STOCK_OK)
            return fail("line lost", id);
    }
    stock_sku_info info;
    if (stock_get(store, "S", &info, message) != STOCK_OK)
        return fail("get", message);
    if (info.deducted != EMBED_LINES || info.available != EMBED_STOCK - EMBED_LINES)
        return fail("totals", "S does not have its deductions");
    return 0;
}

/* Opens dir (with the hook if hooked), runs write or check, closes. */
static int run(const char *dir, bool hooked, bool write)
{
    stock_config config = {0};
    if (hooked) {
        config.log = hear;
        config.log_user = &heard;
    }
    stock_t *store;
    char message[STOCK_MESSAGE_MAX];
    if (stock_open(dir, &config, &store, message) != STOCK_OK)
        return fail("open", message);
    stock_stats stats;
    int result = write ? write_store(store) : check_store(store);
    if (result == 0 && stock_get_stats(store, &stats) == STOCK_OK && !write &&
        stats.recovery_torn_bytes == 0)
        result = fail("stats", "recovery_torn_bytes is 0 after a torn tail");
    if (stock_close(store) != STOCK_OK)
        result = fail("close", "STOCK_IO");
    return result;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "version") == 0) {
        printf("%d.%d.%d %s %s\n", STOCK_VERSION_MAJOR, STOCK_VERSION_MINOR,
               STOCK_VERSION_PATCH, STOCK_VERSION, stock_version());
        return 0;
    }
    if (argc != 3) {
        printf("usage: embed_log version | write DIR | reopen DIR | silent DIR\n");
        return 1;
    }
    const char *mode = argv[1], *dir = argv[2];
    bool write = strcmp(mode, "write") == 0;
    bool reopen = strcmp(mode, "reopen") == 0;
    if (!write && !reopen && strcmp(mode, "silent") != 0)
        return fail("mode", mode);
    int result = run(dir, write || reopen, write);
    if (!heard_as_expected(reopen))
        result = fail("log hook", reopen ? "did not hear exactly one torn-tail notice"
                                         : "heard something");
    return result;
}
