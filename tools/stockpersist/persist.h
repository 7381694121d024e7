/*
 * persist.h -- stockpersist, the persister of the redis backend's outbox
 * (docs/persister.md): it moves every flow record the redis store appended
 * to its outbox streams into the postgres backend's schema.
 *
 *   main.c    the command line, the loop, lag and stats
 *   outbox.c  the Redis side: streams found by SCAN, a lease per stream,
 *             records read with XAUTOCLAIM and XREADGROUP, XACK and XDEL
 *   apply.c   the PostgreSQL side: the schema, one transaction per cycle
 *   warm.c    --warm: PostgreSQL's SKUs loaded into a Redis without them
 */
#ifndef STOCKPERSIST_H
#define STOCKPERSIST_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/redis.h"

#define PERSIST_NAME_MAX 64          /* bytes of a group or persister name */
#define PERSIST_KEY_MAX (RD_PREFIX_MAX + 32)   /* bytes of a stream key */
#define PERSIST_BATCH_MAX 10000      /* --batch: records per stream per read */
#define PERSIST_CYCLE_MAX 16384      /* records in one PostgreSQL transaction */
#define PERSIST_LEASE_MS_MAX 600000  /* --lease-ms */
#define PERSIST_STATS_S_MAX 86400    /* --stats-s */
#define PERSIST_PARAMS 14            /* arguments of stock_outbox_apply */

typedef struct persist_options {
    const char *redis_uri;           /* the redis store: redis://... */
    const char *postgres_uri;        /* the postgres store: a libpq URI */
    char group[PERSIST_NAME_MAX + 1];   /* the streams' consumer group */
    char name[PERSIST_NAME_MAX + 1];    /* this persister: consumer and lease holder */
    uint32_t batch;
    uint32_t lease_ms;
    uint32_t stats_s;                /* 0: no periodic stats line */
    bool drain;                      /* exit once every outbox is empty */
    bool warm;                       /* load PostgreSQL's SKUs into Redis, then exit */
} persist_options;

/* One outbox stream and what this persister knows of it. */
typedef struct persist_stream {
    char key[PERSIST_KEY_MAX];
    bool owned;                      /* this persister holds its lease */
} persist_stream;

/* One record read: its stream, its entry id, and the apply arguments. */
typedef struct persist_record {
    uint32_t stream;
    const char *id;                  /* "0-N": N is the stream's sequence */
    const char *params[PERSIST_PARAMS];
} persist_record;

typedef struct persister {
    persist_options options;
    rd_options redis_options;
    redisContext *redis;             /* NULL while lost */
    PGconn *pg;                      /* NULL while lost */
    persist_stream streams[RD_SLOTS];
    uint32_t stream_count;
    uint32_t next_stream;            /* the cycle reads from here (round robin) */
    int64_t renewed_ms;              /* when the leases were last renewed */
    int64_t scanned_ms;              /* when the streams were last listed */
    persist_record records[PERSIST_CYCLE_MAX];
    uint32_t record_count;
    redisReply *replies[RD_SLOTS];   /* the replies records point into */
    uint32_t reply_count;
    uint64_t applied;                /* records applied (not skipped) in total */
    uint64_t read;                   /* records read in total */
    char error[512];
} persister;

/* outbox.c */
bool outbox_connect(persister *p);
/* Lists the outbox streams (SCAN) and creates the group on new ones. */
bool outbox_scan(persister *p);
/* Takes or renews the lease of every stream; sets owned. */
bool outbox_lease(persister *p);
/* Reads the owned streams' records: first every pending entry of the group
 * (XAUTOCLAIM: a dead persister's too), else new ones (XREADGROUP). */
bool outbox_read(persister *p);
/* Acknowledges and deletes the records read (after their COMMIT). */
bool outbox_ack(persister *p);
/* Frees the replies of the cycle. */
void outbox_release(persister *p);
/* Records not yet persisted over every stream, and the age in ms of the
 * oldest (0 when none). */
bool outbox_lag(persister *p, uint64_t *records, int64_t *age_ms);
int64_t outbox_now_ms(void);

/* apply.c */
bool apply_connect(persister *p);
/* Applies the cycle's records in one transaction; *applied counts those
 * that were new (the others were applied before). */
bool apply_records(persister *p, uint64_t *applied);

/* warm.c: --warm; returns the exit status. */
int warm_run(persister *p);

#endif /* STOCKPERSIST_H */
