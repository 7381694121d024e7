/*
 * workload.h -- the flash-sale workloads of docs/stockbench.md, as streams of
 * stock_ops, and the accounting of their results into the checker.
 *
 *   hot      one SKU with ample stock, qty 1, unique line ids
 *   sellout  one SKU with 10,000 units; 200,000 attempts by default
 *   uniform  100,000 SKUs, each deduction on a random one, qty 1..3
 *   cart     orders of 5 random lines (qty 1) over 10,000 SKUs
 *   mixed    90% deduct, 5% refund of an earlier line, 5% reads, over
 *            10,000 SKUs; 1% of all ops retry an acknowledged line (I4)
 *
 * Every name the run uses (SKUs, line, order and refund ids) starts with a
 * prefix unique to the run, so that runs against one store never collide.
 * Not thread-safe: one thread generates and accounts.
 */
#ifndef STOCKBENCH_WORKLOAD_H
#define STOCKBENCH_WORKLOAD_H

#include <stdint.h>

#include "checker.h"
#include "stock.h"

#define WORKLOAD_CART_LINES 5
#define WORKLOAD_PREFIX_MAX 24          /* bytes of a run prefix */
#define WORKLOAD_NAME_MAX 48            /* bytes of a generated id, NUL included */
#define WORKLOAD_RING_SIZE 65536        /* recent lines kept for replays, refunds */
/* SKUs a run may create: the checker's own limit, so that a run can ask how
 * the store behaves at 10 million SKUs. At the limit the run holds 480 MB of
 * SKU names (WORKLOAD_NAME_MAX each) and a ledger of as much again. */
#define WORKLOAD_SKUS_MAX CHECKER_SKUS_MAX
#define WORKLOAD_ATTEMPTS_MAX 100       /* sends of one op whose outcome stays unknown */

typedef enum workload_kind {
    WORKLOAD_HOT,
    WORKLOAD_SELLOUT,
    WORKLOAD_UNIFORM,
    WORKLOAD_CART,
    WORKLOAD_MIXED,
    WORKLOAD_KIND_COUNT
} workload_kind;

typedef struct workload_config {
    workload_kind kind;
    uint32_t skus;              /* 0 = the workload's default */
    int64_t stock;              /* initial level per SKU; 0 = default */
    int32_t replay_percent;     /* -1 = default (1 for mixed, else 0) */
    uint64_t seed;
    char prefix[WORKLOAD_PREFIX_MAX + 1];  /* "" = derived from the seed */
} workload_config;

/* What one generated op is, for its accounting; plus the bytes its ids point
 * to. One per stock_op, owned by the caller, alive until the op completes. */
typedef enum workload_op_kind {
    WORKLOAD_OP_DEDUCT,
    WORKLOAD_OP_REPLAY,
    WORKLOAD_OP_REFUND,
    WORKLOAD_OP_READ,
    WORKLOAD_OP_ORDER,
    WORKLOAD_OP_KIND_COUNT
} workload_op_kind;

typedef struct workload_item {
    workload_op_kind kind;
    uint32_t sku;
    uint32_t ring_index;        /* replay, refund: the line's ring entry */
    uint64_t line_seq;          /* deduct, replay, refund: the line's number */
    uint32_t attempts;          /* sends so far that ended with an unknown outcome */
    int64_t original_available; /* replay: what the original returned */
    char id[WORKLOAD_NAME_MAX];
    char ref[WORKLOAD_NAME_MAX];
    stock_order_line lines[WORKLOAD_CART_LINES];
    uint32_t line_skus[WORKLOAD_CART_LINES];
    char line_ids[WORKLOAD_CART_LINES][WORKLOAD_NAME_MAX];
} workload_item;

typedef struct workload workload;

/* Parses "hot", "sellout", ...; false for an unknown name. */
bool workload_parse_kind(const char *name, workload_kind *kind);
const char *workload_kind_name(workload_kind kind);

/* The attempts a workload makes by default when neither a duration nor a
 * count is given (sellout: 200,000), or 0 for "run for a duration". */
uint64_t workload_default_requests(workload_kind kind);

/*
 * A workload over config (copied) that reports into ledger (borrowed; it
 * must have been created with workload_sku_count() SKUs). NULL on out of
 * memory. Free with workload_destroy.
 */
workload *workload_create(const workload_config *config, checker *ledger);
void workload_destroy(workload *load);

/* The SKU count and initial level the config resolves to (defaults
 * applied); usable before workload_create. */
uint32_t workload_sku_count(const workload_config *config);
int64_t workload_initial_stock(const workload_config *config);

/* The name of SKU number sku ("<prefix>S<sku>"); valid while load lives. */
const char *workload_sku_name(const workload *load, uint32_t sku);
const char *workload_prefix(const workload *load);

/* Fills ops[0..count) with the SETs that create SKUs first..first+count-1 at
 * the initial level, and records the level in the ledger. */
void workload_setup_ops(workload *load, uint32_t first, uint32_t count,
                        stock_op *ops);

/* Fills *op (zeroing it first) with the next operation and *item with its
 * accounting and id storage. */
void workload_next(workload *load, stock_op *op, workload_item *item);

/*
 * Decides whether a completed op must be sent again: its outcome is unknown
 * (STOCK_UNAVAILABLE: the connection broke), it changes state (deduct,
 * order, refund), and it has been tried fewer than WORKLOAD_ATTEMPTS_MAX
 * times. The retry carries the same ids, so the store answers REPLAY if the
 * lost attempt took effect: that is how a client learns the outcome. When
 * true, the caller resends op (after workload_rebind if it moved it) and
 * must not call workload_complete for this attempt.
 */
bool workload_retry(workload *load, const stock_op *op, workload_item *item);

/* Re-points the ids of op at item's storage after both were copied
 * elsewhere (a retry queue). */
void workload_rebind(stock_op *op, workload_item *item);

/* Accounts a completed op generated by workload_next into the ledger. A
 * REPLAY answer to a retried deduction, order or refund means the lost
 * attempt took effect: it is counted as that success. */
void workload_complete(workload *load, const stock_op *op,
                       const workload_item *item);

/* Runs ops[0..count) against the store and waits for them. Returns 0, or
 * -1 with a sentence in message when the store could not be asked. */
typedef int (*workload_execute_fn)(void *context, stock_op *ops, size_t count,
                                   char *message, size_t message_size);

/*
 * Reads back (LINE) the most recent acknowledged deductions, up to
 * WORKLOAD_RING_SIZE of them, and records a failure in the ledger for each
 * one the store does not have as acknowledged: missing, another SKU or qty,
 * another available-after, or refunds other than those acknowledged.
 * Returns the number of lines read back, or -1 if the store could not be
 * asked (also recorded as a failure).
 */
int64_t workload_verify_lines(workload *load, workload_execute_fn execute,
                              void *context);

/* Tells the ledger what the end state must show given the answered attempts
 * (sellout: the SKU must be empty when they reached its stock). */
void workload_finish(workload *load);

/* Operations of each kind generated so far, for the summary. */
uint64_t workload_count(const workload *load, workload_op_kind kind);

/* Retries decided by workload_retry so far. */
uint64_t workload_retries(const workload *load);

#endif /* STOCKBENCH_WORKLOAD_H */
