/*
 * pull.h -- reading a durable JetStream pull consumer through a plain NATS
 * subscription (docs/intake.md, "Pulling").
 *
 * libnats 3.4 (Debian 12's) has natsSubscription_Fetch for this, but its
 * fetch writes past the array it allocates when a fetch starts with half a batch
 * or more already delivered to the subscription (late answers
 * to an earlier pull, which a broker restart makes common): it asks the
 * server for the rest, then waits for a count it has already passed, and
 * stores every message that comes meanwhile. So stockintake asks for
 * messages itself, on its own inbox, and takes them one at a time, never
 * more than the batch.
 *
 * One thread uses a pull (stockintake's loop); the connection's own
 * threads only deliver into its subscription.
 */
#ifndef STOCK_INTAKE_PULL_H
#define STOCK_INTAKE_PULL_H

#include <stdint.h>

#include <nats/nats.h>

#define PULL_ERROR_MAX 192

typedef struct pull pull;

/* Subscribes to a new inbox of nc, to pull from the durable consumer
 * CONSUMER of STREAM (which must exist: a pull consumer). The inbox lives
 * across reconnections (the client subscribes again). Returns NATS_OK and
 * *out, or the error (nothing to free). */
natsStatus pull_open(pull **out, natsConnection *nc, const char *stream, const char *consumer);

/* Takes up to max messages into msgs (the caller owns them then, and
 * destroys each with natsMsg_Destroy): first those already delivered to
 * the inbox, then what the stream holds, or, if it holds nothing, what
 * comes first within wait_ms. Returns NATS_OK with *count > 0 (an error met
 * after some messages is left for the next call to meet); NATS_TIMEOUT
 * when nothing came; NATS_ERR when the broker refused the pull (a status
 * such as 409: pull_error says it); another status (no responders, a
 * closed connection) from libnats; all with *count == 0. */
natsStatus pull_fetch(pull *p, natsMsg **msgs, int max, int64_t wait_ms, int *count);

/* What the broker said when pull_fetch returned NATS_ERR ("" otherwise). */
const char *pull_error(const pull *p);

/* Acknowledges msg (one of pull_fetch's), or asks for it again after
 * delay_ms; neither waits for the broker. */
natsStatus pull_ack(pull *p, natsMsg *msg);
natsStatus pull_nak(pull *p, natsMsg *msg, int64_t delay_ms);

/* Unsubscribes and frees p; NULL is ignored. */
void pull_close(pull *p);

#endif /* STOCK_INTAKE_PULL_H */
