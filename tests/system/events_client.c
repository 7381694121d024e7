/*
 * events_client.c -- the broker side of the events suite
 * (tests/suites/72-events.sh): reads what stockevents published, through
 * the NATS C client.
 *
 *   events_client dump URL STREAM
 *       prints every message of STREAM in stream order, one per line:
 *       "<Nats-Msg-Id> <JSON body>"
 *   events_client wait URL STREAM COUNT [PID]
 *       returns as soon as STREAM holds COUNT messages or more (its last
 *       sequence), looking every millisecond, for at most 60 s (then exit
 *       1): the moment to strike the broker while the publisher is still
 *       publishing (72-events). With PID, the publisher: sent SIGCONT once
 *       this client is connected and SIGSTOP the moment COUNT is reached,
 *       so that it is frozen with its backlog half published however fast
 *       it publishes (a script starting this client and then stopping the
 *       publisher gives it the client's start-up time and more)
 *   events_client count URL STREAM
 *       prints how many messages STREAM has stored (its last sequence)
 *   events_client latency URL PORT COUNT TOKEN [PASS]
 *       the event latency (bench/events.sh): COUNT times, sets SKU
 *       TOKEN-<i> to 1 through the stockd at 127.0.0.1:PORT (RESP), deducts
 *       it (line TOKEN-<i>-PASS, PASS "l" by default: another PASS sells
 *       the same SKUs out again), and waits for its sold_out event on
 *       stock.events.sold_out;
 *       prints "latency_ms P50 P99 MAX": from the deduction's reply (the
 *       change durable and acknowledged) to the event's arrival from the
 *       broker, which delivers it once stored
 *
 * Exits 0 on success, 1 when the broker fails, 2 on bad usage.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <nats/nats.h>

#define LATENCY_COUNT_MAX 1000000
#define LATENCY_WAIT_MS 10000        /* for one event before giving up */
#define WAIT_COUNT_MS 60000          /* for a stream to fill */

static int failed(natsStatus status, const char *what)
{
    fprintf(stderr, "events_client: %s: %s\n", what, natsStatus_GetText(status));
    return 1;
}

static int dump(jsCtx *js, const char *stream)
{
    jsStreamInfo *info = NULL;
    natsStatus status = js_GetStreamInfo(&info, js, stream, NULL, NULL);
    if (status != NATS_OK)
        return failed(status, "stream info");
    uint64_t first = info->State.FirstSeq, last = info->State.LastSeq;
    jsStreamInfo_Destroy(info);
    for (uint64_t seq = first; seq != 0 && seq <= last; seq++) {
        natsMsg *msg = NULL;
        status = js_GetMsg(&msg, js, stream, seq, NULL, NULL);
        if (status == NATS_NOT_FOUND)
            continue;   /* deleted */
        if (status != NATS_OK)
            return failed(status, "get message");
        const char *id = NULL;
        if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK)
            id = "-";
        printf("%s %.*s\n", id, natsMsg_GetDataLength(msg), natsMsg_GetData(msg));
        natsMsg_Destroy(msg);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int print_count(jsCtx *js, const char *stream)
{
    jsStreamInfo *info = NULL;
    natsStatus status = js_GetStreamInfo(&info, js, stream, NULL, NULL);
    if (status != NATS_OK)
        return failed(status, "stream info");
    printf("%" PRIu64 "\n", info->State.LastSeq);
    jsStreamInfo_Destroy(info);
    return 0;
}

static int wait_count(jsCtx *js, const char *stream, long count, pid_t publisher)
{
    if (publisher > 0 && kill(publisher, SIGCONT) != 0) {
        perror("events_client: SIGCONT to the publisher");
        return 1;
    }
    double deadline = now_ms() + WAIT_COUNT_MS;
    while (now_ms() < deadline) {
        jsStreamInfo *info = NULL;
        natsStatus status = js_GetStreamInfo(&info, js, stream, NULL, NULL);
        if (status != NATS_OK)
            return failed(status, "stream info");
        bool reached = info->State.LastSeq >= (uint64_t)count;
        jsStreamInfo_Destroy(info);
        if (reached) {
            if (publisher > 0 && kill(publisher, SIGSTOP) != 0) {
                perror("events_client: SIGSTOP to the publisher");
                return 1;
            }
            return 0;
        }
        nats_Sleep(1);
    }
    fprintf(stderr, "events_client: %s did not reach %ld messages\n", stream, count);
    return 1;
}

/* Waits for the sold_out event of sku; false after LATENCY_WAIT_MS. */
static bool wait_sold_out(natsSubscription *sub, const char *sku)
{
    for (;;) {
        natsMsg *msg = NULL;
        if (natsSubscription_NextMsg(&msg, sub, LATENCY_WAIT_MS) != NATS_OK)
            return false;
        json_t *body = json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, NULL);
        const char *got = json_string_value(json_object_get(body, "sku"));
        bool match = got != NULL && strcmp(got, sku) == 0;
        json_decref(body);
        natsMsg_Destroy(msg);
        if (match)
            return true;
    }
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int latency(natsConnection *nc, int port, long count, const char *token,
                   const char *pass)
{
    natsSubscription *sub = NULL;
    natsStatus status = natsConnection_SubscribeSync(&sub, nc, "stock.events.sold_out");
    if (status != NATS_OK)
        return failed(status, "subscribe");
    redisContext *redis = redisConnect("127.0.0.1", port);
    double *samples = calloc((size_t)count, sizeof *samples);
    int code = redis == NULL || redis->err || samples == NULL ? 1 : 0;
    for (long i = 0; code == 0 && i < count; i++) {
        char sku[64];
        snprintf(sku, sizeof sku, "%s-%ld", token, i);
        redisReply *set = redisCommand(redis, "SETSTOCK %s 1", sku);
        redisReply *deduct = set != NULL ? redisCommand(redis, "DEDUCT %s-%s %s 1", sku, pass, sku) : NULL;
        double acknowledged = now_ms();
        if (deduct == NULL || deduct->type != REDIS_REPLY_INTEGER || deduct->integer != 0)
            code = 1;
        else if (!wait_sold_out(sub, sku))
            code = 1;
        else
            samples[i] = now_ms() - acknowledged;
        freeReplyObject(set);
        freeReplyObject(deduct);
        if (code != 0)
            fprintf(stderr, "events_client: no sold_out event for %s\n", sku);
    }
    if (code == 0) {
        qsort(samples, (size_t)count, sizeof *samples, compare_double);
        printf("latency_ms %.3f %.3f %.3f\n", samples[count / 2], samples[count * 99 / 100],
               samples[count - 1]);
    }
    free(samples);
    if (redis != NULL)
        redisFree(redis);
    natsSubscription_Destroy(sub);
    return code;
}

int main(int argc, char **argv)
{
    bool dump_mode = argc == 4 && strcmp(argv[1], "dump") == 0;
    bool latency_mode = (argc == 6 || argc == 7) && strcmp(argv[1], "latency") == 0;
    bool wait_mode = (argc == 5 || argc == 6) && strcmp(argv[1], "wait") == 0;
    bool count_mode = argc == 4 && strcmp(argv[1], "count") == 0;
    long count = latency_mode || wait_mode ? strtol(argv[4], NULL, 10) : 0;
    int port = latency_mode ? atoi(argv[3]) : 0;
    long publisher = wait_mode && argc == 6 ? strtol(argv[5], NULL, 10) : 0;
    if ((!dump_mode && !latency_mode && !wait_mode && !count_mode) ||
        (!dump_mode && !count_mode && (count < 1 || count > LATENCY_COUNT_MAX)) ||
        (latency_mode && (port < 1 || port > 65535)) ||
        (wait_mode && argc == 6 && (publisher < 2 || publisher > INT32_MAX))) {
        fprintf(stderr, "usage: events_client dump URL STREAM\n"
                        "       events_client wait URL STREAM COUNT [PID]\n"
                        "       events_client count URL STREAM\n"
                        "       events_client latency URL PORT COUNT TOKEN [PASS]\n");
        return 2;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus status = natsConnection_ConnectTo(&nc, argv[2]);
    if (status == NATS_OK)
        status = natsConnection_JetStream(&js, nc, NULL);
    int code = status != NATS_OK ? failed(status, argv[2])
               : dump_mode ? dump(js, argv[3])
               : wait_mode ? wait_count(js, argv[3], count, (pid_t)publisher)
               : count_mode ? print_count(js, argv[3])
                           : latency(nc, port, count, argv[5], argc == 7 ? argv[6] : "l");
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return code;
}
