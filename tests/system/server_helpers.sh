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

# pick_port LOW HIGH: prints a port in LOW..HIGH that nothing listens on,
# both moved by TEST_PORT_OFFSET (tests/run: two suites at once pick from
# ranges 1000 apart).
pick_port() {
    local low=$(($1 + ${TEST_PORT_OFFSET:-0})) high=$(($2 + ${TEST_PORT_OFFSET:-0})) port
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
# waits (up to STOCKD_START_SECONDS, default 10: a soak's store recovers
# for longer) until this very process has logged that it listens on PORT
# and the port answers PING (or NOAUTH). Returns 1 if it exited (the port
# taken in the meantime, a bad store) or never got there.
start_stockd() {
    local port=$1 data=$2 log=$3 before
    shift 3
    touch "$log"
    before=$(grep -c "listening for RESP on 127.0.0.1:$port" "$log" || true)
    "${BIN:-$BUILD}/stockd" --store "$data" --port "$port" --http-port 0 \
        --bind 127.0.0.1 "$@" >>"$log" 2>&1 &
    STOCKD_PID=$!
    for _ in $(seq $((${STOCKD_START_SECONDS:-10} * 20))); do
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
    echo "stockd on port $port did not come up within ${STOCKD_START_SECONDS:-10} s" >&2
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
# a suite stopped) and reaps it; empty arguments are skipped, and so is a
# PID no process of this suite's session holds any more: a suite keeps the
# PIDs of processes that ended long before its EXIT trap, and the system
# hands such numbers out again (pid_max is 32768 here), to another suite's
# server as well as to anything else. For a suite's EXIT trap.
stop_pids() {
    local pid session
    session=$(ps -o sid= -p $$ | tr -d ' ')
    for pid in "$@"; do
        [ -n "$pid" ] || continue
        [ "$(ps -o sid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$session" ] || continue
        kill -CONT "$pid" 2>/dev/null || true
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# wait_for_text PATTERN FILE TENTHS: true once FILE holds a line matching
# PATTERN (grep), looking every 0.1 s up to TENTHS times; false if it never
# did.
wait_for_text() {
    local i
    for ((i = 0; i < $3; i++)); do
        grep -q -- "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    grep -q -- "$1" "$2" 2>/dev/null
}

# print_stacks PID: every thread's stack of PID through gdb (nothing when
# gdb is missing), bounded to a minute: where a stuck process waits.
print_stacks() {
    command -v gdb >/dev/null || return 0
    timeout 60 gdb -batch -ex "thread apply all bt 20" -p "$1" 2>/dev/null | grep -E '^(#|Thread)'
}

# term_wait PID [SECONDS]: SIGTERM to PID, a child of this shell, then waits
# up to SECONDS (default 60) for it to end and returns its exit status; one
# still running then is stuck: its stacks are printed (gdb), it is killed,
# and term_wait returns 124, so a process that ignores its stop fails the
# suite in bounded time and says where it was.
term_wait() {
    local pid=$1 limit=${2:-60} i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid"; return; }
        sleep 0.1
    done
    echo "term_wait: $pid still running ${limit} s after SIGTERM: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    print_stacks "$pid"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 124
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

# settle_clients DIR WHAT PID...: stops the server_crash_client processes
# PID... (logging to DIR/client-1..., in that order) with SIGTERM, so that
# they settle what was left unknown, and prints their summaries. Calls the
# suite's fail unless each settled and some op was left unknown and
# retried (else WHAT, the faults, never reached the clients).
settle_clients() {
    local dir=$1 what=$2 i retried
    shift 2
    local pids=("$@")
    # A client that already ended (it found a broken rule, or failed) is
    # judged by its exit status below, with its error output.
    for i in "${pids[@]}"; do kill -TERM "$i" 2>/dev/null || true; done
    # One that does not settle in time (its own limit is 30 s) is stuck: its
    # stack is printed and it is killed, rather than the suite waiting.
    for i in "${!pids[@]}"; do
        for _ in $(seq 600); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
        kill -0 "${pids[$i]}" 2>/dev/null || continue
        print_stacks "${pids[$i]}"
        kill -KILL "${pids[$i]}" 2>/dev/null || true
        wait "${pids[$i]}" 2>/dev/null || true
        fail "client $((i + 1)) did not settle within 60 s of SIGTERM (stack above)"
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" ||
            { cat "$dir/client-$((i + 1)).err"; fail "client $((i + 1)) broke a rule or could not settle"; }
    done
    cat "$dir"/client-*.out
    retried=$(sed -n 's/.*, \([0-9]*\) outcomes left unknown.*/\1/p' "$dir"/client-*.out |
        awk '{ sum += $1 } END { print sum + 0 }')
    [ "$retried" -gt 0 ] || fail "no op was ever left unknown: $what did not reach the clients"
}

# proxy_start LISTEN TARGET DIR [AFTER_MAX]: starts
# tests/harness/fault_proxy.py on port LISTEN in front of 127.0.0.1:TARGET,
# with the seed NETWORK_SEED (else a random one, printed so that it can be
# replayed), each fault after up to AFTER_MAX bytes toward the client (the
# proxy's default when not given), its output and its statistics in DIR;
# sets PROXY_PID. Calls the suite's fail unless it listens.
proxy_start() {
    local listen=$1 target=$2 dir=$3 after_max=${4:-} seed=${NETWORK_SEED:-$RANDOM}
    echo "proxy seed $seed (NETWORK_SEED=$seed replays its choices)"
    /usr/bin/python3 "${ROOT:-.}/tests/harness/fault_proxy.py" "$listen" "$target" "$dir/proxy.stats" \
        "$seed" $after_max >"$dir/proxy.out" 2>&1 &
    PROXY_PID=$!
    wait_for_text listening "$dir/proxy.out" 50 || fail "the proxy did not start: $(cat "$dir/proxy.out")"
}

# proxy_clients CLIENT URI PREFIX SKUS DIR SECONDS: runs two CLIENT
# (server_crash_client) processes through URI, via the proxy of
# proxy_start, for SECONDS and then until every kind of fault has struck (up
# to 90 s more: a black hole costs a client its whole timeout); stops them
# (they settle what was left unknown) and the proxy. Calls the suite's fail
# unless both clients settled, some op was left unknown and retried, every
# kind of fault struck and more than 20 ops were acknowledged. Their logs
# are DIR/client-1.log and client-2.log; PROXY_CLIENTS holds their PIDs
# while they run, for the suite's clean-up.
PROXY_CLIENTS=()
proxy_clients() {
    local client=$1 uri=$2 prefix=$3 skus=$4 dir=$5 seconds=$6 c i
    local clients=()
    for c in 1 2; do
        "$client" "$uri" "$prefix$c" "$skus" "$dir/client-$c.log" \
            >"$dir/client-$c.out" 2>"$dir/client-$c.err" &
        clients+=($!)
    done
    PROXY_CLIENTS=("${clients[@]}")
    sleep "$seconds"
    for _ in $(seq 180); do
        [ "$(sed -n 's/^fault //p' "$dir/proxy.out" | sort -u | wc -l)" -ge 5 ] && break
        sleep 0.5
    done
    # The network heals (new connections pass untouched): what the faults
    # left unknown must now settle, however unlucky its last draws were.
    kill -USR1 "$PROXY_PID"
    settle_clients "$dir" "the faults" "${clients[@]}"
    PROXY_CLIENTS=()
    kill -TERM "$PROXY_PID"
    wait "$PROXY_PID" || true
    PROXY_PID=""
    echo "faults injected:"; sed 's/^/  /' "$dir/proxy.stats"
    local name count
    while read -r name count; do
        [ "$count" -gt 0 ] || fail "the proxy never injected '$name'"
    done <"$dir/proxy.stats"
    local acked tried
    acked=$(cat "$dir"/client-*.log | grep -c '^ack' || true)
    tried=$(cat "$dir"/client-*.log | grep -c '^try' || true)
    echo "$tried ops tried, $acked acknowledged through the proxy"
    [ "$acked" -gt 20 ] || fail "too little got through the proxy ($acked acknowledged)"
}
