/*
 * persister.h -- stockd --persist-to: the persister of a redis store's
 * outbox (backend/persist.h, docs/persister.md) on a thread of its own,
 * never the event loop's. Its log lines join stockd's ("persister: ..."),
 * and its status feeds INFO and /metrics.
 */
#ifndef STOCK_SERVER_PERSISTER_H
#define STOCK_SERVER_PERSISTER_H

#include <stdbool.h>

#include "backend/persist.h"
#include "server/config.h"

typedef struct server_persister server_persister;

/* Starts the persister of cfg->store into cfg->persist_to. NULL (the
 * reason logged) when the options are refused or no thread starts. */
server_persister *persister_start(const config *cfg);

/* Asks the thread to stop after its current cycle, waits for it, frees.
 * NULL does nothing. */
void persister_stop(server_persister *sp);

/* Its status (persist.h); zeros for NULL (no persister). Any thread. */
void persister_status(server_persister *sp, persist_status *status);

#endif /* STOCK_SERVER_PERSISTER_H */
