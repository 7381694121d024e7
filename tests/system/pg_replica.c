/*
 * pg_replica.c -- shows that the postgres backend's read replica turns away
 * deductions of a sold-out SKU without the primary.
 *
 *   pg_replica PRIMARY_URI REPLICA_URI PRIMARY_PID REPLICA_PID
 *
 * Opens PRIMARY_URI?stock_replica=<REPLICA_URI>, creates a sold-out SKU and
 * one in stock. First it freezes the replica (SIGSTOP to REPLICA_PID and its
 * children): a deduction must still succeed on the primary, within a few
 * seconds (the backend gives a silent replica PG_REPLICA_TIMEOUT_MS, then
 * drops it), and stock_get_health must say the replica is unreachable.
 * Then it thaws the replica, waits until it has replayed everything and
 * the backend may reconnect to it, pauses the replica's replay and deducts
 * twice: health must report the replica's lag in bytes; it resumes the
 * replay, waits for it again, and STOPS THE
 * PRIMARY (SIGINT to PRIMARY_PID) and deducts again: the sold-out SKU must
 * still answer INSUFFICIENT available=0 (only the replica can have said so),
 * and the SKU in stock must fail with UNAVAILABLE (nobody may sell
 * it without the primary); health then reports the replica reachable and
 * caught up. Exits 0 when all of it holds.
 */
#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stock.h"

#define REPLICA_URI_MAX 1024
#define REPLICA_WAIT_TRIES 300     /* x 100 ms */
#define REPLICA_ID_SIZE 48
/* A deduction with the replica frozen must finish within this (the
 * backend's replica timeout is 1 s). */
#define REPLICA_FROZEN_MAX_MS 5000
/* The backend retries a dropped replica after 1 s. */
#define REPLICA_RETRY_WAIT_TICKS 15   /* x 100 ms */
#define REPLICA_PROCESSES_MAX 64      /* a replica's postmaster and children */

static void pause_100ms(void)
{
    struct timespec tick = {0, 100000000};
    nanosleep(&tick, NULL);
}

/* Appends text percent-encoded (all but unreserved characters). */
static void append_encoded(char *out, size_t size, const char *text)
{
    size_t used = strlen(out);
    for (; *text != '\0' && used + 4 < size; text++) {
        unsigned char c = (unsigned char)*text;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            out[used++] = (char)c;
        else
            used += (size_t)snprintf(out + used, size - used, "%%%02X", c);
    }
    out[used] = '\0';
}

/* Waits until the replica has replayed everything the primary has written. */
static int wait_replayed(const char *primary_uri, const char *replica_uri)
{
    PGconn *primary = PQconnectdb(primary_uri);
    PGconn *replica = PQconnectdb(replica_uri);
    PGresult *lsn = PQexec(primary, "SELECT pg_current_wal_lsn()::text");
    int ok = PQresultStatus(lsn) == PGRES_TUPLES_OK ? 0 : -1;
    for (int i = 0; ok == 0 && i < REPLICA_WAIT_TRIES; i++) {
        const char *values[1] = {PQgetvalue(lsn, 0, 0)};
        PGresult *done = PQexecParams(replica, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn",
                                      1, NULL, values, NULL, NULL, 0);
        bool caught_up = PQresultStatus(done) == PGRES_TUPLES_OK &&
                         PQgetvalue(done, 0, 0)[0] == 't';
        PQclear(done);
        if (caught_up)
            break;
        if (i + 1 == REPLICA_WAIT_TRIES)
            ok = -1;
        pause_100ms();
    }
    if (ok != 0)
        fprintf(stderr, "pg_replica: the replica did not catch up: %s%s",
                PQerrorMessage(primary), PQerrorMessage(replica));
    PQclear(lsn);
    PQfinish(primary);
    PQfinish(replica);
    return ok;
}

/* Runs sql (a replay pause or resume) on the replica; 0 or -1. */
static int on_replica(const char *replica_uri, const char *sql)
{
    PGconn *replica = PQconnectdb(replica_uri);
    PGresult *result = PQexec(replica, sql);
    int ok = PQresultStatus(result) == PGRES_TUPLES_OK ? 0 : -1;
    if (ok != 0)
        fprintf(stderr, "pg_replica: %s: %s", sql, PQerrorMessage(replica));
    PQclear(result);
    PQfinish(replica);
    return ok;
}

/* Checks what stock_get_health says of the replica: unreachable or not,
 * and a lag above 0 or exactly 0. */
static int replica_health_is(stock_t *store, bool unreachable, bool lagging, const char *when)
{
    stock_health health;
    stock_get_health(store, &health);
    printf("replica health %s: unreachable %d, lag %llu bytes\n", when,
           health.replica_unreachable, (unsigned long long)health.replica_lag_bytes);
    bool ok = health.replica_unreachable == unreachable &&
              (health.replica_lag_bytes > 0) == lagging;
    if (!ok)
        fprintf(stderr, "pg_replica: wanted unreachable %d and %s lag %s\n", unreachable,
                lagging ? "some" : "no", when);
    return ok ? 0 : -1;
}

/* With the replica's replay paused, a deduction commits on the primary
 * and the next one finds the replica behind it. */
static int deduct_with_paused_replay(stock_t *store, const char *sku, const char *replica_uri)
{
    char line[REPLICA_ID_SIZE + 32], message[STOCK_MESSAGE_MAX];   /* sku-paused-N */
    if (on_replica(replica_uri, "SELECT pg_wal_replay_pause()") != 0)
        return -1;
    int ok = 0;
    for (int i = 0; ok == 0 && i < 2; i++) {
        snprintf(line, sizeof line, "%s-paused-%d", sku, i);
        if (stock_deduct(store, line, sku, 1, NULL, message) != STOCK_OK) {
            fprintf(stderr, "pg_replica: deduction with the replay paused: %s\n", message);
            ok = -1;
        }
    }
    if (ok == 0)
        ok = replica_health_is(store, false, true, "with its replay paused");
    return on_replica(replica_uri, "SELECT pg_wal_replay_resume()") == 0 ? ok : -1;
}

/* Lists pid and its children (a postmaster's backends) into pids; returns
 * the count. */
static size_t process_tree(pid_t pid, pid_t *pids, size_t max)
{
    size_t count = 0;
    pids[count++] = pid;
    DIR *proc = opendir("/proc");
    struct dirent *entry;
    while (proc != NULL && count < max && (entry = readdir(proc)) != NULL) {
        char path[300];
        snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
        FILE *stat = fopen(path, "r");
        if (stat == NULL)
            continue;
        int child = 0, parent = 0;
        /* pid (comm) state ppid: comm has no spaces or ')' for postgres. */
        if (fscanf(stat, "%d %*s %*c %d", &child, &parent) == 2 && parent == (int)pid)
            pids[count++] = (pid_t)child;
        fclose(stat);
    }
    if (proc != NULL)
        closedir(proc);
    return count;
}

/* Signals every listed process; only kill(), so a forked child may call it. */
static int signal_all(const pid_t *pids, size_t count, int sig)
{
    int rc = 0;
    for (size_t i = 0; i < count; i++)
        if (kill(pids[i], sig) != 0 && i == 0)
            rc = -1;
    return rc;
}

static int64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* With the replica frozen, a deduction of the SKU in stock must succeed on
 * the primary in bounded time. */
static int deduct_with_frozen_replica(stock_t *store, const char *sku, pid_t replica)
{
    char line[REPLICA_ID_SIZE + 16], message[256];
    snprintf(line, sizeof line, "%s-frozen", sku);
    pid_t tree[REPLICA_PROCESSES_MAX];
    size_t count = process_tree(replica, tree, REPLICA_PROCESSES_MAX);
    if (signal_all(tree, count, SIGSTOP) != 0) {
        fprintf(stderr, "pg_replica: cannot stop the replica %d: %s\n", (int)replica,
                strerror(errno));
        return -1;
    }
    /* A backend that waits on the replica for ever would hang the test: a
     * watchdog thaws it after twice the limit, and the time says FAILED. */
    pid_t watchdog = fork();
    if (watchdog == 0) {
        struct timespec limit = {2 * REPLICA_FROZEN_MAX_MS / 1000, 0};
        nanosleep(&limit, NULL);
        signal_all(tree, count, SIGCONT);
        _exit(0);
    }
    int64_t start = now_ms();
    stock_code code = stock_deduct(store, line, sku, 1, NULL, message);
    int64_t took = now_ms() - start;
    signal_all(tree, count, SIGCONT);
    if (watchdog > 0) {
        kill(watchdog, SIGKILL);
        waitpid(watchdog, NULL, 0);
    }
    printf("deduction with the replica frozen: %s in %lld ms %s\n", stock_code_name(code),
           (long long)took, message);
    return code == STOCK_OK && took < REPLICA_FROZEN_MAX_MS ? 0 : -1;
}

static int stop_primary(pid_t pid)
{
    if (kill(pid, SIGINT) != 0) {
        fprintf(stderr, "pg_replica: cannot signal %d: %s\n", (int)pid, strerror(errno));
        return -1;
    }
    for (int i = 0; i < REPLICA_WAIT_TRIES; i++) {
        if (kill(pid, 0) != 0)
            return 0;
        pause_100ms();
    }
    fprintf(stderr, "pg_replica: the primary did not stop\n");
    return -1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: pg_replica PRIMARY_URI REPLICA_URI PRIMARY_PID REPLICA_PID\n");
        return 2;
    }
    char uri[REPLICA_URI_MAX], message[STOCK_MESSAGE_MAX], out[REPLICA_ID_SIZE], in[REPLICA_ID_SIZE];
    char line_out[REPLICA_ID_SIZE + 8], line_in[REPLICA_ID_SIZE + 8];
    snprintf(uri, sizeof uri, "%s?stock_replica=", argv[1]);
    append_encoded(uri, sizeof uri, argv[2]);
    snprintf(out, sizeof out, "rep-%lx-%d-out", (long)time(NULL), (int)getpid());
    snprintf(in, sizeof in, "rep-%lx-%d-in", (long)time(NULL), (int)getpid());
    snprintf(line_out, sizeof line_out, "%s-line", out);
    snprintf(line_in, sizeof line_in, "%s-line", in);
    stock_t *store = NULL;
    if (stock_open(uri, NULL, &store, message) != STOCK_OK) {
        fprintf(stderr, "pg_replica: cannot open %s: %s\n", uri, message);
        return 1;
    }
    int64_t available = -1;
    if (stock_set(store, out, 0, NULL, NULL, message) != STOCK_OK ||
        stock_set(store, in, 5, NULL, NULL, message) != STOCK_OK ||
        deduct_with_frozen_replica(store, in, (pid_t)atol(argv[4])) != 0 ||
        replica_health_is(store, true, false, "after it froze") != 0 ||
        wait_replayed(argv[1], argv[2]) != 0)
        return 1;
    for (int i = 0; i < REPLICA_RETRY_WAIT_TICKS; i++)
        pause_100ms();
    if (deduct_with_paused_replay(store, in, argv[2]) != 0 || wait_replayed(argv[1], argv[2]) != 0)
        return 1;
    if (stop_primary((pid_t)atol(argv[3])) != 0)
        return 1;
    stock_code sold_out = stock_deduct(store, line_out, out, 1, &available, message);
    printf("sold-out SKU with the primary stopped: %s %s\n", stock_code_name(sold_out), message);
    bool caught_up = replica_health_is(store, false, false, "caught up") == 0;
    stock_code in_stock = stock_deduct(store, line_in, in, 1, NULL, message);
    printf("SKU in stock with the primary stopped: %s %s\n", stock_code_name(in_stock), message);
    stock_close(store);
    bool ok = sold_out == STOCK_INSUFFICIENT && available == 0 &&
              in_stock == STOCK_UNAVAILABLE && caught_up;
    printf("pg_replica: %s\n", ok ? "the replica answered alone for the sold-out SKU"
                                   : "FAILED");
    return ok ? 0 : 1;
}
