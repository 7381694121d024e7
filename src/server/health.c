/*
 * health.c -- stockd's health checks (see health.h).
 */
#include <inttypes.h>

#include "server/health.h"
#include "server/log.h"

void health_read(server *srv, health_report *report)
{
    stock_get_health(srv->store, &report->store);
    uint64_t min_free = srv->cfg->disk_min_free_bytes;
    report->disk_low = min_free > 0 && report->store.disk_bytes > 0 &&
                       report->store.disk_free_bytes < min_free;
    report->alive = !report->store.failed;
    report->ready = report->alive && !report->disk_low;
    report->persisting = srv->persister != NULL;
    persister_status(srv->persister, &report->persist);
}

json_t *health_json(const server *srv, const health_report *report, bool readiness)
{
    const char *status = !report->alive ? "failed"
                         : readiness && !report->ready ? "not ready" : "ok";
    return json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:b, s:b, s:I}", "status", status,
                     "failure", report->store.failure,
                     "snapshot_failed", report->store.snapshot_failed,
                     "snapshot_failures", (json_int_t)report->store.snapshot_failures,
                     "disk_free_bytes", (json_int_t)report->store.disk_free_bytes,
                     "disk_min_free_bytes", (json_int_t)srv->cfg->disk_min_free_bytes,
                     "disk_low", report->disk_low,
                     "replica_unreachable", report->store.replica_unreachable,
                     "replica_lag_bytes", (json_int_t)report->store.replica_lag_bytes);
}

/* Logs when the free disk crosses --disk-min-free, either way: the store
 * and the library log the other failures themselves, as they happen. */
static void on_watch(uv_timer_t *timer)
{
    server *srv = timer->data;
    health_report report;
    health_read(srv, &report);
    if (report.disk_low == srv->disk_low)
        return;
    srv->disk_low = report.disk_low;
    if (report.disk_low)
        log_warn("the store's disk has %" PRIu64 " bytes free, below --disk-min-free %" PRIu64
                 ": /readyz answers 503; free space or grow the disk now (a full disk fails "
                 "writes, and the store then refuses work until restarted)",
                 report.store.disk_free_bytes, srv->cfg->disk_min_free_bytes);
    else
        log_info("the store's disk has %" PRIu64 " bytes free again: ready",
                 report.store.disk_free_bytes);
}

void health_start(server *srv)
{
    uv_timer_init(srv->loop, &srv->health_watch);
    srv->health_watch.data = srv;
    uv_timer_start(&srv->health_watch, on_watch, 0, HEALTH_WATCH_MS);
}

void health_stop(server *srv)
{
    if (!uv_is_closing((uv_handle_t *)&srv->health_watch))
        uv_close((uv_handle_t *)&srv->health_watch, NULL);
}
