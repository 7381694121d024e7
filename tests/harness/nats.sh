# tests/harness/nats.sh -- starts and stops a throwaway NATS server with
# JetStream (Debian's nats-server) for the intake suites. Source it from bash:
#
#   . tests/harness/nats.sh
#   nats_start               # sets NATS_PORT, NATS_DIR, NATS_PID, NATS_URL
#   nats_stop                # stops it by PID and removes its store
#
#   nats_start_cluster       # three JetStream nodes routed to each other:
#                            # NATS_DIR, NATS_NODE_PIDS[0..2], NATS_NODE_PORTS,
#                            # NATS_URL (the three client URLs, comma-separated)
#   nats_kill_node I         # SIGKILL node I
#   nats_stop_cluster        # stops every node by PID and removes the stores
#
# The server listens on 127.0.0.1 only, on the first free port of
# NATS_PORT_FIRST..NATS_PORT_LAST (17520-17559 belong to these suites), and
# keeps its JetStream store (file storage: what a kill -9 must not lose) in
# a mktemp -d folder. Sourcing it also turns on the LeakSanitizer
# suppressions for libnats (nats-lsan.supp), which every program that links
# the NATS client needs under the sanitizers.

export LSAN_OPTIONS="suppressions=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/nats-lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

NATS_PORT_FIRST=${NATS_PORT_FIRST:-17520}
NATS_PORT_LAST=${NATS_PORT_LAST:-17559}
NATS_START_TRIES=10
NATS_READY_TENTHS=100   # 10 s for the server to accept connections

# pick_port LOW HIGH (tests/system/server_helpers.sh) chooses the ports: a
# hint, since the server's own bind is the real test, and nats_start
# retries on a clash.
declare -F pick_port >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/../system/server_helpers.sh"

# True once process $2 has said in its log $3 that it listens on
# 127.0.0.1:$1 and accepts connections there, within 10 s (another
# engineer's server on a port picked as free must not pass for ours).
nats_wait_ready() {
    local port=$1 pid=$2 log=$3 i
    for ((i = 0; i < NATS_READY_TENTHS; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if grep -F "[$pid] " "$log" 2>/dev/null |
            grep -qF "Listening for client connections on 127.0.0.1:$port" &&
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Starts (or restarts, keeping its store) the server on NATS_DIR and
# NATS_PORT; sets NATS_PID.
nats_launch() {
    nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$NATS_DIR/store" \
        -l "$NATS_DIR/server.log" &
    NATS_PID=$!
    export NATS_PID
    nats_wait_ready "$NATS_PORT" "$NATS_PID" "$NATS_DIR/server.log"
}

nats_start() {
    command -v nats-server >/dev/null ||
        { echo "nats.sh: no nats-server (run scripts/install-deps.sh)" >&2; return 1; }
    NATS_DIR=$(mktemp -d /tmp/stockd-nats.XXXXXX)
    local try
    for ((try = 0; try < NATS_START_TRIES; try++)); do
        NATS_PORT=$(pick_port "$NATS_PORT_FIRST" "$NATS_PORT_LAST") || return 1
        if nats_launch; then
            NATS_URL="nats://127.0.0.1:$NATS_PORT"
            export NATS_DIR NATS_PORT NATS_URL
            return 0
        fi
        nats_kill
    done
    echo "nats.sh: nats-server did not start; log:" >&2
    tail -n 20 "$NATS_DIR/server.log" >&2
    return 1
}

# Kills the server with SIGKILL (a crash), waiting for it to be gone.
nats_kill() {
    kill -KILL "$NATS_PID" 2>/dev/null || true
    wait "$NATS_PID" 2>/dev/null || true
}

nats_stop() {
    if [ -n "${NATS_PID:-}" ] && kill -TERM "$NATS_PID" 2>/dev/null; then
        local i
        for ((i = 0; i < 100; i++)); do
            kill -0 "$NATS_PID" 2>/dev/null || break
            sleep 0.1
        done
        nats_kill
    fi
    [ -z "${NATS_DIR:-}" ] || rm -rf "$NATS_DIR"
    NATS_PID="" NATS_DIR=""
}

# ----------------------------------------------------------------- cluster

NATS_CLUSTER_NODES=3

# Starts node $1 of the cluster on its client and route ports (set by
# nats_start_cluster), its store in NATS_DIR/node$1.
nats_launch_node() {
    local i=$1 routes="" j
    for ((j = 0; j < NATS_CLUSTER_NODES; j++)); do
        [ "$j" -eq "$i" ] || routes+="${routes:+,}nats://127.0.0.1:${NATS_ROUTE_PORTS[j]}"
    done
    nats-server -js -a 127.0.0.1 -p "${NATS_NODE_PORTS[i]}" -n "node$i" \
        --cluster_name stockd-test --cluster "nats://127.0.0.1:${NATS_ROUTE_PORTS[i]}" \
        --routes "$routes" -sd "$NATS_DIR/node$i" -l "$NATS_DIR/node$i.log" &
    NATS_NODE_PIDS[i]=$!
}

nats_start_cluster() {
    command -v nats-server >/dev/null ||
        { echo "nats.sh: no nats-server (run scripts/install-deps.sh)" >&2; return 1; }
    NATS_DIR=$(mktemp -d /tmp/stockd-nats.XXXXXX)
    NATS_NODE_PORTS=() NATS_ROUTE_PORTS=() NATS_NODE_PIDS=()
    local i port urls=""
    for ((i = 0; i < 2 * NATS_CLUSTER_NODES; i++)); do
        port=$(pick_port "$NATS_PORT_FIRST" "$NATS_PORT_LAST") || return 1
        # a port handed out twice would clash: draw again
        while [[ " ${NATS_NODE_PORTS[*]} ${NATS_ROUTE_PORTS[*]} " == *" $port "* ]]; do
            port=$(pick_port "$NATS_PORT_FIRST" "$NATS_PORT_LAST") || return 1
        done
        if ((i < NATS_CLUSTER_NODES)); then NATS_NODE_PORTS+=("$port"); else NATS_ROUTE_PORTS+=("$port"); fi
    done
    for ((i = 0; i < NATS_CLUSTER_NODES; i++)); do
        nats_launch_node "$i"
        urls+="${urls:+,}nats://127.0.0.1:${NATS_NODE_PORTS[i]}"
    done
    for ((i = 0; i < NATS_CLUSTER_NODES; i++)); do
        nats_wait_ready "${NATS_NODE_PORTS[i]}" "${NATS_NODE_PIDS[i]}" "$NATS_DIR/node$i.log" || {
            echo "nats.sh: cluster node $i did not start; log:" >&2
            tail -n 20 "$NATS_DIR/node$i.log" >&2
            return 1
        }
    done
    NATS_URL=$urls
    export NATS_DIR NATS_URL
}

nats_kill_node() {
    kill -KILL "${NATS_NODE_PIDS[$1]}" 2>/dev/null || true
    wait "${NATS_NODE_PIDS[$1]}" 2>/dev/null || true
}

nats_stop_cluster() {
    local i
    for ((i = 0; i < ${#NATS_NODE_PIDS[@]}; i++)); do
        kill -TERM "${NATS_NODE_PIDS[i]}" 2>/dev/null || true
    done
    for ((i = 0; i < ${#NATS_NODE_PIDS[@]}; i++)); do
        nats_kill_node "$i"
    done
    [ -z "${NATS_DIR:-}" ] || rm -rf "$NATS_DIR"
    NATS_NODE_PIDS=() NATS_DIR=""
}
