/*
 * flow_events.c -- the stock events of a store's durable flow
 * (flow_events.h): for a data folder, a positioned journal reader and a
 * core of the follower's own to replay each record on (core_watch says
 * which levels the record moved); for a postgres or redis store, the moves
 * its flow already carries (flow_sources.h). The rules of docs/events.md
 * are then applied to the levels moved.
 */
#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/flow_events.h"
#include "backend/embedded_cold.h"
#include "backend/flow_sources.h"
#include "backend/postgres.h"
#include "backend/redis.h"
#include "core/core.h"
#include "lib/message.h"

/* Events one moved level can make: a change, then sold out or back in
 * stock, then below its threshold. */
#define FLOW_EVENTS_PER_LEVEL 3

/* Where the moves come from. */
typedef enum flow_source {
    FLOW_SOURCE_FOLDER,           /* replayed records of a data folder */
    FLOW_SOURCE_POSTGRES,
    FLOW_SOURCE_REDIS
} flow_source;

struct flow_events {
    flow_source source;
    core *state;                  /* FOLDER: the replayed state */
    journal_reader *reader;       /* FOLDER */
    pg_events *postgres;          /* POSTGRES */
    rd_events *redis;             /* REDIS */
    uint64_t from_seq;            /* records before it make no events */
    uint64_t next_seq;            /* the next record to read */
    bool every_change;
    core_changes changes;
    flow_event events[CORE_CHANGES_MAX * FLOW_EVENTS_PER_LEVEL];
};

static stock_code load_state(void *context, journal_read_fn read, void *read_context,
                             size_t size, char *message, size_t message_size)
{
    return core_snapshot_load(context, read, read_context, size, message, message_size);
}

/* A snapshot that failed its checksum after loading: empty the state for
 * an older one. */
static void clear_state(void *context)
{
    core_clear(context);
}

/* A follower of a network store's moves. */
static stock_code open_network(const char *uri, uint64_t from_seq, bool every_change,
                               flow_events **out, uint64_t *start_seq, char *message,
                               size_t message_size)
{
    flow_events *follower = calloc(1, sizeof *follower);
    if (follower == NULL) {
        message_set(message, message_size, "out of memory");
        return STOCK_NOMEM;
    }
    stock_code code;
    uint64_t start = 0;
    if (pg_uri_accepts(uri)) {
        follower->source = FLOW_SOURCE_POSTGRES;
        code = pg_events_open(uri, from_seq, &follower->postgres, &start, message,
                              message_size);
    } else {
        /* A record comes again until acknowledged: where to resume is the
         * consumer group's. */
        follower->source = FLOW_SOURCE_REDIS;
        code = rd_events_open(uri, &follower->redis, message, message_size);
        start = from_seq == FLOW_EVENTS_FROM_END ? 0 : from_seq;
    }
    if (code != STOCK_OK) {
        flow_events_close(follower);
        return code;
    }
    follower->from_seq = follower->next_seq = start;
    follower->every_change = every_change;
    *start_seq = start;
    *out = follower;
    return STOCK_OK;
}

bool flow_events_network(const char *source)
{
    return pg_uri_accepts(source) || strncmp(source, "redis://", 8) == 0;
}

stock_code flow_events_open(const char *path, uint64_t from_seq, bool every_change,
                            flow_events **out, uint64_t *start_seq, char *message,
                            size_t message_size)
{
    assert(path != NULL && out != NULL && start_seq != NULL);
    *out = NULL;
    if (flow_events_network(path))
        return open_network(path, from_seq, every_change, out, start_seq, message,
                            message_size);
    char cold[PATH_MAX];
    snprintf(cold, sizeof cold, "%s/%s", path, COLD_FILE);
    if (access(cold, F_OK) == 0) {
        /* Its moves take lines out of the snapshots the reader starts from,
         * and the log then names lines the reader never saw. */
        message_set(message, message_size, "stock events from a store with retention= "
                    "(%s) are not built yet", COLD_FILE);
        return STOCK_UNSUPPORTED;
    }
    flow_events *follower = calloc(1, sizeof *follower);
    if (follower == NULL || (follower->state = core_create()) == NULL) {
        free(follower);
        message_set(message, message_size, "out of memory");
        return STOCK_NOMEM;
    }
    journal_replay replay = {.context = follower->state, .load = load_state,
                             .clear = clear_state};
    uint64_t start = 0;
    stock_code code = journal_reader_open(path, from_seq, &replay, &follower->reader, &start,
                                          message, message_size);
    if (code != STOCK_OK) {
        flow_events_close(follower);
        return code;
    }
    follower->from_seq = start > from_seq ? start : from_seq;
    follower->next_seq = start;
    follower->every_change = every_change;
    core_watch(follower->state, &follower->changes);
    *start_seq = follower->from_seq;
    *out = follower;
    return STOCK_OK;
}

static void add_event(flow_events *follower, uint32_t *count, uint64_t seq,
                      const core_change *change, flow_event_kind kind, int64_t threshold)
{
    assert(*count < sizeof follower->events / sizeof follower->events[0]);
    flow_event *event = &follower->events[*count];
    *event = (flow_event){.seq = seq, .part = *count, .kind = kind, .before = change->before,
                          .after = change->after, .threshold = threshold};
    memcpy(event->sku, change->sku, sizeof event->sku);
    (*count)++;
}

/* The events of one moved level, by the rules of flow_event_kind. */
static void derive(flow_events *follower, uint32_t *count, uint64_t seq,
                   const core_change *change, flow_threshold_fn threshold, void *context)
{
    if (change->before == change->after)
        return;
    if (follower->every_change)
        add_event(follower, count, seq, change, FLOW_EVENT_CHANGE, 0);
    if (change->before > 0 && change->after == 0)
        add_event(follower, count, seq, change, FLOW_EVENT_SOLD_OUT, 0);
    else if (change->before == 0 && change->after > 0)
        add_event(follower, count, seq, change, FLOW_EVENT_BACK_IN_STOCK, 0);
    int64_t below = threshold != NULL ? threshold(context, change->sku) : 0;
    if (below > 0 && change->before >= below && change->after < below)
        add_event(follower, count, seq, change, FLOW_EVENT_BELOW_THRESHOLD, below);
}

/* The next move of a network store, as a record of one move. */
static journal_read_result next_network(flow_events *follower, flow_threshold_fn threshold,
                                        void *context, const flow_event **events,
                                        uint32_t *count, uint64_t *seq, char *message,
                                        size_t message_size)
{
    core_change change;
    journal_read_result read =
        follower->source == FLOW_SOURCE_POSTGRES
            ? pg_events_next(follower->postgres, seq, &change, message, message_size)
            : rd_events_next(follower->redis, seq, &change, message, message_size);
    if (read != JOURNAL_READ_RECORD)
        return read;
    follower->next_seq = *seq + 1;
    *count = 0;
    derive(follower, count, *seq, &change, threshold, context);
    *events = follower->events;
    return JOURNAL_READ_RECORD;
}

journal_read_result flow_events_next(flow_events *follower, flow_threshold_fn threshold,
                                     void *context, const flow_event **events,
                                     uint32_t *count, uint64_t *seq, char *message,
                                     size_t message_size)
{
    assert(follower != NULL && events != NULL && count != NULL && seq != NULL);
    if (follower->source != FLOW_SOURCE_FOLDER)
        return next_network(follower, threshold, context, events, count, seq, message,
                            message_size);
    for (;;) {
        const uint8_t *payload = NULL;
        size_t len = 0;
        uint64_t lsn = 0;
        journal_read_result read = journal_reader_next(follower->reader, &payload, &len, &lsn,
                                                       message, message_size);
        if (read == JOURNAL_READ_WAIT && follower->from_seq == FLOW_EVENTS_FROM_END)
            follower->from_seq = follower->next_seq;   /* the end, found */
        if (read != JOURNAL_READ_RECORD)
            return read;
        follower->next_seq = lsn + 1;
        follower->changes.count = 0;
        char inner[STOCK_MESSAGE_MAX];
        if (core_replay(follower->state, payload, len, inner, sizeof inner) != STOCK_OK) {
            message_set(message, message_size, "record %llu: %s", (unsigned long long)lsn,
                        inner);
            return JOURNAL_READ_FAILED;
        }
        if (lsn < follower->from_seq)
            continue;
        *count = 0;
        for (uint32_t i = 0; i < follower->changes.count; i++)
            derive(follower, count, lsn, &follower->changes.items[i], threshold, context);
        *events = follower->events;
        *seq = lsn;
        return JOURNAL_READ_RECORD;
    }
}

stock_code flow_events_keep(flow_events *follower, uint64_t seq, char *message,
                            size_t message_size)
{
    switch (follower->source) {
    case FLOW_SOURCE_FOLDER: return journal_reader_keep(follower->reader, seq, message, message_size);
    case FLOW_SOURCE_POSTGRES: return pg_events_keep(follower->postgres, seq, message, message_size);
    case FLOW_SOURCE_REDIS: break;   /* acknowledged record by record */
    }
    return STOCK_OK;
}

uint64_t flow_events_lost(const flow_events *follower)
{
    return follower->source == FLOW_SOURCE_REDIS ? rd_events_lost(follower->redis) : 0;
}

void flow_events_close(flow_events *follower)
{
    if (follower == NULL)
        return;
    journal_reader_close(follower->reader);
    core_destroy(follower->state);
    pg_events_close(follower->postgres);
    rd_events_close(follower->redis);
    free(follower);
}

const char *flow_event_kind_name(flow_event_kind kind)
{
    static const char *const names[FLOW_EVENT_KINDS] = {"sold_out", "back_in_stock",
                                                        "below_threshold", "change"};
    assert(kind < FLOW_EVENT_KINDS);
    return names[kind];
}

size_t flow_event_json(const flow_event *event, char *out)
{
    /* Ids are printable ASCII without space: only '"' and '\\' need an escape. */
    char sku[2 * STOCK_ID_MAX + 1];
    size_t len = 0;
    for (const char *c = event->sku; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\')
            sku[len++] = '\\';
        sku[len++] = *c;
    }
    sku[len] = '\0';
    int n = snprintf(out, FLOW_EVENT_JSON_MAX,
                     "{\"seq\":%" PRIu64 ",\"part\":%" PRIu32 ",\"event\":\"%s\",\"sku\":\"%s\","
                     "\"before\":%" PRId64 ",\"after\":%" PRId64,
                     event->seq, event->part, flow_event_kind_name(event->kind), sku,
                     event->before, event->after);
    if (event->kind == FLOW_EVENT_BELOW_THRESHOLD)
        n += snprintf(out + n, FLOW_EVENT_JSON_MAX - (size_t)n, ",\"threshold\":%" PRId64,
                      event->threshold);
    n += snprintf(out + n, FLOW_EVENT_JSON_MAX - (size_t)n, "}");
    assert(n > 0 && (size_t)n < FLOW_EVENT_JSON_MAX);
    return (size_t)n;
}
