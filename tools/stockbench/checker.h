/*
 * checker.h -- stockbench's ledger of acknowledged operations and the
 * invariant check run at the end of every benchmark.
 *
 * While the load runs, the ledger counts, per SKU, what the store
 * acknowledged: deductions (OK, not replays) and refunds. It also checks on
 * the fly that a replay returned the original result (I4) and that the
 * refunds acknowledged on a line never sum past its quantity (I5). At the end
 * checker_verify() reads every SKU back and checks I1 (available >= 0) and I2
 * (initial - available == deducted - refunded), and that the store's own
 * deducted/refunded totals equal the acknowledged ones (a lost reply or an
 * unacknowledged effect shows up here). Every failure names the SKU or line
 * and the difference.
 *
 * SKUs are numbered 0..sku_count-1; the caller maps numbers to names.
 * Not thread-safe: one thread feeds it.
 */
#ifndef STOCKBENCH_CHECKER_H
#define STOCKBENCH_CHECKER_H

#include <stdint.h>
#include <stdio.h>

#include "stock.h"

#define CHECKER_SKUS_MAX 10000000u      /* SKUs one ledger tracks */
#define CHECKER_REPORT_MAX 20           /* failures printed in full */

typedef struct checker checker;

/* A ledger for sku_count (1..CHECKER_SKUS_MAX) SKUs, every initial level 0.
 * Failures are printed to report (borrowed; the first CHECKER_REPORT_MAX in
 * full, then only counted). NULL on out of memory or a bad count. Free with
 * checker_destroy. */
checker *checker_create(uint32_t sku_count, FILE *report);
void checker_destroy(checker *ledger);

/* The level the run set the SKU to before the load began. */
void checker_set_initial(checker *ledger, uint32_t sku, int64_t level);

/* An acknowledged (STOCK_OK) deduction of qty (>0) from sku. */
void checker_deducted(checker *ledger, uint32_t sku, int64_t qty);

/* An acknowledged (STOCK_OK) refund of qty (>0) to sku. */
void checker_refunded(checker *ledger, uint32_t sku, int64_t qty);

/* An operation on sku whose outcome is unknown (the connection broke after
 * it may have been sent): it may have deducted deducted_qty or refunded
 * refunded_qty (either may be 0). I2 then allows the difference to lie
 * anywhere within what these operations could have done. */
void checker_uncertain(checker *ledger, uint32_t sku, int64_t deducted_qty,
                       int64_t refunded_qty);

/* The run made more attempts than the SKU had stock (the sellout workload):
 * checker_verify fails unless the SKU ends at exactly 0. */
void checker_expect_empty(checker *ledger, uint32_t sku);

/* A result that the workload rules out for a healthy store (a CONFLICT on a
 * fresh id, a NOT_FOUND on a SKU the run created): records a failure. what
 * names the operation, message is the store's. */
void checker_unexpected(checker *ledger, const char *what, stock_code code,
                        const char *message);

/* Records a failure described by fact (a sentence naming what and where). */
void checker_failed(checker *ledger, const char *fact);

/* A line read back at the end differs from what the store acknowledged:
 * field (e.g. "qty") was expected, the store now says actual. */
void checker_line_differs(checker *ledger, const char *line_id,
                          const char *field, int64_t expected, int64_t actual);

/* I1 seen on the fly: an operation on sku (named) returned available < 0. */
void checker_negative(checker *ledger, const char *sku, int64_t available);

/*
 * I4: a retried deduction of line_id came back with code and available,
 * while the original had been acknowledged with original_available. Records
 * a failure unless code is STOCK_REPLAY with the original available.
 */
void checker_replayed(checker *ledger, const char *line_id,
                      int64_t original_available, stock_code code,
                      int64_t available);

/*
 * I5: records a failure if the refunds acknowledged on line_id so far
 * (refunded_total, this one included) exceed the line's quantity.
 */
void checker_refund_total(checker *ledger, const char *line_id,
                          int64_t line_qty, int64_t refunded_total);

/* Reads the state of SKUs first..first+count-1 (count <= CHECKER_FETCH_MAX)
 * into infos/codes, one entry per SKU. Returns 0, or -1 if the store could
 * not be read at all (message says why). */
#define CHECKER_FETCH_MAX 4096
typedef int (*checker_fetch_fn)(void *context, uint32_t first, uint32_t count,
                                stock_sku_info *infos, stock_code *codes,
                                char *message, size_t message_size);

/* The name of SKU number sku, for reports. */
typedef const char *(*checker_name_fn)(void *context, uint32_t sku);

/* What the verify step knows about the run beyond the ledger. */
typedef struct checker_source {
    checker_fetch_fn fetch;
    checker_name_fn name;
    void *context;
} checker_source;

/*
 * Reads every SKU through source and checks I1 and I2 and the store's totals
 * against the ledger, printing each failure. Returns the number of failures
 * found during the run and now; 0 means the check passed. A store that
 * cannot be read counts as one failure.
 */
uint64_t checker_verify(checker *ledger, const checker_source *source);

/* Failures recorded so far (on the fly, and by checker_verify). */
uint64_t checker_failures(const checker *ledger);

/* Totals acknowledged over all SKUs, for the summary. */
int64_t checker_total_deducted(const checker *ledger);
int64_t checker_total_refunded(const checker *ledger);

#endif /* STOCKBENCH_CHECKER_H */
