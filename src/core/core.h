/*
 * core.h -- the stock state machine: SKUs, lines, orders, refunds and
 * adjustments in memory, and the apply() of each operation of DESIGN
 * section 2.
 *
 * The core does no I/O and takes no locks: one writer thread owns it. It is
 * deterministic: applying an op yields a log record, and replaying that
 * record on the same prior state reproduces the same state exactly. The
 * embedded backend writes the records to the flow log (src/journal) and
 * replays them at recovery; snapshots serialise the whole state.
 */
#ifndef STOCK_CORE_H
#define STOCK_CORE_H

#include "lib/buf.h"
#include "stock.h"

typedef struct core core;

typedef struct core_stats {
    uint64_t skus;
    uint64_t lines;
    uint64_t orders;
    uint64_t refunds;
    uint64_t adjustments;
    uint64_t memory_bytes;     /* bytes the core holds, all tables */
} core_stats;

/* A new, empty state. NULL on out of memory. Free with core_destroy. */
core *core_create(void);
void core_destroy(core *state);

/*
 * Applies one op, already validated by stock_validate (code STOCK_OK on
 * entry), at time now_us (Unix microseconds, recorded on new lines), and
 * sets its outputs (code, available, info, message, ...).
 *
 * If the op changed state, appends exactly one record describing it to
 * *record (which the caller clears between calls as it likes) and returns
 * true; a failed op, a replay or a read appends nothing and returns false.
 * On out of memory the op completes with STOCK_NOMEM and the state is
 * unchanged.
 */
bool core_apply(core *state, stock_op *op, int64_t now_us, buf *record);

/*
 * A hint that op (validated) will be applied soon: computes its ids' hashes
 * and prefetches the hash-table slots core_apply will read. Changes nothing
 * and may be skipped. Applying a batch, call it for op i + CORE_PREFETCH_AHEAD
 * before applying op i, so that the memory latency of the ops overlaps
 * (a random miss into a 10M-line table costs hundreds of ns here, and the
 * ops of a batch are independent reads until applied).
 */
#define CORE_PREFETCH_AHEAD 8
void core_prefetch(const core *state, const stock_op *op);

/*
 * Re-applies one record made by core_apply (at recovery). Returns STOCK_OK;
 * STOCK_CORRUPT if the record cannot be decoded or does not apply to this
 * state (message says why); STOCK_NOMEM.
 */
stock_code core_replay(core *state, const uint8_t *record, size_t len,
                       char *message, size_t message_size);

/* Writes bytes somewhere; returns 0, or -1 to stop the snapshot. */
typedef int (*core_write_fn)(void *context, const void *data, size_t len);
/* Reads exactly len bytes; returns 0, or -1 on a short read or error. */
typedef int (*core_read_fn)(void *context, void *data, size_t len);

/* Serialises the whole state through write. Returns 0 or -1 (write failed).
 * Does not allocate, so it is safe in a child after fork(). */
int core_snapshot_save(const core *state, core_write_fn write, void *context);

/* Loads a state saved by core_snapshot_save into an empty core. Returns
 * STOCK_OK, STOCK_CORRUPT (message says why) or STOCK_NOMEM. */
stock_code core_snapshot_load(core *state, core_read_fn read, void *context,
                              char *message, size_t message_size);

void core_get_stats(const core *state, core_stats *stats);

#endif /* STOCK_CORE_H */
