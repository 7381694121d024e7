/*
 * run.h -- stockbench's engine: opens the store, creates the SKUs a workload
 * uses, drives the load through stock_submit (closed or open loop), times
 * every batch, and ends with the checker's verdict.
 *
 * Closed loop: `connections` batches of `pipeline` ops are in flight; each
 * one is replaced as soon as it completes. Open loop: a batch of `pipeline`
 * ops is due every pipeline/rate seconds, on at most `connections` batches
 * in flight; latency is measured from the time a batch was due, not the time
 * it could be sent, so a stall of the store is not hidden by the load
 * generator waiting for it (coordinated omission).
 *
 * An in-process store (the embedded engine) is shared by all in-flight
 * batches; any other backend gets one store handle, that is one connection,
 * per in-flight batch.
 */
#ifndef STOCKBENCH_RUN_H
#define STOCKBENCH_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "checker.h"
#include "histogram.h"
#include "spawn.h"
#include "stock.h"
#include "workload.h"

#define RUN_CONNECTIONS_MAX 1024
#define RUN_PIPELINE_MAX 4096
#define RUN_INFLIGHT_MAX 65536         /* connections x pipeline */
#define RUN_SERIES_MAX 3600            /* one point per second */
#define RUN_DURATION_MAX_S 3600.0
#define RUN_RATE_MAX 100000000.0       /* ops/s, open loop */
#define RUN_ERROR_MAX 320
#define RUN_RETRY_BACKOFF_MS 20        /* pause before resending after a failure */
#define RUN_KILL_EVERY_MIN_S 0.2

typedef struct run_config {
    const char *uri;
    stock_config store;
    workload_config workload;
    uint32_t connections;       /* 1..RUN_CONNECTIONS_MAX */
    uint32_t pipeline;          /* 1..RUN_PIPELINE_MAX */
    double rate;                /* ops/s for the open loop; 0 = closed loop */
    double duration_s;          /* how long to run when requests == 0 */
    uint64_t requests;          /* operations to send; 0 = use duration_s */
    bool progress;              /* a progress line on stderr every second */

    /* Crash mode: when stockd_path is set, the run starts that stockd on
     * 127.0.0.1:stockd_port over stockd_data (uri must name it), SIGKILLs
     * and restarts it every kill_every_s seconds (0: never) while the load
     * runs, and stops it at the end. */
    const char *stockd_path;
    const char *stockd_data;
    int stockd_port;
    double kill_every_s;
} run_config;

/* One second of the run. */
typedef struct run_point {
    double time_s;              /* end of the interval, since the start */
    double ops_per_s;
    uint64_t p50_ns;
    uint64_t p99_ns;
} run_point;

typedef struct run_result {
    char backend[32];
    char prefix[WORKLOAD_PREFIX_MAX + 1];
    uint32_t stores;            /* store handles (connections) opened */
    uint32_t skus;
    double elapsed_s;           /* from the first send to the last reply */
    uint64_t ops;
    uint64_t unsent_ops;        /* open loop: due before the end, never sent */
    uint64_t retries;           /* resends of ops whose outcome was unknown */
    uint32_t kills;             /* crash mode: SIGKILLs of stockd */
    uint64_t codes[STOCK_CODE_COUNT];
    uint64_t kinds[WORKLOAD_OP_KIND_COUNT];
    int64_t deducted;           /* acknowledged units */
    int64_t refunded;
    uint64_t check_failures;    /* 0: I1, I2, I4, I5 held */
    int64_t lines_checked;      /* acknowledged lines read back (-1: failed) */
    bool has_store_stats;       /* the backend keeps counters (stock_get_stats) */
    stock_stats store_stats;    /* batches, operations, syncs during the load */
    histogram latency;          /* ns per op, send (or due) to reply */
    uint32_t series_count;
    run_point series[RUN_SERIES_MAX];
    char error[RUN_ERROR_MAX];  /* why the run could not be made */
} run_result;

/*
 * Runs the benchmark described by config (validated by the caller: counts
 * within the limits above) and fills *result (zeroed here). Check failures
 * are printed to stderr as they are found. Returns 0 when the run was made
 * (result->check_failures says whether the check passed), -1 when it could
 * not be (the store did not open, the setup failed, out of memory), with
 * result->error saying why.
 */
int run_bench(const run_config *config, run_result *result);

#endif /* STOCKBENCH_RUN_H */
