/*
 * persist.c -- the persister's loop (persist.h): cycles of list, lease,
 * read, apply, acknowledge; a lost server is logged and retried; no record
 * is acknowledged that was not committed, so a kill -9 at any point loses
 * nothing, and a record applied twice changes nothing (persist_apply.c).
 * Between cycles, once a second, the lag is measured and published for
 * persist_status_read; every stats_s seconds it is logged.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/persist_internal.h"
#include "lib/message.h"

#define PERSIST_IDLE_MS 20          /* a cycle that found nothing waits this long */
#define PERSIST_RETRY_MS 500        /* after a failure */
#define PERSIST_NAP_MS 50           /* the stop flag is checked this often while waiting */
#define PERSIST_LAG_EVERY_MS 1000   /* the lag is measured this often */

void persist_options_default(persist_options *options)
{
    *options = (persist_options){.group = PERSIST_GROUP_DEFAULT, .batch = PERSIST_BATCH_DEFAULT,
                                 .lease_ms = PERSIST_LEASE_MS_DEFAULT,
                                 .stats_s = PERSIST_STATS_S_DEFAULT};
    char host[PERSIST_NAME_MAX / 2] = "host";
    gethostname(host, sizeof host - 1);
    snprintf(options->name, sizeof options->name, "%s-%ld", host, (long)getpid());
}

/* A group or persister name: 1..PERSIST_NAME_MAX bytes, no blanks. */
static bool name_valid(const char *name)
{
    size_t len = strlen(name);
    return len > 0 && len <= PERSIST_NAME_MAX && strpbrk(name, " \t\r\n") == NULL;
}

static bool options_check(const persist_options *o, char *message, size_t size)
{
    const char *bad = o->redis_uri == NULL ? "the redis URI is missing"
        : o->postgres_uri == NULL ? "the postgres URI is missing"
        : strlen(o->redis_uri) >= RD_URI_MAX || strlen(o->postgres_uri) >= RD_URI_MAX
            ? "a URI is too long"
        : !name_valid(o->group) || !name_valid(o->name)
            ? "a group or persister name must be 1..64 bytes without blanks"
        : o->batch < 1 || o->batch > PERSIST_BATCH_MAX ? "batch is out of range"
        : o->lease_ms < PERSIST_LEASE_MS_MIN || o->lease_ms > PERSIST_LEASE_MS_MAX
            ? "the lease is out of range"
        : o->stats_s > PERSIST_STATS_S_MAX ? "the stats period is out of range" : NULL;
    if (bad != NULL)
        message_set(message, size, "%s", bad);
    return bad == NULL;
}

persister *persist_new(const persist_options *options, char *message, size_t size)
{
    if (!options_check(options, message, size))
        return NULL;
    persister *p = calloc(1, sizeof *p);
    rd_store *redis = calloc(1, sizeof *redis);
    if (p == NULL || redis == NULL) {
        free(p);
        free(redis);
        message_set(message, size, "out of memory");
        return NULL;
    }
    p->redis = redis;
    p->options = *options;
    snprintf(p->redis_uri, sizeof p->redis_uri, "%s", options->redis_uri);
    snprintf(p->postgres_uri, sizeof p->postgres_uri, "%s", options->postgres_uri);
    p->options.redis_uri = p->redis_uri;
    p->options.postgres_uri = p->postgres_uri;
    stock_config config = {0};
    char reason[STOCK_MESSAGE_MAX];
    if (rd_options_parse(p->redis_uri, &config, &redis->options, reason, sizeof reason) !=
        STOCK_OK) {
        message_set(message, size, "%s", reason);
        persist_free(p);
        return NULL;
    }
    redis->options.outbox_reader = true;
    if (!redis->options.outbox) {
        message_set(message, size, "the redis URI has outbox=0: a store without an outbox has "
                    "nothing to persist (docs/redis.md, \"A store without an outbox\")");
        persist_free(p);
        return NULL;
    }
    if (pg_options_parse(p->postgres_uri, &config, &p->pg_options, reason, sizeof reason) !=
        STOCK_OK) {
        message_set(message, size, "the postgres URI: %s", reason);
        persist_free(p);
        return NULL;
    }
    return p;
}

void persist_free(persister *p)
{
    if (p == NULL)
        return;
    outbox_release(p);
    rd_link_close(p->redis);
    if (p->pg != NULL)
        PQfinish(p->pg);
    pg_options_free(&p->pg_options);
    free(p->redis);
    free(p);
}

void persist_status_read(persister *p, persist_status *status)
{
    *status = (persist_status){
        .applied = atomic_load(&p->applied), .read = atomic_load(&p->read),
        .lag_records = atomic_load(&p->lag_records), .lag_ms = atomic_load(&p->lag_ms),
        .outbox_records = atomic_load(&p->outbox_records),
        .linked = atomic_load(&p->linked)};
}

/* One cycle; returns the records read (0: idle), -1 on a failure (the
 * link to Redis is then closed: the next cycle maps the masters again). */
static int64_t cycle(persister *p)
{
    if (!outbox_connect(p) || !apply_connect(p) || !outbox_scan(p) || !outbox_lease(p)) {
        outbox_disconnect(p);
        return -1;
    }
    bool ok = outbox_read(p);
    int64_t read = p->record_count;
    uint64_t applied = 0;
    if (ok && read > 0) {
        ok = apply_records(p, &applied);
        if (ok)
            atomic_fetch_add(&p->applied, applied);
        ok = ok && outbox_ack(p);
    }
    outbox_release(p);
    if (!ok)
        outbox_disconnect(p);
    return ok ? read : -1;
}

/* Measures the lag and publishes it; false when Redis did not answer. It
 * needs Redis only: while PostgreSQL is down the lag is known, and grows. */
static bool lag_measure(persister *p)
{
    uint64_t records = 0, held = 0;
    int64_t age_ms = 0;
    if (!outbox_connect(p) || !outbox_scan(p) || !outbox_lag(p, &records, &age_ms, &held)) {
        outbox_disconnect(p);
        return false;
    }
    atomic_store(&p->lag_records, records);
    atomic_store(&p->lag_ms, age_ms);
    atomic_store(&p->outbox_records, held);
    return true;
}

/* One stats line: totals, the rate since the last line, and the lag. */
static void stats_line(persister *p, const stock_log_hook *log, const char *when,
                       uint64_t *last_applied, int64_t *last_ms)
{
    persist_status s;
    persist_status_read(p, &s);
    int64_t now = outbox_tick_ms();
    double seconds = (double)(now - *last_ms) / 1000.0;
    uint32_t owned = 0;
    for (uint32_t i = 0; i < p->stream_count; i++)
        owned += p->streams[i].owned;
    stock_log(log, STOCK_LOG_NOTICE, "%s applied=%" PRIu64 " read=%" PRIu64 " rate=%.0f/s "
              "masters=%d streams=%u owned=%u lag_records=%" PRIu64 " lag_ms=%" PRId64
              " outbox_records=%" PRIu64 "%s",
              when, s.applied, s.read,
              seconds > 0 ? (double)(s.applied - *last_applied) / seconds : 0.0,
              p->redis->link.node_count, p->stream_count, owned, s.lag_records, s.lag_ms,
              s.outbox_records,
              s.linked ? "" : " (not linked: the lag is the last one measured)");
    *last_applied = s.applied;
    *last_ms = now;
}

/* Waits ms, or less once *stop is set. */
static void nap(int ms, const atomic_bool *stop)
{
    for (int waited = 0; waited < ms && !atomic_load(stop); waited += PERSIST_NAP_MS) {
        int step = ms - waited < PERSIST_NAP_MS ? ms - waited : PERSIST_NAP_MS;
        struct timespec pause = {0, (long)step * 1000000L};
        nanosleep(&pause, NULL);
    }
}

/* Logs a failure once until it changes or a cycle succeeds. */
static void failure_log(persister *p, const stock_log_hook *log, int64_t read, char *last_error)
{
    if (read >= 0) {
        last_error[0] = '\0';
    } else if (strcmp(last_error, p->error) != 0) {
        stock_log(log, STOCK_LOG_WARNING, "%s (retrying)", p->error);
        memcpy(last_error, p->error, PERSIST_ERROR_MAX);
    }
}

void persist_run(persister *p, const atomic_bool *stop, const stock_log_hook *log)
{
    uint64_t last_applied = 0;
    int64_t last_ms = outbox_tick_ms(), stats_ms = last_ms, lag_ms = 0;
    char last_error[PERSIST_ERROR_MAX] = "";
    while (!atomic_load(stop)) {
        int64_t read = cycle(p);
        atomic_store(&p->linked, read >= 0);
        failure_log(p, log, read, last_error);
        int64_t now = outbox_tick_ms();
        bool drained = false;
        if (now - lag_ms >= PERSIST_LAG_EVERY_MS || (read == 0 && p->options.drain)) {
            drained = lag_measure(p) && atomic_load(&p->lag_records) == 0;
            lag_ms = now;
        }
        if (p->options.stats_s > 0 && now - stats_ms >= (int64_t)p->options.stats_s * 1000) {
            stats_line(p, log, "stats", &last_applied, &last_ms);
            stats_ms = now;
        }
        if (read == 0 && p->options.drain && drained)
            break;
        if (read <= 0)
            nap(read < 0 ? PERSIST_RETRY_MS : PERSIST_IDLE_MS, stop);
    }
    if (rd_linked(p->redis))   /* no new connection on the way out */
        lag_measure(p);
    stats_line(p, log, "exit", &last_applied, &last_ms);
}
