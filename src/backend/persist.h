/*
 * persist.h -- the persister of the redis backend's outbox
 * (docs/persister.md): it moves every flow record a redis:// store appended
 * to its outbox streams, on one server or on every master of a Redis
 * Cluster, into a PostgreSQL database in the postgres backend's schema.
 *
 * One home for two programs: stockpersist (tools/stockpersist) runs it on
 * its main thread, stockd --persist-to on a thread of its own. Internal to
 * libstock (not in stock.h). It never prints: what it has to say (a lost
 * server, a stats line with the lag) goes to the caller's log hook.
 *
 * Threads: persist_run and persist_warm on one thread at a time;
 * persist_status on any thread, at any time between persist_new and
 * persist_free.
 */
#ifndef STOCK_PERSIST_H
#define STOCK_PERSIST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"

#define PERSIST_NAME_MAX 64          /* bytes of a group or persister name */
#define PERSIST_BATCH_MAX 10000      /* records per stream per read */
#define PERSIST_BATCH_DEFAULT 2048
#define PERSIST_LEASE_MS_MIN 100     /* a stream's lease */
#define PERSIST_LEASE_MS_MAX 600000
#define PERSIST_LEASE_MS_DEFAULT 5000
#define PERSIST_STATS_S_MAX 86400    /* between two stats lines */
#define PERSIST_STATS_S_DEFAULT 10
#define PERSIST_GROUP_DEFAULT "stockpersist"

typedef struct persister persister;

typedef struct persist_options {
    const char *redis_uri;           /* the redis store: redis://... (copied) */
    const char *postgres_uri;        /* the database: a libpq URI (copied) */
    char group[PERSIST_NAME_MAX + 1];   /* the streams' consumer group */
    char name[PERSIST_NAME_MAX + 1];    /* this persister: consumer and lease holder */
    uint32_t batch;                  /* 1..PERSIST_BATCH_MAX */
    uint32_t lease_ms;               /* PERSIST_LEASE_MS_MIN..MAX */
    uint32_t stats_s;                /* a stats line this often; 0: none */
    bool drain;                      /* persist_run returns once lag_records is 0 */
} persist_options;

/* The defaults: group, batch, lease and stats as the PERSIST_*_DEFAULT
 * constants, name "<host>-<pid>", no URIs. */
void persist_options_default(persist_options *options);

/* What the persister did and how far behind it is, as of its last lag
 * check (once a second while it runs). */
typedef struct persist_status {
    uint64_t applied;                /* records written (not those skipped as applied before) */
    uint64_t read;                   /* records read */
    uint64_t lag_records;            /* records in the outbox not yet persisted */
    int64_t lag_ms;                  /* the age of the oldest of them (0: none) */
    uint64_t outbox_records;         /* records the outbox holds: some reader's group
                                      * (this one, stockevents) is not done with them */
    bool linked;                     /* the last cycle reached both servers */
} persist_status;

/* A persister for options; nothing is connected yet. NULL on a bad option
 * (the redis URI, a URI missing, a bad count or name) or out of memory,
 * with message (size bytes) saying which. The caller frees it. */
persister *persist_new(const persist_options *options, char *message, size_t size);
void persist_free(persister *p);

/* Runs cycles until *stop is true (or, with drain, until its group has
 * acknowledged every record): list the streams, hold their leases, read
 * records, apply them to PostgreSQL in one transaction, and only after its
 * COMMIT acknowledge them in Redis and trim what every reader is done
 * with. A lost server is logged once (WARNING, "...
 * (retrying)") and retried; a stats line (NOTICE) every stats_s seconds
 * and one at the end. *stop is checked at least every 50 ms between
 * cycles. */
void persist_run(persister *p, const atomic_bool *stop, const stock_log_hook *log);

/* Loads every SKU of the database that Redis does not hold into Redis
 * (docs/persister.md, "Warm-up"); logs what it did. True when done. */
bool persist_warm(persister *p, const stock_log_hook *log);

/* The latest status; safe on any thread. */
void persist_status_read(persister *p, persist_status *status);

#endif /* STOCK_PERSIST_H */
