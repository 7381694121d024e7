#!/usr/bin/env bash
# resp.sh -- the durable RESP path against its yardsticks, in one run on one
# machine: redis-benchmark -c 50 on one hot SKU, at -P 16 and -P 1, against
#
#   stockd        DEDUCT <random line id> hot 1, embedded engine, durable by
#                 default (no reply before its record is fsynced);
#   Redis GET     plain GET on a Redis 7 with appendonly yes, appendfsync
#                 always (a read: the speed of the RESP path alone);
#   Redis+Lua     EVALSHA of bench/lua/deduct.lua on the same Redis
#                 (appendfsync always: an fsync before each reply, as stockd).
#
# Each round runs every system once per pipeline depth, in an order that
# rotates from round to round so that a drift in the machine's load hits
# all of them; the figures are the medians of the rounds (throughput and
# redis-benchmark's p99). Prints every run, the medians, and the ratios
# docs/benchmarks.md sets as targets, each with its verdict. After the runs,
# checks that each store's stock moved by exactly the lines it recorded.
#
#   bench/resp.sh [ROUNDS]       (default 5, 1..21)
#
# Environment: BUILD (default build), SECONDS_PER_RUN (default 3: each run
# sends about that many seconds of requests at the rate a short warm-up
# run measured), STOCKD_B (optional: a second stockd binary, measured as
# one more system, "stockd B", on a store of its own; its ratios are
# printed too). Each server listens on 127.0.0.1 on a port of 17900-17949
# that was free when picked, and must prove it is this run's own (Redis by
# its INFO process_id, stockd by its log), so that two runs at once on a
# shared machine fail instead of measuring each other's servers. Needs
# redis-server and redis-benchmark (scripts/install-deps.sh).
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
bench_help "$@"
ROUNDS=${1:-5}
bench_whole ROUNDS "$ROUNDS" 1 21
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
bench_whole SECONDS_PER_RUN "$SECONDS_PER_RUN" 1 60
readonly PORT_LOW=17900 PORT_HIGH=17949
readonly CLIENTS=50 RAND_RANGE=2147483647 BIG_STOCK=1000000000000
readonly WARMUP_REQUESTS=20000
for tool in "$BUILD/stockd" ${STOCKD_B:+"$STOCKD_B"}; do
    [ -x "$tool" ] || { echo "$bench_name: missing $tool (run make first)" >&2; exit 2; }
done

bench_temp stockd-resp
. tests/system/server_helpers.sh

# wait_ours PORT LOG PID: until PING on PORT answers, at most 10 s, and the
# server that answers is process PID: Redis says so in INFO, stockd logs
# that it listens on PORT. Exits when another process holds the port.
wait_ours() {
    local port=$1 log=$2 pid=$3
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || break
        if redis-cli -p "$port" PING 2>/dev/null | grep -q PONG; then
            if redis-cli -p "$port" INFO server 2>/dev/null | grep -q "^process_id:$pid\b" ||
                grep -q "listening for RESP on 127.0.0.1:$port" "$log"; then
                return 0
            fi
        fi
        sleep 0.05
    done
    echo "$bench_name: the server started on port $port (pid $pid) is not the one answering there" >&2
    cat "$log" >&2
    exit 1
}

mkdir -p "$tmp/redis"
REDIS_PORT=$(pick_port $PORT_LOW $PORT_HIGH)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$tmp/redis" --appendonly yes \
    --appendfsync always --save "" --daemonize no --logfile "$tmp/redis.log" &
pids+=($!)
wait_ours "$REDIS_PORT" "$tmp/redis.log" $!
STOCKD_PORT=$(pick_port $PORT_LOW $PORT_HIGH)
"$BUILD/stockd" --store "$tmp/stockd" --port "$STOCKD_PORT" --http-port 0 --bind 127.0.0.1 \
    >"$tmp/stockd.log" 2>&1 &
pids+=($!)
wait_ours "$STOCKD_PORT" "$tmp/stockd.log" $!
systems=(stockd get lua)
if [ -n "${STOCKD_B:-}" ]; then
    STOCKD_B_PORT=$(pick_port $PORT_LOW $PORT_HIGH)
    "$STOCKD_B" --store "$tmp/stockd-b" --port "$STOCKD_B_PORT" --http-port 0 --bind 127.0.0.1 \
        >"$tmp/stockd-b.log" 2>&1 &
    pids+=($!)
    wait_ours "$STOCKD_B_PORT" "$tmp/stockd-b.log" $!
    systems+=(stockd_b)
fi
sha=$(redis-cli -p "$REDIS_PORT" SCRIPT LOAD "$(cat bench/lua/deduct.lua)")
redis-cli -p "$REDIS_PORT" SET plain "$BIG_STOCK" >/dev/null
redis-cli -p "$REDIS_PORT" SET stock:hot "$BIG_STOCK" >/dev/null
for port in $STOCKD_PORT ${STOCKD_B:+$STOCKD_B_PORT}; do
    redis-cli -p "$port" SETSTOCK hot "$BIG_STOCK" >/dev/null
done

# command_of SYSTEM: port and command of one system's runs.
command_of() {
    case $1 in
    stockd) echo "$STOCKD_PORT DEDUCT L__rand_int__ hot 1" ;;
    stockd_b) echo "$STOCKD_B_PORT DEDUCT L__rand_int__ hot 1" ;;
    get) echo "$REDIS_PORT GET plain" ;;
    lua) echo "$REDIS_PORT EVALSHA $sha 2 stock:hot flow:hot line:__rand_int__ 1" ;;
    esac
}

# run SYSTEM PIPELINE N: one redis-benchmark run; prints "rps p99_ms".
run() {
    local port command
    read -r port command <<<"$(command_of "$1")"
    # shellcheck disable=SC2086
    redis-benchmark -h 127.0.0.1 -p "$port" -c $CLIENTS -P "$2" -n "$3" -r $RAND_RANGE \
        --csv $command 2>/dev/null | tail -n 1 | tr -d '"' |
        awk -F, '$2 ~ /^[0-9.]+$/ { print $2, $7; ok = 1 } END { if (!ok) print "0 -" }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for pipeline in 16 1; do
    # Size each system's runs from a short warm-up at this depth.
    declare -A requests=()
    for system in "${systems[@]}"; do
        read -r rps _ <<<"$(run "$system" "$pipeline" $WARMUP_REQUESTS)"
        requests[$system]=$(awk -v r="$rps" -v s="$SECONDS_PER_RUN" -v w=$WARMUP_REQUESTS \
            'BEGIN { n = int(r * s); print n < w ? w : n }')
    done
    for round in $(seq "$ROUNDS"); do
        count=${#systems[@]}
        for k in $(seq 0 $((count - 1))); do
            system=${systems[$(( (k + round) % count ))]}
            read -r rps p99 <<<"$(run "$system" "$pipeline" "${requests[$system]}")"
            printf 'round %d  -P %-2s  %-8s %10.0f requests/s  p99 %s ms\n' \
                "$round" "$pipeline" "$system" "$rps" "$p99"
            echo "$rps" >>"$tmp/rps-$system-$pipeline"
            echo "$p99" >>"$tmp/p99-$system-$pipeline"
        done
    done
done

# med KIND SYSTEM PIPELINE: the median of one column.
med() { median <"$tmp/$1-$2-$3"; }
# verdict NAME VALUE YARDSTICK TARGET: VALUE / YARDSTICK against TARGET.
verdict() {
    awk -v n="$1" -v v="$2" -v y="$3" -v t="$4" 'BEGIN {
        r = y > 0 ? v / y : 0
        printf "%-58s %6.2fx  (target >= %s: %s)\n", n, r, t, (r >= t ? "met" : "NOT met") }'
}
echo
echo "medians of $ROUNDS rounds, $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for pipeline in 16 1; do
    for system in "${systems[@]}"; do
        printf -- '-P %-2s %-8s %10.0f requests/s  p99 %s ms\n' "$pipeline" "$system" \
            "$(med rps "$system" "$pipeline")" "$(med p99 "$system" "$pipeline")"
    done
done
for name in stockd ${STOCKD_B:+stockd_b}; do
    verdict "$name DEDUCT -P 16 / Redis GET -P 16" "$(med rps "$name" 16)" "$(med rps get 16)" 0.75
    verdict "$name DEDUCT -P 16 / Redis+Lua always -P 16" "$(med rps "$name" 16)" "$(med rps lua 16)" 5
    verdict "$name DEDUCT -P 1 / Redis GET -P 1" "$(med rps "$name" 1)" "$(med rps get 1)" 1
    verdict "Redis+Lua always -P 1 p99 / $name -P 1 p99" "$(med p99 lua 1)" "$(med p99 "$name" 1)" 1
done

# Every deduction the stores acknowledged is accounted for.
failed=0
for port in $STOCKD_PORT ${STOCKD_B:+$STOCKD_B_PORT}; do
    left=$(redis-cli -p "$port" STOCK hot)
    deducted=$(redis-cli -p "$port" SKUINFO hot | awk 'previous == "deducted" { print; exit } { previous = $0 }')
    if [ $((BIG_STOCK - left)) -ne "$deducted" ]; then
        echo "check FAILED on port $port: stock moved $((BIG_STOCK - left)), $deducted deducted" >&2
        failed=1
    fi
done
left=$(redis-cli -p "$REDIS_PORT" GET stock:hot)
lines=$(redis-cli -p "$REDIS_PORT" HLEN flow:hot)
if [ $((BIG_STOCK - left)) -ne "$lines" ]; then
    echo "check FAILED on Redis+Lua: stock moved $((BIG_STOCK - left)), $lines lines" >&2
    failed=1
fi
[ "$failed" -eq 0 ] && echo "check passed: each store's stock moved by exactly the lines it recorded"
exit "$failed"
