/*
 * pull.c -- a durable JetStream pull consumer read through a plain
 * subscription (see pull.h for why not natsSubscription_Fetch).
 *
 * The protocol is JetStream's documented one: a request to
 * $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer> whose reply subject is our
 * inbox, with {"batch": N} and either "no_wait" (answer now) or "expires"
 * (hold the request that long); the server delivers up to N messages to the
 * inbox, each with a reply subject under $JS.ACK. (where "+ACK" or "-NAK"
 * goes), and ends a request that it did not fill with a status message
 * (no body, a Status header: 404 nothing there, 408 expired, 409 another
 * reason); 100 is a heartbeat. A status can also be a late end of an
 * earlier request, so it only stops the current wait: the worst it does is
 * a short batch.
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

struct pull {
    natsConnection *nc;
    natsSubscription *sub;
    natsInbox *inbox;
    char next_subject[PULL_SUBJECT_MAX];
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
    PULLED_END          /* a pull request's end: 404, 408, 409 */
} pulled;

static pulled pulled_kind(natsMsg *msg)
{
    const char *reply = natsMsg_GetReply(msg);
    if (reply != NULL && strncmp(reply, PULL_ACK_PREFIX, strlen(PULL_ACK_PREFIX)) == 0)
        return PULLED_MESSAGE;
    const char *status = NULL;
    if (natsMsgHeader_Get(msg, "Status", &status) == NATS_OK && status != NULL && strcmp(status, "100") == 0)
        return PULLED_HEARTBEAT;
    return PULLED_END;
}

/* Asks for up to batch messages: now (no_wait), or held up to wait_ms. */
static natsStatus request_more(pull *p, int batch, int64_t wait_ms)
{
    char body[96];
    if (wait_ms <= 0)
        snprintf(body, sizeof body, "{\"batch\":%d,\"no_wait\":true}", batch);
    else
        snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%" PRId64 "}", batch, wait_ms * 1000000);
    return natsConnection_PublishRequestString(p->nc, p->next_subject, p->inbox, body);
}

/* Takes messages from the inbox into msgs until *count reaches max, the
 * inbox is empty at the deadline (NATS_TIMEOUT; deadline 0: empty now), or
 * a request's end comes (NATS_OK). */
static natsStatus take(pull *p, natsMsg **msgs, int max, int *count, int64_t deadline_us)
{
    while (*count < max) {
        int64_t left_ms = deadline_us > 0 ? (deadline_us - clock_now_us(CLOCK_MONOTONIC)) / 1000 : 0;
        natsMsg *msg = NULL;
        natsStatus status = natsSubscription_NextMsg(&msg, p->sub, left_ms > 0 ? left_ms : 0);
        if (status != NATS_OK)
            return status;
        switch (pulled_kind(msg)) {
        case PULLED_MESSAGE:
            msgs[(*count)++] = msg;
            break;
        case PULLED_HEARTBEAT:
            natsMsg_Destroy(msg);
            break;
        case PULLED_END:
            natsMsg_Destroy(msg);
            return NATS_OK;
        }
    }
    return NATS_OK;
}

natsStatus pull_fetch(pull *p, natsMsg **msgs, int max, int64_t wait_ms, int *count)
{
    *count = 0;
    int64_t deadline_us = clock_now_us(CLOCK_MONOTONIC) + wait_ms * 1000;
    /* Late answers to an earlier request first; an end among them is old. */
    natsStatus status = NATS_OK;
    while (status == NATS_OK && *count < max)
        status = take(p, msgs, max, count, 0);
    if (status == NATS_TIMEOUT)
        status = NATS_OK;
    /* What the stream holds now, then, if that was nothing, what comes
     * within the wait. */
    if (status == NATS_OK && *count < max) {
        status = request_more(p, max - *count, 0);
        if (status == NATS_OK)
            status = take(p, msgs, max, count, deadline_us);
    }
    int64_t hold_ms = (deadline_us - clock_now_us(CLOCK_MONOTONIC)) / 1000 - PULL_EXPIRES_MARGIN_MS;
    if (status == NATS_OK && *count == 0 && hold_ms > 0) {
        status = request_more(p, max, hold_ms);
        if (status == NATS_OK)
            status = take(p, msgs, max, count, deadline_us);
    }
    if (*count > 0)
        return NATS_OK;   /* an error met after them comes again at the next fetch */
    return status == NATS_OK ? NATS_TIMEOUT : status;
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
