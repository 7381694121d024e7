# tests/harness/redis.sh -- starts and stops a throwaway redis-server for the
# redis backend's suites and benchmarks. Source it from bash:
#
#   . tests/harness/redis.sh
#   redis_start [ARGS...]   # sets REDIS_PORT, REDIS_DIR, REDIS_URI, REDIS_PID;
#                           # ARGS are extra redis-server options
#   redis_restart           # kill -9, then start again on the same port and
#                           # folder (so from its append-only file)
#   redis_start_replica     # a replica of it (replicaof): sets
#                           # REDIS_REPLICA_PORT, REDIS_REPLICA_PID
#   redis_cli ARGS...       # redis-cli against it
#   redis_outbox_len [P]    # records in the outbox streams (key prefix P)
#   redis_stop              # stops it by PID and removes the folder
#
# The server listens on 127.0.0.1 only, on the first free port of
# REDIS_PORT_FIRST..REDIS_PORT_LAST (17500-17549 belong to these suites), and
# keeps its files in a mktemp -d folder. Durability is the strictest Redis
# has: appendonly yes, appendfsync always, no RDB snapshots; so an
# acknowledged write is in the append-only file before the reply.

REDIS_SERVER=${REDIS_SERVER:-redis-server}
REDIS_PORT_FIRST=${REDIS_PORT_FIRST:-17500}
REDIS_PORT_LAST=${REDIS_PORT_LAST:-17549}
REDIS_START_TRIES=10

# Prints a port of the range that nothing listens on (a hint: the server's
# own bind is the real test, and redis_start retries on a clash), through
# pick_port of tests/system/server_helpers.sh, as nats.sh does.
declare -F pick_port >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/../system/server_helpers.sh"
redis_free_port() {
    pick_port "$REDIS_PORT_FIRST" "$REDIS_PORT_LAST"
}

# Starts redis-server on $REDIS_PORT in $REDIS_DIR; sets REDIS_PID. Fails if it
# does not answer PING within 10 s.
redis_launch() {
    "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" \
        --appendonly yes --appendfsync always --save '' --daemonize no \
        --logfile "$REDIS_DIR/server.log" "${REDIS_EXTRA[@]}" </dev/null >/dev/null 2>&1 &
    REDIS_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" PING 2>/dev/null | grep -q PONG; then
            return 0
        fi
        kill -0 "$REDIS_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    kill -KILL "$REDIS_PID" 2>/dev/null || true
    return 1
}

redis_start() {
    command -v "$REDIS_SERVER" >/dev/null ||
        { echo "redis.sh: no $REDIS_SERVER (run scripts/install-deps.sh)" >&2; return 1; }
    REDIS_EXTRA=("$@")
    REDIS_DIR=$(mktemp -d /tmp/stockd-redis.XXXXXX)
    local try
    for ((try = 0; try < REDIS_START_TRIES; try++)); do
        REDIS_PORT=$(redis_free_port) || return 1
        if redis_launch; then
            REDIS_URI="redis://127.0.0.1:$REDIS_PORT"
            export REDIS_DIR REDIS_PORT REDIS_PID REDIS_URI
            return 0
        fi
    done
    echo "redis.sh: redis-server did not start; log:" >&2
    tail -n 20 "$REDIS_DIR/server.log" >&2
    return 1
}

# Kills the server (kill -9: no shutdown save) and starts it again from its
# append-only file.
redis_restart() {
    kill -KILL "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    redis_launch || { tail -n 20 "$REDIS_DIR/server.log" >&2; return 1; }
}

redis_start_replica() {
    local port=$REDIS_PORT dir=$REDIS_DIR pid=$REDIS_PID extra=("${REDIS_EXTRA[@]}") try
    REDIS_DIR=$dir/replica
    REDIS_EXTRA=(--replicaof 127.0.0.1 "$port" "${extra[@]}")
    mkdir -p "$REDIS_DIR"
    for ((try = 0; try < REDIS_START_TRIES; try++)); do
        REDIS_PORT=$(redis_free_port) || break
        if redis_launch; then
            REDIS_REPLICA_PORT=$REDIS_PORT REDIS_REPLICA_PID=$REDIS_PID
            break
        fi
    done
    REDIS_PORT=$port REDIS_DIR=$dir REDIS_PID=$pid REDIS_EXTRA=("${extra[@]}")
    [ -n "${REDIS_REPLICA_PID:-}" ] || { echo "redis.sh: the replica did not start" >&2; return 1; }
    for ((try = 0; try < 100; try++)); do
        redis-cli -p "$REDIS_REPLICA_PORT" INFO replication | grep -q "master_link_status:up" &&
            return 0
        sleep 0.1
    done
    echo "redis.sh: the replica did not connect to its master" >&2
    return 1
}

# Stops the replica by PID.
redis_stop_replica() {
    [ -n "${REDIS_REPLICA_PID:-}" ] || return 0
    kill -KILL "$REDIS_REPLICA_PID" 2>/dev/null || true
    wait "$REDIS_REPLICA_PID" 2>/dev/null || true
    REDIS_REPLICA_PID=""
}

redis_cli() {
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
}

# Prints how many records the outbox streams of the store with key prefix
# PREFIX (default none) hold: those not yet persisted (docs/redis.md).
redis_outbox_len() {
    local key total=0
    for key in $(redis_cli --scan --pattern "${1:-}{outbox:*}"); do
        total=$((total + $(redis_cli XLEN "$key")))
    done
    echo "$total"
}

redis_stop() {
    redis_stop_replica
    if [ -n "${REDIS_PID:-}" ]; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 100; i++)); do
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    [ -z "${REDIS_DIR:-}" ] || rm -rf "$REDIS_DIR"
    REDIS_PID="" REDIS_DIR=""
}

# Runs the conformance suite against $REDIS_URI with the URI query MODE
# ("" or "?prefix=p1:" ...): --quick for the semantics, then the full
# sellout (exactly 10,000 of 200,000 attempts succeed). Needs BUILD.
redis_conformance() {
    local mode=$1
    echo "== conformance ${mode:-(plain)}"
    "$BUILD/tests/conformance" --quick "$REDIS_URI$mode" >"$REDIS_DIR/conformance.log" 2>&1 ||
        { cat "$REDIS_DIR/conformance.log"; return 1; }
    tail -n 1 "$REDIS_DIR/conformance.log"
    "$BUILD/tests/conformance" --filter 'sellout*' "$REDIS_URI$mode" 2>&1 | tail -n 1
    [ "${PIPESTATUS[0]}" -eq 0 ]
}
