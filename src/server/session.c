/*
 * session.c -- the Redis session commands (see session.h). They answer at
 * once, in request order, and never touch the store; they exist so that
 * Redis tools and client libraries can connect, handshake, authenticate and
 * look around without knowing they talk to stockd.
 */
#include <assert.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "server/health.h"
#include "server/session.h"

#define SESSION_INFO_MAX 8192     /* bytes of the INFO text, hot SKUs included */
#define SESSION_CONFIG_PATTERN_MAX 128   /* bytes of a CONFIG GET pattern kept */
#define SESSION_REDIS_VERSION "7.0.0"

void session_ping(conn *c, const resp_request *r)
{
    if (r->argc > 2) {
        commands_reply_error(c, "ERR", "wrong number of arguments for 'ping' command");
        return;
    }
    /* A health check's PING: a store that failed closed is no PONG. */
    health_report health;
    health_read(c->srv, &health);
    if (!health.alive)
        commands_reply_error(c, "IOERR", "%s", health.store.failure);
    else if (r->argc == 2)
        commands_reply_bulk(c, r->argv[1].ptr, r->argv[1].len);
    else
        commands_reply_simple(c, "PONG");
}

void session_echo(conn *c, const resp_request *r)
{
    commands_reply_bulk(c, r->argv[1].ptr, r->argv[1].len);
}

void session_quit(conn *c, const resp_request *r)
{
    (void)r;
    commands_reply_simple(c, "OK");
    conn_close_after_replies(c);
}

/* Checks user (may be NULL) and password; replies and returns false if
 * wrong or if the client's address is over its limit of failures. */
static bool authenticate(conn *c, const resp_arg *user, resp_arg password)
{
    if (c->srv->cfg->requirepass[0] == '\0') {
        commands_reply_error(c, "ERR", "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        return false;
    }
    uint32_t retry_s = 0;
    auth_role role = AUTH_NONE;
    switch (auth_attempt(c, user != NULL ? user->ptr : NULL, user != NULL ? user->len : 0,
                         password.ptr, password.len, &role, &retry_s)) {
    case AUTH_ACCEPTED:
        c->role = role;
        return true;
    case AUTH_REFUSED:
        commands_reply_error(c, "WRONGPASS", "invalid username-password pair or user is disabled.");
        return false;
    case AUTH_THROTTLED:
        commands_reply_error(c, "ERR", "too many failed authentications from %s; try again in %u s",
                             c->peer, retry_s);
        return false;
    }
    assert(!"an auth_outcome not handled");
    return false;
}

void session_auth(conn *c, const resp_request *r)
{
    if (r->argc > 3) {
        commands_reply_error(c, "ERR", "syntax error");
        return;
    }
    const resp_arg *user = r->argc == 3 ? &r->argv[1] : NULL;
    if (authenticate(c, user, r->argv[r->argc - 1]))
        commands_reply_simple(c, "OK");
}

static bool set_name(conn *c, resp_arg name)
{
    for (uint32_t i = 0; i < name.len; i++)
        if (name.ptr[i] <= ' ' || name.ptr[i] > '~') {
            commands_reply_error(c, "ERR", "Client names cannot contain spaces, newlines or special characters.");
            return false;
        }
    if (name.len >= CONN_NAME_MAX) {
        commands_reply_error(c, "ERR", "client name longer than %d bytes", CONN_NAME_MAX - 1);
        return false;
    }
    memcpy(c->name, name.ptr, name.len);
    c->name[name.len] = '\0';
    return true;
}

static bool write_hello(conn *c, buf *out)
{
    bool ok = resp_write_map(out, 7, c->proto);
    const char *strings[][2] = {{"server", "stockd"}, {"version", SESSION_REDIS_VERSION}};
    for (int i = 0; ok && i < 2; i++)
        ok = resp_write_bulk(out, strings[i][0], strlen(strings[i][0])) &&
             resp_write_bulk(out, strings[i][1], strlen(strings[i][1]));
    return ok && resp_write_bulk(out, "proto", 5) && resp_write_integer(out, c->proto) &&
           resp_write_bulk(out, "id", 2) && resp_write_integer(out, (int64_t)c->id) &&
           resp_write_bulk(out, "mode", 4) && resp_write_bulk(out, "standalone", 10) &&
           resp_write_bulk(out, "role", 4) && resp_write_bulk(out, "master", 6) &&
           resp_write_bulk(out, "modules", 7) && resp_write_array(out, 0);
}

/* HELLO [protover [AUTH user pass] [SETNAME name]] */
void session_hello(conn *c, const resp_request *r)
{
    int64_t proto = c->proto;
    if (r->argc >= 2 && (!resp_arg_int64(r->argv[1], &proto) || proto < 2 || proto > 3)) {
        commands_reply_error(c, "NOPROTO", "unsupported protocol version");
        return;
    }
    bool authed_here = false;
    for (uint32_t i = 2; i < r->argc; i++) {
        if (resp_arg_is(r->argv[i], "AUTH") && i + 2 < r->argc) {
            if (!authenticate(c, &r->argv[i + 1], r->argv[i + 2]))
                return;
            authed_here = true;
            i += 2;
        } else if (resp_arg_is(r->argv[i], "SETNAME") && i + 1 < r->argc) {
            if (!set_name(c, r->argv[++i]))
                return;
        } else {
            commands_reply_error(c, "ERR", "syntax error in HELLO option");
            return;
        }
    }
    if (c->role == AUTH_NONE && !authed_here) {
        commands_reply_error(c, "NOAUTH", "HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    c->proto = (int)proto;
    size_t mark = 0;
    buf *out = commands_reply_begin(c, &mark);
    commands_reply_end(c, mark, write_hello(c, out));
}

void session_select(conn *c, const resp_request *r)
{
    int64_t db = -1;
    if (!resp_arg_int64(r->argv[1], &db) || db != 0)
        commands_reply_error(c, "ERR", "DB index is out of range");
    else
        commands_reply_simple(c, "OK");
}

void session_client(conn *c, const resp_request *r)
{
    resp_arg sub = r->argv[1];
    if (resp_arg_is(sub, "SETNAME") && r->argc == 3) {
        if (set_name(c, r->argv[2]))
            commands_reply_simple(c, "OK");
    } else if (resp_arg_is(sub, "GETNAME") && r->argc == 2) {
        size_t mark = 0;
        buf *out = commands_reply_begin(c, &mark);
        bool ok = c->name[0] == '\0' ? resp_write_null(out, c->proto)
                                     : resp_write_bulk(out, c->name, strlen(c->name));
        commands_reply_end(c, mark, ok);
    } else if (resp_arg_is(sub, "SETINFO") && r->argc == 4) {
        commands_reply_simple(c, "OK");
    } else if (resp_arg_is(sub, "ID") && r->argc == 2) {
        commands_reply_integer(c, (int64_t)c->id);
    } else {
        commands_reply_error(c, "ERR", "unknown subcommand or wrong number of arguments for 'CLIENT|%.*s'",
                             (int)(sub.len < 32 ? sub.len : 32), sub.ptr);
    }
}

/* One COMMAND INFO entry, shaped as Redis 7 does. */
static bool write_command_info(buf *out, const commands_entry *entry)
{
    char lower[16];
    size_t n = strlen(entry->name);
    assert(n < sizeof lower);
    for (size_t i = 0; i < n; i++)
        lower[i] = (char)(entry->name[i] | 0x20);
    return resp_write_array(out, 10) && resp_write_bulk(out, lower, n) &&
           resp_write_integer(out, entry->arity) && resp_write_array(out, 0) &&
           resp_write_integer(out, 0) && resp_write_integer(out, 0) &&
           resp_write_integer(out, 0) && resp_write_array(out, 0) &&
           resp_write_array(out, 0) && resp_write_array(out, 0) && resp_write_array(out, 0);
}

static const commands_entry *find_entry(resp_arg name)
{
    for (size_t i = 0; i < commands_table_count; i++)
        if (resp_arg_is(name, commands_table[i].name))
            return &commands_table[i];
    return NULL;
}

static bool docs_asked(const resp_request *r, const commands_entry *entry)
{
    if (r->argc == 2)
        return true;
    for (uint32_t j = 2; j < r->argc; j++)
        if (find_entry(r->argv[j]) == entry)
            return true;
    return false;
}

/* COMMAND DOCS: name -> {summary, since, group}, for the names asked or all. */
static bool write_docs(conn *c, const resp_request *r, buf *out)
{
    size_t count = 0;
    for (size_t i = 0; i < commands_table_count; i++)
        count += docs_asked(r, &commands_table[i]);
    bool ok = resp_write_map(out, count, c->proto);
    for (size_t i = 0; ok && i < commands_table_count; i++) {
        const commands_entry *entry = &commands_table[i];
        if (!docs_asked(r, entry))
            continue;
        char lower[16];
        size_t n = strlen(entry->name);
        assert(n < sizeof lower);
        for (size_t k = 0; k < n; k++)
            lower[k] = (char)(entry->name[k] | 0x20);
        ok = resp_write_bulk(out, lower, n) && resp_write_map(out, 3, c->proto) &&
             resp_write_bulk(out, "summary", 7) &&
             resp_write_bulk(out, entry->summary, strlen(entry->summary)) &&
             resp_write_bulk(out, "since", 5) && resp_write_bulk(out, "1.0.0", 5) &&
             resp_write_bulk(out, "group", 5) && resp_write_bulk(out, "stockd", 6);
    }
    return ok;
}

void session_command(conn *c, const resp_request *r)
{
    size_t mark = 0;
    buf *out = commands_reply_begin(c, &mark);
    bool ok = true;
    if (r->argc == 1) {
        ok = resp_write_array(out, commands_table_count);
        for (size_t i = 0; ok && i < commands_table_count; i++)
            ok = write_command_info(out, &commands_table[i]);
    } else if (resp_arg_is(r->argv[1], "COUNT") && r->argc == 2) {
        ok = resp_write_integer(out, (int64_t)commands_table_count);
    } else if (resp_arg_is(r->argv[1], "INFO")) {
        ok = resp_write_array(out, r->argc - 2);
        for (uint32_t i = 2; ok && i < r->argc; i++) {
            const commands_entry *entry = find_entry(r->argv[i]);
            ok = entry != NULL ? write_command_info(out, entry) : resp_write_null(out, c->proto);
        }
    } else if (resp_arg_is(r->argv[1], "DOCS")) {
        ok = write_docs(c, r, out);
    } else {
        ok = resp_write_error(out, "ERR", "unknown COMMAND subcommand; try COUNT, INFO or DOCS");
    }
    commands_reply_end(c, mark, ok);
}

/* The Redis parameters whose meaning carries over to stockd, so that
 * clients that ask (redis-benchmark asks for save and appendonly) get an
 * answer, not a warning: every write goes to an append-only log, and there
 * is no Redis-style save schedule (snapshots follow the log's size). */
static const struct { const char *name, *value; } session_config_table[] = {
    {"appendonly", "yes"},
    {"save", ""},
};

void session_config(conn *c, const resp_request *r)
{
    if (!resp_arg_is(r->argv[1], "GET") || r->argc < 3) {
        commands_reply_error(c, "ERR", "stockd has no Redis configuration; only CONFIG GET pattern... is answered");
        return;
    }
    enum { COUNT = sizeof session_config_table / sizeof session_config_table[0] };
    bool match[COUNT] = {false};
    size_t matched = 0;
    for (uint32_t a = 2; a < r->argc; a++) {
        char pattern[SESSION_CONFIG_PATTERN_MAX];
        size_t len = r->argv[a].len < sizeof pattern - 1 ? r->argv[a].len : sizeof pattern - 1;
        memcpy(pattern, r->argv[a].ptr, len);
        pattern[len] = '\0';
        for (size_t i = 0; i < COUNT; i++)
            if (!match[i] && fnmatch(pattern, session_config_table[i].name, FNM_CASEFOLD) == 0) {
                match[i] = true;
                matched++;
            }
    }
    size_t mark = 0;
    buf *out = commands_reply_begin(c, &mark);
    bool ok = resp_write_map(out, matched, c->proto);
    for (size_t i = 0; ok && i < COUNT; i++)
        if (match[i])
            ok = resp_write_bulk(out, session_config_table[i].name, strlen(session_config_table[i].name)) &&
                 resp_write_bulk(out, session_config_table[i].value, strlen(session_config_table[i].value));
    commands_reply_end(c, mark, ok);
}

/* INFO's "# Hot" section (server/hot.h): hot_window_seconds, then per
 * ranking lines hot_<ranking>_<rank>:sku=<id>,count=<n>,error=<n>, rank 1
 * first. Returns the bytes written (they fit: asserted). */
static int info_hot(server *srv, char *text, size_t size)
{
    int len = snprintf(text, size, "\r\n# Hot\r\nhot_window_seconds:%d\r\n", HOT_WINDOW_S);
    for (int rank = 0; rank < HOT_RANKS; rank++) {
        hot_item items[HOT_TOP];
        size_t count = hot_top(&srv->hot, (hot_rank)rank, server_now_ms(srv), items);
        for (size_t i = 0; i < count; i++) {
            assert(len > 0 && (size_t)len < size);
            len += snprintf(text + len, size - (size_t)len, "hot_%s_%zu:sku=%s,count=%llu,error=%llu\r\n",
                            hot_rank_name((hot_rank)rank), i + 1, items[i].sku,
                            (unsigned long long)items[i].count, (unsigned long long)items[i].error);
        }
    }
    assert(len > 0 && (size_t)len < size);
    return len;
}

/* INFO's # Persister section (docs/persister.md, "Lag"): whether
 * --persist-to runs one, what it applied, and its lag as of its last check.
 * Returns the bytes written. */
static int info_persister(const health_report *health, char *text, size_t size)
{
    const persist_status *s = &health->persist;
    int len = snprintf(text, size, "\r\n# Persister\r\npersister:%d\r\npersister_linked:%d\r\n"
                       "persister_applied:%llu\r\npersister_read:%llu\r\n"
                       "persister_lag_records:%llu\r\npersister_lag_seconds:%.3f\r\n"
                       "persister_outbox_records:%llu\r\n",
                       health->persisting, s->linked, (unsigned long long)s->applied,
                       (unsigned long long)s->read, (unsigned long long)s->lag_records,
                       (double)s->lag_ms / 1000.0, (unsigned long long)s->outbox_records);
    assert(len > 0 && (size_t)len < size);
    return len;
}

void session_info(conn *c, const resp_request *r)
{
    (void)r;
    server *srv = c->srv;
    stock_stats stats;
    stock_get_stats(srv->store, &stats);
    health_report health;
    health_read(srv, &health);
    char text[SESSION_INFO_MAX];
    int len = snprintf(text, sizeof text,
        "# Server\r\nredis_version:%s\r\nstockd_version:%s\r\nredis_mode:standalone\r\n"
        "process_id:%ld\r\ntcp_port:%d\r\nhttp_port:%d\r\nuptime_in_seconds:%llu\r\n\r\n"
        "# Clients\r\nconnected_clients:%llu\r\nmaxclients:%u\r\n\r\n"
        "# Stats\r\ntotal_connections_received:%llu\r\nrejected_connections:%llu\r\n"
        "batches:%llu\r\nbatched_operations:%llu\r\nbatches_in_flight:%u\r\n"
        "backup_running:%llu\r\nbackups:%llu\r\nbackups_failed:%llu\r\n\r\n"
        "# Store\r\nbackend:%s\r\nskus:%llu\r\nlines:%llu\r\nsyncs:%llu\r\n"
        "memory_bytes:%llu\r\nlog_bytes:%llu\r\n"
        "store_batches:%llu\r\nstore_operations:%llu\r\nsync_latency_us_sum:%llu\r\n"
        "snapshots:%llu\r\nrecovered:%d\r\nrecovery_snapshot_loaded:%d\r\n"
        "recovery_snapshot_lsn:%llu\r\nrecovery_records:%llu\r\n"
        "recovery_torn_bytes:%llu\r\nrecovery_ms:%llu\r\n"
        "holds_outstanding:%llu\r\nheld_units:%llu\r\nhold_expiries:%llu\r\n"
        "hold_confirmations:%llu\r\nhold_releases:%llu\r\n\r\n"
        "# Health\r\nstore_failed:%d\r\nready:%d\r\nsnapshot_failed:%d\r\n"
        "snapshot_failures:%llu\r\ndisk_free_bytes:%llu\r\ndisk_bytes:%llu\r\n"
        "disk_min_free_bytes:%llu\r\ndisk_low:%d\r\nreplica_unreachable:%d\r\n"
        "replica_lag_bytes:%llu\r\n",
        SESSION_REDIS_VERSION, STOCK_VERSION, (long)getpid(), srv->cfg->port,
        srv->cfg->http_port, (unsigned long long)((server_now_ms(srv) - srv->started_ms) / 1000),
        (unsigned long long)srv->counters.connections_open, srv->cfg->maxclients,
        (unsigned long long)srv->counters.connections_accepted,
        (unsigned long long)srv->counters.connections_rejected,
        (unsigned long long)srv->counters.batches, (unsigned long long)srv->counters.batch_ops,
        srv->inflight, (unsigned long long)srv->counters.backup_running,
        (unsigned long long)srv->counters.backups_done,
        (unsigned long long)srv->counters.backups_failed, stock_backend_name(srv->store), (unsigned long long)stats.skus,
        (unsigned long long)stats.lines, (unsigned long long)stats.syncs,
        (unsigned long long)stats.memory_bytes, (unsigned long long)stats.log_bytes,
        (unsigned long long)stats.batches, (unsigned long long)stats.operations,
        (unsigned long long)stats.sync_latency_us_sum, (unsigned long long)stats.snapshots,
        stats.recovered, stats.recovery_snapshot_loaded,
        (unsigned long long)stats.recovery_snapshot_lsn, (unsigned long long)stats.recovery_records,
        (unsigned long long)stats.recovery_torn_bytes, (unsigned long long)stats.recovery_ms,
        (unsigned long long)stats.holds_outstanding, (unsigned long long)stats.held_units,
        (unsigned long long)stats.hold_expiries, (unsigned long long)stats.hold_confirmations,
        (unsigned long long)stats.hold_releases, health.store.failed, health.ready,
        health.store.snapshot_failed, (unsigned long long)health.store.snapshot_failures,
        (unsigned long long)health.store.disk_free_bytes,
        (unsigned long long)health.store.disk_bytes,
        (unsigned long long)srv->cfg->disk_min_free_bytes, health.disk_low,
        health.store.replica_unreachable, (unsigned long long)health.store.replica_lag_bytes);
    assert(len > 0 && (size_t)len < sizeof text);
    len += info_persister(&health, text + len, sizeof text - (size_t)len);
    len += info_hot(srv, text + len, sizeof text - (size_t)len);
    commands_reply_bulk(c, text, (size_t)len);
}

void session_stockproto(conn *c, const resp_request *r)
{
    int64_t version = 0;
    if (!resp_arg_int64(r->argv[1], &version) || version != 1) {
        commands_reply_error(c, "ERR", "unsupported STOCKPROTO version, this server speaks 1");
        return;
    }
    c->stockproto = true;
    commands_reply_simple(c, "OK");
}
