/*
 * sharded.h -- the pieces of the sharded backend (docs/sharded.md): one store
 * over several PostgreSQL databases, each a member opened by the postgres
 * backend. sharded.c opens the members and routes batches to them;
 * sharded_map.c installs the sharded tables and checks the shard map;
 * sharded_txn.c keeps the id directory and runs the carts that span shards
 * (two-phase commit) and the recovery of their in-doubt transactions;
 * sharded_move.c moves SKUs to a longer member list (stock_reshard).
 * Internal to libstock.
 */
#ifndef STOCK_SHARDED_H
#define STOCK_SHARDED_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

#include "backend/backend.h"
#include "backend/postgres.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/worker.h"

#define SHARD_SCHEME "shards:"
#define SHARD_SEPARATOR ';'          /* between member URIs */
#define SHARD_MAX 16                 /* members of one store */
#define SHARD_MAP_ID_LEN 16          /* hex digits of a map's random id */
#define SHARD_GID_MAX 96             /* bytes of a prepared transaction's name */
#define SHARD_NAME_MAX 160
/* The advisory lock an opening store holds on member 0 while it checks the
 * map, and a move while it records itself (sharded_move.c). */
#define SHARD_MAP_LOCK_KEY 7379013           /* "host:port/db" of a member, for messages */
/* Ids (kinds and values) one segment may claim: bounds the key table. */
#define SHARD_SEGMENT_KEYS 65536
#define SHARD_KEY_SLOTS (4 * (uint32_t)SHARD_SEGMENT_KEYS)
/* The sweep: how often it looks for in-doubt transactions, and how old one
 * must be before it is resolved (a live coordinator finishes long before). */
#define SHARD_SWEEP_INTERVAL_MS 1000
#define SHARD_SWEEP_GRACE_S 5
/* Pruning of stock_decisions (docs/sharded.md, "Pruning decisions"): how
 * often the sweep prunes, and how old a decision must be before it may go
 * once none of its parts is prepared. A commit is written after every part
 * was prepared, so its age only covers clock skew between clients; an
 * abort may be written while a stalled coordinator has parts still to
 * prepare, and must outlive it (each PREPARE waits at most the timeout). */
#define SHARD_PRUNE_INTERVAL_MS 10000
#define SHARD_PRUNE_COMMIT_AGE_S 60
#define SHARD_PRUNE_ABORT_AGE_S 86400
/* A fence (stock_fences) left on the shard its id's directory entry names
 * -- a store that took the id over died between fencing and re-pointing
 * the entry -- holds off every op of that id there. The sweep lifts such a
 * fence once it is this old: a store still taking the id over (between two
 * statements, each bounded by stock_timeout_ms) would need the entry to
 * name that shard for its re-pointing, and only a client frozen for a day
 * could still be there. Read SHARD_FENCE_HEAL_PAGE fences at a time. */
#define SHARD_FENCE_HEAL_AGE_S SHARD_PRUNE_ABORT_AGE_S
#define SHARD_FENCE_HEAL_PAGE 100

/* Where an op goes. */
enum {
    SHARD_ROUTE_DONE = -1,   /* decided by the router, not sent */
    SHARD_ROUTE_CROSS = -2,  /* an order over several shards: two-phase */
    SHARD_ROUTE_SPREAD = -3, /* a set or restock of a hot SKU: on all its shards, two-phase */
};

/* Hot SKUs (docs/sharded.md, "Hot SKUs across shards"): the URI segment
 * "hot=<K>:<sku>,<sku>..." (or "hot=<K>:*", every SKU) spreads each named
 * SKU over K shards. */
#define SHARD_HOT_PREFIX "hot="
#define SHARD_HOT_MAX 64             /* SKUs one URI may name hot */
#define SHARD_HOT_ALL "*"

/* The directory entry of a cart over several shards names its coordinator
 * as a negative number, so that a one-shard order reusing the id (which
 * the coordinator's part alone would take for a replay) is told apart. */
#define SHARD_CART(coordinator) (-1 - (int32_t)(coordinator))
#define SHARD_OF_ENTRY(entry) ((entry) < 0 ? (uint32_t)(-1 - (entry)) : (uint32_t)(entry))

/* Kinds of ids in the directory (stock_ids.kind). */
#define SHARD_KIND_LINE 'L'
#define SHARD_KIND_ORDER 'O'
#define SHARD_KIND_REFUND 'R'
#define SHARD_KIND_ADJUST 'A'

typedef struct shard {
    stock_t *store;         /* the member: a postgres store */
    pg_options options;     /* its URI's options, for the control session */
    PGconn *control;        /* worker-owned: directory, two-phase, recovery */
    char name[SHARD_NAME_MAX];
    uint32_t routed;        /* ops of the segment being dispatched */
    /* Set when the control session could not connect or did not answer
     * within stock_timeout_ms: what needs the member then fails UNAVAILABLE
     * at once, instead of costing every batch the timeout (or the worker a
     * connection attempt) again. Cleared by the sweep thread once it
     * reaches the member. */
    atomic_bool down;
} shard;

/* A chain in flight: its ops went to the members as parts (one batch per
 * member and segment); it completes when its last part does, after every
 * chain before it (sharded_dispatch.c). */
typedef struct shard_flight {
    stock_batch *chain;
    uint32_t pending;            /* parts not done, +1 while the worker routes it */
    struct shard_flight *next;
} shard_flight;

/* One id of a segment that must be claimed in the directory. */
typedef struct shard_claim {
    uint32_t op;        /* index into store->ops */
    int32_t line;       /* order line, -1 for the op's own id */
    char kind;
    stock_id id;
    uint32_t home;      /* the shard that keeps the id's directory entry */
    int32_t target;     /* the shard the op runs on; for an order over
                         * several, SHARD_CART(coordinator) */
} shard_claim;

typedef struct shard_key {
    char kind;
    stock_id id;
    uint32_t slot;
} shard_key;

typedef struct sharded_store {
    struct stock base;
    uint32_t count;
    shard shards[SHARD_MAX];
    char map_id[SHARD_MAP_ID_LEN + 1];
    /* Hot SKUs, read-only after open: each spread over hot_spread shards
     * (1: none). hot_all spreads every SKU; else hot_ids (pointing into
     * hot_text, owned) name them. */
    uint32_t hot_spread;
    bool hot_all;
    uint32_t hot_count;
    stock_id hot_ids[SHARD_HOT_MAX];
    char *hot_text;
    int64_t client_id;         /* random: names this store's transactions */
    uint64_t order_seq;        /* numbers them */
    stock_log_hook log;
    worker worker;

    /* The parts in flight, counted down by their done callbacks, and the
     * chains waiting to complete, oldest first. */
    pthread_mutex_t mutex;
    pthread_cond_t done;
    uint32_t pending;
    shard_flight *flights, *flights_tail;
    bool completing;             /* a thread is completing chains */

    /* The chain being run (worker-owned). */
    stock_op **ops;
    int32_t *routes;           /* per op: shard, or SHARD_ROUTE_* */
    uint32_t op_count;
    shard_key *keys;           /* the segment's ids, to end it at a repeat */
    uint32_t *slots;
    uint32_t key_count;
    shard_claim *claims;
    uint32_t claim_count;
    uint32_t *picked;          /* scratch: the claims of one home member */
    pg_plan plan;              /* scratch: one shard's part of an order */

    /* The sweep thread: resolves transactions left in doubt by a crash. */
    pthread_t sweeper;
    bool sweeping;
    bool stopping;             /* under mutex: close asks the sweep to end */
    pthread_cond_t stop;
} sharded_store;

/* One shard's part of a transaction over several shards: a cart's part
 * (sharded_order.c), or a hot SKU's piece in a set or a gather
 * (sharded_hot.c). */
typedef struct order_part {
    uint32_t shard;
    PGconn *conn;                 /* the shard's control session */
    bool begun, prepared;
    stock_op op;                  /* the part as an op of its own */
    stock_order_line lines[STOCK_ORDER_LINES_MAX];
    uint32_t global[STOCK_ORDER_LINES_MAX];   /* index of each line in the cart */
} order_part;

/* A hot SKU of a cart (sharded_hot.c): its total over its pieces, read
 * with their rows locked, and what the cart's lines take of it. */
typedef struct hot_line_sku {
    stock_id sku;
    uint32_t first;               /* the cart's first line of it */
    int64_t rows, total, need;
} hot_line_sku;

/* A transaction over several shards: its parts in shard order (the first
 * is the coordinator, which keeps the decision). */
typedef struct order_run {
    stock_op *op;                 /* what it does for the caller */
    order_part parts[SHARD_MAX];
    uint32_t part_count;
    hot_line_sku hot[STOCK_ORDER_LINES_MAX];   /* a cart's hot SKUs */
    uint32_t hot_count;
    char gid[SHARD_GID_MAX];
    char digest[24];              /* of a whole cart: lines in order */
    char error[STOCK_MESSAGE_MAX];
} order_run;

/* The shard a SKU (or an id's directory entry) lives on: rendezvous hashing
 * over the members' positions, so adding a member moves about 1/N. */
uint32_t shard_of(const sharded_store *store, stock_id id);

/* sharded_hot.c */

/* Gives a SKU ($1) an empty row (no stock, nothing adjusted) where it has
 * none: a piece of a SKU named hot after it was created, which has rows on
 * piece 0 alone until its next set. Does nothing where it has rows. */
extern const char shard_empty_piece_sql[];

/* Reads the "hot=" segment, if any, at the start of a shards: URI's
 * members (text, after the scheme) into store. STOCK_INVALID (message says
 * why) for a malformed one, STOCK_NOMEM. */
stock_code shard_hot_parse(sharded_store *store, const char *text, char *message, size_t size);
/* Refuses (STOCK_INVALID) a spread above the member count. */
stock_code shard_hot_check(const sharded_store *store, char *message, size_t size);
/* How many shards sku is spread over: store->hot_spread if it is hot,
 * else 1. */
uint32_t shard_spread(const sharded_store *store, stock_id sku);
/* The shard of sku's piece j (0 <= j < shard_spread): the members ranked by
 * sku's rendezvous score, highest first, so piece 0 is shard_of(sku). */
uint32_t shard_piece(const sharded_store *store, stock_id sku, uint32_t j);
/* The shard a deduction of sku with line id line runs on first: for a hot
 * SKU, the piece the line's hash picks, so that its lines spread over its
 * pieces; else shard_of(sku). */
uint32_t shard_line(const sharded_store *store, stock_id sku, stock_id line);
/* Before the ids of ops[first..end) are claimed: reads the pieces of each
 * hot SKU the segment takes stock from, and sends each such op, in the
 * batch's order, to its line's piece if that covers it, else to the
 * fullest piece that does (as the pieces stand once the earlier ops of the
 * segment have run), so that a batch sells out in its own order. Returns
 * where the segment must end for that: between an op that may add stock
 * to a hot SKU and one that takes some, or after an op that only all the
 * pieces together cover (settle gathers it before the ops behind it). */
uint32_t shard_hot_plan(sharded_store *store, uint32_t first, uint32_t end);
/* After the parts of ops[first..end) are done (shard_barrier): retries a
 * deduction or write-off of a hot SKU that its piece refused on the other
 * pieces, then takes it across them while their total covers it, and adds
 * the other pieces' totals to every result of a hot SKU (available, and a
 * GET's totals). */
void shard_hot_settle(sharded_store *store, uint32_t first, uint32_t end);
/* Whether a line of the order names a hot SKU: the order then runs as a
 * cart over every piece of its hot SKUs (shard_order_across). */
bool shard_hot_order(const sharded_store *store, const stock_op *op);
/* In a cart whose parts have begun (one per line's shard and per piece of
 * each hot SKU): locks every piece of each hot SKU, sums them into
 * run->hot, and, where the total covers the cart's lines of the SKU, moves
 * units between the pieces so that each covers the lines it holds (a
 * piece without rows gets an empty row first). False
 * (run->error says why) if a member failed. */
bool shard_hot_order_gather(sharded_store *store, order_run *run);
/* The index in run->hot of sku, or -1 if it is not hot. */
int shard_hot_index(const order_run *run, stock_id sku);
/* In a cart that succeeded: writes the SKU's total after each line of a
 * hot SKU to the line's flow row, in the part's open transaction. */
bool shard_hot_order_afters(sharded_store *store, order_run *run);
/* Runs a restock (ADD above 0) of a hot SKU on its piece 0, every piece's
 * rows locked, by two-phase commit: refused INVALID if the SKU's totals
 * would pass STOCK_LEVEL_MAX. */
void shard_hot_restock(sharded_store *store, stock_op *op);
/* Runs a SET of a hot SKU on every piece, by two-phase commit: the level
 * split over the pieces, its expect compared with their sum. */
void shard_hot_set(sharded_store *store, stock_op *op);

/* sharded_dispatch.c */

/* Queues chain for completion, in order; NULL on out of memory (the
 * caller then runs it alone after shard_quiesce). */
shard_flight *shard_flight_begin(sharded_store *store, stock_batch *chain);
/* The worker is done routing the flight's chain. */
void shard_flight_end(sharded_store *store, shard_flight *flight);
/* Hands each member its undecided ops of [first, end) (by store->routes)
 * as one batch of the flight, without waiting. */
void shard_dispatch(sharded_store *store, uint32_t first, uint32_t end, shard_flight *flight);
/* Waits until every part sent so far has its results: before reading
 * what earlier ops did outside the members' queues (two-phase carts, the
 * directory's checks of a held id). */
void shard_barrier(sharded_store *store);
/* Waits until every chain before has completed. */
void shard_quiesce(sharded_store *store);

/* sharded.c: splits a shards: URI into members and parses each one's
 * options into store->shards (store->count of them); no connection. */
stock_code shard_parse_members(sharded_store *store, const char *uri,
                               const stock_config *config, char *message, size_t size);
/* Refuses (STOCK_INVALID, naming the members) a store of several members
 * one of which has max_prepared_transactions = 0, or two of which are
 * databases of one server (a prepared transaction's name is unique on its
 * server, and a cart's parts share one); STOCK_UNAVAILABLE when a
 * member's session was lost or did not answer within its stock_timeout_ms. */
stock_code shard_check_prepared(sharded_store *store, char *message, size_t size);

/* What a member records about itself: its map entry (stock_shard_map) and
 * a move to a longer member list in progress (stock_shard_move). */
typedef struct shard_entry {
    bool present;
    char map_id[SHARD_MAP_ID_LEN + 1];
    int position;
    int count;
    bool moving;
    char move_from[SHARD_MAP_ID_LEN + 1], move_to[SHARD_MAP_ID_LEN + 1];
    int move_from_count, move_to_count;
} shard_entry;

/* sharded_move.c: the functions a move runs on the members (installed with
 * the sharded tables). */
extern const char shard_move_schema_sql[];

/* sharded_map.c: installs the sharded tables and functions on member's
 * control session. Here and in shard_entry_read each statement waits the
 * member's stock_timeout_ms at most; on a failure pg_lost_or(control)
 * tells a lost or silent session (left busy: shard_control drops it). */
bool shard_schema_install(shard *member, char *message, size_t size);
/* Reads what member records (shard_entry). */
bool shard_entry_read(shard *member, shard_entry *entry, char *message, size_t size);
/* Whether entry i fits entry 0's map of count members at position i;
 * message says why not, naming the member. */
bool shard_entry_fits(const sharded_store *store, const shard_entry *entries, uint32_t i,
                      uint32_t count, char *message, size_t size);

/* sharded_map.c: installs the sharded tables on every member's control
 * session, then reads the map each member records, creating it on a set of
 * members that holds none. Refuses (STOCK_INVALID, message saying which
 * member and why) members in another order, a missing one, or one of another
 * map. Fills store->map_id. STOCK_UNAVAILABLE when a member's session was
 * lost or did not answer within its stock_timeout_ms; STOCK_IO on another
 * failure. */
stock_code shard_map_check(sharded_store *store, char *message, size_t size);

/* sharded_txn.c */

/* Appends id as element n of an array literal being built ("{" first);
 * shard_array_close ends it. False on out of memory. */
bool shard_array_add(buf *array, uint32_t n, stock_id id);
bool shard_array_close(buf *array);

/* Resolves the in-doubt transactions of this map prepared at least grace_s
 * seconds ago on every member reachable through conns (NULL entries are
 * skipped): commit if their coordinator recorded commit, else record abort
 * and roll back. Returns the count resolved, -1 on an error (error says). */
int shard_resolve_in_doubt(PGconn *const *conns, uint32_t count, const char *map_id,
                           int grace_s, uint32_t timeout_ms, const stock_log_hook *log,
                           char *error, size_t size);

/* Removes the decisions of this map whose transaction is finished: no
 * member lists a part of it as prepared, and it was decided at least
 * SHARD_PRUNE_COMMIT_AGE_S (commit) or SHARD_PRUNE_ABORT_AGE_S (abort) ago.
 * Every member must be reachable through conns (else nothing is removed:
 * an unseen member may hold a part). Returns the count removed, -1 on an
 * error (error says). */
int shard_prune_decisions(PGconn *const *conns, uint32_t count, const char *map_id,
                          uint32_t timeout_ms, char *error, size_t size);

/* Lifts the fences older than SHARD_FENCE_HEAL_AGE_S that sit on the shard
 * their id's directory entry names, on the members reachable through conns.
 * Returns the count lifted, -1 on an error (error says). */
int shard_heal_fences(const sharded_store *store, PGconn *const *conns, uint32_t timeout_ms,
                      char *error, size_t size);

/* Records commit (or abort) for gid on its coordinator's session unless a
 * decision is there, and returns the one the table holds: 1 commit, 0
 * abort, -1 error (error says). */
int shard_decide(PGconn *conn, uint32_t timeout_ms, const char *gid, bool commit, char *error,
                 size_t size);

/* COMMIT PREPARED (commit) or ROLLBACK PREPARED gid on conn; a gid already
 * resolved counts as done. False on another error (error says). */
bool shard_finish_prepared(PGconn *conn, uint32_t timeout_ms, const char *gid, bool commit,
                           char *error, size_t size);

/* Runs sql with its text parameters on conn, a session of member i, waiting
 * at most timeout_ms (pg_exec_until). Returns the result when its status is
 * want; else NULL, with error saying "shard <i>: why". */
PGresult *shard_query(PGconn *conn, uint32_t i, uint32_t timeout_ms, const char *sql, int count,
                      const char *const *values, ExecStatusType want, char *error,
                      size_t size);

/* Lifts the fence (stock_fences) of id on shard, before an op that the
 * directory now sends there runs: the op that the fence held off, if it
 * still comes, then meets this one's row on the same shard, where one id
 * is one row. False (error says why) if the shard cannot be reached. */
bool shard_unfence(sharded_store *store, uint32_t shard, char kind, stock_id id, char *error,
                   size_t size);

/* Routes ops[first..end) through the directory: finds the shard of every
 * refunded or read line, claims every new id for the shard its op runs on,
 * and decides (CONFLICT, NOT_FOUND, UNAVAILABLE) the ops it must refuse. */
void shard_directory(sharded_store *store, uint32_t first, uint32_t end);

/* Runs one order whose lines live on several shards: all or none, by
 * PREPARE TRANSACTION on each, a decision recorded on the coordinator (the
 * lowest shard of the order), then COMMIT PREPARED. */
void shard_order_across(sharded_store *store, stock_op *op);

/* Opens a transaction (BEGIN) on part's control session. False (run->error
 * says why) if the member cannot be reached. */
bool shard_part_begin(sharded_store *store, order_run *run, order_part *part);
/* Runs op in part's open transaction (its outputs set). False (run->error
 * says why) if the statement failed. */
bool shard_part_step(sharded_store *store, order_run *run, order_part *part, stock_op *op);
/* Prepares every part, records the decision on the coordinator, commits;
 * run->op fails UNAVAILABLE ("not applied", or "outcome unknown") if it
 * cannot. */
void shard_two_phase(sharded_store *store, order_run *run);
/* The digest of an order's lines (each one's id, SKU and quantity, in
 * order) as hex text, as a cart over several shards records it in
 * stock_carts. False on out of memory. */
bool shard_cart_digest(const stock_op *op, char *digest, size_t size);
/* An order answered CONFLICT for its own id, because its directory entry
 * or its parts no longer match the shards its lines hash to (stockctl
 * reshard moved some of its SKUs): true, with op answered REPLAY and each
 * line's recorded available, when the members hold exactly its lines in
 * its order; else false (the CONFLICT stands). */
bool shard_order_moved(sharded_store *store, stock_op *op);
/* Undoes every part before any decision: an open part rolls back, a
 * prepared one is rolled back by its gid (if that fails, the sweep finds
 * no decision and rolls it back). */
void shard_abandon(sharded_store *store, order_run *run);

/* The control session of member i, reconnected if it was lost; NULL (error
 * says why) if the member cannot be reached or is down (shard.down). */
PGconn *shard_control(sharded_store *store, uint32_t i, char *error, size_t size);

/* shard_query on member i's control session (shard_control). A session
 * that broke or did not answer marks the member down. */
PGresult *shard_exec(sharded_store *store, uint32_t i, const char *sql, int count,
                     const char *const *values, ExecStatusType want, char *error, size_t size);

/* The longest stock_timeout_ms of the members: the bound of a wait on
 * several of them at once (claims, recovery, the sweep). */
uint32_t shard_timeout_ms(const sharded_store *store);

/* Whether member i is marked down (shard.down). */
bool shard_down(sharded_store *store, uint32_t i);
/* Marks member i down and drops its control session (it broke, or a
 * statement is still running on it). Worker only. */
void shard_mark_down(sharded_store *store, uint32_t i);

/* As stock_list (after validation), over the members in byte order of the
 * ids (sharded_list.c). */
stock_code sharded_list(stock_t *base, const list_request *request, stock_list_entry *entries,
                        uint32_t *count, char *message, size_t message_size);

#endif /* STOCK_SHARDED_H */
