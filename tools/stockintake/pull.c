/*
 * pull.c -- a durable JetStream pull consumer read through a plain
 * subscription (see pull.h for why not natsSubscription_Fetch).
 *
 * The protocol is JetStream's documented one: a request to
 * $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer> whose reply subject is our
 * inbox, with {"batch": N, "expires": ns, "no_wait": true}: the server
 * holds it until the stream has a message for it (at most expires), then
 * delivers what there is, up to N, each with a reply subject under $JS.ACK.
 * (where "+ACK" or "-NAK" goes), and ends a request it did not fill with a
 * status message (no body, a Status header: 404 or 408). So one message
 * comes through at once, and a request always ends (without expires, a
 * no_wait request stopped by --max-pending would stay on the server; without
 * no_wait, a held request waits to be filled). 100 is a heartbeat; any
 * other status (409: the consumer's limits, a leader change) is an error,
 * said with its description. An end can be the late end of an earlier
 * request, so it only stops the current wait: the worst it does is a
 * short batch.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "pull.h"

#define PULL_ACK_PREFIX "$JS.ACK."
#define PULL_NEXT_FORMAT "$JS.API.CONSUMER.MSG.NEXT.%s.%s"
#define PULL_SUBJECT_MAX 512
#define PULL_EXPIRES_MARGIN_MS 10   /* the server's hold ends before our wait */
#define PULL_EXPIRES_MIN_MS 1

struct pull {
    natsConnection *nc;
    natsSubscription *sub;
    natsInbox *inbox;
    char next_subject[PULL_SUBJECT_MAX];
    char error[PULL_ERROR_MAX];
};

natsStatus pull_open(pull **out, natsConnection *nc, const char *stream, const char *consumer)
{
    *out = NULL;
    pull *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NATS_NO_MEMORY;
    p->nc = nc;
    int length = snprintf(p->next_subject, sizeof p->next_subject, PULL_NEXT_FORMAT, stream, consumer);
    natsStatus status = length > 0 && (size_t)length < sizeof p->next_subject ? NATS_OK : NATS_INVALID_ARG;
    if (status == NATS_OK)
        status = natsInbox_Create(&p->inbox);
    if (status == NATS_OK)
        status = natsConnection_SubscribeSync(&p->sub, nc, p->inbox);
    if (status != NATS_OK) {
        pull_close(p);
        return status;
    }
    *out = p;
    return NATS_OK;
}

void pull_close(pull *p)
{
    if (p == NULL)
        return;
    if (p->sub != NULL)
        natsSubscription_Unsubscribe(p->sub);
    natsSubscription_Destroy(p->sub);
    natsInbox_Destroy(p->inbox);
    free(p);
}

/* What one message of the inbox is. */
typedef enum pulled {
    PULLED_MESSAGE,     /* a message of the stream, to acknowledge */
    PULLED_HEARTBEAT,   /* status 100: nothing */
    PULLED_END,         /* a pull request's end: 404, 408 */
    PULLED_ERROR        /* any other status: p->error says it */
} pulled;

static pulled pulled_kind(pull *p, natsMsg *msg)
{
    const char *reply = natsMsg_GetReply(msg);
    if (reply != NULL && strncmp(reply, PULL_ACK_PREFIX, strlen(PULL_ACK_PREFIX)) == 0)
        return PULLED_MESSAGE;
    const char *status = NULL, *description = NULL;
    if (natsMsgHeader_Get(msg, "Status", &status) != NATS_OK || status == NULL)
        status = "none";
    if (strcmp(status, "100") == 0)
        return PULLED_HEARTBEAT;
    if (strcmp(status, "404") == 0 || strcmp(status, "408") == 0)
        return PULLED_END;
    if (natsMsgHeader_Get(msg, "Description", &description) != NATS_OK || description == NULL)
        description = "";
    snprintf(p->error, sizeof p->error, "the broker answered a pull with status %.8s %.120s", status, description);
    return PULLED_ERROR;
}

/* Asks for up to batch messages, held up to hold_ms for the first. */
static natsStatus request_more(pull *p, int batch, int64_t hold_ms)
{
    char body[96];
    snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%" PRId64 ",\"no_wait\":true}", batch,
             hold_ms * 1000000);
    return natsConnection_PublishRequestString(p->nc, p->next_subject, p->inbox, body);
}

/* Takes messages from the inbox into msgs until *count reaches max, the
 * inbox is empty at the deadline (NATS_TIMEOUT; deadline 0: empty now), or
 * a request's end comes (NATS_OK), or an error status (NATS_ERR). */
static natsStatus take(pull *p, natsMsg **msgs, int max, int *count, int64_t deadline_us)
{
    while (*count < max) {
        int64_t left_ms = deadline_us > 0 ? (deadline_us - clock_now_us(CLOCK_MONOTONIC)) / 1000 : 0;
        natsMsg *msg = NULL;
        natsStatus status = natsSubscription_NextMsg(&msg, p->sub, left_ms > 0 ? left_ms : 0);
        if (status != NATS_OK)
            return status;
        pulled kind = pulled_kind(p, msg);
        if (kind == PULLED_MESSAGE) {
            msgs[(*count)++] = msg;
            continue;
        }
        natsMsg_Destroy(msg);
        if (kind == PULLED_END)
            return NATS_OK;
        if (kind == PULLED_ERROR)
            return NATS_ERR;
    }
    return NATS_OK;
}

natsStatus pull_fetch(pull *p, natsMsg **msgs, int max, int64_t wait_ms, int *count)
{
    *count = 0;
    p->error[0] = '\0';
    int64_t deadline_us = clock_now_us(CLOCK_MONOTONIC) + wait_ms * 1000;
    /* Late answers to an earlier request first; an end among them is old. */
    natsStatus status = NATS_OK;
    while (status == NATS_OK && *count < max)
        status = take(p, msgs, max, count, 0);
    if (status == NATS_TIMEOUT)
        status = NATS_OK;
    if (status == NATS_OK && *count < max) {
        int64_t hold_ms = wait_ms - PULL_EXPIRES_MARGIN_MS;
        status = request_more(p, max - *count, hold_ms > PULL_EXPIRES_MIN_MS ? hold_ms : PULL_EXPIRES_MIN_MS);
        if (status == NATS_OK)
            status = take(p, msgs, max, count, deadline_us);
    }
    if (*count > 0)
        return NATS_OK;   /* an error met after them comes again at the next fetch */
    return status == NATS_OK ? NATS_TIMEOUT : status;
}

const char *pull_error(const pull *p)
{
    return p->error;
}

natsStatus pull_ack(pull *p, natsMsg *msg)
{
    return natsConnection_PublishString(p->nc, natsMsg_GetReply(msg), "+ACK");
}

natsStatus pull_nak(pull *p, natsMsg *msg, int64_t delay_ms)
{
    char body[64];
    snprintf(body, sizeof body, "-NAK {\"delay\":%" PRId64 "}", delay_ms * 1000000);
    return natsConnection_PublishString(p->nc, natsMsg_GetReply(msg), body);
}
