/*
 * intake.h -- stockintake's consumer (docs/intake.md): pulls bounded
 * batches of order, deduction and refund requests from a NATS JetStream
 * stream, applies them to a store through libstock's batch API, publishes
 * each result to a results stream (and to the reply subject a message
 * names), sends what can never apply to a dead-letter stream with its
 * reason, and acknowledges a message only once its result is durable in
 * the store and confirmed by the broker.
 */
#ifndef STOCK_INTAKE_H
#define STOCK_INTAKE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#define INTAKE_BATCH_MAX 4096            /* messages in one pull */
#define INTAKE_PENDING_MAX 1000000       /* unacknowledged messages */
#define INTAKE_MESSAGE_BYTES_MAX (1 << 20)   /* NATS's default max_payload */
#define INTAKE_PREFIX_MAX 64             /* bytes of the subject prefix */
#define INTAKE_ACK_WAIT_S_MAX 3600
#define INTAKE_REPLICAS_MAX 5            /* JetStream's limit */
#define INTAKE_BROKER_MAX 1024           /* bytes of the --broker list */
#define INTAKE_SERVERS_MAX 16            /* URLs in the --broker list */

/* The command line's settings (main.c fills them; see usage()). */
typedef struct intake_options {
    const char *broker;        /* NATS URL(s), comma-separated */
    const char *store;         /* any libstock URI */
    const char *prefix;        /* subjects PREFIX.intake.*, .results.*, .dead.* */
    const char *consumer;      /* durable consumer name */
    uint32_t batch;            /* messages per pull, 1..INTAKE_BATCH_MAX */
    uint32_t max_pending;      /* the consumer's max unacknowledged messages */
    uint32_t ack_wait_s;       /* redelivery of an unacknowledged message after */
    uint32_t max_message_bytes;/* bigger requests are dead letters */
    uint32_t replicas;         /* of the streams it creates */
} intake_options;

/* Runs the consumer until *stop becomes non-zero (a signal handler sets
 * it) or something fails that a restart must fix (the broker cannot be
 * reached or set up). Returns the process's exit status: 0 after a stop,
 * 1 on failure (said on stderr). */
int intake_run(const intake_options *options, volatile sig_atomic_t *stop);

#endif /* STOCK_INTAKE_H */
