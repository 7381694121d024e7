/*
 * postgres.h -- the pieces of the postgres backend (postgres.c) that live in
 * their own files: URI options (postgres_uri.c), the schema and its prepared
 * statements (postgres_schema.c), and turning a transaction's ops into
 * pipelined statements and their results back into op outputs
 * (postgres_plan.c). Internal to libstock; stock.h is the public contract.
 */
#ifndef STOCK_POSTGRES_H
#define STOCK_POSTGRES_H

#include <libpq-fe.h>

#include "backend/backend.h"
#include "lib/buf.h"
#include "stock.h"

#define PG_BUCKETS_MAX 64          /* rows a hot SKU may be split over */
#define PG_URI_MAX 4096            /* bytes in a store URI */
#define PG_TXN_OPS_MAX STOCK_BATCH_MAX  /* ops combined into one transaction */
/* The deadline of one transaction (stock_timeout_ms): every attempt,
 * reconnection and wait of a batch ends within it, so a server that stops
 * answering (a frozen or dead host) costs a batch this long, not more. */
#define PG_TIMEOUT_MS_DEFAULT 30000
#define PG_TIMEOUT_MS_MIN 100
#define PG_TIMEOUT_MS_MAX 3600000
#define PG_MIGRATE_TIMEOUT_MS 600000   /* the schema's script at open */

/* True for "postgres://..." and "postgresql://...". */
bool pg_uri_accepts(const char *uri);

/* The backend's options: the URI's stock_* query parameters, else the
 * stock_config fields. */
typedef struct pg_options {
    char *conninfo;          /* owned: the URI for libpq, stock_* removed */
    char *replica_conninfo;  /* owned, NULL without a replica */
    uint32_t buckets;        /* 1..PG_BUCKETS_MAX */
    bool merge;
    bool synchronous;        /* synchronous_commit on (durability SYNC) */
    uint32_t timeout_ms;     /* PG_TIMEOUT_MS_MIN..PG_TIMEOUT_MS_MAX */
} pg_options;

/*
 * Reads uri (postgres:// or postgresql://) and config into *options,
 * removing the query parameters stock_merge (0|1), stock_buckets
 * (1..PG_BUCKETS_MAX), stock_replica (a percent-encoded URI) and
 * stock_timeout_ms (PG_TIMEOUT_MS_MIN..PG_TIMEOUT_MS_MAX) before the URI goes
 * to libpq; the first three override config->no_merge, buckets and
 * replica_uri.
 * Returns STOCK_OK, STOCK_INVALID (message says which parameter is wrong) or
 * STOCK_NOMEM. On success free with pg_options_free.
 */
stock_code pg_options_parse(const char *uri, const stock_config *config,
                            pg_options *options, char *message, size_t size);
void pg_options_free(pg_options *options);

/*
 * Creates or migrates the schema on conn (idle, not in pipeline mode), under
 * an advisory lock so that concurrent opens do not race, and prepares the
 * statements pg_plan uses. Each statement waits timeout_ms at most
 * (pg_exec_until), but for the schema's script, which may build indexes
 * over a large table: PG_MIGRATE_TIMEOUT_MS. Returns STOCK_OK;
 * STOCK_IO with the server's words in message; STOCK_CORRUPT when the
 * database holds a newer schema than this library knows. On a failure the
 * caller judges the connection (lost, or still busy past a deadline).
 */
stock_code pg_schema_install(PGconn *conn, uint32_t timeout_ms, char *message, size_t size);

/*
 * Connects to the database of options, waiting about timeout_ms at most
 * (connect_timeout, whole seconds, 2 at least), with TCP keepalives and
 * tcp_user_timeout set so that a vanished peer is noticed, unless the URI
 * sets its own. Returns STOCK_OK with *out idle and untouched (the caller
 * configures it); STOCK_UNAVAILABLE with error saying why.
 */
stock_code pg_connect(const pg_options *options, PGconn **out, char *error, size_t size);

/*
 * Opens a session on the database of options (pg_connect), configured as the
 * backend's own (synchronous_commit from options, the bucket seed of
 * client_id) with the schema installed and its statements prepared; idle,
 * outside pipeline mode. The sharded backend (sharded.c) opens its control
 * sessions with it. Returns STOCK_OK; STOCK_UNAVAILABLE (no connection),
 * STOCK_IO or STOCK_CORRUPT (as pg_schema_install) with error saying why.
 */
stock_code pg_session_open(const pg_options *options, int64_t client_id, PGconn **out,
                           char *error, size_t size);

/* Waits until conn's socket is ready for events (POLLIN, POLLOUT) or
 * deadline_us (CLOCK_MONOTONIC) passes. False on timeout or a poll error. */
bool pg_wait(PGconn *conn, short events, int64_t deadline_us);

/*
 * Sends sql with its text parameters on conn (idle, outside pipeline mode)
 * and returns its first result, waiting until deadline_us (CLOCK_MONOTONIC)
 * at most: a server that stopped answering costs no more. NULL when the
 * connection broke or the deadline passed (the query may still be running:
 * the session is then unusable, and PQtransactionStatus says ACTIVE).
 * pg_result_until waits the same way for a query already sent.
 */
PGresult *pg_exec_until(PGconn *conn, const char *sql, int count, const char *const *values,
                        int64_t deadline_us);
PGresult *pg_result_until(PGconn *conn, int64_t deadline_us);
/* As PQprepare, waiting until deadline_us at most, as pg_exec_until. */
PGresult *pg_prepare_until(PGconn *conn, const char *name, const char *sql, int count,
                           int64_t deadline_us);
/* As PQexec (sql may hold several statements; the last result, which is the
 * error if one failed), but waiting until deadline_us at most, as
 * pg_exec_until. */
PGresult *pg_exec_script_until(PGconn *conn, const char *sql, int64_t deadline_us);
/* The code of a failed call on conn: STOCK_UNAVAILABLE when the connection
 * was lost (the server went away, the network cut it) or got no answer in
 * time (a statement may still be running on it: the caller drops conn),
 * so that the outcome is unknown and a retry may succeed; else code. */
stock_code pg_lost_or(PGconn *conn, stock_code code);
/* SQLSTATE of a sharded member's fence (docs/sharded.md, "One id, one
 * winner"): a statement wrote an id that another shard took over. Its
 * detail is the id's kind ('L' a line, 'O' an order, 'R' a refund, 'A' an
 * adjustment) and the fenced ids, separated by spaces. */
#define PG_SQLSTATE_FENCED "SF001"
/* Whether op writes one of the ids of fenced (such a detail); if so op
 * answers CONFLICT for it, as for an id already used: the id's directory
 * entry now names another shard, for another op. */
bool pg_fenced_conflict(stock_op *op, const char *fenced);
/* The deadline of a call made now that may take timeout_ms. */
int64_t pg_deadline(uint32_t timeout_ms);

/* Why a statement on conn failed: result's error, the deadline, or the
 * connection's error. Never NULL. */
const char *pg_error_message(PGconn *conn, const PGresult *result);

/*
 * One page of a listing (stock_list, after validation) read on conn (idle,
 * outside pipeline mode) in byte order of the ids: SKUs by id, a SKU's lines
 * by line id, an order's lines by position (postgres_list.c). check: `of`
 * and `after` must name something here (NOT_FOUND otherwise); without, an
 * order listing starts from its first line (the sharded backend checks
 * names on the member that holds them and asks the others without).
 * The page's queries wait timeout_ms in all at most.
 * Returns STOCK_OK with *count entries; STOCK_NOT_FOUND ("sku=X",
 * "order=X", "line=X"); STOCK_IO with the server's words in message;
 * STOCK_UNAVAILABLE when the connection was lost or did not answer in time
 * (pg_lost_or: the caller drops conn).
 */
stock_code pg_list_page(PGconn *conn, uint32_t timeout_ms, const list_request *request,
                        bool check, stock_list_entry *entries, uint32_t *count, char *message,
                        size_t size);

/* ------------------------------------------------------------------ plan */

typedef enum pg_step_kind {
    PG_STEP_TOKEN = 1,  /* marks the transaction as ours (stock_clients) */
    PG_STEP_SWEEP,      /* expires the holds past their deadline */
    PG_STEP_OP,         /* one op, one statement */
    PG_STEP_MERGED,     /* a run of deductions, one statement */
} pg_step_kind;

/* One pipelined statement and the ops its result completes. */
typedef struct pg_step {
    pg_step_kind kind;
    uint32_t first;     /* PG_STEP_OP, _MERGED: index into plan->members */
    uint32_t count;     /* ops the step completes (1 for PG_STEP_OP) */
} pg_step;

/* Entries of a plan's hash table: a power of two above twice the ops. */
#define PG_PLAN_SLOTS (4 * (uint32_t)PG_TXN_OPS_MAX)

/* A transaction's statements, built by pg_plan_build. Storage is allocated
 * once (pg_plan_init) for PG_TXN_OPS_MAX ops and reused. */
typedef struct pg_plan {
    stock_op **members;     /* ops in step order */
    pg_step *steps;
    uint32_t step_count;
    uint32_t member_count;
    uint32_t *slots;        /* scratch: open addressing, line id -> op index + 1 */
    uint32_t *used;         /* scratch: the slots the current run filled */
    buf text;               /* scratch: parameter text of one statement */
} pg_plan;

/* Allocates a plan's storage. False on out of memory. */
bool pg_plan_init(pg_plan *plan);
void pg_plan_free(pg_plan *plan);

/*
 * Lays out the ops (count <= PG_TXN_OPS_MAX, already validated, none
 * decided) as statements: a token step first, then the sweep that expires
 * the holds past their deadline (so that every op of the transaction sees
 * them expired: docs/semantics.md, "Holds"), then one step per op, except
 * that with merge, each run of consecutive deductions is one step (a run ends
 * at any other op and at a repeated line id, so that merging never reorders
 * ops that could see each other).
 */
void pg_plan_build(pg_plan *plan, stock_op *const *ops, uint32_t count, bool merge);

/*
 * Sends step i on conn (in pipeline mode) with PQsendQueryPrepared.
 * client_id/txn_id fill the token step; now_us stamps new lines. Returns
 * false when libpq refused (see PQerrorMessage).
 */
bool pg_plan_send(pg_plan *plan, uint32_t i, PGconn *conn, uint32_t buckets,
                  int64_t client_id, int64_t txn_id, int64_t now_us);

/*
 * Sets the outputs of the ops of step i from its result (PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK for the token step). Returns false if the result does
 * not have the expected shape (a schema mismatch: the caller fails the
 * transaction).
 */
bool pg_plan_complete(pg_plan *plan, uint32_t i, const PGresult *result);

/* Appends id to text as a double-quoted element of an array literal
 * ('"' and '\\' escaped). False on out of memory. */
bool pg_text_element(buf *text, stock_id id);

/* Statement names prepared by pg_schema_install. */
#define PG_STMT_TOKEN "stock_token"
#define PG_STMT_SET "stock_set"
#define PG_STMT_ADD "stock_add"
#define PG_STMT_DEDUCT "stock_deduct"
#define PG_STMT_MERGED "stock_deduct_merged"
#define PG_STMT_ORDER "stock_order"
#define PG_STMT_REFUND "stock_refund"
#define PG_STMT_GET "stock_get"
#define PG_STMT_LINE "stock_line"
#define PG_STMT_LSN "stock_lsn"
#define PG_STMT_TOKEN_READ "stock_token_read"
#define PG_STMT_SWEEP "stock_sweep"
#define PG_STMT_HOLD "stock_hold"
#define PG_STMT_CONFIRM "stock_confirm"
#define PG_STMT_RELEASE "stock_release"
#define PG_STMT_CONFIRM_ORDER "stock_confirm_order"
#define PG_STMT_HOLD_GET "stock_hold_get"
#define PG_STMT_PRECHECK "stock_precheck"

#endif /* STOCK_POSTGRES_H */
