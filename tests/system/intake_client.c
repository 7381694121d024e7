/*
 * intake_client.c -- the broker side of the intake suites
 * (tests/suites/70-nats.sh): publishes requests to stockintake's stream and
 * reads back what it published, through the NATS C client.
 *
 *   intake_client publish URL COUNT SKUS TOKEN LOG
 *       COUNT one-line orders TOKEN-oN (line TOKEN-oN-1, SKU S<N mod SKUS>,
 *       qty 1) to stock.intake.orders, each with its order id as
 *       Nats-Msg-Id; "try O line sku 1" per order to LOG (the format of
 *       server_crash_check); prints the publish rate
 *   intake_client bad URL
 *       one message of each kind that can never apply; prints how many
 *   intake_client results URL LOG
 *       reads the whole STOCK_RESULTS stream: "ack O line sku qty available"
 *       per line of each successful order to LOG; prints "results N" and the
 *       count of each code, "duplicates D", the requests (by sequence) with
 *       more than one result, and "latency_ms P50 P99 MAX SPAN_S": from the
 *       broker storing a request to its storing the result, and from the
 *       first request to the last result
 *   intake_client dead URL
 *       prints each dead letter of STOCK_DEAD as "subject<TAB>reason"
 *   intake_client count URL STREAM
 *       prints the messages STREAM holds
 *   intake_client await URL STREAM N
 *       returns once STREAM holds more than N messages (polling every
 *       10 ms: one process, so a suite can act within milliseconds of it);
 *       exits 1 after 10 s without
 *   intake_client pending URL
 *       prints the messages of STOCK_INTAKE that stockintake's consumer has
 *       still to deliver or to see acknowledged, and its settings:
 *       "pending N unacknowledged N max_ack_pending N ack_wait_s N"
 *
 * Exits 0 on success, 1 when the broker fails, 2 on bad usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nats/nats.h>

#include "stockintake/pull.h"

#define CLIENT_ID_MAX 64
#define CLIENT_FETCH_BATCH 1024
#define CLIENT_FETCH_WAIT_MS 2000
#define CLIENT_AWAIT_POLL_MS 10
#define CLIENT_AWAIT_MS 10000
#define CLIENT_CONSUMER_IDLE_NS (60 * 1000000000LL)   /* the server drops a reader left behind */
#define CLIENT_PUBLISH_WINDOW 4096   /* async publishes before waiting for their acks */
#define CLIENT_PUBLISH_WAIT_MS 30000
#define CLIENT_OVERSIZE_BYTES (100 * 1024)
#define CLIENT_SEQ_MAX (1u << 24)    /* results tracked for duplicates */
#define CLIENT_TRIES 30              /* of a JetStream call that times out: a
                                        cluster re-electing after a node loss */

static long publish_failures;   /* counted by the NATS library's thread */

static void publish_failed(jsCtx *js, jsPubAckErr *error, void *closure)
{
    (void)js;
    (void)closure;
    __atomic_add_fetch(&publish_failures, 1, __ATOMIC_RELAXED);
    fprintf(stderr, "intake_client: publish to %s failed: %s\n", natsMsg_GetSubject(error->Msg),
            error->ErrText != NULL ? error->ErrText : natsStatus_GetText(error->Err));
}

static bool failed(natsStatus status, const char *what)
{
    if (status == NATS_OK)
        return false;
    fprintf(stderr, "intake_client: %s: %s\n", what, natsStatus_GetText(status));
    return true;
}

static bool connect_js(const char *url, natsConnection **nc, jsCtx **js)
{
    if (failed(natsConnection_ConnectTo(nc, url), url))
        return false;
    jsOptions options;
    jsOptions_Init(&options);
    options.PublishAsync.MaxPending = CLIENT_PUBLISH_WINDOW;
    options.PublishAsync.ErrHandler = publish_failed;
    return !failed(natsConnection_JetStream(js, *nc, &options), "JetStream");
}

static bool publish(jsCtx *js, const char *subject, const char *data, size_t len, const char *msg_id)
{
    natsMsg *msg = NULL;
    natsStatus status = natsMsg_Create(&msg, subject, NULL, data, (int)len);
    if (status == NATS_OK && msg_id != NULL)
        status = natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id);
    if (status == NATS_OK)
        status = js_PublishMsgAsync(js, &msg, NULL);
    natsMsg_Destroy(msg);
    return !failed(status, subject);
}

static bool wait_published(jsCtx *js)
{
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MaxWait = CLIENT_PUBLISH_WAIT_MS;
    return !failed(js_PublishAsyncComplete(js, &options), "publish acks") &&
           __atomic_load_n(&publish_failures, __ATOMIC_RELAXED) == 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int publish_orders(jsCtx *js, long count, long skus, const char *token, FILE *log)
{
    double start = now_s();
    for (long n = 0; n < count; n++) {
        char order[CLIENT_ID_MAX], body[256];
        snprintf(order, sizeof order, "%s-o%ld", token, n);
        int len = snprintf(body, sizeof body,
                           "{\"order_id\":\"%s\",\"lines\":[{\"line_id\":\"%s-1\",\"sku\":\"S%ld\",\"qty\":1}]}",
                           order, order, n % skus);
        fprintf(log, "try O %s-1 S%ld 1\n", order, n % skus);
        if (!publish(js, "stock.intake.orders", body, (size_t)len, order))
            return 1;
        if ((n + 1) % CLIENT_PUBLISH_WINDOW == 0 && !wait_published(js))
            return 1;
    }
    if (!wait_published(js))
        return 1;
    double seconds = now_s() - start;
    printf("published %ld orders in %.2f s (%.0f/s)\n", count, seconds, (double)count / seconds);
    return 0;
}

/* One message of each kind that can never apply: the suite expects each
 * reason in STOCK_DEAD. */
static int publish_bad(jsCtx *js)
{
    static const struct { const char *subject, *body; } bad[] = {
        {"stock.intake.orders", "this is not JSON"},
        {"stock.intake.orders", "[1, 2, 3]"},
        {"stock.intake.orders", "{\"order_id\":\"bad-missing\"}"},
        {"stock.intake.orders", "{\"order_id\":7,\"lines\":[{\"line_id\":\"bad-t-1\",\"sku\":\"S0\",\"qty\":1}]}"},
        {"stock.intake.orders", "{\"order_id\":\"bad-q\",\"lines\":[{\"line_id\":\"bad-q-1\",\"sku\":\"S0\",\"qty\":\"1\"}]}"},
        {"stock.intake.orders", "{\"order_id\":\"bad id\",\"lines\":[{\"line_id\":\"bad-s-1\",\"sku\":\"S0\",\"qty\":1}]}"},
        {"stock.intake.orders", "{\"order_id\":\"bad-f\",\"colour\":\"blue\",\"lines\":[]}"},
        {"stock.intake.refunds", "{\"refund_id\":\"bad-r\",\"line_id\":\"\",\"qty\":1}"},
        {"stock.intake.teleport", "{\"order_id\":\"bad-k\"}"},
        {"stock.intake.orders", ""},
    };
    size_t count = sizeof bad / sizeof bad[0];
    for (size_t i = 0; i < count; i++)
        if (!publish(js, bad[i].subject, bad[i].body, strlen(bad[i].body), NULL))
            return 1;
    char *oversize = malloc(CLIENT_OVERSIZE_BYTES);
    if (oversize == NULL)
        return 1;
    int len = snprintf(oversize, CLIENT_OVERSIZE_BYTES, "{\"order_id\":\"bad-big\",\"lines\":[],\"pad\":\"");
    memset(oversize + len, 'x', CLIENT_OVERSIZE_BYTES - (size_t)len - 2);
    memcpy(oversize + CLIENT_OVERSIZE_BYTES - 2, "\"}", 2);
    bool ok = publish(js, "stock.intake.orders", oversize, CLIENT_OVERSIZE_BYTES, NULL);
    free(oversize);
    if (!ok || !wait_published(js))
        return 1;
    printf("%zu\n", count + 1);
    return 0;
}

/* True for the failures a cluster that lost a node answers while it
 * elects new leaders. */
static bool transient(natsStatus status)
{
    return status == NATS_TIMEOUT || status == NATS_NO_RESPONDERS;
}

static uint64_t stream_count(jsCtx *js, const char *stream)
{
    jsStreamInfo *info = NULL;
    natsStatus status = NATS_TIMEOUT;
    for (int try = 0; try < CLIENT_TRIES && transient(status); try++)
        status = js_GetStreamInfo(&info, js, stream, NULL, NULL);
    if (failed(status, stream))
        exit(1);
    uint64_t count = info->State.Msgs;
    jsStreamInfo_Destroy(info);
    return count;
}

static int await_count(jsCtx *js, const char *stream, uint64_t above)
{
    for (int waited = 0; waited < CLIENT_AWAIT_MS; waited += CLIENT_AWAIT_POLL_MS) {
        if (stream_count(js, stream) > above)
            return 0;
        nats_Sleep(CLIENT_AWAIT_POLL_MS);
    }
    fprintf(stderr, "intake_client: %s holds no more than %" PRIu64 " after %d ms\n", stream, above,
            CLIENT_AWAIT_MS);
    return 1;
}

typedef void (*message_fn)(natsMsg *msg, void *user);

/* Calls fn on every message STREAM holds now, in order, through an
 * ephemeral consumer that needs no acks, pulled as stockintake pulls
 * (tools/stockintake/pull.h: not libnats's fetch, which can write past its
 * array). */
static bool read_stream(natsConnection *nc, jsCtx *js, const char *stream, const char *subject,
                        message_fn fn, void *user)
{
    uint64_t want = stream_count(js, stream), got = 0;
    jsConsumerConfig config;
    jsConsumerConfig_Init(&config);
    config.FilterSubject = subject;
    config.AckPolicy = js_AckNone;
    config.InactiveThreshold = CLIENT_CONSUMER_IDLE_NS;
    jsConsumerInfo *info = NULL;
    natsStatus status = NATS_TIMEOUT;
    for (int try = 0; try < CLIENT_TRIES && transient(status); try++)
        status = js_AddConsumer(&info, js, stream, &config, NULL, NULL);
    if (failed(status, "consumer"))
        return false;
    pull *p = NULL;
    status = pull_open(&p, nc, stream, info->Name);
    natsMsg **msgs = calloc(CLIENT_FETCH_BATCH, sizeof *msgs);
    bool ok = !failed(status, "subscribe") && msgs != NULL;
    for (int quiet = 0; ok && got < want;) {
        int count = 0;
        status = pull_fetch(p, msgs, CLIENT_FETCH_BATCH, CLIENT_FETCH_WAIT_MS, &count);
        if (status == NATS_TIMEOUT && ++quiet < CLIENT_TRIES)
            continue;
        quiet = 0;
        if (status == NATS_ERR)
            fprintf(stderr, "intake_client: %s\n", pull_error(p));
        ok = status != NATS_ERR && !failed(status, "fetch");
        for (int i = 0; i < count; i++) {
            fn(msgs[i], user);
            natsMsg_Destroy(msgs[i]);
        }
        got += (uint64_t)count;
    }
    free(msgs);
    pull_close(p);
    js_DeleteConsumer(js, stream, info->Name, NULL, NULL);
    jsConsumerInfo_Destroy(info);
    return ok;
}

typedef struct tally {
    FILE *log;
    uint64_t results, duplicates;
    json_t *codes;          /* code word -> count */
    unsigned char *seen;    /* by request sequence */
    int64_t *latency_us;    /* one per result */
    int64_t first_queued_us, last_result_us;
} tally;

static void log_order_lines(FILE *log, json_t *body)
{
    size_t i;
    json_t *line;
    json_array_foreach(json_object_get(body, "lines"), i, line)
        fprintf(log, "ack O %s %s %" JSON_INTEGER_FORMAT " %" JSON_INTEGER_FORMAT "\n",
                json_string_value(json_object_get(line, "line_id")),
                json_string_value(json_object_get(line, "sku")),
                json_integer_value(json_object_get(line, "qty")),
                json_integer_value(json_object_get(line, "available")));
}

static void count_result(natsMsg *msg, void *user)
{
    tally *t = user;
    json_t *result = json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, NULL);
    const char *code = json_string_value(json_object_get(result, "code"));
    json_int_t seq = json_integer_value(json_object_get(result, "seq"));
    if (code == NULL || seq <= 0 || seq >= (json_int_t)CLIENT_SEQ_MAX) {
        fprintf(stderr, "intake_client: a malformed result: %.*s\n", natsMsg_GetDataLength(msg),
                natsMsg_GetData(msg));
        exit(1);
    }
    jsMsgMetaData *meta = NULL;
    if (t->results < CLIENT_SEQ_MAX && natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        int64_t queued_us = json_integer_value(json_object_get(result, "queued_us"));
        int64_t stored_us = meta->Timestamp / 1000;
        t->latency_us[t->results] = stored_us - queued_us;
        if (t->first_queued_us == 0 || queued_us < t->first_queued_us)
            t->first_queued_us = queued_us;
        if (stored_us > t->last_result_us)
            t->last_result_us = stored_us;
    }
    jsMsgMetaData_Destroy(meta);
    t->results++;
    t->duplicates += t->seen[seq]++ == 1;
    json_object_set_new(t->codes, code,
                        json_integer(json_integer_value(json_object_get(t->codes, code)) + 1));
    if (strcmp(code, "OK") == 0 || strcmp(code, "REPLAY") == 0)
        log_order_lines(t->log, json_object_get(result, "body"));
    json_decref(result);
}

static int compare_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void print_latency(tally *t)
{
    uint64_t n = t->results < CLIENT_SEQ_MAX ? t->results : CLIENT_SEQ_MAX;
    if (n == 0)
        return;
    qsort(t->latency_us, n, sizeof *t->latency_us, compare_int64);
    printf("latency_ms %.1f %.1f %.1f %.2f\n", (double)t->latency_us[n / 2] / 1000,
           (double)t->latency_us[n * 99 / 100] / 1000, (double)t->latency_us[n - 1] / 1000,
           (double)(t->last_result_us - t->first_queued_us) / 1e6);
}

static int read_results(natsConnection *nc, jsCtx *js, FILE *log)
{
    tally t = {.log = log, .codes = json_object(), .seen = calloc(CLIENT_SEQ_MAX, 1),
               .latency_us = calloc(CLIENT_SEQ_MAX, sizeof(int64_t))};
    if (t.codes == NULL || t.seen == NULL || t.latency_us == NULL ||
        !read_stream(nc, js, "STOCK_RESULTS", "stock.results.>", count_result, &t))
        return 1;
    printf("results %" PRIu64 "\n", t.results);
    const char *code;
    json_t *value;
    json_object_foreach(t.codes, code, value)
        printf("%s %" JSON_INTEGER_FORMAT "\n", code, json_integer_value(value));
    printf("duplicates %" PRIu64 "\n", t.duplicates);
    print_latency(&t);
    json_decref(t.codes);
    free(t.seen);
    free(t.latency_us);
    return 0;
}

static void print_dead(natsMsg *msg, void *user)
{
    (void)user;
    const char *reason = NULL;
    natsMsgHeader_Get(msg, "Stock-Reason", &reason);
    printf("%s\t%s\n", natsMsg_GetSubject(msg), reason != NULL ? reason : "(no reason)");
}

static int print_pending(jsCtx *js)
{
    jsConsumerInfo *info = NULL;
    natsStatus status = NATS_TIMEOUT;
    for (int try = 0; try < CLIENT_TRIES && transient(status); try++)
        status = js_GetConsumerInfo(&info, js, "STOCK_INTAKE", "stockintake", NULL, NULL);
    if (failed(status, "consumer info"))
        return 1;
    printf("pending %" PRIu64 " unacknowledged %" PRId64 " max_ack_pending %" PRId64 " ack_wait_s %" PRId64 "\n",
           info->NumPending, info->NumAckPending, info->Config->MaxAckPending,
           info->Config->AckWait / 1000000000);
    jsConsumerInfo_Destroy(info);
    return 0;
}

static int run(int argc, char **argv, natsConnection *nc, jsCtx *js)
{
    const char *command = argv[1];
    if (strcmp(command, "publish") == 0 && argc == 7) {
        FILE *log = fopen(argv[6], "w");
        int status = log != NULL ? publish_orders(js, atol(argv[3]), atol(argv[4]), argv[5], log) : 1;
        return log != NULL && fclose(log) == 0 ? status : 1;
    }
    if (strcmp(command, "results") == 0 && argc == 4) {
        FILE *log = fopen(argv[3], "w");
        int status = log != NULL ? read_results(nc, js, log) : 1;
        return log != NULL && fclose(log) == 0 ? status : 1;
    }
    if (strcmp(command, "pending") == 0 && argc == 3)
        return print_pending(js);
    if (strcmp(command, "bad") == 0 && argc == 3)
        return publish_bad(js);
    if (strcmp(command, "dead") == 0 && argc == 3)
        return read_stream(nc, js, "STOCK_DEAD", "stock.dead.>", print_dead, NULL) ? 0 : 1;
    if (strcmp(command, "await") == 0 && argc == 5)
        return await_count(js, argv[3], strtoull(argv[4], NULL, 10));
    if (strcmp(command, "count") == 0 && argc == 4) {
        printf("%" PRIu64 "\n", stream_count(js, argv[3]));
        return 0;
    }
    fprintf(stderr, "intake_client: bad usage (see the opening comment of intake_client.c)\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: intake_client publish|bad|results|dead|count|await|pending URL ...\n");
        return 2;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    int status = connect_js(argv[2], &nc, &js) ? run(argc, argv, nc, js) : 1;
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return status;
}
