/*
 * backup.c -- BACKUP over RESP (see backup.h).
 *
 * stock_backup copies the store's files, seconds for a large store; on the
 * loop thread that would stall every client, PING and /healthz included.
 * So the copy runs as a libuv work request, and the reply waits in the
 * connection's queue as a conn_later: requests pipelined after BACKUP run
 * at once, but their replies follow BACKUP's. One backup runs at a time
 * (srv->backup): copies at once would compete for the same disk and each
 * hold the store's files from clean-up.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "server/backup.h"
#include "server/commands.h"
#include "server/log.h"

typedef struct backup_job {
    uv_work_t work;
    server *srv;
    conn *c;                       /* answered when done (kept by its slot) */
    conn_later *later;             /* c's slot for the reply */
    char dest[STOCK_PATH_MAX];
    stock_code code;               /* set by the worker */
    stock_backup_info info;
    char message[STOCK_MESSAGE_MAX];
} backup_job;

/* On a thread of libuv's pool: stock_backup may run on any thread, at
 * once with the store's batches. */
static void backup_work(uv_work_t *work)
{
    backup_job *job = work->data;
    job->code = stock_backup(job->srv->store, job->dest, &job->info, job->message);
}

/* The reply as docs/protocol.md words it, into the job's reply slot. */
static bool backup_render(const backup_job *job, buf *out)
{
    if (job->code != STOCK_OK)
        return resp_write_error(out, stock_code_name(job->code), job->message);
    return resp_write_array(out, 4) && resp_write_integer(out, (int64_t)job->info.end_lsn) &&
           resp_write_integer(out, (int64_t)job->info.snapshot_lsn) &&
           resp_write_integer(out, (int64_t)job->info.files) &&
           resp_write_integer(out, (int64_t)job->info.bytes);
}

/* Back on the loop thread: logs the outcome and answers the client. */
static void backup_done(uv_work_t *work, int status)
{
    backup_job *job = work->data;
    server *srv = job->srv;
    assert(srv->backup == job && status == 0);
    (void)status;   /* only uv_cancel makes it non-zero, and nothing cancels */
    srv->backup = NULL;
    srv->counters.backup_running = 0;
    if (job->code != STOCK_OK) {
        srv->counters.backups_failed++;
        log_warn("backup into %s failed: %s %s", job->dest, stock_code_name(job->code),
                 job->message);
    } else {
        srv->counters.backups_done++;
        log_info("backup into %s: done, holds the first %llu records (snapshot at lsn "
                 "%llu), %llu files, %llu bytes", job->dest,
                 (unsigned long long)job->info.end_lsn,
                 (unsigned long long)job->info.snapshot_lsn,
                 (unsigned long long)job->info.files, (unsigned long long)job->info.bytes);
    }
    if (!backup_render(job, &job->later->text)) {
        log_warn("client %llu: out of memory for a reply", (unsigned long long)job->c->id);
        conn_close(job->c);
    }
    conn_later_done(job->c, job->later);
    free(job);
}

void backup_resp(conn *c, const resp_request *r)
{
    assert(r->argc == 2);
    server *srv = c->srv;
    resp_arg arg = r->argv[1];
    if (arg.len == 0 || arg.len >= STOCK_PATH_MAX || memchr(arg.ptr, '\0', arg.len) != NULL) {
        commands_reply_error(c, "INVALID", "the backup's folder must be 1..%d bytes, no NUL",
                             STOCK_PATH_MAX - 1);
        return;
    }
    if (srv->backup != NULL) {
        commands_reply_error(c, "BUSY", "a backup into %s is running; send BACKUP again "
                             "once it is done", srv->backup->dest);
        return;
    }
    backup_job *job = calloc(1, sizeof *job);
    conn_later *later = job != NULL ? conn_add_later(c) : NULL;
    if (later == NULL) {
        free(job);
        commands_reply_error(c, "NOMEM", "out of memory");
        return;
    }
    memcpy(job->dest, arg.ptr, arg.len);
    job->dest[arg.len] = '\0';
    job->srv = srv;
    job->c = c;
    job->later = later;
    job->work.data = job;
    srv->backup = job;
    srv->counters.backup_running = 1;
    log_info("backup into %s: started", job->dest);
    int rc = uv_queue_work(srv->loop, &job->work, backup_work, backup_done);
    assert(rc == 0);   /* fails only for a NULL work callback */
    (void)rc;
}
