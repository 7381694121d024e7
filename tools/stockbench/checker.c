/*
 * checker.c -- the ledger of acknowledged operations and the end-of-run
 * invariant check (see checker.h).
 */
#include "checker.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct checker_sku {
    int64_t initial;
    int64_t deducted;    /* acknowledged, replays excluded */
    int64_t refunded;    /* acknowledged */
    int64_t maybe_deducted;   /* by operations of unknown outcome */
    int64_t maybe_refunded;
    bool expect_empty;   /* attempts exceeded the stock: must end at 0 */
} checker_sku;

struct checker {
    uint32_t sku_count;
    uint64_t failures;
    FILE *report;
    checker_sku *skus;   /* sku_count entries */
};

checker *checker_create(uint32_t sku_count, FILE *report)
{
    assert(report != NULL);
    if (sku_count == 0 || sku_count > CHECKER_SKUS_MAX)
        return NULL;
    checker *ledger = calloc(1, sizeof *ledger);
    if (ledger == NULL)
        return NULL;
    ledger->skus = calloc(sku_count, sizeof *ledger->skus);
    if (ledger->skus == NULL) {
        free(ledger);
        return NULL;
    }
    ledger->sku_count = sku_count;
    ledger->report = report;
    return ledger;
}

void checker_destroy(checker *ledger)
{
    if (ledger == NULL)
        return;
    free(ledger->skus);
    free(ledger);
}

/* Counts a failure and prints it while fewer than CHECKER_REPORT_MAX have
 * been printed, so a broken store does not flood the terminal. */
__attribute__((format(printf, 2, 3)))
static void record_failure(checker *ledger, const char *format, ...)
{
    ledger->failures++;
    if (ledger->failures > CHECKER_REPORT_MAX)
        return;
    va_list args;
    va_start(args, format);
    fputs("check failed: ", ledger->report);
    vfprintf(ledger->report, format, args);
    fputc('\n', ledger->report);
    va_end(args);
    if (ledger->failures == CHECKER_REPORT_MAX)
        fputs("check: further failures are counted, not printed\n",
              ledger->report);
}

static checker_sku *sku_at(checker *ledger, uint32_t sku)
{
    assert(ledger != NULL);
    assert(sku < ledger->sku_count);
    return &ledger->skus[sku];
}

void checker_set_initial(checker *ledger, uint32_t sku, int64_t level)
{
    assert(level >= 0);
    sku_at(ledger, sku)->initial = level;
}

void checker_deducted(checker *ledger, uint32_t sku, int64_t qty)
{
    assert(qty > 0 && qty <= STOCK_QTY_MAX);
    sku_at(ledger, sku)->deducted += qty;
}

void checker_refunded(checker *ledger, uint32_t sku, int64_t qty)
{
    assert(qty > 0 && qty <= STOCK_QTY_MAX);
    sku_at(ledger, sku)->refunded += qty;
}

void checker_uncertain(checker *ledger, uint32_t sku, int64_t deducted_qty,
                       int64_t refunded_qty)
{
    assert(deducted_qty >= 0 && refunded_qty >= 0);
    checker_sku *entry = sku_at(ledger, sku);
    entry->maybe_deducted += deducted_qty;
    entry->maybe_refunded += refunded_qty;
}

void checker_expect_empty(checker *ledger, uint32_t sku)
{
    checker_sku *entry = sku_at(ledger, sku);
    assert(entry->initial >= 0);
    entry->expect_empty = true;
}

void checker_unexpected(checker *ledger, const char *what, stock_code code,
                        const char *message)
{
    assert(ledger != NULL && what != NULL && message != NULL);
    assert(code < STOCK_CODE_COUNT);
    record_failure(ledger, "%s: unexpected %s%s%s", what, stock_code_name(code),
                   message[0] != '\0' ? " " : "", message);
}

void checker_failed(checker *ledger, const char *fact)
{
    assert(ledger != NULL && fact != NULL);
    assert(fact[0] != '\0');
    record_failure(ledger, "%s", fact);
}

void checker_line_differs(checker *ledger, const char *line_id,
                          const char *field, int64_t expected, int64_t actual)
{
    assert(ledger != NULL && line_id != NULL && field != NULL);
    assert(expected != actual);
    record_failure(ledger,
                   "line=%s: the store says %s=%" PRId64 ", acknowledged was %"
                   PRId64 " (difference %+" PRId64 ")",
                   line_id, field, actual, expected, actual - expected);
}

void checker_negative(checker *ledger, const char *sku, int64_t available)
{
    assert(ledger != NULL && sku != NULL);
    if (available < 0)
        record_failure(ledger, "I1 sku=%s: an operation returned available=%" PRId64,
             sku, available);
}

void checker_replayed(checker *ledger, const char *line_id,
                      int64_t original_available, stock_code code,
                      int64_t available)
{
    assert(ledger != NULL && line_id != NULL);
    assert(code < STOCK_CODE_COUNT);
    if (code != STOCK_REPLAY)
        record_failure(ledger, "I4 line=%s: a retry returned %s, not REPLAY", line_id,
             stock_code_name(code));
    else if (available != original_available)
        record_failure(ledger,
             "I4 line=%s: the replay returned available=%" PRId64
             " but the original said %" PRId64 " (difference %+" PRId64 ")",
             line_id, available, original_available,
             available - original_available);
}

void checker_refund_total(checker *ledger, const char *line_id,
                          int64_t line_qty, int64_t refunded_total)
{
    assert(ledger != NULL && line_id != NULL);
    assert(line_qty > 0 && refunded_total > 0);
    if (refunded_total > line_qty)
        record_failure(ledger,
             "I5 line=%s: refunds of %" PRId64 " were acknowledged on a line "
             "of qty %" PRId64 " (exceeded by %" PRId64 ")",
             line_id, refunded_total, line_qty, refunded_total - line_qty);
}

/* True if actual - expected lies in [-below, +above]: the operations of
 * unknown outcome may explain that much. */
static bool within(int64_t actual, int64_t expected, int64_t below,
                   int64_t above)
{
    assert(below >= 0 && above >= 0);
    int64_t difference = actual - expected;
    return difference >= -below && difference <= above;
}

/* Checks I2 from the available level and from the store's own totals. */
static void verify_totals(checker *ledger, const char *name,
                          const checker_sku *expected,
                          const stock_sku_info *info)
{
    int64_t taken = expected->initial - info->available;
    int64_t acknowledged = expected->deducted - expected->refunded;
    if (!within(taken, acknowledged, expected->maybe_refunded,
                expected->maybe_deducted))
        record_failure(ledger,
             "I2 sku=%s: initial %" PRId64 " - available %" PRId64 " = %" PRId64
             ", but acknowledged deductions %" PRId64 " - refunds %" PRId64
             " = %" PRId64 " (difference %+" PRId64 ")",
             name, expected->initial, info->available, taken,
             expected->deducted, expected->refunded, acknowledged,
             taken - acknowledged);
    if (!within(info->deducted, expected->deducted, 0,
                expected->maybe_deducted))
        record_failure(ledger,
             "I2 sku=%s: the store counts %" PRId64 " deducted, %" PRId64
             " were acknowledged (difference %+" PRId64 ")",
             name, info->deducted, expected->deducted,
             info->deducted - expected->deducted);
    if (!within(info->refunded, expected->refunded, 0,
                expected->maybe_refunded))
        record_failure(ledger,
             "I2 sku=%s: the store counts %" PRId64 " refunded, %" PRId64
             " were acknowledged (difference %+" PRId64 ")",
             name, info->refunded, expected->refunded,
             info->refunded - expected->refunded);
}

/* Checks one SKU's state as read from the store against the ledger. */
static void verify_sku(checker *ledger, const char *name,
                       const checker_sku *expected, const stock_sku_info *info)
{
    assert(ledger != NULL && name != NULL);
    assert(expected->deducted >= 0 && expected->refunded >= 0);
    if (info->available < 0)
        record_failure(ledger, "I1 sku=%s: available=%" PRId64 " is below 0", name,
             info->available);
    if (expected->expect_empty && info->available != 0)
        record_failure(ledger,
             "sellout sku=%s: %" PRId64 " left unsold although the attempts "
             "reached the stock (undersold by %" PRId64 ")",
             name, info->available, info->available);
    verify_totals(ledger, name, expected, info);
}

uint64_t checker_verify(checker *ledger, const checker_source *source)
{
    assert(ledger != NULL && source != NULL);
    assert(source->fetch != NULL && source->name != NULL);
    static stock_sku_info infos[CHECKER_FETCH_MAX];
    static stock_code codes[CHECKER_FETCH_MAX];
    char message[STOCK_MESSAGE_MAX];
    for (uint32_t first = 0; first < ledger->sku_count;
         first += CHECKER_FETCH_MAX) {
        uint32_t count = ledger->sku_count - first;
        if (count > CHECKER_FETCH_MAX)
            count = CHECKER_FETCH_MAX;
        message[0] = '\0';
        if (source->fetch(source->context, first, count, infos, codes,
                          message, sizeof message) != 0) {
            record_failure(ledger, "the store could not be read back: %s", message);
            return ledger->failures;
        }
        for (uint32_t i = 0; i < count; i++) {
            const char *name = source->name(source->context, first + i);
            if (codes[i] != STOCK_OK)
                record_failure(ledger, "sku=%s: reading it back gave %s", name,
                     stock_code_name(codes[i]));
            else
                verify_sku(ledger, name, &ledger->skus[first + i], &infos[i]);
        }
    }
    return ledger->failures;
}

uint64_t checker_failures(const checker *ledger)
{
    assert(ledger != NULL);
    return ledger->failures;
}

static int64_t sum_field(const checker *ledger, size_t offset)
{
    assert(ledger != NULL);
    int64_t total = 0;
    for (uint32_t i = 0; i < ledger->sku_count; i++)
        total += *(const int64_t *)((const char *)&ledger->skus[i] + offset);
    return total;
}

int64_t checker_total_deducted(const checker *ledger)
{
    return sum_field(ledger, offsetof(checker_sku, deducted));
}

int64_t checker_total_refunded(const checker *ledger)
{
    return sum_field(ledger, offsetof(checker_sku, refunded));
}
