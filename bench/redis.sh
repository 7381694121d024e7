#!/usr/bin/env bash
# bench/redis.sh -- the redis backend's throughput target, measured: one hot
# SKU on one redis-server 7 with appendonly yes and appendfsync always,
# the cache scheme's plain Lua deduction (bench/lua/deduct.lua, EVALSHA)
# driven by redis-benchmark -c 50 -P 16 against libstock's redis backend
# driven by stockbench -w hot -c 50 -P 16, alternated round by round on the
# same server (emptied before each row), so that the rows of a round see
# the same machine load. The backend runs twice a round: a store with its
# outbox (the default, what the persister and stockevents read) and one
# made with outbox=0 (the pure-cache scheme: docs/redis.md, "A store
# without an outbox").
#
# Each row reports ops/s as the server counted them (INFO commandstats:
# EVALSHA calls; for the backend, its hot SKU's deducted total, since one
# outbox entry holds a whole deduct_many call's lines) and the
# server's CPU per operation (its main thread's user + system time, from
# /proc), both over the middle of the row: on a quiet
# machine the server's CPU is the bound, on a loaded one the wait for each
# fsync is (Redis fsyncs once per event-loop pass, for every command the
# pass ran, so both clients get the same fsyncs per op when they keep 50
# pipelines full).
#
# Every row is checked: the Lua row's stock moved by exactly its flow
# hash's lines, stockbench runs its own I1-I5 check.
#
# usage: bench/redis.sh [--seconds N] [--rounds N]
#   --seconds N  length of each row (default 5, 3..60); the figures are
#                those of its middle, from 1 s after the start to 1 s
#                before the end
#   --rounds N   Lua + backend pairs (default 3, 1..20)
# Environment: BUILD (default build). Port 17466 on 127.0.0.1.
# Needs redis-server, redis-benchmark (scripts/install-deps.sh).
set -eu
cd "$(dirname "$0")/.."
. bench/common.sh
bench_help "$@"
seconds=5
rounds=3
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) bench_whole --seconds "${2:-}" 3 60; seconds=$2; shift 2 ;;
    --rounds) bench_whole --rounds "${2:-}" 1 20; rounds=$2; shift 2 ;;
    *) echo "$bench_name: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$BUILD/stockbench" ] || { echo "$bench_name: missing $BUILD/stockbench: run make" >&2; exit 3; }

readonly PORT=17466 CLIENTS=50 PIPELINE=16 BIG_STOCK=1000000000000
readonly RAND_RANGE=2147483647   # redis-benchmark draws __rand_int__ below 2^31
bench_temp stockd-redis-bench
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$tmp" --appendonly yes \
    --appendfsync always --save "" --daemonize no --logfile "$tmp/redis.log" &
pids+=($!)
server=$!
for _ in $(seq 200); do
    redis-cli -p "$PORT" PING 2>/dev/null | grep -q PONG && break
    sleep 0.05
done
redis-cli -p "$PORT" PING >/dev/null

# cpu_ticks: the server's main thread's CPU time so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server/task/$server/stat"; }
readonly TICK_US=$((1000000 / $(getconf CLK_TCK)))
# evalsha_calls: how many times the server has run EVALSHA (INFO
# commandstats), one Lua deduction each.
evalsha_calls() {
    redis-cli -p "$PORT" INFO commandstats | tr -d '\r' |
        awk -F '[:=,]' '$1 == "cmdstat_evalsha" { print $3; found = 1 } END { if (!found) print 0 }'
}
# backend_deducted: the units the backend deducted so far (qty 1 each): its
# hot SKU's deducted total (stockbench names it by its --prefix), 0 before
# stockbench made it.
backend_deducted() {
    local deducted
    deducted=$(redis-cli -p "$PORT" HGET 'sb:{sku:hot-S0}' ded)
    echo "${deducted:-0}"
}
now_s() { date +%s.%N; }

# window COUNTER: measures the middle of a running row, from 1 s after its
# start to 1 s before its end (so that neither the clients' connecting nor
# stockbench's final check counts), COUNTER the function that prints the
# deductions so far: prints "ops/s cpu_us_per_op".
window() {
    sleep 1
    local t0 c0 n0 t1 c1 n1
    t0=$(now_s) c0=$(cpu_ticks) n0=$("$1")
    sleep $((seconds - 2))
    t1=$(now_s) c1=$(cpu_ticks) n1=$("$1")
    awk -v t="$(echo "$t1 - $t0" | bc)" -v c=$((c1 - c0)) -v n=$((n1 - n0)) -v u="$TICK_US" \
        'BEGIN { if (n == 0) { print "0 -"; exit } printf "%.0f %.1f\n", n / t, c * u / n }'
}

sha=$(redis-cli -p "$PORT" SCRIPT LOAD "$(cat bench/lua/deduct.lua)")

# lua_row: redis-benchmark's EVALSHA of the Lua deduction on one hot SKU,
# stopped after $seconds.
lua_row() {
    redis-cli -p "$PORT" FLUSHALL >/dev/null
    redis-cli -p "$PORT" SET stock:hot "$BIG_STOCK" >/dev/null
    redis-benchmark -h 127.0.0.1 -p "$PORT" -c "$CLIENTS" -P "$PIPELINE" -n 2000000000 \
        -r "$RAND_RANGE" -q EVALSHA "$sha" 2 stock:hot flow:hot line:__rand_int__ 1 \
        >/dev/null 2>&1 &
    local client=$! measured left lines check=passed
    measured=$(window evalsha_calls)
    kill "$client"
    wait "$client" 2>/dev/null || true
    left=$(redis-cli -p "$PORT" GET stock:hot)
    lines=$(redis-cli -p "$PORT" HLEN flow:hot)
    [ $((BIG_STOCK - left)) -eq "$lines" ] ||
        check="FAILED (stock moved $((BIG_STOCK - left)), $lines lines)"
    read -r lua_ops lua_cpu <<<"$measured"
    printf '%-26s %10s %10s  %s\n' "Redis 7 + Lua (EVALSHA)" "$lua_ops" "$lua_cpu" "$check"
}

# backend_row LABEL OPTIONS: stockbench through the redis backend on one
# hot SKU, the store's URI options OPTIONS after its prefix.
backend_row() {
    redis-cli -p "$PORT" FLUSHALL >/dev/null
    "$BUILD/stockbench" --store "redis://127.0.0.1:$PORT?prefix=sb:$2" -w hot --prefix hot- \
        -c "$CLIENTS" -P "$PIPELINE" -d "$seconds" --json --no-progress >"$tmp/sb.json" 2>"$tmp/sb.err" &
    local client=$! measured status=0 verdict ops cpu
    measured=$(window backend_deducted)
    wait "$client" || status=$?
    [ "$status" -le 1 ] || { cat "$tmp/sb.err" >&2; exit 1; }
    verdict=$(/usr/bin/python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
print("passed" if j["check"]["passed"] else "FAILED")' "$tmp/sb.json")
    read -r ops cpu <<<"$measured"
    printf '%-26s %10s %10s  %s\n' "$1" "$ops" "$cpu" "$verdict (stockbench I1-I5)"
    echo "round ratio ($1 / Lua): $(awk -v a="$ops" -v b="$lua_ops" 'BEGIN { printf "%.2f", a / b }')"
}

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average$(uptime | sed 's/.*load average//')"
echo "one hot SKU, appendfsync always, -c $CLIENTS -P $PIPELINE, $seconds s per row"
printf '%-26s %10s %10s  %s\n' "system" "ops/s" "cpu us/op" "check"
for round in $(seq "$rounds"); do
    echo "-- round $round"
    lua_row
    backend_row "backend" ""
    backend_row "backend, outbox=0" "&outbox=0"
done
