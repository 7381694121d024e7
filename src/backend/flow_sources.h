/*
 * flow_sources.h -- the network stores' flows that stock events derive from
 * (flow_events.h, docs/events.md): the moves of the postgres backend
 * (postgres_events.c) and the outbox streams of the redis backend
 * (redis_events.c). Each hands out one move at a time: a SKU's available
 * stock before and after one change, with the sequence that names it for
 * ever. Internal to libstock.
 *
 * Threads: one thread at a time per source.
 */
#ifndef STOCK_BACKEND_FLOW_SOURCES_H
#define STOCK_BACKEND_FLOW_SOURCES_H

#include <stdint.h>

#include "core/core.h"
#include "journal/journal.h"
#include "stock.h"

/* Moves read from the store at once. */
#define FLOW_SOURCE_BATCH 1024

typedef struct pg_events pg_events;

/*
 * Follows the moves of the postgres store at uri (postgres://...), from
 * position from_seq (FLOW_EVENTS_FROM_END: the next one given). Registers
 * the publisher (the triggers record moves from then on) and holds a
 * session advisory lock: a second publisher on one database waits for it up
 * to stock_timeout_ms (the URI's, else 30 s), then is refused
 * (STOCK_CONFLICT). *start_seq: from_seq, or the position after the last
 * given for FLOW_EVENTS_FROM_END. Returns STOCK_OK, or STOCK_INVALID (a bad
 * URI), STOCK_UNAVAILABLE, STOCK_IO, STOCK_CORRUPT with message.
 */
stock_code pg_events_open(const char *uri, uint64_t from_seq, pg_events **out,
                          uint64_t *start_seq, char *message, size_t message_size);

/* The next move (*seq its position, *change its SKU and levels): RECORD,
 * WAIT (none committed yet), FAILED (the database; message says why). */
journal_read_result pg_events_next(pg_events *source, uint64_t *seq, core_change *change,
                                   char *message, size_t message_size);

/* Deletes the moves before position seq: their events are confirmed. */
stock_code pg_events_keep(pg_events *source, uint64_t seq, char *message,
                          size_t message_size);

/* Closes the session (the lock goes with it); NULL is a no-op. */
void pg_events_close(pg_events *source);

typedef struct rd_events rd_events;

/*
 * Follows the outbox streams of the redis store at uri (redis://..., one
 * server or every master of a cluster) with the consumer group "stockevents" of each stream, created at
 * the stream's start, so that the persister's group and this one each get
 * every record; the group is registered as an outbox reader, so the
 * persister's trim keeps what it has not read. A record is acknowledged in the group when the next one is
 * asked for (its events are then confirmed by the broker): after a crash
 * the group's pending records come again first. Returns STOCK_OK, or
 * STOCK_INVALID, STOCK_UNSUPPORTED, STOCK_UNAVAILABLE, STOCK_CORRUPT with
 * message.
 */
stock_code rd_events_open(const char *uri, rd_events **out, char *message,
                          size_t message_size);

/* The next record's move; *seq = S * RD_EVENTS_SLOTS + slot, S the entry's
 * sequence in its slot's stream. RECORD, WAIT, FAILED as pg_events_next. */
journal_read_result rd_events_next(rd_events *source, uint64_t *seq, core_change *change,
                                   char *message, size_t message_size);

/* How many records were deleted from the streams (by a persister older
 * than the trim, or by hand) before this follower read them: their events
 * are lost. */
uint64_t rd_events_lost(const rd_events *source);

/* Closes the connection; NULL is a no-op. */
void rd_events_close(rd_events *source);

#endif /* STOCK_BACKEND_FLOW_SOURCES_H */
