/*
 * postgres.c -- the postgres backend: libstock over PostgreSQL through libpq,
 * with the database scheme of docs/schemes.md (src/backend/postgres_schema.c).
 *
 * Threading: stock_submit only queues the batch and wakes the backend's
 * worker thread, so a caller's event loop never waits for the database. The
 * worker owns the connection. It takes every batch queued while the last
 * transaction was in flight (up to PG_TXN_OPS_MAX ops) and runs them as ONE
 * transaction: all statements are pipelined (libpq pipeline mode) and end in
 * one Sync, which commits the implicit transaction; the batches' done
 * callbacks run after the commit's result arrives (synchronous_commit on), so
 * a commit's fsync is shared by everything that queued meanwhile -- group
 * commit over the network. One connection, one transaction at a time, batches
 * in order: ops see the effects of every op before them, as stock.h demands.
 *
 * Failures: every business outcome is a result row, so an SQL error means the
 * database could not do the work; the whole transaction rolls back (never a
 * half-applied order) and is retried when that is safe (serialization
 * failure, deadlock, a unique violation from a concurrent writer, a lost
 * connection before the commit was sent), else every op gets STOCK_IO with the
 * server's words.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/postgres.h"
#include "lib/batches.h"
#include "lib/clock.h"
#include "lib/id.h"
#include "lib/message.h"
#include "lib/result.h"
#include "lib/worker.h"

#define PG_RETRY_MAX 8              /* attempts of one transaction */
#define PG_RETRY_BACKOFF_US 2000    /* first pause between attempts, doubled */
#define PG_RECONNECT_TRIES 5        /* connection attempts before UNAVAILABLE */
#define PG_RECONNECT_PAUSE_US 100000LL /* first pause between them, doubled */
#define PG_CONNECT_TIMEOUT_S_MIN 2  /* libpq treats less as 2 */
/* How long pg_terminate_backend waits for the lost session to end. */
#define PG_TERMINATE_WAIT_MS 5000
#define PG_TERMINATE_WAIT_TEXT "5000"
/* TCP keepalives: an idle peer that is gone is noticed after about
 * idle + interval x count seconds. */
#define PG_KEEPALIVE_IDLE_S "5"
#define PG_KEEPALIVE_INTERVAL_S "2"
#define PG_KEEPALIVE_COUNT "3"
#define PG_SEND_CHUNK 256           /* statements queued between flushes */
#define PG_REPLICA_RETRY_US 1000000 /* pause before reconnecting a lost replica */
/* Longest wait for the replica, to connect or to answer one query. The
 * pre-check only saves the primary work, and the worker waits for it before
 * every transaction: a replica that hangs (a stopped host, a full network
 * buffer) is dropped after this, never waited on for ever. */
#define PG_REPLICA_TIMEOUT_MS 1000
#define PG_LSN_MAX 32               /* bytes of an LSN as text */
#define PG_BUCKET_SEED_RANGE 720720 /* divisible by 1..16: even over small K */
#define PG_FENCED_MAX 1024          /* bytes of fenced ids kept from one error */

typedef enum pg_commit_state {
    PG_COMMIT_NONE,      /* the transaction did not commit */
    PG_COMMIT_DONE,      /* it committed */
    PG_COMMIT_UNKNOWN,   /* the lost session could not be ended or read */
} pg_commit_state;

typedef enum pg_outcome {
    PG_COMMITTED,   /* every op has its result */
    PG_RETRY,       /* rolled back; safe to run again */
    PG_FAILED,      /* rolled back; error in store->error */
    PG_FENCED,      /* rolled back; ops named fenced ids (flight->fenced) */
    PG_LOST,        /* connection lost; committed if sync_sent */
    PG_LATE,        /* no answer by the deadline; committed if sync_sent */
} pg_outcome;

typedef struct pg_store {
    struct stock base;
    pg_options options;
    int64_t client_id;        /* random, names this store in stock_clients */
    int64_t txn_id;           /* token of the last transaction sent */
    PGconn *conn;             /* worker-owned */
    int backend_pid;          /* the server process serving conn */
    bool abandoned;           /* conn was given up with a transaction maybe
                                 open on backend_pid: the server may hold its
                                 row locks for as long as the network keeps
                                 the silence from it (a black hole: hours),
                                 so the next connection ends that session
                                 before anything runs */
    PGconn *replica;          /* worker-owned; NULL when absent or lost */
    PGconn *lister;           /* worker-owned, for stock_list: opened at the
                                 first listing, NULL when lost */
    int64_t replica_retry_us; /* when a lost replica may be tried again */
    char lsn[PG_LSN_MAX];     /* primary WAL position after our last commit */
    _Atomic uint64_t replica_lag_bytes;   /* as of the last check, for health */
    atomic_bool replica_unreachable;
    char error[STOCK_MESSAGE_MAX];

    worker worker;            /* runs every transaction (lib/worker.h) */

    pg_plan plan;
    stock_op **ops;           /* the transaction's ops still to decide */
    uint32_t *candidates;     /* pre-check: op index of each candidate */
    uint32_t op_count;
} pg_store;

/* Sleeps the worker between attempts. */
static void pause_us(int64_t micros)
{
    struct timespec pause = {micros / 1000000, (micros % 1000000) * 1000};
    nanosleep(&pause, NULL);
}

static void set_error(pg_store *store, const char *what, PGconn *conn)
{
    const char *detail = conn != NULL ? PQerrorMessage(conn) : "";
    snprintf(store->error, sizeof store->error, "postgres: %s%s%.*s", what,
             detail[0] != '\0' ? ": " : "", (int)strcspn(detail, "\n"), detail);
}

/* ---------------------------------------------------------- connections */


stock_code pg_lost_or(PGconn *conn, stock_code code)
{
    /* PQisBusy alone misses a session whose results arrived but were not
     * all collected (a pipeline cut short): libpq says ACTIVE then too. */
    return PQstatus(conn) == CONNECTION_BAD || PQisBusy(conn) ||
                   PQtransactionStatus(conn) == PQTRANS_ACTIVE
               ? STOCK_UNAVAILABLE
               : code;
}

/* Runs a statement that returns nothing, or one text value into out. */
static bool exec_simple(PGconn *conn, uint32_t timeout_ms, const char *sql, char *out,
                        size_t out_size)
{
    PGresult *result = pg_exec_script_until(conn, sql, pg_deadline(timeout_ms));
    ExecStatusType status = PQresultStatus(result);
    bool ok = out == NULL ? status == PGRES_COMMAND_OK
                          : status == PGRES_TUPLES_OK && PQntuples(result) == 1;
    if (ok && out != NULL)
        snprintf(out, out_size, "%s", PQgetvalue(result, 0, 0));
    PQclear(result);
    return ok;
}

stock_code pg_connect(const pg_options *options, PGconn **out, char *error, size_t size)
{
    *out = NULL;
    /* The URI is expanded as dbname; libstock names the session unless the
     * URI does (application_name). The time limits come before it, so that
     * a URI's own connect_timeout or keepalives_* wins: a connection
     * attempt ends within connect_timeout (libpq's least is 2 s), and a
     * peer that vanishes (a dead host, a cut network) is noticed by TCP
     * keepalives while idle and by tcp_user_timeout while data is unacked,
     * instead of the kernel's minutes. A server that is alive but frozen
     * still acks: the batch deadline (run_transaction) bounds that. */
    char connect_s[16], user_ms[16];
    snprintf(connect_s, sizeof connect_s, "%u",
             (options->timeout_ms + 999) / 1000 < PG_CONNECT_TIMEOUT_S_MIN
                 ? PG_CONNECT_TIMEOUT_S_MIN : (options->timeout_ms + 999) / 1000);
    snprintf(user_ms, sizeof user_ms, "%u", options->timeout_ms);
    const char *const keywords[] = {"connect_timeout", "keepalives", "keepalives_idle",
                                    "keepalives_interval", "keepalives_count",
                                    "tcp_user_timeout", "dbname",
                                    "fallback_application_name", NULL};
    const char *const values[] = {connect_s, "1", PG_KEEPALIVE_IDLE_S, PG_KEEPALIVE_INTERVAL_S,
                                  PG_KEEPALIVE_COUNT, user_ms, options->conninfo, "libstock",
                                  NULL};
    PGconn *conn = PQconnectdbParams(keywords, values, 1);
    const char *detail = PQerrorMessage(conn);
    if (PQstatus(conn) != CONNECTION_OK) {
        message_set(error, size, "postgres: cannot connect: %.*s",
                    (int)strcspn(detail, "\n"), detail);
        PQfinish(conn);
        return STOCK_UNAVAILABLE;
    }
    *out = conn;
    return STOCK_OK;
}

stock_code pg_session_open(const pg_options *options, int64_t client_id, PGconn **out,
                           char *error, size_t size)
{
    *out = NULL;
    PGconn *conn = NULL;
    stock_code code = pg_connect(options, &conn, error, size);
    if (code != STOCK_OK)
        return code;
    const char *commit = options->synchronous ? "SET synchronous_commit = on"
                                              : "SET synchronous_commit = off";
    /* client_min_messages: the schema's IF NOT EXISTS notices are noise.
     * stock.bucket_seed: the bucket this store tries first (stock_take). */
    char seed[64];
    snprintf(seed, sizeof seed, "SET stock.bucket_seed = '%d'",
             (int)(client_id % PG_BUCKET_SEED_RANGE));
    if (!exec_simple(conn, options->timeout_ms, commit, NULL, 0) ||
        !exec_simple(conn, options->timeout_ms, "SET client_min_messages = warning", NULL, 0) ||
        !exec_simple(conn, options->timeout_ms, seed, NULL, 0)) {
        const char *why = pg_error_message(conn, NULL);
        message_set(error, size, "postgres: cannot configure the session: %.*s",
                    (int)strcspn(why, "\n"), why);
        code = pg_lost_or(conn, STOCK_IO);
        PQfinish(conn);
        return code;
    }
    code = pg_schema_install(conn, options->timeout_ms, error, size);
    if (code != STOCK_OK) {
        code = pg_lost_or(conn, code);
        PQfinish(conn);
        return code;
    }
    *out = conn;
    return STOCK_OK;
}

/* Connects to the primary and installs the schema; the connection is left
 * idle outside pipeline mode. On failure store->error says why. */
static stock_code conn_open(pg_store *store, PGconn **out)
{
    PGconn *conn = NULL;
    stock_code code = pg_session_open(&store->options, store->client_id, &conn,
                                      store->error, sizeof store->error);
    if (code == STOCK_OK &&
        !exec_simple(conn, store->options.timeout_ms, "SELECT pg_current_wal_lsn()::text",
                     store->lsn, sizeof store->lsn)) {
        set_error(store, "cannot read the WAL position", conn);
        code = pg_lost_or(conn, STOCK_IO);
        PQfinish(conn);
    }
    *out = code == STOCK_OK ? conn : NULL;
    return code;
}

static bool conn_enter_pipeline(pg_store *store, PGconn *conn)
{
    if (PQsetnonblocking(conn, 1) != 0 || PQenterPipelineMode(conn) != 1) {
        set_error(store, "cannot enter pipeline mode", conn);
        return false;
    }
    return true;
}

/* Ends the lost session (it may still be running our transaction: a lock
 * wait can outlast the deadline) and waits until it is gone, so that what
 * the token says next is final. False if it is still there, or if conn
 * did not answer within stock_timeout_ms (a query may then still be
 * running on it: the caller drops it). */
static bool old_session_ended(pg_store *store, PGconn *conn)
{
    char pid[16];
    snprintf(pid, sizeof pid, "%d", store->backend_pid);
    const char *values[1] = {pid};
    int64_t deadline_us = pg_deadline(store->options.timeout_ms + PG_TERMINATE_WAIT_MS);
    PGresult *result = pg_exec_until(conn, "SELECT pg_terminate_backend($1::integer, "
                                     PG_TERMINATE_WAIT_TEXT ")", 1, values, deadline_us);
    PQclear(result);
    if (result == NULL)
        return false;
    result = pg_exec_until(conn, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::integer",
                           1, values, pg_deadline(store->options.timeout_ms));
    bool gone = PQresultStatus(result) == PGRES_TUPLES_OK && PQgetvalue(result, 0, 0)[0] == '0';
    PQclear(result);
    return gone;
}

/* Whether the last transaction (store->txn_id) committed, read through a
 * fresh connection after the old one was lost mid-commit; every call waits
 * stock_timeout_ms at most. */
static pg_commit_state token_state(pg_store *store, PGconn *conn)
{
    if (!old_session_ended(store, conn))
        return PG_COMMIT_UNKNOWN;
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, store->client_id);
    const char *values[1] = {id};
    PGresult *result = NULL;
    if (PQsendQueryPrepared(conn, PG_STMT_TOKEN_READ, 1, values, NULL, NULL, 0) == 1)
        result = pg_result_until(conn, pg_deadline(store->options.timeout_ms));
    pg_commit_state state = PG_COMMIT_UNKNOWN;
    if (PQresultStatus(result) == PGRES_TUPLES_OK)
        state = PQntuples(result) == 1 &&
                        strtoll(PQgetvalue(result, 0, 0), NULL, 10) == store->txn_id
                    ? PG_COMMIT_DONE
                    : PG_COMMIT_NONE;
    PQclear(result);
    return state;
}

/* Reconnects after a loss, with growing pauses, as long as the next attempt
 * starts before deadline_us (CLOCK_MONOTONIC; the first always runs).
 * *committed (may be NULL) receives whether the last transaction committed. */
static stock_code reconnect(pg_store *store, pg_commit_state *committed, int64_t deadline_us)
{
    PQfinish(store->conn);
    store->conn = NULL;
    stock_code code = STOCK_UNAVAILABLE;
    for (int attempt = 0; attempt < PG_RECONNECT_TRIES; attempt++) {
        int64_t pause = attempt > 0 ? PG_RECONNECT_PAUSE_US << (attempt - 1) : 0;
        if (attempt > 0 && clock_now_us(CLOCK_MONOTONIC) + pause >= deadline_us)
            break;
        pause_us(pause);
        PGconn *conn = NULL;
        code = conn_open(store, &conn);
        if (code != STOCK_OK)
            continue;
        bool ended = true;
        if (committed != NULL)
            *committed = token_state(store, conn);
        else if (store->abandoned)
            ended = old_session_ended(store, conn);
        if (!ended || PQstatus(conn) != CONNECTION_OK ||
            PQtransactionStatus(conn) != PQTRANS_IDLE) {
            /* lost or silent while the token was read or the abandoned
             * session ended, or that session is still there: the next attempt */
            set_error(store, ended ? "lost the connection while reading the commit token or "
                                     "ending the session of a batch given up on"
                                   : "the session of a batch given up on did not end", conn);
            PQfinish(conn);
            code = STOCK_UNAVAILABLE;
            continue;
        }
        store->backend_pid = PQbackendPID(conn);
        store->abandoned = false;
        if (!conn_enter_pipeline(store, conn)) {
            PQfinish(conn);
            return STOCK_IO;
        }
        store->conn = conn;
        return STOCK_OK;
    }
    assert(store->conn == NULL);
    return code;
}

/* ------------------------------------------------------------- pipeline */

/* The progress of one transaction through the pipeline. */
typedef struct pg_flight {
    uint32_t sent;            /* steps sent */
    uint32_t answered;        /* steps whose result arrived */
    uint32_t syncs_sent, syncs_seen;
    uint32_t syncs_wanted;    /* 1, or 2 with the LSN read */
    bool await_null;          /* a result's closing NULL is due */
    bool failed;              /* an error arrived: the rest is aborted */
    char sqlstate[6];
    char fenced[PG_FENCED_MAX];   /* with PG_SQLSTATE_FENCED: the error's detail */
    int64_t sync_start_us;
    int64_t commit_us;        /* latency of the commit, once seen */
} pg_flight;

/* Sends what remains of the transaction, up to PG_SEND_CHUNK statements. */
static bool flight_send(pg_store *store, pg_flight *flight, int64_t now)
{
    PGconn *conn = store->conn;
    pg_plan *plan = &store->plan;
    for (uint32_t k = 0; k < PG_SEND_CHUNK && flight->sent < plan->step_count; k++) {
        if (!pg_plan_send(plan, flight->sent, conn, store->options.buckets,
                          store->client_id, store->txn_id, now))
            return false;
        flight->sent++;
    }
    if (flight->sent < plan->step_count || flight->syncs_sent > 0)
        return true;
    flight->sync_start_us = clock_now_us(CLOCK_MONOTONIC);
    if (PQpipelineSync(conn) != 1)
        return false;
    flight->syncs_sent = 1;
    if (flight->syncs_wanted == 2) {
        if (PQsendQueryPrepared(conn, PG_STMT_LSN, 0, NULL, NULL, NULL, 0) != 1 ||
            PQpipelineSync(conn) != 1)
            return false;
        flight->syncs_sent = 2;
    }
    return true;
}

/* Records the first error of the transaction. */
static void flight_fail(pg_store *store, pg_flight *flight, const PGresult *result,
                        const char *what)
{
    if (flight->failed)
        return;
    flight->failed = true;
    const char *state = result != NULL ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : NULL;
    snprintf(flight->sqlstate, sizeof flight->sqlstate, "%s", state != NULL ? state : "");
    const char *detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL);
    if (strcmp(flight->sqlstate, PG_SQLSTATE_FENCED) == 0 && detail != NULL) {
        /* A list cut short ends at its last whole id: a cut one could name
         * another op's id. */
        int len = snprintf(flight->fenced, sizeof flight->fenced, "%s", detail);
        if (len >= (int)sizeof flight->fenced)
            *strrchr(flight->fenced, ' ') = '\0';
    }
    const char *text = result != NULL ? PQresultErrorMessage(result) : "";
    snprintf(store->error, sizeof store->error, "postgres: %s%.*s", what,
             (int)strcspn(text, "\n"), text);
}

/* Handles one result of the pipeline. */
static void flight_result(pg_store *store, pg_flight *flight, PGresult *result)
{
    ExecStatusType status = PQresultStatus(result);
    if (status == PGRES_PIPELINE_SYNC) {
        flight->await_null = false;
        if (++flight->syncs_seen == 1)
            flight->commit_us = clock_now_us(CLOCK_MONOTONIC) - flight->sync_start_us;
        return;
    }
    flight->await_null = true;
    if (flight->syncs_seen == 1) {
        /* The WAL position after our commit, for the replica's freshness. */
        if (status == PGRES_TUPLES_OK && PQntuples(result) == 1)
            snprintf(store->lsn, sizeof store->lsn, "%s", PQgetvalue(result, 0, 0));
        return;
    }
    if (status == PGRES_FATAL_ERROR || status == PGRES_PIPELINE_ABORTED) {
        flight_fail(store, flight, result, "");
    } else if (!flight->failed && flight->answered < store->plan.step_count &&
               !pg_plan_complete(&store->plan, flight->answered, result)) {
        /* Only a schema that is not ours can do this; the transaction
         * still commits at the Sync, so say that it may have applied. */
        flight_fail(store, flight, NULL, "a result did not have the expected shape "
                                         "(functions from another libstock?); the batch "
                                         "may have been applied");
    }
    if (status != PGRES_FATAL_ERROR || flight->answered < store->plan.step_count)
        flight->answered++;
}

/* Reads every result that has arrived. False when the connection broke. */
static bool flight_receive(pg_store *store, pg_flight *flight)
{
    PGconn *conn = store->conn;
    if (PQconsumeInput(conn) != 1)
        return false;
    while (flight->syncs_seen < flight->syncs_wanted && !PQisBusy(conn)) {
        PGresult *result = PQgetResult(conn);
        if (result == NULL) {
            if (!flight->await_null)
                break;
            flight->await_null = false;
            continue;
        }
        flight_result(store, flight, result);
        PQclear(result);
    }
    return PQstatus(conn) == CONNECTION_OK;
}

/* The connection broke: close it, so that the next attempt reconnects. */
static pg_outcome flight_lost(pg_store *store, const char *what)
{
    if (store->error[0] == '\0' || what != NULL)
        set_error(store, what != NULL ? what : "connection lost", store->conn);
    return PG_LOST;
}

/* Sends the planned transaction and waits for its commit (or failure)
 * until deadline_us (CLOCK_MONOTONIC). */
static pg_outcome flight_run(pg_store *store, pg_flight *flight, int64_t deadline_us)
{
    PGconn *conn = store->conn;
    assert(conn != NULL && PQpipelineStatus(conn) == PQ_PIPELINE_ON);
    memset(flight, 0, sizeof *flight);
    flight->syncs_wanted = store->options.replica_conninfo != NULL ? 2 : 1;
    store->txn_id++;
    store->error[0] = '\0';
    int64_t now = clock_now_us(CLOCK_REALTIME);
    while (flight->syncs_seen < flight->syncs_wanted) {
        if (!flight_send(store, flight, now))
            return flight_lost(store, "cannot send");
        int pending = PQflush(conn);
        if (pending < 0 || !flight_receive(store, flight))
            return flight_lost(store, NULL);
        if (flight->syncs_seen == flight->syncs_wanted)
            break;
        if (flight->sent < store->plan.step_count && pending == 0)
            continue;
        if (!pg_wait(conn, (short)(POLLIN | (pending ? POLLOUT : 0)), deadline_us)) {
            snprintf(store->error, sizeof store->error, "postgres: no answer from the server "
                     "within stock_timeout_ms (%u ms)", store->options.timeout_ms);
            return PG_LATE;
        }
    }
    assert(flight->answered <= store->plan.step_count);
    if (!flight->failed)
        return PG_COMMITTED;
    if (strcmp(flight->sqlstate, PG_SQLSTATE_FENCED) == 0)
        return PG_FENCED;
    /* Safe to rerun: the transaction rolled back, and these errors come from
     * concurrency (another writer), not from what we asked. */
    static const char *const retryable[] = {"40001", "40P01", "23505", "55P03"};
    for (size_t i = 0; i < sizeof retryable / sizeof retryable[0]; i++)
        if (strcmp(flight->sqlstate, retryable[i]) == 0)
            return PG_RETRY;
    return PQstatus(conn) == CONNECTION_OK ? PG_FAILED : PG_LOST;
}

/* ---------------------------------------------------------- transactions */

static void ops_fail(pg_store *store, stock_code code, const char *why)
{
    for (uint32_t i = 0; i < store->op_count; i++) {
        stock_op *op = store->ops[i];
        op->failed_line = -1;
        result_fail(op, code, "%s%s", why, store->error);
    }
}

/* Returns the ops to their state on entry, before a (re)run. */
static void ops_reset(pg_store *store)
{
    for (uint32_t i = 0; i < store->op_count; i++) {
        stock_op *op = store->ops[i];
        op->code = STOCK_OK;
        op->failed_line = -1;
        op->available = 0;
        op->message[0] = '\0';
    }
}

/* Whether the fenced ids (space-separated) hold id. */
static bool fenced_holds(const char *ids, stock_id id)
{
    for (const char *at = ids; *at != '\0';) {
        size_t len = strcspn(at, " ");
        if (len > 0 && id_equal((stock_id){at, (uint32_t)len}, id))
            return true;
        at += len + (at[len] == ' ');
    }
    return false;
}

bool pg_fenced_conflict(stock_op *op, const char *fenced)
{
    char kind = fenced[0];
    if (kind == '\0' || fenced[1] != ' ')
        return false;
    const char *ids = fenced + 2;
    if (op->type == STOCK_OP_ORDER) {
        if (kind == 'O' && op->id.ptr != NULL && fenced_holds(ids, op->id)) {
            op->failed_line = -1;
            result_conflict(op, "order", op->id);
            return true;
        }
        /* the order's earliest fenced line, as one database names it */
        for (uint32_t i = 0; kind == 'L' && i < op->line_count; i++)
            if (fenced_holds(ids, op->lines[i].line_id)) {
                op->failed_line = (int32_t)i;
                result_conflict(op, "line", op->lines[i].line_id);
                return true;
            }
        return false;
    }
    const char *what = kind == 'L' && op->type == STOCK_OP_DEDUCT    ? "line"
                       : kind == 'R' && op->type == STOCK_OP_REFUND ? "refund"
                       : kind == 'A' && op->type == STOCK_OP_ADD    ? "adjustment"
                                                                    : NULL;
    if (what == NULL || op->id.ptr == NULL || !fenced_holds(ids, op->id))
        return false;
    op->failed_line = -1;
    result_conflict(op, what, op->id);
    return true;
}

/* A sharded member's transaction refused by a fence: the ops that write a
 * fenced id answer CONFLICT and leave the transaction, so that the others
 * can run again without them. False when no op writes one (nothing would
 * change). */
static bool drop_fenced(pg_store *store, const char *fenced)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < store->op_count; i++)
        if (!pg_fenced_conflict(store->ops[i], fenced))
            store->ops[kept++] = store->ops[i];
    bool dropped = kept < store->op_count;
    store->op_count = kept;
    return dropped;
}

/* Drops conn with a transaction maybe open on it: the next connection ends
 * its server session before anything runs (abandoned). */
static void conn_abandon(pg_store *store)
{
    PQfinish(store->conn);
    store->conn = NULL;
    store->abandoned = true;
}

/* Settles a transaction whose connection was lost after its commit was
 * sent. Returns true when the ops are settled (failed), false to retry. */
static bool settle_lost_commit(pg_store *store, int64_t deadline_us)
{
    pg_commit_state committed = PG_COMMIT_UNKNOWN;
    conn_abandon(store);   /* its session ended by the reconnect that reads the token */
    stock_code code = reconnect(store, &committed, deadline_us);
    if (code != STOCK_OK || committed == PG_COMMIT_UNKNOWN) {
        ops_fail(store, STOCK_UNAVAILABLE, "the connection was lost while committing: the "
                 "outcome is unknown (a retry with the same id is safe): ");
        return true;
    }
    if (committed == PG_COMMIT_DONE) {
        ops_fail(store, STOCK_UNAVAILABLE, "the batch was committed but the connection was "
                 "lost before its results arrived (a retry with the same id answers REPLAY "
                 "with them): ");
        return true;
    }
    return false;
}

/* True when the idle connection has input: between transactions the server
 * only speaks to end the session (shutdown, restart, terminated backend), so
 * the connection is replaced before anything is sent, while that is safe. */
static bool conn_spoke_while_idle(PGconn *conn)
{
    struct pollfd ready = {PQsocket(conn), POLLIN, 0};
    return PQstatus(conn) != CONNECTION_OK || poll(&ready, 1, 0) != 0;
}

/* A server that did not answer by the deadline: its session is dropped (the
 * next batch reconnects) and the ops fail UNAVAILABLE. If the commit was
 * sent, a frozen server may still apply it when it resumes. */
static void fail_late(pg_store *store, const pg_flight *flight)
{
    conn_abandon(store);
    ops_fail(store, STOCK_UNAVAILABLE, flight->syncs_sent > 0
             ? "the outcome is unknown (a retry with the same id is safe): "
             : "the batch was not applied: ");
}

/* Runs store->ops as one transaction, retrying where that is safe, within
 * the store's deadline (stock_timeout_ms). */
static void run_transaction(pg_store *store)
{
    pg_plan_build(&store->plan, store->ops, store->op_count, store->options.merge);
    int64_t deadline_us = pg_deadline(store->options.timeout_ms);
    for (int attempt = 0;; attempt++) {
        if (store->conn != NULL && conn_spoke_while_idle(store->conn)) {
            PQfinish(store->conn);   /* nothing in flight: safe to replace */
            store->conn = NULL;
        }
        if (store->conn == NULL && reconnect(store, NULL, deadline_us) != STOCK_OK) {
            ops_fail(store, STOCK_UNAVAILABLE, "");
            return;
        }
        ops_reset(store);
        pg_flight flight;
        pg_outcome outcome = flight_run(store, &flight, deadline_us);
        if (outcome == PG_LATE) {
            fail_late(store, &flight);
            return;
        }
        if (outcome == PG_COMMITTED) {
            stats_count_sync(&store->base.stats,
                             flight.commit_us > 0 ? (uint64_t)flight.commit_us : 0);
            return;
        }
        if (outcome == PG_FENCED && drop_fenced(store, flight.fenced)) {
            if (store->op_count == 0)
                return;
            ops_reset(store);
            pg_plan_build(&store->plan, store->ops, store->op_count, store->options.merge);
            /* no retry, no pause: each rerun drops one op at least */
            attempt--;
            continue;
        }
        if (outcome == PG_FAILED || outcome == PG_FENCED) {
            ops_fail(store, STOCK_IO, "");
            return;
        }
        if (outcome == PG_LOST && flight.syncs_sent > 0 && settle_lost_commit(store, deadline_us))
            return;
        if (outcome == PG_LOST && flight.syncs_sent == 0)
            conn_abandon(store);   /* never committed: reconnect and rerun */
        if (attempt + 1 == PG_RETRY_MAX) {
            ops_fail(store, STOCK_IO, "gave up after 8 attempts: ");
            return;
        }
        pause_us((int64_t)PG_RETRY_BACKOFF_US << attempt);
    }
}

/* ------------------------------------------------------ replica pre-check */

/* Deductions the replica shows certainly cannot succeed: the SKU has no stock
 * at all and the line id is new. The replica is trusted only when it has
 * replayed our last commit (so it shows everything this store did), and only
 * for deductions that no earlier op of the transaction could help: those
 * before the first op that can add stock or use a line id (set, add, refund,
 * order, the hold operations), first uses of their line id. Sold out stays
 * sold out under deductions, so the answer is exact: INSUFFICIENT with
 * available 0 -- but only with nothing held, since a hold past its deadline
 * gives its units back in the primary's sweep, which the replica cannot
 * have seen (the model walk caught the replica answering 0 for 1).
 *
 * Freshness is its own statement, before the pre-check: a statement's
 * snapshot is taken when it starts, so a replay position read inside the
 * pre-check could already be past our commit while its snapshot is not. */
/* Whether the replica has replayed up to $1, and the WAL bytes it is
 * short of it (0 when it has). */
static const char pg_fresh_sql[] =
    "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn, "
    "GREATEST(pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn()), 0)::bigint";

static const char pg_precheck_sql[] =
    "SELECT d.n FROM (SELECT x.line_id, x.sku_id, x.n, row_number() OVER "
    "(PARTITION BY x.line_id ORDER BY x.n) AS k FROM unnest($1::text[], $2::text[]) "
    "WITH ORDINALITY AS x(line_id, sku_id, n)) d "
    "LEFT JOIN LATERAL (SELECT 1 AS used FROM inventory_flow f "
    "WHERE f.line_id = d.line_id LIMIT 1) u ON true "
    "WHERE d.k = 1 AND u.used IS NULL "
    "AND (SELECT sum(v.leaved_amount) + sum(v.held) FROM inventory v "
    "WHERE v.sku_id = d.sku_id) = 0";

static void replica_drop(pg_store *store)
{
    PQfinish(store->replica);
    store->replica = NULL;
    store->replica_retry_us = clock_now_us(CLOCK_MONOTONIC) + PG_REPLICA_RETRY_US;
    atomic_store(&store->replica_unreachable, true);
}

bool pg_wait(PGconn *conn, short events, int64_t deadline_us)
{
    for (;;) {
        int64_t left_us = deadline_us - clock_now_us(CLOCK_MONOTONIC);
        if (left_us <= 0)
            return false;
        struct pollfd ready = {PQsocket(conn), events, 0};
        int count = poll(&ready, 1, (int)(left_us / 1000) + 1);
        if (count > 0)
            return true;
        if (count < 0 && errno != EINTR)
            return false;
    }
}

/* Connects without blocking past PG_REPLICA_TIMEOUT_MS. */
static PGconn *replica_connect(const char *conninfo)
{
    int64_t deadline_us = pg_deadline(PG_REPLICA_TIMEOUT_MS);
    PGconn *conn = PQconnectStart(conninfo);
    if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
        return conn;
    PostgresPollingStatusType state = PGRES_POLLING_WRITING;
    while (state != PGRES_POLLING_OK && state != PGRES_POLLING_FAILED) {
        short events = state == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        if (!pg_wait(conn, events, deadline_us))
            break;
        state = PQconnectPoll(conn);
    }
    return conn;   /* the caller checks PQstatus */
}

PGresult *pg_exec_until(PGconn *conn, const char *sql, int count, const char *const *values,
                        int64_t deadline_us)
{
    if (PQsendQueryParams(conn, sql, count, NULL, values, NULL, NULL, 0) != 1)
        return NULL;
    return pg_result_until(conn, deadline_us);
}

/* The results of the query sent on conn, up to deadline_us: the first or
 * the last, the others cleared; NULL as pg_result_until. */
static PGresult *results_until(PGconn *conn, int64_t deadline_us, bool last)
{
    PGresult *kept = NULL;
    for (;;) {
        int pending = PQflush(conn);
        if (pending < 0 || PQconsumeInput(conn) != 1)
            break;
        if (pending == 0 && !PQisBusy(conn)) {
            PGresult *result = PQgetResult(conn);
            if (result == NULL)
                return kept;   /* the end of the query's results */
            if (kept == NULL || last) {
                PQclear(kept);
                kept = result;
            } else {
                PQclear(result);
            }
            continue;
        }
        if (!pg_wait(conn, (short)(POLLIN | (pending ? POLLOUT : 0)), deadline_us))
            break;
    }
    PQclear(kept);
    return NULL;
}

PGresult *pg_result_until(PGconn *conn, int64_t deadline_us)
{
    return results_until(conn, deadline_us, false);
}

PGresult *pg_prepare_until(PGconn *conn, const char *name, const char *sql, int count,
                           int64_t deadline_us)
{
    if (PQsendPrepare(conn, name, sql, count, NULL) != 1)
        return NULL;
    return pg_result_until(conn, deadline_us);
}

PGresult *pg_exec_script_until(PGconn *conn, const char *sql, int64_t deadline_us)
{
    if (PQsendQuery(conn, sql) != 1)
        return NULL;
    return results_until(conn, deadline_us, true);
}

int64_t pg_deadline(uint32_t timeout_ms)
{
    return clock_now_us(CLOCK_MONOTONIC) + (int64_t)timeout_ms * 1000;
}

const char *pg_error_message(PGconn *conn, const PGresult *result)
{
    if (result != NULL && PQresultErrorMessage(result)[0] != '\0')
        return PQresultErrorMessage(result);
    if (conn == NULL)
        return "no connection";
    if (PQstatus(conn) == CONNECTION_OK && PQisBusy(conn))
        return "no answer from the server before the deadline (stock_timeout_ms)";
    return PQerrorMessage(conn);
}

/* Runs one query on the replica, waiting at most PG_REPLICA_TIMEOUT_MS; NULL
 * on timeout or a broken connection (the caller drops the replica). */
static PGresult *replica_exec(PGconn *conn, const char *sql, int count,
                              const char *const *values)
{
    return pg_exec_until(conn, sql, count, values, pg_deadline(PG_REPLICA_TIMEOUT_MS));
}

static bool replica_ready(pg_store *store)
{
    if (store->replica != NULL && PQstatus(store->replica) == CONNECTION_OK)
        return true;
    int64_t now = clock_now_us(CLOCK_MONOTONIC);
    if (now < store->replica_retry_us)
        return false;
    PQfinish(store->replica);
    store->replica = replica_connect(store->options.replica_conninfo);
    if (PQstatus(store->replica) == CONNECTION_OK)
        return true;
    /* The replica only saves the primary work: go on without it a while. */
    replica_drop(store);
    return false;
}

/* The candidates' line ids and SKUs as array literals; their op indexes in
 * store->candidates. Returns the count. */
static uint32_t precheck_arrays(pg_store *store, buf *lines, buf *skus)
{
    uint32_t count = 0;
    bool ok = buf_append(lines, "{", 1) && buf_append(skus, "{", 1);
    for (uint32_t i = 0; ok && i < store->op_count; i++) {
        const stock_op *op = store->ops[i];
        if (op->type != STOCK_OP_DEDUCT && op->type != STOCK_OP_GET &&
            op->type != STOCK_OP_LINE)
            break;
        if (op->type != STOCK_OP_DEDUCT)
            continue;
        ok = (count == 0 || (buf_append(lines, ",", 1) && buf_append(skus, ",", 1))) &&
             pg_text_element(lines, op->id) && pg_text_element(skus, op->sku);
        store->candidates[count++] = i;
    }
    ok = ok && buf_append(lines, "}", 2) && buf_append(skus, "}", 2);
    return ok ? count : 0;
}

/* Whether the replica has replayed our last commit; drops it on an error. */
static bool replica_fresh(pg_store *store)
{
    const char *lsn[1] = {store->lsn};
    PGresult *result = replica_exec(store->replica, pg_fresh_sql, 1, lsn);
    bool ok = PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1;
    bool fresh = ok && strcmp(PQgetvalue(result, 0, 0), "t") == 0;
    if (ok) {
        atomic_store(&store->replica_lag_bytes, strtoull(PQgetvalue(result, 0, 1), NULL, 10));
        atomic_store(&store->replica_unreachable, false);
    }
    PQclear(result);
    if (!ok)
        replica_drop(store);
    return fresh;
}

static void replica_precheck(pg_store *store)
{
    if (store->options.replica_conninfo == NULL || !replica_ready(store))
        return;
    buf lines = {0}, skus = {0};
    uint32_t count = precheck_arrays(store, &lines, &skus);
    PGresult *result = NULL;
    if (count > 0 && replica_fresh(store)) {
        const char *values[2] = {(char *)lines.data, (char *)skus.data};
        result = replica_exec(store->replica, pg_precheck_sql, 2, values);
        if (result == NULL)
            replica_drop(store);
    }
    buf_free(&lines);
    buf_free(&skus);
    if (result != NULL && PQresultStatus(result) != PGRES_TUPLES_OK) {
        replica_drop(store);
    } else if (result != NULL) {
        for (int row = 0; row < PQntuples(result); row++) {
            uint64_t n = strtoull(PQgetvalue(result, row, 0), NULL, 10);
            assert(n >= 1 && n <= count);
            stock_op *op = store->ops[store->candidates[n - 1]];
            result_insufficient(op, op->sku, 0);
        }
        uint32_t kept = 0;   /* drop the decided ops from the transaction */
        for (uint32_t i = 0; i < store->op_count; i++)
            if (store->ops[i]->code == STOCK_OK)
                store->ops[kept++] = store->ops[i];
        store->op_count = kept;
    }
    PQclear(result);
}

/* --------------------------------------------------------------- worker */

/* The worker's run: the chain's valid ops (at most PG_TXN_OPS_MAX) as one
 * transaction, after the replica's pre-check. */
static void run_batches(stock_t *base, stock_batch *batches)
{
    pg_store *store = (pg_store *)base;
    store->op_count = 0;
    for (stock_batch *batch = batches; batch != NULL; batch = batch->next)
        for (size_t i = 0; i < batch->count; i++)
            if (batch->ops[i].code == STOCK_OK)   /* not already INVALID */
                store->ops[store->op_count++] = &batch->ops[i];
    assert(store->op_count <= PG_TXN_OPS_MAX);
    replica_precheck(store);
    if (store->op_count > 0)
        run_transaction(store);
    batches_complete(&store->base, batches);
}

static const worker_tasks pg_tasks = {.run = run_batches};

/* -------------------------------------------------------------- backend */

static void pg_submit(stock_t *base, stock_batch *batch)
{
    pg_store *store = (pg_store *)base;
    worker_submit(&store->worker, batch);
}

static void store_free(pg_store *store)
{
    PQfinish(store->conn);
    PQfinish(store->replica);
    PQfinish(store->lister);
    pg_plan_free(&store->plan);
    pg_options_free(&store->options);
    free(store->ops);
    free(store->candidates);
    free(store);
}

/* What the last pre-check saw of the replica (worker thread), read on any
 * thread. */
static stock_code pg_get_health(stock_t *base, stock_health *health)
{
    pg_store *store = (pg_store *)base;
    health->replica_lag_bytes = atomic_load(&store->replica_lag_bytes);
    health->replica_unreachable = atomic_load(&store->replica_unreachable);
    return STOCK_OK;
}

static stock_code pg_close(stock_t *base)
{
    pg_store *store = (pg_store *)base;
    worker_close(&store->worker);
    store_free(store);
    return STOCK_OK;
}

/* Allocates the store with its options and scratch; NULL on out of memory. */
static pg_store *store_alloc(void)
{
    pg_store *store = calloc(1, sizeof *store);
    if (store == NULL)
        return NULL;
    store->ops = calloc(PG_TXN_OPS_MAX, sizeof store->ops[0]);
    store->candidates = calloc(PG_TXN_OPS_MAX, sizeof store->candidates[0]);
    if (store->ops == NULL || store->candidates == NULL || !pg_plan_init(&store->plan)) {
        store_free(store);
        return NULL;
    }
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != sizeof id)
        id = (uint64_t)clock_now_us(CLOCK_REALTIME) ^ (uint64_t)getpid() << 32;
    store->client_id = (int64_t)(id >> 1);   /* a positive bigint */
    return store;
}

static stock_code pg_open(const char *uri, const stock_config *config, stock_t **out,
                          char *message, size_t size)
{
    *out = NULL;
    pg_store *store = store_alloc();
    if (store == NULL)
        return STOCK_NOMEM;
    store->base.ops = &postgres_backend;
    stock_code code = pg_options_parse(uri, config, &store->options, message, size);
    PGconn *conn = NULL;
    if (code == STOCK_OK) {
        code = conn_open(store, &conn);
        if (code != STOCK_OK)
            message_set(message, size, "%s", store->error);
    }
    store->backend_pid = conn != NULL ? PQbackendPID(conn) : 0;
    if (code == STOCK_OK && !conn_enter_pipeline(store, conn)) {
        message_set(message, size, "%s", store->error);
        PQfinish(conn);
        code = STOCK_IO;
    }
    if (code == STOCK_OK) {
        store->conn = conn;
        code = worker_start(&store->worker, &store->base, &pg_tasks, PG_TXN_OPS_MAX);
    }
    if (code != STOCK_OK) {
        store_free(store);
        return code;
    }
    *out = &store->base;
    return STOCK_OK;
}

/* ------------------------------------------------------------- listing */

/* Reads the page on the lister session (not the pipelined one: a listing
 * is a few plain queries), on the worker's thread between two
 * transactions, so that a page shows every batch submitted before it,
 * committed. A page waits stock_timeout_ms at most: a lost session, or
 * one that did not answer in time (a query may still run on it), is
 * UNAVAILABLE and dropped, and the next listing connects again. */
static void run_listing(stock_t *base, worker_listing *listing)
{
    pg_store *store = (pg_store *)base;
    if (store->lister == NULL &&
        pg_session_open(&store->options, store->client_id, &store->lister,
                        listing->message, listing->message_size) != STOCK_OK) {
        listing->code = STOCK_UNAVAILABLE;
        return;
    }
    listing->code = pg_list_page(store->lister, store->options.timeout_ms, listing->request,
                                 true, listing->entries, listing->count, listing->message,
                                 listing->message_size);
    if (listing->code == STOCK_UNAVAILABLE) {
        PQfinish(store->lister);
        store->lister = NULL;
    }
}

static stock_code pg_list(stock_t *base, const list_request *request,
                          stock_list_entry *entries, uint32_t *count,
                          char *message, size_t message_size)
{
    pg_store *store = (pg_store *)base;
    return worker_list(&store->worker, run_listing, request, entries, count, message,
                       message_size);
}

const stock_backend_ops postgres_backend = {
    .name = "postgres",
    .holds = true,
    .accepts = pg_uri_accepts,
    .open = pg_open,
    .submit = pg_submit,
    .close = pg_close,
    .get_health = pg_get_health,
    .list = pg_list,
};
