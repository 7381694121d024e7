/*
 * publish.c -- `stockctl publish`: the client of stockintake
 * (docs/intake.md). Publishes request bodies, one JSON object per input
 * line, to the intake stream of a NATS JetStream broker, each with an
 * inbox of its own as the reply subject; prints every result that comes
 * back, one JSON line each, and shows its progress on stderr when that is
 * a terminal. Needs no store.
 *
 * It sets no Nats-Msg-Id: a request published again would then be dropped
 * by the stream without a result, and this client would wait for one in
 * vain; without it the store answers the repeat REPLAY with the original
 * result.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "lib/clock.h"
#include "stockctl.h"

#define PUBLISH_WINDOW 1024          /* publishes in flight before waiting for acks */
#define PUBLISH_ACK_WAIT_MS 30000
#define PUBLISH_POLL_MS 100          /* a wait for results, between progress lines */
#define PUBLISH_LINE_MAX (1 << 20)   /* bytes of one input line: NATS's max_payload */

typedef struct publisher {
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *replies;
    natsInbox *inbox;
    char subject[128];
    long published, answered;
    long publish_failures;           /* counted by the NATS library's thread */
    bool progress;                   /* stderr is a terminal */
} publisher;

static const char *const publish_kinds[] = {"orders", "deductions", "refunds"};

static bool broker_failed(natsStatus status, const char *what)
{
    if (status == NATS_OK)
        return false;
    fprintf(stderr, "stockctl: publish: %s: %s\n", what, natsStatus_GetText(status));
    return true;
}

static void publish_failed(jsCtx *js, jsPubAckErr *error, void *closure)
{
    (void)js;
    publisher *p = closure;
    __atomic_add_fetch(&p->publish_failures, 1, __ATOMIC_RELAXED);
    fprintf(stderr, "stockctl: publish: the broker refused a message: %s\n",
            error->ErrText != NULL ? error->ErrText : natsStatus_GetText(error->Err));
}

static void show_progress(const publisher *p, bool last)
{
    if (p->progress)
        fprintf(stderr, "\rpublished %ld, answered %ld%s", p->published, p->answered, last ? "\n" : "");
}

/* Prints the results that have arrived, waiting up to wait_ms for the first. */
static bool take_results(publisher *p, int64_t wait_ms)
{
    for (;;) {
        natsMsg *msg = NULL;
        natsStatus status = natsSubscription_NextMsg(&msg, p->replies, wait_ms);
        if (status == NATS_TIMEOUT)
            return true;
        if (broker_failed(status, "results"))
            return false;
        fwrite(natsMsg_GetData(msg), 1, (size_t)natsMsg_GetDataLength(msg), stdout);
        fputc('\n', stdout);
        natsMsg_Destroy(msg);
        p->answered++;
        wait_ms = 0;
    }
}

static bool connect_broker(publisher *p, const ctl_args *args)
{
    jsOptions options;
    jsOptions_Init(&options);
    options.PublishAsync.MaxPending = PUBLISH_WINDOW;
    options.PublishAsync.ErrHandler = publish_failed;
    options.PublishAsync.ErrHandlerClosure = p;
    return !broker_failed(natsConnection_ConnectTo(&p->nc, args->broker), args->broker) &&
           !broker_failed(natsConnection_JetStream(&p->js, p->nc, &options), "JetStream") &&
           !broker_failed(natsInbox_Create(&p->inbox), "inbox") &&
           !broker_failed(natsConnection_SubscribeSync(&p->replies, p->nc, p->inbox), "inbox") &&
           !broker_failed(natsSubscription_SetPendingLimits(p->replies, -1, -1), "inbox");
}

/* Publishes one input line, as it is: stockintake judges it. */
static bool publish_line(publisher *p, const char *line, size_t len)
{
    natsMsg *msg = NULL;
    natsStatus status = natsMsg_Create(&msg, p->subject, NULL, line, (int)len);
    if (status == NATS_OK)
        status = natsMsgHeader_Set(msg, "Stock-Reply-To", p->inbox);
    if (status == NATS_OK)
        status = js_PublishMsgAsync(p->js, &msg, NULL);
    natsMsg_Destroy(msg);
    p->published += status == NATS_OK;
    return !broker_failed(status, p->subject);
}

static bool publishes_confirmed(publisher *p)
{
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MaxWait = PUBLISH_ACK_WAIT_MS;
    return !broker_failed(js_PublishAsyncComplete(p->js, &options), "publish acknowledgements") &&
           __atomic_load_n(&p->publish_failures, __ATOMIC_RELAXED) == 0;
}

/* Publishes every line of input, printing results as they come. */
static bool publish_all(publisher *p, FILE *input)
{
    char *line = malloc(PUBLISH_LINE_MAX);
    bool ok = line != NULL;
    while (ok && fgets(line, PUBLISH_LINE_MAX, input) != NULL) {
        size_t len = strcspn(line, "\r\n");
        if (len == 0)
            continue;
        ok = publish_line(p, line, len);
        if (ok && p->published % PUBLISH_WINDOW == 0) {
            ok = publishes_confirmed(p) && take_results(p, 0);
            show_progress(p, false);
        }
    }
    free(line);
    if (ok && ferror(input)) {
        fprintf(stderr, "stockctl: publish: cannot read the input\n");
        ok = false;
    }
    return ok && publishes_confirmed(p);
}

/* Waits until every request has its result, or wait_s pass without one. */
static bool await_results(publisher *p, int64_t wait_s)
{
    int64_t quiet_since_us = clock_now_us(CLOCK_MONOTONIC);
    while (p->answered < p->published) {
        long before = p->answered;
        if (!take_results(p, PUBLISH_POLL_MS))
            return false;
        show_progress(p, false);
        if (p->answered > before)
            quiet_since_us = clock_now_us(CLOCK_MONOTONIC);
        else if (clock_now_us(CLOCK_MONOTONIC) - quiet_since_us > wait_s * 1000000)
            return false;
    }
    return true;
}

int ctl_publish(const ctl_args *args)
{
    publisher p = {.progress = isatty(STDERR_FILENO) == 1};
    const char *kind = args->positional[0];
    bool known = false;
    for (size_t k = 0; k < sizeof publish_kinds / sizeof publish_kinds[0]; k++)
        known = known || strcmp(kind, publish_kinds[k]) == 0;
    if (!known) {
        ctl_usage_error("publish: KIND is orders, deductions or refunds, not '%s'", kind);
        return CTL_EXIT_USAGE;
    }
    snprintf(p.subject, sizeof p.subject, "%s.intake.%s", args->prefix, kind);
    const char *path = args->positional_count > 1 ? args->positional[1] : "-";
    FILE *input = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (input == NULL) {
        fprintf(stderr, "stockctl: publish: cannot open %s\n", path);
        return CTL_EXIT_USAGE;
    }
    int exit_code = CTL_EXIT_INTERNAL;
    if (connect_broker(&p, args) && publish_all(&p, input)) {
        bool all = await_results(&p, args->wait_s);
        show_progress(&p, true);
        if (!all)
            fprintf(stderr, "stockctl: publish: %ld of %ld requests have no result after %" PRId64 " s\n",
                    p.published - p.answered, p.published, args->wait_s);
        exit_code = all ? CTL_EXIT_OK : ctl_exit_code(STOCK_UNAVAILABLE);
    }
    if (input != stdin)
        fclose(input);
    natsSubscription_Destroy(p.replies);
    natsInbox_Destroy(p.inbox);
    jsCtx_Destroy(p.js);
    natsConnection_Destroy(p.nc);
    nats_Close();
    return exit_code;
}
