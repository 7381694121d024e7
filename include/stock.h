/*
 * stock.h -- the libstock contract, the library's only public header. It
 * compiles alone, as C99 or later and as C++.
 *
 * libstock takes stock off a SKU when an order line is placed, gives it back
 * when the line is refunded, and never sells what is not there. A checkout
 * may first hold stock (a hold, with a deadline), then confirm it into a
 * line or release it; a hold not confirmed by its deadline expires and its
 * stock comes back. One API opens
 * every backend; the URI picks it:
 *
 *   "./data", "file:./data"        the embedded engine (state in memory, flow
 *                                  log = write-ahead log with group commit;
 *                                  docs/engine.md)
 *   "stockd://host:port"           a running stockd server (RESP);
 *   "stockds://host:port"          the same over TLS (docs/security.md)
 *   "postgres://...", "postgresql://..."  PostgreSQL through libpq
 *                                  (docs/postgres.md)
 *   "shards:postgres://...;postgres://..."  one store over several
 *                                  PostgreSQL databases (docs/sharded.md);
 *                                  "shards:hot=K:sku,...;postgres://..."
 *                                  spreads the named SKUs over K of them
 *   "redis://[:password@]host:port"  Redis 7 through hiredis (docs/redis.md)
 *   "redis://h1:p1,h2:p2/?cluster=1"  a Redis Cluster, from its seed nodes
 *
 * Requests travel in batches (stock_submit): a backend receives a batch and
 * completes every operation in it with its own result, in order. Batching is
 * what makes group commit, merged SQL updates and pipelining possible. The
 * synchronous calls at the end of this file are one-operation batches.
 *
 * Semantics (docs/semantics.md, which also defines the invariants I1-I7
 * cited below):
 *   - identifiers are 1..STOCK_ID_MAX bytes of printable ASCII without space
 *     (0x21..0x7E); quantities per operation are 1..STOCK_QTY_MAX; stock
 *     levels are 0..INT64_MAX. Anything else is STOCK_INVALID and changes
 *     nothing.
 *   - a failed operation records nothing: its retry is a fresh attempt.
 *   - a retry of a successful operation with the same id and parameters is
 *     STOCK_REPLAY and carries the original result; the same id with other
 *     parameters is STOCK_CONFLICT.
 *
 * Errors. Every function that can fail returns a stock_code (stock_submit
 * sets one in each op instead): a code for programs; stock_strerror() turns
 * it into a sentence and stock_code_name() into the word used on the wire. Every call that has more to say than its
 * code takes a last `char *message`: NULL, or a buffer of at least
 * STOCK_MESSAGE_MAX bytes that receives a NUL-terminated text, cut to fit.
 * stock_close has no message: the reason it failed goes to the log hook
 * (stock_config.log). A batch's ops carry their own message (stock_op).
 * Misuse (a NULL store, a batch without a done callback) is a programmer
 * error, checked by assertions, not a code.
 *
 * Threads. Calls that take no store (stock_version, stock_code_name,
 * stock_strerror, stock_hold_state_name, stock_code_succeeded, stock_id_from_cstr, stock_id_valid,
 * stock_validate, stock_sync_bucket_bound_us, stock_restore) keep no state: any thread,
 * any time. stock_open may run on any thread, several at once; each call
 * opens a store of its own. On one open store, any number of threads may
 * call at once:
 *     stock_submit, stock_execute, the one-op calls (stock_set ...
 *     stock_hold_get), stock_list, stock_get_stats, stock_get_health,
 *     stock_backend_name, stock_backup.
 * The store applies operations one at a time in a single order, whatever
 * thread submitted them (so racing deductions never sell one unit twice,
 * I1); batches submitted from one thread complete in the order submitted.
 * The exception is stock_close: it must not overlap any other call on the
 * same store, and nothing may use the store once it has begun. Batches still
 * in flight are fine: it completes them first. Callbacks (a batch's done,
 * the log hook) run on threads of the store's choosing: see each.
 *
 * Ownership. The caller owns every pointer it passes, and the library only
 * borrows it for the duration of the call, except: a submitted batch (its
 * ops and every byte they point to) until its done callback, and
 * stock_config.log and log_user until stock_close returns. Strings the
 * library returns have static storage. A store belongs to the caller from
 * stock_open until stock_close.
 */
#ifndef STOCK_H
#define STOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------------- version */

/* The version of this header. MAJOR changes when the ABI does (a call's
 * signature or meaning, or the size or layout of a public struct:
 * stock_op, stock_config, stock_stats, ...), MINOR when something is added
 * compatibly, PATCH for fixes. The Makefile writes it into libstock.pc and
 * the soname (libstock.so.MAJOR): edit it here only. */
#define STOCK_VERSION_MAJOR 1
#define STOCK_VERSION_MINOR 1
#define STOCK_VERSION_PATCH 0

#define STOCK_VERSION_TEXT_(major, minor, patch) #major "." #minor "." #patch
#define STOCK_VERSION_TEXT(major, minor, patch) STOCK_VERSION_TEXT_(major, minor, patch)
/* "MAJOR.MINOR.PATCH" of this header, e.g. "1.0.0". */
#define STOCK_VERSION \
    STOCK_VERSION_TEXT(STOCK_VERSION_MAJOR, STOCK_VERSION_MINOR, STOCK_VERSION_PATCH)

/* The version of the library linked in, as STOCK_VERSION: compare the two
 * to catch a program run with another library than it was built for.
 * Static storage; any thread. */
const char *stock_version(void);

/* ---------------------------------------------------------------- limits */

#define STOCK_ID_MAX 64                  /* bytes in any identifier */
#define STOCK_QTY_MAX 2147483647LL       /* largest quantity per operation */
#define STOCK_LEVEL_MAX INT64_MAX        /* largest stock level */
#define STOCK_ORDER_LINES_MAX 100        /* lines in one order (a cart) */
#define STOCK_BATCH_MAX 65536            /* operations in one batch */
#define STOCK_MESSAGE_MAX 256            /* bytes of a message buffer, NUL
                                            included; longer texts are cut */
#define STOCK_HOLD_TTL_MS_MAX 2592000000LL /* longest hold: 30 days, in ms */

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
    STOCK_IO,            /* disk or network I/O failed; not acknowledged.
                          * When a sync failed after the write, the op may
                          * still be in the log: a retry with the same id
                          * is safe (it answers REPLAY if it took effect) */
    STOCK_CORRUPT,       /* damaged data on disk; the store refuses to run */
    STOCK_NOMEM,         /* out of memory */
    STOCK_UNAVAILABLE,   /* the store is closed, or its server is unreachable;
                          * remote: when the connection is lost after sending,
                          * the outcome is unknown, and a retry with the same
                          * id is safe (it answers REPLAY if it took effect) */
    STOCK_UNSUPPORTED,   /* the backend or URI scheme does not offer this */
    STOCK_EXPIRED,       /* the hold passed its deadline before it was
                          * confirmed or released: its stock is back */
    STOCK_CLOSED,        /* the hold was already confirmed (release) or
                          * released (confirm): the message names its state */
    STOCK_CODE_COUNT
} stock_code;

/* The wire word for a code: "OK", "REPLAY", "INSUFFICIENT", "NOTFOUND",
 * "CONFLICT", "EXCEEDS", "MISMATCH", "INVALID", "IOERR", "CORRUPT", "NOMEM",
 * "UNAVAILABLE", "UNSUPPORTED", "EXPIRED", "CLOSED"; "UNKNOWN" for a value
 * outside the enum.
 * Never NULL; static storage. */
const char *stock_code_name(stock_code code);

/* A sentence describing the code, for people ("unknown result code" for a
 * value outside the enum). Never NULL; static storage. */
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

/* Wraps a NUL-terminated string, borrowing it (no copy). NULL gives
 * {NULL, 0}, no id (invalid where an id is required; "none" for an ADD's
 * adjustment id), "" an empty id, and a string longer than STOCK_ID_MAX a
 * length of STOCK_ID_MAX + 1: both invalid. */
stock_id stock_id_from_cstr(const char *text);

typedef enum stock_op_type {
    STOCK_OP_SET = 1,  /* sku, amount [, expect]      -> available */
    STOCK_OP_ADD,      /* sku, amount (delta) [, id]  -> available */
    STOCK_OP_DEDUCT,   /* id (line), sku, amount      -> available */
    STOCK_OP_ORDER,    /* id (order), lines           -> lines[i].available */
    STOCK_OP_REFUND,   /* id (refund), line, amount   -> available */
    STOCK_OP_GET,      /* sku                         -> sku_info */
    STOCK_OP_LINE,     /* line                        -> line_info */
    /* Holds: */
    STOCK_OP_HOLD,     /* id (hold), sku, amount, expect (ttl ms) -> available */
    STOCK_OP_CONFIRM,  /* id (hold), amount (0: all)  -> available */
    STOCK_OP_RELEASE,  /* id (hold)                   -> available */
    STOCK_OP_CONFIRM_ORDER, /* id (order), lines (holds) -> lines[i].available */
    STOCK_OP_HOLD_GET, /* id (hold)                   -> hold_info */
    STOCK_OP_TYPE_MAX = STOCK_OP_HOLD_GET
} stock_op_type;

/* Where a hold is in its life. It starts HELD and ends in exactly one of
 * the other three, once: nothing moves it back (docs/semantics.md,
 * "Holds"). */
typedef enum stock_hold_state {
    STOCK_HOLD_HELD = 1,    /* its units are taken from available, until
                               its deadline */
    STOCK_HOLD_CONFIRMED,   /* turned into a deducted line with its id */
    STOCK_HOLD_RELEASED,    /* given back by a release */
    STOCK_HOLD_EXPIRED      /* given back by the store at its deadline */
} stock_hold_state;

/* The word for a hold state: "held", "confirmed", "released", "expired";
 * "unknown" outside the enum. Never NULL; static storage; any thread. */
const char *stock_hold_state_name(stock_hold_state state);

/* One line of an order. line_id, sku and qty are inputs; available is an
 * output, written only when the order succeeds (OK, REPLAY): the SKU's
 * available stock right after this line was taken. In a CONFIRM_ORDER,
 * line_id names a hold, qty is how much of it to confirm (0: all of it),
 * sku is ignored, and available is the SKU's stock after the hold's rest
 * (if any) was released. */
typedef struct stock_order_line {
    stock_id line_id;
    stock_id sku;
    int64_t qty;
    int64_t available;
} stock_order_line;

/* Totals of one SKU. I2 holds (docs/semantics.md): available + held ==
 * adjusted - deducted + refunded, where adjusted sums every set (as a
 * delta) and every add. */
typedef struct stock_sku_info {
    int64_t available;
    int64_t adjusted;
    int64_t deducted;
    int64_t refunded;
    int64_t held;              /* units in holds still HELD */
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

/* One hold. */
typedef struct stock_hold_info {
    char sku[STOCK_ID_MAX + 1];
    char order_id[STOCK_ID_MAX + 1]; /* the CONFIRM_ORDER that confirmed it,
                                        else "" */
    stock_hold_state state;
    int64_t qty;               /* units held */
    int64_t confirmed;         /* units confirmed: 1..qty when CONFIRMED,
                                  else 0 */
    int64_t time_us;           /* Unix time of the hold, microseconds */
    int64_t deadline_us;       /* time_us + ttl: it expires at this time of
                                  the store's clock */
} stock_hold_info;

/*
 * One operation: inputs set by the caller, outputs by the backend.
 *
 *   type      input   field use
 *   SET       sku, amount = new level (0..INT64_MAX), has_expect/expect
 *             (expect 0..INT64_MAX: set only if the level is expect, else
 *             MISMATCH)
 *   ADD       sku, amount = delta (+restock / -write-off, 1..QTY_MAX in
 *             size, never 0), id = adjustment id (optional: ptr NULL means
 *             none; a given id, "" included, must be a valid id, and
 *             makes a retry REPLAY)
 *   DEDUCT    id = line id, sku, amount = qty
 *   ORDER     id = order id, lines/line_count (1..STOCK_ORDER_LINES_MAX,
 *             no line id twice); all lines or none (I3)
 *   REFUND    id = refund id, line = line id, amount = qty
 *   GET       sku
 *   LINE      line
 *   HOLD      id = hold id (its own namespace, but the line it becomes
 *             takes the same id, so no line may have it), sku, amount =
 *             qty, expect = ttl in milliseconds (1..STOCK_HOLD_TTL_MS_MAX;
 *             the field is shared with SET so that stock_op keeps its 1.0
 *             layout); has_expect is ignored
 *   CONFIRM   id = hold id, amount = qty to confirm (1..the hold's qty, the
 *             rest released; 0 = all of it). The line made has the hold's
 *             id: refund it as any line
 *   RELEASE   id = hold id
 *   CONFIRM_ORDER  id = order id, lines/line_count (1..STOCK_ORDER_LINES_MAX,
 *             no hold twice): every hold confirmed as one order's lines, or
 *             none (EXPIRED, CLOSED or NOT_FOUND name the failed_line)
 *   HOLD_GET  id = hold id
 * Fields a type does not use are ignored.
 *
 * Outputs (code, failed_line, available and message are reset when the op
 * is submitted): code always; message "" on
 * success, and on failure the facts after the code word ("sku=A12
 * available=3", see stock_code_name), which may be empty; available for SET,
 * ADD, DEDUCT, REFUND (and with INSUFFICIENT the stock that was there; with
 * MISMATCH the current value; with EXCEEDS the quantity still refundable on
 * the line); available also for HOLD, CONFIRM and RELEASE (the SKU's
 * stock after the op; with INSUFFICIENT the stock there was);
 * failed_line for ORDER and CONFIRM_ORDER failures that concern one line
 * (index into lines), else -1; sku_info for GET, line_info for LINE and
 * hold_info for HOLD_GET, on OK only.
 *
 * Holds and time: a hold's deadline is read on the store's clock
 * (embedded: this process's CLOCK_REALTIME, never taken backwards: a
 * store keeps the latest time it has used; postgres: the server's). A
 * HELD hold whose deadline has passed expires once, as an event of the
 * store's history, before any op that touches it and within a bounded lag
 * otherwise (docs/semantics.md, "Holds"); CONFIRM and RELEASE of it then
 * answer EXPIRED. A retry of a HOLD, CONFIRM or RELEASE that succeeded
 * answers REPLAY whatever happened to the hold since.
 * Holds are kept by the embedded, postgres and remote (stockd://, if the
 * server's store keeps them) backends; the redis and sharded backends
 * answer every hold op UNSUPPORTED and change nothing.
 *
 * The caller owns the op and every byte its ids and lines point to, which
 * must stay valid and unchanged until the batch completes.
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
        stock_hold_info hold_info;
    } info;
    char message[STOCK_MESSAGE_MAX];
} stock_op;

/* ----------------------------------------------------------------- store */

typedef struct stock stock_t;   /* an open store; opaque */

/* When the embedded engine acknowledges a write (the other backends ignore
 * it: a stockd server has its own setting, PostgreSQL commits). */
typedef enum stock_durability {
    /* Acknowledge only after the flow log is on stable storage (I6 holds,
     * docs/semantics.md). */
    STOCK_DURABILITY_SYNC = 0,
    /* Acknowledge after write(); fsync at most STOCK_RELAXED_SYNC_MS later.
     * A machine crash (not a process crash) can lose the last interval. */
    STOCK_DURABILITY_RELAXED
} stock_durability;

#define STOCK_RELAXED_SYNC_MS 1000

/* How much a log message matters, most urgent first. */
typedef enum stock_log_level {
    STOCK_LOG_ERROR,    /* the store failed at something and cannot go on
                         * as asked (e.g. a rotation failed: it breaks) */
    STOCK_LOG_WARNING,  /* something failed and the store goes on (e.g. a
                         * snapshot failed and will be retried) */
    STOCK_LOG_NOTICE,   /* a normal but significant event (e.g. recovery
                         * cut a torn tail) */
    STOCK_LOG_DEBUG     /* detail for developers */
} stock_log_level;

/*
 * The log hook: how the library tells the embedder what it did, since it
 * never prints (an embedder routes, silences or timestamps the messages as
 * it likes). message is one line without a "libstock:" prefix and without a
 * newline, NUL-terminated, at most 511 bytes, valid only during the call
 * (copy it to keep it). user is stock_config.log_user, untouched.
 *
 * It is called on any thread the store uses: the thread inside stock_open
 * or stock_close, a caller of stock_submit, or a backend thread; possibly
 * several at once. It must be thread-safe, must return soon, and must not
 * call any stock_ function on the same store.
 */
typedef void (*stock_log_fn)(void *user, stock_log_level level,
                             const char *message);

/* Options for stock_open. Zero-initialise, then set what you need; a NULL
 * config means all defaults. Backends ignore the fields that are not theirs.
 * The URI's query parameters override these where a backend reads them:
 * the embedded engine's durability= and snapshot_log_bytes=
 * (docs/engine.md), PostgreSQL's stock_buckets=, stock_merge= and
 * stock_replica= (docs/postgres.md), Redis's buckets= (docs/redis.md). Some options are the URI's only: the
 * embedded engine's retention= (e.g. "./data?retention=1d": lines, orders,
 * refunds and adjustments older than that leave memory for a cold store on
 * disk and still answer as before; default off) and forget= (past that
 * longer horizon the cold store forgets them: a replay answers REPLAY with
 * available -1; docs/engine.md, "Retention"). */
typedef struct stock_config {
    stock_durability durability;  /* embedded: default SYNC */
    uint64_t snapshot_log_bytes;  /* embedded: snapshot after this much log
                                     at least (more once the snapshot is
                                     larger: docs/engine.md);
                                     0 = default (256 MiB) */
    uint32_t buckets;             /* postgres: rows per hot SKU; redis:
                                     keys per SKU (one server, 1..16);
                                     0 = 1 */
    bool no_merge;                /* postgres: one conditional update per
                                     deduction instead of one per SKU for
                                     each run of deductions (merging is the
                                     default: docs/postgres.md) */
    const char *replica_uri;      /* postgres: read replica for pre-checks;
                                     NULL = none; copied at open */
    bool sync_in_caller;          /* embedded, sync durability: stock_submit
                                     syncs a small batch in the calling thread
                                     (blocking it for one fdatasync) and
                                     completes it before returning, instead of
                                     handing it to a backend thread. For a
                                     caller that submits one batch per event
                                     loop turn, as stockd does; leave it false
                                     to keep many batches in flight from one
                                     thread. */
    stock_log_fn log;             /* receives the store's messages; NULL (the
                                     default): the library writes nothing
                                     anywhere (what recovery did is also in
                                     stock_stats). Kept, with log_user, until
                                     stock_close returns. */
    void *log_user;               /* handed to log as is */
} stock_config;

/*
 * Opens the store named by uri (see the top of this file). The embedded
 * engine recovers its data folder first (docs/engine.md, "Recovery"): what
 * it did is in stock_stats, and a torn tail it cut is also a notice to the
 * log hook. Any thread; several opens may run at once.
 *
 * uri       in, NUL-terminated; NULL or "" is STOCK_INVALID.
 * config    in, may be NULL (defaults). Read during the call only, except
 *           log and log_user, which the store keeps until stock_close.
 * store     out, not NULL: the handle, the caller's until stock_close();
 *           NULL on failure.
 * message   out, NULL or STOCK_MESSAGE_MAX bytes: on failure a sentence
 *           naming what failed (e.g. the file and offset of damaged data),
 *           never empty, cut to fit; "" on success.
 *
 * Returns STOCK_OK; STOCK_INVALID (bad URI or config), STOCK_UNSUPPORTED
 * (no backend serves the URI), STOCK_IO, STOCK_CORRUPT (recovery found
 * damage before the tail of the log: start-up is refused, nothing is changed
 * on disk), STOCK_UNAVAILABLE (server unreachable, or the data folder is
 * open in another store, in this process or another), STOCK_NOMEM.
 */
stock_code stock_open(const char *uri, const stock_config *config,
                      stock_t **store, char *message);

/*
 * Completes every batch already submitted (their done callbacks run before
 * it returns), makes everything durable, and frees the store. It must not
 * overlap any other call on the store (see Threads at the top), nor run
 * inside a done callback or the log hook; the handle is invalid once it
 * has begun. NULL is a no-op returning STOCK_OK.
 *
 * Returns STOCK_OK, or STOCK_IO if the store broke at some point since it
 * was opened (a failed write or sync, the final flush included): with
 * relaxed durability, work acknowledged after the last good sync may then
 * be lost. The reason goes to the log hook as an error, since there is no
 * message parameter. The handle is freed either way.
 */
stock_code stock_close(stock_t *store);

/*
 * For an event loop that submits with stock_config.sync_in_caller: a file
 * descriptor that becomes readable when syncs the store started without
 * waiting have completed, or -1 if the store has none (another backend,
 * relaxed durability, or io_uring unavailable: an old kernel, a seccomp
 * filter; the store's log hook then says why, at STOCK_LOG_NOTICE). The
 * first call that returns a descriptor switches the store:
 * from then on stock_submit in the calling thread starts the sync of its
 * batch (io_uring's fdatasync) instead of waiting for it, and the caller
 * must call stock_process_completions whenever the descriptor is readable;
 * until then those batches do not complete. Call it once, before the first
 * stock_submit, on the thread that will poll. The descriptor is the
 * store's: do not read or close it; it is valid until stock_close.
 */
int stock_completion_fd(stock_t *store);

/* Completes every batch whose sync the store's completion descriptor
 * announced (their done callbacks run in the calling thread before it
 * returns), and starts the sync of anything written since. Does not block.
 * A no-op for a store without a completion descriptor. */
void stock_process_completions(stock_t *store);

/* The name of the backend serving the store: "embedded", "remote",
 * "postgres", "sharded". Static storage; any thread, at once with other calls. */
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

/* Counters since open. batches and operations are counted by the library
 * for every backend (a batch when its done callback is called, invalid ops
 * included); syncs and their latency by the backends that sync or commit
 * (embedded, postgres); the rest by the backend that knows them; a field a
 * backend does not track stays 0. */
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

    /* Holds, by the backend that keeps them: */
    uint64_t holds_outstanding;        /* holds HELD now */
    uint64_t held_units;               /* units in them */
    uint64_t hold_expiries;            /* holds expired, in all */
    uint64_t hold_confirmations;       /* holds confirmed, in all */
    uint64_t hold_releases;            /* holds released, in all */
} stock_stats;

/* Fills *stats (out, not NULL). Cheap: safe to call often, from any thread,
 * at once with the store's other calls (not stock_close). Returns STOCK_OK
 * (every backend has at least the library's counters). */
stock_code stock_get_stats(stock_t *store, stock_stats *stats);

/* ---------------------------------------------------------------- health */

/* What an operator's health checks need (docs/operations.md, "Health").
 * A field a backend cannot know stays 0/false: the embedded engine fills
 * the store's and the disk's, postgres the replica's (a stockd:// store
 * reports the client's own view: all clear while the server answers). */
typedef struct stock_health {
    bool failed;               /* failed closed: a write or sync of the log
                                * failed, every write answers STOCK_IO until
                                * the store is reopened */
    char failure[STOCK_MESSAGE_MAX];  /* why, when failed; else "" */
    bool snapshot_failed;      /* the last snapshot try failed: the log and
                                * the next start-up's replay keep growing
                                * until one succeeds (usually a full disk) */
    uint64_t snapshot_failures;       /* failed snapshot tries since open */
    uint64_t disk_free_bytes;  /* free space (for unprivileged users) of the
                                * file system holding the store; 0 unknown */
    uint64_t disk_bytes;       /* its size; 0 unknown */
    /* postgres with a read replica (stock_replica), as of the last batch
     * that asked it (its pre-check of deductions): */
    bool replica_unreachable;  /* it did not answer: pre-checks are skipped
                                * (the primary decides alone) until it does */
    uint64_t replica_lag_bytes;  /* WAL bytes it had not yet replayed of our
                                  * last commit (it was then not used); 0 when
                                  * caught up or there is no replica */
} stock_health;

/* Fills *health (out, not NULL). Cheap (one statvfs): any thread, at once
 * with the store's other calls but stock_close. Returns STOCK_OK. */
stock_code stock_get_health(stock_t *store, stock_health *health);

/* --------------------------------------------------------------- backups */

/* Where a backup stands: what stock_backup took, or stock_restore put back. */
typedef struct stock_backup_info {
    uint64_t end_lsn;          /* the backup point: the backup holds the
                                * first end_lsn flow log records (lsn,
                                * docs/engine.md), so every operation
                                * acknowledged before stock_backup was
                                * called, and nothing after the point */
    uint64_t snapshot_lsn;     /* the records its snapshot covers; 0: none */
    uint64_t files;            /* data files copied */
    uint64_t bytes;            /* bytes copied */
} stock_backup_info;

/*
 * Takes an online backup of an open store into dest, a folder that must
 * not exist (created, mode 0755), while the store goes on serving: a
 * consistent point is taken between two groups of writes (the flow log is
 * synced and a new segment started), the files of that point (the newest
 * snapshot and the log after it) are kept from clean-up, copied and
 * fsynced (with the embedded engine's retention=, a compacted copy of its
 * cold store first, which opening the backup takes back to the backup's
 * snapshot), and a manifest named BACKUP is written last: a folder without
 * it is no backup (stock_restore refuses it). Writes wait only for the
 * point, not for the copy. The backup is a data folder that stock_restore
 * puts back (docs/operations.md, "Backup and restore").
 *
 * Embedded engine: the calling thread copies. stockd:// : the server takes
 * the backup of its own store into dest on its own machine (a path as the
 * server sees it). Other backends answer STOCK_UNSUPPORTED (PostgreSQL and
 * Redis have their own backup tools). Any thread, at once with every call
 * but stock_close; one backup at a time is the caller's choice, several
 * may run.
 *
 * dest      in, NUL-terminated, 1..STOCK_PATH_MAX - 1 bytes.
 * info      out, may be NULL: the backup point and what was copied.
 * message   NULL or STOCK_MESSAGE_MAX bytes: "" on success, else why.
 *
 * Returns STOCK_OK; STOCK_INVALID (dest empty, too long or existing),
 * STOCK_UNSUPPORTED, STOCK_IO (a copy failed: dest holds no manifest; or
 * the log could not be synced: then the store breaks as after any failed
 * write), STOCK_NOMEM, STOCK_UNAVAILABLE (remote: the server went away).
 */
stock_code stock_backup(stock_t *store, const char *dest,
                        stock_backup_info *info, char *message);

/*
 * Restores the backup folder src (made by stock_backup) into path, a data
 * folder that must not exist: checks the manifest and that every file it
 * names is there at its size, then copies and fsyncs them. No store is
 * needed; open path afterwards with stock_open (which checks every
 * checksum as any recovery does). Any thread.
 *
 * Returns STOCK_OK with *info (may be NULL; files and bytes copied);
 * STOCK_INVALID (src is no finished backup, or path exists or is empty),
 * STOCK_IO, STOCK_NOMEM, with message.
 */
stock_code stock_restore(const char *src, const char *path,
                         stock_backup_info *info, char *message);

/* What stock_reshard did. */
typedef struct stock_reshard_info {
    uint64_t skus;        /* SKUs (and pieces of hot SKUs) moved to another member */
    uint64_t lines;       /* their lines (flow rows) */
    uint64_t ids;         /* id directory entries moved to their new home */
    bool resumed;         /* an interrupted move was found and finished */
    bool already;         /* the members formed the new map already: nothing done */
} stock_reshard_info;

/*
 * Adds members to a sharded store (docs/sharded.md, "Adding a shard"):
 * from_uri names its members as the store records them, to_uri the same
 * members, spelled the same, followed by the new ones (empty databases).
 * Moves every SKU whose shard changes (with its flow rows, refunds,
 * adjustments and holds), every piece of a hot SKU on a member that the
 * new map no longer picks for it (to a new member that it picks; both
 * URIs must name the same hot= segment), and every id directory entry
 * whose home changes (written first from a store of one member, which
 * keeps none), each by
 * one two-phase commit pair, then records the new map on every
 * member. The store must be offline: no session of anyone else on any
 * member (checked), and stores refuse to open while the move is recorded.
 * An interrupted move (a crash at any point) loses and doubles nothing;
 * calling again with the same URIs finishes it. Blocking; any thread.
 * Log messages go to config's log hook (config may be NULL).
 *
 * info      out, may be NULL.
 * message   NULL or STOCK_MESSAGE_MAX bytes: "" on success, else why.
 *
 * Returns STOCK_OK; STOCK_INVALID (a URI is not shards:, to_uri does not
 * extend from_uri or names other hot SKUs, a member list does not match
 * what the members record, a new member is not empty, two members are
 * databases of one PostgreSQL server), STOCK_UNAVAILABLE (a
 * member is unreachable, or someone else is connected to one), STOCK_IO,
 * STOCK_NOMEM, with message.
 */
stock_code stock_reshard(const char *from_uri, const char *to_uri,
                         const stock_config *config, stock_reshard_info *info,
                         char *message);

/* Longest path stock_backup and stock_restore take, NUL included. */
#define STOCK_PATH_MAX 4096

/* ---------------------------------------------------------- async batches */

typedef struct stock_batch stock_batch;

/*
 * Called once per batch when every op in it has its result. It runs on a
 * backend thread, or on the submitting thread before stock_submit returns
 * (when every op is invalid, or with stock_config.sync_in_caller), also
 * while stock_close waits; dones of different batches may run at once on
 * different threads. When it is called the library is done with the batch:
 * it may free or reuse the batch and its ops, and it may submit new
 * batches. It must return soon (later batches wait behind it), and must not
 * wait for another batch of the same store (stock_execute, the one-op
 * calls: that can deadlock) nor call stock_close.
 */
typedef void (*stock_batch_done_fn)(stock_batch *batch);

struct stock_batch {
    stock_op *ops;               /* caller-owned, count entries */
    size_t count;                /* 1..STOCK_BATCH_MAX */
    stock_batch_done_fn done;    /* not NULL */
    void *user;                  /* for the caller; the library never reads it */
    stock_batch *next;           /* the backend's while in flight */
};

/*
 * Submits a batch. The ops are applied in order (an op sees the effects of
 * the ops before it, in this and every earlier batch) and the batch
 * completes exactly once through batch->done, with each op's outputs set.
 * Any thread, several at once (see Threads at the top); batches submitted
 * from one thread complete in the order submitted. It does not wait for
 * the batch, except that with stock_config.sync_in_caller the embedded
 * engine may sync a small one in the calling thread.
 *
 * Invalid ops complete with STOCK_INVALID without touching state; other ops
 * of the batch are unaffected. A broken store (a failed write or sync:
 * embedded) completes every later op with STOCK_IO; a remote backend that
 * lost its server, with STOCK_UNAVAILABLE. A NULL store or batch, a NULL
 * done or a count outside 1..STOCK_BATCH_MAX is a programmer error.
 *
 * The batch, its ops and all bytes they point to stay owned by the caller
 * and must stay valid and unchanged until done is called.
 */
void stock_submit(stock_t *store, stock_batch *batch);

/* Submits the count ops in ops as one batch and waits for it on the calling
 * thread (never from a done callback or the log hook). Any thread, several
 * at once. Returns STOCK_OK when the batch completed (look at each op's
 * code), or STOCK_INVALID, touching no op, for a NULL store or ops or a
 * count outside 1..STOCK_BATCH_MAX. */
stock_code stock_execute(stock_t *store, stock_op *ops, size_t count);

/* ------------------------------------------------ synchronous one-op calls
 *
 * Each runs one operation through stock_execute, waits for it and returns
 * its code: any thread, several at once, never from a done callback or the
 * log hook. Strings are NUL-terminated and borrowed for the call; a NULL,
 * empty or too long id is STOCK_INVALID, as are quantities out of range
 * (see stock_op).
 *
 * Out-parameters may be NULL. Each is written only on the codes listed:
 *   available   OK and REPLAY (the level after the op, or after the
 *               original one), INSUFFICIENT (the stock there was), MISMATCH
 *               (the current level), EXCEEDS (what is still refundable on
 *               the line; a CONFIRM: the hold's qty); untouched on any
 *               other code.
 *   message     NULL or STOCK_MESSAGE_MAX bytes; always written: "" when
 *               the op succeeded, else the failure's facts (stock_op).
 */

/* Creates sku or sets its level to level (0..INT64_MAX). expect NULL:
 * unconditional; else only if the level is *expect (MISMATCH if not). */
stock_code stock_set(stock_t *store, const char *sku, int64_t level,
                     const int64_t *expect, int64_t *available, char *message);

/* Restock (delta > 0) or write off (delta < 0; never below 0, INSUFFICIENT
 * instead). adjust_id NULL: no id, every call adjusts again; an id makes a
 * retry REPLAY. An empty adjust_id ("") is STOCK_INVALID, not "no id". */
stock_code stock_add(stock_t *store, const char *sku, int64_t delta,
                     const char *adjust_id, int64_t *available, char *message);

/* Takes qty of sku as the line line_id. */
stock_code stock_deduct(stock_t *store, const char *line_id, const char *sku,
                        int64_t qty, int64_t *available, char *message);

/* Takes every line (lines[0..line_count), ids and quantities borrowed for
 * the call) as one order, or none. On OK and REPLAY lines[i].available
 * receives each line's result; on other codes lines is untouched.
 * *failed_line (may be NULL) is always written: the index of the line at
 * fault, or -1 when none is (or the order succeeded). */
stock_code stock_order(stock_t *store, const char *order_id,
                       stock_order_line *lines, uint32_t line_count,
                       int32_t *failed_line, char *message);

/* Gives qty of the line line_id back as the refund refund_id. */
stock_code stock_refund(stock_t *store, const char *refund_id,
                        const char *line_id, int64_t qty, int64_t *available,
                        char *message);

/* Reads a SKU's totals into *info (may be NULL), written on OK only:
 * NOT_FOUND for an unknown SKU. */
stock_code stock_get(stock_t *store, const char *sku, stock_sku_info *info,
                     char *message);

/* Reads a deducted line into *info (may be NULL), written on OK only:
 * NOT_FOUND for an unknown line. */
stock_code stock_line(stock_t *store, const char *line_id,
                      stock_line_info *info, char *message);

/* Holds qty of sku as the hold hold_id for ttl_ms milliseconds
 * (1..STOCK_HOLD_TTL_MS_MAX): its units leave available at once and come
 * back at the deadline unless it is confirmed first. */
stock_code stock_hold(stock_t *store, const char *hold_id, const char *sku,
                      int64_t qty, int64_t ttl_ms, int64_t *available,
                      char *message);

/* Confirms qty of the hold hold_id (0: all of it; the rest is released)
 * into a deducted line with the hold's id. EXPIRED after its deadline,
 * CLOSED if it was released, CONFLICT if it was confirmed with another
 * qty, NOT_FOUND for an unknown hold, EXCEEDS for qty above the hold's
 * (*available then receives the hold's qty). */
stock_code stock_confirm(stock_t *store, const char *hold_id, int64_t qty,
                         int64_t *available, char *message);

/* Releases the hold hold_id: its units are available again. EXPIRED after
 * its deadline, CLOSED if it was confirmed, NOT_FOUND for an unknown one. */
stock_code stock_release(stock_t *store, const char *hold_id,
                         int64_t *available, char *message);

/* Confirms every hold of lines[0..line_count) (line_id = hold id, qty = how
 * much, 0 for all; sku ignored) as the lines of one order order_id, or
 * none. As stock_order for lines[i].available and *failed_line. */
stock_code stock_confirm_order(stock_t *store, const char *order_id,
                               stock_order_line *lines, uint32_t line_count,
                               int32_t *failed_line, char *message);

/* Reads a hold into *info (may be NULL), written on OK only: NOT_FOUND
 * for an unknown hold. */
stock_code stock_hold_get(stock_t *store, const char *hold_id,
                          stock_hold_info *info, char *message);

/* --------------------------------------------------------------- listing */

#define STOCK_LIST_MAX 1000   /* entries in one page of a listing */

/* What stock_list lists. */
typedef enum stock_list_kind {
    STOCK_LIST_SKUS = 1,      /* every SKU (of: NULL)      -> info.sku_info */
    STOCK_LIST_SKU_LINES,     /* the lines of the SKU `of`  -> info.line_info */
    STOCK_LIST_ORDER_LINES,   /* the lines of the order `of` -> info.line_info */
    STOCK_LIST_LINE_REFUNDS   /* the refunds of the line `of` -> info.refund_info */
} stock_list_kind;

/* One refund, as a listing of a line's refunds gives it. */
typedef struct stock_refund_info {
    char line[STOCK_ID_MAX + 1];   /* the line refunded */
    int64_t qty;
    int64_t available_after;       /* the SKU's stock right after the refund */
} stock_refund_info;

/* One entry of a listing: a SKU and its totals, a line, or a refund
 * (refund_info is smaller than line_info: the entry kept its size). */
typedef struct stock_list_entry {
    char id[STOCK_ID_MAX + 1];   /* the SKU's id, the line's or the refund's */
    union {
        stock_sku_info sku_info;
        stock_line_info line_info;
        stock_refund_info refund_info;
    } info;
} stock_list_entry;

/*
 * Reads one page of a listing: up to max entries in the store's order,
 * starting right after the entry whose id is `after`. The store's order is
 * stable, so paging with after = the last id of the previous page misses
 * nothing and repeats nothing:
 *   embedded   the order in which the SKUs, lines and refunds were created
 *              (the order it applied them; an order's lines in the order's
 *              line order); what is created meanwhile comes at the end
 *   postgres, redis, sharded   byte order of the ids (as strcmp); an order's
 *              lines in the order's line order (sharded: byte order of
 *              the line ids); what is created meanwhile comes where its id
 *              falls, so a page already read does not show it
 *   remote     as the server's store
 * Any thread, several at once, as the one-op calls (never from a done
 * callback or the log hook). As a read op, it returns once what it read is
 * durable (I7).
 *
 * kind      STOCK_LIST_*.
 * of        in: the SKU (SKU_LINES), order (ORDER_LINES) or line
 *           (LINE_REFUNDS) id; NULL for SKUS.
 * after     in: NULL (from the first), or an id of what is listed: a SKU
 *           id for SKUS, a line id for the lines, a refund id for the
 *           refunds.
 * entries   out: max entries (1..STOCK_LIST_MAX); the first *count are
 *           written.
 * count     out, not NULL: the entries written. Fewer than max: the listing
 *           has no more after them.
 * message   NULL or STOCK_MESSAGE_MAX bytes: "" on success, else the
 *           failure's facts or sentence.
 *
 * Memory: the caller's entries only; a backend holds no more than a few
 * pages at a time (redis: two; sharded: one per member), so any listing
 * runs in bounded memory. Time: embedded walks its memory (a line's
 * refunds: every refund of the store, per page); postgres reads an index
 * range; redis scans every SKU key (SKUS), the SKU's whole flow hash
 * (SKU_LINES) or its whole refunds hash (LINE_REFUNDS) per page, so a
 * listing of n entries costs n * n / max entries read there.
 *
 * Returns STOCK_OK; STOCK_INVALID (a kind, of, after or max out of range:
 * nothing read), STOCK_NOT_FOUND (of or after names nothing: "sku=X",
 * "order=X", "line=X", "refund=X"; postgres, redis and sharded: a
 * SKU_LINES after must be a line of that SKU, an ORDER_LINES after a line
 * of that order, a LINE_REFUNDS after a refund of that line),
 * STOCK_UNSUPPORTED (a stockd server older than the LIST command, or than
 * its REFUNDS listing),
 * STOCK_IO, STOCK_UNAVAILABLE, STOCK_NOMEM.
 */
stock_code stock_list(stock_t *store, stock_list_kind kind, const char *of,
                      const char *after, stock_list_entry *entries,
                      uint32_t max, uint32_t *count, char *message);

/* ------------------------------------------------------------ validation */

/* Checks an op's inputs as every backend does before touching state. Any
 * thread; touches only the op. Returns STOCK_OK, or STOCK_INVALID with
 * op->message saying what is wrong (and op->failed_line naming the line of
 * an order at fault). Exposed so front ends can reject early with the same
 * words. */
stock_code stock_validate(stock_op *op);

/* True if id is 1..STOCK_ID_MAX bytes of 0x21..0x7E (ptr NULL: false). */
bool stock_id_valid(stock_id id);

#ifdef __cplusplus
}
#endif

#endif /* STOCK_H */
