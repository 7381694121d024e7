/*
 * health.h -- what stockd says of its health (docs/operations.md,
 * "Health"): liveness (/healthz, PING), readiness (/readyz), the health
 * fields of INFO and /metrics, all from one reading of the store's
 * stock_get_health, the --disk-min-free threshold and the persister's
 * status (--persist-to); and a watch, once a
 * second, that logs when the disk crosses that threshold.
 */
#ifndef STOCK_SERVER_HEALTH_H
#define STOCK_SERVER_HEALTH_H

#include <stdbool.h>

#include <jansson.h>

#include "server/server.h"

/* How often the watch runs. */
#define HEALTH_WATCH_MS 1000

typedef struct health_report {   /* declared in metrics.h too */
    stock_health store;
    bool disk_low;       /* free disk known and below --disk-min-free */
    bool alive;          /* not failed closed: a restart would not help */
    bool ready;          /* alive and the disk not low: send it traffic */
    bool persisting;     /* --persist-to: a persister runs */
    persist_status persist;   /* its status (zeros without one) */
} health_report;

/* Reads the store's health now. */
void health_read(server *srv, health_report *report);

/* The JSON body of /healthz (readiness false) or /readyz (true):
 * {"status": "ok"|"failed"|"not ready", "failure", "snapshot_failed",
 * "snapshot_failures", "disk_free_bytes", "disk_min_free_bytes",
 * "disk_low", "replica_unreachable", "replica_lag_bytes"}; NULL on out of
 * memory. */
json_t *health_json(const server *srv, const health_report *report, bool readiness);

/* Starts the watch on srv's loop; health_stop closes it. */
void health_start(server *srv);
void health_stop(server *srv);

#endif /* STOCK_SERVER_HEALTH_H */
