/*
 * stock.h -- the libstock contract.
 *
 * libstock takes stock off a SKU when an order line is placed, gives it back
 * when the line is refunded, and never sells what is not there. One API opens
 * every backend; the URI picks it:
 *
 *   "./data", "file:./data"        the embedded engine (state in memory, flow
 *                                  log = write-ahead log with group commit)
 *   "stockd://host:port"           a running stockd server (RESP)
 *   "postgres://...", "postgresql://..."  PostgreSQL through libpq
 *   "redis://[:password@]host:port"  Redis 7 through hiredis (docs/redis.md)
 *
 * Requests travel in batches (stock_submit): a backend receives a batch and
 * completes every operation in it with its own result, in order. Batching is
 * what makes group commit, merged SQL updates and pipelining possible. The
 * synchronous wrappers at the end of this file are one-operation batches.
 *
 * Semantics (../shared/DESIGN.md section 2, docs/semantics.md):
 *   - identifiers are 1..STOCK_ID_MAX bytes of printable ASCII without space
 *     (0x21..0x7E); quantities per operation are 1..STOCK_QTY_MAX; stock
 *     levels are 0..INT64_MAX. Anything else is STOCK_INVALID and changes
 *     nothing.
 *   - a failed operation records nothing: its retry is a fresh attempt.
 *   - a retry of a successful operation with the same id and parameters is
 *     STOCK_REPLAY and carries the original result; the same id with other
 *     parameters is STOCK_CONFLICT.
 *
 * Every function returns a stock_code; stock_strerror() turns any code into a
 * sentence and stock_code_name() into the word used on the wire.
 */
#ifndef STOCK_H
#define STOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- limits */

#define STOCK_ID_MAX 64                  /* bytes in any identifier */
#define STOCK_QTY_MAX 2147483647LL       /* largest quantity per operation */
#define STOCK_LEVEL_MAX INT64_MAX        /* largest stock level */
#define STOCK_ORDER_LINES_MAX 100        /* lines in one order (a cart) */
#define STOCK_BATCH_MAX 65536            /* operations in one batch */
#define STOCK_MESSAGE_MAX 200            /* bytes of an error message, NUL included */

/* ---------------------------------------------------------- result codes */

typedef enum stock_code {
    STOCK_OK = 0,        /* done */
    STOCK_REPLAY,        /* done before: the original result is returned */
    STOCK_INSUFFICIENT,  /* not enough available stock */
    STOCK_NOT_FOUND,     /* no such SKU or line */
    STOCK_CONFLICT,      /* the id was used before with other parameters */
    STOCK_EXCEEDS,       /* a refund would exceed what is refundable */
    STOCK_MISMATCH,      /* compare-and-set: the current value differs */
    STOCK_INVALID,       /* malformed input: nothing was touched */
    STOCK_IO,            /* disk or network I/O failed; outcome is known-failed */
    STOCK_CORRUPT,       /* damaged data on disk; the store refuses to run */
    STOCK_NOMEM,         /* out of memory */
    STOCK_UNAVAILABLE,   /* the store is closed, or its server is unreachable */
    STOCK_UNSUPPORTED,   /* the backend or URI scheme does not offer this */
    STOCK_CODE_COUNT
} stock_code;

/* The wire word for a code: "OK", "REPLAY", "INSUFFICIENT", "NOTFOUND",
 * "CONFLICT", "EXCEEDS", "MISMATCH", "INVALID", "IOERR", "CORRUPT", "NOMEM",
 * "UNAVAILABLE", "UNSUPPORTED". Never NULL; static storage. */
const char *stock_code_name(stock_code code);

/* A sentence describing the code, for people. Never NULL; static storage. */
const char *stock_strerror(stock_code code);

/* True for the codes that mean the operation took effect (OK, REPLAY). */
static inline bool stock_code_succeeded(stock_code code)
{
    return code == STOCK_OK || code == STOCK_REPLAY;
}

/* ------------------------------------------------------------ operations */

/* An identifier: a pointer and a length, so protocol buffers can be passed
 * without copying. The bytes are borrowed; they need not be NUL-terminated. */
typedef struct stock_id {
    const char *ptr;
    uint32_t len;
} stock_id;

/* Wraps a NUL-terminated string (NULL gives an empty, hence invalid, id). */
stock_id stock_id_from_cstr(const char *text);

typedef enum stock_op_type {
    STOCK_OP_SET = 1,  /* sku, amount [, expect]      -> available */
    STOCK_OP_ADD,      /* sku, amount (delta) [, id]  -> available */
    STOCK_OP_DEDUCT,   /* id (line), sku, amount      -> available */
    STOCK_OP_ORDER,    /* id (order), lines           -> lines[i].available */
    STOCK_OP_REFUND,   /* id (refund), line, amount   -> available */
    STOCK_OP_GET,      /* sku                         -> sku_info */
    STOCK_OP_LINE,     /* line                        -> line_info */
    STOCK_OP_TYPE_MAX = STOCK_OP_LINE
} stock_op_type;

/* One line of an order. line_id, sku and qty are inputs; available is an
 * output: the SKU's available stock right after this line was taken. */
typedef struct stock_order_line {
    stock_id line_id;
    stock_id sku;
    int64_t qty;
    int64_t available;
} stock_order_line;

/* Totals of one SKU. I2 holds: available == adjusted - deducted + refunded,
 * where adjusted sums every set (as a delta) and every add. */
typedef struct stock_sku_info {
    int64_t available;
    int64_t adjusted;
    int64_t deducted;
    int64_t refunded;
} stock_sku_info;

/* One deducted line. order_id is "" for a line deducted on its own. */
typedef struct stock_line_info {
    char sku[STOCK_ID_MAX + 1];
    char order_id[STOCK_ID_MAX + 1];
    int64_t qty;
    int64_t refunded;
    int64_t time_us;           /* Unix time of the deduction, microseconds */
    int64_t available_after;   /* the SKU's stock right after the deduction */
} stock_line_info;

/*
 * One operation: inputs set by the caller, outputs by the backend.
 *
 *   type      input   field use
 *   SET       sku, amount = new level (0..INT64_MAX), has_expect/expect
 *   ADD       sku, amount = delta (+restock / -write-off, 1..QTY_MAX in size),
 *             id = adjustment id (optional: len 0 means none)
 *   DEDUCT    id = line id, sku, amount = qty
 *   ORDER     id = order id, lines/line_count (1..STOCK_ORDER_LINES_MAX)
 *   REFUND    id = refund id, line = line id, amount = qty
 *   GET       sku
 *   LINE      line
 *
 * Outputs: code always; message on failure ("sku=A12 available=3": facts
 * after the code word, see stock_code_name); available for SET, ADD, DEDUCT,
 * REFUND (and with INSUFFICIENT the stock that was there; with MISMATCH the
 * current value; with EXCEEDS the quantity still refundable on the line);
 * failed_line for ORDER failures that concern one line (index into lines);
 * sku_info for GET; line_info for LINE.
 *
 * The caller owns the op and every byte its ids and lines point to until the
 * batch completes.
 */
typedef struct stock_op {
    /* inputs */
    stock_op_type type;
    bool has_expect;
    stock_id id;
    stock_id sku;
    stock_id line;
    int64_t amount;
    int64_t expect;
    stock_order_line *lines;
    uint32_t line_count;

    /* outputs */
    stock_code code;
    int32_t failed_line;       /* -1 when no single line is at fault */
    int64_t available;
    union {
        stock_sku_info sku_info;
        stock_line_info line_info;
    } info;
    char message[STOCK_MESSAGE_MAX];
} stock_op;

/* ----------------------------------------------------------------- store */

typedef struct stock stock_t;   /* an open store; opaque */

typedef enum stock_durability {
    /* Acknowledge only after the flow log is on stable storage (I6 holds). */
    STOCK_DURABILITY_SYNC = 0,
    /* Acknowledge after write(); fsync at most STOCK_RELAXED_SYNC_MS later.
     * A machine crash (not a process crash) can lose the last interval. */
    STOCK_DURABILITY_RELAXED
} stock_durability;

#define STOCK_RELAXED_SYNC_MS 1000

/* Options for stock_open. Zero-initialise, then set what you need; a NULL
 * config means all defaults. Backends ignore the fields that are not theirs.
 * URI query parameters (documented per backend) override these. */
typedef struct stock_config {
    stock_durability durability;
    uint64_t snapshot_log_bytes;  /* embedded: snapshot after this much log;
                                     0 = default (256 MiB) */
    uint32_t buckets;             /* postgres/redis: rows per hot SKU; 0 = 1 */
    bool merge;                   /* postgres: merge deductions per SKU */
    const char *replica_uri;      /* postgres: read replica for pre-checks */
    bool sync_in_caller;          /* embedded, sync durability: stock_submit
                                     syncs a small batch in the calling thread
                                     (blocking it for one fdatasync) and
                                     completes it before returning, instead of
                                     handing it to a backend thread. For a
                                     caller that submits one batch per event
                                     loop turn, as stockd does; leave it false
                                     to keep many batches in flight from one
                                     thread. */
} stock_config;

/*
 * Opens the store named by uri (see the top of this file).
 *
 * config    may be NULL (defaults). Not retained after the call.
 * store     out: the handle, owned by the caller until stock_close().
 * message   out, may be NULL: on failure a sentence naming what failed
 *           (e.g. the file and offset of damaged data), NUL-terminated,
 *           truncated to message_size.
 *
 * Returns STOCK_OK; STOCK_INVALID (bad URI or config), STOCK_UNSUPPORTED
 * (unknown scheme), STOCK_IO, STOCK_CORRUPT (recovery found damage before the
 * tail of the log: start-up is refused, nothing is changed on disk),
 * STOCK_UNAVAILABLE (server unreachable), STOCK_NOMEM. On failure *store is
 * NULL.
 */
stock_code stock_open(const char *uri, const stock_config *config,
                      stock_t **store, char *message, size_t message_size);

/*
 * Completes every batch already submitted, makes everything durable, and
 * frees the store. Must not race with stock_submit on another thread.
 * Returns STOCK_OK, or STOCK_IO if the final flush failed (the handle is
 * freed either way).
 */
stock_code stock_close(stock_t *store);

/* The name of the backend serving the store: "embedded", "remote",
 * "postgres", ... Static storage. */
const char *stock_backend_name(const stock_t *store);

/* ----------------------------------------------------------------- stats */

#define STOCK_SYNC_BUCKETS 16

/* Upper bound, in microseconds, of sync-latency bucket i: 8 << i (8 us up to
 * 131 ms for i = 14); the last bucket (i = STOCK_SYNC_BUCKETS - 1) has no
 * bound. */
static inline uint64_t stock_sync_bucket_bound_us(unsigned i)
{
    return (uint64_t)8 << i;
}

/* Counters a backend keeps since open; fields a backend does not track stay
 * 0. Cheap to read: safe to call often from any thread. */
typedef struct stock_stats {
    uint64_t batches;          /* batches completed */
    uint64_t operations;       /* operations completed */
    uint64_t syncs;            /* fdatasync / commits made */
    uint64_t sync_latency_us_sum;
    uint64_t sync_latency_buckets[STOCK_SYNC_BUCKETS];
    uint64_t skus;
    uint64_t lines;
    uint64_t memory_bytes;     /* state held in memory */
    uint64_t log_bytes;        /* flow log bytes on disk since last snapshot */
    uint64_t snapshots;        /* snapshots completed */

    /* What stock_open did to rebuild the state, fixed once it returns (so
     * that a server can log it). Only a backend that recovers from files of
     * its own sets them (embedded); the others leave them false/0. */
    bool recovered;                    /* stock_open ran a recovery */
    bool recovery_snapshot_loaded;     /* it started from a snapshot */
    uint64_t recovery_snapshot_lsn;    /* records that snapshot covers (its
                                        * lsn, docs/engine.md); 0 if none */
    uint64_t recovery_records;         /* flow log records replayed after it */
    uint64_t recovery_torn_bytes;      /* torn tail cut from the log's end
                                        * (a write the crash interrupted) */
    uint64_t recovery_ms;              /* wall time stock_open took */
} stock_stats;

/* Fills *stats. Returns STOCK_OK, or STOCK_UNSUPPORTED for a backend that
 * keeps no counters (then *stats is zeroed). */
stock_code stock_get_stats(stock_t *store, stock_stats *stats);

/* ---------------------------------------------------------- async batches */

typedef struct stock_batch stock_batch;

/* Called once per batch when every op in it has its result. It may run on a
 * backend thread, or inside stock_submit itself; it must not block long and
 * must not call stock_close. */
typedef void (*stock_batch_done_fn)(stock_batch *batch);

struct stock_batch {
    stock_op *ops;               /* caller-owned, count entries */
    size_t count;                /* 1..STOCK_BATCH_MAX */
    stock_batch_done_fn done;
    void *user;                  /* for the caller */
    stock_batch *next;           /* backend use while in flight */
};

/*
 * Submits a batch. The ops are applied in order (an op sees the effects of
 * the ops before it, in this and every earlier batch) and the batch
 * completes exactly once through batch->done, with each op's outputs set.
 * Batches submitted from one thread complete in the order submitted.
 *
 * Invalid ops complete with STOCK_INVALID without touching state; other ops
 * of the batch are unaffected. A store that is closed or broken completes
 * every op with STOCK_UNAVAILABLE or STOCK_IO.
 *
 * The batch, its ops and all bytes they point to stay owned by the caller
 * and must stay valid until done is called.
 */
void stock_submit(stock_t *store, stock_batch *batch);

/* Submits a batch and waits for it. Returns STOCK_OK when the batch
 * completed (look at each op's code), STOCK_INVALID for a bad batch size. */
stock_code stock_execute(stock_t *store, stock_op *ops, size_t count);

/* ------------------------------------------------ synchronous one-op calls
 *
 * Each runs one operation and returns its code. Out-parameters may be NULL;
 * they are written only when the code says the value exists (see stock_op).
 * message, when not NULL, receives the failure facts (STOCK_MESSAGE_MAX).
 */

/* Creates sku or sets its level. expect NULL: unconditional. */
stock_code stock_set(stock_t *store, const char *sku, int64_t level,
                     const int64_t *expect, int64_t *available, char *message);

/* Restock (delta > 0) or write off (delta < 0). adjust_id may be NULL. */
stock_code stock_add(stock_t *store, const char *sku, int64_t delta,
                     const char *adjust_id, int64_t *available, char *message);

stock_code stock_deduct(stock_t *store, const char *line_id, const char *sku,
                        int64_t qty, int64_t *available, char *message);

/* lines[i].available receives each line's result. *failed_line (may be NULL)
 * names the line at fault, or -1. */
stock_code stock_order(stock_t *store, const char *order_id,
                       stock_order_line *lines, uint32_t line_count,
                       int32_t *failed_line, char *message);

stock_code stock_refund(stock_t *store, const char *refund_id,
                        const char *line_id, int64_t qty, int64_t *available,
                        char *message);

stock_code stock_get(stock_t *store, const char *sku, stock_sku_info *info);

stock_code stock_line(stock_t *store, const char *line_id,
                      stock_line_info *info);

/* ------------------------------------------------------------ validation */

/* Checks an op's inputs as every backend does before touching state.
 * Returns STOCK_OK, or STOCK_INVALID with op->message saying what is wrong.
 * Exposed so front ends can reject early with the same words. */
stock_code stock_validate(stock_op *op);

/* True if id is 1..STOCK_ID_MAX bytes of 0x21..0x7E. */
bool stock_id_valid(stock_id id);

#ifdef __cplusplus
}
#endif

#endif /* STOCK_H */
