/*
 * stockevents.h -- the parts of stockevents, the publisher of the stock
 * events of a store's durable flow (an embedded store's flow log, a
 * postgres store's moves, a redis store's outbox) to NATS JetStream
 * (docs/events.md): main.c reads the command line, publish.c follows the
 * flow (backend/flow_events.h) and publishes.
 */
#ifndef STOCKEVENTS_H
#define STOCKEVENTS_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/thresholds.h"
#include "stock.h"

#define EVENTS_BROKER_DEFAULT "nats://127.0.0.1:4222"
#define EVENTS_PREFIX_MAX 64
#define EVENTS_REPLICAS_MAX 5
#define EVENTS_POLL_MS_DEFAULT 10
#define EVENTS_POLL_MS_MAX 10000

typedef struct events_options {
    const char *data;            /* the embedded store's data folder, or NULL */
    const char *store;           /* else a postgres:// or redis:// store */
    const char *broker;          /* NATS URL(s), comma-separated */
    const char *prefix;          /* subjects PREFIX.events.<kind>, stream PREFIX_EVENTS */
    const char *thresholds;      /* the thresholds file; NULL: none */
    bool every_change;
    int replicas;
    int poll_ms;                 /* between looks at a log with nothing new */
} events_options;

/* --------------------------------------------------------------- publish */

/* Publishes until *stop; returns the exit status (0 after a stop, 1 when
 * the broker or the data folder cannot be used). */
int events_run(const events_options *options, volatile sig_atomic_t *stop);

#endif /* STOCKEVENTS_H */
