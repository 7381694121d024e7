/*
 * helpers.c -- run-unique identifiers, the SKU model and the checks the
 * tests share (see conformance.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "conformance.h"

/* "<time hex>-<pid hex>-<random hex>": at most 8 + 1 + 8 + 1 + 8 bytes. */
#define TOKEN_SIZE 32

const char *conf_run_token(void)
{
    static char token[TOKEN_SIZE];
    if (token[0] == '\0') {
        uint32_t random_bits = 0;
        if (getrandom(&random_bits, sizeof random_bits, 0) != sizeof random_bits)
            random_bits = (uint32_t)conf_now_us();
        snprintf(token, sizeof token, "%x-%x-%08x", (unsigned)time(NULL),
                 (unsigned)getpid(), random_bits);
    }
    return token;
}

const char *conf_id(const char *kind)
{
    static char ring[CONF_ID_RING][CONF_ID_SIZE];
    static uint64_t issued;
    char *id = ring[issued % CONF_ID_RING];
    int len = snprintf(id, CONF_ID_SIZE, "%s.%s%" PRIu64, conf_run_token(),
                       kind, issued);
    issued++;
    assert_true(len > 0 && len < CONF_ID_SIZE);
    return id;
}

void conf_long_id(const char *kind, char out[CONF_ID_SIZE])
{
    const char *id = conf_id(kind);
    size_t len = strlen(id);
    memcpy(out, id, len);
    memset(out + len, '~', STOCK_ID_MAX - len);
    out[STOCK_ID_MAX] = '\0';
}

int64_t conf_now_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

stock_code conf_run(stock_op *op)
{
    stock_code code = stock_execute(conf_store, op, 1);
    assert_code(code, STOCK_OK, "stock_execute of one op");
    return op->code;
}

void conf_new_sku_at(conf_sku *sku, int64_t level, const char *file, int line)
{
    snprintf(sku->id, sizeof sku->id, "%s", conf_id("sku"));
    int64_t available = -1;
    char message[STOCK_MESSAGE_MAX] = "";
    stock_code code = stock_set(conf_store, sku->id, level, NULL, &available,
                                message);
    if (code != STOCK_OK || available != level) {
        print_error("set %s %" PRId64 ": %s available=%" PRId64 " (%s)\n",
                    sku->id, level, stock_code_name(code), available, message);
        _fail(file, line);
    }
    sku->adjusted = level;
    sku->deducted = 0;
    sku->refunded = 0;
    sku->held = 0;
}

void conf_check_sku_at(const conf_sku *sku, const char *file, int line)
{
    stock_sku_info info;
    memset(&info, 0xff, sizeof info);
    stock_code code = stock_get(conf_store, sku->id, &info, NULL);
    if (code != STOCK_OK) {
        print_error("get %s: %s\n", sku->id, stock_code_name(code));
        _fail(file, line);
    }
    if (info.available != conf_available(sku) ||
        info.adjusted != sku->adjusted || info.deducted != sku->deducted ||
        info.refunded != sku->refunded || info.held != sku->held) {
        print_error("get %s: expected available=%" PRId64 " adjusted=%" PRId64
                    " deducted=%" PRId64 " refunded=%" PRId64 " held=%" PRId64
                    ", got %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64
                    " %" PRId64 "\n",
                    sku->id, conf_available(sku), sku->adjusted, sku->deducted,
                    sku->refunded, sku->held, info.available, info.adjusted,
                    info.deducted, info.refunded, info.held);
        _fail(file, line);
    }
    /* I1 and I2 on the values as read, independent of the model. */
    if (info.available < 0 || !conf_totals_balance(&info)) {
        print_error("get %s breaks I1/I2\n", sku->id);
        _fail(file, line);
    }
}

void conf_check_no_line_at(const char *line_id, const char *file, int line)
{
    stock_line_info info;
    stock_code code = stock_line(conf_store, line_id, &info, NULL);
    if (code != STOCK_NOT_FOUND) {
        print_error("line %s: expected NOTFOUND, got %s\n", line_id,
                    stock_code_name(code));
        _fail(file, line);
    }
}

void conf_check_message_at(const char *message, const char *file, int line,
                           const char *format, ...)
{
    char want[STOCK_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(want, sizeof want, format, args);
    va_end(args);
    if (strcmp(message, want) != 0) {
        print_error("message: expected \"%s\", got \"%s\"\n", want, message);
        _fail(file, line);
    }
}

void conf_check_message_prefix_at(const char *message, const char *prefix,
                                  const char *file, int line)
{
    if (strncmp(message, prefix, strlen(prefix)) != 0) {
        print_error("message: expected it to start with \"%s\", got \"%s\"\n",
                    prefix, message);
        _fail(file, line);
    }
}

void conf_run_threads(int count, void *(*fn)(void *), void *args, size_t size)
{
    pthread_t threads[THREADS];
    assert_true(count <= THREADS);
    for (int i = 0; i < count; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, fn,
                                        (char *)args + (size_t)i * size), 0);
    for (int i = 0; i < count; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
}

bool conf_mark_level(atomic_uchar *seen, int64_t limit, int64_t level)
{
    if (level < 0 || level >= limit)
        return false;
    return atomic_fetch_add(&seen[level], 1) == 0;
}
