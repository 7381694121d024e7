/*
 * intake.c -- stockintake's consumer loop (see intake.h, docs/intake.md).
 *
 * One loop, one batch at a time: pull up to --batch messages, turn each
 * into a store op (proto/request_json.h: the HTTP API's bodies) or a dead
 * letter, apply the ops as one stock_execute batch (so a durable store
 * makes them durable together: one group commit), publish every result
 * and dead letter asynchronously, wait for the broker to confirm them all,
 * and only then acknowledge the requests. A crash anywhere before the
 * acknowledgements makes the broker redeliver. A redelivered request whose
 * result the results stream already holds (each request's result has a
 * subject of its own, ending in the request's stream sequence) is only
 * acknowledged; any other is applied again, where the store answers an id
 * it applied REPLAY with the original result. So every request gets
 * exactly one result, and the results stream would drop a second copy
 * anyway (a result's message id is also the request's sequence).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "intake.h"
#include "lib/clock.h"
#include "proto/request_json.h"
#include "pull.h"
#include "stock.h"

#define INTAKE_FETCH_WAIT_MS 500        /* a pull's wait, so a stop is seen soon */
#define INTAKE_PUBLISH_WAIT_MS 10000    /* for the broker to confirm a batch's results */
#define INTAKE_NAK_DELAY_MS 1000        /* redelivery of a request the store failed */
#define INTAKE_REOPEN_WAIT_MS 500       /* between attempts to reopen the store or reach JetStream */
#define INTAKE_REPORT_INTERVAL_US (10 * 1000000)
#define INTAKE_SUBJECT_MAX (INTAKE_PREFIX_MAX + 32)
#define INTAKE_HEADER_ID_MAX 32         /* "result-" or "dead-" and a sequence */
#define INTAKE_REPLY_HEADER "Stock-Reply-To"

/* The request kinds a subject may name: PREFIX.intake.<word>. */
static const struct { const char *word; request_kind kind; } intake_kinds[] = {
    {"orders", REQUEST_ORDER}, {"deductions", REQUEST_DEDUCT}, {"refunds", REQUEST_REFUND},
};

/* What becomes of one pulled message. */
typedef enum item_fate {
    ITEM_APPLY,      /* its op goes to the store, its result to the results stream */
    ITEM_DEAD,       /* it can never apply: to the dead-letter stream with its reason */
    ITEM_ANSWERED,   /* a redelivery whose result the results stream holds: ack it */
    ITEM_RETRY       /* the store or the broker failed: ask for it again */
} item_fate;

/* One message of a pulled batch. */
typedef struct item {
    natsMsg *msg;
    item_fate fate;
    uint64_t seq;              /* its sequence in the intake stream */
    uint64_t delivered;        /* how many times the broker has sent it */
    int64_t queued_ns;         /* when the broker stored it (Unix time) */
    const char *word;          /* its subject's last token */
    request_kind kind;
    request *req;              /* ITEM_APPLY: owns what op points to */
    stock_op *op;              /* ITEM_APPLY: in the batch's ops */
    char reason[REQUEST_MESSAGE_MAX];   /* ITEM_DEAD */
    char *answer;              /* for the reply subject, sent once settled; malloc()ed */
    size_t answer_len;
} item;

typedef struct counters {
    uint64_t applied, replayed, refused, dead, answered, retried;
} counters;

typedef struct intake {
    const intake_options *options;
    volatile sig_atomic_t *stop;
    natsConnection *nc;
    jsCtx *js;
    pull *pull;
    stock_t *store;
    atomic_uint_fast64_t publish_failures;   /* set by the library's thread */
    char intake_subject[INTAKE_SUBJECT_MAX];
    char intake_stream[INTAKE_SUBJECT_MAX], results_stream[INTAKE_SUBJECT_MAX];
    char dead_stream[INTAKE_SUBJECT_MAX];
    natsMsg **msgs;            /* one pull's messages */
    item *items;
    stock_op *ops;
    counters total;
} intake;

static void say(const char *format, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("stockintake: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
}

static bool nats_failed(natsStatus status, jsErrCode code, const char *what)
{
    if (status == NATS_OK)
        return false;
    const char *detail = nats_GetLastError(NULL);   /* this thread's, with the server's words */
    say("%s: %s%s%s (JetStream error %d)", what, natsStatus_GetText(status),
        detail != NULL && detail[0] != '\0' ? ": " : "", detail != NULL ? detail : "", (int)code);
    return true;
}

/* The store's messages, since libstock never prints. */
static void store_log(void *user, stock_log_level level, const char *message)
{
    (void)user;
    static const char *const words[] = {"error", "warning", "notice", "debug"};
    say("store %s: %s", words[level], message);
}

/* A publish the broker refused or never confirmed, on the library's thread. */
static void publish_failed(jsCtx *js, jsPubAckErr *error, void *closure)
{
    (void)js;
    intake *in = closure;
    atomic_fetch_add(&in->publish_failures, 1);
    say("publish to %s failed: %s", natsMsg_GetSubject(error->Msg),
        error->ErrText != NULL ? error->ErrText : natsStatus_GetText(error->Err));
}

/* ------------------------------------------------------------ setup */

/* Makes stream name hold PREFIX.<word>.> unless it exists already (then
 * its settings are the operator's). */
static natsStatus ensure_stream(intake *in, const char *name, const char *word, jsRetentionPolicy retention)
{
    jsStreamInfo *info = NULL;
    jsErrCode code = 0;
    natsStatus status = js_GetStreamInfo(&info, in->js, name, NULL, &code);
    jsStreamInfo_Destroy(info);
    if (status != NATS_NOT_FOUND)
        return status;
    char subject[INTAKE_SUBJECT_MAX];
    snprintf(subject, sizeof subject, "%s.%s.>", in->options->prefix, word);
    const char *subjects[] = {subject};
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    config.Name = name;
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Retention = retention;
    config.Replicas = in->options->replicas;
    status = js_AddStream(&info, in->js, &config, NULL, &code);
    jsStreamInfo_Destroy(info);
    if (status != NATS_OK && code == JSStreamNameExistErr)
        return NATS_OK;   /* another consumer made it meanwhile */
    if (status != NATS_OK && code != 0)
        nats_failed(status, code, name);
    return status;
}

/* Sets the servers of options from the comma-separated list urls. */
static natsStatus set_servers(natsOptions *options, const char *urls)
{
    char copy[INTAKE_BROKER_MAX + 1];
    const char *servers[INTAKE_SERVERS_MAX];
    int count = 0;
    snprintf(copy, sizeof copy, "%s", urls);
    for (char *save = NULL, *url = strtok_r(copy, ",", &save); url != NULL && count < INTAKE_SERVERS_MAX;
         url = strtok_r(NULL, ",", &save))
        servers[count++] = url;
    return count > 0 ? natsOptions_SetServers(options, servers, count) : NATS_INVALID_ARG;
}

static bool connect_broker(intake *in)
{
    natsOptions *options = NULL;
    natsStatus status = natsOptions_Create(&options);
    if (status == NATS_OK)
        status = set_servers(options, in->options->broker);
    if (status == NATS_OK)
        status = natsOptions_SetName(options, "stockintake");
    if (status == NATS_OK)
        status = natsOptions_SetMaxReconnect(options, -1);   /* a broker restart is waited out */
    if (status == NATS_OK)
        status = natsConnection_Connect(&in->nc, options);
    natsOptions_Destroy(options);
    if (nats_failed(status, 0, in->options->broker))
        return false;
    jsOptions js_options;
    jsOptions_Init(&js_options);
    js_options.PublishAsync.ErrHandler = publish_failed;
    js_options.PublishAsync.ErrHandlerClosure = in;
    js_options.PublishAsync.MaxPending = INTAKE_BATCH_MAX * 2;
    status = natsConnection_JetStream(&in->js, in->nc, &js_options);
    return !nats_failed(status, 0, "JetStream context");
}

/* Checks that the durable consumer that exists is one stockintake can pull
 * with these settings (they are the consumer's, fixed at its creation). */
static natsStatus consumer_fits(intake *in, const jsConsumerConfig *config)
{
    const char *name = in->options->consumer;
    int64_t ack_wait = (int64_t)in->options->ack_wait_s * 1000000000;
    if (config->DeliverSubject != NULL && config->DeliverSubject[0] != '\0')
        say("consumer %s is a push consumer (it delivers to %s): stockintake needs a pull consumer", name,
            config->DeliverSubject);
    else if (config->FilterSubject != NULL && config->FilterSubject[0] != '\0' &&
             strcmp(config->FilterSubject, in->intake_subject) != 0)   /* none: the stream's own, the same */
        say("consumer %s reads %s, not %s", name, config->FilterSubject, in->intake_subject);
    else if (config->MaxRequestBatch > 0 && config->MaxRequestBatch < (int64_t)in->options->batch)
        say("consumer %s allows pulls of %" PRId64 " messages, fewer than --batch %" PRIu32, name,
            config->MaxRequestBatch, in->options->batch);
    else if (config->MaxRequestExpires > 0 && config->MaxRequestExpires < (int64_t)INTAKE_FETCH_WAIT_MS * 1000000)
        say("consumer %s holds a pull at most %" PRId64 " ms, under stockintake's %d ms", name,
            config->MaxRequestExpires / 1000000, INTAKE_FETCH_WAIT_MS);
    else if (config->AckPolicy != js_AckExplicit)
        say("consumer %s does not take explicit acknowledgements", name);
    else if (config->MaxAckPending != (int64_t)in->options->max_pending)
        say("configuration requests max ack pending to be %" PRIu32 ", but consumer's value is %" PRId64,
            in->options->max_pending, config->MaxAckPending);
    else if (config->AckWait != ack_wait)
        say("configuration requests ack wait to be %" PRIu32 " s, but consumer's value is %" PRId64 " ms",
            in->options->ack_wait_s, config->AckWait / 1000000);
    else
        return NATS_OK;
    return NATS_ERR;
}

/* Makes the durable pull consumer unless it exists, then a pull on it. */
static natsStatus subscribe(intake *in)
{
    jsConsumerInfo *info = NULL;
    jsErrCode code = 0;
    natsStatus status = js_GetConsumerInfo(&info, in->js, in->intake_stream, in->options->consumer, NULL, &code);
    if (status == NATS_NOT_FOUND) {
        jsConsumerConfig config;
        jsConsumerConfig_Init(&config);
        config.Durable = in->options->consumer;
        config.FilterSubject = in->intake_subject;
        config.AckPolicy = js_AckExplicit;
        config.AckWait = (int64_t)in->options->ack_wait_s * 1000000000;
        config.MaxAckPending = in->options->max_pending;
        status = js_AddConsumer(&info, in->js, in->intake_stream, &config, NULL, &code);
        if (status != NATS_OK && code == JSConsumerNameExistErr) {   /* another stockintake made it meanwhile */
            status = js_GetConsumerInfo(&info, in->js, in->intake_stream, in->options->consumer, NULL, &code);
        }
    }
    if (status == NATS_OK)
        status = consumer_fits(in, info->Config);
    else if (code != 0)
        nats_failed(status, code, "pull consumer");
    jsConsumerInfo_Destroy(info);
    if (status == NATS_OK)
        status = pull_open(&in->pull, in->nc, in->intake_stream, in->options->consumer);
    return status;
}

/* Makes the streams and the consumer. A JetStream that does not answer
 * yet (a cluster electing its leader, a server starting) is waited for;
 * an error it answers (a stream's subjects taken, more replicas than
 * nodes) is final. */
static bool set_up_streams(intake *in)
{
    for (unsigned attempt = 0; !*in->stop; attempt++) {
        natsStatus status = ensure_stream(in, in->intake_stream, "intake", js_WorkQueuePolicy);
        if (status == NATS_OK)
            status = ensure_stream(in, in->results_stream, "results", js_LimitsPolicy);
        if (status == NATS_OK)
            status = ensure_stream(in, in->dead_stream, "dead", js_LimitsPolicy);
        if (status == NATS_OK)
            status = subscribe(in);
        if (status == NATS_OK)
            return true;
        if (status != NATS_TIMEOUT && status != NATS_NO_RESPONDERS)
            return !nats_failed(status, 0, "setting up the streams");
        if (attempt == 0)
            say("JetStream does not answer yet (%s); waiting", natsStatus_GetText(status));
        nats_Sleep(INTAKE_REOPEN_WAIT_MS);
    }
    return false;
}

static bool set_up(intake *in)
{
    const char *prefix = in->options->prefix;
    snprintf(in->intake_subject, sizeof in->intake_subject, "%s.intake.>", prefix);
    char upper[INTAKE_PREFIX_MAX + 1];
    size_t i = 0;
    for (; prefix[i] != '\0' && i < INTAKE_PREFIX_MAX; i++)
        upper[i] = (char)(prefix[i] == '.' ? '_' : (prefix[i] >= 'a' && prefix[i] <= 'z')
                                                  ? prefix[i] - 'a' + 'A' : prefix[i]);
    upper[i] = '\0';
    snprintf(in->intake_stream, sizeof in->intake_stream, "%s_INTAKE", upper);
    snprintf(in->results_stream, sizeof in->results_stream, "%s_RESULTS", upper);
    snprintf(in->dead_stream, sizeof in->dead_stream, "%s_DEAD", upper);
    in->msgs = calloc(in->options->batch, sizeof *in->msgs);
    in->items = calloc(in->options->batch, sizeof *in->items);
    in->ops = calloc(in->options->batch, sizeof *in->ops);
    if (in->msgs == NULL || in->items == NULL || in->ops == NULL) {
        say("out of memory");
        return false;
    }
    return connect_broker(in) && set_up_streams(in);
}

/* Opens the store, trying again until it opens or a stop is asked. */
static bool open_store(intake *in)
{
    stock_config config = {.log = store_log};
    char message[STOCK_MESSAGE_MAX];
    for (unsigned attempt = 0; !*in->stop; attempt++) {
        stock_code code = stock_open(in->options->store, &config, &in->store, message);
        if (code == STOCK_OK)
            return true;
        if (code == STOCK_INVALID || code == STOCK_UNSUPPORTED || code == STOCK_CORRUPT) {
            say("cannot open %s: %s", in->options->store, message);
            return false;
        }
        if (attempt == 0)
            say("cannot open %s (%s); trying again", in->options->store, message);
        nats_Sleep(INTAKE_REOPEN_WAIT_MS);
    }
    return false;
}

/* ------------------------------------------------------------ one batch */

/* The request kind a subject's last token names; false if none. */
static bool kind_of(const char *word, request_kind *kind)
{
    for (size_t k = 0; k < sizeof intake_kinds / sizeof intake_kinds[0]; k++)
        if (strcmp(word, intake_kinds[k].word) == 0) {
            *kind = intake_kinds[k].kind;
            return true;
        }
    return false;
}

/* The subject of the result of request seq: one per request, so that a
 * redelivery can look it up. */
static void result_subject(const intake *in, const item *it, char *subject, size_t size)
{
    snprintf(subject, size, "%s.results.%s.%" PRIu64, in->options->prefix, it->word, it->seq);
}

/* A request delivered before may have its result published already (the
 * consumer died before acknowledging it): then that result stands, and
 * applying the request again could answer differently (an order refused
 * for want of stock may pass after a restock). */
static void keep_answer(item *it, const char *text, size_t len);

static item_fate redelivery_fate(intake *in, item *it)
{
    char subject[INTAKE_SUBJECT_MAX];
    result_subject(in, it, subject, sizeof subject);
    natsMsg *result = NULL;
    jsErrCode code = 0;
    natsStatus status = js_GetLastMsg(&result, in->js, in->results_stream, subject, NULL, &code);
    if (status == NATS_OK)   /* the client may have missed it the first time */
        keep_answer(it, natsMsg_GetData(result), (size_t)natsMsg_GetDataLength(result));
    natsMsg_Destroy(result);
    if (status == NATS_OK)
        return ITEM_ANSWERED;
    if (status == NATS_NOT_FOUND)
        return ITEM_APPLY;
    nats_failed(status, code, "looking up an earlier result");
    return ITEM_RETRY;
}

/* Parses it's message into *op; ITEM_DEAD with the reason if it can never
 * apply. */
static item_fate parse(intake *in, item *it, stock_op *op)
{
    int length = natsMsg_GetDataLength(it->msg);
    if (!kind_of(it->word, &it->kind)) {
        snprintf(it->reason, sizeof it->reason, "no request kind '%.32s': send orders, deductions or refunds", it->word);
        return ITEM_DEAD;
    }
    if ((uint32_t)length > in->options->max_message_bytes) {
        snprintf(it->reason, sizeof it->reason, "the message has %d bytes, over --max-message-bytes %" PRIu32,
                 length, in->options->max_message_bytes);
        return ITEM_DEAD;
    }
    *op = (stock_op){0};
    int32_t failed_line = -1;
    request_status status = request_json_parse(it->kind, natsMsg_GetData(it->msg), (size_t)length, NULL, 0,
                                               op, &it->req, it->reason, &failed_line);
    if (status == REQUEST_NOMEM)
        return ITEM_RETRY;
    if (status == REQUEST_REFUSED)
        return ITEM_DEAD;
    /* What validation refuses (a bad id, a quantity out of range) can never apply. */
    if (stock_validate(op) != STOCK_OK) {
        snprintf(it->reason, sizeof it->reason, "INVALID %.240s", op->message);
        return ITEM_DEAD;
    }
    it->op = op;
    return ITEM_APPLY;
}

/* Fills item from msg and decides its fate; an op to apply goes in *op. */
static void classify(intake *in, item *it, natsMsg *msg, stock_op *op)
{
    *it = (item){.msg = msg, .fate = ITEM_RETRY};
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK)
        return;
    it->seq = meta->Sequence.Stream;
    it->delivered = meta->NumDelivered;
    it->queued_ns = meta->Timestamp;
    jsMsgMetaData_Destroy(meta);
    const char *subject = natsMsg_GetSubject(msg);
    const char *dot = strrchr(subject, '.');
    it->word = dot != NULL ? dot + 1 : subject;
    it->fate = it->delivered > 1 ? redelivery_fate(in, it) : ITEM_APPLY;
    if (it->fate == ITEM_APPLY)
        it->fate = parse(in, it, op);
    if (it->fate != ITEM_APPLY) {
        free(it->req);
        it->req = NULL;
        it->op = NULL;
    }
}

/* Codes after which the same request may well succeed later: the store,
 * not the request, failed. */
static bool store_failed(stock_code code)
{
    return code == STOCK_IO || code == STOCK_UNAVAILABLE || code == STOCK_NOMEM ||
           code == STOCK_CORRUPT;
}

/* Header values are one line of printable ASCII. */
static void header_safe(char *text)
{
    for (; *text != '\0'; text++)
        if ((unsigned char)*text < 0x20 || (unsigned char)*text > 0x7e)
            *text = '?';
}

/* Publishes data to subject through JetStream without waiting, with the
 * message id (the results stream drops a second copy) and the headers in
 * pairs (NULL-terminated). */
static bool publish_async(intake *in, const char *subject, const char *data, size_t len,
                          const char *msg_id, const char *const *headers)
{
    natsMsg *msg = NULL;
    natsStatus status = natsMsg_Create(&msg, subject, NULL, data, (int)len);
    for (size_t h = 0; status == NATS_OK && headers[h] != NULL; h += 2)
        status = natsMsgHeader_Set(msg, headers[h], headers[h + 1]);
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MsgId = msg_id;
    if (status == NATS_OK)
        status = js_PublishMsgAsync(in->js, &msg, &options);
    natsMsg_Destroy(msg);
    return !nats_failed(status, 0, subject);
}

/* The reply subject the request names, or NULL. */
static const char *reply_subject(const item *it)
{
    const char *to = NULL;
    if (natsMsgHeader_Get(it->msg, INTAKE_REPLY_HEADER, &to) != NATS_OK || to == NULL || to[0] == '\0')
        return NULL;
    return to;
}

/* Keeps a copy of text for the reply subject, if the request names one: it
 * is sent only once the request is settled, so that a client never hears
 * an answer that a retry could contradict. */
static void keep_answer(item *it, const char *text, size_t len)
{
    if (reply_subject(it) == NULL || it->answer != NULL)
        return;
    it->answer = malloc(len);
    if (it->answer == NULL)
        return;   /* the client waits for the results stream instead */
    memcpy(it->answer, text, len);
    it->answer_len = len;
}

/* The text of a result: {"request", "seq", "queued_us", "code", "body"},
 * body being what the HTTP API would answer (it takes body's reference).
 * NULL when out of memory; free() it. */
static char *result_text(const item *it, stock_code code, json_t *body)
{
    json_t *result = json_pack("{s:s, s:I, s:I, s:s, s:o}", "request", it->word, "seq", (json_int_t)it->seq,
                               "queued_us", (json_int_t)(it->queued_ns / 1000),
                               "code", stock_code_name(code), "body", body);
    char *text = result != NULL ? json_dumps(result, JSON_COMPACT) : NULL;
    json_decref(result);
    if (text == NULL)
        say("out of memory");
    return text;
}

/* A dead letter keeps the request's bytes; a waiting client hears INVALID. */
static bool publish_dead(intake *in, item *it)
{
    char subject[INTAKE_SUBJECT_MAX], id[INTAKE_HEADER_ID_MAX], seq[INTAKE_HEADER_ID_MAX];
    snprintf(subject, sizeof subject, "%s.dead.%.24s", in->options->prefix, it->word);
    snprintf(id, sizeof id, "dead-%" PRIu64, it->seq);
    snprintf(seq, sizeof seq, "%" PRIu64, it->seq);
    header_safe(it->reason);
    const char *headers[] = {"Stock-Reason", it->reason, "Stock-Subject", natsMsg_GetSubject(it->msg),
                             "Stock-Request-Seq", seq, NULL};
    char *text = result_text(it, STOCK_INVALID, request_json_error("INVALID", it->reason));
    if (text != NULL)
        keep_answer(it, text, strlen(text));
    free(text);
    return publish_async(in, subject, natsMsg_GetData(it->msg), (size_t)natsMsg_GetDataLength(it->msg),
                         id, headers);
}

static bool publish_result(intake *in, item *it)
{
    char *text = result_text(it, it->op->code, request_json_result(it->kind, it->op));
    if (text == NULL)
        return false;
    char subject[INTAKE_SUBJECT_MAX], id[INTAKE_HEADER_ID_MAX], seq[INTAKE_HEADER_ID_MAX];
    result_subject(in, it, subject, sizeof subject);
    snprintf(id, sizeof id, "result-%" PRIu64, it->seq);
    snprintf(seq, sizeof seq, "%" PRIu64, it->seq);
    const char *headers[] = {"Stock-Code", stock_code_name(it->op->code), "Stock-Request-Seq", seq, NULL};
    bool ok = publish_async(in, subject, text, strlen(text), id, headers);
    if (ok)
        keep_answer(it, text, strlen(text));
    free(text);
    return ok;
}

/* Waits for the broker to confirm every publish of the batch; false if
 * one failed or did not come in time (its copy is dropped: the requests
 * are redelivered and published again). */
static bool publishes_confirmed(intake *in)
{
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MaxWait = INTAKE_PUBLISH_WAIT_MS;
    natsStatus status = js_PublishAsyncComplete(in->js, &options);
    if (status != NATS_OK) {
        natsMsgList pending = {0};
        if (js_PublishAsyncGetPendingList(&pending, in->js) == NATS_OK)
            natsMsgList_Destroy(&pending);
        say("results not confirmed: %s", natsStatus_GetText(status));
    }
    return status == NATS_OK && atomic_exchange(&in->publish_failures, 0) == 0;
}

/* Publishes each item's outcome; true when the broker confirmed them all.
 * An op the store failed becomes ITEM_RETRY, and sets *broken. */
static bool publish_outcomes(intake *in, item *items, size_t count, bool *broken)
{
    bool ok = true;
    atomic_store(&in->publish_failures, 0);
    for (size_t i = 0; i < count; i++) {
        item *it = &items[i];
        if (it->fate == ITEM_APPLY && store_failed(it->op->code)) {
            if (!*broken)
                say("the store failed: %s %s", stock_code_name(it->op->code), it->op->message);
            *broken = true;
            it->fate = ITEM_RETRY;
        }
        if (it->fate == ITEM_DEAD) {
            ok = publish_dead(in, it) && ok;
        } else if (it->fate == ITEM_APPLY) {
            ok = publish_result(in, it) && ok;
            in->total.applied += it->op->code == STOCK_OK;
            in->total.replayed += it->op->code == STOCK_REPLAY;
            in->total.refused += !stock_code_succeeded(it->op->code);
        }
    }
    return publishes_confirmed(in) && ok;
}

/* Acknowledges what is done and asks again for the rest: everything when
 * the broker did not confirm the publishes (a retry publishes the same
 * message ids, whose copies the broker drops). */
static void settle(intake *in, item *items, size_t count, bool confirmed)
{
    for (size_t i = 0; i < count; i++) {
        item *it = &items[i];
        if (it->fate == ITEM_RETRY || (!confirmed && it->fate != ITEM_ANSWERED)) {
            pull_nak(in->pull, it->msg, INTAKE_NAK_DELAY_MS);
            in->total.retried++;
        } else {
            pull_ack(in->pull, it->msg);
            if (it->answer != NULL)
                natsConnection_Publish(in->nc, reply_subject(it), it->answer, (int)it->answer_len);
            in->total.dead += it->fate == ITEM_DEAD;
            in->total.answered += it->fate == ITEM_ANSWERED;
        }
        free(it->req);
        it->req = NULL;
        free(it->answer);
        it->answer = NULL;
    }
}

/* Handles count (1..batch) pulled messages; false when the store failed
 * (its ops were asked again) and must be reopened. */
static bool handle_batch(intake *in, natsMsg **msgs, size_t count)
{
    size_t op_count = 0;
    assert(count <= in->options->batch);
    for (size_t i = 0; i < count; i++) {
        classify(in, &in->items[i], msgs[i], &in->ops[op_count]);
        op_count += in->items[i].fate == ITEM_APPLY;
    }
    if (op_count > 0)
        stock_execute(in->store, in->ops, op_count);
    bool broken = false;
    bool confirmed = publish_outcomes(in, in->items, count, &broken);
    settle(in, in->items, count, confirmed);
    return !broken;
}

/* ------------------------------------------------------------ the loop */

static void report(const intake *in)
{
    say("applied %" PRIu64 ", replayed %" PRIu64 ", refused %" PRIu64 ", dead letters %" PRIu64
        ", answered before %" PRIu64 ", retried %" PRIu64, in->total.applied, in->total.replayed,
        in->total.refused, in->total.dead, in->total.answered, in->total.retried);
}

static int consume(intake *in)
{
    int64_t reported_us = clock_now_us(CLOCK_MONOTONIC);
    while (!*in->stop) {
        int count = 0;
        natsStatus status = pull_fetch(in->pull, in->msgs, (int)in->options->batch, INTAKE_FETCH_WAIT_MS, &count);
        bool store_ok = true;
        if (status == NATS_OK)
            store_ok = handle_batch(in, in->msgs, (size_t)count);
        else if (status == NATS_ERR && pull_error(in->pull)[0] != '\0')
            say("pull: %s", pull_error(in->pull));
        else if (status != NATS_TIMEOUT)
            nats_failed(status, 0, "pull");   /* a broker restart: the client reconnects */
        for (int i = 0; i < count; i++)
            natsMsg_Destroy(in->msgs[i]);
        if (status != NATS_OK && status != NATS_TIMEOUT)
            nats_Sleep(INTAKE_FETCH_WAIT_MS);
        if (!store_ok) {
            stock_close(in->store);
            in->store = NULL;
            if (!open_store(in))
                return *in->stop ? 0 : 1;
            say("store reopened");
        }
        if (clock_now_us(CLOCK_MONOTONIC) - reported_us > INTAKE_REPORT_INTERVAL_US) {
            report(in);
            reported_us = clock_now_us(CLOCK_MONOTONIC);
        }
    }
    return 0;
}

int intake_run(const intake_options *options, volatile sig_atomic_t *stop)
{
    intake *in = calloc(1, sizeof *in);
    if (in == NULL) {
        say("out of memory");
        return 1;
    }
    in->options = options;
    in->stop = stop;
    atomic_init(&in->publish_failures, 0);
    int status = 1;
    if (set_up(in) && open_store(in)) {
        say("consuming %s into %s (%s)", in->intake_subject, options->store, stock_backend_name(in->store));
        status = consume(in);
    }
    report(in);
    if (in->store != NULL && stock_close(in->store) != STOCK_OK)
        status = 1;
    /* Closed first: libnats 3.4 can deliver to a subscription being freed. */
    if (in->nc != NULL)
        natsConnection_Close(in->nc);
    pull_close(in->pull);
    jsCtx_Destroy(in->js);
    natsConnection_Destroy(in->nc);
    nats_Close();
    free(in->msgs);
    free(in->items);
    free(in->ops);
    free(in);
    return status;
}
