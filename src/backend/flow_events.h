/*
 * flow_events.h -- the stock events derived from a store's durable flow
 * (docs/events.md): a SKU sold out (its available stock reached
 * 0), back in stock (from 0 to more), below its threshold (from at or above
 * it to under it), and, when asked, every change of its available stock.
 *
 * A follower reads a data folder's log from a position (journal.h,
 * "reading") and replays each record on a state of its own (core.h), with
 * a watch that says which levels the record moved, from what to what: the
 * events are a function of the durable flow, so they can be derived again
 * after any crash, with the same sequence numbers. An event's sequence is
 * the lsn of the record that made it (a position in the flow); part numbers
 * the events of one record from 0. A postgres or redis store's follower
 * takes the moves its flow already carries instead (flow_sources.h): a
 * record is one move, and its sequence the position the store gives it.
 *
 * Threads: one thread at a time per follower.
 */
#ifndef STOCK_BACKEND_FLOW_EVENTS_H
#define STOCK_BACKEND_FLOW_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "journal/journal.h"
#include "stock.h"

typedef enum flow_event_kind {
    FLOW_EVENT_SOLD_OUT,          /* before > 0, after == 0 */
    FLOW_EVENT_BACK_IN_STOCK,     /* before == 0 (or a new SKU), after > 0 */
    FLOW_EVENT_BELOW_THRESHOLD,   /* before >= threshold > after */
    FLOW_EVENT_CHANGE,            /* any move, when every_change is set */
    FLOW_EVENT_KINDS
} flow_event_kind;

typedef struct flow_event {
    uint64_t seq;                 /* the record's lsn */
    uint32_t part;                /* its place among the record's events */
    flow_event_kind kind;
    char sku[STOCK_ID_MAX + 1];
    int64_t before;               /* available stock before the record */
    int64_t after;                /* and after it */
    int64_t threshold;            /* BELOW_THRESHOLD: the threshold; else 0 */
} flow_event;

/* A SKU's threshold for BELOW_THRESHOLD events, or 0 for none. */
typedef int64_t (*flow_threshold_fn)(void *context, const char *sku);

typedef struct flow_events flow_events;

/* from_seq for a follower whose first events are those of the records
 * written after it first finds nothing more to read (the end of the log at
 * that moment): it starts from the newest snapshot. */
#define FLOW_EVENTS_FROM_END UINT64_MAX

/* True when source names a postgres or redis store (postgres://,
 * postgresql://, redis://) rather than a data folder. */
bool flow_events_network(const char *source);

/*
 * Opens a follower of the data folder at path, or of the postgres or redis
 * store path names (flow_events_network; docs/events.md "From PostgreSQL",
 * "From Redis": a redis follower resumes from its consumer group and
 * ignores from_seq), whose first events will be
 * those of record from_seq (or FLOW_EVENTS_FROM_END): the records before it
 * are replayed without events. *start_seq receives the first sequence it can derive: from_seq,
 * or later when the folder no longer holds the records from from_seq on
 * (journal_reader_open). Returns STOCK_OK and *out (free with
 * flow_events_close), or the reader's failure with message.
 */
stock_code flow_events_open(const char *path, uint64_t from_seq, bool every_change,
                            flow_events **out, uint64_t *start_seq, char *message,
                            size_t message_size);

/*
 * Reads and replays the next record and derives its events, with the
 * thresholds of threshold(context, sku) (threshold may be NULL: none).
 * On JOURNAL_READ_RECORD, *events (owned by the follower, valid until the
 * next call) holds *count events of the record *seq, in part order (0 when
 * it moved no level across a line). WAIT: no new record yet. FAILED: the
 * folder cannot be read, or a record does not replay (message says which).
 */
journal_read_result flow_events_next(flow_events *follower, flow_threshold_fn threshold,
                                     void *context, const flow_event **events,
                                     uint32_t *count, uint64_t *seq, char *message,
                                     size_t message_size);

/* Tells the store that the follower's owner still needs the records from
 * seq on: for a publisher, the first record whose events are not all
 * confirmed. A data folder's writer keeps them (journal_reader_keep); a
 * postgres store deletes the moves before seq; a redis follower
 * acknowledges each record when the next is asked for, so this does
 * nothing. Returns STOCK_OK or STOCK_IO. */
stock_code flow_events_keep(flow_events *follower, uint64_t seq, char *message,
                            size_t message_size);

/* Records the follower found deleted before it could read them (a redis
 * store's outbox trimmed by the persister; 0 for the other stores): their
 * events are lost. */
uint64_t flow_events_lost(const flow_events *follower);

/* Frees the follower; NULL is a no-op. */
void flow_events_close(flow_events *follower);

/* Longest JSON text of an event, NUL included. */
#define FLOW_EVENT_JSON_MAX (256 + 2 * STOCK_ID_MAX)

/* Writes event as one JSON object into out (FLOW_EVENT_JSON_MAX bytes):
 * {"seq","part","event","sku","before","after"[,"threshold"]} (threshold
 * on below_threshold only). Returns its length. */
size_t flow_event_json(const flow_event *event, char *out);

/* "sold_out", "back_in_stock", "below_threshold", "change". */
const char *flow_event_kind_name(flow_event_kind kind);

#endif /* STOCK_BACKEND_FLOW_EVENTS_H */
