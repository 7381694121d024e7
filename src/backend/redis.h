/*
 * redis.h -- what the files of the redis backend share: URI options
 * (redis_uri.c); a server's checks at open, building calls, reading
 * replies, and the id directory's entries (redis_conn.c); the link to one
 * server or to a Redis Cluster: slots, routing, redirects (redis_link.c); the store,
 * its worker and the ops of a batch (redis.c); orders and the sweep
 * (redis_order.c). Internal to libstock; stock.h is the public contract,
 * docs/redis.md the key layout and the protocols.
 */
#ifndef STOCK_REDIS_H
#define STOCK_REDIS_H

#include <hiredis/hiredis.h>
#include "backend/backend.h"
#include "core/core.h"
#include "lib/worker.h"
#include "stock.h"

#define RD_URI_MAX 4096             /* bytes in a store URI */
#define RD_HOST_MAX 255             /* bytes in a host name */
#define RD_SECRET_MAX 255           /* bytes in a password */
#define RD_PREFIX_MAX 64            /* bytes in a key prefix */
#define RD_TIMEOUT_MS_DEFAULT 5000  /* silence that counts as a lost server */
#define RD_TIMEOUT_MS_MAX 3600000
#define RD_WAIT_MAX 16              /* replicas wait=N may ask for */
#define RD_LAYOUT_VERSION "4"       /* the key layout this library writes */
#define RD_LAYOUT_UPGRADES "123"    /* layouts it upgrades in place (each a subset of 4) */
#define RD_LAYOUT_BUCKETS "5"       /* a store with buckets on a cluster (4 and more keys) */
#define RD_LAYOUT_NO_OUTBOX "6"     /* a store made with outbox=0: no outbox streams */
#define RD_OUTBOX_NONE ":none"      /* the outbox key's suffix with outbox=0 (rd_cmd_outbox) */
#define RD_BUCKETS_MAX 16           /* buckets=K: an order passes all its SKUs' buckets */
#define RD_LIBRARY "stockd_v3"      /* the function library's name (and version) */
#define RD_REDIS_MAJOR_MIN 7        /* Redis Functions arrived in 7.0 */
#define RD_SEEDS_MAX 16             /* hosts a cluster URI may list */

/* A server's address. */
typedef struct rd_endpoint {
    char host[RD_HOST_MAX + 1];
    int port;
} rd_endpoint;

/* The backend's options, from the URI and the stock_config. */
typedef struct rd_options {
    rd_endpoint seeds[RD_SEEDS_MAX];    /* the server, or a cluster's seed nodes */
    int seed_count;
    bool cluster;                       /* cluster=1: the seeds are Redis Cluster nodes */
    char password[RD_SECRET_MAX + 1];   /* "" for none */
    char prefix[RD_PREFIX_MAX + 1];     /* prepended to every key */
    int timeout_ms;                     /* per reply; then the link is lost */
    int wait_replicas;                  /* 0: no WAIT after a batch */
    uint32_t buckets;                   /* keys a SKU's stock is spread over (1..16) */
    bool outbox_reader;                 /* the persister's link: the store is read as it is (rd_buckets_check) */
    bool fused;                         /* single server: claim + deduct in one call */
    int lag_max_records;                /* outbox records a deduction tolerates; 0: any */
    int lag_max_ms;                     /* age of the oldest outbox record; 0: any */
    bool outbox;                        /* false (outbox=0): a store without outbox (layout 6) */
} rd_options;

/*
 * Reads redis://[:password@]host[:port][,host[:port]...][?prefix=P&
 * password=X&timeout_ms=N&wait=N&buckets=K&fused=0|1&cluster=0|1&
 * outbox_lag_max=N&outbox_lag_max_ms=N&outbox=0|1] into
 * *options (values percent-decoded). Unknown options, repeated ones, bad
 * values, a host given twice, several hosts without cluster=1 and
 * outbox=0 with an outbox lag limit are refused: STOCK_INVALID with
 * message naming which. The default of buckets is config->buckets (0 is 1).
 */
stock_code rd_options_parse(const char *uri, const stock_config *config,
                            rd_options *options, char *message, size_t size);

/* How long the waits on a connection may last: each at most timeout_ms
 * (a silent server), and none past end_us (CLOCK_MONOTONIC microseconds;
 * 0: no end), the deadline of the batch they serve, however many calls it
 * makes one after the other. */
typedef struct rd_bound {
    int timeout_ms;
    int64_t end_us;
} rd_bound;

/* Writes conn's queued calls, then reads its next reply, no wait beyond
 * bound: the reply, or NULL when the connection failed or time ran out
 * (conn->errstr says which, and conn is unusable from then on). */
redisReply *rd_conn_reply(redisContext *conn, rd_bound bound);
/* Writes conn's queued calls within bound; false as rd_conn_reply. */
bool rd_conn_flush(redisContext *conn, rd_bound bound);
/* Queues the command argv (len NULL: C strings), then rd_conn_reply. */
redisReply *rd_conn_command(redisContext *conn, rd_bound bound, int argc, const char **argv,
                            const size_t *len);

/*
 * Connects to at, authenticates, and checks that the server is Redis 7 or
 * newer and a cluster node exactly when options->cluster, within bound. On
 * success *out is the connection, with options->timeout_ms as its read and
 * write timeout. On failure message says why: STOCK_UNAVAILABLE (cannot
 * connect, or no answer in time), STOCK_INVALID (refused password, a
 * cluster node without cluster=1 or the other way round),
 * STOCK_UNSUPPORTED (not Redis 7), STOCK_IO (any other error, with the
 * server's words).
 */
stock_code rd_node_connect(const rd_options *options, const rd_endpoint *at, rd_bound bound,
                           redisContext **out, char *message, size_t size);

/* Checks the key layout version of an existing store on conn (the server
 * that holds the key Pstock:layout), or writes it for a new store:
 * STOCK_CORRUPT for another version. */
stock_code rd_layout_check(redisContext *conn, const rd_options *options, rd_bound bound,
                           char *message, size_t size);

/* Loads the function library unless the server holds this very code. */
stock_code rd_functions_load(redisContext *conn, rd_bound bound, char *message, size_t size);

/* The function library's source (redis_functions.lua), embedded by the
 * build. */
extern const char rd_functions_source[];

/* ---------------------------------------------------------------- store */

#define RD_FN RD_LIBRARY "_"        /* function names: the library name, "_" */
/* Arguments of one call: an order of 100 lines, over 100 SKUs of
 * RD_BUCKETS_MAX buckets each. */
#define RD_ARGS_MAX (STOCK_ORDER_LINES_MAX * (RD_BUCKETS_MAX + 1 + 7) + 16)
#define RD_TEXT_MAX (640 * 1024)    /* bytes of one call's arguments */
#define RD_RUN_MAX 1024             /* ops that advance together */
#define RD_RESTARTS_MAX 8           /* times an op may find its id moved */
#define RD_GEN_MAX 24               /* bytes of a generation as text */
/* Bytes of a directory entry's owner: a SKU, or with buckets on a cluster a
 * refund's location "S j" (the SKU and the bucket of its line). */
#define RD_OWNER_MAX (STOCK_ID_MAX + 8)
#define RD_ORDER_LEASE_FACTOR 2     /* an order attempt's lease: 2 x timeout_ms */
#define RD_MANY_MAX 64              /* deductions one deduct_many call carries */
#define RD_CB_RUN_MAX RD_MANY_MAX   /* deductions of a run with cluster buckets */
#define RD_SWEEP_MAX 100            /* pending orders one sweep looks at */
#define RD_DEADLINE_OPS 64          /* ops of a batch that share one timeout_ms of its deadline */
/* An order's lines as text, "line sku qty ...". */
#define RD_SPEC_MAX (STOCK_ORDER_LINES_MAX * (2 * STOCK_ID_MAX + 16))

/* One call being built: arguments point into text. */
typedef struct rd_cmd {
    int argc;
    int keys;                       /* FCALL: keys pushed so far */
    const char *argv[RD_ARGS_MAX];
    size_t len[RD_ARGS_MAX];
    char text[RD_TEXT_MAX];
    size_t used;
} rd_cmd;

/* Where an op is: the next call it sends. */
typedef enum rd_step {
    RD_LOOKUP,         /* refund, line: read the line's directory entry */
    RD_LOOKUP_REFUND,  /* refund of an unknown line: read the refund's entry */
    RD_CLAIM,          /* bind the op's id to its SKU */
    RD_FENCE,          /* the id is bound elsewhere: fence it out there */
    RD_REBIND,         /* then move the binding to our SKU */
    RD_EFFECT,         /* the op's function */
    RD_DONE,
} rd_step;

typedef struct rd_job {
    stock_op *op;
    rd_step step;
    bool sent;                          /* a call of this round is in flight */
    int riders;                         /* ops whose effects the call carries (deduct_many) */
    bool fused;                         /* a deduction's claim is in its effect */
    int restarts;
    stock_id owner;                     /* the SKU whose slot holds the record */
    char owner_text[RD_OWNER_MAX];      /* owner's bytes when read from Redis */
    char other[RD_OWNER_MAX];           /* the owner the directory named */
    char gen[RD_GEN_MAX], other_gen[RD_GEN_MAX];
    uint32_t cb_buckets;                /* buckets on a cluster: K, else 0 */
    bool fresh;                         /* its claim made the id's entry (no earlier try) */
} rd_job;

#define RD_SLOTS 16384              /* Redis Cluster's hash slots */
#define RD_NODES_MAX 64             /* masters one store talks to */
#define RD_PENDING_MAX (2 * RD_RUN_MAX)   /* calls awaiting their reply */
#define RD_REDIRECTS_MAX 16         /* MOVED, ASK or TRYAGAIN one call may follow */
#define RD_TRYAGAIN_PAUSE_US 10000  /* before a TRYAGAIN's first retry (grows) */
#define RD_NO_NODE 0xFF             /* a slot no master serves */

/* One server: the single one, or a cluster master. */
typedef struct rd_node {
    rd_endpoint at;
    redisContext *conn;     /* NULL until first used */
    int head, tail;         /* its calls awaiting a reply (pending indexes), -1: none */
    bool wrote;             /* got calls since the last WAIT */
} rd_node;

/* A call sent, until its reply is handed out (in send order). */
typedef struct rd_pending {
    int node;
    int next;               /* the node's next call awaiting a reply; -1: none */
    char *call;             /* the call as sent (to send again on a redirect) */
    size_t len;
    int redirects;
    bool asking;            /* an ASKING's reply comes first on its node */
    redisReply *reply;      /* read ahead of its turn; NULL until then */
} rd_pending;

/* Where the link is. */
typedef enum rd_link_state {
    RD_LINK_DOWN,           /* no connection: the next batch connects */
    RD_LINK_STALE,          /* a MOVED said the slot map changed: reconnect */
    RD_LINK_UP,
} rd_link_state;

/* The link to the server or to the cluster's masters (redis_link.c). A
 * single server is node 0 of every slot. */
typedef struct rd_link {
    rd_link_state state;
    rd_node nodes[RD_NODES_MAX];
    int node_count;
    uint8_t slot_node[RD_SLOTS];        /* cluster: the master of each slot */
    rd_pending pending[RD_PENDING_MAX]; /* a ring: first, count */
    int first, count;
    bool unflushed;                     /* calls queued on a node not yet written */
    int64_t end_us;                     /* the running batch's deadline (rd_bound); 0: none */
} rd_link;

typedef struct rd_store {
    struct stock base;
    rd_options options;
    rd_link link;             /* worker-owned */
    bool fused;               /* deductions claim and deduct in one call */
    char error[STOCK_MESSAGE_MAX];
    worker worker;            /* runs every batch and the sweep (lib/worker.h) */
    stock_op *ops[STOCK_BATCH_MAX];  /* the valid ops of the chain being run */

    rd_cmd cmd;
    rd_job jobs[RD_RUN_MAX];
    uint64_t seen[2 * RD_RUN_MAX];   /* a run's id hashes (open addressing) */
    char spec[RD_SPEC_MAX];          /* the order being run, as text */
    char stale_spec[RD_SPEC_MAX];    /* a stale attempt's lines being undone */
    struct cb_run *cb_run;           /* cluster buckets: a run's reads (redis_cbucket.c) */
    /* An outbox reader's (options.outbox_reader): K when the store is of
     * layout 5, whose records each hold one bucket's totals (field bk),
     * else 0: records hold their SKU's. Set at link open. */
    uint32_t record_buckets;
} rd_store;

/* --------------------------------------------------- link (redis_link.c) */

/* Connects to the server, or to every master of the cluster (the slot map
 * from CLUSTER SLOTS of the first seed that answers), checks the layout and
 * loads the function library on every master, all within rd_link_bound.
 * Errors as rd_node_connect, and STOCK_CORRUPT for another layout version. */
stock_code rd_link_open(rd_store *store, char *message, size_t size);

/* The bound of the link's waits: options->timeout_ms each, none past
 * link.end_us. */
rd_bound rd_link_bound(const rd_store *store);

/* Whether the link is up (no loss since it opened). */
bool rd_linked(const rd_store *store);

/* Closes every connection and forgets the calls in flight. */
void rd_link_close(rd_store *store);

/* The cluster slot of a key, or of the hash tag {kind:id}. */
unsigned rd_key_slot(const char *key, size_t len);
unsigned rd_tag_slot(const char *kind, stock_id id);

/* WAIT replicas on every node written since the last WAIT: the fewest
 * replicas any acknowledged, or -1 when the link was lost. */
long long rd_link_wait(rd_store *store, int replicas, int wait_ms);

/* ------------------------------------------------- calls (redis_conn.c) */

/* Building one call in store->cmd: rd_cmd_start (a plain command) or
 * rd_cmd_fcall (a function of the library, whose keys rd_cmd_key pushes
 * before any argument), then the arguments. */
void rd_cmd_start(rd_cmd *cmd);
void rd_cmd_fcall(rd_cmd *cmd, const char *name);
void rd_cmd_argf(rd_cmd *cmd, const char *format, ...) __attribute__((format(printf, 2, 3)));
void rd_cmd_id(rd_cmd *cmd, stock_id id);
/* A key: prefix, the hash tag {kind:id}, and a suffix ("" for none). */
void rd_cmd_key(rd_cmd *cmd, const char *prefix, const char *kind, stock_id id,
                const char *suffix);
/* A key whose text is made already (rd_bucket_key). */
void rd_cmd_key_text(rd_cmd *cmd, const char *key);

/* Queues store->cmd on the node of its first key's slot (false when the
 * link is lost); the next reply, in send order, after any MOVED or ASK
 * followed (NULL when the link is lost or out of time, rd_link_bound: the
 * link is then down and store->error says why); both at once
 * (redis_link.c). */
bool rd_send(rd_store *store);
redisReply *rd_reply(rd_store *store);
redisReply *rd_call(rd_store *store);

/* Element i of an array reply as text ("" if absent), as a number, and
 * whether it is word; a string reply's text ("" for nil). */
const char *rd_element(const redisReply *reply, size_t i);
int64_t rd_element_i64(const redisReply *reply, size_t i);
bool rd_is(const redisReply *reply, size_t i, const char *word);
const char *rd_text_of(const redisReply *reply);

/* Fails op with the server's error reply (OOM named as such). */
void rd_fail_server(stock_op *op, const redisReply *reply);

/* The suffix of the SKU hash that holds records of kind ("line", "refund",
 * "adjust", "order"). */
const char *rd_record_suffix(const char *kind);

/* The id directory: a claim binds kind:id to owner unless bound already
 * (SET NX GET); an entry reads "generation owner". rd_claim_parse is true
 * when the id is ours (gen set), else other and other_gen name its owner. */
void rd_claim_build(rd_cmd *cmd, const char *prefix, const char *kind, stock_id id,
                    stock_id owner);
bool rd_entry_parse(const redisReply *reply, char gen[RD_GEN_MAX], char owner[RD_OWNER_MAX]);
bool rd_claim_parse(const redisReply *reply, stock_id owner, char gen[RD_GEN_MAX],
                    char other[RD_OWNER_MAX], char other_gen[RD_GEN_MAX]);

/* ---------------------------------------------- outbox (redis_outbox.c) */

/* N of slot's outbox stream P{outbox:N} ("" for a slot out of range). */
const char *rd_slot_tag(unsigned slot);
/* Pushes the key of the outbox stream of slot: every call that changes
 * stock takes it. With outbox=0 the key is that name with the suffix
 * RD_OUTBOX_NONE, in the same slot, which the functions never read or
 * write: it tells them the store keeps no outbox. */
void rd_cmd_outbox_of_slot(rd_cmd *cmd, const rd_options *options, unsigned slot);
/* rd_cmd_outbox_of_slot for the slot of sku's home (bucket 0). */
void rd_cmd_outbox(rd_cmd *cmd, const rd_options *options, stock_id sku);

/* The value of field name among an outbox entry's fields (an array of
 * field, value, ...), or NULL: inside the reply, which the reader owns (a
 * 'lines' entry's r is cut up in place). Names and values that are not
 * strings are passed over. */
char *rd_entry_field(const redisReply *fields, const char *name);
/* What a reader of the outbox has found: a bit per slot whose stream it
 * reads. Zero it to start afresh. */
typedef struct rd_outbox_found {
    uint8_t slots[RD_SLOTS / 8];
} rd_outbox_found;
/* A stream rd_outbox_find found: false stops the search (the reader's
 * error is set). */
typedef bool (*rd_outbox_found_fn)(void *reader, int node, const char *key);
/*
 * Looks, on conn (node of store's link), for the outbox streams of the
 * slots node serves (every slot on one server) that found does not hold
 * yet: one pipelined EXISTS per such slot, so a look costs at most 16,384
 * calls however many keys the store holds (a SCAN would read every key).
 * Each stream that exists is marked in found and handed to add. False when
 * the connection failed (message says why) or add did.
 */
bool rd_outbox_find(const rd_store *store, redisContext *conn, int node, rd_outbox_found *found,
                    rd_outbox_found_fn add, void *reader, char *message, size_t size);
/* The outbox's readers (docs/redis.md, "The outbox"): each reads every
 * stream with a consumer group of its own and registers the group's name in
 * the set Pstock:readers, so that whoever finds a new stream first creates
 * every registered group on it, from its first entry, before anything
 * trims it. RD_OUTBOX_READERS_KEY_MAX bytes hold the set's key. */
#define RD_OUTBOX_READERS_KEY_MAX (RD_PREFIX_MAX + 16)
void rd_outbox_readers_key(const char *prefix, char *out, size_t size);
/* For an outbox reader, on a link just opened: sets store->record_buckets
 * from the store's layout (Pstock:layout) and, for layout 5, its K
 * (Pstock:buckets). STOCK_CORRUPT for a layout 5 store whose K is missing
 * or not 2..RD_BUCKETS_MAX; STOCK_UNAVAILABLE when a server did not answer. */
stock_code rd_outbox_layout(rd_store *store, char *message, size_t size);
/* Adds group to the registry on conn (the server holding the set's key):
 * false with message set when the server refused. */
bool rd_outbox_register(redisContext *conn, const char *prefix, const char *group,
                        char *message, size_t size);
/* Creates each group of readers (a SMEMBERS reply of the registry, or NULL)
 * and then own on stream, from its first entry; one that exists is left as
 * it is. False with message set when the server refused. */
bool rd_outbox_groups_create(redisContext *conn, const char *stream, const redisReply *readers,
                             const char *own, char *message, size_t size);

/* An entry of kind 'lines' (docs/redis.md, "The outbox") holds several lone
 * deductions: nr records, with the sequences S.. S+nr-1 from its id 0-S,
 * each 8 space-separated tokens in its field r. */
#define RD_LINES_KIND "lines"

#define RD_LINES_TOKENS 8             /* of a record in r */

/* One record of a 'lines' entry: its tokens, inside the entry's field r. */
typedef struct rd_lines_record {
    const char *sku, *line, *qty;
    const char *available, *adjusted, *deducted, *refunded;   /* the SKU's after it */
    const char *before;                 /* the SKU's available before it (bv) */
} rd_lines_record;

/* Cuts the next record off *text (an entry's field r, cut in place with
 * NULs, *text moved past it); false at the end or short of a record. */
bool rd_lines_next(char **text, rd_lines_record *record);
/* The records of a 'lines' entry whose fields nr and r are count and text
 * (either NULL when missing): nr in decimal, 1 or more, and r exactly that
 * many records; 0 when the entry is malformed, which both readers then
 * refuse whole. Reads text without cutting it. */
#define RD_LINES_DIGITS_MAX 9         /* nr below 10^9: no overflow of nr * 8 */
uint64_t rd_lines_count(const char *count, const char *text);

/* The reading of one outbox entry [id, fields] (fields nil when it was
 * deleted while pending) into the moves of stock events (redis_events.c),
 * apart from the streams so that tests/fuzz/fuzz_outbox.c drives it. slot
 * is the entry's stream's: a move's *seq is S * RD_SLOTS + slot, S the
 * record's sequence. */

/* The move of an entry of one record, or false for a record that moves no
 * SKU (a warm-up's marker, or one deleted while it was pending: its fields
 * are nil). */
bool rd_entry_move(const redisReply *entry, unsigned slot, uint64_t *seq, core_change *change);

/* A 'lines' entry being handed out one record at a time. */
typedef struct rd_lines_cursor {
    const char *id;                 /* the entry's id, inside its reply */
    char *text;                     /* its records not handed out yet (cut in place) */
    uint64_t seq;                   /* the sequence of the next one */
    uint64_t left;                  /* how many are left (nr, at first) */
} rd_lines_cursor;

/* Starts handing out the records of a 'lines' entry, from sequence seq:
 * none (left 0) when rd_lines_count refuses it. */
void rd_lines_start(rd_lines_cursor *lines, const redisReply *entry, uint64_t seq);
/* The move of the next record (rd_lines_next); false when it names a SKU
 * too long, or when r ends short of a record (left is then 0; an entry
 * refused by rd_lines_count starts with left 0). */
bool rd_lines_move(rd_lines_cursor *lines, unsigned slot, uint64_t *seq, core_change *change);
/* The records of a stream deleted before its reader read them (by a
 * persister older than the trim, which deleted what it had persisted, or by
 * hand), seen at entry: the gap since *last_entry (the sequence of the last
 * record read; 0 for none), but not before a warm-up's marker (which moves
 * the sequence on by design), and 1 for an entry deleted while pending
 * (its fields are nil). Moves *last_entry past entry's records. */
uint64_t rd_entry_lost(const redisReply *entry, uint64_t *last_entry);

/* ------------------- stock events over buckets (redis_events_sum.c) */

/* The levels of each SKU's buckets after their latest records read, for
 * the stock events of a store of layout 5 (docs/events.md, "From Redis"). */
typedef struct rd_sums rd_sums;
/* A table for a store of buckets (2..RD_BUCKETS_MAX) buckets; NULL when
 * out of memory. */
rd_sums *rd_sums_new(uint32_t buckets);
void rd_sums_free(rd_sums *sums);
/* Whether sku has levels (it was seeded). */
bool rd_sums_known(const rd_sums *sums, const char *sku);
/* Gives sku, not known yet, the levels its buckets start from
 * (levels[0..buckets-1]); false when out of memory. */
bool rd_sums_seed(rd_sums *sums, const char *sku, const int64_t *levels);
/* Turns change, a record's move of one bucket of its SKU (seeded), into
 * the move of the SKU's sum over its buckets, and keeps the bucket's new
 * level. move_id: the record's mv (a move between buckets, qty its q), or
 * NULL; ms: the record's time (its ms); read_ms: a store time up to which
 * every stream has been read (the caller's low-water mark), by which a
 * half of a move whose other half never came is given up. */
void rd_sums_apply(rd_sums *sums, uint32_t bucket, const char *move_id, int64_t qty, int64_t ms,
                   int64_t read_ms, core_change *change);

/* ------------- the order of records over buckets (redis_events_order.c) */

/* Records of one stream held at most: those of one read (a stream is read
 * again once they are all out). */
#define RD_ORDER_HELD 16

/* The records read of every outbox stream of a store of layout 5, handed
 * out in order of their time across the streams, up to the low-water mark
 * every stream has been read to (docs/events.md, "From Redis"). */
typedef struct rd_order rd_order;
/* An order for streams_max streams at most; NULL when out of memory. */
rd_order *rd_order_new(uint32_t streams_max);
/* Frees order and, with item_free, the records it still holds. */
void rd_order_free(rd_order *order, void (*item_free)(void *item));
/* Adds a stream, not read yet (it holds every record back until it is);
 * returns its index, 0, 1, ... in the order added. */
uint32_t rd_order_add(rd_order *order);
/* Whether stream holds no record: it may be read again. */
bool rd_order_ready(const rd_order *order, uint32_t stream);
/* Holds item, the next record read of stream (ready, or holding fewer
 * than RD_ORDER_HELD), of time ms (one before the last held of the stream
 * counts at that one's: a stream is in order). */
void rd_order_hold(rd_order *order, uint32_t stream, void *item, int64_t ms);
/* Says that every record of stream up to time ms has been held: the
 * last record of a read that may have left more, or the time of a read
 * that reached the stream's end. */
void rd_order_read_to(rd_order *order, uint32_t stream, int64_t ms);
/* Says that every stream made before time ms has been added (a look for
 * new streams began then): one made later holds records of later times. */
void rd_order_known_to(rd_order *order, int64_t ms);
/* The low-water mark: the least time every stream was read to, and no
 * later than rd_order_known_to's (INT64_MIN while a stream is not read
 * yet, or before the first look for streams). */
int64_t rd_order_low(rd_order *order);
/* The held record of least time if that time is at or before the
 * low-water mark (its stream into *stream, its time into *ms; of equal
 * times, any), else NULL. */
void *rd_order_next(rd_order *order, uint32_t *stream, int64_t *ms);

/* Pushes the lag limits (records, ms), the last two arguments of every
 * call that deducts. */
void rd_cmd_lag_limits(rd_cmd *cmd, const rd_options *options);
/* Fails op (UNAVAILABLE, nothing changed) for a function's LAGGING answer. */
void rd_fail_lagging(stock_op *op, const rd_options *options);

/* --------------------------------------------- buckets (redis_bucket.c) */

#define RD_BUCKET_TAG_MAX (STOCK_ID_MAX + 24)   /* "j:n:S" */

/* The hash tag id of bucket (1..buckets-1) of sku, "j:n:S" into tag (kind
 * "skub"); returns its slot, which lies in the bucket-th buckets-th of the
 * slot ring after the home's slot. */
unsigned rd_bucket_tag(stock_id sku, uint32_t bucket, uint32_t buckets, char *tag,
                       size_t size);
/* sum + value, held at INT64_MAX (or INT64_MIN) when it does not fit: a
 * sum over buckets, each at most 2^63-1, can pass it where a sum that only
 * has to cover a deduction or feed an event may stand at the cap
 * (docs/redis.md, "Hot-SKU buckets"). */
int64_t rd_sum_held(int64_t sum, int64_t value);
/* sum held at INT64_MAX (or INT64_MIN): for sums whose terms have mixed
 * signs (a bucket's adjusted after moves, units in transit), added up
 * exactly first, since holding each partial sum would make the result
 * depend on the order of the terms. */
int64_t rd_sum_clamp(__int128 sum);
/* A bucket's key: prefix, the tag, and a suffix of 16 bytes at most. */
#define RD_BUCKET_KEY_MAX (RD_PREFIX_MAX + RD_BUCKET_TAG_MAX + 32)
/* The key of bucket (0: the home, P{sku:S}; else P{skub:j:n:S}) of sku in
 * a store of buckets buckets, with suffix ("" for none), into key (size
 * RD_BUCKET_KEY_MAX); returns its length. The one place that names them. */
unsigned rd_bucket_key(const char *prefix, stock_id sku, uint32_t bucket, uint32_t buckets,
                       const char *suffix, char *key, size_t size);
/* Pushes the stock keys of sku's buckets 1..buckets-1 (none for 1). */
void rd_cmd_buckets(rd_cmd *cmd, const char *prefix, stock_id sku, uint32_t buckets);
/* --------------------------- buckets on a cluster (redis_cbucket.c) */

/* Whether the store runs buckets=K > 1 on a cluster: each bucket judged
 * by calls of its own (docs/redis.md, "Hot-SKU buckets"). */
bool rd_cb_on(const rd_options *options);
/* The bucket (0..buckets-1) of a line: its units come from there and its
 * record and refunds live there. */
uint32_t rd_cb_line_bucket(stock_id line, uint32_t buckets);
/* Pushes the key of sku's bucket (0: the home) with suffix. */
void rd_cb_key(rd_cmd *cmd, const rd_options *options, stock_id sku, uint32_t bucket,
               const char *suffix);
/* A refund id's owner: "S" for the home bucket, else "S j". */
void rd_cb_location(stock_id sku, uint32_t bucket, char out[RD_OWNER_MAX]);
/* The SKU and bucket of a location ("S" or "S j", into owner's bytes);
 * bucket stays as given for a plain SKU. */
stock_id rd_cb_location_parse(const char *owner, uint32_t *bucket);
/* Pushes the record hash of kind:id at owner `other` (a fence's key). */
void rd_cb_fence_key(rd_cmd *cmd, const rd_options *options, const char *kind, stock_id id,
                     const char *other);
/* Runs the effect of job (one op alone, past its claim) to its answer;
 * true when its id's record moved and the op must start again. The op is
 * left unanswered only when the link was lost. */
bool rd_cb_effect(rd_store *store, rd_job *job, int64_t time_us);
/* Runs the effects of the jobs of a run of deductions that are past their
 * claims: each bucket's share of them as one call, every bucket's call
 * pipelined, then those a bucket could not cover one at a time as
 * rd_cb_effect runs them. Jobs whose id's record moved are restarted
 * (rd_job_restart); a job is left unanswered only when the link was lost. */
void rd_cb_run(rd_store *store, rd_job *jobs, int count, int64_t time_us);
/* Sends the reads of the buckets of the SKUs of the run's deductions, to
 * ride in the round of their claims; rd_cb_read_take takes their replies
 * after the claims', and rd_cb_run plans from them. */
void rd_cb_read_send(rd_store *store, const rd_job *jobs, int count);
/* Allocates store->cb_run (at open); false when out of memory. */
bool rd_cb_alloc(rd_store *store);
void rd_cb_read_take(rd_store *store);
/* Starts the job's op again (redis.c): its id's record moved meanwhile. */
void rd_job_restart(rd_job *job);
/* Finishes the moves between buckets whose client died (their lease in
 * P{stock:moves} has passed), up to RD_SWEEP_MAX. */
void rd_cb_sweep(rd_store *store);
/* Moves every other bucket's stock of the order's SKUs into their homes,
 * where the order's calls take it; false when op failed (answered). */
bool rd_cb_gather(rd_store *store, stock_op *op);
/* Sets the op's outputs from its function's reply (redis.c). */
void rd_effect_done(const rd_options *options, rd_job *job, const redisReply *reply);

/* Records buckets in a new store, or checks an existing store's record:
 * STOCK_INVALID, naming the recorded K, when they differ. An outbox reader
 * checks and records nothing. */
stock_code rd_buckets_check(redisContext *conn, const rd_options *options, rd_bound bound,
                            char *message, size_t size);

/* ---------------------------------------------- listing (redis_list.c) */

/* As stock_list (after validation), in byte order of the ids: a page is a
 * SCAN of the SKU keys, or an HSCAN of the SKU's flow hash, keeping the
 * smallest ids after `after`; an order's lines in the order's line order. */
stock_code rd_list(stock_t *base, const list_request *request, stock_list_entry *entries,
                   uint32_t *count, char *message, size_t message_size);

/* ----------------------------------------------- orders (redis_order.c) */

/* Runs an order alone: one call when its SKUs share a slot, else the
 * protocol of docs/redis.md (record, claims, takes, give-back). */
void rd_order_run(rd_store *store, stock_op *op);

/* Gives back the cross-slot orders whose client died mid-way (lease past). */
void rd_sweep(rd_store *store);

#endif /* STOCK_REDIS_H */
