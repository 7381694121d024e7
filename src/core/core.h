/*
 * core.h -- the stock state machine: SKUs, lines, orders, refunds and
 * adjustments in memory, and the apply() of each operation of
 * docs/semantics.md.
 *
 * The core does no I/O and takes no locks: one thread at a time owns it (the
 * embedded backend's applier). It is deterministic: applying an op yields a
 * log record, and replaying that record on the same prior state reproduces
 * the same state exactly. The embedded backend writes the records to the
 * flow log (src/journal) and replays them at recovery; snapshots serialise
 * the whole state.
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
    uint64_t holds;            /* every hold, whatever its state */
    uint64_t holds_outstanding;   /* holds HELD */
    uint64_t held_units;
    uint64_t hold_expiries;    /* events applied or replayed since */
    uint64_t hold_confirmations;  /* core_create, as the next two */
    uint64_t hold_releases;
    uint64_t memory_bytes;     /* bytes the core holds, all tables */
} core_stats;

/* A new, empty state, owned by the caller. NULL on out of memory. A few
 * KiB until it holds data. */
core *core_create(void);

/* Frees a state and everything it holds; NULL is a no-op. Records, ids
 * and infos handed out before stay valid (they are copies). */
void core_destroy(core *state);

/* Frees everything state holds and leaves it empty, as core_create made
 * it (also a state that core_snapshot_load left partly loaded). */
void core_clear(core *state);

/*
 * Applies one op, already validated by stock_validate (code STOCK_OK on
 * entry), at time now_us (Unix microseconds from core_time, recorded on new
 * lines and holds), and sets its outputs (code, available, failed_line,
 * info, message) with the rules and words of docs/semantics.md and
 * src/lib/result.h.
 *
 * If the op changed state, appends exactly one record describing it to
 * *record (which the caller clears between calls as it likes) and returns
 * true; a failed op, a replay, a read or a set to the current level appends
 * nothing and returns false, except that an op touching a HELD hold past
 * its deadline (CONFIRM, RELEASE, CONFIRM_ORDER, HOLD_GET) expires it: that
 * is a change, recorded as an EXPIRE record, and the op answers as the
 * expired hold makes it (EXPIRED, or a HOLD_GET that shows it expired). The record's length is what the buffer grew
 * by: records carry no framing of their own (the journal frames them).
 * The op's ids are only read during the call; the core keeps copies.
 * Errors, all in op->code with nothing changed: the results docs/semantics.md lists,
 * STOCK_INVALID when a total would pass INT64_MAX, STOCK_NOMEM.
 */
bool core_apply(core *state, stock_op *op, int64_t now_us, buf *record);

/*
 * The time to apply the next ops at: now_us, or the latest time a record
 * applied or replayed carries if that is later, so that a clock stepped
 * back never lengthens a hold nor dates a line before an earlier one. The
 * applier calls it once per group and passes the result to core_expire and
 * core_apply. (Nothing un-expires anyway: an expiry is a state change.)
 */
int64_t core_time(const core *state, int64_t now_us);

/*
 * Expires, oldest deadline first, up to limit (1..CORE_EXPIRE_RECORD_MAX)
 * HELD holds whose deadline is at or before now_us: their units go back to
 * available. Appends one EXPIRE record naming them to *record and returns
 * how many; 0 (nothing appended) when none is due. On out of memory for
 * the record it expires nothing and returns 0 (the next call retries).
 */
#define CORE_EXPIRE_RECORD_MAX 1024
uint32_t core_expire(core *state, int64_t now_us, uint32_t limit, buf *record);

/* The earliest deadline among HELD holds (or of a hold closed since,
 * which core_expire then drops), or INT64_MAX when there is none. */
int64_t core_next_deadline(const core *state);

/*
 * A hint that op (validated) will be applied soon: computes its ids' hashes
 * and prefetches the hash-table slots core_apply will read. Changes nothing
 * and may be skipped. Applying a batch, call it for op i + CORE_PREFETCH_AHEAD
 * before applying op i, so that the memory latency of the ops overlaps
 * (a random miss into a large table costs more than the rest of an op,
 * docs/engine.md, "Measurements behind the constants"; and the ops of a
 * batch are independent reads until applied).
 */
#define CORE_PREFETCH_AHEAD 8
void core_prefetch(const core *state, const stock_op *op);

/*
 * Re-applies one record made by core_apply (at recovery), with the time the
 * record carries, through the same rules as core_apply. record is len
 * bytes, exactly one record, read only during the call; message (may be
 * NULL) receives a sentence on failure. Returns STOCK_OK; STOCK_CORRUPT if
 * the bytes are not one well-formed record, or the record does not apply to
 * this state as it did when made (the op fails or replays, or leaves another
 * stock level): the state may then be partly changed and must not be used;
 * STOCK_NOMEM (nothing changed).
 */
stock_code core_replay(core *state, const uint8_t *record, size_t len,
                       char *message, size_t message_size);

/*
 * A hint that a record will be replayed soon: reads its type and first ids
 * (bounds-checked: any bytes are safe, malformed ones are ignored) and
 * prefetches the index slots core_replay will probe. Changes nothing and
 * may be skipped. Recovery calls it CORE_PREFETCH_AHEAD records ahead, so
 * that the cache misses of consecutive records overlap.
 */
void core_replay_prefetch(const core *state, const uint8_t *record, size_t len);

/*
 * A page of a listing (stock_list, inputs validated), read from the state
 * in index order, which is the order of creation, in slices: the walk over
 * the line pool for a SKU's lines can be long, and its owner may let other
 * work run between two slices (entities are never deleted and indices never
 * change, so the cursor stays valid; what is created meanwhile comes at the
 * end). The same thread rule as core_apply, for each call.
 */
typedef struct core_list_cursor {
    stock_list_kind kind;
    uint32_t owner;     /* the SKU, order or line listed; unused for SKUs */
    uint32_t next;      /* the next entity index to look at */
} core_list_cursor;

/* Starts a page after the entity named after ({NULL, 0}: from the first).
 * Returns STOCK_OK, or STOCK_NOT_FOUND with message (size bytes) naming the
 * `of` or `after` that names nothing. */
stock_code core_list_begin(const core *state, stock_list_kind kind, stock_id of, stock_id after,
                           core_list_cursor *cursor, char *message, size_t size);

/* Looks at up to scan_max entities from the cursor, appending what the
 * listing holds to entries[*count..max). True once the page is done: full
 * (*count == max) or the listing has no more. */
bool core_list_next(const core *state, core_list_cursor *cursor, stock_list_entry *entries,
                    uint32_t max, uint32_t *count, uint32_t scan_max);

/*
 * Watching stock levels, for the events derived from the flow log
 * (docs/events.md): while a watch is set, every core_apply, core_expire and
 * core_replay appends to it the SKUs whose available stock it moved, one
 * entry per SKU and call: the level before its first move and after its
 * last (a confirm moves a hold's units back to available, then takes the
 * confirmed part as a line: an entry may end where it began). A SKU the
 * call creates starts at 0. The caller empties the list (count = 0) between
 * calls as it likes; a record never moves more SKUs than CORE_CHANGES_MAX
 * (an expiry of CORE_EXPIRE_RECORD_MAX holds; an order moves at most
 * STOCK_ORDER_LINES_MAX), so a list emptied before each call never fills.
 */
#define CORE_CHANGES_MAX CORE_EXPIRE_RECORD_MAX
typedef struct core_change {
    char sku[STOCK_ID_MAX + 1];
    int64_t before;
    int64_t after;
} core_change;

typedef struct core_changes {
    uint32_t count;
    core_change items[CORE_CHANGES_MAX];
} core_changes;

/* Sets (changes) or clears (NULL) the watch; changes is the caller's and
 * must outlive the watch. */
void core_watch(core *state, core_changes *changes);

/* Writes bytes somewhere; returns 0, or -1 to stop the snapshot. */
typedef int (*core_write_fn)(void *context, const void *data, size_t len);
/* Reads exactly len bytes; returns 0, or -1 on a short read or error. */
typedef int (*core_read_fn)(void *context, void *data, size_t len);

/* Serialises the whole state through write, in pieces of up to 64 KiB
 * from a buffer on the stack. Returns 0, or -1 as soon as a write fails.
 * Does not allocate or change the state, so it is safe in a child after
 * fork(). The format is described in snapshot.c. */
int core_snapshot_save(const core *state, core_write_fn write, void *context);

/* Loads a state saved by core_snapshot_save into an empty core (one just
 * made by core_create); size is the bytes read can deliver in all (counts
 * that could not fit in them are refused before anything is sized from
 * them). Nothing read is trusted: every length, index and total is
 * checked. Returns STOCK_OK; STOCK_CORRUPT (short read, bad format, or data
 * that breaks an invariant; message, which may be NULL, names the section
 * and entry); STOCK_NOMEM. On failure the core is partly loaded and must
 * only be cleared (core_clear) or destroyed. */
stock_code core_snapshot_load(core *state, core_read_fn read, void *context,
                              size_t size, char *message, size_t message_size);

/* Fills *stats: entity counts, and memory_bytes = the capacity of every
 * table, pool and id arena the core holds (not just what is used). */
void core_get_stats(const core *state, core_stats *stats);

/*
 * Retention (docs/engine.md, "Retention"): lines, orders, refunds,
 * adjustments and closed holds older than a cutoff leave memory for a cold
 * store, and come
 * back ("thaw") when an op names them, so that every answer stays what it
 * would have been. The core does no I/O: the cold store is reached through
 * these callbacks, keyed by kind and id, with values the core encodes.
 */
typedef enum core_cold_kind {
    CORE_COLD_LINE = 'L',
    CORE_COLD_ORDER = 'O',
    CORE_COLD_REFUND = 'R',
    CORE_COLD_ADJUSTMENT = 'A',
    CORE_COLD_HOLD = 'H'
} core_cold_kind;
/* Largest value: an order of STOCK_ORDER_LINES_MAX line ids. */
#define CORE_COLD_VALUE_MAX (1 + STOCK_ORDER_LINES_MAX * (1 + STOCK_ID_MAX))

typedef struct core_cold {
    void *context;
    /* Stores one entity that leaves memory (replacing an older value of
     * the same key). Returns 0, or -1 to stop the move. */
    int (*put)(void *context, core_cold_kind kind, stock_id id,
               const uint8_t *value, size_t len);
    /* Reads one into value (CORE_COLD_VALUE_MAX bytes), *len its size.
     * Returns 1 found, 0 absent, -1 on an error. */
    int (*get)(void *context, core_cold_kind kind, stock_id id,
               uint8_t *value, size_t *len);
} core_cold;

/*
 * A move, in steps. It builds a new state holding what state holds except
 * what is cold at cutoff_us, and puts the cold entities through cold->put:
 * a line deducted before the cutoff (with its order, whose lines share its
 * time, and its refunds), unless it is the line of a hold in memory (the
 * line and order a hold became stay while the hold does, and leave at the
 * next move after it); an adjustment older than the newest retention mark
 * at or before the cutoff; a closed hold whose deadline is before the
 * cutoff (taken by the last step). Counters (SKUs) stay whole.
 *
 * core_retain_begin starts it (NULL: out of memory). Each core_retain_step
 * then takes up to budget entities, plus twice the lines, refunds and
 * adjustments made since the step before (so that the move ends however
 * fast ops come), at most budget_max, and ops may be applied to state (and
 * thaw into it) between steps: state must stay the same object, and the
 * job sees what they made or changed. A step returns true once the job has
 * caught up with state (false on a failure too: *code STOCK_IO when a put
 * failed, STOCK_NOMEM). core_retain_finish takes what is left, without a
 * budget: what ops made since the last step, and every SKU and hold (their
 * totals and states change with every op). It records a mark at the
 * state's clock and returns the new state (the caller's, free with
 * core_destroy), which replaces state once the puts are committed; NULL
 * with *code on a failure. core_retain_moved counts the entities put
 * (one put again, since a refund changed it, counts twice);
 * core_retain_left the lines, refunds and adjustments of state the
 * cursors have yet to take (what a caller paces its steps by).
 * core_retain_free frees the job (NULL is fine) and what it built that
 * finish did not return. state is never changed by the job.
 */
typedef struct core_retain_job core_retain_job;
core_retain_job *core_retain_begin(const core *state, int64_t cutoff_us,
                                   const core_cold *cold);
bool core_retain_step(core_retain_job *job, uint64_t budget, uint64_t budget_max,
                      stock_code *code);
core *core_retain_finish(core_retain_job *job, stock_code *code);
uint64_t core_retain_moved(const core_retain_job *job);
uint64_t core_retain_left(const core_retain_job *job);
void core_retain_free(core_retain_job *job);

/*
 * Brings back from the cold store what op (validated, code STOCK_OK) names
 * and memory lacks, so that core_apply answers as if it had never left: the
 * line of a DEDUCT, HOLD, LINE or REFUND, the order of an ORDER or
 * CONFIRM_ORDER and its lines, the refund of a REFUND, the adjustment of an
 * ADD. Changes no answer and no counter. When the cold store has forgotten
 * what op names (an empty value, past the horizon), answers op instead (its
 * code is then no longer STOCK_OK, and it must not be applied): its own id
 * REPLAY with available -1 (and -1 for each line of an order); a LINE
 * NOT_FOUND and a REFUND of the line EXCEEDS, each with "forgotten" in the
 * message; another use of the id CONFLICT. Returns STOCK_OK; STOCK_IO (the
 * store failed), STOCK_CORRUPT (a cold value that does not decode or fit),
 * STOCK_NOMEM, with message.
 */
stock_code core_thaw_op(core *state, stock_op *op, const core_cold *cold,
                        char *message, size_t message_size);

/* The same for a log record about to be replayed (core_replay): a refund's
 * line. Malformed records are left to core_replay to refuse. */
stock_code core_thaw_record(core *state, const uint8_t *record, size_t len,
                            const core_cold *cold, char *message,
                            size_t message_size);

#endif /* STOCK_CORE_H */
