# tests/harness/pg.sh -- starts and stops a throwaway PostgreSQL 15 for the
# postgres backend's suites and benchmarks. Source it from bash:
#
#   . tests/harness/pg.sh
#   pg_start                 # primary: sets PG_PORT, PG_DIR, PG_URI, PG_PID
#   pg_start_replica         # optional streaming replica (pg_basebackup):
#                            # sets PG_REPLICA_PORT, PG_REPLICA_URI, PG_REPLICA_PID
#   pg_stop                  # stops both by PID and removes the data
#   pg_start_many N          # N more primaries, each its own data folder and
#                            # port, max_prepared_transactions > 0 (for the
#                            # sharded backend's two-phase commit): sets the
#                            # arrays PG_MANY_URIS, PG_MANY_PIDS, PG_MANY_DIRS
#                            # and PG_SHARDS_URI ("shards:" + the URIs joined
#                            # by ';'); pg_stop stops them too
#
# PostgreSQL refuses to run as root, so initdb and postgres run as the
# `postgres` system user (from the postgresql-15 package) through runuser
# when we are root. Servers listen on 127.0.0.1 only, on the first free port
# of PG_PORT_FIRST..PG_PORT_LAST (17400-17449 belong to these suites), and keep
# their data in a mktemp -d folder. The durability settings are PostgreSQL's
# defaults (fsync on, synchronous_commit on): benchmarks measure the real cost.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_PORT_FIRST=${PG_PORT_FIRST:-17400}
PG_PORT_LAST=${PG_PORT_LAST:-17449}
PG_START_TRIES=10
PG_MANY_PIDS=() PG_MANY_DIRS=() PG_MANY_URIS=()

# Runs a command as the postgres user (directly when we already are not root).
pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Prints a port of the range (moved by TEST_PORT_OFFSET, as pick_port's)
# that nothing listens on (a hint: the server's own bind is the real test,
# and pg_start retries on a clash).
pg_free_port() {
    local first=$((PG_PORT_FIRST + ${TEST_PORT_OFFSET:-0}))
    local span=$((PG_PORT_LAST - PG_PORT_FIRST + 1))
    local start=$((first + RANDOM % span)) i port
    for ((i = 0; i < span; i++)); do
        port=$((first + (start - first + i) % span))
        if ! ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
            echo "$port"
            return 0
        fi
    done
    echo "pg.sh: no free port in $first-$((first + span - 1))" >&2
    return 1
}

# Starts postgres on data folder $1 and port $2; prints its PID. Fails if it
# does not accept connections within 30 s.
pg_launch() {
    local data=$1 port=$2 i
    pg_as_owner "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 30 \
        -o "-p $port -k $data -c listen_addresses=127.0.0.1" start >/dev/null ||
        return 1
    for ((i = 0; i < 50; i++)); do
        [ -s "$data/postmaster.pid" ] && break
        sleep 0.1
    done
    head -n 1 "$data/postmaster.pid"
}

# Makes a mktemp -d folder the postgres user may write and an empty cluster
# in its primary/ subfolder; prints the folder.
pg_new_cluster() {
    [ -x "$PG_BIN/initdb" ] || { echo "pg.sh: no PostgreSQL 15 in $PG_BIN (run scripts/install-deps.sh)" >&2; return 1; }
    local dir
    dir=$(mktemp -d /tmp/stockd-pg.XXXXXX) || return 1
    chmod 755 "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
    pg_as_owner "$PG_BIN/initdb" -D "$dir/primary" -U postgres -A trust \
        --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; return 1; }
    echo "$dir"
}

pg_start() {
    PG_DIR=$(pg_new_cluster) || return 1
    cat >>"$PG_DIR/primary/postgresql.conf" <<CONF
max_connections = 64
shared_buffers = 128MB
wal_level = replica
max_wal_senders = 4
hot_standby = on
CONF
    echo "host replication postgres 127.0.0.1/32 trust" >>"$PG_DIR/primary/pg_hba.conf"
    local try
    for ((try = 0; try < PG_START_TRIES; try++)); do
        PG_PORT=$(pg_free_port) || return 1
        if PG_PID=$(pg_launch "$PG_DIR/primary" "$PG_PORT"); then
            PG_URI="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
            export PG_DIR PG_PORT PG_PID PG_URI
            return 0
        fi
    done
    echo "pg.sh: postgres did not start; log:" >&2
    tail -n 20 "$PG_DIR/primary/server.log" >&2
    return 1
}

# A hot standby that streams from the primary started by pg_start.
pg_start_replica() {
    [ -n "${PG_PORT:-}" ] || { echo "pg.sh: start the primary first" >&2; return 1; }
    pg_as_owner "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U postgres \
        -D "$PG_DIR/replica" -R -X stream >"$PG_DIR/basebackup.log" 2>&1 ||
        { cat "$PG_DIR/basebackup.log" >&2; return 1; }
    local try
    for ((try = 0; try < PG_START_TRIES; try++)); do
        PG_REPLICA_PORT=$(pg_free_port) || return 1
        if PG_REPLICA_PID=$(pg_launch "$PG_DIR/replica" "$PG_REPLICA_PORT"); then
            PG_REPLICA_URI="postgresql://postgres@127.0.0.1:$PG_REPLICA_PORT/postgres"
            export PG_REPLICA_PORT PG_REPLICA_PID PG_REPLICA_URI
            return 0
        fi
    done
    echo "pg.sh: the replica did not start; log:" >&2
    tail -n 20 "$PG_DIR/replica/server.log" >&2
    return 1
}

# Stops the server whose postmaster has PID $1 (fast shutdown), waiting up to
# 30 s before killing it.
pg_stop_pid() {
    local pid=$1 i
    kill -INT "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# Starts N primaries for a sharded store (see the top of this file).
pg_start_many() {
    local count=$1 k dir port pid try
    PG_MANY_URIS=() PG_MANY_PIDS=() PG_MANY_DIRS=()
    for ((k = 0; k < count; k++)); do
        dir=$(pg_new_cluster) || return 1
        PG_MANY_DIRS+=("$dir")
        cat >>"$dir/primary/postgresql.conf" <<CONF
max_connections = 64
shared_buffers = 64MB
max_prepared_transactions = 32
CONF
        pid=""
        for ((try = 0; try < PG_START_TRIES; try++)); do
            port=$(pg_free_port) || return 1
            pid=$(pg_launch "$dir/primary" "$port") && break
            pid=""
        done
        [ -n "$pid" ] || { tail -n 20 "$dir/primary/server.log" >&2; return 1; }
        PG_MANY_PIDS+=("$pid")
        PG_MANY_URIS+=("postgresql://postgres@127.0.0.1:$port/postgres")
    done
    PG_SHARDS_URI="shards:$(IFS=';'; echo "${PG_MANY_URIS[*]}")"
    export PG_SHARDS_URI
}

pg_stop() {
    local k
    for ((k = 0; k < ${#PG_MANY_PIDS[@]}; k++)); do
        pg_stop_pid "${PG_MANY_PIDS[$k]}"
        rm -rf "${PG_MANY_DIRS[$k]}"
    done
    PG_MANY_PIDS=() PG_MANY_DIRS=() PG_MANY_URIS=()
    [ -z "${PG_REPLICA_PID:-}" ] || pg_stop_pid "$PG_REPLICA_PID"
    [ -z "${PG_PID:-}" ] || pg_stop_pid "$PG_PID"
    [ -z "${PG_DIR:-}" ] || rm -rf "$PG_DIR"
    PG_PID="" PG_REPLICA_PID="" PG_DIR=""
}

# psql against the primary (or the URI in $PG_PSQL_URI).
pg_psql() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At "${PG_PSQL_URI:-$PG_URI}" "$@"
}

# Runs the conformance suite against the primary with the URI query MODE
# ("" for plain, or "?stock_merge=1" ...): --quick for the semantics, then,
# in a release build, the full sellout (exactly 10,000 of 200,000 attempts
# succeed). A sanitizer build leaves the full sellout to the release pass:
# --quick's sellout (1,000 of 20,000) already ran the same code paths under
# ASan and UBSan, and the full one costs ten times the round trips. Needs
# BUILD.
pg_conformance() {
    local mode=$1
    echo "== conformance ${mode:-(plain)}"
    "$BUILD/tests/conformance" --quick "$PG_URI$mode" >"$PG_DIR/conformance.log" 2>&1 ||
        { cat "$PG_DIR/conformance.log"; return 1; }
    tail -n 1 "$PG_DIR/conformance.log"
    case $BUILD in *san*) return 0 ;; esac
    "$BUILD/tests/conformance" --filter 'sellout*' "$PG_URI$mode" 2>&1 | tail -n 1
    [ "${PIPESTATUS[0]}" -eq 0 ]
}
