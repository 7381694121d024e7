/*
 * postgres_events.c -- the moves of a postgres store, for its stock events
 * (flow_sources.h, docs/events.md "From PostgreSQL"). The schema's triggers
 * (version 4, postgres_schema.c) append a move per SKU to stock_moves in the
 * transaction that changes it, while a publisher is registered. A move's id
 * is a bigserial, taken before its commit: a transaction that commits later
 * may hold a smaller id, so ids are not an order to resume from. This
 * follower gives each committed move its position itself, after the
 * commit, in id order: a move committed later always gets a larger
 * position, and two moves of one SKU keep their order (the second
 * transaction waited on the first's row lock, so its move's id is larger
 * and it is committed no earlier). Positions are written in the table, so
 * events derived again carry the same sequence.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/flow_events.h"
#include "backend/flow_sources.h"
#include "backend/postgres.h"
#include "lib/clock.h"
#include "lib/message.h"

/* The session advisory lock a publisher holds: one per database. */
#define PG_EVENTS_LOCK_KEY 7379013
#define PG_EVENTS_LOCK_RETRY_US 100000

struct pg_events {
    PGconn *conn;
    pg_options options;
    uint64_t next_seq;            /* the next position to hand out */
    uint64_t kept_seq;            /* the moves before it are deleted */
    PGresult *batch;              /* moves read, from row next_row on */
    int next_row;
};

/* Runs sql with its parameters; the result when its status is want, else
 * NULL with message. */
static PGresult *run(pg_events *source, const char *sql, int count, const char *const *values,
                     ExecStatusType want, char *message, size_t message_size)
{
    PGresult *result = pg_exec_until(source->conn, sql, count, values,
                                     pg_deadline(source->options.timeout_ms));
    if (result != NULL && PQresultStatus(result) == want)
        return result;
    message_set(message, message_size, "postgres events: %s",
                pg_error_message(source->conn, result));
    PQclear(result);
    return NULL;
}

/* Takes the publisher's lock and registers it (the triggers record moves
 * from then on); *last: the last position given. A first registration
 * starts the positions after from_seq, so that they go on from the events
 * the broker may already hold. */
static stock_code register_reader(pg_events *source, uint64_t from_seq, int64_t *last,
                                  char *message, size_t message_size)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%d)", PG_EVENTS_LOCK_KEY);
    /* A publisher killed a moment ago holds the lock until its server
     * process sees the connection closed: wait for that, within the
     * timeout. */
    int64_t deadline_us = pg_deadline(source->options.timeout_ms);
    bool locked = false;
    PGresult *result = NULL;
    while (!locked) {
        result = run(source, sql, 0, NULL, PGRES_TUPLES_OK, message, message_size);
        if (result == NULL)
            return STOCK_IO;
        locked = PQgetvalue(result, 0, 0)[0] == 't';
        PQclear(result);
        if (locked || clock_now_us(CLOCK_MONOTONIC) >= deadline_us)
            break;
        usleep(PG_EVENTS_LOCK_RETRY_US);
    }
    if (!locked) {
        message_set(message, message_size, "postgres events: another publisher follows this "
                    "database (one at a time)");
        return STOCK_CONFLICT;
    }
    char from[24];
    snprintf(from, sizeof from, "%" PRId64,
             from_seq == FLOW_EVENTS_FROM_END ? (int64_t)0 : (int64_t)from_seq);
    const char *values[] = {from};
    result = run(source, "INSERT INTO stock_event_reader SELECT $1::bigint "
                 "WHERE NOT EXISTS (SELECT 1 FROM stock_event_reader)", 1, values,
                 PGRES_COMMAND_OK, message, message_size);
    bool registered = result != NULL;
    PQclear(result);
    result = registered ? run(source, "SELECT last_pos FROM stock_event_reader", 0, NULL,
                              PGRES_TUPLES_OK, message, message_size)
                        : NULL;
    if (result == NULL)
        return STOCK_IO;
    *last = strtoll(PQgetvalue(result, 0, 0), NULL, 10);
    PQclear(result);
    return STOCK_OK;
}

stock_code pg_events_open(const char *uri, uint64_t from_seq, pg_events **out,
                          uint64_t *start_seq, char *message, size_t message_size)
{
    assert(uri != NULL && out != NULL && start_seq != NULL);
    *out = NULL;
    pg_events *source = calloc(1, sizeof *source);
    if (source == NULL) {
        message_set(message, message_size, "out of memory");
        return STOCK_NOMEM;
    }
    stock_config config = {0};
    stock_code code = pg_options_parse(uri, &config, &source->options, message, message_size);
    if (code != STOCK_OK) {
        free(source);
        return code;
    }
    code = pg_session_open(&source->options, 0, &source->conn, message, message_size);
    int64_t last = 0;
    if (code == STOCK_OK)
        code = register_reader(source, from_seq, &last, message, message_size);
    if (code != STOCK_OK) {
        pg_events_close(source);
        return code;
    }
    source->next_seq = from_seq == FLOW_EVENTS_FROM_END ? (uint64_t)last + 1 : from_seq;
    *start_seq = source->next_seq;
    *out = source;
    return STOCK_OK;
}

/* Gives the committed moves without a position theirs, in id order; *placed:
 * how many. Moves not committed yet are not seen, and get theirs later. */
static bool place(pg_events *source, long *placed, char *message, size_t message_size)
{
    static const char sql[] =
        "WITH todo AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM stock_moves "
        "              WHERE pos IS NULL ORDER BY id LIMIT 4096), "
        "     reader AS (UPDATE stock_event_reader "
        "                   SET last_pos = last_pos + (SELECT count(*) FROM todo) "
        "                RETURNING last_pos - (SELECT count(*) FROM todo) AS base) "
        "UPDATE stock_moves m SET pos = reader.base + todo.k FROM todo, reader "
        " WHERE m.id = todo.id";
    PGresult *result = run(source, sql, 0, NULL, PGRES_COMMAND_OK, message, message_size);
    if (result == NULL)
        return false;
    *placed = strtol(PQcmdTuples(result), NULL, 10);
    PQclear(result);
    return true;
}

/* Reads the placed moves from next_seq on into the batch. */
static bool read_batch(pg_events *source, char *message, size_t message_size)
{
    char from[24], limit[16];
    snprintf(from, sizeof from, "%" PRIu64, source->next_seq);
    snprintf(limit, sizeof limit, "%d", FLOW_SOURCE_BATCH);
    const char *values[] = {from, limit};
    PQclear(source->batch);
    source->batch = run(source, "SELECT pos, sku_id, before, after FROM stock_moves "
                        "WHERE pos >= $1::bigint ORDER BY pos LIMIT $2::integer", 2, values,
                        PGRES_TUPLES_OK, message, message_size);
    source->next_row = 0;
    return source->batch != NULL;
}

static bool batch_has_row(const pg_events *source)
{
    return source->batch != NULL && source->next_row < PQntuples(source->batch);
}

journal_read_result pg_events_next(pg_events *source, uint64_t *seq, core_change *change,
                                   char *message, size_t message_size)
{
    assert(source != NULL && seq != NULL && change != NULL);
    if (!batch_has_row(source)) {
        long placed = 0;
        if (!read_batch(source, message, message_size))
            return JOURNAL_READ_FAILED;
        if (!batch_has_row(source) && (!place(source, &placed, message, message_size) ||
                                       (placed > 0 && !read_batch(source, message, message_size))))
            return JOURNAL_READ_FAILED;
        if (!batch_has_row(source))
            return JOURNAL_READ_WAIT;
    }
    int row = source->next_row++;
    const char *sku = PQgetvalue(source->batch, row, 1);
    if (strlen(sku) > STOCK_ID_MAX) {
        message_set(message, message_size, "postgres events: move %s names a SKU longer "
                    "than %d bytes", PQgetvalue(source->batch, row, 0), STOCK_ID_MAX);
        return JOURNAL_READ_FAILED;
    }
    *seq = strtoull(PQgetvalue(source->batch, row, 0), NULL, 10);
    snprintf(change->sku, sizeof change->sku, "%s", sku);
    change->before = strtoll(PQgetvalue(source->batch, row, 2), NULL, 10);
    change->after = strtoll(PQgetvalue(source->batch, row, 3), NULL, 10);
    source->next_seq = *seq + 1;
    return JOURNAL_READ_RECORD;
}

stock_code pg_events_keep(pg_events *source, uint64_t seq, char *message, size_t message_size)
{
    assert(source != NULL);
    if (seq <= source->kept_seq)
        return STOCK_OK;   /* an idle publisher asks at every look */
    char before[24];
    snprintf(before, sizeof before, "%" PRIu64, seq);
    const char *values[] = {before};
    PGresult *result = run(source, "DELETE FROM stock_moves WHERE pos < $1::bigint", 1, values,
                           PGRES_COMMAND_OK, message, message_size);
    stock_code code = result != NULL ? STOCK_OK : STOCK_IO;
    PQclear(result);
    if (code == STOCK_OK)
        source->kept_seq = seq;
    return code;
}

void pg_events_close(pg_events *source)
{
    if (source == NULL)
        return;
    PQclear(source->batch);
    PQfinish(source->conn);
    pg_options_free(&source->options);
    free(source);
}
