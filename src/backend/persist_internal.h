/*
 * persist_internal.h -- what the persister's files share (persist.h says
 * what the persister does):
 *
 *   persist.c          options, the loop, lag and status
 *   persist_outbox.c   the Redis side: the link to the server or to every
 *                      master of a cluster, streams found by rd_outbox_find,
 *                      a lease
 *                      per stream, records read with XAUTOCLAIM and
 *                      XREADGROUP, XACK and the trim
 *   persist_apply.c    the PostgreSQL side: the schema, one transaction per
 *                      cycle
 *   persist_warm.c     the warm-up: PostgreSQL's SKUs loaded into a Redis
 *                      without them
 */
#ifndef STOCK_PERSIST_INTERNAL_H
#define STOCK_PERSIST_INTERNAL_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/persist.h"
#include "backend/postgres.h"
#include "backend/redis.h"

#define PERSIST_KEY_MAX (RD_PREFIX_MAX + 32)   /* bytes of a stream key */
#define PERSIST_CYCLE_MAX 16384      /* records in one PostgreSQL transaction */
#define PERSIST_PARAMS 17            /* arguments of stock_outbox_apply */
#define PERSIST_BUCKET 16            /* the argument that names the record's bucket */
#define PERSIST_ERROR_MAX 512        /* bytes of the last error */

/* One outbox stream and what this persister knows of it. */
typedef struct persist_stream {
    char key[PERSIST_KEY_MAX];
    int node;                        /* the master that holds it (link.nodes) */
    bool owned;                      /* this persister holds its lease */
} persist_stream;

/* One record read: its stream, its entry id, and the apply arguments. An
 * entry of kind 'lines' is several records with one id, each with its own
 * sequence (seq, which params[1] then points at). */
typedef struct persist_record {
    uint32_t stream;
    const char *id;                  /* "0-N": N is the stream's sequence */
    const char *params[PERSIST_PARAMS];
    char seq[24];
} persist_record;

struct persister {
    persist_options options;         /* the URIs point into the copies below */
    char redis_uri[RD_URI_MAX];
    char postgres_uri[RD_URI_MAX];
    /* The redis backend's store struct, for its options and its link
     * (redis_link.c): the server, or every master of a cluster with the
     * slot map. Nothing else of it is used. The link is down while lost. */
    rd_store *redis;
    /* K when the store is of layout 5 (its records hold one bucket's
     * totals, field bk), else 0: the link's record_buckets, copied at
     * connect so that outbox_entry_add reads the persister alone. */
    uint32_t record_buckets;
    /* The postgres URI's options: its conninfo without stock_* and the
     * bound of every wait on pg (stock_timeout_ms). */
    pg_options pg_options;
    PGconn *pg;                      /* NULL while lost */
    persist_stream streams[RD_SLOTS];
    uint32_t stream_count;
    uint32_t next_stream;            /* the cycle reads from here (round robin) */
    int64_t renewed_ms;              /* when the leases were last renewed */
    int64_t scanned_ms;              /* when the streams were last listed */
    rd_outbox_found found;           /* the slots of streams[] */
    const redisReply *readers;       /* while it lists them: the registry's members */
    persist_record records[PERSIST_CYCLE_MAX];
    uint32_t record_count;
    redisReply *replies[RD_SLOTS];   /* the replies records point into */
    uint32_t reply_count;
    char error[PERSIST_ERROR_MAX];
    /* The status, written by the persister's thread, read by any. */
    _Atomic uint64_t applied;
    _Atomic uint64_t read;
    _Atomic uint64_t lag_records;
    _Atomic int64_t lag_ms;
    _Atomic uint64_t outbox_records;
    atomic_bool linked;
};

/* persist_outbox.c */
/* Opens the link and registers the group as an outbox reader. */
bool outbox_connect(persister *p);
/* Closes the link to Redis (every master) and forgets the streams: the
 * next cycle reads the slot map again (a failover moves masters). */
void outbox_disconnect(persister *p);
/* Finds new outbox streams on every master (rd_outbox_find, at most once a
 * second) and creates on them every registered reader's group and then
 * this persister's. */
bool outbox_scan(persister *p);
/* Takes or renews the lease of every stream; sets owned. */
bool outbox_lease(persister *p);
/* Reads the owned streams' records: first every pending entry of the group
 * (XAUTOCLAIM: a dead persister's too), else new ones (XREADGROUP). */
bool outbox_read(persister *p);
/* Acknowledges the records read (after their COMMIT) and trims their
 * streams of what every group is done with. */
bool outbox_ack(persister *p);
typedef enum persist_entry_added {
    PERSIST_ENTRY_ADDED,
    PERSIST_ENTRY_NO_ROOM,     /* the cycle is too full: it comes again */
    PERSIST_ENTRY_MALFORMED,   /* not a record this persister can read */
    PERSIST_ENTRY_LAYOUT       /* one bucket's totals (bk), while the link read layout 4 */
} persist_entry_added;
/* Adds the fields of an entry [id, [field, value, ...]] of stream to the
 * cycle's records as apply arguments (pointing into entry, which the cycle
 * owns: a 'lines' entry's r is cut up in place), or says why it did not.
 * Touches nothing but p's records and record_count
 * (tests/fuzz/fuzz_outbox.c drives it). */
persist_entry_added outbox_entry_add(persister *p, uint32_t stream, const redisReply *entry);
/* Frees the replies of the cycle. */
void outbox_release(persister *p);
/* Trims every stream; records not yet persisted (not acknowledged by the
 * group) over every stream, the age in ms of the oldest (0 when none), and
 * the records the streams hold after the trim (held). */
bool outbox_lag(persister *p, uint64_t *records, int64_t *age_ms, uint64_t *held);
/* The connection of the master that serves key (the server's when not a
 * cluster); NULL when no master serves its slot. */
redisContext *outbox_conn_of(persister *p, const char *key);
/* Milliseconds on the wall clock, the clock of the record ids' times (a
 * record's age); outbox_tick_ms, on CLOCK_MONOTONIC, schedules the work
 * (scans, lease renewals, lag measures, stats lines), which a wall clock
 * set back would stop for as long as it went back: a lease not renewed
 * for that long is lost to another persister. */
int64_t outbox_now_ms(void);
int64_t outbox_tick_ms(void);

/* persist_apply.c */
/* Connects p->pg (if not connected) and installs the persister's functions.
 * Here and in apply_records, every wait on PostgreSQL lasts
 * p->pg_options.timeout_ms at most; on a failure p->error says why and a
 * connection lost, or left busy by a query that got no answer, is dropped
 * (p->pg NULL: the next cycle connects again). */
bool apply_connect(persister *p);
/* Applies the cycle's records in one transaction; *applied counts those
 * that were new (the others were applied before). */
bool apply_records(persister *p, uint64_t *applied);

#endif /* STOCK_PERSIST_INTERNAL_H */
