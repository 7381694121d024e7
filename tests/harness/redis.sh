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
#   redis_cluster_start     # a Redis Cluster of 3 masters with 1 replica each:
#                           # sets REDIS_CLUSTER_URI (cluster=1, every node a
#                           # seed), REDIS_CLUSTER_PORTS, REDIS_CLUSTER_PIDS
#   redis_cluster_kill I    # kill -9 node I (an index of REDIS_CLUSTER_PORTS)
#   redis_cluster_restart I # starts node I again from its folder (it rejoins,
#                           # as a replica if it lost its slots meanwhile)
#   redis_cluster_wait_ok   # waits until every live node says cluster_state:ok
#   redis_cluster_stop      # stops every node by PID and removes the folder
#   redis_conformance MODE  # the conformance suite against $REDIS_URI$MODE
#   redis_conformance_twice URI1 URI2  # two conformance processes at once
#   redis_wait_ready PID FILE  # until a helper has written "ready" to FILE
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

# True when the redis-server answering on port $1 is process $2 (another
# engineer's server on a port picked as free must not pass for ours) and
# has loaded its data (INFO answers while the append-only file loads; PING
# answers LOADING until it is done).
redis_is() {
    redis-cli -h 127.0.0.1 -p "$1" INFO server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$2" &&
        [ "$(redis-cli -h 127.0.0.1 -p "$1" PING 2>/dev/null)" = PONG ]
}

# Starts redis-server on $REDIS_PORT in $REDIS_DIR; sets REDIS_PID. Fails if it
# does not answer within 10 s.
redis_launch() {
    "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" \
        --appendonly yes --appendfsync always --save '' --daemonize no \
        --logfile "$REDIS_DIR/server.log" "${REDIS_EXTRA[@]}" </dev/null >/dev/null 2>&1 &
    REDIS_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        redis_is "$REDIS_PORT" "$REDIS_PID" && return 0
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

# ------------------------------------------------------------ Redis Cluster
# Nodes listen on REDIS_CLUSTER_PORT_FIRST..LAST (17700-17799 belong to these
# suites) and talk on their cluster bus at port + 10000. Each keeps its files
# (nodes.conf, the append-only file) in a folder of REDIS_CLUSTER_DIR, with
# the harness's durability (appendonly yes, appendfsync always) and a short
# cluster-node-timeout, so a failover takes a few seconds.
REDIS_CLUSTER_PORT_FIRST=${REDIS_CLUSTER_PORT_FIRST:-17700}
REDIS_CLUSTER_PORT_LAST=${REDIS_CLUSTER_PORT_LAST:-17799}
REDIS_CLUSTER_NODES=6
REDIS_CLUSTER_NODE_TIMEOUT_MS=${REDIS_CLUSTER_NODE_TIMEOUT_MS:-2000}
REDIS_CLUSTER_OK_TRIES=300     # tenths of a second to wait for cluster_state:ok

# Starts node I on ${REDIS_CLUSTER_PORTS[I]}; waits for it to answer.
redis_cluster_launch() {
    local i=$1 port=${REDIS_CLUSTER_PORTS[$1]} dir="$REDIS_CLUSTER_DIR/node$1"
    mkdir -p "$dir"
    "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --dir "$dir" \
        --cluster-enabled yes --cluster-config-file nodes.conf \
        --cluster-node-timeout "$REDIS_CLUSTER_NODE_TIMEOUT_MS" \
        --appendonly yes --appendfsync always --save '' --daemonize no \
        --logfile "$dir/server.log" </dev/null >/dev/null 2>&1 &
    REDIS_CLUSTER_PIDS[$i]=$!
    local try
    for ((try = 0; try < 100; try++)); do
        redis_is "$port" "${REDIS_CLUSTER_PIDS[$i]}" && return 0
        kill -0 "${REDIS_CLUSTER_PIDS[$i]}" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Prints a port of the range free for a node and its cluster bus.
redis_cluster_free_port() {
    local port try
    for ((try = 0; try < 50; try++)); do
        port=$(pick_port "$REDIS_CLUSTER_PORT_FIRST" "$REDIS_CLUSTER_PORT_LAST") || return 1
        [[ " ${REDIS_CLUSTER_PORTS[*]} " == *" $port "* ]] && continue
        (exec 3<>"/dev/tcp/127.0.0.1/$((port + 10000))") 2>/dev/null && continue
        echo "$port"
        return 0
    done
    return 1
}

redis_cluster_wait_ok() {
    local try i state
    for ((try = 0; try < REDIS_CLUSTER_OK_TRIES; try++)); do
        state=ok
        for ((i = 0; i < REDIS_CLUSTER_NODES; i++)); do
            kill -0 "${REDIS_CLUSTER_PIDS[$i]}" 2>/dev/null || continue
            redis-cli -p "${REDIS_CLUSTER_PORTS[$i]}" CLUSTER INFO 2>/dev/null |
                grep -q "cluster_state:ok" || state=waiting
        done
        [ "$state" = ok ] && return 0
        sleep 0.1
    done
    echo "redis.sh: the cluster did not reach cluster_state:ok" >&2
    return 1
}

# Waits until every live replica's link to its master is up (so WAIT 1 is
# answered).
redis_cluster_wait_replicas() {
    local try i ready
    for ((try = 0; try < REDIS_CLUSTER_OK_TRIES; try++)); do
        ready=yes
        for ((i = 0; i < REDIS_CLUSTER_NODES; i++)); do
            kill -0 "${REDIS_CLUSTER_PIDS[$i]}" 2>/dev/null || continue
            redis-cli -p "${REDIS_CLUSTER_PORTS[$i]}" INFO replication 2>/dev/null |
                tr -d '\r' | grep -q "^role:slave" || continue
            redis-cli -p "${REDIS_CLUSTER_PORTS[$i]}" INFO replication 2>/dev/null |
                grep -q "master_link_status:up" || ready=no
        done
        [ "$ready" = yes ] && return 0
        sleep 0.1
    done
    echo "redis.sh: a replica did not sync with its master" >&2
    return 1
}

redis_cluster_start() {
    command -v "$REDIS_SERVER" >/dev/null ||
        { echo "redis.sh: no $REDIS_SERVER (run scripts/install-deps.sh)" >&2; return 1; }
    REDIS_CLUSTER_DIR=$(mktemp -d /tmp/stockd-redis-cluster.XXXXXX)
    REDIS_CLUSTER_PORTS=() REDIS_CLUSTER_PIDS=()
    local i try hosts=() seeds=""
    for ((i = 0; i < REDIS_CLUSTER_NODES; i++)); do
        for ((try = 0; try < REDIS_START_TRIES; try++)); do
            REDIS_CLUSTER_PORTS[$i]=$(redis_cluster_free_port) || return 1
            redis_cluster_launch "$i" && break
            REDIS_CLUSTER_PIDS[$i]=""
        done
        [ -n "${REDIS_CLUSTER_PIDS[$i]}" ] ||
            { echo "redis.sh: cluster node $i did not start" >&2; return 1; }
        hosts+=("127.0.0.1:${REDIS_CLUSTER_PORTS[$i]}")
        seeds+="${seeds:+,}127.0.0.1:${REDIS_CLUSTER_PORTS[$i]}"
    done
    # The first three become masters, each of the others a replica.
    # redis-cli waits for the nodes to agree with no limit of its own.
    timeout -k 5 120 redis-cli --cluster create "${hosts[@]}" --cluster-replicas 1 --cluster-yes \
        >"$REDIS_CLUSTER_DIR/create.log" 2>&1 ||
        { cat "$REDIS_CLUSTER_DIR/create.log" >&2; return 1; }
    redis_cluster_wait_ok || return 1
    redis_cluster_wait_replicas || return 1
    REDIS_CLUSTER_URI="redis://$seeds/?cluster=1"
    export REDIS_CLUSTER_URI REDIS_CLUSTER_DIR
}

redis_cluster_cli() {
    redis-cli -p "${REDIS_CLUSTER_PORTS[$1]}" "${@:2}"
}

redis_cluster_kill() {
    kill -KILL "${REDIS_CLUSTER_PIDS[$1]}" 2>/dev/null || true
    wait "${REDIS_CLUSTER_PIDS[$1]}" 2>/dev/null || true
}

redis_cluster_restart() {
    redis_cluster_launch "$1" || { tail -n 20 "$REDIS_CLUSTER_DIR/node$1/server.log" >&2; return 1; }
}

redis_cluster_stop() {
    local i
    for ((i = 0; i < ${#REDIS_CLUSTER_PIDS[@]}; i++)); do
        [ -n "${REDIS_CLUSTER_PIDS[$i]:-}" ] || continue
        kill -TERM "${REDIS_CLUSTER_PIDS[$i]}" 2>/dev/null || true
    done
    for ((i = 0; i < ${#REDIS_CLUSTER_PIDS[@]}; i++)); do
        [ -n "${REDIS_CLUSTER_PIDS[$i]:-}" ] || continue
        local try
        for ((try = 0; try < 100; try++)); do
            kill -0 "${REDIS_CLUSTER_PIDS[$i]}" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "${REDIS_CLUSTER_PIDS[$i]}" 2>/dev/null || true
        wait "${REDIS_CLUSTER_PIDS[$i]}" 2>/dev/null || true
    done
    REDIS_CLUSTER_PIDS=()
    [ -z "${REDIS_CLUSTER_DIR:-}" ] || rm -rf "$REDIS_CLUSTER_DIR"
    REDIS_CLUSTER_DIR=""
}

# Runs the conformance suite against $REDIS_URI with the URI query MODE
# ("" or "?prefix=p1:" ...): --quick for the semantics, then, in a release
# build, the full sellout (exactly 10,000 of 200,000 attempts succeed; a
# sanitizer build leaves it out as pg_conformance of pg.sh does, and says
# why). Needs BUILD.
redis_conformance() {
    local mode=$1
    echo "== conformance ${mode:-(plain)}"
    "$BUILD/tests/conformance" --quick "$REDIS_URI$mode" >"$REDIS_DIR/conformance.log" 2>&1 ||
        { cat "$REDIS_DIR/conformance.log"; return 1; }
    tail -n 1 "$REDIS_DIR/conformance.log"
    case $BUILD in *san*) return 0 ;; esac
    "$BUILD/tests/conformance" --filter 'sellout*' "$REDIS_URI$mode" 2>&1 | tail -n 1
    [ "${PIPESTATUS[0]}" -eq 0 ]
}

# Runs the quick conformance suite from two processes at once, one against
# each URI (they may be the same store). Needs BUILD and REDIS_DIR.
redis_conformance_twice() {
    echo "== two stores at once"
    "$BUILD/tests/conformance" --quick "$1" >"$REDIS_DIR/one.log" 2>&1 &
    local one=$!
    "$BUILD/tests/conformance" --quick "$2" >"$REDIS_DIR/two.log" 2>&1 ||
        { cat "$REDIS_DIR/two.log"; wait "$one" || true; return 1; }
    wait "$one" || { cat "$REDIS_DIR/one.log"; return 1; }
    tail -n 1 "$REDIS_DIR/one.log" "$REDIS_DIR/two.log"
}

# Waits (up to 10 s) until the helper PID has written "ready" to FILE; fails,
# printing FILE, if it ended first.
redis_wait_ready() {
    local pid=$1 file=$2 i
    for ((i = 0; i < 100; i++)); do
        grep -q ready "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$file"; return 1; }
        sleep 0.1
    done
}
