/*
 * conformance.h -- what the files of the conformance suite share.
 *
 * The suite states docs/semantics.md (operations, choices, invariants)
 * once, against include/stock.h only, and runs against whatever store the URI
 * names. Because any backend may hold data from earlier runs (or from another
 * run at the same time), every identifier a test makes starts with a
 * run-unique token (conf_id), and tests never assume an empty store. The
 * store is opened once per process (main.c) and shared by every test.
 *
 * Tests run on the main thread under cmocka; worker threads (concurrency.c)
 * never assert: they count, and the main thread checks the counts.
 */
#ifndef CONFORMANCE_H
#define CONFORMANCE_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "stock.h"

/* The store under test, open for the whole run (main.c), its URI and the
 * config it was opened with. The close group, which runs last, closes and
 * reopens it. */
extern stock_t *conf_store;
extern const char *conf_uri;
extern stock_config conf_config;

/* True when CONFORMANCE_QUICK=1 or --quick: the heavy concurrency tests use
 * smaller numbers (for sanitizer builds and slow backends). */
extern bool conf_quick;
/* Whether the store keeps holds (main.c asks it once): the redis and
 * sharded backends answer hold ops UNSUPPORTED, so the holds group checks
 * that instead and the model walk leaves holds out. */
extern bool conf_holds;

/* Room for any identifier plus its NUL. */
#define CONF_ID_SIZE (STOCK_ID_MAX + 1)

/* The run-unique token (pid, time and random bits) every id starts with. */
const char *conf_run_token(void);

/*
 * A fresh identifier "<token>.<kind><n>", unique in this run and across runs.
 * The string lives in a ring of CONF_ID_RING slots, so a test may hold up to
 * that many ids at once. Main thread only.
 */
#define CONF_ID_RING 4096
const char *conf_id(const char *kind);

/* How far a line's time may be from this process's clock: backends on
 * other machines have clocks of their own. */
#define CONF_CLOCK_SLACK_US (60 * 1000000LL)

/* A fresh identifier of exactly STOCK_ID_MAX bytes (conf_id padded). */
void conf_long_id(const char *kind, char out[CONF_ID_SIZE]);

/* Current Unix time in microseconds. */
int64_t conf_now_us(void);

/* ------------------------------------------------------------ assertions */

/* Fails the test with both codes spelled out and the op's message. */
#define assert_code(got, want, message)                                      \
    do {                                                                     \
        stock_code got_ = (got), want_ = (want);                             \
        if (got_ != want_) {                                                 \
            print_error("expected %s, got %s (message \"%s\")\n",            \
                        stock_code_name(want_), stock_code_name(got_),       \
                        (message));                                          \
            _fail(__FILE__, __LINE__);                                       \
        }                                                                    \
    } while (0)

/* Fails the test unless two signed 64-bit values are equal. */
#define assert_i64(got, want)                                                \
    do {                                                                     \
        int64_t got_ = (got), want_ = (want);                                \
        if (got_ != want_) {                                                 \
            print_error("%s: expected %" PRId64 ", got %" PRId64 "\n", #got,  \
                        want_, got_);                                        \
            _fail(__FILE__, __LINE__);                                       \
        }                                                                    \
    } while (0)

/* ------------------------------------------------------------- SKU model */

/*
 * What a test expects of one of its own SKUs. Each test owns its SKUs (their
 * ids are run-unique), so the totals are known exactly; conf_check_sku
 * compares them with stock_get and checks I1 and I2 on what it reads.
 */
typedef struct conf_sku {
    char id[CONF_ID_SIZE];
    int64_t adjusted;
    int64_t deducted;
    int64_t refunded;
    int64_t held;            /* units in HELD holds */
} conf_sku;

static inline int64_t conf_available(const conf_sku *sku)
{
    return sku->adjusted - sku->deducted + sku->refunded - sku->held;
}

/* I2 on totals as read: available + held == adjusted - deducted +
 * refunded, computed without overflow whatever a faulty backend returns. */
static inline bool conf_totals_balance(const stock_sku_info *info)
{
    uint64_t sum = (uint64_t)info->adjusted - (uint64_t)info->deducted +
                   (uint64_t)info->refunded;
    return info->held >= 0 && (uint64_t)info->available + (uint64_t)info->held == sum;
}

/* Creates a fresh SKU at level (asserting OK) and starts its model. */
void conf_new_sku_at(conf_sku *sku, int64_t level, const char *file, int line);
#define conf_new_sku(sku, level) conf_new_sku_at((sku), (level), __FILE__, __LINE__)

/* Asserts stock_get matches the model, and I1, I2 on what was read. */
void conf_check_sku_at(const conf_sku *sku, const char *file, int line);
#define conf_check_sku(sku) conf_check_sku_at((sku), __FILE__, __LINE__)

/* Asserts stock_line says line_id does not exist (a failed op left nothing). */
void conf_check_no_line_at(const char *line_id, const char *file, int line);
#define conf_check_no_line(id) conf_check_no_line_at((id), __FILE__, __LINE__)

/* Asserts a message is the exact text of docs/protocol.md / semantics.md. */
void conf_check_message_at(const char *message, const char *file, int line,
                           const char *format, ...)
    __attribute__((format(printf, 4, 5)));
#define conf_check_message(message, ...) \
    conf_check_message_at((message), __FILE__, __LINE__, __VA_ARGS__)

/* Asserts message starts with prefix (for wording that may grow). */
void conf_check_message_prefix_at(const char *message, const char *prefix,
                                  const char *file, int line);
#define conf_check_message_prefix(message, prefix) \
    conf_check_message_prefix_at((message), (prefix), __FILE__, __LINE__)

/* Runs one op as a one-op batch and returns its code. */
stock_code conf_run(stock_op *op);

/* An order line over C strings. */
static inline stock_order_line conf_line(const char *line_id, const char *sku,
                                         int64_t qty)
{
    stock_order_line line = {stock_id_from_cstr(line_id),
                             stock_id_from_cstr(sku), qty, -1};
    return line;
}

/* ----------------------------------------------------------- concurrency */

/* Threads in the concurrency tests. */
#define THREADS 8

/* Starts count (<= THREADS) threads on fn(args + i * size), joins them all. */
void conf_run_threads(int count, void *(*fn)(void *), void *args, size_t size);

/*
 * Marks level as reported by a success, for tests where successes see
 * distinct levels in 0..limit-1. Returns false for a level out of range or
 * seen before. Safe from any thread.
 */
bool conf_mark_level(atomic_uchar *seen, int64_t limit, int64_t level);

/* ------------------------------------------------------------ the groups */

/* Each runs one cmocka group and returns its number of failed tests. */
int conf_run_codes(void);
int conf_run_validation(void);
int conf_run_set_add(void);
int conf_run_deduct(void);
int conf_run_order(void);
int conf_run_refund(void);
int conf_run_batches(void);
int conf_run_concurrency(void);
int conf_run_races(void);
int conf_run_retries(void);
int conf_run_model(void);
int conf_run_holds(void);
int conf_run_list(void);
int conf_run_close(void);

#endif /* CONFORMANCE_H */
