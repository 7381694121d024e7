/*
 * publish.c -- stockevents' loop (docs/events.md): finds the last event
 * the broker confirmed (the last message of the events stream carries its
 * sequence and part), follows the data folder's flow from there
 * (backend/flow_events.h) and publishes each event, one JetStream publish
 * confirmed at a time, with Nats-Msg-Id SEQ.PART: a publish repeated after
 * a crash between the broker's confirmation and the next look is dropped
 * by the stream's de-duplication window, and a consumer that sees one
 * twice anyway drops it by (seq, part).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "backend/flow_events.h"
#include "lib/clock.h"
#include "stockevents.h"

#define EVENTS_SUBJECT_MAX (EVENTS_PREFIX_MAX + 32)
#define EVENTS_STREAM_MAX (EVENTS_PREFIX_MAX + 8)
/* Waits between tries while JetStream does not answer (a restart). */
#define EVENTS_RETRY_MS 500
/* The thresholds file is looked at again, and the position the publisher
 * needs written down, at least this often, however busy the log keeps it. */
#define EVENTS_HOUSEKEEPING_US 1000000

typedef struct publisher {
    const events_options *options;
    volatile sig_atomic_t *stop;
    natsConnection *nc;
    jsCtx *js;
    char stream[EVENTS_STREAM_MAX];
    thresholds_watch thresholds;
    uint64_t resume_seq;          /* the last confirmed event's record */
    int64_t resume_part;          /* its part; -1: none confirmed */
    uint64_t next_needed;         /* the first record whose events are not
                                     all confirmed (reader.lsn) */
    uint64_t published;
    uint64_t lost;                /* records found deleted, as last reported */
} publisher;

static void say(const char *format, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("stockevents: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
}

static bool broker_failed(natsStatus status, jsErrCode code, const char *what)
{
    if (status == NATS_OK)
        return false;
    say("%s: %s (JetStream error %d)", what, natsStatus_GetText(status), (int)code);
    return true;
}

static bool connect_broker(publisher *p)
{
    natsOptions *options = NULL;
    natsStatus status = natsOptions_Create(&options);
    if (status == NATS_OK)
        status = natsOptions_SetURL(options, p->options->broker);
    if (status == NATS_OK)
        status = natsOptions_SetName(options, "stockevents");
    if (status == NATS_OK)
        status = natsOptions_SetMaxReconnect(options, -1);
    if (status == NATS_OK)
        status = natsConnection_Connect(&p->nc, options);
    natsOptions_Destroy(options);
    if (broker_failed(status, 0, p->options->broker))
        return false;
    return !broker_failed(natsConnection_JetStream(&p->js, p->nc, NULL), 0, "JetStream context");
}

/* Makes the events stream unless it exists (its settings are then the
 * operator's) and reads where its last event leaves off. */
static natsStatus find_resume(publisher *p)
{
    jsStreamInfo *info = NULL;
    jsErrCode code = 0;
    natsStatus status = js_GetStreamInfo(&info, p->js, p->stream, NULL, &code);
    if (status == NATS_NOT_FOUND) {
        char subject[EVENTS_SUBJECT_MAX];
        snprintf(subject, sizeof subject, "%s.events.>", p->options->prefix);
        const char *subjects[] = {subject};
        jsStreamConfig config;
        jsStreamConfig_Init(&config);
        config.Name = p->stream;
        config.Subjects = subjects;
        config.SubjectsLen = 1;
        config.Replicas = p->options->replicas;
        status = js_AddStream(&info, p->js, &config, NULL, &code);
    }
    uint64_t last = status == NATS_OK ? info->State.LastSeq : 0;
    jsStreamInfo_Destroy(info);
    p->resume_seq = 0;
    p->resume_part = -1;
    if (status != NATS_OK || last == 0)
        return status;
    natsMsg *msg = NULL;
    status = js_GetMsg(&msg, p->js, p->stream, last, NULL, &code);
    const char *seq = NULL, *part = NULL;
    if (status == NATS_OK && natsMsgHeader_Get(msg, "Stock-Seq", &seq) == NATS_OK &&
        natsMsgHeader_Get(msg, "Stock-Part", &part) == NATS_OK) {
        p->resume_seq = strtoull(seq, NULL, 10);
        p->resume_part = strtoll(part, NULL, 10);
    }
    natsMsg_Destroy(msg);
    return status;
}

/* Publishes one event and waits for the broker's confirmation, trying
 * again (the same Nats-Msg-Id) until it comes or a stop is asked. */
static bool publish_event(publisher *p, const flow_event *event)
{
    char subject[EVENTS_SUBJECT_MAX], seq[24], part[12], id[40];
    snprintf(subject, sizeof subject, "%s.events.%s", p->options->prefix,
             flow_event_kind_name(event->kind));
    snprintf(seq, sizeof seq, "%" PRIu64, event->seq);
    snprintf(part, sizeof part, "%" PRIu32, event->part);
    snprintf(id, sizeof id, "%s.%s", seq, part);
    char text[FLOW_EVENT_JSON_MAX];
    size_t len = flow_event_json(event, text);
    natsMsg *msg = NULL;
    natsStatus status = natsMsg_Create(&msg, subject, NULL, text, (int)len);
    if (status == NATS_OK)
        status = natsMsgHeader_Set(msg, "Stock-Seq", seq);
    if (status == NATS_OK)
        status = natsMsgHeader_Set(msg, "Stock-Part", part);
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.MsgId = id;
    for (unsigned attempt = 0; status == NATS_OK && !*p->stop; attempt++) {
        jsPubAck *ack = NULL;
        jsErrCode code = 0;
        status = js_PublishMsg(&ack, p->js, msg, &options, &code);
        jsPubAck_Destroy(ack);
        if (status == NATS_OK)
            break;
        if (status != NATS_TIMEOUT && status != NATS_NO_RESPONDERS &&
            status != NATS_CONNECTION_DISCONNECTED)
            break;
        if (attempt == 0)
            say("the broker does not confirm event %s (%s); trying again", id,
                natsStatus_GetText(status));
        status = NATS_OK;
        nats_Sleep(EVENTS_RETRY_MS);
    }
    natsMsg_Destroy(msg);
    if (broker_failed(status, 0, "publishing an event"))
        return false;
    p->published++;
    p->resume_seq = event->seq;
    p->resume_part = event->part;
    return !*p->stop;
}

/* Publishes the events of one record, but for those the broker already
 * confirmed (the record it resumes in). */
static bool publish_record(publisher *p, const flow_event *events, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        if (events[i].seq == p->resume_seq && (int64_t)events[i].part <= p->resume_part)
            continue;
        if (!publish_event(p, &events[i]))
            return false;
    }
    return true;
}

static void refresh_thresholds(publisher *p)
{
    char message[300];
    if (p->thresholds.path != NULL &&
        !thresholds_refresh(&p->thresholds, message, sizeof message))
        say("thresholds kept as they were: %s", message);
}

/* Rereads the thresholds if they changed, and tells the writer which
 * records the publisher still needs: from the first whose events are not
 * all confirmed on, so that snapshots never delete them, and a store whose
 * changes make no events for a long time still has its log trimmed. */
static void housekeeping(publisher *p, flow_events *follower)
{
    refresh_thresholds(p);
    uint64_t lost = flow_events_lost(follower);
    if (lost > p->lost)
        say("the events of %" PRIu64 " records are lost: the store deleted them before they "
            "were read (%" PRIu64 " in all)", lost - p->lost, lost);
    p->lost = lost;
    char message[STOCK_MESSAGE_MAX];
    if (flow_events_keep(follower, p->next_needed, message, sizeof message) != STOCK_OK)
        say("%s (snapshots may delete records not yet published)", message);
}

static int follow(publisher *p, flow_events *follower)
{
    int64_t checked_us = 0;
    while (!*p->stop) {
        int64_t now_us = clock_now_us(CLOCK_MONOTONIC);
        if (now_us - checked_us >= EVENTS_HOUSEKEEPING_US) {
            housekeeping(p, follower);
            checked_us = now_us;
        }
        const flow_event *events = NULL;
        uint32_t count = 0;
        uint64_t seq = 0;
        char message[STOCK_MESSAGE_MAX];
        journal_read_result read = flow_events_next(
            follower, p->thresholds.path != NULL ? thresholds_watched : NULL, &p->thresholds,
            &events, &count, &seq, message, sizeof message);
        if (read == JOURNAL_READ_FAILED) {
            say("reading the store: %s", message);
            return 1;
        }
        if (read == JOURNAL_READ_WAIT) {
            if (checked_us != now_us) {
                housekeeping(p, follower);
                checked_us = now_us;
            }
            nats_Sleep(p->options->poll_ms);
            continue;
        }
        if (!publish_record(p, events, count))
            return *p->stop ? 0 : 1;
        p->next_needed = seq + 1;
    }
    return 0;
}

/* Where to derive from: the record of the last event in the stream (its
 * parts up to the confirmed one skipped), or the first record whose events
 * were not all confirmed, by reader.lsn, if that is later: the records
 * between made no event (else the stream would end later). */
static uint64_t resume_point(publisher *p)
{
    int dir_fd = p->options->data != NULL
                     ? open(p->options->data, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    uint64_t kept = dir_fd >= 0 ? journal_reader_needs(dir_fd) : JOURNAL_READER_NONE;
    if (dir_fd >= 0)
        close(dir_fd);
    uint64_t from = p->resume_part >= 0 ? p->resume_seq : 0;
    if (kept != JOURNAL_READER_NONE && kept > from &&
        (p->resume_part < 0 || kept > p->resume_seq)) {
        from = kept;
        p->resume_seq = kept;
        p->resume_part = -1;
    }
    p->next_needed = from;
    return from;
}

static int start(publisher *p)
{
    natsStatus status;
    for (unsigned attempt = 0; (status = find_resume(p)) != NATS_OK && !*p->stop; attempt++) {
        if (status != NATS_TIMEOUT && status != NATS_NO_RESPONDERS) {
            broker_failed(status, 0, "reading the events stream");
            return 1;
        }
        if (attempt == 0)
            say("JetStream does not answer yet; waiting");
        nats_Sleep(EVENTS_RETRY_MS);
    }
    if (*p->stop)
        return 0;
    uint64_t from = resume_point(p);
    flow_events *follower = NULL;
    uint64_t first = 0;
    char message[STOCK_MESSAGE_MAX];
    const char *source = p->options->data != NULL ? p->options->data : p->options->store;
    stock_code code = flow_events_open(source, from, p->options->every_change, &follower,
                                       &first, message, sizeof message);
    if (code != STOCK_OK) {
        say("cannot read the store: %s: %s", stock_code_name(code), message);
        return 1;
    }
    if (first > from)
        say("the events of records %" PRIu64 "..%" PRIu64 " are lost: the store no "
            "longer holds them", from, first - 1);
    say("publishing to %s from record %" PRIu64, p->stream, first);
    int exit_status = follow(p, follower);
    flow_events_close(follower);
    return exit_status;
}

int events_run(const events_options *options, volatile sig_atomic_t *stop)
{
    publisher p = {.options = options, .stop = stop,
                   .thresholds = {.path = options->thresholds}};
    size_t i = 0;
    for (; options->prefix[i] != '\0' && i < EVENTS_PREFIX_MAX; i++) {
        char c = options->prefix[i];
        p.stream[i] = (char)(c == '.' ? '_' : (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c);
    }
    snprintf(p.stream + i, sizeof p.stream - i, "_EVENTS");
    int exit_status = connect_broker(&p) ? start(&p) : 1;
    say("published %" PRIu64 " events", p.published);
    thresholds_free(&p.thresholds.current);
    jsCtx_Destroy(p.js);
    natsConnection_Destroy(p.nc);
    return exit_status;
}
