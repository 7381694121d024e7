# server_helpers.sh -- shell functions the server suites (45-47) source to
# run a stockd of their own: pick a free loopback port in the suite's range,
# start stockd on it, and make sure the server that answers is the one they
# started. Several people run `make test` on one machine at once (release
# and sanitizer builds), so a fixed port could be taken by another run's
# stockd; answering a PING is then not proof enough.
#
# Needs BUILD; runs the binaries in BIN when set (see use_binaries); sets
# STOCKD_PID. Callers stop the server by that PID.

# suite_dir NAME: makes $dir, a temp folder removed at exit, and at exit
# also stops the stockd whose PID the suite keeps in $pid ("" for none).
suite_dir() {
    dir=$(mktemp -d "${TMPDIR:-/tmp}/stockd-$1.XXXXXX")
    pid=""
    trap suite_cleanup EXIT
}

suite_cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}

# pick_port LOW HIGH: prints a port in LOW..HIGH that nothing listens on.
pick_port() {
    local low=$1 high=$2 port
    for _ in $(seq 50); do
        port=$((low + RANDOM % (high - low + 1)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "no free port in $low..$high" >&2
    return 1
}

# start_stockd PORT DATA LOG [FLAGS...]: starts stockd in the background and
# waits (up to 10 s) until this very process has logged that it listens on
# PORT and the port answers PING (or NOAUTH). Returns 1 if it exited (the
# port taken in the meantime, a bad store) or never got there.
start_stockd() {
    local port=$1 data=$2 log=$3 before
    shift 3
    touch "$log"
    before=$(grep -c "listening for RESP on 127.0.0.1:$port" "$log" || true)
    "${BIN:-$BUILD}/stockd" --store "$data" --port "$port" --http-port 0 \
        --bind 127.0.0.1 "$@" >>"$log" 2>&1 &
    STOCKD_PID=$!
    for _ in $(seq 200); do
        if ! kill -0 "$STOCKD_PID" 2>/dev/null; then
            echo "stockd (pid $STOCKD_PID) exited at start-up; its log:" >&2
            tail -n 5 "$log" >&2
            return 1
        fi
        if [ "$(grep -c "listening for RESP on 127.0.0.1:$port" "$log" || true)" -gt "$before" ] &&
            redis-cli -p "$port" PING 2>/dev/null | grep -Eq 'PONG|NOAUTH'; then
            return 0
        fi
        sleep 0.05
    done
    echo "stockd on port $port did not come up within 10 s" >&2
    kill "$STOCKD_PID" 2>/dev/null || true
    wait "$STOCKD_PID" 2>/dev/null || true
    return 1
}

# use_binaries DIR NAME...: copies $BUILD/NAME (NAME may be tests/X) into
# DIR; callers set BIN=DIR and run $BIN/<basename of NAME>. Another
# `make` in the same tree may relink a binary while a suite runs (the file
# is briefly not executable), so suites run copies taken once, each checked
# to be whole (executable and equal to its source).
use_binaries() {
    local target=$1 name copy
    shift
    mkdir -p "$target"
    for name in "$@"; do
        copy=$target/$(basename "$name")
        for _ in $(seq 100); do
            cp "$BUILD/$name" "$copy" 2>/dev/null && [ -x "$copy" ] &&
                cmp -s "$BUILD/$name" "$copy" && continue 2
            sleep 0.1
        done
        echo "cannot take a whole copy of $BUILD/$name (missing, or relinked for 10 s; make tests?)" >&2
        return 1
    done
}

# stop_pids PID...: stops each process with SIGKILL (after SIGCONT, for one
# a suite stopped) and reaps it; empty arguments are skipped. For a suite's
# EXIT trap.
stop_pids() {
    local pid
    for pid in "$@"; do
        [ -n "$pid" ] || continue
        kill -CONT "$pid" 2>/dev/null || true
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# fail_with_log LOG MESSAGE...: prints "FAIL: MESSAGE" and the last 20 lines
# of LOG (stockd's, say), and exits 1.
fail_with_log() {
    local log=$1
    shift
    echo "FAIL: $*"
    tail -n 20 "$log" 2>/dev/null || true
    exit 1
}

# The server_crash_client processes of a suite (46, 85) log to
# DIR/client-*.log; these start, read and stop them.
#
# start_crash_clients URI SKU_COUNT LEVEL DIR: sets SKUs S0.. to LEVEL
# through $BIN/stockctl, then starts two $BIN/server_crash_client (ids
# c1-..., c2-...) logging to DIR/client-1.log and -2.log, in the
# background; their PIDs are appended to the caller's client_pids array.
start_crash_clients() {
    local uri=$1 skus=$2 level=$3 folder=$4 i c
    for i in $(seq 0 $((skus - 1))); do
        "$BIN/stockctl" --store "$uri" set "S$i" "$level" >/dev/null
    done
    for c in 1 2; do
        "$BIN/server_crash_client" "$uri" "c$c" "$skus" "$folder/client-$c.log" &
        client_pids+=($!)
    done
}
#
# crash_client_acks DIR: how many replies acknowledged an op so far.
crash_client_acks() {
    cat "$1"/client-*.log 2>/dev/null | grep -c '^ack' || true
}

# wait_for_crash_client_acks DIR N: waits (up to 20 s: recovery is slow
# under ASan on a busy machine) until more than N ops are acknowledged;
# returns 1 if that never happens.
wait_for_crash_client_acks() {
    for _ in $(seq 100); do
        [ "$(crash_client_acks "$1")" -gt "$2" ] && return 0
        sleep 0.2
    done
    return 1
}

# stop_crash_clients PID...: SIGTERM to each (it settles its unknown ops
# and exits), then waits for all; returns 1 if one reported a broken rule
# or could not settle.
stop_crash_clients() {
    local pid status=0
    for pid in "$@"; do kill -TERM "$pid"; done
    for pid in "$@"; do wait "$pid" || status=1; done
    return $status
}
