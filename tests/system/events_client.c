/*
 * events_client.c -- the broker side of the events suite
 * (tests/suites/72-events.sh): reads what stockevents published, through
 * the NATS C client.
 *
 *   events_client dump URL STREAM
 *       prints every message of STREAM in stream order, one per line:
 *       "<Nats-Msg-Id> <JSON body>"
 *
 * Exits 0 on success, 1 when the broker fails, 2 on bad usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <nats/nats.h>

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

int main(int argc, char **argv)
{
    if (argc != 4 || strcmp(argv[1], "dump") != 0) {
        fprintf(stderr, "usage: events_client dump URL STREAM\n");
        return 2;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus status = natsConnection_ConnectTo(&nc, argv[2]);
    if (status == NATS_OK)
        status = natsConnection_JetStream(&js, nc, NULL);
    int code = status == NATS_OK ? dump(js, argv[3]) : failed(status, argv[2]);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return code;
}
